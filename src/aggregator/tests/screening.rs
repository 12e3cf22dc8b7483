//! Workers that leave out the sources the tables would refuse, once they
//! are full and once the workers have taken their room
//! (`crate::admission`), give the same counts, pairs, alerts and evidence to
//! the byte as workers that record everything — across hosts expiring and
//! pair generations moving on, with one partition or several.

use super::*;

fn spoofed(rng: &mut u64, dst: Addr) -> Summary {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    Summary {
        src: Addr::from_v4((0xc000_0000 | (*rng as u32 & 0x00ff_ffff)).to_be_bytes()),
        dst,
        l3_len: 20 + (*rng >> 40) as u32 % 100,
        proto: proto::UDP,
        src_port: (*rng >> 20) as u16,
        dst_port: 53,
        has_ports: true,
        role: Role::Initiation,
        ..Summary::default()
    }
}

/// A tick of traffic: regular hosts (one scanning), and in flood ticks
/// spoofed sources to a victim; quiet stretches let hosts expire.
fn traffic(t: u64, rng: &mut u64) -> Vec<Summary> {
    let mut pkts = Vec::new();
    if t % 23 < 17 {
        pkts.push(pkt(1, 2, 300, 80, Role::Other));
        pkts.push(pkt(2, 1, 100, 80, Role::Other));
        for d in 0..(t % 6) as u8 {
            pkts.push(pkt(3, 100 + d, 40, 22, Role::Initiation));
        }
    }
    if t % 23 < 12 {
        for _ in 0..150 {
            pkts.push(spoofed(rng, a(9)));
        }
        // And to destinations new to the tables, between frames to the
        // victim: refused while the tables are full (the worker asks the
        // screen again each time), taken while they have room.
        for i in 0..20u8 {
            pkts.push(spoofed(rng, a(150 + (t % 50) as u8 + i % 2)));
            pkts.push(spoofed(rng, a(9)));
        }
        // The same spoofed source twice in a row: the worker's cache of
        // its last flow.
        let p = spoofed(rng, a(9));
        pkts.push(p);
        pkts.push(p);
    }
    pkts
}

fn same_run(threads: usize) {
    let cfg = config("").tap(|c| {
        c.traffic.max_hosts = 40;
        c.traffic.max_pairs = 90;
        // Pair generations of 8 ticks; hosts expire 32 ticks after
        // their last packet.
        c.traffic.interval = crate::config::units::Span(std::time::Duration::from_secs(32));
    });
    let mut screened = Aggregator::with_threads(&cfg, RuntimeInfo::default(), threads);
    let mut plain = Aggregator::with_threads(&cfg, RuntimeInfo::default(), threads);
    // Scan sketches hash with each aggregator's own keys: the same ones
    // here, or their estimates may differ by one.
    screened.fix_fingerprints(7);
    plain.fix_fingerprints(7);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let (mut left_out, mut admitted_ticks, mut expired) = (0, 0, false);
    // Sources left out in ticks that began with room in the tables: the
    // workers took the room and left the rest out within the tick.
    let mut left_out_filling = 0;
    let mut hosts_before = 0;
    for t in 0..200 {
        let pkts = traffic(t, &mut rng);
        let mut a_shard = shard(t);
        a_shard.set_admission(screened.admission());
        a_shard.begin_tick(t);
        admitted_ticks += u64::from(screened.admission().is_some_and(|a| a.applies(t)));
        let mut b_shard = shard(t);
        for p in &pkts {
            a_shard.record(p);
            b_shard.record(p);
        }
        left_out += a_shard.untracked.screened_packets;
        if !screened.admission().is_some_and(|a| a.applies(t)) {
            left_out_filling += a_shard.untracked.screened_packets;
        }
        screened.merge(&a_shard);
        plain.merge(&b_shard);
        let health = TickHealth::default();
        let (sa, ea) = screened.end_tick(t, health, 1_000_000 + t * 1000);
        let (sb, eb) = plain.end_tick(t, health, 1_000_000 + t * 1000);
        let json = |v: &dyn erased::Ser| v.json();
        assert_eq!(sa.hosts, sb.hosts, "hosts at tick {t}");
        assert_eq!(json(&*sa.alerts), json(&*sb.alerts), "alerts at tick {t}");
        assert_eq!(json(&ea), json(&eb), "events at tick {t}");
        // (Table memory is left out: the scan sets' capacity depends on
        // each aggregator's own hash keys.)
        let fill = |f: TableFill| (f.hosts, f.max_hosts, f.pairs, f.max_pairs);
        assert_eq!(fill(sa.tables), fill(sb.tables), "tables at tick {t}");
        assert_eq!(sa.window, sb.window);
        let mut ua = sa.lifetime_untracked;
        ua.screened_packets = 0;
        assert_eq!(ua, sb.lifetime_untracked, "untracked at tick {t}");
        assert_eq!(sa.all_json(), sb.all_json());
        expired |= sa.tables.hosts < hosts_before;
        hosts_before = sa.tables.hosts;
    }
    assert!(left_out > 1000, "screening was used: {left_out} packets");
    assert!(
        left_out_filling > 100,
        "ticks that filled the tables were screened: {left_out_filling} packets"
    );
    assert!(admitted_ticks > 30, "{admitted_ticks} ticks screened");
    assert!(expired, "hosts expired on the way");
    let built = screened.work().filters_built;
    assert!(
        built * 2 < admitted_ticks,
        "{built} filters for {admitted_ticks} ticks: built again only when the tables change"
    );
}

mod erased {
    pub trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap()
        }
    }
}

#[test]
fn counts_are_the_same_with_one_partition() {
    same_run(1);
}

#[test]
fn counts_are_the_same_with_three_partitions() {
    same_run(3);
}

#[test]
fn no_screening_in_failed_mode() {
    let cfg = config("").tap(|c| {
        c.traffic.max_hosts = 4;
        c.traffic.max_pairs = 4;
        c.scan.count = ScanCount::Failed;
    });
    let mut g = Aggregator::new(&cfg, RuntimeInfo::default());
    let mut rng = 7u64;
    for t in 0..5 {
        tick(&mut g, t, &traffic(t, &mut rng));
        assert!(g.admission().is_none());
    }
}
