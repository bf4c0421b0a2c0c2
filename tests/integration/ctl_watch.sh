#!/usr/bin/env bash
# ctl_watch.sh - memschedctl's live views against a real coordinator and sim agents (ctest label
# `integration`):
#   - `events --follow` prints the newest events, then each new one as it happens (a policy set
#     while it runs shows up as both agents' policy_applied), and nothing twice;
#   - `events --follow --json` prints batches the JSON way;
#   - `top --once` draws one frame: status, hosts (down first) and VMs by least unused;
#   - a coordinator that goes away ends --follow with memschedctl's no-answer exit code (1).
#
#   ctl_watch.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4
. "$(dirname "$0")/../lib/daemons.sh"
need_jq
daemons_init ctl-watch

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

port=$(free_port)
fleet_keys hv1 hv2
start_coordinator
eventually 10 test -S "$work/control.sock" || fail "the coordinator did not open its control socket"
for h in hv1 hv2; do
    {
        echo "coordinator = tcp://127.0.0.1:$port"
        echo "coordinator_key = $work/keys/coordinator.key"
        echo "key_file = $work/keys/$h.secret"
        echo "host_id = $h"
        echo "state_dir = $work/state-$h"
    } >"$work/$h.conf"
    "$agent_bin" --uri "sim:$scenarios/walkthrough.json" -c "$work/$h.conf" >>"$work/$h.log" 2>&1 &
    pids+=("$!")
done
both_fresh() { ctl --json status | jq -en 'input | .status.hosts.fresh == 2'; }
eventually 20 both_fresh || fail "the two agents did not join"

# --follow: the joins first, then what happens while it runs.
ctl events --follow >"$work/follow.txt" 2>"$work/follow.err" &
follow_pid=$!
pids+=("$follow_pid")
ctl --json events --follow >"$work/follow.json" 2>>"$work/follow.err" &
pids+=("$!")
sleep 1.5
ctl policy set --scope fleet --reason "follow me" vm_grow_target_unused_mib=250 >/dev/null ||
    fail "policy set failed"
acked() { [ "$(grep -c ' policy_applied ' "$work/follow.txt")" -ge 2 ]; }
eventually 15 acked || fail "--follow did not show both hosts applying the policy: $(cat "$work/follow.txt")"
grep -q "joined" "$work/follow.txt" || fail "--follow did not start with the newest events"
[ "$(grep -c '^SEQ' "$work/follow.txt")" -eq 1 ] || fail "--follow printed its header more than once"
dups=$(awk '$1 ~ /^[0-9]+$/ { n[$1]++ } END { for (s in n) if (n[s] > 1) print s }' "$work/follow.txt")
[ -z "$dups" ] || fail "--follow printed events twice: $dups"
# Every event up to the newest, in order, with no gap.
last=$(ctl --json events | jq -r '.last_seq')
seqs=$(awk '$1 ~ /^[0-9]+$/ { print $1 }' "$work/follow.txt" | tr '\n' ' ')
first=$(awk '$1 ~ /^[0-9]+$/ { print $1; exit }' "$work/follow.txt")
[ "$seqs" = "$(seq -s ' ' "$first" "$last") " ] ||
    fail "--follow printed '$seqs', want every event from $first to $last"
jq -e -s '[.[].events[] | select(.kind == "policy_applied")] | length == 2' "$work/follow.json" \
    >/dev/null || fail "--follow --json did not show both acks once: $(head -c 600 "$work/follow.json")"

# top --once: one frame, no terminal control codes.
ctl top --once >"$work/top.txt" || fail "top --once failed"
grep -q "^memschedctl top - .* UTC - every 2.0 s - VMs by unused" "$work/top.txt" || fail "top: no title"
grep -q "^hosts .*2: 2 fresh" "$work/top.txt" || fail "top: no status: $(cat "$work/top.txt")"
grep -q "^HOST .*LIVENESS" "$work/top.txt" || fail "top: no hosts table"
grep -q "^hv1 .*hog\|^hv2 .*hog" "$work/top.txt" || fail "top: no VM rows"
grep -q $'\033' "$work/top.txt" && fail "top --once wrote terminal control codes"
ctl top --once --sort name --limit 3 >"$work/top3.txt" || fail "top --once --sort name failed"
[ "$(grep -c '^hv[12] ' "$work/top3.txt")" -eq 5 ] || # 2 host rows + 3 VM rows
    fail "top --limit 3: $(cat "$work/top3.txt")"
if ctl top --bogus 2>"$work/top.err"; then fail "top took an unknown option"; fi
grep -q "top takes --sort" "$work/top.err" || fail "top's usage error: $(cat "$work/top.err")"

# The coordinator goes away: --follow ends with memschedctl's no-answer code.
kill "$coordinator_pid"
set +e
wait "$follow_pid"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "--follow exited $rc after the coordinator stopped, want 1"
echo "ctl_watch: --follow printed $(awk '$1 ~ /^[0-9]+$/' "$work/follow.txt" | wc -l) events once each, top drew its frame"
