//! Link layers other than Ethernet: none at all (raw IP), Linux cooked
//! captures, BSD loopback, and whatever the kernel parsed for us.

use super::{Direction, L3Start, Layer, NonIp, Skip, be16, ethertype, short};

/// Raw IP: the version nibble says which.
#[inline]
pub(crate) fn raw_ip(data: &[u8], wire: usize) -> Result<L3Start, Skip> {
    let Some(&first) = data.first() else {
        return Err(Skip::Malformed(short(Layer::Link, 1, 0, wire)));
    };
    let ethertype = match first >> 4 {
        4 => ethertype::IPV4,
        6 => ethertype::IPV6,
        _ => return Err(Skip::NonIp(NonIp::Other)),
    };
    Ok(L3Start {
        ethertype,
        offset: 0,
        vlan: 0,
        direction: None,
    })
}

const SLL_LEN: usize = 16;
const SLL2_LEN: usize = 20;
/// `sll_pkttype` of a packet the capturing host sent.
const PACKET_OUTGOING: u16 = 4;

fn direction_of(pkttype: u16) -> Direction {
    if pkttype == PACKET_OUTGOING {
        Direction::Out
    } else {
        Direction::In
    }
}

/// Linux cooked v1: packet type (2), ARPHRD (2), address length (2),
/// address (8), protocol (2).
#[inline]
pub(crate) fn sll(data: &[u8], wire: usize) -> Result<L3Start, Skip> {
    if data.len() < SLL_LEN {
        return Err(Skip::Malformed(short(
            Layer::Link,
            SLL_LEN,
            data.len(),
            wire,
        )));
    }
    cooked(
        be16(data, 14),
        SLL_LEN,
        direction_of(be16(data, 0)),
        data,
        wire,
    )
}

/// Linux cooked v2: protocol (2), reserved (2), ifindex (4), ARPHRD (2),
/// packet type (1), address length (1), address (8).
#[inline]
pub(crate) fn sll2(data: &[u8], wire: usize) -> Result<L3Start, Skip> {
    if data.len() < SLL2_LEN {
        return Err(Skip::Malformed(short(
            Layer::Link,
            SLL2_LEN,
            data.len(),
            wire,
        )));
    }
    cooked(
        be16(data, 0),
        SLL2_LEN,
        direction_of(u16::from(data[10])),
        data,
        wire,
    )
}

/// After a cooked header the protocol may still be a VLAN tag the capture
/// left inline.
fn cooked(
    ty: u16,
    offset: usize,
    direction: Direction,
    data: &[u8],
    wire: usize,
) -> Result<L3Start, Skip> {
    let start = super::shim::walk(data, offset, ty, wire)?;
    Ok(L3Start {
        direction: Some(direction),
        ..start
    })
}

/// Address families that mean IPv6 in a loopback header: Linux, NetBSD and
/// OpenBSD, FreeBSD, Darwin.
const AF_INET6: [u32; 4] = [10, 24, 28, 30];
const AF_INET: u32 = 2;

/// BSD loopback: a 4-byte address family, in the byte order of the machine
/// that wrote it (`network_order == false`) or big-endian (`true`).
#[inline]
pub(crate) fn null(data: &[u8], wire: usize, network_order: bool) -> Result<L3Start, Skip> {
    let Some(b) = data.get(..4) else {
        return Err(Skip::Malformed(short(Layer::Link, 4, data.len(), wire)));
    };
    let b = [b[0], b[1], b[2], b[3]];
    let be = u32::from_be_bytes(b);
    let candidates = if network_order {
        [be, be]
    } else {
        // The writer's byte order is unknown: a family is a small number, so
        // whichever reading is small is the right one.
        [u32::from_le_bytes(b), be]
    };
    for af in candidates {
        if af == AF_INET {
            return Ok(L3Start {
                ethertype: ethertype::IPV4,
                offset: 4,
                vlan: 0,
                direction: None,
            });
        }
        if AF_INET6.contains(&af) {
            return Ok(L3Start {
                ethertype: ethertype::IPV6,
                offset: 4,
                vlan: 0,
                direction: None,
            });
        }
    }
    Err(Skip::NonIp(NonIp::Other))
}

/// A link type we do not parse: the kernel told us the protocol and where the
/// network header starts.
#[inline]
pub(crate) fn kernel(
    data: &[u8],
    wire: usize,
    protocol: u16,
    net_offset: u16,
) -> Result<L3Start, Skip> {
    let offset = net_offset as usize;
    if offset > data.len() {
        return Err(Skip::Malformed(short(
            Layer::Link,
            offset,
            data.len(),
            wire,
        )));
    }
    Ok(L3Start {
        ethertype: protocol,
        offset,
        vlan: 0,
        direction: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::*;
    use super::super::{LinkType, Malformed, Meta, Problem, Summary, parse};
    use super::*;

    fn run(link: LinkType, f: &[u8]) -> Result<Summary, Skip> {
        parse(
            link,
            f,
            Meta {
                wire_len: f.len() as u32,
                ..Meta::default()
            },
        )
    }

    #[test]
    fn raw_ipv4_and_ipv6() {
        let p4 = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 3);
        let s = run(LinkType::RawIp, &p4).unwrap();
        assert_eq!(s.l3_len as usize, p4.len());
        let p6 = ipv6_tcp(1, 2, 3, 4, 0);
        let s = run(LinkType::RawIp, &p6).unwrap();
        assert_eq!(s.l3_len as usize, p6.len());
        assert_eq!(
            run(LinkType::RawIp, &[0x10, 0, 0]),
            Err(Skip::NonIp(NonIp::Other))
        );
        assert_eq!(
            run(LinkType::RawIp, &[]),
            Err(Skip::Malformed(Malformed::new(
                Layer::Link,
                Problem::Truncated
            )))
        );
    }

    fn sll_header(pkttype: u16, proto: u16) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&pkttype.to_be_bytes());
        h.extend_from_slice(&1u16.to_be_bytes());
        h.extend_from_slice(&6u16.to_be_bytes());
        h.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0, 0]);
        h.extend_from_slice(&proto.to_be_bytes());
        h
    }

    #[test]
    fn linux_sll_with_direction() {
        let mut f = sll_header(4, ethertype::IPV4);
        let ip = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 3);
        f.extend_from_slice(&ip);
        let s = run(LinkType::LinuxSll, &f).unwrap();
        assert_eq!(s.direction, Direction::Out);
        assert_eq!(s.l3_len as usize, ip.len());
        let mut f = sll_header(0, ethertype::IPV4);
        f.extend_from_slice(&ip);
        assert_eq!(
            run(LinkType::LinuxSll, &f).unwrap().direction,
            Direction::In
        );
    }

    #[test]
    fn linux_sll_with_inline_vlan() {
        let mut f = sll_header(0, ethertype::VLAN);
        f.extend_from_slice(&[0x00, 0x07]);
        f.extend_from_slice(&ethertype::IPV6.to_be_bytes());
        let ip = ipv6_tcp(1, 2, 3, 4, 0);
        f.extend_from_slice(&ip);
        let s = run(LinkType::LinuxSll, &f).unwrap();
        assert_eq!(s.vlan, 7);
        assert_eq!(s.l3_len as usize, ip.len());
    }

    #[test]
    fn linux_sll_with_too_many_tags_is_malformed() {
        let mut f = sll_header(0, ethertype::VLAN);
        for _ in 0..4 {
            f.extend_from_slice(&[0x00, 0x07]);
            f.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        }
        f.extend_from_slice(&[0x00, 0x07]);
        f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        f.extend_from_slice(&ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 3));
        assert_eq!(
            run(LinkType::LinuxSll, &f),
            Err(Skip::Malformed(Malformed::new(
                Layer::Vlan,
                Problem::TooDeep
            )))
        );
    }

    #[test]
    fn linux_sll2() {
        let mut f = Vec::new();
        f.extend_from_slice(&ethertype::IPV6.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 4, 6]);
        f.extend_from_slice(&[0; 8]);
        let ip = ipv6_tcp(1, 2, 3, 4, 0);
        f.extend_from_slice(&ip);
        let s = run(LinkType::LinuxSll2, &f).unwrap();
        assert_eq!(s.direction, Direction::Out);
        assert_eq!(s.dst_port, 4);
        assert!(run(LinkType::LinuxSll2, &f[..19]).is_err());
        assert!(run(LinkType::LinuxSll, &f[..15]).is_err());
    }

    #[test]
    fn bsd_loopback_in_either_byte_order() {
        let ip = ipv4_udp([127, 0, 0, 1], [127, 0, 0, 1], 1, 2, 3);
        for hdr in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            let mut f = hdr.to_vec();
            f.extend_from_slice(&ip);
            assert_eq!(run(LinkType::Null, &f).unwrap().l3_len as usize, ip.len());
        }
        let ip6 = ipv6_tcp(1, 1, 5, 6, 0);
        for af in AF_INET6 {
            let mut f = af.to_le_bytes().to_vec();
            f.extend_from_slice(&ip6);
            assert_eq!(run(LinkType::Null, &f).unwrap().dst_port, 6);
        }
        let mut f = 24u32.to_be_bytes().to_vec();
        f.extend_from_slice(&ip6);
        assert_eq!(run(LinkType::Loop, &f).unwrap().dst_port, 6);
        let mut f = 24u32.to_le_bytes().to_vec();
        f.extend_from_slice(&ip6);
        assert_eq!(run(LinkType::Loop, &f), Err(Skip::NonIp(NonIp::Other)));
        assert!(run(LinkType::Null, &[2, 0]).is_err());
    }

    #[test]
    fn kernel_offset_beyond_capture_is_malformed() {
        let m = Meta {
            wire_len: 10,
            protocol: ethertype::IPV4,
            net_offset: 20,
            ..Meta::default()
        };
        assert!(parse(LinkType::Kernel, &[0u8; 10], m).is_err());
    }
}
