//! The second half of a replay: merge each tick's sealed shard (from
//! [`super::counter::Counter`]) into the aggregator, detect, announce.
//!
//! Empty ticks between two sealed ones are closed one by one where
//! something is due in them (a window slides, counts expire, an alert's
//! hold-down ends), so windows slide and alerts close exactly as they would
//! have live; the others are jumped over, so a gap of years costs what
//! expires in it, not its length.

use crate::aggregator::{Aggregator, RuntimeInfo, TickHealth};
use crate::alert::AlertEvent;
use crate::config::Config;
use crate::shard::{Hasher, Shard, ShardLimits};
use crate::snapshot::Snapshot;

use super::counter::{Downstream, Sealed, Stopped};
use super::totals::{Ledger, WholeTotals};

/// Fingerprint keys of every replay.
const REPLAY_SEED: u64 = 0x7472_6166_6669_6361;

/// Called with every tick's alerts opened or closed, and its snapshot when
/// one is built (each tick with `snapshots`, else only the last).
pub type OnTick<'a> = dyn FnMut(Option<Snapshot>, Vec<AlertEvent>) + 'a;

/// The aggregating half of one replay.
pub struct Player<'a> {
    agg: Aggregator,
    /// Merged for the empty ticks closed between two sealed ones (out of
    /// its place while it is merged).
    empty: Option<Shard>,
    tick_ns: u64,
    /// The next tick to close, and where it ends (0 before the first).
    tick: u64,
    tick_end_ns: u64,
    /// Ticks closed one by one, and ticks jumped over because nothing was
    /// left to expire in them (a gap in the capture's time).
    pub ticks_closed: u64,
    pub ticks_skipped: u64,
    /// Build a snapshot every tick (someone watches the API), or only at
    /// the end.
    snapshots: bool,
    on_tick: Box<OnTick<'a>>,
}

impl std::fmt::Debug for Player<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("tick", &self.tick)
            .field("ticks_closed", &self.ticks_closed)
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
            empty: Some(no_packets()),
            tick_ns: config.tick().as_nanos().max(1) as u64,
            tick: 0,
            tick_end_ns: 0,
            ticks_closed: 0,
            ticks_skipped: 0,
            snapshots,
            on_tick,
        }
    }

    /// An input interface was named.
    pub fn iface(&mut self, ifindex: u32, name: &str, link: &str) {
        self.agg.iface_added(ifindex, name, link);
    }

    /// Closes the empty ticks before `tick` where something is due, then
    /// `tick` with `shard` (left as it was merged: the caller adds it to
    /// the totals as `ledger` says, and recycles it).
    pub fn close(
        &mut self,
        shard: &mut Shard,
        tick: u64,
        end_ns: u64,
        last: bool,
        ledger: &mut Ledger,
    ) {
        ledger.clear();
        if self.tick_end_ns == 0 {
            // The first tick: where the ticks start.
            self.tick = tick;
            self.tick_end_ns = end_ns;
        }
        while self.tick < tick {
            let to = self
                .agg
                .next_due(self.tick.saturating_sub(1))
                .map_or(tick, |d| d.min(tick))
                .max(self.tick);
            let skip = to - self.tick;
            if skip > 0 {
                self.tick = to;
                self.tick_end_ns = self
                    .tick_end_ns
                    .saturating_add(skip.saturating_mul(self.tick_ns));
                self.ticks_skipped += skip;
            }
            if to == tick {
                break;
            }
            let mut empty = self.empty.take().unwrap_or_else(no_packets);
            self.close_one(&mut empty, self.snapshots, ledger, false);
            self.empty = Some(empty);
        }
        debug_assert_eq!(self.tick_end_ns, end_ns, "tick {tick}'s end");
        self.close_one(shard, last || self.snapshots, ledger, true);
    }

    /// Merges `shard` into the aggregator and closes the current tick;
    /// notes in `ledger` where the shard's hosts went if it is the `sealed`
    /// one, and the hosts freed.
    fn close_one(&mut self, shard: &mut Shard, snapshot: bool, ledger: &mut Ledger, sealed: bool) {
        shard.first_tick = self.tick;
        shard.last_tick = self.tick;
        self.agg.merge(shard);
        if sealed {
            ledger.merged(shard, &self.agg);
        }
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
        ledger.freed(&mut self.agg);
        self.tick += 1;
        self.tick_end_ns = self.tick_end_ns.saturating_add(self.tick_ns);
        self.ticks_closed += 1;
    }

    /// Returns how many ticks the replay spanned, with `totals` (whose
    /// adds are all made) finished.
    pub fn finish(self, totals: &mut WholeTotals) -> u64 {
        totals.finish(&self.agg);
        self.tick
    }
}

/// A shard for ticks without packets: it holds nothing and never will.
fn no_packets() -> Shard {
    let none = ShardLimits {
        max_hosts: 0,
        max_pairs: 0,
        max_ports: 0,
        answers: false,
        rates: 0,
    };
    Shard::new(none, &Hasher::new())
}

/// Both halves on one thread: each sealed tick is closed at once, in its
/// own shard, and added to the totals.
#[derive(Debug)]
pub struct OneThread<'x, 'a> {
    player: &'x mut Player<'a>,
    totals: &'x mut WholeTotals,
    ledger: Ledger,
}

impl<'x, 'a> OneThread<'x, 'a> {
    pub fn new(player: &'x mut Player<'a>, totals: &'x mut WholeTotals) -> OneThread<'x, 'a> {
        OneThread {
            player,
            totals,
            ledger: Ledger::default(),
        }
    }

    fn close(&mut self, shard: &mut Shard, tick: u64, end_ns: u64, last: bool) {
        self.player
            .close(shard, tick, end_ns, last, &mut self.ledger);
        self.totals.add(shard, &self.ledger);
    }

    /// Closes the last tick (partly filled), if there was a packet.
    pub fn last(&mut self, last: Option<Sealed>) {
        if let Some(mut s) = last {
            self.close(&mut s.shard, s.tick, s.end_ns, true);
        }
    }
}

impl Downstream for OneThread<'_, '_> {
    fn iface(&mut self, ifindex: u32, name: &str, link: &str) {
        self.player.iface(ifindex, name, link);
    }

    fn tick(&mut self, shard: &mut Shard, tick: u64, end_ns: u64) -> Result<(), Stopped> {
        self.close(shard, tick, end_ns, false);
        shard.recycle();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::counter::Counter;
    use crate::replay::reader::{Packet, tests::frame};
    use crate::replay::totals::HostTotal;
    use crate::wire::{Addr, LinkType};

    /// Both halves on one thread.
    struct Replay {
        counter: Counter,
        player: Player<'static>,
        totals: WholeTotals,
    }

    impl Replay {
        fn new(config: &Config, on_tick: Box<OnTick<'static>>) -> (Replay, u32) {
            let mut r = Replay {
                counter: Counter::new(config),
                player: Player::new(config, RuntimeInfo::default(), false, on_tick),
                totals: WholeTotals::new(config.traffic.max_hosts, config.traffic.max_pairs),
            };
            let mut down = OneThread::new(&mut r.player, &mut r.totals);
            let i = r.counter.add_iface("test", "ethernet", &mut down);
            (r, i)
        }

        fn packet(&mut self, p: &Packet<'_>, i: u32) {
            let mut down = OneThread::new(&mut self.player, &mut self.totals);
            self.counter.packet(p, i, &mut down).unwrap();
        }

        /// Closes the last tick.
        fn end(mut self) -> Ended {
            OneThread::new(&mut self.player, &mut self.totals).last(self.counter.finish());
            Ended {
                player: self.player,
                totals: self.totals,
            }
        }
    }

    struct Ended {
        player: Player<'static>,
        totals: WholeTotals,
    }

    impl Ended {
        fn finish(mut self) -> (u64, WholeTotals) {
            let ticks = self.player.finish(&mut self.totals);
            (ticks, self.totals)
        }
    }

    fn play(times_ns: &[u64]) -> Ended {
        let (mut r, i) = Replay::new(&Config::default(), Box::new(|_, _| {}));
        let f = frame([10, 0, 0, 1], 100);
        for &ts_ns in times_ns {
            r.packet(
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
        r.end()
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
        let (lp, sp) = (&long.player, &short.player);
        assert_eq!(lp.ticks_closed, sp.ticks_closed);
        assert_eq!(lp.agg.work().hosts_due, sp.agg.work().hosts_due);
        assert_eq!(lp.agg.work().hosts_evaluated, sp.agg.work().hosts_evaluated);
        // The ticks closed are those where something was due: the first
        // packet's tick, its window's bucket sliding out, its counts
        // expiring; not the 900 empty ones.
        assert!(lp.ticks_closed <= 5, "{} ticks closed", lp.ticks_closed);
        assert_eq!(lp.ticks_closed + lp.ticks_skipped, lp.tick);
        let (ticks, totals) = long.finish();
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
            let (mut p, i) = Replay::new(&config, Box::new(|_, _| {}));
            let second = 1_000_000_000u64;
            let send = |p: &mut Replay, k: u8, ts_ns: u64| {
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
            for k in 1..=12 {
                send(&mut p, k, later + u64::from(k) * second);
                if k == 1 {
                    // The tick at `later`, sealed by this packet, is closed.
                    assert!(
                        p.player.agg.host_count() <= 2,
                        "{aggregators} partitions: {} hosts still tracked",
                        p.player.agg.host_count()
                    );
                }
            }
            let (_, totals) = p.end().finish();
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
            let (mut p, i) = Replay::new(
                &Config::default(),
                Box::new(move |_, ev: Vec<AlertEvent>| seen.borrow_mut().extend(ev)),
            );
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
            p.end();
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
        let p = play(&[1_000_000_000, u64::MAX - 3, u64::MAX]).player;
        assert!(p.ticks_closed <= 10, "{} ticks closed", p.ticks_closed);
    }
}
