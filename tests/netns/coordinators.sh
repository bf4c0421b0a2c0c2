#!/usr/bin/env bash
# coordinators.sh - agents that list two coordinators, across network namespaces (ctest label
# `netns`, root).
#
#   coordinators.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR [AGENTS]
#
# Two coordinators (c1, c2), each in its own namespace with its own SQLite store, the same
# server key and allowlist (an HA pair without a shared store); AGENTS (default 2) agents on sim
# hosts, each in its own namespace, with `coordinator = c1,c2`. All on 10.78.0.0/24 behind a
# bridge in a hub namespace, CURVE on every endpoint. What "converge" means here: two stores
# number their policies on their own, so the operator sets a policy on each (what an Ansible
# run over the pair does); then every agent holds those values, each coordinator shows every
# agent holding *its own* version applied, and neither pushes again (an agent that told each
# coordinator the other's number was pushed by each in turn, every 5 s, for ever). Checks:
#   both      both coordinators have every agent fresh; a policy set on both, at different
#             versions (c1 has an older one first), is held by every agent (its state file)
#             and shown applied at its own version by each; then no push for 6 s (longer than
#             the coordinator's push retry).
#   c1 dies   SIGKILL: c2 keeps every agent fresh, with new decisions, past down_after; a
#             policy set on c2 alone reaches every agent and is acked to c2.
#   c1 back   restarted on its store, and the operator sets the same policy there: both again
#             show every agent at their own version, every agent holds the values, no push.
# Seconds to converge are printed. Exit 77 without root or ip(8), unless CI=true.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4 n_agents=${5:-2}
. "$(dirname "$0")/../lib/daemons.sh"
. "$(dirname "$0")/lib.sh"
netns_prereq
need_jq
daemons_init netns-coordinators

tag=$$ # namespace and link names are per run: two runs never collide
port=7400
trap 'daemons_cleanup; netns_delete_all' EXIT
ns_of() { echo "mf2$1-$tag"; } # c1, c2, a1, a2, ...
ip_of() { case $1 in c*) echo "10.78.0.${1#c}" ;; a*) echo "10.78.0.$((10 + ${1#a}))" ;; esac; }
ctl() { local c=$1; shift; "$ctl_bin" --socket "ipc://$work/$c.sock" "$@"; }

# ---- the network: a bridge in the hub, one veth pair per namespace ----
netns_hub "mf2h$tag"
agents=$(seq -f "a%g" 1 "$n_agents")
for name in c1 c2 $agents; do
    add_ns "$(ns_of "$name")"
    plug "$(ns_of "$name")" "f$name-$tag" "$(ip_of "$name")"
done

# ---- the daemons ----
mkdir -p "$work/keys" "$work/allow"
ctl c1 keygen coordinator --dir "$work/keys" >/dev/null
for a in $agents; do
    ctl c1 keygen "$a" --dir "$work/keys" >/dev/null
    cp "$work/keys/$a.key" "$work/allow/"
done
start_coordinator() {
    local c=$1
    rm -f "$work/$c.sock"
    ip netns exec "$(ns_of "$c")" "$coordinator_bin" "listen=tcp://$(ip_of "$c"):$port" \
        "control=ipc://$work/$c.sock" "key_file=$work/keys/coordinator.secret" \
        "allow_dir=$work/allow" "db=$work/$c.db" stale_after_ms=1500 down_after_ms=4000 \
        >>"$work/$c.log" 2>&1 &
    eval "${c}_pid=$!"
    pids+=("$!")
    eventually 10 test -S "$work/$c.sock" || fail "$c did not open its control socket"
}
start_coordinator c1
start_coordinator c2
for a in $agents; do
    {
        echo "uri = sim:$scenarios/walkthrough.json"
        echo "coordinator = tcp://$(ip_of c1):$port,tcp://$(ip_of c2):$port"
        echo "coordinator_key = $work/keys/coordinator.key"
        echo "key_file = $work/keys/$a.secret"
        echo "host_id = $a"
        echo "state_dir = $work/state-$a"
        echo "interval_ms = 500"
    } >"$work/$a.conf"
    ip netns exec "$(ns_of "$a")" "$agent_bin" --config "$work/$a.conf" >>"$work/$a.log" 2>&1 &
    pids+=("$!")
done

all_fresh() { # C: every agent fresh at C
    ctl "$1" --json status | jq -en --argjson n "$n_agents" 'input | .status.hosts.fresh == $n'
}
# at_version C V: every agent's last ack at C is V, applied, and the version it holds (as it
# tells C) is V.
at_version() {
    ctl "$1" --json hosts | jq -en --argjson v "$2" --argjson n "$n_agents" \
        'input | [.hosts[] | select(.last_ack.version == $v and .last_ack.applied and .policy_version == $v)] | length == $n'
}
version_of() { ctl "$1" --json policy show --host a1 | jq -r '.host.version'; }
# holding MIB: every agent's state file holds vm_grow_target_unused_mib = MIB.
holding() {
    local a
    for a in $agents; do
        grep -qx "vm_grow_target_unused_mib = $1" "$work/state-$a/policy.conf" || return 1
    done
}
pushes() { grep -c "event=policy_push" "$work/$1.log" || true; }
set_policy() { # C MIB
    ctl "$1" policy set --scope fleet --reason "on $1" "vm_grow_target_unused_mib=$2" >/dev/null ||
        fail "policy set on $1 failed"
}
# converged C1 V1 C2 V2 MIB: both show every agent at their own version; every agent holds MIB;
# then neither pushes for 6 s.
converged() {
    local c1=$1 v1=$2 c2=$3 v2=$4 mib=$5 p1 p2
    eventually 20 at_version "$c1" "$v1" || fail "$c1 does not show every agent at its v$v1: $(ctl "$c1" hosts)"
    eventually 20 at_version "$c2" "$v2" || fail "$c2 does not show every agent at its v$v2: $(ctl "$c2" hosts)"
    eventually 10 holding "$mib" || fail "not every agent holds vm_grow_target_unused_mib = $mib"
    p1=$(pushes "$c1") p2=$(pushes "$c2")
    sleep 6
    at_version "$c1" "$v1" >/dev/null || fail "$c1 no longer shows every agent at v$v1: $(ctl "$c1" hosts)"
    at_version "$c2" "$v2" >/dev/null || fail "$c2 no longer shows every agent at v$v2: $(ctl "$c2" hosts)"
    holding "$mib" || fail "an agent no longer holds vm_grow_target_unused_mib = $mib"
    if [ "$(pushes "$c1")" != "$p1" ] || [ "$(pushes "$c2")" != "$p2" ]; then
        fail "the coordinators keep pushing: $c1 $p1 -> $(pushes "$c1"), $c2 $p2 -> $(pushes "$c2")"
    fi
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

eventually 30 all_fresh c1 || fail "not every agent joined c1: $(ctl c1 hosts)"
eventually 30 all_fresh c2 || fail "not every agent joined c2: $(ctl c2 hosts)"
echo "ok   $n_agents agents fresh at both coordinators"

# ---- both: the same policy set on each, at different versions ----
set_policy c1 250
set_policy c1 260
set_policy c2 260
t0=$(now)
converged c1 "$(version_of c1)" c2 "$(version_of c2)" 260
echo "ok   both: every agent holds 260 MiB, c1 shows v$(version_of c1) and c2 v$(version_of c2) applied (after $(since "$t0") s with the 6 s watch); no push since"

# ---- c1 dies ----
# shellcheck disable=SC2154 # c1_pid: start_coordinator
kill -KILL "$c1_pid"
wait "$c1_pid" 2>/dev/null || true
decisions() { ctl c2 --json hosts | jq '[.hosts[].decisions_total] | add'; }
d0=$(decisions)
for i in $(seq 1 10); do
    sleep 0.5
    all_fresh c2 >/dev/null || fail "an agent went stale at c2 ${i}x0.5 s after c1 died: $(ctl c2 hosts)"
done
d1=$(decisions)
[ "$d1" -gt "$d0" ] || fail "c2 got no new decisions after c1 died ($d0 -> $d1)"
set_policy c2 270
t0=$(now)
eventually 20 at_version c2 "$(version_of c2)" || fail "the policy set on c2 alone did not reach every agent: $(ctl c2 hosts)"
eventually 10 holding 270 || fail "not every agent holds the policy set on c2 alone"
echo "ok   c1 died: c2 kept every agent fresh for 5 s (decisions $d0 -> $d1); v$(version_of c2) set on c2 alone applied by all after $(since "$t0") s"

# ---- c1 back ----
start_coordinator c1
set_policy c1 270
t0=$(now)
eventually 30 all_fresh c1 || fail "not every agent came back to c1: $(ctl c1 hosts)"
converged c1 "$(version_of c1)" c2 "$(version_of c2)" 270
echo "ok   c1 back: the same policy set there; every agent holds 270 MiB, c1 shows v$(version_of c1) and c2 v$(version_of c2) applied (after $(since "$t0") s with the 6 s watch); no push since"

for a in $agents; do
    grep -q "event=plan_refused" "$work/$a.log" && fail "$a's invariant checker refused a plan"
    n_err=$(grep -c '^[^ ]* err ' "$work/$a.log" || true)
    [ "$n_err" -le 3 ] || fail "$a logged $n_err errors"
done
echo "coordinators.sh: all scenarios passed with $n_agents agents and two coordinators"
