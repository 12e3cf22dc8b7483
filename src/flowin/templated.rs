//! NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): records described by
//! templates the exporter sends now and then. Templates are kept per
//! exporter (address and port), version and observation domain; data sets
//! whose template has not arrived yet are held, bounded, and decoded when
//! it does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::held::Held;
use super::record::{FlowRecord, be_uint};
use super::{Decoded, Problem};
use crate::wire::{Addr, proto};

/// Fields in one template, at most: more is not a flow template.
const MAX_FIELDS: usize = 256;

/// An IPFIX field of variable length (RFC 7011 section 7).
const VARIABLE: u16 = 0xffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    id: u16,
    len: u16,
    /// Enterprise-specific (IPFIX): not one of ours, skipped.
    private: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    fields: Vec<Field>,
    /// An options template: its records describe the exporter (sampling).
    options: bool,
    /// Bytes of one record when no field is variable; else the least.
    min_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    exporter: SocketAddr,
    version: u16,
    domain: u32,
    id: u16,
}

/// Templates, sampling rates from options records, and held data sets of
/// every exporter, within the configured bounds.
#[derive(Debug)]
pub struct Templates {
    /// Shared so a data set is read without copying its template.
    map: HashMap<Key, Arc<Template>>,
    max_templates: usize,
    /// The sampling interval an exporter's options records declared last.
    sampling: HashMap<SocketAddr, u32>,
    held: Held<Key>,
}

/// What one datagram's sets did to the table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SetReport {
    /// Data sets held for a template not seen yet.
    pub held: u64,
    /// Held data sets pushed out, oldest first, by newer ones.
    pub held_dropped: u64,
    /// Templates refused because the table is full.
    pub templates_refused: u64,
}

impl Templates {
    pub fn new(max_templates: usize, max_held_bytes: usize) -> Templates {
        Templates {
            map: HashMap::new(),
            max_templates,
            sampling: HashMap::new(),
            held: Held::new(max_held_bytes),
        }
    }

    /// Templates known.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Data sets waiting for a template, and their bytes.
    pub fn held(&self) -> (usize, usize) {
        (self.held.len(), self.held.bytes())
    }

    /// Forgets what `exporter` (address and port) sent: its transport
    /// session ended (a TCP connection closed), and its templates with it.
    pub fn forget(&mut self, exporter: SocketAddr) {
        self.map.retain(|k, _| k.exporter != exporter);
        self.sampling.remove(&exporter);
        self.held.forget(|k| k.exporter == exporter);
    }

    /// The sampling interval an exporter declared in options records.
    pub fn declared_sampling(&self, exporter: SocketAddr) -> Option<u32> {
        self.sampling.get(&exporter).copied()
    }

    /// Decodes one NetFlow v9 or IPFIX datagram from `exporter` into `out`.
    pub fn decode(
        &mut self,
        exporter: SocketAddr,
        d: &[u8],
        out: &mut Decoded,
    ) -> Result<SetReport, Problem> {
        let version = u16::from_be_bytes([d[0], d[1]]);
        let (header, domain, end) = match version {
            9 => {
                if d.len() < 20 {
                    return Err(Problem::Truncated);
                }
                (
                    20,
                    u32::from_be_bytes([d[16], d[17], d[18], d[19]]),
                    d.len(),
                )
            }
            10 => {
                if d.len() < 16 {
                    return Err(Problem::Truncated);
                }
                let len = usize::from(u16::from_be_bytes([d[2], d[3]]));
                if len < 16 || len > d.len() {
                    return Err(Problem::Length);
                }
                (16, u32::from_be_bytes([d[12], d[13], d[14], d[15]]), len)
            }
            _ => return Err(Problem::Version),
        };
        let mut report = SetReport::default();
        let mut at = header;
        // Templates come before the data that needs them in a datagram, but
        // are applied set by set: a data set before its template is held
        // and taken up when the template set is read.
        while at < end {
            if end - at < 4 {
                // NetFlow v9 exporters may pad the datagram's end.
                if version == 9 && d[at..end].iter().all(|&b| b == 0) {
                    break;
                }
                return Err(Problem::Truncated);
            }
            let id = u16::from_be_bytes([d[at], d[at + 1]]);
            let len = usize::from(u16::from_be_bytes([d[at + 2], d[at + 3]]));
            if len < 4 || at + len > end {
                return Err(Problem::Length);
            }
            let body = &d[at + 4..at + len];
            at += len;
            match (version, id) {
                (9, 0) | (10, 2) => {
                    self.read_templates(exporter, version, domain, body, false, &mut report, out)?
                }
                (9, 1) | (10, 3) => {
                    self.read_templates(exporter, version, domain, body, true, &mut report, out)?
                }
                (_, 256..) => {
                    let key = Key {
                        exporter,
                        version,
                        domain,
                        id,
                    };
                    match self.map.get(&key) {
                        Some(t) => {
                            let t = Arc::clone(t);
                            self.read_data(key, &t, body, out)?;
                        }
                        None => self.hold(key, body, &mut report),
                    }
                }
                // Reserved set ids: skipped, as the RFCs ask.
                _ => {}
            }
        }
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_templates(
        &mut self,
        exporter: SocketAddr,
        version: u16,
        domain: u32,
        mut b: &[u8],
        options: bool,
        report: &mut SetReport,
        out: &mut Decoded,
    ) -> Result<(), Problem> {
        // Each template record; what is left shorter than a record header
        // is padding.
        while b.len() >= 4 {
            let id = u16::from_be_bytes([b[0], b[1]]);
            if id == 0 && b.iter().all(|&x| x == 0) {
                break;
            }
            if id < 256 {
                return Err(Problem::Template);
            }
            let (count, scope, rest) = match (version, options) {
                (9, false) => (usize::from(u16::from_be_bytes([b[2], b[3]])), 0, &b[4..]),
                (9, true) => {
                    // Scope and option lengths are in bytes of (type, length)
                    // pairs.
                    if b.len() < 6 {
                        return Err(Problem::Truncated);
                    }
                    let scope = usize::from(u16::from_be_bytes([b[2], b[3]]));
                    let opts = usize::from(u16::from_be_bytes([b[4], b[5]]));
                    if scope % 4 != 0 || opts % 4 != 0 {
                        return Err(Problem::Template);
                    }
                    ((scope + opts) / 4, scope / 4, &b[6..])
                }
                (_, false) => (usize::from(u16::from_be_bytes([b[2], b[3]])), 0, &b[4..]),
                (_, true) => {
                    if b.len() < 6 {
                        return Err(Problem::Truncated);
                    }
                    let count = usize::from(u16::from_be_bytes([b[2], b[3]]));
                    let scope = usize::from(u16::from_be_bytes([b[4], b[5]]));
                    if count == 0 {
                        (0, 0, &b[6..])
                    } else {
                        if scope == 0 || scope > count {
                            return Err(Problem::Template);
                        }
                        (count, scope, &b[6..])
                    }
                }
            };
            let key = Key {
                exporter,
                version,
                domain,
                id,
            };
            if count == 0 {
                // IPFIX template withdrawal (RFC 7011 section 8.1).
                if version == 9 {
                    return Err(Problem::Template);
                }
                self.map.remove(&key);
                b = rest;
                continue;
            }
            if count > MAX_FIELDS {
                return Err(Problem::Template);
            }
            let mut fields = Vec::with_capacity(count);
            let mut r = rest;
            let mut min_len = 0usize;
            for _ in 0..count {
                if r.len() < 4 {
                    return Err(Problem::Truncated);
                }
                let raw = u16::from_be_bytes([r[0], r[1]]);
                let len = u16::from_be_bytes([r[2], r[3]]);
                r = &r[4..];
                let private = version == 10 && raw & 0x8000 != 0;
                if private {
                    if r.len() < 4 {
                        return Err(Problem::Truncated);
                    }
                    r = &r[4..];
                }
                if version == 9 && len == VARIABLE {
                    return Err(Problem::Template);
                }
                min_len += if len == VARIABLE { 1 } else { usize::from(len) };
                fields.push(Field {
                    id: raw & 0x7fff,
                    len,
                    private,
                });
            }
            b = r;
            if min_len == 0 {
                return Err(Problem::Template);
            }
            // Scope fields of options are only there to be skipped.
            let _ = scope;
            let t = Arc::new(Template {
                fields,
                options,
                min_len,
            });
            if !self.map.contains_key(&key) && self.map.len() >= self.max_templates {
                // An exporter that restarted sends from a new port: its
                // old session's templates are stale, and go first.
                let before = self.map.len();
                self.map.retain(|k, _| {
                    k.exporter.ip() != exporter.ip() || k.exporter.port() == exporter.port()
                });
                if self.map.len() != before {
                    let stale =
                        |e: &SocketAddr| e.ip() == exporter.ip() && e.port() != exporter.port();
                    self.sampling.retain(|e, _| !stale(e));
                }
                if self.map.len() >= self.max_templates {
                    report.templates_refused += 1;
                    continue;
                }
            }
            self.map.insert(key, Arc::clone(&t));
            self.release(key, &t, out)?;
        }
        Ok(())
    }

    /// Decodes the held data sets of a template that just arrived.
    fn release(&mut self, key: Key, t: &Template, out: &mut Decoded) -> Result<(), Problem> {
        let Some(sets) = self.held.take(&key) else {
            return Ok(());
        };
        let mut result = Ok(());
        for body in sets {
            if result.is_ok() {
                result = self.read_data(key, t, &body, out);
            }
        }
        result
    }

    fn hold(&mut self, key: Key, body: &[u8], report: &mut SetReport) {
        match self.held.hold(key, body) {
            Some(pushed_out) => {
                report.held += 1;
                report.held_dropped += pushed_out;
            }
            // Too large to hold at all: it is the one dropped.
            None => report.held_dropped += 1,
        }
    }

    fn read_data(
        &mut self,
        key: Key,
        t: &Template,
        mut b: &[u8],
        out: &mut Decoded,
    ) -> Result<(), Problem> {
        while b.len() >= t.min_len {
            let mut r = FlowRecord::default();
            let mut sampling = None;
            for f in &t.fields {
                let len = if f.len == VARIABLE {
                    let (&first, rest) = b.split_first().ok_or(Problem::Truncated)?;
                    b = rest;
                    if first == 255 {
                        if b.len() < 2 {
                            return Err(Problem::Truncated);
                        }
                        let l = usize::from(u16::from_be_bytes([b[0], b[1]]));
                        b = &b[2..];
                        l
                    } else {
                        usize::from(first)
                    }
                } else {
                    usize::from(f.len)
                };
                if b.len() < len {
                    return Err(Problem::Truncated);
                }
                let (v, rest) = b.split_at(len);
                b = rest;
                if f.private {
                    continue;
                }
                if t.options {
                    if let (34 | 50 | 305, Some(n)) = (f.id, be_uint(v)) {
                        sampling = Some(n);
                    }
                } else {
                    field(&mut r, f.id, v);
                }
            }
            if t.options {
                if let Some(n) = sampling {
                    let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
                    let k = key.exporter;
                    if self.sampling.contains_key(&k) || self.sampling.len() < self.max_templates {
                        self.sampling.insert(k, n);
                    }
                }
                continue;
            }
            if r.src == Addr::default() && r.dst == Addr::default() {
                // Not a flow of IP traffic (an L2 or MPLS template).
                out.skipped += 1;
                continue;
            }
            r.has_ports = matches!(r.proto, proto::TCP | proto::UDP | proto::SCTP);
            if !r.has_ports {
                r.src_port = 0;
                r.dst_port = 0;
            }
            out.push_record(&r);
        }
        Ok(())
    }
}

/// Puts one information element into the record; unknown ones are skipped.
fn field(r: &mut FlowRecord, id: u16, v: &[u8]) {
    let n = || be_uint(v).unwrap_or(0);
    match id {
        // octetDeltaCount, octetTotalCount (a total, when that is all the
        // exporter sends).
        1 => r.bytes = n(),
        85 if r.bytes == 0 => r.bytes = n(),
        2 => r.packets = n(),
        86 if r.packets == 0 => r.packets = n(),
        4 => r.proto = n() as u8,
        6 => r.tcp_flags = n() as u8,
        7 => r.src_port = n() as u16,
        11 => r.dst_port = n() as u16,
        8 if v.len() == 4 => r.src = Addr::from_v4([v[0], v[1], v[2], v[3]]),
        12 if v.len() == 4 => r.dst = Addr::from_v4([v[0], v[1], v[2], v[3]]),
        27 if v.len() == 16 => r.src = Addr::from_v6(v.try_into().unwrap_or([0; 16])),
        28 if v.len() == 16 => r.dst = Addr::from_v6(v.try_into().unwrap_or([0; 16])),
        10 => r.input_if = n() as u32,
        14 => r.output_if = n() as u32,
        32 | 139 => {
            let t = n();
            r.icmp_type = (t >> 8) as u8;
            r.icmp_code = t as u8;
        }
        176 | 178 => r.icmp_type = n() as u8,
        177 | 179 => r.icmp_code = n() as u8,
        34 | 50 | 305 => r.sampling = u32::try_from(n()).unwrap_or(u32::MAX),
        // fragmentFlags: "more fragments" or an offset says fragment.
        // fragmentFlags, bits numbered from the most significant: bit 2
        // is "more fragments".
        197 => r.fragment |= n() & 0x20 != 0,
        88 => r.fragment |= n() != 0,
        _ => {}
    }
}
