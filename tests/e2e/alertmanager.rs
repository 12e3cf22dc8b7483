//! Alertmanager as the fleet's alert engine, by its client conventions:
//! two boxes that see the same flood, given the same `instance`, make one
//! alert in a real Alertmanager; open alerts are sent again every
//! `resend` with their end a few re-sends ahead; a box that dies has its
//! alert resolved that long after, not a day later.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::alerts::wait_open;
use crate::daemon::Daemon;
use crate::netns::{Topology, require, unique, wait_until};
use crate::traffic::{spoofed_udp4, trafgen};

const AM: &str = "10.2.0.1:9093";

fn config() -> String {
    format!(
        r#"
[traffic]
byte_limit = "1T"
[inbound]
enabled = false
[rates]
window = "1s"
[rates.in]
udp_packets = "2K"
[alerts]
hold_down = "1h"
[alerts.webhook]
url = "http://{AM}/api/v2/alerts"
format = "alertmanager"
resend = "2s"
instance = "edge-pair"
[[rule]]
name = "servers"
networks = ["10.2.0.0/24"]
labels = {{ team = "noc", site = "lab" }}
"#
    )
}

/// Alertmanager's active alerts.
fn active(t: &Topology) -> Vec<Value> {
    let (status, body) = t.rtr.http_get(AM, "/api/v2/alerts?active=true");
    if status != 200 {
        return Vec::new();
    }
    serde_json::from_str::<Vec<Value>>(&body).unwrap_or_default()
}

#[test]
fn two_boxes_make_one_alert_kept_alive_by_resends_and_resolved_soon_after_they_die() {
    require(&["prometheus-alertmanager", "trafgen", "ethtool"]);
    let t = Topology::new();
    let dir = std::env::temp_dir().join(unique("am"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("am.yml");
    std::fs::write(
        &conf,
        "route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("am.log")).unwrap();
    let _am = t.rtr.spawn(
        &[
            "prometheus-alertmanager",
            &format!("--config.file={}", conf.display()),
            &format!("--storage.path={}", dir.display()),
            &format!("--web.listen-address={AM}"),
            "--cluster.listen-address=",
        ],
        Stdio::from(log.try_clone().unwrap()),
        Stdio::from(log),
    );
    wait_until(Duration::from_secs(20), || {
        (t.rtr.tcp_open(AM) && t.rtr.http_get(AM, "/-/ready").0 == 200).then_some(())
    })
    .expect("alertmanager ready");

    // Box A is the router, box B the sink: both see the flood to 10.2.0.2.
    let a = Daemon::start(&t.rtr, &config());
    let b = Daemon::start(&t.sink, &config());
    let mac = t.rtr.mac(&t.r0);
    let flood = spoofed_udp4(&mac, "10.2.0.2", 53, 68);
    trafgen(&t.gen_ns, &t.g0, 30_000, 50, &flood);
    wait_open(&a, "udp_in", "10.2.0.2");
    wait_open(&b, "udp_in", "10.2.0.2");

    let one = wait_until(Duration::from_secs(10), || {
        let v = active(&t);
        (!v.is_empty()).then_some(v)
    })
    .expect("the alert in Alertmanager");
    assert_eq!(one.len(), 1, "one alert from the pair: {one:?}");
    let l = &one[0]["labels"];
    assert_eq!(l["alertname"], "trafficalerted_udp_in");
    assert_eq!(l["subject"], "10.2.0.2");
    assert_eq!(l["instance"], "edge-pair");
    assert_eq!(
        (l["team"].as_str(), l["site"].as_str()),
        (Some("noc"), Some("lab"))
    );
    assert_eq!(l["rule"], "servers");

    // Re-sent: its end keeps moving, never more than 4 re-sends (8 s) out.
    let ends = |v: &Value| {
        humantime::parse_rfc3339(v["endsAt"].as_str().unwrap())
            .unwrap()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
    };
    let first_end = one[0]["endsAt"].as_str().unwrap().to_string();
    assert!(
        ends(&one[0]) <= Duration::from_secs(9),
        "endsAt {first_end}"
    );
    let moved = wait_until(Duration::from_secs(8), || {
        let v = active(&t);
        let e = v.first()?["endsAt"].as_str()?.to_string();
        (e != first_end).then_some(e)
    });
    assert!(moved.is_some(), "open alert not sent again");

    // Both boxes die without a word: resolved within 4 re-sends.
    a.signal(nix::sys::signal::Signal::SIGKILL);
    b.signal(nix::sys::signal::Signal::SIGKILL);
    let died = Instant::now();
    let gone = wait_until(Duration::from_secs(20), || {
        active(&t).is_empty().then(|| died.elapsed())
    });
    let Some(gone) = gone else {
        panic!("still firing 20 s after both boxes died: {:?}", active(&t));
    };
    eprintln!("resolved {gone:?} after both boxes died");
    assert!(gone <= Duration::from_secs(10), "resolved after {gone:?}");
    drop(a);
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
