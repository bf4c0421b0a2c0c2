#!/bin/bash
# trust_bench.sh [BUILD_DIR] [-- TRUST_BENCH_ARGS...]
#
# The documented run of trust_bench (tests/bench/trust_bench.c): a fresh memsched-coordinator
# from BUILD_DIR (default build/release) on a free loopback port with CURVE, one agent key in
# its allowlist (bound to host id hv1), and trust_bench sending, with that key: the largest
# legal reports, 50,000 heartbeats and 50,000 hellos for other host ids, 50,000 hellos for its
# own, 50,000 acks for versions never pushed, and 2 MiB reports (the most a server takes) of
# half a million empty VM records. It prints the coordinator's VmRSS/VmHWM after each phase
# and the rows in its hosts and acks tables, and asserts nothing. About a minute on 2 CPUs.
# From the repository root:
#   cmake --preset release && cmake --build --preset release -j2 && tests/bench/trust_bench.sh
set -eu
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build/release
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    build=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
bench="$build/tests/bench/trust_bench"
coordinator="$build/coordinator/memsched-coordinator"
ctl="$build/coordinator/memschedctl"
for f in "$bench" "$coordinator" "$ctl"; do
    [ -x "$f" ] || { echo "trust_bench.sh: $f not built" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memsched-trust-bench.XXXXXX")
coord_pid=
cleanup() {
    if [ -n "$coord_pid" ]; then
        kill -TERM "$coord_pid" 2>/dev/null || true
        wait "$coord_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/keys" "$tmp/allow"
"$ctl" keygen coordinator --dir "$tmp/keys" >/dev/null
"$ctl" keygen hv1 --dir "$tmp/keys" >/dev/null
cp "$tmp/keys/hv1.key" "$tmp/allow/"
port=$((10000 + RANDOM % ($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range) - 10000)))
"$coordinator" "listen=tcp://127.0.0.1:$port" "control=ipc://$tmp/ctl.sock" \
    "key_file=$tmp/keys/coordinator.secret" "allow_dir=$tmp/allow" "db=$tmp/fleet.db" \
    log_level=warn 2>"$tmp/coordinator.log" &
coord_pid=$!
for _ in $(seq 50); do [ -S "$tmp/ctl.sock" ] && break; sleep 0.1; done
"$bench" --pid "$coord_pid" --endpoint "tcp://127.0.0.1:$port" \
    --server-key "$tmp/keys/coordinator.key" --key "$tmp/keys/hv1.secret" --host-id hv1 "$@"
"$ctl" --socket "ipc://$tmp/ctl.sock" status | sed -n '1,3p'
kill -TERM "$coord_pid"
wait "$coord_pid" 2>/dev/null || true
coord_pid=
if command -v sqlite3 >/dev/null; then
    echo "rows: hosts=$(sqlite3 "$tmp/fleet.db" 'SELECT count(*) FROM hosts')" \
        "acks=$(sqlite3 "$tmp/fleet.db" 'SELECT count(*) FROM acks')"
fi
echo "coordinator log: $(grep -c . "$tmp/coordinator.log") lines"
grep -o 'event=[a-z_]*' "$tmp/coordinator.log" | sort | uniq -c
