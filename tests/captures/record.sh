#!/usr/bin/env bash
# Records the capture files of mirrored traffic in this directory with real
# tunnels: a veth between two network namespaces made here, a tunnel device
# of each kind on one side sending known inner traffic (trafgen) to the
# other, tcpdump on the receiving side's underlay writing the file.
#
#   sudo tests/captures/record.sh      # rewrites the *-mirror.pcap files
#
# Every file holds 50 inner UDP/IPv4 packets from 10.50.0.7 to 10.60.0.9
# (300 bytes at layer 3) and 30 inner TCP/IPv6 SYNs from fd50::7 to fd60::9
# port 443 (80 bytes), plus whatever the kernel sends on its own (ARP, ND).
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
# trafgen maps a file of its own in the working directory.
cd "${TMPDIR:-/tmp}"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in ip trafgen tcpdump; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done

a=cap-a-$$; b=cap-b-$$
cleanup() {
    [ -n "${dump:-}" ] && kill "$dump" 2>/dev/null || true
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$a"; ip netns add "$b"
ip link add u0 netns "$a" type veth peer name u1 netns "$b"
for ns in "$a" "$b"; do
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip -n "$a" addr add 172.16.0.1/24 dev u0
ip -n "$b" addr add 172.16.0.2/24 dev u1
ip -n "$a" link set u0 up; ip -n "$b" link set u1 up
ip netns exec "$a" ethtool -K u0 gro off >/dev/null
ip netns exec "$b" ethtool -K u1 tso off gso off >/dev/null
ip -n "$b" neigh replace 172.16.0.1 lladdr "$(ip -n "$a" -j link show u0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')" dev u1 nud permanent

record() { # name, tunnel device arguments...
    local name=$1; shift
    ip -n "$b" link add t0 "$@"
    ip -n "$b" link set t0 up
    ip netns exec "$b" sysctl -qw net.ipv6.conf.t0.disable_ipv6=1 2>/dev/null || true
    ip netns exec "$a" tcpdump -i u0 -Q in -n -s 65535 -U -w "$dir/$name-mirror.pcap" 'not arp' 2>/dev/null &
    dump=$!
    sleep 1
    ip netns exec "$b" trafgen -o t0 -P 1 --no-sock-mem --notouch-irq -n 50 -t 2ms \
        '{ eth(da=02:00:00:00:00:09, sa=02:00:00:00:00:07), ipv4(ttl=64, sa=10.50.0.7, da=10.60.0.9), udp(sp=40000, dp=9), fill(0x41, 272) }' >/dev/null
    ip netns exec "$b" trafgen -o t0 -P 1 --no-sock-mem --notouch-irq -n 30 -t 2ms \
        '{ eth(da=02:00:00:00:00:09, sa=02:00:00:00:00:07), ipv6(hl=64, sa=fd50::7, da=fd60::9), tcp(sp=dinc(1000, 60000), dp=443, syn), fill(0x00, 20) }' >/dev/null
    sleep 1
    kill "$dump"; wait "$dump" 2>/dev/null || true
    dump=""
    ip -n "$b" link del t0
    echo "$name-mirror.pcap: $(tcpdump -r "$dir/$name-mirror.pcap" 2>/dev/null | wc -l) packets"
}

record vxlan type vxlan id 42 remote 172.16.0.1 local 172.16.0.2 dstport 4789 dev u1
record geneve type geneve id 5 remote 172.16.0.1
record gretap type gretap local 172.16.0.2 remote 172.16.0.1 key 9
record erspan2 type erspan seq key 100 local 172.16.0.2 remote 172.16.0.1 erspan_ver 1 erspan 123
record erspan3 type erspan seq key 101 local 172.16.0.2 remote 172.16.0.1 erspan_ver 2 erspan_dir ingress erspan_hwid 17
