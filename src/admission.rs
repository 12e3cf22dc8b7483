//! Which sources a worker can leave out of its shard because the
//! aggregator would refuse them anyway.
//!
//! Under a flood from spoofed sources every packet comes from a new
//! address. Once the host table is full, the aggregator drops every new
//! source (its bytes, and its pairs', go to the untracked totals) — but
//! only after the worker has put it into its shard and the aggregator has
//! looked it up: the whole cost of the flood, spent on hosts nobody keeps.
//!
//! The aggregator knows how many new hosts each partition still takes and
//! for how long: no host is freed before the first expiry its schedule
//! holds, so until then a partition takes as many new hosts as it has room
//! for, the first ones merged, and refuses the rest. It publishes an
//! [`Admission`]: per partition that room, the tick it holds through, and a
//! Bloom filter of every host the partition tracks (kept as hosts are
//! added, built again once freed hosts crowd it). A worker counts a host
//! the filter does not hold as new; once the workers together have taken
//! as many new hosts as the room, it counts the next new ones straight into
//! the untracked totals, as the aggregator would have done. So the flood
//! that fills a table is screened within the tick it fills it, and every
//! tick after while the table is full.
//!
//! The filter has false positives (those take the usual path and the
//! aggregator decides) and no false negatives. Only sources are left out
//! this way: a destination is kept wherever its source is, for the pair
//! and the contact the aggregator keeps of a tracked source. With one
//! worker the hosts left out are exactly those the aggregator would have
//! refused: it takes the first new hosts up to its room in the order the
//! shard holds them, and the worker left out only new sources that came
//! after that many others. So the counts come out the same to the byte;
//! only the work is saved. With several workers, which new hosts get in when a table
//! fills depends on their order, as it did before; a host two workers
//! both take counts twice against the room.
//!
//! The aggregator pins the latest admission on a [`Board`] after every
//! tick; a worker looks at the board's version once per turn of its loop (an
//! atomic load) and takes the new admission when it changed. Nothing a
//! worker does waits on the aggregator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
    parts: Vec<PartAdmission>,
    /// Per partition: new hosts the workers have taken under this
    /// admission, all workers together.
    taken: Vec<AtomicU64>,
}

/// What one partition takes until a host of it may be freed.
#[derive(Debug, Clone)]
pub struct PartAdmission {
    /// The last tick through which no host of it is freed (`u64::MAX`:
    /// none is due), so that it takes no more than `room` new hosts.
    pub through: u64,
    /// New hosts it takes through `through`: 0 when full.
    pub room: u64,
    /// Every host it tracks (and some it has freed).
    pub filter: Arc<Filter>,
}

impl PartAdmission {
    fn same(&self, o: &PartAdmission) -> bool {
        self.through == o.through && self.room == o.room && Arc::ptr_eq(&self.filter, &o.filter)
    }
}

impl Admission {
    pub fn new(parts: Vec<PartAdmission>) -> Admission {
        let taken = parts.iter().map(|_| AtomicU64::new(0)).collect();
        Admission { parts, taken }
    }

    pub fn parts(&self) -> &[PartAdmission] {
        &self.parts
    }

    /// True if it says what `parts` say (its count of hosts taken goes on).
    pub fn same_as(&self, parts: &[PartAdmission]) -> bool {
        self.parts.len() == parts.len() && self.parts.iter().zip(parts).all(|(a, b)| a.same(b))
    }

    /// True if some partition is full at `tick`: it takes no new host.
    pub fn applies(&self, tick: u64) -> bool {
        self.parts.iter().any(|p| p.room == 0 && p.through >= tick)
    }
}

/// What a worker does with a partition's new hosts this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Takes them all: a host may be freed before they are merged.
    Open,
    /// Takes as many as the partition has room for.
    Room,
    /// Takes none: the partition is full.
    Full,
}

/// A source's screening probe: its partition, whether that partition is
/// full (not only short of room), and its hash in the partition's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    part: u32,
    full: bool,
    hash: u64,
}

/// A worker's view of the admission for its current tick.
#[derive(Debug, Default)]
pub struct Screen {
    admission: Option<Arc<Admission>>,
    /// Per partition, this tick.
    modes: Vec<Mode>,
    /// Per partition: the workers have taken all its room.
    exhausted: Vec<bool>,
    /// Some partition is full this tick.
    any_full: bool,
    /// Some partition is not open this tick.
    any: bool,
}

impl Screen {
    /// Takes the admission the aggregator gave back with a shard.
    pub fn set(&mut self, a: Option<Arc<Admission>>) {
        self.exhausted.clear();
        if let Some(a) = &a {
            self.exhausted.resize(a.parts.len(), false);
        }
        self.admission = a;
        self.any = false;
        self.any_full = false;
    }

    /// Works out what it takes of each partition at `tick`. Called when a
    /// tick starts, not per packet.
    pub fn begin(&mut self, tick: u64) {
        self.modes.clear();
        if let Some(a) = &self.admission {
            self.modes
                .extend(a.parts.iter().map(|p| match (p.through >= tick, p.room) {
                    (false, _) => Mode::Open,
                    (true, 0) => Mode::Full,
                    (true, _) => Mode::Room,
                }));
        }
        self.any_full = self.modes.contains(&Mode::Full);
        self.any = self.modes.iter().any(|&m| m != Mode::Open);
    }

    /// True if screening applies at all this tick.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.any
    }

    /// The probe of `a` if its partition is full or short of room this
    /// tick: what [`Screen::refuses_probed`] and [`Screen::refuses_new`]
    /// take, worked out ahead of them so that its filter block can be
    /// fetched first ([`Screen::prefetch`]). While a flood fills the table
    /// the filter is being written by the aggregator, and a block read
    /// when it is needed is a miss nearly every time.
    #[inline]
    pub fn probe(&self, a: Addr) -> Option<Probe> {
        if !self.any {
            return None;
        }
        let adm = self.admission.as_ref()?;
        let part = a.part(self.modes.len());
        let mode = self.modes[part];
        (mode != Mode::Open).then(|| Probe {
            part: part as u32,
            full: mode == Mode::Full,
            hash: adm.parts[part].filter.hash(a),
        })
    }

    /// Starts loading the filter block of a probe.
    #[inline]
    pub fn prefetch(&self, probe: Option<Probe>) {
        if let (Some(p), Some(adm)) = (probe, &self.admission) {
            adm.parts[p.part as usize].filter.prefetch(p.hash);
        }
    }

    /// True if the aggregator certainly refuses `a` as a new host this
    /// tick (and so every pair from it): its partition is full.
    #[inline]
    pub fn refuses(&self, a: Addr) -> bool {
        self.refuses_probed(self.probe(a))
    }

    /// [`Screen::refuses`] with the address's [`Screen::probe`], taken
    /// while this screen was as it is now.
    #[inline]
    pub fn refuses_probed(&self, probe: Option<Probe>) -> bool {
        match (probe, &self.admission) {
            (Some(p), Some(adm)) if p.full => {
                !adm.parts[p.part as usize].filter.may_hold_hash(p.hash)
            }
            _ => false,
        }
    }

    /// Asked of a source the worker's shard does not hold yet: true if it
    /// is left out. A host the aggregator tracks is never left out. A new one
    /// is while its partition is full, and once the workers have taken as
    /// many new hosts as the partition has room for: the aggregator takes
    /// the first ones it merges and refuses the rest, so the flood that
    /// fills the table is screened within the tick it fills it, not from
    /// the tick after. `probe`: the source's [`Screen::probe`], taken
    /// while this screen was as it is now (none: its partition is open, or
    /// nothing is screened).
    #[inline]
    pub fn refuses_new(&mut self, probe: Option<Probe>) -> bool {
        let Some(probe) = probe else {
            // Open, or no screening at all.
            return false;
        };
        let Some(adm) = &self.admission else {
            return false;
        };
        let part = probe.part as usize;
        let p = &adm.parts[part];
        match self.modes[part] {
            Mode::Open => false,
            _ if p.filter.may_hold_hash(probe.hash) => false,
            Mode::Full => true,
            Mode::Room if self.exhausted[part] => true,
            Mode::Room => {
                // Relaxed: the count only has to add up, not order anything.
                let over = adm.taken[part].fetch_add(1, Ordering::Relaxed) >= p.room;
                self.exhausted[part] = over;
                over
            }
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
/// The partition that owns it adds each host it takes while the workers
/// read it: a bit, once set, stays set, so a worker sees every host added
/// before the admission it holds was published, and perhaps more.
#[derive(Debug)]
pub struct Filter {
    blocks: Vec<[AtomicU32; WORDS]>,
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
            blocks: (0..blocks).map(|_| Default::default()).collect(),
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

    /// Adds `a`. Only the filter's owner adds (one thread), so a bit is
    /// set with a plain load and store; the workers only read.
    pub fn insert(&self, a: Addr) {
        let h = self.hash(a);
        let b = &self.blocks[self.block(h)];
        let key = h as u32;
        for (w, s) in b.iter().zip(SALT) {
            let bit = 1 << (key.wrapping_mul(s) >> 27);
            let old = w.load(Ordering::Relaxed);
            if old & bit == 0 {
                w.store(old | bit, Ordering::Relaxed);
            }
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
            .all(|(w, s)| w.load(Ordering::Relaxed) & (1 << (key.wrapping_mul(s) >> 27)) != 0)
    }

    /// Heap bytes.
    pub fn bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<[AtomicU32; WORDS]>()
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
        let f = Filter::with_capacity(n as usize);
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

    fn part(through: u64, room: u64, filter: &Arc<Filter>) -> PartAdmission {
        PartAdmission {
            through,
            room,
            filter: filter.clone(),
        }
    }

    #[test]
    fn the_board_changes_version_only_for_a_new_admission() {
        let b = Board::default();
        let v0 = b.version();
        b.publish(None);
        assert_eq!(b.version(), v0);
        let f = Arc::new(Filter::with_capacity(1));
        let a = Arc::new(Admission::new(vec![part(3, 0, &f)]));
        b.publish(Some(a.clone()));
        assert_eq!(b.version(), v0 + 1);
        b.publish(Some(a.clone()));
        assert_eq!(b.version(), v0 + 1);
        assert!(Arc::ptr_eq(&b.current().unwrap(), &a));
        b.publish(None);
        assert_eq!(b.version(), v0 + 2);
        assert!(b.current().is_none());
        assert!(a.same_as(&[part(3, 0, &f)]));
        assert!(!a.same_as(&[part(3, 1, &f)]));
        assert!(!a.same_as(&[part(3, 0, &Arc::new(Filter::with_capacity(1)))]));
    }

    /// Addresses of partition `p` (of `parts`) the filter does not hold.
    fn outside(f: &Filter, p: usize, parts: usize) -> impl Iterator<Item = Addr> + '_ {
        (0..100_000u32)
            .map(|i| v4(0xc000_0000 + i))
            .filter(move |a| a.part(parts) == p && !f.may_hold(*a))
    }

    #[test]
    fn screens_only_full_partitions_at_their_ticks() {
        let f = Filter::with_capacity(4);
        let tracked = v4(0x0a00_0001);
        f.insert(tracked);
        let f = Arc::new(f);
        let parts = 4;
        let a0 = outside(&f, 0, parts).next().unwrap();
        let a1 = outside(&f, 1, parts).next().unwrap();
        let adm = Arc::new(Admission::new(vec![
            part(10, 0, &f),
            part(0, 0, &f),
            part(5, 0, &f),
            part(0, 0, &f),
        ]));
        assert!(adm.applies(5) && adm.applies(10) && !adm.applies(11));
        let mut s = Screen::default();
        s.set(Some(adm));
        s.begin(5);
        assert!(s.is_on());
        assert!(s.refuses(a0));
        assert!(s.refuses_new(s.probe(a0)));
        assert!(!s.refuses(a1), "partition 1 is not full");
        assert!(!s.refuses_new(s.probe(a1)));
        assert!(!s.refuses(tracked));
        assert!(!s.refuses_new(s.probe(tracked)));
        s.begin(11);
        assert!(!s.is_on(), "past every partition's tick");
        assert!(!s.refuses(a0));
        assert!(!s.refuses_new(s.probe(a0)));
        s.set(None);
        s.begin(5);
        assert!(!s.refuses(a0));
        assert!(!s.refuses_new(s.probe(a0)));
    }

    #[test]
    fn workers_take_as_many_new_sources_as_the_room_then_none() {
        let f = Filter::with_capacity(100);
        let tracked: Vec<Addr> = (0..50).map(|i| v4(0x0a00_0000 + i)).collect();
        for &a in &tracked {
            f.insert(a);
        }
        let f = Arc::new(f);
        let parts = 2;
        let adm = Arc::new(Admission::new(vec![part(7, 5, &f), part(7, 3, &f)]));
        assert!(!adm.applies(7), "neither partition is full");
        // Two workers share the room.
        let (mut w1, mut w2) = (Screen::default(), Screen::default());
        for w in [&mut w1, &mut w2] {
            w.set(Some(adm.clone()));
            w.begin(6);
            assert!(w.is_on());
            let p = w
                .probe(tracked[0])
                .expect("partitions short of room are probed");
            assert!(!p.full, "no partition is full");
            assert!(!w.refuses_probed(Some(p)), "only a full one refuses ahead");
        }
        let new0: Vec<Addr> = outside(&f, 0, parts).take(8).collect();
        let new1: Vec<Addr> = outside(&f, 1, parts).take(8).collect();
        let taken0 = [
            !w1.refuses_new(w1.probe(new0[0])),
            !w2.refuses_new(w2.probe(new0[1])),
            !w1.refuses_new(w1.probe(new0[2])),
            !w2.refuses_new(w2.probe(new0[3])),
            !w1.refuses_new(w1.probe(new0[4])),
        ];
        assert_eq!(taken0, [true; 5], "partition 0 has room for five");
        assert!(w2.refuses_new(w2.probe(new0[5])));
        assert!(w1.refuses_new(w1.probe(new0[6])));
        assert!(w1.refuses_new(w1.probe(new0[7])), "and stays out of room");
        for &a in &tracked {
            assert!(
                !w1.refuses_new(w1.probe(a)) && !w2.refuses_new(w2.probe(a)),
                "tracked hosts always"
            );
        }
        // The other partition's room is its own.
        let taken1 = new1
            .iter()
            .filter(|&&a| !w2.refuses_new(w2.probe(a)))
            .count();
        assert_eq!(taken1, 3);
        // Past the tick the room holds through, every host is taken.
        w1.begin(8);
        assert!(!w1.is_on());
        assert!(!w1.refuses_new(w1.probe(new0[7])));
        // A new admission brings a new room.
        let next = Arc::new(Admission::new(vec![part(9, 1, &f), part(9, 0, &f)]));
        w1.set(Some(next));
        w1.begin(8);
        assert!(!w1.refuses_new(w1.probe(new0[6])));
        assert!(w1.refuses_new(w1.probe(new0[7])));
        assert!(w1.refuses_new(w1.probe(new1[7])), "partition 1 is full");
        assert!(w1.refuses(new1[7]));
    }
}
