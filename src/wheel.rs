//! Work due at a tick: a timing wheel. The aggregator puts here what will
//! change by itself — a host whose window loses a bucket, a host whose
//! counts have all expired — so that a tick visits what is due in it and
//! nothing else, and a gap of any length is crossed by asking when the next
//! item is due instead of closing every tick on the way.
//!
//! Items are `u64`s the caller packs (or any small ordered value: the
//! alert lifecycle keeps its looks here). The wheel has one slot per tick for
//! the next [`SLOTS`] ticks and a heap for items further away, which move
//! into the wheel as their tick comes near.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Ticks the wheel itself spans; items due later wait in a heap.
pub const SLOTS: usize = 1024;

/// Drained slots' vectors kept for the next slots to fill.
const SPARES: usize = 4;

/// Room a spare vector may keep beyond a few times the items it last
/// held (see [`Wheel::drain`]).
const KEEP: usize = 16;

#[derive(Debug)]
pub struct Wheel<T = u64> {
    slots: Vec<Vec<T>>,
    /// The first tick not drained yet.
    now: u64,
    /// Items in `slots`.
    near: usize,
    far: BinaryHeap<Reverse<(u64, T)>>,
    /// Vectors of drained slots, their room kept. In a steady stream about
    /// as many slots start filling as are drained each tick: a slot that
    /// starts takes one, instead of growing from nothing by doubling (a
    /// copy per doubling, each turn of the wheel).
    spare: Vec<Vec<T>>,
}

impl<T: Copy + Ord> Default for Wheel<T> {
    fn default() -> Self {
        Wheel::new(0)
    }
}

impl<T: Copy + Ord> Wheel<T> {
    /// An empty wheel whose first tick to drain is `now`.
    pub fn new(now: u64) -> Wheel<T> {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            now,
            near: 0,
            far: BinaryHeap::new(),
            spare: Vec::new(),
        }
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.near + self.far.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `item` to be drained at `tick` (at the next drain if `tick` has
    /// passed).
    #[inline]
    pub fn schedule(&mut self, tick: u64, item: T) {
        let tick = tick.max(self.now).min(u64::MAX - 1);
        if tick - self.now < SLOTS as u64 {
            let slot = &mut self.slots[(tick % SLOTS as u64) as usize];
            if slot.capacity() == 0 {
                if let Some(v) = self.spare.pop() {
                    *slot = v;
                }
            }
            slot.push(item);
            self.near += 1;
        } else {
            self.far.push(Reverse((tick, item)));
        }
    }

    /// Moves every item due at or before `tick` to `out`, in tick order.
    /// Costs the items drained plus at most one pass over the wheel's slots
    /// per [`SLOTS`] ticks that hold items: a stretch without any is jumped.
    pub fn drain(&mut self, tick: u64, out: &mut Vec<T>) {
        let tick = tick.min(u64::MAX - 1);
        while self.now <= tick {
            if self.near == 0 {
                // Nothing in the wheel: on to the heap's next item.
                match self.far.peek() {
                    Some(&Reverse((t, _))) if t <= tick => self.now = t,
                    _ => {
                        self.now = tick + 1;
                        return;
                    }
                }
                self.refill();
                continue;
            }
            let round_end = tick.min(self.now.saturating_add(SLOTS as u64 - 1));
            let mut t = self.now;
            while t <= round_end && self.near > 0 {
                let slot = &mut self.slots[(t % SLOTS as u64) as usize];
                if !slot.is_empty() {
                    self.near -= slot.len();
                    // A slot is used again only a wheel's turn later: its
                    // vector goes to the spares, not kept in the slot, where
                    // what a burst made it hold would stay allocated in
                    // every slot it passed through.
                    let mut v = std::mem::take(slot);
                    let held = v.len();
                    if out.is_empty() {
                        // Handed over whole, not copied.
                        std::mem::swap(out, &mut v);
                    } else {
                        out.append(&mut v);
                    }
                    if self.spare.len() < SPARES {
                        // Room well past what it held (a burst's) is
                        // given back; a little past it is kept, so that a
                        // slot of a few more items than the last does not
                        // shrink and grow the vector again every tick.
                        if v.capacity() > 4 * held + KEEP {
                            v.shrink_to(2 * held + KEEP);
                        }
                        self.spare.push(v);
                    }
                }
                t += 1;
            }
            self.now = round_end + 1;
            self.refill();
        }
    }

    /// Moves the heap's items that are now within the wheel's reach into it.
    fn refill(&mut self) {
        let reach = self.now.saturating_add(SLOTS as u64);
        while let Some(&Reverse((t, item))) = self.far.peek() {
            if t >= reach {
                break;
            }
            self.far.pop();
            self.schedule(t, item);
        }
    }

    /// The tick of the earliest item, if any: what a reader on packet time
    /// may jump to over an empty stretch.
    pub fn next_due(&self) -> Option<u64> {
        let mut best = self.far.peek().map(|r| r.0.0);
        if self.near > 0 {
            for k in 0..SLOTS as u64 {
                let t = self.now + k;
                if best.is_some_and(|b| b <= t) {
                    break;
                }
                if !self.slots[(t % SLOTS as u64) as usize].is_empty() {
                    best = Some(t);
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(w: &mut Wheel, tick: u64) -> Vec<u64> {
        let mut v = Vec::new();
        w.drain(tick, &mut v);
        v
    }

    #[test]
    fn items_come_out_at_their_tick() {
        let mut w = Wheel::new(0);
        w.schedule(3, 30);
        w.schedule(1, 10);
        w.schedule(3, 31);
        assert_eq!(w.next_due(), Some(1));
        assert_eq!(drained(&mut w, 0), Vec::<u64>::new());
        assert_eq!(drained(&mut w, 2), vec![10]);
        assert_eq!(drained(&mut w, 3), vec![30, 31]);
        assert!(w.is_empty());
        assert_eq!(w.next_due(), None);
        // A tick already drained is due at once.
        w.schedule(1, 5);
        assert_eq!(drained(&mut w, 4), vec![5]);
    }

    #[test]
    fn far_items_wait_in_the_heap_and_gaps_are_jumped() {
        let mut w = Wheel::new(0);
        w.schedule(5, 1);
        w.schedule(SLOTS as u64 * 3 + 7, 2);
        w.schedule(1 << 40, 3);
        assert_eq!(w.len(), 3);
        assert_eq!(drained(&mut w, 10), vec![1]);
        assert_eq!(w.next_due(), Some(SLOTS as u64 * 3 + 7));
        assert_eq!(drained(&mut w, SLOTS as u64 * 3 + 6), Vec::<u64>::new());
        assert_eq!(drained(&mut w, SLOTS as u64 * 3 + 7), vec![2]);
        // Forty years of one-second ticks in one drain.
        assert_eq!(drained(&mut w, (1 << 40) - 1), Vec::<u64>::new());
        assert_eq!(drained(&mut w, 1 << 40), vec![3]);
        assert!(w.is_empty());
    }

    #[test]
    fn a_drained_slots_room_goes_to_the_next_slot_to_fill() {
        let mut w = Wheel::new(0);
        for i in 0..1000 {
            w.schedule(1, i);
        }
        // Appended after what the buffer holds, in the order scheduled.
        let mut out = vec![u64::MAX];
        w.drain(1, &mut out);
        assert_eq!(out[0], u64::MAX);
        assert!(out[1..].iter().copied().eq(0..1000));
        assert_eq!(w.slots[1].capacity(), 0);
        // The next slot to start filling takes the drained one's vector:
        // no growing by doubling from nothing.
        w.schedule(2, 7);
        w.schedule(2, 3);
        assert!(w.slots[2].capacity() >= 1000);
        // Handed over whole into an empty buffer, the items keep their order.
        let mut out = Vec::new();
        w.drain(2, &mut out);
        assert_eq!(out, vec![7, 3]);
    }

    #[test]
    fn a_bursts_room_is_given_back_and_spares_are_bounded() {
        let mut w = Wheel::new(0);
        for i in 0..100_000 {
            w.schedule(1, i);
        }
        for t in 2..40 {
            w.schedule(t, t);
        }
        let mut out = Vec::new();
        // One slot at a time, as ticks close.
        for t in 1..40 {
            out.clear();
            w.drain(t, &mut out);
        }
        assert!(w.spare.len() <= SPARES);
        // Each spare keeps room for a few times what its slot last held,
        // whatever a burst once made it hold.
        for v in &w.spare {
            assert!(v.capacity() <= 4 + KEEP, "{}", v.capacity());
        }
        assert!(w.slots.iter().all(|s| s.capacity() == 0));
    }

    #[test]
    fn a_long_drain_costs_the_items_not_the_ticks() {
        let mut w = Wheel::new(0);
        for i in 0..100 {
            w.schedule(i * 997, i);
        }
        let mut v = Vec::new();
        w.drain(u64::MAX / 2, &mut v);
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
