#!/usr/bin/env bash
# memsched-eval --policy: the operator's what-if. A proposal is run beside the policy in force on
# the same scenario and the answer names what gets worse and what gets better; a proposal that
# is no change shows neither; a bad file or a proposal that fails validation is refused before
# anything runs, naming the file and line or the rule.
#
# usage: what_if.sh MEMSCHED_EVAL SCENARIO_DIR
set -uo pipefail
eval_bin=$1 scenarios=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }
command -v jq >/dev/null || { echo "what_if.sh: jq is missing (deploy/install-deps.sh --test)"; exit 1; }

# 1. Idle excess left with the guests: the bursty guest starves less, its memory comes back later.
printf '# keep idle excess in the guests\nreclaim_idle = false\n' >"$work/keep.conf"
"$eval_bin" --policy "$work/keep.conf" --json "$scenarios/bursty.json" >"$work/keep.json" ||
    fail "--policy keep.conf exited $?"
if jq -e '.what_if[0] | (.better | map(.figure) | index("starved VM-s")) and
                       (.worse | map(.figure) | index("worst give-back s"))' "$work/keep.json" >/dev/null; then
    ok "reclaim_idle=false on bursty: starvation better, give-back worse ($(jq -c '.what_if[0].worse' "$work/keep.json"))"
else
    fail "reclaim_idle=false on bursty: $(jq -c '.what_if' "$work/keep.json")"
fi
# The two rows are the runs the verdict compares.
jq -e '[.runs[].planner] == ["memsched", "memsched@'"$work/keep.conf"'"]' "$work/keep.json" >/dev/null ||
    fail "runs: $(jq -c '[.runs[].planner]' "$work/keep.json")"

# 2. The policy in force proposed again (file and --in-force agree): nothing worse, nothing better.
printf 'max_release_step_mib = 128\n' >"$work/step.conf"
"$eval_bin" --in-force "$work/step.conf" --policy "$work/step.conf" --json "$scenarios/bursty.json" \
    >"$work/same.json" || fail "--policy same exited $?"
if jq -e '.what_if[0] | (.worse | length) == 0 and (.better | length) == 0' "$work/same.json" >/dev/null; then
    ok "a proposal equal to the policy in force: no change"
else
    fail "same policy: $(jq -c '.what_if' "$work/same.json")"
fi
# ... and --in-force is really used: a step of 128 differs from the default 64 on bursty.
"$eval_bin" --policy "$work/step.conf" --json "$scenarios/bursty.json" >"$work/step.json" ||
    fail "--policy step exited $?"
jq -e '.what_if[0] | (.worse | length) + (.better | length) > 0' "$work/step.json" >/dev/null ||
    fail "a step of 128 against the default changed nothing: $(jq -c '.what_if' "$work/step.json")"

# 3. Refusals, before any run: an unknown key (file:line), a rule broken, a missing file.
printf 'reclaim_idle = false\nbogus = 1\n' >"$work/bad.conf"
if out=$("$eval_bin" --policy "$work/bad.conf" "$scenarios/bursty.json" 2>&1); then
    fail "an unknown key was accepted"
elif [[ $out == *"bad.conf:2:"*"bogus"* && $out != *SCENARIO* ]]; then
    ok "unknown key refused before any run: $out"
else
    fail "unknown key: $out"
fi
printf 'vm_min_unused_mib = 900\n' >"$work/rule.conf"
if out=$("$eval_bin" --policy "$work/rule.conf" "$scenarios/bursty.json" 2>&1); then
    fail "a policy breaking a rule was accepted"
elif [[ $out == *"vm_min_unused_mib=900 must be below"* ]]; then
    ok "rule broken, refused: $out"
else
    fail "rule: $out"
fi
if out=$("$eval_bin" --in-force "$work/nope.conf" --policy "$work/keep.conf" "$scenarios/bursty.json" 2>&1); then
    fail "a missing --in-force file was accepted"
else
    ok "missing file refused: $out"
fi
[ "$failures" -eq 0 ] || { echo "what_if.sh: $failures failure(s)"; exit 1; }
echo "what_if.sh: all passed"
