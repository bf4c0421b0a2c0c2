#!/usr/bin/env bash
# The README's "Running a fleet by hand", run as written: the fenced block under that heading,
# with B = this build, W = a fresh directory and port 7400 swapped for a free one (so that runs
# in parallel cannot collide). The block must run to its end without an error, and what it
# printed must show the fleet working: both hosts fresh, the pushed policy applied by both.
#
# usage: walkthrough.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/../lib/daemons.sh" # free_port
src=$1 build=$2
work=$(mktemp -d /tmp/memsched-walkthrough.XXXXXX)
log=$work/walkthrough.log
# The block's daemons are its own children: when it fails half way they outlive it, so they are
# found by the work directory on their command lines (unique to this run).
trap 'pkill -P $$ 2>/dev/null || true; pkill -f -- "$work/" 2>/dev/null || true
      [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

fail() {
    echo "walkthrough: $*" >&2
    echo "--- what the walkthrough printed:" >&2
    cat "$log" >&2 || true
    exit 1
}


block=$(awk '/^## Running a fleet by hand/ { inside = 1; next }
             inside && /^```/ { if (fence++) exit; next }
             inside && fence { print }' "$src/README.md")
[ -n "$block" ] || fail "no fenced block under '## Running a fleet by hand' in README.md"
grep -q '7400' <<<"$block" || fail "the block no longer uses port 7400: update this test"
port=$(free_port)
block=${block//7400/$port}

cd "$src"
B=$build W=$work/fleet timeout 120 bash -euo pipefail -c "$block" >"$log" 2>&1 ||
    fail "the block failed (exit $?)"

grep -q "^hosts .*2: 2 fresh, 0 stale, 0 down" "$log" || fail "status did not show two fresh hosts"
# why (after the policy set: v1): idle1 holds excess from the start, so by now it has shrunk,
# and says by which rule.
grep -q "^idle1 on hv1 (" "$log" || fail "why did not name idle1 on hv1"
grep -q "^thresholds (policy v1, as the agent reported them): demand signal usable" "$log" ||
    fail "why did not show the thresholds the agent reported"
grep -qE "shrink .* > 300 \(vm_excess_unused\): gave [0-9]+ MiB to VMs, [0-9]+ to the host" "$log" ||
    fail "why did not show idle1's shrink with its rule"
# history: idle1's series has at least one point (every 10 s), the host's too.
grep -q "^history of hv1: every 10 s" "$log" || fail "history did not describe hv1's history"
grep -qE "^idle1 +[1-9][0-9]* +[0-9]+s ago" "$log" || fail "history showed no point for idle1"
applied=$(python3 - "$log" <<'PY'
import json, sys
# The last line that parses as JSON is `memschedctl --json hosts`.
doc = None
for line in open(sys.argv[1]):
    try:
        doc = json.loads(line)
    except ValueError:
        pass
hosts = doc["hosts"]
print(sum(1 for h in hosts if h["last_ack"] and h["last_ack"]["applied"] and h["liveness"] == "fresh"))
PY
)
[ "$applied" = 2 ] || fail "want both hosts fresh with the pushed policy applied, got $applied"
grep -q "event=.*error\|^err \| err [a-z]*:" "$log" && fail "an error was logged"
sed -n '/^idle1 on hv1 (/,/^[^ ].*shrink/p' "$log" | head -8 # what why said, for the record
echo "walkthrough: the README's fleet block ran as written; 2 hosts fresh, policy applied by both"
