#!/usr/bin/env bash
# Runs every test of trafficalerted on a Debian machine: unit and
# integration tests, the end-to-end tests in network namespaces (as root),
# the benchmarks once each as tests, and a bounded run of every fuzz target.
#
# It installs what the tests use (Debian packages, cargo-fuzz) when missing,
# and fails loudly when a suite cannot run. Run as root or as a user with
# sudo: builds run as the caller, test binaries as root.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage's heading says when it began, so that the slow ones show.
stage() { echo "== $* [$((SECONDS / 60))m$((SECONDS % 60))s]"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "run-all.sh: run as root, or install sudo" >&2; exit 1; }
    SUDO="sudo"
    # Test binaries make network namespaces: run them as root.
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="sudo -E"
fi

# Tools the end-to-end tests drive, from Debian.
need=()
for pair in iperf3:iperf3 nmap:nmap trafgen:netsniff-ng tcpdump:tcpdump ethtool:ethtool \
            ip:iproute2 ss:iproute2 ping:iputils-ping setpriv:util-linux curl:curl \
            taskset:util-linux python3:python3 prometheus:prometheus promtool:prometheus \
            chromium:chromium chromedriver:chromium-driver tshark:tshark dnsmasq:dnsmasq-base \
            dig:bind9-dnsutils gzip:gzip bird:bird2 birdc:bird2 exabgp:exabgp vtysh:frr \
            prometheus-alertmanager:prometheus-alertmanager nfcapd:nfdump nfdump:nfdump \
            nfacctd:pmacct pmacctd:pmacct softflowd:softflowd softflowctl:softflowd openssl:openssl \
            mount:mount chattr:e2fsprogs; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
# Text in the dashboard's screenshot needs a font.
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing: ${need[*]}"
    # tshark asks whether non-root users may capture; the tests need no answer.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

stage "cargo test (unit, integration, end-to-end in namespaces, benches once)"
# Tests named kernel_modules_* need tunnel modules (GRE, ERSPAN, GENEVE)
# that the build machine's kernel may lack: they run on Debian's kernel
# below, with the other capture tests.
cargo test --workspace --lib --bins --tests --locked -- --skip kernel_modules_
cargo test --workspace --benches --examples --locked

stage "capture end-to-end tests on Debian 12's kernel (qemu, tests/kernels/)"
e2e=$(cargo test --test e2e --no-run --locked --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "e2e":
        print(m["executable"])')
[ -x "$e2e" ] || { echo "cannot find the e2e test binary" >&2; exit 1; }
# Each test's time is reported (libtest's --report-time, unstable: hence
# RUSTC_BOOTSTRAP) so that the suite's slow ones show.
$SUDO ./tests/kernels/run.sh -t 1500 -- env RUSTC_BOOTSTRAP=1 "$e2e" \
    --test-threads=1 -Zunstable-options --report-time \
    capture:: churn:: ring:: interfaces:: privileges:: alerts:: decap:: attacks:: \
    ipfix:: flow_input::ipfix_over_tcp

stage "Debian package: build, lintian, systemd-analyze, install/upgrade/remove/purge in a fresh root"
$SUDO ./packaging/test-deb.sh

stage "fuzzing (bounded)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build) > /tmp/fuzz-build.log 2>&1; then
    tail -60 /tmp/fuzz-build.log
    echo "the fuzz targets do not build (see above)" >&2
    exit 1
fi
RUNS=${FUZZ_RUNS:-1000000}
SECS=${FUZZ_SECONDS:-30}
for target in parse config ring_block http_request replay_reader history_reader bgp_lines flow_records; do
    corpus=$(mktemp -d)
    log=$(mktemp)
    # Without a bound libFuzzer lets inputs grow to the largest seed: a
    # flow_records input of 128 KB ran ~350 times a second. Its target
    # holds 4 KB of data sets, so 16 KB reaches every bound it has.
    len=()
    [ "$target" != flow_records ] || len=(-max_len=16384)
    if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" "seeds/$target" -- \
            -runs="$RUNS" -max_total_time="$SECS" -print_final_stats=1 "${len[@]}") > "$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz target $target FAILED (the crashing input is in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    echo "$target: $(grep -E '^Done' "$log")"
    rm -rf "$corpus" "$log"
done
stage "all tests passed"
