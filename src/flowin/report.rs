//! What each exporter sent: kept by the flow-input thread, published with
//! its shard every tick for `/api/v1/flow-input` and `/metrics`.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use super::{IfCounters, Problem, Protocol};

/// Interfaces kept per exporter; traffic on others is counted in
/// [`ExporterView::interfaces_unlisted`].
pub const MAX_INTERFACES: usize = 512;

/// Traffic of one exporter's interface, scaled, from its flow records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InterfaceView {
    pub if_index: u32,
    /// Traffic whose records name this interface as the input.
    pub in_packets: u64,
    pub in_bytes: u64,
    /// ... as the output.
    pub out_packets: u64,
    pub out_bytes: u64,
    /// The interface's own counters, from sFlow counter samples.
    pub counters: Option<IfCounters>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExporterView {
    pub address: IpAddr,
    /// The operator's name for it (`[[flow_input.exporter]]`), or "".
    pub name: String,
    pub protocol: Option<Protocol>,
    pub datagrams: u64,
    /// Records and samples counted.
    pub records: u64,
    /// Packets and bytes after scaling by the sampling rate.
    pub packets: u64,
    pub bytes: u64,
    /// The sampling rate applied to its last record, and where it came
    /// from: "configured", "declared" or "none".
    pub sampling: u32,
    pub sampling_source: &'static str,
    /// Datagrams dropped, per [`Problem::name`].
    pub dropped: Vec<(&'static str, u64)>,
    /// Records of no IP traffic, samples of formats not counted.
    pub skipped: u64,
    /// Data sets that waited for their template; those pushed out before
    /// it came; templates refused by a full table.
    pub held_sets: u64,
    pub held_dropped: u64,
    pub templates_refused: u64,
    pub last_seen_ms: u64,
    pub interfaces: Vec<InterfaceView>,
    pub interfaces_unlisted: u64,
}

impl ExporterView {
    /// An exporter nothing was counted of yet.
    pub fn new(address: IpAddr, name: String) -> ExporterView {
        ExporterView {
            address,
            name,
            protocol: None,
            datagrams: 0,
            records: 0,
            packets: 0,
            bytes: 0,
            sampling: 0,
            sampling_source: "none",
            dropped: Vec::new(),
            skipped: 0,
            held_sets: 0,
            held_dropped: 0,
            templates_refused: 0,
            last_seen_ms: 0,
            interfaces: Vec::new(),
            interfaces_unlisted: 0,
        }
    }
}

/// Flow input as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowReport {
    pub listen: Vec<String>,
    pub listen_tcp: Vec<String>,
    /// IPFIX connections open now; accepted since start; refused because
    /// `max_connections` were open.
    pub tcp_connections: usize,
    pub tcp_sessions: u64,
    pub tcp_connections_refused: u64,
    /// Silent connections closed to make room for a new one (see
    /// [`super::tcp::IDLE`]).
    pub tcp_connections_closed_idle: u64,
    pub exporters: Vec<ExporterView>,
    /// Datagrams from exporters beyond `max_exporters`, dropped.
    pub exporters_refused: u64,
    /// Datagrams the socket had no room for (the kernel's count, where it
    /// gives one) and receive errors.
    pub receive_errors: u64,
    /// Datagrams the sockets dropped for want of buffer room (the
    /// kernel's count).
    pub socket_drops: u64,
    pub templates: usize,
    pub held_sets_now: usize,
    pub held_bytes_now: usize,
}

/// The thread's running state of one exporter.
#[derive(Debug)]
pub(super) struct Exporter {
    pub view: ExporterView,
    /// Drops by their problem, in the order of [`Problem::ALL`].
    dropped: [u64; Problem::ALL.len()],
    pub interfaces: HashMap<u32, InterfaceView>,
}

impl Exporter {
    pub fn new(address: IpAddr, name: String) -> Exporter {
        Exporter {
            view: ExporterView::new(address, name),
            dropped: [0; Problem::ALL.len()],
            interfaces: HashMap::new(),
        }
    }

    /// Counts a datagram, or a record, dropped for `problem`.
    pub fn count_drop(&mut self, problem: Problem) {
        self.dropped[problem as usize] += 1;
    }

    pub fn interface(&mut self, if_index: u32) -> Option<&mut InterfaceView> {
        if !self.interfaces.contains_key(&if_index) && self.interfaces.len() >= MAX_INTERFACES {
            return None;
        }
        Some(self.interfaces.entry(if_index).or_insert(InterfaceView {
            if_index,
            ..InterfaceView::default()
        }))
    }

    /// Attributes scaled traffic to its input and output interfaces.
    pub fn attribute(&mut self, input: u32, output: u32, packets: u64, bytes: u64) {
        let mut unlisted = false;
        if input != 0 {
            match self.interface(input) {
                Some(i) => {
                    i.in_packets += packets;
                    i.in_bytes += bytes;
                }
                None => unlisted = true,
            }
        }
        if output != 0 {
            match self.interface(output) {
                Some(i) => {
                    i.out_packets += packets;
                    i.out_bytes += bytes;
                }
                None => unlisted = true,
            }
        }
        if unlisted {
            self.view.interfaces_unlisted += 1;
        }
    }

    pub fn view(&self) -> ExporterView {
        let mut v = self.view.clone();
        v.dropped = Problem::ALL
            .iter()
            .filter(|&&p| self.dropped[p as usize] > 0)
            .map(|&p| (p.name(), self.dropped[p as usize]))
            .collect();
        v.interfaces = self.interfaces.values().copied().collect();
        v.interfaces.sort_by_key(|i| i.if_index);
        v
    }
}
