//! An idle tick with a full host table: after a spoofed flood filled the
//! table (65 536 hosts by default, and 1 000 000), ticks without a packet
//! close one after another. Such a tick must cost next to nothing however
//! many hosts are tracked; the ticks where a bucket of the flood's window
//! slides out cost what slides out.
//!
//! The `flooded_tick` group is the tick of a flood that goes on after it
//! filled the table: its sources screened out by the workers, only the
//! victim and one tracked source move, and every tick lists the largest
//! senders again because something moved.
//!
//! Run: `cargo bench --bench idle`. Each measured iteration closes one
//! more idle tick (the snapshot included); criterion reports the mean over
//! them, and the setup prints the slowest tick of the first window.

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use trafficalerted::aggregator::{Aggregator, RuntimeInfo, TickHealth};
use trafficalerted::config::Config;
use trafficalerted::shard::{Hasher, Shard, ShardLimits};
use trafficalerted::wire::{Addr, Role, Summary, proto};

fn config(hosts: usize) -> Config {
    Config::parse(
        &format!("[traffic]\ninterval = \"170s\"\nmax_hosts = {hosts}\nmax_pairs = {hosts}\n"),
        "bench",
    )
    .expect("bench config")
}

/// An empty shard with room for `hosts` hosts.
fn shard(hosts: usize) -> Shard {
    Shard::new(
        ShardLimits {
            max_hosts: hosts + 1,
            max_pairs: hosts + 1,
            max_ports: hosts + 1,
            answers: false,
            rates: 0,
        },
        &Hasher::new(),
    )
}

/// Source `i` of the flood's datagrams to the victim.
fn datagram(i: u32) -> Summary {
    Summary {
        src: Addr::from_v4((0x0b00_0000 + i).to_be_bytes()),
        dst: Addr::from_v4([10, 0, 0, 1]),
        l3_len: 64,
        proto: proto::UDP,
        dst_port: 53,
        has_ports: true,
        role: Role::Initiation,
        ..Summary::default()
    }
}

/// An aggregator whose table is full of `hosts` spoofed sources flooding
/// one victim, as of tick 0.
fn flooded(hosts: usize, partitions: usize) -> Aggregator {
    let mut agg = Aggregator::with_threads(&config(hosts), RuntimeInfo::default(), partitions);
    let mut s = shard(hosts);
    for i in 0..hosts as u32 {
        s.record(&datagram(i));
    }
    agg.merge(&s);
    let _ = agg.end_tick(0, TickHealth::default(), 0);
    agg
}

/// A tick's shard of the flood once its sources are screened: the
/// victim's received bytes, and those of the one source in the table
/// that goes on sending (the screened ones go to the untracked totals).
fn victim_shard(hosts: usize) -> Shard {
    let mut s = shard(hosts);
    s.record(&datagram(0));
    s
}

/// Times ticks of a flooded aggregator one after another, `moved` (if
/// any) merged into each before it closes.
fn bench_ticks(
    g: &mut BenchmarkGroup<'_, WallTime>,
    hosts: usize,
    partitions: usize,
    moved: Option<&Shard>,
) {
    let mut agg = flooded(hosts, partitions);
    let mut tick = 0u64;
    let name = if partitions == 1 {
        format!("{hosts}_hosts")
    } else {
        format!("{hosts}_hosts_{partitions}_partitions")
    };
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                tick += 1;
                if tick > 170 {
                    // Start again with a full table (not timed): the
                    // window of the flood must not have drained.
                    agg = flooded(hosts, partitions);
                    tick = 1;
                }
                let t0 = Instant::now();
                if let Some(s) = moved {
                    agg.merge(s);
                }
                let out = agg.end_tick(tick, TickHealth::default(), tick * 1000);
                total += t0.elapsed();
                std::hint::black_box(out);
            }
            total
        })
    });
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("idle_tick");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    // One partition (the default below 16 cores), and a box's worth of
    // them: a partition's share of an idle tick is small, what it costs to
    // get a thread to run it is not.
    for (hosts, partitions) in [
        (65_536usize, 1usize),
        (1_000_000, 1),
        (65_536, 2),
        (65_536, 8),
    ] {
        let mut agg = flooded(hosts, partitions);
        // The slowest tick of the first window (buckets sliding out
        // included), printed once.
        let mut worst = Duration::ZERO;
        let mut sum = Duration::ZERO;
        for tick in 1..=176u64 {
            let t0 = Instant::now();
            let out = agg.end_tick(tick, TickHealth::default(), tick * 1000);
            let d = t0.elapsed();
            worst = worst.max(d);
            sum += d;
            std::hint::black_box(out);
        }
        eprintln!(
            "idle ticks, {hosts} hosts tracked, {partitions} partition(s): mean {:?}, slowest {worst:?} over the first 176 ticks",
            sum / 176
        );
        bench_ticks(&mut g, hosts, partitions, None);
    }
    g.finish();

    let mut g = c.benchmark_group("flooded_tick");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    for (hosts, partitions) in [(65_536usize, 1usize), (1_000_000, 1), (65_536, 2)] {
        bench_ticks(&mut g, hosts, partitions, Some(&victim_shard(hosts)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
