//! Datagrams of the four protocols, built byte by byte: for the unit
//! tests, the flow-input benchmark and the fuzz seeds' shapes. Not used by
//! the daemon.

/// A NetFlow v5 record: (src, dst, proto, sport, dport, flags, packets,
/// bytes).
pub type V5Record = ([u8; 4], [u8; 4], u8, u16, u16, u8, u32, u32);

/// A NetFlow v5 datagram of `records`, sampling interval `n`.
pub fn nf5(records: &[V5Record], n: u16) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&5u16.to_be_bytes());
    d.extend_from_slice(&(records.len() as u16).to_be_bytes());
    d.extend_from_slice(&[0; 18]);
    d.extend_from_slice(&(n | 0x4000).to_be_bytes());
    for &(s, t, p, sp, dp, fl, pk, by) in records {
        d.extend_from_slice(&s);
        d.extend_from_slice(&t);
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&3u16.to_be_bytes());
        d.extend_from_slice(&4u16.to_be_bytes());
        d.extend_from_slice(&pk.to_be_bytes());
        d.extend_from_slice(&by.to_be_bytes());
        d.extend_from_slice(&[0; 8]);
        d.extend_from_slice(&sp.to_be_bytes());
        d.extend_from_slice(&dp.to_be_bytes());
        d.extend_from_slice(&[0, fl, p, 0]);
        d.extend_from_slice(&[0; 8]);
    }
    d
}

/// Template 256: src v4, dst v4, proto, sport, dport, flags, packets (4),
/// bytes (8).
pub const FIELDS: [(u16, u16); 8] = [
    (8, 4),
    (12, 4),
    (4, 1),
    (7, 2),
    (11, 2),
    (6, 1),
    (2, 4),
    (1, 8),
];

pub fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let mut s = id.to_be_bytes().to_vec();
    s.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

pub fn template_body() -> Vec<u8> {
    let mut b = 256u16.to_be_bytes().to_vec();
    b.extend_from_slice(&(FIELDS.len() as u16).to_be_bytes());
    for (id, len) in FIELDS {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
    }
    b
}

pub fn data_body(src: [u8; 4], dst: [u8; 4], packets: u32, bytes: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.push(crate::wire::proto::UDP);
    b.extend_from_slice(&5000u16.to_be_bytes());
    b.extend_from_slice(&53u16.to_be_bytes());
    b.push(0);
    b.extend_from_slice(&packets.to_be_bytes());
    b.extend_from_slice(&bytes.to_be_bytes());
    b
}

pub fn v9(sets: &[Vec<u8>]) -> Vec<u8> {
    let mut d = 9u16.to_be_bytes().to_vec();
    d.extend_from_slice(&(sets.len() as u16).to_be_bytes());
    d.extend_from_slice(&[0; 12]);
    d.extend_from_slice(&7u32.to_be_bytes());
    for s in sets {
        d.extend_from_slice(s);
    }
    d
}

pub fn ipfix(sets: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = sets.concat();
    let mut d = 10u16.to_be_bytes().to_vec();
    d.extend_from_slice(&((16 + body.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0; 8]);
    d.extend_from_slice(&7u32.to_be_bytes());
    d.extend_from_slice(&body);
    d
}

/// An sFlow v5 datagram with one flow sample of a raw Ethernet header
/// (rate 1 in `rate`) and one counter sample.
pub fn sflow(frame: &[u8], rate: u32) -> Vec<u8> {
    let w = |d: &mut Vec<u8>, v: u32| d.extend_from_slice(&v.to_be_bytes());
    let mut d = Vec::new();
    for v in [5, 1] {
        w(&mut d, v);
    }
    d.extend_from_slice(&[192, 0, 2, 1]);
    for v in [0, 1, 1000, 2] {
        w(&mut d, v);
    }
    let mut rec = Vec::new();
    for v in [1, frame.len() as u32 + 4, 4, frame.len() as u32] {
        w(&mut rec, v);
    }
    rec.extend_from_slice(frame);
    while rec.len() % 4 != 0 {
        rec.push(0);
    }
    let mut sample = Vec::new();
    for v in [1, 3, rate, 100, 0, 7, 8, 1, 1, rec.len() as u32] {
        w(&mut sample, v);
    }
    sample.extend_from_slice(&rec);
    w(&mut d, 1);
    w(&mut d, sample.len() as u32);
    d.extend_from_slice(&sample);
    let mut ctr = Vec::new();
    for v in [7, 6, 0, 1_000_000_000, 0, 1, 0, 1 << 20] {
        w(&mut ctr, v);
    }
    for v in [100, 0, 0, 0, 0, 0] {
        w(&mut ctr, v);
    }
    for v in [0, 2 << 20] {
        w(&mut ctr, v);
    }
    for v in [200, 0, 0, 0, 0, 1] {
        w(&mut ctr, v);
    }
    let mut cs = Vec::new();
    for v in [1, 3, 1, 1, ctr.len() as u32] {
        w(&mut cs, v);
    }
    cs.extend_from_slice(&ctr);
    w(&mut d, 2);
    w(&mut d, cs.len() as u32);
    d.extend_from_slice(&cs);
    d
}

/// An Ethernet frame of a UDP/IPv4 packet of `ip_len` bytes (checksums
/// zero), its first `snap` bytes.
pub fn udp_frame(src: [u8; 4], dst: [u8; 4], ip_len: u16, snap: usize) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&ip_len.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&5000u16.to_be_bytes());
    f.extend_from_slice(&53u16.to_be_bytes());
    f.extend_from_slice(&(ip_len - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(14 + usize::from(ip_len), 0x41);
    f.truncate(snap);
    f
}
