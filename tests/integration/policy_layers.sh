#!/usr/bin/env bash
# policy_layers.sh - policies layer on real agents: a coordinator and two sim agents over CURVE
# on loopback, a real SQLite store, steered through memschedctl (ctest label `integration`).
#
#   policy_layers.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR
#
# Checks (issue 15 item 1): a label policy and a host policy each set one key, and the host's
# agent applies both (its persisted policy holds both values); a later fleet change of a third
# key reaches both agents, under the label and the host policy; policy show --host names the
# scope and version of each value; unset and rollback reach the agent; `--wait` returns 0 once
# every host in scope acked, and `--wait --timeout` exits 7 naming a host that is down.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4
. "$(dirname "$0")/../lib/daemons.sh"
need_jq
daemons_init policy-layers

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

port=$(free_port)
fleet_keys hv1 hv2
start_coordinator stale_after_ms=1500 down_after_ms=3000

# The value the agent persisted for key: what it applied.
held() { sed -n "s/^$2 = //p" "$work/state-$1/policy.conf" 2>/dev/null; }
host_is() { ctl hosts | grep -E "^$1 +$2\b"; }

eventually 10 test -S "$work/control.sock" || fail "coordinator did not open its control socket"
start_agent hv1 walkthrough.json "labels = role=gpu"
start_agent hv2 walkthrough.json "labels = role=gpu"
eventually 20 host_is hv1 fresh || fail "hv1 never registered"
eventually 20 host_is hv2 fresh || fail "hv2 never registered"

# A label policy, then a host policy for hv1: hv1 gets both keys.
ctl policy set --scope label:role=gpu --reason "room" vm_grow_target_unused_mib=250 \
    --wait --timeout 20 >"$work/set1.out" || fail "label policy --wait failed: $(cat "$work/set1.out")"
ctl policy set --scope host:hv1 --reason "faster" max_release_step_mib=128 --wait --timeout 20 \
    >"$work/set2.out" || fail "host policy --wait failed: $(cat "$work/set2.out")"
grep -q "^  hv1: max_release_step_mib 64 -> 128$" "$work/set2.out" ||
    fail "policy set did not print hv1's one change: $(cat "$work/set2.out")"
grep -q "^1 host will change (1 connected); 1 in scope$" "$work/set2.out" ||
    fail "policy set did not count the hosts that change: $(cat "$work/set2.out")"
[ "$(held hv1 max_release_step_mib)" = 128 ] || fail "hv1 did not apply its host policy"
[ "$(held hv1 vm_grow_target_unused_mib)" = 250 ] || fail "hv1 lost the label's value"
[ "$(held hv2 max_release_step_mib)" = 64 ] || fail "hv2 got hv1's host policy"
[ "$(held hv2 vm_grow_target_unused_mib)" = 250 ] || fail "hv2 did not apply the label policy"

# A fleet change of a third key reaches both, under their label and host policies.
ctl policy set --scope fleet --reason "floors" vm_floor_mib=300 --wait --timeout 20 \
    >"$work/set3.out" || fail "fleet policy --wait failed: $(cat "$work/set3.out")"
grep -q "^2 hosts will change (2 connected); 2 in scope$" "$work/set3.out" ||
    fail "fleet set: want 2 hosts changing: $(cat "$work/set3.out")"
for h in hv1 hv2; do
    [ "$(held $h vm_floor_mib)" = 300 ] || fail "$h did not get the fleet's change"
    [ "$(held $h vm_grow_target_unused_mib)" = 250 ] || fail "$h lost the label's value"
    grep -q "event=policy source=fleet version=3" "$work/$h.log" || fail "$h did not log v3"
done
[ "$(held hv1 max_release_step_mib)" = 128 ] || fail "hv1 lost its host policy to the fleet's change"
ctl --json policy show --host hv1 | jq -e '.host.version == 3 and
    ([.host.sources[] | select(.key == "max_release_step_kib")][0] | .scope == "host:hv1" and .version == 2) and
    ([.host.sources[] | select(.key == "vm_grow_target_unused_kib")][0] | .scope == "label:role=gpu" and .version == 1) and
    ([.host.sources[] | select(.key == "vm_floor_kib")][0] | .scope == "fleet" and .version == 3)' >/dev/null ||
    fail "policy show --host hv1 does not name each value's scope: $(ctl --json policy show --host hv1)"

# unset and rollback are versions too, pushed and applied.
ctl policy unset --scope host:hv1 --reason "back" max_release_step_mib --wait --timeout 20 >/dev/null ||
    fail "policy unset --wait failed"
[ "$(held hv1 max_release_step_mib)" = 64 ] || fail "hv1 did not apply the unset"
ctl policy rollback --scope host:hv1 --to v2 --reason "again" --wait --timeout 20 >/dev/null ||
    fail "policy rollback --wait failed"
[ "$(held hv1 max_release_step_mib)" = 128 ] || fail "hv1 did not apply the rollback"
[ "$(held hv1 vm_floor_mib)" = 300 ] || fail "the rollback of hv1's scope undid the fleet's value"

# A host that is down cannot ack: --wait --timeout fails (7) and names it; hv1 acked.
kill -TERM "$hv2_pid"
wait "$hv2_pid" 2>/dev/null || true
eventually 20 host_is hv2 down || fail "hv2 did not go down"
set +e
ctl policy set --scope label:role=gpu --reason "more" vm_excess_unused_mib=400 --wait --timeout 3 \
    >"$work/set4.out" 2>"$work/set4.err"
rc=$?
set -e
[ "$rc" -eq 7 ] || fail "--wait with hv2 down: want exit 7, got $rc: $(cat "$work/set4.out" "$work/set4.err")"
grep -q "not every host in label:role=gpu acked within 3 s" "$work/set4.err" ||
    fail "--wait did not say it timed out: $(cat "$work/set4.err")"
grep -q "^hv2: no ack of v6 yet (holds v3, down)$" "$work/set4.err" ||
    fail "--wait did not name hv2: $(cat "$work/set4.err")"
grep -q "^hv1:" "$work/set4.err" && fail "--wait named hv1, which acked: $(cat "$work/set4.err")"
[ "$(held hv1 vm_excess_unused_mib)" = 400 ] || fail "hv1 did not apply v6"
echo "policy_layers: ok"
