//! Runs a program for each alert event, as operators of FastNetMon do with
//! its notify script: the event as JSON on standard input, the key facts in
//! environment variables (`TA_EVENT`, `TA_ID`, `TA_KIND`, `TA_SUBJECT`,
//! `TA_VALUE`, `TA_THRESHOLD`, `TA_UNIT`, `TA_RULE`, `TA_DEGRADED`). At most
//! `max_running` at once; one that outlives `timeout` is killed with
//! everything it started (each runs in a process group of its own). What it
//! writes to standard error goes to the daemon's log, prefixed with the
//! alert and capped; standard output is discarded.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Inbox, SinkStats};
use crate::alert::{AlertEvent, Transition};
use crate::config::ExecConfig;

/// Most bytes of one program's standard error logged; the rest is read
/// and counted, so the program never blocks on a full pipe.
pub const OUTPUT_CAP: usize = 16 * 1024;
/// Longest line logged (longer ones are cut).
const OUTPUT_LINE: usize = 512;
/// How long programs still running get once the daemon stops.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The exec sink.
#[derive(Debug)]
pub struct Runner {
    command: Vec<String>,
    timeout: Duration,
    max_running: usize,
    running: Vec<Running>,
}

#[derive(Debug)]
struct Running {
    child: Child,
    relay: Option<std::thread::JoinHandle<()>>,
    deadline: Instant,
    id: u64,
    event: std::sync::Arc<AlertEvent>,
}

impl Runner {
    /// Checks that the program exists and may be run.
    pub fn new(c: &ExecConfig) -> Result<Runner, String> {
        let prog = &c.command[0];
        let found = if prog.contains('/') {
            is_executable(Path::new(prog))
        } else {
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| is_executable(&d.join(prog))))
                .unwrap_or(false)
        };
        if !found {
            return Err(format!("{prog:?} is not an executable file"));
        }
        Ok(Runner {
            command: c.command.clone(),
            timeout: c.timeout.0,
            max_running: c.max_running,
            running: Vec::new(),
        })
    }

    /// Runs programs until the queue closes, then waits for the last ones
    /// (at most [`STOP_GRACE`] once the daemon is stopping; then their
    /// process groups are killed).
    pub fn run(&mut self, rx: &Inbox, stats: &SinkStats) {
        let mut last_log: Option<Instant> = None;
        // When the programs running at a stop are killed; set once stopping.
        let mut give_up: Option<Instant> = None;
        while let Ok(ev) = rx.recv() {
            while self.running.len() >= self.max_running {
                self.hurry(stats, &mut give_up);
                self.reap(stats, &mut last_log);
                if self.running.len() >= self.max_running {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            // Past the grace, what is still queued is not run: recorded.
            if self.hurry(stats, &mut give_up) {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                stats.not_delivered(&ev);
                continue;
            }
            match self.spawn(&ev) {
                Ok((child, relay)) => self.running.push(Running {
                    child,
                    relay: Some(relay),
                    // Bounded by the config; a far deadline, never an
                    // overflow (once stopping, `hurry` brings it nearer).
                    deadline: Instant::now()
                        .checked_add(self.timeout)
                        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
                    id: ev.alert.id,
                    event: ev.clone(),
                }),
                Err(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    if stats.stopping.load(Ordering::Relaxed) {
                        stats.not_delivered(&ev);
                    }
                    warn_limited(
                        &mut last_log,
                        format!(
                            "alert {}: cannot run {:?}: {e}",
                            ev.alert.id, self.command[0]
                        ),
                    );
                }
            }
            self.reap(stats, &mut last_log);
        }
        while !self.running.is_empty() {
            self.hurry(stats, &mut give_up);
            self.reap(stats, &mut last_log);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Once the daemon is stopping, running programs get [`STOP_GRACE`]
    /// from then on, wherever the queue stands (also while every slot is
    /// taken). True once the grace is over.
    fn hurry(&mut self, stats: &SinkStats, give_up: &mut Option<Instant>) -> bool {
        if !stats.stopping.load(Ordering::Relaxed) {
            return false;
        }
        let end = *give_up.get_or_insert_with(|| Instant::now() + STOP_GRACE);
        for r in &mut self.running {
            r.deadline = r.deadline.min(end);
        }
        Instant::now() >= end
    }

    fn spawn(&self, ev: &AlertEvent) -> std::io::Result<(Child, std::thread::JoinHandle<()>)> {
        let a = &ev.alert;
        let mut c = Command::new(&self.command[0]);
        c.args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group: a timeout or a stop kills what it started too.
            .process_group(0)
            .env(
                "TA_EVENT",
                match ev.event {
                    Transition::Open => "open",
                    Transition::Close => "close",
                    Transition::Mitigation => "mitigation",
                },
            )
            .env("TA_ID", a.id.to_string())
            .env("TA_KIND", a.kind.name())
            .env("TA_SUBJECT", a.subject.to_string())
            .env("TA_VALUE", a.value.to_string())
            .env("TA_THRESHOLD", a.threshold.to_string())
            .env("TA_UNIT", format!("{:?}", a.unit).to_lowercase())
            .env("TA_RULE", &a.rule)
            .env("TA_DEGRADED", a.degraded.to_string());
        let mut child = c.spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // Small enough for the pipe; a program that does not read it
            // still gets it and EOF.
            let body = serde_json::to_vec(ev).unwrap_or_default();
            let _ = stdin.write_all(&body);
        }
        let prefix = format!("alert {} {}", a.id, self.command[0]);
        let stderr = child.stderr.take();
        let relay = std::thread::Builder::new()
            .name("sink-exec-out".into())
            .spawn(move || {
                if let Some(err) = stderr {
                    relay(BufReader::new(err), OUTPUT_CAP, |line| {
                        log::warn!("{prefix}: {line}");
                    });
                }
            });
        match relay {
            Ok(r) => Ok((child, r)),
            Err(e) => {
                kill_group(&mut child);
                Err(e)
            }
        }
    }

    fn reap(&mut self, stats: &SinkStats, last_log: &mut Option<Instant>) {
        let now = Instant::now();
        let command = &self.command[0];
        let timeout = self.timeout;
        self.running.retain_mut(|r| {
            let done = match r.child.try_wait() {
                Ok(Some(status)) => {
                    if status.success() {
                        stats.delivered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        warn_limited(
                            last_log,
                            format!("alert {}: {command:?} exited with {status}", r.id),
                        );
                    }
                    // What it left running in its group goes with it.
                    kill_group(&mut r.child);
                    true
                }
                Ok(None) if now >= r.deadline => {
                    kill_group(&mut r.child);
                    let _ = r.child.wait();
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    if stats.stopping.load(Ordering::Relaxed) {
                        stats.not_delivered(&r.event);
                    }
                    warn_limited(
                        last_log,
                        format!(
                            "alert {}: {command:?} ran longer than {timeout:?} (or the daemon is stopping); killed with its process group",
                            r.id
                        ),
                    );
                    true
                }
                Ok(None) => false,
                Err(_) => true,
            };
            if done {
                if let Some(t) = r.relay.take() {
                    let _ = t.join();
                }
            }
            !done
        });
    }
}

/// Kills a program's whole process group (it leads it).
fn kill_group(child: &mut Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.kill();
}

/// Hands `r`'s lines to `emit` until `cap` bytes have been, then reads the
/// rest without keeping it; says how much was left out. Lines are cut at
/// [`OUTPUT_LINE`] bytes and made printable.
pub fn relay(mut r: impl BufRead, cap: usize, mut emit: impl FnMut(&str)) -> u64 {
    let mut given = 0usize;
    let mut dropped = 0u64;
    let mut line = Vec::new();
    while let Ok((what, n)) = super::lines::next(&mut r, &mut line, OUTPUT_LINE) {
        if what == super::lines::Line::End {
            break;
        }
        if given >= cap || what == super::lines::Line::TooLong {
            dropped += n;
            continue;
        }
        given += n as usize;
        let text: String = String::from_utf8_lossy(&line)
            .trim_end_matches(['\n', '\r'])
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        emit(&text);
    }
    // Drain what a reader that stopped on an error left, without keeping it.
    let mut sink = [0u8; 4096];
    while let Ok(k) = r.read(&mut sink) {
        if k == 0 {
            break;
        }
        dropped += k as u64;
    }
    if dropped > 0 {
        emit(&format!("({dropped} more bytes of output left out)"));
    }
    dropped
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn warn_limited(last: &mut Option<Instant>, msg: String) {
    let now = Instant::now();
    if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
        *last = Some(now);
        log::warn!("{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertKind};
    use crate::config::units::Span;
    use std::sync::Arc;

    fn runner(script: &str, timeout: Duration) -> Runner {
        Runner::new(&ExecConfig {
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout: Span(timeout),
            max_running: 4,
            queue: 10,
        })
        .unwrap()
    }

    /// Processes whose command line is exactly `sleep <secs>`.
    fn sleepers(secs: &str) -> usize {
        let want = format!("sleep\0{secs}\0");
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()))
            .count()
    }

    fn events(n: u64) -> Inbox {
        let (tx, rx) = crate::sinks::queue::bounded(16);
        let evs: Vec<_> = (1..=n)
            .map(|id| {
                Arc::new(AlertEvent {
                    event: Transition::Open,
                    alert: Alert::sample(id, AlertKind::Traffic, "10.0.0.1"),
                    mitigation: None,
                })
            })
            .collect();
        assert_eq!(tx.offer(evs), n as usize);
        rx
    }

    #[test]
    fn a_timeout_kills_what_the_program_started_too() {
        let mut r = runner("sleep 7731 & sleep 7731", Duration::from_millis(300));
        let stats = SinkStats::default();
        r.run(&events(2), &stats);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 2);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(sleepers("7731"), 0, "no orphaned sleep left");
    }

    #[test]
    fn a_stop_kills_programs_still_running_after_a_short_grace() {
        let mut r = runner("sleep 7741", Duration::from_secs(600));
        let stats = SinkStats::default();
        stats.stopping.store(true, Ordering::Relaxed);
        let t = Instant::now();
        r.run(&events(1), &stats);
        assert!(
            t.elapsed() < STOP_GRACE + Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(sleepers("7741"), 0, "nothing survives the daemon");
    }

    /// Every slot taken by a program that never ends and more events
    /// queued when the daemon stops: the running ones are killed after the
    /// grace, the queued ones are not started, all are recorded.
    #[test]
    fn a_stop_with_every_slot_taken_kills_and_records_what_is_left() {
        let mut r = runner("sleep 7751", Duration::from_secs(600));
        r.max_running = 1;
        let stats = Arc::new(SinkStats::default());
        let flag = stats.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.stopping.store(true, Ordering::Relaxed);
        });
        let t = Instant::now();
        r.run(&events(3), &stats);
        stopper.join().unwrap();
        assert!(
            t.elapsed() < STOP_GRACE + Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(sleepers("7751"), 0, "nothing survives the daemon");
        assert_eq!(stats.failed.load(Ordering::Relaxed), 3);
        assert_eq!(stats.undelivered.lock().unwrap().len(), 3);
    }

    #[test]
    fn output_is_prefixed_capped_and_drained() {
        let text = "first line\nsecond\x1b[31m red\n".to_string() + &"y".repeat(100_000);
        let mut got = Vec::new();
        let dropped = relay(std::io::Cursor::new(text), 64, |l| got.push(l.to_string()));
        assert_eq!(got[0], "first line");
        assert_eq!(
            got[1], "second?[31m red",
            "control characters made printable"
        );
        assert!(dropped > 99_000, "{dropped}");
        assert!(
            got.last()
                .unwrap()
                .contains("more bytes of output left out")
        );
        assert!(got.len() <= 4, "{got:?}");
        // A program that writes a lot still finishes: its pipe is drained.
        let mut r = runner(
            "head -c 5000000 /dev/zero | tr '\\0' x >&2; exit 0",
            Duration::from_secs(20),
        );
        let stats = SinkStats::default();
        r.run(&events(1), &stats);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 1);
    }
}
