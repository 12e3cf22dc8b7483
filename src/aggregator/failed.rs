//! `[scan] count = "failed"`: a contact counts toward a scan only if it
//! drew no answer — no reply or data from the destination back to the
//! source (for ports: no reply from that port) — in its tick or the next.
//! A refusal (TCP RST, ICMP unreachable, SCTP ABORT) is no answer.
//!
//! Contacts wait one tick for their answer, so in this mode a scan is seen
//! one tick later than counting every initiation.

use hashbrown::HashSet;

use crate::shard::{Contact, Hasher};
use crate::wire::Addr;

/// Contacts waiting for their answer, and the answers seen.
#[derive(Debug)]
pub struct Pending {
    /// (source, destination, tick) of address contacts.
    addr_now: Vec<(Addr, Addr, u64)>,
    addr_prev: Vec<(Addr, Addr, u64)>,
    /// Port contacts and their tick.
    port_now: Vec<(Contact, u64)>,
    port_prev: Vec<(Contact, u64)>,
    /// (answering host, host it answered) pairs.
    answered_now: HashSet<(Addr, Addr), Hasher>,
    answered_prev: HashSet<(Addr, Addr), Hasher>,
    /// Port answers, keyed like the contact they answer, reversed.
    answers_now: HashSet<Contact, Hasher>,
    answers_prev: HashSet<Contact, Hasher>,
    /// Bound on each of the above per tick.
    max: usize,
    /// Contacts that did not fit.
    pub overflow: u64,
}

impl Pending {
    pub fn new(max: usize, hasher: &Hasher) -> Pending {
        Pending {
            addr_now: Vec::new(),
            addr_prev: Vec::new(),
            port_now: Vec::new(),
            port_prev: Vec::new(),
            answered_now: HashSet::with_hasher(hasher.clone()),
            answered_prev: HashSet::with_hasher(hasher.clone()),
            answers_now: HashSet::with_hasher(hasher.clone()),
            answers_prev: HashSet::with_hasher(hasher.clone()),
            max,
            overflow: 0,
        }
    }

    pub fn address_contact(&mut self, src: Addr, dst: Addr, tick: u64) {
        if self.addr_now.len() < self.max {
            self.addr_now.push((src, dst, tick));
        } else {
            self.overflow += 1;
        }
    }

    pub fn port_contact(&mut self, c: Contact, tick: u64) {
        if self.port_now.len() < self.max {
            self.port_now.push((c, tick));
        } else {
            self.overflow += 1;
        }
    }

    /// `from` answered `to` (a reply or data went back).
    pub fn answered(&mut self, from: Addr, to: Addr) {
        if self.answered_now.len() < self.max {
            self.answered_now.insert((from, to));
        }
    }

    /// A reply from `a.from`'s port `a.port` to `a.to`.
    pub fn answer(&mut self, a: Contact) {
        if self.answers_now.len() < self.max {
            self.answers_now.insert(a);
        }
    }

    /// No contact is waiting for its answer.
    pub fn is_idle(&self) -> bool {
        self.addr_now.is_empty()
            && self.addr_prev.is_empty()
            && self.port_now.is_empty()
            && self.port_prev.is_empty()
    }

    /// Ends a tick: hands out the previous tick's contacts that got no
    /// answer in that tick or this one, and moves this tick's along.
    pub fn resolve(
        &mut self,
        mut address_failed: impl FnMut(Addr, Addr, u64),
        mut port_failed: impl FnMut(Contact, u64),
    ) {
        for &(src, dst, tick) in &self.addr_prev {
            let key = (dst, src);
            if !self.answered_prev.contains(&key) && !self.answered_now.contains(&key) {
                address_failed(src, dst, tick);
            }
        }
        for &(c, tick) in &self.port_prev {
            let reply = Contact {
                from: c.to,
                to: c.from,
                proto: c.proto,
                port: c.port,
            };
            if !self.answers_prev.contains(&reply) && !self.answers_now.contains(&reply) {
                port_failed(c, tick);
            }
        }
        std::mem::swap(&mut self.addr_prev, &mut self.addr_now);
        self.addr_now.clear();
        std::mem::swap(&mut self.port_prev, &mut self.port_now);
        self.port_now.clear();
        std::mem::swap(&mut self.answered_prev, &mut self.answered_now);
        self.answered_now.clear();
        std::mem::swap(&mut self.answers_prev, &mut self.answers_now);
        self.answers_now.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> Addr {
        Addr::from_v4([10, 0, 0, n])
    }

    fn run(p: &mut Pending) -> (Vec<(Addr, Addr)>, Vec<u16>) {
        let mut addrs = Vec::new();
        let mut ports = Vec::new();
        p.resolve(|s, d, _| addrs.push((s, d)), |c, _| ports.push(c.port));
        (addrs, ports)
    }

    #[test]
    fn unanswered_contacts_fail_one_tick_later() {
        let mut p = Pending::new(100, &Hasher::new());
        p.address_contact(a(1), a(2), 0);
        p.address_contact(a(1), a(3), 0);
        p.answered(a(3), a(1));
        assert_eq!(run(&mut p).0, vec![], "nothing resolves in its own tick");
        assert_eq!(run(&mut p).0, vec![(a(1), a(2))]);
    }

    #[test]
    fn an_answer_in_the_next_tick_counts() {
        let mut p = Pending::new(100, &Hasher::new());
        p.address_contact(a(1), a(2), 0);
        run(&mut p);
        p.answered(a(2), a(1));
        assert!(run(&mut p).0.is_empty());
    }

    #[test]
    fn ports_need_an_answer_from_that_port() {
        let mut p = Pending::new(100, &Hasher::new());
        for port in [22, 80, 443] {
            p.port_contact(
                Contact {
                    from: a(1),
                    to: a(2),
                    proto: 6,
                    port,
                },
                0,
            );
        }
        // A SYN-ACK from port 80 only; 22 and 443 answered with RST (no
        // answer recorded).
        p.answer(Contact {
            from: a(2),
            to: a(1),
            proto: 6,
            port: 80,
        });
        run(&mut p);
        let (_, mut failed) = run(&mut p);
        failed.sort();
        assert_eq!(failed, vec![22, 443]);
    }

    #[test]
    fn bounded() {
        let mut p = Pending::new(2, &Hasher::new());
        for n in 0..5 {
            p.address_contact(a(1), a(n), 0);
        }
        assert_eq!(p.overflow, 3);
    }
}
