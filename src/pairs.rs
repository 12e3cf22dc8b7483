//! Bytes between each (source, destination) pair over the traffic window:
//! where a host's traffic went, for `/all`, the network chart and alert
//! evidence.
//!
//! Pairs are many, so their window is coarser than a host's: four
//! generations of a quarter window each. A pair's sum covers between three
//! quarters of the window and the whole of it. Bounded by `max_pairs`
//! across the generations; what does not fit is counted as untracked.
//!
//! Each generation keys its pairs by source, so that one host's
//! destinations (a listed host's, an alert's evidence) are found without
//! a pass over every pair.

use hashbrown::HashMap;

use crate::openmap::{OpenMap, Vacancy};
use crate::shard::Hasher;
use crate::window::Geometry;
use crate::wire::Addr;

const GENERATIONS: usize = 4;
/// Destinations of one source kept in a list before it gets a map.
const FEW: usize = 8;

/// One pair's counts in a generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairCount {
    pub bytes: u64,
    pub packets: u64,
    /// [`crate::shard::role_bits`] seen from source to destination.
    pub roles: u8,
}

impl PairCount {
    fn add(&mut self, c: &PairCount) {
        self.bytes += c.bytes;
        self.packets += c.packets;
        self.roles |= c.roles;
    }
}

/// The destinations of one source in one generation: most sources have
/// one, scanners a few, servers many.
#[derive(Debug, Clone, Default)]
enum Dests {
    /// An empty slot of the map.
    #[default]
    Vacant,
    /// Without an allocation: most sources, and every spoofed one.
    One(Addr, PairCount),
    /// `len` of the `cap` entries of the generation's list of short lists
    /// ([`Generation::few`]) from `at`: a source with a few destinations
    /// allocates nothing of its own, and a generation's lists go all at
    /// once when it turns (one allocation and one free each, for a tick of
    /// scanners, was a twentieth of a sparse replay's time).
    Few { at: u32, len: u8, cap: u8 },
    /// Boxed: inline, the map would make every slot of a generation's
    /// table (nearly all of them `One`) 96 bytes instead of 64.
    Many(Box<HashMap<Addr, PairCount, Hasher>>),
}

/// A source in the map has a destination at least.
impl Vacancy for Dests {
    fn is_vacant(&self) -> bool {
        matches!(self, Dests::Vacant)
    }
}

/// Entries a source's first short list has; the second has [`FEW`].
const FIRST_FEW: u8 = 4;

/// Room for `n` entries at the end of `few`; where they start. `None`
/// past the `u32` a list's start is kept in (the pair bound keeps a
/// generation far below it).
fn take_few(few: &mut Vec<(Addr, PairCount)>, n: u8) -> Option<u32> {
    let at = u32::try_from(few.len()).ok()?;
    few.resize(few.len() + usize::from(n), (Addr(0), PairCount::default()));
    Some(at)
}

impl Dests {
    fn get_mut<'a>(
        &'a mut self,
        dst: &Addr,
        few: &'a mut [(Addr, PairCount)],
    ) -> Option<&'a mut PairCount> {
        match self {
            Dests::Vacant => None,
            Dests::One(d, c) => (d == dst).then_some(c),
            Dests::Few { at, len, .. } => few[*at as usize..][..usize::from(*len)]
                .iter_mut()
                .find(|(d, _)| d == dst)
                .map(|(_, c)| c),
            Dests::Many(m) => m.get_mut(dst),
        }
    }

    /// Adds a destination it does not have. False if the generation's
    /// short lists cannot take it (then it is not added).
    fn insert(
        &mut self,
        dst: Addr,
        c: PairCount,
        hasher: &Hasher,
        few: &mut Vec<(Addr, PairCount)>,
    ) -> bool {
        match self {
            Dests::Vacant => *self = Dests::One(dst, c),
            Dests::One(d, c0) => {
                let Some(at) = take_few(few, FIRST_FEW) else {
                    return false;
                };
                few[at as usize] = (*d, *c0);
                few[at as usize + 1] = (dst, c);
                *self = Dests::Few {
                    at,
                    len: 2,
                    cap: FIRST_FEW,
                };
            }
            Dests::Few { at, len, cap } if *len < *cap => {
                few[(*at + u32::from(*len)) as usize] = (dst, c);
                *len += 1;
            }
            Dests::Few { at, len, .. } if usize::from(*len) < FEW => {
                // Moved to a list of FEW at the end; the old one stays
                // unused until the generation turns.
                let Some(to) = take_few(few, FEW as u8) else {
                    return false;
                };
                let n = usize::from(*len);
                few.copy_within(*at as usize..*at as usize + n, to as usize);
                few[to as usize + n] = (dst, c);
                *self = Dests::Few {
                    at: to,
                    len: *len + 1,
                    cap: FEW as u8,
                };
            }
            Dests::Few { at, len, .. } => {
                let mut m = HashMap::with_capacity_and_hasher(FEW * 2, hasher.clone());
                m.extend(few[*at as usize..][..usize::from(*len)].iter().copied());
                m.insert(dst, c);
                *self = Dests::Many(Box::new(m));
            }
            Dests::Many(m) => {
                m.insert(dst, c);
            }
        }
        true
    }

    fn for_each(&self, few: &[(Addr, PairCount)], mut f: impl FnMut(Addr, &PairCount)) {
        match self {
            Dests::Vacant => {}
            Dests::One(d, c) => f(*d, c),
            Dests::Few { at, len, .. } => few[*at as usize..][..usize::from(*len)]
                .iter()
                .for_each(|(d, c)| f(*d, c)),
            Dests::Many(m) => m.iter().for_each(|(d, c)| f(*d, c)),
        }
    }

    /// Heap bytes of its own (a short list's are the generation's).
    fn heap_bytes(&self) -> usize {
        match self {
            Dests::Many(m) => {
                std::mem::size_of::<HashMap<Addr, PairCount, Hasher>>()
                    + m.capacity() * (std::mem::size_of::<(Addr, PairCount)>() + 1)
            }
            _ => 0,
        }
    }
}

#[derive(Debug)]
struct Generation {
    /// Which quarter-window this generation holds.
    epoch: u64,
    /// Keyed by source with the host table's hasher: a merge has the
    /// source's hash already, and fetches its place ahead
    /// ([`PairWindow::prefetch`]).
    by_src: OpenMap<Addr, Dests>,
    /// Pairs in it.
    pairs: usize,
    /// The short lists of its sources with a few destinations
    /// ([`Dests::Few`]), end to end.
    few: Vec<(Addr, PairCount)>,
    /// Heap bytes of its sources' destination maps, kept as they grow.
    heap: usize,
}

/// The pair window.
#[derive(Debug)]
pub struct PairWindow {
    gens: [Generation; GENERATIONS],
    /// Ticks per generation, and the generations.
    geo: Geometry,
    max: usize,
    len: usize,
    hasher: Hasher,
}

impl PairWindow {
    pub fn new(window_ticks: u64, max: usize, hasher: &Hasher) -> PairWindow {
        let g = || Generation {
            epoch: u64::MAX,
            // Slots of 64 bytes, as many as sources under a spoofed
            // flood: three quarters full.
            by_src: OpenMap::new(hasher).dense(),
            pairs: 0,
            few: Vec::new(),
            heap: 0,
        };
        PairWindow {
            gens: [g(), g(), g(), g()],
            geo: Geometry::with_width(window_ticks / GENERATIONS as u64, GENERATIONS as u64),
            max,
            len: 0,
            hasher: hasher.clone(),
        }
    }

    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Pairs held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Adds counts of tick `tick`. Returns false if the pair did not fit.
    pub fn add(&mut self, tick: u64, src: Addr, dst: Addr, c: PairCount) -> bool {
        let hash = self.gens[0].by_src.hash(&src);
        self.add_hashed(tick, hash, src, dst, c)
    }

    /// [`PairWindow::add`] of a source whose hash (the host table's,
    /// [`crate::hosts::HostTable::hash`]) is known.
    #[inline]
    pub fn add_hashed(&mut self, tick: u64, hash: u64, src: Addr, dst: Addr, c: PairCount) -> bool {
        // The caller's hasher must be this window's, or sources are
        // looked up where they were not put.
        debug_assert_eq!(
            hash,
            self.gens[0].by_src.hash(&src),
            "another hasher's hash"
        );
        let Some(gi) = self.generation(tick) else {
            return false;
        };
        let Generation {
            by_src,
            pairs,
            few,
            heap,
            ..
        } = &mut self.gens[gi];
        let full = self.len >= self.max;
        let mut added = false;
        let Some(dests) = by_src.get_or_insert_with(hash, src, || {
            added = true;
            (!full).then_some(Dests::One(dst, c))
        }) else {
            return false;
        };
        if !added {
            if let Some(p) = dests.get_mut(&dst, few) {
                p.add(&c);
                return true;
            }
            if full {
                return false;
            }
            let before = dests.heap_bytes();
            if !dests.insert(dst, c, &self.hasher, few) {
                return false;
            }
            *heap = *heap + dests.heap_bytes() - before;
        }
        *pairs += 1;
        self.len += 1;
        true
    }

    /// The generation tick `tick` goes to, started afresh if it held an
    /// older quarter; `None` if the tick is older than the window.
    fn generation(&mut self, tick: u64) -> Option<usize> {
        let epoch = self.geo.bucket(tick);
        let gi = (epoch % GENERATIONS as u64) as usize;
        let g = &mut self.gens[gi];
        if g.epoch != epoch {
            if g.epoch != u64::MAX && g.epoch > epoch {
                // A generation newer than this tick already took the slot.
                return None;
            }
            self.len -= g.pairs;
            g.pairs = 0;
            g.heap = 0;
            let keep = self.len / GENERATIONS;
            g.by_src.clear_to(keep.max(1024));
            // Short lists as for the map: room kept unless a burst left
            // four times what a generation now holds.
            let room = (2 * keep).max(1024);
            if g.few.capacity() > 4 * room {
                g.few = Vec::with_capacity(room);
            }
            g.few.clear();
            g.epoch = epoch;
        }
        Some(gi)
    }

    /// Makes room in the generation of `tick` for the sources a merge is
    /// about to add pairs from: `sources` of them, `new` of which it cannot
    /// hold yet (sources it has just started tracking). At least the
    /// larger of `sources` and what it holds plus `new` will be there
    /// after it, unless the bound on pairs stops new ones (the room is
    /// capped by what the bound leaves).
    pub fn reserve(&mut self, tick: u64, sources: usize, new: usize) {
        if let Some(gi) = self.generation(tick) {
            let room = self.max.saturating_sub(self.len);
            let g = &mut self.gens[gi];
            let held = g.by_src.len();
            let n = sources.max(held + new).min(held + room);
            if n > held {
                g.by_src.reserve(n);
            }
        }
    }

    /// Starts loading where generation `gi` ([`PairWindow::current`])
    /// keeps the source of hash `hash`.
    #[inline]
    pub fn prefetch(&self, gi: usize, hash: u64) {
        self.gens[gi].by_src.prefetch(hash);
    }

    /// The generation that tick `tick` goes to if it holds that tick
    /// already (after [`PairWindow::reserve`] of the tick): worked out once
    /// a merge, for [`PairWindow::prefetch`] and
    /// [`PairWindow::prefetch_dests`] of each of its pairs.
    #[inline]
    pub fn current(&self, tick: u64) -> Option<usize> {
        let epoch = self.geo.bucket(tick);
        let gi = (epoch % GENERATIONS as u64) as usize;
        (self.gens[gi].epoch == epoch).then_some(gi)
    }

    /// Starts loading the short list of destinations ([`Dests::Few`]) of
    /// source `src` (hash `hash`) in generation `gi`
    /// ([`PairWindow::current`]), once its slot is loaded
    /// ([`PairWindow::prefetch`]): a scanner's list is kept apart from its
    /// slot, and the pair's lookup waited for it. Only a source in its
    /// home slot: most are, and a look no further costs a source with one
    /// destination (the most common) next to nothing.
    #[inline]
    pub fn prefetch_dests(&self, gi: usize, hash: u64, src: &Addr) {
        let g = &self.gens[gi];
        if let Some(Dests::Few { at, len, .. }) = g.by_src.at_home(hash, src) {
            // All of it: a destination new to the source reads every
            // entry, eight of 48 bytes at most.
            for e in &g.few[*at as usize..][..usize::from(*len)] {
                tpacket::prefetch(e);
            }
        }
    }

    /// Generations still in the window at `now`: with one, no pair
    /// appears twice in [`PairWindow::for_each`].
    pub fn live_generations(&self, now: u64) -> usize {
        self.live(now).count()
    }

    fn live(&self, now: u64) -> impl Iterator<Item = &Generation> {
        let cur = self.geo.bucket(now);
        self.gens.iter().filter(move |g| {
            g.epoch != u64::MAX && g.epoch + GENERATIONS as u64 > cur && g.epoch <= cur
        })
    }

    /// Every pair with its counts summed over the generations still in the
    /// window at `now`. A pair may appear once per generation.
    pub fn for_each(&self, now: u64, mut f: impl FnMut(Addr, Addr, &PairCount)) {
        for g in self.live(now) {
            for (&s, dests) in g.by_src.iter() {
                dests.for_each(&g.few, |d, c| f(s, d, c));
            }
        }
    }

    /// The destinations of `src` in the window at `now`, with their counts
    /// (a destination may appear once per generation): what the pairs of
    /// one source cost, not all pairs.
    pub fn for_each_of(&self, now: u64, src: Addr, mut f: impl FnMut(Addr, &PairCount)) {
        for g in self.live(now) {
            if let Some(dests) = g.by_src.get(g.by_src.hash(&src), &src) {
                dests.for_each(&g.few, &mut f);
            }
        }
    }

    /// Heap bytes.
    pub fn bytes(&self) -> usize {
        self.gens
            .iter()
            .map(|g| {
                g.by_src.capacity() * OpenMap::<Addr, Dests>::SLOT_BYTES
                    + g.few.capacity() * std::mem::size_of::<(Addr, PairCount)>()
                    + g.heap
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> Addr {
        Addr::from_v4([10, 0, 0, n])
    }

    fn c(bytes: u64) -> PairCount {
        PairCount {
            bytes,
            packets: 1,
            roles: 0,
        }
    }

    #[test]
    fn a_slot_of_a_generation_takes_64_bytes() {
        // A flood's fill writes one slot per new source: the bytes of a
        // slot are what it costs in fresh memory.
        assert_eq!(OpenMap::<Addr, Dests>::SLOT_BYTES, 64);
    }

    fn total(w: &PairWindow, now: u64, src: Addr, dst: Addr) -> u64 {
        let mut t = 0;
        w.for_each(now, |s, d, p| {
            if s == src && d == dst {
                t += p.bytes;
            }
        });
        t
    }

    #[test]
    fn sources_new_over_several_merges_are_made_room_for_at_once() {
        let mut w = PairWindow::new(40, 1 << 20, &Hasher::new());
        let src = |n: u32| Addr::from_v4(n.to_be_bytes());
        let mut next = 0;
        for batch in [3000, 5000, 20000] {
            // Each merge's sources are new to the table and the generation.
            w.reserve(0, batch, batch);
            let cap = w.gens[0].by_src.capacity();
            for _ in 0..batch {
                assert!(w.add(0, src(next), a(1), c(1)));
                next += 1;
            }
            assert_eq!(w.gens[0].by_src.capacity(), cap, "grew within the merge");
        }
        // Sources it holds already make no room: a steady tick does not
        // double the generation.
        let cap = w.gens[0].by_src.capacity();
        w.reserve(0, next as usize, 0);
        assert_eq!(w.gens[0].by_src.capacity(), cap);
        // The bound caps the room.
        let mut b = PairWindow::new(40, 100, &Hasher::new());
        b.reserve(0, 5000, 5000);
        assert!(b.gens[0].by_src.capacity() <= 256);
    }

    #[test]
    fn sums_over_generations_and_forgets_old_ones() {
        let mut w = PairWindow::new(8, 100, &Hasher::new());
        for tick in 0..8 {
            assert!(w.add(tick, a(1), a(2), c(10)));
        }
        assert_eq!(total(&w, 7, a(1), a(2)), 80);
        // Two ticks per generation: at tick 9 the first generation is gone.
        w.add(9, a(1), a(2), c(1));
        assert_eq!(total(&w, 9, a(1), a(2)), 61);
        assert_eq!(total(&w, 100, a(1), a(2)), 0);
    }

    #[test]
    fn an_empty_slot_holds_no_destination_and_a_source_has_one() {
        assert!(Dests::default().is_vacant());
        assert!(!Dests::One(a(1), c(1)).is_vacant());
        assert!(
            !Dests::Few {
                at: 0,
                len: 1,
                cap: FIRST_FEW
            }
            .is_vacant()
        );
    }

    #[test]
    fn bounded() {
        let mut w = PairWindow::new(8, 2, &Hasher::new());
        assert!(w.add(0, a(1), a(2), c(1)));
        assert!(w.add(0, a(1), a(3), c(1)));
        assert!(!w.add(0, a(1), a(4), c(1)));
        assert!(w.add(0, a(1), a(2), c(1)), "existing pairs still count");
        assert_eq!(w.len(), 2);
        // A new generation frees the room of the one it replaces.
        assert!(w.add(8, a(1), a(4), c(1)));
    }

    #[test]
    fn the_destinations_of_one_source() {
        let mut w = PairWindow::new(8, 1000, &Hasher::new());
        // A source with more destinations than fit in a list.
        for d in 0..20u8 {
            w.add(0, a(1), a(100 + d), c(u64::from(d)));
            w.add(3, a(1), a(100 + d), c(1));
        }
        w.add(0, a(2), a(100), c(5));
        let mut got = std::collections::BTreeMap::new();
        w.for_each_of(3, a(1), |d, p| *got.entry(d).or_insert(0) += p.bytes);
        assert_eq!(got.len(), 20);
        assert_eq!(got[&a(119)], 20);
        assert_eq!(w.len(), 41);
        assert_eq!(total(&w, 3, a(2), a(100)), 5);
    }

    #[test]
    fn short_lists_go_with_their_generation_and_keep_their_room() {
        let src = |n: u32| Addr::from_v4(n.to_be_bytes());
        let mut w = PairWindow::new(8, 1 << 20, &Hasher::new());
        // In each of the four generations (two ticks each), 3 000 sources
        // with 2 to 9 destinations each: through a first list, a longer
        // one and a map.
        for tick in [0, 2, 4, 6] {
            for n in 0..3000u32 {
                for d in 0..(2 + n % 8) as u8 {
                    assert!(w.add(tick, src(n), a(d), c(u64::from(d) + 1)));
                }
            }
        }
        for n in [0u32, 2, 6, 7] {
            let mut got = std::collections::BTreeMap::new();
            w.for_each_of(6, src(n), |d, p| *got.entry(d).or_insert(0) += p.bytes);
            let want: std::collections::BTreeMap<_, _> = (0..(2 + n % 8) as u8)
                .map(|d| (a(d), 4 * (u64::from(d) + 1)))
                .collect();
            assert_eq!(got, want, "source {n}");
        }
        let lists = w.gens[0].few.capacity();
        assert!(lists >= 3000 * 4, "{lists}");
        // Counts added to a destination in a list land on it.
        assert!(w.add(1, src(5), a(3), c(10)));
        assert_eq!(total(&w, 7, src(5), a(3)), 4 * 4 + 10);
        // The first generation turns: its lists are gone, their room
        // kept while the window holds as many.
        assert!(w.add(8, src(1), a(1), c(1)));
        assert!(w.add(8, src(1), a(2), c(1)));
        assert_eq!(w.gens[0].few.len(), FIRST_FEW as usize);
        assert_eq!(w.gens[0].few.capacity(), lists);
        assert_eq!(total(&w, 8, src(5), a(3)), 3 * 4);
        // Once the window is quiet, a turn gives a burst's room back.
        for tick in [10, 12, 14, 16] {
            assert!(w.add(tick, src(1), a(1), c(1)));
            assert!(w.add(tick, src(1), a(2), c(1)));
        }
        assert!(w.gens[0].few.capacity() < lists);
        assert_eq!(total(&w, 16, src(1), a(2)), 4);
    }

    #[test]
    fn a_tick_older_than_the_window_is_refused() {
        let mut w = PairWindow::new(8, 10, &Hasher::new());
        w.add(20, a(1), a(2), c(1));
        assert!(!w.add(12, a(1), a(2), c(1)));
    }
}
