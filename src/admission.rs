//! Which sources a worker can leave out of its shard because the
//! aggregator would refuse them anyway.
//!
//! Under a flood from spoofed sources every packet comes from a new
//! address. Once the host table is full, the aggregator drops every new
//! source (its bytes, and its pairs', go to the untracked totals) — but
//! only after the worker has put it into its shard and the aggregator has
//! looked it up: the whole cost of the flood, spent on hosts nobody keeps.
//!
//! The aggregator knows when that holds and for how long: a partition whose
//! host table is full takes no new host until one may expire, and its
//! schedule says when. For those ticks it publishes an [`Admission`]: a
//! Bloom filter of every host it tracks. A worker counts a source the filter
//! does not hold straight into the untracked totals, as the aggregator
//! would have done. The filter has false positives (those take the usual
//! path and the aggregator refuses them) and no false negatives, so the
//! counts come out the same to the byte; only the work is saved.
//!
//! The aggregator pins the latest admission on a [`Board`] after every
//! tick; a worker looks at the board's version once per turn of its loop (an
//! atomic load) and takes the new admission when it changed, so a flood is
//! screened from the tick after the tables fill. Nothing a worker does
//! waits on the aggregator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;

use crate::wire::Addr;

/// Where the aggregator pins the latest admission for the workers.
#[derive(Debug, Default)]
pub struct Board {
    version: AtomicU64,
    current: ArcSwapOption<Admission>,
    /// The subjects whose packets the workers copy ([`crate::attacks`]).
    captures: ArcSwapOption<Vec<crate::attacks::take::Wanted>>,
}

impl Board {
    /// Pins `a` if it is not the one pinned already.
    pub fn publish(&self, a: Option<Arc<Admission>>) {
        let same = match (&*self.current.load(), &a) {
            (None, None) => true,
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            _ => false,
        };
        if !same {
            self.current.store(a);
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    /// Changes with every new admission pinned.
    #[inline]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn current(&self) -> Option<Arc<Admission>> {
        self.current.load_full()
    }

    /// Pins the subjects to copy packets of (`None`: none).
    pub fn publish_captures(&self, list: Option<crate::attacks::take::List>) {
        self.captures.store(list);
        self.version.fetch_add(1, Ordering::Release);
    }

    pub fn captures(&self) -> Option<crate::attacks::take::List> {
        self.captures.load_full()
    }
}

/// What the aggregator will refuse, and until when.
#[derive(Debug)]
pub struct Admission {
    /// Per partition: the last tick through which it takes no new host or
    /// source (`None`: not full, everything is taken).
    through: Vec<Option<u64>>,
    filter: Arc<Filter>,
}

impl Admission {
    pub fn new(through: Vec<Option<u64>>, filter: Arc<Filter>) -> Admission {
        Admission { through, filter }
    }

    /// The filter it was built with (kept across ticks while the tables it
    /// describes do not change).
    pub fn filter(&self) -> &Arc<Filter> {
        &self.filter
    }

    pub fn through(&self) -> &[Option<u64>] {
        &self.through
    }

    /// True if it screens some partition's sources at `tick`.
    pub fn applies(&self, tick: u64) -> bool {
        self.through.iter().any(|t| t.is_some_and(|t| t >= tick))
    }
}

/// A worker's view of the admission for its current tick.
#[derive(Debug, Default)]
pub struct Screen {
    admission: Option<Arc<Admission>>,
    /// Per partition: screening applies this tick.
    active: Vec<bool>,
    any: bool,
}

impl Screen {
    /// Takes the admission the aggregator gave back with a shard.
    pub fn set(&mut self, a: Option<Arc<Admission>>) {
        self.admission = a;
        self.any = false;
    }

    /// Works out which partitions it screens at `tick`. Called when a tick
    /// starts, not per packet.
    pub fn begin(&mut self, tick: u64) {
        self.any = false;
        self.active.clear();
        if let Some(a) = &self.admission {
            self.active
                .extend(a.through.iter().map(|t| t.is_some_and(|t| t >= tick)));
            self.any = self.active.iter().any(|&x| x);
        }
    }

    /// True if screening applies at all this tick.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.any
    }

    /// The filter hash of `a` if screening applies to it this tick: what
    /// [`Screen::refuses_probed`] takes, worked out ahead of it so that its
    /// filter block can be fetched first ([`Screen::prefetch`]).
    #[inline]
    pub fn probe(&self, a: Addr) -> Option<u64> {
        if !self.any {
            return None;
        }
        let adm = self.admission.as_ref()?;
        self.active[a.part(self.active.len())].then(|| adm.filter.hash(a))
    }

    /// Starts loading the filter block of a probe.
    #[inline]
    pub fn prefetch(&self, probe: Option<u64>) {
        if let (Some(h), Some(adm)) = (probe, &self.admission) {
            adm.filter.prefetch(h);
        }
    }

    /// True if the aggregator certainly refuses `a` as a new host this
    /// tick (and so every pair from it).
    #[inline]
    pub fn refuses(&self, a: Addr) -> bool {
        self.refuses_probed(self.probe(a))
    }

    /// [`Screen::refuses`] with the address's [`Screen::probe`], taken
    /// while this screen was as it is now.
    #[inline]
    pub fn refuses_probed(&self, probe: Option<u64>) -> bool {
        match (probe, &self.admission) {
            (Some(h), Some(adm)) => !adm.filter.may_hold_hash(h),
            _ => false,
        }
    }
}

/// Words per block: a key sets one bit in each, all in one cache line.
const WORDS: usize = 8;
/// Bits of filter per key it is built for: about 0.5 % false positives
/// with eight bits set per key, and 96 KiB for the default 65 536 hosts,
/// which stays in a worker's cache.
const BITS_PER_KEY: usize = 12;
/// Odd multipliers that pick a key's bit in each word.
const SALT: [u32; WORDS] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// A split-block Bloom filter of addresses: one cache line per lookup.
#[derive(Debug)]
pub struct Filter {
    blocks: Vec<[u32; WORDS]>,
    /// Per-run keys, so that addresses cannot be chosen from outside to
    /// collide.
    seed: (u64, u64),
}

impl Filter {
    /// An empty filter with room for `keys` addresses.
    pub fn with_capacity(keys: usize) -> Filter {
        let blocks = (keys * BITS_PER_KEY).div_ceil(32 * WORDS).clamp(1, 1 << 31);
        let h = crate::shard::Hasher::new();
        Filter {
            blocks: vec![[0; WORDS]; blocks],
            seed: (h.hash_one(1u8) | 1, h.hash_one(2u8)),
        }
    }

    /// The hash a filter lookup of `a` starts from.
    #[inline]
    pub fn hash(&self, a: Addr) -> u64 {
        let x = (a.0 as u64) ^ ((a.0 >> 64) as u64).rotate_left(23) ^ self.seed.1;
        let m = u128::from(x).wrapping_mul(u128::from(self.seed.0));
        let y = (m as u64) ^ ((m >> 64) as u64);
        let m = u128::from(y).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (m as u64) ^ ((m >> 64) as u64)
    }

    /// The block of hash `h`: its high half scaled to the block count.
    #[inline]
    fn block(&self, h: u64) -> usize {
        (((h >> 32) * self.blocks.len() as u64) >> 32) as usize
    }

    pub fn insert(&mut self, a: Addr) {
        let h = self.hash(a);
        let i = self.block(h);
        let b = &mut self.blocks[i];
        let key = h as u32;
        for (w, s) in b.iter_mut().zip(SALT) {
            *w |= 1 << (key.wrapping_mul(s) >> 27);
        }
    }

    /// Starts loading the block a lookup of hash `h` reads.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        tpacket::prefetch(&self.blocks[self.block(h)]);
    }

    /// False if `a` was certainly never inserted.
    #[inline]
    pub fn may_hold(&self, a: Addr) -> bool {
        self.may_hold_hash(self.hash(a))
    }

    /// [`Filter::may_hold`] of the address whose [`Filter::hash`] is `h`.
    #[inline]
    pub fn may_hold_hash(&self, h: u64) -> bool {
        let b = &self.blocks[self.block(h)];
        let key = h as u32;
        b.iter()
            .zip(SALT)
            .all(|(w, s)| w & (1 << (key.wrapping_mul(s) >> 27)) != 0)
    }

    /// Heap bytes.
    pub fn bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<[u32; WORDS]>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(n: u32) -> Addr {
        Addr::from_v4(n.to_be_bytes())
    }

    #[test]
    fn holds_every_key_and_few_others() {
        let n = 100_000u32;
        let mut f = Filter::with_capacity(n as usize);
        for i in 0..n {
            f.insert(v4(0x0a00_0000 + i * 7));
        }
        for i in 0..n {
            assert!(f.may_hold(v4(0x0a00_0000 + i * 7)), "no false negatives");
        }
        let others = (0..n)
            .filter(|i| f.may_hold(v4(0xc000_0000 + i * 13)))
            .count();
        assert!(others < n as usize / 100, "{others} false positives");
    }

    #[test]
    fn the_board_changes_version_only_for_a_new_admission() {
        let b = Board::default();
        let v0 = b.version();
        b.publish(None);
        assert_eq!(b.version(), v0);
        let a = Arc::new(Admission::new(
            vec![Some(3)],
            Arc::new(Filter::with_capacity(1)),
        ));
        b.publish(Some(a.clone()));
        assert_eq!(b.version(), v0 + 1);
        b.publish(Some(a.clone()));
        assert_eq!(b.version(), v0 + 1);
        assert!(Arc::ptr_eq(&b.current().unwrap(), &a));
        b.publish(None);
        assert_eq!(b.version(), v0 + 2);
        assert!(b.current().is_none());
    }

    #[test]
    fn screens_only_full_partitions_at_their_ticks() {
        let mut f = Filter::with_capacity(4);
        let tracked = v4(0x0a00_0001);
        f.insert(tracked);
        let f = Arc::new(f);
        let parts = 4;
        // Find addresses of partition 0 and 1 the filter does not hold.
        let pick = |p: usize| {
            (0..10_000u32)
                .map(|i| v4(0xc000_0000 + i))
                .find(|a| a.part(parts) == p && !f.may_hold(*a))
                .unwrap()
        };
        let (a0, a1) = (pick(0), pick(1));
        let adm = Arc::new(Admission::new(vec![Some(10), None, Some(5), None], f));
        let mut s = Screen::default();
        s.set(Some(adm));
        s.begin(5);
        assert!(s.is_on());
        assert!(s.refuses(a0));
        assert!(!s.refuses(a1), "partition 1 is not full");
        assert!(!s.refuses(tracked));
        s.begin(11);
        assert!(!s.is_on(), "past every partition's tick");
        assert!(!s.refuses(a0));
        s.set(None);
        s.begin(5);
        assert!(!s.refuses(a0));
    }
}
