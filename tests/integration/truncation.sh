#!/usr/bin/env bash
# truncation.sh - a host with more VMs than one report holds (WIRE_VMS_MAX, 4096): the agent's
# report is cut to the first 4096, and is still a valid report the coordinator takes (ctest
# label `integration`).
#
#   truncation.sh AGENT COORDINATOR MEMSCHEDCTL
#
# libvirt's test driver (test:///FILE, in the agent's process) with 4100 running domains, an
# agent reporting to a real coordinator over CURVE. Checks: the coordinator has the host with a
# report of exactly 4096 VMs, each one of the host's real domains (by name and uuid), none
# twice; it refused no message from it; the host stays fresh (the reports keep coming); and the
# cut is visible: the coordinator knows the host has 4100 (vms_total), and the agent logged the
# cut once. (The sim holds at most 4096 VMs, so it cannot show this.)
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3
n_domains=4100 wire_vms_max=4096
. "$(dirname "$0")/../lib/daemons.sh"
need_jq
daemons_init truncation

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

# The node: 4100 running domains vmN with uuid c0ffee00-0000-4000-8000-<N in 12 hex digits>.
{
    echo "<?xml version='1.0'?>"
    echo "<node><memory>1073741824</memory>"
    for i in $(seq 1 "$n_domains"); do
        printf "<domain type='test'><name>vm%d</name><uuid>c0ffee00-0000-4000-8000-%012x</uuid>" "$i" "$i"
        printf "<memory unit='MiB'>1024</memory><currentMemory unit='MiB'>768</currentMemory>"
        printf "<vcpu>1</vcpu><os><type>hvm</type></os><devices><memballoon model='virtio'/></devices></domain>\n"
    done
    echo "</node>"
} >"$work/node.xml"

port=$(free_port)
fleet_keys host1
start_coordinator stale_after_ms=5000 down_after_ms=10000
eventually 10 test -S "$work/control.sock" || fail "the coordinator did not open its control socket"
{
    echo "uri = test://$work/node.xml"
    echo "coordinator = tcp://127.0.0.1:$port"
    echo "coordinator_key = $work/keys/coordinator.key"
    echo "key_file = $work/keys/host1.secret"
    echo "host_id = host1"
    echo "state_dir = $work/state"
    echo "interval_ms = 1000"
} >"$work/agent.conf"
"$agent_bin" --config "$work/agent.conf" >>"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")

# (jq -n with input: no host at all is an error; jq 1.6 -e alone passes on empty input.)
host_json() { ctl --json hosts | jq -c '.hosts[] | select(.host_id == "host1")'; }
reported() { host_json | jq -en 'input | .liveness == "fresh" and .has_report'; }
eventually 60 reported || fail "the coordinator never got a report from host1: $(host_json)"
count=$(host_json | jq -en 'input | .vm_count')
[ "$count" -eq "$wire_vms_max" ] ||
    fail "host1's report holds $count VMs, want $wire_vms_max of its $n_domains"
# The cut is not hidden: the coordinator knows the host's total, and the agent said so.
total=$(host_json | jq -en 'input | .vms_total')
[ "$total" -eq "$n_domains" ] || fail "the coordinator shows a total of $total VMs, want $n_domains"
grep -q "event=report_truncated vms=$n_domains sent=$wire_vms_max" "$work/agent.log" ||
    fail "the agent did not log that it cut its report"
# Said once, then with a back-off that doubles from 1 s (however slow this machine is): every
# gap between two such lines at least 1.5 times the one before, the first at least 0.9 s.
backoff=$(grep 'event=report_truncated' "$work/agent.log" | awk '
    { split(substr($1, 12, 12), p, ":"); t = p[1] * 3600 + p[2] * 60 + p[3] }
    NR > 1 { gap = t - last; if (gap < 0.9 || (NR > 2 && gap < 1.5 * prev)) bad = bad " " gap; prev = gap }
    { last = t } END { printf "%d lines%s", NR, bad ? ", gaps too short:" bad : "" }')
[[ $backoff != *short* ]] || fail "the agent logged the cut without its back-off: $backoff"
# Every VM listed is one of the host's domains, its uuid its own, none twice.
ctl --json vms --host host1 --limit 10000 >"$work/vms.json" 2>"$work/vms.err" ||
    ctl --json vms --host host1 >"$work/vms.json" || fail "vms --host host1 failed: $(cat "$work/vms.err")"
bad=$(jq -r '.vms[] | select((.name | test("^vm[0-9]+$") | not) or
        (.uuid != ("c0ffee00-0000-4000-8000-" + ((.name[2:] | tonumber) as $n |
            [range(11; -1; -1) | . as $k | ($n / pow(16; $k) | floor) % 16 |
             "0123456789abcdef"[.:(. + 1)]] | join(""))))) | .name' "$work/vms.json" | head -n 3)
[ -z "$bad" ] || fail "VMs in host1's report that are not its domains (or not their uuids): $bad"
listed=$(jq '[.vms[].name] | length' "$work/vms.json")
distinct=$(jq '[.vms[].name] | unique | length' "$work/vms.json")
[ "$listed" -eq "$distinct" ] || fail "host1's VMs listed $listed times for $distinct VMs"
if grep -E 'host=host1 .*event=(message_refused|malformed|rejected)' "$work/coordinator.log"; then
    fail "the coordinator refused a message from host1"
fi
# The reports keep coming: still fresh after a few more rounds.
sleep 3
reported >/dev/null || fail "host1 went quiet: $(host_json)"
grep -q 'event=encode_failed' "$work/agent.log" && fail "the agent failed to encode a message"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "the agent did not stop cleanly on SIGTERM"
echo "truncation: host1's $n_domains VMs reported as the first $count of $total ($listed listed, each its own)"
