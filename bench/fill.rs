//! The tick in which a flood of spoofed sources fills the host table: a
//! shard of 200 000 sources the aggregator has never seen, one UDP
//! datagram each to one victim, merged into an empty aggregator on the
//! defaults (65 536 hosts: the first ones taken, the rest refused) and the
//! tick closed (detectors, the victim's alert and its sources, snapshot,
//! the admission published). This is the cost a flood's first tick puts on
//! the aggregator, once per flood, before the workers screen its sources
//! (`src/admission.rs`).
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
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
