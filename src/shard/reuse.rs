//! Emptying a shard for its worker to fill again, and the memory its
//! tables hold between ticks.

use super::{HostCounters, INITIAL, PairCounters, Shard, Totals, Untracked};
use crate::rates::DirCounts;
use crate::wire::Addr;

impl Shard {
    /// Empties the shard for the worker to fill again. Tables keep their
    /// memory unless they were less than a quarter full, then they shrink to
    /// twice what they held, so memory follows the traffic down after a burst
    /// without reallocating every tick.
    pub fn recycle(&mut self) {
        let (hosts, pairs, ports) = (
            self.hosts.len(),
            self.pair_slots.len(),
            self.contacts.len().max(self.answers.len()),
        );
        self.clear();
        // A table less than a quarter full is more than the traffic needs:
        // large spare tables in use go back aside, then the small ones
        // shrink.
        let quiet = |capacity: usize, held: usize| capacity > 4 * held.max(INITIAL);
        let q = quiet(self.index.capacity(), hosts);
        self.spare_hosts.settle(&mut self.index, &mut self.hosts, q);
        let q = quiet(self.pair_index.capacity(), pairs);
        self.spare_pairs
            .settle(&mut self.pair_index, &mut self.pair_slots, q);
        if quiet(self.index.capacity(), hosts) {
            self.index.shrink_to(2 * hosts.max(INITIAL));
            self.hosts.shrink_to(2 * hosts.max(INITIAL));
            for r in &mut self.rates {
                r.shrink_to(2 * hosts.max(INITIAL));
            }
        }
        if quiet(self.pair_index.capacity(), pairs) {
            self.pair_index.shrink_to(2 * pairs.max(INITIAL));
            self.pair_slots.shrink_to(2 * pairs.max(INITIAL));
        }
        if quiet(self.contacts.capacity().max(self.answers.capacity()), ports) {
            self.contacts.shrink_to(2 * ports.max(INITIAL));
            self.answers.shrink_to(2 * ports.max(INITIAL));
        }
    }

    /// Memory held by the tables, bytes (capacity, not use).
    pub fn table_bytes(&self) -> usize {
        use std::mem::size_of;
        self.index.capacity() * (size_of::<(Addr, u32)>() + 1)
            + self.hosts.capacity() * size_of::<HostCounters>()
            + (self.rates[0].capacity() + self.rates[1].capacity()) * size_of::<DirCounts>()
            + self.pair_index.capacity() * (size_of::<(u64, u32)>() + 1)
            + self.pair_slots.capacity() * size_of::<(u64, PairCounters)>()
            + (self.contacts.capacity() + self.answers.capacity()) * (size_of::<u128>() + 1)
            + self.spare_hosts.bytes()
            + self.spare_pairs.bytes()
    }

    /// Empties the shard for reuse, keeping its table memory.
    pub fn clear(&mut self) {
        self.index.clear();
        self.hosts.clear();
        self.rates[0].clear();
        self.rates[1].clear();
        self.pair_index.clear();
        self.pair_slots.clear();
        self.contacts.clear();
        self.answers.clear();
        self.last_flow = None;
        self.last_dst = None;
        self.screened_dst = None;
        self.runs_open = false;
        self.untracked = Untracked::default();
        self.totals = Totals::default();
        self.udp_evicted = 0;
        self.flow_report = None;
        self.ingress = 0;
        self.ifaces.clear();
        self.last = false;
    }
}
