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
pub(crate) mod tests;
