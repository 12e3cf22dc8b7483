//! The configuration: one TOML file, parsed in two stages. [`RawConfig`] is
//! the file as written (serde, unknown keys rejected); [`Config`] is the
//! validated result with every default filled in, which the daemon runs on
//! and `/capabilities` shows.

pub mod attack;
mod bounds;
pub mod export;
pub mod file;
pub mod flow_input;
mod glob;
pub mod legacy;
pub mod mitigation;
pub mod rates;
mod raw;
mod reload;
pub mod units;
mod validate;

pub use glob::Glob;
pub use raw::RawConfig;
use validate::{Located, line_of_offset};

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::rules::{Action, Cidr, Limits, Rule, RuleSet};
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
    /// Worker threads; `None` is one per core less the cores kept for the
    /// aggregator threads ([`crate::capture::sizing`]).
    pub workers: Option<usize>,
    /// Each worker pinned to a core of its own; else where the scheduler
    /// puts it.
    pub pin_workers: bool,
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
    /// Tunnels of mirrored traffic to look into on every interface
    /// (`gre`, `erspan`, `vxlan[:PORT]`, `geneve[:PORT]`).
    pub decapsulate: Vec<String>,
    /// Interfaces (names or globs) that look into these tunnels instead.
    pub decapsulate_interfaces: std::collections::BTreeMap<String, Vec<String>>,
    /// Aggregator threads (partitions of the hosts); `None` is chosen from
    /// the cores.
    pub aggregators: Option<usize>,
}

impl CaptureConfig {
    /// The tunnels to look into on interface `name`: the lists of every
    /// pattern of `decapsulate_interfaces` it matches, or else
    /// `decapsulate`. Entries were checked when the config was read.
    pub fn decap_for(&self, name: &str) -> crate::wire::Decap {
        let mut d = crate::wire::Decap::NONE;
        let mut matched = false;
        for (pattern, list) in &self.decapsulate_interfaces {
            if Glob::new(pattern).is_ok_and(|g| g.matches(name)) {
                matched = true;
                for e in list {
                    let _ = d.add(e);
                }
            }
        }
        if matched { d } else { self.decap_default() }
    }

    /// The tunnels of `decapsulate`, for what has no interface name (a
    /// replayed capture).
    pub fn decap_default(&self) -> crate::wire::Decap {
        let mut d = crate::wire::Decap::NONE;
        for e in &self.decapsulate {
            let _ = d.add(e);
        }
        d
    }
}

/// `[traffic]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficConfig {
    pub interval: Span,
    pub byte_limit: Size,
    pub packet_limit: Option<Size>,
    pub chart_min_bytes: Size,
    pub keep_destinations: usize,
    pub max_hosts: usize,
    pub max_pairs: usize,
}

/// Which attempts count toward a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanCount {
    /// Every initiation: TCP SYN without ACK, UDP that is not an answer,
    /// SCTP INIT, ICMP echo and timestamp requests.
    Initiations,
    /// Only attempts that drew no answer or a refusal (RST, ICMP
    /// unreachable, SCTP ABORT): the fewest false alarms.
    Failed,
}

/// Body of the webhook POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The alert event as JSON.
    Json,
    /// A list of alerts for Prometheus Alertmanager's `/api/v2/alerts`.
    Alertmanager,
}

/// `[scan]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanConfig {
    pub address_scan: bool,
    pub max_contacted_ips: u32,
    pub interval: Span,
    pub port_scan: bool,
    pub max_contacted_ports: u32,
    pub port_interval: Span,
    pub count: ScanCount,
}

/// `[inbound]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundConfig {
    pub enabled: bool,
    pub byte_limit: Size,
    pub packet_limit: Option<Size>,
}

/// `[alerts.webhook]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookConfig {
    pub url: String,
    pub format: WebhookFormat,
    pub timeout: Span,
    pub retries: u32,
    pub queue: usize,
    /// Alertmanager: open alerts are sent again this often, each time
    /// with an end [`RESEND_ENDS`] re-sends ahead.
    pub resend: Span,
    /// Alertmanager: the `instance` label (two boxes given the same one
    /// make one alert of an attack both see).
    pub instance: String,
    /// Alertmanager: each rule's own labels, by rule name.
    pub rule_labels: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// https: the CA certificates (PEM) trusted instead of the system's;
    /// empty for the system's.
    pub ca_file: String,
}

/// An open alert's `endsAt` is this many re-send intervals ahead: a box
/// that stops sending has its alerts resolved that long after.
pub const RESEND_ENDS: u32 = 4;

/// Labels the Alertmanager body sets itself.
pub const RESERVED_LABELS: [&str; 6] = [
    "alertname",
    "kind",
    "subject",
    "rule",
    "severity",
    "instance",
];

/// The host name, for the `instance` label.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "trafficalerted".into())
}

fn label_ok(name: &str) -> bool {
    let mut b = name.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !name.starts_with("__")
}

/// `[alerts.exec]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecConfig {
    pub command: Vec<String>,
    pub timeout: Span,
    pub max_running: usize,
    pub queue: usize,
}

/// `[alerts]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertsConfig {
    /// `None`: each detector's own window.
    pub hold_down: Option<Span>,
    pub log: bool,
    /// Empty: no history file.
    pub history_file: String,
    pub history_max_size: Size,
    pub history_keep: u32,
    pub degraded_drop_ratio: f64,
    pub webhook: Option<WebhookConfig>,
    pub exec: Option<ExecConfig>,
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpConfig {
    pub listen: Vec<SocketAddr>,
    /// `None`: no access control (fine on loopback).
    pub auth: Option<Auth>,
}

/// Who may read the API.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>` (or `?access_token=` for the
    /// dashboard's event stream).
    Bearer(String),
    /// `Authorization: Basic` with this user and password.
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(..)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ..)"),
        }
    }
}

impl Serialize for Auth {
    /// Never the secret, only which kind.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Auth::Bearer(_) => serde_json::json!({ "kind": "bearer" }).serialize(s),
            Auth::Basic { user, .. } => {
                serde_json::json!({ "kind": "basic", "user": user }).serialize(s)
            }
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsConfig {
    /// Hosts with their own series on `/metrics` (the largest senders), so
    /// that the number of series stays bounded.
    pub top_hosts: usize,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub tick: Span,
    pub capture: CaptureConfig,
    pub traffic: TrafficConfig,
    pub scan: ScanConfig,
    pub inbound: InboundConfig,
    pub rates: rates::RatesConfig,
    pub mitigation: mitigation::MitigationConfig,
    pub attack_pcap: attack::AttackPcapConfig,
    pub ipfix: export::IpfixConfig,
    pub flow_input: flow_input::FlowInputConfig,
    pub alerts: AlertsConfig,
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
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
    /// Scan thresholds bound the per-host sets kept to count distinct
    /// destinations and ports.
    pub const SCAN_THRESHOLD_MAX: u32 = 10_000;
    /// Hosts with their own `/metrics` series, at most.
    pub const TOP_HOSTS_MAX: usize = 1000;
    /// Aggregator threads, at most.
    pub const AGGREGATORS_MAX: usize = 256;
}

impl Config {
    /// Reads and validates a config file. An original TrafficAlerted
    /// config (`Key: value` lines) is converted on the fly, with a warning
    /// that says how to convert it for good.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            file::read_regular(path, file::MAX_CONFIG_BYTES).map_err(|err| ConfigError::Read {
                path: path.display().to_string(),
                err,
            })?;
        let origin = path.display().to_string();
        if legacy::looks_legacy(&text) {
            let converted = legacy::convert(&text).map_err(|message| ConfigError::Syntax {
                origin: origin.clone(),
                line: None,
                message,
            })?;
            log::warn!(
                "{origin} is an original TrafficAlerted config; it was converted on the fly. Convert it once: trafficalerted convert-config {origin} > /etc/trafficalerted/trafficalerted.toml"
            );
            for (line, key) in &converted.unknown {
                log::warn!("{origin}, line {line}: {key} has no equivalent and was ignored");
            }
            return Config::parse(&converted.toml, &format!("{origin} (converted)"));
        }
        Config::parse(&text, &origin)
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
        self.ticks(self.traffic.interval)
    }

    /// A duration of the config in ticks (validated to be whole ticks).
    pub fn ticks(&self, d: Span) -> u64 {
        (d.0.as_millis() / self.tick.0.as_millis()) as u64
    }

    /// The default limits of the detectors that are on, and the rules.
    pub fn rule_set(&self) -> RuleSet {
        let defaults = Limits {
            byte_limit: Some(self.traffic.byte_limit.0),
            packet_limit: self.traffic.packet_limit.map(|p| p.0),
            max_contacted_ips: self
                .scan
                .address_scan
                .then_some(self.scan.max_contacted_ips),
            max_contacted_ports: self.scan.port_scan.then_some(self.scan.max_contacted_ports),
            inbound_byte_limit: self.inbound.enabled.then_some(self.inbound.byte_limit.0),
            inbound_packet_limit: if self.inbound.enabled {
                self.inbound.packet_limit.map(|p| p.0)
            } else {
                None
            },
            rates: self.rates.limits,
        };
        RuleSet::new(defaults, self.rules.clone())
    }
}

#[cfg(test)]
mod tests;
