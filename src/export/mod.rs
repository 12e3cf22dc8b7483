//! Flow records out: every tick, the pairs the shards counted become IPFIX
//! records ([`ipfix`]) sent over UDP or TCP to the configured collectors (nfdump's
//! nfcapd, pmacct's nfacctd, GoFlow2, Akvorado…), from a thread of its own
//! behind a bounded queue: a collector that is slow or gone costs counted
//! drops, never a late tick.

pub mod ipfix;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::export::{Collector, IpfixConfig};
use crate::shard::Shard;
use crate::wire::Addr;
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

type Key = (Addr, Addr, u8, u16);

/// The collector thread's side: the tick's pairs, summed over the shards.
#[derive(Debug)]
pub struct Exporter {
    tx: Option<SyncSender<Vec<Record>>>,
    tick: HashMap<Key, (u64, u64), crate::shard::Hasher>,
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
            tick: HashMap::default(),
            stats,
            collectors: cfg.collectors.clone(),
            cfg: Some(cfg.clone()),
        }
    }

    pub fn off() -> Exporter {
        Exporter {
            tx: None,
            tick: HashMap::default(),
            stats: Arc::default(),
            collectors: Vec::new(),
            cfg: None,
        }
    }

    #[inline]
    pub fn on(&self) -> bool {
        self.tx.is_some()
    }

    /// Adds a shard's pairs to the tick's.
    pub fn collect(&mut self, shard: &Shard) {
        if !self.on() {
            return;
        }
        for (src, dst, p) in shard.pairs() {
            let (proto, port) = p.first_contact().unwrap_or((0, 0));
            let e = self.tick.entry((src, dst, proto, port)).or_default();
            e.0 += p.bytes;
            e.1 += p.packets;
        }
    }

    /// Hands the tick's records to the sender: `start_ms`..`end_ms` is the
    /// tick.
    pub fn end_tick(&mut self, start_ms: u64, end_ms: u64) {
        let Some(tx) = &self.tx else { return };
        if self.tick.is_empty() {
            return;
        }
        let records: Vec<Record> = self
            .tick
            .drain()
            .map(|((src, dst, proto, dst_port), (octets, packets))| Record {
                src: src.ip(),
                dst: dst.ip(),
                proto,
                dst_port,
                octets,
                packets,
                start_ms,
                end_ms,
            })
            .collect();
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
        let data = enc.data(&records, secs, 0);
        stats
            .records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        for (c, l) in &mut links {
            let c = *c;
            match l {
                Link::Udp(None) => {}
                Link::Udp(Some(s)) => {
                    let first = refresh.then_some(&templates);
                    for m in first.into_iter().chain(&data) {
                        match s.send(m) {
                            Ok(_) => {
                                stats.messages.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                stats.send_errors.fetch_add(1, Ordering::Relaxed);
                                complaints.say(c, &e);
                            }
                        }
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
