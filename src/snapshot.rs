//! The immutable picture of one tick that every reader (HTTP, logs, the
//! exit summary) works from. The aggregator builds a new one each tick and
//! swaps it in atomically; readers never touch the counters themselves.

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::Serialize;

use crate::aggregator::{RuntimeInfo, TickHealth};
use crate::alert::{Alert, AlertKind, KINDS};
use crate::config::Config;
use crate::counters::IfaceReport;
use crate::shard::{Totals, Untracked};
use crate::sinks::SinkReport;
use crate::wire::Addr;

/// Hosts a snapshot lists at most (the largest senders, plus every host
/// with an open alert); the rest are counted in the totals.
pub const MAX_LISTED_HOSTS: usize = 10_000;

/// One destination of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestView {
    pub addr: Addr,
    pub bytes: u64,
    pub packets: u64,
}

/// One host's totals over the traffic window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    pub addr: Addr,
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub recv_bytes: u64,
    pub recv_packets: u64,
    /// Distinct addresses it initiated contact to in the scan window.
    pub contacted: u32,
    /// Distinct ports it initiated contact to in the port window.
    pub ports: u32,
    /// Bits of its open alerts ([`AlertKind::bit`]).
    pub alerts: u32,
    /// Largest destinations first; for hosts at or above the chart
    /// threshold and hosts with an open alert.
    pub destinations: Vec<DestView>,
}

impl HostView {
    /// The original's event type: `TRAFFIC`, `SCANNING`,
    /// `TRAFFIC+SCANNING`, or `NONE` for a host without a source alert.
    pub fn event_type(&self) -> &'static str {
        event_type(self.alerts)
    }
}

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IfaceView {
    pub ifindex: u32,
    pub name: String,
    pub link: String,
    pub present: bool,
    /// Since the daemon started.
    pub totals: IfaceReport,
    /// During the last tick.
    pub last_tick: IfaceReport,
}

/// How full the bounded tables are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableFill {
    pub hosts: usize,
    pub max_hosts: usize,
    pub pairs: usize,
    pub max_pairs: usize,
    /// Bytes held by the host and pair tables.
    pub bytes: usize,
}

/// Everything a reader may ask about, as of the end of one tick.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The number of the tick this picture is of (the daemon's first is
    /// 0; a replay's count from its capture's first packet).
    pub tick: u64,
    /// Ticks closed since start (0 before the first).
    pub ticks_closed: u64,
    /// Wall-clock time the tick was closed, ms since the Unix epoch.
    pub unix_ms: u64,
    /// Length of a tick, ms.
    pub tick_ms: u64,
    /// Length of the traffic window, ticks.
    pub window_ticks: u64,
    pub chart_min_bytes: u64,
    /// The largest senders of the window (and hosts with open alerts), most
    /// bytes sent first; at most [`MAX_LISTED_HOSTS`]. Shared with the
    /// snapshots before it while nothing it shows changed.
    pub hosts: Arc<Vec<HostView>>,
    /// Hosts tracked but not listed.
    pub hosts_unlisted: usize,
    pub ifaces: Vec<IfaceView>,
    /// Over the traffic window.
    pub window: Totals,
    /// Share of packets the kernel dropped over the traffic window.
    pub drop_ratio: f64,
    /// Since start.
    pub lifetime: Totals,
    pub lifetime_untracked: Untracked,
    pub tables: TableFill,
    /// Open alerts, oldest first.
    pub alerts: Arc<Vec<Alert>>,
    /// Alerts opened and closed since start, per kind ([`AlertKind::index`]).
    pub alerts_opened: [u64; KINDS],
    pub alerts_closed: [u64; KINDS],
    /// The last closed alerts, newest last.
    pub closed: Vec<Alert>,
    pub sinks: Vec<SinkReport>,
    /// Routes announced toward victims, when `[mitigation]` is on.
    pub mitigation: Option<Arc<crate::mitigation::Report>>,
    /// Attack captures, when `[attack_pcap]` is on.
    pub attacks: Option<crate::attacks::AttackReport>,
    /// IPFIX export, when collectors are configured.
    pub export: Option<crate::export::ExportReport>,
    /// Flow records from routers, when `[flow_input]` listens.
    pub flow_input: Option<Arc<crate::flowin::FlowReport>>,
    pub health: TickHealth,
    pub late_shards_total: u64,
    pub shards_merged: u64,
    /// Live UDP flows pushed out of the workers' flow tables since start.
    pub udp_flows_evicted: u64,
    pub config: Arc<serde_json::Value>,
    pub runtime: Arc<RuntimeInfo>,
    /// The `/all` body, rendered on first request.
    pub all_json: OnceLock<Bytes>,
    /// The `/active` body, rendered on first request.
    pub active_json: OnceLock<Bytes>,
    /// The `/metrics` body, rendered on first request.
    pub metrics_text: OnceLock<Bytes>,
    /// The event stream's message for this tick, rendered once for every
    /// listener.
    pub stream_event: OnceLock<Bytes>,
}

impl Snapshot {
    /// The picture before the first tick: nothing counted yet.
    pub fn empty(config: &Config, runtime: RuntimeInfo) -> Snapshot {
        Snapshot {
            tick: 0,
            ticks_closed: 0,
            unix_ms: 0,
            tick_ms: config.tick().as_millis() as u64,
            window_ticks: config.interval_ticks(),
            chart_min_bytes: config.traffic.chart_min_bytes.0,
            hosts: Arc::default(),
            hosts_unlisted: 0,
            ifaces: Vec::new(),
            window: Totals::default(),
            drop_ratio: 0.0,
            lifetime: Totals::default(),
            lifetime_untracked: Untracked::default(),
            tables: TableFill {
                hosts: 0,
                max_hosts: config.traffic.max_hosts,
                pairs: 0,
                max_pairs: config.traffic.max_pairs,
                bytes: 0,
            },
            alerts: Arc::default(),
            alerts_opened: [0; KINDS],
            alerts_closed: [0; KINDS],
            closed: Vec::new(),
            sinks: Vec::new(),
            mitigation: None,
            attacks: None,
            export: None,
            flow_input: None,
            health: TickHealth::default(),
            late_shards_total: 0,
            shards_merged: 0,
            udp_flows_evicted: 0,
            config: Arc::new(serde_json::to_value(config).unwrap_or_default()),
            runtime: Arc::new(runtime),
            all_json: OnceLock::new(),
            active_json: OnceLock::new(),
            metrics_text: OnceLock::new(),
            stream_event: OnceLock::new(),
        }
    }

    /// The `/all` response body: the original TrafficAlerted's shape, a list
    /// of `{"EventType","SourceIP","DestinationIP":[{"IP","Bytes"}],
    /// "TotalBytes"}` for every source that sent at least `chart_min_bytes`
    /// over the window, most bytes first.
    pub fn all_json(&self) -> Bytes {
        self.all_json
            .get_or_init(|| {
                legacy(
                    self.hosts
                        .iter()
                        .filter(|h| h.sent_bytes >= self.chart_min_bytes.max(1)),
                )
            })
            .clone()
    }

    /// The `/active` response body: the same shape, one entry per source
    /// with an open traffic or scan alert (restored ones included), in the
    /// order their first alert opened.
    pub fn active_json(&self) -> Bytes {
        self.active_json
            .get_or_init(|| {
                let mut subjects: Vec<(Addr, u32, Vec<DestView>, u64)> = Vec::new();
                // The original's kinds only: its readers know no others.
                let legacy = |k: AlertKind| {
                    matches!(
                        k,
                        AlertKind::Traffic | AlertKind::AddressScan | AlertKind::PortScan
                    )
                };
                for a in self.alerts.iter().filter(|a| legacy(a.kind)) {
                    let addr = Addr::from(a.subject);
                    let i = match subjects.iter().position(|s| s.0 == addr) {
                        Some(i) => i,
                        None => {
                            let host = self.hosts.iter().find(|h| h.addr == addr);
                            let dests = match host {
                                Some(h) if !h.destinations.is_empty() => h.destinations.clone(),
                                _ => a
                                    .evidence
                                    .destinations
                                    .iter()
                                    .map(|p| DestView {
                                        addr: Addr::from(p.ip),
                                        bytes: p.bytes,
                                        packets: p.packets,
                                    })
                                    .collect(),
                            };
                            let total = host.map_or(0, |h| h.sent_bytes);
                            subjects.push((addr, 0, dests, total));
                            subjects.len() - 1
                        }
                    };
                    subjects[i].1 |= a.kind.bit();
                    if a.kind == AlertKind::Traffic && a.unit == crate::alert::Unit::Bytes {
                        subjects[i].3 = subjects[i].3.max(a.value);
                    }
                }
                let list: Vec<LegacyEvent<'_>> = subjects
                    .iter()
                    .map(|(addr, bits, dests, total)| LegacyEvent {
                        event_type: event_type(*bits),
                        source_ip: *addr,
                        destination_ip: dests,
                        total_bytes: *total,
                    })
                    .collect();
                Bytes::from(serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec()))
            })
            .clone()
    }
}

/// The original's event type for a set of open alert kinds.
fn event_type(bits: u32) -> &'static str {
    let traffic = bits & AlertKind::Traffic.bit() != 0;
    let scanning = bits & (AlertKind::AddressScan.bit() | AlertKind::PortScan.bit()) != 0;
    match (traffic, scanning) {
        (true, true) => "TRAFFIC+SCANNING",
        (true, false) => "TRAFFIC",
        (false, true) => "SCANNING",
        (false, false) => "NONE",
    }
}

fn legacy<'a>(hosts: impl Iterator<Item = &'a HostView>) -> Bytes {
    let list: Vec<LegacyEvent<'_>> = hosts
        .map(|h| LegacyEvent {
            event_type: h.event_type(),
            source_ip: h.addr,
            destination_ip: &h.destinations,
            total_bytes: h.sent_bytes,
        })
        .collect();
    Bytes::from(serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec()))
}

/// The original's `HumanEvent`, field names and all.
#[derive(Serialize)]
struct LegacyEvent<'a> {
    #[serde(rename = "EventType")]
    event_type: &'static str,
    #[serde(rename = "SourceIP", serialize_with = "addr_str")]
    source_ip: Addr,
    #[serde(rename = "DestinationIP", serialize_with = "legacy_dests")]
    destination_ip: &'a [DestView],
    #[serde(rename = "TotalBytes")]
    total_bytes: u64,
}

fn addr_str<S: serde::Serializer>(a: &Addr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(a)
}

fn legacy_dests<S: serde::Serializer>(d: &&[DestView], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Dest {
        #[serde(rename = "IP")]
        ip: String,
        #[serde(rename = "Bytes")]
        bytes: u64,
    }
    s.collect_seq(d.iter().map(|d| Dest {
        ip: d.addr.to_string(),
        bytes: d.bytes,
    }))
}

/// Where the latest snapshot is published, and who is told when a new one
/// arrives (the event stream).
#[derive(Debug)]
pub struct Publisher {
    snap: ArcSwap<Snapshot>,
    tick: tokio::sync::watch::Sender<u64>,
}

impl Publisher {
    /// The latest snapshot.
    pub fn load(&self) -> Arc<Snapshot> {
        self.snap.load_full()
    }

    /// Swaps in a new snapshot and tells the subscribers.
    pub fn store(&self, s: Arc<Snapshot>) {
        let tick = s.tick;
        self.snap.store(s);
        self.tick.send_replace(tick);
    }

    /// Told of every new snapshot (by its tick).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tick.subscribe()
    }
}

/// The shared publication point.
pub type Published = Arc<Publisher>;

/// Makes a publication point holding `initial`.
pub fn publish(initial: Snapshot) -> Published {
    let (tick, _) = tokio::sync::watch::channel(initial.tick);
    Arc::new(Publisher {
        snap: ArcSwap::from_pointee(initial),
        tick,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(n: u8, sent: u64, alerts: u32) -> HostView {
        HostView {
            addr: Addr::from_v4([10, 0, 0, n]),
            sent_bytes: sent,
            sent_packets: 1,
            recv_bytes: 0,
            recv_packets: 0,
            contacted: 0,
            ports: 0,
            alerts,
            destinations: vec![DestView {
                addr: "2001:db8::1".parse::<std::net::IpAddr>().unwrap().into(),
                bytes: sent,
                packets: 1,
            }],
        }
    }

    #[test]
    fn all_json_has_the_original_shape() {
        let mut s = Snapshot::empty(&Config::default(), RuntimeInfo::default());
        s.chart_min_bytes = 100;
        s.hosts = Arc::new(vec![host(1, 500, 0), host(2, 99, 0)]);
        let v: serde_json::Value = serde_json::from_slice(&s.all_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{
                "EventType": "NONE",
                "SourceIP": "10.0.0.1",
                "DestinationIP": [{"IP": "2001:db8::1", "Bytes": 500}],
                "TotalBytes": 500
            }])
        );
    }

    #[test]
    fn event_types_are_set_correctly() {
        let t = AlertKind::Traffic.bit();
        let a = AlertKind::AddressScan.bit();
        let p = AlertKind::PortScan.bit();
        let i = AlertKind::Inbound.bit();
        assert_eq!(host(1, 1, 0).event_type(), "NONE");
        assert_eq!(
            host(1, 1, i).event_type(),
            "NONE",
            "an inbound alert is about a destination"
        );
        assert_eq!(host(1, 1, t).event_type(), "TRAFFIC");
        assert_eq!(host(1, 1, a).event_type(), "SCANNING");
        assert_eq!(host(1, 1, p).event_type(), "SCANNING");
        assert_eq!(host(1, 1, t | p).event_type(), "TRAFFIC+SCANNING");
    }

    fn alert(kind: AlertKind, n: u8) -> Alert {
        Alert {
            value: 700,
            peak: 700,
            ..Alert::sample(u64::from(n), kind, &format!("10.0.0.{n}"))
        }
    }

    #[test]
    fn active_lists_each_alerting_source_once() {
        let mut s = Snapshot::empty(&Config::default(), RuntimeInfo::default());
        s.hosts = Arc::new(vec![
            host(1, 500, AlertKind::Traffic.bit()),
            host(2, 400, 0),
        ]);
        s.alerts = Arc::new(vec![
            alert(AlertKind::Traffic, 1),
            alert(AlertKind::PortScan, 1),
            alert(AlertKind::Inbound, 2),
            alert(AlertKind::AddressScan, 3),
        ]);
        let v: serde_json::Value = serde_json::from_slice(&s.active_json()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
        assert_eq!(v[0]["EventType"], "TRAFFIC+SCANNING");
        assert_eq!(v[0]["SourceIP"], "10.0.0.1");
        assert_eq!(
            v[0]["TotalBytes"], 700,
            "the alert's value when above the window's"
        );
        assert_eq!(v[0]["DestinationIP"][0]["IP"], "2001:db8::1");
        assert_eq!(
            v[1]["SourceIP"], "10.0.0.3",
            "a restored alert without traffic yet"
        );
        assert_eq!(v[1]["EventType"], "SCANNING");
    }

    #[test]
    fn empty_snapshot_renders_empty_lists() {
        let s = Snapshot::empty(&Config::default(), RuntimeInfo::default());
        assert_eq!(&s.all_json()[..], b"[]");
        assert_eq!(&s.active_json()[..], b"[]");
    }
}
