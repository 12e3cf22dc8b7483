//! What a replay found, for a person (a table) or a script (`--json`).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::input::FileStats;
use super::totals::WholeTotals;
use crate::alert::{Alert, AlertEvent, Transition};
use crate::snapshot::Snapshot;
use crate::wire::Addr;

#[derive(Debug, Serialize)]
pub struct HostLine {
    pub addr: IpAddr,
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub recv_bytes: u64,
    pub recv_packets: u64,
}

#[derive(Debug, Serialize)]
pub struct PairLine {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub bytes: u64,
    pub packets: u64,
}

/// Everything the end of a replay reports.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub files: Vec<FileStats>,
    /// Frames read and, of them, IP packets and their layer-3 bytes.
    pub frames: u64,
    pub ip_packets: u64,
    pub ip_bytes: u64,
    /// Tunnel packets looked into (`capture.decapsulate`) and their
    /// layer-3 bytes; the packets inside are in `ip_packets`.
    pub tunnel_packets: u64,
    pub tunnel_bytes: u64,
    /// Capture time covered, first to last tick.
    pub ticks: u64,
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
    pub elapsed_secs: f64,
    pub frames_per_sec: f64,
    pub out_of_order: u64,
    pub hosts_total: usize,
    pub hosts: Vec<HostLine>,
    pub pairs_total: usize,
    pub pairs: Vec<PairLine>,
    pub untracked_host_bytes: u64,
    pub untracked_pair_bytes: u64,
    /// Every alert raised, as it stood last (closed ones with their end).
    pub alerts: Vec<Alert>,
    pub non_ip: BTreeMap<String, u64>,
    pub parse_errors: BTreeMap<String, u64>,
}

/// Orders `v` by `cmp` and keeps its first `top` (all for 0): a partial
/// selection first, so a capture of a million hosts is not sorted whole
/// for its ten largest.
fn top_first<T>(v: &mut Vec<T>, top: usize, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if top > 0 && v.len() > top {
        v.select_nth_unstable_by(top - 1, &cmp);
        v.truncate(top);
    }
    v.sort_unstable_by(cmp);
}

impl Summary {
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, all parts of one report"
    )]
    pub fn build(
        files: Vec<FileStats>,
        mut last: Option<Snapshot>,
        totals: &WholeTotals,
        events: Vec<AlertEvent>,
        ticks: u64,
        out_of_order: u64,
        elapsed: Duration,
        top: usize,
    ) -> Summary {
        // The order of IP addresses (IPv4 before IPv6) as plain integers.
        let order = |a: &Addr| (!a.is_v4(), a.0);
        let mut hosts: Vec<(u64, Addr, _)> = totals
            .hosts()
            .map(|(a, t)| (t.sent_bytes + t.recv_bytes, a, t))
            .collect();
        let hosts_total = hosts.len();
        let by_bytes = |x: &(u64, Addr, _), y: &(u64, Addr, _)| {
            y.0.cmp(&x.0).then_with(|| order(&x.1).cmp(&order(&y.1)))
        };
        top_first(&mut hosts, top, by_bytes);
        let hosts: Vec<HostLine> = hosts
            .into_iter()
            .map(|(_, a, t)| HostLine {
                addr: a.ip(),
                sent_bytes: t.sent_bytes,
                sent_packets: t.sent_packets,
                recv_bytes: t.recv_bytes,
                recv_packets: t.recv_packets,
            })
            .collect();
        let mut pairs: Vec<(Addr, Addr, _)> = totals.pairs().map(|((s, d), t)| (s, d, t)).collect();
        let pairs_total = pairs.len();
        top_first(&mut pairs, top, |x, y| {
            y.2.bytes
                .cmp(&x.2.bytes)
                .then_with(|| order(&x.0).cmp(&order(&y.0)))
                .then_with(|| order(&x.1).cmp(&order(&y.1)))
        });
        let pairs: Vec<PairLine> = pairs
            .into_iter()
            .map(|(s, d, t)| PairLine {
                source: s.ip(),
                destination: d.ip(),
                bytes: t.bytes,
                packets: t.packets,
            })
            .collect();
        // Taken, not copied: tens of thousands of alerts with their
        // evidence, copied once or twice each, were a tail of the replay
        // after its last packet.
        let mut latest: BTreeMap<u64, Alert> = BTreeMap::new();
        for e in events {
            match latest.entry(e.alert.id) {
                Entry::Vacant(v) => {
                    v.insert(e.alert);
                }
                Entry::Occupied(mut o) => {
                    if e.event == Transition::Close || o.get().end_ms.is_none() {
                        o.insert(e.alert);
                    }
                }
            }
        }
        // Alerts still open at the end carry their latest figures.
        if let Some(s) = &mut last {
            let open = std::mem::take(&mut s.alerts);
            for a in Arc::try_unwrap(open).unwrap_or_else(|shared| (*shared).clone()) {
                if let Some(l) = latest.get_mut(&a.id) {
                    *l = a;
                }
            }
        }
        let last = last.as_ref();
        let (mut frames, mut ip_packets, mut ip_bytes) = (0, 0, 0);
        let (mut tunnel_packets, mut tunnel_bytes) = (0, 0);
        let mut non_ip = BTreeMap::new();
        let mut parse_errors = BTreeMap::new();
        if let Some(s) = last {
            for i in &s.ifaces {
                frames += i.totals.frames;
                ip_packets += i.totals.ip_packets;
                ip_bytes += i.totals.ip_bytes;
                tunnel_packets += i.totals.tunnel_packets;
                tunnel_bytes += i.totals.tunnel_bytes;
                for (k, n) in &i.totals.non_ip {
                    if *n > 0 {
                        *non_ip.entry(k.to_string()).or_default() += n;
                    }
                }
                for (k, n) in &i.totals.malformed {
                    *parse_errors.entry(k.clone()).or_default() += n;
                }
            }
        }
        let secs = elapsed.as_secs_f64();
        Summary {
            files,
            frames,
            ip_packets,
            ip_bytes,
            tunnel_packets,
            tunnel_bytes,
            ticks,
            first_ms: last.map(|s| s.unix_ms.saturating_sub(ticks * s.tick_ms)),
            last_ms: last.map(|s| s.unix_ms),
            elapsed_secs: secs,
            frames_per_sec: if secs > 0.0 {
                frames as f64 / secs
            } else {
                0.0
            },
            out_of_order,
            hosts_total,
            hosts,
            pairs_total,
            pairs,
            untracked_host_bytes: totals.untracked_host_bytes,
            untracked_pair_bytes: totals.untracked_pair_bytes,
            alerts: latest.into_values().collect(),
            non_ip,
            parse_errors,
        }
    }

    /// The summary as a person reads it.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "\n{} frames, {} IP packets, {} IP bytes over {} ticks; read in {:.2} s ({:.2} M frames/s)",
            self.frames,
            self.ip_packets,
            self.ip_bytes,
            self.ticks,
            self.elapsed_secs,
            self.frames_per_sec / 1e6
        );
        for f in &self.files {
            let _ = writeln!(
                o,
                "  {} ({} compression): {} records, {} bytes{}",
                f.path,
                f.compression,
                f.read.records,
                f.read.bytes,
                skipped(&f.read)
            );
        }
        let _ = writeln!(
            o,
            "\nTop hosts ({} of {}):\n  {:<40} {:>14} {:>10} {:>14} {:>10}",
            self.hosts.len(),
            self.hosts_total,
            "host",
            "sent bytes",
            "packets",
            "recv bytes",
            "packets"
        );
        for h in &self.hosts {
            let _ = writeln!(
                o,
                "  {:<40} {:>14} {:>10} {:>14} {:>10}",
                h.addr.to_string(),
                h.sent_bytes,
                h.sent_packets,
                h.recv_bytes,
                h.recv_packets
            );
        }
        let _ = writeln!(
            o,
            "\nTop pairs ({} of {}):\n  {:<40} {:<40} {:>14} {:>10}",
            self.pairs.len(),
            self.pairs_total,
            "source",
            "destination",
            "bytes",
            "packets"
        );
        for p in &self.pairs {
            let _ = writeln!(
                o,
                "  {:<40} {:<40} {:>14} {:>10}",
                p.source.to_string(),
                p.destination.to_string(),
                p.bytes,
                p.packets
            );
        }
        let _ = writeln!(o, "\nAlerts ({}):", self.alerts.len());
        for a in &self.alerts {
            let _ = writeln!(
                o,
                "  #{:<5} {:<13} {:<40} peak {} {:?} > {} (rule {}){}",
                a.id,
                a.kind.name(),
                a.subject.to_string(),
                a.peak,
                a.unit,
                a.threshold,
                a.rule,
                if a.end_ms.is_some() {
                    ", closed"
                } else {
                    ", open at the end"
                }
            );
        }
        if !self.non_ip.is_empty() {
            let _ = writeln!(o, "\nNot IP: {}", list(&self.non_ip));
        }
        let _ = writeln!(
            o,
            "Parse errors: {}",
            if self.parse_errors.is_empty() {
                "none".to_string()
            } else {
                list(&self.parse_errors)
            }
        );
        if self.out_of_order > 0 {
            let _ = writeln!(
                o,
                "{} packets older than their tick (counted in the tick being filled)",
                self.out_of_order
            );
        }
        if self.untracked_host_bytes + self.untracked_pair_bytes > 0 {
            let _ = writeln!(
                o,
                "Tables full: {} host bytes and {} pair bytes not itemised (raise traffic.max_hosts / max_pairs)",
                self.untracked_host_bytes, self.untracked_pair_bytes
            );
        }
        o
    }
}

fn list(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn skipped(r: &super::reader::ReadStats) -> String {
    let mut v = Vec::new();
    for (lt, n) in &r.unknown_link {
        v.push(format!("{n} on unknown link type {lt}"));
    }
    if r.unknown_interface > 0 {
        v.push(format!("{} on undescribed interfaces", r.unknown_interface));
    }
    if r.caplen_over_wire > 0 {
        v.push(format!(
            "{} with a captured length over the wire length",
            r.caplen_over_wire
        ));
    }
    if v.is_empty() {
        String::new()
    } else {
        format!("; skipped or corrected: {}", v.join(", "))
    }
}
