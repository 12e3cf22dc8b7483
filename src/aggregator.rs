//! Merges the workers' shards into the totals of the current interval and
//! turns them into a [`Snapshot`] once per tick.
//!
//! The aggregator is driven from outside: [`Aggregator::merge`] for each
//! shard, [`Aggregator::end_tick`] when a tick is complete. Live capture calls
//! them from the aggregator thread on the monotonic clock; tests call them by
//! hand with made-up ticks, so nothing here sleeps or reads a clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

use crate::counters::{IfaceDelta, IfaceReport};
use crate::shard::{Hasher, Shard, Totals, Untracked, role_bits};
use crate::snapshot::{DestView, HostView, IfaceView, Snapshot, TableFill};
use crate::wire::Addr;

/// What the aggregator needs from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// Ticks per counting interval.
    pub interval_ticks: u64,
    pub max_hosts: usize,
    pub max_pairs: usize,
    pub max_ports: usize,
    /// Destinations kept per source in the snapshot.
    pub keep_destinations: usize,
    /// Sources below this many bytes get no destination list.
    pub chart_min_bytes: u64,
}

impl AggregatorConfig {
    pub fn from_config(c: &crate::config::Config) -> Self {
        AggregatorConfig {
            interval_ticks: c.interval_ticks(),
            max_hosts: c.traffic.max_hosts,
            max_pairs: c.traffic.max_pairs,
            max_ports: c.traffic.max_pairs,
            keep_destinations: c.traffic.keep_destinations,
            chart_min_bytes: c.traffic.chart_min_bytes.0,
        }
    }
}

/// A host's totals within the interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostTotals {
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub recv_bytes: u64,
    pub recv_packets: u64,
    /// Distinct destinations it sent to.
    pub peers: u32,
    /// Distinct destinations it sent an initiation to (SYN, UDP, echo
    /// request, SCTP INIT).
    pub contacted: u32,
    /// Distinct (protocol, destination port) it initiated contact to.
    pub ports: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PairTotals {
    bytes: u64,
    packets: u64,
    roles: u8,
}

/// The running interval's tables.
#[derive(Debug)]
struct Interval {
    start_tick: u64,
    hosts: HashMap<Addr, HostTotals, Hasher>,
    pairs: HashMap<(Addr, Addr), PairTotals, Hasher>,
    ports: hashbrown::HashSet<(Addr, u8, u16), Hasher>,
    untracked: Untracked,
    totals: Totals,
}

impl Interval {
    fn new(start_tick: u64, hasher: &Hasher) -> Self {
        Interval {
            start_tick,
            hosts: HashMap::with_hasher(hasher.clone()),
            pairs: HashMap::with_hasher(hasher.clone()),
            ports: hashbrown::HashSet::with_hasher(hasher.clone()),
            untracked: Untracked::default(),
            totals: Totals::default(),
        }
    }

    fn reset(&mut self, start_tick: u64) {
        self.start_tick = start_tick;
        self.hosts.clear();
        self.pairs.clear();
        self.ports.clear();
        self.untracked = Untracked::default();
        self.totals = Totals::default();
    }
}

/// An interface as the aggregator knows it.
#[derive(Debug, Clone)]
struct IfaceState {
    name: String,
    link: String,
    present: bool,
    totals: IfaceDelta,
    this_tick: IfaceDelta,
    last_tick: IfaceDelta,
    removed_at: Option<u64>,
}

/// Interfaces that are gone are kept this many ticks for their totals, then
/// forgotten, so that interface churn (containers) cannot grow memory.
const KEEP_REMOVED_TICKS: u64 = 3600;
/// And never more than this many.
const MAX_REMOVED: usize = 256;

/// Facts about the running daemon that the aggregator passes through to the
/// snapshot.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RuntimeInfo {
    pub version: &'static str,
    pub workers: usize,
    pub cpus: Vec<usize>,
    pub wait: String,
    pub ring_block_size: u64,
    pub ring_block_count: u32,
    pub ring_memory_max: u64,
    pub source: String,
}

/// Per-tick health of the hand-over between workers and aggregator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickHealth {
    /// Workers whose shard for this tick had not arrived when the tick was
    /// closed; their packets are counted in a later tick.
    pub late_workers: u32,
    /// Time spent merging and building the snapshot, microseconds.
    pub merge_micros: u64,
}

/// Merges shards and builds snapshots.
#[derive(Debug)]
pub struct Aggregator {
    cfg: AggregatorConfig,
    interval: Interval,
    ifaces: BTreeMap<u32, IfaceState>,
    lifetime: Totals,
    lifetime_untracked: Untracked,
    shards_merged: u64,
    late_total: u64,
    config_json: Arc<serde_json::Value>,
    runtime: Arc<RuntimeInfo>,
}

impl Aggregator {
    pub fn new(
        cfg: AggregatorConfig,
        config_json: serde_json::Value,
        runtime: RuntimeInfo,
    ) -> Aggregator {
        let hasher = Hasher::new();
        Aggregator {
            cfg,
            interval: Interval::new(0, &hasher),
            ifaces: BTreeMap::new(),
            lifetime: Totals::default(),
            lifetime_untracked: Untracked::default(),
            shards_merged: 0,
            late_total: 0,
            config_json: Arc::new(config_json),
            runtime: Arc::new(runtime),
        }
    }

    /// An interface started being watched.
    pub fn iface_added(&mut self, ifindex: u32, name: &str, link: &str) {
        let st = self.ifaces.entry(ifindex).or_insert_with(|| IfaceState {
            name: name.to_string(),
            link: link.to_string(),
            present: true,
            totals: IfaceDelta::new(ifindex),
            this_tick: IfaceDelta::new(ifindex),
            last_tick: IfaceDelta::new(ifindex),
            removed_at: None,
        });
        st.name = name.to_string();
        st.link = link.to_string();
        st.present = true;
        st.removed_at = None;
    }

    /// An interface stopped being watched at `tick`.
    pub fn iface_removed(&mut self, ifindex: u32, tick: u64) {
        if let Some(st) = self.ifaces.get_mut(&ifindex) {
            st.present = false;
            st.removed_at = Some(tick);
        }
    }

    /// Adds a shard's counts to the interval. The shard is left as it was;
    /// the caller clears it for reuse.
    pub fn merge(&mut self, shard: &Shard) {
        self.shards_merged += 1;
        let iv = &mut self.interval;
        iv.totals.packets += shard.totals.packets;
        iv.totals.bytes += shard.totals.bytes;
        iv.untracked.add(&shard.untracked);
        self.lifetime.packets += shard.totals.packets;
        self.lifetime.bytes += shard.totals.bytes;
        self.lifetime_untracked.add(&shard.untracked);

        let mut overflow = Untracked::default();
        for h in shard.hosts() {
            let full = iv.hosts.len() >= self.cfg.max_hosts;
            match iv.hosts.entry(h.addr) {
                Entry::Occupied(mut e) => add_host(e.get_mut(), h),
                Entry::Vacant(v) if !full => add_host(v.insert(HostTotals::default()), h),
                Entry::Vacant(_) => {
                    overflow.src_bytes += h.sent_bytes;
                    overflow.src_packets += h.sent_packets;
                    overflow.dst_bytes += h.recv_bytes;
                    overflow.dst_packets += h.recv_packets;
                }
            }
        }
        for (src, dst, p) in shard.pairs() {
            let full = iv.pairs.len() >= self.cfg.max_pairs;
            let (new_pair, gained_initiation) = match iv.pairs.entry((src, dst)) {
                Entry::Occupied(mut e) => {
                    let t = e.get_mut();
                    let gained = t.roles & role_bits::INITIATION == 0
                        && p.roles & role_bits::INITIATION != 0;
                    t.bytes += p.bytes;
                    t.packets += p.packets;
                    t.roles |= p.roles;
                    (false, gained)
                }
                Entry::Vacant(v) if !full => {
                    v.insert(PairTotals {
                        bytes: p.bytes,
                        packets: p.packets,
                        roles: p.roles,
                    });
                    (true, p.roles & role_bits::INITIATION != 0)
                }
                Entry::Vacant(_) => {
                    overflow.pair_bytes += p.bytes;
                    overflow.pair_packets += p.packets;
                    continue;
                }
            };
            if let Some(h) = iv.hosts.get_mut(&src) {
                h.peers += u32::from(new_pair);
                h.contacted += u32::from(gained_initiation);
            }
        }
        for (src, proto, port) in shard.ports() {
            if iv.ports.len() >= self.cfg.max_ports {
                if !iv.ports.contains(&(src, proto, port)) {
                    overflow.port_initiations += 1;
                }
                continue;
            }
            if iv.ports.insert((src, proto, port)) {
                if let Some(h) = iv.hosts.get_mut(&src) {
                    h.ports += 1;
                }
            }
        }
        iv.untracked.add(&overflow);
        self.lifetime_untracked.add(&overflow);

        for d in &shard.ifaces {
            // Deltas of an interface we were never told about (a race with
            // its removal) still count, under its index.
            let st = self.ifaces.entry(d.ifindex).or_insert_with(|| IfaceState {
                name: format!("if{}", d.ifindex),
                link: String::new(),
                present: false,
                totals: IfaceDelta::new(d.ifindex),
                this_tick: IfaceDelta::new(d.ifindex),
                last_tick: IfaceDelta::new(d.ifindex),
                removed_at: None,
            });
            st.totals.add(d);
            st.this_tick.add(d);
        }
    }

    /// Closes tick `tick`: builds the snapshot of the interval so far, then
    /// starts a new interval if this tick ended one.
    pub fn end_tick(&mut self, tick: u64, health: TickHealth, unix_ms: u64) -> Snapshot {
        self.late_total += u64::from(health.late_workers);
        for st in self.ifaces.values_mut() {
            st.last_tick = st.this_tick.take();
        }
        self.forget_removed(tick);
        let snap = self.snapshot(tick, health, unix_ms);
        if (tick + 1) % self.cfg.interval_ticks == 0 {
            self.interval.reset(tick + 1);
        }
        snap
    }

    fn forget_removed(&mut self, tick: u64) {
        self.ifaces.retain(|_, st| match st.removed_at {
            Some(t) => tick.saturating_sub(t) < KEEP_REMOVED_TICKS,
            None => true,
        });
        let removed: Vec<(u64, u32)> = self
            .ifaces
            .iter()
            .filter_map(|(&i, st)| st.removed_at.map(|t| (t, i)))
            .collect();
        if removed.len() > MAX_REMOVED {
            let mut removed = removed;
            removed.sort();
            for &(_, i) in &removed[..removed.len() - MAX_REMOVED] {
                self.ifaces.remove(&i);
            }
        }
    }

    fn snapshot(&self, tick: u64, health: TickHealth, unix_ms: u64) -> Snapshot {
        let iv = &self.interval;
        let mut hosts: Vec<HostView> = iv
            .hosts
            .iter()
            .map(|(&addr, t)| HostView {
                addr,
                sent_bytes: t.sent_bytes,
                sent_packets: t.sent_packets,
                recv_bytes: t.recv_bytes,
                recv_packets: t.recv_packets,
                peers: t.peers,
                contacted: t.contacted,
                ports: t.ports,
                destinations: Vec::new(),
            })
            .collect();
        hosts.sort_unstable_by(|a, b| b.sent_bytes.cmp(&a.sent_bytes).then(a.addr.cmp(&b.addr)));

        // Destinations only for the sources that make the chart.
        let charted = hosts
            .iter()
            .take_while(|h| h.sent_bytes >= self.cfg.chart_min_bytes.max(1))
            .count();
        if charted > 0 && self.cfg.keep_destinations > 0 {
            let pos: HashMap<Addr, usize, Hasher> = hosts[..charted]
                .iter()
                .enumerate()
                .map(|(i, h)| (h.addr, i))
                .collect();
            for (&(src, dst), p) in &iv.pairs {
                if let Some(&i) = pos.get(&src) {
                    hosts[i].destinations.push(DestView {
                        addr: dst,
                        bytes: p.bytes,
                        packets: p.packets,
                    });
                }
            }
            for h in &mut hosts[..charted] {
                h.destinations
                    .sort_unstable_by(|a, b| b.bytes.cmp(&a.bytes).then(a.addr.cmp(&b.addr)));
                h.destinations.truncate(self.cfg.keep_destinations);
            }
        }

        let ifaces = self
            .ifaces
            .iter()
            .map(|(&ifindex, st)| IfaceView {
                ifindex,
                name: st.name.clone(),
                link: st.link.clone(),
                present: st.present,
                totals: IfaceReport::from(&st.totals),
                last_tick: IfaceReport::from(&st.last_tick),
            })
            .collect();

        Snapshot {
            tick,
            unix_ms,
            interval_start_tick: iv.start_tick,
            interval_ticks: self.cfg.interval_ticks,
            chart_min_bytes: self.cfg.chart_min_bytes,
            hosts,
            ifaces,
            totals: iv.totals,
            untracked: iv.untracked,
            lifetime: self.lifetime,
            lifetime_untracked: self.lifetime_untracked,
            tables: TableFill {
                hosts: iv.hosts.len(),
                max_hosts: self.cfg.max_hosts,
                pairs: iv.pairs.len(),
                max_pairs: self.cfg.max_pairs,
                ports: iv.ports.len(),
                max_ports: self.cfg.max_ports,
            },
            health,
            late_shards_total: self.late_total,
            shards_merged: self.shards_merged,
            config: self.config_json.clone(),
            runtime: self.runtime.clone(),
            all_json: Default::default(),
        }
    }
}

fn add_host(t: &mut HostTotals, h: &crate::shard::HostCounters) {
    t.sent_bytes += h.sent_bytes;
    t.sent_packets += h.sent_packets;
    t.recv_bytes += h.recv_bytes;
    t.recv_packets += h.recv_packets;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::ShardLimits;
    use crate::wire::{Role, Summary, proto};

    fn cfg() -> AggregatorConfig {
        AggregatorConfig {
            interval_ticks: 3,
            max_hosts: 100,
            max_pairs: 100,
            max_ports: 100,
            keep_destinations: 2,
            chart_min_bytes: 1,
        }
    }

    fn agg(c: AggregatorConfig) -> Aggregator {
        Aggregator::new(c, serde_json::json!({}), RuntimeInfo::default())
    }

    fn shard() -> Shard {
        Shard::new(
            ShardLimits {
                max_hosts: 100,
                max_pairs: 100,
                max_ports: 100,
            },
            &Hasher::new(),
        )
    }

    fn a(n: u8) -> Addr {
        Addr::from_v4([10, 0, 0, n])
    }

    fn pkt(src: u8, dst: u8, len: u32, port: u16) -> Summary {
        Summary {
            src: a(src),
            dst: a(dst),
            l3_len: len,
            proto: proto::TCP,
            dst_port: port,
            has_ports: true,
            role: Role::Initiation,
            ..Summary::default()
        }
    }

    fn host(s: &Snapshot, n: u8) -> &HostView {
        s.hosts.iter().find(|h| h.addr == a(n)).unwrap()
    }

    #[test]
    fn shards_of_several_workers_add_up_exactly() {
        let mut g = agg(cfg());
        let mut w1 = shard();
        let mut w2 = shard();
        w1.record(&pkt(1, 2, 1000, 80));
        w2.record(&pkt(1, 2, 500, 80));
        w2.record(&pkt(1, 3, 10, 443));
        w1.record(&pkt(4, 1, 7, 22));
        g.merge(&w1);
        g.merge(&w2);
        let s = g.end_tick(0, TickHealth::default(), 0);
        let h1 = host(&s, 1);
        assert_eq!(h1.sent_bytes, 1510);
        assert_eq!(h1.sent_packets, 3);
        assert_eq!(h1.recv_bytes, 7);
        assert_eq!((h1.peers, h1.contacted, h1.ports), (2, 2, 2));
        assert_eq!(h1.destinations.len(), 2);
        assert_eq!(h1.destinations[0].addr, a(2));
        assert_eq!(h1.destinations[0].bytes, 1500);
        assert_eq!(s.totals.bytes, 1517);
        assert_eq!(s.hosts[0].addr, a(1), "sorted by bytes sent");
    }

    #[test]
    fn counts_survive_ticks_and_reset_at_interval_end() {
        let mut g = agg(cfg());
        for tick in 0..3 {
            let mut sh = shard();
            sh.record(&pkt(1, 2, 100, 80));
            g.merge(&sh);
            let s = g.end_tick(tick, TickHealth::default(), 0);
            assert_eq!(host(&s, 1).sent_bytes, 100 * (tick + 1));
        }
        let mut sh = shard();
        sh.record(&pkt(1, 2, 5, 80));
        g.merge(&sh);
        let s = g.end_tick(3, TickHealth::default(), 0);
        assert_eq!(host(&s, 1).sent_bytes, 5);
        assert_eq!(s.interval_start_tick, 3);
        assert_eq!(s.lifetime.bytes, 305);
    }

    #[test]
    fn bytes_beyond_64k_times_64k_do_not_wrap() {
        // The original counted in u32 and saturated near 2.1 GB.
        let mut g = agg(cfg());
        for _ in 0..100 {
            let mut sh = shard();
            for _ in 0..1000 {
                sh.record(&pkt(1, 2, 65_535, 80));
            }
            g.merge(&sh);
        }
        let s = g.end_tick(0, TickHealth::default(), 0);
        assert_eq!(host(&s, 1).sent_bytes, 6_553_500_000);
    }

    #[test]
    fn full_host_table_reports_untracked_and_stays_bounded() {
        let mut c = cfg();
        c.max_hosts = 3;
        c.max_pairs = 2;
        let mut g = agg(c);
        let mut sh = shard();
        for i in 0..20 {
            sh.record(&pkt(i, 200, 10, 80));
        }
        g.merge(&sh);
        let s = g.end_tick(0, TickHealth::default(), 0);
        assert_eq!(s.tables.hosts, 3);
        assert!(s.tables.pairs <= 2);
        let tracked: u64 = s.hosts.iter().map(|h| h.sent_bytes).sum();
        assert_eq!(tracked + s.untracked.src_bytes, 200);
        assert!(s.untracked.pair_bytes >= 160);
    }

    #[test]
    fn chart_threshold_limits_destination_lists() {
        let mut c = cfg();
        c.chart_min_bytes = 1000;
        let mut g = agg(c);
        let mut sh = shard();
        sh.record(&pkt(1, 2, 2000, 80));
        sh.record(&pkt(3, 2, 10, 80));
        g.merge(&sh);
        let s = g.end_tick(0, TickHealth::default(), 0);
        assert_eq!(host(&s, 1).destinations.len(), 1);
        assert!(host(&s, 3).destinations.is_empty());
    }

    #[test]
    fn interface_deltas_accumulate_and_removed_ones_are_forgotten() {
        let mut g = agg(cfg());
        g.iface_added(7, "eth0", "ethernet");
        let mut sh = shard();
        let mut d = IfaceDelta::new(7);
        d.frames = 5;
        d.kernel_drops = 1;
        sh.ifaces.push(d);
        sh.ifaces.push(d);
        g.merge(&sh);
        let s = g.end_tick(0, TickHealth::default(), 0);
        assert_eq!(s.ifaces[0].totals.frames, 10);
        assert_eq!(s.ifaces[0].last_tick.frames, 10);
        assert_eq!(s.ifaces[0].totals.kernel_drops, 2);
        let s = g.end_tick(1, TickHealth::default(), 0);
        assert_eq!(s.ifaces[0].last_tick.frames, 0);
        g.iface_removed(7, 2);
        let s = g.end_tick(2, TickHealth::default(), 0);
        assert!(!s.ifaces[0].present);
        let s = g.end_tick(2 + KEEP_REMOVED_TICKS, TickHealth::default(), 0);
        assert!(s.ifaces.is_empty());
    }

    #[test]
    fn removed_interfaces_are_capped() {
        let mut g = agg(cfg());
        for i in 0..(MAX_REMOVED as u32 + 50) {
            g.iface_added(i, &format!("veth{i}"), "ethernet");
            g.iface_removed(i, u64::from(i));
        }
        let s = g.end_tick(10, TickHealth::default(), 0);
        assert_eq!(s.ifaces.len(), MAX_REMOVED);
    }
}
