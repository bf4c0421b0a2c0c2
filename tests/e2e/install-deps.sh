#!/usr/bin/env bash
# install-deps.sh - what the e2e tests need on Debian 12, beyond the build's own packages:
#   libvirt-daemon + libvirt-daemon-driver-qemu  the private libvirtd and its QEMU driver
#   libvirt-clients                               virsh (define, start, domstats, teardown)
#   qemu-system-x86                               the guests (TCG; KVM where it works)
#   busybox-static                                the guests' userland (initramfs)
#   gnuplot-nox                                   the per-scenario plots (PNG)
#   util-linux                                    setpriv, to run libvirtd as nobody
# --no-install-recommends keeps GTK, SDL and friends out. The guest kernel is not installed:
# run.sh (prepare.sh) fetches linux-image-cloud-amd64's package with apt-get download, which
# needs the package lists (apt-get update) but nothing else.
set -euo pipefail
packages=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
    busybox-static gnuplot-nox util-linux)
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends "${packages[@]}"
