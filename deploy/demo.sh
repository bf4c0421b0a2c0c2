#!/usr/bin/env bash
# The memsched fleet demo, on one machine: installs what is needed, builds, generates CURVE keys,
# starts a coordinator and three agents on modelled hosts (different scenarios, running 4x real
# time), shows the fleet live through memschedctl, steers it with a fleet policy half-way, and
# ends with a fleet summary. It stops everything it started.
#   bash deploy/demo.sh (as root)
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" \
    --target memsched-agent memsched-coordinator memschedctl >/dev/null
bin=build/release

work=$(mktemp -d /tmp/memsched-demo-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

ctl() { "$bin/coordinator/memschedctl" --socket "ipc://$work/control.sock" "$@"; }

port=$((20000 + RANDOM % 20000))
mkdir -p "$work/keys" "$work/agents"
for name in coordinator hv-web hv-batch hv-mixed; do ctl keygen "$name" --dir "$work/keys" >/dev/null; done
cp "$work/keys"/hv-*.key "$work/agents/"

"$bin/coordinator/memsched-coordinator" "listen=tcp://127.0.0.1:$port" \
    "control=ipc://$work/control.sock" "key_file=$work/keys/coordinator.secret" \
    "allow_dir=$work/agents" "db=$work/fleet.db" log_level=warn 2>"$work/coordinator.log" &
pids+=("$!")

# agent NAME SCENARIO LABELS
agent() {
    cat >"$work/$1.conf" <<CONF
uri = sim:tests/scenarios/$2?speed=4
coordinator = tcp://127.0.0.1:$port
coordinator_key = $work/keys/coordinator.key
key_file = $work/keys/$1.secret
host_id = $1
labels = $3
state_dir = $work/state-$1
interval_ms = 250
log_level = warn
CONF
    "$bin/agent/memsched-agent" --config "$work/$1.conf" 2>"$work/$1.log" &
    pids+=("$!")
}
agent hv-web demo.json role=web
agent hv-batch all_hog.json role=batch
agent hv-mixed demand_moves.json role=web

show() {
    printf '\n=== t=%ss ===\n' "$1"
    ctl status
    echo
    ctl hosts
    echo
    ctl vms --sort unused --limit 6
}

sleep 2
for t in 3 6 9; do show "$t"; sleep 3; done
echo
echo ">>> memschedctl policy set --scope fleet --reason 'demo: more headroom' \\"
echo "        vm_grow_target_unused_mib=250 interval_ms=250"
ctl policy set --scope fleet --reason "demo: more headroom" vm_grow_target_unused_mib=250 \
    interval_ms=250
echo "(hv-web's scenario ends at t=15s: its agent stops, and the fleet sees it go stale, then down)"
for t in 12 15 18 21 24; do sleep 3; show "$t"; done

echo
echo "=== fleet summary ==="
ctl status
echo
ctl hosts
echo
ctl policy show
echo
ctl events --limit 20
# The same final state for scripts (CI checks it): build/demo-{status,hosts}.json.
ctl --json status >build/demo-status.json
ctl --json hosts >build/demo-hosts.json
