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
use crate::counters::{IfaceDelta, count_frame};
use crate::flows::UdpFlows;
use crate::shard::Shard;
use crate::wire::{Direction, LinkType, Meta};

/// Blocks read from one ring before turning to the next, so that one busy
/// interface cannot starve the others' rings.
const BLOCKS_PER_TURN: usize = 16;
/// The waiter token of the wake-up descriptor; ring tokens are ifindexes.
const WAKE_TOKEN: u64 = 1 << 40;
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
    last_error_log: Option<Instant>,
}

impl Member {
    pub fn new(ring: Ring, link: LinkType, name: String) -> Member {
        let ifindex = ring.ifindex();
        Member {
            ring,
            link,
            name,
            counters: IfaceDelta::new(ifindex),
            last_error_log: None,
        }
    }
}

/// What the supervisor tells a worker.
#[derive(Debug)]
pub enum Command {
    Add(Box<Member>),
    /// Stop watching the interface with this index.
    Remove(u32),
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

    let ingress_only = direction == crate::config::CountDirection::Ingress;
    let mut flows = UdpFlows::new(crate::flows::SLOTS);
    let mut members: Vec<Member> = Vec::new();
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let mut tick = clock.tick_at(Instant::now());
    shard.first_tick = tick;
    let mut deadline = clock.end_of(tick);

    loop {
        let mut busy = false;
        for m in members.iter_mut() {
            for _ in 0..BLOCKS_PER_TURN {
                let Some(block) = m.ring.next_block() else {
                    break;
                };
                drain_block(
                    &block,
                    m.link,
                    &mut m.counters,
                    &mut shard,
                    &mut flows,
                    ingress_only,
                );
                report.blocks += 1;
                busy = true;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            shard.last_tick = tick;
            hand_over_counters(&mut members, &mut shard);
            flows.rotate();
            if side.exchange(&mut shard) {
                report.handovers += 1;
            } else {
                report.stalls += 1;
            }
            tick = clock.tick_at(now);
            if shard.is_empty() {
                shard.first_tick = tick;
            }
            deadline = clock.end_of(tick);
        }
        if wake.commands.swap(false, Ordering::Acquire) {
            apply_commands(
                &commands,
                &mut members,
                &mut waiter,
                &mut shard,
                &mut flows,
                ingress_only,
                id,
            );
        }
        if wake.stop.load(Ordering::Acquire) {
            break;
        }
        if !busy {
            events.clear();
            report.wakeups += 1;
            if let Err(e) = waiter.wait(deadline.saturating_duration_since(now), &mut events) {
                log::error!("worker {id}: wait failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            for e in &events {
                if e.token == WAKE_TOKEN {
                    let _ = wake.fd.read();
                } else if e.error || e.invalid {
                    if let Some(m) = members
                        .iter_mut()
                        .find(|m| u64::from(m.ring.ifindex()) == e.token)
                    {
                        report_socket_error(m, id);
                    }
                }
            }
        }
    }

    // Last turn: everything still in the rings, then the final shard.
    for m in members.iter_mut() {
        while let Some(block) = m.ring.next_block() {
            drain_block(
                &block,
                m.link,
                &mut m.counters,
                &mut shard,
                &mut flows,
                ingress_only,
            );
        }
    }
    shard.last_tick = tick;
    shard.last = true;
    hand_over_counters(&mut members, &mut shard);
    for m in &members {
        let _ = waiter.deregister(u64::from(m.ring.ifindex()));
    }
    side.finish(shard);
    report
}

/// Counts every frame of a block.
#[inline]
fn drain_block(
    block: &Block<'_>,
    link: LinkType,
    c: &mut IfaceDelta,
    shard: &mut Shard,
    flows: &mut UdpFlows,
    ingress_only: bool,
) {
    let mut frames = block.frames();
    for f in frames.by_ref() {
        c.frames += 1;
        c.wire_bytes += u64::from(f.wire_len);
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
        count_frame(link, f.data, meta, c, shard, flows);
    }
    if frames.malformed() {
        c.ring_corrupt += u64::from(frames.remaining()).max(1);
    }
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
        }
        Err(e) => log_limited(m, || format!("cannot read kernel statistics: {e}")),
    }
}

fn apply_commands(
    commands: &Receiver<Command>,
    members: &mut Vec<Member>,
    waiter: &mut Waiter,
    shard: &mut Shard,
    flows: &mut UdpFlows,
    ingress_only: bool,
    id: usize,
) {
    while let Ok(cmd) = commands.try_recv() {
        match cmd {
            Command::Add(m) => {
                let token = u64::from(m.ring.ifindex());
                match waiter.register(m.ring.as_fd(), token) {
                    Ok(()) => members.push(*m),
                    Err(e) => log::error!(
                        "worker {id}: cannot wait on {}: {e}; not watching it",
                        m.name
                    ),
                }
            }
            Command::Remove(ifindex) => {
                let Some(pos) = members.iter().position(|m| m.ring.ifindex() == ifindex) else {
                    continue;
                };
                let mut m = members.swap_remove(pos);
                while let Some(block) = m.ring.next_block() {
                    drain_block(&block, m.link, &mut m.counters, shard, flows, ingress_only);
                }
                add_kernel_stats(&mut m);
                shard.add_iface(m.counters.take());
                if let Err(e) = waiter.deregister(u64::from(ifindex)) {
                    log::warn!("worker {id}: removing {} from the waiter: {e}", m.name);
                }
            }
        }
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
