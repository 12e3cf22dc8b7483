//! Remote mirroring: traffic that reaches the box inside a tunnel — VXLAN
//! as cloud traffic mirroring sends it, ERSPAN II and III from a remote SPAN
//! session, gretap, GENEVE — made with the kernel's own tunnel devices in
//! namespaces. With `capture.decapsulate` the daemon counts (and alerts on)
//! the hosts inside; the tunnel's packets are counted apart.
//!
//! GRE, ERSPAN and GENEVE devices need kernel modules the build machine's
//! kernel may lack (`CONFIG_NET_IPGRE`, `CONFIG_GENEVE`): those tests run on
//! Debian's kernel under `tests/kernels/` (run-all.sh does), and fail here
//! with a message saying so.

use std::time::Duration;

use crate::daemon::{Daemon, TEST_CONFIG};
use crate::netns::{Netns, require, sh, unique, wait_until};
use crate::traffic::trafgen;

/// A sensor namespace (the daemon, watching the underlay `u0`) and a
/// mirror source with a tunnel device `t0` toward it.
struct Mirror {
    sensor: Netns,
    source: Netns,
    u0: String,
}

fn mirror(tunnel: &[&str]) -> Mirror {
    let sensor = Netns::new("m");
    let source = Netns::new("s");
    let u0 = unique("u");
    let u1 = unique("v");
    sh(&[
        "ip",
        "link",
        "add",
        &u0,
        "netns",
        &sensor.name,
        "type",
        "veth",
        "peer",
        "name",
        &u1,
        "netns",
        &source.name,
    ]);
    for (ns, dev, addr) in [
        (&sensor, &u0, "172.16.0.1/24"),
        (&source, &u1, "172.16.0.2/24"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
        ns.exec(&[
            "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
        ]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    }
    let mac = sensor.mac(&u0);
    source.ip(&[
        "neigh",
        "replace",
        "172.16.0.1",
        "lladdr",
        &mac,
        "dev",
        &u1,
        "nud",
        "permanent",
    ]);
    let mut args = vec!["link", "add", "t0"];
    args.extend_from_slice(tunnel);
    let out = source.exec_output(&[&["ip"][..], &args].concat());
    assert!(
        out.status.success(),
        "cannot make a tunnel device ({}): this kernel lacks the module; these tests run on Debian's kernel with tests/kernels/run.sh",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    source.ip(&["link", "set", "t0", "up"]);
    Mirror { sensor, source, u0 }
}

fn inner_udp(count: u64) -> (u64, String) {
    (
        count,
        "{ eth(da=02:00:00:00:00:09, sa=02:00:00:00:00:07), ipv4(ttl=64, sa=10.50.0.7, da=10.60.0.9), udp(sp=40000, dp=9), fill(0x41, 272) }".into(),
    )
}

/// 300-byte datagrams from 10.50.0.7 inside the tunnel, counted as theirs;
/// the tunnel's endpoints are not hosts; the tunnel packets are counted.
fn check(m: &Mirror, decapsulate: &str, count: u64) {
    let cfg = format!(
        "{TEST_CONFIG}\n[capture]\ninterfaces = [\"{}\"]\ndecapsulate = [\"{decapsulate}\"]\n",
        m.u0
    );
    let d = Daemon::start(&m.sensor, &cfg);
    wait_until(Duration::from_secs(5), || {
        d.iface(&m.u0).filter(|i| i["present"] == true)
    })
    .expect("watched");
    let (n, pkt) = inner_udp(count);
    trafgen(&m.source, "t0", n, 100, &pkt);
    let got = d.settle(count * 300, |d| d.source_bytes("10.50.0.7"));
    assert_eq!(
        got,
        count * 300,
        "{decapsulate}: inner bytes; log:\n{}",
        d.log()
    );
    assert_eq!(d.pair_bytes("10.50.0.7", "10.60.0.9"), count * 300);
    assert_eq!(
        d.source_bytes("172.16.0.2"),
        0,
        "{decapsulate}: the tunnel's end is no host"
    );
    let i = d.iface(&m.u0).unwrap();
    assert_eq!(i["totals"]["tunnel_packets"], count, "{decapsulate}: {i}");
    assert!(i["totals"]["tunnel_bytes"].as_u64().unwrap() > count * 300);
}

#[test]
fn a_vxlan_mirror_counts_the_hosts_inside_and_alerts_on_them() {
    require(&["trafgen", "ethtool"]);
    let m = mirror(&[
        "type",
        "vxlan",
        "id",
        "42",
        "remote",
        "172.16.0.1",
        "local",
        "172.16.0.2",
        "dstport",
        "4789",
    ]);
    check(&m, "vxlan", 400);

    // A scan inside the tunnel is the scanner's, not the tunnel's.
    let cfg = format!(
        "{TEST_CONFIG}\n[capture]\ninterfaces = [\"{}\"]\ndecapsulate = [\"vxlan:4789\"]\n[scan]\nmax_contacted_ips = 15\n",
        m.u0
    );
    let d = Daemon::start(&m.sensor, &cfg);
    wait_until(Duration::from_secs(5), || {
        d.iface(&m.u0).filter(|i| i["present"] == true)
    })
    .expect("watched");
    // One SYN to each of 32 addresses (trafgen sends its packets in turn).
    let sweep: String = (1..=32)
        .map(|i| {
            format!(
                "{{ eth(da=02:00:00:00:00:09, sa=02:00:00:00:00:07), ipv4(ttl=64, sa=10.50.0.8, da=10.61.0.{i}), tcp(sp=40000, dp=22, syn) }}\n"
            )
        })
        .collect();
    trafgen(&m.source, "t0", 32, 200, &sweep);
    let alert = wait_until(Duration::from_secs(10), || {
        d.json("/api/v1/alerts")["open"]
            .as_array()?
            .iter()
            .find(|a| a["kind"] == "address_scan")
            .cloned()
    });
    let a = alert.unwrap_or_else(|| panic!("no scan alert; log:\n{}", d.log()));
    assert_eq!(a["subject"], "10.50.0.8", "{a}");
}

/// GRE-based mirrors and GENEVE (needs the kernel's GRE, ERSPAN and GENEVE
/// modules: run under tests/kernels/).
#[test]
fn kernel_modules_gretap_erspan_and_geneve_mirrors_count_the_hosts_inside() {
    require(&["trafgen", "ethtool"]);
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "type",
                "gretap",
                "local",
                "172.16.0.2",
                "remote",
                "172.16.0.1",
                "key",
                "9",
            ],
            "gre",
        ),
        (
            &[
                "type",
                "erspan",
                "seq",
                "key",
                "100",
                "local",
                "172.16.0.2",
                "remote",
                "172.16.0.1",
                "erspan_ver",
                "1",
                "erspan",
                "123",
            ],
            "erspan",
        ),
        (
            &[
                "type",
                "erspan",
                "seq",
                "key",
                "101",
                "local",
                "172.16.0.2",
                "remote",
                "172.16.0.1",
                "erspan_ver",
                "2",
                "erspan_dir",
                "ingress",
                "erspan_hwid",
                "17",
            ],
            "erspan",
        ),
        (
            &["type", "geneve", "id", "5", "remote", "172.16.0.1"],
            "geneve",
        ),
    ];
    for (tunnel, decap) in cases {
        let m = mirror(tunnel);
        check(&m, decap, 300);
    }
}
