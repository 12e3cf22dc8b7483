#!/usr/bin/env bash
# Instructions per packet, counted by valgrind's callgrind: repeatable on
# a shared machine where seconds are not. A fixed file (bench/gen_pcap.rs,
# fixed seed: 200 000 IMIX frames, 10 000 hosts, 10 s) is replayed once;
# the report gives instructions per packet for the whole replay, for the
# per-packet loop (parse and count), for reading the file and for the
# per-tick work.
#
# Usage: bench/callgrind.sh        (installs valgrind if missing)
#   SOURCES=N   every packet's source drawn from N random addresses (a
#               spoofed flood filling the tables), in a file of its own
#   CONFIG=F    replay with this config (e.g. rate limits), else defaults
#   BIN=path    the binary measured (default target/release/trafficalerted)
#   CACHE=1     also simulate the caches: first-level data misses per
#               packet (what a flood of new hosts costs beyond instructions)
#   SPARSE=D    the long sparse capture of bench/replay.sh instead
#               (bench/gen_sparse.rs: 2 000 000 datagrams over 2 000 s from
#               10 000 sources, D destinations each; D=16 raises ~10 000
#               address-scan alerts, D=1 none); SOURCES is ignored then.
#               With alerts, the alert log's thread counts a little
#               differently run to run (under valgrind its queue fills and
#               it drops some lines): its share is printed apart.
set -euo pipefail
cd "$(dirname "$0")/.."

N=200000
SOURCES=${SOURCES:-0}
command -v valgrind >/dev/null || env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind
BIN=${BIN:-target/release/trafficalerted}
[ "$BIN" != target/release/trafficalerted ] || cargo build --release --quiet
mkdir -p target/bench-data
if [ -n "${SPARSE:-}" ]; then
    N=2000000
    cargo build --release --quiet --example gen_sparse
    f=target/bench-data/sparse$SPARSE-$N.pcap
    [ -f "$f" ] || target/release/examples/gen_sparse "$f" $N 10000 "$SPARSE"
else
    cargo build --release --quiet --example gen_pcap
    f=target/bench-data/callgrind-$N-$SOURCES.pcap
    [ -f "$f" ] || target/release/examples/gen_pcap "$f" $N 10000 10 "$SOURCES"
fi
out=$(mktemp)
trap 'rm -f "$out" "$out.txt"' EXIT
cfg=()
[ -z "${CONFIG:-}" ] || cfg=(-c "$CONFIG")
sim=()
[ -z "${CACHE:-}" ] || sim=(--cache-sim=yes)
# On one processor the replay's two halves run on one thread, the play
# loop calling the per-tick work, as the figures below assume.
taskset -c 0 valgrind --tool=callgrind "${sim[@]}" --callgrind-out-file="$out" \
    "$BIN" replay "${cfg[@]}" --no-progress --top 1 "$f" > /dev/null 2>&1
callgrind_annotate --inclusive=yes --threshold=100 "$out" > "$out.txt" 2>/dev/null
# Parse and count are inlined into the play loop (count_frame, Shard::record
# have no frame of their own in a release build): the per-packet work is
# the loop's cost less the per-tick work it calls and the reader's lines.
# Reading is inlined into the loop in some builds, a function of its own
# (Reader::next_packet, inclusive) in others.
python3 - "$N" "$out.txt" <<'PY'
import re, sys
n, lines = int(sys.argv[1]), open(sys.argv[2]).read().splitlines()
events = next(l.split(":", 1)[1].split() for l in lines if l.startswith("Events shown:"))

def values(l):
    """A line's figures by event (a "." is none: 0)."""
    cells = re.findall(r"([\d,]+) \(\s*[\d.]+%\)|(?<=\s)\.(?=\s)", " " + l)
    return {e: int(c.replace(",", "") or 0) for e, c in zip(events, cells)}

def cost(key):
    """Inclusive cost of a function (or of a file's code inlined into one),
    by event; zeros if it has no line."""
    for l in lines:
        if key in l:
            return {e: values(l).get(e, 0) for e in events}
    return dict.fromkeys(events, 0)

total = cost("PROGRAM TOTALS")
play = cost("src/replay/input.rs:trafficalerted::replay::input::play")
# The aggregating half's merge and detection, every tick's (the last one's
# too: it is closed after the loop). Sealing and emptying a shard belong to
# the reading half, and count in the loop.
tick = cost("src/replay/player.rs:trafficalerted::replay::player::Player::close [")
if not tick["Ir"]:  # before the replay had two halves
    tick = cost("src/replay/player.rs:trafficalerted::replay::player::Player::close_tick [")
r1 = cost("src/replay/reader.rs:trafficalerted::replay::input::play")
r2 = cost("/src/replay/reader.rs:trafficalerted::replay::reader::Reader<R>::next_packet")
if not play["Ir"] or not tick["Ir"]:
    sys.exit("bench/callgrind.sh: no figures")
loop = {e: play[e] - tick[e] - r1[e] - r2[e] for e in events}
read = r1["Ir"] + r2["Ir"]
print(f"callgrind, {n} packets: {total['Ir']/n:.0f} instructions per packet for the whole replay "
      f"(start and summary included), {loop['Ir']/n:.0f} per packet in the play loop "
      f"(parse, count, the replay's own totals), {read/n:.0f} reading the file, "
      f"{tick['Ir']/n:.0f} in the per-tick merge and detection")
sink = cost("src/sinks/logline.rs:trafficalerted::sinks::logline::run [")
if sink["Ir"] >= n:
    print(f"of the whole, {sink['Ir']/n:.0f} per packet on the alert log's thread; "
          f"{(total['Ir'] - sink['Ir'])/n:.0f} without it")
if "D1mr" in events:
    d1 = lambda c: (c["D1mr"] + c["D1mw"]) / n
    print(f"simulated first-level data cache misses per packet: {d1(loop):.2f} in the play loop "
          f"(parse, count), {d1(tick):.2f} in the per-tick work, {d1(total):.2f} in all")
PY
