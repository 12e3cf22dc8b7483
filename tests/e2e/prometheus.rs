//! A real Prometheus server (Debian's package) scrapes `/metrics` with the
//! bearer token, and its queries return what the daemon counted.

use std::process::Stdio;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::netns::{Topology, require, unique, wait_until};
use crate::traffic::{trafgen, udp4};

const PROM: &str = "127.0.0.1:19090";

#[test]
fn prometheus_scrapes_the_metrics_with_the_token() {
    require(&["prometheus", "trafgen", "ethtool"]);
    let t = Topology::new();
    let d = Daemon::start(
        &t.rtr,
        "[traffic]\ninterval = \"1h\"\nchart_min_bytes = 1\n[http.auth]\nbearer_token = \"scrape-me\"\n",
    );
    let mac = t.rtr.mac(&t.r0);
    trafgen(
        &t.gen_ns,
        &t.g0,
        1_000,
        20,
        &udp4(&mac, "10.1.0.55", "10.2.0.2", 1000),
    );

    let dir = std::env::temp_dir().join(unique("prom"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: trafficalerted\n    authorization:\n      credentials: scrape-me\n    static_configs:\n      - targets: ['127.0.0.1:8698']\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let _prom = t.rtr.spawn(
        &[
            "prometheus",
            &format!("--config.file={}", cfg.display()),
            &format!("--storage.tsdb.path={}", dir.join("data").display()),
            &format!("--web.listen-address={PROM}"),
        ],
        Stdio::null(),
        Stdio::from(log),
    );
    let query = |q: &str| -> Option<f64> {
        let path = format!("/api/v1/query?query={}", encode(q));
        let r = t.rtr.http(PROM, "GET", &path, &[], None);
        if r.status != 200 {
            return None;
        }
        let v = r.json();
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let bytes = wait_until(Duration::from_secs(60), || {
        if !t.rtr.tcp_open(PROM) {
            return None;
        }
        query("trafficalerted_host_sent_bytes{host=\"10.1.0.55\"}").filter(|&b| b >= 1e6)
    });
    let prom_log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert_eq!(
        bytes,
        Some(1e6),
        "Prometheus did not get the host's bytes; its log:\n{prom_log}\ndaemon log:\n{}",
        d.log()
    );
    assert_eq!(query("up{job=\"trafficalerted\"}"), Some(1.0));
    let packets = query(&format!(
        "trafficalerted_interface_ip_packets_total{{interface=\"{}\"}}",
        t.r0
    ))
    .unwrap_or(0.0);
    assert!(packets >= 1000.0, "{packets}");
    let targets = t.rtr.http(PROM, "GET", "/api/v1/targets", &[], None).json();
    let target = &targets["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{targets}");
    assert_eq!(target["lastError"], "");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
