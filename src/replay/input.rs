//! Opening one input — a file or standard input, plain, gzip or zstd — and
//! playing its packets, with a progress bar on a terminal.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::Pacer;
use super::counter::{Counter, Downstream};
use super::reader::{ReadStats, Reader};

/// How one input went.
#[derive(Debug, Clone, Serialize)]
pub struct FileStats {
    pub path: String,
    pub compression: &'static str,
    #[serde(flatten)]
    pub read: ReadStats,
}

/// Counts the bytes read from the underlying file, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Packets between looks at the clock for the progress bar.
const PROGRESS_EVERY: u64 = 1 << 16;
/// A replay shorter than this gets no bar.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// Plays one input into `counter`, its ticks going `down`.
pub fn play(
    path: &Path,
    counter: &mut Counter,
    down: &mut dyn Downstream,
    pacer: &mut Pacer,
    progress: bool,
) -> anyhow::Result<FileStats> {
    let read = Arc::new(AtomicU64::new(0));
    let (raw, size): (Box<dyn Read>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(path)?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mut raw = Counting {
        inner: raw,
        read: read.clone(),
    };
    // The first bytes tell the compression; they are read, then put back.
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match raw.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    if got == 0 {
        anyhow::bail!("empty input: not a pcap or pcapng file");
    }
    let head = io::Cursor::new(magic[..got].to_vec()).chain(raw);
    let (src, compression): (Box<dyn Read>, &'static str) = match magic[..got] {
        [0x1f, 0x8b, ..] => (Box::new(flate2::read::MultiGzDecoder::new(head)), "gzip"),
        [0x28, 0xb5, 0x2f, 0xfd] => (Box::new(zstd::stream::read::Decoder::new(head)?), "zstd"),
        _ => (Box::new(head), "none"),
    };
    let mut reader = Reader::new(src)?;

    let name = path.display().to_string();
    let link = "pcap";
    let mut ifindex: Vec<u32> = Vec::new();
    let bar = ProgressBar::with_draw_target(size, ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(name.clone());
    let show = progress && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut shown = false;
    let mut n: u64 = 0;
    while let Some(p) = reader.next_packet()? {
        pacer.wait(p.ts_ns);
        let i = p.iface as usize;
        if i >= ifindex.len() {
            for k in ifindex.len()..=i {
                let label = if i == 0 && k == 0 {
                    name.clone()
                } else {
                    format!("{name}#{k}")
                };
                ifindex.push(counter.add_iface(&label, link, down));
            }
        }
        if counter.packet(&p, ifindex[i], down).is_err() {
            anyhow::bail!("the replay's detection stopped before the input's end");
        }
        n += 1;
        if show && n % PROGRESS_EVERY == 0 {
            if !shown && started.elapsed() >= PROGRESS_AFTER {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                shown = true;
            }
            bar.set_position(read.load(Ordering::Relaxed));
        }
    }
    bar.finish_and_clear();
    Ok(FileStats {
        path: name,
        compression,
        read: reader.stats.clone(),
    })
}
