//! Capturing needs CAP_NET_RAW and nothing else; without it the daemon says
//! so in one line.

use crate::daemon::{API, BIN, Daemon, TEST_CONFIG};
use crate::netns::{Netns, require};

#[test]
fn without_cap_net_raw_one_line_says_what_to_do() {
    require(&["setpriv"]);
    let ns = Netns::new("r");
    let out = ns.exec_output(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        BIN,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("trafficalerted: "), "{err}");
    assert!(
        last.contains("CAP_NET_RAW") && last.contains("setcap"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(!ns.tcp_open(API), "nothing may be left listening");
}

#[test]
fn with_cap_net_raw_alone_it_captures() {
    require(&["setpriv", "ping"]);
    let ns = Netns::new("r");
    let peer = Netns::new("p");
    let a = crate::netns::unique("a");
    let b = crate::netns::unique("b");
    crate::netns::sh(&[
        "ip", "link", "add", &a, "netns", &ns.name, "type", "veth", "peer", "name", &b, "netns",
        &peer.name,
    ]);
    ns.ip(&["addr", "add", "10.8.0.1/24", "dev", &a]);
    peer.ip(&["addr", "add", "10.8.0.2/24", "dev", &b]);
    ns.ip(&["link", "set", &a, "up"]);
    peer.ip(&["link", "set", &b, "up"]);
    let d = Daemon::start_with(
        &ns,
        TEST_CONFIG,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all,+net_raw",
            "--ambient-caps=-all,+net_raw",
            "--bounding-set=-all,+net_raw",
        ],
    );
    peer.exec(&["ping", "-c", "3", "-i", "0.2", "10.8.0.1"]);
    let got = d.settle(3 * 84, |d| d.source_bytes("10.8.0.2"));
    assert_eq!(
        got,
        3 * 84,
        "three 84-byte echo requests; log:\n{}",
        d.log()
    );
    let log = d.log();
    assert!(log.contains("pinned to CPU"), "{log}");
    assert!(
        !log.contains("cannot pin"),
        "pinning needs no privilege: {log}"
    );
}
