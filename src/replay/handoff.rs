//! The replay on two threads: one reads, parses and counts packets into a
//! tick's shard, the other merges sealed shards, detects and announces —
//! as a capture worker and the aggregator do live. Where a capture holds
//! few packets per tick (a long, sparse one), the per-tick half costs more
//! than the per-packet half, and a second core takes it off the reader.
//! Shards go over in order, one per tick, and come back merged with a
//! ledger of where their hosts went, for the reading half to add to the
//! whole replay's totals (taking that work off the busier half too) and
//! empty: the same few shards serve the whole replay, and the two halves
//! never wait on each other for more than a tick's work.

use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};

use crate::shard::{Hasher, Shard, ShardLimits};

use super::counter::{Downstream, Sealed, Stopped};
use super::player::Player;
use super::totals::{Ledger, WholeTotals};

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
    Tick(Sealed, Ledger),
}

/// What comes back: a shard merged, and where its hosts went.
#[derive(Debug)]
pub struct Merged {
    shard: Shard,
    ledger: Ledger,
}

/// The reading half's end: sealed ticks go out, merged shards come back
/// and are added to the totals here.
#[derive(Debug)]
pub struct Handoff {
    out: SyncSender<Message>,
    back: Receiver<Merged>,
    limits: ShardLimits,
    made: usize,
    totals: WholeTotals,
    /// Ledgers come back with their shards; one goes out with each.
    ledgers: Vec<Ledger>,
}

impl Handoff {
    /// `limits` bound the shards it makes: those of the counter's own.
    pub fn new(
        out: SyncSender<Message>,
        back: Receiver<Merged>,
        limits: ShardLimits,
        totals: WholeTotals,
    ) -> Handoff {
        Handoff {
            out,
            back,
            limits,
            // The counter's own.
            made: 1,
            totals,
            ledgers: Vec::new(),
        }
    }

    /// An empty shard: one come back, else a new one while there are
    /// fewer than [`SHARDS`], else the next to come back.
    fn fresh(&mut self) -> Result<Shard, Stopped> {
        let mut m = match self.back.try_recv() {
            Ok(m) => m,
            Err(TryRecvError::Empty) if self.made < SHARDS => {
                self.made += 1;
                return Ok(Shard::new(self.limits, &Hasher::new()));
            }
            Err(TryRecvError::Empty) => self.back.recv().map_err(|_| Stopped)?,
            Err(TryRecvError::Disconnected) => return Err(Stopped),
        };
        // Added and emptied here, on the reading side: the aggregating
        // half is the busier one where ticks are many.
        self.totals.add(&m.shard, &m.ledger);
        m.shard.recycle();
        self.ledgers.push(m.ledger);
        Ok(m.shard)
    }

    /// The totals, once every shard sent has come back: the other half
    /// ends when this end's sender is dropped, here.
    pub fn finish(self) -> WholeTotals {
        let Handoff {
            out,
            back,
            mut totals,
            ..
        } = self;
        drop(out);
        for m in back {
            totals.add(&m.shard, &m.ledger);
        }
        totals
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
        let ledger = self.ledgers.pop().unwrap_or_default();
        let sealed = Sealed {
            shard,
            tick,
            end_ns,
        };
        self.out
            .send(Message::Tick(sealed, ledger))
            .map_err(|_| Stopped)
    }
}

/// The aggregating half's loop: applies every message until the reading
/// half hangs up, sending each merged shard back.
pub fn aggregate(
    player: &mut Player<'_>,
    messages: Receiver<Message>,
    back: std::sync::mpsc::Sender<Merged>,
) {
    for m in messages {
        match m {
            Message::Iface {
                ifindex,
                name,
                link,
            } => player.iface(ifindex, &name, &link),
            Message::Tick(mut s, mut ledger) => {
                player.close(&mut s.shard, s.tick, s.end_ns, false, &mut ledger);
                // The reading half may have ended: the shard is dropped.
                let _ = back.send(Merged {
                    shard: s.shard,
                    ledger,
                });
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
    use crate::replay::player::OneThread;
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

    fn totals(config: &Config) -> WholeTotals {
        WholeTotals::new(config.traffic.max_hosts, config.traffic.max_pairs)
    }

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
    fn outcome(
        mut p: Player<'static>,
        mut totals: WholeTotals,
        counter: Counter,
        seen: &Seen,
    ) -> String {
        OneThread::new(&mut p, &mut totals).last(counter.finish());
        let (closed, skipped) = (p.ticks_closed, p.ticks_skipped);
        let ticks = p.finish(&mut totals);
        let mut hosts: Vec<String> = totals
            .hosts()
            .map(|(a, t)| format!("{a:?} {t:?}"))
            .collect();
        hosts.sort();
        format!(
            "{ticks} ticks, {closed} closed, {skipped} skipped\n{}\n{}\nuntracked {} {}",
            seen.borrow().join("\n"),
            hosts.join("\n"),
            totals.untracked_host_bytes,
            totals.untracked_pair_bytes
        )
    }

    /// The two halves on two threads close the same ticks with the same
    /// shards as on one: the same alerts, numbered alike, and the same
    /// totals; also where the tables are full, hosts are freed in the empty
    /// ticks closed between two sealed ones and their slots taken again.
    #[test]
    fn two_threads_replay_as_one_does() {
        let small = "[capture]\naggregators = 2\n[traffic]\nmax_hosts = 400\nmax_pairs = 300\n";
        for config in [Config::default(), Config::parse(small, "test").unwrap()] {
            two_threads_replay_as_one_does_with(&config);
        }
    }

    fn two_threads_replay_as_one_does_with(config: &Config) {
        let config = config.clone();
        let one = {
            let seen = Seen::default();
            let mut p = player(&config, &seen);
            let mut t = totals(&config);
            let mut counter = Counter::new(&config);
            feed(&mut counter, &mut OneThread::new(&mut p, &mut t)).unwrap();
            outcome(p, t, counter, &seen)
        };
        let seen = Seen::default();
        let mut p = player(&config, &seen);
        let counter = Counter::new(&config);
        let limits = counter.limits();
        let (counter, made, t) = std::thread::scope(|s| {
            let (out, messages) = mpsc::sync_channel(QUEUED);
            let (back, spares) = mpsc::channel();
            let reading = s.spawn(move || {
                let mut counter = counter;
                let mut down = Handoff::new(out, spares, limits, totals(&config));
                feed(&mut counter, &mut down).unwrap();
                let made = down.made;
                (counter, made, down.finish())
            });
            aggregate(&mut p, messages, back);
            reading.join().unwrap()
        });
        assert!(made <= SHARDS, "{made} shards made");
        let two = outcome(p, t, counter, &seen);
        assert!(one.contains("address_scan"), "no scan alert:\n{one}");
        // The day's gap: the last packet's tick is the 89 996th.
        assert!(one.starts_with("89996 ticks"), "{one}");
        assert_eq!(one, two);
    }

    /// A reading half whose other half has gone stops at the next tick,
    /// instead of waiting for a shard that will not come back.
    #[test]
    fn the_reading_half_stops_when_the_other_half_is_gone() {
        let config = Config::default();
        let mut counter = Counter::new(&config);
        let (out, messages) = mpsc::sync_channel(QUEUED);
        let (back, spares) = mpsc::channel::<Merged>();
        drop((messages, back));
        let mut down = Handoff::new(out, spares, counter.limits(), totals(&config));
        assert_eq!(feed(&mut counter, &mut down), Err(Stopped));
    }
}
