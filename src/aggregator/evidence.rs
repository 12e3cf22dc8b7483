//! What an alert shows as its reason: the subject's largest destinations
//! (traffic), the destinations it initiated contact to (address scans), a
//! sample of the ports it tried (port scans), its largest sources (inbound).
//! A source's peers are its own pairs; a destination's sources take one
//! pass over the pairs (of every partition) for all inbound alerts that
//! need it.

use hashbrown::HashMap;

use crate::alert::{AlertKind, Evidence, Peer, PortRef};
use crate::hosts::HostTable;
use crate::pairs::PairWindow;
use crate::shard::{Hasher, role_bits};
use crate::wire::{Addr, proto};

/// Peers listed per alert.
pub const PEERS: usize = 10;
/// Destinations listed for an address scan.
pub const SCANNED: usize = 20;
/// Ports listed for a port scan.
pub const PORTS: usize = 50;

/// A peer of one subject: its address, bytes, packets and role bits.
pub type PeerTotal = (Addr, u64, u64, u8);

/// The sources toward each inbound subject, gathered from every partition:
/// one entry per pair and generation as they are met, then, if a pair was
/// met in two generations, [`merge_sources`] makes it one per source; or,
/// when every source is met once, only the [`PEERS`] largest.
/// (Pushed, not summed into a map as they come: under a spoofed flood a
/// victim has 65 536 sources, and a map of them, grown and probed at
/// random, was most of the cost of gathering them.)
pub type Sources = HashMap<Addr, Vec<PeerTotal>, Hasher>;

/// Sorts each subject's sources by address and adds up the entries of one
/// source (a pair held in several generations, or several partitions).
pub fn merge_sources(sources: &mut Sources) {
    for v in sources.values_mut() {
        merge_by_address(v);
    }
}

/// Sorts peers by address, one entry per address, their counts added.
fn merge_by_address(v: &mut Vec<PeerTotal>) {
    v.sort_unstable_by_key(|p| p.0);
    v.dedup_by(|later, first| {
        if later.0 != first.0 {
            return false;
        }
        first.1 += later.1;
        first.2 += later.2;
        first.3 |= later.3;
        true
    });
}

/// The evidence of the `wanted` alerts: a source's peers from its own
/// pairs in `pairs`, an inbound subject's sources from `into` (gathered from
/// every partition's pairs beforehand).
pub fn gather(
    wanted: &[(AlertKind, Addr)],
    pairs: &PairWindow,
    hosts: &HostTable,
    tick: u64,
    (scan_window, port_window): (u64, u64),
    into: &Sources,
) -> Vec<((AlertKind, Addr), Evidence)> {
    let mut peers: Vec<PeerTotal> = Vec::new();
    wanted
        .iter()
        .map(|&(kind, a)| {
            let mut ev = Evidence::default();
            match kind {
                AlertKind::AddressScan => {
                    destinations_of(pairs, a, tick, &mut peers);
                    ev.destinations = top(
                        peers.iter().filter(|p| p.3 & role_bits::INITIATION != 0),
                        SCANNED,
                    );
                    ev.contacted = hosts
                        .get(a)
                        .and_then(|h| h.scan.as_ref())
                        .and_then(|s| s.addresses.estimate(tick, scan_window));
                }
                AlertKind::PortScan => {
                    if let Some(s) = hosts.get(a).and_then(|h| h.scan.as_ref()) {
                        ev.contacted = s.ports.estimate(tick, port_window);
                        let mut keys: Vec<u32> = s.ports.keys(tick, port_window).collect();
                        keys.sort_unstable();
                        ev.ports = keys
                            .into_iter()
                            .take(PORTS)
                            .map(|k| PortRef {
                                proto: proto_name((k >> 16) as u8),
                                port: k as u16,
                            })
                            .collect();
                    }
                }
                // A flood toward the subject (inbound, a rate in): its
                // sources. Traffic or a rate from it: its destinations
                // (all their traffic: pairs are not kept by class).
                k if !k.subject_is_source() => {
                    ev.sources = into.get(&a).map_or_else(Vec::new, |v| top(v, PEERS));
                }
                _ => {
                    destinations_of(pairs, a, tick, &mut peers);
                    ev.destinations = top(&peers, PEERS);
                }
            }
            ((kind, a), ev)
        })
        .collect()
}

/// The destinations of source `a` over the window into `out`, one entry
/// per destination (a pair may sit in several generations): its own pairs,
/// sorted and merged, not a pass over every pair.
pub fn destinations_of(pairs: &PairWindow, a: Addr, tick: u64, out: &mut Vec<PeerTotal>) {
    out.clear();
    pairs.for_each_of(tick, a, |d, c| out.push((d, c.bytes, c.packets, c.roles)));
    merge_by_address(out);
}

/// The `n` largest peers by bytes (ties: the lower address first),
/// largest first. Read in place, keeping only the best `n` as it goes: a
/// victim of a spoofed flood has tens of thousands of sources, and copying
/// them to pick ten cost more than the picking.
fn top<'a>(peers: impl IntoIterator<Item = &'a PeerTotal>, n: usize) -> Vec<Peer> {
    let mut best: Vec<PeerTotal> = Vec::with_capacity(n + 1);
    for p in peers {
        keep_best(&mut best, *p, n);
    }
    best.iter()
        .map(|&(a, bytes, packets, _)| Peer {
            ip: a.ip(),
            bytes,
            packets,
        })
        .collect()
}

/// Puts `p` into `best` (the largest by bytes first, ties the lower
/// address first) if it is among the `n` largest seen.
pub fn keep_best(best: &mut Vec<PeerTotal>, p: PeerTotal, n: usize) {
    let before = |x: &PeerTotal, y: &PeerTotal| y.1.cmp(&x.1).then(x.0.cmp(&y.0));
    if best.len() >= n && best.last().is_none_or(|w| before(&p, w).is_ge()) {
        return;
    }
    let at = best.partition_point(|b| before(b, &p).is_lt());
    best.insert(at, p);
    best.truncate(n);
}

/// A protocol number in words.
pub fn proto_name(p: u8) -> String {
    match p {
        proto::TCP => "tcp".into(),
        proto::UDP => "udp".into(),
        proto::SCTP => "sctp".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_is_the_head_of_the_whole_list_sorted() {
        // Many peers, bytes drawn from few values so that ties are broken
        // by address.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let v: Vec<PeerTotal> = (0..5_000u32)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (
                    Addr::from_v4(i.wrapping_mul(2_654_435_761).to_be_bytes()),
                    x % 7,
                    i as u64,
                    (i % 3) as u8,
                )
            })
            .collect();
        let mut sorted = v.clone();
        sorted.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        for n in [0, 1, 3, PEERS, 4_999, 5_000, 6_000] {
            let want: Vec<Addr> = sorted.iter().take(n).map(|p| p.0).collect();
            let got: Vec<Addr> = top(&v, n).iter().map(|p| Addr::from(p.ip)).collect();
            assert_eq!(got, want, "n = {n}");
        }
        // Through a filter, as an address scan's destinations are.
        let want: Vec<Addr> = sorted
            .iter()
            .filter(|p| p.3 == 1)
            .take(SCANNED)
            .map(|p| p.0)
            .collect();
        let got: Vec<Addr> = top(v.iter().filter(|p| p.3 == 1), SCANNED)
            .iter()
            .map(|p| Addr::from(p.ip))
            .collect();
        assert_eq!(got, want);
        assert!(top(&[], PEERS).is_empty());
    }
}
