//! Flow input: sFlow v5, NetFlow v5 and v9, and IPFIX from routers,
//! decoded into the same shard → window → detect path as captured packets.
//!
//! IPFIX also comes over TCP ([`tcp`]). One thread owns the listening
//! sockets, the connections and a shard, like a capture
//! worker: it decodes each datagram, scales its records by the sampling
//! rate (configured per exporter, else declared by the exporter, else 1),
//! counts them into its shard and hands the shard over every tick. What
//! each exporter sent, dropped and on which interfaces is published with
//! the shard, for the API and `/metrics`.

pub mod build;
pub mod held;
pub mod netflow5;
pub mod record;
pub mod report;
pub mod sflow;
pub mod tcp;
pub mod templated;
pub mod thread;

pub use report::{ExporterView, FlowReport};

use crate::wire::Summary;
use record::FlowRecord;

/// Why a datagram (or its rest) was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Problem {
    /// Shorter than its headers or records say.
    Truncated,
    /// A length or count field out of bounds.
    Length,
    /// Not NetFlow v5/v9, IPFIX or sFlow v5.
    Version,
    /// A template that cannot describe records.
    Template,
    /// Some other field with an impossible value.
    Malformed,
    /// A record (not a datagram) standing for more than [`MAX_RECORD`]
    /// packets or bytes once scaled.
    Implausible,
}

/// Most packets or bytes one record may stand for after scaling (a
/// terabyte): beyond, sums over a tick could wrap.
pub const MAX_RECORD: u64 = 1 << 40;

impl Problem {
    pub const ALL: [Problem; 6] = [
        Problem::Truncated,
        Problem::Length,
        Problem::Version,
        Problem::Template,
        Problem::Malformed,
        Problem::Implausible,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Problem::Truncated => "truncated",
            Problem::Length => "bad_length",
            Problem::Version => "unknown_version",
            Problem::Template => "bad_template",
            Problem::Malformed => "malformed",
            Problem::Implausible => "implausible_record",
        }
    }
}

/// The flow protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Sflow5,
    Netflow5,
    Netflow9,
    Ipfix,
}

/// A record or sample ready to count: before scaling.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flow {
    pub summary: Summary,
    pub packets: u64,
    pub bytes: u64,
    pub input_if: u32,
    pub output_if: u32,
    /// Sampling interval the record or its sample says (0 = none).
    pub sampling: u32,
}

/// An interface's counters from an sFlow counter sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IfCounters {
    pub if_index: u32,
    pub in_octets: u64,
    pub in_packets: u64,
    pub out_octets: u64,
    pub out_packets: u64,
}

/// What one datagram decoded to; kept and cleared between datagrams so
/// decoding does not allocate once warm.
#[derive(Debug, Default)]
pub struct Decoded {
    pub flows: Vec<Flow>,
    pub counters: Vec<IfCounters>,
    /// Records of no IP traffic, samples of formats not counted.
    pub skipped: u64,
}

impl Decoded {
    pub fn clear(&mut self) {
        self.flows.clear();
        self.counters.clear();
        self.skipped = 0;
    }

    fn push_record(&mut self, r: &FlowRecord) {
        self.flows.push(Flow {
            summary: r.summary(),
            packets: r.packets,
            bytes: r.bytes,
            input_if: r.input_if,
            output_if: r.output_if,
            sampling: r.sampling,
        });
    }

    fn push_sample(&mut self, s: &Summary, rate: u32, input: u32, output: u32) {
        self.flows.push(Flow {
            summary: *s,
            packets: 1,
            bytes: u64::from(s.l3_len),
            input_if: input,
            output_if: output,
            sampling: rate,
        });
    }

    fn push_counters(&mut self, c: IfCounters) {
        self.counters.push(c);
    }
}

/// What [`decode`] found in a datagram besides its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    pub protocol: Protocol,
    /// A sampling interval its header declares (NetFlow v5), 0 = none.
    pub sampling: u32,
    pub sets: templated::SetReport,
}

/// Decodes a datagram of any of the four protocols from `exporter`. On an
/// error nothing of it is in `out` (templates it carried before the error
/// are kept).
pub fn decode(
    templates: &mut templated::Templates,
    exporter: std::net::SocketAddr,
    d: &[u8],
    out: &mut Decoded,
) -> Result<Datagram, (Option<Protocol>, Problem)> {
    let (flows, counters) = (out.flows.len(), out.counters.len());
    let r = decode_inner(templates, exporter, d, out);
    if r.is_err() {
        out.flows.truncate(flows);
        out.counters.truncate(counters);
    }
    r
}

fn decode_inner(
    templates: &mut templated::Templates,
    exporter: std::net::SocketAddr,
    d: &[u8],
    out: &mut Decoded,
) -> Result<Datagram, (Option<Protocol>, Problem)> {
    if d.len() < 4 {
        return Err((None, Problem::Truncated));
    }
    let plain = |protocol, sampling| Datagram {
        protocol,
        sampling,
        sets: templated::SetReport::default(),
    };
    match (
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
    ) {
        (0, 5) => sflow::decode(d, out)
            .map(|()| plain(Protocol::Sflow5, 0))
            .map_err(|e| (Some(Protocol::Sflow5), e)),
        (5, _) => netflow5::decode(d, out)
            .map(|s| plain(Protocol::Netflow5, s))
            .map_err(|e| (Some(Protocol::Netflow5), e)),
        (9, _) => templates
            .decode(exporter, d, out)
            .map(|sets| Datagram {
                protocol: Protocol::Netflow9,
                sampling: 0,
                sets,
            })
            .map_err(|e| (Some(Protocol::Netflow9), e)),
        (10, _) => templates
            .decode(exporter, d, out)
            .map(|sets| Datagram {
                protocol: Protocol::Ipfix,
                sampling: 0,
                sets,
            })
            .map_err(|e| (Some(Protocol::Ipfix), e)),
        _ => Err((None, Problem::Version)),
    }
}

#[cfg(test)]
mod tests;
