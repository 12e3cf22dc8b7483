//! What a partition tells of its open alerts: the scan sizes brought up
//! to date as their subjects move, the alerts due fresh evidence and that
//! evidence, the sources toward an inbound subject.

use super::*;

impl Partition {
    /// Brings the scan size of open scan alerts whose subject moved this
    /// tick up to date (an estimate costs a pass over 1 KiB, not the pairs
    /// a full gathering walks, so it need not wait for
    /// [`Partition::evidence_due`]). True if one changed.
    pub fn refresh_scan_sizes(&mut self, tick: u64) -> bool {
        const SCANS: u32 = 1 << AlertKind::AddressScan as u32 | 1 << AlertKind::PortScan as u32;
        let mut changed = false;
        for id in self.alerting_moved(tick) {
            let h = self.hosts.slot(id);
            if h.alerting & SCANS == 0 {
                continue;
            }
            let Some(s) = h.scan.as_ref() else {
                continue;
            };
            for (kind, size) in [
                (
                    AlertKind::AddressScan,
                    s.addresses.estimate(tick, self.cfg.scan_ticks),
                ),
                (
                    AlertKind::PortScan,
                    s.ports.estimate(tick, self.cfg.port_ticks),
                ),
            ] {
                if size.is_none() || h.alerting & kind.bit() == 0 {
                    continue;
                }
                if let Some(o) = self.lifecycle.get_mut(kind, h.addr) {
                    if o.alert.evidence.contacted != size {
                        std::sync::Arc::make_mut(&mut o.alert.evidence).contacted = size;
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// The hosts with an open alert that moved this tick (the detector
    /// pass of `tick` looked at them), each once: from the open alerts
    /// when they are fewer than the hosts that moved (a flood's tick
    /// moves tens of thousands of hosts, one with an alert), else from
    /// those hosts.
    fn alerting_moved(&self, tick: u64) -> Vec<u32> {
        let moved = |h: &crate::hosts::HostState| h.alerting != 0 && h.evaluated == tick;
        if self.lifecycle.len() < self.touched.len() {
            let mut ids: Vec<u32> = self
                .lifecycle
                .subjects()
                .filter_map(|(_, a)| self.hosts.id(a))
                .filter(|&id| moved(self.hosts.slot(id)))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        } else {
            self.touched
                .iter()
                .copied()
                .filter(|&id| moved(self.hosts.slot(id)))
                .collect()
        }
    }

    /// Open alerts here whose subject moved this tick and whose evidence is
    /// older than `every` ticks.
    pub fn evidence_due(&self, tick: u64, every: u64) -> Vec<(AlertKind, Addr)> {
        let mut wanted = Vec::new();
        for id in self.alerting_moved(tick) {
            let h = self.hosts.slot(id);
            for kind in AlertKind::ALL {
                if h.alerting & kind.bit() != 0 {
                    if let Some(o) = self.lifecycle.get(kind, h.addr) {
                        if tick >= o.evidence_tick + every {
                            wanted.push((kind, h.addr));
                        }
                    }
                }
            }
        }
        wanted
    }

    /// The evidence of alerts whose subjects are ours, from what this
    /// partition holds; the sources of an inbound subject come from every
    /// partition (`sources`).
    pub fn evidence(
        &self,
        wanted: &[(AlertKind, Addr)],
        tick: u64,
        sources: &Sources,
    ) -> Vec<((AlertKind, Addr), crate::alert::Evidence)> {
        evidence::gather(
            wanted,
            &self.pairs,
            &self.hosts,
            tick,
            (self.cfg.scan_ticks, self.cfg.port_ticks),
            sources,
        )
    }

    /// The scans of these closed alerts are over: their sketches go, so
    /// that a later scan by the same host is measured afresh.
    pub fn end_sketches(&mut self, closed: &[crate::alert::Alert]) {
        for a in closed {
            match a.kind {
                AlertKind::AddressScan => self.hosts.end_sketch(Addr::from(a.subject), false),
                AlertKind::PortScan => self.hosts.end_sketch(Addr::from(a.subject), true),
                _ => {}
            }
        }
    }

    /// Adds the sources toward each of `victims` in this partition's
    /// pairs: all of them, or with `best` only the `best` largest so far
    /// (exact when every source comes once: its pairs all in one
    /// generation). True if a source may have come twice (its pair held in
    /// two generations): [`evidence::merge_sources`] is then needed. (A
    /// source's pairs are all in its own partition.)
    pub fn sources_into(&self, tick: u64, sources: &mut Sources, best: Option<usize>) -> bool {
        if sources.is_empty() {
            return false;
        }
        self.pairs.for_each(tick, |s, d, c| {
            if let Some(v) = sources.get_mut(&d) {
                let p = (s, c.bytes, c.packets, c.roles);
                match best {
                    Some(n) => evidence::keep_best(v, p, n),
                    None => v.push(p),
                }
            }
        });
        self.pairs.live_generations(tick) > 1
    }
}
