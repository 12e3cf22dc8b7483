//! Parse + shard update on synthetic frames in memory: the per-packet work
//! of a capture worker (its [`Counter`] pipeline), without the ring.
//!
//! Populations, each a pass over one million 64-byte Ethernet frames
//! (UDP and TCP SYN, IPv4, a tenth IPv6):
//! - `1000_hosts`: 1 000 hosts talking to 16 peers each;
//! - `1M_sources`: one million random source addresses (a spoofed flood)
//!   toward 1 000 servers, against the default table bounds, so most of
//!   them end in the untracked total as they would live;
//! - `1M_sources_screened`: a spoofed flood toward one victim once the
//!   aggregator's host table is full: the worker screens each source
//!   against the admission filter of a full table (65 536 hosts), as it
//!   does live in a flood's steady state;
//! - `1M_sources_filling`: the same flood in the tick it fills the table:
//!   the admission leaves room for 1 000 new hosts, which the workers
//!   take (in the first pass: the count of hosts taken is the admission's,
//!   as live), and each new source after them is looked up in the shard
//!   and the filter and left out.
//!
//! Each also with rate classes counted toward hosts (`/rates_in`: what a
//! `[rates.in]` limit turns on) and both ways (`/rates_both`), for the
//! cost of that; and both ways with the shard then sealed
//! (`/rates_both_sealed`: the pairs' runs folded into the hosts' rows,
//! which the aggregator's thread does once it takes the shard), for what
//! the classes cost in all.
//!
//! Run: `cargo bench --bench parse_shard`. Throughput is in packets (the
//! criterion "elements"); one worker is one core.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use trafficalerted::admission::{Admission, Filter, PartAdmission};
use trafficalerted::config::Config;
use trafficalerted::counters::{Counter, IfaceDelta};
use trafficalerted::flows::UdpFlows;
use trafficalerted::shard::{Hasher, Shard, ShardLimits};
use trafficalerted::wire::{Addr, Decap, LinkType, Meta, parse_into};

const FRAMES: usize = 1_000_000;
const FRAME_LEN: usize = 64;

fn v4_frame(src: u32, dst: u32, tcp: bool, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let proto = if tcp { 6 } else { 17 };
    let l4_len = if tcp { 20 } else { 8 + 18 };
    let total = 20 + l4_len;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        proto,
        0,
        0,
    ]);
    f.extend_from_slice(&src.to_be_bytes());
    f.extend_from_slice(&dst.to_be_bytes());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    if tcp {
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&[0, 26, 0, 0]);
    }
    f.resize(FRAME_LEN, 0);
    f
}

fn v6_frame(src: u32, dst: u32, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[12..].copy_from_slice(&src.to_be_bytes());
    f.extend_from_slice(&a);
    a[12..].copy_from_slice(&dst.to_be_bytes());
    f.extend_from_slice(&a);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 8, 0, 0]);
    f
}

/// One contiguous buffer of frames, as a ring block holds them.
struct Frames {
    bytes: Vec<u8>,
    offsets: Vec<(u32, u16)>,
}

fn build(mut pick: impl FnMut(usize) -> (u32, u32)) -> Frames {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut bytes = Vec::with_capacity(FRAMES * 80);
    let mut offsets = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        let (src, dst) = pick(i);
        let sport = rng.random_range(1024..65535);
        let dport = [22, 53, 80, 443, 8080][i % 5];
        let f = if i % 10 == 9 {
            v6_frame(src, dst, sport, dport)
        } else {
            v4_frame(src, dst, i % 2 == 0, sport, dport)
        };
        offsets.push((bytes.len() as u32, f.len() as u16));
        bytes.extend_from_slice(&f);
    }
    Frames { bytes, offsets }
}

/// The worker's path: parse, then count [`AHEAD`] frames later.
fn run(frames: &Frames, shard: &mut Shard, iface: &mut IfaceDelta, counter: &mut Counter) {
    shard.clear();
    shard.begin_tick(0);
    counter.flows.rotate();
    for &(off, len) in &frames.offsets {
        let data = &frames.bytes[off as usize..off as usize + len as usize];
        let meta = Meta {
            wire_len: u32::from(len),
            ..Meta::default()
        };
        counter.push_with(
            |s| parse_into(LinkType::Ethernet, data, meta, &Decap::NONE, s),
            iface,
            shard,
        );
    }
    counter.flush(iface, shard);
}

fn limits(rates: u8) -> ShardLimits {
    let c = Config::default();
    ShardLimits {
        max_hosts: c.traffic.max_hosts,
        max_pairs: c.traffic.max_pairs,
        max_ports: c.traffic.max_pairs,
        answers: false,
        rates,
    }
}

fn bench(cr: &mut Criterion) {
    let hosts_1000 = build(|i| {
        let src = (i * 7919) % 1000;
        let dst = (src * 7 + (i / 1000) % 16) % 1000;
        (0x0a00_0000 + src as u32, 0x0a00_0000 + dst as u32)
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let random_sources = build(|i| (rng.random::<u32>() | 1, 0xc000_0200 + (i % 1000) as u32));

    let mut rng = rand::rngs::StdRng::seed_from_u64(43);
    let flood = build(|_| (rng.random::<u32>() | 1, 0x0a02_0002));
    // What a full table at the default bounds still takes: its hosts,
    // none of them the flood's.
    let c = Config::default();
    let tracked = c.traffic.max_hosts;
    let filter = Filter::with_capacity(tracked);
    filter.insert(Addr::from_v4([10, 2, 0, 2]));
    for _ in 0..tracked - 1_000 {
        filter.insert(Addr::from_v4(rng.random::<u32>().to_be_bytes()));
    }
    let filter = Arc::new(filter);
    let admit = |room: u64| {
        Arc::new(Admission::new(vec![PartAdmission {
            through: u64::MAX,
            room,
            filter: filter.clone(),
        }]))
    };
    let (full, filling) = (admit(0), admit(1_000));

    let mut g = cr.benchmark_group("parse_shard");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.sample_size(20);
    let hasher = Hasher::new();
    let populations = [
        ("1000_hosts", &hosts_1000, None),
        ("1M_sources", &random_sources, None),
        ("1M_sources_screened", &flood, Some(full)),
        ("1M_sources_filling", &flood, Some(filling)),
    ];
    use trafficalerted::rates::{BOTH, IN};
    for (name, frames, admission, rates, seal) in populations.into_iter().flat_map(|(n, f, a)| {
        [
            (n.to_string(), f, a.clone(), 0, false),
            (format!("{n}/rates_in"), f, a.clone(), IN, false),
            (format!("{n}/rates_both"), f, a.clone(), BOTH, false),
            (format!("{n}/rates_both_sealed"), f, a, BOTH, true),
        ]
    }) {
        let mut shard = Shard::new(limits(rates), &hasher);
        shard.set_admission(admission);
        let mut iface = IfaceDelta::new(1);
        let mut counter = Counter::new(UdpFlows::new(trafficalerted::flows::SLOTS));
        g.bench_function(&name, |b| {
            b.iter_batched(
                || (),
                |_| {
                    run(frames, &mut shard, &mut iface, &mut counter);
                    if seal {
                        shard.seal();
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
