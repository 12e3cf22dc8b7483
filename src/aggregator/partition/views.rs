//! What a partition shows of its hosts: the views a snapshot lists and
//! a host's destinations.

use super::*;

/// What a partition lists for a snapshot (the views themselves are in
/// [`Partition::listed_views`]).
#[derive(Debug, Default)]
pub struct Views {
    /// Hosts ranked (with traffic in the window).
    pub ranked: usize,
    /// The first tick a listed host's scan count may fall.
    pub until: u64,
}

impl Partition {
    /// This partition's largest senders (up to [`MAX_LISTED_HOSTS`]) and
    /// the subjects of its open alerts, as views, into
    /// [`Partition::listed_views`].
    pub fn views(
        &mut self,
        tick: u64,
        keep_destinations: usize,
        detail: impl Fn(&HostView, usize) -> bool,
    ) -> Views {
        let g = self.geo;
        let mut bits: hashbrown::HashMap<Addr, u32, Hasher> = hashbrown::HashMap::default();
        for (kind, addr) in self.lifecycle.subjects() {
            *bits.entry(addr).or_default() |= kind.bit();
        }
        let hosts = &self.hosts;
        let mut ids = self.ranking.top(MAX_LISTED_HOSTS, |id| hosts.slot(id).addr);
        let mut listed: hashbrown::HashSet<u32, Hasher> = ids.iter().copied().collect();
        for addr in bits.keys() {
            if let Some(id) = self.hosts.id(*addr) {
                if listed.insert(id) {
                    ids.push(id);
                }
            }
        }
        self.forget_moved();
        let mut until = u64::MAX;
        // A list of this size is made every tick something moved: kept,
        // it is not fresh memory each time.
        let mut views = std::mem::take(&mut self.view_buf);
        views.clear();
        // A first listing builds thousands of views of hosts far apart in
        // memory, each a slot, its sums and its scan sets: fetched ahead,
        // the slots first, the scan sets they point to when they are in.
        for (i, &id) in ids.iter().enumerate() {
            if let Some(&ahead) = ids.get(i + AHEAD) {
                self.hosts.prefetch_reading(ahead);
            }
            if let Some(&ahead) = ids.get(i + AHEAD / 2) {
                self.hosts.prefetch_scan(ahead);
            }
            let (mut v, holds) = match self.view_cache.get(&id) {
                Some((v, holds)) if *holds > tick => (v.clone(), *holds),
                _ => {
                    let built = base_view(&self.hosts, &self.cfg, &g, id, tick);
                    self.work.views_built += 1;
                    self.view_cache.insert(id, built.clone());
                    built
                }
            };
            until = until.min(holds);
            v.alerts = bits.get(&v.addr).copied().unwrap_or(0);
            views.push(v);
        }
        // The cache holds the listed hosts only.
        if self.view_cache.len() > ids.len() {
            self.view_cache.retain(|id, _| listed.contains(id));
        }
        #[cfg(test)]
        for (&id, v) in ids.iter().zip(&views) {
            let (fresh, holds) = base_view(&self.hosts, &self.cfg, &g, id, tick);
            let cached = HostView {
                alerts: 0,
                ..v.clone()
            };
            assert_eq!(cached, fresh, "host {id}'s view at tick {tick}");
            assert_eq!(
                self.view_cache[&id].1, holds,
                "host {id}'s view holds until"
            );
        }
        views.sort_unstable_by(|a, b| b.sent_bytes.cmp(&a.sent_bytes).then(a.addr.cmp(&b.addr)));
        if keep_destinations > 0 {
            for (i, v) in views.iter_mut().enumerate() {
                if detail(v, i) {
                    v.destinations = self.destinations(v.addr, tick, keep_destinations);
                }
            }
        }
        self.changed = false;
        self.view_buf = views;
        Views {
            ranked: self.ranking.len(),
            until,
        }
    }

    /// The views the last [`Partition::views`] made, to take (the list
    /// keeps its memory).
    pub fn listed_views(&mut self) -> std::vec::Drain<'_, HostView> {
        self.view_buf.drain(..)
    }

    /// Drops the cached views of the hosts that moved since the last
    /// listing.
    fn forget_moved(&mut self) {
        for id in self.moved.drain(..) {
            self.view_cache.remove(&id);
        }
    }

    /// Notes hosts whose view may have changed: only while views are
    /// cached (a replay lists none until its end), and no more of them
    /// than the cache would lose; past that the cache is dropped at once.
    #[inline]
    pub(super) fn note_moved(&mut self, ids: &[u32]) {
        if self.view_cache.is_empty() {
            return;
        }
        if self.moved.len() + ids.len() > self.view_cache.len().max(MAX_LISTED_HOSTS) * 2 {
            self.moved.clear();
            self.view_cache.clear();
        } else {
            self.moved.extend_from_slice(ids);
        }
    }

    /// A source's largest destinations over the window.
    pub fn destinations(&self, src: Addr, tick: u64, keep: usize) -> Vec<DestView> {
        let mut peers = Vec::new();
        evidence::destinations_of(&self.pairs, src, tick, &mut peers);
        if peers.len() > keep {
            peers.select_nth_unstable_by(keep - 1, |a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            peers.truncate(keep);
        }
        peers.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        peers
            .into_iter()
            .map(|(addr, bytes, packets, _)| DestView {
                addr,
                bytes,
                packets,
            })
            .collect()
    }
}

/// Host `id`'s view without its alerts and destinations, and the tick
/// until which it holds if the host does not move: when its next scan
/// contact leaves its window.
fn base_view(
    hosts: &HostTable,
    cfg: &AggregatorConfig,
    g: &Geometry,
    id: u32,
    tick: u64,
) -> (HostView, u64) {
    let h = hosts.slot(id);
    let mut holds = u64::MAX;
    let (contacted, ports) = match &h.scan {
        Some(s) => {
            for next in [
                s.addresses.next_expiry(tick, cfg.scan_ticks),
                s.ports.next_expiry(tick, cfg.port_ticks),
            ]
            .into_iter()
            .flatten()
            {
                holds = holds.min(next);
            }
            (
                s.addresses.count(tick, cfg.scan_ticks) as u32,
                s.ports.count(tick, cfg.port_ticks) as u32,
            )
        }
        None => (0, 0),
    };
    let [sent_bytes, sent_packets, recv_bytes, recv_packets] = h.win.sums(g, tick);
    let view = HostView {
        addr: h.addr,
        sent_bytes,
        sent_packets,
        recv_bytes,
        recv_packets,
        contacted,
        ports,
        alerts: 0,
        destinations: Vec::new(),
    };
    (view, holds)
}
