#!/usr/bin/env bash
# Builds the Debian package and checks it the way an operator meets it:
# lintian; the unit with systemd-analyze (verify, and the security score);
# then, in a fresh Debian root made by debootstrap, install with dpkg -i,
# check files, conffile, man page, capability, `--version` and
# `check-config` of the shipped config from inside that root; upgrade to a
# rebuilt newer version with the config edited (the edit must stay); remove
# and purge (nothing may stay behind but the system user).
#
# Usage (root): packaging/test-deb.sh
#   DEB_ROOT_CACHE=path  tarball of the debootstrap root, reused when present
#   (default target/debootstrap-bookworm.tgz)
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "packaging/test-deb.sh needs root (chroot, dpkg in the root)" >&2; exit 1; }
need=()
for pair in lintian:lintian debootstrap:debootstrap systemd-analyze:systemd getcap:libcap2-bin; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing: ${need[*]}"
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

WORK=$(mktemp -d)
ROOT=$WORK/root
CACHE=${DEB_ROOT_CACHE:-target/debootstrap-bookworm-systemd.tgz}
cleanup() {
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
    debootstrap --variant=minbase --include=adduser,libcap2-bin,init-system-helpers,systemd,procps,man-db \
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
