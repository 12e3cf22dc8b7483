//! The aggregator thread: at the end of every tick, collect each worker's
//! shard, merge, detect, hand alert events to the sinks, publish the tick's
//! snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::clock::TickClock;
use super::handoff::AggregatorSide;
use crate::admission::Board;
use crate::aggregator::{Aggregator, TickHealth};
use crate::alert::AlertEvent;
use crate::config::{AlertsConfig, Config};
use crate::mitigation::Mitigator;
use crate::sinks::Sinks;
use crate::snapshot::{Published, Snapshot};

/// What the supervisor tells the aggregator about interfaces.
#[derive(Debug)]
pub enum IfaceEvent {
    Added {
        ifindex: u32,
        name: String,
        link: String,
    },
    Removed {
        ifindex: u32,
    },
}

/// A new configuration to apply at the next tick.
#[derive(Debug)]
pub struct Reconfigure(pub Box<Config>);

/// How long after a tick's end the aggregator waits for late shards before
/// it closes the tick without them.
fn grace(tick: Duration) -> Duration {
    (tick / 4).min(Duration::from_millis(250))
}

/// How long sinks get to finish their queues when the daemon stops.
const SINK_FLUSH: Duration = Duration::from_secs(5);

/// Everything the aggregator thread works with.
#[derive(Debug)]
pub struct Collector {
    pub agg: Aggregator,
    pub sides: Vec<AggregatorSide>,
    pub clock: TickClock,
    pub published: Published,
    pub events: Receiver<IfaceEvent>,
    pub control: Receiver<Reconfigure>,
    pub sinks: Sinks,
    pub alerts: AlertsConfig,
    /// Workers that ended without handing over their last shard.
    pub lost: Arc<AtomicUsize>,
    /// Where the workers find what the full tables refuse.
    pub board: Arc<Board>,
    /// Routes toward the victims of chosen alerts.
    pub mitigation: Mitigator,
    /// Pcaps of floods.
    pub attacks: crate::attacks::Attacks,
    /// Flow records to IPFIX collectors.
    pub export: crate::export::Exporter,
    /// What the API shows of it, made again when it changed.
    pub mitigation_report: Option<Arc<crate::mitigation::Report>>,
    /// The flow-input thread's last report.
    pub flow_report: Option<Arc<crate::flowin::FlowReport>>,
}

impl Collector {
    /// Runs until every worker has handed over its last shard; returns the
    /// final snapshot.
    pub fn run(mut self) -> Arc<Snapshot> {
        let n = self.sides.len();
        let mut finished = vec![false; n];
        let mut k = self.clock.tick_at(Instant::now());
        loop {
            let end = self.clock.end_of(k);
            let close = end + grace(self.clock.tick());
            let mut got = vec![false; n];
            let mut merge_time = Duration::ZERO;
            loop {
                self.apply_control();
                while let Ok(ev) = self.events.try_recv() {
                    match ev {
                        IfaceEvent::Added {
                            ifindex,
                            name,
                            link,
                        } => self.agg.iface_added(ifindex, &name, &link),
                        IfaceEvent::Removed { ifindex } => self.agg.iface_removed(ifindex, k),
                    }
                }
                for (w, side) in self.sides.iter_mut().enumerate() {
                    // Asked before the queue is drained: once abandoned,
                    // nothing more can arrive after what is queued.
                    let abandoned = !finished[w] && side.is_abandoned();
                    while let Some(mut shard) = side.take() {
                        let t0 = Instant::now();
                        self.agg.merge(&shard);
                        self.attacks.collect(w, &mut shard.captured);
                        self.export.collect(&shard);
                        if let Some(r) = shard.flow_report.take() {
                            self.flow_report = Some(r);
                        }
                        merge_time += t0.elapsed();
                        if shard.last {
                            finished[w] = true;
                        }
                        if shard.last || shard.last_tick >= k {
                            got[w] = true;
                        }
                        if !shard.last {
                            side.give_back(shard);
                        }
                    }
                    if abandoned && !finished[w] {
                        // Its packets from now on are not counted; waiting
                        // for it would stall every tick and the shutdown.
                        finished[w] = true;
                        self.lost.fetch_add(1, Ordering::Release);
                        log::error!(
                            "capture worker {w} ended without handing over its last shard; its rings are no longer read"
                        );
                    }
                }
                let now = Instant::now();
                if finished.iter().all(|&f| f) {
                    let snap = self.close_tick(k, &got, &finished, merge_time);
                    std::mem::replace(&mut self.mitigation, Mitigator::off()).stop();
                    self.attacks.stop();
                    self.sinks.stop(SINK_FLUSH);
                    return snap;
                }
                let all_in = got.iter().zip(&finished).all(|(&g, &f)| g || f);
                if now >= end && (all_in || now >= close) {
                    break;
                }
                let until = if now < end { end } else { close };
                std::thread::park_timeout(until.saturating_duration_since(now));
            }
            self.close_tick(k, &got, &finished, merge_time);
            k += 1;
        }
    }

    /// Applies a new configuration; sinks are restarted only if their part
    /// changed, and kept if the new ones cannot start.
    fn apply_control(&mut self) {
        while let Ok(Reconfigure(cfg)) = self.control.try_recv() {
            self.agg.reconfigure(&cfg);
            let acted = self
                .mitigation
                .reconfigure(&cfg.mitigation, super::clock::unix_ms());
            self.export.reconfigure(&cfg.ipfix);
            if self.attacks.reconfigure(&cfg.attack_pcap) {
                self.board.publish_captures(None);
            }
            self.sinks.send(&acted);
            self.mitigation_report = None;
            if cfg.alerts != self.alerts {
                // The old sinks finish their queues first, so the history
                // writer that follows finds every line on disk.
                std::mem::replace(&mut self.sinks, Sinks::none()).stop(SINK_FLUSH);
                let start = |a: &AlertsConfig| {
                    let open = crate::sinks::history::load(std::path::Path::new(&a.history_file))
                        .map(|l| l.open)
                        .unwrap_or_default();
                    Sinks::start(a, &open)
                };
                match start(&cfg.alerts) {
                    Ok(new) => {
                        self.sinks = new;
                        self.alerts = cfg.alerts.clone();
                        log::info!("alert sinks restarted with the new configuration");
                    }
                    Err(e) => {
                        log::error!("new alert sinks cannot start ({e}); keeping the old ones");
                        match start(&self.alerts) {
                            Ok(old) => self.sinks = old,
                            Err(e) => {
                                log::error!("the old alert sinks cannot start again either: {e}")
                            }
                        }
                    }
                }
            }
            log::info!("configuration reloaded");
        }
    }

    /// The mitigation's report, made again only when something in it moved.
    fn mitigation_report(&mut self, acted: bool) -> Option<Arc<crate::mitigation::Report>> {
        if !self.mitigation.enabled() {
            return None;
        }
        let status = self.mitigation.speaker_status();
        let stale = acted
            || self
                .mitigation_report
                .as_ref()
                .is_none_or(|r| r.speaker != status);
        if stale {
            self.mitigation_report = Some(Arc::new(self.mitigation.report()));
        }
        self.mitigation_report.clone()
    }

    fn close_tick(
        &mut self,
        k: u64,
        got: &[bool],
        finished: &[bool],
        merge_time: Duration,
    ) -> Arc<Snapshot> {
        let t0 = Instant::now();
        let late = got
            .iter()
            .zip(finished)
            .filter(|&(&g, &f)| !g && !f)
            .count() as u32;
        let unix_ms = super::clock::unix_ms();
        let (mut snap, events): (Snapshot, Vec<AlertEvent>) = self.agg.end_tick(
            k,
            TickHealth {
                late_workers: late,
                merge_micros: 0,
            },
            unix_ms,
        );
        self.board.publish(self.agg.admission());
        let acted = self.mitigation.handle(&events, unix_ms);
        let live: Vec<bool> = finished.iter().map(|f| !f).collect();
        self.attacks.end_tick(&events, &live);
        for (kind, subject, summary) in self.attacks.take_summaries() {
            self.agg.annotate_capture(kind, subject, summary);
        }
        if let Some(list) = self.attacks.take_list() {
            self.board.publish_captures(list);
        }
        snap.attacks = self.attacks.report();
        let tick_ms = self.clock.tick().as_millis() as u64;
        self.export
            .end_tick(unix_ms.saturating_sub(tick_ms), unix_ms);
        snap.export = self.export.report();
        snap.flow_input = self.flow_report.clone();
        self.sinks.send(&events);
        self.sinks.send(&acted);
        snap.mitigation = self.mitigation_report(!acted.is_empty());
        snap.sinks = self.sinks.reports();
        snap.health.merge_micros = (merge_time + t0.elapsed()).as_micros() as u64;
        if late > 0 {
            log::debug!("tick {k}: {late} worker(s) late; their packets count in a later tick");
        }
        let snap = Arc::new(snap);
        self.published.store(snap.clone());
        snap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregator::RuntimeInfo;
    use crate::capture::handoff;
    use crate::shard::{Hasher, ShardLimits};
    use std::sync::mpsc;

    /// Regression (issue 10, item 4): a worker that ends without its last
    /// shard made every later tick wait out the grace period and the
    /// shutdown wait for ever.
    #[test]
    fn a_worker_gone_without_its_last_shard_does_not_hold_the_aggregator() {
        let config = Config::default();
        let limits = ShardLimits {
            max_hosts: 16,
            max_pairs: 16,
            max_ports: 16,
            answers: false,
            rates: 0,
        };
        let hasher = Hasher::new();
        let clock = TickClock::new(Instant::now(), Duration::from_millis(40));
        let (_ev_tx, events) = mpsc::channel();
        let (_ctl_tx, control) = mpsc::channel();
        let (sides_tx, sides_rx) = mpsc::channel::<Vec<AggregatorSide>>();
        let lost = Arc::new(AtomicUsize::new(0));
        let lost2 = lost.clone();
        let published = crate::snapshot::publish(Snapshot::empty(&config, RuntimeInfo::default()));
        let agg = Aggregator::new(&config, RuntimeInfo::default());
        let alerts = config.alerts.clone();
        let t = std::thread::spawn(move || {
            let sides = sides_rx.recv().unwrap();
            Collector {
                agg,
                sides,
                clock,
                published,
                events,
                control,
                sinks: Sinks::none(),
                alerts,
                lost: lost2,
                board: Arc::default(),
                mitigation: Mitigator::off(),
                mitigation_report: None,
                flow_report: None,
                attacks: crate::attacks::Attacks::off(),
                export: crate::export::Exporter::off(),
            }
            .run()
        });
        let (mut good, a0, mut shard) =
            handoff::channel(limits, &hasher, t.thread().clone(), (0, 0));
        let (bad, a1, _) = handoff::channel(limits, &hasher, t.thread().clone(), (0, 0));
        sides_tx.send(vec![a0, a1]).unwrap();
        // The healthy worker hands over a few ticks, the other one is gone.
        drop(bad);
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(40));
            shard.last_tick = clock.tick_at(Instant::now());
            good.exchange(&mut shard);
        }
        assert_eq!(lost.load(Ordering::Acquire), 1);
        let started = Instant::now();
        good.finish(shard);
        let last = t.join().expect("the aggregator ends");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the aggregator ended {:?} after the last worker",
            started.elapsed()
        );
        assert_eq!(
            last.health.late_workers, 0,
            "the lost worker is not waited for"
        );
    }
}
