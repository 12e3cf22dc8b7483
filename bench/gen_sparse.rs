//! Writes a long, sparse capture for the replay benchmark: UDP datagrams
//! at a steady 1 000 per second over a long time, from a pool of sources
//! that each send, in turn, to a fixed set of destinations of their own.
//! With 16 destinations per source (more than the default 15 of an
//! address scan within the window) nearly every source is an address
//! scanner, so thousands of alerts stay open for most of the capture; with
//! one destination per source nothing alerts.
//!
//!   cargo run --release --example gen_sparse -- OUT PACKETS SOURCES DESTS [PPS]
//!
//! The seed is fixed: the same arguments write the same file.

use std::io::{BufWriter, Write};

use rand::{Rng, SeedableRng};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: gen_sparse OUT PACKETS SOURCES DESTS [PPS]");
        std::process::exit(2);
    }
    let out = &args[1];
    let packets: u64 = args[2].parse().expect("PACKETS");
    let sources: u32 = args[3].parse().expect("SOURCES");
    let dests: u32 = args[4].parse().expect("DESTS");
    let pps: u64 = args.get(5).map_or(1000, |a| a.parse().expect("PPS"));
    assert!(sources > 0 && dests > 0 && pps > 0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5a_2026);
    let mut w = BufWriter::with_capacity(8 << 20, std::fs::File::create(out)?);
    // pcap header: microseconds, little-endian, Ethernet.
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0; 8])?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let start_us: u64 = 1_764_000_000 * 1_000_000;
    let step_us = 1_000_000 / pps;
    // Sources in 10.0.0.0/8, their destinations in 172.16.0.0/12.
    let src = |i: u32| (0x0a00_0000u32 + 1 + i).to_be_bytes();
    let dst = |i: u32, k: u32| (0xac10_0000u32 + (i * dests + k) % 0x000f_ffff).to_be_bytes();
    let mut next: Vec<u32> = vec![0; sources as usize];
    // 14 Ethernet + 20 IP + 8 UDP + 58 payload: 100-byte frames.
    let mut frame = [0u8; 100];
    frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14..24].copy_from_slice(&[0x45, 0, 0, 86, 0, 1, 0, 0, 64, 17]);
    frame[38..40].copy_from_slice(&66u16.to_be_bytes());
    for n in 0..packets {
        let s = rng.random_range(0..sources);
        let k = next[s as usize];
        next[s as usize] = (k + 1) % dests;
        frame[26..30].copy_from_slice(&src(s));
        frame[30..34].copy_from_slice(&dst(s, k));
        frame[34..36].copy_from_slice(&(40000 + (s % 20000) as u16).to_be_bytes());
        frame[36..38].copy_from_slice(&53u16.to_be_bytes());
        let ts = start_us + n * step_us;
        w.write_all(&((ts / 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&((ts % 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&(frame.len() as u32).to_le_bytes())?;
        w.write_all(&(frame.len() as u32).to_le_bytes())?;
        w.write_all(&frame)?;
    }
    w.flush()
}
