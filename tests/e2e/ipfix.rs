//! IPFIX export into the collectors operators run: nfdump's nfcapd and
//! pmacct's nfacctd (print plugin) get the flows of known UDP traffic and
//! of an iperf3 transfer, and their per-host byte and packet totals are
//! the daemon's own, exactly; each record names the interface its frames
//! came in on.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::netns::{Topology, require, unique, wait_until};
use crate::traffic::{trafgen, udp4};

/// (bytes, packets) per source address.
type Totals = HashMap<String, (u64, u64)>;

fn nfdump(dir: &str) -> Totals {
    let out = std::process::Command::new("nfdump")
        .args([
            "-R",
            dir,
            "-q",
            "-N",
            "-A",
            "srcip",
            "-o",
            "fmt:%sa %byt %pkt",
        ])
        .output()
        .expect("nfdump");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut t = Totals::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [ip, b, p] = f[..]
            && let (Ok(b), Ok(p)) = (b.parse::<u64>(), p.parse::<u64>())
        {
            let e = t.entry(ip.to_string()).or_default();
            e.0 += b;
            e.1 += p;
        }
    }
    t
}

/// The input interfaces (ingressInterface) of each source's records.
fn nfdump_inputs(dir: &str) -> HashMap<String, std::collections::BTreeSet<u32>> {
    let out = std::process::Command::new("nfdump")
        .args(["-R", dir, "-q", "-N", "-o", "fmt:%sa %in"])
        .output()
        .expect("nfdump");
    let mut t: HashMap<String, std::collections::BTreeSet<u32>> = HashMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let [ip, i] = l.split_whitespace().collect::<Vec<_>>()[..]
            && let Ok(i) = i.parse()
        {
            t.entry(ip.to_string()).or_default().insert(i);
        }
    }
    t
}

/// pmacct's print plugin output (csv, appended every refresh).
fn nfacctd(file: &str) -> Totals {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut t = Totals::new();
    let mut cols: Option<(usize, usize, usize)> = None;
    for l in text.lines() {
        let f: Vec<&str> = l.split(',').collect();
        if f.contains(&"SRC_IP") {
            let at = |n: &str| f.iter().position(|x| *x == n);
            cols = at("SRC_IP")
                .zip(at("PACKETS"))
                .zip(at("BYTES"))
                .map(|((a, b), c)| (a, b, c));
            continue;
        }
        let Some((ip, p, b)) = cols else { continue };
        if let (Some(ip), Some(Ok(p)), Some(Ok(b))) = (
            f.get(ip),
            f.get(p).map(|x| x.parse::<u64>()),
            f.get(b).map(|x| x.parse::<u64>()),
        ) {
            let e = t.entry(ip.to_string()).or_default();
            e.0 += b;
            e.1 += p;
        }
    }
    t
}

#[test]
fn nfdump_and_pmacct_totals_equal_ours_for_udp_and_iperf3() {
    require(&[
        "nfcapd", "nfdump", "nfacctd", "trafgen", "iperf3", "ethtool",
    ]);
    let t = Topology::new();
    let dir = std::env::temp_dir().join(unique("ipfix"));
    let nfdir = dir.join("nfcapd");
    std::fs::create_dir_all(&nfdir).unwrap();
    let d_s = dir.to_string_lossy().into_owned();
    let nf_s = nfdir.to_string_lossy().into_owned();
    let mut nfcapd = t.rtr.spawn(
        &[
            "nfcapd",
            "-w",
            &nf_s,
            "-b",
            "127.0.0.1",
            "-p",
            "4739",
            "-t",
            "3600",
        ],
        Stdio::null(),
        Stdio::null(),
    );
    let pm_out = format!("{d_s}/pmacct.csv");
    std::fs::write(
        dir.join("nfacctd.conf"),
        format!(
            "daemonize: false\nnfacctd_ip: 127.0.0.1\nnfacctd_port: 4740\nplugins: print[p]\n\
             aggregate[p]: src_host\nprint_output[p]: csv\nprint_output_file[p]: {pm_out}\n\
             print_output_file_append[p]: true\nprint_refresh_time[p]: 1\n"
        ),
    )
    .unwrap();
    let mut pmacct = t.rtr.spawn(
        &["nfacctd", "-f", &format!("{d_s}/nfacctd.conf")],
        Stdio::null(),
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_secs(1));
    let d = Daemon::start(
        &t.rtr,
        r#"
[traffic]
interval = "1h"
byte_limit = "1T"
[export.ipfix]
collectors = ["127.0.0.1:4739", "127.0.0.1:4740"]
observation_domain = 42
template_refresh = "2s"
"#,
    );

    // Known UDP: 5 000 packets of 700 bytes from 10.1.0.5.
    let mac = t.rtr.mac(&t.r0);
    trafgen(
        &t.gen_ns,
        &t.g0,
        5000,
        20,
        &udp4(&mac, "10.1.0.5", "10.2.0.2", 700),
    );
    // An iperf3 transfer from 10.1.0.3 (and its acknowledgements back).
    t.gen_ns.ip(&["addr", "add", "10.1.0.3/24", "dev", &t.g0]);
    let mut server = crate::traffic::iperf3_server(&t.sink, "10.2.0.2");
    let out = t.gen_ns.exec_output(&[
        "iperf3", "-c", "10.2.0.2", "-p", "5201", "-B", "10.1.0.3", "-b", "20M", "-t", "2",
    ]);
    assert!(
        out.status.success(),
        "iperf3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.wait_for(Duration::from_secs(30)).is_some());

    let ours = |ip: &str| {
        let h = d.json(&format!("/api/v1/hosts/{ip}"));
        (
            h["host"]["sent_bytes"].as_u64().unwrap_or(0),
            h["host"]["sent_packets"].as_u64().unwrap_or(0),
        )
    };
    let hosts = ["10.1.0.5", "10.1.0.3", "10.2.0.2"];
    // Settled: three ticks without change, so the last records went out.
    let mut last = Vec::new();
    let settled = wait_until(Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_secs(2));
        let now: Vec<(u64, u64)> = hosts.iter().map(|h| ours(h)).collect();
        let same = now == last;
        last = now.clone();
        same.then_some(now)
    })
    .expect("counts settle");
    assert_eq!(settled[0], (5000 * 700, 5000), "the known UDP");
    std::thread::sleep(Duration::from_secs(3));
    let status = d.json("/api/v1/status");
    let metrics = d.get("/metrics").1;
    assert!(
        metrics.contains("trafficalerted_ipfix_total{what=\"records\"}")
            && metrics.contains("trafficalerted_ipfix_total{what=\"dropped_ticks\"} 0"),
        "metrics"
    );
    d.stop();
    nfcapd.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(
        nfcapd.wait_for(Duration::from_secs(10)).is_some(),
        "nfcapd stops"
    );
    pmacct.signal(nix::sys::signal::Signal::SIGTERM);
    let _ = pmacct.wait_for(Duration::from_secs(10));

    let nf = nfdump(&nf_s);
    // Each record names the interface its pair's frames came in on: the
    // UDP and iperf3's data on r0, iperf3's acknowledgements on r1.
    let ifindex = |dev: &str| -> u32 {
        let out = t
            .rtr
            .exec_output(&["cat", &format!("/sys/class/net/{dev}/ifindex")]);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (r0, r1) = (ifindex(&t.r0), ifindex(&t.r1));
    let inputs = nfdump_inputs(&nf_s);
    eprintln!("input interfaces {inputs:?} (r0 {r0}, r1 {r1})");
    for (h, i) in [("10.1.0.5", r0), ("10.1.0.3", r0), ("10.2.0.2", r1)] {
        assert_eq!(
            inputs.get(h),
            Some(&std::collections::BTreeSet::from([i])),
            "ingressInterface of {h}'s records"
        );
    }
    let pm = nfacctd(&pm_out);
    eprintln!("ours {settled:?}\nnfdump {nf:?}\npmacct {pm:?}\nstatus {status}");
    for (h, o) in hosts.iter().zip(&settled) {
        assert_eq!(nf.get(*h), Some(o), "nfdump's totals for {h}");
        assert_eq!(pm.get(*h), Some(o), "pmacct's totals for {h}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
