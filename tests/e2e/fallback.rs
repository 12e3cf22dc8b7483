//! Where the kernel refuses io_uring, idle workers wait with poll(2).

use crate::daemon::{BIN, Daemon, TEST_CONFIG};
use crate::netns::{Netns, require, sh, unique};

/// Disables io_uring for the whole machine (`kernel.io_uring_disabled = 2`)
/// while it lives; the old value comes back on drop, also on failure.
struct UringDisabled {
    old: String,
}

impl UringDisabled {
    fn new() -> UringDisabled {
        let path = "/proc/sys/kernel/io_uring_disabled";
        let old = std::fs::read_to_string(path)
            .expect("this kernel has kernel.io_uring_disabled (Linux 6.6+)")
            .trim()
            .to_string();
        std::fs::write(path, "2").expect("set kernel.io_uring_disabled");
        UringDisabled { old }
    }
}

impl Drop for UringDisabled {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/io_uring_disabled", &self.old);
    }
}

#[test]
fn workers_fall_back_to_poll_when_io_uring_is_refused() {
    require(&["ping"]);
    let ns = Netns::new("r");
    let peer = Netns::new("p");
    let a = unique("a");
    let b = unique("b");
    sh(&[
        "ip", "link", "add", &a, "netns", &ns.name, "type", "veth", "peer", "name", &b, "netns",
        &peer.name,
    ]);
    ns.ip(&["addr", "add", "10.6.0.1/24", "dev", &a]);
    peer.ip(&["addr", "add", "10.6.0.2/24", "dev", &b]);
    ns.ip(&["link", "set", &a, "up"]);
    peer.ip(&["link", "set", &b, "up"]);

    let _off = UringDisabled::new();
    let d = Daemon::start(&ns, TEST_CONFIG);
    assert_eq!(
        d.json("/capabilities")["Runtime"]["wait"],
        "poll",
        "log:\n{}",
        d.log()
    );
    assert!(
        d.log().contains("idle workers wait with poll(2)"),
        "{}",
        d.log()
    );
    peer.exec(&["ping", "-c", "3", "-i", "0.2", "10.6.0.1"]);
    assert_eq!(
        d.settle(3 * 84, |d| d.source_bytes("10.6.0.2")),
        3 * 84,
        "log:\n{}",
        d.log()
    );
    drop(d);

    // Asked for io_uring by name, it says why it cannot start.
    let dir = std::env::temp_dir().join(unique("c"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("t.toml");
    std::fs::write(
        &cfg,
        format!("{TEST_CONFIG}\n[capture]\nwait = \"io_uring\"\n"),
    )
    .unwrap();
    let out = ns.exec_output(&[BIN, "-c", &cfg.to_string_lossy()]);
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("io_uring was asked for"), "{err}");
}
