use super::*;
use crate::aggregator::RuntimeInfo;
use crate::config::Config;
use crate::snapshot::DestView;
use http_body_util::BodyExt;

fn host(n: u8, sent: u64, packets: u64, alerts: u32, dests: &[(u8, u64)]) -> HostView {
    HostView {
        addr: Addr::from_v4([10, 0, 0, n]),
        sent_bytes: sent,
        sent_packets: packets,
        recv_bytes: 7,
        recv_packets: 1,
        contacted: u32::from(n),
        ports: 0,
        alerts,
        destinations: dests
            .iter()
            .map(|&(d, b)| DestView {
                addr: Addr::from_v4([10, 0, 1, d]),
                bytes: b,
                packets: 1,
            })
            .collect(),
    }
}

fn snap() -> Snapshot {
    let mut s = Snapshot::empty(&Config::default(), RuntimeInfo::default());
    s.tick = 9;
    s.chart_min_bytes = 100;
    s.hosts = std::sync::Arc::new(vec![
        host(
            1,
            5000,
            5,
            AlertKind::Traffic.bit(),
            &[(1, 4000), (2, 1000)],
        ),
        host(2, 3000, 30, 0, &[(1, 3000)]),
        host(3, 50, 1, 0, &[]),
    ]);
    s.alerts = std::sync::Arc::new(vec![Alert {
        value: 5000,
        peak: 5000,
        threshold: 10,
        window_secs: 60,
        ..Alert::sample(4, AlertKind::Traffic, "10.0.0.1")
    }]);
    s
}

fn get(path: &str) -> Result<serde_json::Value, ApiError> {
    let (p, q) = path
        .split_once('?')
        .map_or((path, None), |(p, q)| (p, Some(q)));
    let r = route(p, q, &snap())?;
    let body = futures_body(r);
    Ok(serde_json::from_slice(&body).unwrap())
}

fn futures_body(r: hyper::Response<super::super::Body>) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async { r.into_body().collect().await.unwrap().to_bytes().to_vec() })
}

#[test]
fn hosts_sort_page_and_filter() {
    let v = get("/api/v1/hosts").unwrap();
    let addrs: Vec<&str> = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["addr"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    assert_eq!(v["hosts"][0]["alerts"], serde_json::json!(["traffic"]));
    assert!(
        v["hosts"][0].get("destinations").is_none(),
        "only with detail"
    );
    let v = get("/api/v1/hosts?sort=packets&limit=1").unwrap();
    assert_eq!(v["hosts"][0]["addr"], "10.0.0.2");
    assert_eq!(v["matching"], 3);
    let v = get("/api/v1/hosts?sort=packets&order=asc&offset=1&limit=1&detail=true").unwrap();
    assert_eq!(v["hosts"][0]["addr"], "10.0.0.1");
    assert_eq!(
        v["hosts"][0]["destinations"][0],
        serde_json::json!({"addr": "10.0.1.1", "bytes": 4000, "packets": 1})
    );
    let v = get("/api/v1/hosts?alerting").unwrap();
    assert_eq!(v["hosts"].as_array().unwrap().len(), 1);
    let v = get("/api/v1/hosts?net=10.0.0.2/31").unwrap();
    assert_eq!(v["matching"], 2);
    let v = get("/api/v1/hosts?sort=addr").unwrap();
    assert_eq!(v["order"], "asc");
    assert_eq!(v["hosts"][0]["addr"], "10.0.0.1");
}

#[test]
fn bad_queries_say_what_is_wrong() {
    for (q, want) in [
        ("/api/v1/hosts?sort=size", "expected one of bytes"),
        ("/api/v1/hosts?limit=0", "from 1 to 10000"),
        ("/api/v1/hosts?limit=abc", "whole number"),
        ("/api/v1/hosts?net=10.0.0.0/33", "net="),
        ("/api/v1/hosts?colour=red", "unknown parameter"),
        ("/api/v1/hosts/not-an-ip", "not an IP address"),
        ("/api/v1/alerts?kind=dos", "expected one of traffic"),
        ("/all?x=1", "takes none"),
    ] {
        let e = get(q).unwrap_err();
        assert_eq!(e.status, 400, "{q}");
        assert!(e.message.contains(want), "{q}: {}", e.message);
    }
    let e = get("/api/v1/hosts/10.9.9.9").unwrap_err();
    assert_eq!(e.status, 404);
    let e = get("/api/v1/nothing").unwrap_err();
    assert_eq!(e.status, 404);
}

#[test]
fn one_host_with_its_alerts() {
    let v = get("/api/v1/hosts/10.0.0.1").unwrap();
    assert_eq!(v["host"]["sent_bytes"], 5000);
    assert_eq!(v["host"]["destinations"].as_array().unwrap().len(), 2);
    assert_eq!(v["open_alerts"][0]["id"], 4);
}

#[test]
fn flows_are_nodes_and_edges_over_the_threshold() {
    let v = get("/api/v1/flows").unwrap();
    assert_eq!(v["min_bytes"], 100);
    assert_eq!(v["edges_total"], 3);
    assert_eq!(
        v["edges"][0],
        serde_json::json!({"source": "10.0.0.1", "target": "10.0.1.1", "bytes": 4000, "packets": 1})
    );
    let nodes: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["10.0.0.1", "10.0.1.1", "10.0.0.2", "10.0.1.2"]);
    assert_eq!(v["nodes"][0]["alerts"], serde_json::json!(["traffic"]));
    assert_eq!(
        v["nodes"][1]["sent_bytes"], 0,
        "a destination that is not listed"
    );
    let v = get("/api/v1/flows?min_bytes=2000&limit=1").unwrap();
    assert_eq!(v["edges_total"], 2);
    assert_eq!(v["edges"].as_array().unwrap().len(), 1);
}

#[test]
fn status_and_alerts_by_kind() {
    let v = get("/api/v1/status").unwrap();
    assert_eq!(v["alerts"]["open"]["traffic"], 1);
    assert_eq!(v["alerts"]["open"]["port_scan"], 0);
    assert_eq!(v["tick"], 9);
    let v = get("/api/v1/alerts?kind=port_scan").unwrap();
    assert_eq!(v["open"].as_array().unwrap().len(), 0);
    let v = get("/api/v1/alerts?kind=traffic").unwrap();
    assert_eq!(v["open"][0]["subject"], "10.0.0.1");
}
