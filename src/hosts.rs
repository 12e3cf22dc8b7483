//! Every host the detectors track: its windows, its distinct-contact sets,
//! which rule applies to it and which alerts it has open.
//!
//! Hosts live in a slab indexed by a hash map; the table is bounded
//! (`max_hosts`). A host whose windows have drained is freed when the
//! aggregator's schedule says its counts have expired ([`HostTable::try_free`]),
//! so neither memory nor any one tick's work grows without bound.

use std::collections::TryReserveError;
use std::sync::Arc;

use crate::admission::Filter;
use crate::distinct::DistinctSet;
use crate::openmap::{Id, OpenMap};
use crate::rates::RateWindow;
use crate::rules::{RuleId, RuleSet};
use crate::shard::Hasher;
use crate::window::{Geometry, HostWindow};
use crate::wire::Addr;

/// Distinct destinations and ports a source initiated contact to.
#[derive(Debug, Clone, Default)]
pub struct ScanSets {
    pub addresses: DistinctSet,
    pub ports: DistinctSet,
}

impl ScanSets {
    /// Heap bytes of the two sets (not of this struct) and sketches kept.
    #[inline]
    fn footprint(&self) -> (usize, usize) {
        let (a, b) = (self.addresses.footprint(), self.ports.footprint());
        (a.0 + b.0, a.1 + b.1)
    }
}

/// One tracked host. Aligned to cache lines: a slab from the allocator
/// starts 16 bytes into a line, and the fields a tick reads of a host (its
/// window's sums, its schedule, its rule) then straddle three or four
/// lines instead of two. In this order (`repr(C)`): the window 16 bytes in,
/// so that its rows of 16 bytes each sit within a line, its totals and
/// clock together in the fifth line, and what the schedule and the
/// detectors read of the host in the sixth.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct HostState {
    pub addr: Addr,
    pub win: HostWindow,
    /// Tick of the detector pass that last looked at this host.
    pub evaluated: u64,
    pub scan: Option<Box<ScanSets>>,
    /// Its rate columns over the rate window, made when it first has
    /// traffic some rate limit reads ([`crate::rates`]).
    pub rates: Option<Box<RateWindow>>,
    /// The window bucket it last had traffic in (`u64::MAX`: none yet).
    pub last_bucket: u64,
    /// The last tick it had traffic or initiated a contact.
    pub last_seen: u64,
    /// When the aggregator's schedule looks at whether its counts have all
    /// expired (`u64::MAX`: not scheduled).
    pub expiry_check: u64,
    /// Bits of the alert kinds open for this host ([`crate::alert::AlertKind::bit`]);
    /// a host with an open alert is never swept out.
    pub alerting: u32,
    pub rule: RuleId,
    /// The slot holds a tracked host (false once freed).
    live: bool,
}

impl HostState {
    /// What a slot holds before a host is put in it, and a new host but
    /// for its address, rule and `live`.
    fn unused() -> HostState {
        HostState {
            addr: Addr::default(),
            rule: 0,
            alerting: 0,
            evaluated: u64::MAX,
            win: HostWindow::default(),
            scan: None,
            rates: None,
            last_bucket: u64::MAX,
            last_seen: 0,
            expiry_check: u64::MAX,
            live: false,
        }
    }

    /// The scan sets, made on first use.
    pub fn scan_mut(&mut self) -> &mut ScanSets {
        self.scan.get_or_insert_with(Box::default)
    }

    /// Scan sketches this host keeps (0 to 2).
    pub fn sketches(&self) -> usize {
        self.scan.as_deref().map_or(0, |s| s.footprint().1)
    }

    /// Heap memory of this host beyond the slab entry.
    pub fn heap_bytes(&self) -> usize {
        self.scan
            .as_deref()
            .map_or(0, |s| std::mem::size_of::<ScanSets>() + s.footprint().0)
            + self.rates.as_ref().map_or(0, |w| w.heap_bytes())
    }
}

/// Makes room for `n` elements in `v` and writes `fill()` into the room
/// beyond its length, which it leaves as it is: the pages are faulted in
/// now, and the elements pushed later land on them.
fn fill_spare<T>(v: &mut Vec<T>, n: usize, fill: impl Fn() -> T) -> Result<(), TryReserveError> {
    v.try_reserve_exact(n.saturating_sub(v.len()))?;
    for s in v.spare_capacity_mut() {
        s.write(fill());
    }
    // Written memory that nothing reads yet: kept from the optimizer, which
    // could otherwise drop the writes.
    std::hint::black_box(v);
    Ok(())
}

/// Bytes an empty scan set kept for a host takes: the set and its place
/// in the list (counted as [`HostTable::bytes`] counts them).
const SPARE_SCAN_BYTES: usize =
    std::mem::size_of::<ScanSets>() + std::mem::size_of::<Box<ScanSets>>();

/// Scan sketches a table keeps at most: a scanner's sketch is just over
/// 1 KiB, so a table's sketches stay near 4 MiB however many hosts scan; the
/// scanners past it are detected as before, only their alerts say no
/// estimate of the scan's size.
pub const MAX_SKETCHES: usize = 4_096;

/// The bounded table of hosts.
#[derive(Debug)]
pub struct HostTable {
    /// Address to slot: a map that can fetch a key's place ahead
    /// ([`HostTable::prefetch_index`]).
    index: OpenMap<Addr, Id>,
    slots: Vec<HostState>,
    /// Beside the slots, not in them: whether a host was touched this tick
    /// is asked of every host a tick merges, before its slot is fetched
    /// ([`HostTable::prefetch`]), and these fit in the cache.
    marks: Vec<bool>,
    free: Vec<u32>,
    touched: Vec<u32>,
    max: usize,
    /// Heap bytes of the hosts' scan sets, kept as they change (a pass over
    /// every host to add them up would cost every tick what the table holds).
    scan_heap: usize,
    /// Scan sketches kept ([`crate::sketch`]), at most [`MAX_SKETCHES`].
    sketches: usize,
    /// Empty scan sets, taken before a new host's first contact makes
    /// its own: those of freed hosts, and in the live daemon one for each
    /// host the table may hold ([`HostTable::prefault`]), so that the tick
    /// a flood of new sources fills the table does not allocate one a
    /// host. Never more than the table holds. Boxes, because a host's
    /// sets are one (moved in and out, never copied).
    #[allow(clippy::vec_box)]
    spare_scans: Vec<Box<ScanSets>>,
    /// The workers' filter of the hosts it tracks ([`HostTable::screen_filter`]),
    /// the bound it was sized for, and the hosts put in it since.
    screen: Option<(Arc<Filter>, usize)>,
    screen_keys: usize,
    /// Slots freed since they were last taken, if asked for
    /// ([`HostTable::log_frees`]).
    freed: Option<Vec<u32>>,
}

impl HostTable {
    pub fn new(max: usize, hasher: &Hasher) -> HostTable {
        HostTable {
            index: OpenMap::new(hasher),
            slots: Vec::new(),
            marks: Vec::new(),
            free: Vec::new(),
            touched: Vec::new(),
            max,
            scan_heap: 0,
            sketches: 0,
            spare_scans: Vec::new(),
            screen: None,
            screen_keys: 0,
            freed: None,
        }
    }

    /// Keeps a list of the slots freed from now on, for someone who keeps
    /// something of each host by slot ([`HostTable::take_freed`]).
    pub fn log_frees(&mut self) {
        self.freed.get_or_insert_with(Vec::new);
    }

    /// The slots freed since the last call (none unless logged), each
    /// with the address its host had. A slot is reused only by a later
    /// [`HostTable::upsert`].
    pub fn take_freed(&mut self, mut f: impl FnMut(u32, Addr)) {
        if let Some(freed) = &mut self.freed {
            for id in freed.drain(..) {
                f(id, self.slots[id as usize].addr);
            }
        }
    }

    /// Number of hosts tracked.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Makes room in the index for `hosts` hosts in all (at most the
    /// bound), where a batch of that many is coming: at least that many
    /// will be held after it (those it holds already, those it takes).
    pub fn reserve(&mut self, hosts: usize) {
        if hosts > self.index.len() {
            self.index.reserve(hosts.min(self.max));
        }
    }

    /// Takes now, and writes, the memory a full table holds: its index,
    /// slots and marks, and a spare scan set for each host. The tick a
    /// flood of new sources fills the table then neither grows nor faults
    /// in a page of them (a fifth of that tick's cost, measured live) nor
    /// allocates a scan set a host (a tenth of what was left). Memory the
    /// index, slots and marks cannot get is an error now, not under
    /// attack; the scan sets are plain allocations within the same
    /// budget. The live daemon
    /// does this ([`crate::aggregator::Aggregator::prefault_within`]); a
    /// replay, whose tables mostly stay small, does not.
    pub fn prefault(&mut self) -> Result<(), TryReserveError> {
        let n = self.max;
        self.index.try_reserve(n)?;
        fill_spare(&mut self.slots, n, HostState::unused)?;
        fill_spare(&mut self.marks, n, || false)?;
        // Scan sets for as many hosts as the table holds (the most it
        // keeps spare).
        self.spare_scans
            .try_reserve_exact(n.saturating_sub(self.spare_scans.len()))?;
        while self.spare_scans.len() < n {
            self.spare_scans.push(Box::default());
        }
        Ok(())
    }

    /// Bytes [`HostTable::prefault`] takes for a table of `max` hosts.
    pub fn prefault_bytes(max: usize) -> usize {
        OpenMap::<Addr, Id>::bytes_for(max)
            + max * (std::mem::size_of::<HostState>() + 1 + SPARE_SCAN_BYTES)
    }

    /// New hosts it takes before one is freed.
    pub fn room(&self) -> usize {
        self.max.saturating_sub(self.index.len())
    }

    /// The filter of every host it tracks, for the workers' screen
    /// ([`crate::admission`]): made when first asked for (a replay never
    /// is), then kept as hosts are added, and made again once the hosts
    /// freed since are as many as the table holds, so that they never
    /// crowd it, at a cost spread over that many frees. Returns it and
    /// whether it was made now.
    pub fn screen_filter(&mut self) -> (Arc<Filter>, bool) {
        let bound = self.max.max(1);
        let freed = self.screen_keys.saturating_sub(self.index.len());
        if let Some((f, sized)) = &self.screen {
            if *sized == bound && freed < bound {
                return (f.clone(), false);
            }
        }
        let f = Arc::new(Filter::with_capacity(bound));
        for a in self.addrs() {
            f.insert(a);
        }
        self.screen_keys = self.index.len();
        self.screen = Some((f.clone(), bound));
        (f, true)
    }

    /// A new bound (reload); hosts beyond it stay until swept.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
        self.spare_scans.truncate(max);
    }

    /// The slot of a host, added if there is room. Marks it touched for
    /// this tick.
    #[inline]
    pub fn upsert(&mut self, addr: Addr, rules: &RuleSet) -> Option<u32> {
        self.upsert_hashed(self.index.hash(&addr), addr, rules)
    }

    /// [`HostTable::upsert`] of an address whose [`HostTable::hash`] is
    /// known.
    #[inline]
    pub fn upsert_hashed(&mut self, hash: u64, addr: Addr, rules: &RuleSet) -> Option<u32> {
        let room = self.index.len() < self.max;
        let next = match self.free.last() {
            Some(&id) => id,
            None => self.slots.len() as u32,
        };
        let mut added = false;
        let Id(id) = *self.index.get_or_insert_with(hash, addr, || {
            added = true;
            room.then_some(Id(next))
        })?;
        if added {
            let state = HostState {
                addr,
                rule: rules.lookup(addr),
                live: true,
                ..HostState::unused()
            };
            if self.free.pop().is_some() {
                self.slots[id as usize] = state;
            } else {
                self.slots.push(state);
                self.marks.push(false);
            }
            if let Some((f, _)) = &self.screen {
                f.insert(addr);
                self.screen_keys += 1;
            }
        }
        self.touch(id);
        Some(id)
    }

    /// Marks a host for this tick's detector pass.
    #[inline]
    pub fn touch(&mut self, id: u32) {
        let m = &mut self.marks[id as usize];
        if !*m {
            *m = true;
            self.touched.push(id);
        }
    }

    /// Starts loading what a merge writes of host `id` — its first line,
    /// its window's row `ring` and its schedule — so that the misses of
    /// the hosts to come overlap.
    #[inline]
    pub fn prefetch(&self, id: u32, ring: usize) {
        if let Some(h) = self.slots.get(id as usize) {
            tpacket::prefetch(h);
            h.win.prefetch_sums();
            h.win.prefetch(ring);
            tpacket::prefetch(&h.expiry_check);
            tpacket::prefetch(&h.scan);
        }
    }

    /// Starts loading the window rows that adding to `bucket` reads of
    /// host `id`, once its window's clock is loaded ([`HostTable::prefetch`]).
    #[inline]
    pub fn prefetch_sliding(&self, id: u32, g: &Geometry, bucket: u64) {
        if let Some(h) = self.slots.get(id as usize) {
            h.win.prefetch_sliding(g, bucket);
        }
    }

    /// Starts loading what a contact of host `id` reads first: its rule and
    /// where its scan sets are.
    #[inline]
    pub fn prefetch_contact(&self, id: u32) {
        if let Some(h) = self.slots.get(id as usize) {
            tpacket::prefetch(&h.rule);
            tpacket::prefetch(&h.scan);
        }
    }

    /// Starts loading what the detector pass reads of host `id`: its
    /// fields, its window's sums.
    #[inline]
    pub fn prefetch_reading(&self, id: u32) {
        if let Some(h) = self.slots.get(id as usize) {
            tpacket::prefetch(h);
            h.win.prefetch_sums();
            tpacket::prefetch(&h.evaluated);
            tpacket::prefetch(&h.scan);
        }
    }

    /// Starts loading host `id`'s scan sets, if it has any (its slot
    /// should be in the cache by now: [`HostTable::prefetch`]).
    #[inline]
    pub fn prefetch_scan(&self, id: u32) {
        if let Some(s) = self.slots.get(id as usize).and_then(|h| h.scan.as_deref()) {
            s.addresses.prefetch();
            s.ports.prefetch();
        }
    }

    /// Starts loading what host `id`'s address contact with the key
    /// `key` gives will read of its scan set beyond the set itself (loaded
    /// by now: [`HostTable::prefetch_scan`]).
    #[inline]
    pub fn prefetch_address_contact(&self, id: u32, key: impl FnOnce() -> u32) {
        if let Some(s) = self.slots.get(id as usize).and_then(|h| h.scan.as_deref()) {
            s.addresses.prefetch_beyond(key);
        }
    }

    /// Starts loading what the schedule's look at host `id` reads: whether
    /// it is live, its window's sums and bucket row `ring` (the one
    /// sliding out).
    #[inline]
    pub fn prefetch_due(&self, id: u32, ring: usize) {
        if let Some(h) = self.slots.get(id as usize) {
            tpacket::prefetch(&h.live);
            tpacket::prefetch(&h.expiry_check);
            h.win.prefetch_sums();
            h.win.prefetch(ring);
        }
    }

    pub fn id(&self, addr: Addr) -> Option<u32> {
        self.id_hashed(self.index.hash(&addr), addr)
    }

    /// [`HostTable::id`] of an address whose [`HostTable::hash`] is known.
    #[inline]
    pub fn id_hashed(&self, hash: u64, addr: Addr) -> Option<u32> {
        self.index.get(hash, &addr).map(|i| i.0)
    }

    /// The hash [`HostTable::upsert_hashed`] and
    /// [`HostTable::prefetch_index`] take.
    #[inline]
    pub fn hash(&self, addr: &Addr) -> u64 {
        self.index.hash(addr)
    }

    /// Starts loading where the index keeps the address of hash `hash`.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    pub fn get(&self, addr: Addr) -> Option<&HostState> {
        self.id(addr).map(|i| &self.slots[i as usize])
    }

    pub fn get_mut(&mut self, addr: Addr) -> Option<&mut HostState> {
        let i = self.id(addr)?;
        Some(&mut self.slots[i as usize])
    }

    pub fn slot(&self, id: u32) -> &HostState {
        &self.slots[id as usize]
    }

    pub fn slot_mut(&mut self, id: u32) -> &mut HostState {
        &mut self.slots[id as usize]
    }

    /// The hosts touched since the last call, cleared for the next tick.
    pub fn take_touched(&mut self, into: &mut Vec<u32>) {
        into.clear();
        std::mem::swap(into, &mut self.touched);
        for &id in into.iter() {
            self.marks[id as usize] = false;
        }
    }

    /// The address of every host: read off the index, which holds them,
    /// in one pass over it instead of a miss on each host's slot.
    pub fn addrs(&self) -> impl Iterator<Item = Addr> + '_ {
        self.index.iter().map(|(&a, _)| a)
    }

    /// Every tracked host.
    pub fn iter(&self) -> impl Iterator<Item = &HostState> {
        self.index.values().map(|i| &self.slots[i.0 as usize])
    }

    /// Rules or limits changed: every host looks its rule up again and is
    /// looked at by the next detector pass, moved or not.
    pub fn relabel(&mut self, rules: &RuleSet) {
        let ids: Vec<u32> = self.index.values().map(|i| i.0).collect();
        for i in ids {
            let h = &mut self.slots[i as usize];
            h.rule = rules.lookup(h.addr);
            self.touch(i);
        }
    }

    /// Changes one of host `id`'s scan sets, `pick`ed (the sets made if it
    /// has none), keeping the table's count of their memory. `f` is told
    /// whether the set may start a sketch (the table's budget has room).
    #[inline]
    pub fn with_set<R>(
        &mut self,
        id: u32,
        pick: impl Fn(&mut ScanSets) -> &mut DistinctSet,
        f: impl FnOnce(&mut DistinctSet, bool) -> R,
    ) -> R {
        let may_sketch = self.sketches + 2 <= MAX_SKETCHES;
        let h = &mut self.slots[id as usize];
        // What `f` can change is the picked set's heap and sketch, and the
        // sets themselves if the host had none (a spare's sets hold
        // nothing): counted from the picked set alone, not from both or
        // the host's whole heap before and after (once per contact).
        let made = if h.scan.is_none() {
            h.scan = self.spare_scans.pop();
            std::mem::size_of::<ScanSets>()
        } else {
            0
        };
        let set = pick(h.scan_mut());
        let (before, sketches) = set.footprint();
        let r = f(set, may_sketch);
        let (after, sketches_after) = set.footprint();
        self.scan_heap = self.scan_heap + made + after - before;
        self.sketches = self.sketches + sketches_after - sketches;
        r
    }

    /// Host `id`'s rate window, made (`ticks` slots of `columns`) if it has
    /// none, its memory counted.
    #[inline]
    pub fn rate_window(&mut self, id: u32, ticks: usize, columns: usize) -> &mut RateWindow {
        let h = &mut self.slots[id as usize];
        if h.rates.is_none() {
            let w = Box::new(RateWindow::new(ticks, columns));
            self.scan_heap += w.heap_bytes();
            h.rates = Some(w);
        }
        h.rates.as_mut().expect("made above")
    }

    /// Drops every host's rate window (their columns changed).
    pub fn drop_rate_windows(&mut self) {
        for h in &mut self.slots {
            if let Some(w) = h.rates.take() {
                self.scan_heap -= w.heap_bytes();
            }
        }
    }

    /// Sketches kept.
    pub fn sketches(&self) -> usize {
        self.sketches
    }

    /// Ends the sketch of a scan whose alert closed (`ports`: the port
    /// scan's, else the address scan's).
    pub fn end_sketch(&mut self, addr: Addr, ports: bool) {
        let Some(id) = self.id(addr) else {
            return;
        };
        let h = &mut self.slots[id as usize];
        let Some(s) = &mut h.scan else {
            return;
        };
        let set = if ports {
            &mut s.ports
        } else {
            &mut s.addresses
        };
        if set.has_sketch() {
            set.end_sketch();
            self.sketches -= 1;
            self.scan_heap -= crate::sketch::Sketch::BYTES;
        }
    }

    /// True if `id` is the slot of a tracked host.
    pub fn is_live(&self, id: u32) -> bool {
        self.slots.get(id as usize).is_some_and(|h| h.live)
    }

    /// Frees host `id` if nothing of it is left: not touched this tick, no
    /// open alert, an empty window and no contact within the scan windows.
    /// Returns true if it was freed.
    pub fn try_free(&mut self, id: u32, g: &Geometry, now: u64, scan_windows: (u64, u64)) -> bool {
        if !self.is_live(id) {
            return false;
        }
        let touched = self.marks[id as usize];
        let h = &mut self.slots[id as usize];
        if touched || h.alerting != 0 || !h.win.is_empty(g, now) {
            return false;
        }
        let before = h.heap_bytes();
        let sketches = h.sketches();
        let scans_empty = match &mut h.scan {
            None => true,
            Some(s) => {
                let a = s.addresses.expire(now, scan_windows.0);
                let p = s.ports.expire(now, scan_windows.1);
                a && p
            }
        };
        self.sketches = self.sketches + h.sketches() - sketches;
        if !scans_empty {
            self.scan_heap = self.scan_heap + h.heap_bytes() - before;
            return false;
        }
        self.sketches -= h.sketches();
        self.scan_heap -= before;
        if let Some(mut s) = h.scan.take() {
            if self.spare_scans.len() < self.max {
                // Emptied (its sets' heap and sketches dropped) for the
                // next host.
                *s = ScanSets::default();
                self.spare_scans.push(s);
            }
        }
        h.rates = None;
        h.live = false;
        self.index.remove(self.index.hash(&h.addr), &h.addr);
        self.free.push(id);
        if let Some(freed) = &mut self.freed {
            freed.push(id);
        }
        true
    }

    /// Heap memory of the table, bytes.
    pub fn bytes(&self) -> usize {
        self.index.capacity() * OpenMap::<Addr, Id>::SLOT_BYTES
            + self.slots.capacity() * std::mem::size_of::<HostState>()
            + self.free.capacity() * 4
            + self.touched.capacity() * 4
            + self.marks.capacity()
            + self.scan_heap
            + self.spare_scans.capacity() * std::mem::size_of::<Box<ScanSets>>()
            + self.spare_scans.len() * std::mem::size_of::<ScanSets>()
    }
}

#[cfg(test)]
mod tests;
