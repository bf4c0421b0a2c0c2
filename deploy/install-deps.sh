#!/usr/bin/env bash
# Installs what memsched needs to build and run on Debian 12 (the one list CI and the demo use).
#   deploy/install-deps.sh          build + runtime libraries and tools
#   deploy/install-deps.sh --test   also what the tests need (libvirtd, clang for fuzzing, ...)
set -euo pipefail

build=(
    build-essential cmake pkg-config
    libvirt-dev libzmq3-dev protobuf-c-compiler libprotobuf-c-dev
    libxml2-dev libjansson-dev libsystemd-dev libcmocka-dev libsqlite3-dev libmicrohttpd-dev
)
# npm fetches the dashboard's chart library (uPlot, pinned in coordinator/web/package-lock.json)
# at build time; nothing is fetched when the coordinator runs. A machine with a Node.js and npm
# of its own keeps them (NodeSource's nodejs carries npm and conflicts with Debian's npm).
if ! command -v npm >/dev/null; then
    build+=(nodejs npm)
fi
# libvirt-daemon gives libvirtd for the integration tests (the test driver is in libvirt0),
# libvirt-clients virsh, jq for the integration tests that read memschedctl's --json, iproute2
# for the netns fault tests (ip netns, veth, bridge); --no-install-recommends keeps QEMU out of
# it. prometheus gives promtool (checks the coordinator's exposition) and the server the metrics
# test scrapes with; curl queries it.
# scdoc, lintian, systemd (systemd-analyze), man-db and bash-completion for the packages'
# check (tests/deploy/packages.sh); ansible-core (the builtin modules are all the roles use)
# and python3-apt (its apt module) for tests/deploy/ansible.sh; valgrind for tests/valgrind.
# chromium is the browser the dashboard's test drives (playwright-core from npm, with no browser
# download of its own).
test=(
    clang clang-format libclang-rt-14-dev libvirt-daemon libvirt-clients jq iproute2 prometheus curl
    scdoc lintian systemd man-db bash-completion ansible-core python3-apt valgrind chromium
)

packages=("${build[@]}")
if [ "${1:-}" = "--test" ]; then
    packages+=("${test[@]}")
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Only touch apt when something is missing: quick on a machine that has everything.
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] || [ "${CI:-}" = "true" ]; then
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
