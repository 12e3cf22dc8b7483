//! `/api/v1/stream`: server-sent events, one `tick` event per snapshot with
//! the summary the dashboard draws from, so it updates without polling.
//!
//! Each listener has a small queue; a listener that does not keep up misses
//! ticks (the next event carries the whole picture again) instead of
//! making the server hold an ever-growing backlog. A comment line every 15
//! seconds keeps proxies from closing a quiet stream.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Either;
use hyper::StatusCode;
use hyper::body::{Bytes, Frame};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::Shared;
use super::api::{alert_names, iface_rates, status};
use super::respond::{Answer, ApiError, set, with_body};
use crate::snapshot::Snapshot;

/// Events waiting for one slow listener at most.
const QUEUE: usize = 4;
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Hosts and alerts an event lists at most.
const TOP: usize = 10;
const ALERTS: usize = 100;

/// The body of an open stream: whatever the listener's task queues.
#[derive(Debug)]
pub struct EventBody {
    rx: mpsc::Receiver<Bytes>,
    _permit: OwnedSemaphorePermit,
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Starts a stream: the current snapshot at once, then every new one.
pub fn open(shared: &Shared) -> Answer {
    let permit = shared.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::unavailable(format!(
            "{} event streams are open already; close one",
            super::MAX_STREAMS
        ))
    })?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let published = shared.published.clone();
    let mut ticks = published.subscribe();
    tokio::spawn(async move {
        let first = published.load();
        // The retry hint tells EventSource how soon to reconnect.
        if tx
            .send(Bytes::from_static(b"retry: 2000\n\n"))
            .await
            .is_err()
            || tx.send(event(&first)).await.is_err()
        {
            return;
        }
        let mut missed: u64 = 0;
        loop {
            let msg = tokio::select! {
                changed = ticks.changed() => match changed {
                    Ok(()) => event(&published.load()),
                    Err(_) => return,
                },
                () = tokio::time::sleep(HEARTBEAT) => Bytes::from_static(b": keep-alive\n\n"),
                () = tx.closed() => return,
            };
            match tx.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    missed += 1;
                    if missed.is_power_of_two() {
                        log::debug!("HTTP: a slow event-stream listener missed {missed} tick(s)");
                    }
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
    });
    let mut r = with_body(
        StatusCode::OK,
        "text/event-stream",
        Either::Right(EventBody {
            rx,
            _permit: permit,
        }),
    );
    set(
        &mut r,
        hyper::header::HeaderName::from_static("x-accel-buffering"),
        "no",
    );
    Ok(r)
}

/// The `tick` event of a snapshot, rendered once for all listeners.
fn event(snap: &Arc<Snapshot>) -> Bytes {
    snap.stream_event
        .get_or_init(|| {
            let data = serde_json::to_string(&summary(snap)).unwrap_or_else(|_| "{}".into());
            Bytes::from(format!("id: {}\nevent: tick\ndata: {data}\n\n", snap.tick))
        })
        .clone()
}

/// What the dashboard needs each tick.
pub fn summary(snap: &Snapshot) -> serde_json::Value {
    let ifaces: Vec<serde_json::Value> = iface_rates(snap)
        .iter()
        .map(|r| {
            let l = &r.view.last_tick;
            let t = &r.view.totals;
            json!({
                "name": r.view.name,
                "present": r.view.present,
                "bytes_per_sec": r.rate.ip_bytes_per_sec,
                "packets_per_sec": r.rate.ip_packets_per_sec,
                "drops_per_sec": r.rate.drops_per_sec,
                "parser_problems": l.malformed.values().sum::<u64>(),
                "ring_drops_total": t.kernel_drops,
                "parser_problems_total": t.malformed.values().sum::<u64>(),
                "packets_total": t.ip_packets,
            })
        })
        .collect();
    let top: Vec<serde_json::Value> = snap
        .hosts
        .iter()
        .take(TOP)
        .map(|h| {
            json!({
                "addr": h.addr.ip(),
                "sent_bytes": h.sent_bytes,
                "sent_packets": h.sent_packets,
                "recv_bytes": h.recv_bytes,
                "alerts": alert_names(h.alerts),
            })
        })
        .collect();
    let alerts: Vec<serde_json::Value> = snap
        .alerts
        .iter()
        .rev()
        .take(ALERTS)
        .map(|a| {
            json!({
                "id": a.id,
                "kind": a.kind,
                "subject": a.subject,
                "rule": a.rule,
                "start_ms": a.start_ms,
                "value": a.value,
                "peak": a.peak,
                "threshold": a.threshold,
                "unit": a.unit,
                "window_secs": a.window_secs,
                "degraded": a.degraded,
            })
        })
        .collect();
    let st = status(snap);
    json!({
        "tick": snap.tick,
        "unix_ms": snap.unix_ms,
        "tick_ms": snap.tick_ms,
        "window_secs": snap.window_ticks * snap.tick_ms / 1000,
        "window": st["window"],
        "lifetime": st["lifetime"],
        "drop_ratio": snap.drop_ratio,
        "interfaces": ifaces,
        "top_hosts": top,
        "hosts_listed": snap.hosts.len(),
        "hosts_unlisted": snap.hosts_unlisted,
        "alerts_open": snap.alerts.len(),
        "alerts": alerts,
        "alert_counts": st["alerts"],
        "tables": snap.tables,
        "health": snap.health,
        "late_shards_total": snap.late_shards_total,
        "sinks": snap.sinks,
        "uptime_secs": st["uptime_secs"],
        "version": env!("CARGO_PKG_VERSION"),
    })
}
