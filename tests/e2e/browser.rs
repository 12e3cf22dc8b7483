//! The dashboard in a real headless Chromium (driven over WebDriver by
//! Debian's chromedriver) while traffic flows through the namespaces: the
//! flow chart and the alert row appear, the evidence opens on a click, an
//! interface named like markup stays text, the browser reports no errors
//! (a Content-Security-Policy violation would be one), and a screenshot is
//! kept in `target/test-artifacts/dashboard.png`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::daemon::Daemon;
use crate::netns::{Netns, Topology, require, unique, wait_until};
use crate::traffic::{trafgen, udp4};

const DRIVER: &str = "127.0.0.1:9515";

struct Browser<'n> {
    ns: &'n Netns,
    session: String,
}

impl<'n> Browser<'n> {
    fn open(ns: &'n Netns, profile: &std::path::Path) -> Browser<'n> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1400,2400",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let v = call(ns, "POST", "/session", Some(caps));
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        Browser { ns, session }
    }

    fn cmd(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        call(
            self.ns,
            method,
            &format!("/session/{}/{what}", self.session),
            body,
        )["value"]
            .clone()
    }

    fn script(&self, js: &str) -> Value {
        self.cmd(
            "POST",
            "execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        call(
            self.ns,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

fn call(ns: &Netns, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string());
    let r = ns.http(DRIVER, method, path, &[], body.as_deref());
    r.json()
}

/// What the test reads off the page.
const PROBE: &str = r#"
const rows = [...document.querySelectorAll('#alerts tbody tr[data-id]')];
return {
  circles: document.querySelectorAll('#flows circle').length,
  alerting: document.querySelectorAll('#flows circle.alerting').length,
  alerts: rows.map(r => r.textContent),
  conn: document.getElementById('conn').textContent,
  ifaces: document.getElementById('ifaces').textContent,
  injected: document.querySelector('#ifaces i, #ifaces b') !== null,
  talkers: document.getElementById('talkers').textContent,
  history: document.querySelectorAll('#history tbody tr').length,
  legend: document.getElementById('legend').textContent,
};
"#;

#[test]
fn dashboard_shows_the_flow_chart_and_alerts_in_chromium() {
    require(&["chromium", "chromedriver", "trafgen", "ethtool"]);
    let t = Topology::new();
    // An interface named like markup: it must show as text.
    t.rtr.ip(&[
        "link", "add", "<i>x", "type", "veth", "peer", "name", "x\"y",
    ]);
    t.rtr.ip(&["link", "set", "<i>x", "up"]);
    t.rtr.ip(&["link", "set", "x\"y", "up"]);
    let d = Daemon::start(
        &t.rtr,
        "[traffic]\ninterval = \"1h\"\nbyte_limit = \"1M\"\nchart_min_bytes = 1\n[alerts]\nhold_down = \"1h\"\n",
    );
    let profile = std::env::temp_dir().join(unique("chrome"));
    let _driver = t.rtr.spawn(
        &["chromedriver", &format!("--port={}", &DRIVER[10..])],
        Stdio::null(),
        Stdio::null(),
    );
    wait_until(Duration::from_secs(20), || {
        t.rtr.tcp_open(DRIVER).then_some(())
    })
    .expect("chromedriver listens");
    let b = Browser::open(&t.rtr, &profile);
    b.cmd(
        "POST",
        "url",
        Some(json!({"url": "http://127.0.0.1:8698/dashboard/"})),
    );

    // Traffic while the page is open: a large sender (over the 1 MB limit)
    // and a few small ones.
    let mac = t.rtr.mac(&t.r0);
    trafgen(
        &t.gen_ns,
        &t.g0,
        1_500,
        1_000,
        &udp4(&mac, "10.1.0.77", "10.2.0.2", 1000),
    );
    for n in 80..86 {
        trafgen(
            &t.gen_ns,
            &t.g0,
            50,
            100,
            &udp4(&mac, &format!("10.1.0.{n}"), "10.2.0.2", 300),
        );
    }

    let seen = wait_until(Duration::from_secs(40), || {
        let p = b.script(PROBE);
        let ok = p["circles"].as_u64()? >= 3
            && p["alerting"].as_u64()? >= 1
            && p["alerts"]
                .as_array()?
                .iter()
                .any(|r| r.as_str().unwrap_or("").contains("10.1.0.77"))
            && p["history"].as_u64()? >= 1;
        ok.then_some(p)
    });
    let p = seen.unwrap_or_else(|| {
        panic!(
            "the page did not show the chart and the alert: {}\ndaemon log:\n{}",
            b.script(PROBE),
            d.log()
        )
    });
    assert_eq!(p["conn"], "live", "{p}");
    assert!(p["talkers"].as_str().unwrap().contains("10.1.0.77"), "{p}");
    assert!(p["legend"].as_str().unwrap().contains(t.r0.as_str()), "{p}");
    let ifaces = p["ifaces"].as_str().unwrap();
    assert!(
        ifaces.contains("<i>x") && ifaces.contains("x\"y"),
        "{ifaces}"
    );
    assert_eq!(p["injected"], false, "an interface name became markup");

    // A click on the alert row opens its evidence.
    b.script("document.querySelector('#alerts tbody tr[data-id]').click(); return 0;");
    let evidence = wait_until(Duration::from_secs(10), || {
        let e = b.script("return document.getElementById('evidence').textContent;");
        let e = e.as_str()?.to_string();
        (e.contains("Destinations") && e.contains("10.2.0.2")).then_some(e)
    });
    assert!(evidence.is_some(), "evidence did not open");

    // Let the layout settle, then keep a picture for people to look at.
    std::thread::sleep(Duration::from_secs(2));
    let shot = b.cmd("GET", "screenshot", None);
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().expect("screenshot"))
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(png.len() > 20_000, "a real picture: {} bytes", png.len());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard.png"), &png).unwrap();

    // No errors in the browser's console (script errors, CSP violations,
    // failed requests).
    let log = b.cmd("POST", "se/log", Some(json!({"type": "browser"})));
    let severe: Vec<&Value> = log
        .as_array()
        .map(|l| l.iter().filter(|e| e["level"] == "SEVERE").collect())
        .unwrap_or_default();
    assert!(severe.is_empty(), "browser errors: {severe:?}");
    drop(b);
    let _ = std::fs::remove_dir_all(&profile);
}
