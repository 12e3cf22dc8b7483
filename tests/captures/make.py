#!/usr/bin/env python3
"""Writes the crafted capture files of this directory, byte by byte: the
encapsulations and file-format corners operators' captures have (FCS bits
in the link type, TSO segments, MPLS, PPPoE, LLC/SNAP, PBB, VN-Tag,
timestamps years apart, every link type the replay reads). The *-mirror
files come from record.sh instead (real tunnels). MANIFEST says how each is
checked against tshark. Run from anywhere: python3 tests/captures/make.py
"""
import os
import struct
import zlib

here = os.path.dirname(os.path.abspath(__file__))


def mac(n):
    return bytes([2, 0, 0, 0, 0, n])


def eth(ethertype, payload, dst=1, src=2):
    return mac(dst) + mac(src) + struct.pack(">H", ethertype) + payload


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f">{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, total=None):
    total = 20 + len(payload) if total is None else total
    h = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, proto, 0,
                    bytes(src), bytes(dst))
    h = h[:10] + struct.pack(">H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, nh, payload):
    return struct.pack(">IHBB", 0x60000000, len(payload), nh, 64) + bytes(src) + bytes(dst) + payload


def v6(tail):
    return bytes([0xfd, 0x70] + [0] * 13 + [tail])


def udp(sport, dport, n):
    return struct.pack(">HHHH", sport, dport, 8 + n, 0) + b"U" * n


def tcp(sport, dport, flags, n=0):
    return struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0) + b"T" * n


def pcap(name, linktype, records, be=False, nanos=False):
    """records: (seconds, fraction, data[, wire length])"""
    e = ">" if be else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for r in records:
        sec, frac, data = r[:3]
        wire = r[3] if len(r) > 3 else len(data)
        out += struct.pack(e + "IIII", sec, frac, len(data), wire) + data
    with open(os.path.join(here, name), "wb") as f:
        f.write(out)


def ng_block(kind, body):
    body = body + bytes(-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def pcapng(name, ifaces, packets):
    """ifaces: linktype per interface; packets: (iface, microseconds, data)"""
    out = ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for lt in ifaces:
        out += ng_block(1, struct.pack("<HHI", lt, 0, 65535))
    for i, ts, data in packets:
        out += ng_block(6, struct.pack("<IIIII", i, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data)
    with open(os.path.join(here, name), "wb") as f:
        f.write(out)


T0 = 1_764_000_000  # 2025-11-24


def flows(a, b, count, size=200, start=0):
    """count UDP datagrams a -> b of `size` bytes at layer 3, then as many
    answers b -> a of size/2: (seconds, microseconds, ip packet)."""
    out = []
    for i in range(count):
        t = start + i * 1000
        out.append((T0 + t // 1_000_000, t % 1_000_000, ipv4(a, b, 17, udp(40000 + i, 53, size - 28))))
        out.append((T0 + (t + 500) // 1_000_000, (t + 500) % 1_000_000, ipv4(b, a, 17, udp(53, 40000 + i, size // 2 - 28))))
    return out


A, B = [10, 70, 0, 1], [10, 70, 0, 2]
base = flows(A, B, 20)

# FCS information above the link type (issue 10, item 9). With bit 26 the
# frames end in 4 bytes of FCS (correct CRC-32s); without it, libpcap reads
# plain Ethernet.
def with_fcs(frame):
    return frame + struct.pack("<I", zlib.crc32(frame) & 0xFFFFFFFF)

pcap("fcs-linktype-0x24000001.pcap", 0x24000001, [(s, u, with_fcs(eth(0x0800, p))) for s, u, p in base])
pcap("linktype-0x30000001.pcap", 0x30000001, [(s, u, eth(0x0800, p)) for s, u, p in base])

# TSO segments captured on the sender before the NIC filled in the IPv4
# total length (issue 10, item 10).
tso = []
for i in range(10):
    seg = ipv4([10, 71, 0, 1], [10, 71, 0, 2], 6, tcp(50000, 443, 0x18, 1460 - 20), total=0)
    tso.append((T0, i * 100, eth(0x0800, seg)))
    tso.append((T0, i * 100 + 50, eth(0x0800, ipv4([10, 71, 0, 2], [10, 71, 0, 1], 6, tcp(443, 50000, 0x10)))))
pcap("tso-zero-length.pcap", 1, tso)


def mpls(*labels):
    return b"".join(struct.pack(">I", (l << 12) | ((i + 1 == len(labels)) << 8) | 64)
                    for i, l in enumerate(labels))

pcap("mpls-two-labels.pcap", 1, [(s, u, eth(0x8847, mpls(100, 200) + p)) for s, u, p in base])
pcap("mpls-pseudowire-control-word.pcap", 1,
     [(s, u, eth(0x8847, mpls(300, 400) + bytes(4) + eth(0x0800, p, 7, 8))) for s, u, p in base])
pcap("mpls-pseudowire-no-control-word.pcap", 1,
     [(s, u, eth(0x8847, mpls(500) + b"\x52\x54\x00\x00\x00\x07" + b"\x52\x54\x00\x00\x00\x08" + b"\x08\x00" + p))
      for s, u, p in base])
pcap("mpls-ipv6.pcap", 1,
     [(T0, i * 10, eth(0x8847, mpls(16) + ipv6(v6(1), v6(2), 6, tcp(1000 + i, 80, 0x02)))) for i in range(15)])


def pppoe(proto, payload):
    return struct.pack(">BBHHH", 0x11, 0, 0x2A, len(payload) + 2, proto) + payload

pppoe_pkts = [(s, u, eth(0x8864, pppoe(0x0021, p))) for s, u, p in base]
pppoe_pkts += [(T0 + 1, i, eth(0x8864, pppoe(0x0057, ipv6(v6(3), v6(4), 17, udp(5000, 53, 50))))) for i in range(7)]
pppoe_pkts += [(T0 + 1, 100, eth(0x8863, struct.pack(">BBHH", 0x11, 0x09, 0, 0)))]  # PADI
pppoe_pkts += [(T0 + 1, 200, eth(0x8864, pppoe(0xC021, bytes(10))))]  # LCP
pcap("pppoe.pcap", 1, pppoe_pkts)

snap = [(s, u, eth(len(p) + 8, b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + p)) for s, u, p in base]
snap += [(T0 + 1, 0, eth(38, b"\x42\x42\x03" + bytes(35)))]  # STP: LLC, no IP
pcap("llc-snap.pcap", 1, snap)

# 802.1ah: B-TAG, I-TAG, customer addresses, then the customer frame.
pcap("pbb-802.1ah.pcap", 1,
     [(s, u, mac(1) + mac(2) + b"\x88\xa8\x00\x05\x88\xe7" + b"\x00\x01\x00\x02" + mac(7) + mac(8) + b"\x08\x00" + p)
      for s, u, p in base])
pcap("vntag.pcap", 1, [(s, u, eth(0x8926, b"\x80\x01\x00\x02" + b"\x08\x00" + p)) for s, u, p in base])

# Two packets 42.7 years apart (1970 and 2012), and one more a second later.
years = [(10, 0, eth(0x0800, ipv4([10, 72, 0, 1], [10, 72, 0, 2], 17, udp(1, 2, 100)))),
         (1_347_000_000, 0, eth(0x0800, ipv4([10, 72, 0, 1], [10, 72, 0, 2], 17, udp(1, 2, 100)))),
         (1_347_000_001, 0, eth(0x0800, ipv4([10, 72, 0, 2], [10, 72, 0, 1], 17, udp(2, 1, 50))))]
pcap("years-apart.pcap", 1, years)

# Every link type the replay reads, with the same packets.
pcap("linktype-ethernet-be-nanos.pcap", 1, [(s, u * 1000, eth(0x0800, p)) for s, u, p in base], be=True, nanos=True)
pcap("linktype-raw.pcap", 101, [(s, u, p) for s, u, p in base])
pcap("linktype-sll.pcap", 113,
     [(s, u, struct.pack(">HHH8sH", 0, 1, 6, mac(2) + b"\0\0", 0x0800) + p) for s, u, p in base])
pcap("linktype-sll2.pcap", 276,
     [(s, u, struct.pack(">HHIHBB8s", 0x0800, 0, 3, 1, 0, 6, mac(2) + b"\0\0") + p) for s, u, p in base])
pcap("linktype-null.pcap", 0, [(s, u, struct.pack("<I", 2) + p) for s, u, p in base])
pcap("linktype-loop.pcap", 108, [(s, u, struct.pack(">I", 2) + p) for s, u, p in base])
pcapng("pcapng-two-interfaces.pcapng", [1, 1],
       [(i % 2, (s * 1_000_000 + u), eth(0x0800, p)) for i, (s, u, p) in enumerate(base)])
print("written")
