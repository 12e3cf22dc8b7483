#!/usr/bin/env bash
# Replay speed against the tools a user has: on the same generated file,
# from the page cache, each on CPU 0:
#   ours     trafficalerted replay --speed max FILE   (parse, count, detect)
#   tcpdump  tcpdump -r FILE -w /dev/null             (a pure read and write)
#   tshark   tshark -r FILE -q -z endpoints,ip        (what a user reaches for)
# Files (bench/gen_pcap.rs, fixed seed): 10 000 000 Ethernet frames of IMIX
# sizes over 10 s of capture time (1 Mpps, ~2.7 Gbit/s), 10 000 hosts in
# conversations with bursts of 8 packets on average; and the same with the
# sources drawn from 1 000 000 random addresses (a spoofed flood). And two
# long, sparse captures (bench/gen_sparse.rs): 2 000 000 datagrams over
# 2 000 s, where per-tick work, not per-packet work, would show.
#
# Usage: bench/replay.sh [PACKETS]   (default 10000000; needs ~8 GB in target/)
#        SPARSE=N for the sparse captures' packets (default 2000000)
# Writes Markdown to stdout and bench/results/replay-<time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-10000000}
OUT=bench/results
DATA=target/bench-data
mkdir -p "$OUT" "$DATA"
RESULT=$OUT/replay-$(date -u +%Y%m%dT%H%M%SZ).md
for t in tcpdump tshark taskset; do
    command -v $t >/dev/null || { echo "bench/replay.sh needs $t" >&2; exit 1; }
done
cargo build --release --quiet
cargo build --release --quiet --example gen_pcap
BIN=target/release/trafficalerted

mix=$DATA/mix-$N.pcap
flood=$DATA/flood-$N.pcap
[ -f "$mix" ] || target/release/examples/gen_pcap "$mix" "$N" 10000 10
[ -f "$flood" ] || target/release/examples/gen_pcap "$flood" "$N" 10000 10 1000000
# Long and sparse (bench/gen_sparse.rs): 2 000 000 datagrams at 1 000 per
# second (2 000 s of capture time) from 10 000 sources, each sending to 16
# destinations of its own (nearly every source an address scanner: ~10 000
# alerts) or to one (no alert).
NS=${SPARSE:-2000000}
cargo build --release --quiet --example gen_sparse
sparse16=$DATA/sparse16-$NS.pcap
sparse1=$DATA/sparse1-$NS.pcap
[ -f "$sparse16" ] || target/release/examples/gen_sparse "$sparse16" "$NS" 10000 16
[ -f "$sparse1" ] || target/release/examples/gen_sparse "$sparse1" "$NS" 10000 1

# Seconds (wall) of the best of REPEAT runs of a command on CPUS.
best() {
    local repeat=$1 cpus=$2; shift 2
    local b=""
    for _ in $(seq "$repeat"); do
        local t0 t1
        t0=$(date +%s.%N)
        taskset -c "$cpus" "$@" > /dev/null 2>&1
        t1=$(date +%s.%N)
        b=$(python3 -c "a='$b'; d=$t1-$t0; print(d if not a else min(float(a), d))")
    done
    echo "$b"
}

# Ours again on two processors: the replay then reads and counts on one
# thread and merges and detects on another (src/replay/handoff.rs).
# tcpdump and tshark do their work on one thread either way.
TWO=0,1
[ "$(nproc)" -ge 2 ] || { echo "bench/replay.sh needs two processors" >&2; exit 1; }
rows=""
for spec in "$mix:$N" "$flood:$N" "$sparse16:$NS" "$sparse1:$NS"; do
    f=${spec%:*}
    n=${spec##*:}
    cat "$f" > /dev/null  # into the page cache
    size=$(stat -c %s "$f")
    ours=$(best 3 0 "$BIN" replay --speed max --no-progress --top 5 "$f")
    ours2=$(best 3 "$TWO" "$BIN" replay --speed max --no-progress --top 5 "$f")
    td=$(best 3 0 tcpdump -r "$f" -w /dev/null)
    ts=$(best 1 0 tshark -r "$f" -q -z endpoints,ip)
    rows+=$(python3 - "$f" "$n" "$size" "$ours" "$ours2" "$td" "$ts" <<'PY'
import sys
f, n, size, ours, ours2, td, ts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:])
mpps = lambda s: n / s / 1e6
print(f"| {f.split('/')[-1]} | {size/1e9:.2f} GB | {ours:.2f} s = {mpps(ours):.2f} Mpps | {ours2:.2f} s = {mpps(ours2):.2f} Mpps | "
      f"{td:.2f} s = {mpps(td):.2f} Mpps | {ts:.1f} s = {mpps(ts):.3f} Mpps | {ours/td:.2f}× | {ours2/td:.2f}× | {ts/ours:.0f}× |")
PY
)
    rows+=$'\n'
done

{
    echo "# Replay speed ($(date -u +%F), $(nproc) cores, $(uname -r))"
    echo
    echo "From the page cache, each tool on CPU 0, and ours also on CPUs $TWO (its two halves on a thread each);"
    echo "ours and tcpdump best of 3, tshark once. mix and flood:"
    echo "$N packets each (bench/gen_pcap.rs); sparse16 and sparse1: $NS packets over $((NS / 1000)) s of capture"
    echo "time (bench/gen_sparse.rs)."
    echo
    echo "| file | size | ours: replay --speed max, 1 CPU | ours, 2 CPUs | tcpdump -r -w /dev/null | tshark -z endpoints,ip | ours / tcpdump (time), 1 CPU | 2 CPUs | tshark / ours (time, 1 CPU) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf "%s" "$rows"
} | tee "$RESULT"
