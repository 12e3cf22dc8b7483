//! What sits between a link header and the IP header on the links operators
//! have: 802.1Q / 802.1ad tags, MPLS label stacks (with a pseudo-wire
//! control word and an inner Ethernet frame), PPPoE sessions, LLC/SNAP,
//! 802.1ah PBB, VN-Tag and 802.1BR E-Tag. Each is followed to the EtherType
//! of what it carries; anything that carries no IP is non-IP, counted.

use super::{L3Start, Layer, Malformed, NonIp, Problem, Skip, be16, ethertype, short};

/// VLAN tags followed before a frame is malformed: QinQ is two, a
/// provider's QinQinQ three; more is an attack on parsers.
const MAX_TAGS: usize = 4;
/// MPLS labels followed: real stacks are three or four deep.
const MAX_LABELS: usize = 8;
/// Headers of any kind followed, inner Ethernet frames included.
const MAX_SHIMS: usize = 12;

/// EtherTypes of the headers followed here.
mod ty {
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// 802.1ah Backbone Service Instance Tag.
    pub const PBB_ITAG: u16 = 0x88e7;
    /// Cisco VN-Tag.
    pub const VNTAG: u16 = 0x8926;
    /// 802.1BR E-Tag.
    pub const ETAG: u16 = 0x893f;
}

/// PPP protocol numbers that carry IP.
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// The MPLS label that says a generic associated channel follows (no IP).
const GAL: u32 = 13;

/// EtherTypes this walker follows or counts: what a pseudo-wire's
/// Ethernet frame is recognised by.
fn followed(t: u16) -> bool {
    matches!(
        t,
        ethertype::IPV4
            | ethertype::IPV6
            | ethertype::ARP
            | ethertype::VLAN
            | ethertype::QINQ
            | ethertype::QINQ_OLD
            | ty::MPLS
            | ty::MPLS_MULTICAST
            | ty::PPPOE_SESSION
            | ty::PPPOE_DISCOVERY
    )
}

fn need(layer: Layer, data: &[u8], end: usize, wire: usize) -> Result<(), Skip> {
    if data.len() < end {
        Err(Skip::Malformed(short(layer, end, data.len(), wire)))
    } else {
        Ok(())
    }
}

fn too_deep(layer: Layer) -> Skip {
    Skip::Malformed(Malformed::new(layer, Problem::TooDeep))
}

/// Follows the headers that start at `offset`, where `ty` is the EtherType
/// (or 802.3 length) read just before it, to the network layer. Returns
/// its EtherType and offset, and the outermost VLAN id (0 without tags).
#[inline]
pub(crate) fn walk(
    data: &[u8],
    mut offset: usize,
    mut ty: u16,
    wire: usize,
) -> Result<L3Start, Skip> {
    let mut vlan = 0u16;
    let mut tags = 0;
    let mut labels = 0;
    let mut shims = 0;
    loop {
        match ty {
            ethertype::IPV4 | ethertype::IPV6 | ethertype::ARP => break,
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                if tags == MAX_TAGS {
                    return Err(too_deep(Layer::Vlan));
                }
                need(Layer::Vlan, data, offset + 4, wire)?;
                if tags == 0 && vlan == 0 {
                    vlan = be16(data, offset) & 0x0fff;
                }
                ty = be16(data, offset + 2);
                offset += 4;
                tags += 1;
                continue;
            }
            _ => {}
        }
        shims += 1;
        if shims > MAX_SHIMS {
            return Err(too_deep(Layer::Link));
        }
        match ty {
            ty::MPLS | ty::MPLS_MULTICAST => {
                // Labels up to the one with the bottom-of-stack bit.
                loop {
                    if labels == MAX_LABELS {
                        return Err(too_deep(Layer::Mpls));
                    }
                    need(Layer::Mpls, data, offset + 4, wire)?;
                    let entry = u32::from_be_bytes([
                        data[offset],
                        data[offset + 1],
                        data[offset + 2],
                        data[offset + 3],
                    ]);
                    offset += 4;
                    labels += 1;
                    if entry >> 12 == GAL {
                        return Err(Skip::NonIp(NonIp::Other));
                    }
                    if entry & 0x100 != 0 {
                        break;
                    }
                }
                // What follows the stack says what it is by its first
                // nibble: 4 and 6 are IP, 1 an associated channel. A
                // pseudo-wire's Ethernet frame may come after a control
                // word (first nibble 0, RFC 4385) or without one: the one
                // reading that finds an EtherType we know after the two
                // addresses wins, the control word first (Wireshark guesses
                // by the addresses' vendors instead; see tests/captures).
                need(Layer::Mpls, data, offset + 1, wire)?;
                match data[offset] >> 4 {
                    4 => ty = ethertype::IPV4,
                    6 => ty = ethertype::IPV6,
                    1 => return Err(Skip::NonIp(NonIp::Other)),
                    nibble => {
                        let at = |eth: usize| {
                            (data.len() >= eth + 14 && followed(be16(data, eth + 12)))
                                .then_some(eth)
                        };
                        let cw = if nibble == 0 { at(offset + 4) } else { None };
                        let Some(eth) = cw.or_else(|| at(offset)) else {
                            if nibble == 0 {
                                need(Layer::Mpls, data, offset + 4 + 14, wire)?;
                            }
                            return Err(Skip::NonIp(NonIp::Other));
                        };
                        ty = be16(data, eth + 12);
                        offset = eth + 14;
                        continue;
                    }
                }
                break;
            }
            ty::PPPOE_SESSION => {
                // Version and type (0x11), code (0 for session data),
                // session id, length; then the PPP protocol.
                need(Layer::Pppoe, data, offset + 8, wire)?;
                if data[offset] != 0x11 {
                    return Err(Skip::Malformed(Malformed::new(
                        Layer::Pppoe,
                        Problem::BadVersion,
                    )));
                }
                ty = match be16(data, offset + 6) {
                    PPP_IPV4 => ethertype::IPV4,
                    PPP_IPV6 => ethertype::IPV6,
                    _ => return Err(Skip::NonIp(NonIp::Other)),
                };
                offset += 8;
                break;
            }
            ty::PPPOE_DISCOVERY => return Err(Skip::NonIp(NonIp::Other)),
            ty::PBB_ITAG => {
                // I-TAG (4), customer destination and source (12), then
                // the customer frame's EtherType.
                need(Layer::Link, data, offset + 18, wire)?;
                ty = be16(data, offset + 16);
                offset += 18;
            }
            ty::VNTAG => {
                need(Layer::Link, data, offset + 6, wire)?;
                ty = be16(data, offset + 4);
                offset += 6;
            }
            ty::ETAG => {
                need(Layer::Link, data, offset + 8, wire)?;
                ty = be16(data, offset + 6);
                offset += 8;
            }
            0..=1500 => {
                // An 802.3 length: LLC follows. SNAP with an EtherType OUI
                // (RFC 1042, 802.1H) carries an EtherType; other LLC frames
                // (STP, IPX, ...) carry no IP.
                if data.len() < offset + 3 || data[offset..offset + 3] != [0xaa, 0xaa, 0x03] {
                    return Err(Skip::NonIp(NonIp::Other));
                }
                need(Layer::Link, data, offset + 8, wire)?;
                if !matches!(data[offset + 3..offset + 6], [0, 0, 0] | [0, 0, 0xf8]) {
                    return Err(Skip::NonIp(NonIp::Other));
                }
                ty = be16(data, offset + 6);
                offset += 8;
            }
            _ => return Err(Skip::NonIp(NonIp::Other)),
        }
    }
    Ok(L3Start {
        ethertype: ty,
        offset,
        vlan,
        direction: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::*;
    use super::super::{LinkType, Meta, Summary, parse, proto};
    use super::*;

    fn run(f: &[u8]) -> Result<Summary, Skip> {
        parse(
            LinkType::Ethernet,
            f,
            Meta {
                wire_len: f.len() as u32,
                ..Meta::default()
            },
        )
    }

    fn mpls(labels: &[u32]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            let bos = u32::from(i + 1 == labels.len()) << 8;
            v.extend_from_slice(&((l << 12) | bos | 64).to_be_bytes());
        }
        v
    }

    #[test]
    fn mpls_label_stack_then_ipv4_or_ipv6() {
        let ip = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 53, 20);
        let mut p = mpls(&[100, 200, 300]);
        p.extend_from_slice(&ip);
        let s = run(&eth(ty::MPLS, &p)).unwrap();
        assert_eq!(s.src.to_string(), "10.0.0.1");
        assert_eq!(s.l3_len as usize, ip.len());
        assert_eq!(s.dst_port, 53);
        let ip6 = ipv6_tcp(1, 2, 1000, 443, 0x02);
        let mut p = mpls(&[16]);
        p.extend_from_slice(&ip6);
        let s = run(&eth(ty::MPLS, &p)).unwrap();
        assert_eq!(s.proto, proto::TCP);
        assert_eq!(s.l3_len as usize, ip6.len());
    }

    #[test]
    fn mpls_pseudowire_with_control_word_carries_ethernet() {
        let ip = ipv4_udp([10, 0, 0, 3], [10, 0, 0, 4], 1, 9, 30);
        let mut p = mpls(&[1000, 2000]);
        p.extend_from_slice(&[0, 0, 0, 7]); // control word
        p.extend_from_slice(&vlan_eth(&[ethertype::VLAN], ethertype::IPV4, &ip));
        let s = run(&eth(ty::MPLS, &p)).unwrap();
        assert_eq!(s.src.to_string(), "10.0.0.3");
        assert_eq!(s.l3_len as usize, ip.len());
        assert_eq!(s.vlan, 100, "the pseudo-wire frame's tag");
    }

    #[test]
    fn mpls_pseudowire_without_control_word() {
        let ip = ipv4_udp([10, 0, 0, 5], [10, 0, 0, 6], 1, 9, 30);
        // A destination address starting with nibble 0 (00:1b:...) and one
        // starting with 5: both without a control word.
        for first in [0x00u8, 0x52] {
            let mut inner = eth(ethertype::IPV4, &ip);
            inner[0] = first;
            let mut p = mpls(&[77]);
            p.extend_from_slice(&inner);
            let s = run(&eth(ty::MPLS, &p)).unwrap();
            assert_eq!(s.src.to_string(), "10.0.0.5", "first byte {first:#x}");
        }
    }

    #[test]
    fn mpls_without_ip_and_too_deep_stacks() {
        let mut p = mpls(&[GAL]);
        p.extend_from_slice(&[0x10, 0, 0, 1]);
        assert_eq!(run(&eth(ty::MPLS, &p)), Err(Skip::NonIp(NonIp::Other)));
        let mut p = mpls(&[5]);
        p.extend_from_slice(&[0x90, 0, 0, 1]);
        assert_eq!(run(&eth(ty::MPLS, &p)), Err(Skip::NonIp(NonIp::Other)));
        let labels: Vec<u32> = (16..16 + MAX_LABELS as u32 + 1).collect();
        let mut p = mpls(&labels);
        p.extend_from_slice(&ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 3));
        assert_eq!(run(&eth(ty::MPLS, &p)), Err(too_deep(Layer::Mpls)));
        // A stack cut by the snap length.
        let f = eth(ty::MPLS, &mpls(&[1, 2, 3]));
        let m = run(&f[..20]);
        assert_eq!(
            m,
            Err(Skip::Malformed(Malformed::new(
                Layer::Mpls,
                Problem::Truncated
            )))
        );
    }

    fn pppoe(ppp: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x11, 0x00, 0x12, 0x34];
        p.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        p.extend_from_slice(&ppp.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn pppoe_sessions_carry_ipv4_and_ipv6() {
        let ip = ipv4_udp([100, 64, 0, 1], [8, 8, 8, 8], 1, 53, 40);
        let s = run(&eth(ty::PPPOE_SESSION, &pppoe(PPP_IPV4, &ip))).unwrap();
        assert_eq!(s.src.to_string(), "100.64.0.1");
        assert_eq!(s.l3_len as usize, ip.len());
        let ip6 = ipv6_tcp(1, 2, 5, 80, 0x02);
        let s = run(&eth(ty::PPPOE_SESSION, &pppoe(PPP_IPV6, &ip6))).unwrap();
        assert_eq!(s.dst_port, 80);
        // LCP and discovery frames carry no IP.
        assert_eq!(
            run(&eth(ty::PPPOE_SESSION, &pppoe(0xc021, &[1, 2, 3, 4]))),
            Err(Skip::NonIp(NonIp::Other))
        );
        assert_eq!(
            run(&eth(ty::PPPOE_DISCOVERY, &[0x11, 0x09, 0, 0, 0, 0])),
            Err(Skip::NonIp(NonIp::Other))
        );
        let mut bad = pppoe(PPP_IPV4, &ip);
        bad[0] = 0x22;
        assert_eq!(
            run(&eth(ty::PPPOE_SESSION, &bad)),
            Err(Skip::Malformed(Malformed::new(
                Layer::Pppoe,
                Problem::BadVersion
            )))
        );
    }

    #[test]
    fn llc_snap_carries_an_ethertype_other_llc_does_not() {
        let ip = ipv4_udp([10, 1, 1, 1], [10, 1, 1, 2], 1, 2, 10);
        let mut p = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        p.extend_from_slice(&ip);
        let len = p.len() as u16;
        let s = run(&eth(len, &p)).unwrap();
        assert_eq!(s.src.to_string(), "10.1.1.1");
        assert_eq!(s.l3_len as usize, ip.len());
        // STP (LLC 42 42 03) and SNAP with a vendor OUI.
        assert_eq!(
            run(&eth(38, &[0x42, 0x42, 0x03, 0, 0, 0])),
            Err(Skip::NonIp(NonIp::Other))
        );
        assert_eq!(
            run(&eth(38, &[0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x20, 0, 0])),
            Err(Skip::NonIp(NonIp::Other))
        );
    }

    #[test]
    fn pbb_vntag_and_etag_before_the_inner_frame() {
        let ip = ipv6_tcp(3, 4, 1, 22, 0x02);
        // B-TAG, I-TAG, customer MACs, C-TAG, IPv6.
        let mut p = vec![0x00, 0x01, 0x00, 0x02];
        p.extend_from_slice(&[0x02, 0, 0, 0, 0, 9, 0x02, 0, 0, 0, 0, 8]);
        p.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        p.extend_from_slice(&[0x00, 0x07]);
        p.extend_from_slice(&ethertype::IPV6.to_be_bytes());
        p.extend_from_slice(&ip);
        let f = vlan_eth(&[ethertype::QINQ], ty::PBB_ITAG, &p);
        let s = run(&f).unwrap();
        assert_eq!(s.dst_port, 22);
        assert_eq!(s.vlan, 100, "the backbone tag is the outermost");
        assert_eq!(s.l3_len as usize, ip.len());

        let ip4 = ipv4_udp([10, 2, 2, 2], [10, 2, 2, 3], 1, 2, 3);
        let mut p = vec![0x80, 0x01, 0x00, 0x02];
        p.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        p.extend_from_slice(&ip4);
        let s = run(&eth(ty::VNTAG, &p)).unwrap();
        assert_eq!(s.src.to_string(), "10.2.2.2");
        let mut p = vec![0, 0, 0, 0, 0, 0];
        p.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        p.extend_from_slice(&ip4);
        let s = run(&eth(ty::ETAG, &p)).unwrap();
        assert_eq!(s.l3_len as usize, ip4.len());
    }

    #[test]
    fn every_cut_of_every_shim_is_an_error_or_a_summary() {
        let ip = ipv4_tcp([1, 2, 3, 4], [5, 6, 7, 8], 1, 80, 0x02);
        let mut pw = mpls(&[1, 2]);
        pw.extend_from_slice(&[0, 0, 0, 0]);
        pw.extend_from_slice(&eth(ethertype::IPV4, &ip));
        let mut snap = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        snap.extend_from_slice(&ip);
        let frames = [
            eth(ty::MPLS, &pw),
            eth(ty::PPPOE_SESSION, &pppoe(PPP_IPV4, &ip)),
            eth(snap.len() as u16, &snap),
        ];
        for f in frames {
            for cut in 0..f.len() {
                let _ = parse(
                    LinkType::Ethernet,
                    &f[..cut],
                    Meta {
                        wire_len: f.len() as u32,
                        ..Meta::default()
                    },
                );
                let _ = run(&f[..cut]);
            }
        }
    }
}
