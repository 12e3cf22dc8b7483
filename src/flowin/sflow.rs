//! sFlow version 5 (sflow.org, sflow_version_5.txt): flow samples carry a
//! sampled packet's first bytes (parsed by [`crate::wire`] like a captured
//! frame) or its decoded IPv4/IPv6 header; counter samples carry an
//! interface's octet and packet counters.

use super::{Decoded, IfCounters, Problem};
use crate::wire::{Addr, Decap, LinkType, Meta, Summary, parse_with, proto};

/// Samples per datagram, at most: agents send a handful.
const MAX_SAMPLES: u32 = 1024;
/// Records per sample, at most.
const MAX_RECORDS: u32 = 64;

/// A reader over XDR: big-endian 32-bit words, opaque data padded to 4.
struct Xdr<'a>(&'a [u8]);

impl<'a> Xdr<'a> {
    fn u32(&mut self) -> Result<u32, Problem> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, Problem> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        if self.0.len() < n {
            return Err(Problem::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    /// An opaque of `n` bytes, padded to a multiple of four.
    fn opaque(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        let padded = n.checked_add(3).ok_or(Problem::Length)? & !3;
        Ok(&self.take(padded)?[..n])
    }

    /// A length-prefixed sub-structure.
    /// A count of items that follow, refused beyond `most`.
    fn count(&mut self, most: u32) -> Result<u32, Problem> {
        match self.u32()? {
            n if n > most => Err(Problem::Length),
            n => Ok(n),
        }
    }

    fn sub(&mut self) -> Result<Xdr<'a>, Problem> {
        let n = self.u32()? as usize;
        Ok(Xdr(self.opaque(n)?))
    }
}

/// Decodes one sFlow v5 datagram. The agent's address is in the datagram
/// (an agent may send from another address); the caller attributes by the
/// sender.
pub fn decode(d: &[u8], out: &mut Decoded) -> Result<(), Problem> {
    let mut x = Xdr(d);
    if x.u32()? != 5 {
        return Err(Problem::Version);
    }
    match x.u32()? {
        1 => drop(x.take(4)?),
        2 => drop(x.take(16)?),
        _ => return Err(Problem::Malformed),
    }
    let _sub_agent = x.u32()?;
    let _sequence = x.u32()?;
    let _uptime = x.u32()?;
    let samples = x.count(MAX_SAMPLES)?;
    for _ in 0..samples {
        let format = x.u32()?;
        let mut s = x.sub()?;
        // Enterprise 0: the standard sample formats; others are skipped.
        match format {
            1 => flow_sample(&mut s, false, out)?,
            3 => flow_sample(&mut s, true, out)?,
            2 => counter_sample(&mut s, false, out)?,
            4 => counter_sample(&mut s, true, out)?,
            _ => out.skipped += 1,
        }
    }
    Ok(())
}

/// Skips what every sample starts with: its sequence number and its data
/// source (one word, or type and index in the expanded formats).
fn sample_start(s: &mut Xdr<'_>, expanded: bool) -> Result<(), Problem> {
    let _sequence = s.u32()?;
    let _source = s.u32()?;
    if expanded {
        let _source_index = s.u32()?;
    }
    Ok(())
}

fn flow_sample(s: &mut Xdr<'_>, expanded: bool, out: &mut Decoded) -> Result<(), Problem> {
    sample_start(s, expanded)?;
    let rate = s.u32()?;
    let _pool = s.u32()?;
    let _drops = s.u32()?;
    let (input, output) = if expanded {
        let _fmt = s.u32()?;
        let i = s.u32()?;
        let _fmt = s.u32()?;
        (i, s.u32()?)
    } else {
        // The top two bits give the format; an index is the rest.
        (s.u32()? & 0x3fff_ffff, s.u32()? & 0x3fff_ffff)
    };
    let records = s.count(MAX_RECORDS)?;
    for _ in 0..records {
        let format = s.u32()?;
        let mut r = s.sub()?;
        let summary = match format {
            1 => raw_header(&mut r)?,
            3 => sampled_ip(&mut r, false)?,
            4 => sampled_ip(&mut r, true)?,
            // Extended records (switch, router, gateway, ...): nothing we
            // count.
            _ => continue,
        };
        let Some(summary) = summary else {
            out.skipped += 1;
            continue;
        };
        out.push_sample(&summary, rate, input, output);
        // One packet per sample: a second header record would count it
        // twice.
        break;
    }
    Ok(())
}

/// A sampled packet's first bytes, parsed like a captured frame.
fn raw_header(r: &mut Xdr<'_>) -> Result<Option<Summary>, Problem> {
    let protocol = r.u32()?;
    let frame_length = r.u32()?;
    let stripped = r.u32()?;
    let n = r.u32()? as usize;
    let header = r.opaque(n)?;
    let link = match protocol {
        1 => LinkType::Ethernet,
        11 | 12 => LinkType::RawIp,
        _ => return Ok(None),
    };
    // The frame's length counts what the agent stripped (the FCS) too.
    let meta = Meta {
        wire_len: frame_length.saturating_sub(stripped),
        ..Meta::default()
    };
    Ok(parse_with(link, header, meta, &Decap::NONE).ok())
}

/// A sampled packet given as its decoded IPv4 or IPv6 header.
fn sampled_ip(r: &mut Xdr<'_>, v6: bool) -> Result<Option<Summary>, Problem> {
    let length = r.u32()?;
    let protocol = r.u32()?;
    let (src, dst) = if v6 {
        let s: [u8; 16] = r.take(16)?.try_into().map_err(|_| Problem::Truncated)?;
        let d: [u8; 16] = r.take(16)?.try_into().map_err(|_| Problem::Truncated)?;
        (Addr::from_v6(s), Addr::from_v6(d))
    } else {
        let s: [u8; 4] = r.take(4)?.try_into().map_err(|_| Problem::Truncated)?;
        let d: [u8; 4] = r.take(4)?.try_into().map_err(|_| Problem::Truncated)?;
        (Addr::from_v4(s), Addr::from_v4(d))
    };
    let src_port = r.u32()?;
    let dst_port = r.u32()?;
    let flags = r.u32()?;
    let p = protocol as u8;
    let rec = super::record::FlowRecord {
        src,
        dst,
        proto: p,
        src_port: src_port as u16,
        dst_port: dst_port as u16,
        tcp_flags: flags as u8,
        has_ports: matches!(p, proto::TCP | proto::UDP | proto::SCTP),
        ..Default::default()
    };
    let mut s = rec.summary();
    // "length: the length of the IP packet excluding lower layer
    // encapsulations".
    s.l3_len = length;
    Ok(Some(s))
}

fn counter_sample(s: &mut Xdr<'_>, expanded: bool, out: &mut Decoded) -> Result<(), Problem> {
    sample_start(s, expanded)?;
    let records = s.count(MAX_RECORDS)?;
    for _ in 0..records {
        let format = s.u32()?;
        let mut r = s.sub()?;
        if format != 1 {
            continue;
        }
        // Generic interface counters.
        let if_index = r.u32()?;
        let _if_type = r.u32()?;
        let _speed = r.u64()?;
        let _direction = r.u32()?;
        let _status = r.u32()?;
        let in_octets = r.u64()?;
        let in_ucast = r.u32()?;
        let in_mcast = r.u32()?;
        let in_bcast = r.u32()?;
        let _in_discards = r.u32()?;
        let _in_errors = r.u32()?;
        let _in_unknown = r.u32()?;
        let out_octets = r.u64()?;
        let out_ucast = r.u32()?;
        let out_mcast = r.u32()?;
        let out_bcast = r.u32()?;
        out.push_counters(IfCounters {
            if_index,
            in_octets,
            in_packets: u64::from(in_ucast) + u64::from(in_mcast) + u64::from(in_bcast),
            out_octets,
            out_packets: u64::from(out_ucast) + u64::from(out_mcast) + u64::from(out_bcast),
        });
    }
    Ok(())
}
