//! The first half of a replay: parse and count every packet into a shard
//! (the same `count_frame` a capture worker calls) and seal the shard when
//! a packet's timestamp crosses into a later tick. The second half
//! ([`super::player::Player`]) merges the sealed shards, detects and
//! announces; the two can run on two threads, a shard per tick between
//! them, as a capture worker and the aggregator do live.
//!
//! Ticks are counted from the first packet. A packet older than the tick
//! being filled (files merged out of order) is counted in that tick, and
//! counted as out of order.

use crate::config::{Config, ScanCount};
use crate::counters::{IfaceDelta, count_frame};
use crate::flows::{SLOTS, UdpFlows};
use crate::shard::{Hasher, Shard, ShardLimits};
use crate::wire::{Decap, Meta};

use super::reader::Packet;

/// A tick's shard, sealed, with where the tick is in capture time.
#[derive(Debug)]
pub struct Sealed {
    pub shard: Shard,
    /// Ticks since the first packet's.
    pub tick: u64,
    /// The tick's end in capture time (ns since the epoch; `u64::MAX` for
    /// the last tick there can be).
    pub end_ns: u64,
}

/// Where the counter's output goes, in order: the interfaces it names and
/// the ticks it seals.
pub trait Downstream {
    /// An input interface was named.
    fn iface(&mut self, ifindex: u32, name: &str, link: &str);
    /// A tick was sealed in `shard`, which is left empty to fill next: the
    /// same shard recycled, or another. Fails if nothing takes ticks any
    /// more (the other half stopped).
    fn tick(&mut self, shard: &mut Shard, tick: u64, end_ns: u64) -> Result<(), Stopped>;
}

/// Downstream stopped taking ticks: the other half of the replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Parses and counts packets into per-tick shards.
#[derive(Debug)]
pub struct Counter {
    shard: Shard,
    limits: ShardLimits,
    flows: UdpFlows,
    /// Tunnels looked into (`capture.decapsulate`).
    decap: Decap,
    /// Counters per (file, interface), by ifindex − 1.
    ifaces: Vec<IfaceDelta>,
    tick_ns: u64,
    /// Time of the first packet: the start of tick 0.
    t0: Option<u64>,
    tick: u64,
    /// Where the current tick ends.
    tick_end_ns: u64,
    pub out_of_order: u64,
}

impl Counter {
    pub fn new(config: &Config) -> Counter {
        let limits = ShardLimits {
            max_hosts: config.traffic.max_hosts,
            max_pairs: config.traffic.max_pairs,
            max_ports: config.traffic.max_pairs,
            answers: config.scan.count == ScanCount::Failed,
            rates: config.rates.dirs(&config.rules),
        };
        Counter {
            shard: Shard::new(limits, &Hasher::new()),
            limits,
            flows: UdpFlows::new(SLOTS),
            decap: config.capture.decap_default(),
            ifaces: Vec::new(),
            tick_ns: config.tick().as_nanos().max(1) as u64,
            t0: None,
            tick: 0,
            tick_end_ns: 0,
            out_of_order: 0,
        }
    }

    /// The bounds of this replay's shards.
    pub fn limits(&self) -> ShardLimits {
        self.limits
    }

    /// Names an input interface; returns its index for [`Counter::packet`].
    pub fn add_iface(&mut self, name: &str, link: &str, down: &mut dyn Downstream) -> u32 {
        let ifindex = self.ifaces.len() as u32 + 1;
        self.ifaces.push(IfaceDelta::new(ifindex));
        down.iface(ifindex, name, link);
        ifindex
    }

    /// Counts one packet read from interface `ifindex`; seals the tick
    /// being filled first if the packet is past its end.
    #[inline]
    pub fn packet(
        &mut self,
        p: &Packet<'_>,
        ifindex: u32,
        down: &mut dyn Downstream,
    ) -> Result<(), Stopped> {
        if p.ts_ns >= self.tick_end_ns {
            self.advance(p.ts_ns, down)?;
        } else if p.ts_ns + self.tick_ns < self.tick_end_ns {
            self.out_of_order += 1;
        }
        let Some(c) = self.ifaces.get_mut(ifindex as usize - 1) else {
            return Ok(());
        };
        c.frames += 1;
        c.wire_bytes += u64::from(p.wire_len);
        let meta = Meta {
            wire_len: p.wire_len,
            ..Meta::default()
        };
        count_frame(
            p.link,
            p.data,
            meta,
            &self.decap,
            c,
            &mut self.shard,
            &mut self.flows,
        );
        Ok(())
    }

    /// Seals the tick being filled and moves to the one holding `ts_ns`.
    /// The empty ticks between are the other half's to close or skip.
    fn advance(&mut self, ts_ns: u64, down: &mut dyn Downstream) -> Result<(), Stopped> {
        let t0 = *self.t0.get_or_insert(ts_ns - ts_ns % self.tick_ns);
        if self.tick_end_ns == 0 {
            self.tick_end_ns = t0.saturating_add(self.tick_ns);
            if ts_ns < self.tick_end_ns {
                return Ok(());
            }
        }
        // The last tick ends at the end of time: a timestamp there (a
        // damaged pcapng's) falls in it.
        if self.tick_end_ns == u64::MAX {
            return Ok(());
        }
        let next = self.tick + (ts_ns - self.tick_end_ns) / self.tick_ns + 1;
        self.seal();
        down.tick(&mut self.shard, self.tick, self.tick_end_ns)?;
        let ticks = next - self.tick;
        self.tick_end_ns = self
            .tick_end_ns
            .saturating_add(ticks.saturating_mul(self.tick_ns));
        self.tick = next;
        // A flow unseen in this generation and the one before is forgotten:
        // more than two rotations would forget nothing more.
        for _ in 0..ticks.min(2) {
            self.flows.rotate();
        }
        Ok(())
    }

    /// Seals the tick being filled, with the interfaces' counts.
    fn seal(&mut self) {
        let shard = &mut self.shard;
        shard.first_tick = self.tick;
        shard.last_tick = self.tick;
        for c in &mut self.ifaces {
            shard.add_iface(c.take());
        }
        shard.udp_evicted += self.flows.take_evicted();
        shard.seal();
    }

    /// The tick being filled when the input ends, sealed; none if there was
    /// no packet.
    pub fn finish(mut self) -> Option<Sealed> {
        self.t0?;
        self.seal();
        Some(Sealed {
            shard: self.shard,
            tick: self.tick,
            end_ns: self.tick_end_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::reader::tests::frame;
    use crate::shard::role_bits;
    use crate::wire::{Addr, LinkType};

    /// Keeps the role bits of every pair of every sealed tick.
    #[derive(Default)]
    struct Roles(Vec<(Addr, Addr, u8)>);

    impl Roles {
        fn keep(&mut self, shard: &Shard) {
            self.0
                .extend(shard.pairs().map(|(s, d, p)| (s, d, p.roles)));
        }
    }

    impl Downstream for Roles {
        fn iface(&mut self, _: u32, _: &str, _: &str) {}

        fn tick(&mut self, shard: &mut Shard, _: u64, _: u64) -> Result<(), Stopped> {
            self.keep(shard);
            shard.recycle();
            Ok(())
        }
    }

    /// The roles of a UDP request at 1.5 ticks and its reply `later` ns
    /// after it.
    fn reply_roles(later: u64) -> u8 {
        let config = Config::default();
        let tick_ns = config.tick().as_nanos() as u64;
        let mut c = Counter::new(&config);
        let mut down = Roles::default();
        let i = c.add_iface("test", "ethernet", &mut down);
        let ask = frame([10, 0, 0, 1], 100);
        let mut reply = ask.clone();
        reply[26..30].copy_from_slice(&[10, 9, 9, 9]);
        reply[30..34].copy_from_slice(&[10, 0, 0, 1]);
        reply[34..38].copy_from_slice(&[ask[36], ask[37], ask[34], ask[35]]);
        let t = tick_ns + tick_ns / 2;
        for (ts_ns, f) in [(t, &ask), (t + later, &reply)] {
            let p = Packet {
                ts_ns,
                link: LinkType::Ethernet,
                iface: 0,
                data: f,
                wire_len: f.len() as u32,
            };
            c.packet(&p, i, &mut down).unwrap();
        }
        let last = c.finish().unwrap();
        down.keep(&last.shard);
        let back = (Addr::from_v4([10, 9, 9, 9]), Addr::from_v4([10, 0, 0, 1]));
        let roles = down.0.iter().find(|(s, d, _)| (*s, *d) == back);
        roles.expect("the reply's pair").2
    }

    /// A UDP flow is remembered for the tick it was seen in and the next,
    /// as live where flows age once a tick: across a gap of more ticks the
    /// reply is a datagram of its own, however many ticks the other half
    /// closes or jumps over in the gap.
    #[test]
    fn udp_flows_age_with_the_ticks_a_gap_spans() {
        let tick_ns = Config::default().tick().as_nanos() as u64;
        assert_eq!(reply_roles(tick_ns), role_bits::REPLY);
        assert_eq!(reply_roles(3 * tick_ns), role_bits::INITIATION);
        assert_eq!(reply_roles(100_000 * tick_ns), role_bits::INITIATION);
    }
}
