#!/usr/bin/env bash
# Live capture benchmark: trafficalerted and `tcpdump -w /dev/null` capture
# the same interface at the same time, while trafgen floods it.
#
#   generator ns --veth--> router ns (daemon + tcpdump on r0) --veth--> sink ns
#
# For each case: packets sent (trafgen), packets that arrived at r0 (kernel
# counters), packets each capture saw, kernel drops each suffered, and CPU
# time each used per packet seen. Cases: 64-byte and 1514-byte frames as
# fast as one generator core goes, then a light load to compare how idle
# workers wait (io_uring against poll).
#
# Usage (root): bench/live.sh [COUNT_64] [COUNT_1500]
#   BIN=path/to/trafficalerted (default target/release/trafficalerted)
#   COUNT_SPOOFED=N   spoofed-source packets for the FastNetMon comparison
#   ONLY=fastnetmon   that comparison alone
#   ONLY=memory       the spoofed-source memory run alone
#   RATES=1           ours with FastNetMon's own threshold as a rate limit
#                     ([rates.in] packets = "20K": classes counted), for
#                     the cost of rate limits
#   IPFIX=1           ours exporting IPFIX every tick to a UDP sink in the
#                     router namespace, for the cost of [export.ipfix]
#   GEN_CPU=N         the generator's CPU (default: the last)
#   WORKERS=N         ours with that many workers in the FastNetMon
#                     comparison (default "auto"); 1 is pinned to CPU 0
#   FILL_SECS=N       the spoofed flood's first N seconds are reported apart
#                     (default 2: the ticks in which our tables fill)
#   FANOUT=cpu|lb     ours with that [capture] fanout (default "hash"); with
#                     "cpu" a frame goes to the worker pinned where the kernel
#                     received it, here the generator's CPU
#   INBOUND_LIMIT=V   ours: [inbound] byte_limit in the FastNetMon comparison
#                     (default "1M": the flood's layer-3 bytes pass it
#                     within 0.2 s at 0.1 Mpps, so that the alert's delay
#                     is ours, not the generator's; "10M", the limit of
#                     runs before 2026-12-07, takes 200 000 of its frames)
#   PERF=file         `perf record -g` of our daemon during the spoofed
#                     flood, into that file; PERF_OPTS: more of perf's
#                     options (e.g. "-D 3000": from the flood's 3rd second)
#   PIN_WORKERS=false ours with [capture] pin_workers = false (the scheduler
#                     places our workers, as it does FastNetMon's threads)
# Writes a Markdown table to stdout and to bench/results/live-<time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/trafficalerted}
INBOUND_LIMIT=${INBOUND_LIMIT:-1M}
COUNT_64=${1:-2000000}
COUNT_1500=${2:-500000}
SNAPLEN=192
P=tb$$
G=$P-g R=$P-r S=$P-s
OUT=bench/results
mkdir -p "$OUT"
RESULT=$OUT/live-$(date -u +%Y%m%dT%H%M%SZ).md
WORK=$(mktemp -d)
. bench/netns.sh

needs bench/live.sh trafgen tcpdump ethtool curl ip



# CPU time of every thread of a process, nanoseconds (schedstat, not the
# 10 ms resolution of /proc/PID/stat).
# (%.0f: mawk's %d stops at 2^31 - 1, 2.1 s, which a long-running peer passes)
cpu_ns() { cat /proc/$1/task/*/schedstat | awk '{s+=$1} END {printf "%.0f\n", s}'; }
# CPU time per thread name (threads of one name summed), "name ns" lines.
thread_ns() {
    for t in /proc/$1/task/*; do
        printf '%s %s\n' "$(tr ' ' _ < $t/comm)" "$(cut -d' ' -f1 $t/schedstat)"
    done | awk '{s[$1]+=$2} END {for (n in s) printf "%s %.0f\n", n, s[n]}' | sort
}

start_daemon() { # wait mode, workers
    cat > $WORK/ta.toml <<EOF
[capture]
interfaces = ["$P-r0"]
fanout = "${FANOUT:-hash}"
pin_workers = ${PIN_WORKERS:-true}
snaplen = $SNAPLEN
wait = "$1"
workers = $2
[traffic]
interval = "1h"
[alerts]
history_file = "$WORK/alerts.jsonl"
EOF
    ip netns exec $R "$BIN" -c $WORK/ta.toml > $WORK/ta.out 2> $WORK/ta.log &
    DAEMON=$!
    for _ in $(seq 100); do
        if api /healthz >/dev/null 2>&1 && [ -n "$(r0_counter frames 2>/dev/null)" ]; then return; fi
        sleep 0.1
    done
    echo "daemon did not start:" >&2; cat $WORK/ta.log >&2; exit 1
}

start_tcpdump() { # buffer KiB, CPU list for taskset (empty: unpinned)
    local pin=()
    [ -n "$2" ] && pin=(taskset -c "$2")
    ip netns exec $R "${pin[@]}" tcpdump -i $P-r0 -n -s $SNAPLEN -B "$1" -w /dev/null 2> $WORK/td.log &
    TCPDUMP=$!
    for _ in $(seq 100); do grep -q "listening on" $WORK/td.log && return; sleep 0.1; done
    echo "tcpdump did not start" >&2; cat $WORK/td.log >&2; exit 1
}

# run_case NAME FRAME_LEN COUNT WAIT WORKERS TCPDUMP_CPU GAP(trafgen -t, empty = flat out)
run_case() {
    local name=$1 len=$2 count=$3 wait=$4 workers=$5 tdcpu=$6 gap=$7
    start_daemon "$wait" "$workers"
    local ring_kib
    ring_kib=$(api /api/v1/status | python3 -c 'import json,sys; r=json.load(sys.stdin)["runtime"]; print(r["ring_block_size"]*r["ring_block_count"]*r["workers"]//1024)')
    start_tcpdump "$ring_kib" "$tdcpu"
    local frames0 drops0 rx0 ta_cpu0 td_cpu0
    frames0=$(r0_counter frames); drops0=$(r0_counter kernel_drops); rx0=$(rx_packets)
    ta_cpu0=$(cpu_ns $DAEMON); td_cpu0=$(cpu_ns $TCPDUMP)

    local fill=$((len - 14 - 28)) gapopt=()
    [ -n "$gap" ] && gapopt=(-t "$gap")
    local t0 t1
    t0=$(date +%s.%N)
    flood -n "$count" "${gapopt[@]}" \
        "{ eth(da=$(mac $R $P-r0)), ipv4(ttl=64, sa=10.1.0.2, da=10.2.0.2), udp(sp=dinc(1024, 65000), dp=9), fill(0x41, $fill) }"
    t1=$(date +%s.%N)
    sleep 2.5 # two ticks: every block retired and counted

    local frames1 drops1 rx1 ta_cpu1 td_cpu1
    frames1=$(r0_counter frames); drops1=$(r0_counter kernel_drops); rx1=$(rx_packets)
    ta_cpu1=$(cpu_ns $DAEMON); td_cpu1=$(cpu_ns $TCPDUMP)
    kill -INT $TCPDUMP; wait $TCPDUMP 2>/dev/null || true
    kill -TERM $DAEMON; wait $DAEMON 2>/dev/null || true
    local td_seen td_drops wakeups
    td_seen=$(awk '/packets captured/{print $1}' $WORK/td.log)
    td_drops=$(awk '/dropped by kernel/{print $1}' $WORK/td.log)
    wakeups=$(grep -o '[0-9]* wake-ups' $WORK/ta.log | awk '{s+=$1} END {print s+0}')

    local arrived=$((rx1 - rx0)) seen=$((frames1 - frames0)) drops=$((drops1 - drops0))
    python3 - "$name" "$count" "$arrived" "$seen" "$drops" "$((ta_cpu1 - ta_cpu0))" \
        "$td_seen" "$td_drops" "$((td_cpu1 - td_cpu0))" "$t0" "$t1" "$wakeups" "$wait" "$workers" "${tdcpu:-any}" >> $WORK/rows <<'PY'
import sys
(name, sent, arrived, seen, drops, ta_cpu, td_seen, td_drops, td_cpu, t0, t1, wakeups, wait, workers, tdcpu) = sys.argv[1:]
sent, arrived, seen, drops, td_seen, td_drops = map(int, (sent, arrived, seen, drops, td_seen, td_drops))
secs = float(t1) - float(t0)
ta_ns = int(ta_cpu) / max(seen, 1)
td_ns = int(td_cpu) / max(td_seen, 1)
print(f"| {name} | {workers} | {wait} | {tdcpu} | {sent:,} | {sent/secs/1e6:.3f} | {arrived:,} | {seen:,} | {drops:,} | {ta_ns:.1f} | "
      f"{td_seen:,} | {td_drops:,} | {td_ns:.1f} | {ta_ns/td_ns if td_ns else 0:.2f} | {wakeups} |")
PY
}

# The generator (and with it the kernel's receive and forwarding work, which
# veth runs on the sending CPU) gets the last CPU; tcpdump and a single
# worker share CPU 0. `workers = "auto"` pins one worker per core less the
# aggregator's, from CPU 0 on: one worker, on CPU 0, on a 2-core box; on more
# cores one of them shares the generator's CPU, as a worker would share a core
# with interrupt work on a real box. GEN_CPU=0 puts the generator beside CPU
# 0's worker here.
GEN_CPU=${GEN_CPU:-$(( $(nproc) - 1 ))}
# Seconds from the spoofed flood's start counted as its filling phase.
FILL_SECS=${FILL_SECS:-2}

# Sends with trafgen from the generator's namespace on GEN_CPU. trafgen pins
# each sender it forks to CPUs 0, 1, … itself, whatever taskset gave it, so
# the sender is moved to GEN_CPU once it has pinned itself (it does so first,
# before it compiles its packets). Without this the flood and its softirq
# work shared CPU 0 with our first worker (and any 1-worker capture) while
# the report said CPU 1. Fails if the sender could not be moved.
flood() {
    ip netns exec $G taskset -c $GEN_CPU trafgen -o $P-g0 -P 1 --no-sock-mem --notouch-irq "$@" \
        > $WORK/tg.log 2>&1 &
    local tg=$! sender="" cpus="" moved=""
    for _ in $(seq 3000); do
        sender=$(pgrep -P $tg -x trafgen || true)
        if [ -n "$sender" ]; then
            cpus=$(awk '/^Cpus_allowed_list/{print $2}' /proc/$sender/status 2>/dev/null || true)
            if [ -n "$cpus" ] && [ "$cpus" != "$GEN_CPU" ] || [ "$GEN_CPU" = 0 ]; then
                taskset -pc $GEN_CPU $sender > /dev/null && moved=yes
                break
            fi
        fi
        sleep 0.001
    done
    wait $tg || { cat $WORK/tg.log >&2; echo "trafgen failed" >&2; exit 1; }
    [ -n "$moved" ] || { echo "could not move trafgen's sender to CPU $GEN_CPU" >&2; exit 1; }
}

rss_kib() { awk '/^VmRSS/{print $2}' /proc/$1/status; }

# A flood of spoofed sources against the default table bounds: memory must
# stay flat and every byte must still be counted (tracked + untracked).
spoofed_sources() {
    start_daemon auto '"auto"'
    local rss fill
    rss="$(( $(rss_kib $DAEMON) / 1024 ))"
    for round in 1 2 3 4; do
        flood -n 1000000 \
            "{ eth(da=$(mac $R $P-r0)), ipv4(ttl=64, sa=drnd(), da=10.2.0.2), udp(sp=dinc(1024, 65000), dp=9), fill(0x41, 22) }"
        sleep 2.5
        rss="$rss → $(( $(rss_kib $DAEMON) / 1024 ))"
    done
    fill=$(api /api/v1/status | python3 -c "
import json,sys
s=json.load(sys.stdin); t=s['tables']; u=s['untracked']
print('%d/%d hosts, %d/%d pairs; bytes counted %s, of which from sources the host table had no room for %s'
      % (t['hosts'], t['max_hosts'], t['pairs'], t['max_pairs'], format(s['lifetime']['bytes'], ','), format(u['src_bytes'], ',')))")
    kill -TERM $DAEMON; wait $DAEMON 2>/dev/null || true
    echo "Spoofed sources (4 × 1,000,000 random source addresses, 50-byte IP packets = 200,000,000 bytes," \
         "default bounds): RSS in MiB at start and after each million: $rss;" \
         "$fill." > $WORK/spoofed
}

# The spoofed-source flood side by side with FastNetMon (Debian's package),
# the peer an operator would pick instead: both capture r0 at the same time,
# FastNetMon with AF_PACKET mirroring, connection tracking off and a ban
# threshold the victim crosses. CPU per packet of all threads of each, the
# packets each counted (ours: frames; FastNetMon: packets processed) against
# the packets that arrived, and when each raised the victim's alert.
fnm_processed() {
    ip netns exec $R curl -sf http://127.0.0.1:9209/metrics \
        | awk '/^fastnetmon_total_simple_packets_processed /{print $2}'
}

fastnetmon_spoofed() {
    local count=$1
    command -v fastnetmon >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q fastnetmon >&2
    mkdir -p /var/log/fastnetmon_attacks
    echo 10.2.0.0/24 > $WORK/fnm_networks
    : > $WORK/fnm_whitelist
    printf '#!/bin/sh\necho "$(date +%%s.%%N) $*" >> %s/fnm_attacks\n' "$WORK" > $WORK/fnm_notify.sh
    chmod +x $WORK/fnm_notify.sh
    cat > $WORK/fnm.conf <<EOF
logging_level = info
enable_ban = on
process_incoming_traffic = on
process_outgoing_traffic = on
ban_time = 60
networks_list_path = $WORK/fnm_networks
white_list_path = $WORK/fnm_whitelist
check_period = 1
enable_connection_tracking = off
ban_for_pps = on
ban_for_bandwidth = on
ban_for_flows = off
threshold_pps = 20000
threshold_mbps = 1000
mirror_afpacket = on
interfaces = $P-r0
average_calculation_time = 5
notify_script_path = $WORK/fnm_notify.sh
collect_attack_pcap_dumps = off
redis_enabled = off
mongodb_enabled = off
exabgp = off
gobgp = off
influxdb = off
graphite = off
monitor_local_ip_addresses = off
prometheus = on
prometheus_host = 127.0.0.1
prometheus_port = 9209
fastnetmon_api = off
EOF
    cat > $WORK/ta.toml <<EOF
[capture]
interfaces = ["$P-r0"]
fanout = "${FANOUT:-hash}"
pin_workers = ${PIN_WORKERS:-true}
workers = ${WORKERS:-\"auto\"}
[inbound]
byte_limit = "$INBOUND_LIMIT"
[alerts]
history_file = "$WORK/alerts.jsonl"
EOF
    if [ -n "${RATES:-}" ]; then
        printf '[rates.in]\npackets = "20K"\n' >> $WORK/ta.toml
    fi
    local SINK=""
    if [ -n "${IPFIX:-}" ]; then
        printf '[export.ipfix]\ncollectors = ["127.0.0.1:4739"]\n' >> $WORK/ta.toml
        ip netns exec $R python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 4739))
while True:
    s.recv(65535)' &
        SINK=$!
    fi
    ip netns exec $R "$BIN" -c $WORK/ta.toml > $WORK/ta.out 2> $WORK/ta.log &
    DAEMON=$!
    ip netns exec $R fastnetmon --configuration_file $WORK/fnm.conf --log_file $WORK/fnm.log \
        --disable_pid_logic > $WORK/fnm.out 2>&1 &
    FNM=$!
    for _ in $(seq 100); do
        if api /healthz >/dev/null 2>&1 && [ -n "$(r0_counter frames 2>/dev/null)" ] \
            && [ -n "$(fnm_processed 2>/dev/null)" ]; then break; fi
        sleep 0.1
    done
    [ -n "$(fnm_processed)" ] || { echo "FastNetMon did not start:" >&2; cat $WORK/fnm.out $WORK/fnm.log >&2; exit 1; }
    [ -n "$(r0_counter frames)" ] || { echo "daemon did not start:" >&2; cat $WORK/ta.log >&2; exit 1; }
    # The flood's first frame at r0, the alerts' zero: trafgen takes a
    # while to start after it is launched, and that is no one's alert delay.
    ip netns exec $R tcpdump -tt -n -c 1 --immediate-mode -i $P-r0 "udp and dst host 10.2.0.2" \
        > $WORK/first 2> $WORK/first.err &
    local firstcap=$!
    for _ in $(seq 200); do grep -q 'listening on' $WORK/first.err && break; sleep 0.05; done
    grep -q 'listening on' $WORK/first.err \
        || { echo "tcpdump did not start on $P-r0:" >&2; cat $WORK/first.err >&2; exit 1; }
    sleep 2 # both past their start-up work
    local frames0 drops0 rx0 fnm0 ta_cpu0 fnm_cpu0 t0 t1
    frames0=$(r0_counter frames); drops0=$(r0_counter kernel_drops); rx0=$(rx_packets); fnm0=$(fnm_processed)
    ta_cpu0=$(cpu_ns $DAEMON); fnm_cpu0=$(cpu_ns $FNM)
    thread_ns $DAEMON > $WORK/threads0
    # The flood's first FILL_SECS (the ticks in which our tables fill) apart
    # from the rest: CPU of each process and packets at r0 then.
    rm -f $WORK/mid
    (sleep "$FILL_SECS"; echo "$(cpu_ns $DAEMON) $(cpu_ns $FNM) $(rx_packets)" > $WORK/mid
     thread_ns $DAEMON > $WORK/threads_mid) &
    local midreader=$!
    local perf=""
    if [ -n "${PERF:-}" ]; then
        perf record -q -g ${PERF_OPTS:-} -o "$PERF" -p $DAEMON 2> $WORK/perf.err &
        perf=$!
    fi
    t0=$(date +%s.%N)
    flood -n "$count" \
        "{ eth(da=$(mac $R $P-r0)), ipv4(ttl=64, sa=drnd(), da=10.2.0.2), udp(sp=dinc(1024, 65000), dp=9), fill(0x41, 22) }"
    t1=$(date +%s.%N)
    if [ -n "$perf" ]; then
        kill -INT $perf; wait $perf || true # perf ends on SIGINT with its status
        [ -s "$PERF" ] || { echo "perf recorded nothing:" >&2; cat $WORK/perf.err >&2; exit 1; }
    fi
    wait $midreader
    # Bounded: a flood none of whose frames reached r0 is an error, not a hang.
    for _ in $(seq 100); do [ -s $WORK/first ] && break; sleep 0.05; done
    [ -s $WORK/first ] || { kill $firstcap 2>/dev/null; echo "tcpdump saw no frame of the flood on $P-r0" >&2; exit 1; }
    wait $firstcap || { echo "tcpdump on $P-r0 failed:" >&2; cat $WORK/first.err >&2; exit 1; }
    local tfirst
    tfirst=$(awk 'NR == 1 {print $1}' $WORK/first)
    local ta_mid fnm_mid rx_mid
    read -r ta_mid fnm_mid rx_mid < $WORK/mid
    sleep 2.5 # two ticks: every block retired and counted
    local frames1 drops1 rx1 fnm1 ta_cpu1 fnm_cpu1 screened
    frames1=$(r0_counter frames); drops1=$(r0_counter kernel_drops); rx1=$(rx_packets); fnm1=$(fnm_processed)
    ta_cpu1=$(cpu_ns $DAEMON); fnm_cpu1=$(cpu_ns $FNM)
    thread_ns $DAEMON > $WORK/threads1
    screened=$(api /api/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["untracked"].get("screened_packets", 0))')
    kill -TERM $DAEMON $FNM $SINK; wait $DAEMON $FNM $SINK 2>/dev/null || true
    python3 - "$count" "$t0" "$t1" "$((rx1 - rx0))" "$((frames1 - frames0))" "$((drops1 - drops0))" \
        "$((ta_cpu1 - ta_cpu0))" "$((fnm1 - fnm0))" "$((fnm_cpu1 - fnm_cpu0))" "$screened" \
        "$WORK/alerts.jsonl" "$WORK/fnm_attacks" \
        "$((ta_mid - ta_cpu0))" "$((fnm_mid - fnm_cpu0))" "$((rx_mid - rx0))" "$FILL_SECS" "$tfirst" > $WORK/fnm_row <<'PY'
import json, os, sys
(count, t0, t1, arrived, seen, drops, ta_cpu, fnm_seen, fnm_cpu, screened, history, attacks,
 ta_first, fnm_first, arrived_first, fill_secs, t_frame) = sys.argv[1:]
count, arrived, seen, drops, ta_cpu, fnm_seen, fnm_cpu, screened = map(
    int, (count, arrived, seen, drops, ta_cpu, fnm_seen, fnm_cpu, screened))
ta_first, fnm_first, arrived_first = map(int, (ta_first, fnm_first, arrived_first))
t0, t1, t_frame = float(t0), float(t1), float(t_frame)
ta_alert = fnm_alert = ta_launch = fnm_launch = "none"
if os.path.exists(history):
    for line in open(history):
        e = json.loads(line)
        a = e["alert"]
        if e["event"] == "open" and a["kind"] in ("inbound", "rate_in") and a["subject"] == "10.2.0.2":
            ta_alert = "%.2f s" % (a["start_ms"] / 1000 - t_frame)
            ta_launch = "%.2f s" % (a["start_ms"] / 1000 - t0)
            break
if os.path.exists(attacks):
    for line in open(attacks):
        f = line.split()
        if len(f) >= 4 and f[1] == "10.2.0.2" and f[-1] == "ban":
            fnm_alert = "%.2f s" % (float(f[0]) - t_frame)
            fnm_launch = "%.2f s" % (float(f[0]) - t0)
            break
ta_ns = ta_cpu / max(seen, 1)
fnm_ns = fnm_cpu / max(fnm_seen, 1)
print(f"| spoofed sources, 64 B | {count:,} | {count / (t1 - t0) / 1e6:.3f} | {arrived:,} | {seen:,} | {drops:,} | "
      f"{ta_ns:.1f} | {ta_alert} | {fnm_seen:,} | {max(arrived - fnm_seen, 0):,} | {fnm_ns:.1f} | {fnm_alert} | "
      f"{ta_ns / fnm_ns if fnm_ns else 0:.2f} |")
print()
print(f"The flood's first frame reached r0 {t_frame - t0:.2f} s after trafgen was launched; the alerts are timed "
      f"from that frame (from the launch: ours {ta_launch}, FastNetMon {fnm_launch}).")
print()
print(f"Of the packets we counted, {screened:,} came from sources our workers left to the untracked totals "
      "as they arrived, the host table having no room left for them.")
# The rest includes the blocks counted after the flood ended: both
# processes' CPU until the last reading, over the packets that arrived after
# the first seconds.
rest = arrived - arrived_first
if arrived_first > 0 and rest > 0:
    f_ours, f_fnm = ta_first / arrived_first, fnm_first / arrived_first
    r_ours, r_fnm = (ta_cpu - ta_first) / rest, (fnm_cpu - fnm_first) / rest
    print()
    print(f"By phase, CPU per packet that arrived at r0: the flood's first {fill_secs} s ({arrived_first:,} packets, "
          f"our tables filling) ours {f_ours:.1f} ns, FastNetMon {f_fnm:.1f} ns (ratio {f_ours / f_fnm:.2f}); "
          f"the rest ({rest:,} packets) ours {r_ours:.1f} ns, FastNetMon {r_fnm:.1f} ns (ratio {r_ours / r_fnm:.2f}).")
PY
    # Our CPU per thread for the flood (ms), the busiest first.
    join -a 2 -e 0 -o 2.1,1.2,2.2 $WORK/threads0 $WORK/threads1 \
        | awk '{d=($3-$2)/1e6; if (d >= 1) printf "%s %.0f\n", $1, d}' | sort -k2 -n -r \
        | awk 'BEGIN {printf "Ours per thread (ms):"} {printf " %s %s;", $1, $2} END {print ""}' >> $WORK/fnm_row
    # The same by phase: the flood's first FILL_SECS, then the rest.
    join -a 2 -e 0 -o 2.1,1.2,2.2 $WORK/threads0 $WORK/threads_mid > $WORK/threads_fill
    join -a 2 -e 0 -o 2.1,1.2,2.2 $WORK/threads_mid $WORK/threads1 > $WORK/threads_rest
    # (a thread started after the first FILL_SECS counts 0 in them)
    join -a 2 -e 0 -o 0,1.2,1.3,2.2,2.3 $WORK/threads_fill $WORK/threads_rest \
        | awk '{f=($3-$2)/1e6; r=($5-$4)/1e6; if (f + r >= 1) printf "%s %.0f %.0f\n", $1, f, r}' \
        | sort -k1,1 \
        | awk -v s="$FILL_SECS" 'BEGIN {printf "Ours per thread (ms), first %s s + the rest:", s} {printf " %s %s + %s;", $1, $2, $3} END {print ""}' >> $WORK/fnm_row
}

setup
: > $WORK/rows
: > $WORK/spoofed
if [ -z "${ONLY:-}" ]; then
    run_case "64 B flood" 64 "$COUNT_64" auto 1 0 ""
    run_case "1514 B flood" 1514 "$COUNT_1500" auto 1 0 ""
    run_case "64 B flood" 64 "$COUNT_64" auto '"auto"' "" ""
    run_case "1514 B flood" 1514 "$COUNT_1500" auto '"auto"' "" ""
    run_case "light load 20 kpps" 64 100000 io_uring 1 0 50us
    run_case "light load 20 kpps" 64 100000 poll 1 0 50us
fi
case "${ONLY:-}" in
    "") spoofed_sources; fastnetmon_spoofed "${COUNT_SPOOFED:-1000000}" ;;
    memory) spoofed_sources ;;
    fastnetmon) fastnetmon_spoofed "${COUNT_SPOOFED:-1000000}" ;;
    *) echo "bench/live.sh: ONLY must be fastnetmon or memory, not '$ONLY'" >&2; exit 2 ;;
esac

{
    echo "# Live capture: trafficalerted vs tcpdump -w /dev/null ($(date -u +%F), $(nproc) cores, $(uname -r))"
    echo
    echo "Both capture r0 at once with snap length $SNAPLEN; tcpdump gets a buffer (-B) as large as all of"
    echo "trafficalerted's rings on r0. CPU is the on-CPU time (schedstat) of all threads of each process per"
    echo "packet it saw. trafgen's sender runs on CPU $GEN_CPU, and the kernel receives its frames there. With"
    echo "workers = 1 our worker is pinned to CPU 0 and so is tcpdump (same CPU, same distance from the CPU that"
    echo "wrote the frames); workers = \"auto\" pins one worker per core less the aggregator's, from CPU 0 on"
    echo "($(nproc) CPUs here), and tcpdump (like FastNetMon below) runs where the scheduler puts it, as a user would run it."
    echo "Our fanout: ${FANOUT:-hash}; workers pinned: ${PIN_WORKERS:-true}."
    echo
    if [ -s $WORK/rows ]; then
        echo "| case | workers | wait | tcpdump CPU | sent | gen Mpps | arrived r0 | ours seen | ours drops | ours ns/pkt | tcpdump seen | tcpdump drops | tcpdump ns/pkt | CPU ratio ours/tcpdump | wake-ups |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        cat $WORK/rows
        echo
    fi
    if [ -s $WORK/spoofed ]; then
        cat $WORK/spoofed
        echo
    fi
    [ -s $WORK/fnm_row ] || exit 0
    echo "Side by side with FastNetMon $(dpkg-query -W -f '${Version}' fastnetmon) (mirror_afpacket, connection tracking"
    echo "off, ban at 20 000 pps; ours on the defaults with [inbound] byte_limit = \"$INBOUND_LIMIT\"${RATES:+ and [rates.in] packets = \"20K\"}${IPFIX:+ and IPFIX export}), both capturing r0 at"
    echo "once while trafgen sends from random sources to 10.2.0.2. FastNetMon's drops: packets that arrived and"
    echo "it did not process. Alert: from the flood's first frame at r0 (tcpdump's timestamp) to the victim's"
    echo "alert (ours: the alert's start time; FastNetMon: its ban script's call)."
    echo
    echo "| case | sent | gen Mpps | arrived r0 | ours seen | ours drops | ours ns/pkt | ours alert | FastNetMon seen | FastNetMon drops | FastNetMon ns/pkt | FastNetMon alert | CPU ratio ours/FastNetMon |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    cat $WORK/fnm_row
} | tee "$RESULT"
