//! What a flood's captured packets say about it: their sizes, their TTLs
//! (a spoofed flood from one machine has one or two; real sources spread),
//! its top sources and ports. Made from the capture's frames when it ends,
//! off the capture path, and put into the alert's evidence.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::pcap::Frame;
use crate::wire::{Decap, LinkType, Meta};

/// Packet sizes on the wire are counted in these bins (upper bounds).
pub const SIZE_BINS: [u32; 7] = [64, 128, 256, 512, 1024, 1518, u32::MAX];
/// Most entries in each top list.
const TOP: usize = 8;

/// One bin of a histogram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bin {
    /// Sizes up to and including this (bytes on the wire); none for the
    /// last bin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<u32>,
    pub packets: u64,
}

/// A value and how many packets had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count<T> {
    pub value: T,
    pub packets: u64,
}

/// The summary of a capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CaptureSummary {
    /// Packets summarized (those in the file).
    pub packets: u64,
    pub sizes: Vec<Bin>,
    /// IPv4 TTL or IPv6 hop limit of the outer header, most frequent first.
    pub ttls: Vec<Count<u8>>,
    pub sources: Vec<Count<String>>,
    pub source_ports: Vec<Count<u16>>,
    pub destination_ports: Vec<Count<u16>>,
    /// Distinct TTLs and sources seen.
    pub distinct_ttls: u64,
    pub distinct_sources: u64,
}

/// The TTL (or hop limit) of the frame's outer IP header.
fn ttl(link: LinkType, data: &[u8]) -> Option<u8> {
    let ip = match link {
        LinkType::Ethernet => {
            let mut at = 12;
            let mut et = u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]);
            while et == 0x8100 || et == 0x88a8 {
                at += 4;
                et = u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]);
            }
            data.get(at + 2..)?
        }
        LinkType::RawIp | LinkType::Kernel => data,
        _ => return None,
    };
    match ip.first()? >> 4 {
        4 => ip.get(8).copied(),
        6 => ip.get(7).copied(),
        _ => None,
    }
}

fn top<T: Clone + Ord + std::hash::Hash>(m: HashMap<T, u64>) -> Vec<Count<T>> {
    let mut v: Vec<Count<T>> = m
        .into_iter()
        .map(|(value, packets)| Count { value, packets })
        .collect();
    v.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.value.cmp(&b.value)));
    v.truncate(TOP);
    v
}

/// Counts kept while a capture is written.
#[derive(Debug, Default)]
pub struct Tally {
    packets: u64,
    sizes: [u64; SIZE_BINS.len()],
    ttls: HashMap<u8, u64>,
    sources: HashMap<String, u64>,
    sports: HashMap<u16, u64>,
    dports: HashMap<u16, u64>,
}

impl Tally {
    pub fn add(&mut self, f: &Frame) {
        self.packets += 1;
        let bin = SIZE_BINS
            .iter()
            .position(|&b| f.wire_len <= b)
            .unwrap_or(SIZE_BINS.len() - 1);
        self.sizes[bin] += 1;
        if let Some(t) = ttl(f.link, &f.data) {
            *self.ttls.entry(t).or_default() += 1;
        }
        let meta = Meta {
            wire_len: f.wire_len,
            ..Meta::default()
        };
        if let Ok(s) = crate::wire::parse_with(f.link, &f.data, meta, &Decap::default()) {
            *self.sources.entry(s.src.ip().to_string()).or_default() += 1;
            if s.has_ports {
                *self.sports.entry(s.src_port).or_default() += 1;
                *self.dports.entry(s.dst_port).or_default() += 1;
            }
        }
    }

    pub fn summary(self) -> CaptureSummary {
        let (distinct_ttls, distinct_sources) = (self.ttls.len() as u64, self.sources.len() as u64);
        CaptureSummary {
            packets: self.packets,
            sizes: SIZE_BINS
                .iter()
                .zip(self.sizes)
                .map(|(&b, packets)| Bin {
                    up_to: (b != u32::MAX).then_some(b),
                    packets,
                })
                .collect(),
            ttls: top(self.ttls),
            sources: top(self.sources),
            source_ports: top(self.sports),
            destination_ports: top(self.dports),
            distinct_ttls,
            distinct_sources,
        }
    }
}

/// Summarizes captured frames.
pub fn summarize(frames: &[Frame]) -> CaptureSummary {
    let mut t = Tally::default();
    for f in frames {
        t.add(f);
    }
    t.summary()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(src: [u8; 4], ttl: u8, sport: u16, pad: usize) -> Frame {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let len = (28 + pad) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&len.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0, ttl, 17, 0, 0]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&[10, 2, 0, 2]);
        ip.extend_from_slice(&sport.to_be_bytes());
        ip.extend_from_slice(&53u16.to_be_bytes());
        ip.extend_from_slice(&((8 + pad) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend(std::iter::repeat_n(0x41, pad));
        f.extend_from_slice(&ip);
        Frame {
            ts_ns: 0,
            wire_len: f.len() as u32,
            link: LinkType::Ethernet,
            data: f,
        }
    }

    #[test]
    fn sizes_ttls_sources_and_ports_of_the_captured_packets() {
        let mut frames = Vec::new();
        for i in 0..6u8 {
            frames.push(udp([198, 51, 100, 1], 64, 40000, 10));
            frames.push(udp([203, 0, 113, i], 250, 1000 + u16::from(i), 1000));
        }
        let s = summarize(&frames);
        assert_eq!(s.packets, 12);
        assert_eq!(
            s.sizes[0],
            Bin {
                up_to: Some(64),
                packets: 6
            }
        );
        assert_eq!(
            s.sizes[5],
            Bin {
                up_to: Some(1518),
                packets: 6
            }
        );
        assert_eq!(
            s.ttls,
            [
                Count {
                    value: 64,
                    packets: 6
                },
                Count {
                    value: 250,
                    packets: 6
                }
            ]
        );
        assert_eq!(
            s.sources[0],
            Count {
                value: "198.51.100.1".to_string(),
                packets: 6
            }
        );
        assert_eq!(s.distinct_sources, 7);
        assert_eq!(
            s.destination_ports,
            [Count {
                value: 53,
                packets: 12
            }]
        );
        assert_eq!(
            s.source_ports[0],
            Count {
                value: 40000,
                packets: 6
            }
        );
    }
}
