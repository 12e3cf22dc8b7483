//! The tick's snapshot and its list of hosts, built again only when
//! what they show moved.

use super::*;

impl Aggregator {
    /// The tick's snapshot. The listed hosts (the largest senders and the
    /// subjects of open alerts) are built again only when something they
    /// show changed: a host moved or slid, an alert changed, a listed
    /// host's scan count fell; otherwise the last list is shared.
    pub(super) fn snapshot(
        &mut self,
        tick: u64,
        health: TickHealth,
        unix_ms: u64,
        drop_ratio: f64,
    ) -> Snapshot {
        let g = self.geo;
        self.refresh_evidence(tick);
        if self.listed.stale || self.parts.iter().any(|p| p.changed) || tick >= self.listed.until {
            self.build_listed(tick);
        }
        Snapshot {
            tick,
            ticks_closed: self.ticks,
            unix_ms,
            tick_ms: (self.cfg.tick_secs * 1000.0).round() as u64,
            window_ticks: self.cfg.traffic_ticks,
            chart_min_bytes: self.cfg.chart_min_bytes,
            hosts_unlisted: self.listed.unlisted,
            hosts: self.listed.hosts.clone(),
            ifaces: self.ifaces.views(),
            window: Totals {
                packets: self.window_packets.sum(&g, tick),
                bytes: self.window_bytes.sum(&g, tick),
            },
            drop_ratio,
            lifetime: self.lifetime,
            lifetime_untracked: self.lifetime_untracked,
            tables: TableFill {
                hosts: self.host_count(),
                max_hosts: self.cfg.max_hosts,
                pairs: self.parts.iter().map(|p| p.pairs.len()).sum(),
                max_pairs: self.cfg.max_pairs,
                bytes: self
                    .parts
                    .iter()
                    .map(|p| p.hosts.bytes() + p.pairs.bytes())
                    .sum(),
            },
            alerts: self.listed.alerts.clone(),
            alerts_opened: self.opened_total,
            alerts_closed: self.closed_total,
            closed: self.recent_closed.iter().cloned().collect(),
            sinks: Vec::new(),
            mitigation: None,
            attacks: None,
            export: None,
            flow_input: None,
            health,
            late_shards_total: self.late_total,
            shards_merged: self.shards_merged,
            udp_flows_evicted: self.udp_evicted,
            config: self.config_json.clone(),
            runtime: self.runtime.clone(),
            all_json: Default::default(),
            active_json: Default::default(),
            metrics_text: Default::default(),
            stream_event: Default::default(),
        }
    }

    /// Lists the [`MAX_LISTED_HOSTS`] largest senders (from each partition's
    /// ranking, kept as hosts move) and every host with an open alert; the
    /// charted, alerting and [`DETAIL_HOSTS`] largest carry their
    /// destinations.
    pub(super) fn build_listed(&mut self, tick: u64) {
        let keep = self.cfg.keep_destinations;
        let min = self.cfg.chart_min_bytes.max(1);
        let detail = |h: &HostView, i: usize| {
            h.sent_bytes >= min || h.alerts != 0 || (i < DETAIL_HOSTS && h.sent_bytes > 0)
        };
        let views = each_part(self.pool.as_ref(), &mut self.parts, |p| {
            p.views(tick, keep, detail)
        });
        let ranked: usize = views.iter().map(|v| v.ranked).sum();
        let until = views.iter().map(|v| v.until).min().unwrap_or(u64::MAX);
        // The largest senders of all partitions, and every alerting host.
        let mut kept = 0;
        let mut wanted = |h: &HostView| {
            let keep = kept < MAX_LISTED_HOSTS || h.alerts != 0;
            kept += usize::from(keep);
            keep
        };
        // The list two builds back, if no snapshot holds it any more.
        let spare = self
            .listed
            .previous
            .take()
            .and_then(|a| Arc::try_unwrap(a).ok())
            .map(|mut v| {
                v.clear();
                v
            });
        let mut hosts = if let [p] = &mut self.parts[..] {
            // One partition's list is in order already: it becomes the
            // snapshot's as it is, not copied twice (thousands of views
            // in a tick that fills the table).
            let mut hosts = p.take_listed_views(spare);
            hosts.retain(|h| wanted(h));
            hosts
        } else {
            // Kept across ticks, as the partitions' lists are.
            let mut all = std::mem::take(&mut self.listing_buf);
            all.clear();
            for p in &mut self.parts {
                all.extend(p.listed_views());
            }
            // One run in order per partition: the stable sort merges the
            // runs (no two views tie: addresses differ).
            all.sort_by(|a, b| b.sent_bytes.cmp(&a.sent_bytes).then(a.addr.cmp(&b.addr)));
            let mut hosts = spare.unwrap_or_default();
            hosts.reserve(all.len().min(MAX_LISTED_HOSTS + 64));
            hosts.extend(all.drain(..).filter(|h| wanted(h)));
            self.listing_buf = all;
            hosts
        };
        for (i, h) in hosts.iter_mut().enumerate() {
            if !detail(h, i) {
                h.destinations = Vec::new();
            }
        }
        let listed_ranked = hosts
            .iter()
            .filter(|h| h.sent_bytes > 0 || h.recv_bytes > 0)
            .count();
        let mut alerts: Vec<Alert> = self
            .parts
            .iter()
            .flat_map(|p| p.lifecycle.open_alerts().map(|o| o.alert.clone()))
            .collect();
        alerts.sort_by_key(|a| a.id);
        let previous = std::mem::replace(&mut self.listed.hosts, Arc::new(hosts));
        self.listed = Listed {
            hosts: self.listed.hosts.clone(),
            previous: Some(previous),
            alerts: Arc::new(alerts),
            unlisted: ranked.saturating_sub(listed_ranked),
            until,
            stale: false,
        };
    }
}
