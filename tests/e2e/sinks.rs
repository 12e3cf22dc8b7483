//! Alert programs that misbehave, seen from the running daemon: children
//! that outlive the program, endless standard error, a program that never
//! ends while the daemon stops.

use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::history::{alert_from, config};
use crate::netns::{Topology, require, run, unique, wait_until};

/// Processes whose command line contains `token`.
fn processes_with(token: &str) -> usize {
    let out = run(&["pgrep", "-f", "-c", token]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// A program that starts two children of its own, writes 4 MiB to standard
/// error and never ends: the daemon stops within seconds, leaves none of
/// them running, keeps at most a bounded, prefixed part of what they wrote,
/// and records in the history the events the program did not get.
#[test]
fn a_hanging_program_and_its_children_end_with_the_daemon_and_its_events_are_recorded() {
    require(&["trafgen", "pgrep", "sh", "head"]);
    let t = Topology::new();
    let dir = std::env::temp_dir().join(unique("sx"));
    std::fs::create_dir_all(&dir).unwrap();
    let history = dir.join("alerts.jsonl");
    // A token only this test's children carry (sleep takes fractions).
    let token = format!("7791.{}", std::process::id());
    let script = dir.join("prog.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep {token} &\nsleep {token} &\nyes 'spam from the program' | head -c 4194304 >&2\nexec sleep {token}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let exec = format!(
        "[alerts.exec]\ncommand = [{script:?}]\ntimeout = \"10m\"\nmax_running = 2\nqueue = 100"
    );
    let d = Daemon::start(&t.rtr, &config(&history, "1h", &exec));
    for i in 0..5 {
        alert_from(&t, &d, &format!("10.1.0.{}", 50 + i));
    }
    // Two programs running, each with its two children and its own sleep.
    let running = wait_until(Duration::from_secs(10), || {
        (processes_with(&token) >= 6).then_some(())
    });
    assert!(running.is_some(), "programs did not start: {}", d.log());
    let t0 = Instant::now();
    let (code, log) = d.stop();
    let took = t0.elapsed();
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(8), "stopping took {took:?}");
    let left = wait_until(Duration::from_secs(2), || {
        (processes_with(&token) == 0).then_some(())
    });
    assert!(
        left.is_some(),
        "{} of the programs' processes outlived the daemon",
        processes_with(&token)
    );
    // What they wrote: prefixed, and far less than the 8 MiB written.
    let prefixed = log
        .lines()
        .filter(|l| l.contains("prog.sh: spam from the program"))
        .count();
    assert!(
        prefixed > 0,
        "no prefixed program output in the log: {}",
        &log[log.len().saturating_sub(4000)..]
    );
    assert!(
        log.len() < 256 * 1024,
        "the log holds {} bytes of it",
        log.len()
    );
    // Events the program never got are in the history, marked.
    let text = std::fs::read_to_string(&history).unwrap();
    let undelivered = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["undelivered"] == "exec")
        .count();
    assert!(undelivered > 0, "no undelivered record: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}
