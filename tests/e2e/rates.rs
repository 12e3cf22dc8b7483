//! Rate limits per protocol class from real floods: trafgen's SYN, ICMP
//! and fragment floods raise each their own kind within two ticks; an
//! iperf3 transfer of the same byte rate raises none.

use std::time::{Duration, Instant};

use crate::alerts::{now_ms, opened_in_history, wait_open};
use crate::daemon::Daemon;
use crate::netns::{Topology, require, wait_until};
use crate::traffic::trafgen;

fn config(rates_in: &str) -> String {
    format!(
        r#"
[traffic]
interval = "30s"
byte_limit = "1G"
chart_min_bytes = 1
[inbound]
byte_limit = "1G"
[rates.in]
{rates_in}
[alerts]
hold_down = "1h"
"#
    )
}

/// The kinds of every alert opened so far.
fn kinds(d: &Daemon<'_>) -> Vec<String> {
    d.history()
        .iter()
        .filter(|e| e["event"] == "open")
        .map(|e| e["alert"]["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_syn_flood_is_a_syn_alert_within_two_ticks_and_iperf3_of_its_byte_rate_is_none() {
    require(&["trafgen", "iperf3", "ethtool", "ping"]);
    let t = Topology::new();
    t.gen_ns.ip(&["addr", "add", "10.1.0.3/24", "dev", &t.g0]);
    let d = Daemon::start(&t.rtr, &config("syn_packets = \"2K\""));
    let mac = t.rtr.mac(&t.r0);
    // First a transfer of more bytes per second than the flood below
    // carries: connection set-up is a SYN or two, the rest is data.
    let mut server = crate::traffic::iperf3_server(&t.sink, "10.2.0.2");
    let out = t.gen_ns.exec_output(&[
        "iperf3", "-c", "10.2.0.2", "-p", "5201", "-B", "10.1.0.3", "-b", "40M", "-t", "3",
    ]);
    assert!(
        out.status.success(),
        "iperf3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.wait_for(Duration::from_secs(60)).is_some());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        kinds(&d).is_empty(),
        "no alert for a transfer: {:?}",
        kinds(&d)
    );
    // The transfer's tally of the victim's traffic ends a rate window
    // after its last busy tick: the flood's fingerprint starts afresh.
    std::thread::sleep(Duration::from_secs(6));

    // 60 000 SYNs from random sources to port 80: at the generator's pace
    // here (~50-200 kpps) the 5 s average passes 2 000 per second in the
    // first tick.
    let flood = format!(
        "{{ eth(da={mac}), ipv4(ttl=64, sa=drnd(), da=10.2.0.2), tcp(sp=drnd(), dp=80, seq=drnd(), syn), fill(0x00, 6) }}"
    );
    let started = now_ms();
    let t0 = Instant::now();
    trafgen(&t.gen_ns, &t.g0, 60_000, 10, &flood);
    eprintln!("SYN flood sent in {:?}", t0.elapsed());
    let a = wait_open(&d, "syn_in", "10.2.0.2");
    let late = a["start_ms"].as_u64().unwrap().saturating_sub(started);
    eprintln!("syn_in alert {late} ms after the flood started: {a}");
    assert!(late <= 2000, "alert {late} ms after the flood started");
    assert_eq!(a["unit"], "packets/s");
    assert!(a["value"].as_u64().unwrap() > 2000, "{a}");
    assert_eq!(a["window_secs"], 5);
    assert_eq!(
        a["evidence"]["sources"].as_array().map(Vec::len),
        Some(10),
        "{a}"
    );
    // Its fingerprint: TCP, all SYN, to port 80, from sources spread over
    // the whole address space.
    let fp = &a["evidence"]["fingerprint"];
    assert_eq!(fp["protocol"], "tcp", "{a}");
    assert!(fp["syn_share"].as_f64().unwrap() > 0.99, "{fp}");
    assert_eq!(fp["ports"][0]["proto"], "tcp", "{fp}");
    assert_eq!(fp["ports"][0]["port"], 80, "{fp}");
    assert!(fp["top_prefixes_share"].as_f64().unwrap() < 0.05, "{fp}");
    let line = wait_until(Duration::from_secs(5), || {
        d.out()
            .lines()
            .find(|l| {
                l.starts_with("EVENT=SYN_IN DST=10.2.0.2 PACKETS_PER_SEC=")
                    && l.contains("| PROTO=tcp SYN=1.00 PORTS=[80]")
            })
            .map(str::to_string)
    });
    assert!(line.is_some(), "log:\n{}", d.out());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(kinds(&d), ["syn_in"], "one flood, one alert");
}

#[test]
fn icmp_and_fragment_floods_raise_each_their_own_kind() {
    require(&["trafgen", "ethtool", "ping"]);
    let t = Topology::new();
    let d = Daemon::start(
        &t.rtr,
        &config("icmp_packets = \"1K\"\nfragment_packets = \"1K\""),
    );
    let mac = t.rtr.mac(&t.r0);
    let icmp = format!(
        "{{ eth(da={mac}), ipv4(ttl=64, sa=drnd(), da=10.2.0.2), icmpv4(echorequest, id=drnd(), seq=drnd()), fill(0x41, 56) }}"
    );
    trafgen(&t.gen_ns, &t.g0, 30_000, 10, &icmp);
    let a = wait_open(&d, "icmp_in", "10.2.0.2");
    assert!(a["value"].as_u64().unwrap() > 1000, "{a}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(kinds(&d), ["icmp_in"], "echo requests are no fragments");

    // First fragments (more fragments follow) of UDP datagrams toward .3.
    let frag = format!(
        "{{ eth(da={mac}), ipv4(ttl=64, sa=drnd(), da=10.2.0.3, id=drnd(), mf), udp(sp=drnd(), dp=53), fill(0x42, 200) }}"
    );
    trafgen(&t.gen_ns, &t.g0, 30_000, 10, &frag);
    let f = wait_open(&d, "fragments_in", "10.2.0.3");
    assert!(f["value"].as_u64().unwrap() > 1000, "{f}");
    std::thread::sleep(Duration::from_millis(1500));
    let mut k = kinds(&d);
    k.sort();
    assert_eq!(k, ["fragments_in", "icmp_in"], "{:?}", d.history());
    assert_eq!(opened_in_history(&d, "fragments_in"), 1);
}
