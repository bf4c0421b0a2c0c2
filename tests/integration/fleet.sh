#!/usr/bin/env bash
# fleet.sh - a coordinator and agents on sim hosts over real sockets on loopback, with CURVE and
# a real SQLite store, steered through memschedctl (ctest label `integration`).
#
#   fleet.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR
#
# Checks: admitted agents register and report; an agent whose key is not in the allowlist never
# appears and its handshakes are counted; a policy set with memschedctl reaches every agent and
# is acked; an invalid policy is refused by the coordinator; a policy below an agent's local
# limit is refused by that agent and shows as refused; a restarted coordinator keeps every
# policy and every agent registers again; a restarted agent comes back with its persisted
# policy; a silent agent goes stale, then down, then fresh again; an agent speaking with another
# host's key is refused, by a running and by a fresh coordinator. (Duplicated and reordered
# reports are the fleet core's unit test, test_fleet.)
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4
. "$(dirname "$0")/../lib/daemons.sh"
need_jq
daemons_init fleet

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

port=$(free_port)
fleet_keys host1 host2 host3 host4
ctl keygen rogue --dir "$work/keys" >/dev/null # not allowed
liveness=(stale_after_ms=1500 down_after_ms=4000) # the coordinator's, at every (re)start

host_is() { ctl hosts | grep -E "^$1 +$2\b"; }

start_coordinator "${liveness[@]}"
eventually 10 test -S "$work/control.sock" || fail "coordinator did not open its control socket"
start_agent host1 one_hog.json "labels = rack=r1"
start_agent host2 demand_moves.json "labels = rack=r2" "limit_host_min_unused_mib = 400"
start_agent rogue all_hog.json
start_agent host3 one_hog.json "dry_run = true"
start_agent host4 one_hog.json "state_dir = /proc/memsched-cannot-be-made" # the last one counts

# Registration, and the unknown key kept out.
eventually 20 host_is host1 fresh || fail "host1 never registered"
eventually 20 host_is host2 fresh || fail "host2 never registered"
ctl hosts | grep -q rogue && fail "an agent with an unknown key got in"
eventually 20 grep -q "event=handshakes_refused" "$work/coordinator.log" ||
    fail "refused handshakes were not counted"
rogue_key=$(sed -n 's/^public *= *//p' "$work/keys/rogue.key")
grep -E "event=handshakes_refused peer=127\.0\.0\.1 fingerprint=[0-9a-f:]{19} " "$work/coordinator.log" |
    grep -qF " key=$rogue_key " ||
    fail "a refused handshake was not logged with the peer's address, fingerprint and key"
ctl status >/dev/null || fail "status failed"
ctl vms --host host1 | grep -q hog || fail "host1's VMs are not listed"

# A policy for the fleet reaches both agents and is acked.
ctl policy set --scope fleet --reason "integration test" vm_excess_unused_mib=400 \
    host_min_unused_mib=500 ||
    fail "policy set failed"
eventually 20 grep -q "event=policy source=fleet version=1" "$work/host1.log" ||
    fail "host1 did not apply version 1"
ctl policy history | grep -q " uid:$(id -u)(" || fail "the policy's author is not the caller's uid"
eventually 20 grep -q "event=policy source=fleet version=1" "$work/host2.log" ||
    fail "host2 did not apply version 1"
# policy show --json: host1's and host2's last acks are version 1, applied (parsed, not grepped:
# the word "applied" is also a key of every ack, refused ones included).
acked_v1() {
    # (-n with input: empty output from ctl is an error; jq 1.6 -e alone passes on it)
    ctl --json policy show | jq -en 'input | [.hosts[] | select(.host_id == "host1" or .host_id == "host2")
        | select(.last_ack.version == 1 and .last_ack.applied == true)] | length == 2'
}
eventually 20 acked_v1 || fail "policy show does not show host1's and host2's acks of version 1: $(ctl --json policy show)"
# A dry-run agent takes it but persists nothing; an agent that cannot persist it refuses it.
eventually 20 grep -q "event=policy source=fleet version=1" "$work/host3.log" ||
    fail "host3 (dry run) did not take version 1"
[ ! -e "$work/state-host3/policy.conf" ] || fail "a dry-run agent persisted a policy"
eventually 20 grep -q 'event=policy_refused version=1 scope=fleet why="not persisted' "$work/host4.log" ||
    fail "host4 acked a policy it could not persist"
eventually 20 sh -c "'$ctl_bin' --socket 'ipc://$work/control.sock' policy show | grep host4 | grep -qi refused" ||
    fail "policy show does not show host4's refusal"

# An invalid policy is refused by the coordinator (exit 3), and nothing is stored.
set +e
ctl policy set --scope fleet --reason "bad" vm_min_unused_mib=500 >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "invalid policy: want exit 3, got $rc"

# A policy below host2's local limit is refused by host2, and shows as refused.
ctl policy set --scope host:host2 --reason "too low for host2" host_min_unused_mib=300 ||
    fail "policy set for host2 failed"
eventually 20 grep -q "event=policy_refused version=2" "$work/host2.log" ||
    fail "host2 did not refuse version 2"
eventually 20 sh -c "'$ctl_bin' --socket 'ipc://$work/control.sock' policy show | grep host2 | grep -qi refused" ||
    fail "policy show does not show host2's refusal"

# memschedctl hosts forget: a host that is gone is forgotten at once; an unknown one is exit 4.
kill -TERM "$host3_pid"
wait "$host3_pid" 2>/dev/null || true
ctl hosts forget host3 | grep -q "host3 forgotten" || fail "hosts forget host3 failed"
ctl hosts | grep -q "^host3 " && fail "host3 is still listed after hosts forget"
set +e
ctl hosts forget no-such-host >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 4 ] || fail "hosts forget of an unknown host: want exit 4, got $rc"

# No push can starve a host: with no limits configured, every agent refuses a fleet policy that
# would squeeze every guest in one round, naming the field.
ctl policy set --scope fleet --reason "starve" vm_min_unused_mib=1 vm_grow_target_unused_mib=2 \
    vm_excess_unused_mib=3 max_release_step_mib=1048576 host_min_unused_mib=0 ||
    fail "policy set (starve) failed"
eventually 20 grep -q 'event=policy_refused version=3 scope=fleet why="vm_min_unused_mib=1 below this host.s limit_vm_min_unused_mib=50"' \
    "$work/host1.log" || fail "host1 did not refuse a starving policy"
grep -q "event=policy source=fleet version=3" "$work/host1.log" && fail "host1 applied a starving policy"
ctl policy set --scope fleet --reason "sleep" vm_min_unused_mib=100 vm_grow_target_unused_mib=200 \
    vm_excess_unused_mib=400 max_release_step_mib=64 host_min_unused_mib=500 interval_ms=600000 \
    stale_stats_s=3600 || fail "policy set (sleep) failed"
eventually 20 grep -q 'event=policy_refused version=4 scope=fleet why="interval_ms=600000 above' \
    "$work/host1.log" || fail "host1 did not refuse an hour-long interval"

# Coordinator killed (no chance to clean up) and restarted: no policy lost, every agent
# registers again.
last_seq=$(ctl --json events --limit 1 | tr -d ' \n' | sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p')
log_lines=$(wc -l <"$work/coordinator.log")
kill -KILL "$coordinator_pid"
wait "$coordinator_pid" 2>/dev/null || true
sleep 6 # the agents' queues fill meanwhile (a report every 500 ms): the reconnect flood's cause
start_coordinator "${liveness[@]}"
eventually 20 host_is host1 fresh || fail "host1 did not come back after the coordinator restart"
eventually 20 host_is host2 fresh || fail "host2 did not come back after the coordinator restart"
# Events survive the restart and number on; hosts shows the stored ack (issue 15 items 7, 8:
# host2 refused the fleet's v4 too, layered over its own host policy);
# one join and at most one push per host, however many reports an agent had queued.
ctl events --since 0 --limit 1000 | grep -qE "policy_refused +host4" || fail "events were lost on restart"
ctl hosts | grep -E "^host2 " | grep -q "v4 refused" || fail "hosts does not show host2's stored ack"
sleep 2
for h in host1 host2; do
    joins=$(ctl events --since "$last_seq" --limit 1000 | grep -cE "joined +$h\b" || true)
    [ "$joins" -eq 1 ] || fail "$h joined $joins times after the restart, want 1"
    pushes=$(tail -n +"$((log_lines + 1))" "$work/coordinator.log" | grep -c "host=$h event=policy_push" || true)
    [ "$pushes" -le 1 ] || fail "$h was pushed $pushes times after the restart, want at most 1"
done
ctl policy history | grep -q "integration test" || fail "policy history lost on restart"
# A fresh store epoch: what host1 holds from before the restart is not taken at its word.
grep -q "host=host1 event=policy_epoch_differs held=1" "$work/coordinator.log" ||
    fail "the restarted coordinator took host1's version from the old epoch at its word"

# Agent restart: it comes back with its persisted fleet policy.
grep -q "source = fleet" "$work/state-host1/policy.conf" || fail "host1 did not persist its policy"
kill -TERM "$host1_pid"
wait "$host1_pid" 2>/dev/null || true
: >"$work/host1.log"
start_agent host1 one_hog.json "labels = rack=r1"
eventually 10 grep -q "event=policy source=fleet version=1 from=" "$work/host1.log" ||
    fail "host1 did not start with its persisted policy"

# A silent agent goes stale, then down, then fresh again.
kill -STOP "$host2_pid"
eventually 10 host_is host2 stale || fail "host2 never went stale"
eventually 10 host_is host2 down || fail "host2 never went down"
kill -CONT "$host2_pid"
eventually 15 host_is host2 fresh || fail "host2 never came back"
ctl events | grep host2 | grep -q down || fail "events do not show host2 going down"

# A key is a host: host2's key speaking as host1 while host1 is down, and again on a freshly
# restarted coordinator, is refused and logged, and host1 stays down.
kill -TERM "$host1_pid"
wait "$host1_pid" 2>/dev/null || true
eventually 10 host_is host1 down || fail "host1 never went down"
sed -e "s|^key_file = .*|key_file = $work/keys/host2.secret|" -e "s|^state_dir = .*|state_dir = $work/state-impostor|" \
    "$work/host1.conf" >"$work/impostor.conf"
"$agent_bin" --config "$work/impostor.conf" >>"$work/impostor.log" 2>&1 &
impostor_pid=$!
pids+=("$impostor_pid")
eventually 10 grep -q 'host=host1 event=message_refused why="host id is not its key'"'"'s" key_host=host2' \
    "$work/coordinator.log" || fail "host2's key speaking for host1 was not refused"
sleep 2
host_is host1 down >/dev/null || fail "host2's key brought host1 back"
kill -KILL "$coordinator_pid"
wait "$coordinator_pid" 2>/dev/null || true
: >"$work/coordinator.log"
start_coordinator "${liveness[@]}"
eventually 20 host_is host2 fresh || fail "host2 did not come back after the second restart"
eventually 10 grep -q 'host=host1 event=message_refused' "$work/coordinator.log" ||
    fail "host2's key speaking for host1 was not refused by a fresh coordinator"
ctl hosts | grep -q '^host1 ' && fail "a fresh coordinator took host2's key for host1"
kill -TERM "$impostor_pid"

# The control endpoint over TCP: CURVE, and only the operators' keys in admin_allow_dir.
admin_port=$(free_port)
ctl keygen ops --dir "$work/keys" >/dev/null
ctl keygen viewer --dir "$work/keys" >/dev/null
mkdir -p "$work/admins" "$work/viewers" && cp "$work/keys/ops.key" "$work/admins/"
cp "$work/keys/viewer.key" "$work/viewers/"
"$coordinator_bin" "listen=tcp://127.0.0.1:$(free_port)" "control=tcp://127.0.0.1:$admin_port" \
    "key_file=$work/keys/coordinator.secret" "allow_dir=$work/allow" "admin_allow_dir=$work/admins" \
    "admin_read_dir=$work/viewers" "db=$work/admin.db" >>"$work/coordinator2.log" 2>&1 &
admin_coordinator_pid=$!
pids+=("$!")
admin() { "$ctl_bin" --socket "tcp://127.0.0.1:$admin_port" --server-key "$work/keys/coordinator.key" "$@"; }
eventually 10 admin --key "$work/keys/ops.secret" status || fail "an operator key was not let in over TCP"
set +e
admin --key "$work/keys/rogue.secret" --timeout 2000 status >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a key outside admin_allow_dir got an answer over TCP (exit $rc)"
# The author of a policy is who the transport says asks: the operator key's name over TCP.
admin --key "$work/keys/ops.secret" policy set --scope fleet --reason "by key" vm_excess_unused_mib=400 \
    >/dev/null || fail "policy set over TCP failed"
admin --key "$work/keys/ops.secret" policy history | grep -q " key:ops" ||
    fail "the policy's author is not the operator key's name"
# A read-only operator (admin_read_dir) reads, and may not change anything (exit 6).
eventually 10 admin --key "$work/keys/viewer.secret" status || fail "a read-only key could not read"
set +e
admin --key "$work/keys/viewer.secret" policy set --scope fleet --reason "no" vm_excess_unused_mib=500 \
    >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 6 ] || fail "a read-only key changed a policy (exit $rc, want 6)"
# SIGHUP re-reads the operators' list: a removed key gets no answer, even on its connection.
rm "$work/admins/ops.key"
kill -HUP "$admin_coordinator_pid"
eventually 10 grep -q "event=allowlist_reloaded list=operators" "$work/coordinator2.log" ||
    fail "SIGHUP did not reload the operators' list"
set +e
admin --key "$work/keys/ops.secret" --timeout 2000 status >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a key removed from admin_allow_dir still got an answer (exit $rc)"

echo "fleet: all checks passed"
