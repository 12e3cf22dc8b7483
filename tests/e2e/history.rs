//! The alert history of the running daemon when its file is abused:
//! rotations under many alerts, a filesystem that fills up, a rotation that
//! cannot happen, a line of a gibibyte, events at the end of time, counts
//! from the config that would allocate the machine away.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::daemon::Daemon;
use crate::netns::{Topology, require, run, unique, wait_until};
use crate::traffic::{spoofed_udp4, trafgen, udp4};

/// Every IPv4 source that sends a packet opens a traffic alert; with a
/// short hold-down it closes a second after its packet leaves the window.
/// IPv6 hosts are ignored: the namespaces' own neighbour discovery would
/// alert at such a limit, at times of its own.
pub(crate) fn config(history: &Path, hold_down: &str, extra: &str) -> String {
    format!(
        r#"
[traffic]
interval = "1s"
byte_limit = 50
[inbound]
byte_limit = "1G"
[alerts]
hold_down = "{hold_down}"
history_file = {history:?}
{extra}
[[rule]]
name = "IPv6 chatter"
networks = ["::/0"]
ignore = true
"#
    )
}

/// Alerts opened and closed so far, all kinds, as the daemon counts them.
fn alert_totals(d: &Daemon<'_>) -> (u64, u64) {
    let s = d.json("/api/v1/status");
    let sum = |v: &Value| {
        v.as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    };
    (
        sum(&s["alerts"]["opened_total"]),
        sum(&s["alerts"]["closed_total"]),
    )
}

/// Every event of the history, page by page as a client follows them.
fn all_events(d: &Daemon<'_>) -> (Vec<Value>, u64) {
    let (mut events, mut since, mut skipped) = (Vec::new(), 0u64, 0);
    for _ in 0..100 {
        let page = d.json(&format!("/api/v1/alerts/history?since={since}&limit=1000"));
        events.extend(page["events"].as_array().cloned().unwrap_or_default());
        skipped += page["skipped_lines"].as_u64().unwrap_or(0);
        if page["more"] != true {
            return (events, skipped);
        }
        since = page["next_since"].as_u64().expect("next_since");
    }
    panic!("paging did not end in 100 pages");
}

/// Distinct alert ids with an event of `what` ("open" / "close").
fn ids(events: &[Value], what: &str) -> std::collections::BTreeSet<u64> {
    events
        .iter()
        .filter(|e| e["event"] == what)
        .filter_map(|e| e["alert"]["id"].as_u64())
        .collect()
}

/// `trafficalerted_sink_events_total{sink="history",outcome=...}`.
fn history_count(d: &Daemon<'_>, outcome: &str) -> u64 {
    let (_, m) = d.get("/metrics");
    let key = format!("trafficalerted_sink_events_total{{sink=\"history\",outcome=\"{outcome}\"}}");
    m.lines()
        .find(|l| l.starts_with(&key))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} not in /metrics"))
}

/// Waits until the history sink has delivered at least `n` events.
fn delivered_at_least(d: &Daemon<'_>, n: u64) {
    wait_until(Duration::from_secs(5), || {
        (history_count(d, "delivered") >= n).then_some(())
    })
    .unwrap_or_else(|| panic!("{n} events not written: {}", d.log()));
}

/// The lines of a history file about `subject`.
fn lines_about(text: &str, subject: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["alert"]["subject"] == subject)
        })
        .map(str::to_string)
        .collect()
}

fn no_alert_open(d: &Daemon<'_>, limit: Duration) -> bool {
    wait_until(limit, || {
        let a = d.json("/api/v1/alerts");
        a["open"]
            .as_array()
            .is_some_and(|o| o.is_empty())
            .then_some(())
    })
    .is_some()
}

/// `sources` spoofed sources send one packet each, `gap_us` apart: an
/// alert each, all closed before this returns; alerts opened and closed,
/// as the daemon counts them.
fn one_alert_per_source(t: &Topology, d: &Daemon<'_>, sources: u64, gap_us: u64) -> (u64, u64) {
    let mac = t.rtr.mac(&t.r0);
    trafgen(
        &t.gen_ns,
        &t.g0,
        sources,
        gap_us,
        &spoofed_udp4(&mac, "10.2.0.2", 9, 100),
    );
    assert!(
        no_alert_open(d, Duration::from_secs(30)),
        "alerts stay open"
    );
    alert_totals(d)
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(tag));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 600 sources alert and close, more of them open at once than a new
/// file could start with, the history keeping its default three old files:
/// every event counted as delivered is in the history, none twice (rotating
/// each time the file is full would push the oldest events out within
/// seconds), and the log says that the file outgrows its bound meanwhile.
#[test]
fn many_open_alerts_outgrowing_the_file_lose_no_event() {
    require(&["trafgen"]);
    let t = Topology::new();
    let dir = temp_dir("hr");
    let d = Daemon::start(
        &t.rtr,
        &config(
            &dir.join("alerts.jsonl"),
            "1s",
            "history_max_size = \"64KiB\"\nhistory_keep = 3\n",
        ),
    );
    // One packet per source, 100 a second: ~250 alerts open at once.
    let (opened_total, closed_total) = one_alert_per_source(&t, &d, 600, 10_000);
    assert!(opened_total >= 600, "{opened_total} alerts opened");
    assert_eq!(opened_total, closed_total);
    let delivered = wait_until(Duration::from_secs(5), || {
        let n = history_count(&d, "delivered");
        (n == opened_total + closed_total).then_some(n)
    });
    let (events, skipped) = all_events(&d);
    let (opened, closed) = (ids(&events, "open"), ids(&events, "close"));
    assert_eq!(
        (opened.len() as u64, closed.len() as u64, skipped),
        (opened_total, closed_total, 0),
        "delivered {delivered:?}; files {:?}; log:\n{}",
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>(),
        d.log()
    );
    assert_eq!(opened, closed);
    assert_eq!(history_count(&d, "failed"), 0);
    assert!(d.log().contains("rotation waits"), "{}", d.log());
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small tmpfs mounted for the test, unmounted however it ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = temp_dir("hfs");
        let out = run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            &dir.to_string_lossy(),
        ]);
        assert!(out.status.success(), "mount: {out:?}");
        Tmpfs(dir)
    }

    /// Fills what space is left with a file of its own.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0x5a; 4096];
        while f.write_all(&block).is_ok() {}
        let mut byte = [0x5a];
        while f.write_all(&byte).is_ok() {
            byte[0] ^= 1;
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }

    /// No name in the directory can be made, removed or changed.
    fn immutable(&self, on: bool) {
        let out = run(&[
            "chattr",
            if on { "+i" } else { "-i" },
            &self.0.to_string_lossy(),
        ]);
        assert!(out.status.success() || !on, "chattr: {out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        self.immutable(false);
        let _ = run(&["umount", "-l", &self.0.to_string_lossy()]);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The one-packet traffic alert of `src`, opened.
pub(crate) fn alert_from(t: &Topology, d: &Daemon<'_>, src: &str) {
    let mac = t.rtr.mac(&t.r0);
    trafgen(&t.gen_ns, &t.g0, 1, 10, &udp4(&mac, src, "10.2.0.2", 100));
    let open = wait_until(Duration::from_secs(5), || {
        let a = d.json("/api/v1/alerts");
        a["open"]
            .as_array()?
            .iter()
            .any(|x| x["subject"] == src)
            .then_some(())
    });
    assert!(
        open.is_some(),
        "no alert for {src}: {}",
        lost_packet(t, d, src)
    );
}

/// Where a one-packet alert that did not open got to (one did not, once,
/// in a clean-clone CI run of 2026-12-07, with nothing in the daemon's
/// log, and never since): whether the packet reached the router's
/// interface, whether the daemon captured it, whether its host was
/// counted, and whether the ticks went on.
fn lost_packet(t: &Topology, d: &Daemon<'_>, src: &str) -> String {
    // Whatever `ip` says, its failure included: a panic here would hide
    // the message this is part of.
    let link = run(&["ip", "-n", &t.rtr.name, "-s", "link", "show", &t.r0]);
    let (_, metrics) = d.get("/metrics");
    let ours: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && (l.contains("interface_frames_total")
                    || l.contains("drops")
                    || l.starts_with("trafficalerted_packets_total")
                    || l.contains("ticks"))
        })
        .collect();
    format!(
        "kernel's counters of the router's side:\n{}\nsoftnet_stat:\n{}\nthe daemon's:\n{}\n/api/v1/hosts/{src}: {:?}\nlog:\n{}",
        String::from_utf8_lossy(&link.stdout) + String::from_utf8_lossy(&link.stderr),
        std::fs::read_to_string("/proc/net/softnet_stat").unwrap_or_default(),
        ours.join("\n"),
        d.get(&format!("/api/v1/hosts/{src}")),
        d.log()
    )
}

/// A real full filesystem: the events that do not fit are counted as
/// failed, the torn line they leave is cut off, and the first event once
/// space returns is whole and read back.
#[test]
fn a_full_filesystem_leaves_no_torn_line_to_swallow_the_next_event() {
    require(&["trafgen", "mount"]);
    let t = Topology::new();
    let fs = Tmpfs::new("256k");
    let history = fs.0.join("alerts.jsonl");
    let d = Daemon::start(&t.rtr, &config(&history, "1h", ""));
    alert_from(&t, &d, "10.1.0.50");
    delivered_at_least(&d, 1);
    fs.fill();
    // Whole lines fit in the file's last page until one does not.
    for i in 0..12 {
        alert_from(&t, &d, &format!("10.1.0.{}", 60 + i));
    }
    let failed = wait_until(Duration::from_secs(5), || {
        let n = history_count(&d, "failed");
        (n > 0).then_some(n)
    });
    assert!(failed.is_some(), "no write failed on a full filesystem");
    fs.free();
    alert_from(&t, &d, "10.1.0.99");
    wait_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&history).ok()?;
        (!lines_about(&text, "10.1.0.99").is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("the event after the space returned: {}", d.log()));
    let text = std::fs::read_to_string(&history).unwrap();
    for line in text.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "a line that is not an event: {line:?}"
        );
    }
    let (events, skipped) = all_events(&d);
    assert_eq!(skipped, 0);
    let subjects: Vec<&str> = events
        .iter()
        .filter_map(|e| e["alert"]["subject"].as_str())
        .collect();
    assert!(subjects.contains(&"10.1.0.50"), "{subjects:?}");
    assert!(subjects.contains(&"10.1.0.99"), "{subjects:?}");
    // Every event is either in the file or counted as failed (the
    // counters are the tick's: given a tick to catch up).
    let counts = || {
        let (opened, closed) = alert_totals(&d);
        let (delivered, failed) = (history_count(&d, "delivered"), history_count(&d, "failed"));
        (events.len() as u64, delivered, failed, opened + closed)
    };
    let settled = wait_until(Duration::from_secs(5), || {
        let (n, delivered, failed, total) = counts();
        (n == delivered && delivered + failed == total).then_some(())
    });
    assert!(
        settled.is_some(),
        "(in file, delivered, failed, events) = {:?}",
        counts()
    );
    drop(d);
}

/// Rotation impossible (the directory made immutable once the file is
/// open: no name in it can change, as in a read-only directory that root
/// cannot override): the events are still written and counted as
/// delivered, and the log says the file grows past its bound.
#[test]
fn a_rotation_that_cannot_happen_is_said_and_loses_nothing() {
    require(&["trafgen", "mount", "chattr"]);
    let t = Topology::new();
    let fs = Tmpfs::new("16m");
    let history = fs.0.join("alerts.jsonl");
    let d = Daemon::start(
        &t.rtr,
        &config(
            &history,
            "1s",
            "history_max_size = \"64KiB\"\nhistory_keep = 1\n",
        ),
    );
    fs.immutable(true);
    let (opened_total, closed_total) = one_alert_per_source(&t, &d, 300, 20_000);
    wait_until(Duration::from_secs(5), || {
        (history_count(&d, "delivered") == opened_total + closed_total).then_some(())
    })
    .unwrap_or_else(|| panic!("every event delivered: {}", d.log()));
    assert_eq!(history_count(&d, "failed"), 0);
    let size = std::fs::metadata(&history).unwrap().len();
    assert!(size > 64 * 1024, "{size} bytes: the bound was not reached");
    assert!(
        d.log().contains("cannot rotate"),
        "the log does not say so: {}",
        d.log()
    );
    let (events, _) = all_events(&d);
    assert_eq!(ids(&events, "close").len() as u64, closed_total);
    assert_eq!(
        std::fs::read_dir(&fs.0).unwrap().count(),
        1,
        "no rotated file"
    );
    drop(d);
}

/// Two real event lines from a daemon's history file, with a line of a
/// gibibyte between them, read at start and by the API without holding it.
#[test]
fn a_gibibyte_line_in_the_history_is_skipped_without_being_held() {
    require(&["trafgen"]);
    let t = Topology::new();
    let dir = temp_dir("hg");
    let history = dir.join("alerts.jsonl");
    let lines = real_event_lines(&t, &history, &["10.1.0.50", "10.1.0.51"]);
    {
        let mut f = std::fs::File::create(&history).unwrap();
        writeln!(f, "{}", lines[0]).unwrap();
        // A gibibyte without a newline: a hole that reads as zeros.
        let at = f.metadata().unwrap().len();
        f.set_len(at + (1 << 30)).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&history)
            .unwrap();
        writeln!(f).unwrap();
        writeln!(f, "{}", lines[1]).unwrap();
    }
    let d = Daemon::start(&t.rtr, &config(&history, "1h", ""));
    // Restored from the file and shown from the first tick on.
    let open = wait_until(Duration::from_secs(10), || {
        let open = d.json("/api/v1/alerts")["open"].as_array()?.clone();
        let has = |ip: &str| open.iter().any(|a| a["subject"] == ip);
        (has("10.1.0.50") && has("10.1.0.51")).then_some(())
    });
    assert!(
        open.is_some(),
        "both alerts restored: {}",
        d.json("/api/v1/alerts")
    );
    // Only the two lines' events (the namespaces' own chatter may alert
    // too at a 50-byte limit).
    let (events, skipped) = all_events(&d);
    let ours: Vec<&Value> = events
        .iter()
        .filter(|e| e["alert"]["subject"] == "10.1.0.50" || e["alert"]["subject"] == "10.1.0.51")
        .collect();
    assert_eq!((ours.len(), skipped), (2, 1), "{events:?}");
    assert_eq!(ours[0]["alert"]["subject"], "10.1.0.50");
    assert_eq!(ours[1]["alert"]["subject"], "10.1.0.51");
    let peak = peak_rss_kib(&d);
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB: the line was held");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The opening lines a daemon writes to `history` for a one-packet alert
/// of each of `subjects`, in that order (the daemon is stopped after).
fn real_event_lines(t: &Topology, history: &Path, subjects: &[&str]) -> Vec<String> {
    let d = Daemon::start(&t.rtr, &config(history, "1h", ""));
    for s in subjects {
        alert_from(t, &d, s);
    }
    delivered_at_least(&d, subjects.len() as u64);
    drop(d);
    let text = std::fs::read_to_string(history).unwrap();
    let lines: Vec<String> = subjects
        .iter()
        .flat_map(|s| lines_about(&text, s))
        .collect();
    assert_eq!(lines.len(), subjects.len(), "{text}");
    lines
}

fn peak_rss_kib(d: &Daemon<'_>) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

/// Events at the last millisecond there is (u64::MAX, read from the file):
/// paging by `next_since` ends, it does not start over.
#[test]
fn paging_ends_at_the_end_of_time() {
    require(&["trafgen"]);
    let t = Topology::new();
    let dir = temp_dir("ht");
    let history = dir.join("alerts.jsonl");
    let line = &real_event_lines(&t, &history, &["10.1.0.50"])[0];
    let line: Value = serde_json::from_str(line).unwrap();
    let mut text = String::new();
    for id in [7u64, 8, 9] {
        let mut e = line.clone();
        e["alert"]["id"] = id.into();
        e["alert"]["start_ms"] = u64::MAX.into();
        text.push_str(&format!("{e}\n"));
    }
    std::fs::write(&history, text).unwrap();
    let d = Daemon::start(&t.rtr, &config(&history, "1h", ""));
    let mut since = 0u64;
    let mut seen = 0;
    for _ in 0..10 {
        let page = d.json(&format!("/api/v1/alerts/history?since={since}&limit=1"));
        seen += page["events"].as_array().map_or(0, |e| e.len());
        let next = page["next_since"].as_u64().expect("next_since");
        assert!(next >= since, "paging went back from {since} to {next}");
        since = next;
        if page["more"] != true {
            break;
        }
    }
    assert_eq!(since, u64::MAX, "paging ended at the end of time");
    assert!(seen >= 1, "the events were read");
    let (events, _) = all_events(&d);
    let at_the_end = events
        .iter()
        .filter(|e| e["alert"]["start_ms"] == u64::MAX)
        .count();
    assert_eq!(at_the_end, 3, "{events:?}");
    assert_eq!(d.get("/healthz").0, 200, "{}", d.log());
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
