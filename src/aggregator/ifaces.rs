//! Interfaces as the aggregator knows them: their counters since start and
//! for the last tick, kept a while after they go away.

use std::collections::BTreeMap;

use crate::counters::{IfaceDelta, IfaceReport};
use crate::snapshot::IfaceView;

/// Interfaces that are gone are kept this many ticks for their totals, then
/// forgotten, so that interface churn (containers) cannot grow memory.
pub const KEEP_REMOVED_TICKS: u64 = 3600;
/// And never more than this many.
pub const MAX_REMOVED: usize = 256;

#[derive(Debug, Clone)]
struct IfaceState {
    name: String,
    link: String,
    present: bool,
    totals: IfaceDelta,
    this_tick: IfaceDelta,
    last_tick: IfaceDelta,
    removed_at: Option<u64>,
}

impl IfaceState {
    fn new(ifindex: u32, name: String, link: String, present: bool) -> Self {
        IfaceState {
            name,
            link,
            present,
            totals: IfaceDelta::new(ifindex),
            this_tick: IfaceDelta::new(ifindex),
            last_tick: IfaceDelta::new(ifindex),
            removed_at: None,
        }
    }
}

/// The interface table.
#[derive(Debug, Default)]
pub struct Ifaces {
    map: BTreeMap<u32, IfaceState>,
}

impl Ifaces {
    pub fn added(&mut self, ifindex: u32, name: &str, link: &str) {
        let st = self
            .map
            .entry(ifindex)
            .or_insert_with(|| IfaceState::new(ifindex, name.into(), link.into(), true));
        st.name = name.to_string();
        st.link = link.to_string();
        st.present = true;
        st.removed_at = None;
    }

    pub fn removed(&mut self, ifindex: u32, tick: u64) {
        if let Some(st) = self.map.get_mut(&ifindex) {
            st.present = false;
            st.removed_at = Some(tick);
        }
    }

    /// Adds a worker's delta. Deltas of an interface we were never told
    /// about (a race with its removal) still count, under its index.
    pub fn add(&mut self, d: &IfaceDelta) {
        let st = self.map.entry(d.ifindex).or_insert_with(|| {
            IfaceState::new(d.ifindex, format!("if{}", d.ifindex), String::new(), false)
        });
        st.totals.add(d);
        st.this_tick.add(d);
    }

    /// Closes the tick: the tick's deltas become "last tick", interfaces gone
    /// long enough are forgotten.
    pub fn end_tick(&mut self, tick: u64) {
        for st in self.map.values_mut() {
            st.last_tick = st.this_tick.take();
        }
        self.map.retain(|_, st| match st.removed_at {
            Some(t) => tick.saturating_sub(t) < KEEP_REMOVED_TICKS,
            None => true,
        });
        let mut removed: Vec<(u64, u32)> = self
            .map
            .iter()
            .filter_map(|(&i, st)| st.removed_at.map(|t| (t, i)))
            .collect();
        if removed.len() > MAX_REMOVED {
            removed.sort();
            for &(_, i) in &removed[..removed.len() - MAX_REMOVED] {
                self.map.remove(&i);
            }
        }
    }

    pub fn views(&self) -> Vec<IfaceView> {
        self.map
            .iter()
            .map(|(&ifindex, st)| IfaceView {
                ifindex,
                name: st.name.clone(),
                link: st.link.clone(),
                present: st.present,
                totals: IfaceReport::from(&st.totals),
                last_tick: IfaceReport::from(&st.last_tick),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_accumulate_and_removed_ones_are_forgotten() {
        let mut f = Ifaces::default();
        f.added(7, "eth0", "ethernet");
        let mut d = IfaceDelta::new(7);
        d.frames = 5;
        d.kernel_drops = 1;
        f.add(&d);
        f.add(&d);
        f.end_tick(0);
        let v = f.views();
        assert_eq!(v[0].totals.frames, 10);
        assert_eq!(v[0].last_tick.frames, 10);
        assert_eq!(v[0].totals.kernel_drops, 2);
        f.end_tick(1);
        assert_eq!(f.views()[0].last_tick.frames, 0);
        f.removed(7, 2);
        f.end_tick(2);
        assert!(!f.views()[0].present);
        f.end_tick(2 + KEEP_REMOVED_TICKS);
        assert!(f.views().is_empty());
    }

    #[test]
    fn removed_interfaces_are_capped() {
        let mut f = Ifaces::default();
        for i in 0..(MAX_REMOVED as u32 + 50) {
            f.added(i, &format!("veth{i}"), "ethernet");
            f.removed(i, u64::from(i));
        }
        f.end_tick(10);
        assert_eq!(f.views().len(), MAX_REMOVED);
    }
}
