#!/usr/bin/env bash
# The API under abuse while capturing: 256 holding clients (a request every
# 8 s each on kept-alive connections), 200 clients asking for the largest
# hosts page (limit=10000&detail) as fast as they can, and 250 that ask for
# it and never read the answer — each phase for SECONDS, all from
# 127.0.0.2, while a probe from 127.0.0.1 asks /healthz every 100 ms (a
# fresh connection each, as a load balancer does). A trafgen flood fills
# the host table first, and a light one runs throughout, so the ring
# drops during the abuse are measured too. Bounded: loopback and the
# bench's own namespaces only.
#
# Usage (root): bench/http_abuse.sh [SECONDS]   (default 20)
#   BIN=path/to/trafficalerted (default target/release/trafficalerted)
# Writes Markdown to stdout and bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/trafficalerted}
SECS=${1:-20}
P=ha$$
G=$P-g R=$P-r S=$P-s
OUT=bench/results
mkdir -p "$OUT"
RESULT=$OUT/http-abuse-$(date -u +%Y%m%dT%H%M%SZ).md
WORK=$(mktemp -d)
. bench/netns.sh

needs bench/http_abuse.sh trafgen ethtool curl ip python3

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
# Fill the host table, then a light flood (10 kpps) for the rest.
ip netns exec $G trafgen -o $P-g0 -P 1 --no-sock-mem --notouch-irq -n 300000 "$PACKET" > $WORK/tg0.log 2>&1
LIGHT=$(( (SECS + 8) * 3 * 10000 ))
ip netns exec $G trafgen -o $P-g0 -P 1 --no-sock-mem --notouch-irq -n $LIGHT -t 100us "$PACKET" > $WORK/tg1.log 2>&1 &
TG=$!
sleep 2
IDLE=$(awk '/VmRSS/ {print $2}' /proc/$DAEMON/status)
LISTED=$(api /api/v1/status | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['hosts_listed'])")
PAGE=$(api "/api/v1/hosts?limit=10000&detail" | wc -c)
: > $WORK/rows
for phase in holding heavy unread; do
    d0=$(r0_counter kernel_drops)
    line=$(ip netns exec $R python3 bench/http_abuse.py $phase "$SECS" $DAEMON)
    sleep 3
    d1=$(r0_counter kernel_drops)
    python3 - "$line" "$IDLE" $((d1 - d0)) >> $WORK/rows <<'PY'
import json, sys
r = json.loads(sys.argv[1]); idle = int(sys.argv[2]); drops = sys.argv[3]
f = lambda v: "-" if v is None else f"{v:.1f}"
print(f"| {r['phase']} | {r['probes']} | {r['failed']} | {f(r['p50_ms'])} | {f(r['p99_ms'])} | {f(r['max_ms'])} | "
      f"{(r['peak_rss_kib'] - idle) / 1024:.0f} | {r['heavy_pages']} | {drops} |")
PY
done
kill $TG 2>/dev/null || true
AFTER=$(awk '/VmRSS/ {print $2}' /proc/$DAEMON/status)
kill -TERM $DAEMON; wait $DAEMON 2>/dev/null || true

{
    echo "# HTTP abuse while capturing ($(date -u +%F), $(nproc) cores, $(uname -r), $BIN)"
    echo
    echo "$LISTED hosts listed; the largest page (/api/v1/hosts?limit=10000&detail) is $PAGE bytes."
    echo "Idle RSS $((IDLE / 1024)) MiB; after the phases $((AFTER / 1024)) MiB. Each phase $SECS s; the probe asks /healthz every 100 ms"
    echo "from 127.0.0.1 on a fresh connection, $([ "${PROBE_INLINE:-}" = 1 ] && echo "in the abusers' event loop" || echo "from a process of its own"); the abusers connect from 127.0.0.2. Drops: ring drops on r0 during the phase"
    echo "(a 10 kpps flood runs throughout)."
    echo
    echo "| phase | probes | failed | p50 ms | p99 ms | max ms | peak RSS above idle, MiB | heavy pages served | ring drops |"
    echo "|---|---|---|---|---|---|---|---|---|"
    cat $WORK/rows
} | tee "$RESULT"
