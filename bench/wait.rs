//! The cost of one wake-up of an idle worker: io_uring multishot poll
//! against poll(2), with 1, 16 and 64 descriptors registered (a worker holds
//! one ring per watched interface). Each iteration makes one descriptor
//! ready, waits, and drains it.
//!
//! Run: `cargo bench --bench wait`.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tpacket::{WaitKind, Waiter};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("wake");
    for kind in [WaitKind::IoUring, WaitKind::Poll] {
        for n in [1usize, 16, 64] {
            let (mut waiter, fell_back) = Waiter::new(kind).expect("waiter");
            assert!(fell_back.is_none());
            let pairs: Vec<(UnixStream, UnixStream)> = (0..n)
                .map(|_| UnixStream::pair().expect("socketpair"))
                .collect();
            for (i, (r, _)) in pairs.iter().enumerate() {
                waiter.register(r.as_fd(), i as u64).expect("register");
            }
            let mut events = Vec::with_capacity(8);
            let mut next = 0;
            let name = if kind == WaitKind::IoUring {
                "io_uring"
            } else {
                "poll"
            };
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    let (r, w) = &pairs[next % n];
                    next += 1;
                    (&*w).write_all(&[1]).unwrap();
                    events.clear();
                    while events.is_empty() {
                        waiter.wait(Duration::from_secs(1), &mut events).unwrap();
                    }
                    let mut byte = [0u8; 1];
                    (&*r).read_exact(&mut byte).unwrap();
                })
            });
            for i in 0..n {
                waiter.deregister(i as u64).unwrap();
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
