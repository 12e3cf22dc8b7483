//! Totals over the whole replay, per host and per pair — what a person
//! compares with other tools (tshark's endpoints), independent of the
//! sliding windows the detectors use. Bounded like the live tables: what
//! does not fit is counted as untracked.

use hashbrown::HashMap;
use serde::Serialize;

use crate::shard::{Hasher, Shard};
use crate::wire::Addr;

/// Sent and received over the whole replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HostTotal {
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub recv_bytes: u64,
    pub recv_packets: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PairTotal {
    pub bytes: u64,
    pub packets: u64,
}

#[derive(Debug)]
pub struct WholeTotals {
    hosts: HashMap<Addr, HostTotal, Hasher>,
    pairs: HashMap<(Addr, Addr), PairTotal, Hasher>,
    max_hosts: usize,
    max_pairs: usize,
    /// Bytes of hosts and pairs that did not fit.
    pub untracked_host_bytes: u64,
    pub untracked_pair_bytes: u64,
}

impl WholeTotals {
    pub fn new(max_hosts: usize, max_pairs: usize) -> WholeTotals {
        WholeTotals {
            hosts: HashMap::with_hasher(Hasher::new()),
            pairs: HashMap::with_hasher(Hasher::new()),
            max_hosts,
            max_pairs,
            untracked_host_bytes: 0,
            untracked_pair_bytes: 0,
        }
    }

    /// Adds a tick's shard.
    pub fn add(&mut self, shard: &Shard) {
        for h in shard.hosts() {
            let full = self.hosts.len() >= self.max_hosts;
            match self.hosts.get_mut(&h.addr) {
                Some(t) => add_host(t, h),
                None if !full => add_host(self.hosts.entry(h.addr).or_default(), h),
                None => self.untracked_host_bytes += h.sent_bytes + h.recv_bytes,
            }
        }
        for (s, d, p) in shard.pairs() {
            let full = self.pairs.len() >= self.max_pairs;
            match self.pairs.get_mut(&(s, d)) {
                Some(t) => {
                    t.bytes += p.bytes;
                    t.packets += p.packets;
                }
                None if !full => {
                    self.pairs.insert(
                        (s, d),
                        PairTotal {
                            bytes: p.bytes,
                            packets: p.packets,
                        },
                    );
                }
                None => self.untracked_pair_bytes += p.bytes,
            }
        }
    }

    pub fn hosts(&self) -> impl Iterator<Item = (Addr, &HostTotal)> + '_ {
        self.hosts.iter().map(|(a, t)| (*a, t))
    }

    pub fn pairs(&self) -> impl Iterator<Item = ((Addr, Addr), &PairTotal)> + '_ {
        self.pairs.iter().map(|(k, t)| (*k, t))
    }
}

fn add_host(t: &mut HostTotal, h: &crate::shard::HostCounters) {
    t.sent_bytes += h.sent_bytes;
    t.sent_packets += h.sent_packets;
    t.recv_bytes += h.recv_bytes;
    t.recv_packets += h.recv_packets;
}
