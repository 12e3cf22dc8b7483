//! The capture test set (`tests/captures/`): every file replayed, its
//! per-host counts equal to tshark's — outer headers as they are, or the
//! hosts inside a mirror's tunnel when decapsulating (`MANIFEST`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::daemon::BIN;
use crate::netns::{require, unique};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/captures")
}

struct Entry {
    file: String,
    overhead: u64,
    decapsulate: Option<String>,
    tunnel_ends: Vec<String>,
    tshark: Vec<String>,
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(dir().join("MANIFEST")).expect("MANIFEST");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 5, "MANIFEST line: {l}");
            let opt = |s: &str| (s != "-").then(|| s.to_string());
            Entry {
                file: f[0].into(),
                overhead: f[1].parse().expect("overhead"),
                decapsulate: opt(f[2]),
                tunnel_ends: opt(f[3])
                    .map(|s| s.split(',').map(String::from).collect())
                    .unwrap_or_default(),
                tshark: if f[4] == "-" {
                    Vec::new()
                } else {
                    f[4..].iter().map(|s| s.to_string()).collect()
                },
            }
        })
        .collect()
}

/// (Tx packets, Tx bytes, Rx packets, Rx bytes) per address.
type Counts = BTreeMap<String, [u64; 4]>;

fn tshark(file: &Path, opts: &[String], overhead: u64) -> Counts {
    let mut m = Counts::new();
    for table in ["ip", "ipv6"] {
        let out = Command::new("tshark")
            .args(opts)
            .arg("-r")
            .arg(file)
            .args(["-q", "-z", &format!("endpoints,{table}")])
            .stderr(Stdio::null())
            .output()
            .expect("tshark");
        assert!(out.status.success(), "tshark on {}", file.display());
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 7 && f[0].parse::<std::net::IpAddr>().is_ok() {
                let n = |i: usize| f[i].parse::<u64>().expect("a count");
                let (tp, rp) = (n(3), n(5));
                m.insert(
                    f[0].to_string(),
                    [tp, n(4) - overhead * tp, rp, n(6) - overhead * rp],
                );
            }
        }
    }
    m
}

fn ours(file: &Path, decapsulate: Option<&str>) -> (Counts, serde_json::Value) {
    let cfg = std::env::temp_dir().join(format!("{}.toml", unique("cap")));
    let mut text = String::from("[alerts]\nhistory_file = \"\"\n");
    if let Some(d) = decapsulate {
        text.push_str(&format!("[capture]\ndecapsulate = [\"{d}\"]\n"));
    }
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&cfg)
        .args(["replay", "--json", "--top", "0", "--no-progress"])
        .arg(file)
        .output()
        .expect("replay");
    let _ = std::fs::remove_file(&cfg);
    assert!(
        out.status.success(),
        "replay of {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let mut m = Counts::new();
    for h in v["hosts"].as_array().expect("hosts") {
        let n = |k: &str| h[k].as_u64().unwrap();
        m.insert(
            h["addr"].as_str().unwrap().to_string(),
            [
                n("sent_packets"),
                n("sent_bytes"),
                n("recv_packets"),
                n("recv_bytes"),
            ],
        );
    }
    (m, v)
}

#[test]
fn every_capture_of_the_set_counts_as_tshark_does() {
    require(&["tshark"]);
    let entries = manifest();
    assert!(entries.len() >= 20, "the set is in tests/captures/MANIFEST");
    let mut failures = Vec::new();
    for e in &entries {
        let path = dir().join(&e.file);
        assert!(path.exists(), "{} is listed but missing", e.file);
        let mut want = tshark(&path, &e.tshark, e.overhead);
        for end in &e.tunnel_ends {
            assert!(
                want.remove(end).is_some(),
                "{}: tshark does not see the tunnel end {end}",
                e.file
            );
        }
        assert!(!want.is_empty(), "{}: tshark counted nothing", e.file);
        let (got, summary) = ours(&path, e.decapsulate.as_deref());
        if got != want {
            failures.push(format!(
                "{} (decapsulate {:?}):\n  tshark {want:?}\n  ours   {got:?}\n  non-IP {} parse errors {}",
                e.file, e.decapsulate, summary["non_ip"], summary["parse_errors"]
            ));
        }
        if e.decapsulate.is_some() {
            let tunnel = summary["tunnel_packets"].as_u64().unwrap_or(0);
            let packets: u64 = got.values().map(|c| c[0]).sum();
            assert_eq!(
                tunnel, packets,
                "{}: one tunnel packet per inner one",
                e.file
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Files every reader reads: nothing in the set is rejected or leaves
/// packets uncounted for want of a parser.
#[test]
fn nothing_in_the_set_is_rejected() {
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let (_, v) = ours(&path, None);
        for f in v["files"].as_array().unwrap() {
            assert_eq!(f["unknown_link"], serde_json::json!({}), "{name}: {f}");
        }
        assert!(v["ip_packets"].as_u64().unwrap() > 0, "{name}");
    }
}
