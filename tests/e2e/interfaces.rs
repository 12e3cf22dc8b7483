//! Interfaces that appear and vanish while the daemon runs.

use std::time::Duration;

use crate::daemon::{Daemon, TEST_CONFIG};
use crate::netns::{Netns, require, unique, wait_until};

#[test]
fn interfaces_are_picked_up_and_dropped_without_restart_or_error_storm() {
    require(&["ping"]);
    let rtr = Netns::new("r");
    let peer = Netns::new("p");
    // A fresh namespace holds the kernel's fallback tunnels (gre0, gretap0,
    // erspan0, ...) once their modules are loaded, as an earlier test on
    // a kernel built with them as modules loads them: they are not what
    // this test is about, and are left out so that it starts with nothing.
    let present = rtr.link_names();
    let cfg = format!(
        "{TEST_CONFIG}\n[capture]\nexclude_interfaces = {:?}\n",
        present
    );
    let d = Daemon::start(&rtr, &cfg);
    assert!(d.log().contains("no interface to watch yet"), "{}", d.log());

    for round in 0..4 {
        let a = unique("a");
        let b = unique("b");
        crate::netns::sh(&[
            "ip", "link", "add", &a, "netns", &rtr.name, "type", "veth", "peer", "name", &b,
            "netns", &peer.name,
        ]);
        rtr.ip(&["addr", "add", "10.9.0.1/24", "dev", &a]);
        peer.ip(&["addr", "add", "10.9.0.2/24", "dev", &b]);
        rtr.ip(&["link", "set", &a, "up"]);
        peer.ip(&["link", "set", &b, "up"]);

        let present = wait_until(Duration::from_secs(5), || {
            d.iface(&a).filter(|i| i["present"] == true)
        });
        assert!(
            present.is_some(),
            "round {round}: {a} not picked up; log:\n{}",
            d.log()
        );

        // Traffic on the new interface is counted: pings from the peer.
        peer.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.0.1"]);
        let seen = wait_until(Duration::from_secs(5), || {
            let i = d.iface(&a)?;
            (i["totals"]["ip_packets"].as_u64()? >= 3).then_some(())
        });
        assert!(
            seen.is_some(),
            "round {round}: pings on {a} not counted; {:?}",
            d.iface(&a)
        );

        rtr.ip(&["link", "del", &a]);
        let gone = wait_until(Duration::from_secs(5), || {
            d.iface(&a).filter(|i| i["present"] == false)
        });
        assert!(
            gone.is_some(),
            "round {round}: {a} not dropped; log:\n{}",
            d.log()
        );
    }
    // Still serving, and four interfaces coming and going made a few lines
    // of log each, not a storm.
    assert_eq!(d.get("/healthz").0, 200);
    let log = d.log();
    assert!(!log.contains("ERROR"), "{log}");
    assert!(log.lines().count() < 40, "too much logging:\n{log}");
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn explicit_interface_list_and_excludes_are_obeyed() {
    require(&[]);
    let rtr = Netns::new("r");
    let peer = Netns::new("p");
    let keep = unique("k");
    let skip = unique("x");
    for (a, b) in [(&keep, unique("kp")), (&skip, unique("xp"))] {
        crate::netns::sh(&[
            "ip", "link", "add", a, "netns", &rtr.name, "type", "veth", "peer", "name", &b,
            "netns", &peer.name,
        ]);
        rtr.ip(&["link", "set", a, "up"]);
    }
    let cfg = format!(
        "{TEST_CONFIG}\n[capture]\ninterfaces = [\"{keep}\", \"{skip}\"]\nexclude_interfaces = [\"{skip}\"]\n"
    );
    let d = Daemon::start(&rtr, &cfg);
    let listed = wait_until(Duration::from_secs(5), || d.iface(&keep));
    assert!(listed.is_some(), "log:\n{}", d.log());
    assert!(d.iface(&skip).is_none());
    assert!(d.iface("lo").is_none());
}
