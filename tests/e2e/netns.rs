//! Network namespaces made by the tests, and everything run in them.
//!
//! Every namespace is named uniquely (process id and a counter) and removed
//! when its guard drops, with every process still running in it, also when
//! the test fails.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Stops the test with a clear message unless it runs as root with the
/// tools it needs: these tests must not be skipped silently.
pub fn require(tools: &[&str]) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the end-to-end tests make network namespaces and need root: run them with sudo (see README)"
    );
    for t in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "the end-to-end tests need `{t}`: install it (.ci/run installs everything they use)"
        );
    }
}

/// A short name unique to this process and call.
pub fn unique(tag: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("ta{}{}{}", std::process::id() % 100_000, tag, n)
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "`{}` failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns its output, whatever its status.
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", args[0]))
}

/// A network namespace, deleted on drop with all its processes.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        // Fresh namespaces hold IPv6 addresses back for duplicate address
        // detection; without this the first packets are lost.
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
        ns
    }

    /// `ip -n NAME ...`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Runs a command inside the namespace, panicking if it fails.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Runs a command inside the namespace and returns its output.
    pub fn exec_output(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Starts a process inside the namespace; it is killed when the guard
    /// drops (and with the namespace at the latest).
    pub fn spawn(&self, args: &[&str], stdout: Stdio, stderr: Stdio) -> Proc {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
        Proc { child: Some(child) }
    }

    /// Interface counters as the kernel keeps them (rx, tx).
    pub fn link_stats(&self, dev: &str) -> LinkStats {
        let out = self.ip(&["-s", "-j", "link", "show", "dev", dev]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output");
        let s = &v[0]["stats64"];
        LinkStats {
            rx_packets: s["rx"]["packets"].as_u64().unwrap_or(0),
            rx_bytes: s["rx"]["bytes"].as_u64().unwrap_or(0),
            tx_packets: s["tx"]["packets"].as_u64().unwrap_or(0),
            tx_bytes: s["tx"]["bytes"].as_u64().unwrap_or(0),
        }
    }

    /// The index of an interface.
    pub fn ifindex(&self, dev: &str) -> u32 {
        let out = self.ip(&["-j", "link", "show", "dev", dev]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output");
        v[0]["ifindex"].as_u64().expect("ifindex") as u32
    }

    /// The names of the links the namespace holds.
    pub fn link_names(&self) -> Vec<String> {
        let out = self.ip(&["-j", "link", "show"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output");
        v.as_array()
            .expect("ip -j link show: a list")
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .collect()
    }

    /// The MAC address of an interface.
    pub fn mac(&self, dev: &str) -> String {
        let out = self.ip(&["-j", "link", "show", "dev", dev]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output");
        v[0]["address"].as_str().expect("address").to_string()
    }

    /// An HTTP GET to `addr` from inside the namespace: (status, body).
    pub fn http_get(&self, addr: &str, path: &str) -> (u16, String) {
        self.http_raw(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
        )
    }

    /// Sends raw request bytes from inside the namespace: (status, body).
    pub fn http_raw(&self, addr: &str, request: &str) -> (u16, String) {
        let r = self.http_exchange(addr, request.as_bytes().to_vec());
        (r.status, r.body)
    }

    /// A request with headers and an optional body, from inside the
    /// namespace, on a connection of its own.
    pub fn http(
        &self,
        addr: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body.unwrap_or(""));
        self.http_exchange(addr, req.into_bytes())
    }

    fn http_exchange(&self, addr: &str, request: Vec<u8>) -> Reply {
        let ns = self.name.clone();
        let addr = addr.to_string();
        std::thread::spawn(move || {
            enter(&ns);
            let mut s = std::net::TcpStream::connect(&addr)
                .unwrap_or_else(|e| panic!("connect {addr} in {ns}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(30))).ok();
            s.write_all(&request).expect("send request");
            // Read to the end of the body (by its length, when given): a
            // server may keep the connection open despite `close`.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16384];
            loop {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if Reply::complete(&buf) {
                    break;
                }
            }
            Reply::parse(&buf)
        })
        .join()
        .expect("http thread")
    }

    /// Reads a streamed response (server-sent events) until `enough` says
    /// so or `limit` passes; everything read, head included.
    pub fn http_stream(
        &self,
        addr: &str,
        path: &str,
        headers: &[(&str, &str)],
        limit: Duration,
        enough: impl Fn(&str) -> bool + Send + 'static,
    ) -> String {
        let ns = self.name.clone();
        let addr = addr.to_string();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        std::thread::spawn(move || {
            enter(&ns);
            let mut s = std::net::TcpStream::connect(&addr)
                .unwrap_or_else(|e| panic!("connect {addr} in {ns}: {e}"));
            s.set_read_timeout(Some(Duration::from_millis(200))).ok();
            s.write_all(req.as_bytes()).expect("send request");
            let end = Instant::now() + limit;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            while Instant::now() < end {
                match s.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(_) => {}
                }
                if enough(&String::from_utf8_lossy(&buf)) {
                    break;
                }
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
        .join()
        .expect("stream thread")
    }

    /// True if a TCP socket listens on `port` inside the namespace (without
    /// connecting to it, which a one-shot server would take as its client).
    pub fn listening(&self, port: u16) -> bool {
        let out = self.exec_output(&["ss", "-Hltn", &format!("sport = :{port}")]);
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    }

    /// True if something answers TCP on `addr` inside the namespace.
    pub fn tcp_open(&self, addr: &str) -> bool {
        let ns = self.name.clone();
        let addr = addr.to_string();
        std::thread::spawn(move || {
            enter(&ns);
            std::net::TcpStream::connect_timeout(
                &addr.parse().expect("addr"),
                Duration::from_secs(1),
            )
            .is_ok()
        })
        .join()
        .unwrap_or(false)
    }
}

/// Moves the calling thread into a named network namespace.
pub fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("open netns");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// An HTTP response as read off the socket.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    /// Header lines, names lower-cased: `name: value`.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The head is in and the body is as long as its Content-Length says.
    fn complete(raw: &[u8]) -> bool {
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        head.lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .is_some_and(|n| raw.len() >= end + 4 + n)
    }

    fn parse(raw: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(raw);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return Reply::default();
        };
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): status {} {}", self.status, self.body))
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// A process started in a namespace; killed (with its process group) on
/// drop.
pub struct Proc {
    child: Option<Child>,
}

impl Proc {
    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends a signal to the process group, if the process still runs.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        // Never with pid 0: that would be the test's own process group.
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// Waits up to `limit` for the process to end; its exit code.
    pub fn wait_for(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let end = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st.code().unwrap_or(-1));
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Three namespaces in a row: generator — router — sink, the router
/// forwarding between them. Offloads are off so every packet on the wire is
/// one packet to every counter.
pub struct Topology {
    pub gen_ns: Netns,
    pub rtr: Netns,
    pub sink: Netns,
    /// Interface names: generator side, router toward generator, router
    /// toward sink, sink side.
    pub g0: String,
    pub r0: String,
    pub r1: String,
    pub s0: String,
}

impl Topology {
    pub fn new() -> Topology {
        let gen_ns = Netns::new("g");
        let rtr = Netns::new("r");
        let sink = Netns::new("s");
        let id = unique("");
        let (g0, r0, r1, s0) = (
            format!("{id}g0"),
            format!("{id}r0"),
            format!("{id}r1"),
            format!("{id}s0"),
        );
        for n in [&g0, &r0, &r1, &s0] {
            assert!(n.len() <= 15, "interface name {n} too long");
        }
        sh(&[
            "ip",
            "link",
            "add",
            &g0,
            "netns",
            &gen_ns.name,
            "type",
            "veth",
            "peer",
            "name",
            &r0,
            "netns",
            &rtr.name,
        ]);
        sh(&[
            "ip", "link", "add", &r1, "netns", &rtr.name, "type", "veth", "peer", "name", &s0,
            "netns", &sink.name,
        ]);
        let t = Topology {
            gen_ns,
            rtr,
            sink,
            g0,
            r0,
            r1,
            s0,
        };
        t.gen_ns.ip(&["addr", "add", "10.1.0.2/24", "dev", &t.g0]);
        t.gen_ns
            .ip(&["addr", "add", "fd00:1::2/64", "dev", &t.g0, "nodad"]);
        t.rtr.ip(&["addr", "add", "10.1.0.1/24", "dev", &t.r0]);
        t.rtr
            .ip(&["addr", "add", "fd00:1::1/64", "dev", &t.r0, "nodad"]);
        t.rtr.ip(&["addr", "add", "10.2.0.1/24", "dev", &t.r1]);
        t.rtr
            .ip(&["addr", "add", "fd00:2::1/64", "dev", &t.r1, "nodad"]);
        t.sink.ip(&["addr", "add", "10.2.0.2/24", "dev", &t.s0]);
        t.sink
            .ip(&["addr", "add", "fd00:2::2/64", "dev", &t.s0, "nodad"]);
        for (ns, dev) in [
            (&t.gen_ns, &t.g0),
            (&t.rtr, &t.r0),
            (&t.rtr, &t.r1),
            (&t.sink, &t.s0),
        ] {
            ns.ip(&["link", "set", dev, "up"]);
            ns.exec(&[
                "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
            ]);
        }
        t.gen_ns.ip(&["route", "add", "default", "via", "10.1.0.1"]);
        t.gen_ns
            .ip(&["-6", "route", "add", "default", "via", "fd00:1::1"]);
        t.sink.ip(&["route", "add", "default", "via", "10.2.0.1"]);
        t.sink
            .ip(&["-6", "route", "add", "default", "via", "fd00:2::1"]);
        t.rtr.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        t.rtr
            .exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        // Fixed neighbours: no ARP or neighbour discovery during a
        // measurement.
        let (gm, r0m, r1m, sm) = (
            t.gen_ns.mac(&t.g0),
            t.rtr.mac(&t.r0),
            t.rtr.mac(&t.r1),
            t.sink.mac(&t.s0),
        );
        for (ns, dev, ips, mac) in [
            (&t.gen_ns, &t.g0, ["10.1.0.1", "fd00:1::1"], &r0m),
            (&t.rtr, &t.r0, ["10.1.0.2", "fd00:1::2"], &gm),
            (&t.rtr, &t.r1, ["10.2.0.2", "fd00:2::2"], &sm),
            (&t.sink, &t.s0, ["10.2.0.1", "fd00:2::1"], &r1m),
        ] {
            for ip in ips {
                ns.ip(&[
                    "neigh",
                    "replace",
                    ip,
                    "lladdr",
                    mac,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ]);
            }
        }
        // Ping through once, both families, before anything is measured.
        t.gen_ns.exec(&["ping", "-c1", "-W2", "10.2.0.2"]);
        t.gen_ns.exec(&["ping", "-6", "-c1", "-W2", "fd00:2::2"]);
        t
    }
}

/// Polls `f` until it returns `Some` or `limit` passes.
pub fn wait_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
