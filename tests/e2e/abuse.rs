//! The API under abuse from a few clients: slots held by idle or slow
//! connections, and clients hammering the largest page, must not keep a
//! health check out.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};

use crate::daemon::{API, Daemon};
use crate::netns::{Netns, Topology, enter, require};

/// A connection from `src` (any 127/8 address) to the API.
fn connect_from(src: Ipv4Addr) -> std::io::Result<TcpStream> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(src, 0)),
    )?;
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8698)),
    )?;
    Ok(TcpStream::from(fd))
}

/// Reads one response (head and Content-Length body); its status.
fn response(s: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let mut b = [0u8; 8192];
    let head_end = loop {
        let n = s.read(&mut b).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < len {
        let n = s.read(&mut b).ok()?;
        if n == 0 {
            return None;
        }
        have += n;
    }
    head.split_whitespace().nth(1)?.parse().ok()
}

fn healthz_within(ns: &Netns, limit: Duration) -> Result<Duration, String> {
    let t = Instant::now();
    let r = ns.http(API, "GET", "/healthz", &[], None);
    let took = t.elapsed();
    if r.status != 200 {
        return Err(format!("/healthz answered {} ({:?})", r.status, r.body));
    }
    if took > limit {
        return Err(format!("/healthz took {took:?}"));
    }
    Ok(took)
}

#[test]
fn idle_kept_alive_clients_cannot_keep_a_health_check_out() {
    require(&[]);
    let ns = Netns::new("ab");
    let d = Daemon::start(&ns, "");
    let name = ns.name.clone();
    // 600 kept-alive connections from 20 addresses, each idle after one
    // request: more than the server has slots.
    let (tx, rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        enter(&name);
        let mut held = Vec::new();
        let mut answered = 0;
        for i in 0..600u32 {
            let src = Ipv4Addr::new(127, 0, 0, 2 + (i % 20) as u8);
            let Ok(mut s) = connect_from(src) else {
                continue;
            };
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            if s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
                .is_ok()
                && response(&mut s) == Some(200)
            {
                answered += 1;
            }
            held.push(s);
        }
        tx.send(answered).unwrap();
        // Hold them until told.
        let _ = rx_hold(&held);
    });
    let answered = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("clients ran");
    assert!(answered > 0);
    for _ in 0..10 {
        if let Err(e) = healthz_within(&ns, Duration::from_secs(1)) {
            panic!("{e}; log:\n{}", d.log());
        }
    }
    let (_, metrics) = ns.http_get(API, "/metrics");
    let closed = metrics
        .lines()
        .find(|l| l.starts_with("trafficalerted_http_connections_total{outcome=\"closed_idle\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("closed_idle in /metrics");
    assert!(closed > 0, "idle connections were closed to make room");
    drop(d);
    drop(ns);
    let _ = holder.join();
}

/// Keeps `held` open until the namespace goes away (the sockets then fail).
fn rx_hold(held: &[TcpStream]) -> usize {
    std::thread::sleep(Duration::from_secs(8));
    held.len()
}

#[test]
fn clients_hammering_the_largest_page_do_not_delay_a_health_check() {
    require(&["trafgen"]);
    let t = Topology::new();
    let d = Daemon::start(&t.rtr, "[traffic]\ninterval = \"1h\"\n");
    let mac = t.rtr.mac(&t.r0);
    // 20 000 packets from random sources: 10 000 hosts listed.
    crate::traffic::trafgen(
        &t.gen_ns,
        &t.g0,
        20_000,
        10,
        &crate::traffic::spoofed_udp4(&mac, "10.2.0.2", 9, 50),
    );
    let listed = crate::netns::wait_until(Duration::from_secs(10), || {
        let s = d.json("/api/v1/status");
        (s["hosts_listed"].as_u64()? >= 10_000).then_some(())
    });
    assert!(listed.is_some(), "{}", d.json("/api/v1/status"));
    let name = t.rtr.name.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..40u8 {
        let (name, stop) = (name.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            enter(&name);
            let mut pages = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(mut s) = connect_from(Ipv4Addr::new(127, 0, 1, i)) else {
                    continue;
                };
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let req = b"GET /api/v1/hosts?limit=10000&detail HTTP/1.1\r\nHost: x\r\n\r\n";
                    if s.write_all(req).is_err() || response(&mut s).is_none() {
                        break;
                    }
                    pages += 1;
                }
            }
            pages
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    let mut worst = Duration::ZERO;
    for _ in 0..30 {
        match healthz_within(&t.rtr, Duration::from_millis(500)) {
            Ok(took) => worst = worst.max(took),
            Err(e) => {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("{e}");
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let pages: u32 = clients.into_iter().map(|c| c.join().unwrap_or(0)).sum();
    eprintln!("40 clients read {pages} pages of 10 000 hosts; slowest /healthz {worst:?}");
    assert!(pages > 40, "the heavy clients were served: {pages}");
}
