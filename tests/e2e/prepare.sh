#!/usr/bin/env bash
# prepare.sh CACHE_DIR HOG_BINARY OUT_DIR
#
# Exits 0, 3 when the kernel package cannot be fetched, 1 on anything else.
#
# Lays out what the e2e guests boot: OUT_DIR/vmlinuz (Debian's cloud kernel) and
# OUT_DIR/initramfs.cpio (busybox-static, our hog, the virtio modules, /init below). virtio_blk
# is for the guest with a disk (the warm_cache scenario reads it to fill its page cache).
#
# The kernel package is fetched once with `apt-get download` into CACHE_DIR and unpacked with
# dpkg -x (never installed). The cloud kernel reaches userspace in ~18 s under TCG; the
# generic one takes ~32 s. Its virtio drivers are modules, loaded by /init in dependency order.
# The initramfs is an uncompressed newc cpio made by busybox (no gzip to undo under TCG).
#
# /init: mounts proc, sys and devtmpfs, loads the virtio modules (virtio_balloon unless the
# kernel command line says memsched.balloon=0: the "no driver" guest), prints the guest's
# memory, then runs the hog forever (restarted if it dies, which the console would show).
set -euo pipefail

cache=${1:?usage: prepare.sh CACHE_DIR HOG_BINARY OUT_DIR}
hog=${2:?usage: prepare.sh CACHE_DIR HOG_BINARY OUT_DIR}
out=${3:?usage: prepare.sh CACHE_DIR HOG_BINARY OUT_DIR}
busybox=${BUSYBOX:-/bin/busybox}
modules=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console
    virtio_blk virtio_balloon)

die() {
    echo "prepare.sh: $*" >&2
    exit 1
}

# The kernel could not be had (no package lists, no mirror): exit 3, which run.sh tells apart.
no_kernel() {
    echo "prepare.sh: $*" >&2
    exit 3
}

mkdir -p "$cache" "$out"
cache=$(cd "$cache" && pwd)
out=$(cd "$out" && pwd)
hog=$(cd "$(dirname "$hog")" && pwd)/$(basename "$hog")

# ---- the kernel: linux-image-cloud-amd64 names the versioned package ----
# Fetched again when the cache lacks the kernel or a module the list above names (a cache made
# before a module was added to it).
kdir="$cache/kernel"
complete=yes
ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1 || complete=no
for m in "${modules[@]}"; do
    [ -f "$kdir/modules/$m.ko" ] || complete=no
done
if [ "$complete" = no ]; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$pkg" ] || no_kernel "apt-cache cannot resolve linux-image-cloud-amd64 (run apt-get update)"
    echo "prepare.sh: fetching $pkg"
    rm -f "$cache"/linux-image-*.deb
    # apt's sandbox user cannot write to the cache directory; downloading as root is fine here.
    (cd "$cache" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' || true)
    deb=$(ls "$cache"/"$pkg"_*.deb 2>/dev/null | head -n 1)
    [ -n "$deb" ] || no_kernel "apt-get download $pkg failed"
    # Keep the kernel and the modules the guests load; the rest of the package goes.
    rm -rf "$kdir.tmp" "$kdir.new"
    dpkg -x "$deb" "$kdir.tmp"
    mkdir -p "$kdir.new/boot" "$kdir.new/modules"
    cp "$kdir.tmp"/boot/vmlinuz-* "$kdir.new/boot/"
    for m in "${modules[@]}"; do
        ko=$(find "$kdir.tmp/lib/modules" -name "$m.ko" -print -quit)
        [ -n "$ko" ] || die "module $m not found in $pkg"
        cp "$ko" "$kdir.new/modules/"
    done
    rm -rf "$kdir.tmp" "$kdir" "$deb"
    mv "$kdir.new" "$kdir"
fi
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -n 1)
kver=${vmlinuz##*/vmlinuz-}
cp "$vmlinuz" "$out/vmlinuz"

# ---- the initramfs ----
[ -x "$busybox" ] || die "no $busybox (Debian: busybox-static)"
cpio_help=$("$busybox" cpio --help 2>&1 || true) # not piped into grep -q: pipefail and SIGPIPE
grep -q -- '-o' <<<"$cpio_help" || die "$busybox has no cpio -o"
stage=$(mktemp -d "${TMPDIR:-/tmp}/memsched-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,lib/modules}
cp "$busybox" "$stage/bin/busybox"
cp "$hog" "$stage/bin/hog"
strip "$stage/bin/hog" 2>/dev/null || true # smaller; binutils comes with build-essential
for m in "${modules[@]}"; do
    [ -f "$kdir/modules/$m.ko" ] || die "module $m missing from $kdir (remove it to fetch again)"
    cp "$kdir/modules/$m.ko" "$stage/lib/modules/$m.ko"
done
cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console virtio_blk; do
    insmod /lib/modules/$m.ko || echo "init: insmod $m failed"
done
case " $(cat /proc/cmdline) " in
*" memsched.balloon=0 "*) echo "init: balloon=no (virtio_balloon not loaded)" ;;
*) insmod /lib/modules/virtio_balloon.ko && echo "init: balloon=yes" ;;
esac
echo "init: up uptime=$(cut -d' ' -f1 /proc/uptime) $(grep -E '^Mem(Total|Free|Available):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
while :; do
    /bin/hog
    echo "init: hog exited rc=$?"
    sleep 1
done
EOF
chmod 0755 "$stage/init" "$stage/bin/busybox" "$stage/bin/hog"
(cd "$stage" && find . | sort | "$busybox" cpio -o -H newc -R 0:0 >"$out/initramfs.cpio.tmp" 2>/dev/null)
mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
chmod 0644 "$out/vmlinuz" "$out/initramfs.cpio"
echo "prepare.sh: kernel $kver, initramfs $(($(stat -c %s "$out/initramfs.cpio") / 1024)) KiB"
