//! Ethernet II frames and the 802.1Q / 802.1ad tags stacked in them.

use super::{L3Start, Layer, Skip, be16, short};

/// Destination, source, EtherType.
pub const HEADER_LEN: usize = 14;
mod field {
    pub const ETHERTYPE: usize = 12;
}

/// Walks the Ethernet header, and the tags and headers stacked after it
/// ([`super::shim`]), to the network layer.
#[inline]
pub(crate) fn parse(data: &[u8], wire: usize) -> Result<L3Start, Skip> {
    if data.len() < HEADER_LEN {
        return Err(Skip::Malformed(short(
            Layer::Link,
            HEADER_LEN,
            data.len(),
            wire,
        )));
    }
    super::shim::walk(data, HEADER_LEN, be16(data, field::ETHERTYPE), wire)
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::*;
    use super::super::{
        LinkType, Malformed, Meta, NonIp, Problem, ethertype, parse as parse_frame, proto,
    };
    use super::*;

    fn meta(len: usize) -> Meta {
        Meta {
            wire_len: len as u32,
            ..Meta::default()
        }
    }

    #[test]
    fn plain_frame_starts_network_layer_at_14() {
        let f = eth(ethertype::IPV4, &[0u8; 20]);
        let s = parse(&f, f.len()).unwrap();
        assert_eq!((s.ethertype, s.offset, s.vlan), (ethertype::IPV4, 14, 0));
    }

    #[test]
    fn single_8021q_tag() {
        let ip = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 10);
        let f = vlan_eth(&[ethertype::VLAN], ethertype::IPV4, &ip);
        let s = parse_frame(LinkType::Ethernet, &f, meta(f.len())).unwrap();
        assert_eq!(s.vlan, 100);
        assert_eq!(s.l3_len as usize, ip.len());
        assert_eq!(s.proto, proto::UDP);
    }

    #[test]
    fn qinq_reports_outer_tag_and_skips_both() {
        let ip = ipv6_tcp(1, 2, 1000, 22, 0x02);
        let f = vlan_eth(&[ethertype::QINQ, ethertype::VLAN], ethertype::IPV6, &ip);
        let s = parse_frame(LinkType::Ethernet, &f, meta(f.len())).unwrap();
        assert_eq!(s.vlan, 100);
        assert_eq!(s.l3_len as usize, ip.len());
        assert_eq!(s.dst_port, 22);
    }

    #[test]
    fn old_qinq_tpid_is_followed() {
        let f = vlan_eth(
            &[ethertype::QINQ_OLD, ethertype::VLAN],
            ethertype::ARP,
            &[0; 28],
        );
        assert_eq!(parse(&f, f.len()).unwrap().offset, 22);
    }

    #[test]
    fn too_many_tags_is_malformed() {
        let f = vlan_eth(&[ethertype::VLAN; 5], ethertype::IPV4, &[0u8; 20]);
        assert_eq!(
            parse(&f, f.len()).unwrap_err(),
            Skip::Malformed(Malformed::new(Layer::Vlan, Problem::TooDeep))
        );
        let f = vlan_eth(&[ethertype::VLAN; 4], ethertype::ARP, &[0u8; 28]);
        assert!(parse(&f, f.len()).is_ok());
    }

    #[test]
    fn short_frame_is_truncated_link() {
        assert_eq!(
            parse(&[0u8; 13], 13).unwrap_err(),
            Skip::Malformed(Malformed::new(Layer::Link, Problem::Truncated))
        );
    }

    #[test]
    fn tag_cut_by_snaplen_is_snapped() {
        let f = vlan_eth(&[ethertype::VLAN], ethertype::IPV4, &[0u8; 40]);
        assert_eq!(
            parse(&f[..16], f.len()).unwrap_err(),
            Skip::Malformed(Malformed::new(Layer::Vlan, Problem::Snapped))
        );
        assert_eq!(
            parse(&f[..16], 16).unwrap_err(),
            Skip::Malformed(Malformed::new(Layer::Vlan, Problem::Truncated))
        );
    }

    #[test]
    fn llc_length_field_is_non_ip() {
        let f = eth(0x0026, &[0x42; 38]);
        assert_eq!(parse(&f, f.len()).unwrap_err(), Skip::NonIp(NonIp::Other));
    }
}
