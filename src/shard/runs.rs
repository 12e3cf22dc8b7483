//! Rate classes in a shard: each pair's run of packets with the same
//! classes, and the hosts' class rows the runs end in.

use super::*;

impl Shard {
    /// Counts a packet of classes `c` into pair `p`'s run when it repeats
    /// the classes of the pair's previous packet (a pair's first packet
    /// starts one); otherwise ends the run into the hosts' rows and starts
    /// another. The worker writes no row for a pair whose packets share
    /// their classes (a spoofed source's one packet, most flows): its run
    /// is folded into the rows by [`Shard::seal`], on the aggregator's
    /// side of the hand-over.
    #[inline]
    pub(super) fn extend_run(&mut self, p: u32, c: u8, len: u64, fresh: bool) {
        let (_, pc) = &mut self.pair_slots[p as usize];
        if fresh {
            // A new pair, its first packet.
            pc.run_classes = c;
            match u32::try_from(len) {
                Ok(b) if c != 0 => {
                    pc.run = (1, b);
                    self.runs_open = true;
                }
                _ => {
                    if c != 0 {
                        self.end_one(p, c, len);
                    }
                }
            }
            return;
        }
        if pc.run_classes == c && pc.run.0 < u32::MAX {
            if let Some(b) = u32::try_from(len)
                .ok()
                .and_then(|l| pc.run.1.checked_add(l))
            {
                if pc.run.0 == 0 {
                    self.runs_open = true;
                }
                pc.run.0 += 1;
                pc.run.1 = b;
                return;
            }
        }
        self.end_run(p as usize);
        self.pair_slots[p as usize].1.run_classes = c;
        if c != 0 {
            self.end_one(p, c, len);
        }
    }

    /// Counts one packet of pair `p` straight into its hosts' rows.
    #[cold]
    fn end_one(&mut self, p: u32, c: u8, len: u64) {
        let key = self.pair_slots[p as usize].0;
        self.count_classes(pair_src(key), pair_dst(key), c, 1, len);
    }

    /// Moves pair slot `p`'s run into its hosts' class rows.
    fn end_run(&mut self, p: usize) {
        let (key, pc) = &mut self.pair_slots[p];
        let (n, b) = std::mem::take(&mut pc.run);
        if n == 0 || pc.run_classes == 0 {
            return;
        }
        let (c, key) = (pc.run_classes, *key);
        self.count_classes(pair_src(key), pair_dst(key), c, u64::from(n), u64::from(b));
    }

    /// Host `id`'s class row in direction `d` (0 in, 1 out), made (with
    /// the rows before it) if it is not yet.
    #[inline]
    pub(super) fn row(&mut self, d: usize, id: u32) -> &mut DirCounts {
        row_of(&mut self.rates[d], id, self.hosts.len())
    }

    /// Counts into the rows of `src` (out) and `dst` (in), of the
    /// directions counted.
    fn count_classes(&mut self, src: u32, dst: u32, c: u8, n: u64, b: u64) {
        let hosts = self.hosts.len();
        count_rows(&mut self.rates, self.limits.rates, hosts, src, dst, c, n, b);
    }

    /// Brings the hosts' class rows up to date with every pair's run: done
    /// once a shard is taken from its worker (by the aggregator's thread),
    /// before [`Shard::rates_of`] may be read. Cost: one pass over the
    /// pairs, only when some run is open; rows are made only up to the
    /// last host written (a flood's victim has one, its spoofed sources
    /// none toward them). Consecutive runs into one row with the same
    /// classes (the runs of a victim's many sources, of a scanner's many
    /// destinations) are added up before the row is written.
    pub fn seal(&mut self) {
        if !self.runs_open {
            return;
        }
        let hosts = self.hosts.len();
        let mut pending = [Pending::NONE; 2];
        for (key, pc) in &mut self.pair_slots {
            let (n, b) = std::mem::take(&mut pc.run);
            if n == 0 || pc.run_classes == 0 {
                continue;
            }
            let c = pc.run_classes;
            for (d, id) in [(0, pair_dst(*key)), (1, pair_src(*key))] {
                if self.limits.rates & (1 << d) == 0 {
                    continue;
                }
                let p = &mut pending[d];
                if p.id != id || p.classes != c {
                    p.write(&mut self.rates[d], hosts);
                    *p = Pending {
                        id,
                        classes: c,
                        ..Pending::NONE
                    };
                }
                p.n += u64::from(n);
                p.b += u64::from(b);
            }
        }
        for (p, r) in pending.iter().zip(&mut self.rates) {
            p.write(r, hosts);
        }
        self.runs_open = false;
    }

    /// Per class counts of host `i` ([`Shard::hosts`]), zero in a
    /// direction not counted; `None` if no direction is.
    #[inline]
    pub fn rates_of(&self, i: usize) -> Option<TickRates> {
        if self.limits.rates == 0 {
            return None;
        }
        debug_assert!(!self.runs_open, "rates read before Shard::seal");
        let get = |d: usize| self.rates[d].get(i).copied().unwrap_or_default();
        Some(TickRates([get(0), get(1)]))
    }
}

/// Row `id` of `r`, made (with the rows before it, and some after, up to
/// `hosts`) if it is not yet.
#[inline]
fn row_of(r: &mut Vec<DirCounts>, id: u32, hosts: usize) -> &mut DirCounts {
    let id = id as usize;
    if r.len() == id {
        // The next host in order (runs are in the order their pairs came,
        // mostly of new hosts): one row, no bulk zeroing.
        r.push(DirCounts::default());
    } else if r.len() < id {
        grow(r, id, hosts);
    }
    &mut r[id]
}

#[cold]
fn grow(r: &mut Vec<DirCounts>, id: usize, hosts: usize) {
    r.resize((id + 1).max(r.len() * 2).min(hosts), DirCounts::default());
}

/// [`rates::count_n`] into `src`'s out row and `dst`'s in row, of the
/// directions in `dirs`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn count_rows(
    [r_in, r_out]: &mut [Vec<DirCounts>; 2],
    dirs: rates::Dirs,
    hosts: usize,
    src: u32,
    dst: u32,
    c: u8,
    n: u64,
    b: u64,
) {
    match dirs {
        rates::BOTH => {
            rates::count_n2(row_of(r_out, src, hosts), row_of(r_in, dst, hosts), c, n, b)
        }
        rates::OUT => rates::count_n(row_of(r_out, src, hosts), c, n, b),
        rates::IN => rates::count_n(row_of(r_in, dst, hosts), c, n, b),
        _ => {}
    }
}

/// Runs of one host's row and classes in one direction, added up.
#[derive(Clone, Copy)]
struct Pending {
    id: u32,
    classes: u8,
    n: u64,
    b: u64,
}

impl Pending {
    const NONE: Pending = Pending {
        id: u32::MAX,
        classes: 0,
        n: 0,
        b: 0,
    };

    #[inline]
    fn write(&self, r: &mut Vec<DirCounts>, hosts: usize) {
        if self.n != 0 {
            rates::count_n(row_of(r, self.id, hosts), self.classes, self.n, self.b);
        }
    }
}
