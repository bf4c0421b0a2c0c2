#!/usr/bin/env bash
# web_bench.sh - the dashboard at 1,000 hosts x 50 VMs: each API call's time (curl) and each
# page's time from navigation to its data on screen (headless chromium, tests/web/dashboard.mjs
# in MODE=timing). Prints numbers ("RESULT ..." and "TIMING ..." lines); asserts nothing.
#
#   tests/bench/web_bench.sh [BUILD_DIR]        (default build/release; HOSTS=1000 VMS=50)
#
# A coordinator on plain loopback TCP (insecure=true, as coord_bench.sh: its simulated hosts share
# one client key) filled by coord_bench's rss phase, hosts kept fresh (long stale/down times).
# Needs node, /usr/bin/chromium and the build's npm installs (playwright-core, uPlot).
set -eu
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build/release}
hosts=${HOSTS:-1000} vms=${VMS:-50}
per_client=100 clients=$(((hosts + 99) / 100))
bench="$build/tests/bench/coord_bench"
coordinator="$build/coordinator/memsched-coordinator"
ctl="$build/coordinator/memschedctl"
node_modules="$build/tests/web/npm/node_modules"
for f in "$bench" "$coordinator" "$ctl" "$build/web/index.html" "$node_modules/playwright-core"; do
    [ -e "$f" ] || { echo "web_bench.sh: $f is not built" >&2; exit 1; }
done

. "$root/tests/lib/daemons.sh"
daemons_init web-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$work/keys" "$work/allow" "$work/want" "$work/shots"
"$ctl" keygen coordinator --dir "$work/keys" >/dev/null
port=$(free_port) http_port=$(free_port)
control="ipc://$work/ctl.sock"
"$coordinator" listen="tcp://127.0.0.1:$port" control="$control" \
    key_file="$work/keys/coordinator.secret" allow_dir="$work/allow" db="$work/fleet.db" \
    insecure=true metrics_listen="$http_port" web_root="$build/web" stale_after_ms=3600000 \
    down_after_ms=86400000 2>"$work/coordinator.log" &
pids+=("$!")
eventually 10 "$ctl" --socket "$control" status || fail "the coordinator did not come up"
"$bench" rss --pid "${pids[0]}" --endpoint "tcp://127.0.0.1:$port" --control "$control" \
    --server-key "$work/keys/coordinator.key" --key - --clients "$clients" \
    --hosts-per-client "$per_client" --vms "$vms" --rate 0 >"$work/rss.log" 2>&1 ||
    fail "coord_bench rss failed: $(tail -5 "$work/rss.log")"
total=$("$ctl" --socket "$control" --json status | jq -r '.status.hosts.total')
echo "web_bench: $total hosts x $vms VMs ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"

host=$("$ctl" --socket "$control" --json hosts --limit 1 | jq -r '.hosts[0].host_id')
vm=$("$ctl" --socket "$control" --json vms --host "$host" | jq -r '.vms[0].uuid')
for path in status "hosts?limit=50" "hosts?limit=50&after=$host" "vms?sort=unused&limit=20" \
    "events?limit=15" policy "vms?host=$host" "why?host=$host&vm=$vm" "history?host=$host"; do
    for _ in 1 2 3; do
        curl -s -o /dev/null -w "RESULT api=/api/$path status=%{http_code} bytes=%{size_download} s=%{time_total}\n" \
            "http://127.0.0.1:$http_port/api/$path"
    done
done

# The pages (no checks: MODE=timing).
echo '{"hosts":[]}' >"$work/want/hosts.json"
for _ in 1 2; do
    BASE="http://127.0.0.1:$http_port" WANT="$work/want" HOST="$host" VM="$vm" \
        ARTIFACTS="$work/shots" FIXTURE="$root/tests/web/fixtures/history.json" \
        NODE_MODULES="$node_modules" MODE=timing node "$root/tests/web/dashboard.mjs" |
        grep -E '^(TIMING|FAIL|  )' || true
done
