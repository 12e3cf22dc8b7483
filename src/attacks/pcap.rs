//! Writing attack captures: one pcap file per alert (`<id>.pcap`,
//! nanosecond timestamps), on a thread of its own so that the disk never
//! holds up a tick. The directory is kept under its size bound by removing
//! the oldest captures first.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::wire::LinkType;

/// The snap length a capture file declares.
const SNAPLEN: u32 = 262_144;

/// pcap's LINKTYPE for a link type.
pub fn linktype(l: LinkType) -> u32 {
    match l {
        LinkType::Ethernet => 1,
        // A link header we do not know is cut off by the worker.
        LinkType::RawIp | LinkType::Kernel => 101,
        LinkType::LinuxSll => 113,
        LinkType::LinuxSll2 => 276,
        LinkType::Null => 0,
        LinkType::Loop => 108,
    }
}

/// A frame to write.
#[derive(Debug, Clone)]
pub struct Frame {
    pub ts_ns: u64,
    pub wire_len: u32,
    pub link: LinkType,
    pub data: Vec<u8>,
}

/// What the writer is told.
#[derive(Debug)]
pub enum Job {
    Frames {
        id: u64,
        frames: Vec<Frame>,
    },
    /// The capture is complete: the size bound is enforced.
    End {
        id: u64,
    },
}

/// The writer's counters.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct WriterStats {
    pub files: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Frames of another link type than the file's first.
    pub other_link: u64,
    pub write_errors: u64,
    pub removed_files: u64,
    /// Jobs the full queue could not take.
    pub dropped_jobs: u64,
}

/// The running writer.
#[derive(Debug)]
pub struct Writer {
    tx: SyncSender<Job>,
    pub stats: Arc<Mutex<WriterStats>>,
}

/// The file of an alert's capture.
pub fn path_of(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.pcap"))
}

impl Writer {
    /// Starts the writer for `dir` (made if missing), holding at most
    /// `max_size` bytes of captures.
    pub fn start(dir: &Path, max_size: u64) -> io::Result<Writer> {
        std::fs::create_dir_all(dir)?;
        let (tx, rx) = sync_channel(256);
        let stats = Arc::new(Mutex::new(WriterStats::default()));
        let st = stats.clone();
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("attack-pcap".into())
            .spawn(move || run(&dir, max_size, &rx, &st))?;
        Ok(Writer { tx, stats })
    }

    /// Hands a job over without waiting; a full queue drops it (counted).
    pub fn send(&self, job: Job) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(job) {
            let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            s.dropped_jobs += 1;
            if s.dropped_jobs.is_power_of_two() {
                log::warn!(
                    "attack capture: the writer is behind; {} job(s) dropped",
                    s.dropped_jobs
                );
            }
        }
    }
}

struct Open {
    file: BufWriter<File>,
    link: LinkType,
}

fn run(dir: &Path, max_size: u64, rx: &Receiver<Job>, stats: &Mutex<WriterStats>) {
    let mut open: std::collections::HashMap<u64, Open> = Default::default();
    while let Ok(job) = rx.recv() {
        let r = match job {
            Job::Frames { id, frames } => write(dir, id, &frames, &mut open, stats),
            Job::End { id } => {
                let r = match open.remove(&id) {
                    Some(mut o) => o.file.flush(),
                    None => Ok(()),
                };
                prune(dir, max_size, stats);
                r
            }
        };
        if let Err(e) = r {
            let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
            s.write_errors += 1;
            if s.write_errors.is_power_of_two() {
                log::error!("attack capture in {}: {e}", dir.display());
            }
        }
    }
    for (_, mut o) in open {
        let _ = o.file.flush();
    }
}

fn write(
    dir: &Path,
    id: u64,
    frames: &[Frame],
    open: &mut std::collections::HashMap<u64, Open>,
    stats: &Mutex<WriterStats>,
) -> io::Result<()> {
    let Some(first) = frames.first() else {
        return Ok(());
    };
    let o = match open.entry(id) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => {
            let path = path_of(dir, id);
            let mut file = BufWriter::new(File::create(&path)?);
            // Nanosecond pcap.
            file.write_all(&0xa1b2_3c4du32.to_le_bytes())?;
            file.write_all(&2u16.to_le_bytes())?;
            file.write_all(&4u16.to_le_bytes())?;
            file.write_all(&0i32.to_le_bytes())?;
            file.write_all(&0u32.to_le_bytes())?;
            file.write_all(&SNAPLEN.to_le_bytes())?;
            file.write_all(&linktype(first.link).to_le_bytes())?;
            stats.lock().unwrap_or_else(|p| p.into_inner()).files += 1;
            v.insert(Open {
                file,
                link: first.link,
            })
        }
    };
    let (mut packets, mut bytes, mut other) = (0, 0, 0);
    for f in frames {
        if f.link != o.link {
            other += 1;
            continue;
        }
        let len = f.data.len() as u32;
        o.file
            .write_all(&((f.ts_ns / 1_000_000_000) as u32).to_le_bytes())?;
        o.file
            .write_all(&((f.ts_ns % 1_000_000_000) as u32).to_le_bytes())?;
        o.file.write_all(&len.to_le_bytes())?;
        o.file.write_all(&f.wire_len.max(len).to_le_bytes())?;
        o.file.write_all(&f.data)?;
        packets += 1;
        bytes += 16 + u64::from(len);
    }
    o.file.flush()?;
    let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
    s.packets += packets;
    s.bytes += bytes;
    s.other_link += other;
    Ok(())
}

/// Removes the oldest captures until the directory holds at most
/// `max_size` bytes of them.
fn prune(dir: &Path, max_size: u64, stats: &Mutex<WriterStats>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "pcap"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            if !m.is_file() {
                return None;
            }
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max_size {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
            stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .removed_files += 1;
            log::info!(
                "attack capture: removed {} (captures past their size bound)",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_is_a_nanosecond_pcap_and_the_oldest_go_first() {
        let dir = std::env::temp_dir().join(format!("ta-attack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let w = Writer::start(&dir, 300).unwrap();
        let f = |ts, n: usize| Frame {
            ts_ns: ts,
            wire_len: 1000,
            link: LinkType::Ethernet,
            data: vec![0xab; n],
        };
        w.send(Job::Frames {
            id: 1,
            frames: vec![f(1_500_000_007, 60), f(2_000_000_000, 60)],
        });
        w.send(Job::End { id: 1 });
        let wait = |p: &Path, len: u64| {
            for _ in 0..500 {
                if std::fs::metadata(p).is_ok_and(|m| m.len() == len) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            panic!("{} never reached {len} bytes", p.display());
        };
        let p1 = path_of(&dir, 1);
        wait(&p1, 24 + 2 * (16 + 60));
        let b = std::fs::read(&p1).unwrap();
        assert_eq!(&b[..4], &0xa1b2_3c4du32.to_le_bytes());
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(b[28..32].try_into().unwrap()),
            500_000_007
        );
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 60);
        assert_eq!(u32::from_le_bytes(b[36..40].try_into().unwrap()), 1000);
        // A second capture pushes the directory past 300 bytes: the first
        // goes.
        std::thread::sleep(std::time::Duration::from_millis(20));
        w.send(Job::Frames {
            id: 2,
            frames: vec![f(3, 100), f(4, 100)],
        });
        w.send(Job::End { id: 2 });
        wait(&path_of(&dir, 2), 24 + 2 * 116);
        for _ in 0..500 {
            if !p1.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!p1.exists(), "the oldest capture is removed");
        assert_eq!(w.stats.lock().unwrap().removed_files, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
