//! Which UDP datagrams are answers. UDP has no handshake: a DNS server's
//! response looks like any datagram. A datagram B:p → A:q is taken as an
//! answer if A:q → B:p was seen shortly before (this tick or the last one);
//! otherwise it is an initiation. So a server answering many clients is not
//! taken for a scanner.
//!
//! Kept per worker, across its shards, in a direct-mapped table: one hash
//! and one memory access per datagram, even when a flood makes every
//! datagram a new flow. Two flows that land in the same slot push each
//! other out; a flow pushed out before its answer came makes the answer
//! count as an initiation (more scan alerts, never fewer). Pushed-out live
//! flows are counted.
//!
//! The default fanout hashes both directions of a flow to the same worker;
//! with `fanout = "cpu"` or `"lb"` the two directions may meet different
//! workers, and answers then count as initiations too.

use crate::shard::Hasher;
use crate::wire::{Addr, Role, Summary, proto};

/// A slot: 48 bits of the flow's fingerprint, the generation it was last
/// seen in, which side spoke first, and a valid bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot(u64);

impl Slot {
    const EMPTY: Slot = Slot(0);

    fn new(tag: u64, generation: u8, side: u8) -> Slot {
        Slot((tag << 16) | (u64::from(generation) << 8) | (u64::from(side) << 1) | 1)
    }
    fn valid(self) -> bool {
        self.0 & 1 != 0
    }
    fn tag(self) -> u64 {
        self.0 >> 16
    }
    fn generation(self) -> u8 {
        (self.0 >> 8) as u8
    }
    fn side(self) -> u8 {
        ((self.0 >> 1) & 1) as u8
    }
}

/// Slots of a worker's table: 128 KiB, small enough to stay in a core's
/// cache while ring data streams through it. A flow keeps its slot for
/// `SLOTS / new flows per second` seconds on average: 160 ms at 100 000 new
/// UDP flows a second per worker, far longer than an answer takes.
pub const SLOTS: usize = 1 << 14;

/// Generations between two visits of the sweep to any slot: well under the
/// 256 an 8-bit generation takes to wrap, so no slot lives long enough to
/// look fresh again.
const SWEEP_ROUND: usize = 128;

/// Recent UDP flows of one worker.
#[derive(Debug)]
pub struct UdpFlows {
    slots: Vec<Slot>,
    mask: usize,
    generation: u8,
    /// Where the sweep of forgotten slots goes on at the next rotation.
    sweep_at: usize,
    /// Keys of this worker's fingerprints, so that flows cannot be chosen
    /// from outside to push each other out.
    seed: (u64, u64),
    /// The previous datagram's flow and what it was: a burst of one flow is
    /// decided once.
    last: Option<(Addr, Addr, u16, u16, Role)>,
    /// Live flows pushed out of their slot by another, since the last
    /// [`UdpFlows::take_evicted`].
    evicted: u64,
}

impl UdpFlows {
    /// A table of `capacity` slots, rounded up to a power of two ([`SLOTS`]
    /// for workers). A flood of new flows pushes some out, which is
    /// counted.
    pub fn new(capacity: usize) -> UdpFlows {
        let n = capacity.max(64).next_power_of_two();
        let h = Hasher::new();
        UdpFlows {
            slots: vec![Slot::EMPTY; n],
            mask: n - 1,
            generation: 0,
            sweep_at: 0,
            seed: (h.hash_one(1u8), h.hash_one(2u8)),
            last: None,
            evicted: 0,
        }
    }

    /// A keyed 64-bit mix of both ends (a folded 128-bit multiply, as fast
    /// hashers do), the same for both directions.
    #[inline]
    fn fingerprint(&self, lo: (Addr, u16), hi: (Addr, u16)) -> u64 {
        let fold = |a: u128| (a as u64) ^ ((a >> 64) as u64).rotate_left(23);
        let x = fold(lo.0.0) ^ (u64::from(lo.1) << 40) ^ self.seed.0;
        let y = fold(hi.0.0) ^ u64::from(hi.1) ^ self.seed.1;
        let m = u128::from(x).wrapping_mul(u128::from(y | 1));
        let z = (m as u64) ^ ((m >> 64) as u64);
        let m2 = u128::from(z ^ x.rotate_left(31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (m2 as u64) ^ ((m2 >> 64) as u64)
    }

    /// The fingerprint and side of a UDP datagram's flow (`None` for other
    /// packets): what [`UdpFlows::classify_keyed`] takes, worked out ahead
    /// of it so that its slot can be fetched first ([`UdpFlows::prefetch`]).
    #[inline]
    pub fn key(&self, s: &Summary) -> Option<(u64, u8)> {
        if s.proto != proto::UDP || !s.has_ports {
            return None;
        }
        let from = (s.src, s.src_port);
        let to = (s.dst, s.dst_port);
        let (lo, hi, side) = if from <= to {
            (from, to, 0)
        } else {
            (to, from, 1)
        };
        Some((self.fingerprint(lo, hi), side))
    }

    /// Starts loading the slot of a flow's fingerprint.
    #[inline]
    pub fn prefetch(&self, fp: u64) {
        tpacket::prefetch(&self.slots[fp as usize & self.mask]);
    }

    /// Marks a UDP datagram as an answer or an initiation.
    #[inline]
    pub fn classify(&mut self, s: &mut Summary) {
        if self.same_as_last(s) {
            return;
        }
        let key = self.key(s);
        self.classify_keyed(s, key);
    }

    /// True (and `s` marked) if `s` is of the previous datagram's flow: a
    /// burst of one flow is decided once, without hashing.
    #[inline]
    fn same_as_last(&self, s: &mut Summary) -> bool {
        if s.proto != proto::UDP || !s.has_ports {
            return false;
        }
        match self.last {
            Some((src, dst, sp, dp, role))
                if src == s.src && dst == s.dst && sp == s.src_port && dp == s.dst_port =>
            {
                s.role = role;
                true
            }
            _ => false,
        }
    }

    /// [`UdpFlows::classify`] with the datagram's [`UdpFlows::key`].
    #[inline]
    pub fn classify_keyed(&mut self, s: &mut Summary, key: Option<(u64, u8)>) {
        let Some((fp, side)) = key else {
            return;
        };
        if self.same_as_last(s) {
            return;
        }
        let i = fp as usize & self.mask;
        let tag = fp >> 16;
        let slot = self.slots[i];
        let live = slot.valid() && self.generation.wrapping_sub(slot.generation()) <= 1;
        s.role = if live && slot.tag() == tag {
            self.slots[i] = Slot::new(tag, self.generation, slot.side());
            if slot.side() == side {
                Role::Initiation
            } else {
                Role::Reply
            }
        } else {
            if live {
                self.evicted += 1;
            }
            self.slots[i] = Slot::new(tag, self.generation, side);
            Role::Initiation
        };
        self.last = Some((s.src, s.dst, s.src_port, s.dst_port, s.role));
    }

    /// Starts a new generation (once per tick); flows not seen in this one
    /// or the one before are forgotten. A slice of the table is swept of
    /// such flows each time, so that every slot is visited every
    /// [`SWEEP_ROUND`] generations: the generation is 8 bits, and a slot
    /// left alone for 256 of them would read as seen in this one.
    pub fn rotate(&mut self) {
        self.last = None;
        self.generation = self.generation.wrapping_add(1);
        let n = self.slots.len();
        let step = n.div_ceil(SWEEP_ROUND);
        for i in self.sweep_at..(self.sweep_at + step).min(n) {
            let s = self.slots[i];
            if s.valid() && self.generation.wrapping_sub(s.generation()) > 1 {
                self.slots[i] = Slot::EMPTY;
            }
        }
        self.sweep_at = if self.sweep_at + step >= n {
            0
        } else {
            self.sweep_at + step
        };
    }

    /// Live flows pushed out of their slot since the last call.
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dgram(src: u8, sport: u16, dst: u8, dport: u16) -> Summary {
        Summary {
            src: Addr::from_v4([10, 0, 0, src]),
            dst: Addr::from_v4([10, 0, 0, dst]),
            proto: proto::UDP,
            src_port: sport,
            dst_port: dport,
            has_ports: true,
            role: Role::Initiation,
            ..Summary::default()
        }
    }

    fn role(f: &mut UdpFlows, d: Summary) -> Role {
        let mut d = d;
        f.classify(&mut d);
        d.role
    }

    #[test]
    fn a_response_is_an_answer_a_query_an_initiation() {
        let mut f = UdpFlows::new(100);
        assert_eq!(role(&mut f, dgram(1, 5353, 2, 53)), Role::Initiation);
        assert_eq!(role(&mut f, dgram(2, 53, 1, 5353)), Role::Reply);
        // More queries of the same flow stay initiations.
        assert_eq!(role(&mut f, dgram(1, 5353, 2, 53)), Role::Initiation);
        // Another client's query to the same server is an initiation.
        assert_eq!(role(&mut f, dgram(3, 5353, 2, 53)), Role::Initiation);
    }

    #[test]
    fn answers_a_tick_later_still_count_two_ticks_not() {
        let mut f = UdpFlows::new(100);
        role(&mut f, dgram(1, 1000, 2, 53));
        f.rotate();
        assert_eq!(role(&mut f, dgram(2, 53, 1, 1000)), Role::Reply);
        f.rotate();
        f.rotate();
        assert_eq!(role(&mut f, dgram(2, 53, 1, 1000)), Role::Initiation);
    }

    /// Regression (issue 10, item 8): a slot idle for 256 ticks looked live
    /// again when the 8-bit generation wrapped.
    #[test]
    fn a_flow_idle_for_a_full_generation_wrap_is_forgotten() {
        for idle in [254u32, 255, 256, 257, 511, 512, 1000] {
            let mut f = UdpFlows::new(SLOTS);
            role(&mut f, dgram(1, 1000, 2, 53));
            for _ in 0..idle {
                f.rotate();
            }
            assert_eq!(
                role(&mut f, dgram(2, 53, 1, 1000)),
                Role::Initiation,
                "an answer {idle} ticks late"
            );
        }
    }

    #[test]
    fn a_flood_pushes_flows_out_and_counts_it() {
        let mut f = UdpFlows::new(SLOTS);
        for p in 0..200_000u32 {
            let mut d = dgram(1, (p % 60_000) as u16, (p / 60_000) as u8 + 2, 53);
            f.classify(&mut d);
        }
        let evicted = f.take_evicted();
        assert!(evicted > 0);
        assert_eq!(f.take_evicted(), 0, "taken");
        assert_eq!(f.slots.len(), SLOTS, "a fixed table");
    }

    #[test]
    fn other_protocols_are_left_alone() {
        let mut f = UdpFlows::new(10);
        let mut t = dgram(1, 1, 2, 2);
        t.proto = proto::TCP;
        t.role = Role::Other;
        f.classify(&mut t);
        assert_eq!(t.role, Role::Other);
    }
}
