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

pub use glob::Glob;
pub use raw::RawConfig;

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
        let check_decap = |key: &[&str], list: &[String]| -> Result<(), ConfigError> {
            let mut d = crate::wire::Decap::NONE;
            for e in list {
                d.add(e).map_err(|m| at.invalid(key, m))?;
            }
            Ok(())
        };
        check_decap(&["capture", "decapsulate"], &c.decapsulate)?;
        for (pattern, list) in &c.decapsulate_interfaces {
            let key = ["capture", "decapsulate_interfaces", pattern.as_str()];
            Glob::new(pattern).map_err(|m| at.invalid(&key, m))?;
            check_decap(&key, list)?;
        }
        let aggregators = match c.aggregators.0 {
            None => None,
            Some(n) if (1..=limits::AGGREGATORS_MAX).contains(&n) => Some(n),
            Some(n) => {
                return Err(at.invalid(
                    &["capture", "aggregators"],
                    format!(
                        "must be between 1 and {}, or \"auto\", got {n}",
                        limits::AGGREGATORS_MAX
                    ),
                ));
            }
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

        if let Some(p) = t.packet_limit {
            if p.0 == 0 {
                return Err(at.invalid(
                    &["traffic", "packet_limit"],
                    "must be at least 1 packet".into(),
                ));
            }
        }

        let sc = raw.scan;
        let scan_interval = sc.interval.unwrap_or(t.interval);
        whole_ticks(&["scan", "interval"], scan_interval)?;
        whole_ticks(&["scan", "port_interval"], sc.port_interval)?;
        for (key, v) in [
            ("max_contacted_ips", sc.max_contacted_ips),
            ("max_contacted_ports", sc.max_contacted_ports),
        ] {
            if v == 0 || v > limits::SCAN_THRESHOLD_MAX {
                return Err(at.invalid(
                    &["scan", key],
                    format!("must be between 1 and {}", limits::SCAN_THRESHOLD_MAX),
                ));
            }
        }

        let ib = raw.inbound;
        if ib.byte_limit.0 == 0 {
            return Err(at.invalid(&["inbound", "byte_limit"], "must be at least 1 byte".into()));
        }
        if ib.packet_limit.is_some_and(|p| p.0 == 0) {
            return Err(at.invalid(
                &["inbound", "packet_limit"],
                "must be at least 1 packet".into(),
            ));
        }

        let rate_config = rates::read(&raw.rates, tick_ms, at)?;

        let al = raw.alerts;
        if let Some(h) = al.hold_down {
            whole_ticks(&["alerts", "hold_down"], h)?;
        }
        if !(0.0..=1.0).contains(&al.degraded_drop_ratio) {
            return Err(at.invalid(
                &["alerts", "degraded_drop_ratio"],
                format!(
                    "must be a fraction between 0 and 1, got {}",
                    al.degraded_drop_ratio
                ),
            ));
        }
        if al.history_max_size.0 < 64 * 1024 {
            return Err(at.invalid(
                &["alerts", "history_max_size"],
                "must be at least 64KiB".into(),
            ));
        }
        let mut rule_labels = std::collections::BTreeMap::new();
        for (i, r) in raw.rule.iter().enumerate() {
            for (k, v) in &r.labels {
                if !label_ok(k) || RESERVED_LABELS.contains(&k.as_str()) || v.len() > 256 {
                    return Err(at.invalid_path(
                        &["rule".into(), i.to_string(), "labels".into()],
                        format!(
                            "{k:?}: a label name is letters, digits and _ (not first a digit, not __…, not one of {}), its value at most 256 bytes",
                            RESERVED_LABELS.join(", ")
                        ),
                    ));
                }
            }
            if !r.labels.is_empty() {
                let name = r.name.clone().unwrap_or_else(|| format!("rule {}", i + 1));
                rule_labels.entry(name).or_insert_with(|| r.labels.clone());
            }
        }
        let webhook = match al.webhook {
            None => None,
            Some(w) => {
                if w.resend.0 < std::time::Duration::from_secs(1)
                    || w.resend.0 > std::time::Duration::from_secs(3600)
                {
                    return Err(at.invalid(
                        &["alerts", "webhook", "resend"],
                        "must be between 1s and 1h".into(),
                    ));
                }
                if !w.ca_file.is_empty() {
                    crate::sinks::http_client::tls_config(Some(std::path::Path::new(&w.ca_file)))
                        .map_err(|m| at.invalid(&["alerts", "webhook", "ca_file"], m))?;
                }
                let instance = w.instance.unwrap_or_else(host_name);
                if instance.is_empty() || instance.len() > 256 {
                    return Err(at.invalid(
                        &["alerts", "webhook", "instance"],
                        "must be 1 to 256 bytes".into(),
                    ));
                }
                crate::sinks::webhook::Endpoint::parse(&w.url)
                    .map_err(|m| at.invalid(&["alerts", "webhook", "url"], m))?;
                if w.timeout.0.is_zero() {
                    return Err(
                        at.invalid(&["alerts", "webhook", "timeout"], "must be positive".into())
                    );
                }
                if w.queue == 0 {
                    return Err(
                        at.invalid(&["alerts", "webhook", "queue"], "must be at least 1".into())
                    );
                }
                Some(WebhookConfig {
                    url: w.url,
                    format: w.format,
                    timeout: w.timeout,
                    retries: w.retries,
                    queue: w.queue,
                    resend: w.resend,
                    instance,
                    rule_labels,
                    ca_file: w.ca_file,
                })
            }
        };
        let exec = match al.exec {
            None => None,
            Some(e) => {
                if e.command.is_empty() || e.command[0].is_empty() {
                    return Err(at.invalid(
                        &["alerts", "exec", "command"],
                        "needs the program to run, e.g. [\"/usr/local/bin/notify\", \"--quiet\"]"
                            .into(),
                    ));
                }
                if e.timeout.0.is_zero() {
                    return Err(
                        at.invalid(&["alerts", "exec", "timeout"], "must be positive".into())
                    );
                }
                if e.max_running == 0 || e.queue == 0 {
                    return Err(at.invalid(
                        &[
                            "alerts",
                            "exec",
                            if e.queue == 0 { "queue" } else { "max_running" },
                        ],
                        "must be at least 1".into(),
                    ));
                }
                Some(ExecConfig {
                    command: e.command,
                    timeout: e.timeout,
                    max_running: e.max_running,
                    queue: e.queue,
                })
            }
        };

        let mut rules = Vec::new();
        let mut rule_kinds = std::collections::BTreeMap::new();
        for (i, r) in raw.rule.into_iter().enumerate() {
            let idx = i.to_string();
            let key =
                |k: &'static str| -> Vec<String> { vec!["rule".into(), idx.clone(), k.into()] };
            if r.networks.is_empty() {
                return Err(
                    at.invalid_path(&key("networks"), "a rule needs at least one network".into())
                );
            }
            let networks = r
                .networks
                .iter()
                .map(|n| Cidr::parse(n))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| at.invalid_path(&key("networks"), m))?;
            let limits = Limits {
                byte_limit: r.byte_limit.map(|v| v.0),
                packet_limit: r.packet_limit.map(|v| v.0),
                max_contacted_ips: r.max_contacted_ips,
                max_contacted_ports: r.max_contacted_ports,
                inbound_byte_limit: r.inbound_byte_limit.map(|v| v.0),
                inbound_packet_limit: r.inbound_packet_limit.map(|v| v.0),
                rates: rates::limits(
                    &r.rates_in,
                    &r.rates_out,
                    &key("rates_in"),
                    &key("rates_out"),
                    at,
                )?,
            };
            for (k, v) in [
                ("max_contacted_ips", r.max_contacted_ips),
                ("max_contacted_ports", r.max_contacted_ports),
            ] {
                if v.is_some_and(|v| v == 0 || v > limits::SCAN_THRESHOLD_MAX) {
                    return Err(at.invalid_path(
                        &key(k),
                        format!("must be between 1 and {}", limits::SCAN_THRESHOLD_MAX),
                    ));
                }
            }
            let action = if r.ignore {
                if limits != Limits::default() {
                    return Err(at.invalid_path(
                        &key("ignore"),
                        "a rule either ignores its networks or sets limits for them, not both"
                            .into(),
                    ));
                }
                Action::Ignore
            } else if limits == Limits::default() && r.mitigate.is_none() && r.labels.is_empty() {
                return Err(at.invalid_path(
                    &key("networks"),
                    "the rule neither ignores its networks (ignore = true) nor sets a limit".into(),
                ));
            } else {
                Action::Limits(limits)
            };
            let name = r.name.unwrap_or_else(|| format!("rule {}", i + 1));
            if let Some(m) = &r.mitigate {
                let mask = mitigation::kinds(m, &key("mitigate"), at)?;
                rule_kinds.entry(name.clone()).or_insert(mask);
            }
            rules.push(Rule {
                name,
                networks,
                action,
            });
        }
        if rules.len() > usize::from(u16::MAX - 1) {
            return Err(at.invalid(&["rule"], "too many rules".into()));
        }

        let mitigation_config = mitigation::read(raw.mitigation, rule_kinds, at)?;
        let attack_config = attack::read(raw.attack_pcap, at)?;
        let ipfix_config = export::read(raw.export, at)?;
        let flow_input_config = flow_input::read(raw.flow_input, at)?;

        let listen = raw.http.listen.0;
        if listen.is_empty() {
            return Err(at.invalid(&["http", "listen"], "needs at least one address".into()));
        }
        let auth = match raw.http.auth {
            None => None,
            Some(a) => Some(auth(a, at)?),
        };
        if raw.metrics.top_hosts > limits::TOP_HOSTS_MAX {
            return Err(at.invalid(
                &["metrics", "top_hosts"],
                format!(
                    "at most {}: every host is a set of series",
                    limits::TOP_HOSTS_MAX
                ),
            ));
        }

        let config = Config {
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
                decapsulate: c.decapsulate,
                decapsulate_interfaces: c.decapsulate_interfaces,
                aggregators,
            },
            traffic: TrafficConfig {
                interval: t.interval,
                byte_limit: t.byte_limit,
                packet_limit: t.packet_limit,
                chart_min_bytes: t.chart_min_bytes,
                keep_destinations: t.keep_destinations,
                max_hosts: t.max_hosts,
                max_pairs: t.max_pairs,
            },
            scan: ScanConfig {
                address_scan: sc.address_scan,
                max_contacted_ips: sc.max_contacted_ips,
                interval: scan_interval,
                port_scan: sc.port_scan,
                max_contacted_ports: sc.max_contacted_ports,
                port_interval: sc.port_interval,
                count: sc.count,
            },
            inbound: InboundConfig {
                enabled: ib.enabled,
                byte_limit: ib.byte_limit,
                packet_limit: ib.packet_limit,
            },
            rates: rate_config,
            mitigation: mitigation_config,
            attack_pcap: attack_config,
            ipfix: ipfix_config,
            flow_input: flow_input_config,
            alerts: AlertsConfig {
                hold_down: al.hold_down,
                log: al.log,
                history_file: al.history_file,
                history_max_size: al.history_max_size,
                history_keep: al.history_keep,
                degraded_drop_ratio: al.degraded_drop_ratio,
                webhook,
                exec,
            },
            rules,
            http: HttpConfig { listen, auth },
            metrics: MetricsConfig {
                top_hosts: raw.metrics.top_hosts,
            },
        };
        bounds::check(&config, at)?;
        Ok(config)
    }
}

/// A secret given inline or as a file to read (trailing newline dropped).
fn secret(
    inline: Option<String>,
    file: Option<String>,
    key: &'static str,
    at: &Located<'_>,
) -> Result<Option<String>, ConfigError> {
    let value = match (inline, file) {
        (Some(_), Some(_)) => {
            return Err(at.invalid(
                &["http", "auth", key],
                format!("give {key} or {key}_file, not both"),
            ));
        }
        (Some(v), None) => v,
        (None, Some(path)) => file::read_regular(Path::new(&path), file::MAX_CONFIG_BYTES)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| at.invalid(&["http", "auth", key], format!("cannot read {path}: {e}")))?,
        (None, None) => return Ok(None),
    };
    if value.is_empty() {
        return Err(at.invalid(&["http", "auth", key], "must not be empty".into()));
    }
    Ok(Some(value))
}

fn auth(a: raw::RawAuth, at: &Located<'_>) -> Result<Auth, ConfigError> {
    let token = secret(a.bearer_token, a.bearer_token_file, "bearer_token", at)?;
    let password = secret(a.password, a.password_file, "password", at)?;
    match (token, a.user, password) {
        (Some(t), None, None) => Ok(Auth::Bearer(t)),
        (None, Some(user), Some(password)) if !user.is_empty() && !user.contains(':') => {
            Ok(Auth::Basic { user, password })
        }
        (None, Some(_), Some(_)) => Err(at.invalid(
            &["http", "auth", "user"],
            "must not be empty or contain ':'".into(),
        )),
        _ => Err(at.invalid(
            &["http", "auth"],
            "set either bearer_token (or bearer_token_file), or user and password (or password_file)".into(),
        )),
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

    fn invalid_path(&self, key: &[String], message: String) -> ConfigError {
        let k: Vec<&str> = key.iter().map(String::as_str).collect();
        self.invalid(&k, message)
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
    let mut parents = parents.iter().peekable();
    while let Some(name) = parents.next() {
        let (_, v) = table.iter().find(|(k, _)| k.get_ref() == name)?;
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            // An array of tables ([[rule]]): the next segment is the index.
            DeValue::Array(a) => {
                let i: usize = parents.next()?.parse().ok()?;
                match a.get(i)?.get_ref() {
                    DeValue::Table(t) => table = t,
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    let (k, _) = table.iter().find(|(k, _)| k.get_ref() == last)?;
    Some(line_of_offset(text, k.span().start))
}

#[cfg(test)]
mod tests;
