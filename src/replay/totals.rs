//! Totals over the whole replay, per host and per pair — what a person
//! compares with other tools (tshark's endpoints), independent of the
//! sliding windows the detectors use. Bounded like the live tables: what
//! does not fit is counted as untracked.

use serde::Serialize;

use crate::openmap::{OpenMap, Vacancy};
use crate::shard::{Hasher, HostCounters, Shard};
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

/// A host in the totals has sent or received a packet.
impl Vacancy for HostTotal {
    fn is_vacant(&self) -> bool {
        self.sent_packets == 0 && self.recv_packets == 0
    }
}

/// A pair in the totals has a packet.
impl Vacancy for PairTotal {
    fn is_vacant(&self) -> bool {
        self.packets == 0
    }
}

#[derive(Debug)]
pub struct WholeTotals {
    hosts: OpenMap<Addr, HostTotal>,
    pairs: OpenMap<(Addr, Addr), PairTotal>,
    max_hosts: usize,
    max_pairs: usize,
    /// Bytes of hosts and pairs that did not fit.
    pub untracked_host_bytes: u64,
    pub untracked_pair_bytes: u64,
    /// The current shard's keys' hashes, computed ahead of the adds.
    hashes: Vec<u64>,
}

/// Keys whose slot is fetched ahead of the one being added: a tick's hosts
/// are mostly spread over a table larger than the caches, and several
/// misses in flight cost little more than one.
const AHEAD: usize = 24;

impl WholeTotals {
    pub fn new(max_hosts: usize, max_pairs: usize) -> WholeTotals {
        WholeTotals {
            // Slots of 48 bytes, as many as a long capture's pairs:
            // three quarters full, about the memory hashbrown's map took.
            hosts: OpenMap::new(&Hasher::new()).dense(),
            pairs: OpenMap::new(&Hasher::new()).dense(),
            max_hosts,
            max_pairs,
            untracked_host_bytes: 0,
            untracked_pair_bytes: 0,
            hashes: Vec::new(),
        }
    }

    /// Adds a tick's shard.
    pub fn add(&mut self, shard: &Shard) {
        let hosts = shard.hosts();
        self.hashes.clear();
        self.hashes
            .extend(hosts.iter().map(|h| self.hosts.hash(&h.addr)));
        for (i, h) in hosts.iter().enumerate() {
            if let Some(&ahead) = self.hashes.get(i + AHEAD) {
                self.hosts.prefetch(ahead);
            }
            let total = HostTotal {
                sent_bytes: h.sent_bytes,
                sent_packets: h.sent_packets,
                recv_bytes: h.recv_bytes,
                recv_packets: h.recv_packets,
            };
            if total.is_vacant() {
                continue;
            }
            let room = self.hosts.len() < self.max_hosts;
            let mut added = false;
            match self.hosts.get_or_insert_with(self.hashes[i], h.addr, || {
                added = true;
                room.then_some(total)
            }) {
                Some(t) if !added => add_host(t, h),
                Some(_) => {}
                None => self.untracked_host_bytes += h.sent_bytes + h.recv_bytes,
            }
        }
        self.hashes.clear();
        self.hashes
            .extend(shard.pairs().map(|(s, d, _)| self.pairs.hash(&(s, d))));
        for (i, (s, d, p)) in shard.pairs().enumerate() {
            if let Some(&ahead) = self.hashes.get(i + AHEAD) {
                self.pairs.prefetch(ahead);
            }
            let total = PairTotal {
                bytes: p.bytes,
                packets: p.packets,
            };
            if total.is_vacant() {
                continue;
            }
            let room = self.pairs.len() < self.max_pairs;
            let mut added = false;
            match self.pairs.get_or_insert_with(self.hashes[i], (s, d), || {
                added = true;
                room.then_some(total)
            }) {
                Some(t) if !added => {
                    t.bytes += p.bytes;
                    t.packets += p.packets;
                }
                Some(_) => {}
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

fn add_host(t: &mut HostTotal, h: &HostCounters) {
    t.sent_bytes += h.sent_bytes;
    t.sent_packets += h.sent_packets;
    t.recv_bytes += h.recv_bytes;
    t.recv_packets += h.recv_packets;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_slot_has_no_packet_and_a_total_has_one() {
        assert!(HostTotal::default().is_vacant());
        assert!(PairTotal::default().is_vacant());
        let sent = HostTotal {
            sent_packets: 1,
            ..HostTotal::default()
        };
        let received = HostTotal {
            recv_packets: 1,
            ..HostTotal::default()
        };
        assert!(!sent.is_vacant() && !received.is_vacant());
        assert!(
            !PairTotal {
                bytes: 0,
                packets: 1
            }
            .is_vacant()
        );
    }
}
