use super::*;

/// An Ethernet/IPv4/UDP frame of `ip_len` bytes at layer 3.
pub(crate) fn frame(src: [u8; 4], ip_len: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        1,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[10, 9, 9, 9]);
    f.extend_from_slice(&[0x9c, 0x40, 0, 9, 0, (ip_len - 20) as u8, 0, 0]);
    f.resize(14 + ip_len, 0x41);
    f
}

/// A pcap file: `be` byte order, `nanos` timestamps, `linktype`.
pub(crate) fn pcap(
    be: bool,
    nanos: bool,
    linktype: u32,
    snaplen: u32,
    recs: &[(u64, &[u8])],
) -> Vec<u8> {
    let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend_from_slice(&w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&w16(2));
    out.extend_from_slice(&w16(4));
    out.extend_from_slice(&w32(0));
    out.extend_from_slice(&w32(0));
    out.extend_from_slice(&w32(snaplen));
    out.extend_from_slice(&w32(linktype));
    for (ts_ns, data) in recs {
        let frac = if nanos {
            ts_ns % 1_000_000_000
        } else {
            ts_ns % 1_000_000_000 / 1000
        };
        out.extend_from_slice(&w32((ts_ns / 1_000_000_000) as u32));
        out.extend_from_slice(&w32(frac as u32));
        out.extend_from_slice(&w32(data.len() as u32));
        out.extend_from_slice(&w32(data.len() as u32));
        out.extend_from_slice(data);
    }
    out
}

fn block(be: bool, kind: u32, body: &[u8]) -> Vec<u8> {
    let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let len = 12 + body.len() as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&w32(kind));
    out.extend_from_slice(&w32(len));
    out.extend_from_slice(&body);
    out.extend_from_slice(&w32(len));
    out
}

/// A pcapng section: interfaces (linktype, tsresol option) and packets
/// (interface, timestamp in that interface's units, data).
pub(crate) fn pcapng(
    be: bool,
    ifaces: &[(u16, Option<u8>)],
    pkts: &[(u32, u64, &[u8])],
) -> Vec<u8> {
    let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut shb = Vec::new();
    shb.extend_from_slice(&w32(0x1a2b_3c4d));
    shb.extend_from_slice(&w16(1));
    shb.extend_from_slice(&w16(0));
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut out = block(be, 0x0a0d_0d0a, &shb);
    for (lt, res) in ifaces {
        let mut idb = Vec::new();
        idb.extend_from_slice(&w16(*lt));
        idb.extend_from_slice(&w16(0));
        idb.extend_from_slice(&w32(0));
        if let Some(r) = res {
            idb.extend_from_slice(&w16(9));
            idb.extend_from_slice(&w16(1));
            idb.extend_from_slice(&[*r, 0, 0, 0]);
            idb.extend_from_slice(&w16(0));
            idb.extend_from_slice(&w16(0));
        }
        out.extend(block(be, 1, &idb));
    }
    for (i, ts, data) in pkts {
        let mut epb = Vec::new();
        epb.extend_from_slice(&w32(*i));
        epb.extend_from_slice(&w32((ts >> 32) as u32));
        epb.extend_from_slice(&w32(*ts as u32));
        epb.extend_from_slice(&w32(data.len() as u32));
        epb.extend_from_slice(&w32(data.len() as u32));
        epb.extend_from_slice(data);
        out.extend(block(be, 6, &epb));
    }
    out
}

/// (timestamp, interface, captured length, wire length) per packet.
type Seen = Vec<(u64, u32, usize, u32)>;

fn read_all(bytes: &[u8]) -> Result<(Seen, ReadStats), ReadError> {
    let mut r = Reader::new(bytes)?;
    let mut v = Vec::new();
    while let Some(p) = r.next_packet()? {
        v.push((p.ts_ns, p.iface, p.data.len(), p.wire_len));
    }
    Ok((v, r.stats.clone()))
}

#[test]
fn pcap_in_both_byte_orders_and_resolutions() {
    let f = frame([10, 0, 0, 1], 100);
    for be in [false, true] {
        for nanos in [false, true] {
            let file = pcap(
                be,
                nanos,
                1,
                65535,
                &[
                    (1_700_000_000_123_456_789, &f),
                    (1_700_000_001_000_000_000, &f),
                ],
            );
            let (v, st) = read_all(&file).unwrap();
            let first = if nanos {
                1_700_000_000_123_456_789
            } else {
                1_700_000_000_123_456_000
            };
            assert_eq!(
                v,
                [
                    (first, 0, 114, 114),
                    (1_700_000_001_000_000_000, 0, 114, 114)
                ],
                "be {be} nanos {nanos}"
            );
            assert_eq!(st.records, 2);
            assert_eq!(st.bytes, file.len() as u64);
        }
    }
}

#[test]
fn pcapng_with_several_interfaces_and_link_types() {
    let eth = frame([10, 0, 0, 1], 60);
    let raw = eth[14..].to_vec();
    for be in [false, true] {
        // Interface 0: Ethernet in microseconds (default); 1: raw IP in
        // nanoseconds; 2: a link type we do not parse.
        let file = pcapng(
            be,
            &[(1, None), (101, Some(9)), (147, None)],
            &[
                (0, 1_000_000, &eth),
                (1, 2_500_000_000, &raw),
                (2, 3, &eth),
                (7, 4, &eth),
            ],
        );
        let (v, st) = read_all(&file).unwrap();
        assert_eq!(v, [(1_000_000_000, 0, 74, 74), (2_500_000_000, 1, 60, 60)]);
        assert_eq!(st.unknown_link.get(&147), Some(&1));
        assert_eq!(st.unknown_interface, 1);
        assert_eq!(st.records, 4);
        assert_eq!(st.sections, 1);
    }
    // Two sections, the second big-endian, with interfaces of its own.
    let mut two = pcapng(false, &[(1, None)], &[(0, 5, &eth)]);
    two.extend(pcapng(true, &[(101, None)], &[(0, 6, &raw)]));
    let (v, st) = read_all(&two).unwrap();
    assert_eq!(v, [(5000, 0, 74, 74), (6000, 0, 60, 60)]);
    assert_eq!(st.sections, 2);
}

#[test]
fn bad_files_get_errors_with_offsets() {
    let f = frame([10, 0, 0, 1], 100);
    let good = pcap(false, false, 1, 65535, &[(1, &f), (2, &f)]);

    let e = read_all(b"GIF89a...").unwrap_err();
    assert!(e.to_string().contains("not a pcap or pcapng file"), "{e}");
    let e = read_all(&good[..10]).unwrap_err();
    assert!(e.to_string().contains("24-byte pcap header"), "{e}");
    // Cut inside the second record.
    let e = read_all(&good[..good.len() - 10]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "byte {}: the file ends inside a record (120 of 130 bytes)",
            24 + 130
        )
    );
    // Cut inside a record header.
    let e = read_all(&good[..24 + 130 + 7]).unwrap_err();
    assert!(
        e.to_string()
            .contains("inside a record header (7 of 16 bytes)"),
        "{e}"
    );
    // A record that claims 4 GiB.
    let mut huge = good.clone();
    huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = read_all(&huge).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("byte 24: a record claims 4294967295"),
        "{e}"
    );
    // Unknown link type: nothing in the file can be read.
    let e = read_all(&pcap(false, false, 147, 65535, &[(1, &f)])).unwrap_err();
    assert!(e.to_string().starts_with("byte 20: link type 147"), "{e}");
    // Snap lengths of 0 and 2^32-1 say nothing about the records.
    for snap in [0, u32::MAX] {
        let (v, _) = read_all(&pcap(false, false, 1, snap, &[(1, &f)])).unwrap();
        assert_eq!(v.len(), 1);
    }
    // pcapng: a block whose length is not a multiple of 4, one that
    // claims too much, one cut short, and no section header first.
    let ng = pcapng(false, &[(1, None)], &[(0, 1, &f)]);
    let idb_at = 28;
    let mut odd = ng.clone();
    odd[idb_at + 4..idb_at + 8].copy_from_slice(&13u32.to_le_bytes());
    let e = read_all(&odd).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "byte {}: a block length of 13 (at least 12, a multiple of 4)",
            idb_at + 4
        )
    );
    let mut big = ng.clone();
    big[idb_at + 4..idb_at + 8].copy_from_slice(&(64u32 << 20).to_le_bytes());
    assert!(
        read_all(&big)
            .unwrap_err()
            .to_string()
            .contains("claims 67108864 bytes")
    );
    let e = read_all(&ng[..ng.len() - 5]).unwrap_err();
    assert!(
        e.to_string().contains("the file ends inside a block"),
        "{e}"
    );
    let e = read_all(&ng[idb_at..]).unwrap_err();
    assert!(e.to_string().contains("not a pcap or pcapng"), "{e}");
    // A section header with a bad byte-order magic.
    let mut bom = ng.clone();
    bom[8..12].copy_from_slice(&[1, 2, 3, 4]);
    assert!(
        read_all(&bom)
            .unwrap_err()
            .to_string()
            .contains("byte-order magic")
    );
}

#[test]
fn a_captured_length_over_the_wire_length_is_corrected_and_counted() {
    let f = frame([10, 0, 0, 1], 100);
    let mut file = pcap(false, false, 1, 65535, &[(1, &f)]);
    file[24 + 12..24 + 16].copy_from_slice(&50u32.to_le_bytes());
    let (v, st) = read_all(&file).unwrap();
    assert_eq!(v[0].3, 114);
    assert_eq!(st.caplen_over_wire, 1);
}

#[test]
fn reads_across_refills() {
    // More than one chunk of records, in a stream that hands out a few
    // bytes at a time.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7777);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let f = frame([10, 0, 0, 1], 1400);
    let recs: Vec<(u64, &[u8])> = (0..5000u64).map(|i| (i, f.as_slice())).collect();
    let file = pcap(false, true, 1, 65535, &recs);
    assert!(file.len() > CHUNK);
    let mut r = Reader::new(Trickle(&file)).unwrap();
    let mut n = 0u64;
    while let Some(p) = r.next_packet().unwrap() {
        assert_eq!(p.ts_ns, n);
        assert_eq!(p.data, &f[..]);
        n += 1;
    }
    assert_eq!(n, 5000);
}

/// Regression (issue 10, item 9): FCS information above the link type's
/// low 16 bits made files tcpdump reads unreadable.
#[test]
fn fcs_bits_of_the_pcap_link_type_are_masked_and_honoured() {
    let f = frame([10, 0, 0, 1], 100);
    let mut with_fcs = f.clone();
    with_fcs.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    // Bit 26 set, FCS length 2 × 16 bits: every frame ends in 4 bytes
    // of FCS, which are not part of the packet.
    let file = pcap(false, false, 0x2400_0001, 65535, &[(1000, &with_fcs)]);
    let (seen, st) = read_all(&file).unwrap();
    assert_eq!(seen, vec![(1000, 0, f.len(), f.len() as u32)]);
    assert_eq!(st.fcs_removed, 1);
    // FCS bits without bit 26 say nothing about the frames: libpcap
    // reads 0x30000001 as plain Ethernet.
    let file = pcap(false, false, 0x3000_0001, 65535, &[(1000, &f)]);
    let (seen, st) = read_all(&file).unwrap();
    assert_eq!(seen, vec![(1000, 0, f.len(), f.len() as u32)]);
    assert_eq!(st.fcs_removed, 0);
    assert_eq!(pcap_fcs_len(0x2400_0001), 4);
    assert_eq!(pcap_fcs_len(0x3000_0001), 0);
    assert_eq!(link_type(0x3000_0001), Some(LinkType::Ethernet));
}

#[test]
fn pcapng_fcs_length_of_an_interface_and_of_a_packet() {
    let f = frame([10, 0, 0, 2], 60);
    let mut with_fcs = f.clone();
    with_fcs.extend_from_slice(&[1, 2, 3, 4]);
    // An interface with if_fcslen = 32 (bits, as the specification
    // counts) and one with 4 (bytes, as Wireshark writes).
    for fcslen in [32u8, 4] {
        let mut file = pcapng(false, &[], &[]);
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        idb.extend_from_slice(&13u16.to_le_bytes());
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[fcslen, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        file.extend(block(false, 1, &idb));
        let mut epb = Vec::new();
        for v in [0u32, 0, 7, with_fcs.len() as u32, with_fcs.len() as u32] {
            epb.extend_from_slice(&v.to_le_bytes());
        }
        epb.extend_from_slice(&with_fcs);
        file.extend(block(false, 6, &epb));
        let (seen, st) = read_all(&file).unwrap();
        assert_eq!(seen[0].2, f.len(), "if_fcslen {fcslen}");
        assert_eq!(seen[0].3, f.len() as u32, "if_fcslen {fcslen}");
        assert_eq!(st.fcs_removed, 1);
    }
    // epb_flags with an FCS length of 4 bytes (bits 5–8).
    let mut file = pcapng(false, &[(1, None)], &[]);
    let mut epb = Vec::new();
    for v in [0u32, 0, 7, with_fcs.len() as u32, with_fcs.len() as u32] {
        epb.extend_from_slice(&v.to_le_bytes());
    }
    epb.extend_from_slice(&with_fcs);
    while epb.len() % 4 != 0 {
        epb.push(0);
    }
    epb.extend_from_slice(&2u16.to_le_bytes());
    epb.extend_from_slice(&4u16.to_le_bytes());
    epb.extend_from_slice(&(4u32 << 5).to_le_bytes());
    epb.extend_from_slice(&[0, 0, 0, 0]);
    file.extend(block(false, 6, &epb));
    let (seen, _) = read_all(&file).unwrap();
    assert_eq!(seen[0].3, f.len() as u32);
}

/// Regression (issue 10, item 11): `unreadable pcapng block: Verify`.
#[test]
fn a_damaged_pcapng_block_is_described_by_what_is_wrong() {
    let f = frame([10, 0, 0, 3], 60);
    let good = pcapng(false, &[(1, None)], &[(0, 7, &f)]);
    let epb_at = good.len() - (12 + 20 + f.len().next_multiple_of(4));
    // Trailing length changed.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&999u32.to_le_bytes());
    let msg = read_all(&bad).unwrap_err().to_string();
    assert!(
        msg.contains("enhanced packet block whose trailing length (999) differs"),
        "{msg}"
    );
    assert!(msg.starts_with(&format!("byte {epb_at}:")), "{msg}");
    // A captured length past the block's end.
    let mut bad = good.clone();
    bad[epb_at + 20..epb_at + 24].copy_from_slice(&5000u32.to_le_bytes());
    let msg = read_all(&bad).unwrap_err().to_string();
    assert!(msg.contains("claims 5000 captured bytes"), "{msg}");
    // An interface block too short for its fixed fields.
    let mut file = pcapng(false, &[], &[]);
    file.extend(block(false, 1, &[1, 0, 0, 0]));
    let msg = read_all(&file).unwrap_err().to_string();
    assert!(
        msg.contains("interface description block of 16 bytes (it needs at least 20)"),
        "{msg}"
    );
}
