#!/usr/bin/env bash
# agent_restart.sh AGENT URI LIB - the agent across a libvirtd crash and restart (run through
# with_libvirtd.sh, which starts the daemon and passes its URI and tests/lib/libvirtd.sh).
#
# The agent must stay up through the outage, log it once and its recovery once, reconnect by
# itself and carry on with its rounds (new CSV rows after the restart). libvirt's test driver
# reports stats that are always stale, so it plans no change there; that set_target works again
# after a restart is shown by integration_hv_restart (the port) and the e2e tier (real guests).
set -euo pipefail
agent_bin=$1 uri=$2 lib=$3
# shellcheck source=/dev/null
. "$lib"
work=$(mktemp -d /tmp/memsched-agent-restart-XXXXXX)
trap 'kill "$agent_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; tail -n 30 "$work/agent.log" >&2; exit 1; }
rows() { wc -l <"$work/rounds.csv" 2>/dev/null || echo 0; }
more_rows_than() { [ "$(rows)" -gt "$1" ]; }
eventually() {
    local seconds=$1; shift
    for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}

printf 'interval_ms = 200\n' >"$work/agent.conf"
"$agent_bin" --uri "$uri" --config "$work/agent.conf" --state-dir "$work/state" \
    --record "$work/rounds.csv" 2>"$work/agent.log" &
agent_pid=$!

eventually 10 more_rows_than 3 || fail "no rounds before the outage"
libvirtd_kill
eventually 10 grep -q "event=hypervisor_unavailable" "$work/agent.log" ||
    fail "the outage was not logged"
# Several rounds into the outage: the round's outage line is logged at its first failure, then
# with back-off (1 s, 2 s, ...). Wait for the second line (no sleep); it must count the rounds
# that failed unlogged in between (interval 200 ms: ~5), not come with the second failure.
outage_logged_twice() { [ "$(grep -c "event=hypervisor_unavailable" "$work/agent.log")" -ge 2 ]; }
eventually 30 outage_logged_twice || fail "the outage was not logged again with back-off"
kill -0 "$agent_pid" || fail "the agent died with libvirtd"
second=$(grep "event=hypervisor_unavailable" "$work/agent.log" | sed -n 2p | sed -n 's/.*failures=\([0-9]*\).*/\1/p')
[ "${second:-0}" -ge 3 ] ||
    fail "the outage was logged more than with back-off (second line at failures=${second:-?}, want >= 3)"
before=$(rows)
libvirtd_restart >/dev/null || fail "libvirtd did not restart"
eventually 40 grep -q "event=hypervisor_recovered" "$work/agent.log" ||
    fail "the agent did not reconnect"
failed=$(sed -n 's/.*event=hypervisor_recovered failed_rounds=\([0-9]*\).*/\1/p' "$work/agent.log" | head -n1)
[ "${failed:-0}" -ge "$second" ] ||
    fail "the recovery counts ${failed:-?} failed rounds, fewer than the ${second} logged before"
eventually 10 more_rows_than "$((before + 3))" || fail "no rounds after the restart"
[ "$(grep -c "event=hypervisor_recovered" "$work/agent.log")" -eq 1 ] ||
    fail "the recovery was logged more than once"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "the agent did not stop cleanly on SIGTERM"
echo "agent_restart: the agent stayed up, reconnected and carried on"
