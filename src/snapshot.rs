//! The immutable picture of one tick that every reader (HTTP, logs, the
//! exit summary) works from. The aggregator builds a new one each tick and
//! swaps it in atomically; readers never touch the counters themselves.

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::Serialize;

use crate::aggregator::{RuntimeInfo, TickHealth};
use crate::config::Config;
use crate::counters::IfaceReport;
use crate::shard::{Totals, Untracked};
use crate::wire::Addr;

/// One destination of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestView {
    pub addr: Addr,
    pub bytes: u64,
    pub packets: u64,
}

/// One host's totals in the current interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    pub addr: Addr,
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub recv_bytes: u64,
    pub recv_packets: u64,
    pub peers: u32,
    pub contacted: u32,
    pub ports: u32,
    /// Largest destinations first; only for hosts at or above the chart
    /// threshold.
    pub destinations: Vec<DestView>,
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
    pub ports: usize,
    pub max_ports: usize,
}

/// Everything a reader may ask about, as of the end of one tick.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub tick: u64,
    /// Wall-clock time the tick was closed, ms since the Unix epoch.
    pub unix_ms: u64,
    pub interval_start_tick: u64,
    pub interval_ticks: u64,
    pub chart_min_bytes: u64,
    /// Every host of the interval, most bytes sent first.
    pub hosts: Vec<HostView>,
    pub ifaces: Vec<IfaceView>,
    /// The interval's totals and what its tables could not hold.
    pub totals: Totals,
    pub untracked: Untracked,
    /// Since start.
    pub lifetime: Totals,
    pub lifetime_untracked: Untracked,
    pub tables: TableFill,
    pub health: TickHealth,
    pub late_shards_total: u64,
    pub shards_merged: u64,
    pub config: Arc<serde_json::Value>,
    pub runtime: Arc<RuntimeInfo>,
    /// The `/all` body, rendered on first request.
    pub all_json: OnceLock<Bytes>,
}

impl Snapshot {
    /// The picture before the first tick: nothing counted yet.
    pub fn empty(config: &Config, runtime: RuntimeInfo) -> Snapshot {
        Snapshot {
            tick: 0,
            unix_ms: 0,
            interval_start_tick: 0,
            interval_ticks: config.interval_ticks(),
            chart_min_bytes: config.traffic.chart_min_bytes.0,
            hosts: Vec::new(),
            ifaces: Vec::new(),
            totals: Totals::default(),
            untracked: Untracked::default(),
            lifetime: Totals::default(),
            lifetime_untracked: Untracked::default(),
            tables: TableFill {
                hosts: 0,
                max_hosts: config.traffic.max_hosts,
                pairs: 0,
                max_pairs: config.traffic.max_pairs,
                ports: 0,
                max_ports: config.traffic.max_pairs,
            },
            health: TickHealth::default(),
            late_shards_total: 0,
            shards_merged: 0,
            config: Arc::new(serde_json::to_value(config).unwrap_or_default()),
            runtime: Arc::new(runtime),
            all_json: OnceLock::new(),
        }
    }

    /// The `/all` response body: the original TrafficAlerted's shape, a list
    /// of `{"EventType","SourceIP","DestinationIP":[{"IP","Bytes"}],
    /// "TotalBytes"}` for every source that sent at least `chart_min_bytes`
    /// this interval, most bytes first.
    pub fn all_json(&self) -> Bytes {
        self.all_json
            .get_or_init(|| {
                let list: Vec<LegacyEvent<'_>> = self
                    .hosts
                    .iter()
                    .take_while(|h| h.sent_bytes >= self.chart_min_bytes.max(1))
                    .map(|h| LegacyEvent {
                        event_type: "NONE",
                        source_ip: h.addr,
                        destination_ip: &h.destinations,
                        total_bytes: h.sent_bytes,
                    })
                    .collect();
                Bytes::from(serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec()))
            })
            .clone()
    }
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

/// Where the latest snapshot is published.
pub type Published = Arc<ArcSwap<Snapshot>>;

/// Makes a publication point holding `initial`.
pub fn publish(initial: Snapshot) -> Published {
    Arc::new(ArcSwap::from_pointee(initial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_json_has_the_original_shape() {
        let mut s = Snapshot::empty(&Config::default(), RuntimeInfo::default());
        s.chart_min_bytes = 100;
        s.hosts = vec![
            HostView {
                addr: Addr::from_v4([10, 0, 0, 1]),
                sent_bytes: 500,
                sent_packets: 5,
                recv_bytes: 0,
                recv_packets: 0,
                peers: 1,
                contacted: 1,
                ports: 1,
                destinations: vec![DestView {
                    addr: "2001:db8::1".parse::<std::net::IpAddr>().unwrap().into(),
                    bytes: 500,
                    packets: 5,
                }],
            },
            HostView {
                addr: Addr::from_v4([10, 0, 0, 2]),
                sent_bytes: 99,
                sent_packets: 1,
                recv_bytes: 0,
                recv_packets: 0,
                peers: 0,
                contacted: 0,
                ports: 0,
                destinations: vec![],
            },
        ];
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
    fn empty_snapshot_renders_an_empty_list() {
        let s = Snapshot::empty(&Config::default(), RuntimeInfo::default());
        assert_eq!(&s.all_json()[..], b"[]");
    }
}
