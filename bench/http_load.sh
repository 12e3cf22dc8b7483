#!/usr/bin/env bash
# HTTP load while capturing: wrk with 100 connections against /api/v1/hosts
# and /metrics while trafgen floods the watched interface with random
# source addresses (so the host table is full and every hosts page is the
# largest one). The same flood runs once without and once with the HTTP
# load; the ring drops of the two runs are compared.
#
#   generator ns --veth--> router ns (daemon, wrk on loopback) --veth--> sink ns
#
# Usage (root): bench/http_load.sh [PACKETS] [GAP]   (GAP: trafgen -t, e.g. 20us;
#   default none: as fast as one generator core goes)
#   BIN=path/to/trafficalerted (default target/release/trafficalerted)
# Installs wrk if missing. Writes Markdown to stdout and bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/trafficalerted}
COUNT=${1:-5000000}
GAP=${2:-}
SECS=${WRK_SECONDS:-10}
P=th$$
G=$P-g R=$P-r S=$P-s
OUT=bench/results
mkdir -p "$OUT"
RESULT=$OUT/http-load-$(date -u +%Y%m%dT%H%M%SZ).md
WORK=$(mktemp -d)
. bench/netns.sh

needs bench/http_load.sh trafgen ethtool curl ip python3
command -v wrk >/dev/null || env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk



setup

start_daemon <<EOF
[capture]
interfaces = ["$P-r0"]
[traffic]
interval = "1h"
[alerts]
history_file = "$WORK/alerts.jsonl"
EOF

PACKET="{ eth(da=$(mac $R $P-r0)), ipv4(ttl=64, sa=drnd(), da=10.2.0.2), udp(sp=dinc(1024, 65000), dp=9), fill(0x41, 22) }"
flood() {
    local gapopt=()
    [ -n "$GAP" ] && gapopt=(-t "$GAP")
    ip netns exec $G trafgen -o $P-g0 -P 1 --no-sock-mem --notouch-irq -n "$COUNT" "${gapopt[@]}" "$PACKET" > $WORK/tg.log 2>&1
}

# run NAME WITH_LOAD: one flood; with load, wrk on /api/v1/hosts then /metrics.
run() {
    local name=$1 load=$2
    local frames0 drops0 rx0
    frames0=$(r0_counter frames); drops0=$(r0_counter kernel_drops); rx0=$(rx_packets)
    local t0; t0=$(date +%s.%N)
    flood & local fl=$!
    local hosts="" metrics=""
    if [ "$load" = yes ]; then
        sleep 1
        ip netns exec $R wrk -t2 -c100 -d${SECS}s --latency http://127.0.0.1:8698/api/v1/hosts > $WORK/wrk-hosts.txt
        ip netns exec $R wrk -t2 -c100 -d${SECS}s --latency http://127.0.0.1:8698/metrics > $WORK/wrk-metrics.txt
    fi
    wait $fl
    local t1; t1=$(date +%s.%N)
    sleep 2.5
    local frames1 drops1 rx1
    frames1=$(r0_counter frames); drops1=$(r0_counter kernel_drops); rx1=$(rx_packets)
    echo "| $name | $COUNT | $(python3 -c "print(f'{$COUNT/($t1-$t0)/1e3:.0f}')") | $((rx1 - rx0)) | $((frames1 - frames0)) | $((drops1 - drops0)) |" >> $WORK/rows
}

wrk_row() { # NAME FILE
    python3 - "$1" "$2" >> $WORK/wrk <<'PY'
import re, sys
name, path = sys.argv[1:]
t = open(path).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)
p = {m.group(1): m.group(2) for m in re.finditer(r"^\s+(50|90|99)%\s+(\S+)", t, re.M)}
reqs = re.search(r"(\d+) requests in", t).group(1)
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
sock = re.search(r"Socket errors: (.*)", t)
print(f"| {name} | {reqs} | {float(rps):,.0f} | {p.get('50')} | {p.get('90')} | {p.get('99')} | "
      f"{errs.group(1) if errs else 0} | {sock.group(1) if sock else 'none'} |")
PY
}

: > $WORK/rows; : > $WORK/wrk
run "flood, no HTTP load" no
run "flood + wrk 100 connections" yes
wrk_row "/api/v1/hosts (100 per page, 10 000 hosts listed)" $WORK/wrk-hosts.txt
wrk_row "/metrics" $WORK/wrk-metrics.txt
STATUS=$(api /api/v1/status | python3 -c "
import json,sys
s=json.load(sys.stdin); t=s['tables']
print(f\"{t['hosts']:,}/{t['max_hosts']:,} hosts tracked, {s['hosts_listed']:,} listed, {s['workers']} workers\")")
kill -TERM $DAEMON; wait $DAEMON 2>/dev/null || true

{
    echo "# HTTP load while capturing ($(date -u +%F), $(nproc) cores, $(uname -r))"
    echo
    echo "trafgen sends $COUNT 50-byte IP packets from random sources (trafgen gap ${GAP:-none: flat out}) to r0, twice: once alone,"
    echo "once while wrk (2 threads, 100 connections, ${SECS} s each, loopback in the daemon's namespace) asks for"
    echo "/api/v1/hosts and then /metrics. Daemon: default config on r0; $STATUS."
    echo
    echo "| run | sent | gen kpps | arrived r0 | ours seen | ring drops |"
    echo "|---|---|---|---|---|---|"
    cat $WORK/rows
    echo
    echo "| endpoint | requests | requests/s | p50 | p90 | p99 | non-2xx | socket errors |"
    echo "|---|---|---|---|---|---|---|---|"
    cat $WORK/wrk
} | tee "$RESULT"
