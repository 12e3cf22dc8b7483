//! Flow records out: every tick, the pairs the shards counted become IPFIX
//! records ([`ipfix`]) sent over UDP or TCP to the configured collectors (nfdump's
//! nfcapd, pmacct's nfacctd, GoFlow2, Akvorado…), from a thread of its own
//! behind a bounded queue: a collector that is slow or gone costs counted
//! drops, never a late tick.

pub mod ipfix;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::export::{Collector, IpfixConfig};
use crate::shard::Shard;
use ipfix::{Encoder, Record};

/// Counters of the export.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub records: AtomicU64,
    pub messages: AtomicU64,
    /// Ticks the full queue could not take.
    pub dropped_ticks: AtomicU64,
    pub send_errors: AtomicU64,
    /// Data messages a TCP collector did not get: its session was down.
    pub unsent: AtomicU64,
}

/// What the API shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportReport {
    pub collectors: Vec<Collector>,
    pub records: u64,
    pub messages: u64,
    pub dropped_ticks: u64,
    pub send_errors: u64,
    pub unsent: u64,
}

/// The collector thread's side: the tick's pairs, summed over the shards.
#[derive(Debug)]
pub struct Exporter {
    tx: Option<SyncSender<Vec<Record>>>,
    tick: Vec<Record>,
    stats: Arc<ExportStats>,
    collectors: Vec<Collector>,
    cfg: Option<IpfixConfig>,
}

impl Exporter {
    /// Starts the sending thread if collectors are configured.
    pub fn start(cfg: &IpfixConfig) -> Exporter {
        let stats = Arc::new(ExportStats::default());
        let tx = if cfg.collectors.is_empty() {
            None
        } else {
            let (tx, rx) = sync_channel(cfg.queue);
            let (c, st) = (cfg.clone(), stats.clone());
            match std::thread::Builder::new()
                .name("ipfix".into())
                .spawn(move || send_loop(&c, &rx, &st))
            {
                Ok(_) => Some(tx),
                Err(e) => {
                    log::error!("IPFIX export: cannot start its thread: {e}");
                    None
                }
            }
        };
        Exporter {
            tx,
            tick: Vec::new(),
            stats,
            collectors: cfg.collectors.clone(),
            cfg: Some(cfg.clone()),
        }
    }

    pub fn off() -> Exporter {
        Exporter {
            tx: None,
            tick: Vec::new(),
            stats: Arc::default(),
            collectors: Vec::new(),
            cfg: None,
        }
    }

    #[inline]
    pub fn on(&self) -> bool {
        self.tx.is_some()
    }

    /// Adds a shard's pairs to the tick's records. A pair two workers
    /// both counted is two records: collectors add them up, and merging
    /// them here would cost a hash lookup per pair on the tick's path.
    pub fn collect(&mut self, shard: &Shard) {
        if !self.on() {
            return;
        }
        self.tick.extend(shard.pairs().map(|(src, dst, p)| {
            let (proto, dst_port) = p.first_contact().unwrap_or((0, 0));
            Record {
                src: src.ip(),
                dst: dst.ip(),
                proto,
                dst_port,
                octets: p.bytes,
                packets: p.packets,
                start_ms: 0,
                end_ms: 0,
                ingress: p.ingress(),
            }
        }));
    }

    /// Hands the tick's records to the sender: `start_ms`..`end_ms` is the
    /// tick.
    pub fn end_tick(&mut self, start_ms: u64, end_ms: u64) {
        let Some(tx) = &self.tx else { return };
        if self.tick.is_empty() {
            return;
        }
        let next = Vec::with_capacity(self.tick.len());
        let mut records = std::mem::replace(&mut self.tick, next);
        for r in &mut records {
            (r.start_ms, r.end_ms) = (start_ms, end_ms);
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(records) {
            let n = self.stats.dropped_ticks.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                log::warn!("IPFIX export: the sender is behind; {n} tick(s) of records dropped");
            }
        }
    }

    /// A new configuration: the export starts over if it changed.
    pub fn reconfigure(&mut self, cfg: &IpfixConfig) {
        if self.cfg.as_ref() != Some(cfg) && self.cfg.is_some() {
            *self = Exporter::start(cfg);
        }
    }

    pub fn report(&self) -> Option<ExportReport> {
        self.on().then(|| ExportReport {
            collectors: self.collectors.clone(),
            records: self.stats.records.load(Ordering::Relaxed),
            messages: self.stats.messages.load(Ordering::Relaxed),
            dropped_ticks: self.stats.dropped_ticks.load(Ordering::Relaxed),
            send_errors: self.stats.send_errors.load(Ordering::Relaxed),
            unsent: self.stats.unsent.load(Ordering::Relaxed),
        })
    }
}

/// How messages reach one collector.
enum Link {
    /// A connected UDP socket; `None` if it could not be made.
    Udp(Option<UdpSocket>),
    /// A TCP session, made again after a failure with a growing pause.
    Tcp {
        stream: Option<TcpStream>,
        retry_at: Instant,
        pause: Duration,
    },
}

/// Longest pause between attempts to reach a TCP collector.
const MAX_PAUSE: Duration = Duration::from_secs(60);

fn link(c: Collector) -> Link {
    if c.tcp {
        return Link::Tcp {
            stream: None,
            retry_at: Instant::now(),
            pause: Duration::from_secs(1),
        };
    }
    let bind: SocketAddr = if c.address.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let s = UdpSocket::bind(bind).and_then(|s| s.connect(c.address).map(|_| s));
    if let Err(e) = &s {
        log::error!("IPFIX export to {c}: {e}");
    }
    Link::Udp(s.ok())
}

/// Sends `msgs` on a connected UDP socket: runs of messages of one length
/// (and a shorter one after them) go as one buffer that the kernel cuts
/// into datagrams (UDP_SEGMENT), so thousands of messages a tick cost tens
/// of trips through the stack, not thousands. Where the kernel or device
/// cannot (`gso` is then cleared for good), one `sendmmsg` per batch.
fn send_udp(s: &UdpSocket, msgs: &[&[u8]], gso: &mut bool) -> (usize, Option<nix::Error>) {
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let (mut at, mut sent, mut failed) = (0, 0, None);
    let mut buf = Vec::new();
    while at < msgs.len() {
        let len = msgs[at].len();
        // At most 64 segments and 64 KB in one send.
        let most = (65_000 / len.max(1)).min(64);
        let mut end = at;
        while end < msgs.len() && end - at < most && msgs[end].len() == len {
            end += 1;
        }
        if end < msgs.len() && end - at < most && msgs[end].len() < len {
            end += 1;
        }
        if !*gso || end - at < 2 {
            let (n, e) = send_batch(s, &msgs[at..end]);
            sent += n;
            failed = e.or(failed);
            at = end;
            continue;
        }
        buf.clear();
        for m in &msgs[at..end] {
            buf.extend_from_slice(m);
        }
        let segment = len as u16;
        match sendmsg::<SockaddrStorage>(
            s.as_raw_fd(),
            &[IoSlice::new(&buf)],
            &[ControlMessage::UdpGsoSegments(&segment)],
            MsgFlags::empty(),
            None,
        ) {
            Ok(_) => {
                sent += end - at;
                at = end;
            }
            Err(nix::Error::EINTR) => {}
            Err(
                nix::Error::EIO
                | nix::Error::EINVAL
                | nix::Error::EOPNOTSUPP
                | nix::Error::ENOPROTOOPT
                | nix::Error::EMSGSIZE,
            ) => {
                log::info!(
                    "IPFIX export: no UDP segmentation offload here; one datagram per message"
                );
                *gso = false;
            }
            Err(e) => {
                failed = Some(e);
                at = end;
            }
        }
    }
    (sent, failed)
}

/// Messages handed to the kernel per system call.
const BATCH: usize = 64;

/// Sends `msgs` on a connected UDP socket, many per system call
/// (`sendmmsg`): a spoofed flood makes thousands of messages a tick.
/// Returns how many were sent and, if not all, why the rest were not.
fn send_batch(s: &UdpSocket, msgs: &[&[u8]]) -> (usize, Option<nix::Error>) {
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let to: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
    let (mut at, mut sent, mut failed) = (0, 0, None);
    while at < msgs.len() {
        let chunk = &msgs[at..msgs.len().min(at + BATCH)];
        let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|m| [IoSlice::new(m)]).collect();
        match sendmmsg(
            s.as_raw_fd(),
            &mut headers,
            &iovs,
            &to[..chunk.len()],
            [],
            MsgFlags::empty(),
        ) {
            // The kernel stops at the first message it cannot send; that
            // one's error comes with the next call.
            Ok(r) => match r.count() {
                0 => {
                    failed = Some(nix::Error::EIO);
                    at += 1;
                }
                n => (at, sent) = (at + n, sent + n),
            },
            Err(nix::Error::EINTR) => {}
            // The message that failed is skipped; the rest are tried.
            Err(e) => (at, failed) = (at + 1, Some(e)),
        }
    }
    (sent, failed)
}

/// Opens a TCP session and sends the templates that start it (RFC 7011
/// section 8: over TCP, once per session).
fn connect(c: Collector, templates: &[u8]) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect_timeout(&c.address, Duration::from_secs(2))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    s.set_nodelay(true)?;
    s.write_all(templates)?;
    Ok(s)
}

/// Logs an export error at most once a minute.
struct Complaints(Option<Instant>);

impl Complaints {
    fn say(&mut self, c: Collector, e: &dyn std::fmt::Display) {
        if self
            .0
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            self.0 = Some(Instant::now());
            log::warn!("IPFIX export to {c}: {e}");
        }
    }
}

fn send_loop(cfg: &IpfixConfig, rx: &Receiver<Vec<Record>>, stats: &ExportStats) {
    let mut links: Vec<(Collector, Link)> = cfg.collectors.iter().map(|&c| (c, link(c))).collect();
    let mut enc = Encoder::new(cfg.observation_domain);
    let mut templates_sent: Option<Instant> = None;
    let mut complaints = Complaints(None);
    // Segmentation offload (UDP_SEGMENT) until the kernel refuses it.
    let mut gso = true;
    while let Ok(records) = rx.recv() {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        // Over UDP, templates first and again every refresh interval (RFC
        // 7011, 8.4: a collector may have restarted and lost them).
        let refresh = templates_sent.is_none_or(|t| t.elapsed() >= cfg.template_refresh.0);
        if refresh {
            templates_sent = Some(Instant::now());
        }
        let templates = enc.templates(secs);
        let data = enc.data(&records, secs);
        stats
            .records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        for (c, l) in &mut links {
            let c = *c;
            match l {
                Link::Udp(None) => {}
                Link::Udp(Some(s)) => {
                    let first = refresh.then_some(&templates);
                    let msgs: Vec<&[u8]> =
                        first.into_iter().chain(&data).map(Vec::as_slice).collect();
                    let (sent, failed) = send_udp(s, &msgs, &mut gso);
                    stats.messages.fetch_add(sent as u64, Ordering::Relaxed);
                    if let Some(e) = failed {
                        stats
                            .send_errors
                            .fetch_add((msgs.len() - sent) as u64, Ordering::Relaxed);
                        complaints.say(c, &e);
                    }
                }
                Link::Tcp {
                    stream,
                    retry_at,
                    pause,
                } => {
                    if stream.is_none() && Instant::now() >= *retry_at {
                        match connect(c, &templates) {
                            Ok(s) => {
                                log::info!("IPFIX export to {c}: connected");
                                stats.messages.fetch_add(1, Ordering::Relaxed);
                                *stream = Some(s);
                                *pause = Duration::from_secs(1);
                            }
                            Err(e) => {
                                stats.send_errors.fetch_add(1, Ordering::Relaxed);
                                complaints.say(c, &e);
                                *retry_at = Instant::now() + *pause;
                                *pause = (*pause * 2).min(MAX_PAUSE);
                            }
                        }
                    }
                    let Some(s) = stream else {
                        stats.unsent.fetch_add(data.len() as u64, Ordering::Relaxed);
                        continue;
                    };
                    for (k, m) in data.iter().enumerate() {
                        if let Err(e) = s.write_all(m) {
                            // A message cut short leaves the stream
                            // unreadable: the session ends here.
                            stats.send_errors.fetch_add(1, Ordering::Relaxed);
                            stats
                                .unsent
                                .fetch_add((data.len() - k) as u64, Ordering::Relaxed);
                            complaints.say(c, &e);
                            *stream = None;
                            *retry_at = Instant::now() + *pause;
                            break;
                        }
                        stats.messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_all_arrive_whole_and_in_order_with_and_without_segmentation() {
        // Runs of one length with shorter ones after them, as the encoder
        // makes: 150 of 1 400 bytes, one of 300, 70 of 1 000, one of 40.
        let lens = [(150, 1400), (1, 300), (70, 1000), (1, 40)];
        let msgs: Vec<Vec<u8>> = lens
            .iter()
            .flat_map(|&(n, len)| std::iter::repeat_n(len, n))
            .enumerate()
            .map(|(i, len)| {
                let mut m = vec![i as u8; len];
                m[..4].copy_from_slice(&(i as u32).to_be_bytes());
                m
            })
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        for use_gso in [true, false] {
            let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
            let _ = nix::sys::socket::setsockopt(
                &rx,
                nix::sys::socket::sockopt::RcvBufForce,
                &(8 << 20),
            );
            let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
            tx.connect(rx.local_addr().unwrap()).unwrap();
            let mut gso = use_gso;
            let (sent, failed) = send_udp(&tx, &refs, &mut gso);
            assert_eq!((sent, failed), (msgs.len(), None), "gso {use_gso}");
            assert_eq!(gso, use_gso, "loopback takes segmentation offload");
            let mut buf = [0u8; 2000];
            for m in &msgs {
                let n = rx.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &m[..], "gso {use_gso}");
            }
        }
    }

    #[test]
    fn a_collector_that_refuses_costs_errors_not_a_hang() {
        // A port nobody listens on: the kernel's "port unreachable" makes
        // a later send fail; every message is sent or counted as failed.
        let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = gone.local_addr().unwrap();
        drop(gone);
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(to).unwrap();
        let msgs = vec![vec![0u8; 100]; 300];
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let mut failures = 0;
        for _ in 0..5 {
            let (sent, failed) = send_batch(&tx, &refs);
            assert!(sent <= 300);
            if failed.is_some() {
                failures += 1;
                assert!(sent < 300);
            }
        }
        assert!(failures > 0, "the refusal is reported");
    }
}
