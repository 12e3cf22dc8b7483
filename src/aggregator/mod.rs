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
//!
//! Hosts are split by address hash into partitions ([`partition`]), each
//! with its own hosts, pairs (by source), scan sets, alerts and schedule;
//! with more than one, each shard's merge and each tick's detector pass run
//! on one thread per partition. What spans partitions — the box's totals,
//! interfaces, `count = "failed"` bookkeeping, the sources of an inbound
//! alert, the listed hosts — is the coordinator's.

mod evidence;
mod failed;
pub mod fingerprint;
mod ifaces;
mod listing;
mod partition;
mod passes;
mod settings;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use passes::{each_part, partition_pool};

use crate::admission::Admission;
use crate::alert::{Alert, AlertEvent, AlertKind, Evidence, KINDS, Now, Situation, Transition};
use crate::config::{Config, ScanCount};
use crate::counters::IfaceDelta;
use crate::rates::Columns;
use crate::shard::{Hasher, Shard, Totals, Untracked, role_bits};
use crate::snapshot::{HostView, MAX_LISTED_HOSTS, Snapshot, TableFill};
use crate::window::{Geometry, TotalWindow};
use crate::wire::Addr;
use evidence::Sources;
use partition::{Partition, Resolved, Transitions};
pub use settings::AggregatorConfig;

/// What the timing wheel holds: a host id and why it is due.
pub(crate) mod due {
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

/// Facts about the running daemon that the aggregator passes through to the
/// snapshot.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RuntimeInfo {
    pub version: &'static str,
    pub workers: usize,
    /// Aggregator threads (partitions of the hosts).
    pub aggregators: usize,
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
    parts: Vec<Partition>,
    failed: Option<failed::Pending>,
    /// The traffic window's geometry, for the box's totals.
    geo: Geometry,
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
    ticks: u64,
    recent_closed: VecDeque<Alert>,
    opened_total: [u64; KINDS],
    closed_total: [u64; KINDS],
    /// Tallies of the floods toward hosts, for their alerts' evidence.
    fingerprints: fingerprint::Fingerprints,
    /// What the last snapshot listed, reused while nothing it shows changed.
    listed: Listed,
    /// The partitions' views gathered for a listing, kept across ticks.
    listing_buf: Vec<HostView>,
    config_json: Arc<serde_json::Value>,
    runtime: Arc<RuntimeInfo>,
    /// Alert ids, shared by the partitions' lifecycles.
    ids: Arc<AtomicU64>,
    /// Threads for the partitions after the first ([`partition_pool`]).
    pool: Option<rayon::ThreadPool>,
    /// What the partitions refuse, for the workers.
    admission: Option<Arc<Admission>>,
    /// The tick closed last, if its admission is yet to be worked out.
    admission_due: Option<u64>,
    filters_built: u64,
    /// Memory the host tables may take at start and at each reload
    /// ([`Aggregator::prefault_within`]; `None`: taken as hosts come),
    /// and the bound they were last taken (or refused) for.
    prefault: Option<u64>,
    prefaulted_for: usize,
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
    /// Admission filters made (`crate::admission`): one per partition
    /// at the first close, then again only once freed hosts crowd one.
    pub filters_built: u64,
}

/// The hosts and alerts of the last snapshot, and until when they hold.
#[derive(Debug, Default)]
struct Listed {
    hosts: Arc<Vec<HostView>>,
    /// The list before `hosts`: once no snapshot holds it, the next list
    /// is built in its memory (a list of 10 000 views is a megabyte, and
    /// one made afresh every tick something moves was fresh pages every
    /// tick of a flood).
    previous: Option<Arc<Vec<HostView>>>,
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
        Aggregator::with_config(config, cfg, runtime)
    }

    /// Like [`Aggregator::new`] with `threads` partitions whatever the
    /// config says ("auto" is resolved by the caller, who knows the cores).
    pub fn with_threads(config: &Config, runtime: RuntimeInfo, threads: usize) -> Aggregator {
        let mut cfg = AggregatorConfig::from_config(config);
        cfg.threads = threads.max(1);
        Aggregator::with_config(config, cfg, runtime)
    }

    fn with_config(config: &Config, cfg: AggregatorConfig, runtime: RuntimeInfo) -> Aggregator {
        let ids = Arc::new(AtomicU64::new(1));
        let rules = config.rule_set();
        let parts = (0..cfg.threads)
            .map(|i| Partition::new(i, cfg.threads, &cfg, rules.clone(), ids.clone()))
            .collect();
        Aggregator {
            parts,
            geo: Geometry::new(cfg.traffic_ticks),
            failed: (cfg.scan_count == ScanCount::Failed)
                .then(|| failed::Pending::new(cfg.max_pairs, &Hasher::new())),
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
            ticks: 0,
            recent_closed: VecDeque::new(),
            opened_total: [0; KINDS],
            closed_total: [0; KINDS],
            fingerprints: fingerprint::Fingerprints::new(
                cfg.floors.map(|f| f.per_shard(runtime.workers)),
                cfg.rate_ticks,
            ),
            listed: Listed {
                stale: true,
                ..Listed::default()
            },
            listing_buf: Vec::new(),
            config_json: Arc::new(serde_json::to_value(config).unwrap_or_default()),
            runtime: Arc::new(runtime),
            ids,
            pool: partition_pool(cfg.threads),
            admission: None,
            admission_due: None,
            filters_built: 0,
            prefault: None,
            prefaulted_for: 0,
            cfg,
        }
    }

    /// Takes and writes now the memory of full host tables
    /// ([`crate::hosts::HostTable::prefault`]), and again at each reload
    /// that changes the bound, if they fit in a quarter of `memory` (the
    /// rings and shards have theirs): the live daemon's. Tables that would
    /// not fit, or whose memory cannot be had, are taken as hosts come,
    /// and a warning says so. Returns the bytes taken now.
    pub fn prefault_within(&mut self, memory: u64) -> u64 {
        self.prefault = Some(memory / 4);
        self.prefaulted_for = 0;
        self.take_tables()
    }

    fn take_tables(&mut self) -> u64 {
        let Some(budget) = self.prefault else {
            return 0;
        };
        if self.cfg.max_hosts == self.prefaulted_for {
            return 0;
        }
        self.prefaulted_for = self.cfg.max_hosts;
        let want: usize = self
            .parts
            .iter()
            .map(|p| Partition::prefault_bytes(p.hosts.max()))
            .sum();
        if want as u64 > budget {
            log::warn!(
                "traffic.max_hosts = {} needs {} MiB for its host table, more than the {} MiB (a quarter of the memory) it may take at start: it is taken as hosts come",
                self.cfg.max_hosts,
                (want as u64).div_ceil(1 << 20),
                budget >> 20
            );
            return 0;
        }
        for p in &mut self.parts {
            if let Err(e) = p.prefault() {
                log::warn!(
                    "cannot take the host table's memory for traffic.max_hosts = {} ({}): it is taken as hosts come",
                    self.cfg.max_hosts,
                    e
                );
                return 0;
            }
        }
        want as u64
    }

    /// Partitions (threads) the hosts are split over.
    pub fn threads(&self) -> usize {
        self.parts.len()
    }

    /// Gives every partition the same fixed fingerprint keys, before
    /// anything is merged: two aggregators fed the same packets then
    /// estimate scans alike, and a replay of the same file gives the same
    /// figures every time (a scan's estimated size depends on the
    /// fingerprints). Live, the keys stay random, so that no one can pick
    /// addresses whose fingerprints collide to hide a scan.
    pub fn fix_fingerprints(&mut self, seed: u64) {
        for p in &mut self.parts {
            p.fingerprint = Hasher::with_seeds(seed, seed ^ 1, seed ^ 2, seed ^ 3);
        }
    }

    /// Takes a new configuration (SIGHUP) without losing counts or open
    /// alerts. Window lengths that changed start their windows again.
    pub fn reconfigure(&mut self, config: &Config) {
        let mut cfg = AggregatorConfig::from_config(config);
        cfg.threads = self.cfg.threads;
        if cfg.traffic_ticks != self.cfg.traffic_ticks {
            log::warn!("traffic.interval changed: host and pair windows start again empty");
            self.geo = Geometry::new(cfg.traffic_ticks);
            self.window_bytes = TotalWindow::default();
            self.window_packets = TotalWindow::default();
            self.kernel_packets = TotalWindow::default();
            self.kernel_drops = TotalWindow::default();
        }
        let rules = config.rule_set();
        for p in &mut self.parts {
            p.reconfigure(&cfg, rules.clone());
        }
        self.fingerprints.set(
            cfg.floors.map(|f| f.per_shard(self.runtime.workers)),
            cfg.rate_ticks,
        );
        self.listed.stale = true;
        self.failed = match (cfg.scan_count, self.failed.take()) {
            (ScanCount::Failed, Some(p)) => Some(p),
            (ScanCount::Failed, None) => Some(failed::Pending::new(cfg.max_pairs, &Hasher::new())),
            (ScanCount::Initiations, _) => None,
        };
        self.config_json = Arc::new(serde_json::to_value(config).unwrap_or_default());
        self.cfg = cfg;
        // Bounds may have changed: nothing is screened until the next
        // close works out the rooms under the new ones.
        self.admission = None;
        self.admission_due = None;
        self.take_tables();
    }

    /// Puts back the alerts that were open when the daemon last stopped.
    pub fn restore(&mut self, open: Vec<Alert>, max_id: u64, now: Now) {
        self.ids
            .fetch_max(max_id + 1, std::sync::atomic::Ordering::Relaxed);
        let n = self.parts.len();
        let mut by_part: Vec<Vec<Alert>> = (0..n).map(|_| Vec::new()).collect();
        for a in open {
            by_part[partition::of(Addr::from(a.subject), n)].push(a);
        }
        for (p, alerts) in self.parts.iter_mut().zip(by_part) {
            p.lifecycle.restore(alerts, now);
        }
    }

    /// An interface started being watched.
    pub fn iface_added(&mut self, ifindex: u32, name: &str, link: &str) {
        self.ifaces.added(ifindex, name, link);
    }

    /// An interface stopped being watched at `tick`.
    pub fn iface_removed(&mut self, ifindex: u32, tick: u64) {
        self.ifaces.removed(ifindex, tick);
    }

    /// Keeps a list of the hosts freed from now on in every partition
    /// ([`Aggregator::take_freed`]): for a replay, which keeps each host's
    /// totals over the whole capture by its slot while it is tracked.
    pub fn log_frees(&mut self) {
        for p in &mut self.parts {
            p.hosts.log_frees();
        }
    }

    /// The partition and slot host `i` of the last merged shard (address
    /// `addr`) went to, if it is tracked.
    #[inline]
    pub fn merged_slot(&self, i: usize, addr: Addr) -> Option<(usize, u32)> {
        let p = partition::of(addr, self.parts.len());
        let id = self.parts[p].merged_id(i);
        (id != u32::MAX).then_some((p, id))
    }

    /// The hosts freed since the last call (with [`Aggregator::log_frees`]):
    /// partition, slot, address.
    pub fn take_freed(&mut self, mut f: impl FnMut(usize, u32, Addr)) {
        for (i, p) in self.parts.iter_mut().enumerate() {
            p.hosts.take_freed(|id, a| f(i, id, a));
        }
    }

    /// The address of the host in partition `p`'s slot `id`.
    pub fn slot_addr(&self, p: usize, id: u32) -> Addr {
        self.parts[p].hosts.slot(id).addr
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
        if let Some(f) = &mut self.failed {
            // Contacts wait a tick for their answers here, whichever
            // partitions their two ends are in.
            let hosts = shard.hosts();
            for (si, di, p) in shard.pairs_by_index() {
                let (src, dst) = (hosts[si as usize].addr, hosts[di as usize].addr);
                if p.roles & role_bits::INITIATION != 0 {
                    f.address_contact(src, dst, t);
                }
                if p.roles & role_bits::ANSWER != 0 {
                    f.answered(src, dst);
                }
            }
            for c in shard.contacts() {
                f.port_contact(c, t);
            }
            for a in shard.answers() {
                f.answer(a);
            }
        }
        let contacts = self.failed.is_none();
        for overflow in each_part(self.pool.as_ref(), &mut self.parts, |p| {
            p.merge(shard, t, contacts)
        }) {
            self.lifetime_untracked.add(&overflow);
        }
        self.fingerprints.observe(shard, t);
        for d in &shard.ifaces {
            self.ifaces.add(d);
            self.kernel_packets.add(&self.geo, t, d.kernel_packets);
            self.kernel_drops.add(&self.geo, t, d.kernel_drops);
        }
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

    /// The host order is read rarely (a replay building only its last
    /// snapshot): each partition moves its hosts in it when it is read,
    /// not every tick they move ([`crate::ranking::Ranking::defer`]).
    pub fn defer_ranking(&mut self) {
        for p in &mut self.parts {
            p.defer_ranking();
        }
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
        if self.failed.as_ref().is_some_and(|f| !f.is_idle()) {
            return Some(tick + 1);
        }
        self.parts.iter().filter_map(|p| p.next_due(tick)).min()
    }

    fn situation(&self, tick: u64, unix_ms: u64) -> Situation {
        let kp = self.kernel_packets.sum(&self.geo, tick);
        let drop_ratio = if kp == 0 {
            0.0
        } else {
            self.kernel_drops.sum(&self.geo, tick) as f64 / kp as f64
        };
        Situation {
            now: Now { tick, unix_ms },
            drop_ratio,
            degraded_ratio: self.cfg.degraded_ratio,
        }
    }

    fn close(&mut self, tick: u64, health: TickHealth, unix_ms: u64) -> (Vec<AlertEvent>, f64) {
        self.ticks += 1;
        if let Some(f) = &mut self.failed {
            let mut addrs = Vec::new();
            let mut ports = Vec::new();
            f.resolve(
                |s, d, t| addrs.push((s, Resolved::Address(s, d, t))),
                |c, t| ports.push((c.from, Resolved::Port(c, t))),
            );
            let n = self.parts.len();
            for (src, r) in addrs.into_iter().chain(ports) {
                self.parts[partition::of(src, n)].resolved.push(r);
            }
        }
        let situation = self.situation(tick, unix_ms);
        let first_id = self.ids.load(Ordering::Relaxed);
        let mut results = each_part(self.pool.as_ref(), &mut self.parts, |p| p.close(&situation));
        self.renumber(&mut results, first_id);
        let events = self.announce(results, situation.now);
        // Worked out when the workers ask for it: a replay never does.
        self.admission_due = Some(tick);
        self.late_total += u64::from(health.late_workers);
        self.ifaces.end_tick(tick);
        self.fingerprints.expire(tick);
        (events, situation.drop_ratio)
    }

    /// What the workers may leave out of their shards after the last
    /// tick closed ([`crate::admission`]): `None` before the first close,
    /// after a reload until the next close, and while contacts wait for
    /// their answers.
    pub fn admission(&mut self) -> Option<Arc<Admission>> {
        if let Some(tick) = self.admission_due.take() {
            self.refresh_admission(tick);
        }
        self.admission.clone()
    }

    /// Works out the admission after closing `tick`: a new one only when
    /// some partition's room, the tick it holds through or its filter
    /// changed, so that the workers' count of the hosts they took goes on.
    fn refresh_admission(&mut self, tick: u64) {
        if self.failed.is_some() {
            // Every contact waits for its answer in the coordinator,
            // tracked host or not: nothing can be left out.
            self.admission = None;
            return;
        }
        let mut parts = Vec::with_capacity(self.parts.len());
        for p in &mut self.parts {
            let (part, made) = p.admission(tick);
            self.filters_built += u64::from(made);
            parts.push(part);
        }
        if self.admission.as_ref().is_some_and(|a| a.same_as(&parts)) {
            return;
        }
        self.admission = Some(Arc::new(Admission::new(parts)));
    }

    /// The detector pass alone (benchmarks): every host touched and every
    /// open alert due. Returns the alerts opened and closed.
    pub fn detect(&mut self, s: &Situation) -> Transitions {
        let mut opened = Vec::new();
        let mut closed = Vec::new();
        for (o, c) in each_part(self.pool.as_ref(), &mut self.parts, |p| p.detect(s)) {
            opened.extend(o);
            closed.extend(c);
        }
        (opened, closed)
    }

    /// The sources toward the inbound subjects among `wanted`, from every
    /// partition's pairs.
    fn inbound_sources(&self, wanted: &[(AlertKind, Addr)], tick: u64) -> Sources {
        let mut sources = Sources::default();
        for &(kind, a) in wanted {
            if !kind.subject_is_source() {
                sources.entry(a).or_default();
            }
        }
        if !sources.is_empty() {
            // With one generation in every partition each source comes
            // once, so only the listed few need keeping: a victim of a
            // spoofed flood has tens of thousands of sources, and pushing
            // them all was a fresh vector of megabytes in the tick it
            // fills the table.
            let once = self
                .parts
                .iter()
                .all(|p| p.pairs.live_generations(tick) <= 1);
            let best = once.then_some(evidence::PEERS);
            let mut twice = false;
            for p in &self.parts {
                twice |= p.sources_into(tick, &mut sources, best);
            }
            if twice {
                evidence::merge_sources(&mut sources);
            }
        }
        sources
    }

    /// Gathers evidence and turns transitions into events. Evidence is
    /// gathered for the alerts that open or close (and, for the API, again
    /// for open alerts whose subject moved: [`Aggregator::refresh_evidence`]).
    fn announce(&mut self, results: Vec<Transitions>, now: Now) -> Vec<AlertEvent> {
        let all: Vec<(AlertKind, Addr)> = results
            .iter()
            .flat_map(|(o, c)| {
                o.iter()
                    .copied()
                    .chain(c.iter().map(|a| (a.kind, Addr::from(a.subject))))
            })
            .collect();
        let sources = self.inbound_sources(&all, now.tick);
        let mut opened_events = Vec::new();
        let mut closed_events = Vec::new();
        for (p, (opened, mut closed)) in self.parts.iter_mut().zip(results) {
            let wanted: Vec<(AlertKind, Addr)> = opened
                .iter()
                .copied()
                .chain(closed.iter().map(|a| (a.kind, Addr::from(a.subject))))
                .collect();
            if !wanted.is_empty() {
                for (key, mut ev) in p.evidence(&wanted, now.tick, &sources) {
                    if !key.0.subject_is_source() {
                        ev.fingerprint = self.fingerprints.of(key.1);
                    }
                    let open = p.lifecycle.get_mut(key.0, key.1);
                    if let Some(o) = &open {
                        ev.capture = o.alert.evidence.capture.clone();
                    }
                    let ev = Arc::new(ev);
                    if let Some(o) = open {
                        o.alert.evidence = Arc::clone(&ev);
                        o.evidence_tick = now.tick;
                    }
                    for a in closed
                        .iter_mut()
                        .filter(|a| (a.kind, Addr::from(a.subject)) == key)
                    {
                        // Keep the last evidence if the subject's window is
                        // empty.
                        if !ev.destinations.is_empty()
                            || !ev.sources.is_empty()
                            || !ev.ports.is_empty()
                        {
                            a.evidence = if a.evidence.capture == ev.capture {
                                Arc::clone(&ev)
                            } else {
                                Arc::new(Evidence {
                                    capture: a.evidence.capture.clone(),
                                    ..(*ev).clone()
                                })
                            };
                        }
                    }
                }
            }
            p.end_sketches(&closed);
            for (kind, addr) in opened {
                self.opened_total[kind.index()] += 1;
                if let Some(o) = p.lifecycle.get(kind, addr) {
                    opened_events.push(AlertEvent {
                        event: Transition::Open,
                        alert: o.alert.clone(),
                        mitigation: None,
                    });
                }
            }
            for a in closed {
                self.closed_total[a.kind.index()] += 1;
                closed_events.push(AlertEvent {
                    event: Transition::Close,
                    alert: a,
                    mitigation: None,
                });
            }
        }
        opened_events.sort_by_key(|e| e.alert.id);
        closed_events.sort_by_key(|e| e.alert.id);
        for e in &closed_events {
            self.recent_closed.push_back(e.alert.clone());
            if self.recent_closed.len() > RECENT_CLOSED {
                self.recent_closed.pop_front();
            }
        }
        if !opened_events.is_empty() || !closed_events.is_empty() {
            self.listed.stale = true;
        }
        opened_events.extend(closed_events);
        opened_events
    }

    /// Gathers the evidence of open alerts again whose subject moved this
    /// tick, at most every [`EVIDENCE_EVERY`] ticks each: what the API shows
    /// of an open alert keeps up with it. (Events carry the evidence of
    /// when they happened; a reader that builds no snapshot skips this.)
    fn refresh_evidence(&mut self, tick: u64) {
        for p in &mut self.parts {
            if p.refresh_scan_sizes(tick) {
                self.listed.stale = true;
            }
        }
        let wanted: Vec<Vec<(AlertKind, Addr)>> = self
            .parts
            .iter()
            .map(|p| p.evidence_due(tick, EVIDENCE_EVERY))
            .collect();
        if wanted.iter().all(Vec::is_empty) {
            return;
        }
        let all: Vec<(AlertKind, Addr)> = wanted.iter().flatten().copied().collect();
        let sources = self.inbound_sources(&all, tick);
        for (p, w) in self.parts.iter_mut().zip(wanted) {
            if w.is_empty() {
                continue;
            }
            for (key, mut ev) in p.evidence(&w, tick, &sources) {
                if !key.0.subject_is_source() {
                    ev.fingerprint = self.fingerprints.of(key.1);
                }
                if let Some(o) = p.lifecycle.get_mut(key.0, key.1) {
                    ev.capture = o.alert.evidence.capture.clone();
                    o.alert.evidence = Arc::new(ev);
                    o.evidence_tick = tick;
                }
            }
        }
        self.listed.stale = true;
    }

    /// Puts an attack capture's summary into its open alert's evidence;
    /// false if the alert is no longer open.
    pub fn annotate_capture(
        &mut self,
        kind: AlertKind,
        subject: std::net::IpAddr,
        summary: crate::attacks::summary::CaptureSummary,
    ) -> bool {
        let key = Addr::from(subject);
        for p in &mut self.parts {
            if let Some(o) = p.lifecycle.get_mut(kind, key) {
                Arc::make_mut(&mut o.alert.evidence).capture = Some(summary);
                self.listed.stale = true;
                return true;
            }
        }
        false
    }

    /// Deltas of the interfaces, for callers that count outside shards.
    pub fn add_iface(&mut self, d: &IfaceDelta) {
        self.ifaces.add(d);
    }

    /// Marks every host for the next detector pass (benchmarks: the worst
    /// case, every host moved this tick).
    pub fn touch_all(&mut self) {
        self.listed.stale = true;
        for p in &mut self.parts {
            p.touch_all();
        }
    }

    /// Hosts tracked now.
    pub fn host_count(&self) -> usize {
        self.parts.iter().map(|p| p.hosts.len()).sum()
    }

    /// Heap bytes of the host tables.
    pub fn host_table_bytes(&self) -> usize {
        self.parts.iter().map(|p| p.hosts.bytes()).sum()
    }

    /// The work done so far.
    pub fn work(&self) -> Work {
        let mut w = Work {
            ticks: self.ticks,
            filters_built: self.filters_built,
            ..Work::default()
        };
        for p in &self.parts {
            w.hosts_evaluated += p.work.hosts_evaluated;
            w.hosts_due += p.work.hosts_due;
            w.views_built += p.work.views_built;
        }
        w
    }
}

#[cfg(test)]
mod tests;
