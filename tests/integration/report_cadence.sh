#!/usr/bin/env bash
# report_cadence.sh - an agent whose reports are a minute apart (report_interval_ms) on a sim
# host that sits still, then gets busy, with a real coordinator over CURVE (ctest label
# `integration`).
#
#   report_cadence.sh AGENT COORDINATOR MEMSCHEDCTL
#
# Checks: while nothing changes no report goes, yet heartbeats keep the host fresh at a
# coordinator that calls it stale after 1.5 s; a decision reaches the coordinator at once
# (its decisions_total catches up with the agent's log within 2 s, far inside the minute);
# the agent sent fewer reports than it ran rounds (its stop line), and heartbeats.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3
. "$(dirname "$0")/../lib/daemons.sh"
need_jq
daemons_init report-cadence

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

port=$(free_port)
fleet_keys hv1
start_coordinator stale_after_ms=1500 down_after_ms=4000
eventually 10 test -S "$work/control.sock" || fail "coordinator did not open its control socket"

# Two guests in band (usable between min and excess): no decision until `busy` starts to hog.
quiet_s=16
cat >"$work/quiet.json" <<EOF
{
  "description": "Two guests in band sit still; at ${quiet_s} s one starts to hog.",
  "host": {"total_mib": 8192, "reserved_mib": 1024},
  "vms": [
    {"name": "busy", "max_mib": 4096, "initial_mib": 1024,
     "workload": [{"at_s": 0, "used_mib": 800},
                  {"at_s": $quiet_s, "hog_mib_per_s": 40, "hold_s": 600, "limit_mib": 3500}]},
    {"name": "calm", "max_mib": 2048, "initial_mib": 1024,
     "workload": [{"at_s": 0, "used_mib": 800}]}
  ]
}
EOF
scenarios=$work start_agent hv1 quiet.json "log_level = debug" "report_interval_ms = 60000" \
    "heartbeat_interval_ms = 500"
agent_pid=$hv1_pid
started=$(date +%s)

host_json() { ctl --json hosts | jq -ec '.hosts[] | select(.host_id == "hv1")'; }
liveness() { host_json | jq -r .liveness; }
reports() { grep -c "agent: event=report " "$work/hv1.log" || true; }
decisions_logged() { grep -c " decision=" "$work/hv1.log" || true; }
decisions_total() { host_json | jq -r .decisions_total; }

eventually 20 sh -c "'$ctl_bin' --socket 'ipc://$work/control.sock' hosts | grep -E '^hv1 +fresh'" ||
    fail "hv1 never registered"
sleep 2 # its first report, and one after the coordinator's greeting, are out
[ "$(decisions_logged)" -eq 0 ] || fail "the quiet scenario made decisions: the test proves nothing"

# Quiet: no report goes, and the host stays fresh (3 x stale_after_ms and more without one).
before=$(reports)
while [ $(($(date +%s) - started)) -lt $((quiet_s - 2)) ]; do
    [ "$(liveness)" = fresh ] || fail "hv1 went $(liveness) between reports: heartbeats did not keep it fresh"
    sleep 0.25
done
after=$(reports)
[ "$after" -eq "$before" ] ||
    fail "$((after - before)) reports while nothing changed (want none before the minute is up): $(grep 'event=report ' "$work/hv1.log" | tail -3)"
quiet_for=$(($(date +%s) - started))
grep -q "event=report why=first" "$work/hv1.log" || fail "the first round was not reported"

# Busy: each decision reaches the coordinator within 2 s, not at the next period.
eventually 20 grep -q " decision=grow" "$work/hv1.log" || fail "busy was never grown"
for _ in 1 2 3; do
    want=$(decisions_logged)
    caught_up() { [ "$(decisions_total)" -ge "$want" ]; }
    eventually 2 caught_up ||
        fail "the coordinator has $(decisions_total) decisions 2 s after the agent logged $want (reports a minute apart)"
    sleep 0.7
done
grep -q "event=report why=decisions" "$work/hv1.log" || fail "no report said why=decisions"
ctl events --since 0 --limit 1000 | grep -w hv1 | grep -qwE "stale|down" &&
    fail "hv1 went stale or down: $(ctl events --since 0 --limit 1000 | grep hv1)"

kill -TERM "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
stop=$(grep "event=stopped" "$work/hv1.log") || fail "the agent did not log its stop"
rounds=$(sed -n 's/.* rounds=\([0-9]*\).*/\1/p' <<<"$stop")
sent=$(sed -n 's/.* reports=\([0-9]*\).*/\1/p' <<<"$stop")
heartbeats=$(sed -n 's/.* heartbeats=\([0-9]*\).*/\1/p' <<<"$stop")
[ -n "$rounds" ] && [ -n "$sent" ] && [ -n "$heartbeats" ] || fail "stop line without counts: $stop"
[ "$sent" -lt "$rounds" ] || fail "want fewer reports than rounds: $stop"
# 500 ms of silence each during the quiet part: at least one a second of it.
[ "$heartbeats" -ge $((quiet_for - 4)) ] || fail "want a heartbeat every 500 ms while quiet (${quiet_for} s): $stop"
echo "PASS: $stop (quiet for ${quiet_for} s)"
