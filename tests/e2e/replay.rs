//! `trafficalerted replay` against the truth: a capture made with tcpdump
//! in the router namespace while real tools talk through it (iperf3, nmap,
//! a web server and curl, DNS queries to dnsmasq) is replayed; its per-host
//! totals must equal tshark's endpoints, and its alerts the alerts the live
//! daemon raised for the same traffic at the same time.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{BIN, Daemon};
use crate::netns::{Topology, require, unique, wait_until};

const CONFIG: &str = r#"
[traffic]
interval = "30s"
byte_limit = "5M"
chart_min_bytes = 1
[scan]
max_contacted_ips = 15
max_contacted_ports = 100
port_interval = "60s"
[alerts]
hold_down = "1h"
"#;

/// (Tx packets, Tx bytes, Rx packets, Rx bytes) per IPv4 address, from
/// `tshark -q -z endpoints,ip`.
fn tshark_endpoints(file: &str) -> BTreeMap<String, [u64; 4]> {
    let out = Command::new("tshark")
        .args(["-r", file, "-q", "-z", "endpoints,ip"])
        .stderr(Stdio::null())
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 7 && f[0].parse::<std::net::Ipv4Addr>().is_ok() {
            let n = |i: usize| f[i].parse::<u64>().expect("a count");
            m.insert(f[0].to_string(), [n(3), n(4), n(5), n(6)]);
        }
    }
    assert!(!m.is_empty(), "no endpoints from tshark:\n{text}");
    m
}

/// Bytes of link header in front of the IP header, from the pcap file's
/// link type (tcpdump writes little-endian pcap on this machine).
fn link_header_len(file: &str) -> u64 {
    let head = std::fs::read(file).expect("capture");
    let linktype = u32::from_le_bytes([head[20], head[21], head[22], head[23]]);
    match linktype {
        1 => 14,   // Ethernet
        113 => 16, // Linux cooked v1
        276 => 20, // Linux cooked v2
        other => panic!("unexpected link type {other} in {file}"),
    }
}

fn kinds(alerts: &[Value]) -> BTreeSet<(String, String)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_string(),
                a["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn replay_matches_tshark_and_the_live_daemon() {
    require(&[
        "tcpdump", "tshark", "iperf3", "nmap", "curl", "dig", "dnsmasq", "python3", "gzip",
    ]);
    let t = Topology::new();
    let d = Daemon::start(&t.rtr, CONFIG);
    let dir = std::env::temp_dir().join(unique("replay"));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("capture.pcap");
    let pcap_s = pcap.to_string_lossy().into_owned();

    // The same ingress traffic the daemon watches: both router interfaces,
    // incoming only, without the test's own API calls on loopback.
    let mut dump = t.rtr.spawn(
        &[
            "tcpdump",
            "-i",
            "any",
            "-Q",
            "in",
            "-n",
            "-s",
            "262144",
            "-U",
            "-w",
            &pcap_s,
            "not net 127.0.0.0/8 and not ip6 host ::1",
        ],
        Stdio::null(),
        Stdio::null(),
    );
    wait_until(Duration::from_secs(10), || {
        std::fs::metadata(&pcap)
            .ok()
            .filter(|m| m.len() > 0)
            .map(|_| ())
    })
    .expect("tcpdump writes its file");

    let _web = t.sink.spawn(
        &["python3", "-m", "http.server", "--bind", "10.2.0.2", "8080"],
        Stdio::null(),
        Stdio::null(),
    );
    let _dns = t.sink.spawn(
        &[
            "dnsmasq",
            "-k",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--listen-address=10.2.0.2",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            "--address=/example.test/10.2.0.2",
        ],
        Stdio::null(),
        Stdio::null(),
    );
    let _iperf = t
        .sink
        .spawn(&["iperf3", "-s", "-1"], Stdio::null(), Stdio::null());
    wait_until(Duration::from_secs(10), || {
        (t.sink.listening(8080) && t.sink.listening(5201)).then_some(())
    })
    .expect("web and iperf3 servers listen");

    for _ in 0..5 {
        let out =
            t.gen_ns
                .exec_output(&["curl", "-sf", "-o", "/dev/null", "http://10.2.0.2:8080/"]);
        assert!(out.status.success(), "curl");
        let out = t.gen_ns.exec_output(&[
            "dig",
            "+short",
            "+tries=1",
            "+time=2",
            "@10.2.0.2",
            "example.test",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "10.2.0.2",
            "DNS answer"
        );
    }
    let out = t
        .gen_ns
        .exec_output(&["iperf3", "-c", "10.2.0.2", "-n", "20M", "-b", "200M", "-J"]);
    assert!(out.status.success(), "iperf3");
    let out = t
        .gen_ns
        .exec_output(&["nmap", "-n", "-sn", "-T5", "10.2.0.0/24"]);
    assert!(out.status.success(), "nmap -sn");
    let out = t
        .gen_ns
        .exec_output(&["nmap", "-n", "-sS", "-T5", "-p1-2000", "10.2.0.2"]);
    assert!(out.status.success(), "nmap -sS");

    // The live daemon's alerts (hold-down 1h: none closes during the test).
    let live = wait_until(Duration::from_secs(20), || {
        let open = d.json("/api/v1/alerts")["open"].as_array()?.clone();
        (kinds(&open).len() >= 3).then_some(open)
    })
    .unwrap_or_else(|| panic!("live alerts: {}\n{}", d.json("/api/v1/alerts"), d.log()));
    std::thread::sleep(Duration::from_secs(2));
    dump.signal(nix::sys::signal::Signal::SIGINT);
    assert!(
        dump.wait_for(Duration::from_secs(10)).is_some(),
        "tcpdump stops"
    );

    // Replay with the same config.
    let cfg = dir.join("ta.toml");
    std::fs::write(
        &cfg,
        format!("{CONFIG}\nhistory_file = \"\"\n").replace("[alerts]\n", "[alerts]\n"),
    )
    .unwrap();
    let cfg_s = cfg.to_string_lossy().into_owned();
    let replay = |input: &str, stdin: Option<&[u8]>| -> Value {
        let mut c = Command::new(BIN);
        c.args(["-c", &cfg_s, "replay", "--json", "--top", "0", input])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = c.spawn().expect("replay");
        if let Some(bytes) = stdin {
            use std::io::Write;
            let mut i = child.stdin.take().unwrap();
            i.write_all(bytes).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "replay {input}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("summary JSON")
    };
    let s = replay(&pcap_s, None);

    // Per-host totals equal tshark's endpoints: packets exactly, bytes at
    // layer 3 (tshark counts frames; the link header is taken off).
    let truth = tshark_endpoints(&pcap_s);
    let hdr = link_header_len(&pcap_s);
    let ours: BTreeMap<String, [u64; 4]> = s["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| {
            h["addr"]
                .as_str()
                .unwrap()
                .parse::<std::net::Ipv4Addr>()
                .is_ok()
        })
        .map(|h| {
            (
                h["addr"].as_str().unwrap().to_string(),
                [
                    h["sent_packets"].as_u64().unwrap(),
                    h["sent_bytes"].as_u64().unwrap(),
                    h["recv_packets"].as_u64().unwrap(),
                    h["recv_bytes"].as_u64().unwrap(),
                ],
            )
        })
        .collect();
    let want: BTreeMap<String, [u64; 4]> = truth
        .iter()
        .map(|(a, [tp, tb, rp, rb])| (a.clone(), [*tp, tb - tp * hdr, *rp, rb - rp * hdr]))
        .collect();
    assert_eq!(
        ours, want,
        "per-host totals (tx packets, tx bytes, rx packets, rx bytes)"
    );
    assert!(
        want["10.1.0.2"][1] > 20_000_000,
        "the iperf3 transfer is in it: {:?} (live: {})",
        want["10.1.0.2"],
        d.json("/api/v1/hosts/10.1.0.2")
    );
    assert!(
        want.len() > 200,
        "nmap's sweep is in it: {} hosts",
        want.len()
    );

    // The same alerts as live.
    let replayed = s["alerts"].as_array().unwrap();
    assert_eq!(kinds(replayed), kinds(&live), "replay vs live alerts");
    assert_eq!(
        kinds(&live),
        BTreeSet::from([
            ("address_scan".to_string(), "10.1.0.2".to_string()),
            ("port_scan".to_string(), "10.1.0.2".to_string()),
            ("traffic".to_string(), "10.1.0.2".to_string()),
        ])
    );
    assert_eq!(s["parse_errors"], serde_json::json!({}));

    // The same file compressed, and from standard input, and as pcapng.
    let gz = Command::new("gzip")
        .args(["-k", "-1", &pcap_s])
        .status()
        .unwrap();
    assert!(gz.success());
    let g = replay(&format!("{pcap_s}.gz"), None);
    assert_eq!(g["hosts"], s["hosts"]);
    assert_eq!(g["files"][0]["compression"], "gzip");
    let bytes = std::fs::read(&pcap).unwrap();
    let i = replay("-", Some(&bytes));
    assert_eq!(i["hosts"], s["hosts"]);
    let ng = dir.join("capture.pcapng");
    let ng_s = ng.to_string_lossy().into_owned();
    let st = Command::new("tshark")
        .args(["-r", &pcap_s, "-F", "pcapng", "-w", &ng_s])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let n = replay(&ng_s, None);
    assert_eq!(n["hosts"], s["hosts"]);
    assert_eq!(kinds(n["alerts"].as_array().unwrap()), kinds(replayed));

    // --alerts-only: the alert lines, as the live daemon wrote them.
    let out = Command::new(BIN)
        .args(["-c", &cfg_s, "replay", "--alerts-only", &pcap_s])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("EVENT=TRAFFIC SRC=10.1.0.2")),
        "{text}"
    );
    assert!(
        text.lines().all(|l| l.starts_with("EVENT=")),
        "alert lines only: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pcap of UDP frames from 10.7.0.1, one every 100 ms for `secs`.
fn paced_capture(secs: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    frame.extend_from_slice(&[
        0x45, 0, 0, 100, 0, 1, 0, 0, 64, 17, 0, 0, 10, 7, 0, 1, 10, 7, 0, 2,
    ]);
    frame.extend_from_slice(&[0x9c, 0x40, 0, 9, 0, 80, 0, 0]);
    frame.resize(114, 0x41);
    for i in 0..secs * 10 {
        let us = 1_700_000_000_000_000u64 + i * 100_000;
        for v in [(us / 1_000_000) as u32, (us % 1_000_000) as u32, 114, 114] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&frame);
    }
    out
}

#[test]
fn realtime_replay_serves_the_api_while_it_plays() {
    require(&[]);
    let ns = crate::netns::Netns::new("rt");
    let dir = std::env::temp_dir().join(unique("rt"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("paced.pcap");
    std::fs::write(&file, paced_capture(4)).unwrap();
    let file_s = file.to_string_lossy().into_owned();
    let started = std::time::Instant::now();
    let mut p = ns.spawn(
        &[
            BIN,
            "replay",
            "--speed",
            "realtime",
            "--no-progress",
            &file_s,
        ],
        Stdio::null(),
        Stdio::null(),
    );
    // While it plays: the API answers from the replay's snapshots.
    let seen = wait_until(Duration::from_secs(10), || {
        if !ns.tcp_open(crate::daemon::API) {
            return None;
        }
        let (status, body) = ns.http_get(crate::daemon::API, "/api/v1/hosts/10.7.0.1");
        (status == 200).then(|| serde_json::from_str::<Value>(&body).unwrap())
    })
    .expect("the API answers during a real-time replay");
    assert!(
        seen["host"]["sent_packets"].as_u64().unwrap() >= 1,
        "{seen}"
    );
    let status: Value =
        serde_json::from_str(&ns.http_get(crate::daemon::API, "/api/v1/status").1).unwrap();
    assert_eq!(status["runtime"]["source"], "replay");
    // Without --history the replay keeps no history, and does not show the
    // live daemon's.
    let (code, body) = ns.http_get(crate::daemon::API, "/api/v1/alerts/history");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no history"), "{body}");
    assert!(
        p.wait_for(Duration::from_secs(15)).is_some(),
        "the replay ends"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(3500),
        "paced by the timestamps: 4 s of capture took {took:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real-time replay open beyond loopback without credentials says so,
/// and a SIGHUP does not end it (it has nothing to reload).
#[test]
fn realtime_replay_warns_when_exposed_and_survives_a_sighup() {
    require(&[]);
    let ns = crate::netns::Netns::new("rt");
    let dir = std::env::temp_dir().join(unique("rt"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("paced.pcap");
    std::fs::write(&file, paced_capture(3)).unwrap();
    let cfg = dir.join("open.toml");
    std::fs::write(
        &cfg,
        "[http]\nlisten = [\"0.0.0.0:8698\"]\n[alerts]\nhistory_file = \"\"\n",
    )
    .unwrap();
    let log = dir.join("log");
    let (file_s, cfg_s) = (
        file.to_string_lossy().into_owned(),
        cfg.to_string_lossy().into_owned(),
    );
    let mut p = ns.spawn(
        &[
            BIN,
            "-c",
            &cfg_s,
            "replay",
            "--speed",
            "realtime",
            "--no-progress",
            &file_s,
        ],
        Stdio::null(),
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let up = wait_until(Duration::from_secs(10), || {
        ns.tcp_open(crate::daemon::API).then_some(())
    });
    assert!(up.is_some(), "the replay's API comes up");
    p.signal(nix::sys::signal::Signal::SIGHUP);
    let code = p.wait_for(Duration::from_secs(15));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        code,
        Some(0),
        "the replay ends normally after SIGHUP: {text}"
    );
    assert!(text.contains("no access control"), "{text}");
    assert!(text.contains("SIGHUP: a replay keeps"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
