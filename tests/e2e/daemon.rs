//! The real daemon binary, started in a namespace with a config of the
//! test's choosing, and read through its HTTP API.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::netns::{Netns, Proc, unique, wait_until};

pub const BIN: &str = env!("CARGO_BIN_EXE_trafficalerted");
pub const API: &str = "127.0.0.1:8698";

pub struct Daemon<'n> {
    ns: &'n Netns,
    proc: Proc,
    dir: PathBuf,
}

impl<'n> Daemon<'n> {
    /// Starts the daemon in `ns` with `config` and waits until its API
    /// answers.
    pub fn start(ns: &'n Netns, config: &str) -> Daemon<'n> {
        Self::start_with(ns, config, &[])
    }

    /// Like [`Daemon::start`], with a command prefix (e.g. `setpriv ...`).
    pub fn start_with(ns: &'n Netns, config: &str, prefix: &[&str]) -> Daemon<'n> {
        let dir = std::env::temp_dir().join(unique("d"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cfg = dir.join("trafficalerted.toml");
        // The history goes to the test's directory, never to /var/lib.
        let history = format!(
            "history_file = {:?}",
            dir.join("alerts.jsonl").to_string_lossy()
        );
        let config = if config.contains("history_file") {
            config.to_string()
        } else if config.contains("[alerts]") {
            config.replacen("[alerts]", &format!("[alerts]\n{history}"), 1)
        } else {
            format!("{config}\n[alerts]\n{history}\n")
        };
        // Attack captures too.
        let config = if config.contains("[attack_pcap]") {
            config
        } else {
            format!(
                "{config}\n[attack_pcap]\ndir = {:?}\n",
                dir.join("attacks").to_string_lossy()
            )
        };
        std::fs::write(&cfg, config).expect("write config");
        let log = std::fs::File::create(dir.join("log")).expect("log file");
        let out = std::fs::File::create(dir.join("out")).expect("out file");
        set_readable(&dir);
        let mut args: Vec<&str> = prefix.to_vec();
        let cfg_s = cfg.to_string_lossy().into_owned();
        args.extend_from_slice(&[BIN, "-c", &cfg_s]);
        let proc = ns.spawn(&args, Stdio::from(out), Stdio::from(log));
        let d = Daemon { ns, proc, dir };
        let up = wait_until(Duration::from_secs(20), || {
            (d.ns.tcp_open(API) && d.get("/healthz").0 == 200).then_some(())
        });
        assert!(
            up.is_some(),
            "daemon did not come up; its log:\n{}",
            d.log()
        );
        d
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid().expect("the daemon runs")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// What the daemon wrote to standard output (the alert lines).
    pub fn out(&self) -> String {
        std::fs::read_to_string(self.dir.join("out")).unwrap_or_default()
    }

    /// The alert history file's lines.
    pub fn history(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The directory of the daemon's files.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.ns.http_get(API, path)
    }

    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// `/all` entry of a source.
    pub fn source(&self, src: &str) -> Option<Value> {
        self.json("/all")
            .as_array()?
            .iter()
            .find(|e| e["SourceIP"] == src)
            .cloned()
    }

    /// TotalBytes of a source in `/all` (0 if absent).
    pub fn source_bytes(&self, src: &str) -> u64 {
        self.source(src)
            .map_or(0, |e| e["TotalBytes"].as_u64().unwrap_or(0))
    }

    /// Bytes from `src` to `dst` in `/all` (0 if absent).
    pub fn pair_bytes(&self, src: &str, dst: &str) -> u64 {
        self.source(src)
            .and_then(|e| {
                e["DestinationIP"]
                    .as_array()?
                    .iter()
                    .find(|d| d["IP"] == dst)
                    .and_then(|d| d["Bytes"].as_u64())
            })
            .unwrap_or(0)
    }

    /// Waits until `f` reads `want`, then one more tick to make sure it
    /// stays there (a double count would grow past it). Returns the last
    /// value read.
    pub fn settle(&self, want: u64, mut f: impl FnMut(&Self) -> u64) -> u64 {
        let got = wait_until(Duration::from_secs(15), || {
            let v = f(self);
            (v >= want).then_some(v)
        });
        let Some(_) = got else {
            return f(self);
        };
        std::thread::sleep(Duration::from_millis(1200));
        f(self)
    }

    /// Interface entry from `/api/v1/interfaces`.
    pub fn iface(&self, name: &str) -> Option<Value> {
        self.json("/api/v1/interfaces")["interfaces"]
            .as_array()?
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        self.proc.signal(sig);
    }

    /// Waits for the daemon to exit on its own; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        self.proc.wait_for(limit)
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn stop(mut self) -> (Option<i32>, String) {
        self.proc.signal(nix::sys::signal::Signal::SIGTERM);
        let code = self.proc.wait_for(Duration::from_secs(10));
        (code, self.log())
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        self.proc.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn set_readable(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o666));
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777));
}

/// Config for tests: long interval so nothing resets mid-test, every source
/// on `/all`.
pub const TEST_CONFIG: &str = r#"
[traffic]
interval = "1h"
chart_min_bytes = 1
"#;
