//! The hosts in order of bytes sent over the window, kept as they change:
//! the snapshot lists the largest senders without ranking every tracked
//! host every tick.
//!
//! Hosts sit in buckets by the size of their key (bytes sent): 16 buckets
//! per power of two, each a doubly linked list threaded through arrays
//! indexed by host id. Moving a host whose key changed is O(1); the top `k`
//! walk the buckets from the largest down and sort only the bucket where
//! the list is cut. Keys are exact — the caller updates a host whenever its
//! sum changes (traffic, or a bucket of its window sliding out) — so the
//! top `k` are exact too.
//!
//! A ranking read rarely ([`Ranking::defer`]: a replay that lists only at
//! the end) applies moves when it is read, not as they are made: a host
//! whose key changed is queued with its latest key, once however often it
//! changes, and moves once instead of every tick it had traffic (in a long
//! capture of many hosts the moves were 8 % of the time, each a few misses
//! in the lists). A live daemon lists every tick and moves hosts as they
//! change: queueing them would only add to each tick.

const NONE: u32 = u32::MAX;
/// Sub-buckets per power of two.
const SUB_BITS: u32 = 4;
/// Bucket 0 holds key 0 (hosts that only received); then 16 per bit.
const BUCKETS: usize = 1 + (64 << SUB_BITS);

#[derive(Debug, Default)]
pub struct Ranking {
    key: Vec<u64>,
    bucket: Vec<u16>,
    prev: Vec<u32>,
    next: Vec<u32>,
    heads: Vec<u32>,
    /// Hosts ranked.
    len: usize,
    /// The highest bucket that may hold a host.
    top: usize,
    /// Per bucket: hosts in it.
    counts: Vec<u32>,
    /// Moves are queued until the order is read.
    deferred: bool,
    /// Per host id (when deferred): its latest key not yet applied, if
    /// `queued` says so.
    want: Vec<u64>,
    /// Per host id: [`NOT_QUEUED`], [`QUEUED_SET`] or [`QUEUED_REMOVE`].
    queued: Vec<u8>,
    /// Hosts with a queued move, each once, in the order first queued.
    dirty: Vec<u32>,
    /// Crowded buckets in order, kept and patched as hosts move: under a
    /// flood of spoofed sources tens of thousands of hosts share a bucket
    /// or two, and sorting them again every tick would cost what the table
    /// holds.
    sorted: Vec<Sorted>,
}

/// A crowded bucket's hosts, the first `ordered` of them in order and the
/// rest after them in no order (a listing reads the first few thousand of
/// a crowd of tens of thousands), and the hosts that moved in, out or
/// within it since.
#[derive(Debug)]
struct Sorted {
    bucket: usize,
    ids: Vec<u32>,
    ordered: usize,
    moved: Vec<u32>,
    /// More moved than is worth patching: sorted again when next asked.
    stale: bool,
}

/// Buckets with more hosts than this have their order kept.
const KEEP_SORTED: u32 = 512;
/// Crowded buckets whose order is kept at most.
const SORTED_KEPT: usize = 8;

const UNRANKED: u16 = u16::MAX;

const NOT_QUEUED: u8 = 0;
const QUEUED_SET: u8 = 1;
const QUEUED_REMOVE: u8 = 2;

fn bucket_of(key: u64) -> usize {
    if key == 0 {
        return 0;
    }
    let bits = 63 - key.leading_zeros();
    let sub = if bits >= SUB_BITS {
        (key >> (bits - SUB_BITS)) as u32 & ((1 << SUB_BITS) - 1)
    } else {
        ((key << (SUB_BITS - bits)) as u32) & ((1 << SUB_BITS) - 1)
    };
    1 + ((bits << SUB_BITS) | sub) as usize
}

impl Ranking {
    pub fn new() -> Ranking {
        Ranking {
            heads: vec![NONE; BUCKETS],
            counts: vec![0; BUCKETS],
            ..Ranking::default()
        }
    }

    /// Hosts ranked.
    pub fn len(&mut self) -> usize {
        self.apply();
        self.len
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Asked on every rank update: the check stays inline, and the
    /// resizing, rare, out of line (called whole, its register saves and
    /// restores were more than a percent of a long capture's instructions).
    #[inline]
    fn grow(&mut self, id: usize) {
        if id >= self.key.len() {
            self.grow_to(id);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow_to(&mut self, id: usize) {
        let n = (id + 1).next_power_of_two();
        self.key.resize(n, 0);
        self.bucket.resize(n, UNRANKED);
        self.prev.resize(n, NONE);
        self.next.resize(n, NONE);
        if self.deferred {
            self.want.resize(n, 0);
            self.queued.resize(n, NOT_QUEUED);
        }
    }

    /// Room for hosts `0..n`, written now, so that a table filled in one
    /// tick takes no fresh memory for its order then (it would double its
    /// arrays a dozen times, copying each).
    pub fn try_reserve(&mut self, n: usize) -> Result<(), std::collections::TryReserveError> {
        let n = n.next_power_of_two();
        let more = n.saturating_sub(self.key.len());
        if more == 0 {
            return Ok(());
        }
        self.key.try_reserve_exact(more)?;
        self.bucket.try_reserve_exact(more)?;
        self.prev.try_reserve_exact(more)?;
        self.next.try_reserve_exact(more)?;
        if self.deferred {
            self.want.try_reserve_exact(more)?;
            self.queued.try_reserve_exact(more)?;
        }
        self.grow(n - 1);
        Ok(())
    }

    /// Bytes [`Ranking::try_reserve`] takes for `n` hosts.
    pub fn reserve_bytes(n: usize) -> usize {
        n.next_power_of_two() * (8 + 2 + 4 + 4)
    }

    /// From now on, moves wait until the order is read.
    pub fn defer(&mut self) {
        self.deferred = true;
        let n = self.key.len();
        self.want.resize(n, 0);
        self.queued.resize(n, NOT_QUEUED);
    }

    /// The key of `id`, if ranked.
    pub fn key(&self, id: u32) -> Option<u64> {
        let i = id as usize;
        match self.queued.get(i).copied().unwrap_or(NOT_QUEUED) {
            QUEUED_SET => Some(self.want[i]),
            QUEUED_REMOVE => None,
            _ => (self.bucket.get(i).copied().unwrap_or(UNRANKED) != UNRANKED).then(|| self.key[i]),
        }
    }

    /// Ranks `id` by `key` (inserting it, or moving it); if deferred,
    /// when the order is next read.
    #[inline]
    pub fn set(&mut self, id: u32, key: u64) {
        let i = id as usize;
        self.grow(i);
        if self.deferred {
            self.want[i] = key;
            self.queue(id, QUEUED_SET);
        } else {
            self.set_now(id, key);
        }
    }

    /// Takes `id` out of the ranking; if deferred, when the order is next
    /// read.
    #[inline]
    pub fn remove(&mut self, id: u32) {
        if !self.deferred {
            self.remove_now(id);
        } else if (id as usize) < self.queued.len() {
            self.queue(id, QUEUED_REMOVE);
        }
    }

    #[inline]
    fn queue(&mut self, id: u32, op: u8) {
        let q = &mut self.queued[id as usize];
        if *q == NOT_QUEUED {
            self.dirty.push(id);
        }
        *q = op;
    }

    /// Applies the queued moves.
    fn apply(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            let i = id as usize;
            match std::mem::replace(&mut self.queued[i], NOT_QUEUED) {
                QUEUED_SET => self.set_now(id, self.want[i]),
                QUEUED_REMOVE => self.remove_now(id),
                _ => {}
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    fn unlink(&mut self, i: usize) {
        let b = self.bucket[i] as usize;
        self.counts[b] -= 1;
        self.moved(b, i as u32);
        let (p, n) = (self.prev[i], self.next[i]);
        if p == NONE {
            self.heads[b] = n;
        } else {
            self.next[p as usize] = n;
        }
        if n != NONE {
            self.prev[n as usize] = p;
        }
        self.bucket[i] = UNRANKED;
    }

    fn set_now(&mut self, id: u32, key: u64) {
        let i = id as usize;
        let b = bucket_of(key);
        let old = self.bucket[i];
        if old as usize == b {
            if self.key[i] != key {
                self.key[i] = key;
                self.moved(b, id);
            }
            return;
        }
        self.key[i] = key;
        if old != UNRANKED {
            self.unlink(i);
        } else {
            self.len += 1;
        }
        let head = self.heads[b];
        self.prev[i] = NONE;
        self.next[i] = head;
        if head != NONE {
            self.prev[head as usize] = id;
        }
        self.heads[b] = id;
        self.bucket[i] = b as u16;
        self.counts[b] += 1;
        self.moved(b, id);
        self.top = self.top.max(b);
    }

    fn remove_now(&mut self, id: u32) {
        let i = id as usize;
        if self.bucket.get(i).copied().unwrap_or(UNRANKED) == UNRANKED {
            return;
        }
        self.unlink(i);
        self.len -= 1;
    }

    /// The `k` largest keys' ids, largest first; ties in the order of
    /// `tie` (a host's address): the same for a host every time. Costs the
    /// hosts in the buckets walked, not all hosts.
    pub fn top<T: Ord>(&mut self, k: usize, mut tie: impl FnMut(u32) -> T) -> Vec<u32> {
        self.apply();
        let counts = &self.counts;
        // Orders kept are of crowded buckets only: their memory stays within
        // one id per host.
        self.sorted.retain(|s| counts[s.bucket] > KEEP_SORTED);
        let mut out = Vec::with_capacity(k.min(self.len));
        let mut b = self.top.min(BUCKETS - 1) as isize;
        while b >= 0 && out.len() < k {
            let bu = b as usize;
            b -= 1;
            if self.heads[bu] == NONE {
                continue;
            }
            let want = k - out.len();
            if self.counts[bu] > KEEP_SORTED {
                let at = self.crowded(bu, want, &mut tie);
                let ids = &self.sorted[at].ids;
                out.extend_from_slice(&ids[..want.min(ids.len())]);
                continue;
            }
            let start = out.len();
            self.bucket_ids(bu, &mut out);
            let (_, mine) = out.split_at_mut(start);
            self.order(mine, &mut tie);
        }
        out.truncate(k);
        out
    }

    /// Notes that `id` moved into, out of or within bucket `b`.
    #[inline]
    fn moved(&mut self, b: usize, id: u32) {
        for s in self.sorted.iter_mut().filter(|s| s.bucket == b) {
            if s.stale {
                continue;
            }
            if s.moved.len() >= (s.ids.len() / 2).max(64) {
                s.stale = true;
                s.moved = Vec::new();
            } else {
                s.moved.push(id);
            }
        }
    }

    /// The index in `sorted` of crowded bucket `b`'s order, brought up to
    /// date and ordered at least `want` deep: patched for the few hosts
    /// that moved, ordered again if many did or it was not kept.
    fn crowded<T: Ord>(&mut self, b: usize, want: usize, tie: &mut impl FnMut(u32) -> T) -> usize {
        let found = self.sorted.iter().position(|s| s.bucket == b);
        if let Some(i) = found.filter(|&i| !self.sorted[i].stale) {
            let mut s = std::mem::replace(
                &mut self.sorted[i],
                Sorted {
                    bucket: b,
                    ids: Vec::new(),
                    ordered: 0,
                    moved: Vec::new(),
                    stale: false,
                },
            );
            if !s.moved.is_empty() {
                s.moved.sort_unstable();
                s.moved.dedup();
                let moved = &s.moved;
                let ordered = s.ids[..s.ordered]
                    .iter()
                    .filter(|id| moved.binary_search(id).is_err())
                    .count();
                let whole = s.ordered == s.ids.len();
                s.ids.retain(|id| moved.binary_search(id).is_err());
                s.ordered = ordered;
                // The moved hosts still in the bucket, in order: those
                // before the last ordered one merge into the order (all of
                // them if it is the whole bucket), the others join the rest.
                let mut back: Vec<u32> = moved
                    .iter()
                    .copied()
                    .filter(|&id| self.bucket[id as usize] as usize == b)
                    .collect();
                back.sort_unstable_by(|&x, &y| self.cmp(x, y, tie));
                let into = if whole {
                    back.len()
                } else if ordered == 0 {
                    0
                } else {
                    let last = s.ids[ordered - 1];
                    back.partition_point(|&m| self.cmp(m, last, tie).is_lt())
                };
                if !back.is_empty() {
                    // Where each goes, by binary search (few comparisons,
                    // each reading host memory), then the runs between
                    // copied whole.
                    let ids = &s.ids;
                    let at: Vec<usize> = back[..into]
                        .iter()
                        .map(|&m| ids[..ordered].partition_point(|&x| self.cmp(x, m, tie).is_lt()))
                        .collect();
                    let mut merged = Vec::with_capacity(ids.len() + back.len());
                    let mut from = 0;
                    for (&m, &i) in back.iter().zip(&at) {
                        merged.extend_from_slice(&ids[from..i]);
                        merged.push(m);
                        from = i;
                    }
                    merged.extend_from_slice(&ids[from..]);
                    merged.extend_from_slice(&back[into..]);
                    s.ids = merged;
                    s.ordered = ordered + into;
                }
                s.moved.clear();
            }
            if s.ordered < want.min(s.ids.len()) {
                let from = s.ordered;
                self.order_keyed(&mut s.ids[from..], want - from, tie);
                s.ordered = want.min(s.ids.len());
            }
            self.sorted[i] = s;
            return i;
        }
        let mut ids = Vec::with_capacity(self.counts[b] as usize);
        self.bucket_ids(b, &mut ids);
        self.order_keyed(&mut ids, want, tie);
        let s = Sorted {
            bucket: b,
            ordered: want.min(ids.len()),
            ids,
            moved: Vec::new(),
            stale: false,
        };
        match found {
            Some(i) => {
                self.sorted[i] = s;
                i
            }
            None => {
                if self.sorted.len() == SORTED_KEPT {
                    self.sorted.remove(0);
                }
                self.sorted.push(s);
                self.sorted.len() - 1
            }
        }
    }

    /// The ranking order of two hosts: larger key first, then `tie`.
    #[inline]
    fn cmp<T: Ord>(&self, x: u32, y: u32, tie: &mut impl FnMut(u32) -> T) -> std::cmp::Ordering {
        self.key[y as usize]
            .cmp(&self.key[x as usize])
            .then_with(|| tie(x).cmp(&tie(y)))
    }

    fn bucket_ids(&self, b: usize, out: &mut Vec<u32>) {
        let mut id = self.heads[b];
        while id != NONE {
            out.push(id);
            id = self.next[id as usize];
        }
    }

    /// Buckets hold a range of keys: order within, by key then tie (read
    /// only where two keys are equal).
    fn order<T: Ord>(&self, ids: &mut [u32], tie: &mut impl FnMut(u32) -> T) {
        ids.sort_unstable_by(|&x, &y| self.cmp(x, y, tie));
    }

    /// [`Ranking::order`] of a crowded bucket's first `n` hosts, the rest
    /// left after them: each host's tie read once and sorted beside its
    /// key. Under a spoofed flood 65 536 hosts with the same bytes share a
    /// bucket and are ordered by address; reading it through `tie` on every
    /// comparison missed the cache on a host far from the last each time
    /// (a tenth of the flood's first tick), and ordering all of them when
    /// a listing reads ten thousand took a tenth of what was left.
    fn order_keyed<T: Ord>(&self, ids: &mut [u32], n: usize, tie: &mut impl FnMut(u32) -> T) {
        let mut keyed: Vec<(u64, T, u32)> = ids
            .iter()
            .map(|&id| (self.key[id as usize], tie(id), id))
            .collect();
        let cmp = |a: &(u64, T, u32), b: &(u64, T, u32)| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1));
        if n < keyed.len() {
            keyed.select_nth_unstable_by(n, cmp);
            keyed[..n].sort_unstable_by(cmp);
        } else {
            keyed.sort_unstable_by(cmp);
        }
        for (slot, (_, _, id)) in ids.iter_mut().zip(keyed) {
            *slot = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_taken_ahead_is_not_grown_into_and_ranks_the_same() {
        for deferred in [false, true] {
            let mut r = Ranking::new();
            if deferred {
                r.defer();
            }
            r.try_reserve(5000).unwrap();
            assert_eq!(r.key.len(), 8192);
            assert_eq!(r.want.len(), if deferred { 8192 } else { 0 });
            assert!(r.is_empty(), "nothing ranked by taking room");
            let p = r.key.as_ptr();
            for id in 0..8192u32 {
                r.set(id, u64::from(id % 97) + 1);
            }
            assert_eq!(r.len(), 8192);
            assert_eq!((r.key.len(), r.key.as_ptr()), (8192, p), "not grown");
            let top = r.top(3, |id| id);
            assert_eq!(top, vec![96, 193, 290], "keys 97, ties by id");
            assert_eq!(Ranking::reserve_bytes(5000), 8192 * 18);
        }
    }

    #[test]
    fn buckets_are_monotonic_in_the_key() {
        let mut last = 0;
        for k in (0..5000u64)
            .chain((1..64).map(|s| 1u64 << s))
            .chain([u64::MAX])
        {
            let b = bucket_of(k);
            assert!(b < BUCKETS, "{k}");
            if k > 0 {
                assert!(b >= bucket_of(k - 1), "{k}");
            }
            last = last.max(b);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn top_k_is_the_exact_order_of_keys() {
        for deferred in [false, true] {
            top_k_is_the_exact_order_of_keys_in(deferred);
        }
    }

    fn top_k_is_the_exact_order_of_keys_in(deferred: bool) {
        let mut r = made(deferred);
        let keys: Vec<u64> = (0..2000u64)
            .map(|i| (i * 7919) % 1000 + (i % 3) * 100_000)
            .collect();
        for (i, &k) in keys.iter().enumerate() {
            r.set(i as u32, k);
        }
        // Move some, remove some.
        r.set(5, 10_000_000);
        r.set(6, 0);
        r.remove(7);
        let mut want: Vec<(u64, u32)> = (0..2000u32)
            .filter(|&i| i != 7)
            .map(|i| {
                let k = match i {
                    5 => 10_000_000,
                    6 => 0,
                    _ => keys[i as usize],
                };
                (k, i)
            })
            .collect();
        want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let got = r.top(150, |a| a);
        let want: Vec<u32> = want.iter().take(150).map(|w| w.1).collect();
        assert_eq!(got, want);
        assert_eq!(r.len(), 1999);
        assert_eq!(r.top(5000, |a| a).len(), 1999);
        assert_eq!(r.key(6), Some(0));
        assert_eq!(r.key(7), None);
    }

    fn made(deferred: bool) -> Ranking {
        let mut r = Ranking::new();
        if deferred {
            r.defer();
        }
        r
    }

    #[test]
    fn deferred_moves_wait_for_a_read_and_keep_only_the_last() {
        let mut r = made(true);
        r.set(1, 10);
        r.set(2, 500);
        r.set(1, 7_000);
        r.remove(2);
        r.set(3, 20);
        r.remove(3);
        r.set(3, 30);
        assert_eq!(r.dirty, [1, 2, 3], "each host queued once");
        assert_eq!(
            (r.key(1), r.key(2), r.key(3)),
            (Some(7_000), None, Some(30))
        );
        assert_eq!(r.bucket[1], UNRANKED, "not moved before a read");
        assert_eq!(r.top(10, |a| a), [1, 3]);
        assert!(r.dirty.is_empty());
        assert_eq!(r.len(), 2);
        r.remove(1);
        r.remove(9);
        assert_eq!(r.len(), 1);
        assert_eq!(r.top(10, |a| a), [3]);
    }

    fn brute(keys: &std::collections::BTreeMap<u32, u64>, k: usize) -> Vec<u32> {
        let mut v: Vec<(u64, u32)> = keys.iter().map(|(&i, &k)| (k, i)).collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v.into_iter().take(k).map(|x| x.1).collect()
    }

    #[test]
    fn ties_follow_the_tie_key_in_crowded_and_small_buckets() {
        for deferred in [false, true] {
            ties_follow_the_tie_key_in_crowded_and_small_buckets_in(deferred);
        }
    }

    fn ties_follow_the_tie_key_in_crowded_and_small_buckets_in(deferred: bool) {
        // The tie key runs against the ids (as addresses do against slot
        // numbers): a crowd of equal keys, and a small bucket of them.
        let mut r = made(deferred);
        for i in 0..3000u32 {
            r.set(i, 50);
        }
        for i in 3000..3010u32 {
            r.set(i, 1_000_000);
        }
        let tie = |id: u32| std::cmp::Reverse(id);
        let got = r.top(20, tie);
        let want: Vec<u32> = (3000..3010u32).rev().chain((2990..3000u32).rev()).collect();
        assert_eq!(got, want);
        // Kept order, patched after a move within the crowd (51 shares the
        // bucket of 50) and a host leaving it.
        r.set(5, 51);
        r.remove(2999);
        let got = r.top(12, tie);
        let want: Vec<u32> = (3000..3010u32).rev().chain([5, 2998]).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn crowded_buckets_keep_their_order_as_hosts_move() {
        for deferred in [false, true] {
            crowded_buckets_keep_their_order_as_hosts_move_in(deferred);
        }
    }

    fn crowded_buckets_keep_their_order_as_hosts_move_in(deferred: bool) {
        // A spoofed flood: thousands of hosts with the same few bytes.
        let mut r = made(deferred);
        let mut keys = std::collections::BTreeMap::new();
        for i in 0..5000u32 {
            let k = 50 + u64::from(i % 3);
            r.set(i, k);
            keys.insert(i, k);
        }
        r.set(9000, 1_000_000);
        keys.insert(9000, 1_000_000);
        let check = |r: &mut Ranking, keys: &std::collections::BTreeMap<u32, u64>| {
            for k in [1, 100, 4000, 6000] {
                assert_eq!(r.top(k, |a| a), brute(keys, k), "top {k}");
            }
        };
        check(&mut r, &keys);
        check(&mut r, &keys);
        // A key changed within the bucket, a host left it, one joined.
        r.set(4999, 52);
        keys.insert(4999, 52);
        check(&mut r, &keys);
        r.remove(10);
        keys.remove(&10);
        check(&mut r, &keys);
        r.set(7000, 51);
        keys.insert(7000, 51);
        check(&mut r, &keys);
        // The large host drops into the crowd.
        r.set(9000, 50);
        keys.insert(9000, 50);
        check(&mut r, &keys);
        // Rounds of a few moves each (patched), and one of many (sorted
        // again).
        let mut x = 0x9e37_79b9_u64;
        for round in 0..30 {
            let moves = if round == 17 { 2000 } else { 1 + round % 7 };
            for _ in 0..moves {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let id = (x >> 33) as u32 % 6000;
                match (x >> 20) % 4 {
                    0 => {
                        r.remove(id);
                        keys.remove(&id);
                    }
                    1 => {
                        r.set(id, 1_000 + (x >> 40) % 5);
                        keys.insert(id, 1_000 + (x >> 40) % 5);
                    }
                    _ => {
                        r.set(id, 50 + (x >> 40) % 2);
                        keys.insert(id, 50 + (x >> 40) % 2);
                    }
                }
            }
            // Listings of a few first: the order stays partial across
            // patches until a deeper one is asked for.
            if round % 3 == 0 {
                check(&mut r, &keys);
            } else {
                for k in [1 + round, 100 + 50 * round] {
                    assert_eq!(r.top(k, |a| a), brute(&keys, k), "round {round}: top {k}");
                }
            }
        }
        check(&mut r, &keys);
    }

    #[test]
    fn a_crowd_is_ordered_as_deep_as_listings_read() {
        for deferred in [false, true] {
            a_crowd_is_ordered_as_deep_as_listings_read_in(deferred);
        }
    }

    fn a_crowd_is_ordered_as_deep_as_listings_read_in(deferred: bool) {
        let mut r = made(deferred);
        for i in 0..20_000u32 {
            r.set(i, 50);
        }
        assert_eq!(r.top(10, |a| a), (0..10).collect::<Vec<u32>>());
        let s = &r.sorted[0];
        assert_eq!((s.ordered, s.ids.len()), (10, 20_000));
        // Hosts that move back in land in the order if they come before
        // its last, after it otherwise.
        r.set(3, 51);
        r.set(15_000, 51);
        r.set(3, 50);
        r.set(15_000, 50);
        assert_eq!(r.top(10, |a| a), (0..10).collect::<Vec<u32>>());
        assert_eq!(r.sorted[0].ordered, 10);
        assert_eq!(r.top(12_000, |a| a), (0..12_000).collect::<Vec<u32>>());
        assert_eq!(r.sorted[0].ordered, 12_000);
    }
}
