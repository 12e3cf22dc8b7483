//! What every flow protocol decodes to, and how a record becomes the
//! [`Summary`] the shards count.

use crate::wire::{Addr, Role, Summary, proto, tcp_flags};

/// One flow record (or one sampled packet), before scaling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowRecord {
    pub src: Addr,
    pub dst: Addr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags: of the one packet (sFlow) or all packets ORed (NetFlow,
    /// IPFIX).
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub packets: u64,
    /// Layer-3 bytes, as the exporters count them.
    pub bytes: u64,
    pub input_if: u32,
    pub output_if: u32,
    /// A sampling interval carried in the record itself (0 = none).
    pub sampling: u32,
    pub fragment: bool,
    /// Ports are real (TCP, UDP, SCTP), not zero for want of them.
    pub has_ports: bool,
}

impl FlowRecord {
    /// The record as the shards count a packet: `l3_len` is left 0 (the
    /// caller passes packets and bytes), the role is what the flags and
    /// ports say of who started the conversation.
    pub fn summary(&self) -> Summary {
        let role = match self.proto {
            proto::TCP => tcp_role(self.tcp_flags, self.src_port, self.dst_port),
            proto::UDP => Role::Initiation,
            proto::ICMP => crate::wire::icmp::role_v4(self.icmp_type),
            proto::ICMPV6 => crate::wire::icmp::role_v6(self.icmp_type),
            _ => Role::Other,
        };
        Summary {
            src: self.src,
            dst: self.dst,
            proto: self.proto,
            src_port: self.src_port,
            dst_port: self.dst_port,
            tcp_flags: self.tcp_flags,
            icmp_type: self.icmp_type,
            icmp_code: self.icmp_code,
            role,
            has_ports: self.has_ports,
            fragment: self.fragment,
            ..Summary::default()
        }
    }
}

/// The role of a TCP flow from its ORed flags. A SYN without ACK never got
/// further (a scan's probe, a refused or unanswered connect); a flow with
/// both is either side of a conversation, and the side sending to the
/// lower port is taken for the client (the well-known port is the
/// server's). A reset without SYN refuses.
fn tcp_role(flags: u8, src_port: u16, dst_port: u16) -> Role {
    let syn = flags & tcp_flags::SYN != 0;
    let ack = flags & tcp_flags::ACK != 0;
    if syn && !ack {
        Role::Initiation
    } else if syn {
        if dst_port < src_port {
            Role::Initiation
        } else {
            Role::Reply
        }
    } else if flags & tcp_flags::RST != 0 {
        Role::Refusal
    } else {
        Role::Other
    }
}

/// Reads a big-endian unsigned number of 1 to 8 bytes (the reduced-size
/// encoding of RFC 7011 section 6.2); `None` for other lengths.
pub fn be_uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    Some(b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_roles_from_ored_flags() {
        use tcp_flags::*;
        assert_eq!(tcp_role(SYN, 40000, 22), Role::Initiation);
        assert_eq!(tcp_role(SYN | RST, 40000, 22), Role::Initiation);
        assert_eq!(tcp_role(SYN | ACK | FIN, 40000, 443), Role::Initiation);
        assert_eq!(tcp_role(SYN | ACK | FIN, 443, 40000), Role::Reply);
        assert_eq!(tcp_role(RST | ACK, 22, 40000), Role::Refusal);
        assert_eq!(tcp_role(ACK, 40000, 443), Role::Other);
    }

    #[test]
    fn reduced_size_numbers() {
        assert_eq!(be_uint(&[1, 2]), Some(0x102));
        assert_eq!(be_uint(&[0xff; 8]), Some(u64::MAX));
        assert_eq!(be_uint(&[]), None);
        assert_eq!(be_uint(&[0; 9]), None);
    }
}
