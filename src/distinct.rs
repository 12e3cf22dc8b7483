//! How many distinct destinations (or ports) a source contacted within a
//! sliding window — counted exactly up to a cap, never beyond.
//!
//! A set holds each distinct key with the tick it was last contacted; the
//! count is the keys seen within the window. The set never holds more than
//! `cap` keys: the detector's threshold plus one is all it needs to know
//! ("more than the threshold"). Past the cap, a new key takes the place of
//! one that left the window if there is one; otherwise it is not stored and
//! the count stays at the cap, which is already above the threshold. So
//! counts are exact up to the cap and the cap beyond it, and a scanner costs
//! at most `cap` entries.
//!
//! Destinations are stored as 32-bit fingerprints of their address (the
//! full address is in the pair table when evidence is wanted). Two
//! addresses with the same fingerprint count once: with 16 entries the
//! chance of that is below one in ten million per set.
//!
//! Once the set is full of keys within the window, it keeps a
//! [`Sketch`] of every key it is told about from then on (seeded with the
//! keys it holds), so that a scan's alert can say how many it contacted in
//! all. The sketch goes when the set empties or [`DistinctSet::end_sketch`]
//! is called (its alert closed).

use smallvec::SmallVec;

use crate::sketch::Sketch;

/// Entries a set holds without a heap allocation: most sources contact one
/// or two destinations, and a flood of new sources would otherwise cost an
/// allocation each.
const INLINE: usize = 2;

/// A bounded set of keys with last-seen ticks.
#[derive(Debug, Clone, Default)]
pub struct DistinctSet {
    /// `key << 32 | tick`, ticks truncated to 32 bits (136 years of
    /// one-second ticks).
    entries: SmallVec<[u64; INLINE]>,
    /// Every key since the set was first full (see the module's notes).
    sketch: Option<Box<Sketch>>,
}

impl DistinctSet {
    /// Starts loading the set (its inline entries, or where they are):
    /// both its fields, which may lie in two cache lines.
    #[inline]
    pub fn prefetch(&self) {
        tpacket::prefetch(&self.entries);
        tpacket::prefetch(&self.sketch);
    }

    /// Starts loading what a touch of `key` reads beyond the set itself
    /// (its entries past the inline ones, its sketch's register for the
    /// key), once the set is loaded ([`DistinctSet::prefetch`]). False, and
    /// nothing done, for a set that has nothing beyond itself: `key` is
    /// then not needed.
    #[inline]
    pub fn prefetch_beyond(&self, key: impl FnOnce() -> u32) -> bool {
        if !self.entries.spilled() && self.sketch.is_none() {
            return false;
        }
        let key = key();
        if let Some(first) = self.entries.first().filter(|_| self.entries.spilled()) {
            tpacket::prefetch(first);
        }
        if let Some(s) = &self.sketch {
            s.prefetch(key);
        }
        true
    }

    /// Records a contact with `key` at `tick`. Returns true if the key was
    /// new to the window. `may_sketch`: a sketch may be started if the set
    /// is full (the caller's budget of sketches allows one more). Inlined
    /// always (the compiler would not, asked to inline): it runs once per
    /// contact, and most contacts find their key in the first entries
    /// (0.3 % of a long sparse capture's instructions).
    #[inline(always)]
    pub fn touch(
        &mut self,
        key: u32,
        tick: u64,
        window: u64,
        cap: usize,
        may_sketch: bool,
    ) -> bool {
        if let Some(s) = &mut self.sketch {
            s.add(key);
        }
        let t = tick as u32;
        let entry = (u64::from(key) << 32) | u64::from(t);
        if let Some(e) = self.entries.iter_mut().find(|e| (**e >> 32) as u32 == key) {
            let stored = *e as u32;
            // A late tick (older than what is stored) must not move the
            // entry back in time.
            let newer = t.wrapping_sub(stored) < (1 << 31);
            if newer {
                *e = entry;
            }
            return newer && u64::from(t.wrapping_sub(stored)) >= window;
        }
        if self.entries.len() < cap {
            self.entries.push(entry);
            if self.entries.len() == cap && may_sketch {
                self.start_sketch(t, window);
            }
            return true;
        }
        // Full: take the place of a key that left the window.
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| age(**e as u32, t) >= window)
        {
            *e = entry;
            return true;
        }
        if may_sketch && self.sketch.is_none() {
            self.start_sketch(t, window);
            if let Some(s) = &mut self.sketch {
                s.add(key);
            }
        }
        false
    }

    /// Starts the sketch with the keys within the window.
    fn start_sketch(&mut self, t: u32, window: u64) {
        if self.sketch.is_some() {
            return;
        }
        let mut s = Box::<Sketch>::default();
        for &e in &self.entries {
            if age(e as u32, t) < window {
                s.add((e >> 32) as u32);
            }
        }
        self.sketch = Some(s);
    }

    /// Distinct keys contacted since the set was first full, estimated; at
    /// least the exact count within the window. `None` without a sketch.
    pub fn estimate(&self, now: u64, window: u64) -> Option<u64> {
        let s = self.sketch.as_ref()?;
        Some(s.estimate().max(self.count(now, window) as u64))
    }

    /// True if the set keeps a sketch.
    pub fn has_sketch(&self) -> bool {
        self.sketch.is_some()
    }

    /// Drops the sketch: the scan it measured is over (its alert closed).
    pub fn end_sketch(&mut self) {
        self.sketch = None;
    }

    /// Distinct keys contacted within the window ending at `now`.
    pub fn count(&self, now: u64, window: u64) -> usize {
        let t = now as u32;
        self.entries
            .iter()
            .filter(|&&e| age(e as u32, t) < window)
            .count()
    }

    /// The keys within the window, for evidence.
    pub fn keys(&self, now: u64, window: u64) -> impl Iterator<Item = u32> + '_ {
        let t = now as u32;
        self.entries
            .iter()
            .filter(move |&&e| age(e as u32, t) < window)
            .map(|&e| (e >> 32) as u32)
    }

    /// The tick at which the count within the window next falls: when the
    /// oldest key in it leaves. `None` if no key is in it.
    pub fn next_expiry(&self, now: u64, window: u64) -> Option<u64> {
        let t = now as u32;
        // The oldest age in the window plus one (0: none), with no branch
        // per entry: asked of every scanner with an open alert every tick
        // it is looked at, over all its entries.
        let oldest = self
            .entries
            .iter()
            .map(|&e| {
                let a = age(e as u32, t);
                if a < window { a + 1 } else { 0 }
            })
            .max()
            .unwrap_or(0);
        oldest.checked_sub(1).map(|a| now + (window - a))
    }

    /// True if no key is within the window.
    pub fn is_empty_at(&self, now: u64, window: u64) -> bool {
        self.next_expiry(now, window).is_none()
    }

    /// Drops what left the window; true if nothing is left.
    pub fn expire(&mut self, now: u64, window: u64) -> bool {
        let t = now as u32;
        self.entries.retain(|e| age(*e as u32, t) < window);
        if self.entries.capacity() > 4 * self.entries.len().max(INLINE) {
            self.entries.shrink_to_fit();
        }
        if self.entries.is_empty() {
            self.sketch = None;
        }
        self.entries.is_empty()
    }

    /// Keeps at most `cap` entries (after a threshold was lowered).
    pub fn truncate(&mut self, cap: usize) {
        self.entries.truncate(cap);
    }

    /// Bytes held on the heap, and sketches kept (0 or 1).
    #[inline]
    pub fn footprint(&self) -> (usize, usize) {
        (self.heap_bytes(), usize::from(self.has_sketch()))
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        let sketch = self.sketch.as_ref().map_or(0, |_| Sketch::BYTES);
        let spilled = if self.entries.spilled() {
            self.entries.capacity() * 8
        } else {
            0
        };
        sketch + spilled
    }
}

/// Ticks from `then` to `now`, both truncated to 32 bits; a `then` in the
/// future (a late shard) reads as age 0.
#[inline]
fn age(then: u32, now: u32) -> u64 {
    let d = now.wrapping_sub(then);
    if d >= 1 << 31 { 0 } else { u64::from(d) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_keys_within_the_window() {
        let mut s = DistinctSet::default();
        assert!(s.touch(1, 10, 5, 100, false));
        assert!(s.touch(2, 11, 5, 100, false));
        assert!(!s.touch(1, 12, 5, 100, false), "already in the window");
        assert_eq!(s.count(12, 5), 2);
        // Key 2 was last seen at 11: gone at 16. Key 1 (12) at 17.
        assert_eq!(s.count(15, 5), 2);
        assert_eq!(s.count(16, 5), 1);
        assert_eq!(s.count(17, 5), 0);
        assert!(
            s.touch(2, 20, 5, 100, false),
            "back after leaving the window"
        );
    }

    #[test]
    fn the_cap_bounds_memory_and_the_count_stays_at_the_cap() {
        let mut s = DistinctSet::default();
        for k in 0..1000 {
            s.touch(k, 1, 100, 16, false);
        }
        assert_eq!(s.count(1, 100), 16);
        assert!(s.heap_bytes() <= 32 * 8);
    }

    #[test]
    fn full_set_reuses_entries_that_left_the_window() {
        let mut s = DistinctSet::default();
        for k in 0..4 {
            s.touch(k, 0, 10, 4, false);
        }
        assert!(!s.touch(99, 5, 10, 4, false), "full, nothing expired");
        assert!(s.touch(100, 10, 10, 4, false), "the tick-0 entries expired");
        assert_eq!(s.count(10, 10), 1);
    }

    #[test]
    fn a_late_tick_does_not_move_an_entry_back() {
        let mut s = DistinctSet::default();
        s.touch(7, 100, 10, 4, false);
        s.touch(7, 95, 10, 4, false);
        assert_eq!(s.count(109, 10), 1);
    }

    #[test]
    fn the_next_expiry_is_when_the_oldest_key_leaves() {
        let mut s = DistinctSet::default();
        assert_eq!(s.next_expiry(0, 10), None);
        s.touch(1, 3, 10, 8, false);
        s.touch(2, 7, 10, 8, false);
        assert_eq!(s.next_expiry(8, 10), Some(13));
        assert_eq!(s.count(12, 10), 2);
        assert_eq!(s.count(13, 10), 1);
        assert_eq!(s.next_expiry(13, 10), Some(17));
        assert_eq!(s.next_expiry(17, 10), None);
    }

    #[test]
    fn a_full_set_sketches_every_key_from_then_on() {
        let mut s = DistinctSet::default();
        for k in 0..15 {
            s.touch(k, 1, 100, 16, true);
        }
        assert_eq!(s.estimate(1, 100), None, "not full yet");
        for k in 15..254 {
            s.touch(k, 1, 100, 16, true);
        }
        assert_eq!(s.count(1, 100), 16);
        let e = s.estimate(1, 100).unwrap();
        assert!((244..=264).contains(&e), "254 keys estimated as {e}");
        assert!(s.heap_bytes() >= Sketch::BYTES);
        s.end_sketch();
        assert_eq!(s.estimate(1, 100), None);
        // Without the budget's leave, none is started.
        let mut t = DistinctSet::default();
        for k in 0..100 {
            t.touch(k, 1, 100, 16, false);
        }
        assert_eq!(t.estimate(1, 100), None);
        // A set that empties drops it.
        for k in 0..100 {
            t.touch(k, 1, 100, 16, true);
        }
        assert!(t.has_sketch());
        assert!(t.expire(200, 100));
        assert!(!t.has_sketch());
    }

    #[test]
    fn only_a_set_with_more_than_itself_asks_for_the_key_to_fetch_ahead() {
        let asked = std::cell::Cell::new(0);
        let key = || {
            asked.set(asked.get() + 1);
            7
        };
        let mut s = DistinctSet::default();
        assert!(!s.prefetch_beyond(key));
        s.touch(1, 1, 100, 16, true);
        s.touch(2, 1, 100, 16, true);
        assert!(!s.prefetch_beyond(key), "two keys are held inline");
        assert_eq!(asked.get(), 0, "no key computed for an inline set");
        s.touch(3, 1, 100, 16, true);
        assert!(s.prefetch_beyond(key), "entries on the heap");
        for k in 4..40 {
            s.touch(k, 1, 100, 16, true);
        }
        assert!(s.has_sketch());
        assert!(s.prefetch_beyond(key));
        assert_eq!(asked.get(), 2);
        // Fetching ahead changes nothing the set holds.
        assert_eq!(s.count(1, 100), 16);
        assert!(!s.touch(3, 1, 100, 16, true), "still held");
    }

    #[test]
    fn expire_frees_memory() {
        let mut s = DistinctSet::default();
        for k in 0..100 {
            s.touch(k, 0, 10, 200, false);
        }
        assert!(s.expire(20, 10));
        assert_eq!(s.heap_bytes(), 0);
    }
}
