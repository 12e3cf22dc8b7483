//! The aggregator thread: at the end of every tick, collect each worker's
//! shard, merge, and publish the tick's snapshot.

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::clock::TickClock;
use super::handoff::AggregatorSide;
use crate::aggregator::{Aggregator, TickHealth};
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

/// How long after a tick's end the aggregator waits for late shards before
/// it closes the tick without them.
fn grace(tick: Duration) -> Duration {
    (tick / 4).min(Duration::from_millis(250))
}

/// Runs until every worker has handed over its last shard; returns the
/// final snapshot.
pub fn run(
    mut agg: Aggregator,
    mut sides: Vec<AggregatorSide>,
    clock: TickClock,
    published: Published,
    events: Receiver<IfaceEvent>,
) -> Snapshot {
    let n = sides.len();
    let mut finished = vec![false; n];
    let mut k = clock.tick_at(Instant::now());
    loop {
        let end = clock.end_of(k);
        let close = end + grace(clock.tick());
        let mut got = vec![false; n];
        let mut merge_time = Duration::ZERO;
        loop {
            while let Ok(ev) = events.try_recv() {
                match ev {
                    IfaceEvent::Added {
                        ifindex,
                        name,
                        link,
                    } => agg.iface_added(ifindex, &name, &link),
                    IfaceEvent::Removed { ifindex } => agg.iface_removed(ifindex, k),
                }
            }
            for (w, side) in sides.iter_mut().enumerate() {
                while let Some(shard) = side.take() {
                    let t0 = Instant::now();
                    agg.merge(&shard);
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
            }
            let now = Instant::now();
            if finished.iter().all(|&f| f) {
                let snap = close_tick(&mut agg, k, &got, &finished, merge_time);
                published.store(std::sync::Arc::new(snap.clone()));
                return snap;
            }
            let all_in = got.iter().zip(&finished).all(|(&g, &f)| g || f);
            if now >= end && (all_in || now >= close) {
                break;
            }
            let until = if now < end { end } else { close };
            std::thread::park_timeout(until.saturating_duration_since(now));
        }
        let snap = close_tick(&mut agg, k, &got, &finished, merge_time);
        published.store(std::sync::Arc::new(snap));
        k += 1;
    }
}

fn close_tick(
    agg: &mut Aggregator,
    k: u64,
    got: &[bool],
    finished: &[bool],
    merge_time: Duration,
) -> Snapshot {
    let t0 = Instant::now();
    let late = got
        .iter()
        .zip(finished)
        .filter(|&(&g, &f)| !g && !f)
        .count() as u32;
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut snap = agg.end_tick(
        k,
        TickHealth {
            late_workers: late,
            merge_micros: 0,
        },
        unix_ms,
    );
    snap.health.merge_micros = (merge_time + t0.elapsed()).as_micros() as u64;
    if late > 0 {
        log::debug!("tick {k}: {late} worker(s) late; their packets count in a later tick");
    }
    snap
}
