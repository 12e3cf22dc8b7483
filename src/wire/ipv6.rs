//! IPv6 headers and the extension-header chain in front of the transport.

use super::{Addr, Layer, Malformed, Problem, Skip, Summary, be16, proto, short, transport};

pub const HEADER_LEN: usize = 40;
/// Extension headers we follow before giving up on reaching the transport.
/// RFC 8200 orders at most about six; more is an attack on parsers.
const MAX_EXT: usize = 8;

mod field {
    use std::ops::Range;
    pub const VERSION: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

mod next {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const DEST_OPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// A checked view of an IPv6 fixed header.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<'a> {
    buf: &'a [u8],
    packet_len: usize,
}

impl<'a> Ipv6Packet<'a> {
    /// Checks the fixed header against the captured bytes and the packet's
    /// wire length: version, payload length.
    pub fn new_checked(buf: &'a [u8], wire: usize) -> Result<Self, Malformed> {
        if buf.len() < HEADER_LEN {
            return Err(short(Layer::Ipv6, HEADER_LEN, buf.len(), wire));
        }
        if buf[field::VERSION] >> 4 != 6 {
            return Err(Malformed::new(Layer::Ipv6, Problem::BadVersion));
        }
        let payload = usize::from(be16(buf, field::PAYLOAD_LEN));
        let packet_len = if payload == 0 && wire > HEADER_LEN {
            // A jumbogram or a BIG TCP GSO packet: the length is elsewhere;
            // the wire length is the truth.
            wire
        } else if HEADER_LEN + payload > wire {
            return Err(Malformed::new(Layer::Ipv6, Problem::BadTotalLen));
        } else {
            HEADER_LEN + payload
        };
        Ok(Ipv6Packet { buf, packet_len })
    }

    pub fn src(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buf[field::SRC]);
        a
    }

    pub fn dst(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buf[field::DST]);
        a
    }

    pub fn next_header(&self) -> u8 {
        self.buf[field::NEXT_HEADER]
    }

    /// Captured bytes after the fixed header, within the packet's length.
    pub fn payload(&self) -> &'a [u8] {
        let end = self.packet_len.min(self.buf.len());
        &self.buf[HEADER_LEN.min(end)..end]
    }

    /// The payload's length on the wire.
    pub fn payload_len(&self) -> usize {
        self.packet_len - HEADER_LEN
    }
}

/// [`parse_into`], the summary returned.
#[cfg(test)]
pub(crate) fn parse(l3: &[u8], wire: usize) -> Result<Summary, Skip> {
    let mut s = Summary::default();
    parse_into(l3, wire, &mut s)?;
    Ok(s)
}

/// Parses an IPv6 packet starting at `l3` into `s`, in place
/// ([`super::parse_into`]); `wire` is its length on the wire.
#[inline]
pub(crate) fn parse_into(l3: &[u8], wire: usize, s: &mut Summary) -> Result<(), Skip> {
    let p = Ipv6Packet::new_checked(l3, wire).map_err(Skip::Malformed)?;
    *s = Summary {
        src: Addr::from_v6(p.src()),
        dst: Addr::from_v6(p.dst()),
        l3_len: wire as u32,
        proto: p.next_header(),
        ..Summary::default()
    };
    let mut rest = p.payload();
    let mut rest_wire = p.payload_len();
    let mut hops = 0;
    loop {
        let (len, nh) = match s.proto {
            next::HOP_BY_HOP
            | next::ROUTING
            | next::DEST_OPTS
            | next::MOBILITY
            | next::HIP
            | next::SHIM6 => match generic_ext(rest, rest_wire) {
                Ok(v) => v,
                Err(m) => {
                    s.anomaly = Some(m);
                    return Ok(());
                }
            },
            next::FRAGMENT => {
                if rest.len() < 8 {
                    s.anomaly = Some(short(Layer::Ipv6Ext, 8, rest.len(), rest_wire));
                    return Ok(());
                }
                // An atomic fragment (offset 0, no more) is a whole packet.
                let f = be16(rest, 2);
                s.fragment = f >> 3 != 0 || f & 1 != 0;
                if be16(rest, 2) >> 3 != 0 {
                    s.later_fragment = true;
                    s.proto = rest[0];
                    return Ok(());
                }
                (8, rest[0])
            }
            proto::AH => match skip_ah(rest, rest_wire) {
                Ok((nh, len)) => (len, nh),
                Err(m) => {
                    s.anomaly = Some(m);
                    return Ok(());
                }
            },
            // ESP (encrypted from here on), No Next Header, a transport, or
            // something unknown: the chain ends.
            _ => break,
        };
        hops += 1;
        if hops > MAX_EXT {
            s.anomaly = Some(Malformed::new(Layer::Ipv6Ext, Problem::TooDeep));
            return Ok(());
        }
        s.proto = nh;
        rest = &rest[len..];
        rest_wire -= len;
    }
    s.l4_offset = (rest.as_ptr() as usize - l3.as_ptr() as usize) as u16;
    transport(s, rest, rest_wire, true);
    Ok(())
}

/// Hop-by-hop, routing, destination options and the like: next header,
/// length in 8-octet units not counting the first. Returns (length, next).
fn generic_ext(rest: &[u8], rest_wire: usize) -> Result<(usize, u8), Malformed> {
    if rest.len() < 2 {
        return Err(short(Layer::Ipv6Ext, 2, rest.len(), rest_wire));
    }
    let len = (usize::from(rest[1]) + 1) * 8;
    check_ext_len(rest, rest_wire, len)?;
    Ok((len, rest[0]))
}

/// The authentication header (IPv4 and IPv6): length in 4-octet units minus
/// two. Returns (next header, length).
pub(crate) fn skip_ah(rest: &[u8], rest_wire: usize) -> Result<(u8, usize), Malformed> {
    if rest.len() < 2 {
        return Err(short(Layer::Ipv6Ext, 2, rest.len(), rest_wire));
    }
    let len = (usize::from(rest[1]) + 2) * 4;
    check_ext_len(rest, rest_wire, len)?;
    Ok((rest[0], len))
}

fn check_ext_len(rest: &[u8], rest_wire: usize, len: usize) -> Result<(), Malformed> {
    if len > rest_wire {
        return Err(Malformed::new(Layer::Ipv6Ext, Problem::BadHeaderLen));
    }
    if len > rest.len() {
        return Err(short(Layer::Ipv6Ext, len, rest.len(), rest_wire));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::*;
    use super::super::{Role, tcp_flags};
    use super::*;

    fn run(p: &[u8]) -> Summary {
        parse(p, p.len()).unwrap()
    }

    fn syn(port: u16) -> Vec<u8> {
        tcp(40000, port, tcp_flags::SYN)
    }

    #[test]
    fn plain_tcp() {
        let s = run(&ipv6_tcp(1, 2, 40000, 22, tcp_flags::SYN));
        assert_eq!(s.src.to_string(), "2001:db8::1");
        assert_eq!(s.dst.to_string(), "2001:db8::2");
        assert_eq!(
            (s.proto, s.dst_port, s.role),
            (proto::TCP, 22, Role::Initiation)
        );
        assert_eq!(s.l3_len, 60);
    }

    #[test]
    fn hop_by_hop_routing_dest_opts_chain() {
        let chain = ext(
            next::ROUTING,
            0,
            &ext(next::DEST_OPTS, 0, &ext(proto::TCP, 1, &syn(8080))),
        );
        let p = ipv6(v6(1), v6(2), next::HOP_BY_HOP, &chain);
        // hop-by-hop -> routing -> destination options (16 bytes) -> tcp
        let s = run(&p);
        assert_eq!((s.proto, s.dst_port), (proto::TCP, 8080));
        assert_eq!(s.anomaly, None);
    }

    #[test]
    fn first_fragment_has_ports_later_does_not() {
        let p = ipv6(
            v6(1),
            v6(2),
            next::FRAGMENT,
            &frag6(proto::UDP, 0, true, &udp(1, 53, 100)),
        );
        let s = run(&p);
        assert!(s.has_ports && !s.later_fragment && s.fragment);
        assert_eq!(s.dst_port, 53);
        let p = ipv6(
            v6(1),
            v6(2),
            next::FRAGMENT,
            &frag6(proto::UDP, 100, false, &[0xcc; 64]),
        );
        let s = run(&p);
        assert!(s.later_fragment && !s.has_ports && s.fragment);
        assert_eq!(s.proto, proto::UDP);
    }

    #[test]
    fn ah_then_tcp() {
        let p = ipv6(v6(1), v6(2), proto::AH, &ah(proto::TCP, 4, &syn(25)));
        assert_eq!(run(&p).dst_port, 25);
    }

    #[test]
    fn esp_ends_the_chain() {
        let p = ipv6(
            v6(1),
            v6(2),
            next::DEST_OPTS,
            &ext(proto::ESP, 0, &[0xdd; 32]),
        );
        let s = run(&p);
        assert_eq!(s.proto, proto::ESP);
        assert!(!s.has_ports);
        assert_eq!(s.anomaly, None);
    }

    #[test]
    fn no_next_header() {
        let p = ipv6(v6(1), v6(2), proto::NO_NEXT, &[]);
        let s = run(&p);
        assert_eq!(s.proto, proto::NO_NEXT);
        assert_eq!(s.l3_len, 40);
    }

    #[test]
    fn icmpv6_echo_request_and_error() {
        let s = run(&ipv6(v6(1), v6(2), proto::ICMPV6, &icmp(128, 0, 8)));
        assert_eq!((s.icmp_type, s.role), (128, Role::Initiation));
        let s = run(&ipv6(v6(1), v6(2), proto::ICMPV6, &icmp(1, 4, 48)));
        assert_eq!(s.role, Role::Refusal);
        let s = run(&ipv6(v6(1), v6(2), proto::ICMPV6, &icmp(3, 0, 48)));
        assert_eq!(s.role, Role::Error);
    }

    #[test]
    fn too_long_chain_is_noted_but_counted() {
        let mut inner = syn(80);
        for _ in 0..9 {
            inner = ext(next::DEST_OPTS, 0, &inner);
        }
        let p = ipv6(v6(1), v6(2), next::DEST_OPTS, &inner);
        let s = run(&p);
        assert_eq!(
            s.anomaly,
            Some(Malformed::new(Layer::Ipv6Ext, Problem::TooDeep))
        );
        assert_eq!(s.l3_len as usize, p.len());
    }

    #[test]
    fn ext_length_beyond_packet() {
        let mut e = ext(proto::TCP, 0, &syn(80));
        e[1] = 200;
        let p = ipv6(v6(1), v6(2), next::HOP_BY_HOP, &e);
        assert_eq!(
            run(&p).anomaly,
            Some(Malformed::new(Layer::Ipv6Ext, Problem::BadHeaderLen))
        );
    }

    #[test]
    fn ext_cut_by_snaplen() {
        let p = ipv6(
            v6(1),
            v6(2),
            next::HOP_BY_HOP,
            &ext(proto::TCP, 3, &syn(80)),
        );
        let s = parse(&p[..50], p.len()).unwrap();
        assert_eq!(
            s.anomaly,
            Some(Malformed::new(Layer::Ipv6Ext, Problem::Snapped))
        );
        let s = parse(&p[..41], p.len()).unwrap();
        assert_eq!(
            s.anomaly,
            Some(Malformed::new(Layer::Ipv6Ext, Problem::Snapped))
        );
    }

    #[test]
    fn fragment_header_cut() {
        let p = ipv6(
            v6(1),
            v6(2),
            next::FRAGMENT,
            &frag6(proto::UDP, 0, true, &udp(1, 2, 10)),
        );
        let s = parse(&p[..44], p.len()).unwrap();
        assert_eq!(
            s.anomaly,
            Some(Malformed::new(Layer::Ipv6Ext, Problem::Snapped))
        );
        // A packet whose payload ends four bytes into the fragment header.
        let p = ipv6(v6(1), v6(2), next::FRAGMENT, &[proto::UDP, 0, 0, 0]);
        let s = parse(&p, p.len()).unwrap();
        assert_eq!(
            s.anomaly,
            Some(Malformed::new(Layer::Ipv6Ext, Problem::Truncated))
        );
    }

    fn err(p: Problem) -> Result<Summary, Skip> {
        Err(Skip::Malformed(Malformed::new(Layer::Ipv6, p)))
    }

    #[test]
    fn fixed_header_errors() {
        let p = ipv6_tcp(1, 2, 3, 4, 0);
        assert_eq!(parse(&p[..39], 39), err(Problem::Truncated));
        assert_eq!(parse(&p[..39], p.len()), err(Problem::Snapped));
        let mut bad = p.clone();
        bad[0] = 0x40;
        assert_eq!(parse(&bad, bad.len()), err(Problem::BadVersion));
        let mut long = p.clone();
        long[4..6].copy_from_slice(&500u16.to_be_bytes());
        assert_eq!(parse(&long, long.len()), err(Problem::BadTotalLen));
    }

    #[test]
    fn zero_payload_length_uses_wire_length() {
        let mut p = ipv6_tcp(1, 2, 3, 4, tcp_flags::ACK);
        p[4..6].copy_from_slice(&[0, 0]);
        let s = parse(&p, 70_000).unwrap();
        assert_eq!(s.l3_len, 70_000);
        assert_eq!(s.dst_port, 4);
    }
}
