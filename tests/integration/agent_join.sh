#!/usr/bin/env bash
# agent_join.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR - joining is visible on the agent: an
# agent whose key is not in the coordinator's allowlist says, after 30 s without a session, that
# it has none and names its key's fingerprint; an admitted agent says nothing of the kind.
# Meanwhile the admitted agent's labels changed by SIGHUP reach the coordinator (a new hello),
# and a SIGHUP on an emptied config file keeps the old config.
# (Takes ~35 s: the agent waits 30 s before it complains.)
set -euo pipefail
agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4
. "$(dirname "$0")/../lib/daemons.sh"
daemons_init join

port=$(free_port)
mkdir -p "$work/keys" "$work/allow"
for name in coordinator host1 rogue; do
    "$ctl_bin" keygen "$name" --dir "$work/keys" >"$work/keygen-$name.txt"
done
cp "$work/keys/host1.key" "$work/allow/"
start_coordinator
eventually 10 test -S "$work/control.sock" || fail "coordinator did not open its control socket"

start_agent host1 one_hog.json
start_agent rogue one_hog.json

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }
eventually 20 sh -c "'$ctl_bin' --socket 'ipc://$work/control.sock' hosts | grep -q '^host1 '" ||
    fail "host1 never registered"
echo "labels = rack=r9" >>"$work/host1.conf"
kill -HUP "$host1_pid"
eventually 10 sh -c "'$ctl_bin' --socket 'ipc://$work/control.sock' --json hosts | grep -q 'rack=r9'" ||
    fail "host1's new labels never reached the coordinator"
cp "$work/host1.conf" "$work/host1.conf.good"
: >"$work/host1.conf"
kill -HUP "$host1_pid"
eventually 10 grep -q 'event=reload_failed keeping=old why=".*host1.conf is empty' "$work/host1.log" ||
    fail "an emptied config file was not refused"
grep -q "event=no_session" "$work/host1.log" && fail "host1 lost its session after the reloads"

want='event=no_session .*no session after [0-9]+ s: is this key \(fingerprint [0-9a-f]{4}(:[0-9a-f]{4}){3}\) in the coordinator.s allowlist\?'
eventually 45 grep -Eq "$want" "$work/rogue.log" || fail "the refused agent never said it had no session"
grep -q "event=no_session" "$work/host1.log" && fail "the admitted agent said it had no session"
# Two different keys have different fingerprints.
fp_rogue=$(grep -Eo 'fingerprint [0-9a-f:]+' "$work/rogue.log" | head -1)
[ -n "$fp_rogue" ] || fail "no fingerprint in the log"
# The operator can match the log to a key: keygen printed the same fingerprint.
grep -q "$fp_rogue" "$work/keygen-rogue.txt" || fail "keygen did not print the rogue key's $fp_rogue"
echo "ok: $fp_rogue"
