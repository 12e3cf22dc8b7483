//! Per-interface counters: what the capture saw on an interface, what the
//! parser made of it, and what the kernel dropped.

use serde::Serialize;

use crate::flows::UdpFlows;
use crate::shard::Shard;
use crate::wire::{self, Decap, LinkType, Malformed, Meta, NonIp, Skip, Summary, TunnelSkip};

/// Parses one frame and counts it: into the interface's counters always, and
/// into the shard if it is an IP packet (UDP datagrams first told apart as
/// answers or initiations). Live capture, replay and the benchmarks all count
/// through here.
#[inline]
pub fn count_frame(
    link: LinkType,
    data: &[u8],
    meta: Meta,
    decap: &Decap,
    c: &mut IfaceDelta,
    shard: &mut Shard,
    flows: &mut UdpFlows,
) {
    let mut s = Summary::default();
    match wire::parse_into(link, data, meta, decap, &mut s) {
        Ok(()) => {
            flows.classify(&mut s);
            count_ip(&s, c);
            shard.record(&s);
        }
        Err(e) => count_skip(e, c),
    }
}

/// Frames parsed ahead of being counted: the memory their counting touches
/// at random (a UDP flow's slot, the admission filter) is asked for this
/// many frames before it is read, so that under a flood of new sources the
/// misses overlap instead of being waited for one by one.
pub const AHEAD: usize = 16;

/// Counts parsed frames [`AHEAD`] frames behind their parse, with the UDP
/// flow table they are classified with. What a frame's counting looks up
/// at random is hashed when it is parsed and fetched then; the frames
/// waiting are counted ([`Counter::flush`]) before the shard's admission or
/// tick changes. Frames are parsed into their place in the queue
/// ([`Counter::push_with`]), not moved there.
#[derive(Debug)]
pub struct Counter {
    pub flows: UdpFlows,
    /// The subjects whose frames are copied ([`crate::attacks`]).
    pub taker: crate::attacks::take::Taker,
    /// A ring of frames waiting: `len` of them from `head`, and room for
    /// the one being parsed.
    ahead: [Ahead; RING],
    head: usize,
    len: usize,
}

/// Slots of the queue: [`AHEAD`] waiting and one being parsed, rounded up
/// to a power of two.
const RING: usize = 2 * AHEAD;

/// A frame waiting to be counted: parsed (or why not), with its flow key
/// and its source's screening probe.
#[derive(Debug, Clone, Copy)]
struct Ahead {
    summary: Summary,
    skip: Option<Skip>,
    flow: Option<(u64, u8)>,
    probe: Option<crate::admission::Probe>,
}

impl Counter {
    pub fn new(flows: UdpFlows) -> Counter {
        let empty = Ahead {
            summary: Summary::default(),
            skip: None,
            flow: None,
            probe: None,
        };
        Counter {
            flows,
            taker: Default::default(),
            ahead: [empty; RING],
            head: 0,
            len: 0,
        }
    }

    /// Parses a frame with `parse` into its place in the queue, asks for
    /// its memory, and counts the frame parsed [`AHEAD`] frames before it.
    /// Returns the frame's summary if it is an IP packet, with the frames
    /// taker ([`crate::attacks`]).
    #[inline]
    pub fn push_with(
        &mut self,
        parse: impl FnOnce(&mut Summary) -> Result<(), Skip>,
        c: &mut IfaceDelta,
        shard: &mut Shard,
    ) -> Option<(&Summary, &mut crate::attacks::take::Taker)> {
        let slot = (self.head + self.len) % RING;
        let a = &mut self.ahead[slot];
        a.skip = parse(&mut a.summary).err();
        (a.flow, a.probe) = match a.skip {
            None => {
                let flow = self.flows.key(&a.summary);
                if let Some((fp, _)) = flow {
                    self.flows.prefetch(fp);
                }
                (flow, shard.probe(&a.summary))
            }
            Some(_) => (None, None),
        };
        if self.len == AHEAD {
            let at = self.head;
            self.count(at, c, shard);
            self.head = (self.head + 1) % RING;
        } else {
            self.len += 1;
        }
        let a = &self.ahead[slot];
        match a.skip {
            None => Some((&a.summary, &mut self.taker)),
            Some(_) => None,
        }
    }

    /// Counts the frames still waiting (at the end of a block: their
    /// interface's counters are `c`).
    #[inline]
    pub fn flush(&mut self, c: &mut IfaceDelta, shard: &mut Shard) {
        while self.len > 0 {
            let at = self.head;
            self.count(at, c, shard);
            self.head = (self.head + 1) % RING;
            self.len -= 1;
        }
    }

    #[inline]
    fn count(&mut self, at: usize, c: &mut IfaceDelta, shard: &mut Shard) {
        let a = &mut self.ahead[at];
        match a.skip {
            None => {
                let s = &mut a.summary;
                self.flows.classify_keyed(s, a.flow);
                count_ip(s, c);
                shard.record_probed(s, a.probe);
            }
            Some(e) => count_skip(e, c),
        }
    }
}

/// An IP packet's part in its interface's counters.
#[inline]
fn count_ip(s: &Summary, c: &mut IfaceDelta) {
    c.ip_packets += 1;
    c.ip_bytes += u64::from(s.l3_len);
    if s.tunnel_len > 0 {
        c.tunnel_packets += 1;
        c.tunnel_bytes += u64::from(s.tunnel_len);
    }
    if let Some(a) = s.anomaly {
        c.malformed[a.index()] += 1;
    }
}

/// A frame that was not counted as an IP packet, by why.
#[inline]
fn count_skip(e: Skip, c: &mut IfaceDelta) {
    match e {
        Skip::NonIp(k) => c.non_ip[k.index()] += 1,
        Skip::Malformed(m) => c.malformed[m.index()] += 1,
        Skip::Tunneled { tunnel_len, inner } => {
            c.tunnel_packets += 1;
            c.tunnel_bytes += u64::from(tunnel_len);
            match inner {
                TunnelSkip::NonIp(k) => c.non_ip[k.index()] += 1,
                TunnelSkip::Malformed(m) => c.malformed[m.index()] += 1,
            }
        }
    }
}

/// Counters of one interface, kept by a worker per ring and handed to the
/// aggregator as a delta every tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfaceDelta {
    pub ifindex: u32,
    /// Frames read from the ring.
    pub frames: u64,
    /// Their length on the wire.
    pub wire_bytes: u64,
    /// Frames that were IP packets and were counted.
    pub ip_packets: u64,
    /// Their layer-3 bytes.
    pub ip_bytes: u64,
    /// Frames this host sent, not counted because `direction = "ingress"`
    /// (only where the kernel lacks PACKET_IGNORE_OUTGOING).
    pub outgoing_skipped: u64,
    /// Non-IP frames by [`NonIp`] kind.
    pub non_ip: [u64; NonIp::COUNT],
    /// Problems by [`Malformed::index`]. Problems below the transport layer
    /// mean the frame was not counted; the others are noted on counted
    /// packets.
    pub malformed: [u64; Malformed::COUNT],
    /// Frames a ring block announced but its frame chain did not reach.
    pub ring_corrupt: u64,
    /// TCP super-packets GRO merged from several segments (Linux 6.3+ marks
    /// them): each stands for more packets, and more header bytes, than it
    /// is counted as.
    pub gso_frames: u64,
    /// Tunnel packets looked into (`capture.decapsulate`) and their
    /// layer-3 bytes: what the mirror session itself carried. The packets
    /// inside are counted as IP packets and bytes.
    pub tunnel_packets: u64,
    pub tunnel_bytes: u64,
    /// Kernel counters (PACKET_STATISTICS) since the previous delta.
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub kernel_freezes: u64,
}

impl IfaceDelta {
    pub fn new(ifindex: u32) -> Self {
        IfaceDelta {
            ifindex,
            frames: 0,
            wire_bytes: 0,
            ip_packets: 0,
            ip_bytes: 0,
            outgoing_skipped: 0,
            non_ip: [0; NonIp::COUNT],
            malformed: [0; Malformed::COUNT],
            ring_corrupt: 0,
            gso_frames: 0,
            tunnel_packets: 0,
            tunnel_bytes: 0,
            kernel_packets: 0,
            kernel_drops: 0,
            kernel_freezes: 0,
        }
    }

    /// Adds another delta of the same interface.
    pub fn add(&mut self, o: &IfaceDelta) {
        self.frames += o.frames;
        self.wire_bytes += o.wire_bytes;
        self.ip_packets += o.ip_packets;
        self.ip_bytes += o.ip_bytes;
        self.outgoing_skipped += o.outgoing_skipped;
        for (a, b) in self.non_ip.iter_mut().zip(o.non_ip) {
            *a += b;
        }
        for (a, b) in self.malformed.iter_mut().zip(o.malformed) {
            *a += b;
        }
        self.ring_corrupt += o.ring_corrupt;
        self.gso_frames += o.gso_frames;
        self.tunnel_packets += o.tunnel_packets;
        self.tunnel_bytes += o.tunnel_bytes;
        self.kernel_packets += o.kernel_packets;
        self.kernel_drops += o.kernel_drops;
        self.kernel_freezes += o.kernel_freezes;
    }

    /// Returns the counters and starts from zero.
    pub fn take(&mut self) -> IfaceDelta {
        std::mem::replace(self, IfaceDelta::new(self.ifindex))
    }

    /// Frames not counted as IP packets because they were broken.
    pub fn malformed_dropped(&self) -> u64 {
        self.frames - self.ip_packets - self.non_ip.iter().sum::<u64>() - self.outgoing_skipped
    }

    /// Parser problems as (name, count), non-zero ones only.
    pub fn malformed_by_reason(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.malformed
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .filter_map(|(i, &n)| Malformed::from_index(i).map(|m| (m.to_string(), n)))
    }
}

/// Totals for display, derived from accumulated deltas.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IfaceReport {
    pub frames: u64,
    pub wire_bytes: u64,
    pub ip_packets: u64,
    pub ip_bytes: u64,
    pub non_ip: std::collections::BTreeMap<&'static str, u64>,
    pub malformed: std::collections::BTreeMap<String, u64>,
    pub outgoing_skipped: u64,
    pub ring_corrupt: u64,
    pub gso_frames: u64,
    pub tunnel_packets: u64,
    pub tunnel_bytes: u64,
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub kernel_freezes: u64,
}

impl From<&IfaceDelta> for IfaceReport {
    fn from(d: &IfaceDelta) -> Self {
        IfaceReport {
            frames: d.frames,
            wire_bytes: d.wire_bytes,
            ip_packets: d.ip_packets,
            ip_bytes: d.ip_bytes,
            non_ip: NonIp::ALL
                .iter()
                .map(|k| (k.name(), d.non_ip[k.index()]))
                .collect(),
            malformed: d.malformed_by_reason().collect(),
            outgoing_skipped: d.outgoing_skipped,
            ring_corrupt: d.ring_corrupt,
            gso_frames: d.gso_frames,
            tunnel_packets: d.tunnel_packets,
            tunnel_bytes: d.tunnel_bytes,
            kernel_packets: d.kernel_packets,
            kernel_drops: d.kernel_drops,
            kernel_freezes: d.kernel_freezes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::{Hasher, ShardLimits};
    use crate::wire::testpkt::{eth, ipv4_tcp, ipv4_udp};
    use crate::wire::{Layer, Problem, ethertype};

    #[test]
    fn frames_counted_through_the_queue_are_counted_as_one_by_one() {
        // More frames than the queue holds, skips among them, a UDP
        // exchange whose reply is classified by its request, flushed
        // part way (as at the end of a block) and at the end.
        let mut frames = Vec::new();
        for i in 0..100u8 {
            let f = match i % 5 {
                0 => eth(ethertype::ARP, &[0; 28]),
                1 => eth(
                    ethertype::IPV4,
                    &ipv4_udp([10, 0, 0, i], [10, 0, 1, 1], 5000, 53, 10),
                ),
                2 => eth(
                    ethertype::IPV4,
                    &ipv4_udp([10, 0, 1, 1], [10, 0, 0, i - 1], 53, 5000, 30),
                ),
                3 => eth(
                    ethertype::IPV4,
                    &ipv4_tcp([10, 0, 0, i], [10, 0, 2, i], 40000, 22, 0x02),
                ),
                _ => eth(ethertype::IPV4, &[0x45, 0, 0]),
            };
            frames.push(f);
        }
        let limits = ShardLimits {
            max_hosts: 1000,
            max_pairs: 1000,
            max_ports: 1000,
            answers: true,
            rates: 0,
        };
        let hasher = Hasher::new();
        let meta = |f: &[u8]| Meta {
            wire_len: f.len() as u32,
            ..Meta::default()
        };
        let (mut one, mut queued) = (Shard::new(limits, &hasher), Shard::new(limits, &hasher));
        let (mut c1, mut c2) = (IfaceDelta::new(1), IfaceDelta::new(1));
        let mut flows = UdpFlows::new(crate::flows::SLOTS);
        let mut counter = Counter::new(UdpFlows::new(crate::flows::SLOTS));
        for (i, f) in frames.iter().enumerate() {
            let link = LinkType::Ethernet;
            count_frame(
                link,
                f,
                meta(f),
                &Decap::NONE,
                &mut c1,
                &mut one,
                &mut flows,
            );
            let got = counter.push_with(
                |s| wire::parse_into(link, f, meta(f), &Decap::NONE, s),
                &mut c2,
                &mut queued,
            );
            assert_eq!(got.is_some(), i % 5 != 0 && i % 5 != 4, "frame {i}");
            if i == 41 {
                counter.flush(&mut c2, &mut queued);
            }
        }
        counter.flush(&mut c2, &mut queued);
        assert_eq!(c1, c2);
        assert_eq!(one.hosts(), queued.hosts());
        let pairs = |s: &Shard| s.pairs().map(|(a, b, p)| (a, b, *p)).collect::<Vec<_>>();
        assert_eq!(pairs(&one), pairs(&queued));
        let contacts = |s: &Shard| s.contacts().collect::<Vec<_>>();
        assert_eq!(contacts(&one), contacts(&queued));
        assert_eq!(one.totals, queued.totals);
        assert_eq!(c2.ip_packets, 60);
    }

    #[test]
    fn add_and_take() {
        let mut a = IfaceDelta::new(3);
        a.frames = 10;
        a.ip_packets = 7;
        a.non_ip[NonIp::Arp.index()] = 2;
        a.malformed[Malformed::new(Layer::Ipv4, Problem::BadTotalLen).index()] = 1;
        let mut b = IfaceDelta::new(3);
        b.add(&a);
        b.add(&a);
        assert_eq!(b.frames, 20);
        assert_eq!(b.malformed_dropped(), 2);
        let taken = b.take();
        assert_eq!(taken.frames, 20);
        assert_eq!(b.frames, 0);
        assert_eq!(b.ifindex, 3);
        let r = IfaceReport::from(&taken);
        assert_eq!(r.malformed.get("ipv4_bad_total_len"), Some(&2));
        assert_eq!(r.non_ip.get("arp"), Some(&4));
    }
}
