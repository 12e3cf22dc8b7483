//! Detectors: each reads one thing off a host's windows and says how it
//! stands against its limit. They are listed once, in [`all`]; the
//! aggregator asks each of them about every host that moved this tick and
//! every host with an open alert, and the alert lifecycle does the rest.

mod address_scan;
mod inbound;
mod port_scan;
mod rate;
mod traffic;

use std::fmt;

use crate::alert::{AlertKind, Measurement};
use crate::hosts::HostState;
use crate::rates::{COLUMNS, Class, Columns, Dir};
use crate::rules::Limits;
use crate::window::Geometry;

/// What a detector may know about the moment.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub now: u64,
    /// The traffic window (bytes and packets, sent and received).
    pub traffic: &'a Geometry,
    /// Address-scan window, ticks.
    pub scan_window: u64,
    /// Port-scan window, ticks.
    pub port_window: u64,
    /// The rate columns kept, and the rate window in milliseconds.
    pub rate_columns: &'a [u8],
    pub rate_window_ms: u64,
}

/// What the detectors read off a host, worked out once per host and tick:
/// its window sums and its distinct contacts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub recv_bytes: u64,
    pub recv_packets: u64,
    /// Distinct addresses it initiated contact to in the scan window.
    pub addresses: u64,
    /// Distinct ports it initiated contact to in the port window.
    pub ports: u64,
    /// Per second over the rate window, by rate column
    /// ([`crate::rates::column`]; the columns not kept read 0); `None`
    /// for a host without a rate window (most: nothing to fill then).
    pub rates: Option<[u64; COLUMNS]>,
}

impl Reading {
    pub fn of(h: &HostState, ctx: &Ctx<'_>) -> Reading {
        let mut r = Reading::default();
        r.read(h, ctx);
        r
    }

    /// [`Reading::of`] into this reading, field by field: the pass keeps
    /// one for all its hosts. Made and returned whole once per host, the
    /// reading (264 bytes with its rate columns) was built apart and
    /// copied with a `memcpy` (1.7 % of a long sparse capture's
    /// instructions). Inlined always: called, it cost another 0.7 %.
    #[inline(always)]
    pub fn read(&mut self, h: &HostState, ctx: &Ctx<'_>) {
        [
            self.sent_bytes,
            self.sent_packets,
            self.recv_bytes,
            self.recv_packets,
        ] = h.win.sums(ctx.traffic, ctx.now);
        (self.addresses, self.ports) = match &h.scan {
            Some(s) => (
                s.addresses.count(ctx.now, ctx.scan_window) as u64,
                s.ports.count(ctx.now, ctx.port_window) as u64,
            ),
            None => (0, 0),
        };
        let Some(w) = &h.rates else {
            self.rates = None;
            return;
        };
        let rates = self.rates.insert([0u64; COLUMNS]);
        let mut sums = [0u64; COLUMNS];
        let k = ctx.rate_columns.len();
        w.sums(ctx.now, &mut sums[..k]);
        let ms = u128::from(ctx.rate_window_ms.max(1));
        for (&c, &sum) in ctx.rate_columns.iter().zip(&sums[..k]) {
            rates[usize::from(c)] = (u128::from(sum) * 1000 / ms) as u64;
        }
    }
}

/// One detector.
pub trait Detector: Send + Sync + fmt::Debug {
    fn kind(&self) -> AlertKind;
    /// The reading for a host under its limits, or `None` if this detector
    /// has no limit for it (switched off, or not set by its rule).
    fn measure(&self, r: &Reading, limits: &Limits) -> Option<Measurement>;
}

/// One detector, called through a `match`, not a vtable. The tick's pass
/// asks each detector about every host that moved, and a call through a
/// pointer hands its measurement back through memory, written in pieces
/// and read back whole before the pieces reach the cache: in a long
/// capture of many hosts, where the pass is most of the work, that wait
/// was four fifths of the pass. Matched, the detectors are inlined and
/// the measurement stays in registers.
#[derive(Debug)]
pub enum AnyDetector {
    Traffic(traffic::Traffic),
    AddressScan(address_scan::AddressScan),
    PortScan(port_scan::PortScan),
    Inbound(inbound::Inbound),
    Rate(rate::Rate),
}

impl Detector for AnyDetector {
    #[inline]
    fn kind(&self) -> AlertKind {
        match self {
            AnyDetector::Traffic(d) => d.kind(),
            AnyDetector::AddressScan(d) => d.kind(),
            AnyDetector::PortScan(d) => d.kind(),
            AnyDetector::Inbound(d) => d.kind(),
            AnyDetector::Rate(d) => d.kind(),
        }
    }

    #[inline(always)]
    fn measure(&self, r: &Reading, limits: &Limits) -> Option<Measurement> {
        match self {
            AnyDetector::Traffic(d) => d.measure(r, limits),
            AnyDetector::AddressScan(d) => d.measure(r, limits),
            AnyDetector::PortScan(d) => d.measure(r, limits),
            AnyDetector::Inbound(d) => d.measure(r, limits),
            AnyDetector::Rate(d) => d.measure(r, limits),
        }
    }
}

/// Every detector of the volume windows and scans.
pub fn all() -> Vec<AnyDetector> {
    vec![
        AnyDetector::Traffic(traffic::Traffic),
        AnyDetector::AddressScan(address_scan::AddressScan),
        AnyDetector::PortScan(port_scan::PortScan),
        AnyDetector::Inbound(inbound::Inbound),
    ]
}

/// [`all`], and a rate detector for each class and direction some kept
/// column ([`Columns`]) belongs to: hosts are not asked about rates no
/// limit reads.
pub fn with_rates(columns: &Columns) -> Vec<AnyDetector> {
    let mut v = all();
    for dir in [Dir::In, Dir::Out] {
        for class in Class::ALL {
            let used = |bits| {
                columns
                    .0
                    .contains(&(crate::rates::column(dir, class, bits) as u8))
            };
            if used(false) || (class.has_bits() && used(true)) {
                v.push(AnyDetector::Rate(rate::Rate { class, dir }));
            }
        }
    }
    v
}

/// The reading of a byte and an optional packet limit: over on either;
/// reports the one that is over (bytes if neither).
fn bytes_or_packets(
    bytes: u64,
    packets: u64,
    byte_limit: Option<u64>,
    packet_limit: Option<u64>,
) -> Option<Measurement> {
    use crate::alert::Unit;
    let by_bytes = byte_limit.map(|t| Measurement {
        value: bytes,
        threshold: t,
        unit: Unit::Bytes,
    });
    let by_packets = packet_limit.map(|t| Measurement {
        value: packets,
        threshold: t,
        unit: Unit::Packets,
    });
    either(by_bytes, by_packets)
}

/// Of two readings of one subject, the one that is over its limit: the
/// `first` unless only the `second` is over (or there is no first).
fn either(first: Option<Measurement>, second: Option<Measurement>) -> Option<Measurement> {
    match (first, second) {
        (Some(f), Some(s)) if !f.over() && s.over() => Some(s),
        (Some(f), _) => Some(f),
        (None, s) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Unit;
    use crate::hosts::HostTable;
    use crate::rules::RuleSet;
    use crate::shard::Hasher;
    use crate::window::col;
    use crate::wire::Addr;

    fn limits() -> Limits {
        Limits {
            byte_limit: Some(1000),
            packet_limit: Some(10),
            max_contacted_ips: Some(3),
            max_contacted_ports: Some(5),
            inbound_byte_limit: Some(2000),
            inbound_packet_limit: None,
            rates: Default::default(),
        }
    }

    fn reading(kind: AlertKind, h: &HostState, l: &Limits, now: u64) -> Option<Measurement> {
        let g = Geometry::new(10);
        let ctx = Ctx {
            now,
            traffic: &g,
            scan_window: 10,
            port_window: 20,
            rate_columns: &[],
            rate_window_ms: 5000,
        };
        all()
            .into_iter()
            .find(|d| d.kind() == kind)?
            .measure(&Reading::of(h, &ctx), l)
    }

    fn host() -> (HostTable, u32) {
        let mut t = HostTable::new(10, &Hasher::new());
        let id = t
            .upsert(
                Addr::from_v4([10, 0, 0, 1]),
                &RuleSet::new(Limits::default(), vec![]),
            )
            .unwrap();
        (t, id)
    }

    #[test]
    fn traffic_at_and_past_the_byte_limit() {
        let (mut t, id) = host();
        let g = Geometry::new(10);
        t.slot_mut(id).win.add(&g, 0, [1000, 1, 0, 0]);
        let m = reading(AlertKind::Traffic, t.slot(id), &limits(), 0).unwrap();
        assert_eq!(
            (m.value, m.threshold, m.unit, m.over()),
            (1000, 1000, Unit::Bytes, false)
        );
        t.slot_mut(id).win.add(&g, 1, [1, 1, 0, 0]);
        assert!(
            reading(AlertKind::Traffic, t.slot(id), &limits(), 1)
                .unwrap()
                .over()
        );
    }

    #[test]
    fn traffic_by_packets_when_only_packets_are_over() {
        let (mut t, id) = host();
        let g = Geometry::new(10);
        t.slot_mut(id).win.add(&g, 0, [100, 11, 0, 0]);
        let m = reading(AlertKind::Traffic, t.slot(id), &limits(), 0).unwrap();
        assert_eq!((m.unit, m.value, m.over()), (Unit::Packets, 11, true));
        let mut no_packets = limits();
        no_packets.packet_limit = None;
        assert!(
            !reading(AlertKind::Traffic, t.slot(id), &no_packets, 0)
                .unwrap()
                .over()
        );
    }

    #[test]
    fn inbound_counts_what_a_host_received() {
        let (mut t, id) = host();
        let g = Geometry::new(10);
        t.slot_mut(id).win.add(&g, 0, [0, 0, 2001, 5]);
        assert_eq!(t.slot(id).win.sum(&g, 0, col::RECV_BYTES), 2001);
        assert!(
            reading(AlertKind::Inbound, t.slot(id), &limits(), 0)
                .unwrap()
                .over()
        );
        assert!(
            !reading(AlertKind::Traffic, t.slot(id), &limits(), 0)
                .unwrap()
                .over()
        );
        let mut off = limits();
        off.inbound_byte_limit = None;
        assert_eq!(reading(AlertKind::Inbound, t.slot(id), &off, 0), None);
    }

    #[test]
    fn scans_count_distinct_contacts_in_their_windows() {
        let (mut t, id) = host();
        let h = t.slot_mut(id);
        for k in 0..4 {
            h.scan_mut().addresses.touch(k, 5, 10, 4, false);
        }
        for p in 0..6 {
            h.scan_mut().ports.touch(p, 5, 20, 6, false);
        }
        let a = reading(AlertKind::AddressScan, t.slot(id), &limits(), 5).unwrap();
        assert_eq!(
            (a.value, a.threshold, a.unit, a.over()),
            (4, 3, Unit::Addresses, true)
        );
        let p = reading(AlertKind::PortScan, t.slot(id), &limits(), 5).unwrap();
        assert_eq!((p.value, p.unit, p.over()), (6, Unit::Ports, true));
        // The address window (10) has passed, the port window (20) not.
        assert_eq!(
            reading(AlertKind::AddressScan, t.slot(id), &limits(), 15)
                .unwrap()
                .value,
            0
        );
        assert_eq!(
            reading(AlertKind::PortScan, t.slot(id), &limits(), 15)
                .unwrap()
                .value,
            6
        );
    }

    #[test]
    fn a_host_without_scan_sets_reads_zero() {
        let (t, id) = host();
        assert_eq!(
            reading(AlertKind::AddressScan, t.slot(id), &limits(), 0)
                .unwrap()
                .value,
            0
        );
    }
}
