//! A hash map whose slot for a key is known from the key's hash alone,
//! before it is looked up, so that the slots of the keys to come can be
//! fetched while the current one is worked on ([`OpenMap::prefetch`]).
//! hashbrown's maps say nothing of where a key lives; for the aggregator's
//! tables, larger than the caches and visited in a random order once a
//! tick, the misses are most of the cost, and overlapping them is the gain.
//!
//! An empty slot is one whose value is vacant ([`Vacancy`]: no packets,
//! no destination, no host id), so a slot is a key and a value and
//! nothing more — the largest, a pair's totals, 48 bytes.
//!
//! Open addressing with linear probing, at most half full (a lookup reads
//! one or two neighbouring slots) or, for maps of large slots where memory
//! counts more, three quarters ([`OpenMap::dense`]); removal by shifting
//! the probe run back (no tombstones, so a table that keeps adding and
//! removing hosts does not fill up with them).

use std::collections::TryReserveError;
use std::hash::Hash;

use crate::shard::Hasher;

/// What an empty slot holds: a value that no stored value equals. Its
/// `Default` must be vacant (an empty slot is a default one).
pub trait Vacancy: Default {
    /// True for the default value, false for every value stored.
    fn is_vacant(&self) -> bool;
}

/// An index into a slab: `u32::MAX`, which a bounded table's ids never
/// reach, is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Id(pub u32);

impl Default for Id {
    fn default() -> Id {
        Id(u32::MAX)
    }
}

impl Vacancy for Id {
    fn is_vacant(&self) -> bool {
        self.0 == u32::MAX
    }
}

#[derive(Debug, Clone)]
struct Slot<K, V> {
    key: K,
    val: V,
}

impl<K: Default, V: Vacancy> Default for Slot<K, V> {
    fn default() -> Self {
        Slot {
            key: K::default(),
            val: V::default(),
        }
    }
}

impl<K, V: Vacancy> Slot<K, V> {
    #[inline]
    fn used(&self) -> bool {
        !self.val.is_vacant()
    }
}

#[derive(Debug, Clone)]
pub struct OpenMap<K, V> {
    slots: Vec<Slot<K, V>>,
    len: usize,
    hasher: Hasher,
    /// Filled up to three quarters, not half.
    dense: bool,
}

impl<K: Copy + Default + Eq + Hash, V: Vacancy> OpenMap<K, V> {
    pub fn new(hasher: &Hasher) -> OpenMap<K, V> {
        OpenMap {
            slots: Vec::new(),
            len: 0,
            hasher: hasher.clone(),
            dense: false,
        }
    }

    /// Filled up to three quarters before it grows, not half: probes are
    /// a little longer, the slots a third fewer.
    pub fn dense(mut self) -> OpenMap<K, V> {
        self.dense = true;
        self
    }

    /// True if one more key needs more slots.
    #[inline]
    fn needs_room(&self) -> bool {
        !self.fits(self.len + 1, self.slots.len())
    }

    /// True if `keys` keys fit in `slots` slots.
    fn fits(&self, keys: usize, slots: usize) -> bool {
        if self.dense {
            keys * 4 <= slots * 3
        } else {
            keys * 2 <= slots
        }
    }

    /// Makes room for `keys` keys in all, at once: a batch known to bring
    /// that many grows the table once instead of doubling it step by step
    /// (each step writing a new table and moving every key). Never
    /// shrinks it.
    pub fn reserve(&mut self, keys: usize) {
        let cap = self.slots_for(keys);
        if cap > self.slots.len() {
            self.grow_to(cap);
        }
    }

    /// [`OpenMap::reserve`] that says so if the memory cannot be had,
    /// instead of aborting.
    pub fn try_reserve(&mut self, keys: usize) -> Result<(), TryReserveError> {
        let cap = self.slots_for(keys);
        if cap > self.slots.len() {
            let mut v = Vec::new();
            v.try_reserve_exact(cap)?;
            self.move_to(fill_empty(v, cap));
        }
        Ok(())
    }

    /// Slots a table holding `keys` keys has: its own count at least.
    fn slots_for(&self, keys: usize) -> usize {
        let mut cap = self.slots.len().max(16);
        while !self.fits(keys, cap) {
            cap *= 2;
        }
        cap
    }

    /// Bytes of the slots a map of `keys` keys has, made as [`OpenMap::new`]
    /// makes it (not dense).
    pub fn bytes_for(keys: usize) -> usize {
        (2 * keys).next_power_of_two().max(16) * Self::SLOT_BYTES
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots allocated (at least twice the keys it holds, or 4/3 dense).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of one slot.
    pub const SLOT_BYTES: usize = std::mem::size_of::<Slot<K, V>>();

    #[inline]
    pub fn hash(&self, k: &K) -> u64 {
        self.hasher.hash_one(k)
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Starts loading the slot where the probe for a key of hash `hash`
    /// begins.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        let i = hash as usize & self.mask();
        if let Some(s) = self.slots.get(i) {
            // Both ends: a slot may straddle two cache lines.
            tpacket::prefetch(&s.key);
            tpacket::prefetch(&s.val);
            // And the next: a probe run often goes on past the first slot
            // (a new key's, whenever that slot is taken), and the next
            // line was a miss of its own.
            tpacket::prefetch(&self.slots[(i + 1) & self.mask()].val);
        }
    }

    /// The value of `key` if it sits in the slot its probe begins at (the
    /// one [`OpenMap::prefetch`] loads): a look that reads nothing else,
    /// for a hint, not an answer (`None` also for a key further along).
    #[inline]
    pub fn at_home(&self, hash: u64, key: &K) -> Option<&V> {
        let s = self.slots.get(hash as usize & self.mask())?;
        (s.used() && s.key == *key).then_some(&s.val)
    }

    /// Where `key` is (`Ok`), or the free slot where it would go (`Err`).
    /// The table has at least one free slot.
    #[inline]
    fn find(&self, hash: u64, key: &K) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let s = &self.slots[i];
            if !s.used() {
                return Err(i);
            }
            if s.key == *key {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub fn get(&self, hash: u64, key: &K) -> Option<&V> {
        if self.len == 0 {
            return None;
        }
        self.find(hash, key).ok().map(|i| &self.slots[i].val)
    }

    #[inline]
    pub fn get_mut(&mut self, hash: u64, key: &K) -> Option<&mut V> {
        if self.len == 0 {
            return None;
        }
        let i = self.find(hash, key).ok()?;
        Some(&mut self.slots[i].val)
    }

    /// The value of `key`, made with `make` if it is new; `None` (and no
    /// new key) if it is new and `make` gives nothing.
    #[inline]
    pub fn get_or_insert_with(
        &mut self,
        hash: u64,
        key: K,
        make: impl FnOnce() -> Option<V>,
    ) -> Option<&mut V> {
        let found = if self.slots.is_empty() {
            Err(0)
        } else {
            self.find(hash, &key)
        };
        let i = match found {
            Ok(i) => i,
            Err(mut i) => {
                // Made before the table grows: a full table refusing a
                // flood of new keys does not grow for them.
                let val = make()?;
                // A vacant value would read as an empty slot: refused like
                // a key without room (callers never make one).
                debug_assert!(!val.is_vacant(), "a vacant value stored");
                if val.is_vacant() {
                    return None;
                }
                if self.needs_room() {
                    self.grow();
                    // Not there (just looked): where it goes now.
                    let (Ok(j) | Err(j)) = self.find(hash, &key);
                    i = j;
                }
                self.slots[i] = Slot { key, val };
                self.len += 1;
                i
            }
        };
        Some(&mut self.slots[i].val)
    }

    /// Takes `key` out; returns its value.
    pub fn remove(&mut self, hash: u64, key: &K) -> Option<V> {
        if self.len == 0 {
            return None;
        }
        let mut hole = self.find(hash, key).ok()?;
        let val = std::mem::take(&mut self.slots[hole]).val;
        self.len -= 1;
        // Shift back the rest of the probe run: every key stays reachable
        // from its home slot without a tombstone.
        let mask = self.mask();
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            if !self.slots[i].used() {
                break;
            }
            let home = self.hash(&self.slots[i].key) as usize & mask;
            // Movable into the hole if its home is not strictly between
            // the hole and it (cyclically).
            if (i.wrapping_sub(home) & mask) >= (i.wrapping_sub(hole) & mask) {
                self.slots.swap(hole, i);
                hole = i;
            }
        }
        Some(val)
    }

    /// Empties the map, keeping its slots unless there are more than
    /// `4 × keep` (a burst is over): then room for `keep` keys.
    pub fn clear_to(&mut self, keep: usize) {
        if self.slots.len() > 4 * (2 * keep).max(16) {
            self.slots = empty_slots((2 * keep).max(16).next_power_of_two());
        } else if self.len > 0 {
            self.slots.iter_mut().for_each(|s| *s = Slot::default());
        }
        self.len = 0;
    }

    #[cold]
    fn grow(&mut self) {
        self.grow_to((self.slots.len() * 2).max(16));
    }

    /// Moves the keys to a table of `cap` slots (a power of two, larger).
    fn grow_to(&mut self, cap: usize) {
        self.move_to(empty_slots(cap));
    }

    /// Moves the keys to `slots`, empty, a power of two larger.
    fn move_to(&mut self, slots: Vec<Slot<K, V>>) {
        let cap = slots.len();
        debug_assert!(cap.is_power_of_two() && cap > self.slots.len());
        let old = std::mem::replace(&mut self.slots, slots);
        let mask = cap - 1;
        // Moved out of the old table, which is read once and not written.
        for s in old.into_iter().filter(Slot::used) {
            let mut i = self.hash(&s.key) as usize & mask;
            while self.slots[i].used() {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.used())
            .map(|s| (&s.key, &s.val))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

fn empty_slots<K: Default, V: Vacancy>(n: usize) -> Vec<Slot<K, V>> {
    // Where an empty slot is all zero bytes, the compiler would turn an
    // allocation followed by writing empty slots into a zeroed allocation
    // (calloc) that writes nothing: then each page is faulted in twice,
    // read (the shared zero page) as a probe passes over it and again when
    // a key is written to it. Hidden from the optimizer between the two,
    // the table is written now, each page faulted in once, in order.
    fill_empty(Vec::with_capacity(n), n)
}

/// `n` empty slots written into `v`, empty and holding room for them.
fn fill_empty<K: Default, V: Vacancy>(mut v: Vec<Slot<K, V>>, n: usize) -> Vec<Slot<K, V>> {
    std::hint::black_box(&mut v);
    v.extend(std::iter::repeat_with(Slot::default).take(n));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    impl Vacancy for Vec<u8> {
        fn is_vacant(&self) -> bool {
            self.is_empty()
        }
    }

    #[test]
    fn the_default_of_every_value_kept_is_vacant() {
        assert!(Id::default().is_vacant());
        assert!(!Id(0).is_vacant());
        assert!(Vec::<u8>::default().is_vacant());
    }

    /// Random inserts and removals against std's map, with keys that share
    /// low hash bits often enough to make long probe runs and wrap around
    /// the end of the table.
    #[test]
    fn agrees_with_a_std_map_through_inserts_and_removals() {
        agrees(false);
        agrees(true);
    }

    fn agrees(dense: bool) {
        let h = Hasher::new();
        let mut m: OpenMap<u64, Id> = OpenMap::new(&h);
        if dense {
            m = m.dense();
        }
        let mut std: HashMap<u64, Id> = HashMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 5_000;
            let hash = m.hash(&key);
            match x >> 60 {
                0..=8 => {
                    let v = m.get_or_insert_with(hash, key, || Some(Id(n))).copied();
                    let s = *std.entry(key).or_insert(Id(n));
                    assert_eq!(v, Some(s));
                }
                9..=13 => assert_eq!(m.remove(hash, &key), std.remove(&key)),
                14 => {
                    // A change through `get_mut` is kept; a missing key
                    // is not added.
                    let got = m.get_mut(hash, &key).map(|v| {
                        v.0 ^= 1;
                        *v
                    });
                    let want = std.get_mut(&key).map(|v| {
                        v.0 ^= 1;
                        *v
                    });
                    assert_eq!(got, want);
                }
                _ => assert_eq!(m.get(hash, &key), std.get(&key)),
            }
            assert_eq!(m.len(), std.len());
        }
        let mut all: Vec<(u64, Id)> = m.iter().map(|(k, v)| (*k, *v)).collect();
        let mut want: Vec<(u64, Id)> = std.into_iter().collect();
        all.sort_unstable();
        want.sort_unstable();
        assert_eq!(all, want);
        if dense {
            assert!(m.capacity() * 3 >= m.len() * 4);
        } else {
            assert!(m.capacity() >= m.len() * 2);
        }
    }

    #[test]
    fn reserving_grows_once_keeps_every_key_and_never_shrinks() {
        for dense in [false, true] {
            let h = Hasher::new();
            let mut m: OpenMap<u64, Id> = OpenMap::new(&h);
            if dense {
                m = m.dense();
            }
            for k in 0..100u64 {
                m.get_or_insert_with(m.hash(&k), k, || Some(Id(k as u32)));
            }
            m.reserve(10_000);
            let cap = m.capacity();
            assert!(cap.is_power_of_two());
            // Room for all of them, and no more than one doubling beyond.
            assert!(m.fits(10_000, cap) && !m.fits(10_000, cap / 2), "{cap}");
            for k in 0..100u64 {
                assert_eq!(m.get(m.hash(&k), &k), Some(&Id(k as u32)));
            }
            for k in 100..10_000u64 {
                m.get_or_insert_with(m.hash(&k), k, || Some(Id(k as u32)));
            }
            assert_eq!(
                m.capacity(),
                cap,
                "the batch it was reserved for did not grow it"
            );
            m.reserve(10);
            assert_eq!(m.capacity(), cap);
            assert!((0..10_000u64).all(|k| m.get(m.hash(&k), &k) == Some(&Id(k as u32))));
        }
    }

    #[test]
    fn clearing_keeps_or_gives_back_room() {
        let h = Hasher::new();
        let mut m: OpenMap<u64, Vec<u8>> = OpenMap::new(&h);
        for k in 0..10_000u64 {
            m.get_or_insert_with(m.hash(&k), k, || Some(vec![1]));
        }
        let cap = m.capacity();
        m.clear_to(5_000);
        assert_eq!((m.len(), m.capacity()), (0, cap));
        assert_eq!(m.get(m.hash(&7), &7), None);
        m.get_or_insert_with(m.hash(&7), 7, || Some(vec![2]));
        assert_eq!(m.get(m.hash(&7), &7), Some(&vec![2]));
        m.clear_to(10);
        assert!(m.capacity() <= 64, "{}", m.capacity());
        assert_eq!(m.iter().count(), 0);
    }

    #[test]
    fn a_refused_key_is_not_added() {
        let h = Hasher::new();
        let mut m: OpenMap<u64, Id> = OpenMap::new(&h);
        let hash = m.hash(&7);
        assert_eq!(m.get_or_insert_with(hash, 7, || None), None);
        assert_eq!((m.len(), m.capacity()), (0, 0), "no room made for it");
        assert_eq!(m.get(hash, &7), None);
        assert_eq!(m.remove(hash, &7), None);
    }
}
