//! IPFIX (RFC 7011) messages: the templates and the data records of the
//! flows a tick counted, in datagrams small enough for any path.

use std::net::IpAddr;

/// A flow record: what the shards counted of one pair in one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The pair's first contact's protocol and destination port, when it
    /// had one (the ports kept); else 0.
    pub proto: u8,
    pub dst_port: u16,
    pub octets: u64,
    pub packets: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The interface the pair's frames came in on (ifIndex); 0 unknown.
    pub ingress: u32,
}

pub const TEMPLATE_V4: u16 = 256;
pub const TEMPLATE_V6: u16 = 257;
/// Largest message: fits a 1500-byte path with IPv6 and UDP headers.
pub const MAX_MESSAGE: usize = 1400;

/// (information element, length) of the IPv4 template; the IPv6 one has
/// 27/28 (16 bytes) for 8/12.
const FIELDS_V4: [(u16, u16); 10] = [
    (8, 4),   // sourceIPv4Address
    (12, 4),  // destinationIPv4Address
    (4, 1),   // protocolIdentifier
    (7, 2),   // sourceTransportPort
    (11, 2),  // destinationTransportPort
    (1, 8),   // octetDeltaCount
    (2, 8),   // packetDeltaCount
    (152, 8), // flowStartMilliseconds
    (153, 8), // flowEndMilliseconds
    (10, 4),  // ingressInterface
];

fn fields(v6: bool) -> Vec<(u16, u16)> {
    FIELDS_V4
        .iter()
        .map(|&(ie, len)| match (ie, v6) {
            (8, true) => (27, 16),
            (12, true) => (28, 16),
            _ => (ie, len),
        })
        .collect()
}

fn record_len(v6: bool) -> usize {
    fields(v6).iter().map(|f| usize::from(f.1)).sum()
}

/// Writes messages: a sequence number per observation domain, counting
/// data records sent.
#[derive(Debug)]
pub struct Encoder {
    pub domain: u32,
    pub sequence: u32,
}

impl Encoder {
    pub fn new(domain: u32) -> Encoder {
        Encoder {
            domain,
            sequence: 0,
        }
    }

    fn header(&self, out: &mut Vec<u8>, export_secs: u32) {
        out.extend_from_slice(&10u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes()); // length, set at the end
        out.extend_from_slice(&export_secs.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.domain.to_be_bytes());
    }

    fn finish(out: &mut [u8]) {
        let len = out.len() as u16;
        out[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// A message with both templates.
    pub fn templates(&self, export_secs: u32) -> Vec<u8> {
        let mut m = Vec::with_capacity(128);
        self.header(&mut m, export_secs);
        let set_at = m.len();
        m.extend_from_slice(&2u16.to_be_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        for (id, v6) in [(TEMPLATE_V4, false), (TEMPLATE_V6, true)] {
            let f = fields(v6);
            m.extend_from_slice(&id.to_be_bytes());
            m.extend_from_slice(&(f.len() as u16).to_be_bytes());
            for (ie, len) in f {
                m.extend_from_slice(&ie.to_be_bytes());
                m.extend_from_slice(&len.to_be_bytes());
            }
        }
        let set_len = (m.len() - set_at) as u16;
        m[set_at + 2..set_at + 4].copy_from_slice(&set_len.to_be_bytes());
        Self::finish(&mut m);
        m
    }

    /// Data messages for `records` (IPv4 and IPv6 in sets of their own),
    /// each at most [`MAX_MESSAGE`] bytes.
    pub fn data(&mut self, records: &[Record], export_secs: u32) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for v6 in [false, true] {
            let per = (MAX_MESSAGE - 16 - 4) / record_len(v6);
            let rs: Vec<&Record> = records.iter().filter(|r| r.src.is_ipv6() == v6).collect();
            for chunk in rs.chunks(per) {
                let mut m = Vec::with_capacity(MAX_MESSAGE);
                self.header(&mut m, export_secs);
                let id = if v6 { TEMPLATE_V6 } else { TEMPLATE_V4 };
                m.extend_from_slice(&id.to_be_bytes());
                let set_len = (4 + chunk.len() * record_len(v6)) as u16;
                m.extend_from_slice(&set_len.to_be_bytes());
                for r in chunk {
                    for a in [r.src, r.dst] {
                        match a {
                            IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
                            IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
                        }
                    }
                    m.push(r.proto);
                    m.extend_from_slice(&0u16.to_be_bytes());
                    m.extend_from_slice(&r.dst_port.to_be_bytes());
                    m.extend_from_slice(&r.octets.to_be_bytes());
                    m.extend_from_slice(&r.packets.to_be_bytes());
                    m.extend_from_slice(&r.start_ms.to_be_bytes());
                    m.extend_from_slice(&r.end_ms.to_be_bytes());
                    m.extend_from_slice(&r.ingress.to_be_bytes());
                }
                Self::finish(&mut m);
                self.sequence = self.sequence.wrapping_add(chunk.len() as u32);
                out.push(m);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(src: &str, dst: &str) -> Record {
        Record {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto: 17,
            dst_port: 53,
            octets: 1000,
            packets: 10,
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_000_001_000,
            ingress: 3,
        }
    }

    #[test]
    fn templates_and_records_are_laid_out_as_rfc_7011_says() {
        let e = Encoder::new(7);
        let t = e.templates(100);
        assert_eq!(&t[0..2], &10u16.to_be_bytes());
        assert_eq!(u16::from_be_bytes([t[2], t[3]]) as usize, t.len());
        assert_eq!(&t[12..16], &7u32.to_be_bytes());
        // Template set: id 2, then template 256 with 10 fields.
        assert_eq!(&t[16..18], &2u16.to_be_bytes());
        assert_eq!(u16::from_be_bytes([t[18], t[19]]) as usize, t.len() - 16);
        assert_eq!(&t[20..24], &[1, 0, 0, 10]);
        assert_eq!(record_len(false), 49);
        assert_eq!(record_len(true), 73);

        let mut e = Encoder::new(7);
        let mut rs: Vec<Record> = (0..60).map(|_| rec("10.0.0.1", "10.0.0.2")).collect();
        rs.push(rec("2001:db8::1", "2001:db8::2"));
        let msgs = e.data(&rs, 100);
        // 28 IPv4 records fit a message: 60 make three; the IPv6 one its own.
        assert_eq!(msgs.len(), 4);
        assert!(msgs.iter().all(|m| m.len() <= MAX_MESSAGE));
        assert_eq!(&msgs[0][16..18], &256u16.to_be_bytes());
        assert_eq!(&msgs[3][16..18], &257u16.to_be_bytes());
        assert_eq!(
            &msgs[1][8..12],
            &28u32.to_be_bytes(),
            "sequence counts records"
        );
        assert_eq!(e.sequence, 61);
        let r = &msgs[0][20..20 + 49];
        assert_eq!(&r[0..8], &[10, 0, 0, 1, 10, 0, 0, 2]);
        assert_eq!(r[8], 17);
        assert_eq!(&r[11..13], &53u16.to_be_bytes());
        assert_eq!(&r[13..21], &1000u64.to_be_bytes());
        assert_eq!(&r[45..49], &3u32.to_be_bytes());
    }
}
