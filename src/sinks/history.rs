//! The alert history: one JSON line per alert opening or closing, appended
//! to `alerts.history_file`, synced to disk per batch, rotated by size.
//!
//! At start the daemon reads it back: alerts whose last line is an opening
//! are still open, so `/active` and the history survive a restart. A line
//! cut short by a power failure is skipped with a warning (and cut off the
//! file, so the next line starts clean); so is any line that is not an
//! event. After a rotation the new file begins with the alerts still open,
//! so the current file alone is enough to restore them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::lines::{self, Line};
use super::{Inbox, SinkStats};
use crate::alert::{Alert, AlertEvent, Transition};
use crate::config::AlertsConfig;

/// What a history file held.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Alerts whose last event is an opening.
    pub open: Vec<Alert>,
    /// Highest alert id seen.
    pub max_id: u64,
    pub events: usize,
    /// Lines that were not events (skipped, warned about).
    pub skipped: usize,
    /// The last line was cut short; its byte offset.
    pub torn_at: Option<u64>,
}

/// Reads a history file. A missing file is an empty history.
pub fn load(path: &Path) -> io::Result<Loaded> {
    let file = match crate::config::file::open_regular(path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(e),
    };
    read(BufReader::new(file))
}

/// Reads history lines from any reader. Lines longer than
/// [`lines::MAX_LINE`] are skipped without being held.
pub fn read(r: impl BufRead) -> io::Result<Loaded> {
    read_bounded(r, lines::MAX_LINE)
}

/// [`read`], with lines longer than `max_line` skipped: the fuzz target
/// reaches the bound with a short input.
pub fn read_bounded(mut r: impl BufRead, max_line: usize) -> io::Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut latest: BTreeMap<u64, AlertEvent> = BTreeMap::new();
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        let (what, n) = lines::next(&mut r, &mut line, max_line)?;
        let start = offset;
        offset += n;
        match what {
            Line::End => break,
            Line::Torn => {
                loaded.torn_at = Some(start);
                break;
            }
            Line::TooLong => loaded.skipped += 1,
            // What a write cut short leaves when it cannot be cut off: the
            // next event starts a line of its own.
            Line::Whole if line == b"\n" => {}
            Line::Whole => match serde_json::from_slice::<AlertEvent>(&line) {
                Ok(ev) => {
                    loaded.events += 1;
                    loaded.max_id = loaded.max_id.max(ev.alert.id);
                    latest.insert(ev.alert.id, ev);
                }
                Err(_) => loaded.skipped += 1,
            },
        }
    }
    loaded.open = latest
        .into_values()
        .filter(|ev| ev.event == Transition::Open)
        .map(|ev| ev.alert)
        .collect();
    Ok(loaded)
}

/// Appends a record of each event a sink could not deliver at shutdown:
/// the event's own line with `"undelivered": SINK` added, so readers that
/// know nothing of it read the event (a duplicate they already drop) and
/// operators find what did not reach the webhook or the program.
pub fn append_undelivered(path: &Path, records: &[(&str, Arc<AlertEvent>)]) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct Record<'a> {
        #[serde(flatten)]
        ev: &'a AlertEvent,
        undelivered: &'a str,
    }
    let mut buf = Vec::new();
    for (sink, ev) in records {
        serde_json::to_writer(
            &mut buf,
            &Record {
                ev,
                undelivered: sink,
            },
        )
        .map_err(io::Error::other)?;
        buf.push(b'\n');
    }
    let mut f = crate::config::file::open_regular(
        path,
        OpenOptions::new().create(true).append(true).read(true),
    )?;
    // A torn last line would swallow the first record.
    let len = f.metadata()?.len();
    let mut last = [0u8; 1];
    if len > 0 && f.read_at(&mut last, len - 1)? == 1 && last[0] != b'\n' {
        buf.insert(0, b'\n');
    }
    f.write_all(&buf)?;
    f.sync_data()
}

/// The rotated files that exist, newest first: `file.1`, `file.2`, … up to
/// `keep`, stopping at the first one missing (rotation keeps them
/// contiguous). Never more names than there are files.
pub fn rotated(path: &Path, keep: u32) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for n in 1..=keep {
        let p = numbered(path, n);
        if std::fs::symlink_metadata(&p).is_err() {
            break;
        }
        v.push(p);
    }
    v
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    p.into()
}

/// Appends events to the history file.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    keep: u32,
    /// Open alerts by id, to start a rotated file with.
    open: BTreeMap<u64, Alert>,
    /// A failed write may have left part of a line: the next write starts
    /// a new line (when cutting it off failed too).
    torn: bool,
    /// Rotation is put off while the open alerts alone would fill most of
    /// a new file (each rotation would push out the last): said once.
    rotation_put_off: bool,
    last_error_log: Option<Instant>,
}

impl Writer {
    /// Opens (or makes) the file for appending; cuts off a torn last line.
    pub fn open(cfg: &AlertsConfig, restored: &[Alert]) -> io::Result<Writer> {
        let path = PathBuf::from(&cfg.history_file);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = crate::config::file::open_regular(
            &path,
            OpenOptions::new().create(true).append(true).read(true),
        )?;
        // The daemon has said so when it read the file back.
        if let Some(at) = load(&path)?.torn_at {
            file.set_len(at)?;
        }
        let size = file.metadata()?.len();
        Ok(Writer {
            path,
            file,
            size,
            max_size: cfg.history_max_size.0,
            keep: cfg.history_keep,
            open: restored.iter().map(|a| (a.id, a.clone())).collect(),
            torn: false,
            rotation_put_off: false,
            last_error_log: None,
        })
    }

    /// Writes until the queue closes.
    pub fn run(&mut self, rx: &Inbox, stats: &SinkStats) {
        while let Ok(ev) = rx.recv() {
            let mut batch = vec![ev];
            batch.extend(rx.try_iter());
            match self.write_batch(batch.iter().map(|e| &**e)) {
                Ok(()) => {
                    stats
                        .delivered
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    stats
                        .failed
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let what = format!("alert history {}: {e}", self.path.display());
                    self.say(&what);
                }
            }
            if let Err(e) = self.rotate_if_due() {
                let what = format!(
                    "alert history {}: cannot rotate ({e}); the file is {} bytes, past history_max_size ({}), and grows until rotation works again",
                    self.path.display(),
                    self.size,
                    self.max_size
                );
                self.say(&what);
            }
        }
    }

    /// An error, at most once a minute (a full disk fails every write).
    fn say(&mut self, what: &str) {
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
        {
            self.last_error_log = Some(now);
            log::error!("{what}");
        }
    }

    /// Appends a batch and syncs it to disk. A write that fails part-way
    /// (a full disk) is cut back to the last whole line, so the next event
    /// does not land on the end of a fragment and get lost with it.
    pub fn write_batch<'a>(
        &mut self,
        events: impl Iterator<Item = &'a AlertEvent>,
    ) -> io::Result<()> {
        let mut buf = Vec::new();
        if self.torn {
            buf.push(b'\n');
        }
        let mut changes = Vec::new();
        for ev in events {
            serde_json::to_writer(&mut buf, ev).map_err(io::Error::other)?;
            buf.push(b'\n');
            changes.push(ev);
        }
        if let Err(e) = self.file.write_all(&buf) {
            self.torn = self.file.set_len(self.size).is_err();
            return Err(e);
        }
        self.torn = false;
        self.size += buf.len() as u64;
        // Written: what is open follows, even if the sync below fails.
        for ev in changes {
            match ev.event {
                Transition::Open => {
                    self.open.insert(ev.alert.id, ev.alert.clone());
                }
                Transition::Close => {
                    self.open.remove(&ev.alert.id);
                }
                Transition::Mitigation => {}
            }
        }
        self.file.sync_data()
    }

    /// Rotates when the file has reached its bound, unless the open alerts
    /// alone would take more than half of the new file: rotating then
    /// would start every new file nearly full and push events out of the
    /// kept files within seconds. The file grows past its bound instead,
    /// until enough alerts close; said once per episode.
    pub fn rotate_if_due(&mut self) -> io::Result<()> {
        if self.size < self.max_size {
            return Ok(());
        }
        let carried = self.open_lines()?;
        if carried.len() as u64 > self.max_size / 2 {
            if !self.rotation_put_off {
                self.rotation_put_off = true;
                log::warn!(
                    "alert history {}: the {} open alerts take {} bytes, more than half of history_max_size ({}); rotation waits until they close and the file grows past its bound meanwhile (raise history_max_size)",
                    self.path.display(),
                    self.open.len(),
                    carried.len(),
                    self.max_size
                );
            }
            return Ok(());
        }
        if self.rotation_put_off {
            self.rotation_put_off = false;
            log::info!(
                "alert history {}: rotating again ({} bytes)",
                self.path.display(),
                self.size
            );
        }
        self.rotate(&carried)
    }

    fn open_lines(&self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        for a in self.open.values() {
            let ev = AlertEvent {
                event: Transition::Open,
                alert: a.clone(),
                mitigation: None,
            };
            serde_json::to_writer(&mut buf, &ev).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        Ok(buf)
    }

    /// `alerts.jsonl` becomes `alerts.jsonl.1`, older ones move up, the
    /// oldest beyond `keep` goes; the new file starts with the open alerts.
    /// Only files that exist are touched.
    fn rotate(&mut self, carried: &[u8]) -> io::Result<()> {
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let mut old = rotated(&self.path, self.keep);
            // The oldest at the bound is replaced by the rename below it.
            old.truncate(self.keep as usize - 1);
            for (i, from) in old.iter().enumerate().rev() {
                std::fs::rename(from, numbered(&self.path, i as u32 + 2))?;
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        self.size = 0;
        self.torn = false;
        if !carried.is_empty() {
            self.file.write_all(carried)?;
            self.file.sync_data()?;
            self.size = carried.len() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertKind;
    use crate::config::Config;
    use std::sync::Arc;

    fn alert(id: u64) -> Alert {
        Alert::sample(id, AlertKind::Traffic, "10.0.0.1")
    }

    fn ev(t: Transition, id: u64) -> AlertEvent {
        AlertEvent {
            event: t,
            alert: alert(id),
            mitigation: None,
        }
    }

    fn cfg(dir: &Path, max: u64) -> AlertsConfig {
        let mut c = Config::default().alerts;
        c.history_file = dir.join("alerts.jsonl").to_string_lossy().into_owned();
        c.history_max_size = crate::config::units::Size(max);
        c.history_keep = 2;
        c
    }

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ta-hist-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn open_alerts_survive_a_restart() {
        let d = tmp();
        let c = cfg(&d, 1 << 20);
        let mut w = Writer::open(&c, &[]).unwrap();
        w.write_batch(
            [
                ev(Transition::Open, 1),
                ev(Transition::Open, 2),
                ev(Transition::Close, 1),
            ]
            .iter(),
        )
        .unwrap();
        drop(w);
        let l = load(Path::new(&c.history_file)).unwrap();
        assert_eq!(l.open.iter().map(|a| a.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!((l.max_id, l.events, l.skipped, l.torn_at), (2, 3, 0, None));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_cut_off() {
        let d = tmp();
        let c = cfg(&d, 1 << 20);
        let mut w = Writer::open(&c, &[]).unwrap();
        w.write_batch([ev(Transition::Open, 1)].iter()).unwrap();
        drop(w);
        // A power cut in the middle of the next line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(&c.history_file)
            .unwrap();
        f.write_all(br#"{"event":"close","alert":{"id":1,"ki"#)
            .unwrap();
        drop(f);
        let l = load(Path::new(&c.history_file)).unwrap();
        assert_eq!(l.open.len(), 1);
        assert!(l.torn_at.is_some());
        // Reopening cuts the torn tail; the next event starts on its own line.
        let mut w = Writer::open(&c, &l.open).unwrap();
        w.write_batch([ev(Transition::Close, 1)].iter()).unwrap();
        let l = load(Path::new(&c.history_file)).unwrap();
        assert!(l.open.is_empty());
        assert_eq!((l.skipped, l.torn_at), (0, None));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_line_past_the_bound_is_skipped_and_one_at_it_is_read() {
        let a = serde_json::to_string(&ev(Transition::Open, 4)).unwrap();
        let b = serde_json::to_string(&ev(Transition::Open, 5)).unwrap();
        assert_eq!(a.len(), b.len());
        // The bound counts the newline: `a`'s line is at it, `b`'s (with
        // a space, still an event) one past it.
        let max = a.len() + 1;
        let text = format!("{a}\n{b} \n");
        let l = read_bounded(text.as_bytes(), max).unwrap();
        assert_eq!((l.events, l.skipped, l.max_id), (1, 1, 4));
        let l = read(text.as_bytes()).unwrap();
        assert_eq!((l.events, l.skipped, l.max_id), (2, 0, 5));
        // The history's pages skip the same line.
        let page = |max| {
            crate::http::history_page(text.as_bytes(), 0, 10, max)
                .unwrap()
                .0
        };
        assert_eq!((page(max), page(lines::MAX_LINE)), (1, 2));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let d = tmp();
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("alerts.jsonl");
        let good = serde_json::to_string(&ev(Transition::Open, 4)).unwrap();
        std::fs::write(&p, format!("not json\n{good}\n{{\"event\":\"bogus\"}}\n")).unwrap();
        let l = load(&p).unwrap();
        assert_eq!((l.events, l.skipped, l.open.len()), (1, 2, 1));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rotation_keeps_open_alerts_in_the_new_file() {
        let d = tmp();
        let c = cfg(&d, 64 * 1024);
        let mut w = Writer::open(&c, &[]).unwrap();
        w.write_batch([ev(Transition::Open, 1)].iter()).unwrap();
        let mut id = 2;
        while !d.join("alerts.jsonl.2").exists() {
            w.write_batch([ev(Transition::Open, id), ev(Transition::Close, id)].iter())
                .unwrap();
            w.rotate_if_due().unwrap();
            id += 1;
            assert!(id < 100_000);
        }
        let l = load(Path::new(&c.history_file)).unwrap();
        assert_eq!(l.open.iter().map(|a| a.id).collect::<Vec<_>>(), vec![1]);
        assert!(
            !d.join("alerts.jsonl.3").exists(),
            "keeps two rotated files"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_missing_file_is_an_empty_history() {
        let l = load(Path::new("/nonexistent/alerts.jsonl")).unwrap();
        assert!(l.open.is_empty());
    }

    /// Many open alerts outgrow the file's bound: rotating would start each
    /// new file nearly full and push out the events of the last ones.
    #[test]
    fn rotation_waits_while_the_open_alerts_would_fill_the_new_file() {
        let d = tmp();
        let c = cfg(&d, 64 * 1024);
        let mut w = Writer::open(&c, &[]).unwrap();
        let line = serde_json::to_string(&ev(Transition::Open, 1))
            .unwrap()
            .len() as u64
            + 1;
        let n = (64 * 1024 / line) + 10;
        for id in 1..=n {
            w.write_batch([ev(Transition::Open, id)].iter()).unwrap();
            w.rotate_if_due().unwrap();
        }
        for id in 1..=n {
            w.write_batch([ev(Transition::Close, id)].iter()).unwrap();
            w.rotate_if_due().unwrap();
        }
        let p = Path::new(&c.history_file);
        let mut files = rotated(p, c.history_keep);
        files.push(p.to_path_buf());
        // Distinct events: a rotated file starts with the openings of the
        // alerts still open, a second copy.
        let mut seen = std::collections::HashSet::new();
        for f in &files {
            for l in std::fs::read_to_string(f).unwrap().lines() {
                let e: AlertEvent = serde_json::from_str(l).unwrap();
                seen.insert((e.alert.id, e.event == Transition::Open));
            }
        }
        assert_eq!(seen.len() as u64, 2 * n, "every event kept");
        // Once they have closed, the bound holds again.
        assert!(
            d.join("alerts.jsonl.1").exists(),
            "rotated after they closed"
        );
        assert!(w.size < c.history_max_size.0);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A rotation that fails (here: `alerts.jsonl.1` is a directory with
    /// something in it) loses no event and counts none as failed.
    #[test]
    fn a_failed_rotation_counts_the_written_events_as_delivered() {
        let d = tmp();
        let mut c = cfg(&d, 64 * 1024);
        c.history_keep = 1;
        std::fs::create_dir_all(d.join("alerts.jsonl.1/x")).unwrap();
        let mut w = Writer::open(&c, &[]).unwrap();
        let stats = Arc::new(SinkStats::default());
        let (tx, rx) = crate::sinks::queue::bounded(10_000);
        let n = 400u64;
        // One message each, as ticks of one alert each would send them.
        for id in 1..=n {
            assert_eq!(tx.offer(vec![Arc::new(ev(Transition::Open, id))]), 1);
        }
        drop(tx);
        w.run(&rx, &stats);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), n);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
        let l = load(Path::new(&c.history_file)).unwrap();
        assert_eq!(l.events as u64, n);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A full disk: the write fails part-way; the next event, once there
    /// is room, is not appended to a fragment and lost with it.
    #[test]
    fn after_a_failed_write_the_next_event_starts_a_line_of_its_own() {
        let d = tmp();
        let c = cfg(&d, 1 << 20);
        let mut w = Writer::open(&c, &[]).unwrap();
        w.write_batch([ev(Transition::Open, 1)].iter()).unwrap();
        // A write that reaches the file in part: what a full disk does.
        let mut f = OpenOptions::new()
            .append(true)
            .open(&c.history_file)
            .unwrap();
        f.write_all(br#"{"event":"close","al"#).unwrap();
        let real = std::mem::replace(
            &mut w.file,
            OpenOptions::new().write(true).open("/dev/full").unwrap(),
        );
        assert!(w.write_batch([ev(Transition::Close, 1)].iter()).is_err());
        // /dev/full cannot be cut back either: the next write starts with
        // a newline.
        assert!(w.torn);
        w.file = real;
        w.write_batch([ev(Transition::Open, 2)].iter()).unwrap();
        let l = load(Path::new(&c.history_file)).unwrap();
        assert_eq!(l.skipped, 1, "only the fragment is lost");
        assert_eq!(l.open.iter().map(|a| a.id).collect::<Vec<_>>(), vec![1, 2]);

        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rotated_files_are_listed_without_a_name_per_kept_slot() {
        let d = tmp();
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("alerts.jsonl");
        for n in [1, 2] {
            std::fs::write(numbered(&p, n), "").unwrap();
        }
        let t = Instant::now();
        assert_eq!(rotated(&p, u32::MAX).len(), 2);
        assert!(t.elapsed() < Duration::from_secs(1));
        let _ = std::fs::remove_dir_all(&d);
    }
}
