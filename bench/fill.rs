//! The tick in which a flood of spoofed sources fills the host table: a
//! shard of 200 000 sources the aggregator has never seen, one UDP
//! datagram each to one victim, merged into an empty aggregator on the
//! defaults (65 536 hosts: the first ones taken, the rest refused) and the
//! tick closed (detectors, the victim's alert and its sources, snapshot,
//! the admission published). This is the cost a flood's first tick puts on
//! the aggregator, once per flood, before the workers screen its sources
//! (`src/admission.rs`).
//!
//! The same with the host table taken at start, as the live daemon does.
//!
//! And the flood's next tick, the sources screened and the victim alone
//! in the shard: the listed hosts' views are kept, not built again.
//!
//! Run: `cargo bench --bench fill`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use trafficalerted::aggregator::{Aggregator, RuntimeInfo, TickHealth};
use trafficalerted::alert::AlertKind;
use trafficalerted::config::Config;
use trafficalerted::shard::{Hasher, Shard, ShardLimits};
use trafficalerted::wire::{Addr, Role, Summary, proto};

const SOURCES: u32 = 200_000;

fn flood_shard() -> Shard {
    let mut s = Shard::new(
        ShardLimits {
            max_hosts: SOURCES as usize + 1,
            max_pairs: SOURCES as usize,
            max_ports: SOURCES as usize,
            answers: false,
            rates: 0,
        },
        &Hasher::new(),
    );
    s.first_tick = 1;
    s.last_tick = 1;
    // A fixed odd multiplier spreads the sources over the address space,
    // as a random generator's would be.
    for i in 0..SOURCES {
        let p = Summary {
            src: Addr::from_v4(i.wrapping_mul(0x9e37_79b1).to_be_bytes()),
            dst: Addr::from_v4([10, 2, 0, 2]),
            l3_len: 50,
            proto: proto::UDP,
            src_port: 1024 + (i % 60_000) as u16,
            dst_port: 9,
            has_ports: true,
            role: Role::Initiation,
            ..Summary::default()
        };
        s.record(&p);
    }
    s
}

fn bench(c: &mut Criterion) {
    // The victim receives 10 MB in the tick: its inbound alert opens there,
    // with its sources gathered, as it does live.
    let cfg = Config::parse("[inbound]\nbyte_limit = \"5M\"\n", "bench").expect("bench config");
    let shard = flood_shard();
    let mut g = c.benchmark_group("flood_fills_the_table");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(15));
    g.bench_function("first_tick_200k_new_sources", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut agg = Aggregator::new(&cfg, RuntimeInfo::default());
                let t0 = Instant::now();
                agg.merge(&shard);
                let out = agg.end_tick(1, TickHealth::default(), 1000);
                total += t0.elapsed();
                assert_eq!(agg.host_count(), 65_536);
                assert!(
                    out.1.iter().any(|e| e.alert.kind == AlertKind::Inbound),
                    "the victim's alert opened"
                );
                std::hint::black_box(out);
                // Dropping a full table is not the tick's work.
                drop(agg);
            }
            total
        })
    });
    // The same with the host table taken at start, as the daemon does
    // (the live case: what is left of the tick's fresh memory is the
    // pairs, the views and whatever else a first flood grows).
    g.bench_function("first_tick_table_taken_at_start", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut agg = Aggregator::new(&cfg, RuntimeInfo::default());
                assert!(agg.prefault_within(1 << 34) > 0, "taken");
                let t0 = Instant::now();
                agg.merge(&shard);
                let out = agg.end_tick(1, TickHealth::default(), 1000);
                total += t0.elapsed();
                assert_eq!(agg.host_count(), 65_536);
                std::hint::black_box(out);
                drop(agg);
            }
            total
        })
    });
    // The flood's next tick: its sources are screened by the workers, so
    // the shard holds the victim alone; the 10 000 listed hosts stay as
    // they were, and only the victim's view is built again.
    let victim = victim_shard(2);
    g.bench_function("next_tick_victim_alone", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut agg = Aggregator::new(&cfg, RuntimeInfo::default());
                agg.merge(&shard);
                std::hint::black_box(agg.end_tick(1, TickHealth::default(), 1000));
                let t0 = Instant::now();
                agg.merge(&victim);
                let out = agg.end_tick(2, TickHealth::default(), 2000);
                total += t0.elapsed();
                assert_eq!(out.0.hosts.len(), 10_000, "10 000 hosts listed");
                std::hint::black_box(out);
                drop(agg);
            }
            total
        })
    });
    g.finish();
}

/// The victim's traffic in tick `t` once the flood's sources are screened:
/// its bytes received, from sources the shard does not keep.
fn victim_shard(t: u64) -> Shard {
    let mut s = Shard::new(
        ShardLimits {
            max_hosts: 16,
            max_pairs: 16,
            max_ports: 16,
            answers: false,
            rates: 0,
        },
        &Hasher::new(),
    );
    s.first_tick = t;
    s.last_tick = t;
    // One packet from the victim, so that it is in the shard: the
    // screened sources' bytes go to the untracked totals.
    s.record(&Summary {
        src: Addr::from_v4([10, 2, 0, 2]),
        dst: Addr::from_v4([10, 2, 0, 1]),
        l3_len: 50,
        proto: proto::UDP,
        src_port: 9,
        dst_port: 1024,
        has_ports: true,
        role: Role::Reply,
        ..Summary::default()
    });
    s
}

criterion_group!(benches, bench);
criterion_main!(benches);
