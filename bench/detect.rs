//! The per-tick work of the aggregator with 1 000 000 tracked hosts, every
//! one of them active: the detector pass (all four detectors, the alert
//! lifecycle), merging a shard that holds them all, and closing the tick
//! (detectors, snapshot, due work). With the hosts in one partition and in
//! two (aggregator threads), to compare. Also prints the memory each host
//! costs.
//!
//! Run: `cargo bench --bench detect`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use trafficalerted::aggregator::{Aggregator, RuntimeInfo, TickHealth};
use trafficalerted::alert::{Now, Situation};
use trafficalerted::config::Config;
use trafficalerted::shard::{Hasher, Shard, ShardLimits};
use trafficalerted::wire::{Addr, Role, Summary, proto};

const HOSTS: u32 = 1_000_000;

fn config() -> Config {
    Config::parse(
        "[traffic]\nmax_hosts = 1100000\nmax_pairs = 1100000\n",
        "bench",
    )
    .expect("bench config")
}

/// One shard in which every one of `HOSTS` sources sends to one of 1 000
/// servers, a tenth of them initiating contact.
fn full_shard(tick: u64) -> Shard {
    let mut s = Shard::new(
        ShardLimits {
            max_hosts: HOSTS as usize + 2000,
            max_pairs: HOSTS as usize + 2000,
            max_ports: HOSTS as usize + 2000,
            answers: false,
            rates: 0,
        },
        &Hasher::new(),
    );
    s.first_tick = tick;
    s.last_tick = tick;
    for i in 0..HOSTS {
        let p = Summary {
            src: Addr::from_v4((0x0a00_0000 + i).to_be_bytes()),
            dst: Addr::from_v4((0xc000_0200 + i % 1000).to_be_bytes()),
            l3_len: 1000,
            proto: proto::TCP,
            dst_port: 443,
            has_ports: true,
            role: if i % 10 == 0 {
                Role::Initiation
            } else {
                Role::Other
            },
            ..Summary::default()
        };
        s.record(&p);
    }
    s
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    for threads in [1usize, 2] {
        let mut agg = Aggregator::with_threads(&cfg, RuntimeInfo::default(), threads);
        let shard = full_shard(0);
        agg.merge(&shard);
        let _ = agg.end_tick(0, TickHealth::default(), 0);
        eprintln!(
            "detect bench, {threads} aggregator thread(s): {} hosts tracked, {} bytes of host table, {} bytes per host",
            agg.host_count(),
            agg.host_table_bytes(),
            agg.host_table_bytes() / agg.host_count().max(1)
        );

        let mut g = c.benchmark_group(format!("tick_1M_hosts_{threads}_threads"));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(20));
        let mut tick = 1;
        g.bench_function("detector_pass", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    agg.touch_all();
                    // The same tick every time: every window stays full.
                    let tick = 1;
                    let s = Situation {
                        now: Now {
                            tick,
                            unix_ms: tick * 1000,
                        },
                        drop_ratio: 0.0,
                        degraded_ratio: 0.01,
                    };
                    let t0 = Instant::now();
                    let out = agg.detect(&s);
                    total += t0.elapsed();
                    std::hint::black_box(out);
                }
                total
            })
        });
        let mut shard = full_shard(0);
        g.bench_function("merge_shard", |b| b.iter(|| agg.merge(&shard)));
        g.bench_function("end_tick", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Every host moves every tick (merge not timed here).
                    tick += 1;
                    shard.last_tick = tick;
                    agg.merge(&shard);
                    let t0 = Instant::now();
                    let out = agg.end_tick(tick, TickHealth::default(), tick * 1000);
                    total += t0.elapsed();
                    std::hint::black_box(out);
                }
                total
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
