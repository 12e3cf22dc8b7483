//! The aggregator driven tick by tick by hand: counting, windows, every
//! detector, alert lifecycle, rules, reload.

use super::*;
use crate::hosts::HostTable;
use crate::shard::ShardLimits;
use crate::wire::{Role, Summary, proto};

mod partitioned;
mod screening;

fn config(extra: &str) -> Config {
    Config::parse(
        &format!(
            "tick = 1\n[traffic]\ninterval = 10\nbyte_limit = 1000\nchart_min_bytes = 1\nkeep_destinations = 3\n[scan]\nmax_contacted_ips = 3\nmax_contacted_ports = 4\nport_interval = 20\n[inbound]\nbyte_limit = 5000\n[alerts]\nhold_down = 3\n{extra}"
        ),
        "test",
    )
    .unwrap()
}

fn agg(extra: &str) -> Aggregator {
    Aggregator::new(&config(extra), RuntimeInfo::default())
}

fn shard(tick: u64) -> Shard {
    let mut s = Shard::new(
        ShardLimits {
            max_hosts: 1000,
            max_pairs: 1000,
            max_ports: 1000,
            answers: true,
            rates: crate::rates::IN | crate::rates::OUT,
        },
        &Hasher::new(),
    );
    s.first_tick = tick;
    s.last_tick = tick;
    s
}

fn a(n: u8) -> Addr {
    Addr::from_v4([10, 0, 0, n])
}

fn pkt(src: u8, dst: u8, len: u32, port: u16, role: Role) -> Summary {
    Summary {
        src: a(src),
        dst: a(dst),
        l3_len: len,
        proto: proto::TCP,
        src_port: 40000,
        dst_port: port,
        has_ports: true,
        role,
        ..Summary::default()
    }
}

/// Runs one tick with the given packets; returns the events.
fn tick(g: &mut Aggregator, t: u64, pkts: &[Summary]) -> (Snapshot, Vec<AlertEvent>) {
    let mut s = shard(t);
    for p in pkts {
        s.record(p);
    }
    s.seal();
    g.merge(&s);
    g.end_tick(t, TickHealth::default(), 1_000_000 + t * 1000)
}

fn host(s: &Snapshot, n: u8) -> &HostView {
    s.hosts.iter().find(|h| h.addr == a(n)).unwrap()
}

fn opened(ev: &[AlertEvent], kind: AlertKind) -> Vec<&Alert> {
    ev.iter()
        .filter(|e| e.event == Transition::Open && e.alert.kind == kind)
        .map(|e| &e.alert)
        .collect()
}

fn closed(ev: &[AlertEvent], kind: AlertKind) -> Vec<&Alert> {
    ev.iter()
        .filter(|e| e.event == Transition::Close && e.alert.kind == kind)
        .map(|e| &e.alert)
        .collect()
}

#[test]
fn shards_of_several_workers_add_up_exactly() {
    let mut g = agg("");
    let mut w1 = shard(0);
    let mut w2 = shard(0);
    w1.record(&pkt(1, 2, 100, 80, Role::Other));
    w2.record(&pkt(1, 2, 50, 80, Role::Other));
    w2.record(&pkt(1, 3, 10, 443, Role::Other));
    w1.record(&pkt(4, 1, 7, 22, Role::Other));
    g.merge(&w1);
    g.merge(&w2);
    let (s, _) = g.end_tick(0, TickHealth::default(), 0);
    let h1 = host(&s, 1);
    assert_eq!((h1.sent_bytes, h1.sent_packets, h1.recv_bytes), (160, 3, 7));
    assert_eq!(h1.destinations[0].addr, a(2));
    assert_eq!(h1.destinations[0].bytes, 150);
    assert_eq!(s.window.bytes, 167);
    assert_eq!(s.hosts[0].addr, a(1), "largest sender first");
}

#[test]
fn the_ticks_closed_are_counted_from_the_first() {
    let mut g = agg("");
    let empty = crate::snapshot::Snapshot::empty(&config(""), RuntimeInfo::default());
    assert_eq!(empty.ticks_closed, 0);
    let (first, _) = g.end_tick(0, TickHealth::default(), 0);
    assert_eq!((first.tick, first.ticks_closed), (0, 1));
    let (third, _) = tick(&mut g, 2, &[]);
    assert_eq!(
        (third.tick, third.ticks_closed),
        (2, 2),
        "tick 1 was not closed here"
    );
}

#[test]
fn counters_are_64_bit() {
    let mut g = agg("");
    let mut s = shard(0);
    for _ in 0..100_000 {
        s.record(&pkt(1, 2, 65_535, 80, Role::Other));
    }
    g.merge(&s);
    g.merge(&s);
    let (snap, _) = g.end_tick(0, TickHealth::default(), 0);
    assert_eq!(host(&snap, 1).sent_bytes, 13_107_000_000);
}

#[test]
fn traffic_at_the_limit_is_quiet_one_byte_more_alerts_once() {
    let mut g = agg("");
    let (_, ev) = tick(&mut g, 0, &[pkt(1, 2, 1000, 80, Role::Other)]);
    assert!(ev.is_empty(), "1000 bytes is not more than 1000");
    let (snap, ev) = tick(&mut g, 1, &[pkt(1, 2, 1, 80, Role::Other)]);
    let t = opened(&ev, AlertKind::Traffic);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].subject, t[0].value, t[0].threshold),
        (a(1).ip(), 1001, 1000)
    );
    assert_eq!(t[0].evidence.destinations[0].ip, a(2).ip());
    assert_eq!(host(&snap, 1).event_type(), "TRAFFIC");
    // Still over: updated, not announced again.
    let (snap, ev) = tick(&mut g, 2, &[pkt(1, 2, 500, 80, Role::Other)]);
    assert!(ev.is_empty());
    assert_eq!(snap.alerts[0].peak, 1501);
}

#[test]
fn a_burst_straddling_the_old_interval_boundary_is_caught() {
    // 600 + 600 bytes in ticks 9 and 10: an interval reset between them (as
    // the original did) would see two halves under the limit of 1000.
    let mut g = agg("");
    for t in 0..9 {
        tick(&mut g, t, &[]);
    }
    tick(&mut g, 9, &[pkt(1, 2, 600, 80, Role::Other)]);
    let (_, ev) = tick(&mut g, 10, &[pkt(1, 2, 600, 80, Role::Other)]);
    assert_eq!(opened(&ev, AlertKind::Traffic).len(), 1);
}

#[test]
fn alert_closes_after_hold_down_below_the_limit() {
    let mut g = agg("");
    let (_, ev) = tick(&mut g, 0, &[pkt(1, 2, 2000, 80, Role::Other)]);
    assert_eq!(opened(&ev, AlertKind::Traffic).len(), 1);
    // The 10-tick window drains at tick 10; three ticks below: closes at 12.
    for t in 1..12 {
        let (_, ev) = tick(&mut g, t, &[]);
        assert!(closed(&ev, AlertKind::Traffic).is_empty(), "tick {t}");
    }
    let (snap, ev) = tick(&mut g, 12, &[]);
    let c = closed(&ev, AlertKind::Traffic);
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].peak, c[0].value, c[0].end_ms),
        (2000, 0, Some(1_012_000))
    );
    assert!(snap.alerts.is_empty());
    assert_eq!(snap.closed.len(), 1);
}

#[test]
fn address_scan_one_alert_for_many_targets() {
    let mut g = agg("");
    // A SYN to 3 addresses is not more than 3.
    let syn = |d| pkt(1, d, 60, 80, Role::Initiation);
    let (_, ev) = tick(&mut g, 0, &[syn(10), syn(11), syn(12)]);
    assert!(opened(&ev, AlertKind::AddressScan).is_empty(), "{ev:?}");
    let (snap, ev) = tick(&mut g, 1, &[syn(13)]);
    let s = opened(&ev, AlertKind::AddressScan);
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].value, s[0].threshold), (4, 3));
    assert_eq!(s[0].evidence.destinations.len(), 4);
    assert_eq!(host(&snap, 1).event_type(), "SCANNING");
    // Fifty more targets: the same alert, no storm.
    let more: Vec<_> = (20..70).map(syn).collect();
    let (_, ev) = tick(&mut g, 2, &more);
    assert!(opened(&ev, AlertKind::AddressScan).is_empty(), "{ev:?}");
}

#[test]
fn a_scan_alert_says_how_big_the_scan_really_was() {
    let mut g = agg("");
    let syn = |d| pkt(1, d, 60, 80, Role::Initiation);
    // A /24 sweep in one tick: the window's count stops at 4 (threshold 3
    // plus one); the estimate sees all 254.
    let sweep: Vec<_> = (2..=255).map(syn).collect();
    let (_, ev) = tick(&mut g, 0, &sweep);
    let s = opened(&ev, AlertKind::AddressScan);
    assert_eq!(s[0].value, 4);
    let c = s[0].evidence.contacted.expect("an estimate");
    // Fingerprints are seeded per run: 2.3 % standard error, ±12 % is five.
    assert!((224..=284).contains(&c), "254 contacted, estimated {c}");
    // A thousand ports of one host.
    let ports: Vec<_> = (1..=1000)
        .map(|p| pkt(3, 4, 60, p, Role::Initiation))
        .collect();
    let (_, ev) = tick(&mut g, 1, &ports);
    let p = opened(&ev, AlertKind::PortScan);
    assert_eq!(p[0].value, 5);
    let c = p[0].evidence.contacted.expect("an estimate");
    assert!((900..=1100).contains(&c), "1000 ports, estimated {c}");
    // The open alert keeps up while the scan goes on, among a crowd of
    // other hosts that move (more than the open alerts).
    let ports: Vec<_> = (1001..=2000)
        .map(|p| pkt(3, 4, 60, p, Role::Initiation))
        .chain((100..=140).map(|n| pkt(n, 5, 10, 80, Role::Other)))
        .collect();
    let (snap, _) = tick(&mut g, 2, &ports);
    let open = snap
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::PortScan)
        .unwrap();
    let c = open.evidence.contacted.unwrap();
    assert!((1800..=2200).contains(&c), "2000 ports, estimated {c}");
    // Traffic alerts carry none.
    let (_, ev) = tick(&mut g, 3, &[pkt(5, 6, 5000, 80, Role::Other)]);
    assert_eq!(opened(&ev, AlertKind::Traffic)[0].evidence.contacted, None);
    // The close carries the scan's size; a later scan is measured afresh.
    let mut closing = None;
    for t in 4..60 {
        let (_, ev) = tick(&mut g, t, &[]);
        if let Some(a) = closed(&ev, AlertKind::AddressScan).first() {
            closing = Some((*a).clone());
            break;
        }
    }
    let closing = closing.expect("the sweep's alert closes");
    assert!(closing.evidence.contacted.unwrap() >= 224);
    let t = 100;
    let (_, ev) = tick(&mut g, t, &(10..20).map(syn).collect::<Vec<_>>());
    let again = opened(&ev, AlertKind::AddressScan);
    let c = again[0].evidence.contacted.expect("an estimate");
    assert!((8..=12).contains(&c), "10 contacted, estimated {c}");
}

#[test]
fn replies_and_refusals_are_not_a_scan() {
    let mut g = agg("");
    // A server answering many clients (SYN-ACK) and a victim's backscatter
    // (RST, ICMP unreachable) contact many addresses but initiate nothing.
    let mut pkts = Vec::new();
    for d in 10..60 {
        pkts.push(pkt(1, d, 60, 40000, Role::Reply));
        pkts.push(pkt(2, d, 60, 40000, Role::Refusal));
        let mut icmp = pkt(3, d, 56, 0, Role::Refusal);
        icmp.proto = proto::ICMP;
        icmp.has_ports = false;
        pkts.push(icmp);
    }
    let (_, ev) = tick(&mut g, 0, &pkts);
    assert!(
        ev.iter()
            .all(|e| e.alert.kind != AlertKind::AddressScan && e.alert.kind != AlertKind::PortScan),
        "{ev:?}"
    );
}

#[test]
fn port_scan_on_one_host() {
    let mut g = agg("");
    let ports: Vec<_> = (1..=5)
        .map(|p| pkt(1, 2, 60, p, Role::Initiation))
        .collect();
    let (_, ev) = tick(&mut g, 0, &ports);
    let p = opened(&ev, AlertKind::PortScan);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].value, p[0].threshold), (5, 4));
    assert_eq!(p[0].evidence.ports.len(), 5);
    assert_eq!(p[0].evidence.ports[0].proto, "tcp");
    assert!(
        opened(&ev, AlertKind::AddressScan).is_empty(),
        "one destination"
    );
}

#[test]
fn port_window_is_its_own() {
    let mut g = agg("");
    // Ports 1..=4 at tick 0, port 5 at tick 15: within the 20-tick port
    // window (but not within the 10-tick traffic window).
    let ports: Vec<_> = (1..=4)
        .map(|p| pkt(1, 2, 60, p, Role::Initiation))
        .collect();
    tick(&mut g, 0, &ports);
    for t in 1..15 {
        tick(&mut g, t, &[]);
    }
    let (_, ev) = tick(&mut g, 15, &[pkt(1, 2, 60, 5, Role::Initiation)]);
    assert_eq!(opened(&ev, AlertKind::PortScan).len(), 1);
}

/// 251 datagrams of 20 bytes toward `dst`, each from a source of its own.
fn flood_toward(dst: Addr) -> Vec<Summary> {
    (0..=250u8)
        .map(|n| Summary {
            src: Addr::from_v4([198, 51, 100, n]),
            dst,
            l3_len: 20,
            proto: proto::UDP,
            dst_port: 53,
            has_ports: true,
            role: Role::Initiation,
            ..Summary::default()
        })
        .collect()
}

#[test]
fn inbound_flood_from_spoofed_sources() {
    let mut g = agg("");
    let flood = flood_toward(a(9));
    let mut ev = Vec::new();
    for t in 0..2 {
        ev.extend(tick(&mut g, t, &flood).1);
    }
    let i = opened(&ev, AlertKind::Inbound);
    assert_eq!(i.len(), 1, "{ev:?}");
    assert_eq!(i[0].subject, a(9).ip());
    assert_eq!(i[0].evidence.sources.len(), 10);
    assert!(opened(&ev, AlertKind::Traffic).is_empty());
}

#[test]
fn an_inbound_alert_adds_up_a_source_held_in_two_pair_generations() {
    // The pair window keeps quarters of the 10-tick window (2 ticks each):
    // ticks 0 and 2 put each source's pair in two generations.
    let mut g = agg("");
    let from = |src: u8| pkt(src, 9, 1000, 53, Role::Initiation);
    let burst: Vec<_> = (1..=3).map(from).collect();
    let (_, ev) = tick(&mut g, 0, &burst);
    assert!(opened(&ev, AlertKind::Inbound).is_empty());
    let (_, ev) = tick(&mut g, 2, &burst);
    let i = opened(&ev, AlertKind::Inbound);
    assert_eq!(i.len(), 1, "{ev:?}");
    let got: Vec<_> = i[0]
        .evidence
        .sources
        .iter()
        .map(|p| (p.ip, p.bytes, p.packets))
        .collect();
    let want: Vec<_> = (1..=3).map(|n| (a(n).ip(), 2000, 2)).collect();
    assert_eq!(got, want);
}

#[test]
fn ignored_networks_get_no_alerts_but_are_counted() {
    let mut g = agg("[[rule]]\nnetworks = [\"10.0.0.0/30\"]\nignore = true\n");
    let (snap, ev) = tick(&mut g, 0, &[pkt(1, 2, 5000, 80, Role::Other)]);
    assert!(ev.is_empty());
    assert_eq!(host(&snap, 1).sent_bytes, 5000);
}

#[test]
fn a_rule_raises_the_limit_for_its_network() {
    let mut g =
        agg("[[rule]]\nname = \"backup\"\nnetworks = [\"10.0.0.1\"]\nbyte_limit = \"1M\"\n");
    let (_, ev) = tick(
        &mut g,
        0,
        &[
            pkt(1, 2, 5000, 80, Role::Other),
            pkt(3, 2, 5000, 80, Role::Other),
        ],
    );
    let t = opened(&ev, AlertKind::Traffic);
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].subject, t[0].rule.as_str()), (a(3).ip(), "default"));
}

#[test]
fn failed_mode_counts_only_unanswered_attempts() {
    let mut g = Aggregator::new(
        &config("").tap(|c| c.scan.count = ScanCount::Failed),
        RuntimeInfo::default(),
    );
    // Host 1 reaches 5 servers that answer; host 2 probes 5 that do not.
    let mut pkts = Vec::new();
    for d in 10..15 {
        pkts.push(pkt(1, d, 60, 80, Role::Initiation));
        pkts.push(pkt(d, 1, 60, 80, Role::Reply));
        pkts.push(pkt(2, d + 10, 60, 80, Role::Initiation));
    }
    let (_, ev) = tick(&mut g, 0, &pkts);
    assert!(ev.is_empty(), "attempts wait a tick for their answer");
    let (_, ev) = tick(&mut g, 1, &[]);
    let s = opened(&ev, AlertKind::AddressScan);
    assert_eq!(s.len(), 1, "{ev:?}");
    assert_eq!(s[0].subject, a(2).ip());
}

#[test]
fn degraded_when_the_kernel_dropped_packets() {
    let mut g = agg("");
    let mut s = shard(0);
    s.record(&pkt(1, 2, 2000, 80, Role::Other));
    let mut d = IfaceDelta::new(3);
    d.kernel_packets = 1000;
    d.kernel_drops = 100;
    s.ifaces.push(d);
    g.merge(&s);
    let (snap, ev) = g.end_tick(0, TickHealth::default(), 0);
    let t = opened(&ev, AlertKind::Traffic);
    assert!(t[0].degraded);
    assert!((t[0].drop_ratio - 0.1).abs() < 1e-9);
    assert!((snap.drop_ratio - 0.1).abs() < 1e-9);
}

#[test]
fn host_tables_are_taken_at_start_within_the_budget_and_again_at_a_reload() {
    let per_host =
        |g: &Aggregator| -> Vec<usize> { g.parts.iter().map(|p| p.hosts.bytes()).collect() };
    let mut c = config("");
    c.traffic.max_hosts = 4000;
    let mut g = Aggregator::new(&c, RuntimeInfo::default());
    let want = partition::Partition::prefault_bytes(4000) as u64;
    // Over a quarter of the memory: nothing taken now.
    assert_eq!(g.prefault_within(4 * want - 4), 0);
    assert!(per_host(&g).iter().all(|&b| b < 1000));
    let memory = 4 * partition::Partition::prefault_bytes(5000) as u64;
    assert_eq!(g.prefault_within(memory), want);
    assert!(per_host(&g)[0] >= HostTable::prefault_bytes(4000));
    // Counting is unchanged on a table taken ahead.
    let (snap, ev) = tick(&mut g, 0, &[pkt(1, 2, 2000, 80, Role::Other)]);
    assert_eq!(host(&snap, 1).sent_bytes, 2000);
    assert_eq!(opened(&ev, AlertKind::Traffic).len(), 1);
    // A reload that raises the bound takes the rest; one past the budget
    // keeps what was taken and counts on.
    c.traffic.max_hosts = 5000;
    g.reconfigure(&c);
    assert!(per_host(&g)[0] as u64 >= HostTable::prefault_bytes(5000) as u64);
    c.traffic.max_hosts = 1 << 20;
    g.reconfigure(&c);
    assert!((per_host(&g)[0] as u64) < HostTable::prefault_bytes(1 << 20) as u64);
    let (snap, _) = tick(&mut g, 1, &[pkt(1, 2, 100, 80, Role::Other)]);
    assert_eq!(host(&snap, 1).sent_bytes, 2100);
}

#[test]
fn a_listing_is_built_in_the_memory_of_one_no_snapshot_holds() {
    let mut g = agg("");
    let moving: Vec<_> = (1..=20).map(|n| pkt(n, 100, 10, 80, Role::Other)).collect();
    let mut lists = Vec::new();
    for t in 0..10 {
        // Each snapshot dropped before the next tick, as the HTTP side
        // lets go of it once a newer one is published.
        let (snap, _) = tick(&mut g, t, &moving);
        assert_eq!(host(&snap, 1).sent_bytes, 10 * (t + 1).min(10));
        lists.push(snap.hosts.as_ptr() as usize);
    }
    // Three lists take turns: the one published, the one being built,
    // and the one before, in memory no snapshot holds any more.
    assert_eq!(lists[3], lists[0], "{lists:x?}");
    let mut kept: Vec<usize> = lists[2..].to_vec();
    kept.sort_unstable();
    kept.dedup();
    assert!(kept.len() <= 3, "{lists:x?}");
    // A list a reader still holds is left alone.
    let (held, _) = tick(&mut g, 10, &moving);
    for t in 11..14 {
        tick(&mut g, t, &moving);
    }
    assert_eq!(host(&held, 1).sent_bytes, 100, "unchanged while held");
}

#[test]
fn reload_keeps_counts_and_open_alerts() {
    let mut g = agg("");
    let (_, ev) = tick(&mut g, 0, &[pkt(1, 2, 2000, 80, Role::Other)]);
    assert_eq!(opened(&ev, AlertKind::Traffic).len(), 1);
    // A new limit above the value: the alert is below now and closes after
    // the hold-down, the counts stay.
    let mut c = config("");
    c.traffic.byte_limit = crate::config::units::Size(10_000);
    g.reconfigure(&c);
    let (snap, ev) = tick(&mut g, 1, &[]);
    assert!(ev.is_empty());
    assert_eq!(host(&snap, 1).sent_bytes, 2000);
    assert_eq!(snap.alerts.len(), 1);
    assert_eq!(snap.alerts[0].threshold, 10_000);
    tick(&mut g, 2, &[]);
    let (_, ev) = tick(&mut g, 3, &[]);
    assert_eq!(closed(&ev, AlertKind::Traffic).len(), 1);
}

#[test]
fn restored_alerts_close_when_the_condition_is_gone() {
    let mut g = agg("");
    let (_, ev) = tick(&mut g, 0, &[pkt(1, 2, 2000, 80, Role::Other)]);
    let open = opened(&ev, AlertKind::Traffic)[0].clone();
    let mut g2 = agg("");
    g2.restore(
        vec![open.clone()],
        open.id,
        Now {
            tick: 0,
            unix_ms: 0,
        },
    );
    let (snap, ev) = tick(&mut g2, 0, &[]);
    assert_eq!(snap.alerts.len(), 1, "still open after the restart: {ev:?}");
    tick(&mut g2, 1, &[]);
    let (_, ev) = tick(&mut g2, 2, &[]);
    let c = closed(&ev, AlertKind::Traffic);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id, open.id);
    // New alerts continue the numbering.
    let (_, ev) = tick(&mut g2, 3, &[pkt(5, 2, 2000, 80, Role::Other)]);
    assert_eq!(opened(&ev, AlertKind::Traffic)[0].id, open.id + 1);
}

#[test]
fn full_host_table_reports_untracked_and_stays_bounded() {
    let mut g = Aggregator::new(
        &config("").tap(|c| {
            c.traffic.max_hosts = 3;
            c.traffic.max_pairs = 2;
        }),
        RuntimeInfo::default(),
    );
    let pkts: Vec<_> = (0..20).map(|n| pkt(n, 200, 10, 80, Role::Other)).collect();
    let (snap, _) = tick(&mut g, 0, &pkts);
    assert_eq!(snap.tables.hosts, 3);
    assert!(snap.tables.pairs <= 2);
    let tracked: u64 = snap.hosts.iter().map(|h| h.sent_bytes).sum();
    assert_eq!(tracked + snap.lifetime_untracked.src_bytes, 200);
}

#[test]
fn pairs_are_kept_for_tracked_sources_only() {
    let mut g = Aggregator::new(
        &config("").tap(|c| {
            c.traffic.max_hosts = 3;
            c.traffic.max_pairs = 100;
        }),
        RuntimeInfo::default(),
    );
    // The victim and the first two sources fit; the others' pairs are not
    // kept either, though the pair table has room.
    let pkts: Vec<_> = (1..=20).map(|n| pkt(n, 200, 10, 80, Role::Other)).collect();
    let (snap, _) = tick(&mut g, 0, &pkts);
    assert_eq!(snap.tables.hosts, 3);
    assert_eq!(snap.tables.pairs, 2);
    assert_eq!(snap.lifetime_untracked.pair_bytes, 180);
    assert_eq!(snap.lifetime_untracked.src_bytes, 180);
    assert_eq!(
        host(&snap, 200).recv_bytes,
        200,
        "the victim's bytes are all counted"
    );
}

#[test]
fn idle_hosts_are_swept_after_their_windows_drain() {
    let mut g = agg("");
    let (snap, _) = tick(&mut g, 0, &[pkt(1, 2, 10, 80, Role::Other)]);
    assert_eq!(snap.tables.hosts, 2);
    for t in 1..40 {
        tick(&mut g, t, &[]);
    }
    assert_eq!(g.host_count(), 0);
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Config {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[test]
fn the_largest_senders_carry_destinations_below_the_chart_threshold() {
    // chart_min_bytes far above the traffic: only the DETAIL_HOSTS largest
    // senders get destinations, and /all still lists nobody.
    let mut c = config("");
    c.traffic.chart_min_bytes.0 = 1_000_000;
    let mut g = Aggregator::new(&c, RuntimeInfo::default());
    let mut pkts = Vec::new();
    for src in 1..=(DETAIL_HOSTS as u8).min(250) {
        pkts.push(pkt(src, 251, 100, 80, Role::Other));
    }
    pkts.push(pkt(1, 252, 50, 80, Role::Other));
    let (s, _) = tick(&mut g, 0, &pkts);
    let h1 = host(&s, 1);
    assert_eq!(h1.destinations.len(), 2);
    assert_eq!(h1.destinations[0].addr, a(251));
    assert_eq!(&s.all_json()[..], b"[]", "/all keeps the chart threshold");
}

/// A SYN (without ACK) from `src` to `dst`.
fn syn(src: u8, dst: u8) -> Summary {
    Summary {
        tcp_flags: crate::wire::tcp_flags::SYN,
        ..pkt(src, dst, 60, 80, Role::Initiation)
    }
}

const SYN_LIMIT: &str = "[rates]\nwindow = 5\n[rates.in]\nsyn_packets = 100\n";

#[test]
fn a_syn_flood_is_a_syn_rate_alert_on_its_victim() {
    let mut g = agg(SYN_LIMIT);
    // 600 SYNs in one tick from 200 sources: 120 per second over 5 s.
    let flood: Vec<_> = (0..600).map(|i| syn(1 + (i % 200) as u8, 250)).collect();
    let (_, ev) = tick(&mut g, 0, &flood);
    let s = opened(&ev, AlertKind::SynIn);
    assert_eq!(s.len(), 1, "{ev:?}");
    assert_eq!(s[0].subject, a(250).ip());
    assert_eq!(
        (s[0].value, s[0].threshold, s[0].unit),
        (120, 100, crate::alert::Unit::PacketsPerSec)
    );
    assert_eq!(s[0].window_secs, 5);
    assert_eq!(s[0].evidence.sources.len(), 10);
    assert!(opened(&ev, AlertKind::TcpIn).is_empty(), "no TCP limit");
    // The rate falls as the tick leaves the window (tick 5); the alert
    // closes after the 3-tick hold-down, with nothing in between.
    for t in 1..7 {
        let (_, ev) = tick(&mut g, t, &[]);
        assert!(closed(&ev, AlertKind::SynIn).is_empty(), "tick {t}: {ev:?}");
    }
    let (_, ev) = tick(&mut g, 7, &[]);
    let c = closed(&ev, AlertKind::SynIn);
    assert_eq!((c.len(), c[0].peak, c[0].value), (1, 120, 0), "{ev:?}");
}

#[test]
fn data_of_the_same_rate_is_no_syn_flood() {
    let mut g = agg(SYN_LIMIT);
    let data: Vec<_> = (0..600)
        .map(|i| Summary {
            tcp_flags: crate::wire::tcp_flags::ACK | crate::wire::tcp_flags::PSH,
            ..pkt(1 + (i % 200) as u8, 250, 60, 80, Role::Other)
        })
        .collect();
    let synack: Vec<_> = (0..600)
        .map(|_| Summary {
            tcp_flags: crate::wire::tcp_flags::SYN | crate::wire::tcp_flags::ACK,
            ..pkt(3, 250, 60, 80, Role::Reply)
        })
        .collect();
    for t in 0..10 {
        let (_, ev) = tick(&mut g, t, if t % 2 == 0 { &data } else { &synack });
        assert!(ev.iter().all(|e| e.alert.kind.rate().is_none()), "{ev:?}");
    }
}

#[test]
fn classes_bits_directions_and_rules_each_have_their_limit() {
    let mut g = agg(
        "[rates]\nwindow = 2\n[rates.in]\nfragment_packets = 10\n[rates.out]\nbits = 100000\n\
         [[rule]]\nnetworks = [\"10.0.0.9\"]\nrates_in = { fragment_packets = 1000 }\n",
    );
    let frag = |dst| Summary {
        proto: proto::UDP,
        fragment: true,
        has_ports: false,
        ..pkt(1, dst, 100, 0, Role::Other)
    };
    // 30 fragments in a 2-tick window: 15 per second, over 10 toward 8;
    // toward 9 its rule allows 1000. And 6 000 bytes from 1 = 24 000 bits
    // per second: not over 100 000.
    let mut pkts: Vec<_> = (0..30).flat_map(|_| [frag(8), frag(9)]).collect();
    pkts.truncate(60);
    let (_, ev) = tick(&mut g, 0, &pkts);
    let f = opened(&ev, AlertKind::FragmentsIn);
    assert_eq!(f.len(), 1, "{ev:?}");
    assert_eq!((f[0].subject, f[0].value), (a(8).ip(), 15));
    assert!(opened(&ev, AlertKind::UdpIn).is_empty());
    assert!(opened(&ev, AlertKind::RateOut).is_empty(), "{ev:?}");
    // Another 20 000 bytes from 1 next tick: 26 000 bytes over 2 s =
    // 104 000 bits per second.
    let (_, ev) = tick(&mut g, 1, &[pkt(1, 7, 20_000, 80, Role::Other)]);
    let r = opened(&ev, AlertKind::RateOut);
    assert_eq!(r.len(), 1, "{ev:?}");
    assert_eq!(
        (r[0].subject, r[0].value, r[0].unit),
        (a(1).ip(), 104_000, crate::alert::Unit::BitsPerSec)
    );
    assert!(!r[0].evidence.destinations.is_empty());
}

#[test]
fn hosts_without_rate_traffic_keep_no_rate_window() {
    let mut g = agg(SYN_LIMIT);
    let (_, _) = tick(&mut g, 0, &[pkt(1, 2, 100, 80, Role::Other)]);
    let p = &g.parts[0];
    assert!(p.hosts.get(a(1)).unwrap().rates.is_none());
    assert!(p.hosts.get(a(2)).unwrap().rates.is_none());
    let (_, _) = tick(&mut g, 1, &[syn(1, 2)]);
    let p = &g.parts[0];
    assert!(p.hosts.get(a(1)).unwrap().rates.is_none(), "no out limit");
    assert!(p.hosts.get(a(2)).unwrap().rates.is_some());
}
