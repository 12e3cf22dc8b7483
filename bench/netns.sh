# Shared by the live benchmarks (sourced, not run): three namespaces in a
# row, generator $G — router $R — sink $S, joined by veth pairs named from
# the prefix $P, offloads off so every packet on the wire is one packet to
# every counter; and helpers to read the router's counters and the daemon's
# API. The caller sets P, G, R, S and WORK, and gets `cleanup` on exit.

cleanup() {
    for n in $G $R $S; do
        ip netns pids $n 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del $n 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

mac() { ip -n "$1" -j link show dev "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'; }
rx_packets() { ip -n $R -j -s link show dev $P-r0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }
api() { ip netns exec $R curl -sf "http://127.0.0.1:8698$1"; }
# A counter of r0 from /api/v1/interfaces (since the daemon started).
r0_counter() {
    api /api/v1/interfaces | python3 -c "
import json,sys
for i in json.load(sys.stdin)['interfaces']:
    if i['name'] == '$P-r0': print(i['totals']['$1'])"
}

setup() {
    for n in $G $R $S; do ip netns add $n; ip -n $n link set lo up; done
    ip link add $P-g0 netns $G type veth peer name $P-r0 netns $R
    ip link add $P-r1 netns $R type veth peer name $P-s0 netns $S
    ip -n $G addr add 10.1.0.2/24 dev $P-g0
    ip -n $R addr add 10.1.0.1/24 dev $P-r0
    ip -n $R addr add 10.2.0.1/24 dev $P-r1
    ip -n $S addr add 10.2.0.2/24 dev $P-s0
    for pair in "$G $P-g0" "$R $P-r0" "$R $P-r1" "$S $P-s0"; do
        set -- $pair
        ip netns exec $1 sysctl -qw net.ipv6.conf.$2.disable_ipv6=1
        ip -n $1 link set $2 up
        ip netns exec $1 ethtool -K $2 tso off gso off gro off >/dev/null
    done
    ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
    ip -n $R neigh replace 10.2.0.2 lladdr "$(mac $S $P-s0)" dev $P-r1 nud permanent
    ip -n $G neigh replace 10.1.0.1 lladdr "$(mac $R $P-r0)" dev $P-g0 nud permanent
}

# start_daemon: the daemon in $R with the config read from stdin; sets
# DAEMON and waits until its API answers and r0 is watched.
start_daemon() {
    cat > $WORK/ta.toml
    ip netns exec $R "$BIN" -c $WORK/ta.toml > $WORK/ta.out 2> $WORK/ta.log &
    DAEMON=$!
    for _ in $(seq 100); do
        if api /healthz >/dev/null 2>&1 && [ -n "$(r0_counter frames 2>/dev/null)" ]; then break; fi
        sleep 0.1
    done
    api /healthz >/dev/null || { echo "daemon did not start:" >&2; cat $WORK/ta.log >&2; exit 1; }
}

# needs SCRIPT TOOL...: root, each tool, and the binary at $BIN, or a
# one-line reason to stop.
needs() {
    local script=$1; shift
    [ "$(id -u)" = 0 ] || { echo "$script needs root (network namespaces)" >&2; exit 1; }
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "$script needs $t" >&2; exit 1; }
    done
    [ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release" >&2; exit 1; }
}
