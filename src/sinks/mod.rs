//! Where alerts go: a log line, the history file, a webhook, a program.
//!
//! Each sink runs on a thread of its own behind a bounded queue
//! (`queue.rs`: a tick's events travel together). The aggregator only ever
//! tries to enqueue: a slow or failing sink fills its own queue, and what
//! does not fit is dropped and counted, never waited for. On shutdown
//! every queue is drained (bounded in time) before the daemon exits.

pub mod exec;
pub mod history;
pub mod http_client;
pub mod lines;
pub mod logline;
pub mod queue;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::alert::{Alert, AlertEvent, Transition};
use crate::config::AlertsConfig;

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Events handed to the sink's queue.
    pub queued: AtomicU64,
    /// Events the full queue could not take.
    pub dropped: AtomicU64,
    /// Events delivered.
    pub delivered: AtomicU64,
    /// Events given up on after every retry.
    pub failed: AtomicU64,
    /// Times the sink's thread failed (a bug) and was started again.
    pub restarts: AtomicU64,
    /// The daemon is stopping: no more retries or waiting, what is left
    /// gets one short try.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Events this sink could not deliver once stopping; written to the
    /// alert history as undelivered.
    pub undelivered: std::sync::Mutex<Vec<Arc<AlertEvent>>>,
}

impl SinkStats {
    /// Notes an event not delivered while stopping.
    pub fn not_delivered(&self, ev: &Arc<AlertEvent>) {
        if let Ok(mut v) = self.undelivered.lock() {
            v.push(ev.clone());
        }
    }
}

/// A snapshot of a sink's counters.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SinkReport {
    pub name: &'static str,
    pub queued: u64,
    pub dropped: u64,
    pub delivered: u64,
    pub failed: u64,
    pub restarts: u64,
}

impl SinkStats {
    fn report(&self, name: &'static str) -> SinkReport {
        SinkReport {
            name,
            queued: self.queued.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

/// What a sink thread gets: events in order, then the end of the queue.
pub use queue::Inbox;

struct Sink {
    name: &'static str,
    tx: Option<queue::Outbox>,
    stats: Arc<SinkStats>,
    thread: Option<JoinHandle<()>>,
}

/// The running sinks.
pub struct Sinks {
    sinks: Vec<Sink>,
    /// Where events not delivered at shutdown are recorded.
    history: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.sinks.iter().map(|s| s.name))
            .finish()
    }
}

/// Why sinks could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("alert history {path}: {err}")]
    History { path: String, err: std::io::Error },
    #[error("alerts.exec.command: {0}")]
    Exec(String),
    #[error("cannot start a sink thread: {0}")]
    Thread(std::io::Error),
}

impl Sinks {
    /// Starts the configured sinks. The history file is opened (and made)
    /// here, so a path that cannot be written is an error at start.
    pub fn start(cfg: &AlertsConfig, restored: &[Alert]) -> Result<Sinks, SinkError> {
        let mut sinks = Vec::new();
        if cfg.log {
            sinks.push(spawn("log", 10_000, logline::run)?);
        }
        if !cfg.history_file.is_empty() {
            let mut h = history::Writer::open(cfg, restored).map_err(|err| SinkError::History {
                path: cfg.history_file.clone(),
                err,
            })?;
            sinks.push(spawn("history", 10_000, move |rx, st| h.run(rx, st))?);
        }
        if let Some(w) = &cfg.webhook {
            let mut hook = webhook::Webhook::new(w, restored);
            sinks.push(spawn("webhook", w.queue, move |rx, st| hook.run(rx, st))?);
        }
        if let Some(e) = &cfg.exec {
            let mut runner = exec::Runner::new(e).map_err(SinkError::Exec)?;
            sinks.push(spawn("exec", e.queue, move |rx, st| runner.run(rx, st))?);
        }
        let history = (!cfg.history_file.is_empty()).then(|| cfg.history_file.clone().into());
        Ok(Sinks { sinks, history })
    }

    /// No sinks at all (tests, replay to stdout only).
    pub fn none() -> Sinks {
        Sinks {
            sinks: Vec::new(),
            history: None,
        }
    }

    /// Offers events to every sink without waiting, all of them in one
    /// message per sink.
    pub fn send(&self, events: &[AlertEvent]) {
        if events.is_empty() {
            return;
        }
        let events: Vec<Arc<AlertEvent>> = events.iter().map(|e| Arc::new(e.clone())).collect();
        for s in &self.sinks {
            let Some(tx) = &s.tx else { continue };
            // Actions go to the log and the history: a webhook's or a
            // program's receiver expects openings and closings.
            let takes_actions = s.name == "log" || s.name == "history";
            let mine: Vec<Arc<AlertEvent>> = events
                .iter()
                .filter(|ev| takes_actions || ev.event != Transition::Mitigation)
                .cloned()
                .collect();
            let offered = mine.len() as u64;
            if offered == 0 {
                continue;
            }
            let queued = tx.offer(mine) as u64;
            s.stats.queued.fetch_add(queued, Ordering::Relaxed);
            let refused = offered - queued;
            if refused > 0 {
                let before = s.stats.dropped.fetch_add(refused, Ordering::Relaxed);
                let now = before + refused;
                // Said when the count passes a power of two.
                if before == 0 || now.ilog2() > before.ilog2() {
                    log::warn!(
                        "alert sink {}: queue full, {now} event(s) dropped so far",
                        s.name
                    );
                }
            }
        }
    }

    /// Counters of every sink.
    pub fn reports(&self) -> Vec<SinkReport> {
        self.sinks.iter().map(|s| s.stats.report(s.name)).collect()
    }

    /// Shared counters, for readers on other threads.
    pub fn stats(&self) -> Vec<(&'static str, Arc<SinkStats>)> {
        self.sinks
            .iter()
            .map(|s| (s.name, s.stats.clone()))
            .collect()
    }

    /// Closes the queues and waits up to `limit` for the sinks to finish
    /// what they hold: without retries or back-off from now on, programs
    /// still running killed after a short grace. Says what was not
    /// delivered.
    pub fn stop(mut self, limit: Duration) {
        let end = Instant::now() + limit;
        // The others first: what they could not deliver goes into the
        // history, which is stopped last.
        let (history, others): (Vec<Sink>, Vec<Sink>) =
            self.sinks.drain(..).partition(|s| s.name == "history");
        let mut records = Vec::new();
        for (name, st) in finish(others, end) {
            let undelivered =
                std::mem::take(&mut *st.undelivered.lock().unwrap_or_else(|p| p.into_inner()));
            records.extend(undelivered.into_iter().map(|ev| (name, ev)));
        }
        finish(history, end + Duration::from_secs(1));
        if let (Some(path), false) = (&self.history, records.is_empty()) {
            match history::append_undelivered(path, &records) {
                Ok(()) => log::warn!(
                    "{} alert event(s) not delivered at shutdown are in the alert history as undelivered",
                    records.len()
                ),
                Err(e) => log::error!(
                    "alert history {}: cannot record {} undelivered event(s): {e}",
                    path.display(),
                    records.len()
                ),
            }
        }
    }
}

/// Closes the sinks' queues, waits until `end` for them, says what was not
/// delivered; their counters.
fn finish(mut sinks: Vec<Sink>, end: Instant) -> Vec<(&'static str, Arc<SinkStats>)> {
    for s in &mut sinks {
        s.stats.stopping.store(true, Ordering::Relaxed);
        s.tx = None;
    }
    for s in &mut sinks {
        let Some(t) = s.thread.take() else { continue };
        while !t.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        if t.is_finished() {
            let _ = t.join();
        }
        let st = &s.stats;
        let done = st.delivered.load(Ordering::Relaxed) + st.failed.load(Ordering::Relaxed);
        let left = st.queued.load(Ordering::Relaxed).saturating_sub(done);
        if left > 0 {
            log::warn!(
                "alert sink {}: {left} event(s) still queued at shutdown",
                s.name
            );
        }
        let failed = st.undelivered.lock().map_or(0, |v| v.len());
        if failed > 0 {
            log::warn!(
                "alert sink {}: {failed} event(s) not delivered at shutdown",
                s.name
            );
        }
    }
    sinks.into_iter().map(|s| (s.name, s.stats)).collect()
}

/// Starts a sink's thread. A sink that fails (a bug: a panic) is logged,
/// counted and started again on the same queue, so one bad event cannot
/// silence every later one; the event it failed on counts as failed.
fn spawn(
    name: &'static str,
    queue: usize,
    mut body: impl FnMut(&Inbox, &SinkStats) + Send + 'static,
) -> Result<Sink, SinkError> {
    let (tx, rx) = queue::bounded(queue);
    let stats = Arc::new(SinkStats::default());
    let st = stats.clone();
    let thread = std::thread::Builder::new()
        .name(format!("sink-{name}"))
        .spawn(move || {
            loop {
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&rx, &st)));
                let Err(panic) = run else { break };
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                st.failed.fetch_add(1, Ordering::Relaxed);
                let n = st.restarts.fetch_add(1, Ordering::Relaxed) + 1;
                log::error!("alert sink {name} failed ({why}); started again ({n} time(s) so far)");
                // A sink that fails before it takes an event would spin.
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .map_err(SinkError::Thread)?;
    Ok(Sink {
        name,
        tx: Some(tx),
        stats,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKind, Transition};

    fn opened(n: u64) -> Vec<AlertEvent> {
        (1..=n)
            .map(|id| AlertEvent {
                event: Transition::Open,
                alert: Alert::sample(id, AlertKind::Traffic, "10.0.0.1"),
                mitigation: None,
            })
            .collect()
    }

    #[test]
    fn a_sink_that_fails_is_started_again_and_counts_the_event() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let sink = spawn("test", 10, move |rx: &Inbox, st: &SinkStats| {
            while let Ok(ev) = rx.recv() {
                // Checked arithmetic on a config number was such a bug.
                assert!(ev.alert.id != 2, "alert 2 breaks this sink");
                log.lock().unwrap().push(ev.alert.id);
                st.delivered.fetch_add(1, Ordering::Relaxed);
            }
        })
        .unwrap();
        let sinks = Sinks {
            sinks: vec![sink],
            history: None,
        };
        sinks.send(&opened(3));
        let stats = sinks.stats()[0].1.clone();
        sinks.stop(Duration::from_secs(5));
        assert_eq!(*seen.lock().unwrap(), [1, 3]);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 2);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
        assert_eq!(stats.restarts.load(Ordering::Relaxed), 1);
    }

    /// A webhook that accepts and never answers: stopping takes the limit
    /// given, not a timeout and back-off per queued event.
    #[test]
    fn stopping_with_a_hanging_webhook_is_bounded() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let held = std::thread::spawn(move || {
            let mut conns = Vec::new();
            l.set_nonblocking(true).unwrap();
            let end = Instant::now() + Duration::from_secs(15);
            while Instant::now() < end {
                if let Ok((c, _)) = l.accept() {
                    conns.push(c);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let mut cfg = crate::config::Config::default().alerts;
        cfg.log = false;
        let dir = std::env::temp_dir().join(format!("ta-sinks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        cfg.history_file = dir.join("alerts.jsonl").to_string_lossy().into_owned();
        cfg.webhook = Some(crate::config::WebhookConfig {
            url,
            format: crate::config::WebhookFormat::Json,
            timeout: crate::config::units::Span(Duration::from_secs(30)),
            retries: 3,
            queue: 100,
            resend: crate::config::units::Span(Duration::from_secs(60)),
            instance: "test".into(),
            rule_labels: Default::default(),
            ca_file: String::new(),
        });
        let sinks = Sinks::start(&cfg, &[]).unwrap();
        sinks.send(&opened(3));
        std::thread::sleep(Duration::from_millis(200));
        let stats = sinks.stats()[1].1.clone();
        let t = Instant::now();
        // Without the stop: 30 s per try, four tries per event.
        sinks.stop(Duration::from_secs(20));
        assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
        assert_eq!(stats.failed.load(Ordering::Relaxed), 3, "each got its try");
        // The history has each event, and a record of each not delivered.
        let text = std::fs::read_to_string(&cfg.history_file).unwrap();
        let undelivered: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["undelivered"] == "webhook")
            .collect();
        assert_eq!(undelivered.len(), 3, "{text}");
        let loaded = history::load(std::path::Path::new(&cfg.history_file)).unwrap();
        assert_eq!((loaded.skipped, loaded.open.len()), (0, 3));
        drop(held);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
