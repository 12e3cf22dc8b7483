//! Data sets that came before their template. They are bounded by what
//! they cost, their bytes and a fixed charge each (so that empty sets, four
//! bytes on the wire, are bounded too), pushed out oldest first, and taken
//! by their template's key in one look: a template's arrival costs the sets
//! it releases, not a pass over every set held for other templates.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// What a held set costs besides its bytes: its places in its key's queue,
/// in the map of keys and in the order of arrival. Measured: 345 bytes a
/// set for a million empty sets each under its own key, 90 with a hundred
/// under each key; charging more than the worst keeps `held_bytes` a bound
/// on memory.
pub const OVERHEAD: usize = 384;

/// Order entries left behind by sets taken or forgotten, beyond the sets
/// held, before the order is built again from what is held.
const SLACK: usize = 1024;

#[derive(Debug)]
pub struct Held<K> {
    /// Each key's sets, oldest first, with their arrival numbers.
    by_key: HashMap<K, VecDeque<(u64, Vec<u8>)>>,
    /// Every set's arrival number and key, oldest first; entries of sets
    /// already taken stay until they reach the front (or the order is
    /// rebuilt).
    order: VecDeque<(u64, K)>,
    next: u64,
    sets: usize,
    bytes: usize,
    cost: usize,
    max_cost: usize,
}

impl<K: Copy + Eq + Hash> Held<K> {
    pub fn new(max_cost: usize) -> Held<K> {
        Held {
            by_key: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
            sets: 0,
            bytes: 0,
            cost: 0,
            max_cost,
        }
    }

    /// Sets held.
    pub fn len(&self) -> usize {
        self.sets
    }

    pub fn is_empty(&self) -> bool {
        self.sets == 0
    }

    /// The held sets' own bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `body` for `key`. Returns how many older sets were pushed
    /// out to make room, or None if this one alone is too large to hold.
    pub fn hold(&mut self, key: K, body: &[u8]) -> Option<u64> {
        let cost = body.len() + OVERHEAD;
        if cost > self.max_cost {
            return None;
        }
        let mut dropped = 0;
        while self.cost + cost > self.max_cost && self.drop_oldest() {
            dropped += 1;
        }
        let n = self.next;
        self.next += 1;
        self.by_key
            .entry(key)
            .or_default()
            .push_back((n, body.to_vec()));
        self.order.push_back((n, key));
        self.sets += 1;
        self.bytes += body.len();
        self.cost += cost;
        Some(dropped)
    }

    /// Takes the sets held for `key`, oldest first.
    pub fn take(&mut self, key: &K) -> Option<impl Iterator<Item = Vec<u8>> + use<K>> {
        let sets = self.by_key.remove(key)?;
        for (_, body) in &sets {
            self.forgot(body.len());
        }
        self.tidy();
        Some(sets.into_iter().map(|(_, body)| body))
    }

    /// Forgets every set whose key `gone` picks.
    pub fn forget(&mut self, gone: impl Fn(&K) -> bool) {
        let mut freed = Vec::new();
        self.by_key.retain(|k, sets| {
            let keep = !gone(k);
            if !keep {
                freed.extend(sets.iter().map(|(_, body)| body.len()));
            }
            keep
        });
        for len in freed {
            self.forgot(len);
        }
        self.tidy();
    }

    fn forgot(&mut self, len: usize) {
        self.sets -= 1;
        self.bytes -= len;
        self.cost -= len + OVERHEAD;
    }

    /// Drops the oldest set held; false if none is.
    fn drop_oldest(&mut self) -> bool {
        while let Some((n, key)) = self.order.pop_front() {
            let Some(sets) = self.by_key.get_mut(&key) else {
                continue;
            };
            // A key's sets are in arrival order: if its oldest is newer
            // than this entry, this entry's set was taken already.
            if sets.front().is_none_or(|&(m, _)| m != n) {
                continue;
            }
            let len = sets.pop_front().map_or(0, |(_, body)| body.len());
            if sets.is_empty() {
                self.by_key.remove(&key);
            }
            self.forgot(len);
            return true;
        }
        false
    }

    /// Builds the order again from the sets held once entries of sets no
    /// longer held outnumber them (by `SLACK`), so that it stays within
    /// twice the sets held, and each set taken costs its share once.
    fn tidy(&mut self) {
        if self.order.len() <= 2 * self.sets + SLACK {
            return;
        }
        let mut order: Vec<(u64, K)> = self
            .by_key
            .iter()
            .flat_map(|(k, sets)| sets.iter().map(move |&(n, _)| (n, *k)))
            .collect();
        order.sort_unstable_by_key(|&(n, _)| n);
        self.order = order.into();
    }

    #[cfg(test)]
    pub fn order_len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(h: &mut Held<u16>, k: u16) -> Vec<Vec<u8>> {
        h.take(&k).map(|s| s.collect()).unwrap_or_default()
    }

    #[test]
    fn sets_are_taken_by_key_oldest_first() {
        let mut h = Held::new(1 << 20);
        h.hold(1, b"a1");
        h.hold(2, b"b1");
        h.hold(1, b"a2");
        assert_eq!((h.len(), h.bytes()), (3, 6));
        assert_eq!(bodies(&mut h, 1), vec![b"a1".to_vec(), b"a2".to_vec()]);
        assert!(h.take(&1).is_none());
        assert_eq!((h.len(), h.bytes()), (1, 2));
        assert_eq!(bodies(&mut h, 2), vec![b"b1".to_vec()]);
        assert!(h.is_empty());
    }

    #[test]
    fn the_oldest_held_set_is_pushed_out_past_sets_already_taken() {
        // Room for three empty sets.
        let mut h = Held::new(3 * OVERHEAD);
        assert_eq!(h.hold(1, b""), Some(0));
        assert_eq!(h.hold(2, b""), Some(0));
        assert_eq!(h.hold(1, b""), Some(0));
        // Key 1's two sets go; its entries in the order stay behind.
        assert_eq!(bodies(&mut h, 1).len(), 2);
        assert_eq!(h.hold(3, b""), Some(0));
        assert_eq!(h.hold(1, b""), Some(0));
        // Full (2, 3, 1): the next pushes out 2, not a set of key 1.
        assert_eq!(h.hold(4, b""), Some(1));
        assert!(h.take(&2).is_none());
        assert_eq!(h.len(), 3);
        assert_eq!(bodies(&mut h, 1).len(), 1);
        assert_eq!(bodies(&mut h, 3).len(), 1);
        assert_eq!(bodies(&mut h, 4).len(), 1);
        assert!(h.is_empty());
    }

    #[test]
    fn empty_sets_are_bounded_by_their_charge() {
        let mut h = Held::new(1 << 16);
        let mut dropped = 0;
        for k in 0..10_000u16 {
            dropped += h.hold(k, b"").unwrap();
        }
        assert_eq!(h.len(), (1 << 16) / OVERHEAD);
        assert_eq!(dropped, 10_000 - h.len() as u64);
        assert_eq!(h.bytes(), 0);
    }

    #[test]
    fn a_set_larger_than_the_bound_is_dropped_alone() {
        let mut h = Held::new(1000);
        h.hold(1, &[0; 100]);
        assert_eq!(h.hold(2, &[0; 1000]), None);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn the_order_stays_within_twice_the_sets_held() {
        let mut h = Held::new(1 << 30);
        for round in 0..50u16 {
            for k in 0..1000u16 {
                h.hold(k, &round.to_be_bytes());
            }
            // All but key 0's sets taken: the order keeps entries of
            // sets no longer held only up to its slack.
            for k in 1..1000u16 {
                assert_eq!(bodies(&mut h, k), vec![round.to_be_bytes().to_vec()]);
            }
            assert!(h.order_len() <= 2 * h.len() + SLACK, "{}", h.order_len());
        }
        assert_eq!(h.len(), 50);
        let got = bodies(&mut h, 0);
        let want: Vec<Vec<u8>> = (0..50u16).map(|r| r.to_be_bytes().to_vec()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn forgetting_keys_frees_their_sets_and_keeps_the_others_in_order() {
        let mut h = Held::new(4 * (OVERHEAD + 1));
        h.hold(1, b"x");
        h.hold(2, b"y");
        h.hold(1, b"z");
        h.forget(|&k| k == 1);
        assert_eq!((h.len(), h.bytes()), (1, 1));
        h.hold(3, b"p");
        h.hold(4, b"q");
        h.hold(5, b"r");
        // Full (2, 3, 4, 5): one more pushes out 2.
        assert_eq!(h.hold(6, b"s"), Some(1));
        assert!(h.take(&2).is_none());
        assert_eq!(h.len(), 4);
    }
}
