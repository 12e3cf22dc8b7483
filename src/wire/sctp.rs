//! SCTP: ports from the common header, the role from the first chunk.

use super::{Layer, Malformed, Role, Summary, be16, short};

/// Ports, verification tag, checksum.
pub const COMMON_HEADER_LEN: usize = 12;

mod chunk {
    pub const INIT: u8 = 1;
    pub const INIT_ACK: u8 = 2;
    pub const ABORT: u8 = 6;
}

/// A checked view of an SCTP common header.
#[derive(Debug, Clone, Copy)]
pub struct SctpHeader<'a> {
    buf: &'a [u8],
}

impl<'a> SctpHeader<'a> {
    pub fn new_checked(buf: &'a [u8], wire: usize) -> Result<Self, Malformed> {
        if buf.len() < COMMON_HEADER_LEN {
            return Err(short(Layer::Sctp, COMMON_HEADER_LEN, buf.len(), wire));
        }
        Ok(SctpHeader { buf })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buf, 0)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buf, 2)
    }

    /// Type of the first chunk, if captured.
    pub fn first_chunk(&self) -> Option<u8> {
        self.buf.get(COMMON_HEADER_LEN).copied()
    }
}

#[inline]
pub(crate) fn parse(s: &mut Summary, l4: &[u8], wire: usize) -> Result<(), Malformed> {
    let h = SctpHeader::new_checked(l4, wire)?;
    s.src_port = h.src_port();
    s.dst_port = h.dst_port();
    s.has_ports = true;
    s.role = match h.first_chunk() {
        Some(chunk::INIT) => Role::Initiation,
        Some(chunk::INIT_ACK) => Role::Reply,
        Some(chunk::ABORT) => Role::Refusal,
        _ => Role::Other,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Problem;
    use super::super::testpkt::sctp;
    use super::*;

    fn run(b: &[u8], wire: usize) -> Result<Summary, Malformed> {
        let mut s = Summary::default();
        parse(&mut s, b, wire).map(|_| s)
    }

    #[test]
    fn init_is_an_initiation() {
        let s = run(&sctp(5000, 3868, chunk::INIT), 16).unwrap();
        assert_eq!(
            (s.src_port, s.dst_port, s.role),
            (5000, 3868, Role::Initiation)
        );
        assert_eq!(
            run(&sctp(1, 2, chunk::INIT_ACK), 16).unwrap().role,
            Role::Reply
        );
        assert_eq!(
            run(&sctp(1, 2, chunk::ABORT), 16).unwrap().role,
            Role::Refusal
        );
        assert_eq!(run(&sctp(1, 2, 0), 16).unwrap().role, Role::Other);
    }

    #[test]
    fn chunk_not_captured_is_still_ports() {
        let s = run(&sctp(1, 2, chunk::INIT)[..12], 16).unwrap();
        assert_eq!((s.dst_port, s.role), (2, Role::Other));
    }

    #[test]
    fn short_header() {
        let b = sctp(1, 2, 1);
        assert_eq!(
            run(&b[..11], 11),
            Err(Malformed::new(Layer::Sctp, Problem::Truncated))
        );
    }
}
