//! What a SIGHUP may change: settings that size the capture or its clock
//! are fixed at start, so a reload keeps their running values whole
//! instead of applying part of them.

use super::Config;

impl Config {
    /// `self` (the file just read) with every restart-only setting put
    /// back to what `running` uses, and the names of those that differ.
    pub fn keeping_restart_only(mut self, running: &Config) -> (Config, Vec<&'static str>) {
        let mut changed = Vec::new();
        let mut keep = |name: &'static str, differs: bool| {
            if differs {
                changed.push(name);
            }
        };
        let (c, old) = (&mut self.capture, &running.capture);
        keep("tick", self.tick != running.tick);
        keep("http.listen", self.http.listen != running.http.listen);
        keep(
            "capture.workers/pin_workers",
            c.workers != old.workers || c.pin_workers != old.pin_workers,
        );
        keep("capture.snaplen", c.snaplen != old.snaplen);
        keep(
            "capture.block_size/block_count/block_timeout",
            c.block_size != old.block_size
                || c.block_count != old.block_count
                || c.block_timeout != old.block_timeout,
        );
        keep(
            "capture.ring_memory_max",
            c.ring_memory_max != old.ring_memory_max,
        );
        keep("capture.aggregators", c.aggregators != old.aggregators);
        keep(
            "capture.fanout/wait/direction",
            c.fanout != old.fanout || c.wait != old.wait || c.direction != old.direction,
        );
        // Workers count packets by class, in each direction, only if some
        // rate limit of it was set when they started.
        let counting = running.rates.dirs(&running.rules);
        let wants = self.rates.dirs(&self.rules);
        let more = wants & !counting != 0;
        keep("rates (a direction without limits at start)", more);
        if more {
            self.rates.limits = running.rates.limits;
            for r in &mut self.rules {
                if let crate::rules::Action::Limits(l) = &mut r.action {
                    l.rates = crate::rates::RateLimits::default();
                }
            }
        }
        // The flow-input thread binds its sockets and sizes its tables once.
        keep("flow_input", self.flow_input != running.flow_input);
        self.flow_input = running.flow_input.clone();
        self.tick = running.tick;
        self.http.listen = running.http.listen.clone();
        c.workers = old.workers;
        c.pin_workers = old.pin_workers;
        c.snaplen = old.snaplen;
        c.block_size = old.block_size;
        c.block_count = old.block_count;
        c.block_timeout = old.block_timeout;
        c.ring_memory_max = old.ring_memory_max;
        c.aggregators = old.aggregators;
        c.fanout = old.fanout;
        c.wait = old.wait;
        c.direction = old.direction;
        (self, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_settings_keep_their_running_values() {
        let running = Config::default();
        let file = Config::parse(
            "tick = \"500ms\"\n[capture]\nworkers = 3\npin_workers = false\n[traffic]\nbyte_limit = \"5G\"\n[http]\nlisten = [\"127.0.0.1:1\"]\n",
            "test",
        )
        .unwrap();
        let (kept, changed) = file.clone().keeping_restart_only(&running);
        assert_eq!(
            changed,
            ["tick", "http.listen", "capture.workers/pin_workers"]
        );
        assert_eq!(kept.tick, running.tick);
        assert_eq!(kept.http.listen, running.http.listen);
        assert_eq!(kept.capture.workers, running.capture.workers);
        assert!(!file.capture.pin_workers && kept.capture.pin_workers);
        // What a reload may change, it does.
        assert_eq!(kept.traffic.byte_limit, file.traffic.byte_limit);
        assert_ne!(kept.traffic.byte_limit, running.traffic.byte_limit);
        let (_, none) = running.clone().keeping_restart_only(&running);
        assert!(none.is_empty());
    }

    #[test]
    fn rate_limits_of_a_direction_not_counted_at_start_wait_for_a_restart() {
        use crate::rates::{Class, Dir};
        let inbound = Config::parse("[rates.in]\nsyn_packets = 100\n", "t").unwrap();
        // None at start: none counted, none applied.
        let (kept, changed) = inbound.clone().keeping_restart_only(&Config::default());
        assert_eq!(changed, ["rates (a direction without limits at start)"]);
        assert!(kept.rates.limits.is_empty());
        // Inbound counted: a new inbound limit applies, an outbound one
        // waits (with the rule that set it).
        let more = Config::parse(
            "[rates.in]\nsyn_packets = 50\n[[rule]]\nnetworks = [\"10.0.0.0/8\"]\nrates_out = { new_flows = 5 }\n",
            "t",
        )
        .unwrap();
        let (kept, changed) = more.clone().keeping_restart_only(&inbound);
        assert_eq!(changed.len(), 1);
        assert_eq!(kept.rates.limits.get(Dir::In, Class::Syn, false), Some(100));
        let lower = Config::parse("[rates.in]\nsyn_packets = 50\n", "t").unwrap();
        let (kept, changed) = lower.keeping_restart_only(&inbound);
        assert!(changed.is_empty());
        assert_eq!(kept.rates.limits.get(Dir::In, Class::Syn, false), Some(50));
    }
}
