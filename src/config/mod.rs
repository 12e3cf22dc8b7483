//! The configuration: one TOML file, parsed in two stages. [`RawConfig`] is
//! the file as written (serde, unknown keys rejected); [`Config`] is the
//! validated result with every default filled in, which the daemon runs on
//! and `/capabilities` shows.

mod glob;
mod raw;
pub mod units;

pub use glob::Glob;
pub use raw::RawConfig;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use units::{Size, Span};

/// Where the config lives unless `-c` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/trafficalerted/trafficalerted.toml";

/// The documented default config, shipped as `config/trafficalerted.toml`;
/// a test keeps it equal to the built-in defaults.
pub const DOCUMENTED_DEFAULT: &str = include_str!("../../config/trafficalerted.toml");

/// A config that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("{origin}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Syntax {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{origin}{}: `{key}`: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Invalid {
        origin: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

/// Which packets count: what arrives at an interface, or what arrives and
/// what leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CountDirection {
    /// Count packets as they arrive. A packet the box forwards arrives once
    /// and is counted once; the box's own outgoing traffic is not counted.
    Ingress,
    /// Count arrivals and departures: a host's own traffic is seen both
    /// ways, but a forwarded packet is counted twice.
    Both,
}

/// Spreading of packets over workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FanoutPolicy {
    Hash,
    Cpu,
    Lb,
}

/// How idle workers sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitPolicy {
    Auto,
    IoUring,
    Poll,
}

/// `[capture]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureConfig {
    /// Interfaces to watch (names or globs); empty means all.
    pub interfaces: Vec<Glob>,
    pub exclude_interfaces: Vec<Glob>,
    /// Worker threads; `None` is one per core.
    pub workers: Option<usize>,
    pub direction: CountDirection,
    pub snaplen: u32,
    /// Ring block size; `None` is chosen from the machine.
    pub block_size: Option<u64>,
    /// Ring blocks per socket; `None` is chosen from the machine.
    pub block_count: Option<u32>,
    pub block_timeout: Span,
    pub fanout: FanoutPolicy,
    pub wait: WaitPolicy,
    /// Cap on all rings together; `None` is chosen from the machine.
    pub ring_memory_max: Option<u64>,
    /// Leave out VLAN, bond and bridge devices whose lower devices are
    /// watched: their packets are already counted there.
    pub skip_stacked: bool,
}

/// `[traffic]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficConfig {
    pub interval: Span,
    pub byte_limit: Size,
    pub chart_min_bytes: Size,
    pub keep_destinations: usize,
    pub max_hosts: usize,
    pub max_pairs: usize,
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpConfig {
    pub listen: Vec<SocketAddr>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub tick: Span,
    pub capture: CaptureConfig,
    pub traffic: TrafficConfig,
    pub http: HttpConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_raw(RawConfig::default(), &Located::none())
            .expect("built-in defaults are valid")
    }
}

/// Bounds the validation enforces.
pub mod limits {
    pub const SNAPLEN_MIN: u32 = 64;
    pub const SNAPLEN_MAX: u32 = 65535;
    pub const TICK_MIN_MS: u128 = 100;
    pub const TICK_MAX_MS: u128 = 60_000;
    pub const MAX_HOSTS_MAX: usize = 1 << 26;
    pub const MAX_PAIRS_MAX: usize = 1 << 28;
    pub const BLOCK_TIMEOUT_MAX_MS: u128 = 10_000;
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.display().to_string(),
            err,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw = RawConfig::parse(text, origin)?;
        Config::from_raw(raw, &Located::new(text, origin))
    }

    /// The tick length.
    pub fn tick(&self) -> Duration {
        self.tick.0
    }

    /// Ticks per traffic interval.
    pub fn interval_ticks(&self) -> u64 {
        (self.traffic.interval.0.as_millis() / self.tick.0.as_millis()) as u64
    }

    fn from_raw(raw: RawConfig, at: &Located<'_>) -> Result<Config, ConfigError> {
        let tick = raw.tick;
        let tick_ms = tick.0.as_millis();
        if !(limits::TICK_MIN_MS..=limits::TICK_MAX_MS).contains(&tick_ms) {
            return Err(at.invalid(
                &["tick"],
                format!(
                    "must be between 100ms and 60s, got {}",
                    units::format_duration(tick.0)
                ),
            ));
        }
        let whole_ticks = |key: &[&str], d: Span| -> Result<(), ConfigError> {
            let ms = d.0.as_millis();
            if ms == 0 || ms % tick_ms != 0 {
                return Err(at.invalid(
                    key,
                    format!(
                        "must be a positive whole number of ticks (tick = {}), got {}",
                        units::format_duration(tick.0),
                        units::format_duration(d.0)
                    ),
                ));
            }
            Ok(())
        };

        let c = raw.capture;
        if !(limits::SNAPLEN_MIN..=limits::SNAPLEN_MAX).contains(&c.snaplen) {
            return Err(at.invalid(
                &["capture", "snaplen"],
                format!(
                    "must be between {} and {} bytes, got {}",
                    limits::SNAPLEN_MIN,
                    limits::SNAPLEN_MAX,
                    c.snaplen
                ),
            ));
        }
        let workers = match c.workers.0 {
            None => None,
            Some(0) => {
                return Err(at.invalid(
                    &["capture", "workers"],
                    "must be at least 1, or \"auto\" for one per core".into(),
                ));
            }
            Some(n) => Some(n),
        };
        let block_size = match c.block_size.0 {
            None => None,
            Some(Size(b)) => {
                if b < 4096 || !b.is_power_of_two() || b > (1 << 30) {
                    return Err(at.invalid(
                        &["capture", "block_size"],
                        format!("must be a power of two between 4KiB and 1GiB, got {b}"),
                    ));
                }
                Some(b)
            }
        };
        let block_count = match c.block_count.0 {
            None => None,
            Some(0) => {
                return Err(at.invalid(
                    &["capture", "block_count"],
                    "must be at least 1, or \"auto\"".into(),
                ));
            }
            Some(n) => Some(n),
        };
        if let (Some(bs), Some(n)) = (block_size, block_count) {
            if bs.saturating_mul(u64::from(n)) > (1 << 40) {
                return Err(at.invalid(
                    &["capture", "block_count"],
                    "block_size × block_count exceeds 1 TiB".into(),
                ));
            }
        }
        let bt = c.block_timeout.0.as_millis();
        if bt == 0 || bt > limits::BLOCK_TIMEOUT_MAX_MS {
            return Err(at.invalid(
                &["capture", "block_timeout"],
                "must be between 1ms and 10s".into(),
            ));
        }
        if bt >= tick_ms {
            return Err(at.invalid(
                &["capture", "block_timeout"],
                format!(
                    "must be shorter than the tick ({}), or packets miss their tick",
                    units::format_duration(tick.0)
                ),
            ));
        }
        let ring_memory_max = match c.ring_memory_max.0 {
            None => None,
            Some(Size(m)) if m < (1 << 20) => {
                return Err(at.invalid(
                    &["capture", "ring_memory_max"],
                    format!("must be at least 1MiB, got {m}"),
                ));
            }
            Some(Size(m)) => Some(m),
        };
        let interfaces = globs(&c.interfaces, &["capture", "interfaces"], at)?;
        let exclude_interfaces = globs(
            &c.exclude_interfaces,
            &["capture", "exclude_interfaces"],
            at,
        )?;

        let t = raw.traffic;
        whole_ticks(&["traffic", "interval"], t.interval)?;
        if t.max_hosts == 0 || t.max_hosts > limits::MAX_HOSTS_MAX {
            return Err(at.invalid(
                &["traffic", "max_hosts"],
                format!("must be between 1 and {}", limits::MAX_HOSTS_MAX),
            ));
        }
        if t.max_pairs == 0 || t.max_pairs > limits::MAX_PAIRS_MAX {
            return Err(at.invalid(
                &["traffic", "max_pairs"],
                format!("must be between 1 and {}", limits::MAX_PAIRS_MAX),
            ));
        }
        if t.byte_limit.0 == 0 {
            return Err(at.invalid(&["traffic", "byte_limit"], "must be at least 1 byte".into()));
        }

        let listen = raw.http.listen.0;
        if listen.is_empty() {
            return Err(at.invalid(&["http", "listen"], "needs at least one address".into()));
        }

        Ok(Config {
            tick,
            capture: CaptureConfig {
                interfaces,
                exclude_interfaces,
                workers,
                direction: c.direction,
                snaplen: c.snaplen,
                block_size,
                block_count,
                block_timeout: c.block_timeout,
                fanout: c.fanout,
                wait: c.wait,
                ring_memory_max,
                skip_stacked: c.skip_stacked,
            },
            traffic: TrafficConfig {
                interval: t.interval,
                byte_limit: t.byte_limit,
                chart_min_bytes: t.chart_min_bytes,
                keep_destinations: t.keep_destinations,
                max_hosts: t.max_hosts,
                max_pairs: t.max_pairs,
            },
            http: HttpConfig { listen },
        })
    }
}

fn globs(list: &[String], key: &[&str], at: &Located<'_>) -> Result<Vec<Glob>, ConfigError> {
    list.iter()
        .map(|s| Glob::new(s).map_err(|m| at.invalid(key, m)))
        .collect()
}

/// Config text kept around to point validation errors at their line.
pub(crate) struct Located<'a> {
    text: Option<&'a str>,
    origin: &'a str,
}

impl<'a> Located<'a> {
    pub(crate) fn new(text: &'a str, origin: &'a str) -> Self {
        Located {
            text: Some(text),
            origin,
        }
    }

    pub(crate) fn none() -> Self {
        Located {
            text: None,
            origin: "built-in defaults",
        }
    }

    fn invalid(&self, key: &[&str], message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line: self.text.and_then(|t| line_of_key(t, key)),
            key: key.join("."),
            message,
        }
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` (a path of table names and a key) is written.
fn line_of_key(text: &str, key: &[&str]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let (last, parents) = key.split_last()?;
    for name in parents {
        let (_, v) = table.iter().find(|(k, _)| k.get_ref() == name)?;
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    let (k, _) = table.iter().find(|(k, _)| k.get_ref() == last)?;
    Some(line_of_offset(text, k.span().start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "test.toml").unwrap_err().to_string()
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let c = Config::parse("", "empty").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.tick(), Duration::from_secs(1));
        assert_eq!(c.traffic.interval.0, Duration::from_secs(170));
        assert_eq!(c.interval_ticks(), 170);
        assert_eq!(c.capture.direction, CountDirection::Ingress);
        assert_eq!(c.http.listen, vec!["127.0.0.1:8698".parse().unwrap()]);
    }

    #[test]
    fn documented_default_file_equals_built_in_defaults() {
        let c = Config::parse(DOCUMENTED_DEFAULT, "config/trafficalerted.toml").unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn documented_default_file_mentions_every_key() {
        let keys = [
            "tick",
            "interfaces",
            "exclude_interfaces",
            "workers",
            "direction",
            "snaplen",
            "block_size",
            "block_count",
            "block_timeout",
            "fanout",
            "wait",
            "ring_memory_max",
            "skip_stacked",
            "interval",
            "byte_limit",
            "chart_min_bytes",
            "keep_destinations",
            "max_hosts",
            "max_pairs",
            "listen",
        ];
        for k in keys {
            let written = DOCUMENTED_DEFAULT.lines().any(|l| {
                l.trim_start()
                    .trim_start_matches('#')
                    .trim_start()
                    .starts_with(&format!("{k} ="))
            });
            assert!(
                written,
                "config/trafficalerted.toml does not document `{k}`"
            );
        }
    }

    #[test]
    fn values_in_all_their_forms() {
        let c = Config::parse(
            r#"
tick = 2
[capture]
interfaces = ["eth0", "veth*"]
workers = 1
direction = "both"
snaplen = 256
block_size = "1MiB"
block_count = 8
block_timeout = "20ms"
fanout = "cpu"
wait = "poll"
ring_memory_max = "64MiB"
[traffic]
interval = "10m"
byte_limit = "2G"
chart_min_bytes = 5000
max_hosts = 100
max_pairs = 1000
[http]
listen = ["127.0.0.1:9000", "[::1]:9000"]
"#,
            "t",
        )
        .unwrap();
        assert_eq!(c.tick(), Duration::from_secs(2));
        assert_eq!(c.interval_ticks(), 300);
        assert_eq!(c.capture.workers, Some(1));
        assert_eq!(c.capture.block_size, Some(1 << 20));
        assert_eq!(c.capture.ring_memory_max, Some(64 << 20));
        assert_eq!(c.capture.fanout, FanoutPolicy::Cpu);
        assert_eq!(c.capture.wait, WaitPolicy::Poll);
        assert_eq!(c.traffic.byte_limit, Size(2_000_000_000));
        assert_eq!(c.traffic.chart_min_bytes, Size(5000));
        assert_eq!(c.http.listen.len(), 2);
        assert!(c.capture.interfaces[1].matches("veth12"));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = err("tick = 1\n[traffic]\nbyte_limt = \"1G\"\n");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("byte_limt"), "{e}");
        assert!(
            e.contains("byte_limit"),
            "should list the allowed keys: {e}"
        );
    }

    #[test]
    fn unknown_section() {
        let e = err("[trafic]\ninterval = 5\n");
        assert!(e.contains("trafic") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn bad_duration_names_key_line_and_format() {
        let e = err("[traffic]\n\ninterval = \"ten minutes\"\n");
        assert!(e.contains("traffic.interval"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("\"10m\""), "{e}");
    }

    #[test]
    fn bad_size_names_key_and_units() {
        let e = err("[traffic]\nbyte_limit = \"1 gigabyte\"\n");
        assert!(
            e.contains("traffic.byte_limit") && e.contains("line 2"),
            "{e}"
        );
        assert!(e.contains("GiB"), "{e}");
    }

    #[test]
    fn bad_enum_lists_choices() {
        let e = err("[capture]\ndirection = \"egress\"\n");
        assert!(e.contains("capture.direction"), "{e}");
        assert!(e.contains("ingress") && e.contains("both"), "{e}");
    }

    #[test]
    fn wrong_type() {
        let e = err("[capture]\nsnaplen = \"big\"\n");
        assert!(e.contains("capture.snaplen") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn interval_must_be_whole_ticks() {
        let e = err("tick = \"2s\"\n[traffic]\ninterval = \"5s\"\n");
        assert!(
            e.contains("traffic.interval") && e.contains("line 3"),
            "{e}"
        );
        assert!(e.contains("whole number of ticks"), "{e}");
    }

    #[test]
    fn range_checks() {
        assert!(err("tick = \"10ms\"").contains("`tick`"));
        assert!(err("[capture]\nsnaplen = 10").contains("between 64"));
        assert!(err("[capture]\nworkers = 0").contains("at least 1"));
        assert!(err("[capture]\nblock_size = 5000").contains("power of two"));
        assert!(err("[capture]\nblock_count = 0").contains("at least 1"));
        assert!(err("[capture]\nblock_timeout = \"2s\"").contains("shorter than the tick"));
        assert!(err("[traffic]\nmax_hosts = 0").contains("between 1"));
        assert!(err("[http]\nlisten = []").contains("at least one"));
        assert!(err("[http]\nlisten = \"localhost\"").contains("http.listen"));
        assert!(err("[capture]\ninterfaces = [\"\"]").contains("empty"));
    }

    #[test]
    fn auto_values() {
        let c = Config::parse(
            "[capture]\nworkers = \"auto\"\nblock_size = \"auto\"\nblock_count = \"auto\"\nring_memory_max = \"auto\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.capture.workers, None);
        assert_eq!(c.capture.block_size, None);
        let e = err("[capture]\nworkers = \"many\"\n");
        assert!(e.contains("capture.workers") && e.contains("auto"), "{e}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = err("tick = 1\n[capture\n");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn missing_file_names_path() {
        let e = Config::load(Path::new("/nonexistent/ta.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ta.toml"), "{e}");
    }

    #[test]
    fn capabilities_json_carries_human_units() {
        let v = serde_json::to_value(Config::default()).unwrap();
        assert_eq!(v["traffic"]["interval"], "170s");
        assert_eq!(v["capture"]["direction"], "ingress");
    }
}
