//! The HTTP API's compatible endpoints and its answers to bad requests.

use crate::daemon::{API, Daemon, TEST_CONFIG};
use crate::netns::{Netns, require};

#[test]
fn endpoints_answer_with_the_original_shapes_and_errors_are_clear() {
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
    assert!(body.contains("no such endpoint"), "{body}");

    let (status, body) = ns.http_raw(
        API,
        "POST /all HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405, "{body}");

    let huge = "a".repeat(20 * 1024);
    let (status, _) = ns.http_raw(
        API,
        &format!("GET /all HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 431, "an oversized header is refused");

    let (status, body) = d.get("/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let status = d.json("/api/v1/status");
    assert!(status["tick"].as_u64().is_some());
    assert_eq!(status["tables"]["max_hosts"], 65536);
}
