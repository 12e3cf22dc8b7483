use super::*;
use crate::wire::proto;

fn limits(h: usize, p: usize) -> ShardLimits {
    ShardLimits {
        max_hosts: h,
        max_pairs: p,
        max_ports: p,
        answers: true,
        rates: 0,
    }
}

fn pkt(src: u8, dst: u8, len: u32) -> Summary {
    Summary {
        src: Addr::from_v4([10, 0, 0, src]),
        dst: Addr::from_v4([10, 0, 0, dst]),
        l3_len: len,
        proto: proto::UDP,
        dst_port: 53,
        has_ports: true,
        role: Role::Initiation,
        ..Summary::default()
    }
}

fn host(s: &Shard, n: u8) -> HostCounters {
    *s.hosts()
        .iter()
        .find(|h| h.addr == Addr::from_v4([10, 0, 0, n]))
        .unwrap()
}

#[test]
fn class_runs_per_pair_count_what_each_packet_would() {
    use crate::wire::tcp_flags;
    let mut s = Shard::new(
        ShardLimits {
            rates: rates::IN | rates::OUT,
            ..limits(16, 5)
        },
        &Hasher::new(),
    );
    let mut want = std::collections::HashMap::<(Addr, usize), DirCounts>::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for n in 0..5000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Runs of one kind on a pair, then changes: SYN then data,
        // fragments, ICMP among UDP, frames too long for a run count.
        let kind = (x >> 8) % 7;
        let mut p = pkt(
            (x % 6) as u8 + 1,
            ((x >> 4) % 6) as u8 + 1,
            40 + (x >> 20) as u32 % 1500,
        );
        match kind {
            0 | 1 => {}
            2 => {
                p.proto = proto::TCP;
                p.tcp_flags = tcp_flags::SYN;
            }
            3 => {
                p.proto = proto::TCP;
                p.tcp_flags = tcp_flags::ACK;
                p.role = Role::Other;
            }
            4 => p.fragment = true,
            5 => {
                p.proto = proto::ICMP;
                p.has_ports = false;
                p.role = Role::Error;
            }
            _ => p.l3_len = u32::MAX,
        }
        s.record(&p);
        let (c, len) = (rates::classes(&p), u64::from(p.l3_len));
        rates::count(want.entry((p.src, 1)).or_default(), c, len);
        rates::count(want.entry((p.dst, 0)).or_default(), c, len);
        if n == 2500 {
            // A shard the aggregator was late to take is sealed twice.
            s.seal();
        }
    }
    s.seal();
    assert!(s.pair_count() == 5 && s.untracked.pair_packets > 0);
    for (i, h) in s.hosts().iter().enumerate() {
        let got = s.rates_of(i).unwrap();
        for d in 0..2 {
            let w = want.get(&(h.addr, d)).copied().unwrap_or_default();
            assert_eq!(got.0[d], w, "host {:?} direction {d}", h.addr);
        }
    }
}

/// A spoofed flood: every packet a new source and pair toward one victim.
/// The worker writes no class row (the pairs' runs hold the packets); the
/// seal, on the aggregator's side, makes rows only up to the last host it
/// writes and counts every packet in each direction counted.
#[test]
fn a_flood_of_new_pairs_writes_rows_only_at_the_seal_and_only_as_needed() {
    let udp = rates::classes(&pkt(1, 2, 60));
    for dirs in [rates::IN, rates::OUT, rates::BOTH] {
        let mut s = Shard::new(
            ShardLimits {
                rates: dirs,
                ..limits(4096, 4096)
            },
            &Hasher::new(),
        );
        let victim = Addr::from_v4([192, 0, 2, 1]);
        for n in 0..3000u32 {
            let mut p = pkt(0, 0, 60 + n % 3);
            p.src = Addr::from_v4((0x0a00_0000 + n).to_be_bytes());
            p.dst = victim;
            s.record(&p);
        }
        assert!(s.rates[0].is_empty() && s.rates[1].is_empty(), "{dirs}");
        s.seal();
        // The victim is the second host made (after the first source).
        let v = s.hosts().iter().position(|h| h.addr == victim).unwrap();
        assert_eq!(v, 1);
        if dirs & rates::IN != 0 {
            assert!(s.rates[0].len() <= 2, "{dirs}: {}", s.rates[0].len());
            let mut want = DirCounts::default();
            rates::count_n(&mut want, udp, 3000, 3000 * 61);
            assert_eq!(s.rates_of(v).unwrap().0[0], want);
        } else {
            assert!(s.rates[0].is_empty());
        }
        if dirs & rates::OUT != 0 {
            assert_eq!(s.rates[1].len(), 3001, "{dirs}");
            let mut want = DirCounts::default();
            rates::count_n(&mut want, udp, 1, 61);
            let src = s
                .hosts()
                .iter()
                .position(|h| h.addr == Addr::from_v4([10, 0, 0, 1]));
            assert_eq!(s.rates_of(src.unwrap()).unwrap().0[1], want);
            assert_eq!(s.rates_of(v).unwrap().0[1], DirCounts::default());
        } else {
            assert!(s.rates[1].is_empty());
        }
    }
}

#[test]
fn counts_per_host_and_pair() {
    let mut s = Shard::new(limits(16, 16), &Hasher::new());
    s.record(&pkt(1, 2, 100));
    s.record(&pkt(1, 2, 50));
    s.record(&pkt(1, 3, 10));
    s.record(&pkt(2, 1, 7));
    assert_eq!(host(&s, 1).sent_bytes, 160);
    assert_eq!(host(&s, 1).sent_packets, 3);
    assert_eq!(host(&s, 1).recv_bytes, 7);
    assert_eq!(host(&s, 2).recv_bytes, 150);
    assert_eq!(s.pair_count(), 3);
    let p12: Vec<_> = s
        .pairs()
        .filter(|(a, b, _)| {
            *a == Addr::from_v4([10, 0, 0, 1]) && *b == Addr::from_v4([10, 0, 0, 2])
        })
        .collect();
    assert_eq!(p12[0].2.bytes, 150);
    assert_eq!(p12[0].2.packets, 2);
    assert_eq!(p12[0].2.roles, role_bits::INITIATION);
    assert_eq!(
        s.totals,
        Totals {
            packets: 4,
            bytes: 167
        }
    );
    assert_eq!(s.untracked, Untracked::default());
}

#[test]
fn full_host_table_counts_untracked_and_keeps_totals_exact() {
    let mut s = Shard::new(limits(2, 16), &Hasher::new());
    s.record(&pkt(1, 2, 100));
    s.record(&pkt(3, 4, 40)); // neither host fits
    s.record(&pkt(1, 5, 30)); // destination does not fit
    assert_eq!(s.hosts().len(), 2);
    assert_eq!(s.untracked.src_bytes, 40);
    assert_eq!(s.untracked.dst_bytes, 70);
    assert_eq!(s.untracked.pair_bytes, 70);
    assert_eq!(host(&s, 1).sent_bytes, 130);
    let tracked: u64 = s.hosts().iter().map(|h| h.sent_bytes).sum();
    assert_eq!(tracked + s.untracked.src_bytes, s.totals.bytes);
}

#[test]
fn full_pair_table_counts_untracked() {
    let mut s = Shard::new(limits(16, 1), &Hasher::new());
    s.record(&pkt(1, 2, 100));
    s.record(&pkt(1, 3, 40));
    s.record(&pkt(1, 2, 1));
    assert_eq!(s.pair_count(), 1);
    assert_eq!(s.untracked.pair_bytes, 40);
    assert_eq!(s.untracked.pair_packets, 1);
}

#[test]
fn contacts_from_initiations_answers_from_replies() {
    let mut s = Shard::new(limits(16, 16), &Hasher::new());
    for port in [22, 80, 80, 443] {
        let mut p = pkt(1, 2, 60);
        p.proto = proto::TCP;
        p.dst_port = port;
        s.record(&p);
    }
    let mut reply = pkt(2, 1, 60);
    reply.proto = proto::TCP;
    reply.role = Role::Reply;
    reply.src_port = 80;
    reply.dst_port = 40000;
    s.record(&reply);
    let mut data = pkt(2, 1, 60);
    data.role = Role::Other;
    s.record(&data);
    let mut ports: Vec<_> = s.contacts().map(|c| c.port).collect();
    ports.sort();
    assert_eq!(ports, vec![22, 80, 443]);
    let a: Vec<_> = s.answers().collect();
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].from, a[0].to, a[0].port),
        (
            Addr::from_v4([10, 0, 0, 2]),
            Addr::from_v4([10, 0, 0, 1]),
            80
        )
    );
    let back = s
        .pairs()
        .find(|(f, _, _)| *f == Addr::from_v4([10, 0, 0, 2]))
        .unwrap();
    assert_eq!(back.2.roles, role_bits::REPLY | role_bits::OTHER);
}

#[test]
fn port_table_bound() {
    // The first port of a pair is kept with the pair; two more fit the
    // table; the last two do not and are counted.
    let mut s = Shard::new(limits(16, 2), &Hasher::new());
    for port in [1, 2, 3, 3, 1, 4, 5] {
        let mut p = pkt(1, 2, 60);
        p.dst_port = port;
        s.record(&p);
    }
    let mut ports: Vec<u16> = s.contacts().map(|c| c.port).collect();
    ports.sort();
    assert_eq!(ports, vec![1, 2, 3]);
    assert_eq!(s.untracked.port_initiations, 2);
}

#[test]
fn answers_only_when_asked_for() {
    let mut l = limits(16, 16);
    l.answers = false;
    let mut s = Shard::new(l, &Hasher::new());
    let mut reply = pkt(2, 1, 60);
    reply.role = Role::Reply;
    s.record(&reply);
    assert_eq!(s.answers().count(), 0);
}

#[test]
fn clear_keeps_capacity_and_empties() {
    let mut s = Shard::new(limits(1000, 1000), &Hasher::new());
    for i in 0..200 {
        s.record(&pkt(i, i.wrapping_add(1), 10));
    }
    let cap = s.table_bytes();
    s.recycle();
    assert!(s.is_empty());
    assert_eq!(s.hosts().len(), 0);
    assert_eq!(s.pair_count(), 0);
    assert_eq!(s.table_bytes(), cap, "steady traffic keeps its tables");
}

#[test]
fn tables_shrink_after_a_burst() {
    let mut s = Shard::new(limits(1 << 20, 1 << 20), &Hasher::new());
    for i in 0..100_000u32 {
        let mut p = pkt(1, 2, 10);
        p.src = Addr::from_v4(i.to_be_bytes());
        s.record(&p);
    }
    let burst = s.table_bytes();
    s.recycle();
    s.record(&pkt(1, 2, 10));
    s.recycle();
    assert!(
        s.table_bytes() * 10 < burst,
        "{} vs {burst}",
        s.table_bytes()
    );
}

#[test]
fn bounded_tables_stop_growing() {
    let mut s = Shard::new(limits(5000, 5000), &Hasher::new());
    for i in 0..200_000u32 {
        let mut p = pkt(1, 2, 10);
        p.src = Addr::from_v4(i.to_be_bytes());
        p.dst = Addr::from_v4((i ^ 0xffff).to_be_bytes());
        s.record(&p);
    }
    let full = s.table_bytes();
    for i in 200_000..400_000u32 {
        let mut p = pkt(1, 2, 10);
        p.src = Addr::from_v4(i.to_be_bytes());
        s.record(&p);
    }
    assert_eq!(
        s.table_bytes(),
        full,
        "a flood past the bounds allocates nothing"
    );
    assert_eq!(s.hosts().len(), 5000);
}

#[test]
fn interface_deltas_merge_per_interface() {
    let mut s = Shard::new(limits(4, 4), &Hasher::new());
    for round in 0..100u64 {
        for ifindex in [2, 3] {
            let mut d = IfaceDelta::new(ifindex);
            d.frames = round;
            s.add_iface(d);
        }
    }
    assert_eq!(s.ifaces.len(), 2);
    assert_eq!(s.ifaces[0].frames, (0..100).sum::<u64>());
}

#[test]
fn v4_and_v6_hosts_share_one_table() {
    let mut s = Shard::new(limits(16, 16), &Hasher::new());
    let mut p = pkt(1, 2, 100);
    p.src = Addr::from_v6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    s.record(&p);
    s.record(&pkt(1, 2, 10));
    assert_eq!(s.hosts().len(), 3);
}

#[test]
fn a_pair_keeps_the_interface_its_first_frame_came_in_on() {
    let mut s = Shard::new(limits(16, 16), &Hasher::new());
    s.record(&pkt(1, 2, 100));
    s.set_ingress(Some(7));
    s.record(&pkt(1, 3, 100));
    s.record(&pkt(1, 2, 100));
    s.set_ingress(Some(70_000));
    s.record(&pkt(1, 4, 100));
    s.set_ingress(Some(9));
    s.record(&Summary {
        direction: crate::wire::Direction::Out,
        ..pkt(1, 5, 100)
    });
    s.record(&pkt(1, 3, 100));
    let mut got: Vec<(u32, u32)> = s
        .pairs()
        .map(|(_, d, p)| match d.ip() {
            std::net::IpAddr::V4(v4) => (u32::from(v4.octets()[3]), p.ingress()),
            v6 => panic!("{v6}"),
        })
        .collect();
    got.sort();
    // 2 before any interface was known; 3 first came on 7; 70 000 does
    // not fit (unknown); 5 was sent by the box.
    assert_eq!(got, vec![(2, 0), (3, 7), (4, 0), (5, 0)]);
}

#[test]
fn a_pair_slot_stays_32_bytes() {
    // The ingress interface lives in what was padding: the pair table's
    // footprint (and its cache lines) did not grow.
    assert_eq!(std::mem::size_of::<super::PairCounters>(), 32);
}

#[test]
fn a_flood_moves_into_the_spare_tables_and_they_go_aside_once_quiet() {
    let spoofed = |i: u32| {
        let mut p = pkt(1, 2, 10 + i % 7);
        p.src = Addr::from_v4(i.wrapping_mul(0x9e37_79b1).to_be_bytes());
        p
    };
    let mut plain = Shard::new(limits(1 << 20, 1 << 20), &Hasher::new());
    let mut s = Shard::new(limits(1 << 20, 1 << 20), &Hasher::new());
    s.keep_spares(50_000, 50_000);
    let large = (s.spare_hosts.aside, s.spare_pairs.aside);
    assert!(large.0 >= 50_000 && large.1 >= 50_000);
    for round in 0..2 {
        for i in 0..40_000u32 {
            s.record(&spoofed(i));
            plain.record(&spoofed(i));
        }
        // The flood's tables are the spare's: moved into once, not grown.
        assert_eq!(s.index.capacity(), large.0, "round {round}");
        assert_eq!(s.pair_index.capacity(), large.1, "round {round}");
        assert_eq!((s.spare_hosts.aside, s.spare_pairs.aside), (0, 0));
        // And they count what tables without a spare count.
        assert_eq!(s.hosts(), plain.hosts(), "round {round}");
        let pairs = |x: &Shard| {
            let mut v: Vec<_> = x.pairs().map(|(a, b, p)| (a, b, *p)).collect();
            v.sort_by_key(|&(a, b, _)| (a, b));
            v
        };
        assert_eq!(pairs(&s), pairs(&plain), "round {round}");
        assert_eq!(s.totals, plain.totals);
        // A busy tick keeps them; a quiet one puts them aside, emptied.
        s.recycle();
        plain.recycle();
        assert_eq!(s.index.capacity(), large.0);
        s.record(&pkt(1, 2, 10));
        plain.record(&pkt(1, 2, 10));
        s.recycle();
        plain.recycle();
        assert_eq!((s.spare_hosts.aside, s.spare_pairs.aside), large);
        assert!(s.index.capacity() < large.0 / 4 && s.pair_index.capacity() < large.1 / 4);
        assert!(s.is_empty() && s.hosts().is_empty());
    }
    // A population under a quarter of the spare keeps its small tables.
    for i in 0..5_000u32 {
        s.record(&spoofed(i));
    }
    assert!(s.index.capacity() < large.0 / 4);
    assert_eq!((s.spare_hosts.aside, s.spare_pairs.aside), large);
}
