//! Totals over the whole replay, per host and per pair — what a person
//! compares with other tools (tshark's endpoints), independent of the
//! sliding windows the detectors use. Bounded like the live tables: what
//! does not fit is counted as untracked.

use std::hash::Hash;

use serde::Serialize;

use crate::openmap::{OpenMap, Vacancy};
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
        let hosts = || {
            shard.hosts().iter().map(|h| {
                let total = HostTotal {
                    sent_bytes: h.sent_bytes,
                    sent_packets: h.sent_packets,
                    recv_bytes: h.recv_bytes,
                    recv_packets: h.recv_packets,
                };
                (h.addr, total)
            })
        };
        self.untracked_host_bytes +=
            add_all(&mut self.hosts, &mut self.hashes, hosts, self.max_hosts);
        let pairs = || {
            shard.pairs().map(|(s, d, p)| {
                let total = PairTotal {
                    bytes: p.bytes,
                    packets: p.packets,
                };
                ((s, d), total)
            })
        };
        self.untracked_pair_bytes +=
            add_all(&mut self.pairs, &mut self.hashes, pairs, self.max_pairs);
    }

    pub fn hosts(&self) -> impl Iterator<Item = (Addr, &HostTotal)> + '_ {
        self.hosts.iter().map(|(a, t)| (*a, t))
    }

    pub fn pairs(&self) -> impl Iterator<Item = ((Addr, Addr), &PairTotal)> + '_ {
        self.pairs.iter().map(|(k, t)| (*k, t))
    }
}

/// Totals that add up, and whose bytes count as untracked when they do
/// not fit.
trait Total: Vacancy + Copy {
    fn add(&mut self, o: &Self);
    fn bytes(&self) -> u64;
}

impl Total for HostTotal {
    fn add(&mut self, o: &HostTotal) {
        self.sent_bytes += o.sent_bytes;
        self.sent_packets += o.sent_packets;
        self.recv_bytes += o.recv_bytes;
        self.recv_packets += o.recv_packets;
    }

    fn bytes(&self) -> u64 {
        self.sent_bytes + self.recv_bytes
    }
}

impl Total for PairTotal {
    fn add(&mut self, o: &PairTotal) {
        self.bytes += o.bytes;
        self.packets += o.packets;
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Adds a tick's totals by key into `map`, bounded by `max` keys, each
/// key's slot fetched a few keys ahead. Returns the bytes that did not
/// fit: of new keys past the bound, and of totals without a packet (a
/// flow record's; the map cannot hold those).
fn add_all<K, T, I>(
    map: &mut OpenMap<K, T>,
    hashes: &mut Vec<u64>,
    items: impl Fn() -> I,
    max: usize,
) -> u64
where
    K: Copy + Default + Eq + Hash,
    T: Total,
    I: Iterator<Item = (K, T)>,
{
    hashes.clear();
    hashes.extend(items().map(|(k, _)| map.hash(&k)));
    let mut untracked = 0;
    for (i, (key, total)) in items().enumerate() {
        if let Some(&ahead) = hashes.get(i + AHEAD) {
            map.prefetch(ahead);
        }
        if total.is_vacant() {
            untracked += total.bytes();
            continue;
        }
        let room = map.len() < max;
        let mut added = false;
        match map.get_or_insert_with(hashes[i], key, || {
            added = true;
            room.then_some(total)
        }) {
            Some(t) if !added => t.add(&total),
            Some(_) => {}
            None => untracked += total.bytes(),
        }
    }
    untracked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(sent: u64, packets: u64) -> HostTotal {
        HostTotal {
            sent_bytes: sent,
            sent_packets: packets,
            ..HostTotal::default()
        }
    }

    #[test]
    fn totals_add_up_to_the_bound_and_the_rest_is_untracked() {
        let mut map = OpenMap::new(&Hasher::new()).dense();
        let mut hashes = Vec::new();
        let tick = [(1u64, host(100, 1)), (2, host(10, 1)), (3, host(7, 0))];
        // Key 3's total has bytes but no packet: untracked, not dropped.
        assert_eq!(add_all(&mut map, &mut hashes, || tick.into_iter(), 2), 7);
        let next = [(1u64, host(50, 2)), (4, host(5, 1)), (2, host(1, 1))];
        // Key 4 is new and the map holds its bound of 2.
        assert_eq!(add_all(&mut map, &mut hashes, || next.into_iter(), 2), 5);
        let mut got: Vec<(u64, u64, u64)> = map
            .iter()
            .map(|(k, t)| (*k, t.sent_bytes, t.sent_packets))
            .collect();
        got.sort_unstable();
        assert_eq!(got, [(1, 150, 3), (2, 11, 2)]);
    }

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
