//! Who holds the server's connections. Slots are budgeted per client
//! address, so a few hundred slow or idle clients from one place cannot
//! take every slot; when the server is full, a connection waiting idle
//! between requests (kept alive) is closed to make room, the longest idle
//! first, so a health check or a scrape always gets in. Refusals and
//! closings are counted for `/metrics`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// What the server counts about its connections.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub accepted: AtomicU64,
    /// Refused: the client address had its budget of busy connections.
    pub refused_per_client: AtomicU64,
    /// Refused: every slot busy, none idle to close.
    pub refused_full: AtomicU64,
    /// Idle kept-alive connections closed to make room.
    pub closed_idle: AtomicU64,
    /// Requests answered 503 because rendered answers already held their
    /// memory budget.
    pub busy: AtomicU64,
}

#[derive(Debug)]
struct Conn {
    ip: IpAddr,
    /// Requests in flight (a response not yet fully handed over).
    busy: u32,
    /// Since when nothing is in flight.
    idle_since: Instant,
    close: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    conns: HashMap<u64, Conn>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The registry of open connections.
#[derive(Debug)]
pub struct Conns {
    inner: Mutex<Inner>,
    max: usize,
    per_client: usize,
    pub stats: ConnStats,
}

/// A connection's place; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    conns: Arc<Conns>,
    id: u64,
    /// Told to close (the server needs the slot).
    pub close: Arc<Notify>,
}

/// One request in flight on a connection; dropping it (when the response
/// has been handed over, or the connection ends) makes the connection idle
/// again.
#[derive(Debug)]
pub struct Busy {
    conns: Arc<Conns>,
    id: u64,
}

impl Conns {
    pub fn new(max: usize, per_client: usize) -> Conns {
        Conns {
            inner: Mutex::new(Inner::default()),
            max,
            per_client,
            stats: ConnStats::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing is left half-done under this lock: a poisoned one is fine.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a new connection from `ip`, closing an idle one if
    /// needed, or `None` (counted).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut g = self.lock();
        if g.per_ip.get(&ip).copied().unwrap_or(0) >= self.per_client
            && !close_idle(&mut g, Some(ip), &self.stats)
        {
            self.stats
                .refused_per_client
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if g.conns.len() >= self.max && !close_idle(&mut g, None, &self.stats) {
            self.stats.refused_full.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let id = g.next;
        g.next += 1;
        let close = Arc::new(Notify::new());
        g.conns.insert(
            id,
            Conn {
                ip,
                busy: 0,
                idle_since: Instant::now(),
                close: close.clone(),
            },
        );
        *g.per_ip.entry(ip).or_default() += 1;
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            conns: self.clone(),
            id,
            close,
        })
    }

    /// Open connections (tests, metrics).
    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }
}

/// Closes the longest-idle connection (of `ip`, if given). A closed one
/// leaves the registry now, so its slot is free at once; its task ends on
/// its own a moment later.
fn close_idle(g: &mut Inner, ip: Option<IpAddr>, stats: &ConnStats) -> bool {
    let victim = g
        .conns
        .iter()
        .filter(|(_, c)| c.busy == 0 && ip.is_none_or(|ip| c.ip == ip))
        .min_by_key(|(_, c)| c.idle_since)
        .map(|(&id, _)| id);
    let Some(id) = victim else { return false };
    if let Some(c) = g.conns.remove(&id) {
        c.close.notify_one();
        release_ip(g, c.ip);
        stats.closed_idle.fetch_add(1, Ordering::Relaxed);
    }
    true
}

fn release_ip(g: &mut Inner, ip: IpAddr) {
    if let Some(n) = g.per_ip.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            g.per_ip.remove(&ip);
        }
    }
}

impl Slot {
    /// A request starts on this connection.
    pub fn busy(&self) -> Busy {
        if let Some(c) = self.conns.lock().conns.get_mut(&self.id) {
            c.busy += 1;
        }
        Busy {
            conns: self.conns.clone(),
            id: self.id,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut g = self.conns.lock();
        if let Some(c) = g.conns.remove(&self.id) {
            release_ip(&mut g, c.ip);
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(c) = self.conns.lock().conns.get_mut(&self.id) {
            c.busy = c.busy.saturating_sub(1);
            if c.busy == 0 {
                c.idle_since = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_gets_its_budget_and_idle_connections_make_room() {
        let c = Arc::new(Conns::new(4, 2));
        let a1 = c.admit(ip("10.0.0.1")).unwrap();
        let _b1 = a1.busy();
        let a2 = c.admit(ip("10.0.0.1")).unwrap();
        let busy2 = a2.busy();
        // Both of 10.0.0.1's connections are busy: its third is refused.
        assert!(c.admit(ip("10.0.0.1")).is_none());
        assert_eq!(c.stats.refused_per_client.load(Ordering::Relaxed), 1);
        // Once one is idle, a new connection of that client replaces it.
        drop(busy2);
        let _a3 = c.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(c.stats.closed_idle.load(Ordering::Relaxed), 1);
        assert_eq!(c.open(), 2);
        // Another client fills the server with idle connections; a probe
        // from a third still gets in, closing the longest idle.
        let _x1 = c.admit(ip("10.0.0.2")).unwrap();
        let _x2 = c.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(c.open(), 4);
        let probe = c.admit(ip("10.0.0.9"));
        assert!(probe.is_some());
        assert_eq!(c.open(), 4);
        assert_eq!(c.stats.closed_idle.load(Ordering::Relaxed), 2);
        drop(probe);
        assert_eq!(c.open(), 3);
    }

    #[test]
    fn full_of_busy_connections_refuses_and_counts() {
        let c = Arc::new(Conns::new(2, 8));
        let a = c.admit(ip("10.0.0.1")).unwrap();
        let b = c.admit(ip("10.0.0.2")).unwrap();
        let (_ba, _bb) = (a.busy(), b.busy());
        assert!(c.admit(ip("10.0.0.3")).is_none());
        assert_eq!(c.stats.refused_full.load(Ordering::Relaxed), 1);
    }
}
