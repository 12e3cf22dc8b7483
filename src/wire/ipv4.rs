//! IPv4 headers: options skipped, fragments told apart, AH followed.

use super::{Addr, Layer, Malformed, Problem, Skip, Summary, be16, proto, short, transport};

pub const HEADER_LEN: usize = 20;

mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const FRAG: usize = 6;
    pub const PROTOCOL: usize = 9;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// A checked view of an IPv4 header.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<'a> {
    buf: &'a [u8],
    header_len: usize,
    /// Length of the packet per its header (or the wire, for GSO packets
    /// whose total length field is 0).
    packet_len: usize,
    /// The total length field is 0 on a packet of at most 64 KiB: it was
    /// captured before segmentation offload filled the field in.
    length_unset: bool,
}

impl<'a> Ipv4Packet<'a> {
    /// Checks the header against the captured bytes `buf` and the packet's
    /// length on the wire `wire`: version, header length, total length.
    pub fn new_checked(buf: &'a [u8], wire: usize) -> Result<Self, Malformed> {
        if buf.len() < HEADER_LEN {
            return Err(short(Layer::Ipv4, HEADER_LEN, buf.len(), wire));
        }
        if buf[field::VER_IHL] >> 4 != 4 {
            return Err(Malformed::new(Layer::Ipv4, Problem::BadVersion));
        }
        let header_len = usize::from(buf[field::VER_IHL] & 0x0f) * 4;
        if header_len < HEADER_LEN || header_len > wire {
            return Err(Malformed::new(Layer::Ipv4, Problem::BadHeaderLen));
        }
        let total = usize::from(be16(buf, field::TOTAL_LEN));
        let packet_len = if total == 0 {
            // BIG TCP: a GSO packet over 64 KiB carries 0 here; so does a
            // TSO segment captured on the sending host before the NIC
            // filled the length in. The frame says how long it is.
            wire
        } else if total < header_len || total > wire {
            return Err(Malformed::new(Layer::Ipv4, Problem::BadTotalLen));
        } else {
            total
        };
        if buf.len() < header_len {
            return Err(short(Layer::Ipv4, header_len, buf.len(), wire));
        }
        Ok(Ipv4Packet {
            buf,
            header_len,
            packet_len,
            length_unset: total == 0 && wire <= usize::from(u16::MAX),
        })
    }

    pub fn src(&self) -> [u8; 4] {
        let b = &self.buf[field::SRC];
        [b[0], b[1], b[2], b[3]]
    }

    pub fn dst(&self) -> [u8; 4] {
        let b = &self.buf[field::DST];
        [b[0], b[1], b[2], b[3]]
    }

    pub fn protocol(&self) -> u8 {
        self.buf[field::PROTOCOL]
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(be16(self.buf, field::FRAG) & 0x1fff) * 8
    }

    /// More fragments follow (MF).
    pub fn more_fragments(&self) -> bool {
        be16(self.buf, field::FRAG) & 0x2000 != 0
    }

    /// The captured part of the payload, within the packet's length.
    pub fn payload(&self) -> &'a [u8] {
        let end = self.packet_len.min(self.buf.len());
        &self.buf[self.header_len.min(end)..end]
    }

    /// The payload's length on the wire.
    pub fn payload_len(&self) -> usize {
        self.packet_len - self.header_len
    }
}

/// [`parse_into`], the summary returned.
#[cfg(test)]
pub(crate) fn parse(l3: &[u8], wire: usize) -> Result<Summary, Skip> {
    let mut s = Summary::default();
    parse_into(l3, wire, &mut s)?;
    Ok(s)
}

/// Parses an IPv4 packet starting at `l3` into `s`, in place
/// ([`super::parse_into`]); `wire` is its length on the wire
/// from the IP header on (padding included).
#[inline]
pub(crate) fn parse_into(l3: &[u8], wire: usize, s: &mut Summary) -> Result<(), Skip> {
    let p = Ipv4Packet::new_checked(l3, wire).map_err(Skip::Malformed)?;
    *s = Summary {
        src: Addr::from_v4(p.src()),
        dst: Addr::from_v4(p.dst()),
        l3_len: wire as u32,
        proto: p.protocol(),
        ..Summary::default()
    };
    s.fragment = p.more_fragments() || p.frag_offset() != 0;
    if p.frag_offset() != 0 {
        s.later_fragment = true;
        return Ok(());
    }
    let mut l4 = p.payload();
    let mut l4_wire = p.payload_len();
    if s.proto == proto::AH {
        match super::ipv6::skip_ah(l4, l4_wire) {
            Ok((next, len)) => {
                s.proto = next;
                l4 = &l4[len..];
                l4_wire -= len;
            }
            Err(m) => {
                s.anomaly = Some(m);
                return Ok(());
            }
        }
    }
    s.l4_offset = (l4.as_ptr() as usize - l3.as_ptr() as usize) as u16;
    transport(s, l4, l4_wire, false);
    if p.length_unset && s.anomaly.is_none() {
        s.anomaly = Some(Malformed::new(Layer::Ipv4, Problem::ZeroTotalLen));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::*;
    use super::super::{Role, tcp_flags};
    use super::*;

    fn run(p: &[u8]) -> Result<Summary, Skip> {
        parse(p, p.len())
    }

    fn err(l: Layer, p: Problem) -> Result<Summary, Skip> {
        Err(Skip::Malformed(Malformed::new(l, p)))
    }

    #[test]
    fn tcp_syn_is_an_initiation() {
        let s = run(&ipv4_tcp(
            [10, 0, 0, 1],
            [10, 0, 0, 9],
            4000,
            80,
            tcp_flags::SYN,
        ))
        .unwrap();
        assert_eq!(
            (s.src_port, s.dst_port, s.tcp_flags),
            (4000, 80, tcp_flags::SYN)
        );
        assert_eq!(s.role, Role::Initiation);
        assert_eq!(s.l3_len, 40);
    }

    #[test]
    fn options_are_skipped() {
        let p = ipv4_opts(
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            proto::UDP,
            &[1, 1, 1, 0, 7, 3, 4, 0],
            0,
            &udp(9, 10, 4),
        );
        let s = run(&p).unwrap();
        assert_eq!((s.src_port, s.dst_port), (9, 10));
        assert_eq!(s.l3_len as usize, 28 + 12);
    }

    #[test]
    fn first_fragment_carries_ports_later_ones_do_not() {
        // More-fragments set, offset 0.
        let first = ipv4_opts(
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            proto::UDP,
            &[],
            0x2000,
            &udp(5, 6, 100),
        );
        let s = run(&first).unwrap();
        assert!(s.has_ports && !s.later_fragment && s.fragment);
        assert_eq!(s.dst_port, 6);
        // Offset 185 * 8 bytes, payload is not a UDP header.
        let later = ipv4_opts(
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            proto::UDP,
            &[],
            185,
            &[0xee; 100],
        );
        let s = run(&later).unwrap();
        assert!(s.later_fragment && !s.has_ports && s.fragment);
        assert_eq!(s.dst_port, 0);
        assert_eq!(s.l3_len, 120);
    }

    #[test]
    fn ah_is_followed_to_the_transport() {
        let p = ipv4(
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            proto::AH,
            &ah(proto::TCP, 4, &tcp(1, 443, tcp_flags::SYN)),
        );
        let s = run(&p).unwrap();
        assert_eq!((s.proto, s.dst_port), (proto::TCP, 443));
    }

    #[test]
    fn unknown_protocol_is_counted_without_ports() {
        let s = run(&ipv4([1, 1, 1, 1], [2, 2, 2, 2], 47, &[0; 24])).unwrap();
        assert_eq!(s.proto, 47);
        assert!(!s.has_ports);
        assert_eq!(s.anomaly, None);
        assert_eq!(s.role, Role::Other);
    }

    #[test]
    fn short_header_truncated_or_snapped() {
        let p = ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 50);
        assert_eq!(run(&p[..19]), err(Layer::Ipv4, Problem::Truncated));
        assert_eq!(parse(&p[..19], p.len()), err(Layer::Ipv4, Problem::Snapped));
    }

    #[test]
    fn wrong_version() {
        let mut p = ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 5);
        p[0] = 0x65;
        assert_eq!(run(&p), err(Layer::Ipv4, Problem::BadVersion));
    }

    #[test]
    fn ihl_below_five() {
        let mut p = ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 5);
        p[0] = 0x44;
        assert_eq!(run(&p), err(Layer::Ipv4, Problem::BadHeaderLen));
    }

    #[test]
    fn ihl_beyond_packet() {
        let mut p = ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0);
        p[0] = 0x4f; // 60-byte header in a 28-byte packet
        assert_eq!(run(&p), err(Layer::Ipv4, Problem::BadHeaderLen));
    }

    #[test]
    fn options_cut_by_snaplen() {
        let p = ipv4_opts(
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            proto::UDP,
            &[1; 8],
            0,
            &udp(9, 10, 40),
        );
        assert_eq!(parse(&p[..24], p.len()), err(Layer::Ipv4, Problem::Snapped));
    }

    #[test]
    fn total_length_beyond_wire() {
        let mut p = ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 10);
        p[2..4].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(run(&p), err(Layer::Ipv4, Problem::BadTotalLen));
    }

    #[test]
    fn total_length_below_header() {
        let mut p = ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 10);
        p[2..4].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(run(&p), err(Layer::Ipv4, Problem::BadTotalLen));
    }

    /// Regression (issue 10, item 10): a TSO segment captured before the NIC
    /// filled in its length was dropped as `ipv4_bad_total_len`.
    #[test]
    fn zero_total_length_takes_the_frame_length_and_is_noted() {
        let mut p = ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, tcp_flags::ACK);
        p.resize(1500, 0x41);
        p[2..4].copy_from_slice(&0u16.to_be_bytes());
        let s = run(&p).unwrap();
        assert_eq!(s.l3_len, 1500);
        assert_eq!(s.dst_port, 2);
        assert_eq!(
            s.anomaly,
            Some(Malformed::new(Layer::Ipv4, Problem::ZeroTotalLen))
        );
        // BIG TCP: over 64 KiB a 0 is how the length is written.
        let s = parse(&p, 100_000).unwrap();
        assert_eq!(s.l3_len, 100_000);
        assert_eq!(s.anomaly, None);
    }

    #[test]
    fn transport_cut_keeps_addresses_and_notes_the_anomaly() {
        let p = ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, tcp_flags::SYN);
        let s = parse(&p[..30], p.len()).unwrap();
        assert_eq!(s.l3_len, 40);
        assert!(!s.has_ports);
        assert_eq!(
            s.anomaly,
            Some(Malformed::new(Layer::Tcp, Problem::Snapped))
        );
    }
}
