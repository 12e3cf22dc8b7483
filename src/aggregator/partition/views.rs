//! What a partition shows of its hosts: the views a snapshot lists and
//! a host's destinations.

use super::*;

/// What a partition lists for a snapshot.
#[derive(Debug, Default)]
pub struct Views {
    pub hosts: Vec<HostView>,
    /// Hosts ranked (with traffic in the window).
    pub ranked: usize,
    /// The first tick a listed host's scan count may fall.
    pub until: u64,
}

impl Partition {
    /// This partition's largest senders (up to [`MAX_LISTED_HOSTS`]) and
    /// the subjects of its open alerts, as views.
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
        let mut until = u64::MAX;
        let mut views: Vec<HostView> = ids
            .iter()
            .map(|&id| {
                let h = self.hosts.slot(id);
                let (contacted, ports) = match &h.scan {
                    Some(s) => {
                        for next in [
                            s.addresses.next_expiry(tick, self.cfg.scan_ticks),
                            s.ports.next_expiry(tick, self.cfg.port_ticks),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            until = until.min(next);
                        }
                        (
                            s.addresses.count(tick, self.cfg.scan_ticks) as u32,
                            s.ports.count(tick, self.cfg.port_ticks) as u32,
                        )
                    }
                    None => (0, 0),
                };
                let [sent_bytes, sent_packets, recv_bytes, recv_packets] = h.win.sums(&g, tick);
                HostView {
                    addr: h.addr,
                    sent_bytes,
                    sent_packets,
                    recv_bytes,
                    recv_packets,
                    contacted,
                    ports,
                    alerts: bits.get(&h.addr).copied().unwrap_or(0),
                    destinations: Vec::new(),
                }
            })
            .collect();
        self.work.views_built += views.len() as u64;
        views.sort_unstable_by(|a, b| b.sent_bytes.cmp(&a.sent_bytes).then(a.addr.cmp(&b.addr)));
        if keep_destinations > 0 {
            for (i, v) in views.iter_mut().enumerate() {
                if detail(v, i) {
                    v.destinations = self.destinations(v.addr, tick, keep_destinations);
                }
            }
        }
        self.changed = false;
        Views {
            hosts: views,
            ranked: self.ranking.len(),
            until,
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
