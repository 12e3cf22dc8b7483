//! Interfaces that come and go the ways operators' boxes see it — created
//! down and brought up later, deleted and made again with the same index,
//! dropped while packets are still in the ring — and a worker that dies.
//! These run on Debian 12's kernel too (`tests/kernels/`), where joining a
//! fanout group needs an interface that is up.

use std::time::Duration;

use crate::daemon::{Daemon, TEST_CONFIG};
use crate::netns::{Netns, require, sh, unique, wait_until};
use crate::traffic::{trafgen, udp4};

/// Two workers, so that every interface's rings form a fanout group.
fn two_workers() -> String {
    format!("{TEST_CONFIG}\n[capture]\nworkers = 2\n")
}

/// A veth pair between the daemon's namespace (`a`, left down unless
/// `up`) and a peer (`b`, up), offloads off.
fn veth(rtr: &Netns, peer: &Netns, a: &str, b: &str, index: Option<u32>, up: bool) {
    let mut args = vec!["ip", "link", "add", a, "netns", &rtr.name];
    let index_s = index.map(|i| i.to_string());
    if let Some(i) = &index_s {
        args.extend_from_slice(&["index", i]);
    }
    args.extend_from_slice(&["type", "veth", "peer", "name", b, "netns", &peer.name]);
    sh(&args);
    peer.ip(&["link", "set", b, "up"]);
    for (ns, dev) in [(rtr, a), (peer, b)] {
        ns.exec(&[
            "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
        ]);
        ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
        ]);
    }
    if up {
        rtr.ip(&["link", "set", a, "up"]);
    }
}

/// `count` datagrams of 500 bytes at layer 3 from `src`, sent by the peer
/// into `b` toward the daemon's side.
fn send(rtr: &Netns, peer: &Netns, a: &str, b: &str, src: &str, count: u64) {
    let mac = rtr.mac(a);
    trafgen(peer, b, count, 20, &udp4(&mac, src, "10.9.0.1", 500));
}

#[test]
fn an_interface_created_down_and_brought_up_later_is_counted_exactly() {
    require(&["trafgen", "ethtool"]);
    let rtr = Netns::new("r");
    let peer = Netns::new("p");
    let d = Daemon::start(&rtr, &two_workers());
    let (a, b) = (unique("a"), unique("b"));
    veth(&rtr, &peer, &a, &b, None, false);
    // Seen while down: on kernels before 6.13 its rings cannot join their
    // fanout group yet.
    let listed = wait_until(Duration::from_secs(5), || {
        d.log().contains(&a).then_some(())
    });
    assert!(listed.is_some(), "{a} never looked at; log:\n{}", d.log());
    std::thread::sleep(Duration::from_secs(2));
    rtr.ip(&["link", "set", &a, "up"]);
    let up = wait_until(Duration::from_secs(5), || {
        d.iface(&a).filter(|i| i["present"] == true)
    });
    assert!(up.is_some(), "{a} not watched once up; log:\n{}", d.log());
    send(&rtr, &peer, &a, &b, "10.9.0.77", 1000);
    let got = d.settle(500_000, |d| d.source_bytes("10.9.0.77"));
    assert_eq!(got, 500_000, "1000 × 500 bytes; log:\n{}", d.log());
    let log = d.log();
    assert!(!log.contains("not watching"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn an_interface_made_again_with_the_same_index_is_watched_again() {
    require(&["trafgen", "ethtool"]);
    let rtr = Netns::new("r");
    let peer = Netns::new("p");
    let d = Daemon::start(&rtr, &two_workers());
    let (a, b) = (unique("a"), unique("b"));
    veth(&rtr, &peer, &a, &b, None, true);
    let index = rtr.ifindex(&a);
    wait_until(Duration::from_secs(5), || {
        d.iface(&a).filter(|i| i["present"] == true)
    })
    .expect("watched");
    send(&rtr, &peer, &a, &b, "10.9.0.71", 200);
    assert_eq!(d.settle(100_000, |d| d.source_bytes("10.9.0.71")), 100_000);

    // Deleted and made again at once, with the same index, between two of
    // the daemon's looks at the interface list: it must find the dead rings
    // under an index that is present. On a busy machine one of its looks
    // may fall in between and see the interface gone first (correct too,
    // but not this case): then the pair is made again, up to five times.
    let mut replaced = false;
    for made in 2..=6 {
        rtr.ip(&["link", "del", &a]);
        veth(&rtr, &peer, &a, &b, Some(index), true);
        assert_eq!(rtr.ifindex(&a), index);
        let seen = wait_until(Duration::from_secs(5), || {
            let log = d.log();
            let watching = log.matches(&format!("watching {a} (index")).count();
            let took = log.contains("an interface with its index took its place");
            let gone = log
                .matches(&format!("stopped watching {a}: it went away"))
                .count();
            (watching == made && (took || gone == made - 1)).then_some(took)
        });
        match seen {
            Some(true) => {
                replaced = true;
                break;
            }
            Some(false) => {}
            None => panic!("dead rings kept; log:\n{}", d.log()),
        }
    }
    assert!(
        replaced,
        "a look fell between the delete and the add five times; log:\n{}",
        d.log()
    );
    send(&rtr, &peer, &a, &b, "10.9.0.72", 300);
    assert_eq!(
        d.settle(150_000, |d| d.source_bytes("10.9.0.72")),
        150_000,
        "the new interface is counted; log:\n{}",
        d.log()
    );
}

#[test]
fn packets_in_a_partly_filled_block_count_when_an_interface_is_dropped_or_the_daemon_stops() {
    require(&["trafgen", "ethtool"]);
    let rtr = Netns::new("r");
    let peer = Netns::new("p");
    // A long retire timeout: the last packets sit in a block the kernel has
    // not handed over yet when the interface is dropped.
    let cfg = format!("{TEST_CONFIG}\n[capture]\nworkers = 2\nblock_timeout = \"400ms\"\n");
    let d = Daemon::start(&rtr, &cfg);
    let (a, b) = (unique("a"), unique("b"));
    let (c, e) = (unique("c"), unique("e"));
    veth(&rtr, &peer, &a, &b, None, true);
    veth(&rtr, &peer, &c, &e, None, true);
    for dev in [&a, &c] {
        wait_until(Duration::from_secs(5), || {
            d.iface(dev).filter(|i| i["present"] == true)
        })
        .expect("watched");
    }
    // Dropped by a reload right after its last packet.
    send(&rtr, &peer, &a, &b, "10.9.0.81", 1000);
    let path = d.dir().join("trafficalerted.toml");
    let reloaded = cfg.replace(
        "block_timeout",
        &format!("exclude_interfaces = [\"lo\", \"{a}\"]\nblock_timeout"),
    );
    std::fs::write(&path, reloaded).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let dropped = wait_until(Duration::from_secs(5), || {
        d.iface(&a).filter(|i| i["present"] == false)
    });
    assert!(dropped.is_some(), "log:\n{}", d.log());
    assert_eq!(
        d.settle(500_000, |d| d.source_bytes("10.9.0.81")),
        500_000,
        "every packet before the drop; log:\n{}",
        d.log()
    );
    // Stopped right after the last packet: the summary counts them all.
    send(&rtr, &peer, &c, &e, "10.9.0.82", 700);
    let (code, log) = d.stop();
    assert_eq!(code, Some(0), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains(&format!("{c}: ")) && l.contains("IP packets"))
        .unwrap_or_else(|| panic!("no summary line for {c}:\n{log}"));
    assert!(
        line.contains("700 frames, 700 IP packets (350000 bytes)"),
        "{line}\n{log}"
    );
}

/// A worker that ends (here by a fault a debug build takes from its
/// environment) must not leave the daemon half-blind: it stops with an
/// error, for systemd's `Restart=on-failure` to start it again.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the fault hook is compiled into debug builds only"
)]
fn a_capture_worker_that_dies_stops_the_daemon_with_an_error() {
    require(&["ethtool"]);
    for fault in ["exit:1:2", "panic:1:2"] {
        let rtr = Netns::new("r");
        let peer = Netns::new("p");
        let (a, b) = (unique("a"), unique("b"));
        veth(&rtr, &peer, &a, &b, None, true);
        let env = format!("TRAFFICALERTED_TEST_WORKER_FAULT={fault}");
        let mut d = Daemon::start_with(&rtr, &two_workers(), &["env", &env]);
        let code = d.wait_exit(Duration::from_secs(10));
        let log = d.log();
        assert!(
            matches!(code, Some(c) if c != 0),
            "{fault}: exit {code:?}; log:\n{log}"
        );
        assert!(
            log.contains("ended while running"),
            "{fault}: the reason is logged:\n{log}"
        );
    }
}

/// GRO merges TCP segments into one frame with one set of headers: the
/// daemon says so once per interface, and counts the merged frames where
/// the kernel marks them (Linux 6.3+).
#[test]
fn gro_is_warned_about_and_merged_frames_are_counted() {
    require(&["iperf3", "ethtool"]);
    let rtr = Netns::new("r");
    let peer = Netns::new("p");
    let (a, b) = (unique("a"), unique("b"));
    veth(&rtr, &peer, &a, &b, None, true);
    rtr.ip(&["addr", "add", "10.9.0.1/24", "dev", &a]);
    peer.ip(&["addr", "add", "10.9.0.2/24", "dev", &b]);
    rtr.exec(&["ethtool", "-K", &a, "gro", "on"]);
    peer.exec(&["ethtool", "-K", &b, "tso", "on", "gso", "on"]);
    let d = Daemon::start(&rtr, TEST_CONFIG);
    wait_until(Duration::from_secs(5), || {
        d.iface(&a).filter(|i| i["present"] == true)
    })
    .expect("watched");
    let _server = rtr.spawn(
        &["iperf3", "-s", "-1", "-B", "10.9.0.1"],
        std::process::Stdio::null(),
        std::process::Stdio::null(),
    );
    wait_until(Duration::from_secs(5), || rtr.listening(5201).then_some(()))
        .expect("iperf3 listens");
    peer.exec(&["iperf3", "-c", "10.9.0.1", "-n", "20M"]);
    let log = d.log();
    let warned = log
        .lines()
        .filter(|l| l.contains(&format!("{a}: generic receive offload (GRO) is on")))
        .count();
    assert_eq!(warned, 1, "{log}");
    let (major, minor) = tpacket::kernel_version();
    let gso = wait_until(Duration::from_secs(5), || {
        let n = d.iface(&a)?["totals"]["gso_frames"].as_u64()?;
        (n > 0 || (major, minor) < (6, 3)).then_some(n)
    })
    .expect("gso_frames reported");
    if (major, minor) >= (6, 3) {
        assert!(gso > 0, "merged frames counted on {major}.{minor}");
    }
    let metrics = d.get("/metrics").1;
    assert!(
        metrics.contains("trafficalerted_interface_gso_frames_total"),
        "{metrics}"
    );
}
