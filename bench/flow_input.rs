//! Flow input: records per second one core decodes, scales and counts
//! into its shard — the flow-input thread's whole work per datagram but
//! the socket read. NetFlow v5 (30 records a datagram), IPFIX with its
//! template known (30 records), and sFlow v5 (one sampled packet header
//! per datagram, parsed like a frame). 1 000 sources toward 100
//! destinations, as a router's flows would be; and IPFIX records of a
//! spoofed flood, each from a new source. And an exporter's hostile
//! pattern: thousands of empty data sets of templates it has not sent
//! (held), then those templates (each releasing its held set).
//!
//! Run: `cargo bench --bench flow_input`. Throughput is in records.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::net::SocketAddr;
use trafficalerted::config::Config;
use trafficalerted::flowin::build::{data_body, ipfix, nf5, set, sflow, template_body, udp_frame};
use trafficalerted::flowin::thread::State;
use trafficalerted::shard::{Hasher, Shard, ShardLimits};

const DATAGRAMS: usize = 1000;

fn shard() -> Shard {
    let c = Config::default();
    Shard::new(
        ShardLimits {
            max_hosts: c.traffic.max_hosts,
            max_pairs: c.traffic.max_pairs,
            max_ports: c.traffic.max_pairs,
            answers: false,
            rates: 0,
        },
        &Hasher::new(),
    )
}

fn addr(i: usize) -> ([u8; 4], [u8; 4]) {
    let s = (i % 1000) as u16;
    let d = (i * 7 % 100) as u8;
    ([10, 1, (s >> 8) as u8, s as u8], [10, 2, 0, d])
}

fn bench(cr: &mut Criterion) {
    let from: SocketAddr = "192.0.2.1:2055".parse().unwrap();
    let v5: Vec<Vec<u8>> = (0..DATAGRAMS)
        .map(|n| {
            let recs: Vec<_> = (0..30)
                .map(|k| {
                    let (s, d) = addr(n * 30 + k);
                    (s, d, 17, 5000, 53, 0, 10, 7000)
                })
                .collect();
            nf5(&recs, 0)
        })
        .collect();
    let fix: Vec<Vec<u8>> = (0..DATAGRAMS)
        .map(|n| {
            let body: Vec<u8> = (0..30)
                .flat_map(|k| {
                    let (s, d) = addr(n * 30 + k);
                    data_body(s, d, 10, 7000)
                })
                .collect();
            ipfix(&[set(256, &body)])
        })
        .collect();
    let sf: Vec<Vec<u8>> = (0..DATAGRAMS * 30)
        .map(|n| {
            let (s, d) = addr(n);
            sflow(&udp_frame(s, d, 700, 128), 1000)
        })
        .collect();
    // The hard case: a spoofed flood seen through IPFIX, every record from
    // a source never seen before, all toward one victim (a new host and a
    // new pair per record; the default tables hold the 30 000).
    let spoofed: Vec<Vec<u8>> = (0..DATAGRAMS)
        .map(|n| {
            let body: Vec<u8> = (0..30u32)
                .flat_map(|k| {
                    let x = ((n as u32) * 30 + k).wrapping_mul(0x9e37_79b9);
                    data_body(x.to_be_bytes(), [10, 2, 0, 2], 1, 1400)
                })
                .collect();
            ipfix(&[set(256, &body)])
        })
        .collect();
    let mut g = cr.benchmark_group("flow_input");
    g.sample_size(20);
    let template = ipfix(&[set(2, &template_body())]);
    for (name, datagrams) in [
        ("netflow5", &v5),
        ("ipfix", &fix),
        ("sflow5", &sf),
        ("ipfix_spoofed", &spoofed),
    ] {
        g.throughput(Throughput::Elements(30 * DATAGRAMS as u64));
        let mut state = State::new(Config::default().flow_input);
        let mut s = shard();
        state.datagram(from, &template, &mut s, 0);
        g.bench_function(name, |b| {
            b.iter(|| {
                s.clear();
                for d in datagrams {
                    state.datagram(from, d, &mut s, 0);
                }
                s.seal();
            })
        });
        let r = state.report();
        assert!(
            r.exporters[0].dropped.is_empty(),
            "{:?}",
            r.exporters[0].dropped
        );
    }
    g.finish();
    held(cr, from);
}

/// 15 000 empty data sets (a set header each) of as many templates not
/// sent yet, held (under a `held_bytes` of 16 MB, which holds them all);
/// then 4 000 of those templates, 1 000 a datagram, each releasing its one
/// held set. Each iteration starts from a fresh state. Throughput is in
/// templates.
fn held(cr: &mut Criterion, from: SocketAddr) {
    const HELD: u16 = 15_000;
    const RELEASED: u16 = 4_000;
    let sets: Vec<Vec<u8>> = (0..HELD).map(|k| set(256 + k, &[])).collect();
    let early = ipfix(&sets);
    let templates: Vec<Vec<u8>> = (0..RELEASED)
        .collect::<Vec<u16>>()
        .chunks(1000)
        .map(|ids| {
            let body: Vec<u8> = ids
                .iter()
                .flat_map(|&k| {
                    let mut t = template_body();
                    t[..2].copy_from_slice(&(256 + k).to_be_bytes());
                    t
                })
                .collect();
            ipfix(&[set(2, &body)])
        })
        .collect();
    let mut cfg = Config::default().flow_input;
    cfg.held_bytes = 16_000_000;
    let mut g = cr.benchmark_group("flow_input");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(RELEASED)));
    g.bench_function("held_then_released", |b| {
        b.iter(|| {
            let mut state = State::new(cfg.clone());
            let mut s = shard();
            state.datagram(from, &early, &mut s, 0);
            for d in &templates {
                state.datagram(from, d, &mut s, 0);
            }
            let r = state.report();
            assert_eq!(
                (r.templates, r.held_sets_now),
                (usize::from(RELEASED), usize::from(HELD - RELEASED))
            );
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
