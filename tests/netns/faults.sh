#!/usr/bin/env bash
# faults.sh - a fleet across network namespaces under faults (ctest label `netns`, root).
#
#   faults.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR [AGENTS]
#
# A coordinator in one namespace and AGENTS (default 4) agents on sim hosts, each in its own,
# joined by veth pairs to a bridge in a hub namespace on 10.77.0.0/24 (addresses that exist only
# inside these namespaces). Every TCP endpoint is CURVE, as in production. Scenarios, each checked
# from memschedctl --json and the daemons' logs:
#   link cut     a1's link goes down past the coordinator's down_after: a1 goes stale, then down;
#                a1 keeps scheduling on its last policy (decisions logged during the cut, no plan
#                refused by the invariant checker); a policy set during the cut reaches the others
#                at once and a1 after the link returns; a1 is fresh again.
#   coordinator  SIGKILLed and restarted on the same store: every agent is fresh again, the policy
#   killed       and its version survive, and the spread of the agents' rejoins is measured.
#   agent killed a2 SIGKILLed and restarted: it comes back holding the policy it had persisted
#                (its hello says the version; no new push is needed for it).
#   strangers    a client with a key outside the allowlist is refused and logged with its address;
#                raw garbage bytes to the coordinator's port are dropped; neither disturbs the
#                fleet (every host stays fresh, memschedctl answers).
# Measured figures (seconds to recover, the rejoin spread) are printed. Exit 77 without root or
# ip(8), unless CI=true, where that is a failure.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4 n_agents=${5:-4}
. "$(dirname "$0")/../lib/daemons.sh"
. "$(dirname "$0")/lib.sh"
netns_prereq
need_jq
daemons_init netns-faults

tag=$$ # namespace and link names are per run: two runs never collide
ns_coord=msc$tag
coord_ip=10.77.0.1
port=7400
stale_ms=1500 down_ms=4000
trap 'daemons_cleanup; netns_delete_all' EXIT

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }
ns_of() { echo "msa$1-$tag"; }
# (Daemons start with `ip netns exec ... &` itself, never through a function: $! must be the
# daemon's pid, which ip netns exec keeps by exec'ing it.)
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---- the network: a bridge in the hub, one veth pair per namespace ----
netns_hub "msh$tag"
add_ns "$ns_coord"
plug "$ns_coord" "c$tag" "$coord_ip"
for i in $(seq 1 "$n_agents"); do
    add_ns "$(ns_of "$i")"
    plug "$(ns_of "$i")" "a$i-$tag" "10.77.0.$((10 + i))"
done

# ---- the daemons ----
mkdir -p "$work/keys" "$work/allow"
ctl keygen coordinator --dir "$work/keys" >/dev/null
ctl keygen stranger --dir "$work/keys" >/dev/null
for i in $(seq 1 "$n_agents"); do
    ctl keygen "a$i" --dir "$work/keys" >/dev/null
    cp "$work/keys/a$i.key" "$work/allow/"
done

start_coordinator() {
    ip netns exec "$ns_coord" "$coordinator_bin" "listen=tcp://$coord_ip:$port" \
        "control=ipc://$work/control.sock" "key_file=$work/keys/coordinator.secret" \
        "allow_dir=$work/allow" "db=$work/fleet.db" stale_after_ms=$stale_ms \
        down_after_ms=$down_ms >>"$work/coordinator.log" 2>&1 &
    coordinator_pid=$!
    pids+=("$coordinator_pid")
}

# start_agent I [KEYFILE]: agent aI in its namespace on a sim host.
start_agent() {
    local i=$1 key=${2:-a$1}
    {
        echo "uri = sim:$scenarios/walkthrough.json"
        echo "coordinator = tcp://$coord_ip:$port"
        echo "coordinator_key = $work/keys/coordinator.key"
        echo "key_file = $work/keys/$key.secret"
        echo "host_id = a$i"
        echo "state_dir = $work/state-a$i"
        echo "interval_ms = 500"
    } >"$work/a$i.conf"
    ip netns exec "$(ns_of "$i")" "$agent_bin" --config "$work/a$i.conf" >>"$work/a$i.log" 2>&1 &
    eval "agent_pid_$i=$!"
    pids+=("$!")
}

hosts_json() { ctl --json hosts; }
liveness_of() { hosts_json | jq -r --arg h "$1" '.hosts[] | select(.host_id == $h) | .liveness'; }
is_live() { [ "$(liveness_of "$1")" = "$2" ]; }
all_fresh() {
    ctl --json status | jq -en --argjson n "$n_agents" 'input | .status.hosts.fresh == $n'
}
acked() { # HOST VERSION: its last ack is VERSION, applied
    hosts_json | jq -en --arg h "$1" --argjson v "$2" \
        'input | any(.hosts[]; .host_id == $h and .last_ack.version == $v and .last_ack.applied)'
}
policy_version() { ctl --json policy show --host a2 | jq -r '.host.version'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

start_coordinator
eventually 10 test -S "$work/control.sock" || fail "the coordinator did not open its control socket"
for i in $(seq 1 "$n_agents"); do start_agent "$i"; done
t0=$(now)
eventually 30 all_fresh || fail "not every agent joined across the namespaces: $(ctl hosts)"
echo "ok   $n_agents agents joined across namespaces in $(since "$t0") s"

# ---- link cut ----
ip -n "$(ns_of 1)" link set v0 down
t_cut=$(now)
eventually 10 is_live a1 stale || fail "a1 did not go stale with its link down"
eventually 15 is_live a1 down || fail "a1 did not go down with its link down"
echo "ok   link cut: a1 stale, then down after $(since "$t_cut") s"
ctl policy set --scope fleet --reason "set during the cut" vm_grow_target_unused_mib=260 >/dev/null ||
    fail "policy set during the cut failed"
v_cut=$(policy_version)
for i in $(seq 2 "$n_agents"); do
    eventually 10 acked "a$i" "$v_cut" || fail "a$i did not apply v$v_cut during a1's cut"
done
cut_decisions=$(awk -v since="$(date -u -d "@${t_cut%.*}" +%Y-%m-%dT%H:%M:%S)" \
    '$1 >= since && /decision=(grow|shrink)/' "$work/a1.log" | wc -l)
ip -n "$(ns_of 1)" link set v0 up
t_up=$(now)
eventually 20 is_live a1 fresh || fail "a1 did not come back after its link returned"
fresh_s=$(since "$t_up")
eventually 20 acked a1 "$v_cut" || fail "the policy set during the cut (v$v_cut) never reached a1"
echo "ok   link back: a1 fresh after $fresh_s s, v$v_cut applied after $(since "$t_up") s; it made $cut_decisions decisions during the cut"
[ "$cut_decisions" -gt 0 ] || fail "a1 made no decision while cut off: it must keep scheduling"
grep -q "event=plan_refused" "$work/a1.log" && fail "a1's invariant checker refused a plan"

# ---- coordinator killed ----
kill -KILL "$coordinator_pid"
wait "$coordinator_pid" 2>/dev/null || true
rm -f "$work/control.sock"
sleep 1
start_coordinator
t_restart=$(now)
eventually 10 test -S "$work/control.sock" || fail "the restarted coordinator did not open its control socket"
eventually 30 all_fresh || fail "not every agent came back to the restarted coordinator: $(ctl hosts)"
echo "ok   coordinator SIGKILLed and restarted: all $n_agents fresh after $(since "$t_restart") s"
[ "$(policy_version)" = "$v_cut" ] || fail "the restarted coordinator lost the policy: v$(policy_version), want v$v_cut"
for i in $(seq 1 "$n_agents"); do
    eventually 10 acked "a$i" "$v_cut" || fail "a$i does not show v$v_cut applied after the restart"
done
# The spread of the rejoins after the restart (libzmq reconnects with jitter).
spread=$(awk -v since="$(date -u -d "@${t_restart%.*}" +%Y-%m-%dT%H:%M:%S)" \
    '$1 >= since && /event=(re)?joined/ { t = substr($1, 12, 12); split(t, p, ":"); s = p[1] * 3600 + p[2] * 60 + p[3]
        if (n == 0 || s < lo) lo = s; if (n == 0 || s > hi) hi = s; n++ }
     END { if (n) printf "%d rejoins over %.2f s", n, hi - lo; else print "none logged" }' "$work/coordinator.log")
echo "ok   rejoin spread after the restart: $spread"

# ---- agent killed ----
eval "kill -KILL \$agent_pid_2"
sleep 0.5
start_agent 2
t_agent=$(now)
eventually 20 is_live a2 fresh || fail "a2 did not come back after SIGKILL"
held=$(hosts_json | jq -r '.hosts[] | select(.host_id == "a2") | .policy_version')
[ "$held" = "$v_cut" ] || fail "a2 came back holding v$held, want the v$v_cut it had persisted"
echo "ok   agent SIGKILLed and restarted: a2 fresh after $(since "$t_agent") s, holding v$held from its state"

# ---- strangers ----
# A real agent with a key outside the allowlist, from a1's namespace.
{
    echo "uri = sim:$scenarios/walkthrough.json"
    echo "coordinator = tcp://$coord_ip:$port"
    echo "coordinator_key = $work/keys/coordinator.key"
    echo "key_file = $work/keys/stranger.secret"
    echo "host_id = stranger"
    echo "state_dir = $work/state-stranger"
} >"$work/stranger.conf"
ip netns exec "$(ns_of 1)" "$agent_bin" --config "$work/stranger.conf" >>"$work/stranger.log" 2>&1 &
pids+=("$!")
# Garbage on the wire from a2's namespace: random bytes, then a ZMTP-looking greeting.
for _ in 1 2 3; do
    in_ns "$(ns_of 2)" bash -c "exec 3<>/dev/tcp/$coord_ip/$port && head -c 4096 /dev/urandom >&3 && sleep 0.2" \
        2>/dev/null || true
    in_ns "$(ns_of 2)" bash -c "exec 3<>/dev/tcp/$coord_ip/$port && printf '\xff\0\0\0\0\0\0\0\x01\x7f\x03\x00NULL' >&3 && head -c 512 /dev/zero >&3 && sleep 0.2" \
        2>/dev/null || true
done
eventually 20 grep -q "event=handshakes_refused peer=10.77.0.11 " "$work/coordinator.log" ||
    fail "the stranger's refused handshakes were not logged with its address"
hosts_json | jq -e '.hosts | all(.host_id != "stranger")' >/dev/null || fail "the stranger got in"
kill -0 "$coordinator_pid" || fail "the coordinator died of the garbage"
eventually 10 all_fresh || fail "strangers disturbed the fleet: $(ctl hosts)"
ctl status >/dev/null || fail "memschedctl got no answer after the strangers"
echo "ok   strangers: refused and logged (peer 10.77.0.11), garbage dropped, every host fresh"

for i in $(seq 1 "$n_agents"); do
    grep -q "event=plan_refused" "$work/a$i.log" && fail "a$i's invariant checker refused a plan"
done
echo "faults.sh: all scenarios passed with $n_agents agents"
