#!/bin/bash
# stats_bench.sh [BUILD_DIR] [DOMAINS] [-- STATS_BENCH_ARGS...]
#
# The documented run of stats_bench: writes a libvirt test-driver node with DOMAINS (default 500)
# running domains of different sizes, starts a private libvirtd on it (tests/lib/libvirtd.sh),
# runs BUILD_DIR/tests/bench/stats_bench (default build dir: build) over its test+unix socket and
# stops the daemon. Example, from the repository root:
#   cmake --build build --target stats_bench && tests/bench/stats_bench.sh build 500
set -eu
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-build}
domains=${2:-500}
shift $(($# < 2 ? $# : 2))
[ "${1:-}" = "--" ] && shift
bench="$build/tests/bench/stats_bench"
[ -x "$bench" ] || { echo "stats_bench.sh: $bench not built" >&2; exit 1; }

# shellcheck source=SCRIPTDIR/../lib/libvirtd.sh
. "$here/../lib/libvirtd.sh"
libvirtd_available || { echo "stats_bench.sh: $LIBVIRTD_WHY" >&2; exit 1; }

xml=$(mktemp "${TMPDIR:-/tmp}/memsched-bench.XXXXXX.xml")
trap 'rm -f "$xml"' EXIT # libvirtd_start chains its own clean-up after this
{
    echo "<node>"
    echo "  <cpu><mhz>2000</mhz><model>x86_64</model><active>64</active><nodes>1</nodes>"
    echo "       <sockets>2</sockets><cores>16</cores><threads>2</threads></cpu>"
    echo "  <memory>$((4096 * 1024 * 1024))</memory>"
    for i in $(seq 1 "$domains"); do
        max=$((512 * (1 + i % 8)))
        printf "  <domain type='test'><name>vm%04d</name>" "$i"
        printf "<uuid>be0c0000-0000-4000-8000-%012x</uuid>" "$i"
        printf "<memory unit='MiB'>%d</memory><currentMemory unit='MiB'>%d</currentMemory>" \
            "$max" $((max * 3 / 4))
        printf "<vcpu>1</vcpu><os><type>hvm</type></os>"
        printf "<devices><memballoon model='virtio'/></devices></domain>\n"
    done
    echo "</node>"
} >"$xml"

libvirtd_start "$xml"
echo "stats_bench.sh: $domains domains, libvirtd $(libvirtd --version | awk '{print $NF}')," \
    "$(nproc) CPUs"
"$bench" "$LIBVIRTD_URI" "$@"
