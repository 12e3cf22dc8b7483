//! Traffic from real tools.

use std::process::Stdio;
use std::time::Duration;

use crate::netns::{Netns, Proc, wait_until};

/// A one-shot iperf3 server on `addr` port 5201 in `ns`, listening when
/// this returns.
pub fn iperf3_server(ns: &Netns, addr: &str) -> Proc {
    let server = ns.spawn(
        &["iperf3", "-s", "-1", "-p", "5201", "-B", addr],
        Stdio::null(),
        Stdio::null(),
    );
    assert!(
        wait_until(Duration::from_secs(10), || ns.listening(5201).then_some(())).is_some(),
        "iperf3 server did not start"
    );
    server
}

/// Sends `count` copies of a trafgen packet description out of `dev`, one
/// every `gap_us` microseconds, from one CPU. Returns what trafgen reported.
pub fn trafgen(ns: &Netns, dev: &str, count: u64, gap_us: u64, packet: &str) -> String {
    trafgen_with(ns, dev, count, gap_us, packet, &[])
}

/// Like [`trafgen`], but through the qdisc layer: trafgen's default bypass
/// skips the taps that show a host's own outgoing packets to packet sockets.
pub fn trafgen_qdisc(ns: &Netns, dev: &str, count: u64, gap_us: u64, packet: &str) -> String {
    trafgen_with(ns, dev, count, gap_us, packet, &["--qdisc-path"])
}

fn trafgen_with(
    ns: &Netns,
    dev: &str,
    count: u64,
    gap_us: u64,
    packet: &str,
    extra: &[&str],
) -> String {
    let n = count.to_string();
    let gap = format!("{gap_us}us");
    let mut args = vec![
        "trafgen",
        "-o",
        dev,
        "-P",
        "1",
        "--no-sock-mem",
        "--notouch-irq",
        "-n",
        &n,
        "-t",
        &gap,
    ];
    args.extend_from_slice(extra);
    args.push(packet);
    let out = ns.exec_output(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "trafgen failed: {text}");
    assert!(
        text.contains(&format!("{count} packets outgoing")),
        "trafgen did not send {count} packets: {text}"
    );
    text
}

/// A UDP/IPv4 packet of exactly `ip_len` bytes at layer 3.
pub fn udp4(dst_mac: &str, src: &str, dst: &str, ip_len: usize) -> String {
    format!(
        "{{ eth(da={dst_mac}), ipv4(ttl=64, sa={src}, da={dst}), udp(sp=40000, dp=9), fill(0x41, {}) }}",
        ip_len - 28
    )
}

/// A UDP/IPv4 packet of `ip_len` bytes at layer 3 from a random source
/// and port to `dst`:`dport`, new for every packet sent: a spoofed flood's.
pub fn spoofed_udp4(dst_mac: &str, dst: &str, dport: u16, ip_len: usize) -> String {
    format!(
        "{{ eth(da={dst_mac}), ipv4(ttl=64, sa=drnd(), da={dst}), udp(sp=drnd(), dp={dport}), fill(0x41, {}) }}",
        ip_len - 28
    )
}

/// nmap's TCP SYN scan of `ports` (e.g. "1-300") on `target` from `ns`,
/// without retries; fails the test with nmap's words if nmap fails.
pub fn nmap_syn_scan(ns: &Netns, target: &str, ports: &str) {
    let out = ns.exec_output(&[
        "nmap",
        "-sS",
        "-n",
        "-Pn",
        "-T4",
        "--max-retries",
        "0",
        "-p",
        ports,
        target,
    ]);
    assert!(
        out.status.success(),
        "nmap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A UDP/IPv6 packet of exactly `ip_len` bytes at layer 3.
pub fn udp6(dst_mac: &str, src: &str, dst: &str, ip_len: usize) -> String {
    format!(
        "{{ eth(da={dst_mac}), ipv6(hl=64, sa={src}, da={dst}), udp(sp=40000, dp=9), fill(0x41, {}) }}",
        ip_len - 48
    )
}
