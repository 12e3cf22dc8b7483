//! Packet builders for the parser's unit tests: real header bytes, checksums
//! left zero (the parser does not verify them).

use super::proto;

pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    vlan_eth(&[], ethertype, payload)
}

/// An Ethernet frame with the given tag protocols (outermost first), each
/// tag carrying VLAN id 100 + its position.
pub fn vlan_eth(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for (i, &tpid) in tags.iter().enumerate() {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(100 + i as u16).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_opts(src, dst, protocol, &[], 0, payload)
}

/// IPv4 with options and a fragment field (flags and offset as on the wire).
pub fn ipv4_opts(
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    options: &[u8],
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 5 + options.len() / 4;
    let total = ihl * 4 + payload.len();
    let mut p = vec![0x40 | ihl as u8, 0];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, protocol, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(options);
    p.extend_from_slice(payload);
    p
}

pub fn udp(sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.resize(8 + len, 0xab);
    u
}

pub fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    t.push(5 << 4);
    t.push(flags);
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t
}

pub fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, len: usize) -> Vec<u8> {
    ipv4(src, dst, proto::UDP, &udp(sport, dport, len))
}

pub fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    ipv4(src, dst, proto::TCP, &tcp(sport, dport, flags))
}

/// 2001:db8::`n`.
pub fn v6(n: u16) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[14..16].copy_from_slice(&n.to_be_bytes());
    a
}

pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(next);
    p.push(64);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

pub fn ipv6_tcp(src: u16, dst: u16, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    ipv6(v6(src), v6(dst), proto::TCP, &tcp(sport, dport, flags))
}

/// A generic IPv6 extension header (hop-by-hop, routing, destination
/// options) of `8 * (1 + len_units)` bytes, followed by `rest`.
pub fn ext(next: u8, len_units: u8, rest: &[u8]) -> Vec<u8> {
    let mut e = vec![next, len_units];
    e.resize(8 * (1 + len_units as usize), 0);
    e.extend_from_slice(rest);
    e
}

/// An IPv6 fragment header with the given offset (in 8-byte units) and
/// more-fragments flag, followed by `rest`.
pub fn frag6(next: u8, offset_units: u16, more: bool, rest: &[u8]) -> Vec<u8> {
    let mut e = vec![next, 0];
    e.extend_from_slice(&((offset_units << 3) | u16::from(more)).to_be_bytes());
    e.extend_from_slice(&[0, 0, 0, 7]);
    e.extend_from_slice(rest);
    e
}

/// An authentication header with `len_words + 2` 32-bit words.
pub fn ah(next: u8, len_words: u8, rest: &[u8]) -> Vec<u8> {
    let mut e = vec![next, len_words];
    e.resize(4 * (len_words as usize + 2), 0);
    e.extend_from_slice(rest);
    e
}

pub fn icmp(ty: u8, code: u8, body: usize) -> Vec<u8> {
    let mut i = vec![ty, code, 0, 0, 0, 1, 0, 1];
    i.resize(8 + body, 0);
    i
}

pub fn sctp(sport: u16, dport: u16, chunk_type: u8) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&[0; 8]);
    s.extend_from_slice(&[chunk_type, 0, 0, 4]);
    s
}
