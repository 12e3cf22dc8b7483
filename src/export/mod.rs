//! Flow records out: every tick, the pairs the shards counted become IPFIX
//! records ([`ipfix`]) sent over UDP to the configured collectors (nfdump's
//! nfcapd, pmacct's nfacctd, GoFlow2, Akvorado…), from a thread of its own
//! behind a bounded queue: a collector that is slow or gone costs counted
//! drops, never a late tick.

pub mod ipfix;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::export::IpfixConfig;
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
}

/// What the API shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportReport {
    pub collectors: Vec<SocketAddr>,
    pub records: u64,
    pub messages: u64,
    pub dropped_ticks: u64,
    pub send_errors: u64,
}

type Key = (Addr, Addr, u8, u16);

/// The collector thread's side: the tick's pairs, summed over the shards.
#[derive(Debug)]
pub struct Exporter {
    tx: Option<SyncSender<Vec<Record>>>,
    tick: HashMap<Key, (u64, u64), crate::shard::Hasher>,
    stats: Arc<ExportStats>,
    collectors: Vec<SocketAddr>,
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
        })
    }
}

fn send_loop(cfg: &IpfixConfig, rx: &Receiver<Vec<Record>>, stats: &ExportStats) {
    let socks: Vec<(SocketAddr, Option<UdpSocket>)> = cfg
        .collectors
        .iter()
        .map(|&c| {
            let bind: SocketAddr = if c.is_ipv4() {
                "0.0.0.0:0".parse().expect("literal")
            } else {
                "[::]:0".parse().expect("literal")
            };
            let s = UdpSocket::bind(bind).and_then(|s| s.connect(c).map(|_| s));
            if let Err(e) = &s {
                log::error!("IPFIX export to {c}: {e}");
            }
            (c, s.ok())
        })
        .collect();
    let mut enc = Encoder::new(cfg.observation_domain);
    let mut templates_sent: Option<Instant> = None;
    let mut last_err: Option<Instant> = None;
    while let Ok(records) = rx.recv() {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let mut msgs = Vec::new();
        // Templates first, and again every refresh interval (RFC 7011,
        // 8.4: over UDP a collector may have restarted and lost them).
        if templates_sent.is_none_or(|t| t.elapsed() >= cfg.template_refresh.0) {
            msgs.push(enc.templates(secs));
            templates_sent = Some(Instant::now());
        }
        msgs.extend(enc.data(&records, secs, 0));
        stats
            .records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        for m in &msgs {
            for (c, s) in &socks {
                let Some(s) = s else { continue };
                match s.send(m) {
                    Ok(_) => {
                        stats.messages.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats.send_errors.fetch_add(1, Ordering::Relaxed);
                        if last_err.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                            last_err = Some(Instant::now());
                            log::warn!("IPFIX export to {c}: {e}");
                        }
                    }
                }
            }
        }
    }
}
