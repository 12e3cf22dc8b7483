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
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(e),
    };
    read(BufReader::new(file))
}

/// Reads history lines from any reader.
pub fn read(mut r: impl BufRead) -> io::Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut latest: BTreeMap<u64, AlertEvent> = BTreeMap::new();
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let start = offset;
        offset += n as u64;
        if line.last() != Some(&b'\n') {
            loaded.torn_at = Some(start);
            break;
        }
        match serde_json::from_slice::<AlertEvent>(&line) {
            Ok(ev) => {
                loaded.events += 1;
                loaded.max_id = loaded.max_id.max(ev.alert.id);
                latest.insert(ev.alert.id, ev);
            }
            Err(_) => loaded.skipped += 1,
        }
    }
    loaded.open = latest
        .into_values()
        .filter(|ev| ev.event == Transition::Open)
        .map(|ev| ev.alert)
        .collect();
    Ok(loaded)
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
    last_error_log: Option<Instant>,
}

impl Writer {
    /// Opens (or makes) the file for appending; cuts off a torn last line.
    pub fn open(cfg: &AlertsConfig, restored: &[Alert]) -> io::Result<Writer> {
        let path = PathBuf::from(&cfg.history_file);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        let loaded_torn = load(&path)?.torn_at;
        if let Some(at) = loaded_torn {
            log::warn!(
                "{}: the last line (at byte {at}) was cut short, probably by a power failure; dropping it",
                path.display()
            );
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
            last_error_log: None,
        })
    }

    /// Writes until the queue closes.
    pub fn run(mut self, rx: Inbox, stats: Arc<SinkStats>) {
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
                    let now = Instant::now();
                    if self
                        .last_error_log
                        .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
                    {
                        self.last_error_log = Some(now);
                        log::error!("alert history {}: {e}", self.path.display());
                    }
                }
            }
        }
    }

    /// Appends a batch and syncs it to disk.
    pub fn write_batch<'a>(
        &mut self,
        events: impl Iterator<Item = &'a AlertEvent>,
    ) -> io::Result<()> {
        let mut buf = Vec::new();
        for ev in events {
            serde_json::to_writer(&mut buf, ev).map_err(io::Error::other)?;
            buf.push(b'\n');
            match ev.event {
                Transition::Open => {
                    self.open.insert(ev.alert.id, ev.alert.clone());
                }
                Transition::Close => {
                    self.open.remove(&ev.alert.id);
                }
            }
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.size += buf.len() as u64;
        if self.size >= self.max_size {
            self.rotate()?;
        }
        Ok(())
    }

    /// `alerts.jsonl` becomes `alerts.jsonl.1`, older ones move up, the
    /// oldest beyond `keep` goes; the new file starts with the open alerts.
    fn rotate(&mut self) -> io::Result<()> {
        let name = |n: u32| -> PathBuf {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            p.into()
        };
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            for n in (1..self.keep).rev() {
                let from = name(n);
                if from.exists() {
                    std::fs::rename(&from, name(n + 1))?;
                }
            }
            std::fs::rename(&self.path, name(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        self.size = 0;
        let open: Vec<AlertEvent> = self
            .open
            .values()
            .map(|a| AlertEvent {
                event: Transition::Open,
                alert: a.clone(),
            })
            .collect();
        if !open.is_empty() {
            let mut buf = Vec::new();
            for ev in &open {
                serde_json::to_writer(&mut buf, ev).map_err(io::Error::other)?;
                buf.push(b'\n');
            }
            self.file.write_all(&buf)?;
            self.file.sync_data()?;
            self.size = buf.len() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertKind;
    use crate::config::Config;

    fn alert(id: u64) -> Alert {
        Alert::sample(id, AlertKind::Traffic, "10.0.0.1")
    }

    fn ev(t: Transition, id: u64) -> AlertEvent {
        AlertEvent {
            event: t,
            alert: alert(id),
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
}
