//! NetFlow v5: a 24-byte header and up to 30 fixed 48-byte IPv4 records.

use super::record::FlowRecord;
use super::{Decoded, Problem};
use crate::wire::{Addr, proto};

const HEADER: usize = 24;
const RECORD: usize = 48;
const MAX_RECORDS: usize = 30;

/// Decodes a v5 datagram; returns the sampling interval its header
/// declares (0 = not sampled or not said).
pub fn decode(d: &[u8], out: &mut Decoded) -> Result<u32, Problem> {
    if d.len() < HEADER {
        return Err(Problem::Truncated);
    }
    let count = usize::from(u16::from_be_bytes([d[2], d[3]]));
    if count == 0 || count > MAX_RECORDS {
        return Err(Problem::Length);
    }
    if d.len() < HEADER + count * RECORD {
        return Err(Problem::Truncated);
    }
    // Two bits of mode, fourteen of interval.
    let sampling = u32::from(u16::from_be_bytes([d[22], d[23]]) & 0x3fff);
    for rec in d[HEADER..HEADER + count * RECORD].chunks_exact(RECORD) {
        let be16 = |i: usize| u16::from_be_bytes([rec[i], rec[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
        let p = rec[38];
        let has_ports = matches!(p, proto::TCP | proto::UDP | proto::SCTP);
        let (sp, dp) = (be16(32), be16(34));
        let mut r = FlowRecord {
            src: Addr::from_v4([rec[0], rec[1], rec[2], rec[3]]),
            dst: Addr::from_v4([rec[4], rec[5], rec[6], rec[7]]),
            input_if: u32::from(be16(12)),
            output_if: u32::from(be16(14)),
            packets: u64::from(be32(16)),
            bytes: u64::from(be32(20)),
            tcp_flags: rec[37],
            proto: p,
            has_ports,
            ..FlowRecord::default()
        };
        if has_ports {
            (r.src_port, r.dst_port) = (sp, dp);
        } else if p == proto::ICMP {
            // Exporters put ICMP type and code in the destination port.
            (r.icmp_type, r.icmp_code) = ((dp >> 8) as u8, dp as u8);
        }
        out.push_record(&r);
    }
    Ok(sampling)
}
