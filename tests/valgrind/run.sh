#!/usr/bin/env bash
# run.sh - the agent and the coordinator under valgrind: no leak, no memory error (ctest label
# `valgrind`).
#
#   run.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR
#
# 1. The agent alone on a sim host (mixed50.json at 20x speed, 30 rounds, the per-VM table on):
#    valgrind's exit code says it all (--error-exitcode, leaks counted as errors).
# 2. tests/integration/fleet.sh with the coordinators it starts under valgrind, then
#    tests/integration/coordinators.sh with its agent (two coordinator links, one SIGKILLed)
#    under valgrind. Each daemon run writes its own report, which must be empty: no error,
#    nothing definitely or indirectly lost at exit (SIGTERM).
# "Still reachable" is not a leak here (libzmq, libsystemd and glibc keep some at exit).
# Takes about two minutes on two cores. Exit 77 without valgrind, unless CI=true.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v valgrind >/dev/null; then
    [ "${CI:-}" = "true" ] && { echo "FAIL: no valgrind (deploy/install-deps.sh --test installs it)"; exit 1; }
    echo "SKIP: no valgrind (deploy/install-deps.sh --test installs it)"
    exit 77
fi
work=$(mktemp -d /tmp/memsched-valgrind-XXXXXX)
cleanup() { if [ "${KEEP:-}" != "1" ]; then rm -rf "$work"; else echo "kept $work"; fi; }
trap cleanup EXIT
vg_opts=(--leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
    --track-fds=no --num-callers=30)

# ---- 1. the agent alone on a sim host ----
mkdir -p "$work/agent-state"
if ! valgrind -q "${vg_opts[@]}" --error-exitcode=99 --log-file="$work/agent-alone.vg" \
    "$agent_bin" -u "sim:$scenarios/mixed50.json?speed=20" -s "$work/agent-state" --rounds 30 -t \
    >"$work/agent-alone.out" 2>"$work/agent-alone.log"; then
    echo "FAIL: the agent alone on mixed50.json: valgrind found errors or leaks:"
    cat "$work/agent-alone.vg"
    tail -n 20 "$work/agent-alone.log"
    exit 1
fi
grep -q "plans refused 0" "$work/agent-alone.out" || { echo "FAIL: the agent alone did not finish its run"; exit 1; }
echo "ok   the agent alone on mixed50.json (30 rounds): no error, no leak"

# ---- 2. the coordinator under fleet.sh, the agent under coordinators.sh ----
# Only the daemon judged runs under valgrind (the others at full speed: fleet.sh's waits are
# sized for native agents). A wrapper execs it, so the pids the scripts kill are valgrind's.
mkdir -p "$work/vg"
for d in agent coordinator; do
    bin_var="${d}_bin"
    cat >"$work/$d" <<WRAP
#!/bin/sh
exec valgrind -q ${vg_opts[*]} --log-file=$work/vg/$d.%p.vg ${!bin_var} "\$@"
WRAP
    chmod +x "$work/$d"
done
# run_under NAME SCRIPT AGENT COORDINATOR
run_under() {
    local name=$1 script=$2
    if ! bash "$here/../integration/$script" "$3" "$4" "$ctl_bin" "$scenarios" >"$work/$name.out" 2>&1; then
        echo "FAIL: $script with the $name under valgrind failed:"
        grep -B2 -A3 "^FAIL" "$work/$name.out" | head -n 40
        exit 1
    fi
}
run_under coordinator fleet.sh "$agent_bin" "$work/coordinator"
run_under agent coordinators.sh "$work/agent" "$coordinator_bin"
judged=0 bad=0
for f in "$work"/vg/*.vg; do
    [ -f "$f" ] || continue
    # With -q valgrind writes only what is wrong: errors as they happen, and at exit each
    # definitely or indirectly lost block. A SIGKILLed run (fleet.sh kills its coordinator
    # twice) never reaches the leak check, but any error it made is written already.
    if [ -s "$f" ]; then
        echo "FAIL: ${f##*/}:"
        cat "$f"
        bad=$((bad + 1))
    fi
    judged=$((judged + 1))
done
[ "$judged" -ge 4 ] || { echo "FAIL: $judged daemon runs under valgrind, want 3 coordinators and an agent"; exit 1; }
[ "$bad" -eq 0 ] || exit 1
echo "ok   fleet.sh's coordinators and coordinators.sh's agent under valgrind ($judged runs): no error, no leak"
