//! Merges the workers' shards into sliding windows per host and per pair,
//! runs the detectors, keeps the alerts, and turns it all into a
//! [`Snapshot`] once per tick.
//!
//! The aggregator is driven from outside: [`Aggregator::merge`] for each
//! shard, [`Aggregator::end_tick`] when a tick is complete. Live capture calls
//! them from the aggregator thread on the monotonic clock, replay on packet
//! timestamps, tests by hand with made-up ticks — nothing here sleeps or
//! reads a clock.
//!
//! A tick's work follows what moved: the hosts that had traffic in it,
//! those whose window lost a bucket in it or whose counts all expired
//! (scheduled in a timing wheel when they had traffic), and the open alerts
//! whose value can fall or whose hold-down ends (scheduled by the alert
//! lifecycle). Nothing visits every tracked host or every open alert; an
//! empty tick costs next to nothing, and [`Aggregator::next_due`] tells a
//! reader on packet time how far it may jump over empty ones.

mod evidence;
mod failed;
mod ifaces;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::alert::{Alert, AlertEvent, AlertKind, Lifecycle, Now, Situation, Transition};
use crate::config::{Config, ScanCount};
use crate::counters::IfaceDelta;
use crate::detect::{self, Ctx, Detector, Reading};
use crate::hosts::HostTable;
use crate::pairs::{PairCount, PairWindow};
use crate::ranking::Ranking;
use crate::rules::RuleSet;
use crate::shard::{Contact, Hasher, Shard, Totals, Untracked, role_bits};
use crate::snapshot::{DestView, HostView, MAX_LISTED_HOSTS, Snapshot, TableFill};
use crate::wheel::Wheel;
use crate::window::{Geometry, TotalWindow, col};
use crate::wire::Addr;

/// What the timing wheel holds: a host id and why it is due.
mod due {
    /// A bucket of the host's window slides out: its sums fall.
    pub const SLIDE: u64 = 0;
    /// All of the host's counts may have expired: free it then.
    pub const EXPIRY: u64 = 1;

    pub fn item(kind: u64, id: u32) -> u64 {
        (kind << 32) | u64::from(id)
    }

    pub fn split(item: u64) -> (u64, u32) {
        (item >> 32, item as u32)
    }
}

/// Closed alerts kept in memory for the snapshot.
const RECENT_CLOSED: usize = 200;
/// Evidence of open alerts is gathered again this often (ticks).
const EVIDENCE_EVERY: u64 = 10;

/// What the aggregator needs from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatorConfig {
    pub tick_secs: f64,
    /// Window lengths in ticks: traffic (bytes, packets, inbound), address
    /// scans, port scans.
    pub traffic_ticks: u64,
    pub scan_ticks: u64,
    pub port_ticks: u64,
    /// Ticks below the threshold before an alert closes, per kind.
    pub hold_down: [u64; 4],
    pub max_hosts: usize,
    pub max_pairs: usize,
    pub keep_destinations: usize,
    pub chart_min_bytes: u64,
    pub scan_count: ScanCount,
    pub degraded_ratio: f64,
}

impl AggregatorConfig {
    pub fn from_config(c: &Config) -> Self {
        let traffic = c.interval_ticks();
        let scan = c.ticks(c.scan.interval);
        let port = c.ticks(c.scan.port_interval);
        let windows = [traffic, scan, port, traffic];
        let hold_down = match c.alerts.hold_down {
            Some(h) => [c.ticks(h); 4],
            None => windows,
        };
        AggregatorConfig {
            tick_secs: c.tick().as_secs_f64(),
            traffic_ticks: traffic,
            scan_ticks: scan,
            port_ticks: port,
            hold_down,
            max_hosts: c.traffic.max_hosts,
            max_pairs: c.traffic.max_pairs,
            keep_destinations: c.traffic.keep_destinations,
            chart_min_bytes: c.traffic.chart_min_bytes.0,
            scan_count: c.scan.count,
            degraded_ratio: c.alerts.degraded_drop_ratio,
        }
    }

    /// Ticks after a host's last traffic or contact by which all of its
    /// counts have left their windows.
    fn horizon(&self, g: &Geometry) -> u64 {
        (g.buckets * g.width)
            .max(self.scan_ticks)
            .max(self.port_ticks)
            + 1
    }

    fn window_secs(&self) -> [u64; 4] {
        let s = |t: u64| (t as f64 * self.tick_secs).round() as u64;
        [
            s(self.traffic_ticks),
            s(self.scan_ticks),
            s(self.port_ticks),
            s(self.traffic_ticks),
        ]
    }
}

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
    /// When the daemon started, ms since the Unix epoch.
    pub started_ms: u64,
}

/// Per-tick health of the hand-over between workers and aggregator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickHealth {
    /// Workers whose shard for this tick had not arrived when the tick was
    /// closed; their packets are counted in a later tick.
    pub late_workers: u32,
    /// Time spent merging, detecting and building the snapshot,
    /// microseconds.
    pub merge_micros: u64,
}

/// The largest senders whose destinations every snapshot carries, whatever
/// `chart_min_bytes` says: the API shows them per host and the dashboard
/// charts them when nothing reaches the chart threshold.
pub const DETAIL_HOSTS: usize = 200;

/// Merges shards, detects, keeps alerts, builds snapshots.
#[derive(Debug)]
pub struct Aggregator {
    cfg: AggregatorConfig,
    rules: RuleSet,
    geo: Geometry,
    hosts: HostTable,
    pairs: PairWindow,
    detectors: Vec<Box<dyn Detector>>,
    lifecycle: Lifecycle,
    failed: Option<failed::Pending>,
    fingerprint: Hasher,
    window_bytes: TotalWindow,
    window_packets: TotalWindow,
    kernel_packets: TotalWindow,
    kernel_drops: TotalWindow,
    ifaces: ifaces::Ifaces,
    lifetime: Totals,
    lifetime_untracked: Untracked,
    shards_merged: u64,
    udp_evicted: u64,
    late_total: u64,
    recent_closed: VecDeque<Alert>,
    opened_total: [u64; 4],
    closed_total: [u64; 4],
    touched: Vec<u32>,
    /// Host work scheduled for later ticks (window slides, expiry).
    wheel: Wheel,
    /// Hosts by bytes sent over the window, for the listed ones.
    ranking: Ranking,
    /// Scratch lists, kept for their memory.
    drained: Vec<u64>,
    /// A merged shard's host indexes to host ids here (`u32::MAX`: not
    /// tracked).
    ids: Vec<u32>,
    checks: Vec<(AlertKind, Addr)>,
    /// Work done, for tests and benchmarks that count it.
    pub work: Work,
    /// Limits changed: every open alert is looked at in the next pass.
    recheck_alerts: bool,
    /// What the last snapshot listed, reused while nothing it shows changed.
    listed: Listed,
    config_json: Arc<serde_json::Value>,
    runtime: Arc<RuntimeInfo>,
}

/// Counts of the aggregator's work since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Ticks closed.
    pub ticks: u64,
    /// Hosts the detector pass looked at (moved, or an alert due).
    pub hosts_evaluated: u64,
    /// Window slides and expiry checks of hosts taken off the wheel.
    pub hosts_due: u64,
    /// Host views built for snapshots.
    pub views_built: u64,
}

/// The hosts and alerts of the last snapshot, and until when they hold.
#[derive(Debug, Default)]
struct Listed {
    hosts: Arc<Vec<HostView>>,
    alerts: Arc<Vec<Alert>>,
    unlisted: usize,
    /// The first tick a listed host's scan count may fall.
    until: u64,
    /// Something they show changed since they were built.
    stale: bool,
}

impl Aggregator {
    pub fn new(config: &Config, runtime: RuntimeInfo) -> Aggregator {
        let cfg = AggregatorConfig::from_config(config);
        let hasher = Hasher::new();
        let window_secs = cfg.window_secs();
        Aggregator {
            rules: config.rule_set(),
            geo: Geometry::new(cfg.traffic_ticks),
            hosts: HostTable::new(cfg.max_hosts, &hasher),
            pairs: PairWindow::new(cfg.traffic_ticks, cfg.max_pairs, &hasher),
            detectors: detect::all(),
            lifecycle: Lifecycle::new(cfg.hold_down, window_secs),
            failed: (cfg.scan_count == ScanCount::Failed)
                .then(|| failed::Pending::new(cfg.max_pairs, &hasher)),
            fingerprint: Hasher::new(),
            window_bytes: TotalWindow::default(),
            window_packets: TotalWindow::default(),
            kernel_packets: TotalWindow::default(),
            kernel_drops: TotalWindow::default(),
            ifaces: ifaces::Ifaces::default(),
            lifetime: Totals::default(),
            lifetime_untracked: Untracked::default(),
            shards_merged: 0,
            udp_evicted: 0,
            late_total: 0,
            recent_closed: VecDeque::new(),
            opened_total: [0; 4],
            closed_total: [0; 4],
            touched: Vec::new(),
            wheel: Wheel::new(0),
            ranking: Ranking::new(),
            drained: Vec::new(),
            ids: Vec::new(),
            checks: Vec::new(),
            work: Work::default(),
            recheck_alerts: false,
            listed: Listed {
                stale: true,
                ..Listed::default()
            },
            config_json: Arc::new(serde_json::to_value(config).unwrap_or_default()),
            runtime: Arc::new(runtime),
            cfg,
        }
    }

    /// Takes a new configuration (SIGHUP) without losing counts or open
    /// alerts. Window lengths that changed start their windows again.
    pub fn reconfigure(&mut self, config: &Config) {
        let cfg = AggregatorConfig::from_config(config);
        if cfg.traffic_ticks != self.cfg.traffic_ticks {
            log::warn!("traffic.interval changed: host and pair windows start again empty");
            self.geo = Geometry::new(cfg.traffic_ticks);
            let hasher = Hasher::new();
            self.hosts = HostTable::new(cfg.max_hosts, &hasher);
            self.pairs = PairWindow::new(cfg.traffic_ticks, cfg.max_pairs, &hasher);
            self.window_bytes = TotalWindow::default();
            self.window_packets = TotalWindow::default();
            self.kernel_packets = TotalWindow::default();
            self.kernel_drops = TotalWindow::default();
            self.wheel = Wheel::new(0);
            self.ranking = Ranking::new();
        }
        self.rules = config.rule_set();
        // Every host is looked at again with its new limits, and every open
        // alert (some have no host).
        self.hosts.relabel(&self.rules);
        self.recheck_alerts = true;
        self.listed.stale = true;
        self.hosts.set_max(cfg.max_hosts);
        self.pairs.set_max(cfg.max_pairs);
        self.lifecycle.retime(cfg.hold_down, cfg.window_secs());
        self.failed = match (cfg.scan_count, self.failed.take()) {
            (ScanCount::Failed, Some(p)) => Some(p),
            (ScanCount::Failed, None) => Some(failed::Pending::new(cfg.max_pairs, &Hasher::new())),
            (ScanCount::Initiations, _) => None,
        };
        self.config_json = Arc::new(serde_json::to_value(config).unwrap_or_default());
        self.cfg = cfg;
    }

    /// Puts back the alerts that were open when the daemon last stopped.
    pub fn restore(&mut self, open: Vec<Alert>, max_id: u64, now: Now) {
        self.lifecycle.continue_ids_after(max_id);
        self.lifecycle.restore(open, now);
    }

    /// An interface started being watched.
    pub fn iface_added(&mut self, ifindex: u32, name: &str, link: &str) {
        self.ifaces.added(ifindex, name, link);
    }

    /// An interface stopped being watched at `tick`.
    pub fn iface_removed(&mut self, ifindex: u32, tick: u64) {
        self.ifaces.removed(ifindex, tick);
    }

    /// Adds a shard's counts, at the shard's last tick. The shard is left as
    /// it was; the caller recycles it.
    pub fn merge(&mut self, shard: &Shard) {
        let t = shard.last_tick;
        self.shards_merged += 1;
        self.udp_evicted += shard.udp_evicted;
        self.lifetime.packets += shard.totals.packets;
        self.lifetime.bytes += shard.totals.bytes;
        self.lifetime_untracked.add(&shard.untracked);
        self.window_bytes.add(&self.geo, t, shard.totals.bytes);
        self.window_packets.add(&self.geo, t, shard.totals.packets);
        let horizon = self.cfg.horizon(&self.geo);
        let g = self.geo;

        let mut overflow = Untracked::default();
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        for h in shard.hosts() {
            match self.hosts.upsert(h.addr, &self.rules) {
                Some(id) => {
                    ids.push(id);
                    let st = self.hosts.slot_mut(id);
                    st.win.add(
                        &g,
                        t,
                        [h.sent_bytes, h.sent_packets, h.recv_bytes, h.recv_packets],
                    );
                    // Its sums fall when this bucket slides out: looked at
                    // then (once per bucket it had traffic in).
                    let bucket = g.bucket(t);
                    if st.last_bucket != bucket {
                        st.last_bucket = bucket;
                        self.wheel
                            .schedule((bucket + g.buckets) * g.width, due::item(due::SLIDE, id));
                    }
                    seen(&mut self.wheel, st, id, t, horizon);
                }
                None => {
                    ids.push(u32::MAX);
                    overflow.src_bytes += h.sent_bytes;
                    overflow.src_packets += h.sent_packets;
                    overflow.dst_bytes += h.recv_bytes;
                    overflow.dst_packets += h.recv_packets;
                }
            }
        }
        let hosts = shard.hosts();
        for (si, di, p) in shard.pairs_by_index() {
            let (src, dst) = (hosts[si as usize].addr, hosts[di as usize].addr);
            let count = PairCount {
                bytes: p.bytes,
                packets: p.packets,
                roles: p.roles,
            };
            if !self.pairs.add(t, src, dst, count) {
                overflow.pair_bytes += p.bytes;
                overflow.pair_packets += p.packets;
            }
            if p.roles & role_bits::INITIATION != 0 {
                match &mut self.failed {
                    Some(f) => f.address_contact(src, dst, t),
                    None => self.address_contact_of(ids[si as usize], dst, t),
                }
            }
            if p.roles & role_bits::ANSWER != 0 {
                if let Some(f) = &mut self.failed {
                    f.answered(src, dst);
                }
            }
        }
        match &mut self.failed {
            Some(f) => {
                for c in shard.contacts() {
                    f.port_contact(c, t);
                }
            }
            None => {
                for (si, proto, port) in shard.contacts_by_index() {
                    self.port_contact_of(ids[si as usize], proto, port, t);
                }
            }
        }
        self.ids = ids;
        if let Some(f) = &mut self.failed {
            for a in shard.answers() {
                f.answer(a);
            }
        }
        self.lifetime_untracked.add(&overflow);

        for d in &shard.ifaces {
            self.ifaces.add(d);
            self.kernel_packets.add(&self.geo, t, d.kernel_packets);
            self.kernel_drops.add(&self.geo, t, d.kernel_drops);
        }
    }

    /// A source initiated contact to a destination.
    fn address_contact(&mut self, src: Addr, dst: Addr, tick: u64) {
        if let Some(id) = self.hosts.id(src) {
            self.address_contact_of(id, dst, tick);
        }
    }

    /// Host `id` (`u32::MAX`: not tracked) initiated contact to `dst`.
    #[inline]
    fn address_contact_of(&mut self, id: u32, dst: Addr, tick: u64) {
        if id == u32::MAX {
            return;
        }
        let horizon = self.cfg.horizon(&self.geo);
        let Some(limit) = self.rules.max_contacted_ips(self.hosts.slot(id).rule) else {
            return;
        };
        let key = self.fingerprint.hash_one(dst) as u32;
        let window = self.cfg.scan_ticks;
        self.hosts.with_scan(id, |s| {
            s.addresses.touch(key, tick, window, limit as usize + 1)
        });
        seen(&mut self.wheel, self.hosts.slot_mut(id), id, tick, horizon);
        // Contacts resolved a tick late (count = "failed") come without
        // traffic of their own this tick.
        self.hosts.touch(id);
    }

    /// A source initiated contact to a port.
    fn port_contact(&mut self, c: Contact, tick: u64) {
        if let Some(id) = self.hosts.id(c.from) {
            self.port_contact_of(id, c.proto, c.port, tick);
        }
    }

    /// Host `id` (`u32::MAX`: not tracked) initiated contact to a port.
    #[inline]
    fn port_contact_of(&mut self, id: u32, proto: u8, port: u16, tick: u64) {
        if id == u32::MAX {
            return;
        }
        let horizon = self.cfg.horizon(&self.geo);
        let Some(limit) = self.rules.max_contacted_ports(self.hosts.slot(id).rule) else {
            return;
        };
        let key = (u32::from(proto) << 16) | u32::from(port);
        let window = self.cfg.port_ticks;
        self.hosts
            .with_scan(id, |s| s.ports.touch(key, tick, window, limit as usize + 1));
        seen(&mut self.wheel, self.hosts.slot_mut(id), id, tick, horizon);
        self.hosts.touch(id);
    }

    /// Closes tick `tick`: runs the detectors, moves alerts along, builds
    /// the snapshot. Returns the snapshot and the alerts opened or closed.
    pub fn end_tick(
        &mut self,
        tick: u64,
        health: TickHealth,
        unix_ms: u64,
    ) -> (Snapshot, Vec<AlertEvent>) {
        let (events, drop_ratio) = self.close(tick, health, unix_ms);
        let snap = self.snapshot(tick, health, unix_ms, drop_ratio);
        (snap, events)
    }

    /// Like [`Aggregator::end_tick`] for a reader that needs no snapshot of
    /// this tick (a replay at full speed).
    pub fn end_tick_quiet(
        &mut self,
        tick: u64,
        health: TickHealth,
        unix_ms: u64,
    ) -> Vec<AlertEvent> {
        self.close(tick, health, unix_ms).0
    }

    /// The next tick after `tick` at which something is due — a bucket
    /// slides out of a window, counts expire, an alert is looked at, a
    /// contact's answer is awaited — or `None` if nothing ever is. The
    /// ticks before it change nothing if no traffic comes: a reader on
    /// packet time closes `tick` and then the next one due, not every one.
    pub fn next_due(&self, tick: u64) -> Option<u64> {
        if self.failed.as_ref().is_some_and(|f| !f.is_idle()) || self.recheck_alerts {
            return Some(tick + 1);
        }
        let w = self.wheel.next_due();
        let a = self.lifecycle.next_due();
        match (w, a) {
            (Some(x), Some(y)) => Some(x.min(y).max(tick + 1)),
            (Some(x), None) | (None, Some(x)) => Some(x.max(tick + 1)),
            (None, None) => None,
        }
    }

    fn close(&mut self, tick: u64, health: TickHealth, unix_ms: u64) -> (Vec<AlertEvent>, f64) {
        self.work.ticks += 1;
        if let Some(mut f) = self.failed.take() {
            let mut addrs = Vec::new();
            let mut ports = Vec::new();
            f.resolve(|s, d, t| addrs.push((s, d, t)), |c, t| ports.push((c, t)));
            self.failed = Some(f);
            for (s, d, t) in addrs {
                self.address_contact(s, d, t);
            }
            for (c, t) in ports {
                self.port_contact(c, t);
            }
        }
        let now = Now { tick, unix_ms };
        let kp = self.kernel_packets.sum(&self.geo, tick);
        let drop_ratio = if kp == 0 {
            0.0
        } else {
            self.kernel_drops.sum(&self.geo, tick) as f64 / kp as f64
        };
        let situation = Situation {
            now,
            drop_ratio,
            degraded_ratio: self.cfg.degraded_ratio,
        };
        let (opened, closed) = self.detect(&situation);
        self.due_hosts(tick);
        let events = self.announce(opened, closed, now);
        self.late_total += u64::from(health.late_workers);
        self.ifaces.end_tick(tick);
        (events, drop_ratio)
    }

    /// Hosts the wheel says are due: a bucket of their window slid out (their
    /// rank changes), or their counts may all have expired (freed then).
    fn due_hosts(&mut self, tick: u64) {
        let mut items = std::mem::take(&mut self.drained);
        items.clear();
        self.wheel.drain(tick, &mut items);
        let horizon = self.cfg.horizon(&self.geo);
        let scans = (self.cfg.scan_ticks, self.cfg.port_ticks);
        for &item in &items {
            let (kind, id) = due::split(item);
            if !self.hosts.is_live(id) {
                continue;
            }
            self.work.hosts_due += 1;
            match kind {
                due::SLIDE => {
                    let h = self.hosts.slot(id);
                    rank(&mut self.ranking, &self.geo, h, id, tick);
                    self.listed.stale = true;
                }
                _ => {
                    let h = self.hosts.slot_mut(id);
                    if h.expiry_check > tick {
                        // Seen again since: its own check is scheduled.
                        continue;
                    }
                    let expires = h.last_seen + horizon;
                    if expires > tick {
                        h.expiry_check = expires;
                        self.wheel.schedule(expires, item);
                    } else if h.alerting != 0 {
                        // Freed once its alerts close.
                        h.expiry_check = tick + horizon;
                        self.wheel.schedule(tick + horizon, item);
                    } else if self.hosts.try_free(id, &self.geo, tick, scans) {
                        self.ranking.remove(id);
                        self.listed.stale = true;
                    } else {
                        let h = self.hosts.slot_mut(id);
                        h.expiry_check = tick + 1;
                        self.wheel.schedule(tick + 1, item);
                    }
                }
            }
        }
        self.drained = items;
    }

    /// The detector pass: every host touched this tick and every open
    /// alert scheduled to be looked at. Returns the alerts opened and
    /// closed.
    pub fn detect(&mut self, s: &Situation) -> (Vec<(AlertKind, Addr)>, Vec<Alert>) {
        let tick = s.now.tick;
        let ctx = Ctx {
            now: tick,
            traffic: &self.geo,
            scan_window: self.cfg.scan_ticks,
            port_window: self.cfg.port_ticks,
        };
        let mut closed = Vec::new();
        let mut touched = std::mem::take(&mut self.touched);
        self.hosts.take_touched(&mut touched);
        if self.recheck_alerts {
            self.recheck_alerts = false;
            self.lifecycle.recheck_all(tick);
        }
        if !touched.is_empty() {
            self.listed.stale = true;
        }
        // In slot order, the pass reads host memory front to back instead of
        // missing the cache on every host (worth it when they are many).
        if touched.len() > 1 << 14 {
            touched.sort_unstable();
        }
        for &id in &touched {
            self.work.hosts_evaluated += 1;
            self.hosts.slot_mut(id).evaluated = tick;
            let h = self.hosts.slot(id);
            let r = Reading::of(h, &ctx);
            rank_by(&mut self.ranking, id, r.sent_bytes, r.recv_bytes);
            let Some(limits) = self.rules.limits(h.rule) else {
                continue;
            };
            for d in &self.detectors {
                let kind = d.kind();
                if let Some(m) = d.measure(&r, &limits) {
                    if m.over() || h.alerting & kind.bit() != 0 {
                        self.lifecycle.observe(
                            kind,
                            h.addr,
                            m,
                            self.rules.name(h.rule),
                            s,
                            &mut closed,
                        );
                        schedule_look(&mut self.lifecycle, &self.cfg, &self.geo, kind, h, &m, tick);
                    }
                }
            }
        }
        // Open alerts due a look although their subject did not move: their
        // value fell as their window drained, or their hold-down ends.
        let mut due = std::mem::take(&mut self.checks);
        due.clear();
        self.lifecycle.due(tick, &mut due);
        for &(kind, addr) in &due {
            let h = self.hosts.id(addr).map(|id| self.hosts.slot(id));
            let measured = h.and_then(|h| {
                if h.evaluated == tick && h.alerting & kind.bit() != 0 {
                    return Some(None);
                }
                let limits = self.rules.limits(h.rule)?;
                let d = self.detectors.iter().find(|d| d.kind() == kind)?;
                let m = d.measure(&Reading::of(h, &ctx), &limits)?;
                Some(Some((h, m)))
            });
            self.work.hosts_evaluated += 1;
            match measured {
                // Already looked at in the pass above.
                Some(None) => {}
                Some(Some((h, m))) => {
                    self.lifecycle
                        .observe(kind, addr, m, self.rules.name(h.rule), s, &mut closed);
                    schedule_look(&mut self.lifecycle, &self.cfg, &self.geo, kind, h, &m, tick);
                }
                None => {
                    self.lifecycle.unobserved(kind, addr, s.now, &mut closed);
                    if let Some(at) = self.lifecycle.closes_at(kind, addr) {
                        self.lifecycle.schedule(kind, addr, tick, at.max(tick + 1));
                    }
                }
            }
        }
        self.checks = due;
        self.touched = touched;
        let opened = self.lifecycle.take_opened();
        for &(kind, addr) in &opened {
            if let Some(h) = self.hosts.get_mut(addr) {
                h.alerting |= kind.bit();
            }
        }
        for a in &closed {
            if let Some(h) = self.hosts.get_mut(Addr::from(a.subject)) {
                h.alerting &= !a.kind.bit();
            }
        }
        if !opened.is_empty() || !closed.is_empty() {
            self.listed.stale = true;
        }
        (opened, closed)
    }

    /// Gathers evidence and turns transitions into events. Evidence is
    /// gathered for the alerts that open or close (and, for the API, again
    /// for open alerts whose subject moved: [`Aggregator::refresh_evidence`]).
    fn announce(
        &mut self,
        opened: Vec<(AlertKind, Addr)>,
        mut closed: Vec<Alert>,
        now: Now,
    ) -> Vec<AlertEvent> {
        let mut wanted: Vec<(AlertKind, Addr)> = opened.clone();
        wanted.extend(closed.iter().map(|a| (a.kind, Addr::from(a.subject))));
        if !wanted.is_empty() {
            let found = evidence::gather(
                &wanted,
                &self.pairs,
                &self.hosts,
                now.tick,
                self.cfg.port_ticks,
            );
            for (key, ev) in found {
                if let Some(o) = self.lifecycle.get_mut(key.0, key.1) {
                    o.alert.evidence = ev.clone();
                    o.evidence_tick = now.tick;
                }
                for a in closed
                    .iter_mut()
                    .filter(|a| (a.kind, Addr::from(a.subject)) == key)
                {
                    // Keep the last evidence if the subject's window is empty.
                    if !ev.destinations.is_empty() || !ev.sources.is_empty() || !ev.ports.is_empty()
                    {
                        a.evidence = ev.clone();
                    }
                }
            }
        }
        let mut events = Vec::with_capacity(opened.len() + closed.len());
        for (kind, _) in &opened {
            self.opened_total[kind.index()] += 1;
        }
        for a in &closed {
            self.closed_total[a.kind.index()] += 1;
        }
        for (kind, addr) in opened {
            if let Some(o) = self.lifecycle.get_mut(kind, addr) {
                events.push(AlertEvent {
                    event: Transition::Open,
                    alert: o.alert.clone(),
                });
            }
        }
        for a in closed {
            self.recent_closed.push_back(a.clone());
            if self.recent_closed.len() > RECENT_CLOSED {
                self.recent_closed.pop_front();
            }
            events.push(AlertEvent {
                event: Transition::Close,
                alert: a,
            });
        }
        events
    }

    /// The tick's snapshot. The listed hosts (the largest senders and the
    /// subjects of open alerts) are built again only when something they
    /// show changed: a host moved or slid, an alert changed, a listed
    /// host's scan count fell; otherwise the last list is shared.
    fn snapshot(
        &mut self,
        tick: u64,
        health: TickHealth,
        unix_ms: u64,
        drop_ratio: f64,
    ) -> Snapshot {
        let g = self.geo;
        self.refresh_evidence(tick);
        if self.listed.stale || tick >= self.listed.until {
            self.build_listed(tick);
        }
        Snapshot {
            tick,
            unix_ms,
            tick_ms: (self.cfg.tick_secs * 1000.0).round() as u64,
            window_ticks: self.cfg.traffic_ticks,
            chart_min_bytes: self.cfg.chart_min_bytes,
            hosts_unlisted: self.listed.unlisted,
            hosts: self.listed.hosts.clone(),
            ifaces: self.ifaces.views(),
            window: Totals {
                packets: self.window_packets.sum(&g, tick),
                bytes: self.window_bytes.sum(&g, tick),
            },
            drop_ratio,
            lifetime: self.lifetime,
            lifetime_untracked: self.lifetime_untracked,
            tables: TableFill {
                hosts: self.hosts.len(),
                max_hosts: self.hosts.max(),
                pairs: self.pairs.len(),
                max_pairs: self.pairs.max(),
                bytes: self.hosts.bytes() + self.pairs.bytes(),
            },
            alerts: self.listed.alerts.clone(),
            alerts_opened: self.opened_total,
            alerts_closed: self.closed_total,
            closed: self.recent_closed.iter().cloned().collect(),
            sinks: Vec::new(),
            health,
            late_shards_total: self.late_total,
            shards_merged: self.shards_merged,
            udp_flows_evicted: self.udp_evicted,
            config: self.config_json.clone(),
            runtime: self.runtime.clone(),
            all_json: Default::default(),
            active_json: Default::default(),
            metrics_text: Default::default(),
            stream_event: Default::default(),
        }
    }

    /// Gathers the evidence of open alerts again whose subject moved this
    /// tick, at most every [`EVIDENCE_EVERY`] ticks each: what the API shows
    /// of an open alert keeps up with it. (Events carry the evidence of
    /// when they happened; a reader that builds no snapshot skips this.)
    fn refresh_evidence(&mut self, tick: u64) {
        let mut wanted = Vec::new();
        for &id in &self.touched {
            let h = self.hosts.slot(id);
            if h.alerting == 0 {
                continue;
            }
            for kind in AlertKind::ALL {
                if h.alerting & kind.bit() != 0 {
                    if let Some(o) = self.lifecycle.get_mut(kind, h.addr) {
                        if tick >= o.evidence_tick + EVIDENCE_EVERY {
                            wanted.push((kind, h.addr));
                        }
                    }
                }
            }
        }
        if wanted.is_empty() {
            return;
        }
        let found = evidence::gather(&wanted, &self.pairs, &self.hosts, tick, self.cfg.port_ticks);
        for (key, ev) in found {
            if let Some(o) = self.lifecycle.get_mut(key.0, key.1) {
                o.alert.evidence = ev;
                o.evidence_tick = tick;
            }
        }
        self.listed.stale = true;
    }

    /// Lists the [`MAX_LISTED_HOSTS`] largest senders (from the ranking,
    /// which is kept as hosts move) and every host with an open alert.
    fn build_listed(&mut self, tick: u64) {
        let g = self.geo;
        let mut bits: hashbrown::HashMap<Addr, u8, Hasher> = hashbrown::HashMap::default();
        for (kind, addr) in self.lifecycle.subjects() {
            *bits.entry(addr).or_default() |= kind.bit();
        }
        let hosts = &self.hosts;
        let mut ids = self.ranking.top(MAX_LISTED_HOSTS, |a, b| {
            hosts.slot(a).addr.cmp(&hosts.slot(b).addr)
        });
        let ranked = self.ranking.len();
        let mut listed: hashbrown::HashSet<u32, Hasher> = ids.iter().copied().collect();
        for addr in bits.keys() {
            if let Some(id) = self.hosts.id(*addr) {
                if listed.insert(id) {
                    ids.push(id);
                }
            }
        }
        let mut until = u64::MAX;
        let mut hosts: Vec<HostView> = ids
            .iter()
            .map(|&id| {
                let h = self.hosts.slot(id);
                let (contacted, ports) = match &h.scan {
                    Some(s) => {
                        for next in [
                            s.addresses.next_expiry(tick, self.cfg.scan_ticks),
                            s.ports.next_expiry(tick, self.cfg.port_ticks),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            until = until.min(next);
                        }
                        (
                            s.addresses.count(tick, self.cfg.scan_ticks) as u32,
                            s.ports.count(tick, self.cfg.port_ticks) as u32,
                        )
                    }
                    None => (0, 0),
                };
                HostView {
                    addr: h.addr,
                    sent_bytes: h.win.sum(&g, tick, col::SENT_BYTES),
                    sent_packets: h.win.sum(&g, tick, col::SENT_PACKETS),
                    recv_bytes: h.win.sum(&g, tick, col::RECV_BYTES),
                    recv_packets: h.win.sum(&g, tick, col::RECV_PACKETS),
                    contacted,
                    ports,
                    alerts: bits.get(&h.addr).copied().unwrap_or(0),
                    destinations: Vec::new(),
                }
            })
            .collect();
        self.work.views_built += hosts.len() as u64;
        hosts.sort_unstable_by(|a, b| b.sent_bytes.cmp(&a.sent_bytes).then(a.addr.cmp(&b.addr)));
        self.fill_destinations(&mut hosts, tick);
        let unlisted = ranked.saturating_sub(
            hosts
                .iter()
                .filter(|h| {
                    self.hosts
                        .id(h.addr)
                        .is_some_and(|id| self.ranking.key(id).is_some())
                })
                .count(),
        );
        let mut alerts: Vec<Alert> = self
            .lifecycle
            .open_alerts()
            .map(|o| o.alert.clone())
            .collect();
        alerts.sort_by_key(|a| a.id);
        self.listed = Listed {
            hosts: Arc::new(hosts),
            alerts: Arc::new(alerts),
            unlisted,
            until,
            stale: false,
        };
    }

    /// Destinations of the charted and alerting sources and of the
    /// [`DETAIL_HOSTS`] largest senders (`hosts` is ordered by bytes sent):
    /// each host's own pairs, not a pass over all of them.
    fn fill_destinations(&self, hosts: &mut [HostView], tick: u64) {
        if self.cfg.keep_destinations == 0 {
            return;
        }
        let min = self.cfg.chart_min_bytes.max(1);
        for (i, h) in hosts.iter_mut().enumerate() {
            if !(h.sent_bytes >= min || h.alerts != 0 || (i < DETAIL_HOSTS && h.sent_bytes > 0)) {
                continue;
            }
            let mut acc: hashbrown::HashMap<Addr, (u64, u64), Hasher> =
                hashbrown::HashMap::default();
            self.pairs.for_each_of(tick, h.addr, |d, c| {
                let e = acc.entry(d).or_default();
                e.0 += c.bytes;
                e.1 += c.packets;
            });
            if acc.is_empty() {
                continue;
            }
            let mut v: Vec<DestView> = acc
                .into_iter()
                .map(|(addr, (bytes, packets))| DestView {
                    addr,
                    bytes,
                    packets,
                })
                .collect();
            v.sort_unstable_by(|a, b| b.bytes.cmp(&a.bytes).then(a.addr.cmp(&b.addr)));
            v.truncate(self.cfg.keep_destinations);
            h.destinations = v;
        }
    }

    /// Deltas of the interfaces, for callers that count outside shards.
    pub fn add_iface(&mut self, d: &IfaceDelta) {
        self.ifaces.add(d);
    }

    /// Marks every host for the next detector pass (benchmarks: the worst
    /// case, every host moved this tick).
    pub fn touch_all(&mut self) {
        self.listed.stale = true;
        let rules = self.rules.clone();
        self.hosts.relabel(&rules);
    }

    /// Hosts tracked now.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Heap bytes of the host table.
    pub fn host_table_bytes(&self) -> usize {
        self.hosts.bytes()
    }
}

/// A host had traffic or a contact at `tick`: its counts expire a
/// horizon later, when the wheel looks at it (scheduled once; the look
/// finds how long it has really been quiet).
#[inline]
fn seen(wheel: &mut Wheel, h: &mut crate::hosts::HostState, id: u32, tick: u64, horizon: u64) {
    h.last_seen = h.last_seen.max(tick);
    if h.expiry_check == u64::MAX {
        h.expiry_check = tick + horizon;
        wheel.schedule(tick + horizon, due::item(due::EXPIRY, id));
    }
}

/// Puts a host at its place in the ranking by bytes sent, or takes it out
/// if its window is empty.
#[inline]
fn rank(r: &mut Ranking, g: &Geometry, h: &crate::hosts::HostState, id: u32, tick: u64) {
    if h.win.is_empty(g, tick) {
        r.remove(id);
        return;
    }
    let [sent, _, recv, _] = h.win.sums(g, tick);
    rank_by(r, id, sent, recv);
}

#[inline]
fn rank_by(r: &mut Ranking, id: u32, sent: u64, recv: u64) {
    if sent > 0 || recv > 0 {
        r.set(id, sent);
    } else {
        r.remove(id);
    }
}

/// When to look at an open alert next if its subject does not move: when
/// its value can fall (the next bucket of a traffic window to slide out,
/// the next distinct contact to leave a scan window), or, below its
/// threshold, when its hold-down ends.
fn schedule_look(
    l: &mut Lifecycle,
    cfg: &AggregatorConfig,
    g: &Geometry,
    kind: AlertKind,
    h: &crate::hosts::HostState,
    m: &crate::alert::Measurement,
    tick: u64,
) {
    if !l.is_open(kind, h.addr) {
        return;
    }
    let at = match l.closes_at(kind, h.addr) {
        Some(close) if !m.over() => close,
        _ => match kind {
            AlertKind::Traffic | AlertKind::Inbound => (g.bucket(tick) + 1) * g.width,
            AlertKind::AddressScan => h
                .scan
                .as_ref()
                .and_then(|s| s.addresses.next_expiry(tick, cfg.scan_ticks))
                .unwrap_or(tick + 1),
            AlertKind::PortScan => h
                .scan
                .as_ref()
                .and_then(|s| s.ports.next_expiry(tick, cfg.port_ticks))
                .unwrap_or(tick + 1),
        },
    };
    l.schedule(kind, h.addr, tick, at.max(tick + 1));
}

#[cfg(test)]
mod tests;
