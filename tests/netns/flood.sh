#!/usr/bin/env bash
# flood.sh - an authorized agent that floods the coordinator, across network namespaces (ctest
# label `netns`, root).
#
#   flood.sh AGENT COORDINATOR MEMSCHEDCTL FLOODER SCENARIO_DIR [AGENTS] [SECONDS]
#
# A coordinator and AGENTS (default 3) real agents on sim hosts, each in its own namespace, and
# one more namespace with FLOODER (netns_flood, tests/netns/flood.c): a key in the allowlist
# like any agent's, that says hello and then sends 50-VM reports as fast as the connection
# takes them for SECONDS (default 12). 10.78.2.0/24 behind a bridge, CURVE everywhere. Checks:
#   - every real agent stays fresh at every look during the flood (once a second), and
#     `memschedctl status` answers each time (within its own default timeout: no time is
#     measured here);
#   - the coordinator's memory stays bounded: its VmRSS, at every look and once the flood is
#     in, stays under its RSS before the flood + 64 MiB (a generous bound: a backlog held in
#     memory grows by megabytes a second; + 128 MiB under ASan, run with a 16 MiB quarantine:
#     its default 256 MiB one holds what the flood frees, 383 MiB peak measured);
#   - every report the flooder sent is counted by the coordinator (decisions_total of the
#     flooder's host, one decision a report): messages lost = sent - counted = 0.
# The figures (reports sent, counted, RSS before / peak / after) are printed. Exit 77 without
# root or ip(8), unless CI=true.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 flood_bin=$4 scenarios=$5 n_agents=${6:-3}
flood_s=${7:-12}
. "$(dirname "$0")/../lib/daemons.sh"
. "$(dirname "$0")/lib.sh"
netns_prereq
need_jq
daemons_init netns-flood

tag=$$
coord_ip=10.78.2.1 port=7400
trap 'daemons_cleanup; netns_delete_all' EXIT
ns_of() { echo "mf3$1-$tag"; } # c, f, a1, a2, ...
ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

netns_hub "mf3h$tag"
node() { # NAME ADDR: its namespace, plugged into the hub
    add_ns "$(ns_of "$1")"
    plug "$(ns_of "$1")" "g$1-$tag" "$2"
}
node c "$coord_ip"
node f 10.78.2.2
agents=$(seq -f "a%g" 1 "$n_agents")
for a in $agents; do node "$a" "10.78.2.$((10 + ${a#a}))"; done

mkdir -p "$work/keys" "$work/allow"
ctl keygen coordinator --dir "$work/keys" >/dev/null
for h in flood $agents; do
    ctl keygen "$h" --dir "$work/keys" >/dev/null
    cp "$work/keys/$h.key" "$work/allow/"
done
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16" \
    ip netns exec "$(ns_of c)" "$coordinator_bin" "listen=tcp://$coord_ip:$port" \
    "control=ipc://$work/control.sock" "key_file=$work/keys/coordinator.secret" \
    "allow_dir=$work/allow" "db=$work/fleet.db" stale_after_ms=1500 down_after_ms=4000 \
    >>"$work/coordinator.log" 2>&1 &
coordinator_pid=$!
pids+=("$!")
eventually 10 test -S "$work/control.sock" || fail "the coordinator did not open its control socket"
for a in $agents; do
    {
        echo "uri = sim:$scenarios/walkthrough.json"
        echo "coordinator = tcp://$coord_ip:$port"
        echo "coordinator_key = $work/keys/coordinator.key"
        echo "key_file = $work/keys/$a.secret"
        echo "host_id = $a"
        echo "state_dir = $work/state-$a"
        echo "interval_ms = 500"
    } >"$work/$a.conf"
    ip netns exec "$(ns_of "$a")" "$agent_bin" --config "$work/$a.conf" >>"$work/$a.log" 2>&1 &
    pids+=("$!")
done

agents_fresh() {
    ctl --json hosts | jq -en --argjson n "$n_agents" \
        'input | [.hosts[] | select((.host_id | startswith("a")) and .liveness == "fresh")] | length == $n'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$coordinator_pid/status"; }
eventually 30 agents_fresh || fail "not every agent joined: $(ctl hosts)"
sleep 2 # the agents' first reports are in: the RSS before is the fleet's, not a start-up's
rss0=$(rss_kib)
bound=$((rss0 + 64 * 1024))
# Under AddressSanitizer freed memory waits in a quarantine (256 MiB by default) before reuse,
# and a flood frees fast: the coordinator runs with a 16 MiB one (below) and the bound is
# before + 128 MiB there.
if grep -q "__asan_init" "$coordinator_bin"; then bound=$((rss0 + 128 * 1024)); fi

ip netns exec "$(ns_of f)" "$flood_bin" --endpoint "tcp://$coord_ip:$port" \
    --server-key "$work/keys/coordinator.key" --key "$work/keys/flood.secret" --host-id flood \
    --seconds "$flood_s" >"$work/flood.out" 2>"$work/flood.log" &
flood_pid=$!
pids+=("$flood_pid")
flooding() { kill -0 "$flood_pid" 2>/dev/null && ! grep -q "^flood:" "$work/flood.out"; }
looks=0 peak=$rss0
while flooding; do
    sleep 1
    flooding || break
    ctl status >/dev/null || fail "memschedctl status got no answer during the flood (look $looks)"
    agents_fresh >/dev/null || fail "an agent went stale during the flood (look $looks): $(ctl hosts)"
    rss=$(rss_kib)
    [ "$rss" -gt "$peak" ] && peak=$rss
    [ "$rss" -lt "$bound" ] || fail "the coordinator's RSS grew to $rss KiB during the flood (before: $rss0 KiB)"
    looks=$((looks + 1))
done
kill -0 "$flood_pid" 2>/dev/null || fail "the flooder failed: $(cat "$work/flood.log")"
[ "$looks" -ge 3 ] || fail "only $looks looks during the flood"
read -r sent dropped < <(sed -n 's/^flood: .*reports=\([0-9]*\) dropped=\([0-9]*\).*/\1 \2/p' "$work/flood.out")
[ -n "$sent" ] || fail "the flooder printed no count: $(cat "$work/flood.out")"
[ "$dropped" -eq 0 ] || fail "the flooder dropped $dropped of its own messages"
counted() { ctl --json hosts | jq -r '.hosts[] | select(.host_id == "flood") | .decisions_total'; }
eventually 30 test "$(counted)" = "$sent" ||
    fail "the coordinator counted $(counted) of the $sent reports the flooder sent"
kill -TERM "$flood_pid"
wait "$flood_pid" || fail "the flooder failed: $(cat "$work/flood.log")"
rss1=$(rss_kib)
[ "$rss1" -lt "$bound" ] || fail "the coordinator's RSS is $rss1 KiB after the flood (before: $rss0 KiB)"
kill -0 "$coordinator_pid" || fail "the coordinator died of the flood"
agents_fresh >/dev/null || fail "an agent is not fresh after the flood: $(ctl hosts)"
echo "ok   flood: $sent reports sent in $flood_s s, $(counted) counted (lost 0); $looks looks, every agent fresh and status answered at each; coordinator RSS $rss0 -> peak $peak -> $rss1 KiB"
