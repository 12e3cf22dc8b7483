//! Writes a synthetic capture for the replay benchmark: Ethernet frames of
//! mixed sizes (64, 576 and 1514 bytes in the proportions 7:4:1, the
//! classic IMIX), TCP and UDP conversations between a pool of hosts — each
//! host talks with 8 peers of its own, both ways, as real traffic does (a
//! host that contacted random addresses would be an address scan) —
//! timestamps spread evenly over the given number of seconds.
//!
//!   cargo run --release --example gen_pcap -- OUT PACKETS HOSTS SECONDS [SOURCES]
//!
//! With SOURCES > 0 every packet's source is drawn from that many random
//! IPv4 addresses (a spoofed flood); the destinations stay in the pool.
//! The seed is fixed: the same arguments write the same file.

use std::io::{BufWriter, Write};

use rand::{Rng, SeedableRng};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: gen_pcap OUT PACKETS HOSTS SECONDS [SOURCES]");
        std::process::exit(2);
    }
    let out = &args[1];
    let packets: u64 = args[2].parse().expect("PACKETS");
    let hosts: u32 = args[3].parse().expect("HOSTS");
    let seconds: u64 = args[4].parse().expect("SECONDS");
    let sources: u32 = args.get(5).map_or(0, |a| a.parse().expect("SOURCES"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7a_2026);
    let spoofed: Vec<u32> = (0..sources).map(|_| rng.random()).collect();
    let mut w = BufWriter::with_capacity(8 << 20, std::fs::File::create(out)?);
    // pcap header: microseconds, little-endian, Ethernet.
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0; 8])?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let start_us: u64 = 1_764_000_000 * 1_000_000;
    let step_us = (seconds * 1_000_000).max(1) as f64 / packets.max(1) as f64;
    let host = |i: u32| -> [u8; 4] { (0x0a00_0000u32 + 1 + i).to_be_bytes() };
    let peers: Vec<[u32; 8]> = (0..hosts)
        .map(|_| std::array::from_fn(|_| rng.random_range(0..hosts)))
        .collect();
    let mut frame = vec![0u8; 1514];
    frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    // Conversations come in bursts, as TCP windows and request/response
    // exchanges send them: `burst` packets of one pair before the next
    // pair (BURST = 1: every packet a random pair, no locality at all).
    let burst_mean: u32 = std::env::var("BURST")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(8);
    let mut left = 0u32;
    let (mut a, mut b, mut tcp, mut k) = (0u32, 0u32, true, 0u32);
    for n in 0..packets {
        let len = match rng.random_range(0..12) {
            0..=6 => 64,
            7..=10 => 576,
            _ => 1514,
        };
        if left == 0 {
            a = rng.random_range(0..hosts);
            b = peers[a as usize][rng.random_range(0..8)];
            tcp = rng.random_bool(0.7);
            left = if burst_mean <= 1 {
                1
            } else {
                rng.random_range(1..2 * burst_mean)
            };
            k = 0;
        }
        left -= 1;
        // TCP segments go either way; UDP alternates query (from a, who
        // picked b as its peer) and answer.
        let back = if tcp {
            rng.random_bool(0.5)
        } else {
            k % 2 == 1
        };
        k += 1;
        let (mut src, dst) = if back {
            (host(b), host(a))
        } else {
            (host(a), host(b))
        };
        if !spoofed.is_empty() {
            src = spoofed[rng.random_range(0..spoofed.len())].to_be_bytes();
        }
        let ip_len = (len - 14) as u16;
        let f = &mut frame[14..len];
        f[..20].copy_from_slice(&[
            0x45,
            0,
            (ip_len >> 8) as u8,
            ip_len as u8,
            0,
            1,
            0x40,
            0,
            64,
            if tcp { 6 } else { 17 },
            0,
            0,
            src[0],
            src[1],
            src[2],
            src[3],
            dst[0],
            dst[1],
            dst[2],
            dst[3],
        ]);
        // One conversation per pair: ports follow from the hosts.
        let client: u16 = 1024 + (a.wrapping_mul(7919).wrapping_add(b) % 60000) as u16;
        let server: u16 = if tcp {
            [80, 443, 22, 8080][((a ^ b) % 4) as usize]
        } else {
            53
        };
        let (sport, dport) = if src == host(a) {
            (client, server)
        } else {
            (server, client)
        };
        f[20..22].copy_from_slice(&sport.to_be_bytes());
        f[22..24].copy_from_slice(&dport.to_be_bytes());
        if tcp {
            // Data segments of established flows (ACK|PSH), a few SYNs.
            let flags = if rng.random_bool(0.001) { 0x02 } else { 0x18 };
            f[24..32].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
            f[32] = 0x50;
            f[33] = flags;
            f[34..36].copy_from_slice(&[0xff, 0xff]);
        } else {
            f[24..26].copy_from_slice(&(ip_len - 20).to_be_bytes());
        }
        let ts = start_us + (n as f64 * step_us) as u64;
        w.write_all(&((ts / 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&((ts % 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&(len as u32).to_le_bytes())?;
        w.write_all(&(len as u32).to_le_bytes())?;
        w.write_all(&frame[..len])?;
    }
    w.flush()
}
