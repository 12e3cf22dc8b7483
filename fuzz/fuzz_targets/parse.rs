//! The packet parser on arbitrary frames, and the counting that follows it.
//!
//! Input: one byte choosing the link type, four bytes of wire length
//! (little-endian; the captured bytes may be shorter, as with a snap
//! length), then the frame. Frames are parsed as they are and looking
//! into every tunnel kind (VXLAN, GENEVE, GRE, ERSPAN).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use trafficalerted::counters::{IfaceDelta, count_frame};
use trafficalerted::flows::UdpFlows;
use trafficalerted::shard::{Hasher, Shard, ShardLimits};
use trafficalerted::wire::{self, Decap, Direction, LinkType, Meta};

const LINKS: [LinkType; 7] = [
    LinkType::Ethernet,
    LinkType::RawIp,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Kernel,
];

static HASHER: OnceLock<Hasher> = OnceLock::new();
static ALL_TUNNELS: OnceLock<Decap> = OnceLock::new();

fuzz_target!(|input: &[u8]| {
    if input.len() < 5 {
        return;
    }
    let link = LINKS[input[0] as usize % LINKS.len()];
    let extra = u32::from_le_bytes([input[1], input[2], input[3], input[4]]) % 70_000;
    let data = &input[5..];
    let wire_len = (data.len() as u32).saturating_add(extra);
    let meta = Meta {
        wire_len,
        vlan: u16::from(input[0] >> 4),
        direction: if input[0] & 0x80 != 0 {
            Direction::Out
        } else {
            Direction::In
        },
        protocol: u16::from_be_bytes([input[1], input[2]]),
        net_offset: u16::from(input[3]),
    };
    let all = ALL_TUNNELS.get_or_init(|| {
        let mut d = Decap::NONE;
        for e in ["gre", "erspan", "vxlan", "geneve"] {
            d.add(e).expect("a tunnel kind");
        }
        d
    });
    for decap in [&Decap::NONE, all] {
        if let Ok(s) = wire::parse_with(link, data, meta, decap) {
            assert!(s.l3_len <= wire_len, "layer-3 length beyond the frame");
            assert!(s.tunnel_len <= wire_len, "tunnel length beyond the frame");
            assert!(
                s.l3_len <= s.tunnel_len || s.tunnel_len == 0,
                "inner packet larger than its tunnel"
            );
            if s.has_ports {
                assert!(!s.later_fragment);
            }
        }
    }
    let hasher = HASHER.get_or_init(Hasher::new);
    let mut shard = Shard::new(
        ShardLimits {
            max_hosts: 4,
            max_pairs: 4,
            max_ports: 4,
            answers: true,
            rates: 0,
        },
        hasher,
    );
    let mut iface = IfaceDelta::new(1);
    let mut flows = UdpFlows::new(4);
    count_frame(link, data, meta, all, &mut iface, &mut shard, &mut flows);
    let tracked: u64 = shard.hosts().iter().map(|h| h.sent_bytes).sum();
    assert_eq!(tracked + shard.untracked.src_bytes, shard.totals.bytes);
});
