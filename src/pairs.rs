//! Bytes between each (source, destination) pair over the traffic window:
//! where a host's traffic went, for `/all`, the network chart and alert
//! evidence.
//!
//! Pairs are many, so their window is coarser than a host's: four
//! generations of a quarter window each. A pair's sum covers between three
//! quarters of the window and the whole of it. Bounded by `max_pairs`
//! across the generations; what does not fit is counted as untracked.

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

use crate::shard::Hasher;
use crate::wire::Addr;

const GENERATIONS: usize = 4;

/// One pair's counts in a generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairCount {
    pub bytes: u64,
    pub packets: u64,
    /// [`crate::shard::role_bits`] seen from source to destination.
    pub roles: u8,
}

#[derive(Debug)]
struct Generation {
    /// Which quarter-window this generation holds.
    epoch: u64,
    map: HashMap<(Addr, Addr), PairCount, Hasher>,
}

/// The pair window.
#[derive(Debug)]
pub struct PairWindow {
    gens: [Generation; GENERATIONS],
    /// Ticks per generation.
    width: u64,
    max: usize,
    len: usize,
}

impl PairWindow {
    pub fn new(window_ticks: u64, max: usize, hasher: &Hasher) -> PairWindow {
        let g = || Generation {
            epoch: u64::MAX,
            map: HashMap::with_hasher(hasher.clone()),
        };
        PairWindow {
            gens: [g(), g(), g(), g()],
            width: (window_ticks / GENERATIONS as u64).max(1),
            max,
            len: 0,
        }
    }

    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Pairs held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Adds counts of tick `tick`. Returns false if the pair did not fit.
    pub fn add(&mut self, tick: u64, src: Addr, dst: Addr, c: PairCount) -> bool {
        let epoch = tick / self.width;
        let g = &mut self.gens[(epoch % GENERATIONS as u64) as usize];
        if g.epoch != epoch {
            if g.epoch != u64::MAX && g.epoch > epoch {
                // A generation newer than this tick already took the slot:
                // the tick is older than the window.
                return false;
            }
            self.len -= g.map.len();
            g.map.clear();
            if g.map.capacity() > 4 * (self.len / GENERATIONS).max(1024) {
                g.map.shrink_to(self.len / GENERATIONS);
            }
            g.epoch = epoch;
        }
        let full = self.len >= self.max;
        match g.map.entry((src, dst)) {
            Entry::Occupied(mut e) => {
                let p = e.get_mut();
                p.bytes += c.bytes;
                p.packets += c.packets;
                p.roles |= c.roles;
                true
            }
            Entry::Vacant(_) if full => false,
            Entry::Vacant(v) => {
                v.insert(c);
                self.len += 1;
                true
            }
        }
    }

    /// Every pair with its counts summed over the generations still in the
    /// window at `now`. A pair may appear once per generation.
    pub fn for_each(&self, now: u64, mut f: impl FnMut(Addr, Addr, &PairCount)) {
        let cur = now / self.width;
        for g in &self.gens {
            if g.epoch == u64::MAX || g.epoch + GENERATIONS as u64 <= cur || g.epoch > cur {
                continue;
            }
            for (&(s, d), c) in &g.map {
                f(s, d, c);
            }
        }
    }

    /// Heap bytes.
    pub fn bytes(&self) -> usize {
        self.gens
            .iter()
            .map(|g| g.map.capacity() * (std::mem::size_of::<((Addr, Addr), PairCount)>() + 1))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> Addr {
        Addr::from_v4([10, 0, 0, n])
    }

    fn c(bytes: u64) -> PairCount {
        PairCount {
            bytes,
            packets: 1,
            roles: 0,
        }
    }

    fn total(w: &PairWindow, now: u64, src: Addr, dst: Addr) -> u64 {
        let mut t = 0;
        w.for_each(now, |s, d, p| {
            if s == src && d == dst {
                t += p.bytes;
            }
        });
        t
    }

    #[test]
    fn sums_over_generations_and_forgets_old_ones() {
        let mut w = PairWindow::new(8, 100, &Hasher::new());
        for tick in 0..8 {
            assert!(w.add(tick, a(1), a(2), c(10)));
        }
        assert_eq!(total(&w, 7, a(1), a(2)), 80);
        // Two ticks per generation: at tick 9 the first generation is gone.
        w.add(9, a(1), a(2), c(1));
        assert_eq!(total(&w, 9, a(1), a(2)), 61);
        assert_eq!(total(&w, 100, a(1), a(2)), 0);
    }

    #[test]
    fn bounded() {
        let mut w = PairWindow::new(8, 2, &Hasher::new());
        assert!(w.add(0, a(1), a(2), c(1)));
        assert!(w.add(0, a(1), a(3), c(1)));
        assert!(!w.add(0, a(1), a(4), c(1)));
        assert!(w.add(0, a(1), a(2), c(1)), "existing pairs still count");
        assert_eq!(w.len(), 2);
        // A new generation frees the room of the one it replaces.
        assert!(w.add(8, a(1), a(4), c(1)));
    }

    #[test]
    fn a_tick_older_than_the_window_is_refused() {
        let mut w = PairWindow::new(8, 10, &Hasher::new());
        w.add(20, a(1), a(2), c(1));
        assert!(!w.add(12, a(1), a(2), c(1)));
    }
}
