//! A pcap of every flood: when a flood alert opens (traffic, inbound, a
//! rate), the workers copy the packets to its subject (a victim) or from it
//! (a source) out of their rings ([`take`]) and hand them over with their
//! shards; here the next `packets` of them are put in time order and
//! written to `<dir>/<alert id>.pcap` ([`pcap`]).
//!
//! Exactness: each worker says since when it has copied a subject's
//! packets; the capture starts at the latest of those starts, from which
//! on every worker sees every packet, so the file holds exactly the packets
//! received from then on, in order — unless a shard filled up, which ends
//! the capture where that worker's copies end (said in the log).
//!
//! Order: workers hand over at slightly different moments, so one tick's
//! shards reach different times. Each worker says up to when it has read;
//! only frames up to the earliest of those are written, the rest wait for
//! the next tick's shards.

pub mod pcap;
pub mod summary;
pub mod take;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::alert::{AlertEvent, AlertKind, Transition};
use crate::config::attack::AttackPcapConfig;
use crate::wire::Addr;
use take::{Captured, Wanted};

/// Most captures running at once; alerts beyond get none (counted).
pub const MAX_RUNNING: usize = 16;
/// Most frames one capture holds before they are written.
const PENDING_MAX: usize = 4 * take::MAX_FRAMES;

/// True for the kinds whose alerts get a capture: floods, not scans.
pub fn captured_kind(k: AlertKind) -> bool {
    !matches!(k, AlertKind::AddressScan | AlertKind::PortScan)
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    ts_ns: u64,
    wire_len: u32,
    link: crate::wire::LinkType,
    start: usize,
    len: usize,
}

#[derive(Debug)]
struct Running {
    kind: AlertKind,
    subject_ip: IpAddr,
    /// What the written packets show.
    tally: summary::Tally,
    subject: Addr,
    toward: bool,
    /// Per worker, since when it copies (ns).
    since: Vec<Option<u64>>,
    /// Frames received, not yet written (time order unknown), their bytes
    /// in one buffer (freed whole when the capture ends).
    pending: Vec<Pending>,
    pending_bytes: Vec<u8>,
    /// A worker's shard filled up: nothing at or after this is complete.
    complete_until: Option<u64>,
    /// Frames before this were taken by some workers only.
    start: Option<u64>,
    written: u32,
    /// The receive time of the last frame written.
    last_written: u64,
    /// A frame came after later ones had been written (a worker's frame
    /// received earlier than it said it had read to).
    late: bool,
}

/// Counters, for the API.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct AttackTotals {
    pub started: u64,
    pub completed: u64,
    /// Ended before `packets`: the alert closed, or a shard filled up.
    pub cut_short: u64,
    /// Alerts that got no capture: too many running.
    pub skipped: u64,
}

/// What the API shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttackReport {
    pub dir: String,
    pub packets: u32,
    /// Alerts whose packets are being captured.
    pub running: Vec<u64>,
    pub totals: AttackTotals,
    pub writer: pcap::WriterStats,
}

/// The aggregator's side of attack capture.
#[derive(Debug)]
pub struct Attacks {
    cfg: Option<AttackPcapConfig>,
    packets: u32,
    dir: PathBuf,
    writer: Option<pcap::Writer>,
    running: BTreeMap<u64, Running>,
    workers: usize,
    /// Per worker, up to when (ns) it has read: see [`Captured::read_to`].
    read_to: Vec<u64>,
    pub totals: AttackTotals,
    /// The list changed since it was last pinned.
    changed: bool,
    /// Captures completed since the last [`Attacks::take_summaries`].
    summaries: Vec<(AlertKind, IpAddr, summary::CaptureSummary)>,
}

impl Attacks {
    /// Starts the writer if captures are on; a directory that cannot be
    /// made is said once and captures stay off.
    pub fn start(cfg: &AttackPcapConfig, workers: usize) -> Attacks {
        let writer = if cfg.packets > 0 && !cfg.dir.is_empty() {
            match pcap::Writer::start(std::path::Path::new(&cfg.dir), cfg.max_size.0) {
                Ok(w) => Some(w),
                Err(e) => {
                    log::error!(
                        "attack_pcap.dir {}: {e}; no attack captures will be written",
                        cfg.dir
                    );
                    None
                }
            }
        } else {
            None
        };
        Attacks {
            cfg: Some(cfg.clone()),
            packets: cfg.packets,
            dir: cfg.dir.clone().into(),
            writer,
            running: BTreeMap::new(),
            workers: workers.max(1),
            read_to: vec![0; workers.max(1)],
            totals: AttackTotals::default(),
            changed: false,
            summaries: Vec::new(),
        }
    }

    /// Off (replay, tests).
    pub fn off() -> Attacks {
        Attacks {
            cfg: None,
            packets: 0,
            dir: PathBuf::new(),
            writer: None,
            running: BTreeMap::new(),
            workers: 1,
            read_to: vec![0],
            totals: AttackTotals::default(),
            changed: false,
            summaries: Vec::new(),
        }
    }

    /// Takes what worker `w`'s shard copied; empties it for reuse.
    pub fn collect(&mut self, w: usize, cap: &mut Captured) {
        if let Some(r) = self.read_to.get_mut(w) {
            *r = (*r).max(cap.read_to);
        }
        if self.running.is_empty() && cap.frames.capacity() + cap.bytes.capacity() > 0 {
            // No capture runs: the shard's buffers go back to the system.
            *cap = Captured::default();
            return;
        }
        if cap.is_empty() {
            return;
        }
        for &(id, since) in &cap.since {
            if let Some(r) = self.running.get_mut(&id)
                && let Some(s) = r.since.get_mut(w)
            {
                *s = Some(since);
            }
        }
        for c in &cap.frames {
            if let Some(r) = self.running.get_mut(&c.id) {
                if r.written > 0 && c.ts_ns <= r.last_written {
                    // Its place in the file is gone: the capture ends
                    // before it.
                    if r.start.is_some_and(|s| c.ts_ns > s) {
                        r.late = true;
                        r.complete_until =
                            Some(r.complete_until.map_or(c.ts_ns, |t| t.min(c.ts_ns)));
                    }
                    continue;
                }
                // Frames wait at most a tick or two for every worker's
                // start; a worker that never says bounds them here.
                if r.pending.len() < PENDING_MAX {
                    let data = cap.data(c);
                    r.pending.push(Pending {
                        ts_ns: c.ts_ns,
                        wire_len: c.wire_len,
                        link: c.link,
                        start: r.pending_bytes.len(),
                        len: data.len(),
                    });
                    r.pending_bytes.extend_from_slice(data);
                } else {
                    r.complete_until = Some(r.complete_until.map_or(c.ts_ns, |t| t.min(c.ts_ns)));
                }
            }
        }
        if let Some(t) = cap.full_at {
            for r in self.running.values_mut() {
                r.complete_until = Some(r.complete_until.map_or(t, |u| u.min(t)));
            }
        }
        cap.clear();
    }

    /// At the end of a tick: writes what is complete, starts captures for
    /// the flood alerts that opened, ends those whose alert closed.
    /// `live[w]` is false for workers that ended.
    pub fn end_tick(&mut self, events: &[AlertEvent], live: &[bool]) {
        if self.writer.is_none() {
            return;
        }
        let ids: Vec<u64> = self.running.keys().copied().collect();
        let ready_to = self.ready_to(live);
        for id in ids {
            let Some(writer) = &self.writer else { return };
            let r = self.running.get_mut(&id).expect("listed");
            let starts: Option<Vec<u64>> = r
                .since
                .iter()
                .zip(live.iter().chain(std::iter::repeat(&true)))
                .filter(|(_, l)| **l)
                .map(|(s, _)| *s)
                .collect();
            if let Some(starts) = starts {
                let start = starts.into_iter().max().unwrap_or(0);
                r.start = Some(start);
            }
            if let Some(start) = r.start {
                let done = flush(r, start, ready_to, self.packets, id, writer);
                if done {
                    self.finish(id, true, ready_to);
                }
            }
        }
        for ev in events {
            let a = &ev.alert;
            match ev.event {
                Transition::Open if captured_kind(a.kind) => self.begin(a.id, a.subject, a.kind),
                // Nothing to do for an alert without a capture.
                Transition::Close => self.finish(a.id, false, ready_to),
                _ => {}
            }
        }
    }

    fn begin(&mut self, id: u64, subject: IpAddr, kind: AlertKind) {
        if self.running.len() >= MAX_RUNNING {
            self.totals.skipped += 1;
            if self.totals.skipped.is_power_of_two() {
                log::warn!(
                    "attack capture: {MAX_RUNNING} captures run already; {} alert(s) got none",
                    self.totals.skipped
                );
            }
            return;
        }
        self.totals.started += 1;
        self.running.insert(
            id,
            Running {
                kind,
                subject_ip: subject,
                tally: summary::Tally::default(),
                subject: Addr::from(subject),
                toward: !kind.subject_is_source(),
                since: vec![None; self.workers],
                pending: Vec::new(),
                pending_bytes: Vec::new(),
                complete_until: None,
                start: None,
                written: 0,
                last_written: 0,
                late: false,
            },
        );
        self.changed = true;
    }

    /// Up to when every live worker's frames are in (`live[w]` is false
    /// for workers that ended; missing entries count as live).
    fn ready_to(&self, live: &[bool]) -> u64 {
        self.read_to
            .iter()
            .zip(live.iter().chain(std::iter::repeat(&true)))
            .filter(|(_, l)| **l)
            .map(|(r, _)| *r)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Ends a capture: what is complete — received up to `ready_to`, when
    /// every worker's frames are in — is written, the file closed.
    fn finish(&mut self, id: u64, full: bool, ready_to: u64) {
        let Some(mut r) = self.running.remove(&id) else {
            return;
        };
        self.changed = true;
        let Some(writer) = &self.writer else { return };
        if !full {
            if let Some(start) = r.start {
                flush(&mut r, start, ready_to, self.packets, id, writer);
            }
        }
        if r.written > 0 && full {
            self.summaries
                .push((r.kind, r.subject_ip, std::mem::take(&mut r.tally).summary()));
        }
        if r.written >= self.packets {
            self.totals.completed += 1;
        } else {
            self.totals.cut_short += 1;
            log::info!(
                "attack capture {}: {} of {} packets ({})",
                pcap::path_of(&self.dir, id).display(),
                r.written,
                self.packets,
                if r.late {
                    "a worker's packets came after later ones were written"
                } else if r.complete_until.is_some() {
                    "the packets came faster than a tick's capture buffers hold"
                } else {
                    "the alert closed first"
                }
            );
        }
        if r.written > 0 {
            writer.send(pcap::Job::End { id });
        }
    }

    /// Summaries of the captures completed since the last call, for their
    /// alerts' evidence.
    pub fn take_summaries(&mut self) -> Vec<(AlertKind, IpAddr, summary::CaptureSummary)> {
        std::mem::take(&mut self.summaries)
    }

    /// The list the workers should copy for, when it changed.
    pub fn take_list(&mut self) -> Option<Option<take::List>> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        if self.running.is_empty() {
            return Some(None);
        }
        Some(Some(Arc::new(
            self.running
                .iter()
                .map(|(&id, r)| Wanted {
                    id,
                    subject: r.subject,
                    toward: r.toward,
                })
                .collect(),
        )))
    }

    /// A new configuration: captures start over with it if it changed
    /// (true: the workers' list is to be cleared).
    pub fn reconfigure(&mut self, cfg: &AttackPcapConfig) -> bool {
        if self.cfg.as_ref() == Some(cfg) || self.cfg.is_none() {
            return false;
        }
        let ids: Vec<u64> = self.running.keys().copied().collect();
        let ready_to = self.ready_to(&[]);
        for id in ids {
            self.finish(id, false, ready_to);
        }
        let workers = self.workers;
        let totals = self.totals;
        *self = Attacks::start(cfg, workers);
        self.totals = totals;
        true
    }

    /// Shutdown, once every worker has handed over its last shard:
    /// running captures keep all they have.
    pub fn stop(&mut self) {
        let ids: Vec<u64> = self.running.keys().copied().collect();
        for id in ids {
            self.finish(id, false, u64::MAX);
        }
    }

    pub fn report(&self) -> Option<AttackReport> {
        let w = self.writer_stats()?;
        Some(AttackReport {
            dir: self.dir.to_string_lossy().into_owned(),
            packets: self.packets,
            running: self.running.keys().copied().collect(),
            totals: self.totals,
            writer: w,
        })
    }

    /// The writer's counters.
    pub fn writer_stats(&self) -> Option<pcap::WriterStats> {
        self.writer
            .as_ref()
            .map(|w| *w.stats.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Writes the pending frames received after `start` and up to
/// `ready_to`, in time order, up to the file's `packets`; true when the
/// capture is done (full, or cut where a shard filled up and every frame
/// before that is written).
fn flush(
    r: &mut Running,
    start: u64,
    ready_to: u64,
    packets: u32,
    id: u64,
    writer: &pcap::Writer,
) -> bool {
    r.pending.sort_by_key(|f| f.ts_ns);
    let until = r.complete_until.unwrap_or(u64::MAX);
    let room = packets.saturating_sub(r.written) as usize;
    let mut out = Vec::new();
    let mut rest = Vec::new();
    for f in r
        .pending
        .iter()
        .filter(|f| f.ts_ns > start && f.ts_ns < until)
    {
        if out.len() < room && f.ts_ns <= ready_to {
            out.push(pcap::Frame {
                ts_ns: f.ts_ns,
                wire_len: f.wire_len,
                link: f.link,
                data: r.pending_bytes[f.start..f.start + f.len].to_vec(),
            });
        } else if rest.len() < room {
            rest.push(*f);
        }
    }
    r.written += out.len() as u32;
    for f in &out {
        r.tally.add(f);
    }
    if let Some(f) = out.last() {
        r.last_written = f.ts_ns;
    }
    // What is left waits for the next tick's frames, which can come before
    // these but not before what was written: only as many as could still
    // be written.
    let mut bytes = Vec::new();
    for f in &mut rest {
        let at = bytes.len();
        bytes.extend_from_slice(&r.pending_bytes[f.start..f.start + f.len]);
        f.start = at;
    }
    r.pending = rest;
    r.pending_bytes = bytes;
    if !out.is_empty() {
        writer.send(pcap::Job::Frames { id, frames: out });
    }
    // Cut short only once every frame before the cut is in.
    r.written >= packets || r.complete_until.is_some_and(|u| ready_to >= u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::wire::LinkType;
    use take::Copied;

    /// A worker's shard: what it copied since `since`, read up to its
    /// last frame.
    fn shard(since: u64, ts: &[u64]) -> Captured {
        let mut c = Captured::default();
        c.since.push((1, since));
        c.read_to = ts.iter().copied().max().unwrap_or(since).max(since);
        for &t in ts {
            let start = c.bytes.len() as u32;
            c.bytes.extend_from_slice(&t.to_le_bytes());
            c.frames.push(Copied {
                id: 1,
                ts_ns: t,
                wire_len: 8,
                link: LinkType::Ethernet,
                start,
                len: 8,
            });
        }
        c
    }

    /// The timestamps in a capture file written by [`pcap`].
    fn stamps(path: &std::path::Path) -> Vec<u64> {
        let b = std::fs::read(path).unwrap_or_default();
        let mut v = Vec::new();
        let mut at = 24;
        while at + 16 <= b.len() {
            let s = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            let ns = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap());
            let len = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
            v.push(u64::from(s) * 1_000_000_000 + u64::from(ns));
            at += 16 + len;
        }
        v
    }

    #[test]
    fn the_file_starts_when_every_worker_copies_and_is_in_time_order() {
        let dir = std::env::temp_dir().join(format!("ta-attacks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = AttackPcapConfig {
            packets: 3,
            dir: dir.to_string_lossy().into_owned(),
            max_size: crate::config::units::Size(1_000_000),
        };
        let mut at = Attacks::start(&cfg, 2);
        let open = AlertEvent::of(
            Transition::Open,
            Alert::sample(1, AlertKind::UdpIn, "10.2.0.2"),
        );
        let scan = AlertEvent::of(
            Transition::Open,
            Alert::sample(2, AlertKind::PortScan, "10.2.0.3"),
        );
        at.end_tick(&[open, scan], &[true, true]);
        let list = at.take_list().unwrap().unwrap();
        assert_eq!(list.len(), 1, "scans get no capture");
        assert!(list[0].toward);
        assert_eq!(at.take_list(), None, "unchanged");
        // Worker 0 copies from 100, worker 1 from 105: before 105 only
        // some packets were copied.
        at.collect(0, &mut shard(100, &[90, 110, 130]));
        at.collect(1, &mut shard(105, &[95, 106, 120, 140]));
        at.end_tick(&[], &[true, true]);
        assert_eq!(at.take_list(), Some(None), "done: nothing to copy");
        assert_eq!(at.totals.completed, 1);
        let f = pcap::path_of(&dir, 1);
        let mut got = Vec::new();
        for _ in 0..500 {
            got = stamps(&f);
            if got.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(got, [106, 110, 120]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Opens capture 1 (udp_in toward 10.2.0.2) of `packets` with two
    /// workers, in a fresh directory.
    fn two_workers(tag: &str, packets: u32) -> (Attacks, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("ta-attacks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = AttackPcapConfig {
            packets,
            dir: dir.to_string_lossy().into_owned(),
            max_size: crate::config::units::Size(1_000_000),
        };
        let mut at = Attacks::start(&cfg, 2);
        at.end_tick(
            &[AlertEvent::of(
                Transition::Open,
                Alert::sample(1, AlertKind::UdpIn, "10.2.0.2"),
            )],
            &[true, true],
        );
        let _ = at.take_list();
        (at, dir)
    }

    /// The file's timestamps once it holds `n` packets (the writer is a
    /// thread of its own).
    fn written(path: &std::path::Path, n: usize) -> Vec<u64> {
        let mut got = Vec::new();
        for _ in 0..500 {
            got = stamps(path);
            if got.len() >= n {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        got
    }

    /// The file holds exactly `want` and nothing more comes.
    fn written_only(path: &std::path::Path, want: &[u64]) {
        assert_eq!(written(path, want.len()), want);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(stamps(path), want, "nothing after these");
    }

    #[test]
    fn frames_a_later_shard_can_still_precede_wait_for_it() {
        let (mut at, dir) = two_workers("skew", 4);
        // Worker 0 handed over having read to 120, worker 1 to 150: worker
        // 0's next shard can still hold frames between them.
        at.collect(0, &mut shard(100, &[110, 120]));
        at.collect(1, &mut shard(100, &[115, 130, 140, 150]));
        at.end_tick(&[], &[true, true]);
        let f = pcap::path_of(&dir, 1);
        assert_eq!(written(&f, 3), [110, 115, 120], "only up to 120");
        let mut next = shard(100, &[125, 135]);
        next.since.clear();
        at.collect(0, &mut next);
        let mut quiet = Captured {
            read_to: 150,
            ..Captured::default()
        };
        at.collect(1, &mut quiet);
        at.end_tick(&[], &[true, true]);
        assert_eq!(at.totals.completed, 1);
        assert_eq!(written(&f, 4), [110, 115, 120, 125]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cut_waits_for_the_frames_before_it() {
        let (mut at, dir) = two_workers("cut-wait", 10);
        // Worker 1's shard filled at 103 (it read on to 110); worker 0 has
        // read only to 101.
        at.collect(0, &mut shard(100, &[101]));
        let mut full = shard(100, &[101, 102]);
        full.full_at = Some(103);
        full.read_to = 110;
        at.collect(1, &mut full);
        at.end_tick(&[], &[true, true]);
        assert_eq!(at.totals.cut_short, 0, "frames before 103 may still come");
        let mut next = shard(100, &[102, 104]);
        next.since.clear();
        at.collect(0, &mut next);
        at.collect(1, &mut Captured::default());
        at.end_tick(&[], &[true, true]);
        assert_eq!(at.totals.cut_short, 1);
        let f = pcap::path_of(&dir, 1);
        assert_eq!(written(&f, 4), [101, 101, 102, 102]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_closed_alert_keeps_only_what_every_worker_has_read_to() {
        let (mut at, dir) = two_workers("close", 10);
        at.collect(0, &mut shard(100, &[110, 120]));
        at.collect(1, &mut shard(100, &[115, 130]));
        let close = AlertEvent::of(
            Transition::Close,
            Alert::sample(1, AlertKind::UdpIn, "10.2.0.2"),
        );
        at.end_tick(&[close], &[true, true]);
        assert_eq!(at.totals.cut_short, 1);
        let f = pcap::path_of(&dir, 1);
        // Not 130: worker 0 may still have 125.
        written_only(&f, &[110, 115, 120]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_frame_older_than_what_was_written_ends_the_capture_before_it() {
        let (mut at, dir) = two_workers("late", 10);
        at.collect(0, &mut shard(100, &[110, 120]));
        at.collect(1, &mut shard(100, &[115, 130]));
        at.end_tick(&[], &[true, true]);
        let f = pcap::path_of(&dir, 1);
        assert_eq!(written(&f, 3), [110, 115, 120]);
        // Worker 1 said it had read to 130, yet brings 118.
        let mut late = shard(100, &[118, 140]);
        late.since.clear();
        at.collect(1, &mut late);
        at.collect(0, &mut shard(100, &[150]));
        at.end_tick(&[], &[true, true]);
        assert_eq!(at.totals.cut_short, 1, "{:?}", at.totals);
        assert_eq!(at.take_list(), Some(None));
        written_only(&f, &[110, 115, 120]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_worker_whose_shard_filled_cuts_the_capture_where_its_copies_end() {
        let (mut at, dir) = two_workers("cut", 10);
        at.collect(0, &mut shard(100, &[101, 102, 103, 104]));
        let mut full = shard(100, &[101, 102]);
        full.full_at = Some(103);
        full.read_to = 104;
        at.collect(1, &mut full);
        at.end_tick(&[], &[true, true]);
        assert_eq!(at.totals.cut_short, 1);
        let f = pcap::path_of(&dir, 1);
        assert_eq!(written(&f, 4), [101, 101, 102, 102], "nothing from 103 on");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
