//! A capture worker: one thread pinned to one core, holding one ring per
//! watched interface, counting every frame into its own shard.
//!
//! The loop drains ready blocks from all its rings, checks the clock once
//! per turn (not per packet) and hands its shard over when a tick ends. With
//! nothing to read it sleeps in the [`Waiter`] until a block is ready, the
//! supervisor wakes it, or the tick ends — so an idle worker still hands
//! over on time.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};
use tpacket::{Block, Event, Ring, WaitKind, Waiter};

use super::clock::TickClock;
use super::handoff::WorkerSide;
use crate::admission::Board;
use crate::attacks::take::RawFrame;
use crate::counters::{Counter, IfaceDelta};
use crate::flows::UdpFlows;
use crate::shard::Shard;
use crate::wire::{self, Decap, Direction, LinkType, Meta};

/// Blocks read from one ring before turning to the next, so that one busy
/// interface cannot starve the others' rings.
const BLOCKS_PER_TURN: usize = 16;
/// The waiter token of the wake-up descriptor; rings get tokens counted
/// from 1, never reused, so that a ring being closed and the new ring of an
/// interface re-created with the same index are never confused.
const WAKE_TOKEN: u64 = 1 << 40;
/// A closing ring is read until the kernel has handed over its last,
/// partly filled block — which it does within two retire timeouts — or
/// this many retire timeouts have passed.
const CLOSE_TIMEOUTS: u32 = 3;
/// Repeated errors of one interface are logged at most this often.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

/// How the supervisor gets a worker's attention.
#[derive(Debug)]
pub struct Wake {
    fd: EventFd,
    commands: AtomicBool,
    stop: AtomicBool,
}

impl Wake {
    pub fn new() -> io::Result<Arc<Wake>> {
        let fd = EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        Ok(Arc::new(Wake {
            fd,
            commands: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }))
    }

    /// Commands are waiting.
    pub fn commands(&self) {
        self.commands.store(true, Ordering::Release);
        let _ = self.fd.write(1);
    }

    /// Finish: hand over the last shard and end the thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.fd.write(1);
    }
}

/// One interface's ring in a worker.
#[derive(Debug)]
pub struct Member {
    pub ring: Ring,
    pub link: LinkType,
    pub name: String,
    pub counters: IfaceDelta,
    /// Tunnels whose packets are looked into on this interface.
    pub decap: Decap,
    last_error_log: Option<Instant>,
    token: u64,
    /// Set when the ring is closing: read what is left in it until then.
    closing: Option<Instant>,
    /// Frames read, and frames the kernel put in the ring (its packets
    /// less its drops), since the ring was opened.
    read: u64,
    placed: u64,
    /// The receive time (ns) of the last frame read from the ring.
    last_ns: u64,
}

impl Member {
    pub fn new(ring: Ring, link: LinkType, name: String, decap: Decap) -> Member {
        let ifindex = ring.ifindex();
        Member {
            ring,
            link,
            name,
            counters: IfaceDelta::new(ifindex),
            decap,
            last_error_log: None,
            token: 0,
            closing: None,
            read: 0,
            placed: 0,
            last_ns: 0,
        }
    }
}

/// What the supervisor tells a worker.
#[derive(Debug)]
pub enum Command {
    Add(Box<Member>),
    /// Stop watching the interface with this index.
    Remove(u32),
    /// Look into these tunnels on the interface with this index.
    Decap(u32, Decap),
}

/// Everything a worker thread starts with.
#[derive(Debug)]
pub struct WorkerSetup {
    pub id: usize,
    pub cpu: Option<usize>,
    pub wait: WaitKind,
    pub direction: crate::config::CountDirection,
    pub clock: TickClock,
    pub wake: Arc<Wake>,
    pub commands: Receiver<Command>,
    pub side: WorkerSide,
    pub shard: Box<Shard>,
    /// The rings' block retire timeout.
    pub retire: Duration,
    /// What the aggregator's full tables refuse.
    pub board: Arc<Board>,
}

/// What a worker did, reported when it ends.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    pub id: usize,
    pub wait: String,
    pub pinned: Option<usize>,
    pub handovers: u64,
    /// Tick ends at which the aggregator had not returned an empty shard.
    pub stalls: u64,
    pub wakeups: u64,
    pub blocks: u64,
}

/// Runs a worker until told to stop.
pub fn run(setup: WorkerSetup) -> WorkerReport {
    let WorkerSetup {
        id,
        cpu,
        wait,
        direction,
        clock,
        wake,
        commands,
        mut side,
        mut shard,
        retire,
        board,
    } = setup;
    let mut report = WorkerReport {
        id,
        ..WorkerReport::default()
    };
    if let Some(cpu) = cpu {
        match pin(cpu) {
            Ok(()) => report.pinned = Some(cpu),
            Err(e) => log::warn!("worker {id}: cannot pin to CPU {cpu}: {e}; running unpinned"),
        }
    }
    let mut waiter = match Waiter::new(wait) {
        Ok((w, fallback)) => {
            if let Some(e) = fallback {
                if id == 0 {
                    log::info!("io_uring is not available ({e}); workers wait with poll(2)");
                }
            }
            w
        }
        Err(e) => {
            log::error!("worker {id}: cannot set up {wait:?} waiting ({e}); using poll(2)");
            match Waiter::new(WaitKind::Poll) {
                Ok((w, _)) => w,
                Err(e) => {
                    // Returning drops `side`: the aggregator sees the worker
                    // gone, and the daemon stops with an error.
                    log::error!("worker {id}: cannot wait at all: {e}");
                    return report;
                }
            }
        }
    };
    report.wait = match waiter.kind() {
        WaitKind::IoUring => "io_uring".into(),
        _ => "poll".into(),
    };
    if let Err(e) = waiter.register(wake.fd.as_fd(), WAKE_TOKEN) {
        log::error!("worker {id}: cannot register its wake-up descriptor: {e}");
        return report;
    }
    let fault = fault::Injected::from_env(id);

    let ingress_only = direction == crate::config::CountDirection::Ingress;
    let mut w = Work {
        id,
        ingress_only,
        retire,
        counter: Counter::new(UdpFlows::new(crate::flows::SLOTS)),
        members: Vec::new(),
        next_token: 1,
    };
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let mut tick = clock.tick_at(Instant::now());
    shard.first_tick = tick;
    let mut deadline = clock.end_of(tick);
    let mut board_seen = board.version();
    shard.set_admission(board.current());
    w.counter.taker.set(board.captures());
    shard.begin_tick(tick);

    loop {
        let mut busy = false;
        for m in w.members.iter_mut() {
            for _ in 0..BLOCKS_PER_TURN {
                let Some(block) = m.ring.next_block() else {
                    break;
                };
                let (frames, last_ns) = drain_block(
                    &block,
                    m.link,
                    &m.decap,
                    &mut m.counters,
                    &mut shard,
                    &mut w.counter,
                    ingress_only,
                );
                m.read += frames;
                m.last_ns = m.last_ns.max(last_ns);
                report.blocks += 1;
                busy = true;
            }
        }
        let now = Instant::now();
        w.close_finished(&mut waiter, &mut shard, now);
        if board.version() != board_seen {
            // The aggregator's tables filled (or made room): from now on.
            board_seen = board.version();
            shard.set_admission(board.current());
            w.counter.taker.set(board.captures());
            shard.begin_tick(tick);
        }
        if now >= deadline {
            shard.last_tick = tick;
            hand_over_counters(&mut w.members, &mut shard);
            w.counter
                .taker
                .report(&mut shard.captured, read_to(&w.members, retire));
            shard.udp_evicted += w.counter.flows.take_evicted();
            w.counter.flows.rotate();
            if side.exchange(&mut shard) {
                report.handovers += 1;
            } else {
                report.stalls += 1;
            }
            tick = clock.tick_at(now);
            if shard.is_empty() {
                shard.first_tick = tick;
            }
            board_seen = board.version();
            shard.set_admission(board.current());
            w.counter.taker.set(board.captures());
            shard.begin_tick(tick);
            deadline = clock.end_of(tick);
            if fault.due(report.handovers) {
                return fault.strike(report);
            }
        }
        if wake.commands.swap(false, Ordering::Acquire) {
            w.apply_commands(&commands, &mut waiter, now);
        }
        if wake.stop.load(Ordering::Acquire) {
            break;
        }
        if !busy {
            events.clear();
            report.wakeups += 1;
            let until = w.next_close().map_or(deadline, |c| c.min(deadline));
            if let Err(e) = waiter.wait(until.saturating_duration_since(now), &mut events) {
                log::error!("worker {id}: wait failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            for e in &events {
                if e.token == WAKE_TOKEN {
                    let _ = wake.fd.read();
                } else if e.error || e.invalid {
                    if let Some(m) = w.members.iter_mut().find(|m| m.token == e.token) {
                        report_socket_error(m, id);
                    }
                }
            }
        }
    }

    // Last turn: every ring closes as a removed one does, so that the
    // packets in partly filled blocks are counted too; then the final shard.
    let now = Instant::now();
    for m in w.members.iter_mut() {
        m.start_closing(now, retire);
    }
    while !w.members.is_empty() {
        let mut busy = false;
        for m in w.members.iter_mut() {
            while let Some(block) = m.ring.next_block() {
                let (frames, last_ns) = drain_block(
                    &block,
                    m.link,
                    &m.decap,
                    &mut m.counters,
                    &mut shard,
                    &mut w.counter,
                    ingress_only,
                );
                m.read += frames;
                m.last_ns = m.last_ns.max(last_ns);
                busy = true;
            }
        }
        let now = Instant::now();
        w.close_finished(&mut waiter, &mut shard, now);
        if !busy && !w.members.is_empty() {
            events.clear();
            let until = w.next_close().unwrap_or(now);
            let _ = waiter.wait(until.saturating_duration_since(now), &mut events);
        }
    }
    shard.last_tick = tick;
    shard.last = true;
    shard.udp_evicted += w.counter.flows.take_evicted();
    side.finish(shard);
    report
}

/// A worker's rings and what goes with them.
struct Work {
    id: usize,
    ingress_only: bool,
    retire: Duration,
    /// Frames parsed and counted, with the UDP flow table.
    counter: Counter,
    members: Vec<Member>,
    next_token: u64,
}

impl Member {
    /// Stops new packets from entering the ring; what is in it is still
    /// read, until the kernel has handed over the last block or the time is
    /// up.
    fn start_closing(&mut self, now: Instant, retire: Duration) {
        if self.closing.is_some() {
            return;
        }
        if let Err(e) = self.ring.detach() {
            log::debug!("{}: {e}", self.name);
        }
        self.closing = Some(now + retire * CLOSE_TIMEOUTS);
    }

    /// Every frame the kernel put in the ring has been read.
    fn drained(&mut self) -> bool {
        add_kernel_stats(self);
        self.read >= self.placed
    }
}

impl Work {
    /// The earliest time a closing ring must be let go.
    fn next_close(&self) -> Option<Instant> {
        self.members.iter().filter_map(|m| m.closing).min()
    }

    /// Lets go of closing rings that are empty or out of time: their
    /// counters go into the shard, their descriptors out of the waiter.
    fn close_finished(&mut self, waiter: &mut Waiter, shard: &mut Shard, now: Instant) {
        let mut i = 0;
        while i < self.members.len() {
            let m = &mut self.members[i];
            let done = match m.closing {
                Some(until) => now >= until || m.drained(),
                None => false,
            };
            if !done {
                i += 1;
                continue;
            }
            let mut m = self.members.swap_remove(i);
            while let Some(block) = m.ring.next_block() {
                m.read += drain_block(
                    &block,
                    m.link,
                    &m.decap,
                    &mut m.counters,
                    shard,
                    &mut self.counter,
                    self.ingress_only,
                )
                .0;
            }
            add_kernel_stats(&mut m);
            if m.read < m.placed {
                log::warn!(
                    "{}: {} packet(s) the kernel put in the ring were still unread when it closed",
                    m.name,
                    m.placed - m.read
                );
            }
            shard.add_iface(m.counters.take());
            if let Err(e) = waiter.deregister(m.token) {
                log::warn!(
                    "worker {}: removing {} from the waiter: {e}",
                    self.id,
                    m.name
                );
            }
        }
    }

    fn apply_commands(&mut self, commands: &Receiver<Command>, waiter: &mut Waiter, now: Instant) {
        while let Ok(cmd) = commands.try_recv() {
            match cmd {
                Command::Add(mut m) => {
                    m.token = self.next_token;
                    self.next_token += 1;
                    match waiter.register(m.ring.as_fd(), m.token) {
                        Ok(()) => self.members.push(*m),
                        Err(e) => log::error!(
                            "worker {}: cannot wait on {}: {e}; not watching it",
                            self.id,
                            m.name
                        ),
                    }
                }
                Command::Remove(ifindex) => {
                    for m in self
                        .members
                        .iter_mut()
                        .filter(|m| m.ring.ifindex() == ifindex)
                    {
                        m.start_closing(now, self.retire);
                    }
                }
                Command::Decap(ifindex, decap) => {
                    for m in self
                        .members
                        .iter_mut()
                        .filter(|m| m.ring.ifindex() == ifindex && m.closing.is_none())
                    {
                        m.decap = decap;
                    }
                }
            }
        }
    }
}

/// Counts every frame of a block; returns how many frames it held and the
/// receive time of its last.
#[inline]
fn drain_block(
    block: &Block<'_>,
    link: LinkType,
    decap: &Decap,
    c: &mut IfaceDelta,
    shard: &mut Shard,
    counter: &mut Counter,
    ingress_only: bool,
) -> (u64, u64) {
    let mut frames = block.frames();
    let mut n = 0;
    let mut last_ts = (0u32, 0u32);
    shard.set_ingress(Some(c.ifindex));
    for f in frames.by_ref() {
        n += 1;
        last_ts = (f.ts_sec, f.ts_nsec);
        c.wire_bytes += u64::from(f.wire_len);
        if f.gso_tcp() {
            c.gso_frames += 1;
        }
        let outgoing = f.packet_type.is_outgoing();
        if outgoing && ingress_only {
            c.outgoing_skipped += 1;
            continue;
        }
        let meta = Meta {
            wire_len: f.wire_len,
            vlan: f.vlan.map_or(0, |v| v.id()),
            direction: if outgoing {
                Direction::Out
            } else {
                Direction::In
            },
            protocol: f.protocol,
            net_offset: f.net_offset,
        };
        let parsed =
            counter.push_with(|s| wire::parse_into(link, f.data, meta, decap, s), c, shard);
        if let Some((s, taker)) = parsed
            && taker.active()
        {
            // An unknown link header is cut off: the copy starts at the IP
            // header the kernel pointed at.
            let (data, link) = match link {
                LinkType::Kernel => (
                    f.data.get(usize::from(f.net_offset)..).unwrap_or_default(),
                    LinkType::RawIp,
                ),
                l => (f.data, l),
            };
            let frame = RawFrame {
                data,
                wire_len: f.wire_len,
                ts_ns: u64::from(f.ts_sec) * 1_000_000_000 + u64::from(f.ts_nsec),
                vlan: f.vlan.map(|v| (v.tpid.unwrap_or(0x8100), v.tci)),
            };
            taker.take(s, &frame, link, &mut shard.captured);
        }
    }
    counter.flush(c, shard);
    let last_ns = u64::from(last_ts.0) * 1_000_000_000 + u64::from(last_ts.1);
    counter.taker.seen(last_ns);
    c.frames += n;
    if frames.malformed() {
        c.ring_corrupt += u64::from(frames.remaining()).max(1);
    }
    (n + u64::from(frames.remaining()), last_ns)
}

/// A receive time (the kernel's clock, ns since the Unix epoch) after
/// which every frame the worker has yet to read was received: per ring, the
/// last frame read from it — or, when it has no block ready, a time before
/// which every frame was in a block handed over already. The kernel hands
/// over a block within two retire timeouts of its first frame; four allow
/// for its timer being late.
fn read_to(members: &[Member], retire: Duration) -> u64 {
    // Taken before the rings are looked at: what they hold then was
    // received before now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let quiet = u64::try_from(now.saturating_sub(retire * 4).as_nanos()).unwrap_or(u64::MAX);
    members
        .iter()
        .map(|m| {
            if m.ring.is_ready() {
                m.last_ns
            } else {
                m.last_ns.max(quiet)
            }
        })
        .min()
        .unwrap_or(quiet)
}

/// Moves each member's counters, and the kernel's, into the shard.
fn hand_over_counters(members: &mut [Member], shard: &mut Shard) {
    for m in members.iter_mut() {
        add_kernel_stats(m);
        shard.add_iface(m.counters.take());
    }
}

fn add_kernel_stats(m: &mut Member) {
    match m.ring.take_stats() {
        Ok(st) => {
            m.counters.kernel_packets += st.packets;
            m.counters.kernel_drops += st.drops;
            m.counters.kernel_freezes += st.freezes;
            m.placed += st.packets.saturating_sub(st.drops);
        }
        Err(e) => log_limited(m, || format!("cannot read kernel statistics: {e}")),
    }
}

/// The kernel flagged an error on a ring: ENETDOWN when the interface went
/// down (the ring resumes when it comes back up) or away (the supervisor
/// removes it on its next look at the interfaces).
fn report_socket_error(m: &mut Member, id: usize) {
    if let Some(e) = m.ring.take_error() {
        let name = m.name.clone();
        log_limited(m, || {
            if e.raw_os_error() == Some(nix::errno::Errno::ENETDOWN as i32) {
                format!("{name} is down (worker {id}); counting resumes when it comes back up")
            } else {
                format!("{name}: socket error (worker {id}): {e}")
            }
        });
    }
}

fn log_limited(m: &mut Member, msg: impl FnOnce() -> String) {
    let now = Instant::now();
    if m.last_error_log
        .is_none_or(|t| now.duration_since(t) >= ERROR_LOG_EVERY)
    {
        m.last_error_log = Some(now);
        log::warn!("{}", msg());
    }
}

fn pin(cpu: usize) -> nix::Result<()> {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set)
}

/// Faults a test can ask a debug build's worker for, to see the daemon
/// notice a worker that is gone. Release builds have none.
mod fault {
    use super::WorkerReport;

    #[derive(Debug, Clone, Copy)]
    pub enum Injected {
        None,
        /// After this many hand-overs, return without the last shard.
        Exit(u64),
        /// After this many hand-overs, panic.
        Panic(u64),
    }

    impl Injected {
        /// `TRAFFICALERTED_TEST_WORKER_FAULT=exit:ID:N` or `panic:ID:N`.
        pub fn from_env(id: usize) -> Injected {
            if !cfg!(debug_assertions) {
                return Injected::None;
            }
            let Ok(v) = std::env::var("TRAFFICALERTED_TEST_WORKER_FAULT") else {
                return Injected::None;
            };
            let mut it = v.split(':');
            let (kind, who, after) = (it.next(), it.next(), it.next());
            let who = who.and_then(|w| w.parse::<usize>().ok());
            let after = after.and_then(|a| a.parse::<u64>().ok()).unwrap_or(1);
            match (kind, who) {
                (Some("exit"), Some(w)) if w == id => Injected::Exit(after),
                (Some("panic"), Some(w)) if w == id => Injected::Panic(after),
                _ => Injected::None,
            }
        }

        pub fn due(&self, handovers: u64) -> bool {
            match *self {
                Injected::None => false,
                Injected::Exit(n) | Injected::Panic(n) => handovers >= n,
            }
        }

        pub fn strike(&self, report: WorkerReport) -> WorkerReport {
            if let Injected::Panic(_) = self {
                panic!("worker {}: panic injected by a test", report.id);
            }
            log::error!("worker {}: exit injected by a test", report.id);
            report
        }
    }
}
