//! The fingerprint of a flood toward a host, for its alert: the dominant
//! protocol, the share of SYNs and fragments, the destination ports the
//! flows were opened to, and how concentrated the sources are (their /24s,
//! /48s for IPv6): what an operator needs to filter it upstream.
//!
//! Only destinations that received, in one tick, at least half a tick's
//! worth of the lowest inbound rate limit are tallied (a flood that can
//! cross a limit must bring that much in some tick), at most [`VICTIMS`]
//! of them, each with bounded tables; a tally is dropped once its host had
//! no such tick for a rate window. It is built from what the aggregator
//! merges anyway (the shards' hosts, rates and pairs), never on the
//! workers' path.

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use super::evidence::proto_name;
use crate::rates::{Class, Dir, column};
use crate::shard::{Hasher, Shard};
use crate::wire::Addr;

/// Destinations tallied at once.
const VICTIMS: usize = 256;
/// Distinct ports and source prefixes a tally holds; more are counted
/// under "other".
const PORTS: usize = 256;
const PREFIXES: usize = 1024;
/// Ports and prefixes listed in an alert.
const LISTED: usize = 5;

/// A destination port and the packets of flows opened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortCount {
    pub proto: String,
    pub port: u16,
    pub packets: u64,
}

/// A source prefix and its packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixCount {
    pub prefix: String,
    pub packets: u64,
}

/// What an alert shows of a flood toward its subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Packets tallied: those of the ticks it was flooded in.
    pub packets: u64,
    /// The protocol most of them were: tcp, udp, icmp or other.
    pub protocol: String,
    /// Shares of TCP SYN without ACK and of IP fragments, 0 to 1.
    pub syn_share: f64,
    pub fragment_share: f64,
    /// The ports most packets' flows were opened to (initiations only: a
    /// flood of replies or of ICMP has none).
    pub ports: Vec<PortCount>,
    /// The source /24s (IPv6: /48s) that sent most, and the share of all
    /// tallied packets they sent: near 0 for spoofed sources, near 1 for a
    /// few real senders.
    pub source_prefixes: Vec<PrefixCount>,
    pub top_prefixes_share: f64,
    /// Distinct source prefixes seen, up to 1 024 ("at least" beyond).
    pub distinct_prefixes: u64,
}

/// Per tick, what makes a destination a suspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floors {
    pub packets: u64,
    pub bytes: u64,
}

impl Floors {
    /// The floors one of `workers` shards of a tick must reach: the
    /// workers' fanout spreads a flood's packets over all of them, and
    /// each shard is looked at on its own.
    pub fn per_shard(self, workers: usize) -> Floors {
        let n = workers.max(1) as u64;
        Floors {
            packets: (self.packets / n).max(1),
            bytes: (self.bytes / n).max(1),
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    addr: Addr,
    last_tick: u64,
    packets: u64,
    /// Packets of TCP, SYN, UDP, ICMP, fragments.
    classes: [u64; 5],
    ports: HashMap<(u8, u16), u64, Hasher>,
    prefixes: HashMap<Addr, u64, Hasher>,
    other_prefixes: u64,
}

/// The tallies of the destinations being flooded.
#[derive(Debug, Default)]
pub struct Fingerprints {
    floors: Option<Floors>,
    /// Ticks a tally outlives its last flooded tick: the rate window.
    keep: u64,
    /// The tallies, and where each victim's is.
    tallies: Vec<Tally>,
    index: HashMap<Addr, u32, Hasher>,
    /// Per shard host index: its tally, if it is a victim (reused).
    of_index: Vec<u32>,
}

/// No tally.
const NONE: u32 = u32::MAX;

impl Fingerprints {
    /// `floors`: `None` when no inbound rate limit is set (nothing tallied).
    pub fn new(floors: Option<Floors>, keep: u64) -> Fingerprints {
        Fingerprints {
            floors,
            keep,
            ..Fingerprints::default()
        }
    }

    /// Takes new floors (reload); tallies are kept.
    pub fn set(&mut self, floors: Option<Floors>, keep: u64) {
        self.floors = floors;
        self.keep = keep;
        if floors.is_none() {
            self.tallies.clear();
            self.index.clear();
        }
    }

    /// Tallies a shard's traffic toward the destinations it floods.
    pub fn observe(&mut self, shard: &Shard, tick: u64) {
        let Some(f) = self.floors else { return };
        let hosts = shard.hosts();
        self.of_index.clear();
        let mut any = false;
        for (i, h) in hosts.iter().enumerate() {
            if h.recv_packets < f.packets && h.recv_bytes < f.bytes {
                self.of_index.push(NONE);
                continue;
            }
            let slot = match self.index.get(&h.addr) {
                Some(&s) => s,
                None if self.tallies.len() < VICTIMS => {
                    let s = self.tallies.len() as u32;
                    self.index.insert(h.addr, s);
                    self.tallies.push(Tally {
                        addr: h.addr,
                        ..Tally::default()
                    });
                    s
                }
                None => {
                    self.of_index.push(NONE);
                    continue;
                }
            };
            any = true;
            self.of_index.push(slot);
            let t = &mut self.tallies[slot as usize];
            t.last_tick = tick;
            t.packets += h.recv_packets;
            if let Some(r) = shard.rates_of(i) {
                let all = [(h.recv_packets, h.recv_bytes), (0, 0)];
                for (n, class) in [
                    Class::Tcp,
                    Class::Syn,
                    Class::Udp,
                    Class::Icmp,
                    Class::Fragments,
                ]
                .into_iter()
                .enumerate()
                {
                    t.classes[n] += r.value(column(Dir::In, class, false), all);
                }
            }
        }
        if !any {
            return;
        }
        for (si, di, p) in shard.pairs_by_index() {
            let slot = self.of_index.get(di as usize).copied().unwrap_or(NONE);
            if slot == NONE {
                continue;
            }
            let t = &mut self.tallies[slot as usize];
            if let Some(key) = p.first_contact() {
                bump(&mut t.ports, key, p.packets, PORTS);
            }
            let prefix = prefix_of(hosts[si as usize].addr);
            if !bump(&mut t.prefixes, prefix, p.packets, PREFIXES) {
                t.other_prefixes += p.packets;
            }
        }
    }

    /// Drops the tallies of floods that ended a rate window ago.
    pub fn expire(&mut self, tick: u64) {
        let keep = self.keep;
        let before = self.tallies.len();
        self.tallies.retain(|t| t.last_tick + keep >= tick);
        if self.tallies.len() != before {
            self.index.clear();
            for (i, t) in self.tallies.iter().enumerate() {
                self.index.insert(t.addr, i as u32);
            }
        }
    }

    /// The fingerprint of the flood toward `a`, if one is tallied.
    pub fn of(&self, a: Addr) -> Option<Fingerprint> {
        let t = &self.tallies[*self.index.get(&a)? as usize];
        if t.packets == 0 {
            return None;
        }
        let share = |n: u64| n as f64 / t.packets as f64;
        let [tcp, syn, udp, icmp, frag] = t.classes;
        let other = t.packets.saturating_sub(tcp + udp + icmp);
        let protocol = [(tcp, "tcp"), (udp, "udp"), (icmp, "icmp"), (other, "other")]
            .into_iter()
            .max_by_key(|x| x.0)
            .map_or("other", |x| x.1);
        let mut ports: Vec<PortCount> = t
            .ports
            .iter()
            .map(|(&(proto, port), &packets)| PortCount {
                proto: proto_name(proto),
                port,
                packets,
            })
            .collect();
        ports.sort_unstable_by(|a, b| b.packets.cmp(&a.packets).then(a.port.cmp(&b.port)));
        ports.truncate(LISTED);
        let mut prefixes: Vec<(Addr, u64)> = t.prefixes.iter().map(|(&a, &n)| (a, n)).collect();
        prefixes.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        prefixes.truncate(LISTED);
        let top: u64 = prefixes.iter().map(|p| p.1).sum();
        let all_prefixed = t.prefixes.values().sum::<u64>() + t.other_prefixes;
        Some(Fingerprint {
            packets: t.packets,
            protocol: protocol.to_string(),
            syn_share: round(share(syn)),
            fragment_share: round(share(frag)),
            ports,
            source_prefixes: prefixes
                .into_iter()
                .map(|(a, packets)| PrefixCount {
                    prefix: prefix_text(a),
                    packets,
                })
                .collect(),
            top_prefixes_share: if all_prefixed == 0 {
                0.0
            } else {
                round(top as f64 / all_prefixed as f64)
            },
            distinct_prefixes: t.prefixes.len() as u64,
        })
    }

    /// Destinations tallied now.
    pub fn len(&self) -> usize {
        self.tallies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tallies.is_empty()
    }
}

/// Adds `n` to `key`'s count if it is counted or there is room for it;
/// false if there was none.
#[inline]
fn bump<K: std::hash::Hash + Eq>(
    m: &mut HashMap<K, u64, Hasher>,
    key: K,
    n: u64,
    max: usize,
) -> bool {
    if let Some(c) = m.get_mut(&key) {
        *c += n;
        return true;
    }
    if m.len() < max {
        m.insert(key, n);
        return true;
    }
    false
}

/// The /24 of an IPv4 address, the /48 of an IPv6 one.
fn prefix_of(a: Addr) -> Addr {
    if a.is_v4() {
        Addr(a.0 & !0xff)
    } else {
        Addr(a.0 & !((1u128 << 80) - 1))
    }
}

fn prefix_text(a: Addr) -> String {
    format!("{}/{}", a.ip(), if a.is_v4() { 24 } else { 48 })
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::ShardLimits;
    use crate::wire::{Role, Summary, proto, tcp_flags};

    fn shard() -> Shard {
        Shard::new(
            ShardLimits {
                max_hosts: 10_000,
                max_pairs: 10_000,
                max_ports: 10_000,
                answers: false,
                rates: crate::rates::IN | crate::rates::OUT,
            },
            &Hasher::new(),
        )
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
        Addr::from_v4([a, b, c, d])
    }

    #[test]
    fn a_syn_flood_from_spread_sources_and_a_transfer_from_one() {
        let mut f = Fingerprints::new(
            Some(Floors {
                packets: 100,
                bytes: u64::MAX,
            }),
            5,
        );
        let mut s = shard();
        let victim = v4(10, 2, 0, 2);
        for i in 0..1000u32 {
            s.record(&Summary {
                src: Addr::from_v4((0x0b00_0000 + i * 256).to_be_bytes()),
                dst: victim,
                l3_len: 60,
                proto: proto::TCP,
                tcp_flags: tcp_flags::SYN,
                dst_port: if i % 10 == 0 { 443 } else { 80 },
                src_port: 1024,
                has_ports: true,
                role: Role::Initiation,
                ..Summary::default()
            });
        }
        // Below the floor: not tallied.
        for _ in 0..50 {
            s.record(&Summary {
                src: v4(192, 0, 2, 1),
                dst: v4(10, 2, 0, 3),
                l3_len: 1500,
                proto: proto::UDP,
                ..Summary::default()
            });
        }
        s.seal();
        f.observe(&s, 7);
        assert_eq!(f.len(), 1);
        let p = f.of(victim).unwrap();
        assert_eq!((p.packets, p.protocol.as_str()), (1000, "tcp"));
        assert_eq!((p.syn_share, p.fragment_share), (1.0, 0.0));
        assert_eq!(
            (p.ports[0].port, p.ports[0].packets, p.ports[1].port),
            (80, 900, 443)
        );
        assert_eq!(p.distinct_prefixes, 1000);
        assert_eq!(p.source_prefixes.len(), 5);
        assert!(p.top_prefixes_share < 0.01, "{p:?}");
        assert!(f.of(v4(10, 2, 0, 3)).is_none());
        // Kept through the rate window, then dropped.
        f.expire(12);
        assert_eq!(f.len(), 1);
        f.expire(13);
        assert!(f.is_empty());

        // One real sender: one prefix has it all.
        let mut s = shard();
        for _ in 0..200 {
            s.record(&Summary {
                src: v4(198, 51, 100, 7),
                dst: victim,
                l3_len: 1000,
                proto: proto::UDP,
                src_port: 5000,
                dst_port: 53,
                has_ports: true,
                ..Summary::default()
            });
        }
        s.seal();
        f.observe(&s, 20);
        let p = f.of(victim).unwrap();
        assert_eq!(p.protocol, "udp");
        assert_eq!(p.source_prefixes[0].prefix, "198.51.100.0/24");
        assert_eq!(p.top_prefixes_share, 1.0);
    }

    #[test]
    fn a_flood_spread_over_the_workers_is_tallied() {
        let floors = Floors {
            packets: 1000,
            bytes: u64::MAX,
        };
        let victim = v4(10, 2, 0, 2);
        // Four workers each saw a quarter of 1 200 packets: none alone
        // reaches the tick's floor.
        let shards: Vec<Shard> = (0..4u32)
            .map(|w| {
                let mut s = shard();
                for i in 0..300u32 {
                    s.record(&Summary {
                        src: Addr::from_v4((0x0b00_0000 + w * 1000 + i).to_be_bytes()),
                        dst: victim,
                        l3_len: 60,
                        proto: proto::UDP,
                        ..Summary::default()
                    });
                }
                s.seal();
                s
            })
            .collect();
        let mut whole = Fingerprints::new(Some(floors), 5);
        let mut split = Fingerprints::new(Some(floors.per_shard(4)), 5);
        for s in &shards {
            whole.observe(s, 1);
            split.observe(s, 1);
        }
        assert!(whole.is_empty());
        assert_eq!(split.of(victim).unwrap().packets, 1200);
    }

    #[test]
    fn bounded_and_off_without_floors() {
        let mut off = Fingerprints::new(None, 5);
        let mut s = shard();
        for i in 0..400u32 {
            for _ in 0..2 {
                s.record(&Summary {
                    src: v4(192, 0, 2, 1),
                    dst: Addr::from_v4((0x0a00_0000 + i).to_be_bytes()),
                    l3_len: 100,
                    proto: proto::UDP,
                    ..Summary::default()
                });
            }
        }
        s.seal();
        off.observe(&s, 1);
        assert!(off.is_empty());
        let mut on = Fingerprints::new(
            Some(Floors {
                packets: 1,
                bytes: u64::MAX,
            }),
            5,
        );
        on.observe(&s, 1);
        assert_eq!(on.len(), VICTIMS);
    }
}
