#!/usr/bin/env bash
# agent_cli.sh AGENT SCENARIO_DIR - memsched-agent as an operator runs it: --check-config,
# --print-config, --dry-run, SIGHUP reload (a bad file keeps the old config and says why; a good
# one takes effect), SIGTERM within a round, the policy persisted in the state dir, and a
# persisted fleet policy over this host's limits refused at start and after a SIGHUP.
set -euo pipefail
agent=$1 scenarios=$2
work=$(mktemp -d /tmp/memsched-agent-cli-XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/agent.log" ] && tail -n 20 "$work/agent.log" >&2; exit 1; }
eventually() {
    local seconds=$1; shift
    for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}

# --check-config names the file, the line and the key; exit 1.
printf 'uri = sim:%s/one_hog.json\nvm_min_unused_mib = 100\nbogus = 1\n' "$scenarios" >"$work/bad.conf"
set +e
out=$("$agent" --config "$work/bad.conf" --check-config 2>&1)
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "--check-config on a bad file: want exit 1, got $rc"
grep -q "bad.conf:3: unknown key 'bogus'" <<<"$out" || fail "--check-config said: $out"

printf 'uri = sim:%s/one_hog.json?speed=20\ninterval_ms = 200\n' "$scenarios" >"$work/good.conf"
"$agent" --config "$work/good.conf" --check-config | grep -q ok || fail "--check-config on a good file"
"$agent" --config "$work/good.conf" --print-config | grep -q "^interval_ms = 200$" ||
    fail "--print-config does not show the file's value"

# --dry-run plans and logs but sets nothing, and writes no state: every decision line says
# dry_run=yes, and no balloon moved in any recorded round.
"$agent" --config "$work/good.conf" --dry-run --rounds 8 --state-dir "$work/dry" \
    --record "$work/dry.csv" 2>"$work/dry.log" || fail "dry run failed"
n_dec=$(grep -c " decision=" "$work/dry.log" || true)
n_dry=$(grep " decision=" "$work/dry.log" | grep -c " dry_run=yes$" || true)
[ "$n_dec" -ge 1 ] && [ "$n_dec" -eq "$n_dry" ] ||
    fail "dry run: $n_dec decisions, $n_dry of them marked dry_run=yes"
moved=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    { a = $c["actual_kib"]; v = $c["vm"]; if ((v in first) && first[v] != a) m++; first[v] = a }
    END { print m + 0 }' "$work/dry.csv")
[ "$moved" -eq 0 ] || fail "dry run: balloons moved in $moved recorded rounds"
[ ! -e "$work/dry/policy.conf" ] && [ ! -e "$work/dry/targets" ] || fail "dry run wrote state"

# A persisted fleet policy that crosses this host's limits (the defaults here) is not used at
# start: the agent says why and falls back to its config's policy.
mkdir -p "$work/limits"
printf 'source = fleet\nversion = 9\nvm_min_unused_mib = 1\nvm_grow_target_unused_mib = 2\n%s\n' \
    'vm_excess_unused_mib = 3' >"$work/limits/policy.conf"
"$agent" --config "$work/good.conf" --once --state-dir "$work/limits" 2>"$work/limits.log" ||
    fail "agent with a persisted policy over its limits failed"
grep -q 'event=state_ignored fallback=config why="vm_min_unused_mib=1 below this host.s limit_vm_min_unused_mib=50"' \
    "$work/limits.log" || fail "a persisted policy over the limits was not refused at start"
grep -q "event=policy source=config" "$work/limits.log" || fail "no fallback to the config policy"
grep -q "^source = config$" "$work/limits/policy.conf" || fail "the refused policy stayed on disk"

# ... nor after a SIGHUP that tightens the limits under a persisted fleet policy.
printf 'source = fleet\nversion = 9\nhost_min_unused_mib = 200\n' >"$work/limits/policy.conf"
"$agent" --config "$work/good.conf" --state-dir "$work/limits" 2>"$work/limits.log" &
pid=$!
eventually 10 grep -q "event=policy source=fleet version=9 from=" "$work/limits.log" ||
    fail "a persisted policy within the limits was not used"
cp "$work/good.conf" "$work/tight.conf"
echo "limit_host_min_unused_mib = 300" >>"$work/good.conf"
kill -HUP "$pid"
eventually 10 grep -q 'event=policy_dropped source=fleet version=9 fallback=config why="host_min_unused_mib=200 below' \
    "$work/limits.log" || fail "SIGHUP with tighter limits kept the fleet policy"
eventually 5 grep -q "^source = config$" "$work/limits/policy.conf" || fail "fallback not persisted"
kill -TERM "$pid"
wait "$pid" || true
pid=""
cp "$work/tight.conf" "$work/good.conf"

# A running agent: state persisted; SIGHUP with a bad file keeps the old config; a good one
# takes effect; SIGTERM stops it.
"$agent" --config "$work/good.conf" --state-dir "$work/state" 2>"$work/agent.log" &
pid=$!
eventually 10 grep -q "decision=" "$work/agent.log" || fail "no decisions"
grep -q "^interval_ms = 200$" "$work/state/policy.conf" || fail "policy not persisted"
cp "$work/good.conf" "$work/keep.conf"
printf 'uri = sim:%s/one_hog.json?speed=20\nvm_min_unused_mib = 900\n' "$scenarios" >"$work/good.conf"
kill -HUP "$pid"
eventually 10 grep -q "event=reload_failed keeping=old" "$work/agent.log" || fail "bad reload not refused"
grep -q "vm_min_unused_mib=900 must be below" "$work/agent.log" || fail "bad reload did not say why"
kill -0 "$pid" || fail "the agent died on a bad reload"
printf 'uri = sim:%s/one_hog.json?speed=20\ninterval_ms = 200\nvm_excess_unused_mib = 500\n' \
    "$scenarios" >"$work/good.conf"
kill -HUP "$pid"
eventually 10 grep -q "event=policy source=config reloaded=yes" "$work/agent.log" ||
    fail "good reload not applied"
eventually 5 grep -q "^vm_excess_unused_mib = 500$" "$work/state/policy.conf" ||
    fail "reloaded policy not persisted"
# SIGHUP can turn a dry run on and off: decisions after it say so.
# reload_dry_run true|false: reload with that dry_run; the reload is logged, and the decisions
# made after it are all dry (true) or include one that is not (false).
reload_dry_run() {
    local yes=no
    [ "$1" = true ] && yes=yes
    printf 'uri = sim:%s/one_hog.json?speed=20\ninterval_ms = 200\nvm_excess_unused_mib = 500\ndry_run = %s\n' \
        "$scenarios" "$1" >"$work/good.conf"
    kill -HUP "$pid"
    eventually 10 grep -q "event=reload dry_run=$yes" "$work/agent.log" ||
        fail "reload to dry_run=$1 not logged"
    mark=$(wc -l <"$work/agent.log")
    if [ "$1" = true ]; then
        eventually 10 eval 'tail -n +$((mark + 1)) "$work/agent.log" | grep -q " decision=.* dry_run=yes$"' ||
            fail "no dry decision after the reload to dry run"
    else
        eventually 10 eval 'tail -n +$((mark + 1)) "$work/agent.log" | grep " decision=" | grep -qv "dry_run=yes"' ||
            fail "decisions still dry after the reload out of dry run"
    fi
}
reload_dry_run true
reload_dry_run false
start=$(date +%s%N)
kill -TERM "$pid"
wait "$pid" || fail "SIGTERM: non-zero exit"
pid=""
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
# Within a round, generously bounded: this checks that SIGTERM is acted on, not speed.
[ "$elapsed_ms" -lt 5000 ] || fail "SIGTERM took ${elapsed_ms} ms (interval 200 ms)"
echo "agent_cli: all checks passed"
