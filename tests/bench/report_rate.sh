#!/usr/bin/env bash
# report_rate.sh - what one sim agent sends its coordinator per minute: reports, heartbeats and
# all messages, as the coordinator counts them (its stop line) and as the agent does (its own).
# A benchmark, not a test: nothing is asserted.
#
#   report_rate.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO SECONDS [KEY=VALUE...]
#
# The KEY=VALUE lines go into the agent's config (report_interval_ms=10000, interval_ms=...).
# Example, today's cadence against reports 10 s apart on 50 busy guests:
#   B=build/dev; S=tests/scenarios/mixed50.json
#   tests/bench/report_rate.sh $B/agent/memsched-agent $B/coordinator/memsched-coordinator \
#       $B/coordinator/memschedctl $S 60
#   tests/bench/report_rate.sh ... $S 60 report_interval_ms=10000
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenario=$4 seconds=$5
shift 5
. "$(dirname "$0")/../lib/daemons.sh"
daemons_init report-rate

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

port=$(free_port)
fleet_keys hv1
start_coordinator
eventually 10 test -S "$work/control.sock" || fail "coordinator did not open its control socket"
{
    echo "uri = sim:$scenario"
    echo "coordinator = tcp://127.0.0.1:$port"
    echo "coordinator_key = $work/keys/coordinator.key"
    echo "key_file = $work/keys/hv1.secret"
    echo "host_id = hv1"
    echo "state_dir = $work/state"
    for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done
} >"$work/hv1.conf"
"$agent_bin" --config "$work/hv1.conf" >>"$work/hv1.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
sleep "$seconds"
stale=$(ctl events --since 0 --limit 1000 | grep -w hv1 | grep -cwE "stale|down" || true)
decisions=$(ctl --json hosts | jq -r '.hosts[] | select(.host_id == "hv1") | .decisions_total' 2>/dev/null || echo "?")
kill -TERM "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
sleep 0.5
kill -TERM "$coordinator_pid"
wait "$coordinator_pid" 2>/dev/null || true
agent_line=$(grep "event=stopped" "$work/hv1.log" | sed 's/.*event=stopped //')
messages=$(sed -n 's/.*event=stopped messages=\([0-9]*\).*/\1/p' "$work/coordinator.log")
logged=$(grep -c " decision=" "$work/hv1.log" || true)
echo "scenario=${scenario##*/} seconds=$seconds config=\"$*\" agent: $agent_line;" \
    "coordinator: messages=$messages (per minute $((messages * 60 / seconds)))" \
    "decisions_total=$decisions of $logged logged; stale_or_down_events=$stale"
