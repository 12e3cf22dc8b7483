//! What a SIGHUP changes and what it must not: credentials take effect at
//! once, restart-only settings keep their running values whole.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::daemon::{API, Daemon};
use crate::netns::{Netns, require, wait_until};

fn reload(d: &Daemon<'_>, config: &str, logged: &str) {
    let before = d.log().matches(logged).count();
    let cfg = d.dir().join("trafficalerted.toml");
    let history = format!(
        "[alerts]\nhistory_file = {:?}\n",
        d.dir().join("alerts.jsonl").to_string_lossy()
    );
    std::fs::write(&cfg, format!("{config}\n{history}")).unwrap();
    d.signal(Signal::SIGHUP);
    let seen = wait_until(Duration::from_secs(10), || {
        (d.log().matches(logged).count() > before).then_some(())
    });
    assert!(seen.is_some(), "no {logged:?} after SIGHUP: {}", d.log());
}

fn status(ns: &Netns, token: Option<&str>) -> u16 {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    ns.http(API, "GET", "/api/v1/status", &headers, None).status
}

#[test]
fn a_token_changed_at_a_reload_takes_effect_at_once() {
    require(&[]);
    let ns = Netns::new("r");
    let d = Daemon::start(&ns, "[http.auth]\nbearer_token = \"OLD\"\n");
    assert_eq!(status(&ns, Some("OLD")), 200);
    assert_eq!(status(&ns, Some("NEW")), 401);
    let caps = ns.http(
        API,
        "GET",
        "/capabilities",
        &[("Authorization", "Bearer OLD")],
        None,
    );
    assert!(caps.body.contains("\"bearer\""), "{}", caps.body);

    reload(
        &d,
        "[http.auth]\nbearer_token = \"NEW\"\n",
        "configuration reloaded",
    );
    assert!(
        d.log().contains("reload: HTTP credentials changed"),
        "{}",
        d.log()
    );
    assert_eq!(status(&ns, Some("OLD")), 401, "the old token is refused");
    assert_eq!(status(&ns, Some("NEW")), 200);

    // Removing [http.auth]: open, as /capabilities says.
    reload(&d, "", "reload: HTTP access control turned off");
    assert_eq!(status(&ns, None), 200);
    // /capabilities says so once the next tick is published.
    let open = wait_until(Duration::from_secs(5), || {
        let (_, caps) = ns.http_get(API, "/capabilities");
        let caps: serde_json::Value = serde_json::from_str(&caps).ok()?;
        caps["Config"]["http"]["auth"].is_null().then_some(())
    });
    assert!(open.is_some(), "/capabilities still says auth is on");

    reload(
        &d,
        "[http.auth]\nbearer_token = \"THIRD\"\n",
        "reload: HTTP access control turned on",
    );
    assert_eq!(status(&ns, None), 401);
    assert_eq!(status(&ns, Some("THIRD")), 200);
}

#[test]
fn the_dashboard_page_has_one_access_rule_under_both_names_and_host_is_required() {
    require(&[]);
    let ns = Netns::new("r");
    let _d = Daemon::start(&ns, "[http.auth]\nbearer_token = \"T\"\n");
    for path in ["/dashboard/", "/dashboard/index.html"] {
        let r = ns.http(API, "GET", path, &[], None);
        assert_eq!(r.status, 200, "{path}: the page itself holds no data");
        assert!(r.body.contains("<html"), "{path}");
    }
    // RFC 9112: HTTP/1.1 without Host is a 400; HTTP/1.0 needs none.
    let (code, body) = ns.http_raw(API, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Host"), "{body}");
    let (code, _) = ns.http_raw(API, "GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(code, 200);
}

#[test]
fn a_restart_only_setting_changes_nothing_at_a_reload() {
    require(&[]);
    let ns = Netns::new("r");
    let d = Daemon::start(&ns, "[traffic]\ninterval = \"20s\"\n");
    let before = d.json("/api/v1/status");
    let (tick, window) = (before["tick_ms"].clone(), before["window_ticks"].clone());
    assert_eq!(tick, 1000);
    reload(
        &d,
        "tick = \"500ms\"\n[traffic]\ninterval = \"20s\"\n",
        "take effect after a restart",
    );
    assert!(d.log().contains("reload: tick take effect"), "{}", d.log());
    // The aggregator has taken the reload by the next tick.
    std::thread::sleep(Duration::from_millis(2500));
    let after = d.json("/api/v1/status");
    assert_eq!(after["tick_ms"], tick, "{after}");
    assert_eq!(after["window_ticks"], window, "{after}");
    assert!(!d.log().contains("windows start again"), "{}", d.log());
}

/// The config replaced by a FIFO: the reload is refused at once and
/// SIGTERM is still answered.
#[test]
fn a_fifo_config_at_a_reload_is_refused_and_stop_is_answered() {
    require(&[]);
    let ns = Netns::new("r");
    let d = Daemon::start(&ns, "");
    let cfg = d.dir().join("trafficalerted.toml");
    std::fs::remove_file(&cfg).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&cfg)
            .status()
            .unwrap()
            .success()
    );
    d.signal(Signal::SIGHUP);
    let refused = wait_until(Duration::from_secs(5), || {
        d.log().contains("reload refused").then_some(())
    });
    assert!(refused.is_some(), "{}", d.log());
    assert!(d.log().contains("FIFO"), "{}", d.log());
    let t = std::time::Instant::now();
    let (code, log) = d.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}
