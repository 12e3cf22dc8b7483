#!/usr/bin/env python3
"""Writes the seed corpus of nasty cases for the fuzz targets.

parse: byte 0 = link type (0 Ethernet, 1 raw IP, 2 SLL, 3 SLL2, 4 null,
5 loop, 6 kernel), bytes 1-4 = extra wire length (LE), then the frame.
Run from fuzz/: python3 make_seeds.py
"""
import os
import struct

def eth(ethertype, payload, tags=()):
    f = bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2])
    for i, tpid in enumerate(tags):
        f += struct.pack(">HH", tpid, 100 + i)
    return f + struct.pack(">H", ethertype) + payload

def ipv4(proto, payload, ihl=5, total=None, frag=0, opts=b""):
    total = (ihl * 4 + len(payload)) if total is None else total
    h = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, total & 0xFFFF, 1, frag, 64, proto, 0,
                    bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return h + opts + payload

def ipv6(nh, payload, plen=None):
    plen = len(payload) if plen is None else plen
    return struct.pack(">IHBB", 0x60000000, plen & 0xFFFF, nh, 64) + bytes(15) + b"\x01" + bytes(15) + b"\x02" + payload

def tcp(flags=0x02, doff=5):
    return struct.pack(">HHIIBBHHH", 40000, 80, 1, 0, doff << 4, flags, 65535, 0, 0)

def udp(n=8, length=None):
    length = 8 + n if length is None else length
    return struct.pack(">HHHH", 5353, 53, length & 0xFFFF, 0) + b"A" * n

def mpls(*labels):
    out = b""
    for i, l in enumerate(labels):
        out += struct.pack(">I", (l << 12) | ((i + 1 == len(labels)) << 8) | 64)
    return out

def pppoe(proto, payload):
    return struct.pack(">BBHHH", 0x11, 0, 0x1234, len(payload) + 2, proto) + payload

def ext(nh, units, rest):
    return bytes([nh, units]) + bytes(8 * (units + 1) - 2) + rest

seeds = {
    "eth_ipv4_tcp_syn": (0, 0, eth(0x0800, ipv4(6, tcp()))),
    "eth_ipv4_udp": (0, 0, eth(0x0800, ipv4(17, udp(20)))),
    "eth_ipv4_snapped": (0, 1400, eth(0x0800, ipv4(17, udp(20), total=1448))[:40]),
    "eth_ipv4_ihl_60_short": (0, 0, eth(0x0800, ipv4(6, tcp(), ihl=15))),
    "eth_ipv4_ihl_4": (0, 0, eth(0x0800, ipv4(6, tcp(), ihl=4))),
    "eth_ipv4_total_0": (0, 70000, eth(0x0800, ipv4(6, tcp(), total=0))),
    "eth_ipv4_total_huge": (0, 0, eth(0x0800, ipv4(6, tcp(), total=65535))),
    "eth_ipv4_later_fragment": (0, 0, eth(0x0800, ipv4(17, b"\xee" * 40, frag=185))),
    "eth_ipv4_first_fragment": (0, 0, eth(0x0800, ipv4(17, udp(40), frag=0x2000))),
    "eth_ipv4_options": (0, 0, eth(0x0800, ipv4(17, udp(4), ihl=7, opts=b"\x01" * 8))),
    "eth_ipv4_ah_tcp": (0, 0, eth(0x0800, ipv4(51, bytes([6, 4]) + bytes(22) + tcp()))),
    "eth_ipv4_ah_len_255": (0, 0, eth(0x0800, ipv4(51, bytes([6, 255]) + bytes(10)))),
    "eth_ipv4_icmp_unreach": (0, 0, eth(0x0800, ipv4(1, bytes([3, 3, 0, 0]) + bytes(32)))),
    "eth_ipv4_tcp_doff_15": (0, 0, eth(0x0800, ipv4(6, tcp(doff=15)))),
    "eth_ipv4_udp_len_3": (0, 0, eth(0x0800, ipv4(17, udp(4, length=3)))),
    "eth_ipv6_tcp": (0, 0, eth(0x86DD, ipv6(6, tcp()))),
    "eth_ipv6_ext_chain": (0, 0, eth(0x86DD, ipv6(0, ext(43, 0, ext(60, 1, ext(6, 0, tcp())))))),
    "eth_ipv6_ext_loop_deep": (0, 0, eth(0x86DD, ipv6(60, b"".join([bytes([60, 0]) + bytes(6)] * 12)))),
    "eth_ipv6_ext_len_past_end": (0, 0, eth(0x86DD, ipv6(0, bytes([6, 200]) + bytes(6)))),
    "eth_ipv6_frag_later": (0, 0, eth(0x86DD, ipv6(44, bytes([17, 0]) + struct.pack(">H", 100 << 3) + bytes(4) + b"x" * 30))),
    "eth_ipv6_frag_cut": (0, 0, eth(0x86DD, ipv6(44, bytes([17, 0, 0])))),
    "eth_ipv6_jumbo_zero_len": (0, 80000, eth(0x86DD, ipv6(6, tcp(), plen=0))),
    "eth_ipv6_payload_too_long": (0, 0, eth(0x86DD, ipv6(17, udp(), plen=4000))),
    "eth_ipv6_esp": (0, 0, eth(0x86DD, ipv6(50, b"\x00" * 24))),
    "eth_ipv6_icmpv6_echo": (0, 0, eth(0x86DD, ipv6(58, bytes([128, 0, 0, 0, 0, 1, 0, 1])))),
    "eth_qinq_ipv4": (0, 0, eth(0x0800, ipv4(17, udp(8)), tags=(0x88A8, 0x8100))),
    "eth_vlan_x5": (0, 0, eth(0x0800, ipv4(17, udp(8)), tags=(0x8100,) * 5)),
    "eth_vlan_cut": (0, 100, eth(0x0800, b"", tags=(0x8100,))[:16]),
    "eth_arp": (0, 0, eth(0x0806, bytes(28))),
    "eth_llc": (0, 0, bytes(12) + b"\x00\x26" + bytes(38)),
    "eth_13_bytes": (0, 0, bytes(13)),
    "empty": (0, 0, b""),
    "raw_ipv4": (1, 0, ipv4(17, udp(8))),
    "raw_ipv6": (1, 0, ipv6(6, tcp())),
    "raw_garbage": (1, 0, b"\xff" * 30),
    "sll_outgoing_ipv4": (2, 0, struct.pack(">HHH8sH", 4, 1, 6, bytes(8), 0x0800) + ipv4(6, tcp())),
    "sll_vlan_ipv6": (2, 0, struct.pack(">HHH8sH", 0, 1, 6, bytes(8), 0x8100) + b"\x00\x07\x86\xdd" + ipv6(6, tcp())),
    "sll2_ipv6": (3, 0, struct.pack(">HHIHBB8s", 0x86DD, 0, 3, 1, 0, 6, bytes(8)) + ipv6(17, udp(4))),
    "null_le_inet": (4, 0, struct.pack("<I", 2) + ipv4(1, bytes([8, 0, 0, 0]) + bytes(4))),
    "null_be_inet6": (4, 0, struct.pack(">I", 30) + ipv6(6, tcp())),
    "loop_inet6": (5, 0, struct.pack(">I", 24) + ipv6(6, tcp())),
    "kernel_offset_beyond": (6, 0, b"\x00" * 3),
    # Encapsulations operators have (issue 10).
    "eth_mpls_ipv4": (0, 0, eth(0x8847, mpls(100, 200) + ipv4(17, udp(8)))),
    "eth_mpls_pw_cw_eth": (0, 0, eth(0x8847, mpls(16) + bytes(4) + eth(0x0800, ipv4(6, tcp())))),
    "eth_mpls_no_bos_deep": (0, 0, eth(0x8847, struct.pack(">I", 16 << 12 | 64) * 20)),
    "eth_mpls_gal": (0, 0, eth(0x8847, mpls(13) + bytes([0x10, 0, 0, 1]))),
    "eth_mpls_cut": (0, 100, eth(0x8847, mpls(1, 2))[:17]),
    "eth_pppoe_ipv4": (0, 0, eth(0x8864, pppoe(0x21, ipv4(17, udp(8))))),
    "eth_pppoe_ipv6": (0, 0, eth(0x8864, pppoe(0x57, ipv6(6, tcp())))),
    "eth_pppoe_lcp": (0, 0, eth(0x8864, pppoe(0xC021, bytes(8)))),
    "eth_pppoe_bad_version": (0, 0, eth(0x8864, b"\x22" + pppoe(0x21, ipv4(17, udp(8)))[1:])),
    "eth_llc_snap_ipv4": (0, 0, eth(36, b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ipv4(17, udp(8)))),
    "eth_llc_snap_cut": (0, 0, eth(36, b"\xaa\xaa\x03\x00")),
    "eth_pbb_itag": (0, 0, eth(0x88E7, bytes(4) + bytes(12) + b"\x08\x00" + ipv4(17, udp(8)), tags=(0x88A8,))),
    "eth_vntag": (0, 0, eth(0x8926, bytes(4) + b"\x86\xdd" + ipv6(17, udp(4)))),
    "eth_etag": (0, 0, eth(0x893F, bytes(6) + b"\x08\x00" + ipv4(6, tcp()))),
    "eth_shim_loop": (0, 0, eth(0x8926, (bytes(4) + b"\x89\x26") * 20)),
    # Tunnels the parse target also looks into.
    "eth_vxlan": (0, 0, eth(0x0800, ipv4(17, struct.pack(">HHHH", 50000, 4789, 16 + 54, 0) + b"\x08" + bytes(7) + eth(0x0800, ipv4(6, tcp()))))),
    "eth_vxlan_no_i": (0, 0, eth(0x0800, ipv4(17, struct.pack(">HHHH", 50000, 4789, 16, 0) + bytes(8)))),
    "eth_geneve_opts": (0, 0, eth(0x0800, ipv4(17, struct.pack(">HHHH", 50000, 6081, 100, 0) + b"\x3f\x00\x65\x58" + bytes(4) + bytes(20)))),
    "eth_gretap_key": (0, 0, eth(0x0800, ipv4(47, struct.pack(">HHI", 0x2000, 0x6558, 9) + eth(0x0800, ipv4(17, udp(8)))))),
    "eth_gre_ip": (0, 0, eth(0x0800, ipv4(47, struct.pack(">HH", 0, 0x0800) + ipv4(17, udp(8))))),
    "eth_erspan2": (0, 0, eth(0x0800, ipv4(47, struct.pack(">HHI", 0x1000, 0x88BE, 1) + bytes(8) + eth(0x0800, ipv4(6, tcp()))))),
    "eth_erspan3_opt": (0, 0, eth(0x0800, ipv4(47, struct.pack(">HHI", 0x1000, 0x22EB, 1) + bytes(11) + b"\x01" + bytes(8) + eth(0x86DD, ipv6(6, tcp()))))),
    "eth_erspan3_cut": (0, 0, eth(0x0800, ipv4(47, struct.pack(">HHI", 0x1000, 0x22EB, 1) + bytes(5)))),
    "eth_gre_in_gre": (0, 0, eth(0x0800, ipv4(47, struct.pack(">HH", 0, 0x0800) + ipv4(47, struct.pack(">HH", 0, 0x0800) + ipv4(17, udp(8)))))),
    # TSO: total length 0 on a segment captured before the NIC filled it in.
    "eth_ipv4_tso_zero_len": (0, 0, eth(0x0800, ipv4(6, tcp() + b"x" * 1400, total=0))),
}

os.makedirs("seeds/parse", exist_ok=True)
for name, (link, extra, frame) in seeds.items():
    with open(f"seeds/parse/{name}", "wb") as f:
        f.write(bytes([link]) + struct.pack("<I", extra) + frame)

configs = {
    "defaults": open("../config/trafficalerted.toml").read(),
    "empty": "",
    "units": 'tick = "500ms"\n[traffic]\ninterval = "10m"\nbyte_limit = "1GiB"\n',
    "bad_unit": '[traffic]\ninterval = "5 fortnights"\n',
    "huge_numbers": '[traffic]\nmax_hosts = 99999999999999999999\nbyte_limit = "18446744073709551615T"\n',
    "wrong_types": '[capture]\nworkers = [1,2]\nsnaplen = true\n',
    "unknown_section": '[[rule]]\nnetworks = ["10.0.0.0/8"]\n',
    "listen_list": '[http]\nlisten = ["[::1]:1", "127.0.0.1:0"]\n',
    "unclosed": '[capture\n',
    "globs": '[capture]\ninterfaces = ["eth*", "?", "*a*b*c*"]\nexclude_interfaces = ["lo", "veth*"]\n',
    "rates": 'tick = "700ms"\n[rates]\nwindow = "42s"\n[rates.in]\nsyn_packets = "1000000000000001"\nbits = 0\n[rates.out]\nnew_flows = "1K"\n'
             '[[rule]]\nnetworks = ["::/0"]\nrates_in = { udp_bits = "18446744073709551615" }\nrates_out = { nope = 1 }\n',
}
os.makedirs("seeds/config", exist_ok=True)
for name, text in configs.items():
    with open(f"seeds/config/{name}.toml", "w") as f:
        f.write(text)

# The config target also reads its input as an alert history and as an
# original TrafficAlerted.conf.
import json
alert = {"id": 41, "kind": "port_scan", "subject": "10.1.0.9", "rule": "default", "start_ms": 1,
         "last_update_ms": 2, "end_ms": None, "value": 500, "peak": 500, "threshold": 100,
         "unit": "ports", "window_secs": 600, "degraded": False, "drop_ratio": 0.0, "evidence": {}}
line = json.dumps({"event": "open", "alert": alert})
with open("seeds/config/history_torn.jsonl", "w") as f:
    f.write(line + "\n" + line[:40])
with open("seeds/config/history_good.jsonl", "w") as f:
    f.write(line + "\n" + json.dumps({"event": "close", "alert": alert}) + "\n")
with open("seeds/config/legacy.conf", "w") as f:
    f.write('TrafficInterval: 300\nByteLimit: 1M\nExcludedInterfaces: "lo","dummy0"\nNumberContactedIPs: 0\nFoo: bar\n')

def block(frames, num=None, first=48):
    """A TPACKET_V3 block image with frames (snaplen, wire_len, mac, next)."""
    img = bytearray(4096)
    struct.pack_into("<IIII", img, 8, 1, num if num is not None else len(frames), first, 4096)
    at = first
    for i, (snap, wire, mac, nxt) in enumerate(frames):
        if at + 68 > len(img):
            break
        struct.pack_into("<IIIIIIHH", img, at, nxt, 1, 2, snap, wire, 1, mac, mac + 14)
        at += nxt if nxt else 0
    return bytes(img)

os.makedirs("seeds/ring_block", exist_ok=True)
blocks = {
    "two_frames": block([(60, 60, 80, 160), (60, 60, 80, 0)]),
    "next_offset_huge": block([(60, 60, 80, 1 << 30), (60, 60, 80, 0)]),
    "snaplen_huge": block([(0xFFFFFFFF, 60, 80, 0)]),
    "mac_small": block([(60, 60, 8, 0)]),
    "count_lies": block([(60, 60, 80, 0)], num=1000),
    "first_beyond": block([(60, 60, 80, 0)], first=5000),
    "loop_zero_next": block([(60, 60, 80, 0)], num=3),
}
for name, img in blocks.items():
    with open(f"seeds/ring_block/{name}", "wb") as f:
        f.write(img)
# http_request: byte 0 = access mode (0 open, 1 bearer "t0ken", 2 basic
# ops:pw), then the request target, then "\n" and the Authorization value.
os.makedirs("seeds/http_request", exist_ok=True)
requests = {
    "hosts_all_params": b"\x00/api/v1/hosts?sort=packets&order=asc&limit=10&offset=5&detail&alerting=false&net=10.0.0.0%2F8",
    "hosts_overflow": b"\x00/api/v1/hosts?limit=99999999999999999999999&offset=18446744073709551615",
    "hosts_bad_escape": b"\x00/api/v1/hosts?net=%E0%A4%A&sort=%ff",
    "host_v6": b"\x00/api/v1/hosts/2001:db8::1",
    "host_v4_mapped": b"\x00/api/v1/hosts/::ffff:10.0.0.2",
    "host_garbage": b"\x00/api/v1/hosts/%2e%2e%2f%2e%2e",
    "flows_min_max": b"\x00/api/v1/flows?limit=5000&min_bytes=18446744073709551615",
    "alerts_kind": b"\x00/api/v1/alerts?kind=port_scan&kind=traffic",
    "dashboard_traversal": b"\x00/dashboard/../../etc/passwd",
    "metrics": b"\x00/metrics",
    "legacy_with_query": b"\x00/all?x==&&=",
    "bearer_ok": b"\x01/api/v1/status\nBearer t0ken",
    "bearer_case": b"\x01/api/v1/status\nbEaReR   t0ken  ",
    "bearer_empty": b"\x01/api/v1/status\nBearer ",
    "basic_ok": b"\x02/api/v1/hosts\nBasic b3BzOnB3",
    "basic_bad_b64": b"\x02/api/v1/hosts\nBasic ====",
    "basic_no_colon": b"\x02/api/v1/hosts\nBasic b3Bz",
    "dashboard_basic": b"\x02/dashboard/\n",
}
for name, data in requests.items():
    with open(f"seeds/http_request/{name}", "wb") as f:
        f.write(data)
# replay_reader: capture files, good and broken.
def pcap_file(be=False, nanos=False, linktype=1, snaplen=65535, recs=(), modified=False):
    e = ">" if be else "<"
    magic = 0xa1b2cd34 if modified else (0xa1b23c4d if nanos else 0xa1b2c3d4)
    out = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for ts, data, orig in recs:
        out += struct.pack(e + "IIII", ts, 1, len(data), orig if orig is not None else len(data))
        if modified:
            out += bytes(8)
        out += data
    return out

def ng_block(kind, body, be=False, length=None):
    e = ">" if be else "<"
    body = body + bytes(-len(body) % 4)
    n = 12 + len(body) if length is None else length
    return struct.pack(e + "II", kind, n) + body + struct.pack(e + "I", n)

def ng_file(be=False, ifaces=((1, None),), pkts=(), extra=b""):
    e = ">" if be else "<"
    out = ng_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), be)
    for lt, res in ifaces:
        body = struct.pack(e + "HHI", lt, 0, 0)
        if res is not None:
            body += struct.pack(e + "HH", 9, 1) + bytes([res, 0, 0, 0]) + struct.pack(e + "HH", 0, 0)
        out += ng_block(1, body, be)
    for ifid, ts, data in pkts:
        out += ng_block(6, struct.pack(e + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data, be)
    return out + extra

udp_frame = eth(0x0800, ipv4(17, udp(8)))
os.makedirs("seeds/replay_reader", exist_ok=True)
captures = {
    "pcap_le": pcap_file(recs=[(1, udp_frame, None), (2, udp_frame, None)]),
    "pcap_be_nanos": pcap_file(be=True, nanos=True, recs=[(1, udp_frame, None)]),
    "pcap_modified": pcap_file(modified=True, recs=[(1, udp_frame, None)]),
    "pcap_raw_ip": pcap_file(linktype=101, recs=[(1, udp_frame[14:], None)]),
    "pcap_sll": pcap_file(linktype=113, recs=[(1, bytes(14) + b"\x08\x00" + udp_frame[14:], None)]),
    "pcap_snaplen_zero": pcap_file(snaplen=0, recs=[(1, udp_frame, None)]),
    "pcap_snaplen_max": pcap_file(snaplen=0xFFFFFFFF, recs=[(1, udp_frame, None)]),
    "pcap_caplen_over_wire": pcap_file(recs=[(1, udp_frame, 10)]),
    "pcap_truncated_record": pcap_file(recs=[(1, udp_frame, None)])[:-5],
    "pcap_huge_caplen": pcap_file()[:24] + struct.pack("<IIII", 1, 1, 0xFFFFFFF0, 60),
    "pcap_unknown_linktype": pcap_file(linktype=147, recs=[(1, udp_frame, None)]),
    "pcap_header_only_cut": pcap_file()[:13],
    "ng_two_ifaces": ng_file(ifaces=((1, None), (101, 9)), pkts=[(0, 5, udp_frame), (1, 6, udp_frame[14:])]),
    "ng_be": ng_file(be=True, pkts=[(0, 5, udp_frame)]),
    "ng_unknown_if": ng_file(pkts=[(3, 5, udp_frame)]),
    "ng_unknown_link": ng_file(ifaces=((147, None),), pkts=[(0, 5, udp_frame)]),
    "ng_bad_tsresol": ng_file(ifaces=((1, 0xFF),), pkts=[(0, 5, udp_frame)]),
    "ng_block_len_odd": ng_file() + ng_block(6, bytes(20), length=13),
    "ng_block_len_huge": ng_file() + ng_block(6, bytes(20), length=0x7FFFFFF0),
    "ng_block_len_tiny": ng_file() + ng_block(6, b"", length=4),
    "ng_no_shb": ng_block(1, struct.pack("<HHI", 1, 0, 0)),
    "ng_spb_first": ng_file(ifaces=()) + ng_block(3, struct.pack("<I", len(udp_frame)) + udp_frame),
    "ng_two_sections": ng_file(pkts=[(0, 1, udp_frame)]) + ng_file(be=True, pkts=[(0, 2, udp_frame)]),
    "ng_epb_caplen_lies": ng_file() + ng_block(6, struct.pack("<IIIII", 0, 0, 1, 5000, 60) + udp_frame),
    # FCS information above the link type (issue 10): with and without bit 26.
    "pcap_fcs_len_4": pcap_file(linktype=0x24000001, recs=[(1, udp_frame + b"\xde\xad\xbe\xef", None)]),
    "pcap_linktype_0x30000001": pcap_file(linktype=0x30000001, recs=[(1, udp_frame, None)]),
    "pcap_fcs_longer_than_frame": pcap_file(linktype=0xF4000001, recs=[(1, b"\x01\x02", None)]),
    "ng_if_fcslen_32": ng_file(ifaces=()) + ng_block(1, struct.pack("<HHIHH", 1, 0, 0, 13, 1) + bytes([32, 0, 0, 0]) + bytes(4)) + ng_block(6, struct.pack("<IIIII", 0, 0, 1, len(udp_frame) + 4, len(udp_frame) + 4) + udp_frame + bytes(4)),
    "ng_epb_flags_fcs": ng_file() + ng_block(6, struct.pack("<IIIII", 0, 0, 1, len(udp_frame), len(udp_frame)) + udp_frame + bytes(-len(udp_frame) % 4) + struct.pack("<HHI", 2, 4, 15 << 5) + bytes(4)),
    "ng_trailing_len_differs": ng_file(pkts=[(0, 5, udp_frame)])[:-4] + struct.pack("<I", 999),
    "ng_idb_too_short": ng_file(ifaces=()) + ng_block(1, b"\x01\x00\x00\x00"),
    "pcap_tso_zero_len": pcap_file(recs=[(1, eth(0x0800, ipv4(6, tcp() + b"x" * 1400, total=0)), None)]),
}
for name, data in captures.items():
    with open(f"seeds/replay_reader/{name}", "wb") as f:
        f.write(data)
# history_reader: the alert history file, with the lines that broke it.
import json
def alert_line(event, id, start, end=None, kind="inbound"):
    a = {"degraded": False, "drop_ratio": 0.0, "end_ms": end,
         "evidence": {"sources": [{"bytes": 100, "ip": "192.0.2.7", "packets": 1}]},
         "id": id, "kind": kind, "last_update_ms": end or start, "peak": 13533600,
         "rule": "default", "start_ms": start, "subject": "10.2.0.2", "threshold": 5000000,
         "unit": "bytes", "value": 11309400, "window_secs": 30}
    return (json.dumps({"event": event, "alert": a}) + "\n").encode()
os.makedirs("seeds/history_reader", exist_ok=True)
opened = alert_line("open", 1, 1000)
closed = alert_line("close", 1, 1000, 2000)
histories = {
    "open_close": opened + closed,
    "start_at_u64_max": b"".join(alert_line("open", i, 2**64 - 1) for i in range(1, 4)),
    "end_at_u64_max": opened + alert_line("close", 1, 1000, 2**64 - 1),
    "torn_then_event": opened + closed[:37] + alert_line("open", 2, 3000),
    "torn_last": opened + closed[:50],
    "empty_lines": b"\n\n" + opened + b"\n" + closed,
    # Byte 9 from 0x80 up sets the target's bound on a line (0x86: 4 KiB;
    # the daemon's 1 MiB is more than libFuzzer makes an input), the first
    # line then not an event.
    "long_line": bytes(9) + b"\x86\n" + opened + b"x" * 4097 + b"\n" + closed,
    "long_line_at_end_no_newline": bytes(9) + b"\x86\n" + opened + b"y" * 4103,
    "lines_at_the_bound": bytes(9) + b"\x86\n" + opened + b"z" * 4095 + b"\n" + b"w" * 4096 + b"\n" + closed,
    "nul_bytes": opened + b"\0" * 300 + b"\n" + closed,
    "deep_nesting": b"[" * 5000 + b"\n" + opened,
    "huge_numbers": opened.replace(b'"id": 1', b'"id": 18446744073709551616'),
    "negative_time": opened.replace(b'"start_ms": 1000', b'"start_ms": -1'),
    "wrong_types": b'{"event": 7, "alert": []}\n' + opened,
    "not_utf8": b"\xff\xfe" + opened,
    "crlf": opened.replace(b"\n", b"\r\n") + closed,
    "same_ms_many": b"".join(alert_line("open", i, 5000) for i in range(1, 40)),
}
for name, data in histories.items():
    with open(f"seeds/history_reader/{name}", "wb") as f:
        f.write(data)
print(f"{len(histories)} history_reader seeds")
# bgp_lines: what crosses the mitigation link, and what would break it.
os.makedirs("seeds/bgp_lines", exist_ok=True)
state = json.dumps({"exabgp": "4.0.1", "time": 1.5, "host": "box", "pid": 7, "ppid": 1,
                    "counter": 3, "type": "state",
                    "neighbor": {"address": {"local": "10.99.0.2", "peer": "10.99.0.1"},
                                 "asn": {"local": 65002, "peer": 65001}, "state": "up"}})
route = ("route\troute 10.2.0.2/32\tannounce route 10.2.0.2/32 next-hop 10.99.0.2 community [65535:666]"
         "\twithdraw route 10.2.0.2/32 next-hop 10.99.0.2")
flow = ("route\tflow destination 10.2.0.2/32; protocol udp; destination-port =53;"
        "\tannounce flow route { match { destination 10.2.0.2/32; protocol udp; destination-port =53; } then { discard; } }"
        "\twithdraw flow route { match { destination 10.2.0.2/32; protocol udp; destination-port =53; } }")
bgp = {
    "bridge_says": "neighbor 10.99.0.1 up\ndone 1\nfailed 2\nneighbor 2001:db8::1 down\n",
    "bridge_bad": "neighbor 10.99.0.1\ndone -1\ndone 99999999999999999999999\nneighbor 10.99.0.1 up now\n\0\xff",
    "exabgp_state": state + "\ndone\nerror\nshutdown\n",
    "exabgp_state_bad_peer": state.replace("10.99.0.1", "not-an-ip") + "\n",
    "exabgp_state_deep": "[" * 10000 + "\n",
    "daemon_set": "begin\n" + route + "\n" + flow + "\nend\n",
    "daemon_set_injection": "begin\n" + route.replace("community", "\rneighbor 10.99.0.1 teardown 2\r") + "\n"
        + "route\tk\tneighbor 10.99.0.1 teardown 2\twithdraw k\nend\n",
    "daemon_set_tabs": "route\t\t\t\t\nroute\tk\tannounce k\twithdraw k\textra\n",
}
for name, text in bgp.items():
    with open(f"seeds/bgp_lines/{name}", "wb") as f:
        f.write(text.encode("utf-8", "surrogateescape"))
mit = json.loads(alert_line("open", 1, 1000))
mit["event"] = "mitigation"
mit["mitigation"] = {"what": "announce", "prefix": "10.2.0.2/32", "flowspec": "udp to 10.2.0.2/32 port 53: discard", "at_ms": 1001}
with open("seeds/history_reader/mitigation", "wb") as f:
    f.write(opened + (json.dumps(mit) + "\n").encode() + closed)
print(f"{len(bgp)} bgp_lines seeds")
print(f"{len(seeds)} parse, {len(configs)} config, {len(blocks)} ring_block, {len(requests)} http_request, {len(captures)} replay_reader seeds")

# flow_records: datagrams from routers, framed as 2-byte length (top bit:
# which exporter) + bytes.
def frame(d, second=False):
    return struct.pack(">H", len(d) | (0x8000 if second else 0)) + d

def nf5(recs, n=0, count=None):
    d = struct.pack(">HH", 5, len(recs) if count is None else count) + bytes(18) + struct.pack(">H", n | 0x4000)
    for src, dst, p, sp, dp, fl, pk, by in recs:
        d += bytes(src) + bytes(dst) + bytes(4) + struct.pack(">HHII", 3, 4, pk, by) + bytes(8)
        d += struct.pack(">HHBBBB", sp, dp, 0, fl, p, 0) + bytes(8)
    return d

def fset(i, body):
    return struct.pack(">HH", i, len(body) + 4) + body

FIELDS = [(8, 4), (12, 4), (4, 1), (7, 2), (11, 2), (6, 1), (2, 4), (1, 8)]
def tmpl(tid=256, fields=FIELDS):
    return struct.pack(">HH", tid, len(fields)) + b"".join(struct.pack(">HH", a, b) for a, b in fields)
def rec(src=(10, 0, 0, 1), dst=(10, 0, 0, 2), pk=5, by=500, p=17, flags=0):
    return bytes(src) + bytes(dst) + struct.pack(">BHHBIQ", p, 5000, 53, flags, pk, by)
def v9(*sets):
    return struct.pack(">HHIIII", 9, len(sets), 0, 0, 1, 7) + b"".join(sets)
def ipfix(*sets, length=None):
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body) if length is None else length, 0, 1, 7) + body

def sflow(frame_bytes, rate=64, samples=None, reclen=None, hdrlen=None):
    w = lambda *v: b"".join(struct.pack(">I", x & 0xffffffff) for x in v)
    r = w(1, len(frame_bytes) + 4, 4, len(frame_bytes) if hdrlen is None else hdrlen) + frame_bytes
    r += bytes(-len(r) % 4)
    smp = w(1, 3, rate, 100, 0, 7, 8, 1, 1, len(r) if reclen is None else reclen) + r
    return w(5, 1) + bytes([192, 0, 2, 1]) + w(0, 1, 1000, 1 if samples is None else samples) + w(1, len(smp)) + smp

udp_frame = eth(0x0800, ipv4(17, udp(26)))
syn_frame = eth(0x0800, ipv4(6, tcp(0x02)))
opt_tmpl = struct.pack(">HHH", 400, 2, 1) + struct.pack(">HHHH", 149, 4, 305, 4)
var_tmpl = struct.pack(">HH", 300, 3) + struct.pack(">HH", 8, 4) + struct.pack(">HH", 12, 4) + struct.pack(">HHI", 0x8005, 0xffff, 29305)
flows = {
    "nf5_two": frame(nf5([((10, 0, 0, 1), (10, 0, 0, 2), 17, 5000, 53, 0, 10, 1000), ((10, 0, 0, 3), (10, 0, 0, 2), 6, 40000, 22, 2, 1, 60)], 100)),
    "nf5_count_lies": frame(nf5([((10, 0, 0, 1), (10, 0, 0, 2), 17, 5000, 53, 0, 10, 1000)], count=30)),
    "nf5_huge_counts": frame(nf5([((10, 0, 0, 1), (10, 0, 0, 2), 17, 1, 2, 0, 0xffffffff, 0xffffffff)] * 30, n=0x3fff)),
    "v9_template_then_data": frame(v9(fset(0, tmpl()), fset(256, rec() + rec((10, 0, 0, 3))))),
    "v9_data_first": frame(v9(fset(256, rec()))) + frame(v9(fset(0, tmpl()))),
    "v9_padding": frame(v9(fset(0, tmpl()), fset(256, rec() + bytes(3))) + bytes(3)),
    "v9_zero_len_fields": frame(v9(fset(0, tmpl(fields=[(8, 0), (12, 0)])))),
    "v9_options_sampling": frame(v9(fset(1, struct.pack(">HHH", 257, 4, 4) + struct.pack(">HHHH", 1, 4, 34, 4)), fset(257, struct.pack(">II", 1, 1000)))),
    "ipfix_template_data": frame(ipfix(fset(2, tmpl()), fset(256, rec()))),
    "ipfix_variable": frame(ipfix(fset(2, var_tmpl), fset(300, bytes([10, 0, 0, 9, 10, 0, 0, 2, 255, 1, 44]) + bytes(300)))),
    "ipfix_variable_overrun": frame(ipfix(fset(2, var_tmpl), fset(300, bytes([10, 0, 0, 9, 10, 0, 0, 2, 255, 0xff, 0xff])))),
    "ipfix_options": frame(ipfix(fset(3, opt_tmpl), fset(400, struct.pack(">II", 7, 512)))) + frame(ipfix(fset(2, tmpl()), fset(256, rec()))),
    "ipfix_withdraw": frame(ipfix(fset(2, tmpl()))) + frame(ipfix(fset(2, struct.pack(">HH", 256, 0)))) + frame(ipfix(fset(256, rec()))),
    "ipfix_length_lies": frame(ipfix(fset(2, tmpl()), length=65535)) + frame(ipfix(fset(256, rec()), length=3)),
    "ipfix_set_len_zero": frame(ipfix(struct.pack(">HH", 256, 0) + rec())),
    "ipfix_many_templates": b"".join(frame(ipfix(fset(2, tmpl(256 + i)))) for i in range(20)),
    # Data sets of templates not sent, from one exporter: more bytes than
    # the target lets a state hold (4 096), so the oldest are let go.
    "ipfix_many_held": b"".join(frame(ipfix(fset(256 + i, bytes(1000))), True) for i in range(8)),
    # Empty data sets (a header each) of templates not sent, from both
    # exporters, then some of those templates: held sets are bounded by
    # their count too, and released by key.
    "ipfix_empty_held_then_templates": frame(ipfix(*[fset(256 + i, b"") for i in range(2000)]))
        + frame(ipfix(*[fset(256 + i, b"") for i in range(2000)]), True)
        + frame(ipfix(fset(2, b"".join(tmpl(256 + i) for i in range(0, 2000, 250))))),
    "ipfix_huge_field_count": frame(ipfix(fset(2, struct.pack(">HH", 256, 65535)))),
    "two_exporters_same_ids": frame(ipfix(fset(2, tmpl()))) + frame(ipfix(fset(256, rec())), True),
    "sflow_udp": frame(sflow(udp_frame)),
    "sflow_syn_rate1": frame(sflow(syn_frame, rate=1)),
    "sflow_header_len_lies": frame(sflow(udp_frame, hdrlen=0xffffffff)),
    "sflow_record_len_lies": frame(sflow(udp_frame, reclen=0xfffffffd)),
    "sflow_sample_count_lies": frame(sflow(udp_frame, samples=0xffffffff)),
    "sflow_truncated": frame(sflow(udp_frame)[:40]),
    "not_flows": frame(b"GET / HTTP/1.1\r\n\r\n") + frame(b"") + frame(b"\x00\x00"),
    # Read as a TCP stream (the target does both): messages back to back.
    "tcp_stream": ipfix(fset(2, tmpl())) + ipfix(fset(256, rec() + rec((10, 0, 0, 3)))) + ipfix(fset(256, rec()))[:20],
    "tcp_stream_then_garbage": ipfix(fset(2, tmpl()), fset(256, rec())) + b"\x00\x09\x00\x20" + bytes(28),
    "tcp_stream_short_length": ipfix(fset(2, tmpl())) + struct.pack(">HH", 10, 15) + bytes(11),
    "tcp_stream_max_length": struct.pack(">HHIII", 10, 65535, 0, 1, 7) + fset(256, bytes(65515)),
}
os.makedirs("seeds/flow_records", exist_ok=True)
for name, data in flows.items():
    with open(f"seeds/flow_records/{name}", "wb") as f:
        f.write(data)
print(f"{len(flows)} flow_records seeds")
