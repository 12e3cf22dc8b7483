//! Allow lists and per-network limits: `[[rule]]` entries matched by the
//! longest prefix, IPv4 and IPv6 alike.

use std::fmt;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

use crate::wire::Addr;

/// A network in CIDR notation. IPv4 networks are kept in the IPv4-mapped
/// space of [`Addr`], so one comparison serves both families.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    base: u128,
    /// Prefix length in the 128-bit space (IPv4 /24 is 96 + 24).
    len: u8,
    v4: bool,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or network (expected e.g. \"10.0.0.0/8\" or \"2001:db8::/32\")"))?;
        let (max, v4) = match ip {
            IpAddr::V4(_) => (32u8, true),
            IpAddr::V6(_) => (128u8, false),
        };
        let len = match len {
            None => max,
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0 to {max}"))?,
        };
        let full = if v4 { 96 + len } else { len };
        let addr = Addr::from(ip).0;
        let base = addr & mask(full);
        if base != addr {
            return Err(format!(
                "{s:?} has host bits set; the network is {}",
                Cidr {
                    base,
                    len: full,
                    v4
                }
            ));
        }
        Ok(Cidr {
            base,
            len: full,
            v4,
        })
    }

    /// True if `a` is inside. An IPv6 network shorter than /96 holds no
    /// IPv4 host, although IPv4 lives in its mapped part of the space:
    /// `::/0` is all of IPv6, not everything.
    #[inline]
    pub fn contains(&self, a: Addr) -> bool {
        if !self.v4 && self.len < 96 && a.is_v4() {
            return false;
        }
        a.0 & mask(self.len) == self.base
    }

    /// Prefix length in the shared 128-bit space: longer is more specific.
    pub fn specificity(&self) -> u8 {
        self.len
    }
}

#[inline]
fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = Addr(self.base).ip();
        let len = if self.v4 { self.len - 96 } else { self.len };
        write!(f, "{ip}/{len}")
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Thresholds of the detectors; `None` switches a check off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Limits {
    pub byte_limit: Option<u64>,
    pub packet_limit: Option<u64>,
    pub max_contacted_ips: Option<u32>,
    pub max_contacted_ports: Option<u32>,
    pub inbound_byte_limit: Option<u64>,
    pub inbound_packet_limit: Option<u64>,
    /// Limits per second by protocol class and direction.
    pub rates: crate::rates::RateLimits,
}

/// What a rule does to the hosts it matches. (Rules are few and read
/// once at a reload: the size of the limits is no concern here.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// No alerts about these hosts (they are still counted).
    Ignore,
    /// These limits instead of the defaults; a limit left out keeps the
    /// default.
    Limits(Limits),
}

/// One `[[rule]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub name: String,
    pub networks: Vec<Cidr>,
    pub action: Action,
}

/// The rules with the default limits; answers "which limits apply to this
/// host" by longest-prefix match.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    defaults: Limits,
    rules: Vec<Rule>,
    /// Every (network, rule index), most specific first.
    prefixes: Vec<(Cidr, u16)>,
    /// The limits of each rule id, worked out once: looked up per packet.
    resolved: Vec<Option<Limits>>,
}

/// Index of the rule that applies to a host: 0 is the defaults, `n` is
/// `rules[n - 1]`.
pub type RuleId = u16;

impl RuleSet {
    pub fn new(defaults: Limits, rules: Vec<Rule>) -> RuleSet {
        let mut prefixes: Vec<(Cidr, u16)> = rules
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.networks.iter().map(move |&c| (c, i as u16 + 1)))
            .collect();
        // Most specific first; among equals the earlier rule wins.
        prefixes.sort_by(|a, b| {
            b.0.specificity()
                .cmp(&a.0.specificity())
                .then(a.1.cmp(&b.1))
        });
        let resolved = std::iter::once(Some(defaults))
            .chain(rules.iter().map(|r| match r.action {
                Action::Ignore => None,
                Action::Limits(l) => Some(Limits {
                    byte_limit: l.byte_limit.or(defaults.byte_limit),
                    packet_limit: l.packet_limit.or(defaults.packet_limit),
                    max_contacted_ips: l.max_contacted_ips.or(defaults.max_contacted_ips),
                    max_contacted_ports: l.max_contacted_ports.or(defaults.max_contacted_ports),
                    inbound_byte_limit: l.inbound_byte_limit.or(defaults.inbound_byte_limit),
                    inbound_packet_limit: l.inbound_packet_limit.or(defaults.inbound_packet_limit),
                    rates: l.rates.or(defaults.rates),
                }),
            }))
            .collect();
        RuleSet {
            defaults,
            rules,
            prefixes,
            resolved,
        }
    }

    /// The rule for a host (longest matching prefix).
    pub fn lookup(&self, a: Addr) -> RuleId {
        self.prefixes
            .iter()
            .find(|(c, _)| c.contains(a))
            .map_or(0, |&(_, i)| i)
    }

    /// The limits of the defaults and of every rule that sets some.
    pub fn all_limits(&self) -> impl Iterator<Item = &Limits> + '_ {
        self.resolved.iter().flatten()
    }

    /// The limits of a rule, `None` if the rule ignores its hosts.
    #[inline]
    pub fn limits(&self, id: RuleId) -> Option<&Limits> {
        self.resolved.get(usize::from(id))?.as_ref()
    }

    /// The address-scan threshold of a rule, if it has one.
    #[inline]
    pub fn max_contacted_ips(&self, id: RuleId) -> Option<u32> {
        self.resolved
            .get(usize::from(id))
            .and_then(|l| l.as_ref()?.max_contacted_ips)
    }

    /// The port-scan threshold of a rule, if it has one.
    #[inline]
    pub fn max_contacted_ports(&self, id: RuleId) -> Option<u32> {
        self.resolved
            .get(usize::from(id))
            .and_then(|l| l.as_ref()?.max_contacted_ports)
    }

    /// The name of a rule, for evidence and logs.
    pub fn name(&self, id: RuleId) -> &str {
        if id == 0 {
            "default"
        } else {
            self.rules
                .get(usize::from(id) - 1)
                .map_or("default", |r| r.name.as_str())
        }
    }

    /// The largest distinct-destination and distinct-port thresholds of any
    /// rule: the bookkeeping caps of the scan sets.
    pub fn max_thresholds(&self) -> (u32, u32) {
        let mut ips = self.defaults.max_contacted_ips.unwrap_or(0);
        let mut ports = self.defaults.max_contacted_ports.unwrap_or(0);
        for id in 1..=self.rules.len() as u16 {
            if let Some(l) = self.limits(id) {
                ips = ips.max(l.max_contacted_ips.unwrap_or(0));
                ports = ports.max(l.max_contacted_ports.unwrap_or(0));
            }
        }
        (ips, ports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<IpAddr>().unwrap())
    }

    /// An operator's "all of IPv6" must not take in every IPv4 host,
    /// which the shared address space keeps under ::ffff:0:0/96.
    #[test]
    fn ipv6_networks_hold_no_ipv4_host_unless_written_in_the_mapped_part() {
        let all6 = Cidr::parse("::/0").unwrap();
        assert!(all6.contains(a("2001:db8::1")));
        assert!(!all6.contains(a("10.0.0.1")));
        assert!(!Cidr::parse("::/8").unwrap().contains(a("10.0.0.1")));
        let all4 = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all4.contains(a("10.0.0.1")));
        assert!(!all4.contains(a("2001:db8::1")));
        let mapped = Cidr::parse("::ffff:10.0.0.0/120").unwrap();
        assert!(mapped.contains(a("10.0.0.1")));
        assert!(!mapped.contains(a("10.0.1.1")));
        let set = RuleSet::new(
            Limits::default(),
            vec![Rule {
                name: "IPv6".into(),
                networks: vec![all6],
                action: Action::Ignore,
            }],
        );
        assert_eq!(set.lookup(a("10.0.0.1")), 0, "IPv4 keeps the defaults");
        assert_ne!(set.lookup(a("2001:db8::1")), 0);
    }

    fn limits(bytes: u64) -> Action {
        Action::Limits(Limits {
            byte_limit: Some(bytes),
            ..Limits::default()
        })
    }

    fn set() -> RuleSet {
        RuleSet::new(
            Limits {
                byte_limit: Some(100),
                max_contacted_ips: Some(15),
                ..Limits::default()
            },
            vec![
                Rule {
                    name: "lan".into(),
                    networks: vec![Cidr::parse("10.0.0.0/8").unwrap()],
                    action: limits(1000),
                },
                Rule {
                    name: "backup".into(),
                    networks: vec![
                        Cidr::parse("10.1.2.3").unwrap(),
                        Cidr::parse("2001:db8::/32").unwrap(),
                    ],
                    action: limits(1_000_000),
                },
                Rule {
                    name: "scanner".into(),
                    networks: vec![Cidr::parse("10.9.0.0/16").unwrap()],
                    action: Action::Ignore,
                },
            ],
        )
    }

    #[test]
    fn parse_forms_and_errors() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            Cidr::parse("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(
            Cidr::parse("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert!(
            Cidr::parse("10.0.0.1/8")
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("2001:db8::/129").is_err());
        assert!(Cidr::parse("ten/8").is_err());
        assert!(Cidr::parse("10.0.0.0/x").is_err());
    }

    #[test]
    fn families_do_not_mix() {
        let all_v4 = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all_v4.contains(a("8.8.8.8")));
        assert!(!all_v4.contains(a("2001:db8::1")));
        let all_v6 = Cidr::parse("::/0").unwrap();
        assert!(all_v6.contains(a("2001:db8::1")));
    }

    #[test]
    fn longest_prefix_wins() {
        let s = set();
        assert_eq!(s.name(s.lookup(a("10.1.2.3"))), "backup");
        assert_eq!(s.name(s.lookup(a("10.1.2.4"))), "lan");
        assert_eq!(s.name(s.lookup(a("10.9.1.1"))), "scanner");
        assert_eq!(s.name(s.lookup(a("192.0.2.1"))), "default");
        assert_eq!(s.name(s.lookup(a("2001:db8:1::5"))), "backup");
        assert_eq!(s.name(s.lookup(a("2001:db9::5"))), "default");
    }

    #[test]
    fn limits_inherit_defaults_and_ignore_means_none() {
        let s = set();
        let lan = s.limits(s.lookup(a("10.5.5.5"))).unwrap();
        assert_eq!(lan.byte_limit, Some(1000));
        assert_eq!(
            lan.max_contacted_ips,
            Some(15),
            "not set by the rule: default"
        );
        assert_eq!(s.limits(s.lookup(a("10.9.0.1"))), None);
        assert_eq!(s.limits(0).unwrap().byte_limit, Some(100));
    }

    #[test]
    fn equal_prefixes_first_rule_wins() {
        let s = RuleSet::new(
            Limits::default(),
            vec![
                Rule {
                    name: "first".into(),
                    networks: vec![Cidr::parse("10.0.0.0/8").unwrap()],
                    action: limits(1),
                },
                Rule {
                    name: "second".into(),
                    networks: vec![Cidr::parse("10.0.0.0/8").unwrap()],
                    action: limits(2),
                },
            ],
        );
        assert_eq!(s.name(s.lookup(a("10.0.0.1"))), "first");
    }
}
