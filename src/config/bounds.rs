//! Upper bounds on every count, size and duration the config gives: each
//! of them sizes a table, a timer, a queue or a loop somewhere, and a value
//! that passes `check-config` must not overflow a clock or an allocation
//! when it is used.

use std::time::Duration;

use super::{Config, ConfigError, Located};

const DAY: Duration = Duration::from_secs(86_400);

/// Windows and intervals: a week of ticks is the longest a window holds.
pub const WINDOW_MAX: Duration = Duration::from_secs(7 * 86_400);
/// An alert's hold-down: at most 30 days.
pub const HOLD_DOWN_MAX: Duration = Duration::from_secs(30 * 86_400);
/// A webhook request or a program: at most 10 minutes.
pub const SINK_TIMEOUT_MAX: Duration = Duration::from_secs(600);
pub const WEBHOOK_RETRIES_MAX: u32 = 100;
/// Events queued for one sink.
pub const SINK_QUEUE_MAX: usize = 1_000_000;
pub const EXEC_RUNNING_MAX: usize = 256;
pub const HISTORY_SIZE_MAX: u64 = 1 << 40;
pub const HISTORY_KEEP_MAX: u32 = 1000;
pub const WORKERS_MAX: usize = 1024;
pub const KEEP_DESTINATIONS_MAX: usize = 10_000;
pub const RING_MEMORY_MAX: u64 = 1 << 40;

fn human(d: Duration) -> String {
    if d >= DAY && d.as_secs() % DAY.as_secs() == 0 {
        format!("{}d", d.as_secs() / DAY.as_secs())
    } else {
        super::units::format_duration(d)
    }
}

/// Every bound at once, after the values have been read.
pub(super) fn check(c: &Config, at: &Located<'_>) -> Result<(), ConfigError> {
    let duration = |key: &[&str], d: Duration, max: Duration| {
        if d > max {
            Err(at.invalid(
                key,
                format!(
                    "must be at most {}, got {}",
                    human(max),
                    super::units::format_duration(d)
                ),
            ))
        } else {
            Ok(())
        }
    };
    let count = |key: &[&str], n: u64, max: u64| {
        if n > max {
            Err(at.invalid(key, format!("must be at most {max}, got {n}")))
        } else {
            Ok(())
        }
    };
    duration(&["traffic", "interval"], c.traffic.interval.0, WINDOW_MAX)?;
    duration(&["scan", "interval"], c.scan.interval.0, WINDOW_MAX)?;
    duration(
        &["scan", "port_interval"],
        c.scan.port_interval.0,
        WINDOW_MAX,
    )?;
    if let Some(h) = c.alerts.hold_down {
        duration(&["alerts", "hold_down"], h.0, HOLD_DOWN_MAX)?;
    }
    count(
        &["capture", "workers"],
        c.capture.workers.unwrap_or(0) as u64,
        WORKERS_MAX as u64,
    )?;
    count(
        &["capture", "ring_memory_max"],
        c.capture.ring_memory_max.unwrap_or(0),
        RING_MEMORY_MAX,
    )?;
    count(
        &["traffic", "keep_destinations"],
        c.traffic.keep_destinations as u64,
        KEEP_DESTINATIONS_MAX as u64,
    )?;
    count(
        &["alerts", "history_max_size"],
        c.alerts.history_max_size.0,
        HISTORY_SIZE_MAX,
    )?;
    count(
        &["alerts", "history_keep"],
        u64::from(c.alerts.history_keep),
        u64::from(HISTORY_KEEP_MAX),
    )?;
    if let Some(w) = &c.alerts.webhook {
        duration(
            &["alerts", "webhook", "timeout"],
            w.timeout.0,
            SINK_TIMEOUT_MAX,
        )?;
        count(
            &["alerts", "webhook", "retries"],
            u64::from(w.retries),
            u64::from(WEBHOOK_RETRIES_MAX),
        )?;
        count(
            &["alerts", "webhook", "queue"],
            w.queue as u64,
            SINK_QUEUE_MAX as u64,
        )?;
    }
    if let Some(e) = &c.alerts.exec {
        duration(
            &["alerts", "exec", "timeout"],
            e.timeout.0,
            SINK_TIMEOUT_MAX,
        )?;
        count(
            &["alerts", "exec", "max_running"],
            e.max_running as u64,
            EXEC_RUNNING_MAX as u64,
        )?;
        count(
            &["alerts", "exec", "queue"],
            e.queue as u64,
            SINK_QUEUE_MAX as u64,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn err(text: &str) -> String {
        Config::parse(text, "t").unwrap_err().to_string()
    }

    #[test]
    fn absurd_numbers_are_refused_with_the_key_and_the_bound() {
        for (text, key) in [
            (
                "[alerts]\nhistory_keep = 4294967295\n",
                "alerts.history_keep",
            ),
            (
                "[alerts]\nhistory_max_size = \"16TiB\"\n",
                "alerts.history_max_size",
            ),
            (
                "[alerts.exec]\ncommand = [\"/bin/true\"]\ntimeout = 9223372036854775807\n",
                "alerts.exec.timeout",
            ),
            (
                "[alerts.exec]\ncommand = [\"/bin/true\"]\nmax_running = 100000\n",
                "alerts.exec.max_running",
            ),
            (
                "[alerts.webhook]\nurl = \"http://127.0.0.1:1/\"\ntimeout = \"1d\"\n",
                "alerts.webhook.timeout",
            ),
            (
                "[alerts.webhook]\nurl = \"http://127.0.0.1:1/\"\nqueue = 1000000000\n",
                "alerts.webhook.queue",
            ),
            (
                "[traffic]\ninterval = 18446744073709551615\n",
                "traffic.interval",
            ),
            ("[traffic]\ninterval = \"8d\"\n", "traffic.interval"),
            ("[scan]\nport_interval = \"30d\"\n", "scan.port_interval"),
            ("[alerts]\nhold_down = \"365d\"\n", "alerts.hold_down"),
            ("[capture]\nworkers = 1000000\n", "capture.workers"),
            (
                "[traffic]\nkeep_destinations = 1000000\n",
                "traffic.keep_destinations",
            ),
        ] {
            let e = err(text);
            assert!(e.contains(key) && e.contains("at most"), "{text}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        for text in ["tick = [1]\n", "[traffic]\nbyte_limit = true\n"] {
            let e = err(text);
            assert!(e.contains("expected a whole number"), "{e}");
            assert!(!e.contains("expected expected"), "{e}");
        }
        // At the bound: accepted.
        assert!(Config::parse("[alerts]\nhistory_keep = 1000\n", "t").is_ok());
        assert!(Config::parse("[traffic]\ninterval = \"7d\"\n", "t").is_ok());
    }
}
