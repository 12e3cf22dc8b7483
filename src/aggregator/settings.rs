//! What the aggregator takes from the config: thresholds, windows in
//! ticks, rate columns, fingerprint floors.

use super::*;

/// What the aggregator needs from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatorConfig {
    pub tick_secs: f64,
    /// Window lengths in ticks: traffic (bytes, packets, inbound), address
    /// scans, port scans.
    pub traffic_ticks: u64,
    pub scan_ticks: u64,
    pub port_ticks: u64,
    /// The rate window, ticks, and the rate columns some limit reads.
    pub rate_ticks: u64,
    pub rate_columns: Columns,
    /// What one tick must bring a host for its flood to be tallied
    /// ([`fingerprint`]); `None` without inbound rate limits.
    pub floors: Option<fingerprint::Floors>,
    /// Ticks below the threshold before an alert closes, per kind.
    pub hold_down: [u64; KINDS],
    pub max_hosts: usize,
    pub max_pairs: usize,
    pub keep_destinations: usize,
    pub chart_min_bytes: u64,
    pub scan_count: ScanCount,
    pub degraded_ratio: f64,
    /// Partitions of the hosts, each merged and detected on its own thread.
    pub threads: usize,
}

impl AggregatorConfig {
    pub fn from_config(c: &Config) -> Self {
        let traffic = c.interval_ticks();
        let scan = c.ticks(c.scan.interval);
        let port = c.ticks(c.scan.port_interval);
        let rate = c.ticks(c.rates.window);
        let windows = window_ticks(traffic, scan, port, rate);
        let hold_down = match c.alerts.hold_down {
            Some(h) => [c.ticks(h); KINDS],
            None => windows,
        };
        let rules = c.rule_set();
        AggregatorConfig {
            tick_secs: c.tick().as_secs_f64(),
            traffic_ticks: traffic,
            scan_ticks: scan,
            port_ticks: port,
            rate_ticks: rate,
            rate_columns: Columns::of(rules.all_limits().map(|l| &l.rates)),
            floors: floors(&rules, c.tick().as_secs_f64()),
            hold_down,
            max_hosts: c.traffic.max_hosts,
            max_pairs: c.traffic.max_pairs,
            keep_destinations: c.traffic.keep_destinations,
            chart_min_bytes: c.traffic.chart_min_bytes.0,
            scan_count: c.scan.count,
            degraded_ratio: c.alerts.degraded_drop_ratio,
            threads: c.capture.aggregators.unwrap_or(1).max(1),
        }
    }

    /// Ticks after a host's last traffic or contact by which all of its
    /// counts have left their windows.
    pub(crate) fn horizon(&self, g: &Geometry) -> u64 {
        (g.buckets * g.width)
            .max(self.scan_ticks)
            .max(self.port_ticks)
            .max(self.rate_ticks)
            + 1
    }

    pub(crate) fn window_secs(&self) -> [u64; KINDS] {
        let s = |t: u64| (t as f64 * self.tick_secs).round() as u64;
        window_ticks(
            self.traffic_ticks,
            self.scan_ticks,
            self.port_ticks,
            self.rate_ticks,
        )
        .map(s)
    }

    /// The rate window in milliseconds (rates are per second).
    pub(crate) fn rate_window_ms(&self) -> u64 {
        ((self.rate_ticks as f64 * self.tick_secs * 1000.0).round() as u64).max(1)
    }
}

/// Half a tick's worth of the lowest inbound rate limit, in packets and in
/// bytes: a flood that crosses a limit brings at least a tick's worth in
/// some tick.
fn floors(rules: &crate::rules::RuleSet, tick_secs: f64) -> Option<fingerprint::Floors> {
    use crate::rates::{Class, Dir};
    let mut pps = u64::MAX;
    let mut bps = u64::MAX;
    for l in rules.all_limits() {
        for class in Class::ALL {
            if let Some(v) = l.rates.get(Dir::In, class, false) {
                pps = pps.min(v);
            }
            if class.has_bits() {
                if let Some(v) = l.rates.get(Dir::In, class, true) {
                    bps = bps.min(v);
                }
            }
        }
    }
    if pps == u64::MAX && bps == u64::MAX {
        return None;
    }
    let per_tick = |v: u64, div: f64| {
        if v == u64::MAX {
            u64::MAX
        } else {
            ((v as f64 * tick_secs / div) as u64).max(1)
        }
    };
    Some(fingerprint::Floors {
        packets: per_tick(pps, 2.0),
        bytes: per_tick(bps, 16.0),
    })
}

/// The window of each kind, ticks.
fn window_ticks(traffic: u64, scan: u64, port: u64, rate: u64) -> [u64; KINDS] {
    let mut w = [rate; KINDS];
    w[AlertKind::Traffic.index()] = traffic;
    w[AlertKind::AddressScan.index()] = scan;
    w[AlertKind::PortScan.index()] = port;
    w[AlertKind::Inbound.index()] = traffic;
    w
}
