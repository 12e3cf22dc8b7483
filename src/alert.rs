//! Alerts and their life: opened on the first tick a threshold is crossed,
//! updated (not re-sent) while it stays crossed, closed once the value has
//! stayed at or below the threshold for the hold-down time.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::openmap::{OpenMap, Vacancy};
use crate::rates::{Class, Dir};
use crate::shard::Hasher;
use crate::wheel::Wheel;
use crate::wire::Addr;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A source sent more than its byte (or packet) limit within the window.
    Traffic,
    /// A source contacted more distinct addresses than allowed.
    AddressScan,
    /// A source contacted more distinct ports than allowed.
    PortScan,
    /// A destination received more than its limit from all sources.
    Inbound,
    /// Rates over the short window ([`crate::rates`]): a host received
    /// (`_in`) or sent (`_out`) more packets or bits per second of a class
    /// than its limit.
    RateIn,
    RateOut,
    TcpIn,
    TcpOut,
    SynIn,
    SynOut,
    UdpIn,
    UdpOut,
    IcmpIn,
    IcmpOut,
    FragmentsIn,
    FragmentsOut,
    FlowsIn,
    FlowsOut,
}

/// How many kinds there are.
pub const KINDS: usize = 18;

impl AlertKind {
    pub const ALL: [AlertKind; KINDS] = [
        AlertKind::Traffic,
        AlertKind::AddressScan,
        AlertKind::PortScan,
        AlertKind::Inbound,
        AlertKind::RateIn,
        AlertKind::RateOut,
        AlertKind::TcpIn,
        AlertKind::TcpOut,
        AlertKind::SynIn,
        AlertKind::SynOut,
        AlertKind::UdpIn,
        AlertKind::UdpOut,
        AlertKind::IcmpIn,
        AlertKind::IcmpOut,
        AlertKind::FragmentsIn,
        AlertKind::FragmentsOut,
        AlertKind::FlowsIn,
        AlertKind::FlowsOut,
    ];

    /// Bit of this kind in a host's alert mask.
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The rate kind of a class and direction.
    pub fn of_rate(class: Class, dir: Dir) -> AlertKind {
        AlertKind::ALL[4 + 2 * class as usize + dir.index()]
    }

    /// The class and direction of a rate kind.
    pub fn rate(self) -> Option<(Class, Dir)> {
        let i = self.index().checked_sub(4)?;
        let dir = if i % 2 == 0 { Dir::In } else { Dir::Out };
        Some((Class::ALL[i / 2], dir))
    }

    /// The word of the log line, as the original wrote it where it had one.
    pub fn event_word(self) -> &'static str {
        match self {
            AlertKind::Traffic => "TRAFFIC",
            AlertKind::AddressScan => "SCANNING",
            AlertKind::PortScan => "SCANNING_PORT",
            AlertKind::Inbound => "INBOUND",
            AlertKind::RateIn => "RATE_IN",
            AlertKind::RateOut => "RATE_OUT",
            AlertKind::TcpIn => "TCP_IN",
            AlertKind::TcpOut => "TCP_OUT",
            AlertKind::SynIn => "SYN_IN",
            AlertKind::SynOut => "SYN_OUT",
            AlertKind::UdpIn => "UDP_IN",
            AlertKind::UdpOut => "UDP_OUT",
            AlertKind::IcmpIn => "ICMP_IN",
            AlertKind::IcmpOut => "ICMP_OUT",
            AlertKind::FragmentsIn => "FRAGMENTS_IN",
            AlertKind::FragmentsOut => "FRAGMENTS_OUT",
            AlertKind::FlowsIn => "FLOWS_IN",
            AlertKind::FlowsOut => "FLOWS_OUT",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Traffic => "traffic",
            AlertKind::AddressScan => "address_scan",
            AlertKind::PortScan => "port_scan",
            AlertKind::Inbound => "inbound",
            AlertKind::RateIn => "rate_in",
            AlertKind::RateOut => "rate_out",
            AlertKind::TcpIn => "tcp_in",
            AlertKind::TcpOut => "tcp_out",
            AlertKind::SynIn => "syn_in",
            AlertKind::SynOut => "syn_out",
            AlertKind::UdpIn => "udp_in",
            AlertKind::UdpOut => "udp_out",
            AlertKind::IcmpIn => "icmp_in",
            AlertKind::IcmpOut => "icmp_out",
            AlertKind::FragmentsIn => "fragments_in",
            AlertKind::FragmentsOut => "fragments_out",
            AlertKind::FlowsIn => "flows_in",
            AlertKind::FlowsOut => "flows_out",
        }
    }

    /// Whether the subject is the sender or the receiver.
    pub fn subject_is_source(self) -> bool {
        match self.rate() {
            Some((_, dir)) => dir == Dir::Out,
            None => self != AlertKind::Inbound,
        }
    }
}

/// Unit of an alert's value and threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Bytes,
    Packets,
    Addresses,
    Ports,
    /// Rates: averages per second over the rate window.
    #[serde(rename = "packets/s")]
    PacketsPerSec,
    #[serde(rename = "bits/s")]
    BitsPerSec,
    #[serde(rename = "flows/s")]
    FlowsPerSec,
}

/// A detector's reading of one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    pub value: u64,
    pub threshold: u64,
    pub unit: Unit,
}

impl Measurement {
    /// "More than the limit": a value equal to the threshold is not over it.
    pub fn over(&self) -> bool {
        self.value > self.threshold
    }
}

/// A host and what went between it and the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub ip: IpAddr,
    pub bytes: u64,
    pub packets: u64,
}

/// A port contacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRef {
    pub proto: String,
    pub port: u16,
}

/// Why the alert was raised, in facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Largest destinations of the subject (traffic, address scan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Peer>,
    /// Largest sources toward the subject (inbound).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Peer>,
    /// A sample of the ports contacted (port scan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRef>,
    /// How many distinct addresses (address scan) or ports (port scan) the
    /// subject contacted since its scan first went past the threshold,
    /// estimated (a HyperLogLog sketch, ~3.3 % standard error; never below
    /// the exact count within the window). Absent for other kinds, and
    /// when the table's budget of sketches was spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacted: Option<u64>,
    /// A flood toward the subject (inbound, a rate in): its protocol,
    /// ports and sources' spread ([`crate::aggregator::fingerprint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<crate::aggregator::fingerprint::Fingerprint>,
    /// What the flood's captured packets show: sizes, TTLs, top sources
    /// and ports ([`crate::attacks`]); once its capture is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<crate::attacks::summary::CaptureSummary>,
}

/// One alert, as sinks, the history file and the API see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: u64,
    pub kind: AlertKind,
    pub subject: IpAddr,
    /// The `[[rule]]` whose limits applied ("default" for none).
    pub rule: String,
    /// Unix time in milliseconds.
    pub start_ms: u64,
    pub last_update_ms: u64,
    pub end_ms: Option<u64>,
    /// The value now (at close: when it closed), its highest, and the limit.
    pub value: u64,
    pub peak: u64,
    pub threshold: u64,
    pub unit: Unit,
    /// Length of the window the value is counted over, seconds.
    pub window_secs: u64,
    /// The capture was losing packets (ring drops above
    /// `alerts.degraded_drop_ratio` of the window) while this alert was
    /// open: its figures are a floor.
    pub degraded: bool,
    /// Highest share of packets the kernel dropped in the window while the
    /// alert was open.
    pub drop_ratio: f64,
    /// Shared, not copied, by the events, the sinks, the snapshot and the
    /// recently closed alerts that carry it (copy on write).
    pub evidence: Arc<Evidence>,
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    Open,
    Close,
    /// A route announced, withdrawn, refused or only logged for the
    /// alert's subject ([`crate::mitigation`]); the alert is as it was then.
    Mitigation,
}

/// An alert opened or closed, or acted on: what sinks receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub event: Transition,
    pub alert: Alert,
    /// What was done, for a [`Transition::Mitigation`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<crate::mitigation::Action>,
}

impl AlertEvent {
    /// An opening or closing.
    pub fn of(event: Transition, alert: Alert) -> AlertEvent {
        AlertEvent {
            event,
            alert,
            mitigation: None,
        }
    }
}

/// The current time in both clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub tick: u64,
    pub unix_ms: u64,
}

/// An open alert and its bookkeeping.
#[derive(Debug, Clone)]
pub struct OpenAlert {
    pub alert: Alert,
    /// First tick of the current stretch at or below the threshold.
    below_since: Option<u64>,
    /// Tick the evidence was last gathered.
    pub evidence_tick: u64,
    /// When it is looked at next even if its subject does not move.
    next_check: u64,
    /// `next_check` when it was scheduled over the threshold (0: it was
    /// not): see [`Lifecycle::schedule_by`].
    over_look: u64,
}

/// Open alerts, keyed by kind and subject.
///
/// An open alert is looked at when its subject moves, and otherwise when
/// the aggregator scheduled it ([`Lifecycle::schedule`]): when its value can
/// fall next, or when its hold-down ends. No tick visits every open alert.
#[derive(Debug)]
pub struct Lifecycle {
    open: OpenAlerts,
    /// The next alert id, shared by the lifecycles of all partitions.
    next_id: Arc<AtomicU64>,
    /// Ticks below the threshold before an alert closes, per kind.
    hold_down: [u64; KINDS],
    /// Seconds per tick, for `window_secs`.
    window_secs: [u64; KINDS],
    /// Opened since the last [`Lifecycle::take_opened`].
    fresh: Vec<(AlertKind, Addr)>,
    /// Scheduled looks by tick, each with the tick it was scheduled for; an
    /// entry whose alert has closed or was rescheduled is dropped when it
    /// comes up. A wheel, not a heap: with thousands of alerts open, a
    /// heap's pops missed the cache at every level.
    checks: Wheel<Check>,
    /// Entries drained from `checks`, put in order.
    drained: Vec<Check>,
}

/// A scheduled look: its tick, then what it looks at (in this order, so
/// that sorted looks come out as a heap gave them).
type Check = (u64, AlertKind, Addr);

/// Context of the current tick for observations.
#[derive(Debug, Clone, Copy)]
pub struct Situation {
    pub now: Now,
    /// Share of packets the kernel dropped over the traffic window.
    pub drop_ratio: f64,
    /// Above this share, alerts are marked degraded.
    pub degraded_ratio: f64,
}

impl Lifecycle {
    pub fn new(hold_down: [u64; KINDS], window_secs: [u64; KINDS]) -> Lifecycle {
        Lifecycle::with_ids(hold_down, window_secs, Arc::new(AtomicU64::new(1)))
    }

    /// A lifecycle that numbers its alerts from `ids`, shared with others.
    pub fn with_ids(
        hold_down: [u64; KINDS],
        window_secs: [u64; KINDS],
        ids: Arc<AtomicU64>,
    ) -> Lifecycle {
        Lifecycle {
            open: OpenAlerts::new(),
            next_id: ids,
            hold_down,
            window_secs,
            fresh: Vec::new(),
            checks: Wheel::new(0),
            drained: Vec::new(),
        }
    }

    /// New hold-down and window lengths (configuration reload).
    pub fn retime(&mut self, hold_down: [u64; KINDS], window_secs: [u64; KINDS]) {
        self.hold_down = hold_down;
        self.window_secs = window_secs;
    }

    /// Applies one reading. Returns true if the alert opened now.
    pub fn observe(
        &mut self,
        kind: AlertKind,
        subject: Addr,
        m: Measurement,
        rule: &str,
        s: &Situation,
        closed: &mut Vec<Alert>,
    ) -> bool {
        let now = s.now;
        let degraded = s.drop_ratio > s.degraded_ratio;
        if let Some(o) = self.open.get_mut(&(kind, subject)) {
            let a = &mut o.alert;
            a.value = m.value;
            a.threshold = m.threshold;
            a.unit = m.unit;
            if m.over() {
                o.below_since = None;
                a.peak = a.peak.max(m.value);
                a.last_update_ms = now.unix_ms;
                if degraded {
                    a.degraded = true;
                }
                a.drop_ratio = a.drop_ratio.max(s.drop_ratio);
                return false;
            }
            let since = *o.below_since.get_or_insert(now.tick);
            if now.tick + 1 - since >= self.hold_down[kind.index()] {
                if let Some(mut o) = self.open.remove(&(kind, subject)) {
                    o.alert.end_ms = Some(now.unix_ms);
                    closed.push(o.alert);
                }
            }
            return false;
        }
        if !m.over() {
            return false;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open.insert(
            (kind, subject),
            Box::new(OpenAlert {
                alert: Alert {
                    id,
                    kind,
                    subject: subject.ip(),
                    rule: rule.to_string(),
                    start_ms: now.unix_ms,
                    last_update_ms: now.unix_ms,
                    end_ms: None,
                    value: m.value,
                    peak: m.value,
                    threshold: m.threshold,
                    unit: m.unit,
                    window_secs: self.window_secs[kind.index()],
                    degraded,
                    drop_ratio: s.drop_ratio,
                    evidence: Arc::default(),
                },
                below_since: None,
                evidence_tick: now.tick,
                next_check: u64::MAX,
                over_look: 0,
            }),
        );
        self.fresh.push((kind, subject));
        true
    }

    /// An open alert whose subject cannot be measured (its host is gone
    /// from the table, a rule ignores it now, its detector was switched
    /// off): it counts as below its threshold, and closes after the
    /// hold-down.
    pub fn unobserved(
        &mut self,
        kind: AlertKind,
        subject: Addr,
        now: Now,
        closed: &mut Vec<Alert>,
    ) {
        let Some(o) = self.open.get_mut(&(kind, subject)) else {
            return;
        };
        let since = *o.below_since.get_or_insert(now.tick);
        if now.tick + 1 - since >= self.hold_down[kind.index()] {
            if let Some(mut o) = self.open.remove(&(kind, subject)) {
                o.alert.end_ms = Some(now.unix_ms);
                closed.push(o.alert);
            }
        }
    }

    /// The alerts opened since the last call, still open, to be announced,
    /// each once (one that closed and opened again is one alert now).
    pub fn take_opened(&mut self) -> Vec<(AlertKind, Addr)> {
        let mut v = std::mem::take(&mut self.fresh);
        let mut once = hashbrown::HashSet::with_capacity_and_hasher(v.len(), Hasher::new());
        v.retain(|k| self.open.contains_key(k) && once.insert(*k));
        v
    }

    /// Looks at the alert again at `tick` even if its subject does not
    /// move. A look already scheduled between `now` and `tick` stays (it
    /// will schedule the next one itself); one scheduled later, or already
    /// past, is replaced.
    pub fn schedule(&mut self, kind: AlertKind, subject: Addr, now: u64, tick: u64) {
        if let Some(o) = self.open.get_mut(&(kind, subject)) {
            look_at(o, &mut self.checks, kind, subject, now, tick);
        }
    }

    /// [`Lifecycle::schedule`] of an open alert at the tick `at` works out
    /// from when the alert closes if nothing changes ([`Lifecycle::closes_at`];
    /// `None`: over its threshold), no earlier than the next tick. Nothing
    /// for an alert not open. One lookup of the alert where asking whether
    /// it is open, when it closes and then scheduling took three, for every
    /// alerting host a tick looks at.
    ///
    /// Over its threshold, `at(None)` is when its value can next fall, and
    /// that only moves later while nothing looks (a subject that moves
    /// makes its contacts and traffic younger). So a look scheduled over
    /// the threshold and still to come is no later than the one `at` would
    /// give now: it stays, and `at` is not asked (for a scanner, a pass over
    /// its set each time it moves).
    pub fn schedule_by(
        &mut self,
        kind: AlertKind,
        subject: Addr,
        now: u64,
        at: impl FnOnce(Option<u64>) -> u64,
    ) {
        let hold = self.hold_down[kind.index()];
        let Some(o) = self.open.get_mut(&(kind, subject)) else {
            return;
        };
        let closes = closes(o, hold);
        if closes.is_none() && o.next_check > now && o.next_check == o.over_look {
            return;
        }
        let tick = at(closes).max(now + 1);
        look_at(o, &mut self.checks, kind, subject, now, tick);
        o.over_look = if closes.is_none() { o.next_check } else { 0 };
    }

    /// When a below-threshold alert closes if nothing changes: the last
    /// tick of its hold-down. `None` if it is over its threshold (or not
    /// open).
    pub fn closes_at(&self, kind: AlertKind, subject: Addr) -> Option<u64> {
        closes(
            self.open.get(&(kind, subject))?,
            self.hold_down[kind.index()],
        )
    }

    /// The alerts scheduled to be looked at by `tick`, each once.
    pub fn due(&mut self, tick: u64, out: &mut Vec<(AlertKind, Addr)>) {
        let mut drained = std::mem::take(&mut self.drained);
        drained.clear();
        self.checks.drain(tick, &mut drained);
        // Earliest first, as they were scheduled.
        drained.sort_unstable();
        // Alerts looked at because their subject did not move: their
        // entries and boxes are cold, fetched a few alerts ahead.
        for (i, &(t, kind, subject)) in drained.iter().enumerate() {
            if let Some(&(_, k, a)) = drained.get(i + 8) {
                self.prefetch_entries(k.bit(), a);
            }
            if let Some(&(_, k, a)) = drained.get(i + 4) {
                self.prefetch(k.bit(), a);
            }
            if self
                .open
                .get(&(kind, subject))
                .is_some_and(|o| o.next_check == t)
            {
                out.push((kind, subject));
            }
        }
        self.drained = drained;
    }

    /// The earliest scheduled look, if any (it may be one no longer
    /// needed).
    pub fn next_due(&self) -> Option<u64> {
        self.checks.next_due()
    }

    /// Every open alert looked at `tick` (limits changed on a reload).
    pub fn recheck_all(&mut self, tick: u64) {
        let keys: Vec<(AlertKind, Addr)> = self.open.keys().collect();
        for (kind, subject) in keys {
            if let Some(o) = self.open.get_mut(&(kind, subject)) {
                o.next_check = tick;
                self.checks.schedule(tick, (tick, kind, subject));
            }
        }
    }

    /// Puts back alerts that were open when the daemon stopped.
    pub fn restore(&mut self, alerts: Vec<Alert>, now: Now) {
        for a in alerts {
            self.next_id.fetch_max(a.id + 1, Ordering::Relaxed);
            let Ok(addr) = a.subject.to_string().parse::<IpAddr>() else {
                continue;
            };
            let key = (a.kind, Addr::from(addr));
            self.open.insert(
                key,
                Box::new(OpenAlert {
                    alert: a,
                    below_since: None,
                    evidence_tick: now.tick,
                    next_check: u64::MAX,
                    over_look: 0,
                }),
            );
            // Looked at from the first tick: below its threshold unless the
            // detectors say otherwise.
            if let Some(o) = self.open.get_mut(&key) {
                o.next_check = now.tick;
                self.checks.schedule(now.tick, (now.tick, key.0, key.1));
            }
        }
    }

    /// Ids continue after those already in the history.
    pub fn continue_ids_after(&mut self, id: u64) {
        self.next_id.fetch_max(id + 1, Ordering::Relaxed);
    }

    /// Starts loading where the open alerts of `subject` whose kinds are
    /// the bits of `kinds` ([`AlertKind::bit`]) are kept: the first of
    /// the detector pass's two steps ahead of a host's readings (a
    /// scanner's alert is two misses otherwise, one per reading).
    #[inline]
    pub fn prefetch_entries(&self, kinds: u32, subject: Addr) {
        each_kind(kinds, |kind| self.open.prefetch_entry(kind, subject));
    }

    /// The second step: starts loading the alerts themselves, their
    /// entries loaded by now ([`Lifecycle::prefetch_entries`]).
    #[inline]
    pub fn prefetch(&self, kinds: u32, subject: Addr) {
        each_kind(kinds, |kind| {
            if let Some(o) = self.open.get(&(kind, subject)) {
                tpacket::prefetch(&o.alert.value);
                tpacket::prefetch(&o.below_since);
                tpacket::prefetch(&o.next_check);
            }
        });
    }

    pub fn get(&self, kind: AlertKind, subject: Addr) -> Option<&OpenAlert> {
        self.open.get(&(kind, subject))
    }

    pub fn get_mut(&mut self, kind: AlertKind, subject: Addr) -> Option<&mut OpenAlert> {
        self.open.get_mut(&(kind, subject))
    }

    pub fn is_open(&self, kind: AlertKind, subject: Addr) -> bool {
        self.open.contains_key(&(kind, subject))
    }

    /// Subjects with an open alert.
    pub fn subjects(&self) -> impl Iterator<Item = (AlertKind, Addr)> + '_ {
        self.open.keys()
    }

    pub fn open_alerts(&self) -> impl Iterator<Item = &OpenAlert> {
        self.open.values()
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// The last tick of a below-threshold alert's hold-down of `hold` ticks
/// ([`Lifecycle::closes_at`]).
#[inline]
fn closes(o: &OpenAlert, hold: u64) -> Option<u64> {
    Some(o.below_since? + hold.max(1) - 1)
}

/// [`Lifecycle::schedule`] of open alert `o`.
#[inline]
fn look_at(
    o: &mut OpenAlert,
    checks: &mut Wheel<Check>,
    kind: AlertKind,
    subject: Addr,
    now: u64,
    tick: u64,
) {
    if o.next_check > now && o.next_check <= tick {
        return;
    }
    o.next_check = tick;
    checks.schedule(tick, (tick, kind, subject));
}

/// The kinds whose bits ([`AlertKind::bit`]) are set in `kinds`.
#[inline]
fn each_kind(mut kinds: u32, mut f: impl FnMut(AlertKind)) {
    while kinds != 0 {
        let k = kinds.trailing_zeros() as usize;
        kinds &= kinds - 1;
        if let Some(&kind) = AlertKind::ALL.get(k) {
            f(kind);
        }
    }
}

/// An open alert's place: boxed, so that the map's slots stay small and
/// a slot's place is known from the key's hash alone ([`OpenMap`]), and
/// the detector pass can load both ahead of a host's readings.
type Held = Option<Box<OpenAlert>>;

impl Vacancy for Held {
    fn is_vacant(&self) -> bool {
        self.is_none()
    }
}

/// The open alerts by kind (its number) and subject.
#[derive(Debug)]
struct OpenAlerts {
    map: OpenMap<(u8, Addr), Held>,
}

impl OpenAlerts {
    fn new() -> OpenAlerts {
        OpenAlerts {
            map: OpenMap::new(&Hasher::new()),
        }
    }

    #[inline]
    fn key(&(kind, subject): &(AlertKind, Addr)) -> (u8, Addr) {
        (kind as u8, subject)
    }

    #[inline]
    fn prefetch_entry(&self, kind: AlertKind, subject: Addr) {
        let k = Self::key(&(kind, subject));
        self.map.prefetch(self.map.hash(&k));
    }

    #[inline]
    fn get(&self, key: &(AlertKind, Addr)) -> Option<&OpenAlert> {
        let k = Self::key(key);
        self.map.get(self.map.hash(&k), &k)?.as_deref()
    }

    #[inline]
    fn get_mut(&mut self, key: &(AlertKind, Addr)) -> Option<&mut OpenAlert> {
        let k = Self::key(key);
        self.map.get_mut(self.map.hash(&k), &k)?.as_deref_mut()
    }

    fn contains_key(&self, key: &(AlertKind, Addr)) -> bool {
        self.get(key).is_some()
    }

    /// Puts `v` under `key`, in place of what was there.
    fn insert(&mut self, key: (AlertKind, Addr), v: Box<OpenAlert>) {
        let k = Self::key(&key);
        let h = self.map.hash(&k);
        let mut v = Some(v);
        if let Some(held) = self.map.get_or_insert_with(h, k, || v.take().map(Some)) {
            if let Some(v) = v.take() {
                *held = Some(v);
            }
        }
    }

    fn remove(&mut self, key: &(AlertKind, Addr)) -> Option<Box<OpenAlert>> {
        let k = Self::key(key);
        self.map.remove(self.map.hash(&k), &k).flatten()
    }

    fn keys(&self) -> impl Iterator<Item = (AlertKind, Addr)> + '_ {
        self.map
            .iter()
            .filter_map(|(&(k, subject), _)| Some((*AlertKind::ALL.get(usize::from(k))?, subject)))
    }

    fn values(&self) -> impl Iterator<Item = &OpenAlert> {
        self.map.iter().filter_map(|(_, v)| v.as_deref())
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Alert {
    /// An open traffic alert with small figures, for tests to adjust with
    /// struct update syntax.
    #[cfg(test)]
    pub(crate) fn sample(id: u64, kind: AlertKind, subject: &str) -> Alert {
        Alert {
            id,
            kind,
            subject: subject.parse().expect("an IP address"),
            rule: "default".into(),
            start_ms: 1,
            last_update_ms: 2,
            end_ms: None,
            value: 5,
            peak: 5,
            threshold: 1,
            unit: Unit::Bytes,
            window_secs: 170,
            degraded: false,
            drop_ratio: 0.0,
            evidence: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests;
