//! Mirrored traffic that arrives in a tunnel: ERSPAN (types I/II and III)
//! and plain GRE or gretap, VXLAN (how cloud traffic mirroring delivers
//! it), GENEVE. When asked to ([`Decap`]), the parser counts the packet
//! inside instead of the tunnel's two endpoints; the tunnel's own bytes are
//! counted apart ([`Summary::tunnel_len`]).

use super::{Layer, Malformed, Problem, Summary, be16, ethertype, proto, short};

/// GRE protocol types.
const GRE_TEB: u16 = 0x6558;
const GRE_ERSPAN_2: u16 = 0x88be;
const GRE_ERSPAN_3: u16 = 0x22eb;

/// Most UDP ports one tunnel kind is listened for on.
pub const MAX_PORTS: usize = 4;

/// Which tunnels to look into. Copied into every worker; checked once per
/// packet that is UDP or GRE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decap {
    /// GRE carrying IP or Ethernet (gretap).
    pub gre: bool,
    /// ERSPAN over GRE, types I, II and III.
    pub erspan: bool,
    /// VXLAN on these UDP destination ports (0 = unused).
    pub vxlan: [u16; MAX_PORTS],
    /// GENEVE on these UDP destination ports (0 = unused).
    pub geneve: [u16; MAX_PORTS],
}

/// What a tunnel header says is inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inner {
    Ethernet,
    Ip,
}

impl Decap {
    pub const NONE: Decap = Decap {
        gre: false,
        erspan: false,
        vxlan: [0; MAX_PORTS],
        geneve: [0; MAX_PORTS],
    };

    /// True when no tunnel is looked into.
    #[inline]
    pub fn is_none(&self) -> bool {
        *self == Decap::NONE
    }

    /// Adds one entry of `capture.decapsulate`: `gre`, `erspan`,
    /// `vxlan[:PORT]` (4789), `geneve[:PORT]` (6081).
    pub fn add(&mut self, entry: &str) -> Result<(), String> {
        let (kind, port) = match entry.split_once(':') {
            Some((k, p)) => {
                let port: u16 = p
                    .parse()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| format!("{entry:?}: the port must be 1–65535"))?;
                (k, Some(port))
            }
            None => (entry, None),
        };
        let add_port = |ports: &mut [u16; MAX_PORTS], port: u16| -> Result<(), String> {
            if ports.contains(&port) {
                return Ok(());
            }
            match ports.iter_mut().find(|p| **p == 0) {
                Some(slot) => {
                    *slot = port;
                    Ok(())
                }
                None => Err(format!("at most {MAX_PORTS} ports per tunnel kind")),
            }
        };
        match (kind, port) {
            ("gre", None) => self.gre = true,
            ("erspan", None) => self.erspan = true,
            ("vxlan", p) => add_port(&mut self.vxlan, p.unwrap_or(4789))?,
            ("geneve", p) => add_port(&mut self.geneve, p.unwrap_or(6081))?,
            ("gre" | "erspan", Some(_)) => {
                return Err(format!("{entry:?}: GRE and ERSPAN have no port"));
            }
            _ => {
                return Err(format!(
                    "{entry:?} is not a tunnel this reads: \"gre\", \"erspan\", \"vxlan[:PORT]\", \"geneve[:PORT]\""
                ));
            }
        }
        Ok(())
    }

    /// The inner frame of an outer packet `s` whose IP header starts `l3`,
    /// if `s` is a tunnel packet to look into: its kind and offset in `l3`.
    /// `Err` is a tunnel header that is broken.
    #[inline]
    pub(crate) fn inner(
        &self,
        s: &Summary,
        l3: &[u8],
        l3_wire: usize,
    ) -> Option<Result<(Inner, usize), Malformed>> {
        if s.later_fragment || s.l4_offset == 0 {
            return None;
        }
        let l4 = usize::from(s.l4_offset);
        match s.proto {
            proto::UDP if s.has_ports => {
                let port = s.dst_port;
                if self.vxlan.contains(&port) {
                    Some(vxlan(l3, l4 + 8, l3_wire))
                } else if self.geneve.contains(&port) {
                    Some(geneve(l3, l4 + 8, l3_wire))
                } else {
                    None
                }
            }
            proto::GRE if self.gre || self.erspan => gre(self, l3, l4, l3_wire),
            _ => None,
        }
    }
}

fn need(l3: &[u8], end: usize, l3_wire: usize) -> Result<(), Malformed> {
    if l3.len() < end {
        Err(short(Layer::Tunnel, end, l3.len(), l3_wire))
    } else {
        Ok(())
    }
}

/// VXLAN (RFC 7348): flags with the I bit, VNI; an Ethernet frame follows.
fn vxlan(l3: &[u8], at: usize, l3_wire: usize) -> Result<(Inner, usize), Malformed> {
    need(l3, at + 8, l3_wire)?;
    if l3[at] & 0x08 == 0 {
        return Err(Malformed::new(Layer::Tunnel, Problem::BadVersion));
    }
    Ok((Inner::Ethernet, at + 8))
}

/// GENEVE (RFC 8926): version 0, options length in 4-byte words, protocol
/// type of what follows.
fn geneve(l3: &[u8], at: usize, l3_wire: usize) -> Result<(Inner, usize), Malformed> {
    need(l3, at + 8, l3_wire)?;
    if l3[at] >> 6 != 0 {
        return Err(Malformed::new(Layer::Tunnel, Problem::BadVersion));
    }
    let len = 8 + usize::from(l3[at] & 0x3f) * 4;
    need(l3, at + len, l3_wire)?;
    let inner = match be16(l3, at + 2) {
        GRE_TEB => Inner::Ethernet,
        ethertype::IPV4 | ethertype::IPV6 => Inner::Ip,
        _ => return Err(Malformed::new(Layer::Tunnel, Problem::BadVersion)),
    };
    Ok((inner, at + len))
}

/// GRE (RFC 2784/2890): flags (checksum, key, sequence number present),
/// version 0, protocol type; then what the protocol type says.
fn gre(
    d: &Decap,
    l3: &[u8],
    at: usize,
    l3_wire: usize,
) -> Option<Result<(Inner, usize), Malformed>> {
    if let Err(m) = need(l3, at + 4, l3_wire) {
        return Some(Err(m));
    }
    let flags = be16(l3, at);
    if flags & 0x7 != 0 {
        // Version 1 is PPTP's enhanced GRE: not a mirror.
        return None;
    }
    let has_seq = flags & 0x1000 != 0;
    let len = 4
        + if flags & 0x8000 != 0 { 4 } else { 0 }
        + if flags & 0x2000 != 0 { 4 } else { 0 }
        + if has_seq { 4 } else { 0 };
    let body = at + len;
    match be16(l3, at + 2) {
        GRE_TEB if d.gre => Some(need(l3, body, l3_wire).map(|()| (Inner::Ethernet, body))),
        ethertype::IPV4 | ethertype::IPV6 if d.gre => {
            Some(need(l3, body, l3_wire).map(|()| (Inner::Ip, body)))
        }
        // Type I has no sequence number and no ERSPAN header; type II
        // has both, the header 8 bytes.
        GRE_ERSPAN_2 if d.erspan => {
            let hdr = if has_seq { 8 } else { 0 };
            Some(need(l3, body + hdr, l3_wire).map(|()| (Inner::Ethernet, body + hdr)))
        }
        // Type III: 12 bytes, 8 more with the O flag; its frame type says
        // Ethernet (0) or IP (2).
        GRE_ERSPAN_3 if d.erspan => Some((|| {
            need(l3, body + 12, l3_wire)?;
            let last = l3[body + 11];
            let hdr = 12 + if last & 0x01 != 0 { 8 } else { 0 };
            need(l3, body + hdr, l3_wire)?;
            match (l3[body + 10] >> 2) & 0x1f {
                0 => Ok((Inner::Ethernet, body + hdr)),
                2 => Ok((Inner::Ip, body + hdr)),
                _ => Err(Malformed::new(Layer::Tunnel, Problem::BadVersion)),
            }
        })()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::*;
    use super::super::{LinkType, Meta, NonIp, Skip, TunnelSkip, parse_with};
    use super::*;

    fn decap(entries: &[&str]) -> Decap {
        let mut d = Decap::NONE;
        for e in entries {
            d.add(e).unwrap();
        }
        d
    }

    fn run(f: &[u8], d: &Decap) -> Result<Summary, Skip> {
        parse_with(
            LinkType::Ethernet,
            f,
            Meta {
                wire_len: f.len() as u32,
                ..Meta::default()
            },
            d,
        )
    }

    fn inner_frame() -> (Vec<u8>, Vec<u8>) {
        let ip = ipv4_tcp([192, 168, 5, 5], [192, 168, 6, 6], 40000, 443, 0x02);
        (eth(ethertype::IPV4, &ip), ip)
    }

    fn outer_udp(dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = udp(50000, dport, 0);
        u.truncate(8);
        u[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(payload);
        eth(
            ethertype::IPV4,
            &ipv4([172, 16, 0, 1], [172, 16, 0, 2], proto::UDP, &u),
        )
    }

    fn outer_gre(flags: u16, ptype: u16, extra: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut g = flags.to_be_bytes().to_vec();
        g.extend_from_slice(&ptype.to_be_bytes());
        g.extend_from_slice(extra);
        g.extend_from_slice(payload);
        eth(
            ethertype::IPV4,
            &ipv4([172, 16, 0, 1], [172, 16, 0, 2], proto::GRE, &g),
        )
    }

    fn check_inner(s: &Summary, outer: &[u8], inner_ip: &[u8]) {
        assert_eq!(s.src.to_string(), "192.168.5.5");
        assert_eq!(s.dst_port, 443);
        assert_eq!(s.l3_len as usize, inner_ip.len());
        assert_eq!(s.tunnel_len as usize, outer.len() - 14);
    }

    #[test]
    fn vxlan_on_its_port_only_when_asked() {
        let (frame, ip) = inner_frame();
        let mut v = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        v.extend_from_slice(&frame);
        let f = outer_udp(4789, &v);
        let s = run(&f, &decap(&["vxlan"])).unwrap();
        check_inner(&s, &f, &ip);
        // Not asked, another port, or no I flag: the outer packet.
        let s = run(&f, &Decap::NONE).unwrap();
        assert_eq!(s.src.to_string(), "172.16.0.1");
        assert_eq!(s.tunnel_len, 0);
        let s = run(&f, &decap(&["vxlan:8472"])).unwrap();
        assert_eq!(s.src.to_string(), "172.16.0.1");
        let mut bad = v.clone();
        bad[0] = 0;
        let f = outer_udp(4789, &bad);
        assert!(matches!(
            run(&f, &decap(&["vxlan"])),
            Err(Skip::Tunneled { .. })
        ));
    }

    #[test]
    fn geneve_with_options_carrying_ethernet() {
        let (frame, ip) = inner_frame();
        let mut g = vec![0x02, 0, 0x65, 0x58, 0, 0, 7, 0];
        g.extend_from_slice(&[0xaa; 8]); // two words of options
        g.extend_from_slice(&frame);
        let f = outer_udp(6081, &g);
        let s = run(&f, &decap(&["geneve"])).unwrap();
        check_inner(&s, &f, &ip);
    }

    #[test]
    fn gre_gretap_and_erspan_types() {
        let (frame, ip) = inner_frame();
        // gretap with a key.
        let f = outer_gre(0x2000, GRE_TEB, &[0, 0, 0, 9], &frame);
        check_inner(&run(&f, &decap(&["gre"])).unwrap(), &f, &ip);
        // GRE carrying IP directly.
        let f = outer_gre(0, ethertype::IPV4, &[], &ip);
        check_inner(&run(&f, &decap(&["gre"])).unwrap(), &f, &ip);
        // ERSPAN II: sequence number, 8-byte header.
        let mut e2 = vec![0x10, 0x01, 0x00, 0x05, 0, 0, 0, 0];
        e2.extend_from_slice(&frame);
        let f = outer_gre(0x1000, GRE_ERSPAN_2, &[0, 0, 0, 1], &e2);
        check_inner(&run(&f, &decap(&["erspan"])).unwrap(), &f, &ip);
        assert_eq!(
            run(&f, &decap(&["gre"])).unwrap().src.to_string(),
            "172.16.0.1",
            "ERSPAN is not plain GRE"
        );
        // ERSPAN III with the optional subheader.
        let mut e3 = vec![0x20, 0x01, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 0, 0x01];
        e3.extend_from_slice(&[0; 8]);
        e3.extend_from_slice(&frame);
        let f = outer_gre(0x1000, GRE_ERSPAN_3, &[0, 0, 0, 1], &e3);
        check_inner(&run(&f, &decap(&["erspan"])).unwrap(), &f, &ip);
        // ERSPAN III carrying IP (frame type 2).
        let mut e3 = vec![0x20, 0x01, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 2 << 2, 0];
        e3.extend_from_slice(&ip);
        let f = outer_gre(0x1000, GRE_ERSPAN_3, &[0, 0, 0, 1], &e3);
        check_inner(&run(&f, &decap(&["erspan"])).unwrap(), &f, &ip);
    }

    #[test]
    fn a_tunnel_of_non_ip_counts_its_bytes_and_the_inner_kind() {
        let arp = eth(ethertype::ARP, &[0u8; 28]);
        let mut v = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        v.extend_from_slice(&arp);
        let f = outer_udp(4789, &v);
        match run(&f, &decap(&["vxlan"])) {
            Err(Skip::Tunneled { inner, tunnel_len }) => {
                assert_eq!(inner, TunnelSkip::NonIp(NonIp::Arp));
                assert_eq!(tunnel_len as usize, f.len() - 14);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn entries_are_checked() {
        let mut d = Decap::NONE;
        assert!(d.add("vxlan:0").is_err());
        assert!(d.add("gre:5").is_err());
        assert!(d.add("ipip").is_err());
        for p in 1..=MAX_PORTS as u16 {
            d.add(&format!("vxlan:{p}")).unwrap();
        }
        assert!(d.add("vxlan:999").is_err());
        d.add("vxlan:1").unwrap();
    }

    #[test]
    fn every_cut_of_a_tunnel_is_an_error_or_a_summary() {
        let (frame, _) = inner_frame();
        let mut e3 = vec![0x20, 0x01, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 0, 0x01];
        e3.extend_from_slice(&[0; 8]);
        e3.extend_from_slice(&frame);
        let mut v = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        v.extend_from_slice(&frame);
        let all = decap(&["gre", "erspan", "vxlan", "geneve"]);
        for f in [
            outer_gre(0x1000, GRE_ERSPAN_3, &[0, 0, 0, 1], &e3),
            outer_udp(4789, &v),
        ] {
            for cut in 0..f.len() {
                let _ = run(&f[..cut], &all);
                let _ = parse_with(
                    LinkType::Ethernet,
                    &f[..cut],
                    Meta {
                        wire_len: cut as u32,
                        ..Meta::default()
                    },
                    &all,
                );
            }
        }
    }
}
