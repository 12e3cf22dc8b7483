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

/// Bytes, packets and role bits per peer of one subject.
pub type PeerTotals = HashMap<Addr, (u64, u64, u8), Hasher>;

/// The sources toward each inbound subject, gathered from every partition.
pub type Sources = HashMap<Addr, PeerTotals, Hasher>;

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
    let mut peers: Vec<(Addr, u64, u64, u8)> = Vec::new();
    wanted
        .iter()
        .map(|&(kind, a)| {
            let mut ev = Evidence::default();
            match kind {
                AlertKind::AddressScan => {
                    destinations_of(pairs, a, tick, &mut peers);
                    ev.destinations = top(&mut peers, SCANNED, |roles| {
                        roles & role_bits::INITIATION != 0
                    });
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
                    peers.clear();
                    if let Some(m) = into.get(&a) {
                        peers.extend(m.iter().map(|(&p, e)| (p, e.0, e.1, e.2)));
                    }
                    ev.sources = top(&mut peers, PEERS, |_| true);
                }
                _ => {
                    destinations_of(pairs, a, tick, &mut peers);
                    ev.destinations = top(&mut peers, PEERS, |_| true);
                }
            }
            ((kind, a), ev)
        })
        .collect()
}

/// The destinations of source `a` over the window into `out`, one entry
/// per destination (a pair may sit in several generations): its own pairs,
/// sorted and merged, not a pass over every pair.
pub fn destinations_of(
    pairs: &PairWindow,
    a: Addr,
    tick: u64,
    out: &mut Vec<(Addr, u64, u64, u8)>,
) {
    out.clear();
    pairs.for_each_of(tick, a, |d, c| out.push((d, c.bytes, c.packets, c.roles)));
    out.sort_unstable_by_key(|p| p.0);
    out.dedup_by(|later, first| {
        if later.0 != first.0 {
            return false;
        }
        first.1 += later.1;
        first.2 += later.2;
        first.3 |= later.3;
        true
    });
}

fn top(v: &mut Vec<(Addr, u64, u64, u8)>, n: usize, keep: impl Fn(u8) -> bool) -> Vec<Peer> {
    v.retain(|p| keep(p.3));
    if v.len() > n {
        v.select_nth_unstable_by(n - 1, |x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        v.truncate(n);
    }
    v.sort_unstable_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    v.iter()
        .map(|&(a, bytes, packets, _)| Peer {
            ip: a.ip(),
            bytes,
            packets,
        })
        .collect()
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
