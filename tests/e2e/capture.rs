//! Counting through the router namespace: exact totals for known traffic,
//! forwarded packets counted once.

use std::time::Duration;

use crate::daemon::{Daemon, TEST_CONFIG};
use crate::netns::{Topology, require, wait_until};
use crate::traffic::{trafgen, udp4, udp6};

#[test]
fn udp_totals_are_exact_and_forwarded_packets_count_once() {
    require(&["trafgen", "ethtool", "ping"]);
    let t = Topology::new();
    let d = Daemon::start(&t.rtr, TEST_CONFIG);
    let mac = t.rtr.mac(&t.r0);
    let r0_before = t.rtr.link_stats(&t.r0);
    let s0_before = t.sink.link_stats(&t.s0);

    // 10 000 datagrams of 1000 bytes each way of IP, from sources no other
    // packet uses, so the truth is exactly 10 000 × 1000 per source.
    trafgen(
        &t.gen_ns,
        &t.g0,
        10_000,
        20,
        &udp4(&mac, "10.1.0.77", "10.2.0.2", 1000),
    );
    trafgen(
        &t.gen_ns,
        &t.g0,
        10_000,
        20,
        &udp6(&mac, "fd00:1::77", "fd00:2::2", 1000),
    );

    let v4 = d.settle(10_000_000, |d| d.source_bytes("10.1.0.77"));
    let v6 = d.settle(10_000_000, |d| d.source_bytes("fd00:1::77"));
    assert_eq!(v4, 10_000_000, "IPv4 bytes; log:\n{}", d.log());
    assert_eq!(v6, 10_000_000, "IPv6 bytes; log:\n{}", d.log());
    assert_eq!(d.pair_bytes("10.1.0.77", "10.2.0.2"), 10_000_000);
    assert_eq!(d.pair_bytes("fd00:1::77", "fd00:2::2"), 10_000_000);

    // The router forwarded all of it out of r1 (the sink interface saw it
    // arrive), yet it was counted once: on arrival at r0.
    let r0_after = t.rtr.link_stats(&t.r0);
    let s0_after = t.sink.link_stats(&t.s0);
    assert!(r0_after.rx_packets - r0_before.rx_packets >= 20_000);
    assert!(
        s0_after.rx_packets - s0_before.rx_packets >= 20_000,
        "the router forwarded the datagrams to the sink"
    );
    let r0 = d.iface(&t.r0).expect("r0 listed");
    assert!(r0["totals"]["ip_packets"].as_u64().unwrap() >= 20_000);
    assert_eq!(r0["totals"]["kernel_drops"], 0);
    // r1 also receives: the sink's ICMP errors back to the sources, whose
    // number the kernel's per-peer rate limit grows with the seconds the
    // run takes (over 100 under TCG). So the bound is what arrived at r1,
    // read after the daemon's count, while 20 000 datagrams left by it.
    let r1 = d.iface(&t.r1).expect("r1 listed");
    let r1_link = t.rtr.link_stats(&t.r1);
    let r1_counted = r1["totals"]["ip_packets"].as_u64().unwrap();
    assert!(
        r1_link.tx_packets >= 20_000,
        "the datagrams left by r1: {r1_link:?}"
    );
    assert!(
        r1_counted <= r1_link.rx_packets && r1_counted < 20_000,
        "packets leaving r1 are not counted with direction = ingress: \
         {r1_counted} counted, {} arrived; {r1}",
        r1_link.rx_packets
    );
    let (code, log) = d.stop();
    assert_eq!(code, Some(0), "clean exit on SIGTERM; log:\n{log}");
    assert!(log.contains("stopping"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

/// The CPUs each of the daemon's threads named `cap-*` may run on, and
/// those of its main thread.
fn worker_affinity(pid: u32) -> (Vec<String>, String) {
    let allowed = |task: &std::path::Path| {
        std::fs::read_to_string(task.join("status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let mut workers = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.starts_with("cap-") {
            workers.push(allowed(&e.path()));
        }
    }
    (
        workers,
        allowed(std::path::Path::new(&format!("/proc/{pid}"))),
    )
}

#[test]
fn unpinned_workers_count_exactly_and_may_run_on_any_cpu() {
    require(&["trafgen", "ethtool", "ping"]);
    let t = Topology::new();
    let cfg = format!("{TEST_CONFIG}\n[capture]\nworkers = 2\npin_workers = false\n");
    let d = Daemon::start(&t.rtr, &cfg);
    let mac = t.rtr.mac(&t.r0);
    trafgen(
        &t.gen_ns,
        &t.g0,
        5_000,
        20,
        &udp4(&mac, "10.1.0.66", "10.2.0.2", 700),
    );
    let got = d.settle(3_500_000, |d| d.source_bytes("10.1.0.66"));
    assert_eq!(got, 3_500_000, "log:\n{}", d.log());
    let (workers, process) = worker_affinity(d.pid());
    assert!(!workers.is_empty(), "cap-* threads of {}", d.pid());
    assert!(
        workers.iter().all(|w| *w == process),
        "each worker may run where the process may ({process}): {workers:?}"
    );
    let log = d.log();
    assert!(
        log.contains("unpinned (capture.pin_workers = false)"),
        "{log}"
    );
    assert!(!log.contains("pinned to CPU"), "{log}");

    // Pinned (the default): each worker on one CPU.
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
    let d = Daemon::start(&t.rtr, TEST_CONFIG);
    let (workers, _) = worker_affinity(d.pid());
    assert!(!workers.is_empty());
    assert!(
        workers.iter().all(|w| w.parse::<u32>().is_ok()),
        "one CPU each: {workers:?}"
    );
}

#[test]
fn direction_both_counts_arrivals_and_departures() {
    require(&["trafgen", "ethtool", "ping"]);
    let t = Topology::new();
    let cfg = format!("{TEST_CONFIG}\n[capture]\ndirection = \"both\"\n");
    let d = Daemon::start(&t.rtr, &cfg);
    let mac = t.rtr.mac(&t.r0);
    trafgen(
        &t.gen_ns,
        &t.g0,
        2_000,
        20,
        &udp4(&mac, "10.1.0.88", "10.2.0.2", 500),
    );
    // Seen arriving on r0 and leaving on r1: twice.
    let got = d.settle(2_000_000, |d| d.source_bytes("10.1.0.88"));
    assert_eq!(
        got,
        2_000_000,
        "r0: {:?}\nr1: {:?}\nlog:\n{}",
        d.iface(&t.r0),
        d.iface(&t.r1),
        d.log()
    );
}

#[test]
fn vlan_tagged_and_qinq_traffic_is_counted_once() {
    require(&["trafgen", "ethtool", "ping"]);
    let t = Topology::new();
    let d = Daemon::start(&t.rtr, TEST_CONFIG);
    let mac = t.rtr.mac(&t.r0);
    // One 802.1Q tag (the kernel strips it into the frame header) and a
    // QinQ pair (the outer one is stripped, the inner stays in the frame).
    trafgen(
        &t.gen_ns,
        &t.g0,
        1_000,
        20,
        &format!(
            "{{ eth(da={mac}), vlan(id=100), ipv4(ttl=64, sa=10.3.0.77, da=10.2.0.2), udp(sp=1, dp=9), fill(0x41, 472) }}"
        ),
    );
    trafgen(
        &t.gen_ns,
        &t.g0,
        1_000,
        20,
        &format!(
            "{{ eth(da={mac}), vlan(tpid=0x88a8, id=200), vlan(id=100), ipv6(hl=64, sa=fd00:3::77, da=fd00:2::2), udp(sp=1, dp=9), fill(0x41, 452) }}"
        ),
    );
    assert_eq!(
        d.settle(500_000, |d| d.source_bytes("10.3.0.77")),
        500_000,
        "log:\n{}",
        d.log()
    );
    assert_eq!(
        d.settle(500_000, |d| d.source_bytes("fd00:3::77")),
        500_000,
        "log:\n{}",
        d.log()
    );
}

#[test]
fn a_bridge_is_counted_on_its_ports_only() {
    require(&["ethtool", "ping"]);
    let t = Topology::new();
    // r0 becomes a port of a bridge that carries the router's address on
    // that side: a packet to the router passes r0 and then br, and must be
    // counted once.
    let br = format!("{}br", &t.r0[..t.r0.len() - 2]);
    t.rtr.ip(&["addr", "flush", "dev", &t.r0]);
    t.rtr.ip(&["link", "add", &br, "type", "bridge"]);
    t.rtr.ip(&["link", "set", &t.r0, "master", &br]);
    t.rtr.ip(&["addr", "add", "10.1.0.1/24", "dev", &br]);
    t.rtr.ip(&["link", "set", &br, "up"]);
    let d = Daemon::start(&t.rtr, TEST_CONFIG);
    t.gen_ns.ip(&["addr", "add", "10.1.0.5/24", "dev", &t.g0]);
    t.gen_ns
        .exec(&["ping", "-c", "5", "-i", "0.2", "-I", "10.1.0.5", "10.1.0.1"]);
    // Five 84-byte echo requests, counted once each.
    assert_eq!(
        d.settle(5 * 84, |d| d.source_bytes("10.1.0.5")),
        5 * 84,
        "log:\n{}",
        d.log()
    );
    let log = d.log();
    assert!(
        log.contains(&format!(
            "not watching {br}: its packets are counted on {}",
            t.r0
        )),
        "{log}"
    );
}

#[test]
fn tcp_transfer_equals_the_sink_interface_counters() {
    require(&["iperf3", "ethtool", "ping"]);
    let t = Topology::new();
    // Nothing but the transfer may reach the sink while we measure: no IPv6
    // (multicast listener reports) on the router–sink link.
    t.rtr.exec(&[
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{}.disable_ipv6=1", t.r1),
    ]);
    t.sink.exec(&[
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{}.disable_ipv6=1", t.s0),
    ]);
    t.gen_ns.ip(&["addr", "add", "10.1.0.3/24", "dev", &t.g0]);
    let d = Daemon::start(&t.rtr, TEST_CONFIG);

    let mut server = crate::traffic::iperf3_server(&t.sink, "10.2.0.2");
    let before = t.sink.link_stats(&t.s0);
    let out = t.gen_ns.exec_output(&[
        "iperf3", "-c", "10.2.0.2", "-p", "5201", "-B", "10.1.0.3", "-n", "20M",
    ]);
    assert!(
        out.status.success(),
        "iperf3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server ends once the whole test is through (slow when the other
    // tests load the machine), then the connection closes.
    assert!(
        server.wait_for(Duration::from_secs(60)).is_some(),
        "iperf3 server did not finish"
    );
    let after = wait_until(Duration::from_secs(10), || {
        let a = t.sink.link_stats(&t.s0);
        std::thread::sleep(Duration::from_millis(1000));
        (t.sink.link_stats(&t.s0) == a).then_some(a)
    })
    .expect("sink counters settle");
    let frames = after.rx_packets - before.rx_packets;
    let l3 = after.rx_bytes - before.rx_bytes - 14 * frames;
    // iperf3 ends its test once the client has written its 20 MiB; data
    // still in flight then may be cut off by the closing server, so the
    // wire carries a little less. What crossed is the truth to match.
    assert!(l3 > 10 << 20, "the transfer reached the sink: {l3} bytes");

    let ours = d.settle(l3, |d| d.pair_bytes("10.1.0.3", "10.2.0.2"));
    assert_eq!(
        ours,
        l3,
        "bytes from 10.1.0.3 to 10.2.0.2 must equal what the sink interface received at layer 3 ({frames} frames); log:\n{}",
        d.log()
    );
}
