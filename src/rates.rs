//! Rates per protocol and flag over a short sliding window: how many
//! packets (and bits) of each class a host sends and receives per second,
//! against limits per class and direction.
//!
//! The volume windows ([`crate::window`]) answer "how much over the last
//! minutes"; a flood is a rate, and a one-second burst of a million SYNs
//! must alert within two ticks even when its volume is small next to a
//! long window's limit. Classes overlap on purpose: a SYN is also TCP, a
//! UDP fragment also UDP; each has its own limit and its own alert kind.
//!
//! Workers count classes only when some limit needs them
//! ([`crate::shard::ShardLimits::rates`]); the aggregator keeps a window
//! only of the columns some limit reads ([`Columns`]), only for hosts that
//! had such traffic, and drops it once it drained.

use serde::Serialize;

use crate::wire::{Summary, proto, tcp_flags};

/// What a rate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Every packet.
    All,
    Tcp,
    /// TCP with SYN and without ACK: connection attempts.
    Syn,
    Udp,
    /// ICMP and ICMPv6.
    Icmp,
    /// IP fragments, first or later.
    Fragments,
    /// New flows: packets that initiate one (a SYN, a UDP datagram of a
    /// flow not seen, an ICMP echo request...). Counted, no bits.
    Flows,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::All,
        Class::Tcp,
        Class::Syn,
        Class::Udp,
        Class::Icmp,
        Class::Fragments,
        Class::Flows,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::All => "all",
            Class::Tcp => "tcp",
            Class::Syn => "syn",
            Class::Udp => "udp",
            Class::Icmp => "icmp",
            Class::Fragments => "fragments",
            Class::Flows => "flows",
        }
    }

    /// True if the class has a bit rate (all but new flows).
    pub fn has_bits(self) -> bool {
        self != Class::Flows
    }
}

/// Which end of the traffic a host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// Toward the host: it is the destination (a victim).
    In,
    /// From the host: it is the source.
    Out,
}

impl Dir {
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Per direction: packets of the 7 classes, then bits of the 6 with bits.
const PER_DIR: usize = 13;
/// Every rate column: `(direction, class, packets or bits)`.
pub const COLUMNS: usize = 2 * PER_DIR;

/// The column of a class's packets (`bits` false) or bits in a direction.
pub fn column(dir: Dir, class: Class, bits: bool) -> usize {
    let c = class as usize;
    dir.index() * PER_DIR + if bits { 7 + c } else { c }
}

/// The limit keys of a direction's table, with their column's class and
/// unit, in the order the config documents them.
pub const KEYS: [(&str, Class, bool); PER_DIR] = [
    ("packets", Class::All, false),
    ("bits", Class::All, true),
    ("tcp_packets", Class::Tcp, false),
    ("tcp_bits", Class::Tcp, true),
    ("syn_packets", Class::Syn, false),
    ("syn_bits", Class::Syn, true),
    ("udp_packets", Class::Udp, false),
    ("udp_bits", Class::Udp, true),
    ("icmp_packets", Class::Icmp, false),
    ("icmp_bits", Class::Icmp, true),
    ("fragment_packets", Class::Fragments, false),
    ("fragment_bits", Class::Fragments, true),
    ("new_flows", Class::Flows, false),
];

/// Limits per second, by column (`None`: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits(pub [Option<u64>; COLUMNS]);

/// As the config writes them: `{"in": {"syn_packets": 20000}, "out": {}}`,
/// the limits that are set.
impl Serialize for RateLimits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let side = |dir: Dir| -> std::collections::BTreeMap<&'static str, u64> {
            KEYS.iter()
                .filter_map(|&(k, c, b)| Some((k, self.get(dir, c, b)?)))
                .collect()
        };
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("in", &side(Dir::In))?;
        m.serialize_entry("out", &side(Dir::Out))?;
        m.end()
    }
}

impl RateLimits {
    /// This one's limits, the other's where this has none.
    pub fn or(self, other: RateLimits) -> RateLimits {
        let mut r = self;
        for (a, b) in r.0.iter_mut().zip(other.0) {
            *a = a.or(b);
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    pub fn get(&self, dir: Dir, class: Class, bits: bool) -> Option<u64> {
        self.0[column(dir, class, bits)]
    }
}

/// Bits of the classes a packet belongs to besides [`Class::All`]:
/// bit `c - 1` for class `c`.
#[inline]
pub fn classes(s: &Summary) -> u8 {
    let mut m = 0u8;
    match s.proto {
        proto::TCP => {
            m |= bit(Class::Tcp);
            let f = s.tcp_flags;
            if f & tcp_flags::SYN != 0 && f & tcp_flags::ACK == 0 {
                m |= bit(Class::Syn);
            }
        }
        proto::UDP => m |= bit(Class::Udp),
        proto::ICMP | proto::ICMPV6 => m |= bit(Class::Icmp),
        _ => {}
    }
    if s.fragment {
        m |= bit(Class::Fragments);
    }
    if s.role == crate::wire::Role::Initiation {
        m |= bit(Class::Flows);
    }
    m
}

#[inline]
const fn bit(c: Class) -> u8 {
    1 << (c as u8 - 1)
}

/// A host's counts of one tick in a worker's shard, per direction: packets
/// of the six classes after [`Class::All`] (whose counts are the host's
/// own), then bytes of the five with bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickRates(pub [[u64; 11]; 2]);

/// One direction of [`TickRates`], as a worker's shard keeps it.
pub type DirCounts = [u64; 11];

/// Counts a packet of `classes` ([`classes`]) and `len` bytes into one
/// direction's counts.
#[inline]
pub fn count(d: &mut DirCounts, classes: u8, len: u64) {
    count_n(d, classes, 1, len)
}

/// [`count`] for `n` packets of `classes` making `bytes` bytes in all.
#[inline]
pub fn count_n(d: &mut DirCounts, classes: u8, n: u64, bytes: u64) {
    let mut m = classes;
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        d[i] += n;
        if i < 5 {
            d[6 + i] += bytes;
        }
        m &= m - 1;
    }
}

/// [`count_n`] into two rows at once (a source's `Out` and its
/// destination's `In`): one pass over the classes.
#[inline]
pub fn count_n2(a: &mut DirCounts, b: &mut DirCounts, classes: u8, n: u64, bytes: u64) {
    let mut m = classes;
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        a[i] += n;
        b[i] += n;
        if i < 5 {
            a[6 + i] += bytes;
            b[6 + i] += bytes;
        }
        m &= m - 1;
    }
}

/// Which directions a shard counts classes for: bit [`Dir::In`] and bit
/// [`Dir::Out`] (only those some limit reads).
pub type Dirs = u8;
pub const IN: Dirs = 1 << Dir::In as u8;
pub const OUT: Dirs = 1 << Dir::Out as u8;
pub const BOTH: Dirs = IN | OUT;

impl TickRates {
    /// Counts a packet of `classes` ([`classes`]) and `len` bytes.
    #[inline]
    pub fn add(&mut self, dir: Dir, classes: u8, len: u64) {
        count(&mut self.0[dir.index()], classes, len);
    }

    pub fn merge(&mut self, o: &TickRates) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += *y;
            }
        }
    }

    /// The value of a column: `all` is the host's (packets, bytes) sent
    /// (`Out`) or received (`In`), which the rates do not count again.
    /// Bits are bytes times eight.
    pub fn value(&self, col: usize, all: [(u64, u64); 2]) -> u64 {
        let dir = col / PER_DIR;
        let c = col % PER_DIR;
        let d = &self.0[dir];
        match c {
            0 => all[dir].0,
            1..=6 => d[c - 1],
            7 => all[dir].1 * 8,
            _ => d[6 + (c - 8)] * 8,
        }
    }
}

impl RateLimits {
    /// The directions some limit is set for.
    pub fn dirs(&self) -> Dirs {
        let mut d = 0;
        for (i, v) in self.0.iter().enumerate() {
            if v.is_some() {
                d |= if i < PER_DIR { IN } else { OUT };
            }
        }
        d
    }
}

/// The columns some limit reads: the only ones the aggregator keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns(pub Vec<u8>);

impl Columns {
    /// The columns any of `limits` sets.
    pub fn of<'a>(limits: impl IntoIterator<Item = &'a RateLimits>) -> Columns {
        let mut used = [false; COLUMNS];
        for l in limits {
            for (u, v) in used.iter_mut().zip(l.0) {
                *u |= v.is_some();
            }
        }
        Columns(
            used.iter()
                .enumerate()
                .filter(|(_, u)| **u)
                .map(|(i, _)| i as u8)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// A host's rate columns over the last `ticks` ticks: a ring of one slot
/// per tick, each tagged with its tick, so that sums are exact and a slot
/// of a tick that left the window reads as empty without being cleared.
#[derive(Debug, Clone)]
pub struct RateWindow {
    ticks: usize,
    /// `ticks` tags, then `ticks` rows of the kept columns.
    cells: Box<[u64]>,
}

/// A tag no tick has.
const EMPTY: u64 = u64::MAX;

impl RateWindow {
    pub fn new(ticks: usize, columns: usize) -> RateWindow {
        let ticks = ticks.max(1);
        let mut cells = vec![0u64; ticks * (columns + 1)].into_boxed_slice();
        cells[..ticks].fill(EMPTY);
        RateWindow { ticks, cells }
    }

    /// Heap bytes of a window of this size.
    pub fn bytes(ticks: usize, columns: usize) -> usize {
        ticks.max(1) * (columns + 1) * 8
    }

    /// Heap bytes this window holds.
    pub fn heap_bytes(&self) -> usize {
        self.cells.len() * 8
    }

    fn columns(&self) -> usize {
        self.cells.len() / self.ticks - 1
    }

    /// Adds tick `t`'s values of the kept columns. A tick already older
    /// than the window (a shard that came very late) is left out: it would
    /// not count anywhere the window is read.
    pub fn add(&mut self, t: u64, values: impl Iterator<Item = u64>) {
        let k = self.columns();
        let slot = (t % self.ticks as u64) as usize;
        let tag = self.cells[slot];
        if tag != t {
            if tag != EMPTY && tag > t {
                return;
            }
            self.cells[slot] = t;
            let row = self.ticks + slot * k;
            self.cells[row..row + k].fill(0);
        }
        let row = self.ticks + slot * k;
        for (c, v) in self.cells[row..row + k].iter_mut().zip(values) {
            *c += v;
        }
    }

    /// True if slot `i`'s tick is within the window ending at `now`.
    #[inline]
    fn live(&self, i: usize, now: u64) -> bool {
        let tag = self.cells[i];
        tag != EMPTY && tag <= now && now - tag < self.ticks as u64
    }

    /// Sums of the kept columns over the window ending at `now`.
    pub fn sums(&self, now: u64, out: &mut [u64]) {
        let k = self.columns();
        out[..k].fill(0);
        for i in 0..self.ticks {
            if self.live(i, now) {
                let row = self.ticks + i * k;
                for (o, v) in out[..k].iter_mut().zip(&self.cells[row..row + k]) {
                    *o += v;
                }
            }
        }
    }

    /// The tick at which the sums next fall: when the oldest tick in the
    /// window leaves it. `None` if the window is empty.
    pub fn next_fall(&self, now: u64) -> Option<u64> {
        (0..self.ticks)
            .filter(|&i| self.live(i, now))
            .map(|i| self.cells[i] + self.ticks as u64)
            .min()
    }

    /// True if no tick within the window ending at `now` is kept.
    pub fn is_empty_at(&self, now: u64) -> bool {
        self.next_fall(now).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Addr, Role};

    fn summary(proto: u8, flags: u8) -> Summary {
        Summary {
            src: Addr::from_v4([10, 0, 0, 1]),
            dst: Addr::from_v4([10, 0, 0, 2]),
            l3_len: 60,
            proto,
            tcp_flags: flags,
            ..Summary::default()
        }
    }

    #[test]
    fn a_packet_belongs_to_every_class_that_describes_it() {
        let mut syn = summary(proto::TCP, tcp_flags::SYN);
        syn.role = Role::Initiation;
        assert_eq!(
            classes(&syn),
            bit(Class::Tcp) | bit(Class::Syn) | bit(Class::Flows)
        );
        let synack = summary(proto::TCP, tcp_flags::SYN | tcp_flags::ACK);
        assert_eq!(classes(&synack), bit(Class::Tcp));
        let mut frag = summary(proto::UDP, 0);
        frag.fragment = true;
        assert_eq!(classes(&frag), bit(Class::Udp) | bit(Class::Fragments));
        assert_eq!(classes(&summary(proto::ICMPV6, 0)), bit(Class::Icmp));
        assert_eq!(classes(&summary(proto::GRE, 0)), 0);
    }

    #[test]
    fn tick_counts_read_as_columns() {
        let mut t = TickRates::default();
        let syn = bit(Class::Tcp) | bit(Class::Syn) | bit(Class::Flows);
        t.add(Dir::In, syn, 60);
        t.add(Dir::In, syn, 60);
        t.add(Dir::Out, bit(Class::Udp), 1000);
        let all = [(5, 500), (1, 1000)];
        let v = |d, c, b| t.value(column(d, c, b), all);
        assert_eq!(v(Dir::In, Class::All, false), 5);
        assert_eq!(v(Dir::In, Class::All, true), 4000);
        assert_eq!(v(Dir::In, Class::Syn, false), 2);
        assert_eq!(v(Dir::In, Class::Syn, true), 960);
        assert_eq!(v(Dir::In, Class::Flows, false), 2);
        assert_eq!(v(Dir::In, Class::Udp, false), 0);
        assert_eq!(v(Dir::Out, Class::Udp, true), 8000);
        assert_eq!(v(Dir::Out, Class::Fragments, true), 0);
        // Every key names a distinct column.
        let mut cols: Vec<usize> = KEYS.iter().map(|k| column(Dir::In, k.1, k.2)).collect();
        cols.sort_unstable();
        cols.dedup();
        assert_eq!(cols.len(), KEYS.len());
        assert!(cols.iter().all(|&c| c < PER_DIR));
    }

    #[test]
    fn the_window_sums_exactly_the_last_ticks() {
        let mut w = RateWindow::new(5, 2);
        assert!(w.is_empty_at(0));
        let mut s = [0u64; 2];
        for t in 10..20 {
            w.add(t, [t, 1].into_iter());
        }
        w.sums(19, &mut s);
        assert_eq!(s, [15 + 16 + 17 + 18 + 19, 5]);
        // Tick 15 leaves at 20.
        assert_eq!(w.next_fall(19), Some(20));
        w.sums(22, &mut s);
        assert_eq!(s, [18 + 19, 2]);
        w.sums(24, &mut s);
        assert_eq!(s, [0, 0]);
        assert!(w.is_empty_at(24));
        // A gap of any length: old slots read as empty.
        w.add(1_000_000, [7, 7].into_iter());
        w.sums(1_000_000, &mut s);
        assert_eq!(s, [7, 7]);
        // A tick older than the window is left out, not mixed in.
        w.add(999_990, [100, 100].into_iter());
        w.sums(1_000_000, &mut s);
        assert_eq!(s, [7, 7]);
    }

    #[test]
    fn columns_are_those_some_limit_sets() {
        let mut a = RateLimits::default();
        a.0[column(Dir::In, Class::Syn, false)] = Some(1000);
        let mut b = RateLimits::default();
        b.0[column(Dir::Out, Class::All, true)] = Some(1_000_000);
        b.0[column(Dir::In, Class::Syn, false)] = Some(10);
        let c = Columns::of([&a, &b]);
        assert_eq!(
            c.0,
            vec![
                column(Dir::In, Class::Syn, false) as u8,
                column(Dir::Out, Class::All, true) as u8
            ]
        );
        assert_eq!(a.or(b).get(Dir::In, Class::Syn, false), Some(1000));
        assert_eq!(a.or(b).get(Dir::Out, Class::All, true), Some(1_000_000));
    }
}
