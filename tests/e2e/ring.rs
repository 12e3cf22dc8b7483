//! The ring crate on a real interface: frames, lengths, stripped VLAN tags,
//! packet types, fanout, ignoring outgoing packets, kernel statistics.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tpacket::{Fanout, FanoutMode, PacketType, Ring, RingConfig, WaitKind, Waiter};

use crate::netns::{Netns, enter, require, sh, unique};
use crate::traffic::{trafgen, trafgen_qdisc};

struct Pair {
    a: Netns,
    b: Netns,
    va: String,
    vb: String,
}

fn pair() -> Pair {
    let a = Netns::new("a");
    let b = Netns::new("b");
    let va = unique("va");
    let vb = unique("vb");
    sh(&[
        "ip", "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns",
        &b.name,
    ]);
    for (ns, dev) in [(&a, &va), (&b, &vb)] {
        ns.ip(&["link", "set", dev, "up"]);
        ns.exec(&[
            "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
        ]);
        // No IPv6 chatter (router solicitations, MLD) in the counts.
        ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
        ]);
    }
    Pair { a, b, va, vb }
}

fn cfg(fanout: Option<Fanout>, ignore_outgoing: bool) -> RingConfig {
    RingConfig {
        block_size: 1 << 16,
        block_count: 64,
        retire_timeout_ms: 10,
        snaplen: 128,
        ignore_outgoing,
        fanout,
    }
}

#[derive(Debug, Clone)]
struct Seen {
    wire_len: u32,
    data_len: usize,
    vlan: Option<u16>,
    packet_type: PacketType,
    ring: usize,
}

/// Frames seen, each ring's kernel counters, and whether the first ring
/// says the kernel keeps outgoing packets out of it.
type Captured = (Vec<Seen>, Vec<tpacket::Stats>, bool);

/// Opens rings in namespace `ns` (in a thread of their own), reports when
/// they are open, then collects frames until `want` arrived or 10 s passed.
fn capture(
    ns: String,
    ifindex: u32,
    cfgs: Vec<RingConfig>,
    want: usize,
) -> (mpsc::Receiver<()>, std::thread::JoinHandle<Captured>) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        enter(&ns);
        let mut rings: Vec<Ring> = Vec::new();
        for mut c in cfgs {
            if let (Some(Fanout::Join(mode, _)), Some(first)) = (c.fanout, rings.first()) {
                c.fanout = Some(Fanout::Join(mode, first.fanout_group().expect("group")));
            }
            rings.push(Ring::open(ifindex, &c).expect("open ring"));
        }
        let (mut w, _) = Waiter::new(WaitKind::Auto).unwrap();
        for (i, r) in rings.iter().enumerate() {
            w.register(std::os::fd::AsFd::as_fd(r), i as u64).unwrap();
        }
        ready_tx.send(()).unwrap();
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        let mut events = Vec::new();
        while seen.len() < want && Instant::now() < end {
            drain(&mut rings, &mut seen);
            events.clear();
            w.wait(Duration::from_millis(50), &mut events).unwrap();
        }
        // Anything that came in after the count was reached: a frame too
        // many is a failure too.
        std::thread::sleep(Duration::from_millis(50));
        drain(&mut rings, &mut seen);
        let stats = rings.iter().map(|r| r.take_stats().unwrap()).collect();
        for i in 0..rings.len() {
            w.deregister(i as u64).unwrap();
        }
        (seen, stats, rings[0].ignores_outgoing())
    });
    (ready_rx, h)
}

/// Reads every ready block of every ring.
fn drain(rings: &mut [Ring], seen: &mut Vec<Seen>) {
    for (i, r) in rings.iter_mut().enumerate() {
        while let Some(b) = r.next_block() {
            for f in b.frames() {
                seen.push(Seen {
                    wire_len: f.wire_len,
                    data_len: f.data.len(),
                    vlan: f.vlan.map(|v| v.id()),
                    packet_type: f.packet_type,
                    ring: i,
                });
            }
        }
    }
}

fn frame(mac: &str, vlan: bool, payload: usize) -> String {
    let tag = if vlan { "vlan(id=100), " } else { "" };
    format!(
        "{{ eth(da={mac}), {tag}ipv4(ttl=64, sa=10.7.0.2, da=10.7.0.1), udp(sp=dinc(1000, 60000), dp=9), fill(0x42, {payload}) }}"
    )
}

#[test]
fn frames_carry_wire_length_snap_length_vlan_and_type() {
    require(&["trafgen", "ethtool"]);
    let p = pair();
    let mac = p.a.mac(&p.va);
    let (ready, h) = capture(
        p.a.name.clone(),
        p.a.ifindex(&p.va),
        vec![cfg(None, false)],
        150,
    );
    ready.recv().unwrap();
    trafgen(&p.b, &p.vb, 100, 50, &frame(&mac, false, 972));
    trafgen(&p.b, &p.vb, 50, 50, &frame(&mac, true, 972));
    let (seen, stats, _) = h.join().unwrap();
    assert_eq!(seen.len(), 150, "{seen:?}");
    for s in &seen {
        // 14 + 20 + 8 + 972 on the wire; the VLAN tag is stripped into the
        // frame header, not counted in the length.
        assert_eq!(s.wire_len, 1014, "{s:?}");
        assert_eq!(s.data_len, 128, "cut at the snap length: {s:?}");
        assert_eq!(s.packet_type, PacketType::Host);
    }
    assert_eq!(seen.iter().filter(|s| s.vlan == Some(100)).count(), 50);
    assert_eq!(stats[0].packets, 150);
    assert_eq!(stats[0].drops, 0);
}

#[test]
fn fanout_members_share_packets_without_duplicates() {
    require(&["trafgen", "ethtool"]);
    let p = pair();
    let mac = p.a.mac(&p.va);
    let lb = FanoutMode::LoadBalance;
    let (ready, h) = capture(
        p.a.name.clone(),
        p.a.ifindex(&p.va),
        vec![
            cfg(Some(Fanout::New(lb)), false),
            cfg(Some(Fanout::Join(lb, 0)), false),
        ],
        1000,
    );
    ready.recv().unwrap();
    trafgen(&p.b, &p.vb, 1000, 20, &frame(&mac, false, 100));
    let (seen, stats, _) = h.join().unwrap();
    assert_eq!(
        seen.len(),
        1000,
        "each packet exactly once across the group"
    );
    let first = seen.iter().filter(|s| s.ring == 0).count();
    assert!(
        first > 0 && first < 1000,
        "both members got a share: {first}/1000"
    );
    assert_eq!(stats.iter().map(|s| s.packets).sum::<u64>(), 1000);
}

/// Outgoing packets stay out of a ring when asked — where the kernel can:
/// fanout groups honour it from Linux 6.2, and the ring says whether it
/// does (the daemon then filters them itself).
#[test]
fn outgoing_packets_are_seen_or_ignored_as_asked() {
    require(&["trafgen", "ethtool"]);
    let fanout_honours = tpacket::kernel_version() >= (6, 2);
    for fanout in [None, Some(Fanout::New(FanoutMode::Hash))] {
        for ignore in [false, true] {
            let p = pair();
            let mac_a = p.a.mac(&p.va);
            let mac_b = p.b.mac(&p.vb);
            let kept_out = ignore && (fanout.is_none() || fanout_honours);
            let want = if kept_out { 20 } else { 50 };
            let (ready, h) = capture(
                p.a.name.clone(),
                p.a.ifindex(&p.va),
                vec![cfg(fanout, ignore)],
                want,
            );
            ready.recv().unwrap();
            // 30 leave through va (outgoing), 20 arrive on it.
            trafgen_qdisc(&p.a, &p.va, 30, 50, &frame(&mac_b, false, 50));
            trafgen(&p.b, &p.vb, 20, 50, &frame(&mac_a, false, 50));
            let (seen, _, says) = h.join().unwrap();
            assert_eq!(says, kept_out, "fanout {fanout:?}, ignore {ignore}");
            let out = seen.iter().filter(|s| s.packet_type.is_outgoing()).count();
            assert_eq!(
                seen.len(),
                want,
                "fanout {fanout:?}, ignore {ignore}: {seen:?}"
            );
            assert_eq!(out, want - 20, "fanout {fanout:?}, ignore {ignore}");
        }
    }
}
