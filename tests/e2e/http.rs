//! The HTTP API against a real namespace run: every endpoint's JSON, the
//! metrics (checked by promtool), the event stream, bad requests, limits
//! and access control.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::{API, Daemon, TEST_CONFIG};
use crate::netns::{Netns, Topology, require, wait_until};
use crate::traffic::{trafgen, udp4};

const RUN_CONFIG: &str = r#"
[traffic]
interval = "1h"
byte_limit = "1M"
chart_min_bytes = 1
[alerts]
hold_down = "1h"
"#;

/// 2 000 datagrams of 1 000 bytes from 10.1.0.77 (over the 1 MB limit: a
/// traffic alert) and 500 of 200 bytes from 10.1.0.78, both to 10.2.0.2.
fn known_run(t: &Topology, d: &Daemon<'_>) {
    let mac = t.rtr.mac(&t.r0);
    trafgen(
        &t.gen_ns,
        &t.g0,
        2_000,
        20,
        &udp4(&mac, "10.1.0.77", "10.2.0.2", 1000),
    );
    trafgen(
        &t.gen_ns,
        &t.g0,
        500,
        20,
        &udp4(&mac, "10.1.0.78", "10.2.0.2", 200),
    );
    let got = d.settle(2_000_000, |d| d.source_bytes("10.1.0.77"));
    assert_eq!(got, 2_000_000, "log:\n{}", d.log());
    let got = d.settle(100_000, |d| d.source_bytes("10.1.0.78"));
    assert_eq!(got, 100_000);
    wait_until(Duration::from_secs(10), || {
        (d.json("/api/v1/alerts")["open"].as_array()?.len() == 1).then_some(())
    })
    .expect("one traffic alert");
}

fn host<'a>(list: &'a Value, addr: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|h| h["addr"] == addr))
        .unwrap_or_else(|| panic!("{addr} not in {list}"))
}

#[test]
fn api_v1_reports_a_known_namespace_run() {
    require(&["trafgen", "ethtool", "ping", "promtool"]);
    let t = Topology::new();
    let d = Daemon::start(&t.rtr, RUN_CONFIG);
    known_run(&t, &d);

    // Hosts: sorted, paged, filtered, with destinations on request.
    let v = d.json("/api/v1/hosts?limit=2");
    assert_eq!(v["sort"], "bytes");
    assert_eq!(v["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(v["hosts"][0]["addr"], "10.1.0.77");
    assert_eq!(v["hosts"][0]["sent_bytes"], 2_000_000);
    assert_eq!(v["hosts"][0]["sent_packets"], 2_000);
    assert_eq!(v["hosts"][0]["alerts"], serde_json::json!(["traffic"]));
    assert_eq!(v["window_secs"], 3600);
    let all = d.json("/api/v1/hosts?limit=100");
    let sink = host(&all["hosts"], "10.2.0.2");
    assert_eq!(sink["recv_bytes"], 2_100_000);
    assert_eq!(sink["recv_packets"], 2_500);
    // (It sends too: ICMP port-unreachable answers, rate-limited.)
    let v = d.json("/api/v1/hosts?sort=packets&order=asc&net=10.1.0.0/24&detail");
    let addrs: Vec<&str> = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["addr"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, ["10.1.0.78", "10.1.0.77"]);
    assert_eq!(
        v["hosts"][0]["destinations"],
        serde_json::json!([{"addr": "10.2.0.2", "bytes": 100_000, "packets": 500}])
    );
    let v = d.json("/api/v1/hosts?alerting=true");
    assert_eq!(v["matching"], 1);

    let v = d.json("/api/v1/hosts/10.1.0.77");
    assert_eq!(
        v["host"]["destinations"],
        serde_json::json!([{"addr": "10.2.0.2", "bytes": 2_000_000, "packets": 2_000}])
    );
    assert_eq!(v["open_alerts"][0]["kind"], "traffic");
    assert_eq!(v["open_alerts"][0]["value"], 2_000_000);
    assert_eq!(d.get("/api/v1/hosts/10.9.9.9").0, 404);

    // Flows: the two pairs as edges, the alerting source marked (the
    // sink's ICMP answers are pairs too, below 50 kB).
    let v = d.json("/api/v1/flows");
    assert!(v["edges_total"].as_u64().unwrap() >= 2, "{v}");
    let v = d.json("/api/v1/flows?min_bytes=50000");
    assert_eq!(v["edges_total"], 2);
    assert_eq!(
        v["edges"][0],
        serde_json::json!({"source": "10.1.0.77", "target": "10.2.0.2", "bytes": 2_000_000, "packets": 2_000})
    );
    let node = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "10.1.0.77")
        .expect("node of the source");
    assert_eq!(node["alerts"], serde_json::json!(["traffic"]));
    let v = d.json("/api/v1/flows?min_bytes=1000000");
    assert_eq!(v["edges_total"], 1);

    // Interfaces: counts, rates, drops.
    let r0 = d.iface(&t.r0).expect("r0");
    assert!(
        r0["totals"]["ip_packets"].as_u64().unwrap() >= 2_500,
        "{r0}"
    );
    assert_eq!(r0["totals"]["kernel_drops"], 0);
    assert!(r0["rate"]["ip_bytes_per_sec"].is_number(), "{r0}");
    assert!(r0["present"].as_bool().unwrap());

    // Status: version, uptime, workers, ticks, tables, alert counts.
    let s = d.json("/api/v1/status");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["tick"].as_u64().unwrap() >= 1);
    assert!(s["workers"].as_u64().unwrap() >= 1);
    assert!(s["uptime_secs"].is_u64());
    assert_eq!(s["tables"]["max_hosts"], 65536);
    assert!(s["tables"]["hosts"].as_u64().unwrap() >= 3);
    assert_eq!(s["alerts"]["open"]["traffic"], 1);
    assert_eq!(s["alerts"]["opened_total"]["traffic"], 1);
    assert_eq!(s["alerts"]["closed_total"]["traffic"], 0);

    // Alerts, open and from the history file with paging.
    let a = d.json("/api/v1/alerts");
    assert_eq!(a["open"][0]["subject"], "10.1.0.77");
    let id = a["open"][0]["id"].clone();
    let h = wait_until(Duration::from_secs(5), || {
        let h = d.json("/api/v1/alerts/history?since=0&limit=10");
        (!h["events"].as_array()?.is_empty()).then_some(h)
    })
    .expect("history has the opening");
    assert_eq!(h["events"][0]["event"], "open");
    assert_eq!(h["events"][0]["alert"]["id"], id);
    assert_eq!(h["more"], false);
    let next = h["next_since"].as_u64().unwrap();
    let h2 = d.json(&format!("/api/v1/alerts/history?since={next}"));
    assert_eq!(h2["events"], serde_json::json!([]));

    // The original's endpoints agree.
    let active = d.json("/active");
    assert_eq!(active[0]["SourceIP"], "10.1.0.77");
    assert_eq!(active[0]["EventType"], "TRAFFIC");

    // Metrics: the same numbers, and a valid exposition.
    let (status, m) = d.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        m.contains("trafficalerted_host_sent_bytes{host=\"10.1.0.77\"} 2000000"),
        "{m}"
    );
    assert!(m.contains("trafficalerted_alerts_opened_total{kind=\"traffic\"} 1"));
    assert!(m.contains("trafficalerted_alerts_open{kind=\"traffic\"} 1"));
    assert!(m.contains(&format!(
        "trafficalerted_interface_ring_drops_total{{interface=\"{}\"}} 0",
        t.r0
    )));
    assert!(m.contains("trafficalerted_table_capacity{table=\"hosts\"} 65536"));
    let ip_packets = m
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "trafficalerted_interface_ip_packets_total{{interface=\"{}\"}}",
                t.r0
            ))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .expect("ip packets of r0");
    assert!(ip_packets >= 2_500);
    promtool_check(&m);

    // The stream: the current picture at once, then one event per tick.
    let text = t
        .rtr
        .http_stream(API, "/api/v1/stream", &[], Duration::from_secs(10), |s| {
            s.matches("event: tick").count() >= 2
        });
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("event JSON"))
        .collect();
    assert!(events.len() >= 2, "{text}");
    assert!(events[1]["tick"].as_u64() > events[0]["tick"].as_u64());
    assert_eq!(events[0]["top_hosts"][0]["addr"], "10.1.0.77");
    assert_eq!(events[0]["alerts"][0]["subject"], "10.1.0.77");
    assert!(
        events[0]["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == t.r0.as_str())
    );
}

fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool check metrics: {said}");
    assert!(said.trim().is_empty(), "promtool has remarks: {said}");
}

#[test]
fn bad_requests_get_clear_answers_and_limits_hold() {
    require(&[]);
    let ns = Netns::new("r");
    let d = Daemon::start(&ns, TEST_CONFIG);

    let all = d.json("/all");
    assert!(all.is_array(), "{all}");
    let caps = d.json("/capabilities");
    assert_eq!(caps["TrafficInterval"], 3600);
    assert_eq!(caps["ByteLimit"], 1_000_000_000u64);
    assert_eq!(caps["ChartMinBytes"], 1);
    assert_eq!(caps["NoDestinations"], false);
    assert_eq!(caps["Config"]["traffic"]["interval"], "1h");
    assert_eq!(caps["Config"]["capture"]["direction"], "ingress");
    assert!(caps["Runtime"]["workers"].as_u64().unwrap() >= 1);

    let (status, body) = d.get("/nope");
    assert_eq!(status, 404);
    assert!(body.contains("no such endpoint: /nope"), "{body}");
    for (path, says) in [
        (
            "/api/v1/hosts?sort=size",
            "sort=\\\"size\\\": expected one of bytes",
        ),
        (
            "/api/v1/hosts?limit=-1",
            "expected a whole number from 1 to 10000",
        ),
        ("/api/v1/hosts?lmit=5", "unknown parameter \\\"lmit\\\""),
        ("/api/v1/hosts?net=300.0.0.0/8", "net="),
        ("/api/v1/hosts/not-an-ip", "is not an IP address"),
        ("/api/v1/alerts/history?since=yesterday", "since="),
        ("/api/v1/alerts/history?limit=100000", "from 1 to 1000"),
        ("/api/v1/flows?limit=0", "limit="),
        ("/api/v1/status?verbose=1", "takes none"),
    ] {
        let (status, body) = d.get(path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
        let v: Value = serde_json::from_str(&body).expect("errors are JSON");
        assert!(v["error"].is_string());
    }
    let r = ns.http(API, "POST", "/all", &[], Some("{}"));
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));

    let huge = "a".repeat(20 * 1024);
    let r = ns.http(API, "GET", "/all", &[("X-Big", &huge)], None);
    assert_eq!(r.status, 431, "an oversized header is refused");

    let (status, body) = d.get("/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let dash = ns.http(API, "GET", "/dashboard/", &[], None);
    assert_eq!(dash.status, 200);
    assert!(dash.body.contains("<title>trafficalerted</title>"));
    assert!(
        dash.header("content-security-policy")
            .is_some_and(|c| c.contains("script-src 'self'")),
        "{:?}",
        dash.headers
    );
    assert_eq!(ns.http(API, "GET", "/dashboard", &[], None).status, 301);
    assert_eq!(
        ns.http(API, "GET", "/dashboard/app.js", &[], None).status,
        200
    );
    assert_eq!(
        ns.http(API, "GET", "/dashboard/nope.js", &[], None).status,
        404
    );

    // A client that connects and says nothing is cut off after the header
    // timeout; a crowd beyond the connection cap is turned away at once.
    let ns_name = ns.name.clone();
    let (idle_closed_after, refused) = std::thread::spawn(move || {
        use std::io::Read;
        crate::netns::enter(&ns_name);
        let mut crowd = Vec::new();
        for _ in 0..256 {
            crowd.push(std::net::TcpStream::connect(API).expect("connect"));
        }
        let mut extra = std::net::TcpStream::connect(API).expect("connect extra");
        extra
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let refused = matches!(extra.read(&mut [0u8; 1]), Ok(0) | Err(_));
        let t0 = Instant::now();
        let first = &mut crowd[0];
        first
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = Vec::new();
        let _ = first.read_to_end(&mut buf);
        (t0.elapsed(), refused)
    })
    .join()
    .unwrap();
    assert!(refused, "connection 257 is closed");
    assert!(
        idle_closed_after < Duration::from_secs(15),
        "an idle connection is closed by the header timeout, not kept: {idle_closed_after:?}"
    );
    // And the server still answers afterwards.
    assert_eq!(d.get("/healthz").0, 200);
}

#[test]
fn access_control_with_a_token_or_a_password() {
    require(&[]);
    let ns = Netns::new("r");
    let d = Daemon::start(
        &ns,
        "[http]\nlisten = [\"0.0.0.0:8698\"]\n[http.auth]\nbearer_token = \"t0ken-42\"\n",
    );
    assert!(
        !d.log().contains("no access control"),
        "no warning with auth: {}",
        d.log()
    );
    let r = ns.http(API, "GET", "/api/v1/status", &[], None);
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer"))
    );
    assert!(r.body.contains("needs credentials"), "{}", r.body);
    let r = ns.http(
        API,
        "GET",
        "/api/v1/status",
        &[("Authorization", "Bearer wrong")],
        None,
    );
    assert_eq!(r.status, 401);
    assert!(r.body.contains("wrong credentials"));
    let ok = [("Authorization", "Bearer t0ken-42")];
    for path in [
        "/api/v1/status",
        "/metrics",
        "/all",
        "/api/v1/hosts",
        "/active",
    ] {
        assert_eq!(ns.http(API, "GET", path, &ok, None).status, 200, "{path}");
        assert_eq!(ns.http(API, "GET", path, &[], None).status, 401, "{path}");
    }
    assert_eq!(ns.http(API, "GET", "/healthz", &[], None).status, 200);
    assert_eq!(
        ns.http(API, "GET", "/dashboard/", &[], None).status,
        200,
        "the page itself holds no data"
    );
    drop(d);

    let ns = Netns::new("r");
    let dir = std::env::temp_dir().join(crate::netns::unique("pw"));
    std::fs::create_dir_all(&dir).unwrap();
    let pw = dir.join("password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let d = Daemon::start(
        &ns,
        &format!(
            "[http.auth]\nuser = \"ops\"\npassword_file = {:?}\n",
            pw.to_string_lossy()
        ),
    );
    use base64::Engine;
    let cred = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ops:s3cret")
    );
    let r = ns.http(
        API,
        "GET",
        "/api/v1/hosts",
        &[("Authorization", &cred)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = ns.http(API, "GET", "/dashboard/", &[], None);
    assert_eq!(
        r.status, 401,
        "with basic auth the browser asks on the page"
    );
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic"))
    );
    assert_eq!(ns.http(API, "GET", "/healthz", &[], None).status, 200);
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);

    // Listening beyond loopback without auth: said at start.
    let ns = Netns::new("r");
    let d = Daemon::start(&ns, "[http]\nlisten = [\"0.0.0.0:8698\"]\n");
    let warned = wait_until(Duration::from_secs(5), || {
        d.log().contains("no access control").then_some(())
    });
    assert!(warned.is_some(), "warned: {}", d.log());
}
