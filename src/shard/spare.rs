//! Large tables a live worker's shard keeps aside, empty and already in
//! memory, for the tick in which a flood of new sources fills it.
//!
//! A shard's tables start small and grow with the traffic (a thousand
//! hosts in a table sized for sixty thousand would miss the cache on every
//! lookup). Under a flood of spoofed sources that growth was the worker's
//! largest cost in the flood's first tick: each doubling took fresh memory
//! from the kernel and faulted it in page by page (~5 000 faults for the
//! 65 536 sources the default host table takes), then copied the table.
//! With a spare, a table that grows past a quarter of the spare's size
//! moves its entries into the spare instead, once, into memory written when
//! the daemon started; when the shard is quiet again the small tables come
//! back and the spare is put aside, emptied but kept. So a flood's first
//! tick faults in no fresh memory for it, however often floods come, and
//! an ordinary population keeps its small tables.

use std::hash::Hash;

use hashbrown::HashMap;

use super::Hasher;

/// An index (key to slot) and its slots.
type Tables<K, V> = (HashMap<K, u32, Hasher>, Vec<V>);

/// The spare of one index and its slots.
#[derive(Debug)]
pub(super) struct Spare<K, V> {
    /// Capacity of the large index, 0 while it is not aside (not built
    /// yet, or in use): the hot path's test.
    pub(super) aside: usize,
    large: Option<Tables<K, V>>,
    /// The small tables, emptied, while the large ones are in use.
    small: Option<Tables<K, V>>,
}

impl<K: Hash + Eq, V: Clone + Default> Spare<K, V> {
    pub fn new() -> Spare<K, V> {
        Spare {
            aside: 0,
            large: None,
            small: None,
        }
    }

    /// Makes the large tables, room for `entries`, and writes every page
    /// of them (keys from `key`, then removed), so that a flood finds them
    /// in memory.
    pub fn build(&mut self, entries: usize, hasher: &Hasher, key: impl Fn(usize) -> K) {
        if entries == 0 {
            return;
        }
        let mut index = HashMap::with_capacity_and_hasher(entries, hasher.clone());
        for i in 0..entries {
            index.insert(key(i), 0);
        }
        index.clear();
        let mut slots = Vec::with_capacity(entries);
        slots.resize(entries, V::default());
        slots.clear();
        self.aside = index.capacity();
        self.large = Some((index, slots));
        self.small = None;
    }

    /// True if a full index of `capacity` should move into the spare: it
    /// is aside, larger, and the index has outgrown a quarter of it.
    #[inline(always)]
    pub fn takes(&self, capacity: usize) -> bool {
        capacity < self.aside && capacity >= self.aside / 4
    }

    /// Moves the entries of a full `index` and its `slots` into the large
    /// tables (slot numbers unchanged) and puts the small ones aside.
    #[cold]
    #[inline(never)]
    pub fn take(&mut self, index: &mut HashMap<K, u32, Hasher>, slots: &mut Vec<V>) {
        let Some((mut large_index, mut large_slots)) = self.large.take() else {
            return;
        };
        large_index.extend(index.drain());
        large_slots.append(slots);
        std::mem::swap(index, &mut large_index);
        std::mem::swap(slots, &mut large_slots);
        self.small = Some((large_index, large_slots));
        self.aside = 0;
    }

    /// At a recycle, the tables just emptied: if the large ones are in use
    /// and `quiet` (the tick held few enough entries that a small table
    /// would do), the small ones come back and the large ones go aside.
    pub fn settle(&mut self, index: &mut HashMap<K, u32, Hasher>, slots: &mut Vec<V>, quiet: bool) {
        if !quiet {
            return;
        }
        let Some((small_index, small_slots)) = self.small.take() else {
            return;
        };
        let large_index = std::mem::replace(index, small_index);
        let large_slots = std::mem::replace(slots, small_slots);
        self.aside = large_index.capacity();
        self.large = Some((large_index, large_slots));
    }

    /// Bytes of the tables aside (large or small).
    pub fn bytes(&self) -> usize {
        [&self.large, &self.small]
            .into_iter()
            .flatten()
            .map(|(i, s)| {
                i.capacity() * (std::mem::size_of::<(K, u32)>() + 1)
                    + s.capacity() * std::mem::size_of::<V>()
            })
            .sum()
    }

    /// Bytes a spare of `entries` takes.
    pub fn bytes_for(entries: usize) -> usize {
        if entries == 0 {
            return 0;
        }
        // The index's buckets: a power of two with an eighth free.
        let buckets = (entries * 8 / 7).next_power_of_two();
        buckets * (std::mem::size_of::<(K, u32)>() + 1) + entries * std::mem::size_of::<V>()
    }
}

impl super::Shard {
    /// Keeps spare tables for a flood's new sources: room for `hosts`
    /// hosts and `pairs` pairs (at most the shard's bounds), made and
    /// written now. Done before capture starts: under a slow machine's
    /// page faults it takes a while, and a worker doing it mid-capture
    /// would leave its ring to fill.
    pub fn keep_spares(&mut self, hosts: usize, pairs: usize) {
        let hasher = self.index.hasher().clone();
        self.spare_hosts
            .build(hosts.min(self.limits.max_hosts), &hasher, |i| {
                crate::wire::Addr::from_v4((i as u32).to_be_bytes())
            });
        let hasher = self.pair_index.hasher().clone();
        self.spare_pairs
            .build(pairs.min(self.limits.max_pairs), &hasher, |i| i as u64);
    }

    /// Bytes the spares of one shard take for `hosts` hosts and `pairs`
    /// pairs.
    pub fn spare_bytes(hosts: usize, pairs: usize) -> usize {
        Spare::<crate::wire::Addr, super::HostCounters>::bytes_for(hosts)
            + Spare::<u64, (u64, super::PairCounters)>::bytes_for(pairs)
    }
}
