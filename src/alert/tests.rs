use super::*;

fn lc(hold: u64) -> Lifecycle {
    Lifecycle::new([hold; KINDS], [170; KINDS])
}

fn sit(tick: u64) -> Situation {
    Situation {
        now: Now {
            tick,
            unix_ms: 1_000_000 + tick * 1000,
        },
        drop_ratio: 0.0,
        degraded_ratio: 0.01,
    }
}

fn m(value: u64) -> Measurement {
    Measurement {
        value,
        threshold: 100,
        unit: Unit::Bytes,
    }
}

fn host() -> Addr {
    Addr::from_v4([10, 0, 0, 1])
}

#[test]
fn at_the_limit_no_alert_one_past_it_opens() {
    let mut l = lc(3);
    let mut closed = Vec::new();
    assert!(!l.observe(
        AlertKind::Traffic,
        host(),
        m(100),
        "default",
        &sit(0),
        &mut closed
    ));
    assert!(l.is_empty());
    assert!(l.observe(
        AlertKind::Traffic,
        host(),
        m(101),
        "default",
        &sit(1),
        &mut closed
    ));
    assert_eq!(l.len(), 1);
    let opened = l.take_opened();
    assert_eq!(opened, vec![(AlertKind::Traffic, host())]);
    assert!(l.take_opened().is_empty());
}

#[test]
fn updates_are_not_new_alerts_and_peak_is_kept() {
    let mut l = lc(3);
    let mut closed = Vec::new();
    l.observe(
        AlertKind::Traffic,
        host(),
        m(150),
        "default",
        &sit(0),
        &mut closed,
    );
    l.take_opened();
    for (t, v) in [(1, 300), (2, 200), (3, 120)] {
        assert!(!l.observe(
            AlertKind::Traffic,
            host(),
            m(v),
            "default",
            &sit(t),
            &mut closed
        ));
        assert!(l.take_opened().is_empty());
    }
    let a = &l.get_mut(AlertKind::Traffic, host()).unwrap().alert;
    assert_eq!((a.id, a.value, a.peak), (1, 120, 300));
    assert_eq!(a.last_update_ms, sit(3).now.unix_ms);
    assert!(closed.is_empty());
}

#[test]
fn closes_after_hold_down_below_and_a_dip_resets_it() {
    let mut l = lc(3);
    let mut closed = Vec::new();
    l.observe(
        AlertKind::PortScan,
        host(),
        m(500),
        "default",
        &sit(0),
        &mut closed,
    );
    // Below for two ticks, over again, below for three: closes on the
    // third tick below.
    for (t, v) in [(1, 50), (2, 50), (3, 500), (4, 50), (5, 50)] {
        l.observe(
            AlertKind::PortScan,
            host(),
            m(v),
            "default",
            &sit(t),
            &mut closed,
        );
    }
    assert!(closed.is_empty());
    l.observe(
        AlertKind::PortScan,
        host(),
        m(50),
        "default",
        &sit(6),
        &mut closed,
    );
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].end_ms, Some(sit(6).now.unix_ms));
    assert_eq!(closed[0].peak, 500);
    assert!(!l.is_open(AlertKind::PortScan, host()));
    // A new crossing is a new alert with a new id.
    assert!(l.observe(
        AlertKind::PortScan,
        host(),
        m(101),
        "default",
        &sit(7),
        &mut closed
    ));
    assert_eq!(l.get_mut(AlertKind::PortScan, host()).unwrap().alert.id, 2);
}

#[test]
fn unobserved_alerts_count_as_below() {
    let mut l = lc(2);
    let mut closed = Vec::new();
    l.observe(
        AlertKind::Inbound,
        host(),
        m(500),
        "default",
        &sit(0),
        &mut closed,
    );
    l.unobserved(AlertKind::Inbound, host(), sit(1).now, &mut closed);
    assert!(closed.is_empty());
    assert_eq!(l.closes_at(AlertKind::Inbound, host()), Some(2));
    l.unobserved(AlertKind::Inbound, host(), sit(2).now, &mut closed);
    assert_eq!(closed.len(), 1);
}

#[test]
fn scheduled_looks_come_due_once_and_the_latest_time_wins() {
    let mut l = lc(2);
    let mut closed = Vec::new();
    l.observe(
        AlertKind::Traffic,
        host(),
        m(500),
        "default",
        &sit(0),
        &mut closed,
    );
    l.schedule(AlertKind::Traffic, host(), 0, 9);
    l.schedule(AlertKind::Traffic, host(), 0, 5);
    assert_eq!(l.next_due(), Some(5));
    // A later time does not push back an earlier look still to come.
    l.schedule(AlertKind::Traffic, host(), 0, 7);
    let mut due = Vec::new();
    l.due(4, &mut due);
    assert!(due.is_empty());
    l.due(9, &mut due);
    assert_eq!(due, vec![(AlertKind::Traffic, host())], "once, at 5");
    due.clear();
    // Once it came, the next one is what the look schedules.
    l.schedule(AlertKind::Traffic, host(), 5, 12);
    l.due(11, &mut due);
    assert!(due.is_empty());
    l.due(12, &mut due);
    assert_eq!(due.len(), 1);
}

#[test]
fn a_look_scheduled_over_the_threshold_stays_until_it_comes_or_the_value_falls() {
    let mut l = lc(3);
    let mut closed = Vec::new();
    let k = AlertKind::AddressScan;
    let look = |l: &mut Lifecycle, v: u64, t: u64, at: u64| {
        let mut closed = Vec::new();
        l.observe(k, host(), m(v), "default", &sit(t), &mut closed);
        let mut asked = false;
        l.schedule_by(k, host(), t, |_| {
            asked = true;
            at
        });
        asked
    };
    l.observe(k, host(), m(150), "default", &sit(0), &mut closed);
    assert!(look(&mut l, 150, 0, 20), "the first look is worked out");
    assert_eq!(l.next_due(), Some(20));
    // Over again before it comes: the look at 20 stays, not asked again.
    assert!(!look(&mut l, 160, 5, 30));
    assert!(!look(&mut l, 170, 19, 25));
    let mut due = Vec::new();
    l.due(19, &mut due);
    assert!(due.is_empty());
    l.due(20, &mut due);
    assert_eq!(due, vec![(k, host())]);
    // At its look it is worked out again.
    assert!(look(&mut l, 150, 20, 40));
    // Below the threshold it is worked out (from the hold-down's end), and
    // once over again, afresh.
    assert!(look(&mut l, 90, 21, 40));
    assert_eq!(l.closes_at(k, host()), Some(23));
    assert!(look(&mut l, 150, 22, 45));
    assert!(!look(&mut l, 150, 23, 50));
    assert!(closed.is_empty());
}

#[test]
fn looks_come_due_earliest_first_however_far_ahead() {
    let mut l = lc(2);
    let mut closed = Vec::new();
    let hosts: Vec<Addr> = (1..=4).map(|i| Addr::from_v4([10, 0, 0, i])).collect();
    for h in &hosts {
        l.observe(
            AlertKind::Traffic,
            *h,
            m(500),
            "default",
            &sit(0),
            &mut closed,
        );
    }
    // Beyond the span a wheel's slots cover, and out of order.
    let far = crate::wheel::SLOTS as u64 * 5 + 3;
    l.schedule(AlertKind::Traffic, hosts[0], 0, far);
    l.schedule(AlertKind::Traffic, hosts[1], 0, 8);
    l.schedule(AlertKind::Traffic, hosts[2], 0, 3);
    l.schedule(AlertKind::Traffic, hosts[3], 0, 8);
    assert_eq!(l.next_due(), Some(3));
    let mut due = Vec::new();
    l.due(far - 1, &mut due);
    let at = |i: usize| (AlertKind::Traffic, hosts[i]);
    assert_eq!(due, vec![at(2), at(1), at(3)]);
    assert_eq!(l.next_due(), Some(far));
    due.clear();
    l.due(far, &mut due);
    assert_eq!(due, vec![at(0)]);
}

#[test]
fn kinds_and_subjects_are_separate_alerts() {
    let mut l = lc(2);
    let mut closed = Vec::new();
    let other = Addr::from_v4([10, 0, 0, 2]);
    assert!(l.observe(
        AlertKind::Traffic,
        host(),
        m(500),
        "default",
        &sit(0),
        &mut closed
    ));
    assert!(l.observe(
        AlertKind::AddressScan,
        host(),
        m(500),
        "default",
        &sit(0),
        &mut closed
    ));
    assert!(l.observe(
        AlertKind::Traffic,
        other,
        m(500),
        "default",
        &sit(0),
        &mut closed
    ));
    assert_eq!(l.len(), 3);
}

#[test]
fn degraded_is_sticky() {
    let mut l = lc(2);
    let mut closed = Vec::new();
    let mut s = sit(0);
    s.drop_ratio = 0.05;
    l.observe(
        AlertKind::Traffic,
        host(),
        m(500),
        "default",
        &s,
        &mut closed,
    );
    l.observe(
        AlertKind::Traffic,
        host(),
        m(500),
        "default",
        &sit(1),
        &mut closed,
    );
    let a = &l.get_mut(AlertKind::Traffic, host()).unwrap().alert;
    assert!(a.degraded);
    assert_eq!(a.drop_ratio, 0.05);
}

#[test]
fn restored_alerts_keep_their_ids() {
    let mut l = lc(2);
    let mut closed = Vec::new();
    l.observe(
        AlertKind::Traffic,
        host(),
        m(500),
        "default",
        &sit(0),
        &mut closed,
    );
    let a = l.get_mut(AlertKind::Traffic, host()).unwrap().alert.clone();
    let mut l2 = lc(2);
    l2.restore(vec![a], sit(10).now);
    assert!(l2.is_open(AlertKind::Traffic, host()));
    assert!(l2.observe(
        AlertKind::AddressScan,
        host(),
        m(500),
        "default",
        &sit(10),
        &mut closed
    ));
    assert_eq!(
        l2.get_mut(AlertKind::AddressScan, host()).unwrap().alert.id,
        2
    );
}

#[test]
fn an_alert_that_closes_and_opens_again_before_it_is_announced_is_announced_once() {
    // With a one-tick hold-down, one tick's looks can open an alert, close
    // it and open a new one before the aggregator announces what opened.
    let mut l = lc(1);
    let mut closed = Vec::new();
    for v in [150, 50, 150] {
        l.observe(
            AlertKind::Traffic,
            host(),
            m(v),
            "default",
            &sit(4),
            &mut closed,
        );
    }
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].id, 1);
    assert_eq!(l.take_opened(), vec![(AlertKind::Traffic, host())]);
    assert_eq!(l.get(AlertKind::Traffic, host()).unwrap().alert.id, 2);
}

#[test]
fn thousands_of_open_alerts_of_every_kind_are_found_kept_apart_and_closed() {
    // The open alerts' own map (open addressing, boxed alerts): every
    // kind for many subjects, some closed, a kind number mapped back.
    let mut l = lc(1);
    let mut closed = Vec::new();
    let subject = |n: u32| Addr::from_v4(n.to_be_bytes());
    for n in 0..3000u32 {
        for kind in [
            AlertKind::Traffic,
            AlertKind::AddressScan,
            AlertKind::FlowsOut,
        ] {
            assert!(l.observe(kind, subject(n), m(200), "default", &sit(0), &mut closed));
        }
    }
    assert_eq!(l.len(), 9000);
    // Looking ahead changes nothing.
    l.prefetch_entries(u32::MAX, subject(7));
    l.prefetch(u32::MAX, subject(7));
    l.prefetch(AlertKind::PortScan.bit(), subject(7));
    assert_eq!(l.len(), 9000);
    assert!(!l.is_open(AlertKind::PortScan, subject(7)));
    assert!(l.get_mut(AlertKind::PortScan, subject(7)).is_none());
    assert_eq!(l.len(), 9000, "a look for a missing alert adds none");
    // Below the threshold with a hold-down of one tick: closes.
    for n in (0..3000u32).step_by(2) {
        l.observe(
            AlertKind::AddressScan,
            subject(n),
            m(1),
            "default",
            &sit(1),
            &mut closed,
        );
    }
    assert_eq!(closed.len(), 1500);
    assert_eq!(l.len(), 7500);
    for n in 0..3000u32 {
        assert_eq!(
            l.is_open(AlertKind::AddressScan, subject(n)),
            n % 2 == 1,
            "{n}"
        );
        assert!(l.is_open(AlertKind::Traffic, subject(n)));
        assert_eq!(
            l.get(AlertKind::FlowsOut, subject(n)).map(|o| o.alert.kind),
            Some(AlertKind::FlowsOut)
        );
    }
    let mut subjects: Vec<_> = l.subjects().collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 7500);
    assert!(subjects.contains(&(AlertKind::FlowsOut, subject(2999))));
    assert_eq!(l.open_alerts().count(), 7500);
    let ids: std::collections::HashSet<u64> = l.open_alerts().map(|o| o.alert.id).collect();
    assert_eq!(ids.len(), 7500, "each alert once");
}
