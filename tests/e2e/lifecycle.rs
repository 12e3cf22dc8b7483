//! The daemon's alert life across restarts and reloads, the exec sink, and
//! configs of the original TrafficAlerted.

use std::time::Duration;

use crate::daemon::{BIN, Daemon};
use crate::netns::{Topology, require, unique, wait_until};
use crate::traffic::{trafgen, udp4};

const BASE: &str = r#"
[traffic]
interval = "30s"
byte_limit = "BYTE_LIMIT"
chart_min_bytes = 1
[alerts]
hold_down = "1h"
HISTORY
"#;

fn config(byte_limit: &str, history: &std::path::Path) -> String {
    BASE.replace("BYTE_LIMIT", byte_limit).replace(
        "HISTORY",
        &format!("history_file = {:?}", history.to_string_lossy()),
    )
}

/// 4 MB from 10.1.0.66 through the router.
fn burst(t: &Topology) {
    let mac = t.rtr.mac(&t.r0);
    trafgen(
        &t.gen_ns,
        &t.g0,
        4000,
        10,
        &udp4(&mac, "10.1.0.66", "10.2.0.2", 1000),
    );
}

fn open_ids(d: &Daemon<'_>) -> Vec<u64> {
    d.json("/api/v1/alerts")["open"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_u64()).collect())
        .unwrap_or_default()
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("l"));
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn open_alerts_and_history_survive_a_restart() {
    require(&["trafgen", "ethtool", "ping"]);
    let t = Topology::new();
    let dir = temp_dir();
    let history = dir.join("alerts.jsonl");
    let cfg = config("1M", &history);
    let d = Daemon::start(&t.rtr, &cfg);
    burst(&t);
    let ids = wait_until(Duration::from_secs(10), || {
        Some(open_ids(&d)).filter(|v| !v.is_empty())
    })
    .expect("a traffic alert");
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));

    let d = Daemon::start(&t.rtr, &cfg);
    assert!(
        d.log().contains("were open when the daemon last stopped"),
        "{}",
        d.log()
    );
    let again = wait_until(Duration::from_secs(5), || {
        Some(open_ids(&d)).filter(|v| !v.is_empty())
    });
    assert_eq!(again, Some(ids), "the same alert, still open");
    let active = d.json("/active");
    assert_eq!(active[0]["SourceIP"], "10.1.0.66", "{active}");
    assert_eq!(active[0]["EventType"], "TRAFFIC");
    // Not announced a second time.
    let opens = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""event":"open""#))
        .count();
    assert_eq!(opens, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_history_line_is_skipped_with_a_warning() {
    require(&["ping"]);
    let t = Topology::new();
    let dir = temp_dir();
    let history = dir.join("alerts.jsonl");
    let alert = r#"{"event":"open","alert":{"id":41,"kind":"port_scan","subject":"10.1.0.9","rule":"default","start_ms":1,"last_update_ms":2,"end_ms":null,"value":500,"peak":500,"threshold":100,"unit":"ports","window_secs":600,"degraded":false,"drop_ratio":0.0,"evidence":{}}}"#;
    std::fs::write(
        &history,
        format!("{alert}\n{{\"event\":\"close\",\"alert\":{{\"id\":41,\"ki"),
    )
    .unwrap();
    let d = Daemon::start(&t.rtr, &config("1M", &history));
    assert!(d.log().contains("cut short"), "{}", d.log());
    let restored = wait_until(Duration::from_secs(5), || {
        Some(open_ids(&d)).filter(|v| !v.is_empty())
    });
    assert_eq!(restored, Some(vec![41]));
    // New alerts are numbered after the ones in the history, on a line of
    // their own.
    burst(&t);
    let ids = wait_until(Duration::from_secs(10), || {
        Some(open_ids(&d)).filter(|v| v.len() == 2)
    })
    .expect("a second alert");
    assert_eq!(ids, vec![41, 42]);
    let text = std::fs::read_to_string(&history).unwrap();
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_applies_a_valid_config_and_keeps_the_old_one_otherwise() {
    require(&["trafgen", "ethtool", "ping"]);
    let t = Topology::new();
    let dir = temp_dir();
    let history = dir.join("alerts.jsonl");
    let d = Daemon::start(&t.rtr, &config("100M", &history));
    burst(&t);
    let counted = d.settle(4_000_000, |d| d.source_bytes("10.1.0.66"));
    assert_eq!(counted, 4_000_000);
    assert!(open_ids(&d).is_empty(), "4 MB is below 100 MB");

    // An invalid file: refused, the running config stays.
    let cfg_path = d.dir().join("trafficalerted.toml");
    std::fs::write(&cfg_path, "[traffic]\nbyte_limit = \"lots\"\n").unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let refused = wait_until(Duration::from_secs(5), || {
        d.log().contains("reload refused").then_some(())
    });
    assert!(refused.is_some(), "{}", d.log());
    assert!(d.log().contains("traffic.byte_limit"), "{}", d.log());
    assert_eq!(d.json("/capabilities")["ByteLimit"], 100_000_000u64);

    // A valid one: the counts are kept, the new limit applies at once.
    std::fs::write(&cfg_path, config("1M", &history)).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let ids = wait_until(Duration::from_secs(10), || {
        Some(open_ids(&d)).filter(|v| !v.is_empty())
    });
    assert!(
        ids.is_some(),
        "the 4 MB already counted is over the new 1 MB limit; log:\n{}",
        d.log()
    );
    assert_eq!(
        d.source_bytes("10.1.0.66"),
        4_000_000,
        "counts survive the reload"
    );
    assert_eq!(d.json("/capabilities")["ByteLimit"], 1_000_000u64);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exec_sink_runs_the_program_with_the_alert() {
    require(&["trafgen", "ethtool", "ping"]);
    let t = Topology::new();
    let dir = temp_dir();
    let history = dir.join("alerts.jsonl");
    let cfg = format!(
        "{}\n[alerts.exec]\ncommand = [\"/bin/sh\", \"-c\", \"cat > \\\"$0/exec-$TA_KIND-$TA_EVENT-$TA_SUBJECT.json\\\"\", {:?}]\n",
        config("1M", &history),
        dir.to_string_lossy()
    );
    let d = Daemon::start(&t.rtr, &cfg);
    burst(&t);
    let file = dir.join("exec-traffic-open-10.1.0.66.json");
    let found = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|s| !s.is_empty())
    });
    let body =
        found.unwrap_or_else(|| panic!("no exec output in {}; log:\n{}", dir.display(), d.log()));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["event"], "open");
    assert_eq!(v["alert"]["subject"], "10.1.0.66");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_original_trafficalerted_conf_runs_with_a_warning() {
    require(&["ping"]);
    let t = Topology::new();
    let dir = temp_dir();
    let conf = dir.join("TrafficAlerted.conf");
    std::fs::write(
        &conf,
        "TrafficInterval: 120\nByteLimit: 2M\nChartMinBytes: 1\nExcludedInterfaces: \"lo\"\nNumberContactedIPs: 20\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = t.rtr.spawn(
        &[BIN, "-c", &conf.to_string_lossy()],
        std::process::Stdio::null(),
        std::process::Stdio::from(std::fs::File::create(dir.join("log")).unwrap()),
    );
    let up = wait_until(Duration::from_secs(15), || {
        (t.rtr.tcp_open(crate::daemon::API)
            && t.rtr.http_get(crate::daemon::API, "/healthz").0 == 200)
            .then_some(())
    });
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert!(up.is_some(), "{log}");
    assert!(
        log.contains("original TrafficAlerted config") && log.contains("convert-config"),
        "{log}"
    );
    let (_, caps) = t.rtr.http_get(crate::daemon::API, "/capabilities");
    let caps: serde_json::Value = serde_json::from_str(&caps).unwrap();
    assert_eq!(caps["TrafficInterval"], 120);
    assert_eq!(caps["ByteLimit"], 2_000_000);
    assert_eq!(caps["NumberContactedIPs"], 20);
    drop(out);
    let _ = std::fs::remove_dir_all(&dir);
}
