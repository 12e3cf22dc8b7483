#!/usr/bin/env bash
# Runs a command as root inside a virtual machine booted with one of
# Debian's own kernels (qemu, TCG), with this machine's root file system
# shared read-only, so the same binaries and tools run on another kernel.
#
#   tests/kernels/run.sh [-k PACKAGE] [-t SECONDS] [-m MIB] [-c CPUS] [-w DIR] -- COMMAND [ARG...]
#
# PACKAGE is a Debian kernel image package (default: the one Debian 12's
# linux-image-amd64 points at, 6.1.0-N-amd64). COMMAND runs in the guest as
# root, in /tmp (the shared root is read-only; /tmp, /run and /var/tmp are
# tmpfs); its exit status is this script's. The guest is killed after SECONDS (default 1200).
# -w DIR shares a directory of this machine writable at the same path. See
# README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

pkg=""
limit=1200
mem=3072
cpus=2
writable=""
while getopts "k:t:m:c:w:" o; do
    case $o in
        k) pkg=$OPTARG ;;
        t) limit=$OPTARG ;;
        m) mem=$OPTARG ;;
        c) cpus=$OPTARG ;;
        w) writable=$(cd "$OPTARG" && pwd) ;;
        *) echo "usage: $0 [-k PACKAGE] [-t SECONDS] [-m MIB] [-c CPUS] -- COMMAND..." >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "$0: no command given" >&2; exit 2; }

fail() { echo "kernels/run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (the guest shares this machine's root file system)"

need=()
for pair in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static depmod:kmod \
            dpkg-deb:dpkg apt-get:apt; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== kernels: installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 \
        || fail "cannot install ${need[*]}"
fi
busybox=$(command -v busybox)
case "$(ldd "$busybox" 2>&1 || true)" in
    *"not a dynamic"*|*"statically linked"*) ;;
    *) fail "$busybox is not statically linked: install busybox-static" ;;
esac

if [ -z "$pkg" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$pkg" ] || fail "cannot tell which kernel linux-image-amd64 points at (apt-get update?)"
fi
kver=${pkg#linux-image-}

cache="$top/target/kernels/$kver"
if [ ! -f "$cache/ready" ]; then
    echo "== kernels: fetching $pkg" >&2
    rm -rf "$cache"
    mkdir -p "$cache/dl"
    (cd "$cache/dl" && apt-get download "$pkg" >&2) || fail "apt-get download $pkg failed"
    dpkg-deb -x "$cache"/dl/*.deb "$cache/root" || fail "cannot unpack $pkg"
    rm -rf "$cache/dl"
    # The package ships no modules.dep: dpkg's trigger makes it on install.
    depmod -b "$cache/root" "$kver" || fail "depmod -b for $kver failed"
    touch "$cache/ready"
fi
kdir="$cache/root"
kernel="$kdir/boot/vmlinuz-$kver"
moddir="$kdir/lib/modules/$kver"
[ -f "$kernel" ] || fail "no kernel image in $pkg"

# The initramfs: busybox, the modules that reach the shared root (with
# their dependencies, as modules.dep lists them), and init.
work=$(mktemp -d /tmp/ta-kernel.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
init="$work/initramfs"
mkdir -p "$init"/{bin,dev,proc,sys,host,lib/modules/"$kver"}
cp "$busybox" "$init/bin/busybox"
cp "$moddir"/modules.dep "$moddir"/modules.alias "$moddir"/modules.builtin "$moddir"/modules.order \
   "$moddir"/modules.symbols "$init/lib/modules/$kver/" 2>/dev/null || true
for m in virtio_pci 9pnet_virtio 9p; do
    line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$moddir/modules.dep") \
        || fail "$m is not in $kver's modules.dep"
    for f in ${line%%:*} ${line#*:}; do
        mkdir -p "$init/lib/modules/$kver/$(dirname "$f")"
        cp "$moddir/$f" "$init/lib/modules/$kver/$f"
    done
done

# What the guest runs: the command, in this directory, with its status
# written where the host reads it.
out="$work/out"
mkdir -p "$out"
{
    printf 'cd /tmp\n'
    printf 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp'
    for v in RUST_BACKTRACE RUST_LOG TA_KERNEL_TEST; do
        [ -n "${!v:-}" ] && printf ' %s=%q' "$v" "${!v}"
    done
    printf '\n'
    printf '%q ' "$@"
    printf '\n'
} > "$out/command"
echo "$kver" > "$out/kernel"
echo "$writable" > "$out/writable"
# The guest's /tmp is its own; a checkout or build under this machine's /tmp
# (CI clones there) is bound back into it at the same path.
: > "$out/keep"
for p in "$top" "$(dirname "$(dirname "$(readlink -f "$1" 2>/dev/null || echo "$1")")")"; do
    case "$p" in /tmp/?*) echo "$p" >> "$out/keep" ;; esac
done

cat > "$init/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "guest: $*" > /dev/console; }
for m in virtio_pci 9pnet_virtio 9p; do modprobe "$m" || say "modprobe $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose host /host \
    || mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288 host /host \
    || { say "cannot mount the host root"; poweroff -f; }
mkdir -p /out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 out /out || { say "cannot mount out"; poweroff -f; }
kver=$(uname -r)
# Modules the kernel asks for later (veth, vxlan, ...) come from the
# package's tree; the kernel's helper runs busybox modprobe here.
mount --bind "/host$(cat /out/kdir)/lib/modules" /lib/modules
echo /bin/modprobe > /proc/sys/kernel/modprobe
for m in veth; do modprobe "$m" || say "modprobe $m failed"; done
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts 2>/dev/null
mount -t tmpfs tmpfs /host/dev/shm
mkdir -p /hosttmp
mount --bind /host/tmp /hosttmp
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
while read -r p; do
    [ -n "$p" ] || continue
    mkdir -p "/host$p"
    mount --bind "/hosttmp/${p#/tmp/}" "/host$p" || say "cannot bind $p"
done < /out/keep
mount -t tmpfs -o mode=755 tmpfs /host/run
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup 2>/dev/null
mount -t tmpfs tmpfs /host/var/tmp 2>/dev/null
mkdir -p /host/run/netns /host/run/lock
mount --bind /out /host/mnt 2>/dev/null
w=$(cat /out/writable)
if [ -n "$w" ]; then
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 rw0 "/host$w" || say "cannot mount $w"
fi
ip link set lo up 2>/dev/null
say "kernel $kver up; running the command"
chroot /host /bin/sh -c '. /mnt/command' > /dev/console 2>&1
echo $? > /out/status
sync
say "done (status $(cat /out/status))"
poweroff -f
INIT
chmod +x "$init/init"
(cd "$init" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initramfs.gz"
echo "$kdir" > "$out/kdir"

echo "== kernels: booting $kver (qemu, TCG, $cpus CPUs, $mem MiB, limit ${limit}s): $*" >&2
set +e
timeout --kill-after=10 "$limit" qemu-system-x86_64 \
    -accel tcg,thread=multi -machine q35 -cpu max -smp "$cpus" -m "$mem" \
    -nographic -no-reboot -serial mon:stdio -display none \
    -kernel "$kernel" -initrd "$work/initramfs.gz" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init mitigations=off" \
    -virtfs local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap \
    -virtfs local,path="$out",mount_tag=out,security_model=passthrough,multidevs=remap \
    ${writable:+-virtfs local,path="$writable",mount_tag=rw0,security_model=passthrough,multidevs=remap} \
    -nic none < /dev/null
qrc=$?
set -e
if [ ! -f "$out/status" ]; then
    [ $qrc = 124 ] && fail "the guest did not finish within ${limit}s"
    fail "the guest stopped without a status (qemu exit $qrc)"
fi
exit "$(cat "$out/status")"
