//! Routes as ExaBGP's text API takes them (`announce route …`,
//! `announce flow route { match { … } then { … } }`).
//!
//! Next hops are always explicit: ExaBGP 4.2 sends a route given as
//! `next-hop self` without its NEXT_HOP once the session is re-established,
//! and the peer drops it.

use std::net::IpAddr;

use crate::alert::Alert;
use crate::config::mitigation::{BLACKHOLE, Community, FlowAction};

/// One route: what identifies it, and the commands that announce and
/// withdraw it. Announcing the same key with other attributes replaces
/// the route in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub key: String,
    pub announce: String,
    pub withdraw: String,
}

/// `subject/len` with the host bits cleared.
pub fn prefix(subject: IpAddr, len: u8) -> String {
    match subject {
        IpAddr::V4(a) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            format!("{}/{len}", std::net::Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// The blackhole route: RFC 7999's community first, then the configured
/// ones.
pub fn blackhole(subject: IpAddr, len: u8, next_hop: IpAddr, extra: &[Community]) -> Route {
    let p = prefix(subject, len);
    let mut communities = vec![BLACKHOLE];
    communities.extend(extra.iter().filter(|c| **c != BLACKHOLE));
    let list = communities
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    Route {
        key: format!("route {p}"),
        announce: format!("announce route {p} next-hop {next_hop} community [{list}]"),
        withdraw: format!("withdraw route {p} next-hop {next_hop}"),
    }
}

/// What a FlowSpec rule matches besides the subject: the attack's
/// dominant protocol, and its port when most packets went to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Matches {
    /// The subject is the source of what is matched (an outbound alert).
    pub source: bool,
    pub protocol: Option<u8>,
    pub port: Option<u16>,
}

impl Matches {
    /// From an alert's fingerprint, when it has one.
    pub fn of(a: &Alert) -> Matches {
        let mut m = Matches {
            source: a.kind.subject_is_source(),
            ..Matches::default()
        };
        let Some(fp) = &a.evidence.fingerprint else {
            return m;
        };
        let v6 = a.subject.is_ipv6();
        m.protocol = match fp.protocol.as_str() {
            "tcp" => Some(6),
            "udp" => Some(17),
            "icmp" if v6 => Some(58),
            "icmp" => Some(1),
            _ => None,
        };
        // A port only when one carried at least half of the packets: a
        // rule for a port that is a sliver of the attack stops nothing.
        // The ports tallied are those flows were opened to: a victim's.
        if let (Some(p), Some(proto), false) = (fp.ports.first(), m.protocol, m.source)
            && (proto == 6 || proto == 17)
            && p.proto == fp.protocol
            && p.packets.saturating_mul(2) >= fp.packets
            && fp.packets > 0
        {
            m.port = Some(p.port);
        }
        m
    }
}

/// A FlowSpec rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub subject: IpAddr,
    pub matches: Matches,
    pub action: FlowAction,
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "=58".into(),
        p => format!("={p}"),
    }
}

impl Flow {
    fn match_text(&self) -> String {
        let host = match self.subject {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let side = if self.matches.source {
            "source"
        } else {
            "destination"
        };
        let mut s = format!("{side} {}; ", prefix(self.subject, host));
        if let Some(p) = self.matches.protocol {
            let key = if self.subject.is_ipv6() {
                "next-header"
            } else {
                "protocol"
            };
            s.push_str(&format!("{key} {}; ", proto_name(p)));
        }
        if let Some(p) = self.matches.port {
            s.push_str(&format!("destination-port ={p}; "));
        }
        s
    }

    fn then_text(&self) -> String {
        match self.action {
            FlowAction::Discard => "discard;".into(),
            FlowAction::RateLimit(bytes) => format!("rate-limit {bytes};"),
        }
    }

    /// One line for people: `udp to 10.0.0.1/32 port 53: discard`.
    pub fn describe(&self) -> String {
        let host = match self.subject {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let mut s = String::new();
        if let Some(p) = self.matches.protocol {
            s.push_str(proto_name(p).trim_start_matches('='));
            s.push(' ');
        }
        s.push_str(if self.matches.source { "from " } else { "to " });
        s.push_str(&prefix(self.subject, host));
        if let Some(p) = self.matches.port {
            s.push_str(&format!(" port {p}"));
        }
        match self.action {
            FlowAction::Discard => s.push_str(": discard"),
            FlowAction::RateLimit(b) => s.push_str(&format!(": rate-limit {b} bytes/s")),
        }
        s
    }
}

/// The FlowSpec rule as a route.
pub fn flow(f: &Flow) -> Route {
    let m = f.match_text();
    Route {
        key: format!("flow {}", m.trim_end()),
        announce: format!(
            "announce flow route {{ match {{ {m}}} then {{ {} }} }}",
            f.then_text()
        ),
        withdraw: format!("withdraw flow route {{ match {{ {m}}} }}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertKind;

    #[test]
    fn a_blackhole_route_has_rfc7999s_community_first_and_an_explicit_next_hop() {
        let r = blackhole(
            "10.2.0.9".parse().unwrap(),
            32,
            "10.99.0.2".parse().unwrap(),
            &[Community(65001, 9), BLACKHOLE],
        );
        assert_eq!(r.key, "route 10.2.0.9/32");
        assert_eq!(
            r.announce,
            "announce route 10.2.0.9/32 next-hop 10.99.0.2 community [65535:666 65001:9]"
        );
        assert_eq!(r.withdraw, "withdraw route 10.2.0.9/32 next-hop 10.99.0.2");
        let r = blackhole(
            "2001:db8::9".parse().unwrap(),
            64,
            "2001:db8:99::2".parse().unwrap(),
            &[],
        );
        assert_eq!(r.key, "route 2001:db8::/64");
        assert_eq!(prefix("10.2.3.4".parse().unwrap(), 24), "10.2.3.0/24");
    }

    fn flooded(kind: AlertKind, subject: &str, proto: &str, port: u16, share: u64) -> Alert {
        let mut a = Alert::sample(1, kind, subject);
        std::sync::Arc::make_mut(&mut a.evidence).fingerprint =
            Some(crate::aggregator::fingerprint::Fingerprint {
                packets: 100,
                protocol: proto.into(),
                ports: vec![crate::aggregator::fingerprint::PortCount {
                    proto: proto.into(),
                    port,
                    packets: share,
                }],
                syn_share: 0.0,
                fragment_share: 0.0,
                source_prefixes: Vec::new(),
                top_prefixes_share: 0.0,
                distinct_prefixes: 0,
            });
        a
    }

    #[test]
    fn a_flowspec_rule_matches_the_dominant_protocol_and_port_toward_the_victim() {
        let a = flooded(AlertKind::UdpIn, "10.2.0.9", "udp", 53, 90);
        let f = Flow {
            subject: a.subject,
            matches: Matches::of(&a),
            action: FlowAction::Discard,
        };
        let r = flow(&f);
        assert_eq!(
            r.announce,
            "announce flow route { match { destination 10.2.0.9/32; protocol udp; destination-port =53; } then { discard; } }"
        );
        assert_eq!(
            r.withdraw,
            "withdraw flow route { match { destination 10.2.0.9/32; protocol udp; destination-port =53; } }"
        );
        assert_eq!(f.describe(), "udp to 10.2.0.9/32 port 53: discard");

        // A port that is a sliver of the flood is left out; IPv6 says
        // next-header; a rate limit is in bytes per second.
        let a = flooded(AlertKind::Inbound, "2001:db8::9", "tcp", 80, 10);
        let f = Flow {
            subject: a.subject,
            matches: Matches::of(&a),
            action: FlowAction::RateLimit(125_000),
        };
        assert_eq!(
            flow(&f).announce,
            "announce flow route { match { destination 2001:db8::9/128; next-header tcp; } then { rate-limit 125000; } }"
        );
        // An outbound alert matches its subject as the source.
        let a = flooded(AlertKind::UdpOut, "10.0.0.5", "udp", 123, 100);
        let f = Flow {
            subject: a.subject,
            matches: Matches::of(&a),
            action: FlowAction::Discard,
        };
        assert!(
            flow(&f)
                .announce
                .contains("{ source 10.0.0.5/32; protocol udp; }"),
            "{}",
            flow(&f).announce
        );
        // No fingerprint: the destination alone.
        let a = Alert::sample(1, AlertKind::Inbound, "10.2.0.9");
        assert_eq!(Matches::of(&a).protocol, None);
    }
}
