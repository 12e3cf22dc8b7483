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
}

const UNRANKED: u16 = u16::MAX;

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
            ..Ranking::default()
        }
    }

    /// Hosts ranked.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn grow(&mut self, id: usize) {
        if id >= self.key.len() {
            let n = (id + 1).next_power_of_two();
            self.key.resize(n, 0);
            self.bucket.resize(n, UNRANKED);
            self.prev.resize(n, NONE);
            self.next.resize(n, NONE);
        }
    }

    /// The key of `id`, if ranked.
    pub fn key(&self, id: u32) -> Option<u64> {
        let i = id as usize;
        (self.bucket.get(i).copied().unwrap_or(UNRANKED) != UNRANKED).then(|| self.key[i])
    }

    fn unlink(&mut self, i: usize) {
        let b = self.bucket[i] as usize;
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

    /// Ranks `id` by `key` (inserting it, or moving it).
    pub fn set(&mut self, id: u32, key: u64) {
        let i = id as usize;
        self.grow(i);
        let b = bucket_of(key);
        let old = self.bucket[i];
        self.key[i] = key;
        if old as usize == b {
            return;
        }
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
        self.top = self.top.max(b);
    }

    /// Takes `id` out of the ranking.
    pub fn remove(&mut self, id: u32) {
        let i = id as usize;
        if self.bucket.get(i).copied().unwrap_or(UNRANKED) == UNRANKED {
            return;
        }
        self.unlink(i);
        self.len -= 1;
    }

    /// The `k` largest keys' ids, largest first; ties in the order `tie`
    /// gives. Costs the hosts in the buckets walked, not all hosts.
    pub fn top(&self, k: usize, mut tie: impl FnMut(u32, u32) -> std::cmp::Ordering) -> Vec<u32> {
        let mut out = Vec::with_capacity(k.min(self.len));
        let mut b = self.top.min(BUCKETS - 1) as isize;
        while b >= 0 && out.len() < k {
            let start = out.len();
            let mut id = self.heads[b as usize];
            while id != NONE {
                out.push(id);
                id = self.next[id as usize];
            }
            // Buckets hold a range of keys: order within, by key then tie.
            out[start..].sort_unstable_by(|&x, &y| {
                self.key[y as usize]
                    .cmp(&self.key[x as usize])
                    .then_with(|| tie(x, y))
            });
            b -= 1;
        }
        out.truncate(k);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut r = Ranking::new();
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
        let got = r.top(150, |a, b| a.cmp(&b));
        let want: Vec<u32> = want.iter().take(150).map(|w| w.1).collect();
        assert_eq!(got, want);
        assert_eq!(r.len(), 1999);
        assert_eq!(r.top(5000, |a, b| a.cmp(&b)).len(), 1999);
        assert_eq!(r.key(6), Some(0));
        assert_eq!(r.key(7), None);
    }
}
