//! The packet parser: from a captured frame to one small [`Summary`].
//!
//! # Contract
//!
//! Input is untrusted bytes, cut at an arbitrary snap length. Every header
//! view in this module is built with `new_checked`, which verifies the
//! buffer is long enough for the fixed header and that the header's own
//! length fields agree with each other and with the buffer; after it returns
//! `Ok`, no accessor of that view panics. Nothing here allocates, copies
//! packet bytes, or panics on any input (the fuzz target `parse` holds us to
//! that).
//!
//! A problem is a [`Malformed`] value naming the layer and what was wrong.
//! A header cut short is told apart by cause: `Snapped` when the capture's
//! snap length cut it (the packet on the wire was longer than what we got;
//! raise `capture.snaplen`), `Truncated` when the packet itself ended inside
//! the header (a broken packet). Problems at or below the IP header make the
//! packet unusable ([`Skip::Malformed`]); problems above it (a cut transport
//! header, a broken extension header) still yield a [`Summary`] with the
//! addresses and length, the problem noted in [`Summary::anomaly`], so that
//! byte counts stay exact.
//!
//! Lengths: [`Summary::l3_len`] is the frame's original length on the wire
//! minus the link-layer header, i.e. the IP packet as the original
//! TrafficAlerted counts it (padding of minimum-size Ethernet frames
//! included), never the captured length.

mod addr;
mod ethernet;
pub(crate) mod icmp;
mod ipv4;
mod ipv6;
mod link;
mod sctp;
mod shim;
mod tcp;
mod tunnel;
mod udp;

pub use addr::Addr;
pub use tunnel::Decap;

use std::fmt;

/// How the captured bytes of a frame begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// Ethernet II, with 802.1Q / 802.1ad tags inline. Linux loopback
    /// interfaces use this too.
    Ethernet,
    /// No link header: the IP header comes first (tun, WireGuard).
    RawIp,
    /// Linux cooked capture v1 (pcap LINKTYPE_LINUX_SLL).
    LinuxSll,
    /// Linux cooked capture v2 (pcap LINKTYPE_LINUX_SLL2).
    LinuxSll2,
    /// BSD loopback: a 4-byte address family in the writer's byte order
    /// (pcap LINKTYPE_NULL).
    Null,
    /// OpenBSD loopback: a 4-byte address family in network order (pcap
    /// LINKTYPE_LOOP).
    Loop,
    /// A link type we have no parser for: rely on the EtherType and network
    /// header offset the kernel reported for the frame ([`Meta::protocol`],
    /// [`Meta::net_offset`]).
    Kernel,
}

impl LinkType {
    /// The link type of a live interface from its ARPHRD_* hardware type.
    pub fn from_arphrd(hatype: u16) -> LinkType {
        use tpacket::arphrd;
        match hatype {
            arphrd::ETHER | arphrd::LOOPBACK => LinkType::Ethernet,
            arphrd::NONE | arphrd::RAWIP => LinkType::RawIp,
            _ => LinkType::Kernel,
        }
    }
}

/// Whether a packet arrived at or left the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    In,
    Out,
}

/// What the capture knows about a frame besides its bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    /// Original length of the frame on the wire.
    pub wire_len: u32,
    /// A VLAN id stripped into the frame header (0 = none).
    pub vlan: u16,
    pub direction: Direction,
    /// EtherType the kernel saw; used by [`LinkType::Kernel`] only.
    pub protocol: u16,
    /// Offset of the network header; used by [`LinkType::Kernel`] only.
    pub net_offset: u16,
}

/// What a packet does in a conversation, as far as its headers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Opens or attempts a conversation: TCP SYN without ACK, UDP, SCTP
    /// INIT, ICMP echo or timestamp request.
    Initiation,
    /// Answers one: TCP SYN-ACK, SCTP INIT-ACK, ICMP echo reply.
    Reply,
    /// Refuses one: TCP RST, SCTP ABORT, ICMP destination unreachable.
    Refusal,
    /// Any other ICMP error (time exceeded, parameter problem, ...).
    Error,
    /// Everything else: data, acknowledgements, unknown protocols.
    #[default]
    Other,
}

/// Well-known IP protocol numbers.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT: u8 = 59;
    pub const SCTP: u8 = 132;
}

/// TCP flag bits as they sit in the header.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// The parse result of one IP packet: what the counters and detectors need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub src: Addr,
    pub dst: Addr,
    /// Layer-3 length: original frame length minus the link header.
    pub l3_len: u32,
    /// IP protocol after any IPv6 extension headers ([`proto`]).
    pub proto: u8,
    /// Source port (TCP, UDP, SCTP), else 0.
    pub src_port: u16,
    /// Destination port (TCP, UDP, SCTP), else 0.
    pub dst_port: u16,
    /// TCP flags ([`tcp_flags`]), else 0.
    pub tcp_flags: u8,
    /// ICMP or ICMPv6 type and code, else 0.
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub role: Role,
    /// True when `src_port`/`dst_port` are real ports.
    pub has_ports: bool,
    /// True for an IP fragment other than the first: no transport header.
    pub later_fragment: bool,
    /// True for any IP fragment, the first (more fragments follow) or a
    /// later one.
    pub fragment: bool,
    /// Outermost VLAN id, stripped or inline (0 = none).
    pub vlan: u16,
    /// Where the transport header starts, from the IP header (0 for a
    /// later fragment or a chain that did not reach it).
    pub l4_offset: u16,
    pub direction: Direction,
    /// A problem above the IP header; the addresses and length are sound.
    pub anomaly: Option<Malformed>,
    /// For a packet taken out of a tunnel ([`Decap`]): the tunnel packet's
    /// layer-3 length, counted as tunnel bytes (0 = not tunnelled).
    pub tunnel_len: u32,
}

/// Why a frame yields no [`Summary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A well-formed frame that carries no IP packet.
    NonIp(NonIp),
    /// A frame broken at or below the IP header.
    Malformed(Malformed),
    /// A tunnel packet looked into ([`Decap`]) that holds no countable IP
    /// packet: its bytes are tunnel bytes, the inside is counted by why.
    Tunneled { tunnel_len: u32, inner: TunnelSkip },
}

/// What was inside a tunnel that held no countable IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelSkip {
    NonIp(NonIp),
    Malformed(Malformed),
}

/// Kinds of non-IP frames, counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonIp {
    Arp,
    /// Any other EtherType, 802.3 length frames, unknown address families.
    Other,
}

impl NonIp {
    pub const COUNT: usize = 2;
    pub const ALL: [NonIp; 2] = [NonIp::Arp, NonIp::Other];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            NonIp::Arp => "arp",
            NonIp::Other => "other",
        }
    }
}

/// The protocol layer a problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Link,
    Vlan,
    Ipv4,
    Ipv6,
    Ipv6Ext,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmpv6,
    Mpls,
    Pppoe,
    /// A tunnel header of decapsulated mirror traffic (VXLAN, GENEVE,
    /// GRE, ERSPAN).
    Tunnel,
}

impl Layer {
    pub const COUNT: usize = 13;
    pub const ALL: [Layer; 13] = [
        Layer::Link,
        Layer::Vlan,
        Layer::Ipv4,
        Layer::Ipv6,
        Layer::Ipv6Ext,
        Layer::Tcp,
        Layer::Udp,
        Layer::Sctp,
        Layer::Icmp,
        Layer::Icmpv6,
        Layer::Mpls,
        Layer::Pppoe,
        Layer::Tunnel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Vlan => "vlan",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6_ext",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Sctp => "sctp",
            Layer::Icmp => "icmp",
            Layer::Icmpv6 => "icmpv6",
            Layer::Mpls => "mpls",
            Layer::Pppoe => "pppoe",
            Layer::Tunnel => "tunnel",
        }
    }
}

/// What was wrong with a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The packet ended inside the header.
    Truncated,
    /// The capture's snap length cut the header.
    Snapped,
    /// The version field does not match the protocol the lower layer named.
    BadVersion,
    /// A header-length field is below the minimum or runs past the packet.
    BadHeaderLen,
    /// A total- or payload-length field disagrees with the frame.
    BadTotalLen,
    /// More stacked headers (VLAN tags, IPv6 extensions) than we follow.
    TooDeep,
    /// An IPv4 total length of 0 on a packet that fits in 64 KiB: a segment
    /// captured before TCP segmentation offload filled it in. Counted, with
    /// its length taken from the frame, as tshark does.
    ZeroTotalLen,
}

impl Problem {
    pub const COUNT: usize = 7;
    pub const ALL: [Problem; 7] = [
        Problem::Truncated,
        Problem::Snapped,
        Problem::BadVersion,
        Problem::BadHeaderLen,
        Problem::BadTotalLen,
        Problem::TooDeep,
        Problem::ZeroTotalLen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Problem::Truncated => "truncated",
            Problem::Snapped => "snapped",
            Problem::BadVersion => "bad_version",
            Problem::BadHeaderLen => "bad_header_len",
            Problem::BadTotalLen => "bad_total_len",
            Problem::TooDeep => "too_deep",
            Problem::ZeroTotalLen => "zero_total_len",
        }
    }
}

/// A problem found while parsing: where and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    pub layer: Layer,
    pub problem: Problem,
}

impl Malformed {
    /// Number of distinct (layer, problem) pairs, for counter arrays.
    pub const COUNT: usize = Layer::COUNT * Problem::COUNT;

    pub const fn new(layer: Layer, problem: Problem) -> Self {
        Malformed { layer, problem }
    }

    /// Index into a counter array of [`Malformed::COUNT`] slots.
    #[inline]
    pub fn index(self) -> usize {
        self.layer as usize * Problem::COUNT + self.problem as usize
    }

    /// The inverse of [`Malformed::index`].
    pub fn from_index(i: usize) -> Option<Malformed> {
        let layer = *Layer::ALL.get(i / Problem::COUNT)?;
        let problem = *Problem::ALL.get(i % Problem::COUNT)?;
        Some(Malformed { layer, problem })
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.layer.name(), self.problem.name())
    }
}

/// Decides between `Truncated` and `Snapped` for a header that does not fit
/// in the captured bytes: it is the snap length's doing when the packet on
/// the wire was longer than what was captured and long enough for the
/// header.
#[inline]
pub(crate) fn short(layer: Layer, need_end: usize, captured: usize, wire: usize) -> Malformed {
    if captured < wire && need_end <= wire {
        Malformed::new(layer, Problem::Snapped)
    } else {
        Malformed::new(layer, Problem::Truncated)
    }
}

/// Where the network layer starts and what it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct L3Start {
    pub ethertype: u16,
    pub offset: usize,
    pub vlan: u16,
    pub direction: Option<Direction>,
}

pub(crate) mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const IPV6: u16 = 0x86dd;
}

/// Parses one frame. `data` is what was captured (at most the snap length),
/// `meta.wire_len` the frame's length on the wire.
#[inline]
pub fn parse(link: LinkType, data: &[u8], meta: Meta) -> Result<Summary, Skip> {
    parse_with(link, data, meta, &Decap::NONE)
}

/// Like [`parse`], looking into the tunnels `decap` names: a packet of one
/// of them yields the packet inside, with [`Summary::tunnel_len`] set.
#[inline(always)]
pub fn parse_with(link: LinkType, data: &[u8], meta: Meta, decap: &Decap) -> Result<Summary, Skip> {
    let mut s = Summary::default();
    parse_into(link, data, meta, decap, &mut s)?;
    Ok(s)
}

/// [`parse_with`] into `s`, in place, where the summary is read later:
/// returned by value it was copied right after its fields were written
/// one by one, and the copy's loads stalled on those writes (a tenth of a
/// capture worker's time). On an error `s` holds nothing of use.
#[inline(always)]
pub fn parse_into(
    link: LinkType,
    data: &[u8],
    meta: Meta,
    decap: &Decap,
    s: &mut Summary,
) -> Result<(), Skip> {
    let wire = (meta.wire_len as usize).max(data.len());
    let start = match link {
        LinkType::Ethernet => ethernet::parse(data, wire)?,
        LinkType::RawIp => link::raw_ip(data, wire)?,
        LinkType::LinuxSll => link::sll(data, wire)?,
        LinkType::LinuxSll2 => link::sll2(data, wire)?,
        LinkType::Null => link::null(data, wire, false)?,
        LinkType::Loop => link::null(data, wire, true)?,
        LinkType::Kernel => link::kernel(data, wire, meta.protocol, meta.net_offset)?,
    };
    let vlan = if meta.vlan != 0 {
        meta.vlan
    } else {
        start.vlan
    };
    let direction = start.direction.unwrap_or(meta.direction);
    let l3 = data.get(start.offset..).unwrap_or(&[]);
    let l3_wire = wire - start.offset.min(wire);
    network(start.ethertype, l3, l3_wire, s)?;
    s.vlan = vlan;
    s.direction = direction;
    if decap.is_none() {
        return Ok(());
    }
    match decap.inner(s, l3, l3_wire) {
        None => Ok(()),
        Some(found) => {
            let tunnel_len = s.l3_len;
            let tunneled = |inner| Skip::Tunneled { tunnel_len, inner };
            let (kind, at) = found.map_err(|m| tunneled(TunnelSkip::Malformed(m)))?;
            let inner_data = l3.get(at..).unwrap_or(&[]);
            let inner_wire = l3_wire.saturating_sub(at).max(inner_data.len());
            let inner_skip = |e: Skip| match e {
                Skip::NonIp(k) => tunneled(TunnelSkip::NonIp(k)),
                Skip::Malformed(m) => tunneled(TunnelSkip::Malformed(m)),
                other => other,
            };
            let start = match kind {
                tunnel::Inner::Ethernet => ethernet::parse(inner_data, inner_wire),
                tunnel::Inner::Ip => link::raw_ip(inner_data, inner_wire),
            }
            .map_err(inner_skip)?;
            let il3 = inner_data.get(start.offset..).unwrap_or(&[]);
            let il3_wire = inner_wire - start.offset.min(inner_wire);
            network(start.ethertype, il3, il3_wire, s).map_err(inner_skip)?;
            s.vlan = if start.vlan != 0 { start.vlan } else { vlan };
            s.direction = direction;
            s.tunnel_len = tunnel_len;
            Ok(())
        }
    }
}

/// The network layer by its EtherType, into `s`.
#[inline]
fn network(ethertype: u16, l3: &[u8], l3_wire: usize, s: &mut Summary) -> Result<(), Skip> {
    match ethertype {
        ethertype::IPV4 => ipv4::parse_into(l3, l3_wire, s),
        ethertype::IPV6 => ipv6::parse_into(l3, l3_wire, s),
        ethertype::ARP => Err(Skip::NonIp(NonIp::Arp)),
        _ => Err(Skip::NonIp(NonIp::Other)),
    }
}

/// Parses the transport header that follows the IP header(s) into `s`.
/// `l4` is the captured transport bytes, `l4_wire` their length on the wire.
#[inline]
pub(crate) fn transport(s: &mut Summary, l4: &[u8], l4_wire: usize, v6: bool) {
    let r = match s.proto {
        proto::TCP => tcp::parse(s, l4, l4_wire),
        proto::UDP => udp::parse(s, l4, l4_wire),
        proto::SCTP => sctp::parse(s, l4, l4_wire),
        proto::ICMP if !v6 => icmp::parse_v4(s, l4, l4_wire),
        proto::ICMPV6 if v6 => icmp::parse_v6(s, l4, l4_wire),
        _ => Ok(()),
    };
    if let Err(m) = r {
        s.anomaly = Some(m);
    }
}

#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[cfg(test)]
pub(crate) mod testpkt;

#[cfg(test)]
mod tests {
    use super::testpkt::*;
    use super::*;

    fn meta(wire: usize) -> Meta {
        Meta {
            wire_len: wire as u32,
            ..Meta::default()
        }
    }

    #[test]
    fn malformed_index_round_trips() {
        for l in Layer::ALL {
            for p in Problem::ALL {
                let m = Malformed::new(l, p);
                assert_eq!(Malformed::from_index(m.index()), Some(m));
                assert!(m.index() < Malformed::COUNT);
            }
        }
        assert_eq!(Malformed::from_index(Malformed::COUNT), None);
    }

    #[test]
    fn ethernet_ipv4_udp() {
        let f = eth(
            ethertype::IPV4,
            &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 5000, 53, 100),
        );
        let s = parse(LinkType::Ethernet, &f, meta(f.len())).unwrap();
        assert_eq!(s.src.to_string(), "10.0.0.1");
        assert_eq!(s.dst.to_string(), "10.0.0.2");
        assert_eq!(s.l3_len, 20 + 8 + 100);
        assert_eq!((s.proto, s.src_port, s.dst_port), (proto::UDP, 5000, 53));
        assert_eq!(s.role, Role::Initiation);
        assert!(s.has_ports);
        assert_eq!(s.anomaly, None);
    }

    #[test]
    fn l3_len_comes_from_wire_length_not_snap() {
        let f = eth(
            ethertype::IPV4,
            &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 1400),
        );
        let snapped = &f[..96];
        let s = parse(LinkType::Ethernet, snapped, meta(f.len())).unwrap();
        assert_eq!(s.l3_len, 1428);
        assert!(s.has_ports);
    }

    #[test]
    fn ethernet_padding_is_counted_as_the_original_does() {
        // 20 + 8 + 4 = 32 bytes of IP in a 60-byte minimum frame.
        let mut f = eth(
            ethertype::IPV4,
            &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 4),
        );
        f.resize(60, 0);
        let s = parse(LinkType::Ethernet, &f, meta(60)).unwrap();
        assert_eq!(s.l3_len, 46);
    }

    #[test]
    fn arp_and_unknown_ethertypes_are_non_ip() {
        let f = eth(ethertype::ARP, &[0u8; 28]);
        assert_eq!(
            parse(LinkType::Ethernet, &f, meta(f.len())),
            Err(Skip::NonIp(NonIp::Arp))
        );
        let f = eth(0x88cc, &[0u8; 28]);
        assert_eq!(
            parse(LinkType::Ethernet, &f, meta(f.len())),
            Err(Skip::NonIp(NonIp::Other))
        );
    }

    #[test]
    fn stripped_vlan_from_frame_header_is_reported() {
        let f = eth(
            ethertype::IPV4,
            &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 10),
        );
        let m = Meta {
            wire_len: f.len() as u32,
            vlan: 42,
            ..Meta::default()
        };
        let s = parse(LinkType::Ethernet, &f, m).unwrap();
        assert_eq!(s.vlan, 42);
        assert_eq!(s.l3_len, 38);
    }

    #[test]
    fn kernel_link_type_uses_reported_offset() {
        let ip = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 10);
        let mut f = vec![0xaa; 4];
        f.extend_from_slice(&ip);
        let m = Meta {
            wire_len: f.len() as u32,
            protocol: ethertype::IPV4,
            net_offset: 4,
            ..Meta::default()
        };
        let s = parse(LinkType::Kernel, &f, m).unwrap();
        assert_eq!(s.l3_len, 38);
        assert_eq!(s.dst_port, 2);
    }

    #[test]
    fn wire_len_shorter_than_captured_is_treated_as_captured() {
        let f = eth(
            ethertype::IPV4,
            &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 10),
        );
        let s = parse(LinkType::Ethernet, &f, meta(3)).unwrap();
        assert_eq!(s.l3_len, 38);
    }

    #[test]
    fn every_truncation_of_a_frame_is_an_error_or_summary_never_a_panic() {
        let frames = [
            eth(
                ethertype::IPV4,
                &ipv4_tcp([1, 2, 3, 4], [5, 6, 7, 8], 1, 80, tcp_flags::SYN),
            ),
            eth(ethertype::IPV6, &ipv6_tcp(1, 2, 1, 443, tcp_flags::SYN)),
            vlan_eth(
                &[ethertype::QINQ, ethertype::VLAN],
                ethertype::IPV4,
                &ipv4_udp([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, 3),
            ),
        ];
        for f in frames {
            for cut in 0..f.len() {
                // Cut by the capture (wire length intact) and cut on the wire.
                let _ = parse(LinkType::Ethernet, &f[..cut], meta(f.len()));
                let r = parse(LinkType::Ethernet, &f[..cut], meta(cut));
                if let Ok(s) = r {
                    assert!(s.l3_len as usize <= cut);
                }
            }
        }
    }
}
