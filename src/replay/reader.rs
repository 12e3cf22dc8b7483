//! Packets out of capture files: pcap (micro- or nanosecond timestamps,
//! either byte order, the "modified" variant) and pcapng (several sections,
//! several interfaces and link types), read through pcap-parser from any
//! byte stream — a file, a decompressor, standard input.
//!
//! The stream is read into one buffer that is refilled in place, and every
//! record is parsed where it lies: no copy per packet and no allocation per
//! packet for pcap. Memory is bounded: a record or block that claims more
//! than [`MAX_RECORD`] bytes is an error naming its offset, never a reason
//! to grow the buffer. A file is not mapped into memory, because another
//! process truncating it would kill the daemon with SIGBUS.

use std::io::{self, Read};

use pcap_parser::nom;
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::{
    LegacyPcapBlock, PcapError, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified,
    parse_pcap_header,
};

use crate::wire::LinkType;

/// Largest record (pcap) or block (pcapng) accepted: a 256 KiB packet (the
/// largest snap length tools write) with room for its headers and options.
pub const MAX_RECORD: usize = 256 * 1024 + 4096;
/// Bytes read from the stream at once: small enough that what the kernel
/// just copied is still in the L2 cache when it is parsed.
const CHUNK: usize = 256 << 10;
/// Interfaces one pcapng section may describe.
const MAX_INTERFACES: usize = 4096;
/// pcapng option codes: an interface's FCS length, a packet's flags.
const OPT_IF_FCSLEN: u16 = 13;
const OPT_EPB_FLAGS: u16 = 2;

/// Why a file cannot be read further.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a pcap or pcapng file (first bytes {0:02x?})")]
    Magic(Vec<u8>),
    #[error("byte {offset}: {what}")]
    At { offset: u64, what: String },
}

fn at(offset: u64, what: impl Into<String>) -> ReadError {
    ReadError::At {
        offset,
        what: what.into(),
    }
}

/// One packet, borrowed from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub link: LinkType,
    /// Which interface of the file (pcapng); 0 for pcap.
    pub iface: u32,
    pub data: &'a [u8],
    /// Length on the wire.
    pub wire_len: u32,
}

/// What was read and what was skipped (and why), per file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadStats {
    pub bytes: u64,
    pub records: u64,
    /// Packets on a link type we cannot parse, by pcap LINKTYPE number.
    pub unknown_link: std::collections::BTreeMap<u32, u64>,
    /// pcapng packets naming an interface that was never described.
    pub unknown_interface: u64,
    /// Records whose captured length exceeds the length on the wire (the
    /// wire length is taken as the captured length then).
    pub caplen_over_wire: u64,
    /// pcapng blocks that hold no packet (statistics, names, custom…).
    pub other_blocks: u64,
    /// Simple packet blocks carry no timestamp: they get the last one seen.
    pub untimed_packets: u64,
    pub sections: u64,
    /// Packets whose frame check sequence was cut off before counting, as
    /// the file's link type (pcap), `if_fcslen` or `epb_flags` (pcapng)
    /// said they carry one.
    pub fcs_removed: u64,
}

/// The pcap LINKTYPE number to our parser's link type. Only the low 16
/// bits are the link type: the pcap header keeps FCS information above
/// them ([`pcap_fcs_len`]), which libpcap and Wireshark mask off too.
pub fn link_type(linktype: i32) -> Option<LinkType> {
    match linktype & 0xffff {
        1 => Some(LinkType::Ethernet),
        // LINKTYPE_RAW, and the DLT_RAW values of some systems; IPv4, IPv6.
        101 | 12 | 14 | 228 | 229 => Some(LinkType::RawIp),
        113 => Some(LinkType::LinuxSll),
        276 => Some(LinkType::LinuxSll2),
        0 => Some(LinkType::Null),
        108 => Some(LinkType::Loop),
        _ => None,
    }
}

/// Bytes of frame check sequence at the end of every frame, as the link
/// type field of a pcap header says: its bit 26 says the length is given,
/// bits 28–31 give it in 16-bit words (libpcap's `LT_FCS_LENGTH`).
pub fn pcap_fcs_len(linktype: i32) -> u8 {
    let v = linktype as u32;
    if v & 0x0400_0000 != 0 {
        ((v >> 28) & 0xf) as u8 * 2
    } else {
        0
    }
}

/// The FCS length of a pcapng interface (`if_fcslen`): the specification
/// counts it in bits, Wireshark writes bytes; FCSs are 0, 2 or 4 bytes, so
/// 16 and 32 are bits and 2 and 4 bytes. Anything else is no FCS length.
fn ng_fcs_len(v: u8) -> u8 {
    match v {
        0 | 2 | 4 => v,
        16 | 32 => v / 8,
        _ => 0,
    }
}

/// The frame without its trailing FCS: a shorter wire length, and the
/// captured bytes cut where the frame now ends.
fn without_fcs(data: &[u8], wire_len: u32, fcs: u8) -> (&[u8], u32) {
    let wire = wire_len.saturating_sub(u32::from(fcs));
    (&data[..data.len().min(wire as usize)], wire)
}

#[derive(Debug, Clone, Copy)]
struct Iface {
    link: Option<LinkType>,
    linktype: i32,
    /// Timestamp units per second, and the offset in seconds.
    units: u64,
    offset_s: i64,
    /// Bytes of FCS at the end of its frames.
    fcs: u8,
}

#[derive(Debug)]
enum Format {
    Pcap {
        be: bool,
        modified: bool,
        nanos: bool,
        link: LinkType,
        fcs: u8,
    },
    PcapNg {
        be: bool,
        ifaces: Vec<Iface>,
        last_ts: u64,
    },
}

/// Reads packets from a stream.
#[derive(Debug)]
pub struct Reader<R> {
    src: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Stream offset of `buf[start]`.
    offset: u64,
    format: Format,
    pub stats: ReadStats,
}

impl<R: Read> Reader<R> {
    /// Reads the file header and tells pcap from pcapng.
    pub fn new(src: R) -> Result<Reader<R>, ReadError> {
        let mut r = Reader {
            src,
            buf: vec![0; CHUNK + MAX_RECORD],
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
            format: Format::PcapNg {
                be: false,
                ifaces: Vec::new(),
                last_ts: 0,
            },
            stats: ReadStats::default(),
        };
        r.fill(24)?;
        let head = &r.buf[r.start..r.end];
        if head.len() >= 4 && head[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            // pcapng: the section header is read as the first block.
            return Ok(r);
        }
        match parse_pcap_header(head) {
            Ok((rest, h)) => {
                let linktype = h.network.0;
                let Some(link) = link_type(linktype) else {
                    return Err(at(
                        20,
                        format!(
                            "link type {} is not one this reader parses (Ethernet, raw IP, Linux cooked v1/v2, BSD loopback)",
                            linktype & 0xffff
                        ),
                    ));
                };
                r.format = Format::Pcap {
                    be: h.is_bigendian(),
                    modified: h.is_modified_format(),
                    nanos: h.is_nanosecond_precision(),
                    link,
                    fcs: pcap_fcs_len(linktype),
                };
                let used = head.len() - rest.len();
                r.advance(used);
                Ok(r)
            }
            Err(nom::Err::Incomplete(_)) if head.len() < 24 => Err(at(
                head.len() as u64,
                "the file ends inside its 24-byte pcap header",
            )),
            Err(_) => Err(ReadError::Magic(head[..head.len().min(8)].to_vec())),
        }
    }

    /// Bytes of the stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn advance(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
        self.stats.bytes = self.offset;
    }

    /// Makes at least `want` bytes available (fewer only at the end).
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.end - self.start >= want || self.eof {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < want.max(CHUNK).min(self.buf.len()) && !self.eof {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if self.end - self.start >= want {
                break;
            }
        }
        Ok(())
    }

    /// The next packet, `None` at the end of the file.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, ReadError> {
        if matches!(self.format, Format::Pcap { .. }) {
            self.next_pcap()
        } else {
            self.next_pcapng()
        }
    }

    fn next_pcap(&mut self) -> Result<Option<Packet<'_>>, ReadError> {
        let Format::Pcap {
            be,
            modified,
            nanos,
            link,
            fcs,
        } = self.format
        else {
            return Ok(None);
        };
        let head = if modified { 24 } else { 16 };
        if self.end - self.start < head {
            self.fill(head)?;
        }
        let avail = self.end - self.start;
        if avail == 0 {
            return Ok(None);
        }
        if avail < head {
            return Err(at(
                self.offset,
                format!("the file ends inside a record header ({avail} of {head} bytes)"),
            ));
        }
        let caplen = word(&self.buf[self.start..self.end], 8, be) as usize;
        if caplen > MAX_RECORD {
            return Err(at(
                self.offset,
                format!(
                    "a record claims {caplen} captured bytes (more than {MAX_RECORD}): the file is damaged"
                ),
            ));
        }
        if avail < head + caplen {
            self.fill(head + caplen)?;
            if self.end - self.start < head + caplen {
                return Err(at(
                    self.offset,
                    format!(
                        "the file ends inside a record ({} of {} bytes)",
                        self.end - self.start,
                        head + caplen
                    ),
                ));
            }
        }
        let b = &self.buf[self.start..self.end];
        let parsed = if modified {
            parse_pcap_frame_modified(b)
        } else if be {
            parse_pcap_frame_be(b)
        } else {
            parse_pcap_frame(b)
        };
        let (rest, rec): (&[u8], LegacyPcapBlock<'_>) =
            parsed.map_err(|e| at(self.offset, format!("unreadable record: {}", describe(&e))))?;
        let used = b.len() - rest.len();
        let frac = u64::from(rec.ts_usec);
        let ts_ns = u64::from(rec.ts_sec) * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        let mut wire_len = rec.origlen;
        if (wire_len as usize) < rec.data.len() {
            self.stats.caplen_over_wire += 1;
            wire_len = rec.data.len() as u32;
        }
        self.stats.records += 1;
        let start = self.start;
        let data_at = used - rec.data.len();
        let len = rec.data.len();
        self.advance(used);
        let mut data = &self.buf[start + data_at..start + data_at + len];
        if fcs > 0 {
            (data, wire_len) = without_fcs(data, wire_len, fcs);
            self.stats.fcs_removed += 1;
        }
        Ok(Some(Packet {
            ts_ns,
            link,
            iface: 0,
            data,
            wire_len,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Packet<'_>>, ReadError> {
        loop {
            if self.end - self.start < 12 {
                self.fill(12)?;
            }
            let avail = self.end - self.start;
            if avail == 0 {
                return Ok(None);
            }
            if avail < 12 {
                return Err(at(
                    self.offset,
                    format!("the file ends inside a block header ({avail} bytes)"),
                ));
            }
            let b = &self.buf[self.start..self.end];
            let is_shb = b[..4] == [0x0a, 0x0d, 0x0d, 0x0a];
            let be = if is_shb {
                // The byte-order magic of a section decides its byte order.
                match b[8..12] {
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    _ => {
                        return Err(at(
                            self.offset + 8,
                            "a pcapng section header with an unknown byte-order magic",
                        ));
                    }
                }
            } else {
                match &self.format {
                    Format::PcapNg { be, .. } if self.stats.sections > 0 => *be,
                    _ => {
                        return Err(at(
                            self.offset,
                            "a pcapng file must begin with a section header",
                        ));
                    }
                }
            };
            let len = word(b, 4, be) as usize;
            if len > MAX_RECORD {
                return Err(at(
                    self.offset + 4,
                    format!(
                        "a block claims {len} bytes (more than {MAX_RECORD}): the file is damaged"
                    ),
                ));
            }
            if len < 12 || len % 4 != 0 {
                return Err(at(
                    self.offset + 4,
                    format!("a block length of {len} (at least 12, a multiple of 4)"),
                ));
            }
            if avail < len {
                self.fill(len)?;
                if self.end - self.start < len {
                    return Err(at(
                        self.offset,
                        format!(
                            "the file ends inside a block ({} of {len} bytes)",
                            self.end - self.start
                        ),
                    ));
                }
            }
            let offset = self.offset;
            let b = &self.buf[self.start..self.start + len];
            if let Err(what) = check_block(b, be) {
                return Err(at(offset, what));
            }
            let parsed = if is_shb {
                parse_sectionheaderblock(b).map(|(r, s)| (r, Block::SectionHeader(s)))
            } else if be {
                parse_block_be(b)
            } else {
                parse_block_le(b)
            };
            let (_, block) = match parsed {
                Ok(x) => x,
                Err(e) => {
                    return Err(at(
                        offset,
                        format!(
                            "unreadable pcapng {}: {}",
                            block_name(word(b, 0, be), is_shb),
                            describe(&e)
                        ),
                    ));
                }
            };
            let start = self.start;
            // Where a packet's bytes lie in the buffer, found before the
            // block (which borrows the buffer) goes out of scope.
            let mut found: Option<(usize, usize, u64, u32, u32, LinkType, u8)> = None;
            {
                let Format::PcapNg {
                    be: section_be,
                    ifaces,
                    last_ts,
                } = &mut self.format
                else {
                    unreachable!("pcapng state")
                };
                let base = b.as_ptr() as usize;
                match block {
                    Block::SectionHeader(_) => {
                        self.stats.sections += 1;
                        *section_be = be;
                        ifaces.clear();
                    }
                    Block::InterfaceDescription(idb) => {
                        if ifaces.len() >= MAX_INTERFACES {
                            return Err(at(
                                offset,
                                format!("more than {MAX_INTERFACES} interfaces in one section"),
                            ));
                        }
                        let units = idb.ts_resolution().ok_or_else(|| {
                            at(
                                offset,
                                format!(
                                    "interface timestamp resolution {:#x} is out of range",
                                    idb.if_tsresol
                                ),
                            )
                        })?;
                        let fcs = idb
                            .options
                            .iter()
                            .find(|o| o.code.0 == OPT_IF_FCSLEN)
                            .and_then(|o| o.as_bytes().ok()?.first().copied())
                            .map_or(0, ng_fcs_len);
                        ifaces.push(Iface {
                            link: link_type(idb.linktype.0),
                            linktype: idb.linktype.0,
                            units,
                            offset_s: idb.ts_offset(),
                            fcs,
                        });
                    }
                    Block::EnhancedPacket(epb) => {
                        self.stats.records += 1;
                        if let Some((link, i)) =
                            parseable(&mut self.stats, ifaces.get(epb.if_id as usize))
                        {
                            let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let ns = (u128::from(ts) * 1_000_000_000 / u128::from(i.units)) as i128
                                + i128::from(i.offset_s) * 1_000_000_000;
                            let ns = ns.clamp(0, i128::from(u64::MAX)) as u64;
                            *last_ts = ns;
                            // The block pads the data to 32 bits.
                            let n = (epb.caplen as usize).min(epb.data.len());
                            let data_at = epb.data.as_ptr() as usize - base;
                            // epb_flags bits 5–8: this packet's FCS length
                            // in bytes, 0 = the interface's.
                            let fcs = epb
                                .options
                                .iter()
                                .find(|o| o.code.0 == OPT_EPB_FLAGS)
                                .and_then(|o| o.as_bytes().ok()?.get(..4))
                                .map(|b| {
                                    let w = [b[0], b[1], b[2], b[3]];
                                    let f = if be {
                                        u32::from_be_bytes(w)
                                    } else {
                                        u32::from_le_bytes(w)
                                    };
                                    ((f >> 5) & 0xf) as u8
                                })
                                .filter(|&f| f > 0)
                                .unwrap_or(i.fcs);
                            found = Some((data_at, n, ns, epb.origlen, epb.if_id, link, fcs));
                        }
                    }
                    Block::SimplePacket(spb) => {
                        self.stats.records += 1;
                        self.stats.untimed_packets += 1;
                        if let Some((link, i)) = parseable(&mut self.stats, ifaces.first()) {
                            // No captured length: the wire length, up to the
                            // (padded) data present.
                            let n = (spb.origlen as usize).min(spb.data.len());
                            let data_at = spb.data.as_ptr() as usize - base;
                            found = Some((data_at, n, *last_ts, spb.origlen, 0, link, i.fcs));
                        }
                    }
                    _ => self.stats.other_blocks += 1,
                }
            }
            self.advance(len);
            if let Some((data_at, n, ts_ns, origlen, iface, link, fcs)) = found {
                let mut data = &self.buf[start + data_at..start + data_at + n];
                let mut wire_len = origlen;
                if (wire_len as usize) < n {
                    self.stats.caplen_over_wire += 1;
                    wire_len = n as u32;
                }
                if fcs > 0 {
                    (data, wire_len) = without_fcs(data, wire_len, fcs);
                    self.stats.fcs_removed += 1;
                }
                return Ok(Some(Packet {
                    ts_ns,
                    link,
                    iface,
                    data,
                    wire_len,
                }));
            }
        }
    }
}

/// The interface a pcapng packet names, if we can parse its link type; a
/// packet we cannot is counted as skipped, by why.
fn parseable(stats: &mut ReadStats, iface: Option<&Iface>) -> Option<(LinkType, Iface)> {
    let Some(i) = iface else {
        stats.unknown_interface += 1;
        return None;
    };
    match i.link {
        Some(link) => Some((link, *i)),
        None => {
            *stats.unknown_link.entry(i.linktype as u32).or_default() += 1;
            None
        }
    }
}

/// The 32-bit field at `i` (the caller checked the length) in the file's
/// byte order.
fn word(b: &[u8], i: usize, be: bool) -> u32 {
    let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
    if be {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// pcapng block types, for messages.
fn block_name(kind: u32, is_shb: bool) -> String {
    let name = match kind {
        _ if is_shb => "section header block",
        1 => "interface description block",
        2 => "(obsolete) packet block",
        3 => "simple packet block",
        4 => "name resolution block",
        5 => "interface statistics block",
        6 => "enhanced packet block",
        0x0a => "decryption secrets block",
        0x0bad | 0x4000_0bad => "custom block",
        _ => return format!("block of type {kind:#x}"),
    };
    name.into()
}

/// Checks what a pcapng block's own fields must agree on before its
/// contents are parsed, so that a damaged block is described by what is
/// wrong with it. `b` is the whole block, its length already checked to be
/// at least 12, a multiple of 4, and what the leading length says.
fn check_block(b: &[u8], be: bool) -> Result<(), String> {
    let len = b.len();
    let is_shb = b[..4] == [0x0a, 0x0d, 0x0d, 0x0a];
    let kind = word(b, 0, be);
    let name = block_name(kind, is_shb);
    let trailing = word(b, len - 4, be) as usize;
    if trailing != len {
        return Err(format!(
            "a {name} whose trailing length ({trailing}) differs from its leading length ({len})"
        ));
    }
    let min = match kind {
        _ if is_shb => 28,
        1 => 20,
        3 => 16,
        5 => 24,
        6 => 32,
        _ => 12,
    };
    if len < min {
        return Err(format!("a {name} of {len} bytes (it needs at least {min})"));
    }
    if kind == 6 && !is_shb {
        let caplen = word(b, 20, be) as usize;
        if caplen > len - 32 {
            return Err(format!(
                "an enhanced packet block claims {caplen} captured bytes but holds at most {}",
                len - 32
            ));
        }
    }
    Ok(())
}

fn describe(e: &nom::Err<PcapError<&[u8]>>) -> String {
    match e {
        nom::Err::Incomplete(_) => "shorter than its fields say".into(),
        nom::Err::Error(e) | nom::Err::Failure(e) => match e {
            PcapError::NomError(_, nom::error::ErrorKind::Verify) => {
                "a length or type inside it disagrees with the block".into()
            }
            PcapError::NomError(
                _,
                nom::error::ErrorKind::Eof | nom::error::ErrorKind::Complete,
            ) => "a field or option runs past its end".into(),
            PcapError::NomError(_, kind) => format!("malformed ({kind:?})"),
            other => format!("{other:?}"),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ethernet/IPv4/UDP frame of `ip_len` bytes at layer 3.
    pub(crate) fn frame(src: [u8; 4], ip_len: usize) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&[
            0x45,
            0,
            (ip_len >> 8) as u8,
            ip_len as u8,
            0,
            1,
            0,
            0,
            64,
            17,
            0,
            0,
        ]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[10, 9, 9, 9]);
        f.extend_from_slice(&[0x9c, 0x40, 0, 9, 0, (ip_len - 20) as u8, 0, 0]);
        f.resize(14 + ip_len, 0x41);
        f
    }

    /// A pcap file: `be` byte order, `nanos` timestamps, `linktype`.
    pub(crate) fn pcap(
        be: bool,
        nanos: bool,
        linktype: u32,
        snaplen: u32,
        recs: &[(u64, &[u8])],
    ) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = Vec::new();
        out.extend_from_slice(&w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        out.extend_from_slice(&w16(2));
        out.extend_from_slice(&w16(4));
        out.extend_from_slice(&w32(0));
        out.extend_from_slice(&w32(0));
        out.extend_from_slice(&w32(snaplen));
        out.extend_from_slice(&w32(linktype));
        for (ts_ns, data) in recs {
            let frac = if nanos {
                ts_ns % 1_000_000_000
            } else {
                ts_ns % 1_000_000_000 / 1000
            };
            out.extend_from_slice(&w32((ts_ns / 1_000_000_000) as u32));
            out.extend_from_slice(&w32(frac as u32));
            out.extend_from_slice(&w32(data.len() as u32));
            out.extend_from_slice(&w32(data.len() as u32));
            out.extend_from_slice(data);
        }
        out
    }

    fn block(be: bool, kind: u32, body: &[u8]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = 12 + body.len() as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&w32(kind));
        out.extend_from_slice(&w32(len));
        out.extend_from_slice(&body);
        out.extend_from_slice(&w32(len));
        out
    }

    /// A pcapng section: interfaces (linktype, tsresol option) and packets
    /// (interface, timestamp in that interface's units, data).
    pub(crate) fn pcapng(
        be: bool,
        ifaces: &[(u16, Option<u8>)],
        pkts: &[(u32, u64, &[u8])],
    ) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut shb = Vec::new();
        shb.extend_from_slice(&w32(0x1a2b_3c4d));
        shb.extend_from_slice(&w16(1));
        shb.extend_from_slice(&w16(0));
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut out = block(be, 0x0a0d_0d0a, &shb);
        for (lt, res) in ifaces {
            let mut idb = Vec::new();
            idb.extend_from_slice(&w16(*lt));
            idb.extend_from_slice(&w16(0));
            idb.extend_from_slice(&w32(0));
            if let Some(r) = res {
                idb.extend_from_slice(&w16(9));
                idb.extend_from_slice(&w16(1));
                idb.extend_from_slice(&[*r, 0, 0, 0]);
                idb.extend_from_slice(&w16(0));
                idb.extend_from_slice(&w16(0));
            }
            out.extend(block(be, 1, &idb));
        }
        for (i, ts, data) in pkts {
            let mut epb = Vec::new();
            epb.extend_from_slice(&w32(*i));
            epb.extend_from_slice(&w32((ts >> 32) as u32));
            epb.extend_from_slice(&w32(*ts as u32));
            epb.extend_from_slice(&w32(data.len() as u32));
            epb.extend_from_slice(&w32(data.len() as u32));
            epb.extend_from_slice(data);
            out.extend(block(be, 6, &epb));
        }
        out
    }

    /// (timestamp, interface, captured length, wire length) per packet.
    type Seen = Vec<(u64, u32, usize, u32)>;

    fn read_all(bytes: &[u8]) -> Result<(Seen, ReadStats), ReadError> {
        let mut r = Reader::new(bytes)?;
        let mut v = Vec::new();
        while let Some(p) = r.next_packet()? {
            v.push((p.ts_ns, p.iface, p.data.len(), p.wire_len));
        }
        Ok((v, r.stats.clone()))
    }

    #[test]
    fn pcap_in_both_byte_orders_and_resolutions() {
        let f = frame([10, 0, 0, 1], 100);
        for be in [false, true] {
            for nanos in [false, true] {
                let file = pcap(
                    be,
                    nanos,
                    1,
                    65535,
                    &[
                        (1_700_000_000_123_456_789, &f),
                        (1_700_000_001_000_000_000, &f),
                    ],
                );
                let (v, st) = read_all(&file).unwrap();
                let first = if nanos {
                    1_700_000_000_123_456_789
                } else {
                    1_700_000_000_123_456_000
                };
                assert_eq!(
                    v,
                    [
                        (first, 0, 114, 114),
                        (1_700_000_001_000_000_000, 0, 114, 114)
                    ],
                    "be {be} nanos {nanos}"
                );
                assert_eq!(st.records, 2);
                assert_eq!(st.bytes, file.len() as u64);
            }
        }
    }

    #[test]
    fn pcapng_with_several_interfaces_and_link_types() {
        let eth = frame([10, 0, 0, 1], 60);
        let raw = eth[14..].to_vec();
        for be in [false, true] {
            // Interface 0: Ethernet in microseconds (default); 1: raw IP in
            // nanoseconds; 2: a link type we do not parse.
            let file = pcapng(
                be,
                &[(1, None), (101, Some(9)), (147, None)],
                &[
                    (0, 1_000_000, &eth),
                    (1, 2_500_000_000, &raw),
                    (2, 3, &eth),
                    (7, 4, &eth),
                ],
            );
            let (v, st) = read_all(&file).unwrap();
            assert_eq!(v, [(1_000_000_000, 0, 74, 74), (2_500_000_000, 1, 60, 60)]);
            assert_eq!(st.unknown_link.get(&147), Some(&1));
            assert_eq!(st.unknown_interface, 1);
            assert_eq!(st.records, 4);
            assert_eq!(st.sections, 1);
        }
        // Two sections, the second big-endian, with interfaces of its own.
        let mut two = pcapng(false, &[(1, None)], &[(0, 5, &eth)]);
        two.extend(pcapng(true, &[(101, None)], &[(0, 6, &raw)]));
        let (v, st) = read_all(&two).unwrap();
        assert_eq!(v, [(5000, 0, 74, 74), (6000, 0, 60, 60)]);
        assert_eq!(st.sections, 2);
    }

    #[test]
    fn bad_files_get_errors_with_offsets() {
        let f = frame([10, 0, 0, 1], 100);
        let good = pcap(false, false, 1, 65535, &[(1, &f), (2, &f)]);

        let e = read_all(b"GIF89a...").unwrap_err();
        assert!(e.to_string().contains("not a pcap or pcapng file"), "{e}");
        let e = read_all(&good[..10]).unwrap_err();
        assert!(e.to_string().contains("24-byte pcap header"), "{e}");
        // Cut inside the second record.
        let e = read_all(&good[..good.len() - 10]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "byte {}: the file ends inside a record (120 of 130 bytes)",
                24 + 130
            )
        );
        // Cut inside a record header.
        let e = read_all(&good[..24 + 130 + 7]).unwrap_err();
        assert!(
            e.to_string()
                .contains("inside a record header (7 of 16 bytes)"),
            "{e}"
        );
        // A record that claims 4 GiB.
        let mut huge = good.clone();
        huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = read_all(&huge).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("byte 24: a record claims 4294967295"),
            "{e}"
        );
        // Unknown link type: nothing in the file can be read.
        let e = read_all(&pcap(false, false, 147, 65535, &[(1, &f)])).unwrap_err();
        assert!(e.to_string().starts_with("byte 20: link type 147"), "{e}");
        // Snap lengths of 0 and 2^32-1 say nothing about the records.
        for snap in [0, u32::MAX] {
            let (v, _) = read_all(&pcap(false, false, 1, snap, &[(1, &f)])).unwrap();
            assert_eq!(v.len(), 1);
        }
        // pcapng: a block whose length is not a multiple of 4, one that
        // claims too much, one cut short, and no section header first.
        let ng = pcapng(false, &[(1, None)], &[(0, 1, &f)]);
        let idb_at = 28;
        let mut odd = ng.clone();
        odd[idb_at + 4..idb_at + 8].copy_from_slice(&13u32.to_le_bytes());
        let e = read_all(&odd).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "byte {}: a block length of 13 (at least 12, a multiple of 4)",
                idb_at + 4
            )
        );
        let mut big = ng.clone();
        big[idb_at + 4..idb_at + 8].copy_from_slice(&(64u32 << 20).to_le_bytes());
        assert!(
            read_all(&big)
                .unwrap_err()
                .to_string()
                .contains("claims 67108864 bytes")
        );
        let e = read_all(&ng[..ng.len() - 5]).unwrap_err();
        assert!(
            e.to_string().contains("the file ends inside a block"),
            "{e}"
        );
        let e = read_all(&ng[idb_at..]).unwrap_err();
        assert!(e.to_string().contains("not a pcap or pcapng"), "{e}");
        // A section header with a bad byte-order magic.
        let mut bom = ng.clone();
        bom[8..12].copy_from_slice(&[1, 2, 3, 4]);
        assert!(
            read_all(&bom)
                .unwrap_err()
                .to_string()
                .contains("byte-order magic")
        );
    }

    #[test]
    fn a_captured_length_over_the_wire_length_is_corrected_and_counted() {
        let f = frame([10, 0, 0, 1], 100);
        let mut file = pcap(false, false, 1, 65535, &[(1, &f)]);
        file[24 + 12..24 + 16].copy_from_slice(&50u32.to_le_bytes());
        let (v, st) = read_all(&file).unwrap();
        assert_eq!(v[0].3, 114);
        assert_eq!(st.caplen_over_wire, 1);
    }

    #[test]
    fn reads_across_refills() {
        // More than one chunk of records, in a stream that hands out a few
        // bytes at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(7777);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let f = frame([10, 0, 0, 1], 1400);
        let recs: Vec<(u64, &[u8])> = (0..5000u64).map(|i| (i, f.as_slice())).collect();
        let file = pcap(false, true, 1, 65535, &recs);
        assert!(file.len() > CHUNK);
        let mut r = Reader::new(Trickle(&file)).unwrap();
        let mut n = 0u64;
        while let Some(p) = r.next_packet().unwrap() {
            assert_eq!(p.ts_ns, n);
            assert_eq!(p.data, &f[..]);
            n += 1;
        }
        assert_eq!(n, 5000);
    }

    /// Regression (issue 10, item 9): FCS information above the link type's
    /// low 16 bits made files tcpdump reads unreadable.
    #[test]
    fn fcs_bits_of_the_pcap_link_type_are_masked_and_honoured() {
        let f = frame([10, 0, 0, 1], 100);
        let mut with_fcs = f.clone();
        with_fcs.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        // Bit 26 set, FCS length 2 × 16 bits: every frame ends in 4 bytes
        // of FCS, which are not part of the packet.
        let file = pcap(false, false, 0x2400_0001, 65535, &[(1000, &with_fcs)]);
        let (seen, st) = read_all(&file).unwrap();
        assert_eq!(seen, vec![(1000, 0, f.len(), f.len() as u32)]);
        assert_eq!(st.fcs_removed, 1);
        // FCS bits without bit 26 say nothing about the frames: libpcap
        // reads 0x30000001 as plain Ethernet.
        let file = pcap(false, false, 0x3000_0001, 65535, &[(1000, &f)]);
        let (seen, st) = read_all(&file).unwrap();
        assert_eq!(seen, vec![(1000, 0, f.len(), f.len() as u32)]);
        assert_eq!(st.fcs_removed, 0);
        assert_eq!(pcap_fcs_len(0x2400_0001), 4);
        assert_eq!(pcap_fcs_len(0x3000_0001), 0);
        assert_eq!(link_type(0x3000_0001), Some(LinkType::Ethernet));
    }

    #[test]
    fn pcapng_fcs_length_of_an_interface_and_of_a_packet() {
        let f = frame([10, 0, 0, 2], 60);
        let mut with_fcs = f.clone();
        with_fcs.extend_from_slice(&[1, 2, 3, 4]);
        // An interface with if_fcslen = 32 (bits, as the specification
        // counts) and one with 4 (bytes, as Wireshark writes).
        for fcslen in [32u8, 4] {
            let mut file = pcapng(false, &[], &[]);
            let mut idb = Vec::new();
            idb.extend_from_slice(&1u16.to_le_bytes());
            idb.extend_from_slice(&0u16.to_le_bytes());
            idb.extend_from_slice(&0u32.to_le_bytes());
            idb.extend_from_slice(&13u16.to_le_bytes());
            idb.extend_from_slice(&1u16.to_le_bytes());
            idb.extend_from_slice(&[fcslen, 0, 0, 0]);
            idb.extend_from_slice(&[0, 0, 0, 0]);
            file.extend(block(false, 1, &idb));
            let mut epb = Vec::new();
            for v in [0u32, 0, 7, with_fcs.len() as u32, with_fcs.len() as u32] {
                epb.extend_from_slice(&v.to_le_bytes());
            }
            epb.extend_from_slice(&with_fcs);
            file.extend(block(false, 6, &epb));
            let (seen, st) = read_all(&file).unwrap();
            assert_eq!(seen[0].2, f.len(), "if_fcslen {fcslen}");
            assert_eq!(seen[0].3, f.len() as u32, "if_fcslen {fcslen}");
            assert_eq!(st.fcs_removed, 1);
        }
        // epb_flags with an FCS length of 4 bytes (bits 5–8).
        let mut file = pcapng(false, &[(1, None)], &[]);
        let mut epb = Vec::new();
        for v in [0u32, 0, 7, with_fcs.len() as u32, with_fcs.len() as u32] {
            epb.extend_from_slice(&v.to_le_bytes());
        }
        epb.extend_from_slice(&with_fcs);
        while epb.len() % 4 != 0 {
            epb.push(0);
        }
        epb.extend_from_slice(&2u16.to_le_bytes());
        epb.extend_from_slice(&4u16.to_le_bytes());
        epb.extend_from_slice(&(4u32 << 5).to_le_bytes());
        epb.extend_from_slice(&[0, 0, 0, 0]);
        file.extend(block(false, 6, &epb));
        let (seen, _) = read_all(&file).unwrap();
        assert_eq!(seen[0].3, f.len() as u32);
    }

    /// Regression (issue 10, item 11): `unreadable pcapng block: Verify`.
    #[test]
    fn a_damaged_pcapng_block_is_described_by_what_is_wrong() {
        let f = frame([10, 0, 0, 3], 60);
        let good = pcapng(false, &[(1, None)], &[(0, 7, &f)]);
        let epb_at = good.len() - (12 + 20 + f.len().next_multiple_of(4));
        // Trailing length changed.
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 4..].copy_from_slice(&999u32.to_le_bytes());
        let msg = read_all(&bad).unwrap_err().to_string();
        assert!(
            msg.contains("enhanced packet block whose trailing length (999) differs"),
            "{msg}"
        );
        assert!(msg.starts_with(&format!("byte {epb_at}:")), "{msg}");
        // A captured length past the block's end.
        let mut bad = good.clone();
        bad[epb_at + 20..epb_at + 24].copy_from_slice(&5000u32.to_le_bytes());
        let msg = read_all(&bad).unwrap_err().to_string();
        assert!(msg.contains("claims 5000 captured bytes"), "{msg}");
        // An interface block too short for its fixed fields.
        let mut file = pcapng(false, &[], &[]);
        file.extend(block(false, 1, &[1, 0, 0, 0]));
        let msg = read_all(&file).unwrap_err().to_string();
        assert!(
            msg.contains("interface description block of 16 bytes (it needs at least 20)"),
            "{msg}"
        );
    }
}
