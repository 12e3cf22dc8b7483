//! The config file as written: every key, its type and its default.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::units::{Size, Span, parse_size};
use super::{
    ConfigError, CountDirection, FanoutPolicy, ScanCount, WaitPolicy, WebhookFormat, line_of_offset,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub tick: Span,
    pub capture: RawCapture,
    pub traffic: RawTraffic,
    pub scan: RawScan,
    pub inbound: RawInbound,
    pub rates: RawRates,
    pub mitigation: super::mitigation::RawMitigation,
    pub attack_pcap: super::attack::RawAttackPcap,
    pub export: super::export::RawExport,
    pub flow_input: super::flow_input::RawFlowInput,
    pub alerts: RawAlerts,
    pub rule: Vec<RawRule>,
    pub http: RawHttp,
    pub metrics: RawMetrics,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            tick: Span(Duration::from_secs(1)),
            capture: RawCapture::default(),
            traffic: RawTraffic::default(),
            scan: RawScan::default(),
            inbound: RawInbound::default(),
            rates: RawRates::default(),
            mitigation: Default::default(),
            attack_pcap: Default::default(),
            export: Default::default(),
            flow_input: Default::default(),
            alerts: RawAlerts::default(),
            rule: Vec::new(),
            http: RawHttp::default(),
            metrics: RawMetrics::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScan {
    pub address_scan: bool,
    pub max_contacted_ips: u32,
    /// Default: the traffic interval.
    pub interval: Option<Span>,
    pub port_scan: bool,
    pub max_contacted_ports: u32,
    pub port_interval: Span,
    pub count: ScanCount,
}

impl Default for RawScan {
    fn default() -> Self {
        RawScan {
            address_scan: true,
            max_contacted_ips: 15,
            interval: None,
            port_scan: true,
            max_contacted_ports: 100,
            port_interval: Span(Duration::from_secs(600)),
            count: ScanCount::Initiations,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawInbound {
    pub enabled: bool,
    pub byte_limit: Size,
    pub packet_limit: Option<Size>,
}

impl Default for RawInbound {
    fn default() -> Self {
        RawInbound {
            enabled: true,
            byte_limit: Size(1_000_000_000),
            packet_limit: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlerts {
    /// Default: each detector's own window.
    pub hold_down: Option<Span>,
    pub log: bool,
    pub history_file: String,
    pub history_max_size: Size,
    pub history_keep: u32,
    pub degraded_drop_ratio: f64,
    pub webhook: Option<RawWebhook>,
    pub exec: Option<RawExec>,
}

impl Default for RawAlerts {
    fn default() -> Self {
        RawAlerts {
            hold_down: None,
            log: true,
            history_file: "/var/lib/trafficalerted/alerts.jsonl".into(),
            history_max_size: Size(64_000_000),
            history_keep: 3,
            degraded_drop_ratio: 0.001,
            webhook: None,
            exec: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhook {
    pub url: String,
    pub format: WebhookFormat,
    pub timeout: Span,
    pub retries: u32,
    pub queue: usize,
    /// Alertmanager: how often open alerts are sent again.
    pub resend: Span,
    /// Alertmanager: the `instance` label; default the host name.
    pub instance: Option<String>,
    /// https: the CA certificates (PEM) to trust instead of the system's.
    pub ca_file: String,
}

impl Default for RawWebhook {
    fn default() -> Self {
        RawWebhook {
            url: String::new(),
            format: WebhookFormat::Json,
            timeout: Span(Duration::from_secs(5)),
            retries: 3,
            queue: 1000,
            resend: Span(Duration::from_secs(60)),
            instance: None,
            ca_file: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawExec {
    pub command: Vec<String>,
    pub timeout: Span,
    pub max_running: usize,
    pub queue: usize,
}

impl Default for RawExec {
    fn default() -> Self {
        RawExec {
            command: Vec::new(),
            timeout: Span(Duration::from_secs(10)),
            max_running: 4,
            queue: 1000,
        }
    }
}

/// `[[rule]]`: networks that are ignored or carry their own limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRule {
    pub name: Option<String>,
    pub networks: Vec<String>,
    pub ignore: bool,
    pub byte_limit: Option<Size>,
    pub packet_limit: Option<Size>,
    pub max_contacted_ips: Option<u32>,
    pub max_contacted_ports: Option<u32>,
    pub inbound_byte_limit: Option<Size>,
    pub inbound_packet_limit: Option<Size>,
    pub rates_in: RawRateLimits,
    pub rates_out: RawRateLimits,
    /// Alert kinds acted on for these networks (`[mitigation]`).
    pub mitigate: Option<Vec<String>>,
    /// Labels the Alertmanager webhook adds to these networks' alerts.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// `[rates]`: the short window and the default limits per direction.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRates {
    /// Default: 5 s, rounded up to whole ticks.
    pub window: Option<Span>,
    #[serde(rename = "in")]
    pub inbound: RawRateLimits,
    pub out: RawRateLimits,
}

/// Limits per second of one direction; the keys of [`crate::rates::KEYS`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRateLimits {
    pub packets: Option<Size>,
    pub bits: Option<Size>,
    pub tcp_packets: Option<Size>,
    pub tcp_bits: Option<Size>,
    pub syn_packets: Option<Size>,
    pub syn_bits: Option<Size>,
    pub udp_packets: Option<Size>,
    pub udp_bits: Option<Size>,
    pub icmp_packets: Option<Size>,
    pub icmp_bits: Option<Size>,
    pub fragment_packets: Option<Size>,
    pub fragment_bits: Option<Size>,
    pub new_flows: Option<Size>,
}

impl RawRateLimits {
    /// The values in the order of [`crate::rates::KEYS`].
    pub fn values(&self) -> [Option<u64>; 13] {
        [
            self.packets,
            self.bits,
            self.tcp_packets,
            self.tcp_bits,
            self.syn_packets,
            self.syn_bits,
            self.udp_packets,
            self.udp_bits,
            self.icmp_packets,
            self.icmp_bits,
            self.fragment_packets,
            self.fragment_bits,
            self.new_flows,
        ]
        .map(|v| v.map(|s| s.0))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCapture {
    pub interfaces: Vec<String>,
    pub exclude_interfaces: Vec<String>,
    pub workers: Auto<usize>,
    pub pin_workers: bool,
    pub direction: CountDirection,
    pub snaplen: u32,
    pub block_size: Auto<Size>,
    pub block_count: Auto<u32>,
    pub block_timeout: Span,
    pub fanout: FanoutPolicy,
    pub wait: WaitPolicy,
    pub ring_memory_max: Auto<Size>,
    pub skip_stacked: bool,
    pub decapsulate: Vec<String>,
    pub decapsulate_interfaces: std::collections::BTreeMap<String, Vec<String>>,
    pub aggregators: Auto<usize>,
}

impl Default for RawCapture {
    fn default() -> Self {
        RawCapture {
            interfaces: Vec::new(),
            exclude_interfaces: vec!["lo".into()],
            workers: Auto(None),
            pin_workers: true,
            direction: CountDirection::Ingress,
            snaplen: 192,
            block_size: Auto(None),
            block_count: Auto(None),
            block_timeout: Span(Duration::from_millis(50)),
            fanout: FanoutPolicy::Hash,
            wait: WaitPolicy::Auto,
            ring_memory_max: Auto(None),
            skip_stacked: true,
            decapsulate: Vec::new(),
            decapsulate_interfaces: std::collections::BTreeMap::new(),
            aggregators: Auto(None),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTraffic {
    pub interval: Span,
    pub byte_limit: Size,
    pub packet_limit: Option<Size>,
    pub chart_min_bytes: Size,
    pub keep_destinations: usize,
    pub max_hosts: usize,
    pub max_pairs: usize,
}

impl Default for RawTraffic {
    fn default() -> Self {
        RawTraffic {
            interval: Span(Duration::from_secs(170)),
            byte_limit: Size(1_000_000_000),
            packet_limit: None,
            chart_min_bytes: Size(10_000_000),
            keep_destinations: 100,
            max_hosts: 65_536,
            max_pairs: 262_144,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    pub listen: Listen,
    pub auth: Option<RawAuth>,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: Listen(vec![SocketAddr::from(([127, 0, 0, 1], 8698))]),
            auth: None,
        }
    }
}

/// `[http.auth]`: a bearer token, or a user and password (basic), each
/// secret given inline or read from a file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    pub top_hosts: usize,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics { top_hosts: 20 }
    }
}

impl RawConfig {
    /// Parses the text, reporting the key path and line of the first error.
    pub fn parse(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_string(),
            line: e.span().map(|s| line_of_offset(text, s.start)),
            message: e.message().to_string(),
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.span().map(|s| line_of_offset(text, s.start));
            let message = inner.message().to_string();
            if path.is_empty() || path == "." {
                ConfigError::Syntax {
                    origin: origin.to_string(),
                    line,
                    message,
                }
            } else {
                ConfigError::Invalid {
                    origin: origin.to_string(),
                    line,
                    key: path,
                    message,
                }
            }
        })
    }
}

/// A value or `"auto"` (then `None`: the daemon chooses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auto<T>(pub Option<T>);

/// Types that can stand in an [`Auto`].
pub trait AutoValue: Sized {
    const EXPECTING: &'static str;
    fn from_u64(v: u64) -> Result<Self, String>;
    fn from_text(s: &str) -> Result<Self, String> {
        Err(format!("invalid value {s:?}: {}", Self::EXPECTING))
    }
}

impl AutoValue for usize {
    const EXPECTING: &'static str = "expected a whole number or \"auto\"";
    fn from_u64(v: u64) -> Result<Self, String> {
        usize::try_from(v).map_err(|_| format!("{v} is too large"))
    }
}

impl AutoValue for u32 {
    const EXPECTING: &'static str = "expected a whole number or \"auto\"";
    fn from_u64(v: u64) -> Result<Self, String> {
        u32::try_from(v).map_err(|_| format!("{v} is too large"))
    }
}

impl AutoValue for Size {
    const EXPECTING: &'static str =
        "expected a size like \"4MiB\", \"1G\", a number of bytes, or \"auto\"";
    fn from_u64(v: u64) -> Result<Self, String> {
        Ok(Size(v))
    }
    fn from_text(s: &str) -> Result<Self, String> {
        parse_size(s).map(Size)
    }
}

impl<T> Default for Auto<T> {
    fn default() -> Self {
        Auto(None)
    }
}

impl<'de, T: AutoValue> Deserialize<'de> for Auto<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: AutoValue> Visitor<'_> for V<T> {
            type Value = Auto<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Auto<T>, E> {
                let v =
                    u64::try_from(v).map_err(|_| E::custom(format!("{v} must not be negative")))?;
                T::from_u64(v).map(|t| Auto(Some(t))).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Auto<T>, E> {
                T::from_u64(v).map(|t| Auto(Some(t))).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Auto<T>, E> {
                if v == "auto" {
                    return Ok(Auto(None));
                }
                T::from_text(v).map(|t| Auto(Some(t))).map_err(E::custom)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One `"addr:port"` or a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen(pub Vec<SocketAddr>);

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn addr<E: de::Error>(s: &str) -> Result<SocketAddr, E> {
            s.parse().map_err(|_| {
                E::custom(format!(
                    "invalid listen address {s:?}: expected IP:port like \"127.0.0.1:8698\" or \"[::1]:8698\""
                ))
            })
        }
        impl<'de> Visitor<'de> for V {
            type Value = Listen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address like \"127.0.0.1:8698\" or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Listen, E> {
                Ok(Listen(vec![addr(v)?]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Listen, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(addr(&s)?);
                }
                Ok(Listen(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for CountDirection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        keyword(
            d,
            &[
                ("ingress", CountDirection::Ingress),
                ("both", CountDirection::Both),
            ],
        )
    }
}

impl<'de> Deserialize<'de> for FanoutPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        keyword(
            d,
            &[
                ("hash", FanoutPolicy::Hash),
                ("cpu", FanoutPolicy::Cpu),
                ("lb", FanoutPolicy::Lb),
            ],
        )
    }
}

impl<'de> Deserialize<'de> for ScanCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        keyword(
            d,
            &[
                ("initiations", ScanCount::Initiations),
                ("failed", ScanCount::Failed),
            ],
        )
    }
}

impl<'de> Deserialize<'de> for WebhookFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        keyword(
            d,
            &[
                ("json", WebhookFormat::Json),
                ("alertmanager", WebhookFormat::Alertmanager),
            ],
        )
    }
}

impl<'de> Deserialize<'de> for WaitPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        keyword(
            d,
            &[
                ("auto", WaitPolicy::Auto),
                ("io_uring", WaitPolicy::IoUring),
                ("poll", WaitPolicy::Poll),
            ],
        )
    }
}

/// One of a fixed set of words, with an error that lists them.
fn keyword<'de, D: Deserializer<'de>, T: Copy>(d: D, words: &[(&str, T)]) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    words
        .iter()
        .find(|(w, _)| *w == s)
        .map(|&(_, v)| v)
        .ok_or_else(|| {
            let allowed: Vec<String> = words.iter().map(|(w, _)| format!("\"{w}\"")).collect();
            de::Error::custom(format!(
                "invalid value {s:?}: expected one of {}",
                allowed.join(", ")
            ))
        })
}
