//! Live time in ticks: tick `k` is `[start + k·tick, start + (k+1)·tick)` on
//! the monotonic clock, the same for every worker and the aggregator.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since 1970, for what is shown and stored (ticks
/// run on the monotonic clock); 0 before 1970.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Clone, Copy)]
pub struct TickClock {
    start: Instant,
    tick: Duration,
}

impl TickClock {
    pub fn new(start: Instant, tick: Duration) -> Self {
        TickClock { start, tick }
    }

    /// The tick `t` falls in.
    pub fn tick_at(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.start).as_nanos() / self.tick.as_nanos().max(1)) as u64
    }

    /// When tick `k` ends.
    pub fn end_of(&self, k: u64) -> Instant {
        let nanos = self.tick.as_nanos().saturating_mul(u128::from(k) + 1);
        self.start + Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }

    pub fn tick(&self) -> Duration {
        self.tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_partition_time() {
        let s = Instant::now();
        let c = TickClock::new(s, Duration::from_millis(100));
        assert_eq!(c.tick_at(s), 0);
        assert_eq!(c.tick_at(s + Duration::from_millis(99)), 0);
        assert_eq!(c.tick_at(s + Duration::from_millis(100)), 1);
        assert_eq!(c.end_of(0), s + Duration::from_millis(100));
        assert_eq!(c.tick_at(c.end_of(41)), 42);
    }
}
