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
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use super::{Inbox, SinkStats};
use crate::alert::{AlertEvent, AlertKind, Peer, Transition, Unit};

/// Writes lines until the queue closes.
pub fn run(rx: &Inbox, stats: &SinkStats) {
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

/// `MITIGATION=ANNOUNCE DST=10.2.0.9 PREFIX=10.2.0.9/32 FLOWSPEC="udp to
/// 10.2.0.9/32 port 53: discard" | ID=7 KIND=udp_in REASON="…"`
fn action_line(a: &crate::alert::Alert, m: &crate::mitigation::Action) -> String {
    use crate::mitigation::What;
    let what = match m.what {
        What::Announce => "ANNOUNCE",
        What::Share => "SHARE",
        What::Withdraw => "WITHDRAW",
        What::Refuse => "REFUSE",
        What::DryRun => "DRY_RUN",
    };
    let mut s = format!(
        "MITIGATION={what} {}={}",
        if a.kind.subject_is_source() {
            "SRC"
        } else {
            "DST"
        },
        a.subject
    );
    if !m.prefix.is_empty() {
        let _ = write!(s, " PREFIX={}", m.prefix);
    }
    if let Some(f) = &m.flowspec {
        let _ = write!(s, " FLOWSPEC={f:?}");
    }
    let _ = write!(s, " | ID={} KIND={}", a.id, a.kind.name());
    if let Some(r) = &m.reason {
        let _ = write!(s, " REASON={r:?}");
    }
    s
}

/// Appends `n` in decimal.
fn push_u64(s: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        s.push(char::from(d));
    }
}

/// Appends an address as `Display` writes it; IPv4 without the formatting
/// machinery, which a replay raising thousands of alerts spends most of its
/// log line on.
fn push_ip(s: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                push_u64(s, u64::from(o));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(s, "{v6}");
        }
    }
}

fn push_peers(s: &mut String, p: &[Peer]) {
    s.push('[');
    for (i, p) in p.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push('{');
        push_ip(s, p.ip);
        s.push(' ');
        push_u64(s, p.bytes);
        s.push('}');
    }
    s.push(']');
}

/// The value a line shows: a scan's estimated size where there is one
/// (what the scan really reached, not the threshold plus one the window's
/// exact count stops at), else the alert's value.
fn contacted(a: &crate::alert::Alert) -> u64 {
    match a.kind {
        AlertKind::AddressScan | AlertKind::PortScan => a.evidence.contacted.unwrap_or(a.value),
        _ => a.value,
    }
}

/// The log line of an event.
pub fn line(ev: &AlertEvent) -> String {
    let a = &ev.alert;
    if let Some(m) = &ev.mitigation {
        return action_line(a, m);
    }
    let amount = match a.unit {
        Unit::Packets => "TOTALPACKETS=",
        _ => "TOTALBYTES=",
    };
    let mut s = String::with_capacity(256);
    let value_key = match a.kind {
        AlertKind::Traffic | AlertKind::Inbound => amount,
        AlertKind::AddressScan | AlertKind::PortScan => "CONTACTED=",
        _ => match a.unit {
            Unit::BitsPerSec => "BITS_PER_SEC=",
            Unit::FlowsPerSec => "FLOWS_PER_SEC=",
            _ => "PACKETS_PER_SEC=",
        },
    };
    s.push_str("EVENT=");
    s.push_str(a.kind.event_word());
    s.push_str(if a.kind.subject_is_source() {
        " SRC="
    } else {
        " DST="
    });
    push_ip(&mut s, a.subject);
    s.push(' ');
    match a.kind {
        AlertKind::PortScan => {
            s.push_str("PORTS=[");
            for (i, p) in a.evidence.ports.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                push_u64(&mut s, u64::from(p.port));
            }
            s.push_str("] ");
            s.push_str(value_key);
            push_u64(&mut s, contacted(a));
        }
        k if !k.subject_is_source() => {
            s.push_str(value_key);
            push_u64(&mut s, a.value);
            s.push_str(" | SRCINFO=");
            push_peers(&mut s, &a.evidence.sources);
            if let Some(f) = &a.evidence.fingerprint {
                let _ = write!(s, " | PROTO={} SYN={:.2} PORTS=[", f.protocol, f.syn_share);
                for (i, p) in f.ports.iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    push_u64(&mut s, u64::from(p.port));
                }
                let _ = write!(s, "] TOP_SOURCE_PREFIXES_SHARE={:.2}", f.top_prefixes_share);
            }
        }
        _ => {
            s.push_str(value_key);
            push_u64(&mut s, contacted(a));
            s.push_str(" | DSTINFO=");
            push_peers(&mut s, &a.evidence.destinations);
        }
    }
    let state = match ev.event {
        Transition::Open => "OPEN",
        Transition::Close => "CLOSED",
        Transition::Mitigation => "ACTED",
    };
    s.push_str(" | STATE=");
    s.push_str(state);
    s.push_str(" ID=");
    push_u64(&mut s, a.id);
    s.push_str(" LIMIT=");
    push_u64(&mut s, a.threshold);
    s.push_str(" WINDOW=");
    push_u64(&mut s, a.window_secs);
    s.push_str("s RULE=");
    s.push_str(&a.rule.replace(' ', "_"));
    if ev.event == Transition::Close {
        let secs = a
            .end_ms
            .unwrap_or(a.last_update_ms)
            .saturating_sub(a.start_ms)
            / 1000;
        s.push_str(" PEAK=");
        push_u64(&mut s, a.peak);
        s.push_str(" DURATION=");
        push_u64(&mut s, secs);
        s.push('s');
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
            evidence: std::sync::Arc::new(Evidence {
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
                contacted: None,
                fingerprint: None,
                capture: None,
            }),
        }
    }

    #[test]
    fn traffic_open_keeps_the_original_words() {
        let l = line(&AlertEvent {
            event: Transition::Open,
            alert: alert(AlertKind::Traffic),
            mitigation: None,
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
            mitigation: None,
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
        // With the scan's estimated size, the line shows that.
        let mut a = alert(AlertKind::AddressScan);
        std::sync::Arc::make_mut(&mut a.evidence).contacted = Some(254);
        let l = line(&AlertEvent {
            event: Transition::Open,
            alert: a,
            mitigation: None,
        });
        assert!(
            l.starts_with("EVENT=SCANNING SRC=10.1.0.2 CONTACTED=254 |"),
            "{l}"
        );
    }

    #[test]
    fn a_flood_line_carries_its_fingerprint() {
        use crate::aggregator::fingerprint::{Fingerprint, PortCount};
        let mut a = alert(AlertKind::SynIn);
        a.unit = Unit::PacketsPerSec;
        std::sync::Arc::make_mut(&mut a.evidence).fingerprint = Some(Fingerprint {
            packets: 9000,
            protocol: "tcp".into(),
            syn_share: 1.0,
            fragment_share: 0.0,
            ports: vec![PortCount {
                proto: "tcp".into(),
                port: 80,
                packets: 9000,
            }],
            source_prefixes: vec![],
            top_prefixes_share: 0.001,
            distinct_prefixes: 1024,
        });
        let l = line(&AlertEvent {
            event: Transition::Open,
            alert: a,
            mitigation: None,
        });
        assert!(
            l.starts_with(
                "EVENT=SYN_IN DST=10.1.0.2 PACKETS_PER_SEC=1200 | SRCINFO=[] | PROTO=tcp SYN=1.00 PORTS=[80] TOP_SOURCE_PREFIXES_SHARE=0.00 | STATE=OPEN"
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
            mitigation: None,
        });
        assert!(
            l.starts_with("EVENT=INBOUND DST=10.1.0.2 TOTALBYTES=1200 | SRCINFO=[]"),
            "{l}"
        );
        assert!(l.ends_with("DEGRADED=true DROP_RATIO=0.1250"), "{l}");
    }

    #[test]
    fn addresses_and_numbers_are_written_as_display_writes_them() {
        let mut a = alert(AlertKind::AddressScan);
        a.subject = "2001:db8::1".parse().unwrap();
        a.value = u64::MAX;
        std::sync::Arc::make_mut(&mut a.evidence).destinations = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.9",
            "::ffff:1.2.3.4",
            "fe80::1",
        ]
        .iter()
        .zip([0, 9, 10, 1_234_567_890, u64::MAX])
        .map(|(ip, bytes)| Peer {
            ip: ip.parse().unwrap(),
            bytes,
            packets: 1,
        })
        .collect();
        let want_peers: Vec<String> = a
            .evidence
            .destinations
            .iter()
            .map(|p| format!("{{{} {}}}", p.ip, p.bytes))
            .collect();
        let l = line(&AlertEvent {
            event: Transition::Open,
            alert: a.clone(),
            mitigation: None,
        });
        assert_eq!(
            l,
            format!(
                "EVENT=SCANNING SRC={} CONTACTED={} | DSTINFO=[{}] | STATE=OPEN ID=7 LIMIT=1000 WINDOW=170s RULE=default",
                a.subject,
                u64::MAX,
                want_peers.join(" ")
            )
        );
    }
}
