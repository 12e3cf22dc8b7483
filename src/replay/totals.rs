//! Totals over the whole replay, per host and per pair — what a person
//! compares with other tools (tshark's endpoints), independent of the
//! sliding windows the detectors use. Bounded like the live tables: what
//! does not fit is counted as untracked.

use std::hash::Hash;

use serde::Serialize;

use crate::aggregator::Aggregator;
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

/// A host whose totals the bound left out: its bytes count as untracked.
const REFUSED: HostTotal = HostTotal {
    sent_bytes: 0,
    sent_packets: u64::MAX,
    recv_bytes: 0,
    recv_packets: u64::MAX,
};

#[derive(Debug)]
pub struct WholeTotals {
    /// Hosts the aggregator does not track (any more).
    hosts: OpenMap<Addr, HostTotal>,
    /// Hosts it tracks, by partition and slot; added to `hosts` when freed.
    /// A tick's add indexes this dense array of the tracked hosts (32
    /// bytes each), where a map of every host of the capture took a hash,
    /// a probe and half as much memory again. Told apart by their packets:
    /// none, a slot whose host has not been counted yet (a new one); some,
    /// a host whose totals are kept; [`REFUSED`], a host the bound left out.
    by_slot: Vec<Vec<HostTotal>>,
    /// Hosts counted in `by_slot` only: with `hosts`, the hosts the bound
    /// holds.
    outside: usize,
    pairs: OpenMap<(Addr, Addr), PairTotal>,
    max_hosts: usize,
    max_pairs: usize,
    /// Bytes of hosts and pairs that did not fit.
    pub untracked_host_bytes: u64,
    pub untracked_pair_bytes: u64,
    /// The current shard's keys' hashes, computed ahead of the adds.
    hashes: Vec<u64>,
}

/// What the totals need to know of a tick's merge, taken down on the
/// aggregator's side so that the adds can be made on another thread: where
/// the shard's hosts went, and which hosts left their slots before and
/// after it.
#[derive(Debug, Default)]
pub struct Ledger {
    /// The shard's hosts' partitions and slots, in the shard's order.
    slots: Vec<Option<(usize, u32)>>,
    /// Hosts freed (partition, slot, address): the first `before` of them
    /// in the empty ticks closed before the merge.
    freed: Vec<(usize, u32, Addr)>,
    before: usize,
    partitions: usize,
}

impl Ledger {
    /// Starts over, for another tick.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.freed.clear();
        self.before = 0;
    }

    /// `shard` was just merged into `agg`.
    pub fn merged(&mut self, shard: &Shard, agg: &Aggregator) {
        self.before = self.freed.len();
        self.partitions = agg.threads();
        self.slots.clear();
        self.slots.extend(
            shard
                .hosts()
                .iter()
                .enumerate()
                .map(|(i, h)| agg.merged_slot(i, h.addr)),
        );
    }

    /// The hosts `agg` freed since the last call.
    pub fn freed(&mut self, agg: &mut Aggregator) {
        agg.take_freed(|p, id, addr| self.freed.push((p, id, addr)));
    }
}

/// Keys whose slot is fetched ahead of the one being added: a tick's hosts
/// are mostly spread over a table larger than the caches, and several
/// misses in flight cost little more than one.
const AHEAD: usize = 24;

impl WholeTotals {
    /// Totals of at most `max_hosts` hosts and `max_pairs` pairs, those
    /// first seen. The aggregator must log its frees
    /// ([`Aggregator::log_frees`]) and never start its tables again.
    pub fn new(max_hosts: usize, max_pairs: usize) -> WholeTotals {
        WholeTotals {
            // Slots of 48 bytes, as many as a long capture's pairs:
            // three quarters full, about the memory hashbrown's map took.
            hosts: OpenMap::new(&Hasher::new()).dense(),
            by_slot: Vec::new(),
            outside: 0,
            pairs: OpenMap::new(&Hasher::new()).dense(),
            max_hosts,
            max_pairs,
            untracked_host_bytes: 0,
            untracked_pair_bytes: 0,
            hashes: Vec::new(),
        }
    }

    /// Adds a tick's shard, merged into the aggregator as `ledger` tells:
    /// a host it tracks by its slot there, another by address. Hosts freed
    /// before the merge leave their slots first, those freed after it
    /// last.
    pub fn add(&mut self, shard: &Shard, ledger: &Ledger) {
        let (before, after) = ledger.freed.split_at(ledger.before);
        self.take_freed(before);
        self.add_hosts(shard, ledger);
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
        self.take_freed(after);
    }

    fn add_hosts(&mut self, shard: &Shard, ledger: &Ledger) {
        let hosts = shard.hosts();
        debug_assert_eq!(hosts.len(), ledger.slots.len());
        if self.by_slot.len() < ledger.partitions {
            self.by_slot.resize_with(ledger.partitions, Vec::new);
        }
        let slots = &ledger.slots;
        for (i, h) in hosts.iter().enumerate() {
            if let Some(&Some((p, id))) = slots.get(i + AHEAD) {
                if let Some(t) = self.by_slot[p].get(id as usize) {
                    tpacket::prefetch(t);
                }
            }
            let total = HostTotal {
                sent_bytes: h.sent_bytes,
                sent_packets: h.sent_packets,
                recv_bytes: h.recv_bytes,
                recv_packets: h.recv_packets,
            };
            let Some((p, id)) = slots.get(i).copied().flatten() else {
                let room = self.max_hosts.saturating_sub(self.outside);
                let item = || std::iter::once((h.addr, total));
                self.untracked_host_bytes += add_all(&mut self.hosts, &mut self.hashes, item, room);
                continue;
            };
            let kept = &mut self.by_slot[p];
            if kept.len() <= id as usize {
                kept.resize(id as usize + 1, HostTotal::default());
            }
            let t = &mut kept[id as usize];
            if total.is_vacant() || *t == REFUSED {
                self.untracked_host_bytes += total.bytes();
                continue;
            }
            if t.is_vacant() {
                // First counted since it took this slot: kept if it was
                // before, or if the bound has room.
                let known = self.hosts.get(self.hosts.hash(&h.addr), &h.addr).is_some();
                if !known {
                    if self.hosts.len() + self.outside >= self.max_hosts {
                        *t = REFUSED;
                        self.untracked_host_bytes += total.bytes();
                        continue;
                    }
                    self.outside += 1;
                }
            }
            t.add(&total);
        }
    }

    /// Takes the totals of freed hosts into the map: their slots may take
    /// other hosts.
    fn take_freed(&mut self, freed: &[(usize, u32, Addr)]) {
        for &(p, id, addr) in freed {
            if let Some(t) = self.by_slot.get_mut(p).and_then(|s| s.get_mut(id as usize)) {
                let total = std::mem::take(t);
                self.outside -= put_back(&mut self.hosts, &mut self.hashes, addr, total);
            }
        }
    }

    /// Takes every host's totals into the map: the replay has ended.
    pub fn finish(&mut self, agg: &Aggregator) {
        for (p, slots) in self.by_slot.iter_mut().enumerate() {
            for (id, t) in slots.iter_mut().enumerate() {
                let total = std::mem::take(t);
                if !total.is_vacant() && total != REFUSED {
                    let addr = agg.slot_addr(p, id as u32);
                    self.outside -= put_back(&mut self.hosts, &mut self.hashes, addr, total);
                }
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

/// Adds a freed slot's totals to the map (nothing for a slot not counted
/// or refused). Returns 1 if the host was not in the map: it was counted
/// outside it until now.
fn put_back(
    map: &mut OpenMap<Addr, HostTotal>,
    hashes: &mut Vec<u64>,
    addr: Addr,
    total: HostTotal,
) -> usize {
    if total == REFUSED {
        return 0;
    }
    let held = map.len();
    // No bound: the host was counted within it when it took its slot.
    add_all(map, hashes, || std::iter::once((addr, total)), usize::MAX);
    map.len() - held
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
