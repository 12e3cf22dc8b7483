use std::net::SocketAddr;

use super::build::*;
use super::templated::Templates;
use super::thread::State;
use super::*;
use crate::config::flow_input::{ExporterConfig, FlowInputConfig};
use crate::shard::{Hasher, Shard, ShardLimits};
use crate::wire::{Addr, Role, proto, tcp_flags};

fn exporter() -> SocketAddr {
    "192.0.2.1:40000".parse().unwrap()
}

fn v4(a: [u8; 4]) -> Addr {
    Addr::from_v4(a)
}

type Wrap = fn(&[Vec<u8>]) -> Vec<u8>;

fn run(t: &mut Templates, d: &[u8]) -> (Result<Datagram, (Option<Protocol>, Problem)>, Decoded) {
    let mut out = Decoded::default();
    let r = decode(t, exporter(), d, &mut out);
    (r, out)
}

#[test]
fn netflow5_records_and_sampling() {
    let d = nf5(
        &[
            (
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                proto::UDP,
                5000,
                53,
                0,
                10,
                1000,
            ),
            (
                [10, 0, 0, 3],
                [10, 0, 0, 2],
                proto::TCP,
                40000,
                22,
                tcp_flags::SYN,
                1,
                60,
            ),
        ],
        100,
    );
    let (r, out) = run(&mut Templates::new(16, 1 << 16), &d);
    let r = r.unwrap();
    assert_eq!((r.protocol, r.sampling), (Protocol::Netflow5, 100));
    assert_eq!(out.flows.len(), 2);
    let f = out.flows[1];
    assert_eq!(
        (f.summary.src, f.summary.dst),
        (v4([10, 0, 0, 3]), v4([10, 0, 0, 2]))
    );
    assert_eq!((f.packets, f.bytes, f.input_if, f.output_if), (1, 60, 3, 4));
    assert_eq!((f.summary.dst_port, f.summary.role), (22, Role::Initiation));
    // A count beyond what the datagram holds.
    let mut bad = d.clone();
    bad[3] = 3;
    assert_eq!(
        run(&mut Templates::new(16, 1 << 16), &bad).0.unwrap_err(),
        (Some(Protocol::Netflow5), Problem::Truncated)
    );
}

#[test]
fn templated_data_before_its_template_is_held_then_decoded() {
    for ipfix_not_v9 in [false, true] {
        let (tid, wrap): (u16, Wrap) = if ipfix_not_v9 { (2, ipfix) } else { (0, v9) };
        let mut t = Templates::new(16, 1 << 16);
        let data = wrap(&[set(256, &data_body([10, 0, 0, 1], [10, 0, 0, 2], 5, 500))]);
        let (r, out) = run(&mut t, &data);
        assert_eq!(r.unwrap().sets.held, 1);
        assert!(out.flows.is_empty());
        assert_eq!(t.held().0, 1);
        // The template arrives with more data behind it.
        let both = wrap(&[
            set(tid, &template_body()),
            set(
                256,
                &[
                    data_body([10, 0, 0, 3], [10, 0, 0, 2], 1, 40),
                    data_body([10, 0, 0, 4], [10, 0, 0, 2], 2, 80),
                ]
                .concat(),
            ),
        ]);
        let (r, out) = run(&mut t, &both);
        r.unwrap();
        assert_eq!(t.held(), (0, 0));
        let got: Vec<(Addr, u64, u64)> = out
            .flows
            .iter()
            .map(|f| (f.summary.src, f.packets, f.bytes))
            .collect();
        assert_eq!(
            got,
            vec![
                (v4([10, 0, 0, 1]), 5, 500),
                (v4([10, 0, 0, 3]), 1, 40),
                (v4([10, 0, 0, 4]), 2, 80)
            ]
        );
        assert_eq!(out.flows[0].summary.dst_port, 53);
    }
}

#[test]
fn ipfix_variable_length_enterprise_fields_and_withdrawal() {
    let mut t = Templates::new(16, 1 << 16);
    let mut tb = 300u16.to_be_bytes().to_vec();
    tb.extend_from_slice(&4u16.to_be_bytes());
    for (id, len) in [(8u16, 4u16), (12, 4)] {
        tb.extend_from_slice(&id.to_be_bytes());
        tb.extend_from_slice(&len.to_be_bytes());
    }
    // An enterprise field of variable length, then octetDeltaCount in 2
    // bytes (reduced size).
    tb.extend_from_slice(&(0x8000u16 | 5).to_be_bytes());
    tb.extend_from_slice(&0xffffu16.to_be_bytes());
    tb.extend_from_slice(&29305u32.to_be_bytes());
    tb.extend_from_slice(&1u16.to_be_bytes());
    tb.extend_from_slice(&2u16.to_be_bytes());
    let mut rec = vec![10, 0, 0, 9, 10, 0, 0, 2, 3, b'a', b'b', b'c'];
    rec.extend_from_slice(&1500u16.to_be_bytes());
    let mut long = vec![10, 0, 0, 8, 10, 0, 0, 2, 255];
    long.extend_from_slice(&300u16.to_be_bytes());
    long.extend_from_slice(&[0; 300]);
    long.extend_from_slice(&700u16.to_be_bytes());
    let d = ipfix(&[set(2, &tb), set(300, &[rec, long].concat())]);
    let (r, out) = run(&mut t, &d);
    r.unwrap();
    let got: Vec<(Addr, u64)> = out.flows.iter().map(|f| (f.summary.src, f.bytes)).collect();
    assert_eq!(
        got,
        vec![(v4([10, 0, 0, 9]), 1500), (v4([10, 0, 0, 8]), 700)]
    );
    // Withdrawn: data for it waits again.
    let mut w = 300u16.to_be_bytes().to_vec();
    w.extend_from_slice(&0u16.to_be_bytes());
    run(&mut t, &ipfix(&[set(2, &w)])).0.unwrap();
    assert!(t.is_empty());
}

#[test]
fn options_records_declare_the_sampling_rate() {
    let mut t = Templates::new(16, 1 << 16);
    // IPFIX options template 400: scope observationDomainId (149, 4),
    // samplingPacketInterval (305, 4).
    let mut ob = 400u16.to_be_bytes().to_vec();
    ob.extend_from_slice(&2u16.to_be_bytes());
    ob.extend_from_slice(&1u16.to_be_bytes());
    for (id, len) in [(149u16, 4u16), (305, 4)] {
        ob.extend_from_slice(&id.to_be_bytes());
        ob.extend_from_slice(&len.to_be_bytes());
    }
    let mut od = 7u32.to_be_bytes().to_vec();
    od.extend_from_slice(&512u32.to_be_bytes());
    run(&mut t, &ipfix(&[set(3, &ob), set(400, &od)]))
        .0
        .unwrap();
    assert_eq!(t.declared_sampling(exporter()), Some(512));
}

#[test]
fn malformed_templates_are_refused_not_looped_on() {
    let mut t = Templates::new(16, 1 << 16);
    // A field count beyond the set.
    let mut tb = 256u16.to_be_bytes().to_vec();
    tb.extend_from_slice(&40u16.to_be_bytes());
    assert_eq!(
        run(&mut t, &ipfix(&[set(2, &tb)])).0.unwrap_err().1,
        Problem::Truncated
    );
    // Fields of length zero only: records of no bytes.
    let mut tb = 256u16.to_be_bytes().to_vec();
    tb.extend_from_slice(&1u16.to_be_bytes());
    tb.extend_from_slice(&8u16.to_be_bytes());
    tb.extend_from_slice(&0u16.to_be_bytes());
    assert_eq!(
        run(&mut t, &ipfix(&[set(2, &tb)])).0.unwrap_err().1,
        Problem::Template
    );
    // A set length below its header, and one past the datagram.
    let mut d = ipfix(&[set(256, &[1, 2, 3, 4])]);
    d[18] = 0;
    d[19] = 2;
    assert_eq!(run(&mut t, &d).0.unwrap_err().1, Problem::Length);
    d[19] = 200;
    assert_eq!(run(&mut t, &d).0.unwrap_err().1, Problem::Length);
    assert_eq!(
        run(&mut t, &[0, 1]).0.unwrap_err(),
        (None, Problem::Truncated)
    );
    assert_eq!(
        run(&mut t, &[0, 7, 0, 0]).0.unwrap_err(),
        (None, Problem::Version)
    );
}

#[test]
fn held_sets_are_bounded_oldest_out() {
    let mut t = Templates::new(16, 1 << 16);
    let body = vec![0u8; 20_000];
    let mut dropped = 0;
    for id in 256..266u16 {
        dropped += run(&mut t, &ipfix(&[set(id, &body)]))
            .0
            .unwrap()
            .sets
            .held_dropped;
    }
    let (n, bytes) = t.held();
    assert!(bytes <= 1 << 16 && n == 3, "{n} sets, {bytes} bytes");
    assert_eq!(dropped, 7);
}

#[test]
fn empty_data_sets_of_templates_never_sent_are_bounded() {
    // A set header and no records costs four bytes on the wire; held, it
    // costs its bookkeeping, which the bound counts.
    let mut t = Templates::new(16, 1 << 16);
    let sets: Vec<Vec<u8>> = (256..10_256u16).map(|id| set(id, &[])).collect();
    let mut dropped = 0;
    for _ in 0..20 {
        let r = run(&mut t, &ipfix(&sets)).0.unwrap();
        assert_eq!(r.sets.held, 10_000);
        dropped += r.sets.held_dropped;
    }
    let (n, bytes) = t.held();
    assert_eq!((n, bytes), ((1 << 16) / super::held::OVERHEAD, 0));
    assert_eq!(dropped, 200_000 - n as u64);
}

#[test]
fn the_template_table_is_bounded() {
    let mut t = Templates::new(2, 1 << 16);
    let mut refused = 0;
    for id in 256..260u16 {
        let mut tb = template_body();
        tb[..2].copy_from_slice(&id.to_be_bytes());
        refused += run(&mut t, &ipfix(&[set(2, &tb)]))
            .0
            .unwrap()
            .sets
            .templates_refused;
    }
    assert_eq!((t.len(), refused), (2, 2));
    // The exporter restarts and sends from a new port: its old session's
    // templates make room.
    let mut out = Decoded::default();
    let restarted: SocketAddr = "192.0.2.1:40001".parse().unwrap();
    let r = decode(
        &mut t,
        restarted,
        &ipfix(&[set(2, &template_body())]),
        &mut out,
    );
    assert_eq!(r.unwrap().sets.templates_refused, 0);
    assert_eq!(t.len(), 1);
}

#[test]
fn sflow_samples_are_parsed_like_frames() {
    use crate::wire::testpkt::{eth, ipv4_udp};
    let frame = eth(
        0x0800,
        &ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 5000, 53, 100),
    );
    let d = sflow(&frame, 64);
    let (r, out) = run(&mut Templates::new(16, 1 << 16), &d);
    assert_eq!(r.unwrap().protocol, Protocol::Sflow5);
    assert_eq!(out.flows.len(), 1);
    let f = out.flows[0];
    assert_eq!(
        (f.summary.src, f.summary.dst_port, f.sampling),
        (v4([10, 0, 0, 1]), 53, 64)
    );
    assert_eq!((f.input_if, f.output_if, f.packets), (7, 8, 1));
    assert_eq!(f.bytes, (frame.len() - 14) as u64);
    assert_eq!(out.counters.len(), 1);
    assert_eq!(
        (
            out.counters[0].if_index,
            out.counters[0].in_octets,
            out.counters[0].out_packets
        ),
        (7, 1 << 20, 200)
    );
    // Every truncation is an error, never a panic or a partial count.
    for n in 0..d.len() {
        let (r, out) = run(&mut Templates::new(16, 1 << 16), &d[..n]);
        assert!(
            r.is_err() && out.flows.is_empty() && out.counters.is_empty(),
            "at {n}"
        );
    }
}

fn cfg(exporters: Vec<ExporterConfig>) -> FlowInputConfig {
    let mut c = crate::config::Config::default().flow_input;
    c.exporters = exporters;
    c
}

fn shard() -> Shard {
    Shard::new(
        ShardLimits {
            max_hosts: 100,
            max_pairs: 100,
            max_ports: 100,
            answers: false,
            rates: crate::rates::IN,
        },
        &Hasher::new(),
    )
}

#[test]
fn records_are_scaled_counted_and_attributed() {
    let d = nf5(
        &[(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            proto::UDP,
            5000,
            53,
            0,
            10,
            1000,
        )],
        100,
    );
    // Declared 1:100.
    let mut st = State::new(cfg(Vec::new()));
    let mut s = shard();
    st.datagram(exporter(), &d, &mut s, 1);
    s.seal();
    assert_eq!((s.totals.packets, s.totals.bytes), (1000, 100_000));
    let r = st.report();
    let e = &r.exporters[0];
    assert_eq!(
        (e.records, e.packets, e.bytes, e.sampling, e.sampling_source),
        (1, 1000, 100_000, 100, "declared")
    );
    assert_eq!(
        (e.interfaces[0].if_index, e.interfaces[0].in_bytes),
        (3, 100_000)
    );
    assert_eq!(
        (e.interfaces[1].if_index, e.interfaces[1].out_packets),
        (4, 1000)
    );
    let victim = s
        .hosts()
        .iter()
        .position(|h| h.addr == v4([10, 0, 0, 2]))
        .unwrap();
    assert_eq!(s.hosts()[victim].recv_packets, 1000);
    // The UDP class of the victim's rates counts the scaled packets.
    assert_eq!(
        s.rates_of(victim).unwrap().0[0][crate::rates::Class::Udp as usize - 1],
        1000
    );
    // Configured 1:10 wins over what the exporter says.
    let mut st = State::new(cfg(vec![ExporterConfig {
        address: exporter().ip(),
        sampling: 10,
        name: "edge-1".into(),
    }]));
    let mut s = shard();
    st.datagram(exporter(), &d, &mut s, 1);
    assert_eq!(s.totals.bytes, 10_000);
    let r = st.report();
    assert_eq!(
        (r.exporters[0].name.as_str(), r.exporters[0].sampling_source),
        ("edge-1", "configured")
    );
    // Garbage is counted by reason, and nothing of it is recorded.
    st.datagram(exporter(), &d[..30], &mut s, 2);
    st.datagram(exporter(), b"GET / HTTP/1.1\r\n", &mut s, 2);
    assert_eq!(s.totals.bytes, 10_000);
    let r = st.report();
    assert_eq!(
        r.exporters[0].dropped,
        vec![("truncated", 1), ("unknown_version", 1)]
    );
}

#[test]
fn exporters_beyond_the_bound_are_refused() {
    let mut c = cfg(Vec::new());
    c.max_exporters = 2;
    let mut st = State::new(c);
    let mut s = shard();
    let d = nf5(
        &[(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            proto::UDP,
            5000,
            53,
            0,
            1,
            100,
        )],
        0,
    );
    for i in 1..=4u8 {
        let from: SocketAddr = format!("192.0.2.{i}:2055").parse().unwrap();
        st.datagram(from, &d, &mut s, 1);
    }
    let r = st.report();
    assert_eq!((r.exporters.len(), r.exporters_refused), (2, 2));
    assert_eq!(s.totals.packets, 2);
}

#[test]
fn datagrams_a_full_socket_drops_are_counted() {
    let mut c = cfg(vec![]);
    c.listen = vec!["127.0.0.1:0".parse().unwrap()];
    c.receive_buffer = 4096;
    let sockets = super::thread::FlowInput::bind(&c).unwrap().udp;
    let to = sockets[0].local_addr().unwrap();
    let mut state = State::new(c);
    assert!(!state.read_socket_drops(&sockets));
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..200 {
        tx.send_to(&[0u8; 1200], to).unwrap();
    }
    // Nothing read yet: what did not fit was dropped, and that is known
    // without a datagram arriving after it.
    assert!(state.read_socket_drops(&sockets));
    let mut buf = [0u8; 2048];
    let mut received = 0;
    while sockets[0].recv(&mut buf).is_ok() {
        received += 1;
    }
    let dropped = state.report().socket_drops;
    assert!(dropped > 0 && received > 0, "{received} received");
    assert_eq!(received + dropped, 200);
}

#[test]
fn a_tcp_session_takes_its_templates_and_held_sets_with_it() {
    use super::tcp::End;
    let mut state = State::new(cfg(vec![]));
    let mut sh = shard();
    let (a, b): (SocketAddr, SocketAddr) = (
        "192.0.2.1:40000".parse().unwrap(),
        "192.0.2.1:40001".parse().unwrap(),
    );
    // Session a: a template, its data, and data of a template never sent.
    let data = data_body([10, 0, 0, 1], [10, 0, 0, 2], 3, 300);
    state.datagram(a, &ipfix(&[set(2, &template_body())]), &mut sh, 1);
    state.datagram(a, &ipfix(&[set(256, &data)]), &mut sh, 2);
    state.datagram(a, &ipfix(&[set(999, &data)]), &mut sh, 3);
    // Session b, from the same address: a template of its own.
    state.datagram(b, &ipfix(&[set(2, &template_body())]), &mut sh, 4);
    let r = state.report();
    assert_eq!((r.templates, r.held_sets_now), (2, 1));
    assert_eq!(r.exporters[0].packets, 3);
    state.session_ended(a, End::Closed, 5);
    let r = state.report();
    assert_eq!((r.templates, r.held_sets_now, r.held_bytes_now), (1, 0, 0));
    // Data on a's template ids now waits; b's still decodes.
    state.datagram(b, &ipfix(&[set(256, &data)]), &mut sh, 6);
    assert_eq!(state.report().exporters[0].packets, 6);
    // A stream that is not IPFIX is counted against its exporter.
    state.session_ended(b, End::Framing(Problem::Version), 7);
    let r = state.report();
    assert_eq!(r.templates, 0);
    assert_eq!(r.exporters[0].dropped, vec![("unknown_version", 1)]);
}

#[test]
fn problems_are_listed_in_their_declared_order() {
    // An exporter's drop counts are indexed by the problem's discriminant.
    for (i, p) in Problem::ALL.iter().enumerate() {
        assert_eq!(*p as usize, i, "{p:?}");
    }
}
