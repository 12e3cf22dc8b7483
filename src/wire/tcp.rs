//! TCP: ports, flags, and what the flags say about the conversation.

use super::{Layer, Malformed, Problem, Role, Summary, be16, short, tcp_flags};

pub const HEADER_LEN: usize = 20;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
}

/// A checked view of a TCP header.
#[derive(Debug, Clone, Copy)]
pub struct TcpHeader<'a> {
    buf: &'a [u8],
}

impl<'a> TcpHeader<'a> {
    /// Checks that the fixed header was captured and that its data offset
    /// is at least five words and within the segment's wire length.
    pub fn new_checked(buf: &'a [u8], wire: usize) -> Result<Self, Malformed> {
        if buf.len() < HEADER_LEN {
            return Err(short(Layer::Tcp, HEADER_LEN, buf.len(), wire));
        }
        let doff = usize::from(buf[field::DATA_OFFSET] >> 4) * 4;
        if doff < HEADER_LEN || doff > wire {
            return Err(Malformed::new(Layer::Tcp, Problem::BadHeaderLen));
        }
        Ok(TcpHeader { buf })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buf, field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buf, field::DST_PORT)
    }

    pub fn flags(&self) -> u8 {
        self.buf[field::FLAGS]
    }
}

/// What a segment's flags say: a SYN alone opens, SYN-ACK answers, RST
/// refuses (or tears down).
pub fn role(flags: u8) -> Role {
    let syn = flags & tcp_flags::SYN != 0;
    let ack = flags & tcp_flags::ACK != 0;
    if flags & tcp_flags::RST != 0 {
        Role::Refusal
    } else if syn && !ack {
        Role::Initiation
    } else if syn {
        Role::Reply
    } else {
        Role::Other
    }
}

#[inline]
pub(crate) fn parse(s: &mut Summary, l4: &[u8], wire: usize) -> Result<(), Malformed> {
    let t = TcpHeader::new_checked(l4, wire)?;
    s.src_port = t.src_port();
    s.dst_port = t.dst_port();
    s.tcp_flags = t.flags();
    s.has_ports = true;
    s.role = role(s.tcp_flags);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testpkt::tcp;
    use super::*;

    fn run(b: &[u8], wire: usize) -> Result<Summary, Malformed> {
        let mut s = Summary::default();
        parse(&mut s, b, wire).map(|_| s)
    }

    #[test]
    fn roles_from_flags() {
        use tcp_flags::*;
        assert_eq!(role(SYN), Role::Initiation);
        assert_eq!(role(SYN | ACK), Role::Reply);
        assert_eq!(role(RST), Role::Refusal);
        assert_eq!(role(RST | ACK), Role::Refusal);
        assert_eq!(role(ACK), Role::Other);
        assert_eq!(role(FIN | ACK), Role::Other);
        assert_eq!(role(PSH | ACK), Role::Other);
    }

    #[test]
    fn ports_and_flags() {
        let s = run(&tcp(1234, 80, tcp_flags::SYN | tcp_flags::ACK), 20).unwrap();
        assert_eq!((s.src_port, s.dst_port), (1234, 80));
        assert_eq!(s.tcp_flags, 0x12);
        assert!(s.has_ports);
        assert_eq!(s.role, Role::Reply);
    }

    #[test]
    fn short_header() {
        let t = tcp(1, 2, 0);
        assert_eq!(
            run(&t[..19], 19),
            Err(Malformed::new(Layer::Tcp, Problem::Truncated))
        );
        assert_eq!(
            run(&t[..19], 40),
            Err(Malformed::new(Layer::Tcp, Problem::Snapped))
        );
    }

    #[test]
    fn data_offset_rules() {
        let mut t = tcp(1, 2, 0);
        t[12] = 4 << 4;
        assert_eq!(
            run(&t, 20),
            Err(Malformed::new(Layer::Tcp, Problem::BadHeaderLen))
        );
        t[12] = 15 << 4; // 60-byte header in a 20-byte segment
        assert_eq!(
            run(&t, 20),
            Err(Malformed::new(Layer::Tcp, Problem::BadHeaderLen))
        );
        assert!(run(&t, 60).is_ok());
    }
}
