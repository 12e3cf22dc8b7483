//! A sink's bounded queue, filled a tick's events at a time.
//!
//! A tick that opens or closes many alerts (a replay of a capture full of
//! scanners, a worm on the network) handed them over one message each:
//! every message could wake the sink's thread, and on a busy or single
//! core each wake-up was a pair of context switches per event (three and a
//! half per event in a replay pinned to one CPU). Here the events of one
//! call travel as one message, so a sink's thread wakes at most once per
//! tick, and takes them out one by one as before. The bound still counts
//! events, not messages: what does not fit is refused and counted by the
//! caller.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvError, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use crate::alert::AlertEvent;

/// The aggregator's end of a sink's queue (one sender: not `Clone`).
#[derive(Debug)]
pub struct Outbox {
    tx: SyncSender<Vec<Arc<AlertEvent>>>,
    /// Events in the queue, not yet taken by the sink.
    held: Arc<AtomicUsize>,
    cap: usize,
}

/// The sink's end: events one at a time, in the order they were offered.
#[derive(Debug)]
pub struct Inbox {
    rx: Receiver<Vec<Arc<AlertEvent>>>,
    /// The rest of the last message received.
    pending: RefCell<VecDeque<Arc<AlertEvent>>>,
    held: Arc<AtomicUsize>,
}

/// A queue that holds at most `cap` events.
pub fn bounded(cap: usize) -> (Outbox, Inbox) {
    let cap = cap.max(1);
    // A message holds one event or more: never more messages than events.
    let (tx, rx) = mpsc::sync_channel(cap);
    let held = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            tx,
            held: held.clone(),
            cap,
        },
        Inbox {
            rx,
            pending: RefCell::new(VecDeque::new()),
            held,
        },
    )
}

impl Outbox {
    /// Queues the first of `events` that fit, without waiting; returns how
    /// many were queued (the rest are refused; all are if the sink is gone).
    pub fn offer(&self, mut events: Vec<Arc<AlertEvent>>) -> usize {
        let room = self.cap.saturating_sub(self.held.load(Ordering::Acquire));
        events.truncate(room);
        let n = events.len();
        if n == 0 {
            return 0;
        }
        self.held.fetch_add(n, Ordering::AcqRel);
        match self.tx.try_send(events) {
            Ok(()) => n,
            Err(_) => {
                self.held.fetch_sub(n, Ordering::AcqRel);
                0
            }
        }
    }
}

impl Inbox {
    /// The next event, waiting for one; an error once the queue is closed
    /// and empty.
    pub fn recv(&self) -> Result<Arc<AlertEvent>, RecvError> {
        self.next(|| self.rx.recv())
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Arc<AlertEvent>, RecvTimeoutError> {
        let end = Instant::now() + timeout;
        self.next(|| {
            self.rx
                .recv_timeout(end.saturating_duration_since(Instant::now()))
        })
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Result<Arc<AlertEvent>, TryRecvError> {
        self.next(|| self.rx.try_recv())
    }

    /// The events queued now, without waiting.
    pub fn try_iter(&self) -> impl Iterator<Item = Arc<AlertEvent>> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }

    /// The rest of the last message first, then the next message `get`
    /// brings.
    fn next<E>(
        &self,
        mut get: impl FnMut() -> Result<Vec<Arc<AlertEvent>>, E>,
    ) -> Result<Arc<AlertEvent>, E> {
        loop {
            if let Some(ev) = self.pending.borrow_mut().pop_front() {
                self.held.fetch_sub(1, Ordering::AcqRel);
                return Ok(ev);
            }
            let batch = get()?;
            self.pending.borrow_mut().extend(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertKind, Transition};

    fn evs(ids: std::ops::RangeInclusive<u64>) -> Vec<Arc<AlertEvent>> {
        ids.map(|id| {
            Arc::new(AlertEvent {
                event: Transition::Open,
                alert: Alert::sample(id, AlertKind::Traffic, "10.0.0.1"),
                mitigation: None,
            })
        })
        .collect()
    }

    fn ids(it: impl Iterator<Item = Arc<AlertEvent>>) -> Vec<u64> {
        it.map(|e| e.alert.id).collect()
    }

    #[test]
    fn events_come_out_one_by_one_in_order_and_the_bound_counts_events() {
        let (tx, rx) = bounded(5);
        assert_eq!(tx.offer(evs(1..=3)), 3);
        // Two more fit, the sixth does not.
        assert_eq!(tx.offer(evs(4..=6)), 2);
        assert_eq!(tx.offer(evs(7..=7)), 0);
        assert_eq!(rx.recv().unwrap().alert.id, 1);
        // One taken: room for one.
        assert_eq!(tx.offer(evs(8..=9)), 1);
        assert_eq!(ids(rx.try_iter()), vec![2, 3, 4, 5, 8]);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        assert_eq!(tx.offer(evs(10..=14)), 5);
        drop(tx);
        assert_eq!(rx.recv().unwrap().alert.id, 10);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)).unwrap().alert.id,
            11
        );
        assert_eq!(ids(std::iter::from_fn(|| rx.recv().ok())), vec![12, 13, 14]);
        assert!(rx.recv().is_err());
        assert!(matches!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Disconnected)
        ));
    }

    #[test]
    fn a_wait_times_out_and_a_gone_sink_takes_nothing() {
        let (tx, rx) = bounded(4);
        assert!(matches!(
            rx.recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        ));
        drop(rx);
        assert_eq!(tx.offer(evs(1..=2)), 0);
        assert_eq!(tx.held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_thread_waiting_gets_a_whole_tick_from_one_message() {
        let (tx, rx) = bounded(100);
        let t = std::thread::spawn(move || {
            let first = rx.recv().unwrap().alert.id;
            let mut got = vec![first];
            got.extend(rx.try_iter().map(|e| e.alert.id));
            got
        });
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(tx.offer(evs(1..=50)), 50);
        assert_eq!(t.join().unwrap(), (1..=50).collect::<Vec<_>>());
    }
}
