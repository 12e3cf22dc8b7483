//! `trafficalerted replay FILE…`: capture files through the same parse →
//! shard → aggregate → detect path as live capture, on the packets' clock,
//! so a ten-minute capture replays in seconds with the windows and alerts
//! it would have had live.
//!
//! Inputs: pcap or pcapng, plain, gzip or zstd (told by their first bytes,
//! not their names), or `-` for standard input. Files are read one after
//! the other as one stream of time. Alerts go to the configured sinks —
//! but the history file only when `--history` names one, so a replay never
//! writes into the live daemon's history.

pub mod counter;
mod handoff;
pub mod input;
pub mod player;
pub mod reader;
mod summary;
pub mod totals;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::aggregator::RuntimeInfo;
use crate::alert::AlertEvent;
use crate::config::Config;
use crate::sinks::Sinks;
use crate::snapshot::{self, Snapshot};

use totals::WholeTotals;

pub use summary::Summary;

/// How fast to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Speed {
    /// As fast as the machine goes.
    Max,
    /// Paced by the timestamps, serving the HTTP API and dashboard.
    Realtime,
}

/// What `replay` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub files: Vec<PathBuf>,
    pub speed: Speed,
    /// Only the alert lines on standard output; no other sink, no summary.
    pub alerts_only: bool,
    /// The summary as JSON (alert lines then go to the summary only).
    pub json: bool,
    /// Hosts and pairs in the summary (0: all).
    pub top: usize,
    /// Write the alert history here.
    pub history: Option<PathBuf>,
    /// Draw a progress bar (when standard error is a terminal).
    pub progress: bool,
}

/// Replays `opts.files` through the pipeline; returns the summary.
pub fn run(config: &Config, opts: &Options) -> anyhow::Result<Summary> {
    let mut alerts = config.alerts.clone();
    alerts.history_file = opts
        .history
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if opts.alerts_only {
        alerts.log = true;
        alerts.webhook = None;
        alerts.exec = None;
    } else if opts.json {
        // Standard output carries the JSON summary alone.
        alerts.log = false;
    }
    let sinks = Sinks::start(&alerts, &[]).context("cannot start the alert sinks")?;
    // Readers of the replay's snapshots (`/capabilities`, the history
    // endpoint) see the sinks it really uses, not the live daemon's.
    let config = &Config {
        alerts,
        ..config.clone()
    };

    let runtime = RuntimeInfo {
        source: "replay".into(),
        started_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        workers: 1,
        ..RuntimeInfo::default()
    };
    let published = snapshot::publish(Snapshot::empty(config, runtime.clone()));
    let http = match opts.speed {
        Speed::Realtime => {
            let h = crate::http::start(
                &config.http.listen,
                config.http.auth.as_ref(),
                published.clone(),
            )?;
            log::info!(
                "replaying in real time; dashboard on http://{}/dashboard/",
                h.addrs()[0]
            );
            h.warn_if_exposed();
            Some((h, HangupIgnored::start()))
        }
        Speed::Max => None,
    };

    let mut events_seen: Vec<AlertEvent> = Vec::new();
    let mut last_snap: Option<Snapshot> = None;
    let sinks_ref = &sinks;
    let publish = opts.speed == Speed::Realtime;
    let on_tick = Box::new(|snap: Option<Snapshot>, events: Vec<AlertEvent>| {
        if !events.is_empty() {
            sinks_ref.send(&events);
            events_seen.extend(events);
        }
        if let Some(snap) = snap {
            if publish {
                let mut s = snap.clone();
                s.sinks = sinks_ref.reports();
                published.store(Arc::new(s));
            }
            last_snap = Some(snap);
        }
    });
    let mut player = player::Player::new(config, runtime, publish, on_tick);

    let started = Instant::now();
    let totals = WholeTotals::new(config.traffic.max_hosts, config.traffic.max_pairs);
    let (files, counter, mut totals) = read_beside(config, opts, &mut player, totals)?;
    let out_of_order = counter.out_of_order;
    player::OneThread::new(&mut player, &mut totals).last(counter.finish());
    let ticks = player.finish(&mut totals);
    let elapsed = started.elapsed();
    sinks.stop(Duration::from_secs(10));
    if let Some((h, hangup)) = http {
        h.stop();
        hangup.stop();
    }
    Ok(Summary::build(
        files,
        last_snap,
        &totals,
        events_seen,
        ticks,
        out_of_order,
        elapsed,
        opts.top,
    ))
}

/// Reads, parses and counts the inputs on a thread of its own while this
/// one merges and detects ([`handoff`]), or all on this thread where the
/// process has one processor (where two threads would only take turns and
/// pay for the hand-overs: 6 % more time on the long sparse capture).
/// Returns the inputs' stats, the counter, holding the tick it was
/// filling when the inputs ended, and `totals` with every tick but that
/// one added.
fn read_beside(
    config: &Config,
    opts: &Options,
    player: &mut player::Player<'_>,
    mut totals: WholeTotals,
) -> anyhow::Result<(Vec<input::FileStats>, counter::Counter, WholeTotals)> {
    let mut counter = counter::Counter::new(config);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        let mut down = player::OneThread::new(player, &mut totals);
        let files = read_all(opts, &mut counter, &mut down)?;
        return Ok((files, counter, totals));
    }
    let limits = counter.limits();
    std::thread::scope(|s| {
        let (out, messages) = std::sync::mpsc::sync_channel(handoff::QUEUED);
        let (back, spares) = std::sync::mpsc::channel();
        let reading = std::thread::Builder::new()
            .name("replay-read".into())
            .spawn_scoped(s, move || -> anyhow::Result<_> {
                let mut down = handoff::Handoff::new(out, spares, limits, totals);
                let files = read_all(opts, &mut counter, &mut down)?;
                Ok((files, counter, down.finish()))
            })
            .context("cannot start the replay's reading thread")?;
        handoff::aggregate(player, messages, back);
        match reading.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Plays every input, one after the other, into `counter`.
fn read_all(
    opts: &Options,
    counter: &mut counter::Counter,
    down: &mut dyn counter::Downstream,
) -> anyhow::Result<Vec<input::FileStats>> {
    let mut pacer = Pacer::new(opts.speed);
    let mut files = Vec::new();
    for path in &opts.files {
        let stats = input::play(path, counter, down, &mut pacer, opts.progress)
            .with_context(|| format!("replay of {}", path.display()))?;
        files.push(stats);
    }
    Ok(files)
}

/// A real-time replay runs for as long as its capture lasts, as a service
/// would: a SIGHUP (a reload out of habit, a closed terminal) must not kill
/// it. It has nothing to reload; it says so and goes on.
struct HangupIgnored {
    handle: Option<signal_hook::iterator::Handle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HangupIgnored {
    fn start() -> HangupIgnored {
        let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("cannot catch SIGHUP ({e}); a SIGHUP ends this replay");
                return HangupIgnored {
                    handle: None,
                    thread: None,
                };
            }
        };
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for _ in signals.forever() {
                    log::info!(
                        "SIGHUP: a replay keeps the configuration it started with; start it again to change it"
                    );
                }
            })
            .ok();
        HangupIgnored {
            handle: Some(handle),
            thread,
        }
    }

    fn stop(self) {
        if let Some(h) = self.handle {
            h.close();
        }
        if let Some(t) = self.thread {
            let _ = t.join();
        }
    }
}

/// Holds packets back to their capture time (real-time speed).
#[derive(Debug)]
pub struct Pacer {
    speed: Speed,
    start: Option<(Instant, u64)>,
}

impl Pacer {
    fn new(speed: Speed) -> Pacer {
        Pacer { speed, start: None }
    }

    /// Waits until a packet stamped `ts_ns` is due.
    #[inline]
    pub fn wait(&mut self, ts_ns: u64) {
        if self.speed == Speed::Max {
            return;
        }
        let (wall, cap) = *self.start.get_or_insert((Instant::now(), ts_ns));
        let due = Duration::from_nanos(ts_ns.saturating_sub(cap));
        let now = wall.elapsed();
        // Sleeping for less than a millisecond is not worth a system call.
        if due > now + Duration::from_millis(1) {
            std::thread::sleep(due - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reader::tests::{frame, pcap};
    use super::*;
    use std::io::Write;

    fn config() -> Config {
        Config::parse(
            "[traffic]\ninterval = \"10s\"\nbyte_limit = \"10k\"\n[inbound]\nenabled = false\n[alerts]\nlog = false\nhold_down = \"3s\"\n",
            "t",
        )
        .unwrap()
    }

    /// Ten seconds: 10.0.0.1 sends 30 × 1000 B in the first three, 10.0.0.2
    /// 10 × 100 B spread over all ten.
    fn capture() -> Vec<u8> {
        let big = frame([10, 0, 0, 1], 1000);
        let small = frame([10, 0, 0, 2], 100);
        let base = 1_700_000_000_000_000_000u64;
        let mut recs: Vec<(u64, &[u8])> = Vec::new();
        for i in 0..30u64 {
            recs.push((base + i * 100_000_000, &big));
        }
        for i in 0..10u64 {
            recs.push((base + i * 1_000_000_000 + 50_000_000, &small));
        }
        recs.sort_by_key(|r| r.0);
        pcap(false, true, 1, 65535, &recs)
    }

    fn opts(files: Vec<PathBuf>) -> Options {
        Options {
            files,
            speed: Speed::Max,
            alerts_only: false,
            json: true,
            top: 0,
            history: None,
            progress: false,
        }
    }

    #[test]
    fn plain_gzip_and_zstd_replay_alike_with_alerts_on_capture_time() {
        let dir = std::env::temp_dir().join(format!("ta-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = capture();
        let plain = dir.join("c.pcap");
        std::fs::write(&plain, &bytes).unwrap();
        let gz = dir.join("c.pcap.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&bytes).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let zst = dir.join("c.pcap.zst");
        std::fs::write(&zst, zstd::encode_all(&bytes[..], 3).unwrap()).unwrap();

        let mut seen = Vec::new();
        for (f, kind) in [(&plain, "none"), (&gz, "gzip"), (&zst, "zstd")] {
            let s = run(&config(), &opts(vec![f.clone()])).unwrap();
            assert_eq!(s.files[0].compression, kind);
            assert_eq!((s.frames, s.ip_packets), (40, 40));
            assert_eq!(s.ip_bytes, 30 * 1000 + 10 * 100);
            let h1 = s
                .hosts
                .iter()
                .find(|h| h.addr.to_string() == "10.0.0.1")
                .unwrap();
            assert_eq!((h1.sent_bytes, h1.sent_packets), (30_000, 30));
            let dst = s
                .hosts
                .iter()
                .find(|h| h.addr.to_string() == "10.9.9.9")
                .unwrap();
            assert_eq!((dst.recv_bytes, dst.recv_packets), (31_000, 40));
            assert_eq!(s.ticks, 10);
            // One traffic alert for the big sender, opened in capture time
            // (second 1, when its window passed 10 kB) and closed after the
            // window and hold-down let it go.
            assert_eq!(s.alerts.len(), 1, "{:?}", s.alerts);
            let a = &s.alerts[0];
            assert_eq!(a.subject.to_string(), "10.0.0.1");
            assert_eq!(a.start_ms, 1_700_000_000_000 + 2_000);
            assert_eq!(a.peak, 30_000);
            seen.push(serde_json::to_string(&s.alerts).unwrap());
        }
        assert!(
            seen.windows(2).all(|w| w[0] == w[1]),
            "same alerts from every form"
        );

        // Two files play as one stream of time: the same capture split.
        let s = run(&config(), &opts(vec![plain.clone(), gz.clone()])).unwrap();
        assert_eq!(s.frames, 80);
        // The second file starts back in time: all of it but the packet
        // that falls into the last tick, still being filled, is older.
        assert_eq!(s.out_of_order, 39);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_file_names_itself_and_the_offset() {
        let dir = std::env::temp_dir().join(format!("ta-replay-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("cut.pcap");
        let bytes = capture();
        std::fs::write(&f, &bytes[..bytes.len() - 3]).unwrap();
        let e = run(&config(), &opts(vec![f.clone()])).unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("cut.pcap"), "{text}");
        assert!(text.contains("the file ends inside a record"), "{text}");
        let empty = dir.join("empty.pcap");
        std::fs::write(&empty, b"").unwrap();
        let e = run(&config(), &opts(vec![empty])).unwrap_err();
        assert!(format!("{e:#}").contains("empty input"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
