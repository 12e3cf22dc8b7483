use super::*;

use crate::rules::Limits;
use crate::window::col;

fn rules() -> RuleSet {
    RuleSet::new(Limits::default(), vec![])
}

fn a(n: u32) -> Addr {
    Addr::from_v4(n.to_be_bytes())
}

#[test]
fn a_host_takes_whole_cache_lines() {
    assert_eq!(std::mem::align_of::<HostState>(), 64);
    assert_eq!(std::mem::size_of::<HostState>() % 64, 0);
    // Six lines: what a full table of the default 65 536 hosts is sized by.
    assert_eq!(std::mem::size_of::<HostState>(), 6 * 64);
    // The window's rows of 16 bytes do not straddle lines.
    assert_eq!(std::mem::offset_of!(HostState, win) % 16, 0);
    let mut t = HostTable::new(4, &Hasher::new());
    let id = t.upsert(Addr::from_v4([10, 0, 0, 1]), &rules()).unwrap();
    assert_eq!(std::ptr::from_ref(t.slot(id)) as usize % 64, 0);
}

#[test]
fn a_prefaulted_table_fills_without_growing_and_counts_alike() {
    let g = Geometry::new(4);
    let r = rules();
    let mut plain = HostTable::new(1000, &Hasher::new());
    let mut pre = HostTable::new(1000, &Hasher::new());
    pre.prefault().unwrap();
    assert_eq!(
        HostTable::prefault_bytes(1000),
        2048 * OpenMap::<Addr, Id>::SLOT_BYTES
            + 1000 * (std::mem::size_of::<HostState>() + 1 + SPARE_SCAN_BYTES)
    );
    assert_eq!(pre.spare_scans.len(), 1000, "a scan set for every host");
    assert!(pre.bytes() >= HostTable::prefault_bytes(1000));
    let (index, slots) = (pre.index.capacity(), pre.slots.as_ptr());
    assert!(index >= 2000 && pre.slots.capacity() >= 1000);
    assert!(pre.is_empty() && pre.bytes() >= 1000 * std::mem::size_of::<HostState>());
    for n in 0..1200 {
        let (p, q) = (plain.upsert(a(n), &r), pre.upsert(a(n), &r));
        assert_eq!(p, q);
        if let Some(id) = q {
            pre.slot_mut(id).win.add(&g, 0, [n as u64, 1, 0, 0]);
            plain.slot_mut(id).win.add(&g, 0, [n as u64, 1, 0, 0]);
        }
    }
    assert_eq!(pre.len(), 1000);
    assert_eq!(pre.index.capacity(), index, "the index did not grow");
    assert_eq!(pre.slots.as_ptr(), slots, "the slots did not move");
    for n in 0..1000 {
        let id = pre.id(a(n)).unwrap();
        assert_eq!(pre.slot(id).addr, a(n));
        assert_eq!(pre.slot(id).win.sum(&g, 0, col::SENT_BYTES), u64::from(n));
        assert_eq!(plain.id(a(n)), Some(id));
    }
}

#[test]
fn scan_sets_come_from_the_spares_and_freed_ones_go_back_empty() {
    let g = Geometry::new(4);
    let r = rules();
    let mut t = HostTable::new(4, &Hasher::new());
    t.prefault().unwrap();
    let spare: Vec<*const ScanSets> = t.spare_scans.iter().map(|b| &**b as *const _).collect();
    let mut ids = Vec::new();
    for n in 0..4 {
        let id = t.upsert(a(n), &r).unwrap();
        t.slot_mut(id).win.add(&g, 0, [10, 1, 0, 0]);
        // A scanner past the inline entries, with a sketch; of ports too
        // for some, each set's memory counted on its own.
        for k in 0..5 {
            t.with_set(id, |s| &mut s.addresses, |s, may| s.touch(k, 0, 4, 4, may));
            if n % 2 == 1 {
                t.with_set(id, |s| &mut s.ports, |s, may| s.touch(k, 0, 4, 4, may));
            }
        }
        let held = t.slot(id).scan.as_deref().unwrap() as *const ScanSets;
        assert!(spare.contains(&held), "host {n}'s sets are a spare's");
        ids.push(id);
    }
    assert!(t.spare_scans.is_empty());
    assert!(t.sketches > 0 && t.scan_heap > 4 * std::mem::size_of::<ScanSets>());
    // The running counts are what the hosts hold.
    let held: usize = ids.iter().map(|&id| t.slot(id).heap_bytes()).sum();
    let sketches: usize = ids.iter().map(|&id| t.slot(id).sketches()).sum();
    assert_eq!((t.scan_heap, t.sketches), (held, sketches));
    let mut touched = Vec::new();
    t.take_touched(&mut touched);
    for &id in &ids {
        assert!(t.try_free(id, &g, 8, (4, 4)));
    }
    assert_eq!(t.spare_scans.len(), 4, "back among the spares");
    assert_eq!((t.sketches, t.scan_heap), (0, 0));
    for s in &t.spare_scans {
        assert_eq!(
            s.addresses.heap_bytes() + s.ports.heap_bytes(),
            0,
            "emptied"
        );
        assert!(!s.addresses.has_sketch());
        assert_eq!(s.addresses.count(0, 4), 0, "no key of its last host");
    }
    // A new host's sets start empty, even counted at the tick its
    // spare's last host contacted; spares never outnumber the bound.
    let id = t.upsert(a(9), &r).unwrap();
    let fresh = t.with_set(id, |s| &mut s.addresses, |s, _| s.count(0, 4));
    assert_eq!(fresh, 0);
    t.set_max(2);
    assert_eq!(t.spare_scans.len(), 2);
}

#[test]
fn bounded_and_reuses_slots() {
    let g = Geometry::new(4);
    let mut t = HostTable::new(3, &Hasher::new());
    let r = rules();
    for n in 0..3 {
        let id = t.upsert(a(n), &r).unwrap();
        t.slot_mut(id).win.add(&g, 0, [10, 1, 0, 0]);
    }
    assert_eq!(t.upsert(a(9), &r), None, "full");
    let mut touched = Vec::new();
    t.take_touched(&mut touched);
    assert_eq!(touched.len(), 3);
    // Four ticks later every window has drained: all can be freed.
    for id in 0..3 {
        assert!(t.try_free(id, &g, 4, (4, 4)));
    }
    assert!(t.is_empty());
    assert!(!t.try_free(0, &g, 4, (4, 4)), "not twice");
    let id = t.upsert(a(9), &r).unwrap();
    assert!(id < 3, "a freed slot is reused");
    assert_eq!(
        t.slot(id).win.sum(&g, 4, col::SENT_BYTES),
        0,
        "fresh window"
    );
}

#[test]
fn the_screen_filter_holds_every_host_and_is_made_again_once_freed_ones_crowd_it() {
    let g = Geometry::new(4);
    let mut t = HostTable::new(8, &Hasher::new());
    let r = rules();
    let mut touched = Vec::new();
    let (f0, made) = t.screen_filter();
    assert!(made, "made when first asked for");
    // Rounds of eight hosts, each round freed before the next: the
    // first filter takes the first eight and the next eight as they
    // come, and is made again after eight were freed.
    let mut made_at = Vec::new();
    for round in 0..4u32 {
        let ids: Vec<u32> = (0..8)
            .map(|n| t.upsert(a(round * 100 + n), &r).unwrap())
            .collect();
        let (f, made) = t.screen_filter();
        if made {
            made_at.push(round);
        }
        for n in 0..8 {
            assert!(f.may_hold(a(round * 100 + n)), "round {round} host {n}");
        }
        assert_eq!(t.room(), 0);
        t.take_touched(&mut touched);
        for id in ids {
            assert!(t.try_free(id, &g, 4 * (u64::from(round) + 1), (4, 4)));
        }
        assert_eq!(t.room(), 8);
    }
    assert!(
        f0.may_hold(a(0)) && f0.may_hold(a(107)),
        "added to as hosts came"
    );
    assert_eq!(made_at, vec![1, 2, 3], "again once eight were freed");
    // A new bound makes it again, for that many.
    t.set_max(100);
    assert!(t.screen_filter().1);
    assert!(!t.screen_filter().1);
}

#[test]
fn alerting_and_touched_hosts_are_not_freed() {
    let g = Geometry::new(4);
    let mut t = HostTable::new(10, &Hasher::new());
    let r = rules();
    let x = t.upsert(a(1), &r).unwrap();
    let y = t.upsert(a(2), &r).unwrap();
    t.slot_mut(x).alerting = 1;
    assert!(!t.try_free(y, &g, 100, (4, 4)), "touched this tick");
    let mut touched = Vec::new();
    t.take_touched(&mut touched);
    assert!(!t.try_free(x, &g, 100, (4, 4)), "alerting");
    assert!(t.try_free(y, &g, 100, (4, 4)));
    assert!(t.get(a(1)).is_some());
}

#[test]
fn hosts_with_recent_contacts_stay() {
    let g = Geometry::new(4);
    let mut t = HostTable::new(10, &Hasher::new());
    let r = rules();
    let x = t.upsert(a(1), &r).unwrap();
    t.with_set(x, |s| &mut s.ports, |s, _| s.touch(80, 5, 600, 10, false));
    let mut touched = Vec::new();
    t.take_touched(&mut touched);
    assert!(
        !t.try_free(x, &g, 100, (4, 600)),
        "port contact 95 ticks ago, window 600"
    );
    assert!(t.try_free(x, &g, 605, (4, 600)));
}

#[test]
fn rules_are_looked_up_once_and_again_on_relabel() {
    use crate::rules::{Action, Cidr, Rule};
    let mut t = HostTable::new(10, &Hasher::new());
    t.upsert(a(0x0a00_0001), &rules()).unwrap();
    assert_eq!(t.get(a(0x0a00_0001)).unwrap().rule, 0);
    let r2 = RuleSet::new(
        Limits::default(),
        vec![Rule {
            name: "lan".into(),
            networks: vec![Cidr::parse("10.0.0.0/8").unwrap()],
            action: Action::Ignore,
        }],
    );
    t.relabel(&r2);
    assert_eq!(t.get(a(0x0a00_0001)).unwrap().rule, 1);
}
