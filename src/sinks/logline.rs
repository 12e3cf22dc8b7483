//! One line per alert opening or closing on standard output, where journald
//! picks it up, in the original TrafficAlerted's words where they fit:
//!
//! ```text
//! EVENT=TRAFFIC SRC=10.1.0.2 TOTALBYTES=1200000000 | DSTINFO=[{10.2.0.2 1200000000}] | STATE=OPEN ID=7 LIMIT=1000000000 WINDOW=170s RULE=default
//! EVENT=SCANNING SRC=10.1.0.2 CONTACTED=16 | DSTINFO=[{10.2.0.9 84} ...] | STATE=OPEN ...
//! EVENT=SCANNING_PORT SRC=10.1.0.2 PORTS=[21 22 23 25 80] | STATE=OPEN ...
//! EVENT=INBOUND DST=10.2.0.2 TOTALBYTES=2000000000 | SRCINFO=[{198.51.100.7 1500} ...] | STATE=OPEN ...
//! ```
//!
//! A closing line says `STATE=CLOSED` and adds the peak and the duration.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Inbox, SinkStats};
use crate::alert::{AlertEvent, AlertKind, Peer, Transition, Unit};

/// Writes lines until the queue closes.
pub fn run(rx: Inbox, stats: Arc<SinkStats>) {
    let stdout = std::io::stdout();
    while let Ok(ev) = rx.recv() {
        let mut out = stdout.lock();
        let mut batch = vec![ev];
        batch.extend(rx.try_iter());
        for ev in &batch {
            let ok = writeln!(out, "{}", line(ev)).is_ok();
            if ok {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = out.flush();
    }
}

fn peers(p: &[Peer]) -> String {
    let items: Vec<String> = p
        .iter()
        .map(|p| format!("{{{} {}}}", p.ip, p.bytes))
        .collect();
    format!("[{}]", items.join(" "))
}

/// The log line of an event.
pub fn line(ev: &AlertEvent) -> String {
    let a = &ev.alert;
    let amount = match a.unit {
        Unit::Packets => "TOTALPACKETS",
        _ => "TOTALBYTES",
    };
    let mut s = match a.kind {
        AlertKind::Traffic => format!(
            "EVENT=TRAFFIC SRC={} {amount}={} | DSTINFO={}",
            a.subject,
            a.value,
            peers(&a.evidence.destinations)
        ),
        AlertKind::AddressScan => format!(
            "EVENT=SCANNING SRC={} CONTACTED={} | DSTINFO={}",
            a.subject,
            a.value,
            peers(&a.evidence.destinations)
        ),
        AlertKind::PortScan => {
            let ports: Vec<String> = a
                .evidence
                .ports
                .iter()
                .map(|p| p.port.to_string())
                .collect();
            format!(
                "EVENT=SCANNING_PORT SRC={} PORTS=[{}] CONTACTED={}",
                a.subject,
                ports.join(" "),
                a.value
            )
        }
        AlertKind::Inbound => format!(
            "EVENT=INBOUND DST={} {amount}={} | SRCINFO={}",
            a.subject,
            a.value,
            peers(&a.evidence.sources)
        ),
    };
    let state = match ev.event {
        Transition::Open => "OPEN",
        Transition::Close => "CLOSED",
    };
    let _ = write!(
        s,
        " | STATE={state} ID={} LIMIT={} WINDOW={}s RULE={}",
        a.id,
        a.threshold,
        a.window_secs,
        a.rule.replace(' ', "_")
    );
    if ev.event == Transition::Close {
        let secs = a
            .end_ms
            .unwrap_or(a.last_update_ms)
            .saturating_sub(a.start_ms)
            / 1000;
        let _ = write!(s, " PEAK={} DURATION={secs}s", a.peak);
    }
    if a.degraded {
        let _ = write!(s, " DEGRADED=true DROP_RATIO={:.4}", a.drop_ratio);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, Evidence, PortRef};

    fn alert(kind: AlertKind) -> Alert {
        Alert {
            id: 7,
            kind,
            subject: "10.1.0.2".parse().unwrap(),
            rule: "default".into(),
            start_ms: 1_000,
            last_update_ms: 5_000,
            end_ms: None,
            value: 1_200,
            peak: 1_500,
            threshold: 1_000,
            unit: Unit::Bytes,
            window_secs: 170,
            degraded: false,
            drop_ratio: 0.0,
            evidence: Evidence {
                destinations: vec![Peer {
                    ip: "10.2.0.2".parse().unwrap(),
                    bytes: 1_200,
                    packets: 3,
                }],
                sources: vec![],
                ports: vec![
                    PortRef {
                        proto: "tcp".into(),
                        port: 22,
                    },
                    PortRef {
                        proto: "tcp".into(),
                        port: 80,
                    },
                ],
            },
        }
    }

    #[test]
    fn traffic_open_keeps_the_original_words() {
        let l = line(&AlertEvent {
            event: Transition::Open,
            alert: alert(AlertKind::Traffic),
        });
        assert_eq!(
            l,
            "EVENT=TRAFFIC SRC=10.1.0.2 TOTALBYTES=1200 | DSTINFO=[{10.2.0.2 1200}] | STATE=OPEN ID=7 LIMIT=1000 WINDOW=170s RULE=default"
        );
    }

    #[test]
    fn port_scan_and_close_lines() {
        let mut a = alert(AlertKind::PortScan);
        a.end_ms = Some(61_000);
        let l = line(&AlertEvent {
            event: Transition::Close,
            alert: a,
        });
        assert!(
            l.starts_with("EVENT=SCANNING_PORT SRC=10.1.0.2 PORTS=[22 80] CONTACTED=1200"),
            "{l}"
        );
        assert!(
            l.ends_with(
                "STATE=CLOSED ID=7 LIMIT=1000 WINDOW=170s RULE=default PEAK=1500 DURATION=60s"
            ),
            "{l}"
        );
    }

    #[test]
    fn inbound_and_degraded() {
        let mut a = alert(AlertKind::Inbound);
        a.degraded = true;
        a.drop_ratio = 0.125;
        let l = line(&AlertEvent {
            event: Transition::Open,
            alert: a,
        });
        assert!(
            l.starts_with("EVENT=INBOUND DST=10.1.0.2 TOTALBYTES=1200 | SRCINFO=[]"),
            "{l}"
        );
        assert!(l.ends_with("DEGRADED=true DROP_RATIO=0.1250"), "{l}");
    }
}
