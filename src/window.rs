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
// A host window's rows with counts are bits of a u16.
const _: () = assert!(MAX_BUCKETS <= u16::BITS as usize);

/// How a window of some length is cut into buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Ticks per bucket.
    pub width: u64,
    /// Buckets in the window.
    pub buckets: u64,
    /// ⌈2^64 / width⌉: dividing by the width is a multiplication (this is
    /// asked for several times per host and packet; a division is slow).
    magic: u64,
}

/// Ticks below which the multiplication gives the exact quotient for any
/// width up to 2^20 (a million seconds a bucket): 2^44.
const FAST_DIV_LIMIT: u64 = 1 << 44;

impl Geometry {
    pub fn new(window_ticks: u64) -> Geometry {
        let window_ticks = window_ticks.max(1);
        let width = window_ticks.div_ceil(MAX_BUCKETS as u64);
        Geometry::with_width(width, window_ticks.div_ceil(width))
    }

    /// Buckets of `width` ticks, `buckets` of them.
    pub fn with_width(width: u64, buckets: u64) -> Geometry {
        let width = width.max(1);
        Geometry {
            width,
            buckets: buckets.max(1),
            magic: if width == 1 {
                0
            } else {
                (u64::MAX / width) + 1
            },
        }
    }

    /// The bucket a tick falls in.
    #[inline]
    pub fn bucket(&self, tick: u64) -> u64 {
        if self.width == 1 {
            return tick;
        }
        if tick < FAST_DIV_LIMIT && self.width <= 1 << 20 {
            // ⌊tick·⌈2^64/w⌉ / 2^64⌋ = ⌊tick/w⌋ while tick < 2^64/w.
            ((u128::from(tick) * u128::from(self.magic)) >> 64) as u64
        } else {
            tick / self.width
        }
    }

    /// `b` modulo the number of buckets.
    #[inline]
    pub fn ring(&self, b: u64) -> usize {
        if self.buckets == MAX_BUCKETS as u64 {
            (b & (MAX_BUCKETS as u64 - 1)) as usize
        } else {
            (b % self.buckets) as usize
        }
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
///
/// In this order (`repr(C)`): the rows first, so that where the window
/// starts on a 16-byte boundary (a host's, [`crate::hosts::HostState`])
/// no row straddles two cache lines; then the totals, the clock and the
/// rows in use, which a tick reads together, in one line there.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct HostWindow {
    /// Bucket by bucket, the four columns side by side: adding a tick's
    /// counts touches one cache line.
    lo: [[u32; COLS]; MAX_BUCKETS],
    /// Every lane of each column added up, kept as buckets are added to and
    /// cleared: a sum as of the newest bucket costs nothing.
    total: [u64; COLS],
    /// Bucket number of the newest bucket written.
    newest: u64,
    /// Bit `s`: row `s` (and its high words) may hold counts; a clear bit's
    /// row is zero. Beside the clock, so that a host whose counts slide out
    /// reads none of the rows it clears, and a sum reads only rows with
    /// counts (a host seen once in a while has one: the rest were a miss
    /// each, read to find zeros).
    used: u16,
    /// High 32 bits of the byte columns, for the rare host whose bucket
    /// passed 4 GiB.
    hi: Option<Box<[[u32; 2]; MAX_BUCKETS]>>,
}

impl HostWindow {
    /// Moves the bucket clock to `bucket`, zeroing the buckets it passes.
    /// `slot`: the row of `bucket` ([`Geometry::ring`]).
    #[inline]
    fn advance(&mut self, g: &Geometry, bucket: u64, slot: usize) {
        if bucket <= self.newest {
            return;
        }
        // One step (the common case): the row passed is the bucket's own.
        let sliding = if bucket == self.newest + 1 {
            1 << slot
        } else {
            self.sliding(g, bucket)
        };
        self.newest = bucket;
        let out = self.used & sliding;
        if out == 0 {
            return;
        }
        let read = self.read_sliding(sliding);
        if read == 0 {
            // Every count slides out: the rows are cleared, not read.
            self.clear_rows(out);
            self.total = [0; COLS];
            self.hi = None;
            return;
        }
        let mut left = read;
        while left != 0 {
            let s = left.trailing_zeros() as usize;
            left &= left - 1;
            for c in 0..COLS {
                self.total[c] -= self.slot(c, s);
            }
        }
        self.clear_rows(out);
    }

    /// Of the rows `sliding` out, those read to take them off the totals:
    /// the ones with counts, unless every count slides out (then the
    /// totals are zero and no row is read).
    #[inline]
    fn read_sliding(&self, sliding: u16) -> u16 {
        if self.used & !sliding == 0 {
            0
        } else {
            self.used & sliding
        }
    }

    /// The rows that slide out as the clock moves to `bucket`.
    #[inline]
    fn sliding(&self, g: &Geometry, bucket: u64) -> u16 {
        let n = g.buckets as u32;
        let steps = bucket.saturating_sub(self.newest).min(g.buckets) as u32;
        if steps == 0 {
            return 0;
        }
        // `steps` rows from the one after the newest's, round the ring.
        let run = (1u32 << steps) - 1;
        let start = g.ring(self.newest + 1) as u32;
        (((run << start) | (run >> (n - start))) & ((1u32 << n) - 1)) as u16
    }

    /// Starts loading the rows that adding to `bucket` reads as they slide
    /// out, once the clock and the rows in use are loaded
    /// ([`HostWindow::prefetch_sums`]): a host seen again after a few
    /// buckets reads one it was not fetched for.
    #[inline]
    pub fn prefetch_sliding(&self, g: &Geometry, bucket: u64) {
        // One step passes the bucket's own row, fetched with the rest.
        if bucket <= self.newest.saturating_add(1) {
            return;
        }
        let mut rows = self.read_sliding(self.sliding(g, bucket));
        while rows != 0 {
            let slot = rows.trailing_zeros() as usize;
            rows &= rows - 1;
            tpacket::prefetch(&self.lo[slot]);
        }
    }

    /// Zeroes the rows of bits `rows` and clears their bits.
    #[inline]
    fn clear_rows(&mut self, rows: u16) {
        let mut left = rows;
        while left != 0 {
            let slot = left.trailing_zeros() as usize;
            left &= left - 1;
            self.lo[slot] = [0; COLS];
            if let Some(hi) = &mut self.hi {
                hi[slot] = [0; 2];
            }
        }
        self.used &= !rows;
    }

    /// Starts loading the running totals and the bucket clock.
    #[inline]
    pub fn prefetch_sums(&self) {
        tpacket::prefetch(&self.total);
        tpacket::prefetch(&self.newest);
    }

    /// Starts loading bucket row `slot` ([`Geometry::ring`]).
    #[inline]
    pub fn prefetch(&self, slot: usize) {
        if let Some(row) = self.lo.get(slot) {
            tpacket::prefetch(row);
        }
    }

    /// Adds a tick's counts.
    #[inline]
    pub fn add(&mut self, g: &Geometry, tick: u64, vals: [u64; COLS]) {
        self.add_to_bucket(g, g.bucket(tick), vals);
    }

    /// [`HostWindow::add`] with the tick's bucket already worked out: a
    /// merge adds one tick to every host it holds.
    #[inline]
    pub fn add_to_bucket(&mut self, g: &Geometry, bucket: u64, vals: [u64; COLS]) {
        let slot = g.ring(bucket);
        self.advance(g, bucket, slot);
        // A tick older than the newest bucket (a late shard) still lands in
        // its own bucket if that is still in the window.
        if bucket + g.buckets <= self.newest {
            return;
        }
        // Set even if every value is 0: a clear bit is what must be true.
        self.used |= 1 << slot;
        for (c, &v) in vals.iter().enumerate() {
            if v == 0 {
                continue;
            }
            let cur = self.lo[slot][c];
            let (sum, carry) = cur.overflowing_add(v as u32);
            let over = (v >> 32) + u64::from(carry);
            self.lo[slot][c] = sum;
            self.total[c] += v;
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
                self.lo[slot][c] = u32::MAX;
                self.total[c] = (0..MAX_BUCKETS).map(|s| self.slot(c, s)).sum();
                return;
            }
        };
        let hi = self
            .hi
            .get_or_insert_with(|| Box::new([[0; 2]; MAX_BUCKETS]));
        let before = hi[slot][hi_col];
        hi[slot][hi_col] = before.saturating_add(over.min(u64::from(u32::MAX)) as u32);
        if hi[slot][hi_col] - before < over.min(u64::from(u32::MAX)) as u32 {
            // The bucket's high word saturated: the total follows the lanes.
            self.total[c] = (0..MAX_BUCKETS).map(|s| self.slot(c, s)).sum();
        }
    }

    /// The window's sum of a column as of tick `now`.
    #[inline]
    pub fn sum(&self, g: &Geometry, now: u64, c: usize) -> u64 {
        self.sums(g, now)[c]
    }

    #[inline]
    fn slot(&self, c: usize, slot: usize) -> u64 {
        let lo = u64::from(self.lo[slot][c]);
        match (&self.hi, hi_col(c)) {
            (Some(h), Some(hc)) => lo + (u64::from(h[slot][hc]) << 32),
            _ => lo,
        }
    }

    /// All four columns' sums as of tick `now`, the bucket worked out
    /// once and each row read once for all four (asked of every host a
    /// tick touches or whose bucket slides out, column by column this was a
    /// tenth of a long capture's instructions). Inlined always: the
    /// compiler kept it a call, whose entry and exit were a third of its
    /// instructions.
    #[inline(always)]
    pub fn sums(&self, g: &Geometry, now: u64) -> [u64; COLS] {
        let now_b = g.bucket(now);
        let n = g.buckets;
        if self.newest == now_b {
            // The ring holds exactly the window: its running total.
            return self.total;
        }
        if self.newest > now_b {
            // Asked about a tick older than the newest bucket written (a
            // late shard moved this host ahead of the aggregator's clock):
            // the window's rows still in the ring, added up.
            let first = (now_b + 1)
                .saturating_sub(n)
                .max((self.newest + 1).saturating_sub(n));
            return self.rows(g, first..=now_b);
        }
        if now_b - self.newest >= n {
            return [0; COLS];
        }
        if now_b < n {
            return self.total;
        }
        // Buckets older than the window are still in the ring: taken off
        // the total, which covers them (so no column underflows).
        let stale = self.rows(g, (self.newest + 1).saturating_sub(n)..=now_b - n);
        std::array::from_fn(|c| self.total[c] - stale[c])
    }

    /// The four columns added up over the rows of buckets `buckets`, each
    /// still in the ring.
    #[inline(always)]
    fn rows(&self, g: &Geometry, buckets: std::ops::RangeInclusive<u64>) -> [u64; COLS] {
        let mut out = [0u64; COLS];
        for b in buckets {
            let slot = g.ring(b);
            if self.used & (1 << slot) == 0 {
                continue;
            }
            for (o, &v) in out.iter_mut().zip(&self.lo[slot]) {
                *o += u64::from(v);
            }
            if let Some(hi) = &self.hi {
                out[col::SENT_BYTES] += u64::from(hi[slot][0]) << 32;
                out[col::RECV_BYTES] += u64::from(hi[slot][1]) << 32;
            }
        }
        out
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
    fn the_fast_bucket_is_the_quotient() {
        for w in [1u64, 2, 3, 7, 11, 38, 225, 1000, 65_537, 1 << 20] {
            let g = Geometry {
                width: w,
                buckets: 16,
                magic: if w == 1 { 0 } else { u64::MAX / w + 1 },
            };
            for t in (0..5000u64)
                .chain((0..2000).map(|k| k * 7_919_999_999 % FAST_DIV_LIMIT))
                .chain([FAST_DIV_LIMIT - 1, FAST_DIV_LIMIT, u64::MAX])
            {
                assert_eq!(g.bucket(t), t / w, "{t} / {w}");
            }
        }
    }

    #[test]
    fn geometry_of_common_windows() {
        let geo = |width, buckets| Geometry {
            width,
            buckets,
            magic: if width == 1 { 0 } else { u64::MAX / width + 1 },
        };
        assert_eq!(Geometry::new(170), geo(11, 16));
        assert_eq!(Geometry::new(170).span(), (166, 176));
        assert_eq!(Geometry::new(600), geo(38, 16));
        assert_eq!(Geometry::new(10), geo(1, 10));
        assert_eq!(Geometry::new(10).span(), (10, 10));
        assert_eq!(Geometry::new(16), geo(1, 16));
        assert_eq!(Geometry::new(17), geo(2, 9));
        assert_eq!(Geometry::new(1), geo(1, 1));
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
    fn the_running_total_equals_the_lanes() {
        let g = Geometry::new(40);
        let mut w = HostWindow::default();
        let mut rng = 12345u64;
        for t in 0..500u64 {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
            if rng % 3 != 0 {
                w.add(&g, t, [rng % 5000, 1, rng % 77, 2]);
            }
            // Now and then a jump.
            let t = if t % 97 == 0 { t + 30 } else { t };
            let expect: u64 = (0..MAX_BUCKETS).map(|s| w.slot(col::SENT_BYTES, s)).sum();
            assert_eq!(w.total[col::SENT_BYTES], expect, "tick {t}");
            let _ = w.sum(&g, t, col::RECV_BYTES);
        }
    }

    /// The window's sums straight from the rows, without the running
    /// total: the buckets both in the window ending at `now` and still held
    /// by the ring (the `buckets` up to the newest written).
    fn from_rows(w: &HostWindow, g: &Geometry, now: u64) -> [u64; COLS] {
        let now_b = g.bucket(now);
        let first = (now_b + 1)
            .saturating_sub(g.buckets)
            .max((w.newest + 1).saturating_sub(g.buckets));
        let last = now_b.min(w.newest);
        std::array::from_fn(|c| (first..=last).map(|b| w.slot(c, g.ring(b))).sum())
    }

    /// A row whose bit is clear holds nothing, high words included.
    fn unused_rows_are_zero(w: &HostWindow) {
        for slot in (0..MAX_BUCKETS).filter(|s| w.used & (1 << s) == 0) {
            for c in 0..COLS {
                assert_eq!(w.slot(c, slot), 0, "row {slot} column {c}");
            }
        }
    }

    #[test]
    fn the_rows_sliding_out_are_those_the_clock_passes() {
        for ticks in [1u64, 3, 10, 16, 40, 170, 1000] {
            let g = Geometry::new(ticks);
            for newest in 0..40u64 {
                for bucket in newest..newest + 40 {
                    let w = HostWindow {
                        newest,
                        ..HostWindow::default()
                    };
                    let mut expect = 0u16;
                    for k in 1..=(bucket - newest).min(g.buckets) {
                        expect |= 1 << g.ring(newest + k);
                    }
                    assert_eq!(w.sliding(&g, bucket), expect, "{ticks} {newest} {bucket}");
                }
            }
        }
    }

    #[test]
    fn a_host_seen_once_has_one_row_and_none_once_it_slid_out() {
        let g = Geometry::new(170);
        let mut w = HostWindow::default();
        add(&mut w, &g, 50, 7);
        assert_eq!(w.used.count_ones(), 1);
        // Fifteen buckets on: still in the window, its row still kept.
        add(&mut w, &g, 50 + 15 * g.width, 3);
        assert_eq!(w.used.count_ones(), 2);
        assert_eq!(w.sum(&g, 50 + 15 * g.width, col::SENT_BYTES), 10);
        // Both rows slide out at once, without being read.
        let later = 50 + 40 * g.width;
        w.add(&g, later, [0; COLS]);
        // Only the row just added to (with nothing) may hold counts.
        assert_eq!(w.used, 1 << g.ring(g.bucket(later)));
        assert_eq!(w.total, [0; COLS]);
        unused_rows_are_zero(&w);
        // One slides out, the other stays.
        add(&mut w, &g, 1000, 1 << 33);
        add(&mut w, &g, 1000 + 8 * g.width, 2);
        add(&mut w, &g, 1000 + 16 * g.width, 4);
        assert_eq!(w.used.count_ones(), 2);
        assert_eq!(w.sum(&g, 1000 + 16 * g.width, col::SENT_BYTES), 6);
        unused_rows_are_zero(&w);
    }

    #[test]
    fn the_sums_are_the_rows_in_the_window() {
        for ticks in [1u64, 4, 10, 16, 40, 170] {
            let g = Geometry::new(ticks);
            let mut w = HostWindow::default();
            let mut rng = 99u64 + ticks;
            let mut t = 0u64;
            for _ in 0..3000 {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Steps forward of every size around the window's, now and
                // then a late tick, and byte counts past 4 GiB.
                t += (rng >> 33) % (2 * ticks * g.width.max(1) + 2);
                let at = if rng % 11 == 0 {
                    t.saturating_sub(rng % 30)
                } else {
                    t
                };
                let bytes = if rng % 13 == 0 {
                    (rng >> 8) % (1 << 36)
                } else {
                    rng % 5000
                };
                let recv = if rng % 7 == 0 {
                    (rng >> 4) % (1 << 35)
                } else {
                    (rng >> 20) % 900
                };
                w.add(&g, at, [bytes, 1 + rng % 3, recv, rng % 2]);
                unused_rows_are_zero(&w);
                for now in [
                    t,
                    t + 1,
                    t + g.width,
                    t + ticks / 2,
                    t + ticks,
                    t.saturating_sub(3),
                ] {
                    assert_eq!(
                        w.sums(&g, now),
                        from_rows(&w, &g, now),
                        "window {ticks}, tick {t}, now {now}"
                    );
                }
            }
        }
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
