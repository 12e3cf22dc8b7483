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
        // The subjects not among the largest senders are listed after them.
        if !bits.is_empty() {
            let mut extra: hashbrown::HashSet<u32, Hasher> =
                bits.keys().filter_map(|a| self.hosts.id(*a)).collect();
            for id in &ids {
                extra.remove(id);
            }
            ids.extend(extra);
        }
        self.forget_moved();
        let mut until = u64::MAX;
        // A list of this size is made every tick something moved: kept,
        // it is not fresh memory each time.
        let mut views = std::mem::take(&mut self.view_buf);
        views.clear();
        let mut next = self.view_cache.take_spare();
        // Made once at their size: grown push by push, a first listing
        // of thousands copied each list at every doubling into fresh
        // memory.
        // (Empty: a larger vector replaces them rather than a copy of
        // their old room.)
        if views.capacity() < ids.len() {
            views = Vec::with_capacity(ids.len());
        }
        if next.capacity() < ids.len() {
            next = Vec::with_capacity(ids.len());
        }
        for (i, &id) in ids.iter().enumerate() {
            // A first listing builds thousands of views of hosts far apart
            // in memory, each a slot, its sums and its scan sets: fetched
            // ahead, the slots first, the scan sets they point to when
            // they are in (and neither for a view still cached).
            if let Some(&ahead) = ids.get(i + AHEAD) {
                if !self.view_cache.holds(ahead) {
                    self.hosts.prefetch_reading(ahead);
                }
            }
            if let Some(&ahead) = ids.get(i + AHEAD / 2) {
                if !self.view_cache.holds(ahead) {
                    self.hosts.prefetch_scan(ahead);
                }
            }
            let (v, holds) = match self.view_cache.take(id, tick) {
                Some(cached) => cached,
                None => {
                    self.work.views_built += 1;
                    base_view(&self.hosts, &self.cfg, &g, id, tick)
                }
            };
            until = until.min(holds);
            let mut listed = v.clone();
            listed.alerts = bits.get(&v.addr).copied().unwrap_or(0);
            views.push(listed);
            next.push((id, v, holds));
        }
        // The cache holds the listed hosts only.
        self.view_cache.replace(next);
        #[cfg(test)]
        for (&id, v) in ids.iter().zip(&views) {
            let (fresh, holds) = base_view(&self.hosts, &self.cfg, &g, id, tick);
            let cached = HostView {
                alerts: 0,
                ..v.clone()
            };
            assert_eq!(cached, fresh, "host {id}'s view at tick {tick}");
            assert_eq!(
                self.view_cache.get(id).map(|c| c.1),
                Some(holds),
                "host {id}'s view holds until"
            );
        }
        // In order already (the ranking's) but for the alert subjects after
        // the largest senders: the stable sort takes the run as it is and
        // merges them in, where the unstable one, which only spots a list
        // wholly in order, sorted thousands of views again.
        views.sort_by(|a, b| b.sent_bytes.cmp(&a.sent_bytes).then(a.addr.cmp(&b.addr)));
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

    /// The views the last [`Partition::views`] made, in their order; the
    /// next list is made in `spare` (empty), or in a vector of their
    /// number.
    pub fn take_listed_views(&mut self, spare: Option<Vec<HostView>>) -> Vec<HostView> {
        let n = self.view_buf.len();
        let next = spare.unwrap_or_else(|| Vec::with_capacity(n));
        std::mem::replace(&mut self.view_buf, next)
    }

    /// Drops the cached views of the hosts that moved since the last
    /// listing.
    fn forget_moved(&mut self) {
        for id in self.moved.drain(..) {
            self.view_cache.forget(id);
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

/// The listed hosts' views as last built, in the order they were listed,
/// each with the tick until which it holds if the host does not move, and
/// each host's place among them: a listing reads them again in nearly the
/// same order, one after the other, where a table of them by host missed
/// the cache on every host of a long list.
#[derive(Debug, Default)]
pub struct ViewCache {
    /// By host id: its place in `views` (`u32::MAX`: none).
    at: Vec<u32>,
    views: Vec<(u32, HostView, u64)>,
    /// Views in `views` still held (the others were forgotten or taken).
    held: usize,
    /// The list before the last, kept for its memory.
    spare: Vec<(u32, HostView, u64)>,
}

const NOT_HELD: u32 = u32::MAX;

impl ViewCache {
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// True if host `id`'s view is cached.
    #[inline]
    pub fn holds(&self, id: u32) -> bool {
        self.at.get(id as usize).is_some_and(|&i| i != NOT_HELD)
    }

    /// Host `id`'s cached view and until when it holds.
    #[cfg(test)]
    pub fn get(&self, id: u32) -> Option<(&HostView, u64)> {
        let i = *self.at.get(id as usize)?;
        (i != NOT_HELD).then(|| {
            let (_, v, holds) = &self.views[i as usize];
            (v, *holds)
        })
    }

    /// Takes host `id`'s view out if it still holds at `tick`.
    #[inline]
    pub fn take(&mut self, id: u32, tick: u64) -> Option<(HostView, u64)> {
        let at = self.at.get_mut(id as usize)?;
        let i = *at as usize;
        if *at == NOT_HELD || self.views[i].2 <= tick {
            return None;
        }
        *at = NOT_HELD;
        self.held -= 1;
        let (_, v, holds) = &mut self.views[i];
        Some((std::mem::take(v), *holds))
    }

    /// Drops host `id`'s view.
    pub fn forget(&mut self, id: u32) {
        if let Some(at) = self.at.get_mut(id as usize) {
            if *at != NOT_HELD {
                *at = NOT_HELD;
                self.held -= 1;
            }
        }
    }

    pub fn clear(&mut self) {
        let next = self.take_spare();
        self.replace(next);
    }

    /// An empty list with memory, for [`ViewCache::replace`].
    pub fn take_spare(&mut self) -> Vec<(u32, HostView, u64)> {
        let mut v = std::mem::take(&mut self.spare);
        v.clear();
        v
    }

    /// Holds `next` (a listing's views, in its order), and nothing else.
    pub fn replace(&mut self, next: Vec<(u32, HostView, u64)>) {
        for &(id, _, _) in &self.views {
            self.at[id as usize] = NOT_HELD;
        }
        for (i, &(id, _, _)) in next.iter().enumerate() {
            let id = id as usize;
            if id >= self.at.len() {
                self.at.resize((id + 1).next_power_of_two(), NOT_HELD);
            }
            self.at[id] = i as u32;
        }
        self.held = next.len();
        self.spare = std::mem::replace(&mut self.views, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: u8) -> HostView {
        HostView {
            addr: Addr::from_v4([10, 0, 0, n]),
            sent_bytes: u64::from(n),
            ..HostView::default()
        }
    }

    #[test]
    fn a_view_is_taken_while_it_holds_and_the_cache_is_the_last_listing() {
        let mut c = ViewCache::default();
        let mut next = c.take_spare();
        next.extend([(3, view(3), 10), (70, view(70), 5)]);
        c.replace(next);
        assert_eq!(
            (c.len(), c.holds(3), c.holds(70), c.holds(4)),
            (2, true, true, false)
        );
        // Past the tick it holds until, a view is built again.
        assert_eq!(c.take(70, 5), None);
        assert_eq!(c.take(3, 9), Some((view(3), 10)));
        assert!(!c.holds(3) && c.holds(70));
        c.forget(70);
        assert!(c.is_empty());
        // A listing replaces all of it, whatever was taken or forgotten.
        let mut next = c.take_spare();
        next.push((1000, view(8), 20));
        c.replace(next);
        assert_eq!(c.get(1000), Some((&view(8), 20)));
        assert!(!c.holds(3) && !c.holds(70) && c.len() == 1);
        c.clear();
        assert!(c.is_empty() && !c.holds(1000));
    }
}
