//! One partition of the aggregator's hosts: those whose address hashes to
//! it. It holds their windows, their pairs (by source), their scan sets,
//! their alerts and the schedule of their work, so that partitions merge
//! and detect on their own threads without sharing anything.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::evidence::{self, Sources};
use super::{AggregatorConfig, Work, due};
use crate::admission::PartAdmission;
use crate::alert::{Alert, AlertKind, Lifecycle, Measurement, Situation};
use crate::detect::{self, Ctx, Detector, Reading};
use crate::hosts::{HostState, HostTable};
use crate::pairs::{PairCount, PairWindow};
use crate::ranking::Ranking;
use crate::rates::TickRates;
use crate::rules::RuleSet;
use crate::shard::{Contact, Hasher, HostCounters, Shard, Untracked, role_bits};
use crate::snapshot::{DestView, HostView, MAX_LISTED_HOSTS};
use crate::wheel::Wheel;
use crate::window::Geometry;
use crate::wire::Addr;

mod alert_evidence;
mod views;

/// Which of `n` partitions an address belongs to.
#[inline]
pub fn of(a: Addr, n: usize) -> usize {
    a.part(n)
}

/// Hosts whose slot a merge fetches ahead of the one it writes.
const AHEAD: usize = 16;

/// Alerts opened and closed in a partition's detector pass.
pub type Transitions = (Vec<(AlertKind, Addr)>, Vec<Alert>);

#[derive(Debug)]
pub struct Partition {
    index: usize,
    count: usize,
    pub cfg: AggregatorConfig,
    pub rules: RuleSet,
    pub geo: Geometry,
    pub hosts: HostTable,
    pub pairs: PairWindow,
    detectors: Vec<detect::AnyDetector>,
    pub lifecycle: Lifecycle,
    pub(super) fingerprint: Hasher,
    touched: Vec<u32>,
    /// Host work scheduled for later ticks (window slides, expiry).
    /// Window slides of hosts.
    wheel: Wheel,
    /// Expiry checks of hosts, apart: the first one is the earliest tick a
    /// host may be freed (see [`Partition::admission`]).
    expiries: Wheel,
    /// Hosts by bytes sent over the window, for the listed ones.
    ranking: Ranking,
    /// The listed hosts' views as last built, by host id, with the tick
    /// until which they hold (a scan count falls then), kept while the
    /// host does not move ([`Partition::views`]).
    view_cache: views::ViewCache,
    /// Hosts whose view may have changed since the last listing: touched,
    /// slid, freed.
    moved: Vec<u32>,
    /// The views of the last listing ([`Partition::listed_views`]).
    view_buf: Vec<HostView>,
    drained: Vec<u64>,
    /// A merged shard's host indexes to host ids here (`u32::MAX`: not
    /// ours or not tracked).
    ids: Vec<u32>,
    /// A merged shard's hosts' hashes in the host table (0: not ours).
    hashes: Vec<u64>,
    /// A merged shard's hosts, then pairs, that are ours: their places in
    /// the shard.
    mine: Vec<u32>,
    /// A merged shard's contacts from our tracked sources.
    own_contacts: Vec<(u32, u8, u16)>,
    checks: Vec<(AlertKind, Addr)>,
    /// The host ids of `checks` (`u32::MAX`: not tracked).
    due_ids: Vec<u32>,
    pub work: Work,
    /// Limits changed: every open alert is looked at in the next pass.
    pub recheck_alerts: bool,
    /// Something the listed hosts show changed since they were built.
    pub changed: bool,
    /// Contacts resolved by the coordinator (`count = "failed"`) for
    /// this partition's sources, to take in the next pass.
    pub resolved: Vec<Resolved>,
}

/// A contact found to have failed, for its source's partition.
#[derive(Debug, Clone, Copy)]
pub enum Resolved {
    Address(Addr, Addr, u64),
    Port(Contact, u64),
}

impl Partition {
    pub fn new(
        index: usize,
        count: usize,
        cfg: &AggregatorConfig,
        rules: RuleSet,
        ids: Arc<AtomicU64>,
    ) -> Partition {
        let hasher = Hasher::new();
        let share = |max: usize| max / count + usize::from(index < max % count);
        Partition {
            index,
            count,
            geo: Geometry::new(cfg.traffic_ticks),
            hosts: HostTable::new(share(cfg.max_hosts), &hasher),
            pairs: PairWindow::new(cfg.traffic_ticks, share(cfg.max_pairs), &hasher),
            detectors: detect::with_rates(&cfg.rate_columns),
            lifecycle: Lifecycle::with_ids(cfg.hold_down, cfg.window_secs(), ids),
            fingerprint: Hasher::new(),
            touched: Vec::new(),
            wheel: Wheel::new(0),
            expiries: Wheel::new(0),
            ranking: Ranking::new(),
            view_cache: views::ViewCache::default(),
            moved: Vec::new(),
            view_buf: Vec::new(),
            drained: Vec::new(),
            ids: Vec::new(),
            hashes: Vec::new(),
            mine: Vec::new(),
            own_contacts: Vec::new(),
            checks: Vec::new(),
            due_ids: Vec::new(),
            work: Work::default(),
            recheck_alerts: false,
            changed: true,
            resolved: Vec::new(),
            rules,
            cfg: cfg.clone(),
        }
    }

    /// The slot the last merged shard's host `i` went to here (`u32::MAX`:
    /// not ours, or no room for it).
    #[inline]
    pub fn merged_id(&self, i: usize) -> u32 {
        self.ids.get(i).copied().unwrap_or(u32::MAX)
    }

    /// True if `a` is one of this partition's hosts.
    #[inline]
    pub fn owns(&self, a: Addr) -> bool {
        of(a, self.count) == self.index
    }

    /// Takes a new configuration; windows that changed length start again.
    pub fn reconfigure(&mut self, cfg: &AggregatorConfig, rules: RuleSet) {
        let share = |max: usize| max / self.count + usize::from(self.index < max % self.count);
        if cfg.traffic_ticks != self.cfg.traffic_ticks {
            self.geo = Geometry::new(cfg.traffic_ticks);
            let hasher = Hasher::new();
            self.hosts = HostTable::new(share(cfg.max_hosts), &hasher);
            self.pairs = PairWindow::new(cfg.traffic_ticks, share(cfg.max_pairs), &hasher);
            self.wheel = Wheel::new(0);
            self.expiries = Wheel::new(0);
            self.ranking = Ranking::new();
            self.view_cache.clear();
            self.moved.clear();
        }
        if cfg.rate_columns != self.cfg.rate_columns || cfg.rate_ticks != self.cfg.rate_ticks {
            // Rates kept of other columns or over another window start
            // again.
            self.hosts.drop_rate_windows();
            self.detectors = detect::with_rates(&cfg.rate_columns);
        }
        self.rules = rules;
        // Every host is looked at again with its new limits, and every open
        // alert (some have no host).
        self.hosts.relabel(&self.rules);
        self.recheck_alerts = true;
        self.changed = true;
        self.hosts.set_max(share(cfg.max_hosts));
        self.pairs.set_max(share(cfg.max_pairs));
        self.lifecycle.retime(cfg.hold_down, cfg.window_secs());
        self.cfg = cfg.clone();
    }

    /// Adds this partition's share of a shard, at tick `t`: its hosts, and
    /// the pairs and contacts of its sources (`count = "initiations"`; in
    /// `"failed"` mode the coordinator resolves contacts first). Returns
    /// what did not fit.
    pub fn merge(&mut self, shard: &Shard, t: u64, contacts: bool) -> Untracked {
        let horizon = self.cfg.horizon(&self.geo);
        let g = self.geo;
        let mut overflow = Untracked::default();
        let hosts = shard.hosts();
        let rates = !self.cfg.rate_columns.is_empty();
        // This partition's hosts, pairs and contacts are picked out first,
        // and each loop below fetches ahead among them: fetched a number of
        // the shard's entries ahead, with n partitions only one in n of
        // them is ours, and the misses overlapped n times less (two
        // partitions' merges cost twice one's).
        let mut mine = std::mem::take(&mut self.mine);
        mine.clear();
        // Another partition's hosts are not looked up here (0: nothing).
        let mut hashes = std::mem::take(&mut self.hashes);
        hashes.clear();
        hashes.resize(hosts.len(), 0);
        for (i, h) in hosts.iter().enumerate() {
            if self.owns(h.addr) {
                mine.push(i as u32);
                hashes[i] = self.hosts.hash(&h.addr);
            }
        }
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        ids.resize(hosts.len(), u32::MAX);
        // A tick of more hosts than the table holds (a flood of new
        // sources filling it) sizes the index once.
        self.hosts.reserve(mine.len());
        let held = self.hosts.len();
        // First the ids (the index and the marks fit in the cache), then the
        // windows, each host's slot fetched a few hosts ahead: a tick of
        // many hosts each seen once misses on every slot, and the misses
        // overlap instead of being waited for one by one.
        for (k, &i) in mine.iter().enumerate() {
            if let Some(&ahead) = mine.get(k + AHEAD) {
                self.hosts.prefetch_index(hashes[ahead as usize]);
            }
            let (i, h) = (i as usize, &hosts[i as usize]);
            match self.hosts.upsert_hashed(hashes[i], h.addr, &self.rules) {
                Some(id) => ids[i] = id,
                None => {
                    overflow.src_bytes += h.sent_bytes;
                    overflow.src_packets += h.sent_packets;
                    overflow.dst_bytes += h.recv_bytes;
                    overflow.dst_packets += h.recv_packets;
                }
            }
        }
        // Hosts new to the table are sources new to the pairs' generation
        // too (or destinations only): a flood that fills the table over
        // several shards grows the generation once a shard, not key by key.
        let added = self.hosts.len().saturating_sub(held);
        let bucket = g.bucket(t);
        let ring = g.ring(bucket);
        let mut sources = 0;
        for (k, &i) in mine.iter().enumerate() {
            if let Some(&ahead) = mine.get(k + AHEAD) {
                self.hosts.prefetch(ids[ahead as usize], ring);
            }
            if let Some(&ahead) = mine.get(k + AHEAD / 2) {
                // Halfway there its window's clock is loaded and says which
                // rows slide out.
                self.hosts.prefetch_sliding(ids[ahead as usize], &g, bucket);
                if contacts {
                    // For the contacts added after the hosts.
                    self.hosts.prefetch_scan(ids[ahead as usize]);
                }
            }
            let (i, h) = (i as usize, &hosts[i as usize]);
            let id = ids[i];
            if id == u32::MAX {
                continue;
            }
            sources += usize::from(h.sent_packets > 0);
            if rates {
                if let Some(r) = shard.rates_of(i) {
                    self.add_rates(id, t, h, &r);
                }
            }
            let st = self.hosts.slot_mut(id);
            st.win.add_to_bucket(
                &g,
                bucket,
                [h.sent_bytes, h.sent_packets, h.recv_bytes, h.recv_packets],
            );
            // Its sums fall when this bucket slides out: looked at then
            // (once per bucket it had traffic in).
            if st.last_bucket != bucket {
                st.last_bucket = bucket;
                self.wheel
                    .schedule((bucket + g.buckets) * g.width, due::item(due::SLIDE, id));
            }
            seen(&mut self.expiries, st, id, t, horizon);
        }
        // Only where a pair will be added: the generation of `t` starts
        // then, as it would at that pair.
        if sources > 0 {
            self.pairs.reserve(t, sources, added.min(sources));
        }
        // The pairs of our sources, by their place in the shard.
        mine.clear();
        for (k, (si, _, _)) in shard.pairs_by_index().enumerate() {
            if self.owns(hosts[si as usize].addr) {
                mine.push(k as u32);
            }
        }
        let generation = self.pairs.current(t);
        for (k, &pi) in mine.iter().enumerate() {
            if let Some(&a) = mine.get(k + AHEAD) {
                let (a, _, _) = shard.pair_at(a as usize);
                if ids[a as usize] != u32::MAX {
                    if let Some(gi) = generation {
                        self.pairs.prefetch(gi, hashes[a as usize]);
                    }
                    if contacts {
                        self.hosts.prefetch_scan(ids[a as usize]);
                    }
                }
            }
            // Halfway there, a source's slot of the pairs is loaded and says
            // where its short list of destinations is, and a scanner's scan
            // set whether a contact reads more (entries on the heap, a
            // sketch's register).
            if let Some(&b) = mine.get(k + AHEAD / 2) {
                let (a, b, q) = shard.pair_at(b as usize);
                if let (Some(gi), true) = (generation, ids[a as usize] != u32::MAX) {
                    self.pairs
                        .prefetch_dests(gi, hashes[a as usize], &hosts[a as usize].addr);
                }
                if contacts && ids[a as usize] != u32::MAX && q.roles & role_bits::INITIATION != 0 {
                    let fp = &self.fingerprint;
                    let dst = hosts[b as usize].addr;
                    self.hosts
                        .prefetch_address_contact(ids[a as usize], || contact_key(fp, dst));
                }
            }
            let (si, di, p) = shard.pair_at(pi as usize);
            let src = hosts[si as usize].addr;
            let dst = hosts[di as usize].addr;
            let count = PairCount {
                bytes: p.bytes,
                packets: p.packets,
                roles: p.roles,
            };
            // Pairs are kept for tracked sources: where a host no table
            // has room for sent its bytes is not kept either, so that a
            // flood of spoofed sources fills the host table, not the pairs.
            if ids[si as usize] == u32::MAX
                || !self
                    .pairs
                    .add_hashed(t, hashes[si as usize], src, dst, count)
            {
                overflow.pair_bytes += p.bytes;
                overflow.pair_packets += p.packets;
            }
            if contacts && p.roles & role_bits::INITIATION != 0 {
                self.address_contact_of(ids[si as usize], dst, t);
            }
        }
        self.mine = mine;
        if contacts {
            // The sources' slots and scan sets were fetched for the pairs
            // above, and a tick of many sources has pushed them out since.
            // Only our tracked sources' contacts count here.
            let mut ours = std::mem::take(&mut self.own_contacts);
            ours.clear();
            ours.extend(
                shard
                    .contacts_by_index()
                    .filter(|&(si, _, _)| ids[si as usize] != u32::MAX),
            );
            for (k, &(si, proto, port)) in ours.iter().enumerate() {
                if let Some(&(a, _, _)) = ours.get(k + AHEAD) {
                    self.hosts.prefetch_contact(ids[a as usize]);
                }
                if let Some(&(a, _, _)) = ours.get(k + AHEAD / 2) {
                    self.hosts.prefetch_scan(ids[a as usize]);
                }
                self.port_contact_of(ids[si as usize], proto, port, t);
            }
            self.own_contacts = ours;
        }
        self.hashes = hashes;
        self.ids = ids;
        overflow
    }

    /// Adds a host's tick of rate columns to its rate window (made if the
    /// tick has any: a host no rate limit reads traffic of has none).
    #[inline]
    fn add_rates(&mut self, id: u32, t: u64, h: &HostCounters, r: &TickRates) {
        let all = [
            (h.recv_packets, h.recv_bytes),
            (h.sent_packets, h.sent_bytes),
        ];
        let cols = &self.cfg.rate_columns.0;
        let value = |c: &u8| r.value(usize::from(*c), all);
        if self.hosts.slot(id).rates.is_none() && cols.iter().all(|c| value(c) == 0) {
            return;
        }
        let ticks = self.cfg.rate_ticks as usize;
        self.hosts
            .rate_window(id, ticks, cols.len())
            .add(t, cols.iter().map(value));
    }

    /// Host `id` (`u32::MAX`: not tracked here) initiated contact to `dst`.
    #[inline]
    fn address_contact_of(&mut self, id: u32, dst: Addr, tick: u64) {
        if id == u32::MAX {
            return;
        }
        let horizon = self.cfg.horizon(&self.geo);
        let Some(limit) = self.rules.max_contacted_ips(self.hosts.slot(id).rule) else {
            return;
        };
        let key = contact_key(&self.fingerprint, dst);
        let window = self.cfg.scan_ticks;
        self.hosts.with_set(
            id,
            |s| &mut s.addresses,
            |set, may_sketch| set.touch(key, tick, window, limit as usize + 1, may_sketch),
        );
        self.contact_seen(id, tick, horizon);
    }

    /// A contact keeps host `id` until it expires and marks it moved:
    /// contacts resolved a tick late (count = "failed") come without
    /// traffic of their own this tick. Inlined always: once per contact,
    /// the call's entry and exit were as much as its work.
    #[inline(always)]
    fn contact_seen(&mut self, id: u32, tick: u64, horizon: u64) {
        seen(
            &mut self.expiries,
            self.hosts.slot_mut(id),
            id,
            tick,
            horizon,
        );
        self.hosts.touch(id);
    }

    /// Host `id` (`u32::MAX`: not tracked here) initiated contact to a port.
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
        self.hosts.with_set(
            id,
            |s| &mut s.ports,
            |set, may_sketch| set.touch(key, tick, window, limit as usize + 1, may_sketch),
        );
        self.contact_seen(id, tick, horizon);
    }

    /// Takes the contacts the coordinator resolved for this partition.
    fn take_resolved(&mut self) {
        for r in std::mem::take(&mut self.resolved) {
            match r {
                Resolved::Address(src, dst, t) => {
                    if let Some(id) = self.hosts.id(src) {
                        self.address_contact_of(id, dst, t);
                    }
                }
                Resolved::Port(c, t) => {
                    if let Some(id) = self.hosts.id(c.from) {
                        self.port_contact_of(id, c.proto, c.port, t);
                    }
                }
            }
        }
    }

    /// The earliest tick after `tick` with work due here, if any.
    pub fn next_due(&self, tick: u64) -> Option<u64> {
        if self.recheck_alerts {
            return Some(tick + 1);
        }
        [
            self.wheel.next_due(),
            self.expiries.next_due(),
            self.lifecycle.next_due(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|t| t.max(tick + 1))
    }

    /// What the workers may leave out of this partition after closing
    /// `tick` ([`crate::admission`]): it takes at most its room in new
    /// hosts (and pairs from them) until a host may be freed, at the close
    /// of the first tick its expiry schedule holds (after that tick's
    /// merges). Also whether its filter was made now.
    pub fn admission(&mut self, tick: u64) -> (PartAdmission, bool) {
        let (filter, made) = self.hosts.screen_filter();
        let through = self.expiries.next_due().unwrap_or(u64::MAX).max(tick);
        let part = PartAdmission {
            through,
            room: self.hosts.room() as u64,
            filter,
        };
        (part, made)
    }

    /// The tick's work: resolved contacts, the detector pass, the hosts
    /// due off the wheel. Returns the alerts opened and closed.
    pub fn close(&mut self, s: &Situation) -> Transitions {
        self.take_resolved();
        let t = self.detect(s);
        self.due_hosts(s.now.tick);
        t
    }

    /// Hosts the wheel says are due: a bucket of their window slid out (their
    /// rank changes), or their counts may all have expired (freed then).
    fn due_hosts(&mut self, tick: u64) {
        let mut items = std::mem::take(&mut self.drained);
        items.clear();
        self.wheel.drain(tick, &mut items);
        self.expiries.drain(tick, &mut items);
        let horizon = self.cfg.horizon(&self.geo);
        let scans = (self.cfg.scan_ticks, self.cfg.port_ticks);
        let ring = self.geo.ring(self.geo.bucket(tick));
        for (i, &item) in items.iter().enumerate() {
            if let Some(&ahead) = items.get(i + AHEAD) {
                self.hosts.prefetch_due(due::split(ahead).1, ring);
            }
            let (kind, id) = due::split(item);
            if !self.hosts.is_live(id) {
                continue;
            }
            self.work.hosts_due += 1;
            match kind {
                due::SLIDE => {
                    let h = self.hosts.slot(id);
                    rank(&mut self.ranking, &self.geo, h, id, tick);
                    self.note_moved(&[id]);
                    self.changed = true;
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
                        self.expiries.schedule(expires, item);
                    } else if h.alerting != 0 {
                        // Freed once its alerts close.
                        h.expiry_check = tick + horizon;
                        self.expiries.schedule(tick + horizon, item);
                    } else if self.hosts.try_free(id, &self.geo, tick, scans) {
                        self.ranking.remove(id);
                        self.note_moved(&[id]);
                        self.changed = true;
                    } else {
                        let h = self.hosts.slot_mut(id);
                        h.expiry_check = tick + 1;
                        self.expiries.schedule(tick + 1, item);
                    }
                }
            }
        }
        self.drained = items;
    }

    /// Takes and writes the memory of a full host table and its order
    /// ([`crate::hosts::HostTable::prefault`]).
    pub fn prefault(&mut self) -> Result<(), std::collections::TryReserveError> {
        self.hosts.prefault()?;
        self.ranking.try_reserve(self.hosts.max())
    }

    /// Bytes [`Partition::prefault`] takes for `max` hosts.
    pub fn prefault_bytes(max: usize) -> usize {
        HostTable::prefault_bytes(max) + Ranking::reserve_bytes(max)
    }

    /// See [`crate::aggregator::Aggregator::defer_ranking`].
    pub fn defer_ranking(&mut self) {
        self.ranking.defer();
    }

    /// The detector pass: every host touched this tick and every open
    /// alert scheduled to be looked at. Returns the alerts opened and
    /// closed.
    pub fn detect(&mut self, s: &Situation) -> Transitions {
        let tick = s.now.tick;
        let ctx = Ctx {
            now: tick,
            traffic: &self.geo,
            scan_window: self.cfg.scan_ticks,
            port_window: self.cfg.port_ticks,
            rate_columns: &self.cfg.rate_columns.0,
            rate_window_ms: self.cfg.rate_window_ms(),
        };
        let mut closed = Vec::new();
        let mut touched = std::mem::take(&mut self.touched);
        self.hosts.take_touched(&mut touched);
        if self.recheck_alerts {
            self.recheck_alerts = false;
            self.lifecycle.recheck_all(tick);
        }
        if !touched.is_empty() {
            self.changed = true;
        }
        // In slot order, the pass reads host memory front to back instead of
        // missing the cache on every host (worth it when they are many).
        if touched.len() > 1 << 14 {
            touched.sort_unstable();
        }
        let mut r = Reading::default();
        for (i, &id) in touched.iter().enumerate() {
            if let Some(&ahead) = touched.get(i + AHEAD) {
                self.hosts.prefetch_reading(ahead);
            }
            if let Some(&ahead) = touched.get(i + AHEAD / 2) {
                self.hosts.prefetch_scan(ahead);
                let h = self.hosts.slot(ahead);
                self.lifecycle.prefetch_entries(h.alerting, h.addr);
            }
            if let Some(&ahead) = touched.get(i + AHEAD / 4) {
                let h = self.hosts.slot(ahead);
                self.lifecycle.prefetch(h.alerting, h.addr);
            }
            self.work.hosts_evaluated += 1;
            self.hosts.slot_mut(id).evaluated = tick;
            let h = self.hosts.slot(id);
            r.read(h, &ctx);
            rank_by(&mut self.ranking, id, r.sent_bytes, r.recv_bytes);
            let Some(limits) = self.rules.limits(h.rule) else {
                continue;
            };
            for d in &self.detectors {
                let kind = d.kind();
                if let Some(m) = d.measure(&r, limits) {
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
        // Their hosts did not move this tick: index, slot, scan set and
        // alert are all cold. The ids first (each index slot fetched
        // ahead), then each host and its alert fetched ahead of its look.
        let mut due_ids = std::mem::take(&mut self.due_ids);
        due_ids.clear();
        let hash = |a: &Addr| self.hosts.hash(a);
        for (i, (_, addr)) in due.iter().enumerate() {
            if let Some((_, ahead)) = due.get(i + AHEAD) {
                self.hosts.prefetch_index(hash(ahead));
            }
            due_ids.push(self.hosts.id_hashed(hash(addr), *addr).unwrap_or(u32::MAX));
        }
        for (i, &(kind, addr)) in due.iter().enumerate() {
            if let Some(&ahead) = due_ids.get(i + AHEAD) {
                self.hosts.prefetch_reading(ahead);
            }
            if let Some(&(k, a)) = due.get(i + AHEAD / 2) {
                self.hosts.prefetch_scan(due_ids[i + AHEAD / 2]);
                self.lifecycle.prefetch_entries(k.bit(), a);
            }
            if let Some(&(k, a)) = due.get(i + AHEAD / 4) {
                self.lifecycle.prefetch(k.bit(), a);
            }
            let id = due_ids[i];
            let h = (id != u32::MAX).then(|| self.hosts.slot(id));
            let measured = h.and_then(|h| {
                if h.evaluated == tick && h.alerting & kind.bit() != 0 {
                    return Some(None);
                }
                let limits = self.rules.limits(h.rule)?;
                let d = self.detectors.iter().find(|d| d.kind() == kind)?;
                r.read(h, &ctx);
                let m = d.measure(&r, limits)?;
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
        self.due_ids = due_ids;
        self.note_moved(&touched);
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
            self.changed = true;
        }
        (opened, closed)
    }

    /// Marks every host for the next detector pass.
    pub fn touch_all(&mut self) {
        let rules = self.rules.clone();
        self.hosts.relabel(&rules);
        self.changed = true;
    }
}

/// A host had traffic or a contact at `tick`: its counts expire a
/// horizon later, when the wheel looks at it (scheduled once; the look
/// finds how long it has really been quiet).
#[inline]
fn seen(wheel: &mut Wheel, h: &mut HostState, id: u32, tick: u64, horizon: u64) {
    h.last_seen = h.last_seen.max(tick);
    if h.expiry_check == u64::MAX {
        h.expiry_check = tick + horizon;
        wheel.schedule(tick + horizon, due::item(due::EXPIRY, id));
    }
}

/// Puts a host at its place in the ranking by bytes sent, or takes it out
/// if its window is empty.
#[inline]
fn rank(r: &mut Ranking, g: &Geometry, h: &HostState, id: u32, tick: u64) {
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

/// The key a destination takes in a scanner's scan set: the merge's fetch
/// ahead and the count must agree on it.
#[inline]
fn contact_key(fingerprint: &Hasher, dst: Addr) -> u32 {
    fingerprint.hash_one(dst) as u32
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
    h: &HostState,
    m: &Measurement,
    tick: u64,
) {
    l.schedule_by(kind, h.addr, tick, |closes| match closes {
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
            // A rate falls when its oldest tick leaves the window.
            _ => h
                .rates
                .as_ref()
                .and_then(|w| w.next_fall(tick))
                .unwrap_or(tick + 1),
        },
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_split_addresses_evenly_and_stably() {
        for n in [1usize, 2, 3, 8] {
            let mut counts = vec![0usize; n];
            for i in 0..80_000u32 {
                let p = of(Addr::from_v4((0x0a00_0000 + i).to_be_bytes()), n);
                assert_eq!(p, of(Addr::from_v4((0x0a00_0000 + i).to_be_bytes()), n));
                counts[p] += 1;
            }
            for c in &counts {
                let even = 80_000 / n;
                assert!(c.abs_diff(even) < even / 20 + 10, "{n}: {counts:?}");
            }
        }
    }
}
