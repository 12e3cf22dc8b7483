//! The same aggregator split over partitions (threads) gives the same
//! counts, alerts and evidence: a source and its destinations, a victim and
//! its sources, sit in different partitions.

use super::*;

fn agg4(extra: &str) -> Aggregator {
    Aggregator::with_threads(&config(extra), RuntimeInfo::default(), 4)
}

#[test]
fn counts_and_destinations_add_up_across_partitions() {
    let mut g = agg4("");
    assert_eq!(g.threads(), 4);
    let mut pkts = Vec::new();
    for d in 2..40 {
        pkts.push(pkt(1, d, 10, 80, Role::Other));
        pkts.push(pkt(d, 1, 3, 80, Role::Other));
    }
    let (s, _) = tick(&mut g, 0, &pkts);
    let h1 = host(&s, 1);
    assert_eq!((h1.sent_bytes, h1.recv_bytes), (380, 114));
    assert_eq!(h1.destinations.len(), 3, "keep_destinations = 3");
    assert_eq!(s.hosts.len(), 39);
    assert_eq!(s.tables.hosts, 39);
    assert_eq!(s.hosts[0].addr, a(1), "largest sender first");
    assert_eq!(s.window.bytes, 380 + 114);
}

#[test]
fn an_inbound_alert_has_its_sources_from_every_partition() {
    let mut g = agg4("");
    let flood = flood_toward(a(9));
    let mut ev = Vec::new();
    for t in 0..2 {
        ev.extend(tick(&mut g, t, &flood).1);
    }
    let i = opened(&ev, AlertKind::Inbound);
    assert_eq!(i.len(), 1, "{ev:?}");
    assert_eq!(i[0].evidence.sources.len(), 10);
    assert_eq!(i[0].value, 251 * 20, "opened at the first tick over 5000");
}

#[test]
fn an_inbound_alert_lists_the_largest_sources_of_every_partition() {
    // Sizes with ties, sources spread over the partitions, one pair
    // generation: the ten largest by bytes, ties by the lower address.
    let mut g = agg4("");
    let flood: Vec<Summary> = flood_toward(a(9))
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.l3_len = 20 + (i as u32 * 37) % 120;
            s
        })
        .collect();
    let mut want: Vec<(std::net::IpAddr, u64)> = flood
        .iter()
        .map(|s| (s.src.ip(), s.l3_len as u64))
        .collect();
    want.sort_by(|x, y| y.1.cmp(&x.1).then(Addr::from(x.0).cmp(&Addr::from(y.0))));
    want.truncate(10);
    let (_, ev) = tick(&mut g, 0, &flood);
    let i = opened(&ev, AlertKind::Inbound);
    assert_eq!(i.len(), 1, "{ev:?}");
    let got: Vec<_> = i[0]
        .evidence
        .sources
        .iter()
        .map(|p| (p.ip, p.bytes))
        .collect();
    assert_eq!(got, want);
    assert!(want[0].1 > want[9].1, "the sizes differ");
}

#[test]
fn scans_and_alert_ids_across_partitions() {
    let mut g = agg4("");
    let mut pkts = Vec::new();
    for src in 1..=8u8 {
        for d in 100..105 {
            pkts.push(pkt(src, d, 60, 80, Role::Initiation));
        }
    }
    let (snap, ev) = tick(&mut g, 0, &pkts);
    let s = opened(&ev, AlertKind::AddressScan);
    assert_eq!(s.len(), 8);
    let mut ids: Vec<u64> = s.iter().map(|a| a.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (1..=8).collect::<Vec<_>>(), "unique ids");
    assert_eq!(snap.alerts.len(), 8);
    assert!(snap.alerts.windows(2).all(|w| w[0].id < w[1].id));
    // They close after the window and the hold-down, in every partition.
    let mut closed_n = 0;
    for t in 1..=20 {
        closed_n += closed(&tick(&mut g, t, &[]).1, AlertKind::AddressScan).len();
    }
    assert_eq!(closed_n, 8);
}

#[test]
fn failed_mode_resolves_across_partitions() {
    let mut g = Aggregator::with_threads(
        &config("").tap(|c| c.scan.count = ScanCount::Failed),
        RuntimeInfo::default(),
        3,
    );
    let mut pkts = Vec::new();
    for d in 10..15 {
        pkts.push(pkt(1, d, 60, 80, Role::Initiation));
        pkts.push(pkt(d, 1, 60, 80, Role::Reply));
        pkts.push(pkt(2, d + 10, 60, 80, Role::Initiation));
    }
    let (_, ev) = tick(&mut g, 0, &pkts);
    assert!(ev.is_empty());
    let (_, ev) = tick(&mut g, 1, &[]);
    let s = opened(&ev, AlertKind::AddressScan);
    assert_eq!(s.len(), 1, "{ev:?}");
    assert_eq!(s[0].subject, a(2).ip());
}

#[test]
fn restored_alerts_go_to_their_partition_and_close() {
    let mut g = agg4("");
    let (_, ev) = tick(&mut g, 0, &[pkt(1, 2, 2000, 80, Role::Other)]);
    let open = opened(&ev, AlertKind::Traffic)[0].clone();
    let mut g2 = agg4("");
    g2.restore(
        vec![open.clone()],
        open.id,
        Now {
            tick: 0,
            unix_ms: 0,
        },
    );
    tick(&mut g2, 0, &[]);
    tick(&mut g2, 1, &[]);
    let (_, ev) = tick(&mut g2, 2, &[]);
    assert_eq!(closed(&ev, AlertKind::Traffic)[0].id, open.id);
    let (_, ev) = tick(&mut g2, 3, &[pkt(5, 2, 2000, 80, Role::Other)]);
    assert_eq!(opened(&ev, AlertKind::Traffic)[0].id, open.id + 1);
}

/// The threads of an aggregator's partition pool, by id.
fn pool_threads(g: &Aggregator) -> Vec<String> {
    let pool = g.pool.as_ref().expect("a pool for 4 partitions");
    let mut ids: Vec<String> = pool
        .broadcast(|_| format!("{:?}", std::thread::current().id()))
        .into_iter()
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn the_partition_threads_are_kept_from_tick_to_tick() {
    let mut g = agg4("");
    let before = pool_threads(&g);
    assert_eq!(before.len(), 3, "one thread per partition after the first");
    let me = format!("{:?}", std::thread::current().id());
    assert!(!before.contains(&me));
    for t in 0..30 {
        let pkts: Vec<_> = (1..20)
            .map(|s| pkt(s, s + 100, 100, 80, Role::Other))
            .collect();
        let (snap, _) = tick(&mut g, t, &pkts);
        assert_eq!(snap.tables.hosts, 38);
    }
    assert_eq!(
        pool_threads(&g),
        before,
        "the same three threads, 30 ticks on"
    );
}

#[test]
fn alert_ids_follow_the_partitions_not_their_threads() {
    // 24 scanners over 4 partitions, opened in one close, ten times over:
    // the ids go to the partitions in order, and within one to its alerts
    // in the order they opened, however the threads ran.
    let mut pkts = Vec::new();
    for src in 1..=24u8 {
        for d in 100..105 {
            pkts.push(pkt(src, d, 60, 80, Role::Initiation));
        }
    }
    let mut runs = Vec::new();
    for _ in 0..10 {
        let mut g = agg4("");
        let (_, ev) = tick(&mut g, 0, &pkts);
        let mut by_id: Vec<(u64, usize, std::net::IpAddr)> = opened(&ev, AlertKind::AddressScan)
            .iter()
            .map(|a| (a.id, partition::of(Addr::from(a.subject), 4), a.subject))
            .collect();
        assert_eq!(by_id.len(), 24);
        by_id.sort_unstable();
        let ids: Vec<u64> = by_id.iter().map(|x| x.0).collect();
        assert_eq!(ids, (1..=24).collect::<Vec<_>>());
        assert!(by_id.windows(2).all(|w| w[0].1 <= w[1].1), "{by_id:?}");
        runs.push(by_id);
    }
    assert!(
        runs.windows(2).all(|w| w[0] == w[1]),
        "the same ids every run"
    );
}

#[test]
fn each_pass_returns_in_partition_order_with_or_without_the_pool() {
    let mut g = agg4("");
    let owned = |p: &mut Partition| (1..=60u8).filter(|&n| p.owns(a(n))).collect::<Vec<_>>();
    let want: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            (1..=60u8)
                .filter(|&n| partition::of(a(n), 4) == i)
                .collect()
        })
        .collect();
    assert!(want.iter().all(|w| !w.is_empty()));
    let pool = g.pool.take();
    assert!(pool.is_some());
    assert_eq!(passes::each_part(pool.as_ref(), &mut g.parts, owned), want);
    // No pool (its threads could not be had): the partitions take turns.
    assert_eq!(passes::each_part(None, &mut g.parts, owned), want);
}

/// The partitions' lists, each in order, merged into one: host by host
/// what one partition lists, ties in bytes sent and an alert subject that
/// sends nothing included.
#[test]
fn a_listing_over_partitions_is_one_partitions_host_by_host() {
    let mut one = agg("");
    let mut four = agg4("");
    let listed = |s: &Snapshot| {
        s.hosts
            .iter()
            .map(|h| (h.addr, h.sent_bytes, h.recv_bytes, h.alerts))
            .collect::<Vec<_>>()
    };
    for t in 0..6u64 {
        let mut pkts = flood_toward(a(200));
        for n in 1..60u8 {
            let len = 40 + u32::from(n % 7) * 10 + t as u32 * u32::from(n % 3);
            pkts.push(pkt(n, n + 100, len, 80, Role::Other));
        }
        let (s1, _) = tick(&mut one, t, &pkts);
        let (s4, _) = tick(&mut four, t, &pkts);
        assert_ne!(host(&s1, 200).alerts, 0, "the victim is listed as alerting");
        // The flood's 251 sources, 59 senders and their 59 peers, the victim.
        assert_eq!(s1.hosts.len(), 251 + 59 * 2 + 1);
        assert_eq!(listed(&s4), listed(&s1), "tick {t}");
    }
}
