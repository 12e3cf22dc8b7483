//! The live pipeline on the packets' own clock: parse and count into a
//! shard (the same `count_frame` a capture worker calls), hand the shard to
//! the aggregator when a packet's timestamp crosses into the next tick,
//! detect, announce. One thread: a replay is limited by one core's parse
//! and count speed, not by hand-overs.
//!
//! Ticks are counted from the first packet. Empty ticks between packets
//! are closed one by one, so windows slide and alerts close exactly as they
//! would have live. A packet older than the tick being filled (files merged
//! out of order) is counted in that tick, and counted as out of order.

use crate::aggregator::{Aggregator, RuntimeInfo, TickHealth};
use crate::alert::AlertEvent;
use crate::config::{Config, ScanCount};
use crate::counters::{IfaceDelta, count_frame};
use crate::flows::{SLOTS, UdpFlows};
use crate::shard::{Hasher, Shard, ShardLimits};
use crate::snapshot::Snapshot;
use crate::wire::{Decap, Meta};

use super::reader::Packet;
use super::totals::WholeTotals;

/// Fingerprint keys of every replay.
const REPLAY_SEED: u64 = 0x7472_6166_6669_6361;

/// Called with every tick's alerts opened or closed, and its snapshot when
/// one is built (each tick with `snapshots`, else only the last).
pub type OnTick<'a> = dyn FnMut(Option<Snapshot>, Vec<AlertEvent>) + 'a;

/// The pipeline of one replay.
pub struct Player<'a> {
    agg: Aggregator,
    shard: Shard,
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
    /// Ticks closed one by one, and ticks jumped over because nothing was
    /// left to expire in them (a gap in the capture's time).
    pub ticks_closed: u64,
    pub ticks_skipped: u64,
    pub totals: WholeTotals,
    /// Build a snapshot every tick (someone watches the API), or only at
    /// the end.
    snapshots: bool,
    on_tick: Box<OnTick<'a>>,
}

impl std::fmt::Debug for Player<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("tick", &self.tick)
            .field("t0", &self.t0)
            .field("ifaces", &self.ifaces.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Player<'a> {
    pub fn new(
        config: &Config,
        runtime: RuntimeInfo,
        snapshots: bool,
        on_tick: Box<OnTick<'a>>,
    ) -> Player<'a> {
        let limits = ShardLimits {
            max_hosts: config.traffic.max_hosts,
            max_pairs: config.traffic.max_pairs,
            max_ports: config.traffic.max_pairs,
            answers: config.scan.count == ScanCount::Failed,
            rates: config.rates.dirs(&config.rules),
        };
        let mut agg = Aggregator::new(config, runtime);
        // The whole capture's totals follow hosts by their slots.
        agg.log_frees();
        // The same file, the same figures.
        agg.fix_fingerprints(REPLAY_SEED);
        if !snapshots {
            // Listed once, at the end.
            agg.defer_ranking();
        }
        Player {
            agg,
            shard: Shard::new(limits, &Hasher::new()),
            flows: UdpFlows::new(SLOTS),
            decap: config.capture.decap_default(),
            ifaces: Vec::new(),
            tick_ns: config.tick().as_nanos().max(1) as u64,
            t0: None,
            tick: 0,
            tick_end_ns: 0,
            out_of_order: 0,
            ticks_closed: 0,
            ticks_skipped: 0,
            totals: WholeTotals::new(config.traffic.max_hosts, config.traffic.max_pairs),
            snapshots,
            on_tick,
        }
    }

    /// Names an input interface; returns its index for [`Player::packet`].
    pub fn add_iface(&mut self, name: &str, link: &str) -> u32 {
        let ifindex = self.ifaces.len() as u32 + 1;
        self.ifaces.push(IfaceDelta::new(ifindex));
        self.agg.iface_added(ifindex, name, link);
        ifindex
    }

    /// Counts one packet read from interface `ifindex`.
    #[inline]
    pub fn packet(&mut self, p: &Packet<'_>, ifindex: u32) {
        if p.ts_ns >= self.tick_end_ns {
            self.advance(p.ts_ns);
        } else if p.ts_ns + self.tick_ns < self.tick_end_ns {
            self.out_of_order += 1;
        }
        let Some(c) = self.ifaces.get_mut(ifindex as usize - 1) else {
            return;
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
    }

    /// Closes ticks until the one holding `ts_ns`.
    fn advance(&mut self, ts_ns: u64) {
        let t0 = *self.t0.get_or_insert(ts_ns - ts_ns % self.tick_ns);
        if self.tick_end_ns == 0 {
            self.tick_end_ns = t0.saturating_add(self.tick_ns);
            if ts_ns < self.tick_end_ns {
                return;
            }
        }
        // The last tick ends at the end of time: a timestamp there (a
        // damaged pcapng's) falls in it.
        while ts_ns >= self.tick_end_ns && self.tick_end_ns != u64::MAX {
            self.close_tick(self.snapshots);
            if ts_ns < self.tick_end_ns {
                break;
            }
            // No packet until the one at `ts_ns`: the empty ticks before it
            // change nothing but where something is due (a window slides,
            // counts expire, an alert's hold-down ends). Jump to the next of
            // those, or to the packet's tick: a gap of years costs what
            // expires in it, not its length.
            let packet_tick = self.tick + (ts_ns - self.tick_end_ns) / self.tick_ns + 1;
            let to = self
                .agg
                .next_due(self.tick.saturating_sub(1))
                .map_or(packet_tick, |d| d.min(packet_tick))
                .max(self.tick);
            let skip = to - self.tick;
            if skip > 0 {
                self.tick = to;
                self.tick_end_ns = self
                    .tick_end_ns
                    .saturating_add(skip.saturating_mul(self.tick_ns));
                self.ticks_skipped += skip;
            }
        }
    }

    /// Hands the shard to the aggregator and closes the current tick.
    fn close_tick(&mut self, snapshot: bool) {
        self.shard.first_tick = self.tick;
        self.shard.last_tick = self.tick;
        for c in &mut self.ifaces {
            self.shard.add_iface(c.take());
        }
        self.shard.udp_evicted += self.flows.take_evicted();
        self.shard.seal();
        self.agg.merge(&self.shard);
        self.totals.add(&self.shard, &self.agg);
        self.shard.recycle();
        self.flows.rotate();
        let unix_ms = self.tick_end_ns / 1_000_000;
        if snapshot {
            let (snap, events) = self.agg.end_tick(self.tick, TickHealth::default(), unix_ms);
            (self.on_tick)(Some(snap), events);
        } else {
            let events = self
                .agg
                .end_tick_quiet(self.tick, TickHealth::default(), unix_ms);
            (self.on_tick)(None, events);
        }
        self.totals.take_freed(&mut self.agg);
        self.tick += 1;
        self.tick_end_ns = self.tick_end_ns.saturating_add(self.tick_ns);
        self.ticks_closed += 1;
    }

    /// Closes the last tick (partly filled) and returns how many ticks the
    /// replay spanned.
    pub fn finish(mut self) -> (u64, WholeTotals, u64) {
        if self.t0.is_some() {
            self.close_tick(true);
        }
        self.totals.finish(&self.agg);
        (self.tick, self.totals, self.out_of_order)
    }

    /// The capture time of the start of tick 0 (ns since the epoch).
    pub fn start_ns(&self) -> Option<u64> {
        self.t0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::reader::tests::frame;
    use crate::replay::totals::HostTotal;
    use crate::wire::{Addr, LinkType};

    fn play(times_ns: &[u64]) -> Player<'static> {
        let config = Config::default();
        let mut p = Player::new(&config, RuntimeInfo::default(), false, Box::new(|_, _| {}));
        let i = p.add_iface("test", "ethernet");
        let f = frame([10, 0, 0, 1], 100);
        for &ts_ns in times_ns {
            p.packet(
                &Packet {
                    ts_ns,
                    link: LinkType::Ethernet,
                    iface: 0,
                    data: &f,
                    wire_len: f.len() as u32,
                },
                i,
            );
        }
        p
    }

    /// Regression (issue 10, item 9; issue 11, item 3): two packets years
    /// apart closed every empty tick between them one by one (273 s for
    /// 42.7 years). Work is counted, not timed: a gap of 40 years costs what
    /// a gap of a quarter of an hour with the same expiries costs.
    #[test]
    fn a_gap_of_years_costs_what_a_gap_of_minutes_costs() {
        let year = 365 * 24 * 3600 * 1_000_000_000u64;
        let t0 = 10_000_000_000;
        let long = play(&[t0, t0 + 40 * year]);
        let short = play(&[t0, t0 + 900 * 1_000_000_000]);
        assert_eq!(long.ticks_closed, short.ticks_closed);
        assert_eq!(long.agg.work().hosts_due, short.agg.work().hosts_due);
        assert_eq!(
            long.agg.work().hosts_evaluated,
            short.agg.work().hosts_evaluated
        );
        // The ticks closed are those where something was due: the first
        // packet's tick, its window's bucket sliding out, its counts
        // expiring; not the 900 empty ones.
        assert!(long.ticks_closed <= 5, "{} ticks closed", long.ticks_closed);
        assert_eq!(long.ticks_closed + long.ticks_skipped, long.tick);
        let (ticks, totals, _) = long.finish();
        assert_eq!(ticks, 40 * 365 * 24 * 3600 + 1);
        assert_eq!(totals.hosts().count(), 2);
    }

    /// The whole capture's totals follow a tracked host by its slot and
    /// take it into their map when it is freed: hosts that come back after
    /// being freed add up across their lives, and the bound keeps the first
    /// hosts seen, whether or not the aggregator had room for them.
    #[test]
    fn totals_add_up_across_a_hosts_lives_within_the_bound() {
        for aggregators in [1, 2] {
            let text =
                format!("[capture]\naggregators = {aggregators}\n[traffic]\nmax_hosts = 6\n");
            let config = Config::parse(&text, "test").unwrap();
            let mut p = Player::new(&config, RuntimeInfo::default(), false, Box::new(|_, _| {}));
            let i = p.add_iface("test", "ethernet");
            let second = 1_000_000_000u64;
            let send = |p: &mut Player<'_>, k: u8, ts_ns: u64| {
                let f = frame([10, 0, 0, k], 100);
                let packet = Packet {
                    ts_ns,
                    link: LinkType::Ethernet,
                    iface: 0,
                    data: &f,
                    wire_len: f.len() as u32,
                };
                p.packet(&packet, i);
            };
            // Twelve sources, one a second, to one destination; then
            // again when every one of them has been freed.
            for k in 1..=12 {
                send(&mut p, k, u64::from(k) * second);
            }
            let later = 5_000 * second;
            send(&mut p, 12, later);
            assert!(
                p.agg.host_count() <= 2,
                "{aggregators} partitions: {} hosts still tracked",
                p.agg.host_count()
            );
            for k in 1..=12 {
                send(&mut p, k, later + u64::from(k) * second);
            }
            let (_, totals, _) = p.finish();
            let mut hosts: Vec<(Addr, HostTotal)> = totals.hosts().map(|(a, t)| (a, *t)).collect();
            hosts.sort_unstable_by_key(|(a, _)| a.0);
            // The destination and the first five sources.
            let kept: Vec<Addr> = hosts.iter().map(|(a, _)| *a).collect();
            let mut want: Vec<Addr> = (1..=5).map(|k| Addr::from_v4([10, 0, 0, k])).collect();
            want.push(Addr::from_v4([10, 9, 9, 9]));
            want.sort_unstable_by_key(|a| a.0);
            assert_eq!(kept, want, "{aggregators} partitions");
            let one = hosts[0].1.sent_bytes / 2;
            for (a, t) in &hosts {
                if *a == Addr::from_v4([10, 9, 9, 9]) {
                    assert_eq!((t.recv_packets, t.recv_bytes), (25, 25 * one));
                } else {
                    assert_eq!((t.sent_packets, t.sent_bytes), (2, 2 * one), "{a:?}");
                }
            }
            // Sources 6 to 12, over both lives (12 three times).
            assert_eq!(
                totals.untracked_host_bytes,
                15 * one,
                "{aggregators} partitions"
            );
        }
    }

    /// A scan's estimated size depends on how destinations are
    /// fingerprinted: with random keys, the same file gave different
    /// figures from one replay to the next.
    #[test]
    fn the_same_scan_replayed_twice_gives_the_same_figures() {
        let run = || {
            let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let seen = events.clone();
            let config = Config::default();
            let mut p = Player::new(
                &config,
                RuntimeInfo::default(),
                false,
                Box::new(move |_, ev: Vec<AlertEvent>| seen.borrow_mut().extend(ev)),
            );
            let i = p.add_iface("test", "ethernet");
            let mut f = frame([10, 0, 0, 1], 100);
            for k in 0..600u32 {
                // Destination 10.20.x.y, at offset 30 of the frame.
                f[30..34].copy_from_slice(&(0x0a14_0000 + k).to_be_bytes());
                let packet = Packet {
                    ts_ns: 1_000_000_000 + u64::from(k) * 1_000_000,
                    link: LinkType::Ethernet,
                    iface: 0,
                    data: &f,
                    wire_len: f.len() as u32,
                };
                p.packet(&packet, i);
            }
            p.finish();
            let v: Vec<(u64, Option<u64>)> = events
                .borrow()
                .iter()
                .filter(|e| e.alert.kind == crate::alert::AlertKind::AddressScan)
                .map(|e| (e.alert.value, e.alert.evidence.contacted))
                .collect();
            v
        };
        let first = run();
        assert!(!first.is_empty(), "no address scan alert");
        let estimate = first[0].1.expect("a scan's estimated size");
        assert!(
            (540..=660).contains(&estimate),
            "600 addresses estimated as {estimate}"
        );
        for _ in 0..3 {
            assert_eq!(run(), first);
        }
    }

    #[test]
    fn a_timestamp_at_the_end_of_time_does_not_hang() {
        let p = play(&[1_000_000_000, u64::MAX - 3, u64::MAX]);
        assert!(p.ticks_closed <= 10, "{} ticks closed", p.ticks_closed);
    }
}
