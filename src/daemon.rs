//! The daemon's life: restore the alert history, start the sinks, capture
//! and the API, refresh interfaces every tick, reload the config on SIGHUP,
//! stop cleanly on SIGTERM or SIGINT (flushing the sinks) and say what was
//! counted.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::aggregator::RuntimeInfo;
use crate::capture::Capture;
use crate::config::{self, Config};
use crate::sinks::Sinks;
use crate::sinks::history;
use crate::snapshot::{self, Snapshot};

/// Runs until SIGTERM or SIGINT. `path` is the config file given with
/// `-c`, read again on SIGHUP (without one: the default path, if it exists).
pub fn run(mut config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    // The missing privilege first: it is the most likely reason to fail,
    // and the one with the clearest fix.
    tpacket::Ring::check_access()?;
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("cannot install signal handlers")?;
    let (sig_tx, sig_rx) = mpsc::channel();
    let sig_handle = signals.handle();
    let sig_thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if sig_tx.send(s).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the signal thread")?;

    let published = snapshot::publish(Snapshot::empty(&config, RuntimeInfo::default()));
    let restored = restore_history(&config)?;
    let sinks = Sinks::start(&config.alerts, &restored.open)?;
    let mitigation = crate::mitigation::Mitigator::start(&config.mitigation)?;
    let mut capture = Capture::start(&config, published.clone(), restored, sinks, mitigation)?;
    let http = crate::http::start(
        &config.http.listen,
        config.http.auth.as_ref(),
        published.clone(),
    )?;
    http.warn_if_exposed();
    log::info!(
        "ready: watching {}; HTTP API on {}",
        display_list(&capture.watched()),
        display_list(
            &http
                .addrs()
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
        )
    );

    crate::notify::ready(&format!("watching {}", display_list(&capture.watched())));

    let tick = config.tick();
    let mut failure = None;
    loop {
        match sig_rx.recv_timeout(tick) {
            Ok(SIGTERM) | Ok(SIGINT) => break,
            Ok(SIGHUP) => match reload(path.as_deref()) {
                Ok(new) => {
                    crate::notify::notify("RELOADING=1");
                    let (new, restart) = new.keeping_restart_only(&config);
                    if !restart.is_empty() {
                        log::warn!(
                            "reload: {} take effect after a restart; until then the running values stay",
                            restart.join(", ")
                        );
                    }
                    if let Some(what) = http.set_auth(new.http.auth.as_ref()) {
                        log::info!("reload: HTTP {what}");
                    }
                    capture.reconfigure(&new);
                    config = new;
                    crate::notify::notify("READY=1");
                }
                Err(e) => log::error!("reload refused, the running configuration stays: {e:#}"),
            },
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => capture.refresh(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(why) = capture.lost_worker() {
            log::error!("{why}; stopping so that the service manager starts the daemon again");
            failure = Some(why);
            break;
        }
    }
    log::info!("stopping");
    crate::notify::notify("STOPPING=1");
    let (last, reports) = capture.stop();
    http.stop();
    sig_handle.close();
    let _ = sig_thread.join();
    if let Some(s) = last {
        log_summary(&s);
    }
    for r in reports {
        log::info!(
            "worker {}: {} wait, CPU {}, {} hand-overs, {} stalls, {} blocks, {} wake-ups",
            r.id,
            r.wait,
            r.pinned.map_or("-".to_string(), |c| c.to_string()),
            r.handovers,
            r.stalls,
            r.blocks,
            r.wakeups
        );
    }
    match failure {
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// Reads the config again for SIGHUP.
fn reload(path: Option<&Path>) -> anyhow::Result<Config> {
    let default = Path::new(config::DEFAULT_PATH);
    match path {
        Some(p) => Ok(Config::load(p)?),
        None if default.exists() => Ok(Config::load(default)?),
        None => Ok(Config::default()),
    }
}

/// Alerts open when the daemon last stopped, from the history file.
fn restore_history(config: &Config) -> anyhow::Result<history::Loaded> {
    if config.alerts.history_file.is_empty() {
        return Ok(history::Loaded::default());
    }
    let path = Path::new(&config.alerts.history_file);
    let loaded = history::load(path)
        .with_context(|| format!("cannot read the alert history {}", path.display()))?;
    if let Some(at) = loaded.torn_at {
        log::warn!(
            "{}: the last line (at byte {at}) was cut short, probably by a power failure or a full disk; it is cut off, so the next event starts a line of its own",
            path.display()
        );
    }
    if loaded.skipped > 0 {
        log::warn!(
            "{}: {} line(s) that are not alert events were skipped",
            path.display(),
            loaded.skipped
        );
    }
    Ok(loaded)
}

fn display_list(v: &[String]) -> String {
    if v.is_empty() {
        "no interface yet".into()
    } else {
        v.join(", ")
    }
}

/// What was counted, per interface, since start.
fn log_summary(s: &Snapshot) {
    log::info!(
        "counted {} IP packets, {} bytes since start (untracked: {} bytes of sources the host table had no room for)",
        s.lifetime.packets,
        s.lifetime.bytes,
        s.lifetime_untracked.src_bytes
    );
    for i in &s.ifaces {
        let t = &i.totals;
        let non_ip: u64 = t.non_ip.values().sum();
        let bad: u64 = t.malformed.values().sum();
        log::info!(
            "{}: {} frames, {} IP packets ({} bytes), {} non-IP, {} parser problems, kernel: {} packets, {} dropped",
            i.name,
            t.frames,
            t.ip_packets,
            t.ip_bytes,
            non_ip,
            bad,
            t.kernel_packets,
            t.kernel_drops
        );
    }
}
