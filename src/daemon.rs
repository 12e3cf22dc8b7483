//! The daemon's life: start capture and the API, refresh interfaces every
//! tick, stop cleanly on SIGTERM or SIGINT and say what was counted.

use std::sync::mpsc;

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::aggregator::RuntimeInfo;
use crate::capture::Capture;
use crate::config::Config;
use crate::snapshot::{self, Snapshot};

/// Runs until SIGTERM or SIGINT.
pub fn run(config: Config) -> anyhow::Result<()> {
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
    let mut capture = Capture::start(&config, published.clone())?;
    let http = crate::http::start(&config.http.listen, published.clone())?;
    for a in http.addrs() {
        if !a.ip().is_loopback() {
            log::warn!(
                "the HTTP API on {a} is reachable from the network and has no access control; keep it on a management network"
            );
        }
    }
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

    let tick = config.tick();
    loop {
        match sig_rx.recv_timeout(tick) {
            Ok(SIGTERM) | Ok(SIGINT) => break,
            Ok(SIGHUP) => log::warn!(
                "SIGHUP: reloading the configuration is not supported by this version; restart to apply changes"
            ),
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => capture.refresh(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    log::info!("stopping");
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
    Ok(())
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
        "counted {} IP packets, {} bytes since start (untracked: {} bytes of unknown sources)",
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
