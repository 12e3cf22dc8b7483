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
set -euo pipefail
cd "$(dirname "$0")/.."

N=200000
SOURCES=${SOURCES:-0}
command -v valgrind >/dev/null || env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind
BIN=${BIN:-target/release/trafficalerted}
[ "$BIN" != target/release/trafficalerted ] || cargo build --release --quiet
cargo build --release --quiet --example gen_pcap
mkdir -p target/bench-data
f=target/bench-data/callgrind-$N-$SOURCES.pcap
[ -f "$f" ] || target/release/examples/gen_pcap "$f" $N 10000 10 "$SOURCES"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cfg=()
[ -z "${CONFIG:-}" ] || cfg=(-c "$CONFIG")
valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$BIN" replay "${cfg[@]}" --no-progress --top 1 "$f" > /dev/null 2>&1
ann=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null)
total=$(echo "$ann" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
# Inclusive cost of a function, or of a file's code inlined into one.
fn_ir() { echo "$ann" | grep -F -- "$1" | head -1 | awk '{gsub(",", "", $1); print $1}' || true; }
# Parse and count are inlined into the play loop (count_frame, Shard::record
# have no frame of their own in a release build): the per-packet work is
# the loop's cost less the per-tick work it calls and the reader's lines.
play=$(fn_ir "src/replay/input.rs:trafficalerted::replay::input::play")
# Reading is inlined into the loop in some builds, a function of its own
# (Reader::next_packet, inclusive) in others.
read_inlined=$(fn_ir "src/replay/reader.rs:trafficalerted::replay::input::play")
read_fn=$(fn_ir "/src/replay/reader.rs:trafficalerted::replay::reader::Reader<R>::next_packet")
read=$(( ${read_inlined:-0} + ${read_fn:-0} ))
tick=$(fn_ir "src/replay/player.rs:trafficalerted::replay::player::Player::close_tick [")
[ -n "$total" ] && [ -n "$play" ] && [ -n "$tick" ] || { echo "$ann" | head -60; echo "bench/callgrind.sh: no figures" >&2; exit 1; }
python3 - "$N" "$total" "$play" "$read" "$tick" <<'PY'
import sys
n, total, play, read, tick = int(sys.argv[1]), *(int(x or 0) for x in sys.argv[2:])
print(f"callgrind, {n} packets: {total/n:.0f} instructions per packet for the whole replay "
      f"(start and summary included), {(play - tick - read)/n:.0f} per packet in the play loop "
      f"(parse, count, the replay's own totals), {read/n:.0f} reading the file, "
      f"{tick/n:.0f} in the per-tick seal, merge and detection")
PY
