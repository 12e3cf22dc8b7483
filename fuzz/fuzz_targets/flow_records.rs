//! Datagrams of flow records from routers (sFlow v5, NetFlow v5/v9,
//! IPFIX), several in a row from two exporters, so that templates, held
//! data sets and options carry over: every one is counted or dropped with
//! a reason, never a panic, and the tables stay within their bounds.
//! Input: chunks of a 2-byte big-endian length (its top bit picks the
//! exporter) and that many bytes. The same bytes are also read as an IPFIX
//! stream over TCP: split into messages by their headers, each decoded as
//! from a third exporter.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trafficalerted::config::Config;
use trafficalerted::config::flow_input::FlowInputConfig;
use trafficalerted::flowin::tcp::split;
use trafficalerted::flowin::thread::State;
use trafficalerted::shard::{Hasher, Shard, ShardLimits};

static CONFIG: OnceLock<FlowInputConfig> = OnceLock::new();

/// Bytes of data sets held per state: small, so that inputs of a few
/// kilobytes reach the bound (CI runs this target with a short `-max_len`).
const HELD: usize = 4_096;

fuzz_target!(|data: &[u8]| {
    let cfg = CONFIG.get_or_init(|| {
        let mut c = Config::default().flow_input;
        c.max_templates = 8;
        c.held_bytes = HELD as u64;
        c.max_exporters = 2;
        c
    });
    let mut state = State::new(cfg.clone());
    let mut shard = Shard::new(
        ShardLimits {
            max_hosts: 64,
            max_pairs: 64,
            max_ports: 64,
            answers: true,
            rates: trafficalerted::rates::IN | trafficalerted::rates::OUT,
        },
        &Hasher::new(),
    );
    // Parsed once: an input of 2-byte chunks is tens of thousands of them.
    let (v4, v6): (SocketAddr, SocketAddr) = (
        "192.0.2.1:2055".parse().unwrap(),
        "[2001:db8::1]:4739".parse().unwrap(),
    );
    let mut rest = data;
    let mut sent = 0u64;
    while rest.len() >= 2 {
        let head = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(head & 0x7fff).min(rest.len() - 2);
        let from = if head & 0x8000 != 0 { v4 } else { v6 };
        state.datagram(from, &rest[2..2 + len], &mut shard, 1);
        sent += 1;
        rest = &rest[2 + len..];
    }
    // As a TCP stream: messages back to back, each its header's length.
    let mut stream_state = State::new(cfg.clone());
    let mut messages = 0u64;
    let stream_from: SocketAddr = "192.0.2.3:4739".parse().unwrap();
    let (used, _) = split(data, &mut |m: &[u8]| {
        assert!(m.len() >= 16 && usize::from(u16::from_be_bytes([m[2], m[3]])) == m.len());
        messages += 1;
        stream_state.datagram(stream_from, m, &mut shard, 1);
    });
    assert!(used <= data.len());
    let seen: u64 = stream_state
        .report()
        .exporters
        .iter()
        .map(|e| e.datagrams)
        .sum();
    assert_eq!(seen, messages);
    shard.seal();
    let mut r = state.report();
    let s = stream_state.report();
    r.exporters.extend(s.exporters);
    r.templates += s.templates;
    r.held_bytes_now += s.held_bytes_now;
    assert!(r.templates <= 16, "8 per state");
    assert!(r.held_bytes_now <= 2 * HELD);
    // Each held set is charged 384 bytes besides its own.
    assert!(
        r.held_sets_now <= 2 * HELD / 384,
        "{} sets held",
        r.held_sets_now
    );
    let datagrams: u64 = r.exporters.iter().map(|e| e.datagrams).sum();
    assert_eq!(datagrams, sent + messages);
    // What the exporters' views say was counted is what the shard holds.
    let packets: u64 = r.exporters.iter().map(|e| e.packets).sum();
    let bytes: u64 = r.exporters.iter().map(|e| e.bytes).sum();
    assert_eq!((shard.totals.packets, shard.totals.bytes), (packets, bytes));
});
