#!/usr/bin/env bash
# coordinators.sh - an agent that lists two coordinators reports to both, and keeps reporting
# to the second when the first dies (ctest label `integration`).
#
#   coordinators.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR
#
# Two real coordinators on loopback (CURVE, the same server key as an HA pair would share, each
# its own SQLite store and control socket), one agent on a sim host with both endpoints in its
# `coordinator` list. Checks: both coordinators have the host fresh with a report; after the
# first is killed (SIGKILL: no goodbye), the second keeps receiving reports - its host stays
# fresh and its last report keeps coming - for longer than the coordinator's down_after, and the
# agent keeps running and logs no error for the dead endpoint more than with back-off.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4
. "$(dirname "$0")/../lib/daemons.sh"
need_jq
daemons_init coordinators

ctl() {
    local c=$1
    shift
    "$ctl_bin" --socket "ipc://$work/$c.sock" "$@"
}

fleet_keys host1

declare -A port
start_coordinator() {
    local c=$1
    port[$c]=$(free_port)
    "$coordinator_bin" "listen=tcp://127.0.0.1:${port[$c]}" "control=ipc://$work/$c.sock" \
        "key_file=$work/keys/coordinator.secret" "allow_dir=$work/allow" "db=$work/$c.db" \
        stale_after_ms=1500 down_after_ms=4000 >>"$work/$c.log" 2>&1 &
    pids+=("$!")
    eval "${c}_pid=$!"
}
start_coordinator c1
start_coordinator c2
eventually 10 test -S "$work/c1.sock" || fail "c1 did not open its control socket"
eventually 10 test -S "$work/c2.sock" || fail "c2 did not open its control socket"

{
    echo "uri = sim:$scenarios/one_hog.json"
    echo "coordinator = tcp://127.0.0.1:${port[c1]},tcp://127.0.0.1:${port[c2]}"
    echo "coordinator_key = $work/keys/coordinator.key"
    echo "key_file = $work/keys/host1.secret"
    echo "host_id = host1"
    echo "state_dir = $work/state"
    echo "interval_ms = 500"
} >"$work/agent.conf"
"$agent_bin" --config "$work/agent.conf" >>"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")

# host_json C: coordinator C's view of host1 (memschedctl hosts --json), "" when it has none.
host_json() { ctl "$1" --json hosts | jq -c '.hosts[] | select(.host_id == "host1")'; }
# reporting C: C has host1 fresh (its last message under stale_after_ms, 1.5 s, old) and a report.
# (jq -n with input: no host at all is an error; jq 1.6 -e alone passes on empty input.)
reporting() { host_json "$1" | jq -en 'input | .liveness == "fresh" and .has_report'; }

eventually 20 reporting c1 || fail "c1 never got host1's reports: $(host_json c1)"
eventually 20 reporting c2 || fail "c2 never got host1's reports: $(host_json c2)"

# c1 dies without a goodbye.
# shellcheck disable=SC2154 # c1_pid: start_coordinator
kill -KILL "$c1_pid"
wait "$c1_pid" 2>/dev/null || true
# For longer than c2's down_after (4 s) and several report intervals, c2 keeps hearing from
# host1: its host is fresh with a recent report every time we look.
decisions0=$(host_json c2 | jq -en 'input | .decisions_total')
for i in $(seq 1 16); do
    sleep 0.5
    reporting c2 >/dev/null || fail "c2 stopped getting host1's reports ${i}x0.5 s after c1 died: $(host_json c2)"
done
kill -0 "$agent_pid" || fail "the agent died with its first coordinator"
decisions1=$(host_json c2 | jq -en 'input | .decisions_total')
[ "$decisions1" -gt "$decisions0" ] ||
    fail "c2 got no new decisions from host1 after c1 died ($decisions0 -> $decisions1)"
echo "coordinators: c2 kept host1 fresh for 8 s after c1 died (decisions $decisions0 -> $decisions1)"
# The dead endpoint is not complained about every round (the transport retries quietly).
n_err=$(grep -c '^err' "$work/agent.log" || true)
[ "$n_err" -le 3 ] || fail "the agent logged $n_err errors with one coordinator down"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "the agent did not stop cleanly on SIGTERM"
echo "coordinators: the agent reported to both, then to the one left"
