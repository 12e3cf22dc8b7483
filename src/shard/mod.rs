//! A worker's private counters for one tick: per host, per (source,
//! destination) pair, the contacts each source initiated (destination,
//! protocol, port) and the answers that came back (a SYN-ACK, a UDP reply),
//! which is what the scan detectors work from.
//!
//! A shard is filled by exactly one worker and then handed whole to the
//! aggregator, so nothing in it is shared or locked. A table at its bound
//! counts what does not fit into [`Untracked`] instead of growing.
//!
//! Tables start small and grow with the traffic; clearing keeps their memory,
//! so once a shard has seen a tick of its usual traffic, recording a packet
//! does not allocate. They are not sized to their bounds up front on purpose:
//! a thousand hosts spread over a table sized for sixty thousand would miss
//! the cache on every lookup. The aggregator, which clears shards off the hot
//! path, gives memory back when a burst is over ([`Shard::recycle`]).

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

use crate::admission::{Admission, Probe, Screen};
use crate::counters::IfaceDelta;
use crate::rates::{self, DirCounts, TickRates};
use crate::wire::{Addr, Role, Summary};

mod reuse;
mod runs;
mod spare;

pub type Hasher = ahash::RandomState;

/// Entries a new table has room for before it first grows.
const INITIAL: usize = 1024;

/// The smallest spare worth keeping ([`Shard::keep_spares`]): well above
/// the size a shard's tables start at.
pub const SPARE_MIN: usize = 4 * INITIAL;

/// Table bounds of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLimits {
    /// Distinct hosts, sources and destinations together.
    pub max_hosts: usize,
    /// Distinct (source, destination) pairs.
    pub max_pairs: usize,
    /// Distinct contacts (source, destination, protocol, port) beyond the
    /// first of each pair, and as many answers.
    pub max_ports: usize,
    /// Record answers (replies by port): only `scan.count = "failed"` needs
    /// them.
    pub answers: bool,
    /// Count packets and bytes per class ([`crate::rates`]) toward hosts
    /// ([`crate::rates::IN`]), from them ([`crate::rates::OUT`]), both or
    /// neither: only rate limits need them.
    pub rates: rates::Dirs,
}

/// Counters of one host within a shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCounters {
    pub addr: Addr,
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub recv_bytes: u64,
    pub recv_packets: u64,
}

/// Role bits recorded per pair: which kinds of packets went from the source
/// to the destination.
pub mod role_bits {
    use crate::wire::Role;
    pub const INITIATION: u8 = 1 << 0;
    pub const REPLY: u8 = 1 << 1;
    pub const REFUSAL: u8 = 1 << 2;
    pub const ERROR: u8 = 1 << 3;
    pub const OTHER: u8 = 1 << 4;
    /// Anything that shows the destination answered: a reply or data.
    pub const ANSWER: u8 = REPLY | OTHER;

    pub fn of(role: Role) -> u8 {
        match role {
            Role::Initiation => INITIATION,
            Role::Reply => REPLY,
            Role::Refusal => REFUSAL,
            Role::Error => ERROR,
            Role::Other => OTHER,
        }
    }
}

/// Counters of one (source, destination) pair within a shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairCounters {
    pub bytes: u64,
    pub packets: u64,
    /// [`role_bits`] seen from source to destination.
    pub roles: u8,
    /// The first contact (protocol and destination port) of this pair,
    /// kept here: most pairs have one, and the pair is already in the
    /// cache. Further ports go to the shard's contact table.
    /// (In two fields, not an `Option`: the slot stays 32 bytes. Protocol
    /// 0 is none: contacts are of protocols with ports.)
    contact_proto: u8,
    contact_port: u16,
    /// Rate classes ([`rates::classes`]) of the pair's latest packets, and
    /// how many packets and bytes of them are not yet in the hosts' class
    /// rows: a pair's packets mostly share their classes, so the rows of
    /// its two hosts are written when the classes change and when the
    /// shard is handed over ([`Shard::seal`]), not per packet.
    run_classes: u8,
    run: (u32, u32),
    /// The interface (ifIndex) the pair's first frame came in on, in the
    /// two bytes the layout leaves free; 0 unknown or beyond 65 534.
    ingress: u16,
}

impl PairCounters {
    /// The protocol and destination port of the pair's first contact (an
    /// initiation with ports), if it had one.
    #[inline]
    pub fn first_contact(&self) -> Option<(u8, u16)> {
        (self.contact_proto != 0).then_some((self.contact_proto, self.contact_port))
    }

    /// The interface the pair's first frame came in on; 0 unknown.
    pub fn ingress(&self) -> u32 {
        u32::from(self.ingress)
    }
}

/// What did not fit in the tables: still counted, here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Untracked {
    /// Sent by sources the host table had no room for.
    pub src_bytes: u64,
    pub src_packets: u64,
    /// Received by destinations the host table had no room for.
    pub dst_bytes: u64,
    pub dst_packets: u64,
    /// Packets of pairs the pair table had no room for (or whose host did
    /// not fit).
    pub pair_bytes: u64,
    pub pair_packets: u64,
    /// Contacts (initiations with a port) and answers the tables had no
    /// room for.
    pub port_initiations: u64,
    /// Of the packets above, those whose source a worker left out as it
    /// arrived because the aggregator's full tables would have refused it
    /// ([`crate::admission`]).
    pub screened_packets: u64,
}

impl Untracked {
    pub fn add(&mut self, o: &Untracked) {
        self.src_bytes += o.src_bytes;
        self.src_packets += o.src_packets;
        self.dst_bytes += o.dst_bytes;
        self.dst_packets += o.dst_packets;
        self.pair_bytes += o.pair_bytes;
        self.pair_packets += o.pair_packets;
        self.port_initiations += o.port_initiations;
        self.screened_packets += o.screened_packets;
    }
}

/// Packet and byte totals of everything recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub packets: u64,
    pub bytes: u64,
}

fn insert_bounded(
    set: &mut hashbrown::HashSet<u128, Hasher>,
    key: u128,
    max: usize,
    untracked: &mut Untracked,
) {
    if set.len() < max {
        set.insert(key);
    } else if !set.contains(&key) {
        untracked.port_initiations += 1;
    }
}

/// Where the previous packet's flow was counted.
#[derive(Debug, Clone, Copy)]
struct LastFlow {
    src: Addr,
    dst: Addr,
    /// Host ids; `None` when the host is left to the untracked totals.
    src_id: Option<u32>,
    dst_id: Option<u32>,
    /// Its pair slot; `None` when the pair table had no room for it.
    pair: Option<u32>,
    /// Its source was screened out.
    screened: bool,
}

/// Key of a contact or an answer: (from, to, protocol, port). For a contact
/// the port is the destination port; for an answer it is the answering
/// side's (source) port, so that contact (A, B, p) is answered by (B, A, p).
#[inline]
fn contact_key(from: u32, to: u32, proto: u8, port: u16) -> u128 {
    (u128::from(from) << 96) | (u128::from(to) << 64) | (u128::from(proto) << 16) | u128::from(port)
}

fn split_contact(k: u128) -> (u32, u32, u8, u16) {
    (
        (k >> 96) as u32,
        (k >> 64) as u32,
        (k >> 16) as u8,
        k as u16,
    )
}

/// One contact or answer, with addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Contact {
    pub from: Addr,
    pub to: Addr,
    pub proto: u8,
    pub port: u16,
}

/// A packet that is a contact: an initiation with ports.
#[inline]
fn opens_contact(s: &Summary) -> bool {
    s.role == Role::Initiation && s.has_ports
}

#[inline]
fn pair_key(src: u32, dst: u32) -> u64 {
    (u64::from(src) << 32) | u64::from(dst)
}

fn pair_src(key: u64) -> u32 {
    (key >> 32) as u32
}

fn pair_dst(key: u64) -> u32 {
    key as u32
}

/// One worker's counters for one or more ticks.
#[derive(Debug)]
pub struct Shard {
    /// First and last tick whose packets are in here. A shard the aggregator
    /// could not take in time keeps filling and spans several ticks.
    pub first_tick: u64,
    pub last_tick: u64,
    /// True for the last shard of a worker that is stopping.
    pub last: bool,
    limits: ShardLimits,
    index: HashMap<Addr, u32, Hasher>,
    hosts: Vec<HostCounters>,
    /// Per class counts of each host by direction, beside `hosts`: made
    /// when first written and by [`Shard::seal`] (never for a direction
    /// [`ShardLimits::rates`] does not count), so a new host costs the
    /// worker no row.
    rates: [Vec<DirCounts>; 2],
    /// Pair key (source id, destination id) to its slot in `pair_slots`.
    pair_index: HashMap<u64, u32, Hasher>,
    pair_slots: Vec<(u64, PairCounters)>,
    contacts: hashbrown::HashSet<u128, Hasher>,
    answers: hashbrown::HashSet<u128, Hasher>,
    /// The flow of the previous packet: packets come in bursts of one flow,
    /// and a hit here skips every table lookup.
    last_flow: Option<LastFlow>,
    /// The destination of the last packet whose flow missed `last_flow`, and
    /// its id: a flood of new sources toward one victim looks the victim up
    /// once.
    last_dst: Option<(Addr, u32)>,
    /// The last destination of a screened source the screen let through:
    /// a spoofed flood's frames all go to one victim, whose address need
    /// not be hashed again for each. Kept while the screen is unchanged (a
    /// filter only gains addresses; a refusal is asked again).
    screened_dst: Option<Addr>,
    /// Some pair has a run of classes not yet in the hosts' rows.
    runs_open: bool,
    /// Sources the aggregator would refuse, left out as they arrive.
    screen: Screen,
    pub untracked: Untracked,
    pub totals: Totals,
    /// UDP flows the worker's flow table pushed out while they were live
    /// (their answers then count as initiations).
    pub udp_evicted: u64,
    /// Per-interface counters since the previous hand-over, one entry per
    /// interface ([`Shard::add_iface`]), filled by the worker when it hands the
    /// shard over.
    pub ifaces: Vec<IfaceDelta>,
    /// Frames of attacks copied for the aggregator ([`crate::attacks`]).
    pub captured: crate::attacks::take::Captured,
    /// What the flow-input thread's exporters sent, from its shards only.
    pub flow_report: Option<std::sync::Arc<crate::flowin::FlowReport>>,
    /// The interface the frames being counted now came in on
    /// ([`Shard::set_ingress`]), given to the pairs they start.
    ingress: u16,
    /// Large tables kept aside for a flood's new sources and their pairs
    /// (`spare.rs`).
    spare_hosts: spare::Spare<Addr, HostCounters>,
    spare_pairs: spare::Spare<u64, (u64, PairCounters)>,
}

impl Shard {
    /// Makes a shard with small tables.
    pub fn new(limits: ShardLimits, hasher: &Hasher) -> Shard {
        Shard {
            first_tick: 0,
            last_tick: 0,
            last: false,
            limits,
            index: HashMap::with_capacity_and_hasher(INITIAL.min(limits.max_hosts), hasher.clone()),
            hosts: Vec::with_capacity(INITIAL.min(limits.max_hosts)),
            rates: [rates::IN, rates::OUT].map(|d| {
                Vec::with_capacity(if limits.rates & d != 0 {
                    INITIAL.min(limits.max_hosts)
                } else {
                    0
                })
            }),
            pair_index: HashMap::with_capacity_and_hasher(
                INITIAL.min(limits.max_pairs),
                hasher.clone(),
            ),
            pair_slots: Vec::with_capacity(INITIAL.min(limits.max_pairs)),
            contacts: hashbrown::HashSet::with_capacity_and_hasher(
                INITIAL.min(limits.max_ports),
                hasher.clone(),
            ),
            answers: hashbrown::HashSet::with_capacity_and_hasher(
                INITIAL.min(limits.max_ports),
                hasher.clone(),
            ),
            last_flow: None,
            last_dst: None,
            screened_dst: None,
            runs_open: false,
            screen: Screen::default(),
            untracked: Untracked::default(),
            totals: Totals::default(),
            udp_evicted: 0,
            flow_report: None,
            ingress: 0,
            ifaces: Vec::with_capacity(16),
            captured: crate::attacks::take::Captured::default(),
            spare_hosts: spare::Spare::new(),
            spare_pairs: spare::Spare::new(),
        }
    }

    pub fn limits(&self) -> ShardLimits {
        self.limits
    }

    /// The id of a host, adding it if there is room.
    #[inline]
    fn host(&mut self, addr: Addr) -> Option<u32> {
        self.host_screened(addr, None).0
    }

    /// [`Shard::host`], and a new host the screen leaves out (through
    /// `addr`'s probe; none screens nothing) is not added: `(None, true)`.
    #[inline(always)]
    fn host_screened(&mut self, addr: Addr, probe: Option<Probe>) -> (Option<u32>, bool) {
        if self.index.len() == self.index.capacity() && self.spare_hosts.takes(self.index.len()) {
            self.spare_hosts.take(&mut self.index, &mut self.hosts);
        }
        match self.index.entry(addr) {
            Entry::Occupied(e) => (Some(*e.get()), false),
            Entry::Vacant(v) => {
                if self.hosts.len() >= self.limits.max_hosts {
                    return (None, false);
                }
                if self.screen.refuses_new(probe) {
                    return (None, true);
                }
                let id = self.hosts.len() as u32;
                self.hosts.push(HostCounters {
                    addr,
                    ..HostCounters::default()
                });
                v.insert(id);
                (Some(id), false)
            }
        }
    }

    /// [`Shard::host`] for a source: `(None, true)` if the screen leaves
    /// it out as a new host the aggregator would refuse. `probe`: its
    /// [`Shard::probe`].
    #[inline]
    fn source(&mut self, addr: Addr, probe: Option<Probe>) -> (Option<u32>, bool) {
        self.host_screened(addr, probe)
    }

    /// The screen refuses destination `addr` (through `screened_dst`).
    #[inline]
    fn refuses_dst(&mut self, addr: Addr) -> bool {
        if self.screened_dst == Some(addr) {
            return false;
        }
        let refused = self.screen.refuses(addr);
        if !refused {
            self.screened_dst = Some(addr);
        }
        refused
    }

    /// [`Shard::host`] for a destination, through `last_dst`.
    #[inline]
    fn dst_host(&mut self, addr: Addr) -> Option<u32> {
        if let Some((a, id)) = self.last_dst {
            if a == addr {
                return Some(id);
            }
        }
        let id = self.host(addr);
        if let Some(id) = id {
            self.last_dst = Some((addr, id));
        }
        id
    }

    /// The slot of a pair, adding it if there is room, and whether it was
    /// added: a new slot is written whole with its first packet's counts
    /// (`s`, `len`, `packets`), not zeroed and then added to. Counting into
    /// a slot just written reads it back before the writes (several, of
    /// different widths) reach the cache, and under a flood of new sources,
    /// whose every frame opens a pair, that wait was a sixth of the count.
    #[inline]
    fn pair(
        &mut self,
        src: u32,
        dst: u32,
        s: &Summary,
        len: u64,
        packets: u64,
    ) -> Option<(u32, bool)> {
        let key = pair_key(src, dst);
        if self.pair_index.len() == self.pair_index.capacity()
            && self.spare_pairs.takes(self.pair_index.len())
        {
            self.spare_pairs
                .take(&mut self.pair_index, &mut self.pair_slots);
        }
        match self.pair_index.entry(key) {
            Entry::Occupied(e) => Some((*e.get(), false)),
            Entry::Vacant(v) => {
                if self.pair_slots.len() >= self.limits.max_pairs {
                    return None;
                }
                let slot = self.pair_slots.len() as u32;
                // A packet sent by the box did not come in on the
                // interface it was captured on.
                let sent = s.direction == crate::wire::Direction::Out;
                let (contact_proto, contact_port) = if opens_contact(s) {
                    (s.proto, s.dst_port)
                } else {
                    (0, 0)
                };
                self.pair_slots.push((
                    key,
                    PairCounters {
                        bytes: len,
                        packets,
                        roles: role_bits::of(s.role),
                        contact_proto,
                        contact_port,
                        ingress: if sent { 0 } else { self.ingress },
                        ..PairCounters::default()
                    },
                ));
                v.insert(slot);
                Some((slot, true))
            }
        }
    }

    /// Counts one packet.
    #[inline]
    pub fn record(&mut self, s: &Summary) {
        let probe = self.screen.probe(s.src);
        self.record_probed(s, probe);
    }

    /// [`Shard::record`] with the source's [`Shard::probe`], taken since
    /// the last change of admission or tick.
    #[inline]
    pub fn record_probed(&mut self, s: &Summary, probe: Option<Probe>) {
        self.add(s, probe, 1, u64::from(s.l3_len), true);
    }

    /// Counts a flow record (or a sampled packet) standing for `packets`
    /// packets of `len` bytes in all, already scaled by its sampling rate.
    pub fn record_flow(&mut self, s: &Summary, packets: u64, len: u64) {
        let probe = self.screen.probe(s.src);
        self.add(s, probe, packets, len, false);
    }

    /// What [`Shard::record_probed`] and [`Shard::record_flow`] share;
    /// `runs`: class counts go through the pair's run (one packet at a
    /// time), not straight into the rows.
    #[inline(always)]
    fn add(&mut self, s: &Summary, probe: Option<Probe>, packets: u64, len: u64, runs: bool) {
        self.totals.packets += packets;
        self.totals.bytes += len;
        let (src, dst, pair, fresh) = match self.last_flow {
            Some(l) if l.src == s.src && l.dst == s.dst => {
                self.untracked.screened_packets += u64::from(l.screened) * packets;
                (l.src_id, l.dst_id, l.pair, false)
            }
            _ => {
                // A source of a full partition is left out before it is
                // looked up; a new one once the partition's room is taken.
                let (src, screened) = if self.screen.refuses_probed(probe) {
                    (None, true)
                } else {
                    self.source(s.src, probe)
                };
                let dst = if screened {
                    // Its host and its pair would be refused; the
                    // destination only if the aggregator refuses it too.
                    self.untracked.screened_packets += packets;
                    if self.refuses_dst(s.dst) {
                        None
                    } else {
                        self.dst_host(s.dst)
                    }
                } else {
                    self.dst_host(s.dst)
                };
                let (pair, fresh) = match (src, dst) {
                    (Some(i), Some(j)) => match self.pair(i, j, s, len, packets) {
                        Some((p, fresh)) => (Some(p), fresh),
                        None => (None, false),
                    },
                    _ => (None, false),
                };
                self.last_flow = Some(LastFlow {
                    src: s.src,
                    dst: s.dst,
                    src_id: src,
                    dst_id: dst,
                    pair,
                    screened,
                });
                (src, dst, pair, fresh)
            }
        };
        if self.limits.rates != 0 {
            let c = rates::classes(s);
            match pair {
                Some(p) if runs => self.extend_run(p, c, len, fresh),
                _ if c != 0 => {
                    if let (Some(i), true) = (src, self.limits.rates & rates::OUT != 0) {
                        rates::count_n(self.row(1, i), c, packets, len);
                    }
                    if let (Some(j), true) = (dst, self.limits.rates & rates::IN != 0) {
                        rates::count_n(self.row(0, j), c, packets, len);
                    }
                }
                _ => {}
            }
        }
        match src {
            Some(i) => {
                let h = &mut self.hosts[i as usize];
                h.sent_bytes += len;
                h.sent_packets += packets;
            }
            None => {
                self.untracked.src_bytes += len;
                self.untracked.src_packets += packets;
            }
        }
        match dst {
            Some(j) => {
                let h = &mut self.hosts[j as usize];
                h.recv_bytes += len;
                h.recv_packets += packets;
            }
            None => {
                self.untracked.dst_bytes += len;
                self.untracked.dst_packets += packets;
            }
        }
        let mut first_contact = false;
        match pair {
            // Counted, and its first contact taken, as it was added.
            Some(_) if fresh => first_contact = opens_contact(s),
            Some(p) => {
                let c = &mut self.pair_slots[p as usize].1;
                c.bytes += len;
                c.packets += packets;
                c.roles |= role_bits::of(s.role);
                if opens_contact(s) {
                    match c.first_contact() {
                        None => {
                            (c.contact_proto, c.contact_port) = (s.proto, s.dst_port);
                            first_contact = true;
                        }
                        Some(f) => first_contact = f == (s.proto, s.dst_port),
                    }
                }
            }
            None => {
                self.untracked.pair_bytes += len;
                self.untracked.pair_packets += packets;
            }
        }
        if s.has_ports {
            if let (Some(i), Some(j)) = (src, dst) {
                match s.role {
                    Role::Initiation if !first_contact => {
                        let key = contact_key(i, j, s.proto, s.dst_port);
                        insert_bounded(
                            &mut self.contacts,
                            key,
                            self.limits.max_ports,
                            &mut self.untracked,
                        );
                    }
                    Role::Reply if self.limits.answers => {
                        let key = contact_key(i, j, s.proto, s.src_port);
                        insert_bounded(
                            &mut self.answers,
                            key,
                            self.limits.max_ports,
                            &mut self.untracked,
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    /// The screening probe of a packet's source (see [`Screen::probe`]),
    /// for [`Shard::record_probed`]; its filter block is fetched at once.
    #[inline]
    pub fn probe(&self, s: &Summary) -> Option<Probe> {
        let p = self.screen.probe(s.src);
        self.screen.prefetch(p);
        p
    }

    /// Takes what the aggregator will refuse.
    pub fn set_admission(&mut self, a: Option<std::sync::Arc<Admission>>) {
        self.screen.set(a);
        self.last_flow = None;
        self.screened_dst = None;
    }

    /// A tick starts: screening applies to it or not. Recording before the
    /// first call screens nothing.
    pub fn begin_tick(&mut self, tick: u64) {
        self.screen.begin(tick);
        self.last_flow = None;
        self.screened_dst = None;
    }

    /// Adds an interface's counters, into its existing entry if it has one:
    /// a shard the aggregator is late to take gets a delta every tick, and
    /// must not grow a list while it waits.
    pub fn add_iface(&mut self, d: IfaceDelta) {
        match self.ifaces.iter_mut().find(|e| e.ifindex == d.ifindex) {
            Some(e) => e.add(&d),
            None => self.ifaces.push(d),
        }
    }

    /// Hosts with their counters.
    pub fn hosts(&self) -> &[HostCounters] {
        &self.hosts
    }

    /// Pairs as (source, destination, counters).
    pub fn pairs(&self) -> impl Iterator<Item = (Addr, Addr, &PairCounters)> + '_ {
        self.pair_slots.iter().map(|(k, p)| {
            let src = self.hosts[(k >> 32) as usize].addr;
            let dst = self.hosts[(k & 0xffff_ffff) as usize].addr;
            (src, dst, p)
        })
    }

    /// Pairs by the shard's own host indexes (into [`Shard::hosts`]): a
    /// reader that has looked the hosts up once need not look up again.
    pub fn pairs_by_index(&self) -> impl Iterator<Item = (u32, u32, &PairCounters)> + '_ {
        self.pair_slots
            .iter()
            .map(|(k, p)| ((k >> 32) as u32, (k & 0xffff_ffff) as u32, p))
    }

    /// The pair at place `i` of [`Shard::pairs_by_index`].
    #[inline]
    pub fn pair_at(&self, i: usize) -> (u32, u32, &PairCounters) {
        let (k, p) = &self.pair_slots[i];
        ((k >> 32) as u32, (k & 0xffff_ffff) as u32, p)
    }

    /// Contacts by the shard's own host indexes: (from, protocol, port).
    pub fn contacts_by_index(&self) -> impl Iterator<Item = (u32, u8, u16)> + '_ {
        let inline = self.pair_slots.iter().filter_map(|(k, c)| {
            let (proto, port) = c.first_contact()?;
            Some(((k >> 32) as u32, proto, port))
        });
        inline.chain(self.contacts.iter().map(|&k| {
            let (from, _, proto, port) = split_contact(k);
            (from, proto, port)
        }))
    }

    /// Distinct contacts: initiations with a destination port.
    pub fn contacts(&self) -> impl Iterator<Item = Contact> + '_ {
        let inline = self.pair_slots.iter().filter_map(|(k, c)| {
            let (proto, port) = c.first_contact()?;
            Some(Contact {
                from: self.hosts[(k >> 32) as usize].addr,
                to: self.hosts[(k & 0xffff_ffff) as usize].addr,
                proto,
                port,
            })
        });
        inline.chain(self.contacts.iter().map(|&k| self.contact(k)))
    }

    /// Distinct answers: replies, keyed by the answering side's port.
    pub fn answers(&self) -> impl Iterator<Item = Contact> + '_ {
        self.answers.iter().map(|&k| self.contact(k))
    }

    fn contact(&self, k: u128) -> Contact {
        let (from, to, proto, port) = split_contact(k);
        Contact {
            from: self.hosts[from as usize].addr,
            to: self.hosts[to as usize].addr,
            proto,
            port,
        }
    }

    /// Number of pairs.
    pub fn pair_count(&self) -> usize {
        self.pair_slots.len()
    }

    /// The frames counted from now on were captured on interface
    /// `ifindex` (`None`: unknown). The pairs their packets start keep it,
    /// for exported records' ingressInterface, unless the box sent the
    /// packet. Set per block: a worker flushes its look-ahead of packets
    /// at the end of each block, so no packet of another ring is counted
    /// under it.
    #[inline]
    pub fn set_ingress(&mut self, ifindex: Option<u32>) {
        self.ingress = ifindex.and_then(|i| u16::try_from(i).ok()).unwrap_or(0);
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.totals.packets == 0 && self.ifaces.is_empty()
    }
}

#[cfg(test)]
mod tests;
