//! Rate classes in a shard: each pair's run of packets with the same
//! classes, and the hosts' class rows the runs end in.

use super::*;

impl Shard {
    /// Counts a packet of classes `c` into pair `p`'s run when it repeats
    /// the classes of the pair's previous packet; otherwise ends the run and
    /// counts the packet into the rows at once (a pair's first packet most
    /// often is its only one: the rows of a new host are in the cache now,
    /// and a shard of one-packet pairs has no run to seal).
    #[inline]
    pub(super) fn extend_run(&mut self, p: u32, c: u8, len: u64) {
        let (key, pc) = &mut self.pair_slots[p as usize];
        if pc.packets == 0 {
            // A new pair (its packet is counted after this): no run yet.
            pc.run_classes = c;
            let key = *key;
            if c != 0 {
                self.count_classes(pair_src(key), pair_dst(key), c, 1, len);
            }
            return;
        }
        if pc.run_classes == c && pc.run.0 < u32::MAX {
            if let Some(b) = u32::try_from(len)
                .ok()
                .and_then(|l| pc.run.1.checked_add(l))
            {
                if pc.run.0 == 0 {
                    self.runs_open = true;
                }
                pc.run.0 += 1;
                pc.run.1 = b;
                return;
            }
        }
        self.end_run(p as usize);
        let (key, pc) = &mut self.pair_slots[p as usize];
        pc.run_classes = c;
        let key = *key;
        if c != 0 {
            self.count_classes(pair_src(key), pair_dst(key), c, 1, len);
        }
    }

    /// Moves pair slot `p`'s run into its hosts' class rows.
    fn end_run(&mut self, p: usize) {
        let (key, pc) = &mut self.pair_slots[p];
        let (n, b) = std::mem::take(&mut pc.run);
        if n == 0 || pc.run_classes == 0 {
            return;
        }
        let (c, key) = (pc.run_classes, *key);
        self.count_classes(pair_src(key), pair_dst(key), c, u64::from(n), u64::from(b));
    }

    fn count_classes(&mut self, src: u32, dst: u32, c: u8, n: u64, b: u64) {
        let [r_in, r_out] = &mut self.rates;
        match self.limits.rates {
            rates::BOTH => {
                rates::count_n2(&mut r_out[src as usize], &mut r_in[dst as usize], c, n, b)
            }
            rates::OUT => rates::count_n(&mut r_out[src as usize], c, n, b),
            rates::IN => rates::count_n(&mut r_in[dst as usize], c, n, b),
            _ => {}
        }
    }

    /// Brings the hosts' class rows up to date with every pair's run: what
    /// a worker does before it hands the shard over, and before
    /// [`Shard::rates_of`] may be read. Cost: one pass over the pairs, only
    /// when some run is open.
    pub fn seal(&mut self) {
        if !self.runs_open {
            return;
        }
        for p in 0..self.pair_slots.len() {
            self.end_run(p);
        }
        self.runs_open = false;
    }

    /// Per class counts of host `i` ([`Shard::hosts`]), zero in a
    /// direction not counted; `None` if no direction is.
    #[inline]
    pub fn rates_of(&self, i: usize) -> Option<TickRates> {
        if self.limits.rates == 0 {
            return None;
        }
        debug_assert!(!self.runs_open, "rates read before Shard::seal");
        let get = |d: usize| self.rates[d].get(i).copied().unwrap_or_default();
        Some(TickRates([get(0), get(1)]))
    }
}
