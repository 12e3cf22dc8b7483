//! Live capture: the supervisor that decides which interfaces to watch and
//! opens their rings, the pinned workers that count, and the aggregator
//! thread that merges their shards every tick.
//!
//! Threads: `cap-N` (one per worker, pinned to its core), `aggregator`,
//! and the caller's, which calls [`Capture::refresh`] once per tick to pick up
//! interfaces that appeared and drop those that went away.

pub mod clock;
mod collect;
pub(crate) mod handoff;
pub mod links;
pub mod select;
pub mod sizing;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tpacket::{Fanout, FanoutMode, Ring, RingConfig, WaitKind, Waiter};

use crate::admission::Board;
use crate::aggregator::{Aggregator, RuntimeInfo};
use crate::alert::Now;
use crate::config::{Config, CountDirection, FanoutPolicy, WaitPolicy};
use crate::shard::{Hasher, ShardLimits};
use crate::sinks::Sinks;
use crate::sinks::history::Loaded;
use crate::snapshot::{Published, Snapshot};
use crate::wire::LinkType;
use clock::TickClock;
use collect::{Collector, IfaceEvent, Reconfigure};
use links::Link;
use select::Skipped;
use sizing::{Bytes, Machine, Sizing};
pub use worker::WorkerReport;
use worker::{Command, Member, Wake, WorkerSetup};

/// Why capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Ring(#[from] tpacket::Error),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot create a wake-up descriptor: {0}")]
    Wake(std::io::Error),
    #[error("io_uring was asked for (capture.wait = \"io_uring\") but cannot be used: {0}")]
    Uring(std::io::Error),
    #[error(transparent)]
    FlowInput(#[from] crate::flowin::thread::FlowInputError),
}

struct WorkerHandle {
    thread: JoinHandle<WorkerReport>,
    commands: Sender<Command>,
    wake: Arc<Wake>,
}

struct Watched {
    name: String,
    ring_bytes: u64,
    /// A second descriptor of one of its sockets: tells whether the
    /// interface the rings were opened on still exists (an interface
    /// deleted and made again can come back with the same index).
    probe: Option<tpacket::BindProbe>,
}

/// An interface that could not be opened.
struct Failure {
    /// Try again once the interface is up: it was down, and this kernel
    /// cannot add a down interface's sockets to a fanout group.
    when_up: bool,
}

/// The running capture.
pub struct Capture {
    cfg: crate::config::CaptureConfig,
    sizing: Sizing,
    wait: WaitKind,
    workers: Vec<WorkerHandle>,
    aggregator: JoinHandle<Arc<Snapshot>>,
    agg_events: Sender<IfaceEvent>,
    agg_control: Sender<Reconfigure>,
    clock: TickClock,
    watched: BTreeMap<u32, Watched>,
    /// Interfaces that could not be opened: not retried (and not logged
    /// again) while they keep their index, unless they were only down.
    failed: HashMap<u32, Failure>,
    /// Interfaces warned about for GRO.
    gro_warned: HashSet<String>,
    /// Said once: this kernel's fanout groups deliver outgoing packets.
    fanout_outgoing_logged: bool,
    /// Interfaces skipped as stacked, logged once.
    stacked_logged: HashSet<u32>,
    ring_used: u64,
    last_list_error: Option<Instant>,
    ignore_outgoing_supported: bool,
    /// Link change announcements; without them (netlink refused) the list
    /// is read every tick.
    watch: Option<links::LinkWatch>,
    last_list: Option<Instant>,
    /// Workers the aggregator found gone.
    lost: Arc<AtomicUsize>,
    /// Flow records from routers, when `[flow_input]` listens.
    flow_input: Option<crate::flowin::thread::FlowInput>,
}

/// The interface list is read again at least this often, in case an
/// announcement was missed.
const RELIST_EVERY: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("sizing", &self.sizing)
            .field("watched", &self.watched.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A link type in words, for logs and the API.
pub fn link_name(l: &Link) -> String {
    match LinkType::from_arphrd(l.hatype) {
        LinkType::Ethernet if l.hatype == tpacket::arphrd::LOOPBACK => "loopback".into(),
        LinkType::Ethernet => "ethernet".into(),
        LinkType::RawIp => "raw-ip".into(),
        _ => format!("arphrd-{}", l.hatype),
    }
}

impl Capture {
    /// Checks the privilege, sizes the rings, starts the aggregator (with the
    /// alert sinks and the alerts restored from the history) and the
    /// workers, and opens the interfaces present now.
    pub fn start(
        config: &Config,
        published: Published,
        restored: Loaded,
        sinks: Sinks,
        mut mitigation: crate::mitigation::Mitigator,
    ) -> Result<Capture, StartError> {
        Ring::check_access()?;
        let cfg = config.capture.clone();
        let machine = Machine::detect();
        let sizing = sizing::size(&cfg, &machine);
        let wait = resolve_wait(cfg.wait)?;
        log::info!(
            "sizing: {sizing}; idle workers wait with {}",
            if wait == WaitKind::IoUring {
                "io_uring"
            } else {
                "poll(2)"
            }
        );

        let runtime = RuntimeInfo {
            version: env!("CARGO_PKG_VERSION"),
            workers: sizing.workers,
            aggregators: sizing.aggregators,
            cpus: sizing.cpus.clone(),
            wait: if wait == WaitKind::IoUring {
                "io_uring"
            } else {
                "poll"
            }
            .into(),
            ring_block_size: u64::from(sizing.block_size),
            ring_block_count: sizing.block_count,
            ring_memory_max: sizing.ring_memory_max,
            source: "live".into(),
            started_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        // Readers see the runtime facts from the start, not after a tick.
        published.store(Arc::new(Snapshot::empty(config, runtime.clone())));
        let mut agg = Aggregator::with_threads(config, runtime, sizing.aggregators);
        let taken = agg.prefault_within(sizing.memory);
        if taken > 0 {
            log::info!(
                "host table: {} taken at start for traffic.max_hosts = {}",
                sizing::Bytes(taken),
                config.traffic.max_hosts
            );
        }
        let limits = ShardLimits {
            max_hosts: config.traffic.max_hosts,
            max_pairs: config.traffic.max_pairs,
            max_ports: config.traffic.max_pairs,
            answers: config.scan.count == crate::config::ScanCount::Failed,
            rates: config.rates.dirs(&config.rules),
        };
        let spares = sizing::flood_spares(&limits, sizing.workers, sizing.memory);
        let clock = TickClock::new(Instant::now(), config.tick());
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if !restored.open.is_empty() {
            log::info!(
                "{} alert(s) were open when the daemon last stopped; they stay open until their condition is gone",
                restored.open.len()
            );
        }
        sinks.send(&mitigation.restore(&restored.open, now_ms));
        agg.restore(
            restored.open,
            restored.max_id,
            Now {
                tick: 0,
                unix_ms: now_ms,
            },
        );

        let flow_sockets = if config.flow_input.is_on() {
            Some(crate::flowin::thread::FlowInput::bind(&config.flow_input)?)
        } else {
            None
        };
        // The aggregator starts first: workers need its thread handle to
        // wake it, and it needs their queues, which it receives once made.
        let (sides_tx, sides_rx) = mpsc::channel();
        let (agg_events, events_rx) = mpsc::channel();
        let (agg_control, control_rx) = mpsc::channel();
        let alerts = config.alerts.clone();
        let attacks = crate::attacks::Attacks::start(&config.attack_pcap, sizing.workers);
        let export = crate::export::Exporter::start(&config.ipfix);
        let lost = Arc::new(AtomicUsize::new(0));
        let lost_agg = lost.clone();
        let board = Arc::new(Board::default());
        let board_agg = board.clone();
        let aggregator = std::thread::Builder::new()
            .name("aggregator".into())
            .spawn(move || {
                let sides = sides_rx.recv().unwrap_or_default();
                Collector {
                    agg,
                    sides,
                    clock,
                    published,
                    events: events_rx,
                    control: control_rx,
                    sinks,
                    alerts,
                    lost: lost_agg,
                    board: board_agg,
                    mitigation,
                    mitigation_report: None,
                    flow_report: None,
                    attacks,
                    export,
                }
                .run()
            })
            .map_err(StartError::Thread)?;

        let hasher = Hasher::new();
        let mut sides = Vec::new();
        let mut workers = Vec::new();
        for id in 0..sizing.workers {
            let (side, agg_side, shard) =
                handoff::channel(limits, &hasher, aggregator.thread().clone(), spares);
            sides.push(agg_side);
            let wake = Wake::new().map_err(StartError::Wake)?;
            let (commands, commands_rx) = mpsc::channel();
            let setup = WorkerSetup {
                id,
                cpu: sizing.cpus.get(id).copied(),
                wait,
                direction: cfg.direction,
                clock,
                wake: wake.clone(),
                commands: commands_rx,
                side,
                shard,
                retire: cfg.block_timeout.0.max(Duration::from_millis(1)),
                board: board.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("cap-{id}"))
                .spawn(move || worker::run(setup))
                .map_err(StartError::Thread)?;
            workers.push(WorkerHandle {
                thread,
                commands,
                wake,
            });
        }
        let flow_input = match flow_sockets {
            Some(sockets) => {
                let (side, agg_side, shard) =
                    handoff::channel(limits, &hasher, aggregator.thread().clone(), (0, 0));
                sides.push(agg_side);
                Some(crate::flowin::thread::FlowInput::start(
                    &config.flow_input,
                    sockets,
                    side,
                    shard,
                    clock,
                    board.clone(),
                )?)
            }
            None => None,
        };
        let _ = sides_tx.send(sides);

        let mut capture = Capture {
            cfg,
            sizing,
            wait,
            workers,
            aggregator,
            agg_events,
            agg_control,
            clock,
            watched: BTreeMap::new(),
            failed: HashMap::new(),
            gro_warned: HashSet::new(),
            fanout_outgoing_logged: false,
            stacked_logged: HashSet::new(),
            ring_used: 0,
            last_list_error: None,
            ignore_outgoing_supported: true,
            watch: match links::LinkWatch::new() {
                Ok(w) => Some(w),
                Err(e) => {
                    log::info!(
                        "no link change announcements ({e}); reading the interface list every tick"
                    );
                    None
                }
            },
            last_list: None,
            lost,
            flow_input,
        };
        capture.refresh();
        if capture.watched.is_empty() {
            log::warn!(
                "no interface to watch yet (capture.interfaces = {:?}, exclude_interfaces = {:?}); waiting for one to appear",
                capture.cfg.interfaces,
                capture.cfg.exclude_interfaces
            );
        }
        Ok(capture)
    }

    /// The sizes capture runs with.
    pub fn sizing(&self) -> &Sizing {
        &self.sizing
    }

    /// The idle-wait mechanism in use.
    pub fn wait_kind(&self) -> WaitKind {
        self.wait
    }

    /// The tick clock shared by workers and aggregator.
    pub fn clock(&self) -> TickClock {
        self.clock
    }

    /// Why capture cannot go on, if a worker thread has ended (it
    /// panicked, or could not wait for its rings): its share of every
    /// interface is no longer read. The daemon stops with an error then, so
    /// that its supervisor (systemd's `Restart=on-failure`) starts it again.
    pub fn lost_worker(&self) -> Option<String> {
        let gone: Vec<usize> = self
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.thread.is_finished())
            .map(|(i, _)| i)
            .collect();
        let lost = self.lost.load(Ordering::Acquire);
        if gone.is_empty() && lost == 0 {
            return None;
        }
        Some(format!(
            "capture worker(s) {gone:?} ended while running ({lost} without handing over their last counts): their share of the packets is no longer read"
        ))
    }

    /// Names of the interfaces being watched.
    pub fn watched(&self) -> Vec<String> {
        self.watched.values().map(|w| w.name.clone()).collect()
    }

    /// Looks at the interfaces again if the kernel announced a change (or it
    /// has been a while): opens rings on new ones, closes those of interfaces
    /// that went away or no longer match.
    pub fn refresh(&mut self) {
        let announced = self.watch.as_mut().is_none_or(|w| w.changed());
        let due = self.last_list.is_none_or(|t| t.elapsed() >= RELIST_EVERY);
        if !announced && !due {
            return;
        }
        self.last_list = Some(Instant::now());
        let links = match links::list() {
            Ok(l) => l,
            Err(e) => {
                let now = Instant::now();
                if self
                    .last_list_error
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
                {
                    self.last_list_error = Some(now);
                    log::warn!("cannot list interfaces: {e}; keeping the ones watched");
                }
                return;
            }
        };
        let (watch, skipped) = select::select(
            &links,
            &self.cfg.interfaces,
            &self.cfg.exclude_interfaces,
            self.cfg.skip_stacked,
        );
        for (l, why) in &skipped {
            if let Skipped::Stacked { on } = why {
                if self.stacked_logged.insert(l.ifindex) {
                    log::info!("not watching {}: its packets are counted on {on}", l.name);
                }
            }
        }
        let present: HashSet<u32> = links.iter().map(|l| l.ifindex).collect();
        self.failed.retain(|i, _| present.contains(i));
        self.stacked_logged.retain(|i| present.contains(i));

        // Rings whose interface was unregistered (deleted, or moved to
        // another namespace) see nothing more, even when an interface comes
        // back with the same index: close them, and open the new one below.
        let dead: Vec<u32> = self
            .watched
            .iter()
            .filter(|(_, w)| w.probe.as_ref().is_some_and(|p| !p.is_bound()))
            .map(|(&i, _)| i)
            .collect();
        for ifindex in dead {
            let why = if present.contains(&ifindex) {
                "it was removed and an interface with its index took its place"
            } else {
                "it went away"
            };
            self.unwatch(ifindex, why);
        }

        let wanted: HashMap<u32, &Link> = watch.iter().map(|l| (l.ifindex, *l)).collect();
        let gone: Vec<u32> = self
            .watched
            .keys()
            .filter(|i| !wanted.contains_key(i))
            .copied()
            .collect();
        for ifindex in gone {
            let why = if present.contains(&ifindex) {
                "no longer selected"
            } else {
                "it went away"
            };
            self.unwatch(ifindex, why);
        }
        for l in watch {
            if let Some(w) = self.watched.get_mut(&l.ifindex) {
                if w.name != l.name {
                    log::info!("{} is now called {}", w.name, l.name);
                    w.name = l.name.clone();
                    let _ = self.agg_events.send(IfaceEvent::Added {
                        ifindex: l.ifindex,
                        name: l.name.clone(),
                        link: link_name(l),
                    });
                }
                continue;
            }
            match self.failed.get(&l.ifindex) {
                Some(f) if f.when_up && l.up => {
                    self.failed.remove(&l.ifindex);
                }
                Some(_) => continue,
                None => {}
            }
            self.watch(l);
        }
    }

    fn watch(&mut self, l: &Link) {
        let n = self.workers.len() as u64;
        let room = self.sizing.ring_memory_max.saturating_sub(self.ring_used);
        let fit = self.sizing.fit(room, n, self.cfg.block_size.is_none());
        let (block_size, block_count) = (u64::from(fit.block_size), fit.block_count);
        if fit.reduced {
            if block_count < 2 {
                self.fail(
                    l,
                    format!(
                        "the ring memory cap ({}) is used up by {} interface(s); raise capture.ring_memory_max or exclude interfaces",
                        Bytes(self.sizing.ring_memory_max),
                        self.watched.len()
                    ),
                );
                return;
            }
            log::warn!(
                "{}: rings reduced to {} blocks of {} to stay under capture.ring_memory_max ({})",
                l.name,
                block_count,
                Bytes(block_size),
                Bytes(self.sizing.ring_memory_max)
            );
        }
        match self.open_rings(l, block_size as u32, block_count) {
            Ok(rings) => {
                let bytes = block_size * u64::from(block_count) * n;
                self.ring_used += bytes;
                let link = LinkType::from_arphrd(l.hatype);
                let probe = rings.first().and_then(|r| r.bind_probe().ok());
                self.warn_offloads(l, &rings);
                let decap = self.cfg.decap_for(&l.name);
                for (ring, w) in rings.into_iter().zip(&self.workers) {
                    let m = Member::new(ring, link, l.name.clone(), decap);
                    if w.commands.send(Command::Add(Box::new(m))).is_ok() {
                        w.wake.commands();
                    }
                }
                let _ = self.agg_events.send(IfaceEvent::Added {
                    ifindex: l.ifindex,
                    name: l.name.clone(),
                    link: link_name(l),
                });
                log::info!(
                    "watching {} (index {}, {}{}): {} ring{} of {}",
                    l.name,
                    l.ifindex,
                    link_name(l),
                    if l.up { "" } else { ", down" },
                    n,
                    if n == 1 { "" } else { "s" },
                    Bytes(block_size * u64::from(block_count))
                );
                self.watched.insert(
                    l.ifindex,
                    Watched {
                        name: l.name.clone(),
                        ring_bytes: bytes,
                        probe,
                    },
                );
            }
            Err(e) if e.is_interface_gone() => {
                log::debug!("{} went away while being opened", l.name);
            }
            Err(e) if e.is_interface_down() => {
                log::info!(
                    "{} is down; watching it once it comes up (this kernel adds sockets to fanout groups only on interfaces that are up)",
                    l.name
                );
                self.failed.insert(l.ifindex, Failure { when_up: true });
            }
            Err(e) => self.fail(l, e.to_string()),
        }
    }

    fn fail(&mut self, l: &Link, why: String) {
        log::warn!("not watching {}: {why}", l.name);
        self.failed.insert(l.ifindex, Failure { when_up: false });
    }

    /// Warns once per interface when GRO merges its packets, and once per
    /// run when the kernel's fanout groups deliver outgoing packets.
    fn warn_offloads(&mut self, l: &Link, rings: &[Ring]) {
        if let Some(r) = rings.first() {
            if l.hatype != tpacket::arphrd::LOOPBACK
                && tpacket::gro_enabled(r, &l.name).unwrap_or(false)
                && self.gro_warned.insert(l.name.clone())
            {
                log::warn!(
                    "{}: generic receive offload (GRO) is on: the kernel merges TCP segments into one frame with one set of headers, so packets and header bytes are undercounted (about 3 % of bytes at a 1500-byte MTU; counted as gso_frames); turn it off for exact counts: ethtool -K {} gro off",
                    l.name,
                    l.name
                );
            }
            let asked = self.cfg.direction == CountDirection::Ingress;
            if asked && rings.len() > 1 && !r.ignores_outgoing() && !self.fanout_outgoing_logged {
                self.fanout_outgoing_logged = true;
                let (major, minor) = tpacket::kernel_version();
                log::info!(
                    "this kernel ({major}.{minor}) delivers outgoing packets to fanout groups (Linux 6.2 and later keep them out); they are left out (and counted as outgoing_skipped) in user space"
                );
            }
        }
    }

    fn open_rings(
        &mut self,
        l: &Link,
        block_size: u32,
        block_count: u32,
    ) -> tpacket::Result<Vec<Ring>> {
        let n = self.workers.len();
        let mode = match self.cfg.fanout {
            FanoutPolicy::Hash => FanoutMode::Hash,
            FanoutPolicy::Cpu => FanoutMode::Cpu,
            FanoutPolicy::Lb => FanoutMode::LoadBalance,
        };
        let mut rc = RingConfig {
            block_size,
            block_count,
            retire_timeout_ms: self.cfg.block_timeout.0.as_millis().max(1) as u32,
            snaplen: self.cfg.snaplen,
            ignore_outgoing: self.cfg.direction == CountDirection::Ingress
                && self.ignore_outgoing_supported,
            fanout: (n > 1).then_some(Fanout::New(mode)),
        };
        let mut rings: Vec<Ring> = Vec::with_capacity(n);
        for i in 0..n {
            if i > 0 {
                if let Some(id) = rings[0].fanout_group() {
                    rc.fanout = Some(Fanout::Join(mode, id));
                }
            }
            let ring = match Ring::open(l.ifindex, &rc) {
                Err(e) if rc.ignore_outgoing && e.is_ignore_outgoing_unsupported() => {
                    log::info!(
                        "the kernel has no PACKET_IGNORE_OUTGOING; outgoing packets are filtered (and counted) in user space"
                    );
                    self.ignore_outgoing_supported = false;
                    rc.ignore_outgoing = false;
                    Ring::open(l.ifindex, &rc)?
                }
                r => r?,
            };
            rings.push(ring);
        }
        Ok(rings)
    }

    fn unwatch(&mut self, ifindex: u32, why: &str) {
        let Some(w) = self.watched.remove(&ifindex) else {
            return;
        };
        for wk in &self.workers {
            if wk.commands.send(Command::Remove(ifindex)).is_ok() {
                wk.wake.commands();
            }
        }
        self.ring_used = self.ring_used.saturating_sub(w.ring_bytes);
        let _ = self.agg_events.send(IfaceEvent::Removed { ifindex });
        log::info!("stopped watching {}: {why}", w.name);
    }

    /// Takes a reloaded configuration: interface selection applies at once,
    /// detectors, rules and sinks at the next tick; what only a restart can
    /// change is named in the log.
    pub fn reconfigure(&mut self, new: &Config) {
        // Restart-only settings arrive with their running values
        // (`Config::keeping_restart_only`).
        let c = &new.capture;
        self.cfg.interfaces = c.interfaces.clone();
        self.cfg.exclude_interfaces = c.exclude_interfaces.clone();
        self.cfg.skip_stacked = c.skip_stacked;
        if c.decapsulate != self.cfg.decapsulate
            || c.decapsulate_interfaces != self.cfg.decapsulate_interfaces
        {
            self.cfg.decapsulate = c.decapsulate.clone();
            self.cfg.decapsulate_interfaces = c.decapsulate_interfaces.clone();
            for (&ifindex, w) in &self.watched {
                let decap = self.cfg.decap_for(&w.name);
                for wk in &self.workers {
                    if wk.commands.send(Command::Decap(ifindex, decap)).is_ok() {
                        wk.wake.commands();
                    }
                }
            }
        }
        // Read the interface list again with the new selection.
        self.last_list = None;
        self.refresh();
        let _ = self.agg_control.send(Reconfigure(Box::new(new.clone())));
    }

    /// Stops the workers, lets the aggregator merge their last shards, and
    /// returns the final snapshot and what each worker did.
    pub fn stop(self) -> (Option<Arc<Snapshot>>, Vec<WorkerReport>) {
        for w in &self.workers {
            w.wake.stop();
        }
        if let Some(f) = self.flow_input {
            f.stop();
        }
        let mut reports = Vec::new();
        for w in self.workers {
            match w.thread.join() {
                Ok(r) => reports.push(r),
                Err(_) => log::error!("a capture worker panicked"),
            }
        }
        let last = self.aggregator.join().ok();
        (last, reports)
    }
}

/// Decides the wait mechanism once, so the fallback is logged once.
fn resolve_wait(policy: WaitPolicy) -> Result<WaitKind, StartError> {
    match policy {
        WaitPolicy::Poll => Ok(WaitKind::Poll),
        WaitPolicy::IoUring => Waiter::new(WaitKind::IoUring)
            .map(|_| WaitKind::IoUring)
            .map_err(StartError::Uring),
        WaitPolicy::Auto => match Waiter::new(WaitKind::Auto) {
            Ok((w, None)) => Ok(w.kind()),
            Ok((_, Some(e))) => {
                log::info!("io_uring cannot be used here ({e}); idle workers wait with poll(2)");
                Ok(WaitKind::Poll)
            }
            Err(e) => {
                log::info!("io_uring cannot be used here ({e}); idle workers wait with poll(2)");
                Ok(WaitKind::Poll)
            }
        },
    }
}
