#!/usr/bin/env bash
# agent_textfile.sh - the agent's node_exporter textfile (metrics_textfile), on a sim host with
# no coordinator (ctest label `integration`).
#
#   agent_textfile.sh AGENT SCENARIO_DIR
#
# Checks: the file appears and is replaced as rounds go (rounds_total grows); every copy read
# while the agent replaces it five times a second is whole (ends with a newline, one
# memsched_vm_stuck sample per VM the same file counts: the last family, so a cut file lacks
# some); `promtool check metrics` accepts it; the VM without a balloon says why; nothing but
# the file and, for an instant, the agent's hidden temporary file is ever in the directory, and
# only the file after the agent stops. A textfile the agent cannot write is refused by
# --check-config, and at run time is logged with back-off (not every round) while scheduling goes on. Needs promtool
# (Debian's prometheus package): a skip (77) when absent, a failure under CI=true.
set -euo pipefail

agent_bin=$1 scenarios=$2
. "$(dirname "$0")/../lib/daemons.sh"
if ! command -v promtool >/dev/null; then
    [ "${CI:-}" = "true" ] && { echo "FAIL: no promtool (deploy/install-deps.sh --test installs it)"; exit 1; }
    echo "SKIP: no promtool (deploy/install-deps.sh --test installs it)"
    exit 77
fi
daemons_init textfile

dir=$work/textfile file=$work/textfile/memsched.prom
mkdir -p "$dir"
write_conf() {
    cat >"$1" <<CONF
uri = sim:$scenarios/no_driver.json?speed=2
state_dir = $work/state
host_id = tf-host
interval_ms = 200
metrics_textfile = $2
CONF
}
write_conf "$work/agent.conf" "$file"
"$agent_bin" --config "$work/agent.conf" >>"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
eventually 10 test -s "$file" || fail "the textfile never appeared"

sample() { sed -n "s/^$1 //p" "$2"; }
whole() {
    [ -s "$1" ] && [ -z "$(tail -c1 "$1")" ] || return 1 # ends with a newline
    awk '/^memsched_host_vms\{/ { vms = $2 } /^memsched_vm_stuck\{/ { stuck++ }
         END { exit !(vms > 0 && stuck == vms) }' "$1"
}

# Read it 60 times while it is replaced; note every name the directory ever shows.
: >"$work/names.txt"
for i in $(seq 60); do
    ls -A "$dir" >>"$work/names.txt"
    cat "$file" >"$work/copy.txt"
    whole "$work/copy.txt" || { cp "$work/copy.txt" "$work/cut.txt"; fail "copy $i is not whole (kept in cut.txt)"; }
    [ "$i" = 1 ] && cp "$work/copy.txt" "$work/first.txt"
    sleep 0.05
done
first=$(sample 'memsched_host_rounds_total{host="tf-host"}' "$work/first.txt")
last=$(sample 'memsched_host_rounds_total{host="tf-host"}' "$work/copy.txt")
[ "$last" -gt "$first" ] || fail "rounds_total did not grow across the reads ($first, then $last)"

promtool check metrics <"$work/copy.txt" >"$work/promtool.log" 2>&1 ||
    fail "promtool check metrics refused the textfile: $(cat "$work/promtool.log")"
grep -Eq '^memsched_vm_skipped\{host="tf-host",domain="noballoon",uuid="[0-9a-f-]{36}",reason="no_balloon"\} 1$' \
    "$work/copy.txt" || fail "no skip reason for the VM without a balloon"
grep -Eq '^memsched_vm_balloon_actual_bytes\{host="tf-host",domain="needy",uuid="[0-9a-f-]{36}"\} [0-9]+$' \
    "$work/copy.txt" || fail "no per-VM balloon series with host, domain and uuid"
grep -Eq '^memsched_agent_round_duration_seconds\{host="tf-host"\} [0-9.e-]+$' "$work/copy.txt" ||
    fail "no round duration"

others=$(sort -u "$work/names.txt" | grep -Ev '^(memsched\.prom|\.memsched\.prom\.[A-Za-z0-9]{6})$' || true)
[ -z "$others" ] || fail "the textfile directory showed other names: $others"
kill "$agent_pid" 2>/dev/null || true # it may have finished the scenario
wait "$agent_pid" || true
left=$(ls -A "$dir")
[ "$left" = "memsched.prom" ] || fail "after the agent stopped the directory holds: $left"

# No directory for it: --check-config says so; run anyway, the agent schedules on and logs the
# failure with back-off, not every round.
write_conf "$work/bad.conf" "$work/none/memsched.prom"
if "$agent_bin" --config "$work/bad.conf" --check-config >"$work/check.log" 2>&1; then
    fail "--check-config accepted a textfile in a missing directory"
fi
grep -q 'metrics_textfile' "$work/check.log" || fail "--check-config did not name metrics_textfile: $(cat "$work/check.log")"
"$agent_bin" --config "$work/bad.conf" --rounds 20 >"$work/bad.log" 2>&1 ||
    fail "the agent stopped over its textfile"
failed=$(grep -c 'event=textfile_failed' "$work/bad.log" || true)
# The first failure, then repeats with a doubling back-off: a few lines, not one per round.
[ "$failed" -ge 1 ] && [ "$failed" -le 4 ] ||
    fail "want 1 to 4 textfile_failed lines for 20 failing rounds (back-off), got $failed"
echo "PASS: textfile whole in 60 reads, rounds $first -> $last, promtool ok, $failed complaints for 20 failing rounds"
