//! Sliding windows over the tick stream, cut into at most 16 buckets.
//!
//! A window of `W` ticks is kept as `n ≤ 16` buckets of `w = ⌈W/16⌉` ticks.
//! Its sum is the current, partly filled bucket plus the `n - 1` before it,
//! so it covers between `(n-1)·w + 1` and `n·w` ticks: for the default
//! 170-tick traffic window, 166 to 176 ticks. That is the tolerance: a
//! window is its nominal length, give or take one bucket (`W/16`, rounded
//! up). Counts stay exact; only how far back they reach varies by that much.
//!
//! Buckets hold 32-bit counts; a byte count that outgrows 32 bits in one
//! bucket spills into high words kept only for the hosts that need them, so
//! a host costs 256 bytes of windows and sums stay exact.

/// Buckets per window, at most.
pub const MAX_BUCKETS: usize = 16;

/// How a window of some length is cut into buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Ticks per bucket.
    pub width: u64,
    /// Buckets in the window.
    pub buckets: u64,
}

impl Geometry {
    pub fn new(window_ticks: u64) -> Geometry {
        let window_ticks = window_ticks.max(1);
        let width = window_ticks.div_ceil(MAX_BUCKETS as u64);
        Geometry {
            width,
            buckets: window_ticks.div_ceil(width),
        }
    }

    /// The bucket a tick falls in.
    #[inline]
    pub fn bucket(&self, tick: u64) -> u64 {
        tick / self.width
    }

    /// Fewest and most ticks a window sum covers.
    pub fn span(&self) -> (u64, u64) {
        (
            (self.buckets - 1) * self.width + 1,
            self.buckets * self.width,
        )
    }
}

/// Columns of a host's window.
pub mod col {
    pub const SENT_BYTES: usize = 0;
    pub const SENT_PACKETS: usize = 1;
    pub const RECV_BYTES: usize = 2;
    pub const RECV_PACKETS: usize = 3;
}

const COLS: usize = 4;

/// The high-word column of a byte column.
#[inline]
fn hi_col(c: usize) -> Option<usize> {
    match c {
        col::SENT_BYTES => Some(0),
        col::RECV_BYTES => Some(1),
        _ => None,
    }
}

/// One host's four windowed counters (bytes and packets, sent and
/// received), sharing one bucket clock.
#[derive(Debug, Clone, Default)]
pub struct HostWindow {
    /// Bucket number of the newest bucket written.
    newest: u64,
    lo: [[u32; MAX_BUCKETS]; COLS],
    /// High 32 bits of the byte columns, for the rare host whose bucket
    /// passed 4 GiB.
    hi: Option<Box<[[u32; MAX_BUCKETS]; 2]>>,
}

impl HostWindow {
    /// Moves the bucket clock to `bucket`, zeroing the buckets it passes.
    #[inline]
    fn advance(&mut self, g: &Geometry, bucket: u64) {
        if bucket <= self.newest {
            return;
        }
        let n = g.buckets;
        let steps = (bucket - self.newest).min(n);
        for k in 1..=steps {
            let slot = ((self.newest + k) % n) as usize;
            for c in &mut self.lo {
                c[slot] = 0;
            }
            if let Some(hi) = &mut self.hi {
                for c in hi.iter_mut() {
                    c[slot] = 0;
                }
            }
        }
        self.newest = bucket;
    }

    /// Adds a tick's counts.
    #[inline]
    pub fn add(&mut self, g: &Geometry, tick: u64, vals: [u64; COLS]) {
        let bucket = g.bucket(tick);
        self.advance(g, bucket);
        // A tick older than the newest bucket (a late shard) still lands in
        // its own bucket if that is still in the window.
        if bucket + g.buckets <= self.newest {
            return;
        }
        let slot = (bucket % g.buckets) as usize;
        for (c, &v) in vals.iter().enumerate() {
            if v == 0 {
                continue;
            }
            let cur = self.lo[c][slot];
            let (sum, carry) = cur.overflowing_add(v as u32);
            let over = (v >> 32) + u64::from(carry);
            self.lo[c][slot] = sum;
            if over > 0 {
                self.spill(c, slot, over);
            }
        }
    }

    #[cold]
    fn spill(&mut self, c: usize, slot: usize, over: u64) {
        // Packet columns cannot reach 2^32 in one bucket (4 billion packets
        // a bucket); byte columns may.
        let hi_col = match c {
            col::SENT_BYTES => 0,
            col::RECV_BYTES => 1,
            _ => {
                self.lo[c][slot] = u32::MAX;
                return;
            }
        };
        let hi = self
            .hi
            .get_or_insert_with(|| Box::new([[0; MAX_BUCKETS]; 2]));
        hi[hi_col][slot] = hi[hi_col][slot].saturating_add(over.min(u64::from(u32::MAX)) as u32);
    }

    /// The window's sum of a column as of tick `now`.
    #[inline]
    pub fn sum(&self, g: &Geometry, now: u64, c: usize) -> u64 {
        let now_b = g.bucket(now);
        let n = g.buckets;
        if self.newest == now_b {
            // The ring holds exactly the window: add all sixteen lanes (slots
            // past `n` are never written and stay zero).
            return self.all(c);
        }
        if self.newest < now_b {
            if now_b - self.newest >= n {
                return 0;
            }
            // Buckets older than the window are still in the ring: take
            // them off.
            let mut stale = 0u64;
            if now_b >= n {
                for b in (self.newest + 1).saturating_sub(n)..=now_b - n {
                    stale += self.slot(c, (b % n) as usize);
                }
            }
            return self.all(c) - stale;
        }
        // Asked about a tick older than the newest bucket written (a late
        // shard moved this host ahead of the aggregator's clock).
        let first = (now_b + 1)
            .saturating_sub(n)
            .max(self.newest.saturating_sub(n - 1));
        (first..=now_b)
            .map(|b| self.slot(c, (b % n) as usize))
            .sum()
    }

    #[inline]
    fn all(&self, c: usize) -> u64 {
        let lo: u64 = self.lo[c].iter().map(|&v| u64::from(v)).sum();
        match (&self.hi, hi_col(c)) {
            (Some(h), Some(hc)) => lo + (h[hc].iter().map(|&v| u64::from(v)).sum::<u64>() << 32),
            _ => lo,
        }
    }

    #[inline]
    fn slot(&self, c: usize, slot: usize) -> u64 {
        let lo = u64::from(self.lo[c][slot]);
        match (&self.hi, hi_col(c)) {
            (Some(h), Some(hc)) => lo + (u64::from(h[hc][slot]) << 32),
            _ => lo,
        }
    }

    /// True if nothing is left in the window as of `now`.
    pub fn is_empty(&self, g: &Geometry, now: u64) -> bool {
        self.newest + g.buckets <= g.bucket(now)
    }
}

/// A window of one counter for the whole box (ring drops, packets).
#[derive(Debug, Clone, Default)]
pub struct TotalWindow {
    newest: u64,
    vals: [u64; MAX_BUCKETS],
}

impl TotalWindow {
    pub fn add(&mut self, g: &Geometry, tick: u64, v: u64) {
        let bucket = g.bucket(tick);
        if bucket > self.newest {
            for k in 1..=(bucket - self.newest).min(g.buckets) {
                self.vals[((self.newest + k) % g.buckets) as usize] = 0;
            }
            self.newest = bucket;
        }
        if bucket + g.buckets > self.newest {
            self.vals[(bucket % g.buckets) as usize] += v;
        }
    }

    pub fn sum(&self, g: &Geometry, now: u64) -> u64 {
        let now_b = g.bucket(now);
        let first = (now_b + 1).saturating_sub(g.buckets);
        if self.newest < first {
            return 0;
        }
        (first.max(self.newest.saturating_sub(g.buckets - 1))..=self.newest.min(now_b))
            .map(|b| self.vals[(b % g.buckets) as usize])
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(w: &mut HostWindow, g: &Geometry, tick: u64, bytes: u64) {
        w.add(g, tick, [bytes, 1, 0, 0]);
    }

    #[test]
    fn geometry_of_common_windows() {
        assert_eq!(
            Geometry::new(170),
            Geometry {
                width: 11,
                buckets: 16
            }
        );
        assert_eq!(Geometry::new(170).span(), (166, 176));
        assert_eq!(
            Geometry::new(600),
            Geometry {
                width: 38,
                buckets: 16
            }
        );
        assert_eq!(
            Geometry::new(10),
            Geometry {
                width: 1,
                buckets: 10
            }
        );
        assert_eq!(Geometry::new(10).span(), (10, 10));
        assert_eq!(
            Geometry::new(16),
            Geometry {
                width: 1,
                buckets: 16
            }
        );
        assert_eq!(
            Geometry::new(17),
            Geometry {
                width: 2,
                buckets: 9
            }
        );
        assert_eq!(
            Geometry::new(1),
            Geometry {
                width: 1,
                buckets: 1
            }
        );
    }

    #[test]
    fn exact_window_with_one_tick_buckets() {
        let g = Geometry::new(10);
        let mut w = HostWindow::default();
        for t in 0..30 {
            add(&mut w, &g, t, 100);
            let expect = 100 * (t.min(9) + 1);
            assert_eq!(w.sum(&g, t, col::SENT_BYTES), expect, "tick {t}");
        }
        // Nothing more: the window drains a tick at a time.
        assert_eq!(w.sum(&g, 30, col::SENT_BYTES), 900);
        assert_eq!(w.sum(&g, 38, col::SENT_BYTES), 100);
        assert_eq!(w.sum(&g, 39, col::SENT_BYTES), 0);
        assert!(w.is_empty(&g, 39));
        assert!(!w.is_empty(&g, 38));
    }

    #[test]
    fn a_burst_straddling_an_interval_boundary_is_seen_whole() {
        // The original reset its table every interval: 600 bytes in the last
        // 5 ticks of one interval and 600 in the first 5 of the next were two
        // halves below a limit of 1000. A sliding window sees 1200.
        let g = Geometry::new(170);
        let mut w = HostWindow::default();
        for t in 165..175 {
            add(&mut w, &g, t, 120);
        }
        assert_eq!(w.sum(&g, 174, col::SENT_BYTES), 1200);
        assert_eq!(w.sum(&g, 174, col::SENT_PACKETS), 10);
    }

    #[test]
    fn coarse_buckets_keep_within_the_tolerance() {
        let g = Geometry::new(170);
        let (min, max) = g.span();
        for at in 0..400u64 {
            let mut w = HostWindow::default();
            add(&mut w, &g, at, 1);
            for now in at..at + 200 {
                let inside = w.sum(&g, now, col::SENT_BYTES) == 1;
                let age = now - at;
                if age < min {
                    assert!(inside, "a tick {age} old must count (now {now})");
                }
                if age >= max {
                    assert!(!inside, "a tick {age} old must not count (now {now})");
                }
            }
        }
    }

    #[test]
    fn large_byte_counts_stay_exact() {
        let g = Geometry::new(16);
        let mut w = HostWindow::default();
        for t in 0..3 {
            w.add(&g, t, [5_000_000_000, 1, 3_000_000_000, 1]);
            w.add(&g, t, [4_000_000_000, 1, 3_000_000_000, 1]);
        }
        assert_eq!(w.sum(&g, 2, col::SENT_BYTES), 27_000_000_000);
        assert_eq!(w.sum(&g, 2, col::RECV_BYTES), 18_000_000_000);
        assert_eq!(w.sum(&g, 2, col::SENT_PACKETS), 6);
        // Spilled buckets expire like the others.
        assert_eq!(w.sum(&g, 17, col::SENT_BYTES), 9_000_000_000);
        assert_eq!(w.sum(&g, 18, col::SENT_BYTES), 0);
    }

    #[test]
    fn a_late_tick_lands_in_its_bucket_if_still_in_the_window() {
        let g = Geometry::new(10);
        let mut w = HostWindow::default();
        add(&mut w, &g, 20, 1);
        add(&mut w, &g, 15, 10);
        add(&mut w, &g, 5, 100);
        assert_eq!(w.sum(&g, 20, col::SENT_BYTES), 11);
    }

    #[test]
    fn long_gaps_clear_everything() {
        let g = Geometry::new(170);
        let mut w = HostWindow::default();
        add(&mut w, &g, 3, 7);
        add(&mut w, &g, 100_000, 5);
        assert_eq!(w.sum(&g, 100_000, col::SENT_BYTES), 5);
    }

    #[test]
    fn total_window() {
        let g = Geometry::new(4);
        let mut t = TotalWindow::default();
        for tick in 0..6 {
            t.add(&g, tick, 10);
        }
        assert_eq!(t.sum(&g, 5), 40);
        assert_eq!(t.sum(&g, 8), 10);
        assert_eq!(t.sum(&g, 9), 0);
    }
}
