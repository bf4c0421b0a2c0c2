#!/usr/bin/env bash
# restored_store.sh - a push with a lower version than the agent holds, from a coordinator whose
# database was restored from an older backup (ctest label `integration`).
#
#   restored_store.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR
#
# The protocol (proto/memsched.proto, PolicyPush.epoch): a version means something only with
# its store epoch, which is new each time the store is opened; the coordinator's store is the
# authority. So an agent holding v2 of the old epoch, told by the restored store (which knows
# only v1) to hold v1, applies v1 - the lower number is not refused as stale - and the next
# policy set there, numbered v2 again in the new epoch, is a new policy, not a retry of the v2
# it held before. Checks the agent's log, its persisted state (values, version, epoch) and the
# coordinator's view of its ack.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4
. "$(dirname "$0")/../lib/daemons.sh"
daemons_init restored

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

port=$(free_port)
fleet_keys host1

coordinator_pid=""
open_coordinator() {
    start_coordinator
    eventually 10 test -S "$work/control.sock" || fail "the coordinator did not open its control socket"
}
stop_coordinator() {
    kill -TERM "$coordinator_pid"
    wait "$coordinator_pid" || fail "the coordinator did not stop cleanly"
    rm -f "$work/control.sock"
}

# state KEY: a line of the agent's persisted policy state (state_dir/policy.conf).
state() { awk -F' = ' -v k="$1" '$1 == k { print $2 }' "$work/state/policy.conf" 2>/dev/null; }
# holds VERSION EXCESS_MIB: the agent persisted that fleet version with that excess threshold.
holds() { [ "$(state source)" = fleet ] && [ "$(state version)" = "$1" ] && [ "$(state vm_excess_unused_mib)" = "$2" ]; }
# applied N: the agent logged applying fleet version N that many times (at least).
applied() { [ "$(grep -c "event=policy source=fleet version=$1 " "$work/agent.log")" -ge "$2" ]; }

open_coordinator
{
    echo "uri = sim:$scenarios/one_hog.json"
    echo "coordinator = tcp://127.0.0.1:$port"
    echo "coordinator_key = $work/keys/coordinator.key"
    echo "key_file = $work/keys/host1.secret"
    echo "host_id = host1"
    echo "state_dir = $work/state"
    echo "interval_ms = 500"
} >"$work/agent.conf"
"$agent_bin" --config "$work/agent.conf" >>"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
eventually 20 sh -c "'$ctl_bin' --socket 'ipc://$work/control.sock' hosts | grep -q '^host1 '" ||
    fail "host1 never registered"

# v1, then a backup of the store holding only v1.
ctl policy set --scope fleet --reason "v1" vm_excess_unused_mib=400 >/dev/null || fail "policy set v1"
eventually 20 holds 1 400 || fail "host1 did not persist v1"
stop_coordinator
cp "$work/fleet.db" "$work/backup.db"
open_coordinator
# v2 (the agent holds it, from this epoch); then the store is restored from the backup.
ctl policy set --scope fleet --reason "v2" vm_excess_unused_mib=500 >/dev/null || fail "policy set v2"
eventually 20 holds 2 500 || fail "host1 did not persist v2"
epoch_before=$(state epoch)
stop_coordinator
rm -f "$work/fleet.db" "$work/fleet.db-wal" "$work/fleet.db-shm"
cp "$work/backup.db" "$work/fleet.db"
open_coordinator

# The restored store knows only v1: the agent, holding v2 of the old epoch, is told v1 and
# applies it (a lower number from another epoch is another policy; the store is the authority).
eventually 20 holds 1 400 ||
    fail "host1 did not take v1 from the restored store (holds v$(state version), excess $(state vm_excess_unused_mib) MiB)"
[ "$(state epoch)" != "$epoch_before" ] || fail "host1 holds v1 with the old epoch $epoch_before"
eventually 20 applied 1 2 || fail "host1 did not log applying v1 again"

# A new policy on the restored store is v2 again - of the new epoch: a new policy, not a retry
# of the v2 host1 held before the restore.
ctl policy set --scope fleet --reason "v2 of the new epoch" vm_excess_unused_mib=600 >/dev/null ||
    fail "policy set v2 (new epoch)"
eventually 20 holds 2 600 ||
    fail "host1 did not take the new epoch's v2 (holds v$(state version), excess $(state vm_excess_unused_mib) MiB)"
eventually 20 sh -c "'$ctl_bin' --socket 'ipc://$work/control.sock' policy show | grep host1 | grep -q 'v2 applied'" ||
    fail "the coordinator does not show host1's ack of v2: $(ctl policy show)"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "the agent did not stop cleanly on SIGTERM"
echo "restored_store: the agent followed the restored store down to v1, then its new v2"
