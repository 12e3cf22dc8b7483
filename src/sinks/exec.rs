//! Runs a program for each alert event, as operators of FastNetMon do with
//! its notify script: the event as JSON on standard input, the key facts in
//! environment variables (`TA_EVENT`, `TA_ID`, `TA_KIND`, `TA_SUBJECT`,
//! `TA_VALUE`, `TA_THRESHOLD`, `TA_UNIT`, `TA_RULE`, `TA_DEGRADED`). At most
//! `max_running` at once; one that outlives `timeout` is killed.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Inbox, SinkStats};
use crate::alert::{AlertEvent, Transition};
use crate::config::ExecConfig;

/// The exec sink.
#[derive(Debug, Clone)]
pub struct Runner {
    command: Vec<String>,
    timeout: Duration,
    max_running: usize,
}

struct Running {
    child: Child,
    deadline: Instant,
    id: u64,
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
        })
    }

    /// Runs programs until the queue closes, then waits for the last ones.
    pub fn run(self, rx: Inbox, stats: Arc<SinkStats>) {
        let mut running: Vec<Running> = Vec::new();
        let mut last_log: Option<Instant> = None;
        while let Ok(ev) = rx.recv() {
            while running.len() >= self.max_running {
                self.reap(&mut running, &stats, &mut last_log);
                if running.len() >= self.max_running {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            match self.spawn(&ev) {
                Ok(child) => running.push(Running {
                    child,
                    deadline: Instant::now() + self.timeout,
                    id: ev.alert.id,
                }),
                Err(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    warn_limited(
                        &mut last_log,
                        format!(
                            "alert {}: cannot run {:?}: {e}",
                            ev.alert.id, self.command[0]
                        ),
                    );
                }
            }
            self.reap(&mut running, &stats, &mut last_log);
        }
        while !running.is_empty() {
            self.reap(&mut running, &stats, &mut last_log);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&self, ev: &AlertEvent) -> std::io::Result<Child> {
        let a = &ev.alert;
        let mut c = Command::new(&self.command[0]);
        c.args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .env(
                "TA_EVENT",
                match ev.event {
                    Transition::Open => "open",
                    Transition::Close => "close",
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
        Ok(child)
    }

    fn reap(&self, running: &mut Vec<Running>, stats: &SinkStats, last_log: &mut Option<Instant>) {
        let now = Instant::now();
        running.retain_mut(|r| match r.child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    warn_limited(
                        last_log,
                        format!("alert {}: {:?} exited with {status}", r.id, self.command[0]),
                    );
                }
                false
            }
            Ok(None) if now >= r.deadline => {
                let _ = r.child.kill();
                let _ = r.child.wait();
                stats.failed.fetch_add(1, Ordering::Relaxed);
                warn_limited(
                    last_log,
                    format!(
                        "alert {}: {:?} ran longer than {:?}; killed",
                        r.id, self.command[0], self.timeout
                    ),
                );
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }
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
