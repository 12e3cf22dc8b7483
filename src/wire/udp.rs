//! UDP: ports and a length check.

use super::{Layer, Malformed, Problem, Role, Summary, be16, short};

pub const HEADER_LEN: usize = 8;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
}

/// A checked view of a UDP header.
#[derive(Debug, Clone, Copy)]
pub struct UdpHeader<'a> {
    buf: &'a [u8],
}

impl<'a> UdpHeader<'a> {
    /// Checks that the header was captured. The length field is checked
    /// separately by [`UdpHeader::length_ok`]: a bad one still leaves usable
    /// ports.
    pub fn new_checked(buf: &'a [u8], wire: usize) -> Result<Self, Malformed> {
        if buf.len() < HEADER_LEN {
            return Err(short(Layer::Udp, HEADER_LEN, buf.len(), wire));
        }
        Ok(UdpHeader { buf })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buf, field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buf, field::DST_PORT)
    }

    /// The length field covers at least the header and at most the
    /// datagram's wire length (0 is allowed for IPv6 jumbograms).
    pub fn length_ok(&self, wire: usize) -> bool {
        let len = usize::from(be16(self.buf, field::LENGTH));
        (len >= HEADER_LEN && len <= wire) || (len == 0 && wire > usize::from(u16::MAX))
    }
}

#[inline]
pub(crate) fn parse(s: &mut Summary, l4: &[u8], wire: usize) -> Result<(), Malformed> {
    let u = UdpHeader::new_checked(l4, wire)?;
    s.src_port = u.src_port();
    s.dst_port = u.dst_port();
    s.has_ports = true;
    s.role = Role::Initiation;
    if !u.length_ok(wire) {
        return Err(Malformed::new(Layer::Udp, Problem::BadTotalLen));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::udp;
    use super::*;

    fn run(b: &[u8], wire: usize) -> (Summary, Result<(), Malformed>) {
        let mut s = Summary::default();
        let r = parse(&mut s, b, wire);
        (s, r)
    }

    #[test]
    fn ports_and_role() {
        let (s, r) = run(&udp(5353, 53, 20), 28);
        assert!(r.is_ok());
        assert_eq!(
            (s.src_port, s.dst_port, s.role),
            (5353, 53, Role::Initiation)
        );
    }

    #[test]
    fn short_header() {
        let u = udp(1, 2, 0);
        assert_eq!(
            run(&u[..7], 7).1,
            Err(Malformed::new(Layer::Udp, Problem::Truncated))
        );
        assert_eq!(
            run(&u[..7], 8).1,
            Err(Malformed::new(Layer::Udp, Problem::Snapped))
        );
    }

    #[test]
    fn bad_length_keeps_ports() {
        let mut u = udp(1, 2, 10);
        u[4..6].copy_from_slice(&3u16.to_be_bytes());
        let (s, r) = run(&u, 18);
        assert_eq!(r, Err(Malformed::new(Layer::Udp, Problem::BadTotalLen)));
        assert!(s.has_ports);
        u[4..6].copy_from_slice(&100u16.to_be_bytes());
        assert!(run(&u, 18).1.is_err());
    }
}
