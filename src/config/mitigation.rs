//! `[mitigation]` and `[mitigation.bgp]`: which alerts are acted on, what
//! is never touched, and the routes handed to the BGP speaker.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::{ConfigError, Located};
use crate::alert::AlertKind;
use crate::rules::Cidr;

/// Most routes announced at once.
pub const MAX_ANNOUNCEMENTS_MAX: usize = 10_000;
/// Most extra communities on a route.
pub const COMMUNITIES_MAX: usize = 16;
/// Shortest prefixes that may be announced instead of the host route.
pub const PREFIX_V4_MIN: u8 = 24;
pub const PREFIX_V6_MIN: u8 = 48;

/// The kinds acted on by default: floods toward a host.
pub const DEFAULT_KINDS: [AlertKind; 7] = [
    AlertKind::Inbound,
    AlertKind::RateIn,
    AlertKind::TcpIn,
    AlertKind::SynIn,
    AlertKind::UdpIn,
    AlertKind::IcmpIn,
    AlertKind::FragmentsIn,
];

/// `[mitigation]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMitigation {
    pub enabled: bool,
    pub dry_run: bool,
    pub kinds: Option<Vec<String>>,
    pub protect: Vec<String>,
    pub max_announcements: usize,
    pub withdraw_on_shutdown: bool,
    pub bgp: RawBgp,
}

impl Default for RawMitigation {
    fn default() -> Self {
        RawMitigation {
            enabled: false,
            dry_run: false,
            kinds: None,
            protect: Vec::new(),
            max_announcements: 10,
            withdraw_on_shutdown: true,
            bgp: RawBgp::default(),
        }
    }
}

/// `[mitigation.bgp]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBgp {
    pub socket: String,
    pub blackhole: bool,
    pub next_hop: Option<String>,
    pub next_hop_v6: Option<String>,
    pub communities: Vec<String>,
    pub prefix_length_v4: u8,
    pub prefix_length_v6: u8,
    pub flowspec: bool,
    /// `"discard"` or a rate in bits per second (`"10M"`).
    pub flowspec_action: String,
}

impl Default for RawBgp {
    fn default() -> Self {
        RawBgp {
            socket: "/run/trafficalerted/exabgp.sock".into(),
            blackhole: true,
            next_hop: None,
            next_hop_v6: None,
            communities: Vec::new(),
            prefix_length_v4: 32,
            prefix_length_v6: 128,
            flowspec: false,
            flowspec_action: "discard".into(),
        }
    }
}

/// A standard BGP community, `asn:value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Community(pub u16, pub u16);

/// RFC 7999's BLACKHOLE.
pub const BLACKHOLE: Community = Community(65535, 666);

impl std::fmt::Display for Community {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

impl Serialize for Community {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Community {
    pub fn parse(s: &str) -> Result<Community, String> {
        let (a, v) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not a community (expected \"asn:value\")"))?;
        let n = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|_| format!("{s:?}: both halves must be 0 to 65535"))
        };
        Ok(Community(n(a)?, n(v)?))
    }
}

/// What a FlowSpec rule does to what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowAction {
    Discard,
    /// Bytes per second let through (RFC 8955 traffic-rate-bytes).
    RateLimit(u64),
}

/// The validated `[mitigation.bgp]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BgpConfig {
    pub socket: String,
    pub blackhole: bool,
    pub next_hop: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Sent with the blackhole route after 65535:666.
    pub communities: Vec<Community>,
    pub prefix_length_v4: u8,
    pub prefix_length_v6: u8,
    pub flowspec: bool,
    pub flowspec_action: FlowAction,
}

/// The validated `[mitigation]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MitigationConfig {
    pub enabled: bool,
    pub dry_run: bool,
    /// Kinds acted on by default, as a mask of [`AlertKind::bit`].
    #[serde(serialize_with = "kinds_out")]
    pub kinds: u32,
    pub protect: Vec<Cidr>,
    pub max_announcements: usize,
    pub withdraw_on_shutdown: bool,
    /// A rule's own kinds (`mitigate = [...]`), by rule name.
    #[serde(serialize_with = "rule_kinds_out")]
    pub rule_kinds: BTreeMap<String, u32>,
    pub bgp: BgpConfig,
}

fn names(mask: u32) -> Vec<&'static str> {
    AlertKind::ALL
        .iter()
        .filter(|k| mask & k.bit() != 0)
        .map(|k| k.name())
        .collect()
}

fn kinds_out<S: serde::Serializer>(mask: &u32, s: S) -> Result<S::Ok, S::Error> {
    names(*mask).serialize(s)
}

fn rule_kinds_out<S: serde::Serializer>(
    m: &BTreeMap<String, u32>,
    s: S,
) -> Result<S::Ok, S::Error> {
    m.iter()
        .map(|(k, v)| (k.clone(), names(*v)))
        .collect::<BTreeMap<_, _>>()
        .serialize(s)
}

impl MitigationConfig {
    /// The kinds acted on for an alert under `rule`.
    pub fn kinds_of(&self, rule: &str) -> u32 {
        self.rule_kinds.get(rule).copied().unwrap_or(self.kinds)
    }
}

/// Kind names to a mask; `path` names the key in errors.
pub(super) fn kinds(
    list: &[String],
    path: &[String],
    at: &Located<'_>,
) -> Result<u32, ConfigError> {
    let mut mask = 0;
    for n in list {
        let k = AlertKind::ALL
            .iter()
            .find(|k| k.name() == n)
            .ok_or_else(|| {
                at.invalid_path(
                    path,
                    format!(
                        "{n:?} is not an alert kind (one of {})",
                        AlertKind::ALL.map(|k| k.name()).join(", ")
                    ),
                )
            })?;
        mask |= k.bit();
    }
    Ok(mask)
}

/// Reads `[mitigation]`; `rule_kinds` were read with the rules.
pub(super) fn read(
    raw: RawMitigation,
    rule_kinds: BTreeMap<String, u32>,
    at: &Located<'_>,
) -> Result<MitigationConfig, ConfigError> {
    let path = |k: &[&str]| -> Vec<String> {
        let mut v = vec!["mitigation".to_string()];
        v.extend(k.iter().map(|s| s.to_string()));
        v
    };
    let kinds = match &raw.kinds {
        None => DEFAULT_KINDS.iter().fold(0, |m, k| m | k.bit()),
        Some(l) => kinds(l, &path(&["kinds"]), at)?,
    };
    let protect = raw
        .protect
        .iter()
        .map(|n| Cidr::parse(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| at.invalid_path(&path(&["protect"]), m))?;
    if raw.max_announcements == 0 || raw.max_announcements > MAX_ANNOUNCEMENTS_MAX {
        return Err(at.invalid_path(
            &path(&["max_announcements"]),
            format!(
                "must be between 1 and {MAX_ANNOUNCEMENTS_MAX}, got {}",
                raw.max_announcements
            ),
        ));
    }
    let b = raw.bgp;
    let bgp_path = |k: &str| path(&["bgp", k]);
    if b.socket.is_empty() || !b.socket.starts_with('/') {
        return Err(at.invalid_path(
            &bgp_path("socket"),
            format!("must be an absolute path, got {:?}", b.socket),
        ));
    }
    let next_hop = match &b.next_hop {
        None => None,
        Some(s) => Some(s.parse::<Ipv4Addr>().map_err(|_| {
            at.invalid_path(
                &bgp_path("next_hop"),
                format!("{s:?} is not an IPv4 address"),
            )
        })?),
    };
    let next_hop_v6 = match &b.next_hop_v6 {
        None => None,
        Some(s) => Some(s.parse::<Ipv6Addr>().map_err(|_| {
            at.invalid_path(
                &bgp_path("next_hop_v6"),
                format!("{s:?} is not an IPv6 address"),
            )
        })?),
    };
    if raw.enabled && b.blackhole && next_hop.is_none() && next_hop_v6.is_none() {
        return Err(at.invalid_path(
            &bgp_path("next_hop"),
            "a blackhole route needs a next hop: set next_hop (IPv4 victims) and/or next_hop_v6 (IPv6 victims) to this speaker's address on the session, or one your routers resolve to a discard route".into(),
        ));
    }
    if b.communities.len() > COMMUNITIES_MAX {
        return Err(at.invalid_path(
            &bgp_path("communities"),
            format!("at most {COMMUNITIES_MAX}"),
        ));
    }
    let communities = b
        .communities
        .iter()
        .map(|c| Community::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| at.invalid_path(&bgp_path("communities"), m))?;
    for (key, v, min, max) in [
        ("prefix_length_v4", b.prefix_length_v4, PREFIX_V4_MIN, 32),
        ("prefix_length_v6", b.prefix_length_v6, PREFIX_V6_MIN, 128),
    ] {
        if v < min || v > max {
            return Err(at.invalid_path(
                &bgp_path(key),
                format!("must be between {min} and {max}, got {v}"),
            ));
        }
    }
    let flowspec_action = match b.flowspec_action.trim() {
        "discard" => FlowAction::Discard,
        s => {
            let bits = super::units::parse_size(s).map_err(|e| {
                at.invalid_path(
                    &bgp_path("flowspec_action"),
                    format!("must be \"discard\" or a rate in bits per second like \"10M\": {e}"),
                )
            })?;
            if bits == 0 || bits > 8 * u64::from(u32::MAX) {
                return Err(at.invalid_path(
                    &bgp_path("flowspec_action"),
                    format!(
                        "a rate must be between 1 and {} bits per second (or \"discard\")",
                        8 * u64::from(u32::MAX)
                    ),
                ));
            }
            FlowAction::RateLimit(bits.div_ceil(8))
        }
    };
    if raw.enabled && !b.blackhole && !b.flowspec {
        return Err(at.invalid_path(
            &bgp_path("blackhole"),
            "with mitigation enabled, blackhole or flowspec (or both) must be on".into(),
        ));
    }
    Ok(MitigationConfig {
        enabled: raw.enabled,
        dry_run: raw.dry_run,
        kinds,
        protect,
        max_announcements: raw.max_announcements,
        withdraw_on_shutdown: raw.withdraw_on_shutdown,
        rule_kinds,
        bgp: BgpConfig {
            socket: b.socket,
            blackhole: b.blackhole,
            next_hop,
            next_hop_v6,
            communities,
            prefix_length_v4: b.prefix_length_v4,
            prefix_length_v6: b.prefix_length_v6,
            flowspec: b.flowspec,
            flowspec_action,
        },
    })
}
