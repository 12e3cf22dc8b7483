//! The per-tick exchange of shards between one worker and the aggregator:
//! two wait-free single-producer/single-consumer queues. Filled shards go
//! one way, emptied ones come back. Each worker owns exactly two shards, so
//! neither side ever allocates and a queue can never overflow.

use std::thread::Thread;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::shard::{Hasher, Shard, ShardLimits};

/// The worker's side.
#[derive(Debug)]
pub struct WorkerSide {
    full: Producer<Box<Shard>>,
    empty: Consumer<Box<Shard>>,
    aggregator: Thread,
}

/// The aggregator's side.
#[derive(Debug)]
pub struct AggregatorSide {
    full: Consumer<Box<Shard>>,
    empty: Producer<Box<Shard>>,
}

/// Makes the queues of one worker: returns its two ends and the shard the
/// worker starts filling (the second one waits in the empty queue). Each
/// shard keeps spare tables for `spares` (hosts, pairs) of a flood
/// ([`Shard::keep_spares`]; (0, 0): none), made here, before capture.
pub fn channel(
    limits: ShardLimits,
    hasher: &Hasher,
    aggregator: Thread,
    spares: (usize, usize),
) -> (WorkerSide, AggregatorSide, Box<Shard>) {
    let (full_tx, full_rx) = RingBuffer::new(2);
    let (mut empty_tx, empty_rx) = RingBuffer::new(2);
    let shard = || {
        let mut s = Box::new(Shard::new(limits, hasher));
        s.keep_spares(spares.0, spares.1);
        s
    };
    let first = shard();
    if empty_tx.push(shard()).is_err() {
        unreachable!("a new queue of two has room for one");
    }
    (
        WorkerSide {
            full: full_tx,
            empty: empty_rx,
            aggregator,
        },
        AggregatorSide {
            full: full_rx,
            empty: empty_tx,
        },
        first,
    )
}

impl WorkerSide {
    /// Hands `current` over if an empty shard is back, and returns it in
    /// exchange. Without an empty shard (the aggregator is behind) the worker
    /// keeps filling the one it has, so nothing is lost or allocated.
    pub fn exchange(&mut self, current: &mut Box<Shard>) -> bool {
        let Ok(mut fresh) = self.empty.pop() else {
            return false;
        };
        std::mem::swap(current, &mut fresh);
        // Two shards per worker: one in hand, so the queue of two has room.
        if self.full.push(fresh).is_err() {
            unreachable!("two shards cannot fill a queue of two");
        }
        self.aggregator.unpark();
        true
    }

    /// Hands over the last shard of a stopping worker.
    pub fn finish(mut self, last: Box<Shard>) {
        if self.full.push(last).is_err() {
            unreachable!("two shards cannot fill a queue of two");
        }
        self.aggregator.unpark();
    }
}

impl AggregatorSide {
    /// True once the worker's side is gone (the worker ended without
    /// [`WorkerSide::finish`]: it panicked or gave up): no shard will come
    /// after those already queued.
    pub fn is_abandoned(&self) -> bool {
        self.full.is_abandoned()
    }

    /// The next filled shard, if one arrived, sealed ([`Shard::seal`]:
    /// folding the pairs' runs of rate classes into the hosts' rows is
    /// work of this side, not the worker's).
    pub fn take(&mut self) -> Option<Box<Shard>> {
        let mut s = self.full.pop().ok()?;
        s.seal();
        Some(s)
    }

    /// Returns an emptied shard to the worker.
    pub fn give_back(&mut self, mut shard: Box<Shard>) {
        shard.recycle();
        // At most two shards circulate: this queue cannot be full.
        let _ = self.empty.push(shard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Addr, Summary};

    #[test]
    fn shards_circulate_without_loss() {
        let limits = ShardLimits {
            max_hosts: 8,
            max_pairs: 8,
            max_ports: 8,
            answers: false,
            rates: 0,
        };
        let (mut w, mut a, mut cur) =
            channel(limits, &Hasher::new(), std::thread::current(), (0, 0));
        let pkt = Summary {
            src: Addr::from_v4([1, 1, 1, 1]),
            dst: Addr::from_v4([2, 2, 2, 2]),
            l3_len: 10,
            ..Summary::default()
        };
        let mut merged = 0;
        let mut exchanged = 0;
        for round in 0..5 {
            cur.record(&pkt);
            exchanged += u32::from(w.exchange(&mut cur));
            // The aggregator only comes round every other tick: in between,
            // the worker finds no empty shard and keeps filling its own.
            if round % 2 == 1 {
                while let Some(s) = a.take() {
                    merged += s.totals.packets;
                    a.give_back(s);
                }
            }
        }
        assert_eq!(exchanged, 3);
        w.finish(cur);
        while let Some(s) = a.take() {
            merged += s.totals.packets;
        }
        assert_eq!(merged, 5);
    }
}
