//! The flow-input thread: sockets in, a shard out every tick.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{getsockopt, setsockopt, sockopt};

use super::report::{Exporter, FlowReport};
use super::tcp::{self, Conn, End};
use super::templated::Templates;
use super::{Decoded, decode};
use crate::admission::Board;
use crate::capture::clock::{TickClock, unix_ms};
use crate::capture::handoff::WorkerSide;
use crate::config::flow_input::FlowInputConfig;
use crate::shard::Shard;

/// Datagrams read from one socket before the others get a turn.
const BATCH: usize = 256;

/// Why flow input could not start.
#[derive(Debug, thiserror::Error)]
pub enum FlowInputError {
    #[error("cannot listen for flow records on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start the flow-input thread: {0}")]
    Thread(io::Error),
}

/// The bound sockets, handed to the thread.
#[derive(Debug)]
pub struct Sockets {
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<TcpListener>,
}

/// The running thread.
#[derive(Debug)]
pub struct FlowInput {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl FlowInput {
    /// Binds every `listen` and `listen_tcp` address; errors name the
    /// address. Done before any thread starts, so a taken port stops the
    /// daemon at once.
    pub fn bind(cfg: &FlowInputConfig) -> Result<Sockets, FlowInputError> {
        let mut udp = Vec::new();
        for &addr in &cfg.listen {
            let s =
                UdpSocket::bind(addr).map_err(|source| FlowInputError::Bind { addr, source })?;
            s.set_nonblocking(true)
                .map_err(|source| FlowInputError::Bind { addr, source })?;
            receive_buffer(
                &s,
                addr,
                usize::try_from(cfg.receive_buffer).unwrap_or(usize::MAX),
            );
            udp.push(s);
        }
        let mut tcp = Vec::new();
        for &addr in &cfg.listen_tcp {
            let l = TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|source| FlowInputError::Bind { addr, source })?;
            tcp.push(l);
        }
        Ok(Sockets { udp, tcp })
    }

    /// Starts the thread on the sockets [`FlowInput::bind`] made; it hands
    /// `shard` over through `side` every tick.
    pub fn start(
        cfg: &FlowInputConfig,
        sockets: Sockets,
        side: WorkerSide,
        shard: Box<Shard>,
        clock: TickClock,
        board: Arc<Board>,
    ) -> Result<FlowInput, FlowInputError> {
        let list = |a: &[SocketAddr]| {
            a.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !cfg.listen.is_empty() {
            log::info!(
                "flow input: listening on {} (UDP) for sFlow v5, NetFlow v5/v9 and IPFIX",
                list(&cfg.listen)
            );
        }
        if !cfg.listen_tcp.is_empty() {
            log::info!(
                "flow input: listening on {} (TCP) for IPFIX",
                list(&cfg.listen_tcp)
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut state = State::new(cfg.clone());
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("flow-in".into())
            .spawn(move || state.run(&sockets, side, shard, clock, &board, &flag))
            .map_err(FlowInputError::Thread)?;
        Ok(FlowInput { stop, thread })
    }

    /// Stops the thread after it handed over its last shard.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        if self.thread.join().is_err() {
            log::error!("the flow-input thread panicked");
        }
    }
}

/// Everything the thread keeps between datagrams.
#[derive(Debug)]
pub struct State {
    cfg: FlowInputConfig,
    templates: Templates,
    exporters: HashMap<IpAddr, Exporter>,
    exporters_refused: u64,
    receive_errors: u64,
    /// Datagrams the sockets dropped for want of room, as the kernel says.
    socket_drops: u64,
    /// TCP connections open now, accepted in all, refused (too many).
    connections: usize,
    sessions: u64,
    connections_refused: u64,
    /// Silent connections closed to make room for new ones.
    connections_closed_idle: u64,
    decoded: Decoded,
}

impl State {
    pub fn new(cfg: FlowInputConfig) -> State {
        State {
            templates: Templates::new(cfg.max_templates, cfg.held_bytes as usize),
            cfg,
            exporters: HashMap::new(),
            exporters_refused: 0,
            receive_errors: 0,
            socket_drops: 0,
            connections: 0,
            sessions: 0,
            connections_refused: 0,
            connections_closed_idle: 0,
            decoded: Decoded::default(),
        }
    }

    fn run(
        &mut self,
        sockets: &Sockets,
        mut side: WorkerSide,
        mut shard: Box<Shard>,
        clock: TickClock,
        board: &Board,
        stop: &AtomicBool,
    ) {
        let mut buf = vec![0u8; 65_536];
        let mut conns: Vec<Conn> = Vec::new();
        let mut ready: Vec<bool> = Vec::new();
        let mut ended: Vec<(usize, End)> = Vec::new();
        let mut tick = clock.tick_at(Instant::now());
        shard.first_tick = tick;
        let mut deadline = clock.end_of(tick);
        shard.set_admission(board.current());
        shard.begin_tick(tick);
        // The report is built again only when something in it moved.
        let mut moved = true;
        loop {
            let now = Instant::now();
            if now >= deadline {
                moved |= self.read_socket_drops(&sockets.udp);
                shard.last_tick = tick;
                if std::mem::take(&mut moved) {
                    shard.flow_report = Some(Arc::new(self.report()));
                }
                side.exchange(&mut shard);
                tick = clock.tick_at(now);
                if shard.is_empty() {
                    shard.first_tick = tick;
                }
                shard.set_admission(board.current());
                shard.begin_tick(tick);
                deadline = clock.end_of(tick);
            }
            if stop.load(Ordering::Acquire) {
                break;
            }
            // Woken for a datagram, a connection, the deadline, or a stop
            // within 100 ms.
            let wait = deadline
                .saturating_duration_since(now)
                .min(Duration::from_millis(100));
            {
                let mut fds: smallvec::SmallVec<[PollFd<'_>; 8]> = sockets
                    .udp
                    .iter()
                    .map(AsFd::as_fd)
                    .chain(sockets.tcp.iter().map(AsFd::as_fd))
                    .chain(conns.iter().map(|c| c.stream.as_fd()))
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                    .collect();
                let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
                if poll(&mut fds, PollTimeout::from(ms)).is_err() {
                    continue;
                }
                ready.clear();
                ready.extend(
                    fds.iter()
                        .map(|f| f.revents().is_some_and(|r| !r.is_empty())),
                );
            }
            let (udp, tcp) = ready.split_at(sockets.udp.len());
            let (listeners, open) = tcp.split_at(sockets.tcp.len());
            for (s, _) in sockets.udp.iter().zip(udp).filter(|(_, r)| **r) {
                moved = true;
                for _ in 0..BATCH {
                    match s.recv_from(&mut buf) {
                        Ok((n, from)) => self.datagram(from, &buf[..n], &mut shard, unix_ms()),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            self.receive_errors += 1;
                            break;
                        }
                    }
                }
            }
            for (i, c) in conns.iter_mut().enumerate() {
                if !open.get(i).copied().unwrap_or(false) {
                    continue;
                }
                moved = true;
                let peer = c.peer;
                let ms = unix_ms();
                if let Some(end) = c.pump(BATCH, &mut |m: &[u8]| {
                    self.datagram(peer, m, &mut shard, ms);
                }) {
                    ended.push((i, end));
                }
            }
            for (i, end) in ended.drain(..).rev() {
                let c = conns.swap_remove(i);
                self.session_ended(c.peer, end, unix_ms());
            }
            for (l, _) in sockets.tcp.iter().zip(listeners).filter(|(_, r)| **r) {
                moved = true;
                self.accept(l, &mut conns);
            }
            self.connections = conns.len();
        }
        self.read_socket_drops(&sockets.udp);
        self.connections = 0;
        shard.last_tick = tick;
        shard.last = true;
        shard.flow_report = Some(Arc::new(self.report()));
        side.finish(shard);
    }

    /// Takes the connections waiting on `l`, up to `max_connections`.
    fn accept(&mut self, l: &TcpListener, conns: &mut Vec<Conn>) {
        for _ in 0..BATCH {
            match l.accept() {
                Ok((stream, peer)) => {
                    if conns.len() >= self.cfg.max_connections {
                        let now = Instant::now();
                        match tcp::make_room(conns.iter().map(|c| c.last_message), now) {
                            Some(i) => {
                                let c = conns.swap_remove(i);
                                self.connections_closed_idle += 1;
                                self.session_ended(c.peer, End::Idle, unix_ms());
                            }
                            None => {
                                self.connections_refused += 1;
                                continue;
                            }
                        }
                    }
                    match Conn::new(stream, peer) {
                        Ok(c) => {
                            log::debug!("flow input: IPFIX over TCP from {peer}");
                            self.sessions += 1;
                            conns.push(c);
                        }
                        Err(_) => self.receive_errors += 1,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.receive_errors += 1;
                    break;
                }
            }
        }
    }

    /// A TCP session ended: its templates go, and why it ended is counted.
    pub(super) fn session_ended(&mut self, peer: SocketAddr, end: End, now_ms: u64) {
        self.templates.forget(peer);
        match end {
            End::Closed => log::debug!("flow input: {peer} closed its IPFIX connection"),
            End::Idle => log::debug!(
                "flow input: closed {peer}'s silent IPFIX connection to make room for a new one"
            ),
            End::Error(e) => {
                log::debug!("flow input: IPFIX connection from {peer}: {e}");
                self.receive_errors += 1;
            }
            End::Framing(problem) => {
                let ip = peer.ip().to_canonical();
                let refused = &mut self.exporters_refused;
                if let Some(ex) = exporter(&mut self.exporters, refused, &self.cfg, ip, now_ms) {
                    ex.count_drop(problem);
                }
            }
        }
    }

    /// Reads what the sockets dropped so far (datagrams that found the
    /// receive buffer full); true if it grew.
    pub(super) fn read_socket_drops(&mut self, sockets: &[UdpSocket]) -> bool {
        let now: u64 = sockets
            .iter()
            .map(|s| tpacket::socket_drops(s.as_fd()).map_or(0, u64::from))
            .sum();
        let grew = now > self.socket_drops;
        self.socket_drops = self.socket_drops.max(now);
        grew
    }

    /// Decodes one datagram from `from` and counts its records.
    pub fn datagram(&mut self, from: SocketAddr, d: &[u8], shard: &mut Shard, now_ms: u64) {
        let ip = from.ip().to_canonical();
        let refused = &mut self.exporters_refused;
        let Some(ex) = exporter(&mut self.exporters, refused, &self.cfg, ip, now_ms) else {
            return;
        };
        self.decoded.clear();
        let result = decode(&mut self.templates, from, d, &mut self.decoded);
        ex.view.datagrams += 1;
        let got = match result {
            Ok(g) => g,
            Err((protocol, problem)) => {
                ex.view.protocol = protocol.or(ex.view.protocol);
                ex.count_drop(problem);
                return;
            }
        };
        ex.view.protocol = Some(got.protocol);
        ex.view.held_sets += got.sets.held;
        ex.view.held_dropped += got.sets.held_dropped;
        ex.view.templates_refused += got.sets.templates_refused;
        ex.view.skipped += self.decoded.skipped;
        let configured = self.cfg.exporter(ip).map_or(0, |c| c.sampling);
        let declared = if got.sampling != 0 {
            got.sampling
        } else {
            self.templates.declared_sampling(from).unwrap_or(0)
        };
        for f in &self.decoded.flows {
            let (rate, source) = if configured != 0 {
                (configured, "configured")
            } else if f.sampling != 0 {
                (f.sampling, "declared")
            } else if declared != 0 {
                (declared, "declared")
            } else {
                (1, "none")
            };
            let packets = f.packets.saturating_mul(u64::from(rate));
            let bytes = f.bytes.saturating_mul(u64::from(rate));
            if packets > super::MAX_RECORD || bytes > super::MAX_RECORD {
                ex.count_drop(super::Problem::Implausible);
                continue;
            }
            shard.record_flow(&f.summary, packets, bytes);
            ex.view.records += 1;
            ex.view.packets += packets;
            ex.view.bytes += bytes;
            ex.view.sampling = rate;
            ex.view.sampling_source = source;
            ex.attribute(f.input_if, f.output_if, packets, bytes);
        }
        for c in &self.decoded.counters {
            if let Some(i) = ex.interface(c.if_index) {
                i.counters = Some(*c);
            }
        }
    }

    pub fn report(&self) -> FlowReport {
        let mut exporters: Vec<_> = self.exporters.values().map(Exporter::view).collect();
        exporters.sort_by_key(|e| e.address);
        let (held_sets_now, held_bytes_now) = self.templates.held();
        FlowReport {
            listen: self.cfg.listen.iter().map(ToString::to_string).collect(),
            listen_tcp: self
                .cfg
                .listen_tcp
                .iter()
                .map(ToString::to_string)
                .collect(),
            tcp_connections: self.connections,
            tcp_sessions: self.sessions,
            tcp_connections_refused: self.connections_refused,
            tcp_connections_closed_idle: self.connections_closed_idle,
            exporters,
            exporters_refused: self.exporters_refused,
            receive_errors: self.receive_errors,
            socket_drops: self.socket_drops,
            templates: self.templates.len(),
            held_sets_now,
            held_bytes_now,
        }
    }
}

/// Sets a socket's receive buffer: beyond `net.core.rmem_max` where the
/// daemon may (CAP_NET_ADMIN), else up to it, and says when it got less.
fn receive_buffer(s: &UdpSocket, addr: SocketAddr, want: usize) {
    if setsockopt(s, sockopt::RcvBufForce, &want).is_err() {
        let _ = setsockopt(s, sockopt::RcvBuf, &want);
    }
    // The kernel reports twice what it was given (its bookkeeping).
    let got = getsockopt(s, sockopt::RcvBuf).map_or(0, |b| b / 2);
    if got < want {
        log::warn!(
            "flow input on {addr}: receive buffer of {got} bytes, not the {want} asked (net.core.rmem_max): bursts of datagrams may be dropped (counted in trafficalerted_flow_socket_drops_total)"
        );
    }
}

/// The exporter at `ip`, seen now, looked up once (a datagram's work):
/// `None`, counted in `refused`, when it would be one more than
/// `max_exporters`. Its configured name is copied only when it is new.
fn exporter<'a>(
    exporters: &'a mut HashMap<IpAddr, Exporter>,
    refused: &mut u64,
    cfg: &FlowInputConfig,
    ip: IpAddr,
    now_ms: u64,
) -> Option<&'a mut Exporter> {
    let known = exporters.len();
    let ex = match exporters.entry(ip) {
        Entry::Occupied(o) => o.into_mut(),
        Entry::Vacant(v) => {
            if known >= cfg.max_exporters {
                *refused += 1;
                return None;
            }
            let name = cfg.exporter(ip).map(|c| c.name.clone()).unwrap_or_default();
            v.insert(Exporter::new(ip, name))
        }
    };
    ex.view.last_seen_ms = now_ms;
    Some(ex)
}
