//! ICMP and ICMPv6: type and code, and which messages are errors.

use super::{Layer, Malformed, Role, Summary, short};

/// Type, code, checksum: what we read. The rest of the 8-byte header
/// depends on the type.
const MIN_LEN: usize = 4;

fn read(layer: Layer, l4: &[u8], wire: usize) -> Result<(u8, u8), Malformed> {
    if l4.len() < MIN_LEN {
        return Err(short(layer, MIN_LEN, l4.len(), wire));
    }
    Ok((l4[0], l4[1]))
}

/// ICMP for IPv4 (RFC 792).
pub fn role_v4(ty: u8) -> Role {
    match ty {
        8 | 13 => Role::Initiation,
        0 | 14 => Role::Reply,
        3 => Role::Refusal,
        4 | 5 | 11 | 12 => Role::Error,
        _ => Role::Other,
    }
}

/// ICMPv6 (RFC 4443); neighbour discovery and MLD are `Other`.
pub fn role_v6(ty: u8) -> Role {
    match ty {
        128 => Role::Initiation,
        129 => Role::Reply,
        1 => Role::Refusal,
        2..=4 => Role::Error,
        _ => Role::Other,
    }
}

#[inline]
pub(crate) fn parse_v4(s: &mut Summary, l4: &[u8], wire: usize) -> Result<(), Malformed> {
    let (ty, code) = read(Layer::Icmp, l4, wire)?;
    s.icmp_type = ty;
    s.icmp_code = code;
    s.role = role_v4(ty);
    Ok(())
}

#[inline]
pub(crate) fn parse_v6(s: &mut Summary, l4: &[u8], wire: usize) -> Result<(), Malformed> {
    let (ty, code) = read(Layer::Icmpv6, l4, wire)?;
    s.icmp_type = ty;
    s.icmp_code = code;
    s.role = role_v6(ty);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::*;
    use super::super::{Problem, proto};
    use super::*;

    #[test]
    fn v4_roles() {
        assert_eq!(role_v4(8), Role::Initiation);
        assert_eq!(role_v4(0), Role::Reply);
        assert_eq!(role_v4(3), Role::Refusal);
        assert_eq!(role_v4(11), Role::Error);
        assert_eq!(role_v4(9), Role::Other);
    }

    #[test]
    fn v6_roles() {
        assert_eq!(role_v6(128), Role::Initiation);
        assert_eq!(role_v6(129), Role::Reply);
        assert_eq!(role_v6(1), Role::Refusal);
        assert_eq!(role_v6(2), Role::Error);
        assert_eq!(role_v6(135), Role::Other);
    }

    #[test]
    fn echo_request_through_the_ip_layer() {
        let p = ipv4([10, 0, 0, 1], [10, 0, 0, 2], proto::ICMP, &icmp(8, 0, 56));
        let s = super::super::ipv4::parse(&p, p.len()).unwrap();
        assert_eq!((s.icmp_type, s.icmp_code, s.role), (8, 0, Role::Initiation));
        assert!(!s.has_ports);
    }

    #[test]
    fn unreachable_is_a_refusal() {
        let p = ipv4([10, 0, 0, 1], [10, 0, 0, 2], proto::ICMP, &icmp(3, 3, 28));
        let s = super::super::ipv4::parse(&p, p.len()).unwrap();
        assert_eq!((s.icmp_code, s.role), (3, Role::Refusal));
    }

    #[test]
    fn icmpv6_in_ipv4_is_not_parsed_as_icmp() {
        let p = ipv4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            proto::ICMPV6,
            &icmp(128, 0, 8),
        );
        let s = super::super::ipv4::parse(&p, p.len()).unwrap();
        assert_eq!(s.role, Role::Other);
    }

    #[test]
    fn short_header() {
        let mut s = Summary::default();
        assert_eq!(
            parse_v4(&mut s, &[8, 0, 0], 3),
            Err(Malformed::new(Layer::Icmp, Problem::Truncated))
        );
        assert_eq!(
            parse_v6(&mut s, &[128], 8),
            Err(Malformed::new(Layer::Icmpv6, Problem::Snapped))
        );
    }
}
