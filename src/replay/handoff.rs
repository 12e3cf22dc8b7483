//! The replay on two threads: one reads, parses and counts packets into a
//! tick's shard, the other merges sealed shards, detects and announces —
//! as a capture worker and the aggregator do live. Where a capture holds
//! few packets per tick (a long, sparse one), the per-tick half costs more
//! than the per-packet half, and a second core takes it off the reader.
//! Shards go over in order, one per tick, and come back emptied: the same
//! few shards serve the whole replay, and the two halves never wait on
//! each other for more than a tick's work.

use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};

use crate::shard::{Hasher, Shard, ShardLimits};

use super::counter::{Downstream, Sealed, Stopped};
use super::player::Player;

/// Sealed ticks waiting for the aggregating half. With one being filled
/// and one being merged, the replay holds at most this many shards more.
pub const QUEUED: usize = 1;
/// Shards in the replay, all told.
const SHARDS: usize = QUEUED + 2;

/// What the reading half tells the aggregating half, in order. A tick's
/// shard goes over by value: one move of a kilobyte per tick, where a box
/// would allocate once a tick.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Message {
    Iface {
        ifindex: u32,
        name: String,
        link: String,
    },
    Tick(Sealed),
}

/// The reading half's end: sealed ticks go out, emptied shards come back.
#[derive(Debug)]
pub struct Handoff {
    out: SyncSender<Message>,
    back: Receiver<Shard>,
    limits: ShardLimits,
    made: usize,
}

impl Handoff {
    /// `limits` bound the shards it makes: those of the counter's own.
    pub fn new(out: SyncSender<Message>, back: Receiver<Shard>, limits: ShardLimits) -> Handoff {
        Handoff {
            out,
            back,
            limits,
            // The counter's own.
            made: 1,
        }
    }

    /// An emptied shard: one come back, else a new one while there are
    /// fewer than [`SHARDS`], else the next to come back.
    fn fresh(&mut self) -> Result<Shard, Stopped> {
        let mut s = match self.back.try_recv() {
            Ok(s) => s,
            Err(TryRecvError::Empty) if self.made < SHARDS => {
                self.made += 1;
                return Ok(Shard::new(self.limits, &Hasher::new()));
            }
            Err(TryRecvError::Empty) => self.back.recv().map_err(|_| Stopped)?,
            Err(TryRecvError::Disconnected) => return Err(Stopped),
        };
        // Emptied here, on the reading side: the aggregating half is the
        // busier one where ticks are many.
        s.recycle();
        Ok(s)
    }
}

impl Downstream for Handoff {
    fn iface(&mut self, ifindex: u32, name: &str, link: &str) {
        // If the other half has stopped, the next tick says so.
        let _ = self.out.send(Message::Iface {
            ifindex,
            name: name.to_string(),
            link: link.to_string(),
        });
    }

    fn tick(&mut self, shard: &mut Shard, tick: u64, end_ns: u64) -> Result<(), Stopped> {
        let fresh = self.fresh()?;
        let shard = std::mem::replace(shard, fresh);
        self.out
            .send(Message::Tick(Sealed {
                shard,
                tick,
                end_ns,
            }))
            .map_err(|_| Stopped)
    }
}

/// The aggregating half's loop: applies every message until the reading
/// half hangs up, sending each merged shard back.
pub fn aggregate(
    player: &mut Player<'_>,
    messages: Receiver<Message>,
    back: &std::sync::mpsc::Sender<Shard>,
) {
    for m in messages {
        match m {
            Message::Iface {
                ifindex,
                name,
                link,
            } => player.iface(ifindex, &name, &link),
            Message::Tick(mut s) => {
                player.close(&mut s.shard, s.tick, s.end_ns, false);
                // The reading half may have ended: the shard is dropped.
                let _ = back.send(s.shard);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::mpsc;

    use super::*;
    use crate::aggregator::RuntimeInfo;
    use crate::alert::AlertEvent;
    use crate::config::Config;
    use crate::replay::counter::Counter;
    use crate::replay::reader::{Packet, tests::frame};
    use crate::wire::LinkType;

    const SECOND: u64 = 1_000_000_000;

    /// A scan of 600 addresses, a quiet hour, a second source, a day's
    /// gap: ticks with traffic, ticks closed empty, ticks jumped over.
    fn capture() -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut f = frame([10, 0, 0, 1], 100);
        for k in 0..600u32 {
            f[30..34].copy_from_slice(&(0x0a14_0000 + k).to_be_bytes());
            out.push((5 * SECOND + u64::from(k) * 7_000_000, f.clone()));
        }
        let g = frame([10, 0, 0, 2], 1400);
        for k in 0..50u64 {
            out.push((3600 * SECOND + k * 300_000_000, g.clone()));
        }
        out.push((90_000 * SECOND, frame([10, 0, 0, 3], 60)));
        out
    }

    type Seen = Rc<RefCell<Vec<String>>>;

    fn player(config: &Config, seen: &Seen) -> Player<'static> {
        let seen = seen.clone();
        Player::new(
            config,
            RuntimeInfo::default(),
            false,
            Box::new(move |_, ev: Vec<AlertEvent>| {
                let mut s = seen.borrow_mut();
                s.extend(ev.iter().map(|e| serde_json::to_string(e).unwrap()));
            }),
        )
    }

    fn feed(counter: &mut Counter, down: &mut dyn Downstream) -> Result<(), Stopped> {
        let i = counter.add_iface("test", "ethernet", down);
        for (ts_ns, f) in capture() {
            let p = Packet {
                ts_ns,
                link: LinkType::Ethernet,
                iface: 0,
                data: &f,
                wire_len: f.len() as u32,
            };
            counter.packet(&p, i, down)?;
        }
        Ok(())
    }

    /// Alerts, ticks and totals of a replay, for comparing two.
    fn outcome(mut p: Player<'static>, counter: Counter, seen: &Seen) -> String {
        p.close_last(counter.finish());
        let (closed, skipped) = (p.ticks_closed, p.ticks_skipped);
        let (ticks, totals) = p.finish();
        let mut hosts: Vec<String> = totals
            .hosts()
            .map(|(a, t)| format!("{a:?} {t:?}"))
            .collect();
        hosts.sort();
        format!(
            "{ticks} ticks, {closed} closed, {skipped} skipped\n{}\n{}",
            seen.borrow().join("\n"),
            hosts.join("\n")
        )
    }

    /// The two halves on two threads close the same ticks with the same
    /// shards as on one: the same alerts, numbered alike, and the same
    /// totals.
    #[test]
    fn two_threads_replay_as_one_does() {
        let config = Config::default();
        let one = {
            let seen = Seen::default();
            let mut p = player(&config, &seen);
            let mut counter = Counter::new(&config);
            feed(&mut counter, &mut p).unwrap();
            outcome(p, counter, &seen)
        };
        let seen = Seen::default();
        let mut p = player(&config, &seen);
        let counter = Counter::new(&config);
        let limits = counter.limits();
        let (counter, made) = std::thread::scope(|s| {
            let (out, messages) = mpsc::sync_channel(QUEUED);
            let (back, spares) = mpsc::channel();
            let reading = s.spawn(move || {
                let mut counter = counter;
                let mut down = Handoff::new(out, spares, limits);
                feed(&mut counter, &mut down).unwrap();
                (counter, down.made)
            });
            aggregate(&mut p, messages, &back);
            reading.join().unwrap()
        });
        assert!(made <= SHARDS, "{made} shards made");
        let two = outcome(p, counter, &seen);
        assert!(one.contains("address_scan"), "no scan alert:\n{one}");
        assert!(one.contains("10.0.0.3"), "no last host:\n{one}");
        assert_eq!(one, two);
    }

    /// A reading half whose other half has gone stops at the next tick,
    /// instead of waiting for a shard that will not come back.
    #[test]
    fn the_reading_half_stops_when_the_other_half_is_gone() {
        let config = Config::default();
        let mut counter = Counter::new(&config);
        let (out, messages) = mpsc::sync_channel(QUEUED);
        let (back, spares) = mpsc::channel::<Shard>();
        drop((messages, back));
        let mut down = Handoff::new(out, spares, counter.limits());
        assert_eq!(feed(&mut counter, &mut down), Err(Stopped));
    }
}
