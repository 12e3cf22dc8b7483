//! Defaults sized from the machine: workers from the usable cores, ring
//! memory from RAM, with a cap on all rings together.

use std::fmt;

use crate::config::CaptureConfig;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// What the machine offers this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// CPUs this process may run on (its affinity mask).
    pub cpus: Vec<usize>,
    /// Memory: the smaller of RAM and this process's cgroup limit.
    pub memory: u64,
}

impl Machine {
    /// Reads the affinity mask, /proc/meminfo and the cgroup v2 limit.
    pub fn detect() -> Machine {
        Machine {
            cpus: usable_cpus(),
            memory: memory(),
        }
    }
}

fn usable_cpus() -> Vec<usize> {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

fn memory() -> u64 {
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_meminfo(&t))
        .unwrap_or(GIB);
    match cgroup_limit() {
        Some(limit) => ram.min(limit),
        None => ram,
    }
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn cgroup_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let max = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.max")).ok()?;
    max.trim().parse().ok()
}

/// The sizes the capture runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizing {
    pub workers: usize,
    /// CPU each worker is pinned to.
    pub cpus: Vec<usize>,
    /// Workers asked for but more than the cores, if any.
    pub workers_reduced_from: Option<usize>,
    pub block_size: u32,
    pub block_count: u32,
    pub ring_memory_max: u64,
    pub memory: u64,
    /// Aggregator threads (partitions of the hosts).
    pub aggregators: usize,
}

/// Cores per aggregator thread when `capture.aggregators = "auto"`.
const CORES_PER_AGGREGATOR: usize = 8;

impl Sizing {
    /// Ring memory of one socket.
    pub fn ring_bytes(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.block_count)
    }

    /// The rings of one more interface, `n` sockets, within `room` bytes of
    /// the cap: as sized if they fit, else fewer blocks; blocks sized for
    /// the machine (`auto`) halve, down to 1 MiB, before their count drops
    /// under four. A count under two does not fit at all.
    pub fn fit(&self, room: u64, n: u64, auto: bool) -> RingFit {
        let n = n.max(1);
        let mut size = u64::from(self.block_size);
        if size * u64::from(self.block_count) * n <= room {
            return RingFit {
                block_size: self.block_size,
                block_count: self.block_count,
                reduced: false,
            };
        }
        let count = |size: u64| (room / n / size).min(u64::from(self.block_count)) as u32;
        while auto && count(size) < self.block_count.min(4) && size > MIB {
            size /= 2;
        }
        RingFit {
            block_size: size as u32,
            block_count: count(size),
            reduced: true,
        }
    }
}

/// What [`Sizing::fit`] gives an interface's rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFit {
    pub block_size: u32,
    pub block_count: u32,
    /// Smaller than sized, to stay under the cap.
    pub reduced: bool,
}

/// Applies the config to the machine.
pub fn size(cfg: &CaptureConfig, m: &Machine) -> Sizing {
    let cores = m.cpus.len().max(1);
    let aggregators = cfg
        .aggregators
        .unwrap_or(cores / CORES_PER_AGGREGATOR)
        .max(1);
    // "auto" leaves the aggregator threads cores of their own (at most
    // half the cores): a worker pinned to every core shares one with the
    // tick's work and with the kernel's receive work, and on a 2-core box
    // under a spoofed flood that worker cost twice the other
    // (bench/RESULTS.md).
    let kept = aggregators.min(cores / 2);
    let asked = cfg.workers.unwrap_or(cores - kept);
    let workers = asked.clamp(1, cores);
    let cpus = if !cfg.pin_workers {
        Vec::new()
    } else if m.cpus.is_empty() {
        vec![0; workers]
    } else {
        m.cpus.iter().copied().take(workers).collect()
    };
    let per_socket = (m.memory / 1024).clamp(4 * MIB, 64 * MIB);
    let block_size = cfg
        .block_size
        .unwrap_or_else(|| auto_block_size(per_socket))
        .min(u64::from(u32::MAX / 2 + 1)) as u32;
    let block_count = cfg.block_count.unwrap_or_else(|| {
        (per_socket / u64::from(block_size)).clamp(2, u64::from(u32::MAX)) as u32
    });
    let ring_memory_max = cfg
        .ring_memory_max
        .unwrap_or_else(|| (m.memory / 32).clamp(64 * MIB, 2 * GIB));
    Sizing {
        workers,
        cpus,
        workers_reduced_from: (asked > cores).then_some(asked),
        block_size,
        block_count,
        ring_memory_max,
        memory: m.memory,
        aggregators,
    }
}

/// The block size of a ring of `per_socket` bytes: as large as leaves the
/// ring four blocks at least, between 1 and 4 MiB. A worker wakes once per
/// block when it keeps up, and on a box whose cores idle between blocks the
/// wake-ups were a fifth of a worker's CPU under a flood (bench/RESULTS.md);
/// four blocks leave the kernel three to fill while one is read.
fn auto_block_size(per_socket: u64) -> u64 {
    let quarter = per_socket / 4;
    let pow2 = if quarter == 0 {
        1
    } else {
        1 << quarter.ilog2()
    };
    pow2.clamp(MIB, 4 * MIB)
}

/// Bytes in a human unit, binary.
#[derive(Debug, Clone, Copy)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= GIB && b % (GIB / 10) == 0 || b >= 10 * GIB {
            write!(f, "{:.1}GiB", b as f64 / GIB as f64)
        } else if b >= MIB {
            write!(f, "{}MiB", b / MIB)
        } else if b >= 1024 {
            write!(f, "{}KiB", b / 1024)
        } else {
            write!(f, "{b}B")
        }
    }
}

impl fmt::Display for Sizing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} worker{} {}; {} aggregator thread{}; rings of {} blocks × {} = {} per socket (one socket per interface and worker); all rings capped at {}; memory {}",
            self.workers,
            if self.workers == 1 { "" } else { "s" },
            if self.cpus.is_empty() {
                "unpinned (capture.pin_workers = false)".to_string()
            } else {
                format!(
                    "pinned to CPU {}",
                    self.cpus
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            self.aggregators,
            if self.aggregators == 1 { "" } else { "s" },
            self.block_count,
            Bytes(u64::from(self.block_size)),
            Bytes(self.ring_bytes()),
            Bytes(self.ring_memory_max),
            Bytes(self.memory),
        )?;
        if let Some(asked) = self.workers_reduced_from {
            write!(
                f,
                " ({asked} workers asked for, reduced to the usable cores)"
            )?;
        }
        Ok(())
    }
}

/// The spare tables each worker shard keeps for a flood of new sources
/// ([`crate::shard::Shard::keep_spares`]): (hosts, pairs), or (0, 0) when
/// they would take more than a sixteenth of `memory` (then a flood's first
/// tick grows the tables as it goes, as before). A flood of spoofed sources
/// brings the workers together as many new hosts as the host table has
/// room for, one pair each, spread over them by the fanout: each worker's
/// share with a quarter more for the spread.
pub fn flood_spares(
    limits: &crate::shard::ShardLimits,
    workers: usize,
    memory: u64,
) -> (usize, usize) {
    let max = limits.max_hosts;
    let share = (max + max / 4).div_ceil(workers.max(1));
    let (hosts, pairs) = (share.min(max), share.min(limits.max_pairs));
    if hosts.min(pairs) < crate::shard::SPARE_MIN {
        return (0, 0);
    }
    // Two shards per worker.
    let bytes = 2 * workers as u64 * crate::shard::Shard::spare_bytes(hosts, pairs) as u64;
    if bytes > memory / 16 {
        log::warn!(
            "workers: spare tables for a flood ({}) would take more than a sixteenth of the memory ({}): a flood's first tick grows the tables instead",
            Bytes(bytes),
            Bytes(memory)
        );
        return (0, 0);
    }
    log::info!(
        "workers: {} kept for a flood's new sources (room for {hosts} hosts and {pairs} pairs per shard)",
        Bytes(bytes)
    );
    (hosts, pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn machine(cpus: usize, mem_gib: u64) -> Machine {
        Machine {
            cpus: (0..cpus).collect(),
            memory: mem_gib * GIB,
        }
    }

    #[test]
    fn flood_spares_share_the_room_and_stay_within_the_memory() {
        use crate::shard::{Shard, ShardLimits};
        let limits = ShardLimits {
            max_hosts: 65_536,
            max_pairs: 262_144,
            max_ports: 262_144,
            answers: false,
            rates: 0,
        };
        // Each worker's share of a flood's new hosts, a quarter more.
        assert_eq!(flood_spares(&limits, 1, 24 * GIB), (65_536, 81_920));
        assert_eq!(flood_spares(&limits, 2, 24 * GIB), (40_960, 40_960));
        assert_eq!(flood_spares(&limits, 16, 24 * GIB), (5_120, 5_120));
        // Shares near a shard's first tables: none.
        assert_eq!(flood_spares(&limits, 64, 24 * GIB), (0, 0));
        // About the same memory in all whatever the workers: ~25 MB here.
        let all = |w: usize| {
            let (h, p) = flood_spares(&limits, w, 24 * GIB);
            2 * w * Shard::spare_bytes(h, p)
        };
        assert!((20 << 20..30 << 20).contains(&all(2)), "{}", all(2));
        assert!(all(16) <= all(2) + (all(2) >> 1), "{} {}", all(16), all(2));
        // None where they would take over a sixteenth of the memory.
        assert_eq!(flood_spares(&limits, 2, 256 * MIB), (0, 0));
        assert_ne!(flood_spares(&limits, 2, 512 * MIB), (0, 0));
    }

    #[test]
    fn defaults_follow_the_machine() {
        let c = Config::default().capture;
        let s = size(&c, &machine(2, 24));
        // One core is the aggregator's.
        assert_eq!(s.workers, 1);
        assert_eq!(s.cpus, vec![0]);
        assert!(
            s.to_string()
                .starts_with("1 worker pinned to CPU 0; 1 aggregator thread;"),
            "{s}"
        );
        let unpinned = CaptureConfig {
            pin_workers: false,
            ..c.clone()
        };
        let s = size(&unpinned, &machine(2, 24));
        assert_eq!((s.workers, s.cpus.len()), (1, 0), "none pinned");
        assert!(s.to_string().starts_with("1 worker unpinned"), "{s}");
        assert_eq!((s.block_size, s.block_count), (4 << 20, 6));
        assert_eq!(s.ring_memory_max, 768 * MIB);

        // Four blocks at least, 1 MiB at least, 4 MiB at most.
        for (gib, block_mib, count) in [(1, 1, 4), (4, 1, 4), (8, 2, 4), (12, 2, 6), (16, 4, 4)] {
            let s = size(&c, &machine(2, gib));
            assert_eq!(
                (s.block_size, s.block_count),
                (block_mib << 20, count),
                "{gib} GiB"
            );
        }
        // A machine whose memory is not a power of two (23.5 GiB here).
        let odd = size(
            &c,
            &Machine {
                cpus: vec![0, 1],
                memory: 47 * GIB / 2,
            },
        );
        assert_eq!((odd.block_size, odd.block_count), (4 << 20, 5));

        let small = size(&c, &machine(1, 1));
        assert_eq!(small.block_count, 4);
        assert_eq!(small.ring_memory_max, 64 * MIB);

        let big = size(&c, &machine(64, 512));
        assert_eq!((big.workers, big.aggregators), (56, 8));
        assert_eq!(big.cpus, (0..56).collect::<Vec<_>>());
        assert_eq!(
            (big.block_size, big.block_count),
            (4 << 20, 16),
            "per-socket rings stop at 64MiB"
        );
        assert_eq!(
            big.ring_memory_max,
            2 * GIB,
            "total ring memory stops at 2GiB"
        );
    }

    #[test]
    fn rings_over_the_cap_shrink_their_blocks_before_their_count() {
        let c = Config::default().capture;
        let s = size(&c, &machine(2, 24));
        let ring = s.ring_bytes() * 2;
        let fit = |room, auto| {
            let f = s.fit(room, 2, auto);
            (f.block_size >> 20, f.block_count, f.reduced)
        };
        assert_eq!(fit(ring, true), (4, 6, false));
        // Room for 5 blocks of 4 MiB a socket: fewer blocks, same size.
        assert_eq!(fit(40 * MIB, true), (4, 5, true));
        // Room for 3: blocks halve while fewer than four fit.
        assert_eq!(fit(24 * MIB, true), (2, 6, true));
        assert_eq!(fit(10 * MIB, true), (1, 5, true));
        // A size the config set stays; too little room gives a count under 2.
        assert_eq!(fit(24 * MIB, false), (4, 3, true));
        assert_eq!(fit(4 * MIB, false), (4, 0, true));
        assert_eq!(fit(2 * MIB, true), (1, 1, true));
    }

    #[test]
    fn auto_workers_leave_the_aggregator_threads_their_cores() {
        let c = Config::default().capture;
        let auto = |cores: usize, aggregators: Option<usize>| {
            let c = CaptureConfig {
                aggregators,
                ..c.clone()
            };
            let s = size(&c, &machine(cores, 8));
            (s.workers, s.aggregators)
        };
        // A single core is shared: the worker is all there is.
        assert_eq!(auto(1, None), (1, 1));
        assert_eq!(auto(2, None), (1, 1));
        assert_eq!(auto(3, None), (2, 1));
        assert_eq!(auto(8, None), (7, 1));
        assert_eq!(auto(16, None), (14, 2));
        // Aggregator threads asked for keep at most half the cores.
        assert_eq!(auto(4, Some(8)), (2, 8));
        assert_eq!(auto(4, Some(1)), (3, 1));
        // Workers asked for are taken up to the cores, as before.
        let mut two = c.clone();
        two.workers = Some(2);
        let s = size(&two, &machine(2, 8));
        assert_eq!((s.workers, s.cpus.clone()), (2, vec![0, 1]));
        assert_eq!(s.workers_reduced_from, None);
    }

    #[test]
    fn workers_at_most_the_cores() {
        let mut c = Config::default().capture;
        c.workers = Some(8);
        let s = size(&c, &machine(2, 8));
        assert_eq!(s.workers, 2);
        assert_eq!(s.workers_reduced_from, Some(8));
        assert!(s.to_string().contains("reduced"));
    }

    #[test]
    fn explicit_geometry_wins() {
        let mut c = Config::default().capture;
        c.block_size = Some(1 << 16);
        c.block_count = Some(3);
        c.ring_memory_max = Some(10 * MIB);
        let s = size(&c, &machine(4, 8));
        assert_eq!(
            (s.block_size, s.block_count, s.ring_bytes()),
            (1 << 16, 3, 3 << 16)
        );
        assert_eq!(s.ring_memory_max, 10 * MIB);
    }

    #[test]
    fn meminfo_parsing() {
        assert_eq!(
            parse_meminfo("MemTotal:       24575128 kB\nMemFree: 1 kB\n"),
            Some(24575128 * 1024)
        );
        assert_eq!(parse_meminfo("nothing"), None);
    }

    #[test]
    fn detect_sees_this_machine() {
        let m = Machine::detect();
        assert!(!m.cpus.is_empty());
        assert!(m.memory > 64 * MIB);
    }
}
