//! The JSON endpoints: the original's `/all`, `/active`, `/capabilities`,
//! and `/api/v1/…`. Every answer is computed from one snapshot, so the
//! numbers in it agree with each other.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;

use super::Shared;
use super::query::Query;
use super::respond::{Answer, ApiError, json_bytes, ok};
use crate::alert::{Alert, AlertKind, KINDS};
use crate::rules::Cidr;
use crate::snapshot::{HostView, IfaceView, Snapshot};
use crate::wire::Addr;

pub mod history;

/// Most hosts one `/api/v1/hosts` page holds.
pub const MAX_PAGE: u64 = 10_000;
/// Most edges `/api/v1/flows` returns.
pub const MAX_EDGES: u64 = 5_000;

/// The endpoints answered from the snapshot alone.
pub fn route(path: &str, query: Option<&str>, snap: &Snapshot) -> Answer {
    match path {
        "/all" => none(query).map(|_| json_bytes(snap.all_json())),
        "/active" => none(query).map(|_| json_bytes(snap.active_json())),
        "/capabilities" => none(query).and_then(|_| ok(&capabilities(snap))),
        "/api/v1/status" => none(query).and_then(|_| ok(&status(snap))),
        "/api/v1/interfaces" => none(query).and_then(|_| ok(&interfaces(snap))),
        "/api/v1/hosts" => hosts(snap, query),
        "/api/v1/flows" => flows(snap, query),
        "/api/v1/alerts" => alerts(snap, query),
        "/api/v1/mitigation" => none(query).and_then(|_| match &snap.mitigation {
            Some(m) => ok(&**m),
            None => ok(&json!({ "enabled": false })),
        }),
        "/api/v1/export" => none(query).and_then(|_| match &snap.export {
            Some(e) => ok(e),
            None => ok(&json!({ "enabled": false })),
        }),
        "/api/v1/flow-input" => none(query).and_then(|_| match &snap.flow_input {
            Some(f) => ok(&**f),
            None => ok(&json!({ "enabled": false })),
        }),
        p => match p.strip_prefix("/api/v1/hosts/") {
            Some(ip) => host(snap, ip, query),
            None => Err(ApiError::not_found(format!("no such endpoint: {p}"))),
        },
    }
}

fn none(query: Option<&str>) -> Result<(), ApiError> {
    Query::parse(query, &[]).map(|_| ())
}

/// `/capabilities`: the original's keys, then the whole effective config and
/// what the daemon chose at start.
fn capabilities(snap: &Snapshot) -> serde_json::Value {
    let c = &snap.config;
    let secs = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| crate::config::units::parse_duration(s).ok())
            .map_or(0, |d| d.as_secs())
    };
    json!({
        "TrafficInterval": secs(&c["traffic"]["interval"]),
        "ByteLimit": c["traffic"]["byte_limit"],
        "NoDestinations": c["traffic"]["keep_destinations"] == 0,
        "ChartMinBytes": c["traffic"]["chart_min_bytes"],
        "ExcludedInterfaces": c["capture"]["exclude_interfaces"],
        "ContactedIPsAnalyze": c["scan"]["address_scan"],
        "NumberContactedIPs": c["scan"]["max_contacted_ips"],
        "AnalyzePorts": c["scan"]["port_scan"],
        "NumContactedPorts": c["scan"]["max_contacted_ports"],
        "PortInterval": secs(&c["scan"]["port_interval"]),
        "Version": env!("CARGO_PKG_VERSION"),
        "Config": **c,
        "Runtime": *snap.runtime,
    })
}

fn uptime_secs(snap: &Snapshot) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    now.saturating_sub(snap.runtime.started_ms) / 1000
}

fn by_kind(counts: &[u64; KINDS]) -> serde_json::Value {
    AlertKind::ALL
        .iter()
        .map(|k| (k.name().to_string(), json!(counts[k.index()])))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn open_by_kind(snap: &Snapshot) -> [u64; KINDS] {
    let mut n = [0u64; KINDS];
    for a in snap.alerts.iter() {
        n[a.kind.index()] += 1;
    }
    n
}

pub fn status(snap: &Snapshot) -> serde_json::Value {
    let u = &snap.lifetime_untracked;
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_ms": snap.runtime.started_ms,
        "uptime_secs": uptime_secs(snap),
        "tick": snap.tick,
        "tick_ms": snap.tick_ms,
        "unix_ms": snap.unix_ms,
        "window_ticks": snap.window_ticks,
        "window": { "packets": snap.window.packets, "bytes": snap.window.bytes },
        "lifetime": { "packets": snap.lifetime.packets, "bytes": snap.lifetime.bytes },
        "drop_ratio": snap.drop_ratio,
        "untracked": {
            "src_bytes": u.src_bytes,
            "src_packets": u.src_packets,
            "dst_bytes": u.dst_bytes,
            "dst_packets": u.dst_packets,
            "pair_bytes": u.pair_bytes,
            "pair_packets": u.pair_packets,
            "contacts": u.port_initiations,
            "screened_packets": u.screened_packets,
        },
        "hosts_listed": snap.hosts.len(),
        "hosts_unlisted": snap.hosts_unlisted,
        "alerts": {
            "open": by_kind(&open_by_kind(snap)),
            "opened_total": by_kind(&snap.alerts_opened),
            "closed_total": by_kind(&snap.alerts_closed),
        },
        "alerts_open": snap.alerts.len(),
        "sinks": snap.sinks,
        "tables": snap.tables,
        "health": snap.health,
        "late_shards_total": snap.late_shards_total,
        "udp_flows_evicted": snap.udp_flows_evicted,
        "workers": snap.runtime.workers,
        "runtime": *snap.runtime,
    })
}

/// Per second, from one tick's count.
fn per_sec(n: u64, tick_ms: u64) -> f64 {
    if tick_ms == 0 {
        0.0
    } else {
        n as f64 * 1000.0 / tick_ms as f64
    }
}

/// One interface with its rates over the last tick.
#[derive(Serialize)]
pub struct IfaceRates<'a> {
    #[serde(flatten)]
    pub view: &'a IfaceView,
    pub rate: Rates,
}

#[derive(Serialize)]
pub struct Rates {
    pub ip_bytes_per_sec: f64,
    pub ip_packets_per_sec: f64,
    pub wire_bytes_per_sec: f64,
    pub frames_per_sec: f64,
    pub drops_per_sec: f64,
    pub parser_problems_per_sec: f64,
}

pub fn iface_rates(snap: &Snapshot) -> Vec<IfaceRates<'_>> {
    let t = snap.tick_ms;
    snap.ifaces
        .iter()
        .map(|v| {
            let l = &v.last_tick;
            IfaceRates {
                view: v,
                rate: Rates {
                    ip_bytes_per_sec: per_sec(l.ip_bytes, t),
                    ip_packets_per_sec: per_sec(l.ip_packets, t),
                    wire_bytes_per_sec: per_sec(l.wire_bytes, t),
                    frames_per_sec: per_sec(l.frames, t),
                    drops_per_sec: per_sec(l.kernel_drops, t),
                    parser_problems_per_sec: per_sec(l.malformed.values().sum(), t),
                },
            }
        })
        .collect()
}

fn interfaces(snap: &Snapshot) -> serde_json::Value {
    json!({ "tick": snap.tick, "tick_ms": snap.tick_ms, "interfaces": iface_rates(snap) })
}

/// A host as `/api/v1/hosts` shows it.
#[derive(Serialize)]
pub struct HostJson {
    pub addr: IpAddr,
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub recv_bytes: u64,
    pub recv_packets: u64,
    pub contacted_addresses: u32,
    pub contacted_ports: u32,
    pub alerts: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destinations: Option<Vec<DestJson>>,
}

#[derive(Serialize)]
pub struct DestJson {
    pub addr: IpAddr,
    pub bytes: u64,
    pub packets: u64,
}

pub fn alert_names(bits: u32) -> Vec<&'static str> {
    AlertKind::ALL
        .iter()
        .filter(|k| bits & k.bit() != 0)
        .map(|k| k.name())
        .collect()
}

pub fn host_json(h: &HostView, detail: bool) -> HostJson {
    HostJson {
        addr: h.addr.ip(),
        sent_bytes: h.sent_bytes,
        sent_packets: h.sent_packets,
        recv_bytes: h.recv_bytes,
        recv_packets: h.recv_packets,
        contacted_addresses: h.contacted,
        contacted_ports: h.ports,
        alerts: alert_names(h.alerts),
        destinations: detail.then(|| {
            h.destinations
                .iter()
                .map(|d| DestJson {
                    addr: d.addr.ip(),
                    bytes: d.bytes,
                    packets: d.packets,
                })
                .collect()
        }),
    }
}

const SORTS: [&str; 7] = [
    "bytes",
    "packets",
    "recv_bytes",
    "recv_packets",
    "contacted",
    "ports",
    "addr",
];

fn sort_key(sort: &str) -> fn(&HostView) -> u128 {
    match sort {
        "packets" => |h| u128::from(h.sent_packets),
        "recv_bytes" => |h| u128::from(h.recv_bytes),
        "recv_packets" => |h| u128::from(h.recv_packets),
        "contacted" => |h| u128::from(h.contacted),
        "ports" => |h| u128::from(h.ports),
        "addr" => |h| h.addr.0,
        _ => |h| u128::from(h.sent_bytes),
    }
}

/// `/api/v1/hosts?sort=&order=&limit=&offset=&detail=&alerting=&net=`
fn hosts(snap: &Snapshot, query: Option<&str>) -> Answer {
    let q = Query::parse(
        query,
        &[
            "sort", "order", "limit", "offset", "detail", "alerting", "net",
        ],
    )?;
    let sort = q.choice("sort", &SORTS)?;
    let default_order = if sort == "addr" { "asc" } else { "desc" };
    let order = match q.get("order") {
        None => default_order,
        Some(_) => q.choice("order", &["desc", "asc"])?,
    };
    let limit = q.number("limit", 100, 1, MAX_PAGE)? as usize;
    let offset = q.number("offset", 0, 0, MAX_PAGE)? as usize;
    let detail = q.flag("detail", false)?;
    let alerting = q.flag("alerting", false)?;
    let net = q
        .get("net")
        .map(|n| Cidr::parse(n).map_err(|e| ApiError::bad_request(format!("net={n:?}: {e}"))))
        .transpose()?;
    let mut picked: Vec<&HostView> = snap
        .hosts
        .iter()
        .filter(|h| !alerting || h.alerts != 0)
        .filter(|h| net.as_ref().is_none_or(|n| n.contains(h.addr)))
        .collect();
    let key = sort_key(sort);
    // Ties broken by address, so pages do not overlap. The snapshot lists
    // hosts by bytes sent already (same tie-break): no sort for that.
    let presorted = sort == "bytes" && order == "desc";
    if !presorted && order == "desc" {
        picked.sort_by(|a, b| key(b).cmp(&key(a)).then(a.addr.cmp(&b.addr)));
    } else if !presorted {
        picked.sort_by(|a, b| key(a).cmp(&key(b)).then(a.addr.cmp(&b.addr)));
    }
    let total = picked.len();
    let page: Vec<HostJson> = picked
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|h| host_json(h, detail))
        .collect();
    ok(&json!({
        "tick": snap.tick,
        "unix_ms": snap.unix_ms,
        "window_secs": snap.window_ticks * snap.tick_ms / 1000,
        "sort": sort,
        "order": order,
        "offset": offset,
        "limit": limit,
        "matching": total,
        "listed": snap.hosts.len(),
        "unlisted": snap.hosts_unlisted,
        "hosts": page,
    }))
}

/// `/api/v1/hosts/{ip}`: one host with its destinations and open alerts.
fn host(snap: &Snapshot, ip: &str, query: Option<&str>) -> Answer {
    none(query)?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{ip:?} is not an IP address")))?;
    let addr = Addr::from(ip);
    let Some(h) = snap.hosts.iter().find(|h| h.addr == addr) else {
        return Err(ApiError::not_found(format!(
            "{ip} has no traffic in the window, or is not among the {} hosts listed",
            snap.hosts.len()
        )));
    };
    let alerts: Vec<&Alert> = snap.alerts.iter().filter(|a| a.subject == ip).collect();
    ok(&json!({
        "tick": snap.tick,
        "window_secs": snap.window_ticks * snap.tick_ms / 1000,
        "host": host_json(h, true),
        "open_alerts": alerts,
    }))
}

#[derive(Serialize)]
struct Edge {
    source: IpAddr,
    target: IpAddr,
    bytes: u64,
    packets: u64,
}

#[derive(Serialize)]
struct Node {
    id: IpAddr,
    sent_bytes: u64,
    recv_bytes: u64,
    alerts: Vec<&'static str>,
}

/// `/api/v1/flows?limit=&min_bytes=`: the chart's graph, hosts as nodes and
/// pairs as edges, largest first.
fn flows(snap: &Snapshot, query: Option<&str>) -> Answer {
    let q = Query::parse(query, &["limit", "min_bytes"])?;
    let limit = q.number("limit", 500, 1, MAX_EDGES)? as usize;
    let min = q.number("min_bytes", snap.chart_min_bytes, 0, u64::MAX)?;
    let mut edges: Vec<Edge> = snap
        .hosts
        .iter()
        .flat_map(|h| {
            h.destinations.iter().map(move |d| Edge {
                source: h.addr.ip(),
                target: d.addr.ip(),
                bytes: d.bytes,
                packets: d.packets,
            })
        })
        .filter(|e| e.bytes >= min.max(1))
        .collect();
    let total = edges.len();
    edges.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(a.source.cmp(&b.source))
            .then(a.target.cmp(&b.target))
    });
    edges.truncate(limit);
    let index: std::collections::HashMap<IpAddr, &HostView> =
        snap.hosts.iter().map(|h| (h.addr.ip(), h)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut nodes = Vec::new();
    for ip in edges.iter().flat_map(|e| [e.source, e.target]) {
        if seen.insert(ip) {
            let h = index.get(&ip);
            nodes.push(Node {
                id: ip,
                sent_bytes: h.map_or(0, |h| h.sent_bytes),
                recv_bytes: h.map_or(0, |h| h.recv_bytes),
                alerts: h.map_or_else(Vec::new, |h| alert_names(h.alerts)),
            });
        }
    }
    ok(&json!({
        "tick": snap.tick,
        "window_secs": snap.window_ticks * snap.tick_ms / 1000,
        "min_bytes": min,
        "edges_total": total,
        "nodes": nodes,
        "edges": edges,
    }))
}

/// `/api/v1/alerts?kind=`: open alerts and the last closed ones.
fn alerts(snap: &Snapshot, query: Option<&str>) -> Answer {
    let q = Query::parse(query, &["kind"])?;
    let kind = kind_filter(&q)?;
    let pick = |a: &&Alert| kind.is_none_or(|k| a.kind == k);
    ok(&json!({
        "tick": snap.tick,
        "open": snap.alerts.iter().filter(pick).collect::<Vec<_>>(),
        "recently_closed": snap.closed.iter().filter(pick).collect::<Vec<_>>(),
    }))
}

pub fn kind_filter(q: &Query) -> Result<Option<AlertKind>, ApiError> {
    match q.get("kind") {
        None => Ok(None),
        Some(v) => AlertKind::ALL
            .into_iter()
            .find(|k| k.name() == v)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = AlertKind::ALL.iter().map(|k| k.name()).collect();
                ApiError::bad_request(format!("kind={v:?}: expected one of {}", names.join(", ")))
            }),
    }
}

/// `/api/v1/alerts/history?since=&limit=&kind=`, read from the history
/// files off the async thread, a bounded number at a time.
pub async fn history(snap: &Snapshot, query: Option<&str>, shared: &Shared) -> Answer {
    let q = Query::parse(query, &["since", "limit", "kind"])?;
    let since = q.number("since", 0, 0, u64::MAX)?;
    let limit = q.number("limit", 100, 1, history::MAX_LIMIT as u64)? as usize;
    let kind = kind_filter(&q)?;
    let file = snap.config["alerts"]["history_file"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let keep = snap.config["alerts"]["history_keep"].as_u64().unwrap_or(0) as u32;
    if file.is_empty() {
        return Err(ApiError::not_found(
            "no history: alerts.history_file is empty in the config",
        ));
    }
    let Ok(_permit) = shared.history_reads.clone().try_acquire_owned() else {
        return Err(ApiError::unavailable(
            "too many history reads at once; try again",
        ));
    };
    let page = tokio::task::spawn_blocking(move || {
        history::read_page(std::path::Path::new(&file), keep, since, limit, kind)
    })
    .await
    .map_err(|e| ApiError::unavailable(format!("history read failed: {e}")))?
    .map_err(|e| ApiError::unavailable(format!("cannot read the history: {e}")))?;
    ok(&page)
}

/// Largest attack capture served (a capture of 100 000 packets at a 64 KiB
/// snap length could be 6 GB: such a file is for scp, not for HTTP).
pub const MAX_PCAP: u64 = 256 << 20;

/// `/api/v1/alerts/{id}/pcap`: the alert's attack capture, as written so
/// far.
pub async fn attack_pcap(
    snap: &Snapshot,
    path: &str,
    query: Option<&str>,
    shared: &Shared,
) -> Answer {
    none(query)?;
    let id: u64 = path
        .strip_prefix("/api/v1/alerts/")
        .and_then(|p| p.strip_suffix("/pcap"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::not_found(format!("no such endpoint: {path}")))?;
    let dir = snap.config["attack_pcap"]["dir"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if dir.is_empty() || snap.config["attack_pcap"]["packets"].as_u64() == Some(0) {
        return Err(ApiError::not_found(
            "attack captures are off ([attack_pcap] packets = 0 or dir empty)",
        ));
    }
    let Ok(_permit) = shared.history_reads.clone().try_acquire_owned() else {
        return Err(ApiError::unavailable(
            "too many file reads at once; try again",
        ));
    };
    let file = crate::attacks::pcap::path_of(std::path::Path::new(&dir), id);
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        use std::io::Read;
        let f = match crate::config::file::open_regular(&file, std::fs::OpenOptions::new().read(true)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::not_found(format!(
                    "no capture for alert {id} (only flood alerts get one, at most 16 at a time, and old ones are removed past attack_pcap.max_size)"
                )));
            }
            Err(e) => return Err(ApiError::unavailable(format!("cannot read the capture: {e}"))),
        };
        let mut v = Vec::new();
        f.take(MAX_PCAP + 1)
            .read_to_end(&mut v)
            .map_err(|e| ApiError::unavailable(format!("cannot read the capture: {e}")))?;
        if v.len() as u64 > MAX_PCAP {
            return Err(ApiError::unavailable(format!(
                "the capture is larger than {MAX_PCAP} bytes: copy it from the box"
            )));
        }
        Ok(v)
    })
    .await
    .map_err(|e| ApiError::unavailable(format!("capture read failed: {e}")))??;
    let mut r = crate::http::respond::bytes(
        hyper::StatusCode::OK,
        "application/vnd.tcpdump.pcap",
        bytes::Bytes::from(body),
    );
    if let Ok(v) =
        hyper::header::HeaderValue::from_str(&format!("attachment; filename=\"alert-{id}.pcap\""))
    {
        r.headers_mut()
            .insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests;
