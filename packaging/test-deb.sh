#!/usr/bin/env bash
# Builds the Debian package and checks it the way an operator meets it:
# lintian; the unit with systemd-analyze (verify, and the security score);
# then, in a fresh Debian root made by debootstrap, install with dpkg -i,
# check files, conffile, man page, capability, `--version` and
# `check-config` of the shipped config from inside that root; boot that
# root with systemd as PID 1 (systemd-nspawn) and check the service as
# systemd runs it: active, CAP_NET_RAW its only capability, counting
# packets sent to the container's interface, reloading on `systemctl
# reload`, restarted after a kill, stopping cleanly; upgrade to a rebuilt
# newer version with the config edited (the edit must stay); remove and
# purge (nothing may stay behind but the system user).
#
# Usage (root): packaging/test-deb.sh
#   DEB_ROOT_CACHE=path  tarball of the debootstrap root, reused when present
#   (default target/debootstrap-bookworm.tgz)
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "packaging/test-deb.sh needs root (chroot, dpkg in the root)" >&2; exit 1; }
need=()
for pair in lintian:lintian debootstrap:debootstrap systemd-analyze:systemd getcap:libcap2-bin \
            systemd-nspawn:systemd-container nsenter:util-linux ping:iputils-ping; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing: ${need[*]}"
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

WORK=$(mktemp -d)
ROOT=$WORK/root
CACHE=${DEB_ROOT_CACHE:-target/debootstrap-bookworm-systemd-net-exabgp.tgz}
NS=ta-deb-$$
NSPAWN=""
cleanup() {
    [ -n "$NSPAWN" ] && kill -9 "$NSPAWN" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    umount "$ROOT/proc" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "packaging/test-deb.sh: FAILED: $*" >&2; exit 1; }
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

VERSION=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print([p for p in json.load(sys.stdin)["packages"] if p["name"]=="trafficalerted"][0]["version"])')
ARCH=$(dpkg --print-architecture)

echo "== build the package (cargo deb)"
# cargo deb clears target/debian: each build is copied away first. The
# second, "newer" one is the same build with the next Debian revision.
cargo deb --locked
DEB1=$WORK/trafficalerted_${VERSION}-1_${ARCH}.deb
cp "target/debian/$(basename "$DEB1")" "$DEB1" || fail "no .deb built"
cargo deb --no-build --deb-revision 2
DEB2=$WORK/trafficalerted_${VERSION}-2_${ARCH}.deb
cp "target/debian/$(basename "$DEB2")" "$DEB2" || fail "no second .deb built"
# The one people install stays in target/debian.
cp "$DEB1" target/debian/
ls -l "$DEB1" "$DEB2"

echo "== lintian"
lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs "$DEB1" | tee "$WORK/lintian" ||
    fail "lintian reports errors"
echo "lintian: $(grep -c '^E:' "$WORK/lintian" || true) errors, $(grep -c '^W:' "$WORK/lintian" || true) warnings"

echo "== systemd-analyze security"
systemd-analyze security --offline=yes --no-pager packaging/trafficalerted.service > "$WORK/security" 2>&1 || true
tail -n 1 "$WORK/security"
# Exposure 0.0 (best) to 10.0; fail above 2.5, "OK" in systemd's words.
score=$(grep -o 'exposure level for [^:]*: [0-9.]*' "$WORK/security" | awk '{print $NF}')
[ -n "$score" ] || { cat "$WORK/security"; fail "no exposure score"; }
python3 -c "import sys; sys.exit(0 if float('$score') <= 2.5 else 1)" || { cat "$WORK/security"; fail "exposure $score > 2.5"; }

echo "== fresh Debian root"
mkdir -p "$ROOT"
if [ -f "$CACHE" ]; then
    tar -xzf "$CACHE" -C "$ROOT"
else
    debootstrap --variant=minbase --include=adduser,libcap2-bin,init-system-helpers,systemd,systemd-sysv,procps,man-db,iproute2,curl,exabgp \
        bookworm "$ROOT" http://deb.debian.org/debian > "$WORK/debootstrap.log" 2>&1 ||
        { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
    mkdir -p "$(dirname "$CACHE")"
    tar -czf "$CACHE" -C "$ROOT" .
fi
mount -t proc proc "$ROOT/proc"
# Honour policy-rc.d: no service starts inside the build root.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp "$DEB1" "$DEB2" "$ROOT/tmp/"

echo "== install $(basename "$DEB1")"
in_root dpkg -i "/tmp/$(basename "$DEB1")" || fail "dpkg -i"
for f in /usr/bin/trafficalerted /etc/trafficalerted/trafficalerted.toml \
         /usr/share/man/man8/trafficalerted.8.gz /usr/share/doc/trafficalerted/README.md \
         /usr/share/doc/trafficalerted/copyright /usr/share/doc/trafficalerted/changelog.Debian.gz \
         /usr/lib/systemd/system/trafficalerted.service; do
    [ -e "$ROOT$f" ] || fail "$f not installed"
done
zcat "$ROOT/usr/share/man/man8/trafficalerted.8.gz" | grep -q '^.SH NAME' || fail "man page"
in_root man -P cat trafficalerted 2>/dev/null | grep -q 'per-host traffic and scan alerts' || fail "man trafficalerted does not show the page"
in_root dpkg-query -W -f='${Conffiles}\n' trafficalerted | grep -q '/etc/trafficalerted/trafficalerted.toml' ||
    fail "config is not a conffile"
[ "$(in_root stat -c '%U:%G %a' /var/lib/trafficalerted)" = "trafficalerted:trafficalerted 750" ] ||
    fail "state directory: $(in_root stat -c '%U:%G %a' /var/lib/trafficalerted)"
[ "$(in_root stat -c '%U:%G %a' /usr/bin/trafficalerted)" = "root:trafficalerted 754" ] ||
    fail "binary owner/mode: $(in_root stat -c '%U:%G %a' /usr/bin/trafficalerted)"
getcap "$ROOT/usr/bin/trafficalerted" | grep -q 'cap_net_raw=ep' || fail "no cap_net_raw on the binary"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/trafficalerted.service" ] || fail "service not enabled"
out=$(in_root trafficalerted --version) || fail "--version"
[ "$out" = "trafficalerted $VERSION" ] || fail "--version said: $out"
in_root trafficalerted check-config /etc/trafficalerted/trafficalerted.toml > "$WORK/check" || fail "check-config of the shipped config"
if in_root setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c '/usr/bin/trafficalerted --version' 2>/dev/null; then
    fail "a user outside the group may run the capture binary"
fi
in_root systemd-analyze verify /usr/lib/systemd/system/trafficalerted.service > "$WORK/verify" 2>&1 || { cat "$WORK/verify"; fail "systemd-analyze verify"; }
echo "installed: files, conffile, man page, state dir, cap_net_raw on root:trafficalerted 0754, enabled, --version, check-config, unit verified"

echo "== the service under systemd (systemd-nspawn --boot)"
# The container's host side of its veth lives in a namespace of ours, so
# that nothing of the test touches this machine's own network.
umount "$ROOT/proc"
rm -f "$ROOT/usr/sbin/policy-rc.d"
echo "ta-deb-test" > "$ROOT/etc/hostname"
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
nsenter --net="/run/netns/$NS" systemd-nspawn --boot --register=no --keep-unit --quiet \
    --network-veth -M ta-deb-$$ -D "$ROOT" > "$WORK/boot.log" 2>&1 &
NSPAWN=$!
# The container's PID 1: systemd, the child of systemd-nspawn.
leader=""
for _ in $(seq 100); do
    leader=$(pgrep -P "$NSPAWN" -x systemd || true)
    [ -n "$leader" ] && break
    sleep 0.2
done
[ -n "$leader" ] || { cat "$WORK/boot.log"; fail "the container did not boot"; }
inside() { nsenter -t "$leader" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SYSTEMD_PAGER= "$@"; }
state=""
for _ in $(seq 150); do
    state=$(inside systemctl is-active trafficalerted 2>/dev/null || true)
    [ "$state" = active ] && break
    sleep 0.2
done
[ "$state" = active ] || { inside systemctl status trafficalerted --no-pager -l 2>&1 | tail -30; fail "service not active: $state"; }
main_pid() { inside systemctl show -p MainPID --value trafficalerted; }
pid=$(main_pid)
capeff=$(inside grep CapEff "/proc/$pid/status" | awk '{print $2}')
# CAP_NET_RAW is bit 13.
[ "$capeff" = 0000000000002000 ] || fail "CapEff of the service is $capeff, not CAP_NET_RAW alone"
[ "$(inside stat -c %U "/proc/$pid")" = trafficalerted ] || fail "the service does not run as trafficalerted"
echo "active as trafficalerted with CapEff $capeff (CAP_NET_RAW only)"

# Packets sent to the container's host0: 20 echo requests of 1000 bytes.
host=$(ip netns exec "$NS" ip -o link | awk -F': ' '/ve-/{print $2}' | cut -d@ -f1 | head -1)
[ -n "$host" ] || fail "no host side of the container's veth"
ip netns exec "$NS" ip addr add 10.99.0.1/24 dev "$host"
ip netns exec "$NS" ip link set "$host" up
inside ip addr add 10.99.0.2/24 dev host0
inside ip link set host0 up
for _ in $(seq 50); do
    inside ip -o link show host0 | grep -q 'state UP' && break
    sleep 0.2
done
ip netns exec "$NS" ping -q -c 20 -i 0.05 -s 972 -W 2 10.99.0.2 > /dev/null || fail "cannot ping the container"
sent=0
for _ in $(seq 60); do
    sent=$(inside curl -sf localhost:8698/api/v1/hosts/10.99.0.1 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["host"]["sent_bytes"])' 2>/dev/null || echo 0)
    [ "$sent" -ge 20000 ] && break
    sleep 0.5
done
[ "$sent" = 20000 ] || fail "the service counted $sent bytes from 10.99.0.1, not 20 × 1000"
echo "counted the 20 × 1000 bytes sent to host0"

# Reload: a changed config is taken, the process stays.
sed -i 's/^byte_limit = .*/byte_limit = "3G"/' "$ROOT/etc/trafficalerted/trafficalerted.toml"
inside systemctl reload trafficalerted || fail "systemctl reload"
for _ in $(seq 50); do
    inside journalctl -u trafficalerted --no-pager -o cat | grep -q 'configuration reloaded' && break
    sleep 0.2
done
inside journalctl -u trafficalerted --no-pager -o cat | grep -q 'configuration reloaded' || fail "reload not applied"
[ "$(main_pid)" = "$pid" ] || fail "reload restarted the process"
[ "$(inside systemctl is-active trafficalerted)" = active ] || fail "not active after reload"
echo "reloaded in place"

# Mitigation as the README sets it up: Debian's exabgp.service (its own
# user, CAP_NET_ADMIN only) runs the bridge, which reaches the daemon's
# socket through the group the package put exabgp in; switched on by a
# reload.
inside id -nG exabgp | grep -qw trafficalerted || fail "exabgp is not in the trafficalerted group"
cat > "$ROOT/etc/exabgp/exabgp.conf" <<'EXA'
process trafficalerted {
  run /usr/bin/trafficalerted-exabgp-bridge;
  encoder json;
}
neighbor 10.99.0.1 {
  router-id 10.99.0.2;
  local-address 10.99.0.2;
  local-as 65002;
  peer-as 65001;
  family { ipv4 unicast; }
  api { processes [ trafficalerted ]; neighbor-changes; }
}
EXA
sed -i -e '/^\[mitigation\]/,/^\[mitigation.bgp\]/s/^enabled = false/enabled = true/' \
    -e 's/^# next_hop = "192.0.2.1"/next_hop = "10.99.0.2"/' "$ROOT/etc/trafficalerted/trafficalerted.toml"
inside systemctl reload trafficalerted || fail "systemctl reload (mitigation)"
inside systemctl restart exabgp || { inside systemctl status exabgp --no-pager -l | tail -20; fail "exabgp.service"; }
linked=""
for _ in $(seq 100); do
    linked=$(inside curl -sf localhost:8698/api/v1/mitigation 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["speaker"]["connected"])' 2>/dev/null || true)
    [ "$linked" = True ] && break
    sleep 0.2
done
[ "$linked" = True ] || {
    inside journalctl -u exabgp -u trafficalerted --no-pager -o cat | tail -30
    fail "the bridge run by exabgp.service did not reach the daemon"
}
[ "$(inside stat -c '%U:%G %a' /run/trafficalerted/exabgp.sock)" = "trafficalerted:trafficalerted 660" ] ||
    fail "socket: $(inside stat -c '%U:%G %a' /run/trafficalerted/exabgp.sock)"
echo "exabgp.service runs the bridge; it reached the daemon's socket (trafficalerted:trafficalerted 0660)"
inside systemctl stop exabgp

# Killed: systemd starts it again (Restart=on-failure).
inside systemctl kill -s KILL trafficalerted
new=""
for _ in $(seq 100); do
    new=$(main_pid)
    if [ "$new" != 0 ] && [ "$new" != "$pid" ] && [ "$(inside systemctl is-active trafficalerted)" = active ]; then break; fi
    sleep 0.2
done
[ "$new" != 0 ] && [ "$new" != "$pid" ] || fail "not restarted after a kill (MainPID $new)"
[ "$(inside systemctl show -p NRestarts --value trafficalerted)" -ge 1 ] || fail "no restart counted"
echo "restarted after a kill (pid $pid -> $new)"

# Stopped: cleanly, within its stop timeout, exit status 0.
start=$(date +%s)
inside systemctl stop trafficalerted || fail "systemctl stop"
took=$(( $(date +%s) - start ))
[ "$(inside systemctl show -p Result --value trafficalerted)" = success ] || fail "stop result: $(inside systemctl show -p Result --value trafficalerted)"
[ "$(inside systemctl show -p ExecMainStatus --value trafficalerted)" = 0 ] || fail "exit status $(inside systemctl show -p ExecMainStatus --value trafficalerted)"
# journald may not have the last lines yet when the unit is down: it is
# asked to write out what it has (--sync) before each look. The line is
# looked for in this run's messages (since the stop began), by the
# daemon's own identifier too: a line that reaches journald after the
# process exited can lose its unit field.
since="@$start"
stopped_line() {
    inside journalctl --sync >/dev/null 2>&1 || true
    inside journalctl -u trafficalerted --since "$since" --no-pager -o cat | grep -q 'stopping' ||
        inside journalctl -t trafficalerted --since "$since" --no-pager -o cat | grep -q 'stopping'
}
for _ in $(seq 100); do
    stopped_line && break
    sleep 0.2
done
stopped_line || {
    inside journalctl -u trafficalerted --no-pager -n 25 >&2 || true
    inside journalctl --no-pager -n 25 >&2 || true
    fail "no clean stop in the journal"
}
echo "stopped cleanly in ${took} s"
inside systemctl poweroff >/dev/null 2>&1 || true
for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.2; done
kill -9 "$NSPAWN" 2>/dev/null || true
wait "$NSPAWN" 2>/dev/null || true
NSPAWN=""
ip netns del "$NS"
sed -i -e 's/^byte_limit = "3G"/byte_limit = "1G"/' -e 's/^enabled = true/enabled = false/' \
    -e 's/^next_hop = "10.99.0.2"/# next_hop = "192.0.2.1"/' "$ROOT/etc/trafficalerted/trafficalerted.toml"
mount -t proc proc "$ROOT/proc"
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

echo "== upgrade to $(basename "$DEB2") with an edited config"
sed -i 's/^byte_limit = .*/byte_limit = "7G" # edited by the operator/' "$ROOT/etc/trafficalerted/trafficalerted.toml"
grep -q 'edited by the operator' "$ROOT/etc/trafficalerted/trafficalerted.toml" || fail "could not edit the config"
in_root dpkg -i "/tmp/$(basename "$DEB2")" || fail "upgrade"
[ "$(in_root dpkg-query -W -f='${Version}' trafficalerted)" = "${VERSION}-2" ] || fail "version after upgrade"
grep -q 'byte_limit = "7G" # edited by the operator' "$ROOT/etc/trafficalerted/trafficalerted.toml" || fail "the edited config was replaced"
in_root trafficalerted check-config /etc/trafficalerted/trafficalerted.toml | grep -q '7000000000\|7G' || fail "edited config not read"
getcap "$ROOT/usr/bin/trafficalerted" | grep -q 'cap_net_raw=ep' || fail "capability lost on upgrade"
echo "upgraded: config edit kept, capability set again"

echo "== remove"
in_root dpkg -r trafficalerted || fail "dpkg -r"
[ ! -e "$ROOT/usr/bin/trafficalerted" ] || fail "binary left after remove"
[ -f "$ROOT/etc/trafficalerted/trafficalerted.toml" ] || fail "remove must keep the config"
[ -d "$ROOT/var/lib/trafficalerted" ] || fail "remove must keep the state"
if in_root dpkg-statoverride --list /usr/bin/trafficalerted >/dev/null; then fail "statoverride left"; fi

echo "== purge"
in_root dpkg -P trafficalerted || fail "dpkg -P"
[ ! -e "$ROOT/etc/trafficalerted" ] || fail "config left after purge: $(ls -la "$ROOT/etc/trafficalerted")"
[ ! -e "$ROOT/var/lib/trafficalerted" ] || fail "state left after purge"
[ ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/trafficalerted.service" ] || fail "enable link left after purge"
if in_root dpkg-query -W -f='${Status}' trafficalerted 2>/dev/null | grep -q installed; then fail "still installed"; fi
echo "== package checks passed (security exposure $score)"
