#!/usr/bin/env bash
# soak.sh - a coordinator and N agents in network namespaces for a long while, with faults
# injected every few minutes; records every daemon's memory and CPU and the invariant
# violations, and says whether memory stayed flat. Documented, not in CI (root).
#
#   tests/soak/soak.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR [OUT_DIR]
#   SOAK_MINUTES=60 SOAK_AGENTS=50 SOAK_FAULT_S=180 SOAK_SAMPLE_S=60 (the defaults)
#   SOAK_COORDINATOR="KEY=VALUE ..." more coordinator settings (e.g. history_max_mib=0, to tell
#   its history filling from a leak)
#
# e.g. from a build: B=build/dev; bash tests/soak/soak.sh $B/agent/memsched-agent \
#   $B/coordinator/memsched-coordinator $B/coordinator/memschedctl tests/scenarios /tmp/soak
#
# The network is faults.sh's (a bridge in a hub namespace, one veth pair per namespace) on
# 10.78.1.0/24, names msf2s*; all of it is removed at exit. Agents run sim hosts
# (walkthrough.json, no end) at interval_ms=1000 and report over CURVE. The faults, in turn,
# one every SOAK_FAULT_S seconds:
#   cut     a random agent's link down for 6 s (past the coordinator's down_after, 4 s), then up
#   kill    a random agent SIGKILLed and restarted
#   policy  a fleet policy set (a new version: every agent must ack it)
#   restart the coordinator SIGKILLed and restarted on its store
# Every SOAK_SAMPLE_S seconds one line per daemon goes to OUT_DIR/samples.csv:
#   t_s,daemon,pid,vmrss_kib,pss_kib,anon_kib,private_kib,cpu_s
# (VmRSS from /proc/PID/status; Pss, Anonymous and Private_Clean+Private_Dirty from
# /proc/PID/smaps_rollup; cpu_s = utime+stime since the process started). At the end
# OUT_DIR/summary.txt gives, per daemon run (a pid: a restart starts a new run), the first and
# last VmRSS and Pss and the least-squares slope of each in KiB per hour, the runs' CPU, the
# plans the agents' invariant checker refused (event=plan_refused: a violation) and how many
# faults were recovered from (every agent fresh again and the last policy acked).
# "Flat": the slope of a run's private anonymous memory (Anonymous: what a leak grows; PSS also
# moves when other processes map or unmap the same libraries) over its second half is under
# 1 MiB/hour. Runs shorter than a few samples are not judged.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4
out=${5:-$(mktemp -d /tmp/memsched-soak-XXXXXX)}
minutes=${SOAK_MINUTES:-60} n_agents=${SOAK_AGENTS:-50}
fault_s=${SOAK_FAULT_S:-180} sample_s=${SOAK_SAMPLE_S:-60}
. "$(dirname "$0")/../netns/lib.sh"
. "$(dirname "$0")/../lib/eventually.sh" # not daemons.sh: the soak has its own EXIT trap
netns_prereq
command -v jq >/dev/null || { echo "soak.sh: needs jq"; exit 1; }
mkdir -p "$out"
work=$out
tag=$$
ns_coord=msf2s-c$tag
coord_ip=10.78.1.1 port=7400
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    netns_delete_all
}
trap cleanup EXIT
ns_of() { echo "msf2s-a$1-$tag"; }
ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- the network ----
netns_hub "msf2s-h$tag"
add_ns "$ns_coord"
plug "$ns_coord" "sc$tag" "$coord_ip"
for i in $(seq 1 "$n_agents"); do
    add_ns "$(ns_of "$i")"
    plug "$(ns_of "$i")" "s$i-$tag" "10.78.1.$((10 + i))"
done

# ---- the daemons ----
mkdir -p "$work/keys" "$work/allow"
ctl keygen coordinator --dir "$work/keys" >/dev/null
for i in $(seq 1 "$n_agents"); do
    ctl keygen "a$i" --dir "$work/keys" >/dev/null
    cp "$work/keys/a$i.key" "$work/allow/"
done
declare -A pid_of # daemon name -> its pid now
start_coordinator() {
    ip netns exec "$ns_coord" "$coordinator_bin" "listen=tcp://$coord_ip:$port" \
        "control=ipc://$work/control.sock" "key_file=$work/keys/coordinator.secret" \
        "allow_dir=$work/allow" "db=$work/fleet.db" stale_after_ms=1500 \
        down_after_ms=4000 ${SOAK_COORDINATOR:-} >>"$work/coordinator.log" 2>&1 &
    pid_of[coordinator]=$!
    pids+=("$!")
}
start_agent() {
    local i=$1
    {
        echo "uri = sim:$scenarios/walkthrough.json"
        echo "coordinator = tcp://$coord_ip:$port"
        echo "coordinator_key = $work/keys/coordinator.key"
        echo "key_file = $work/keys/a$i.secret"
        echo "host_id = a$i"
        echo "state_dir = $work/state-a$i"
        echo "interval_ms = 1000"
    } >"$work/a$i.conf"
    ip netns exec "$(ns_of "$i")" "$agent_bin" --config "$work/a$i.conf" >>"$work/a$i.log" 2>&1 &
    pid_of[a$i]=$!
    pids+=("$!")
}
all_fresh() { ctl --json status | jq -en --argjson n "$n_agents" 'input | .status.hosts.fresh == $n'; }
all_acked() { # VERSION: every host's last ack is it, applied
    ctl --json hosts | jq -en --argjson v "$1" --argjson n "$n_agents" \
        'input | [.hosts[] | select(.last_ack.version == $v and .last_ack.applied)] | length == $n'
}

start_coordinator
eventually 10 test -S "$work/control.sock" || { echo "soak.sh: no coordinator"; exit 1; }
for i in $(seq 1 "$n_agents"); do start_agent "$i"; done
eventually 60 all_fresh || { echo "soak.sh: not every agent joined"; exit 1; }
echo "soak: $n_agents agents joined; running $minutes min, a fault every $fault_s s, samples every $sample_s s in $out"

hz=$(getconf CLK_TCK)
sample() { # T: one line per daemon
    local t=$1 name pid rss pss anon priv cpu
    for name in "${!pid_of[@]}"; do
        pid=${pid_of[$name]}
        [ -r "/proc/$pid/smaps_rollup" ] || continue
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
        read -r pss anon priv < <(awk '/^Pss:/ { p = $2 } /^Anonymous:/ { a = $2 }
            /^Private_(Clean|Dirty):/ { v += $2 } END { print p, a, v }' "/proc/$pid/smaps_rollup")
        cpu=$(awk -v hz="$hz" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$pid/stat")
        echo "$t,$name,$pid,$rss,$pss,$anon,$priv,$cpu" >>"$out/samples.csv"
    done
}
echo "t_s,daemon,pid,vmrss_kib,pss_kib,anon_kib,private_kib,cpu_s" >"$out/samples.csv"
: >"$out/faults.txt"

version=0
fault() { # K: the K-th fault, in turn; its recovery time goes to faults.txt
    local kind t0 i ok=yes
    kind=$(echo cut kill policy restart | cut -d' ' -f$(($1 % 4 + 1)))
    i=$((1 + RANDOM % n_agents))
    t0=$(now)
    case $kind in
    cut)
        ip -n "$(ns_of "$i")" link set v0 down
        sleep 6
        ip -n "$(ns_of "$i")" link set v0 up
        t0=$(now) # recovery counts from the link's return
        ;;
    kill)
        kill -KILL "${pid_of[a$i]}"
        wait "${pid_of[a$i]}" 2>/dev/null || true
        start_agent "$i"
        ;;
    policy)
        ctl policy set --scope fleet --reason "soak $1" \
            vm_grow_target_unused_mib=$((200 + $1 % 50)) >/dev/null || ok=no
        version=$(ctl --json policy show --host a1 | jq -r '.host.version')
        i=-
        ;;
    restart)
        kill -KILL "${pid_of[coordinator]}"
        wait "${pid_of[coordinator]}" 2>/dev/null || true
        rm -f "$work/control.sock"
        start_coordinator
        eventually 10 test -S "$work/control.sock" || ok=no
        i=-
        ;;
    esac
    eventually 60 all_fresh || ok=no
    if [ "$version" -gt 0 ]; then eventually 60 all_acked "$version" || ok=no; fi
    echo "$(date -u +%H:%M:%S) fault=$kind agent=$i recovered=$ok after_s=$(since "$t0")" | tee -a "$out/faults.txt"
}

t_start=$(date +%s)
end=$((t_start + minutes * 60))
next_sample=$t_start next_fault=$((t_start + fault_s)) k=0
while [ "$(date +%s)" -lt "$end" ]; do
    t=$(date +%s)
    if [ "$t" -ge "$next_sample" ]; then
        sample $((t - t_start))
        next_sample=$((next_sample + sample_s))
    fi
    if [ "$t" -ge "$next_fault" ]; then
        fault "$k"
        k=$((k + 1))
        next_fault=$((next_fault + fault_s))
    fi
    sleep 1
done
sample $(($(date +%s) - t_start))

# ---- the summary ----
violations=0
for i in $(seq 1 "$n_agents"); do
    violations=$((violations + $(grep -c "event=plan_refused" "$work/a$i.log" || true)))
done
{
    echo "soak: $n_agents agents, $minutes min, faults every $fault_s s, samples every $sample_s s"
    echo "faults: $(wc -l <"$out/faults.txt") injected, $(grep -c 'recovered=yes' "$out/faults.txt" || true) recovered;" \
        "recovery s (min/median/max): $(sed -n 's/.*after_s=//p' "$out/faults.txt" | sort -n |
            awk '{ v[NR] = $1 } END { if (NR) printf "%s/%s/%s", v[1], v[int((NR + 1) / 2)], v[NR]; else print "-" }')"
    echo "invariant violations (event=plan_refused in the agents' logs): $violations"
    echo "errors logged: coordinator $(grep -c '^[^ ]* err ' "$work/coordinator.log" || true)," \
        "agents $(cat "$work"/a*.log | grep -c '^[^ ]* err ' || true)"
    # Per run (daemon, pid) with at least 3 samples: first/last VmRSS and PSS, slopes over the
    # whole run and its second half (KiB/h), CPU used per hour of run.
    awk -F, 'NR > 1 { k = $2 "," $3; if (!(k in n)) order[++m] = k
            n[k]++; t[k, n[k]] = $1; r[k, n[k]] = $4; p[k, n[k]] = $5; a[k, n[k]] = $6; c[k, n[k]] = $8 }
        function slope(k, arr, from,   i, sx, sy, sxx, sxy, cnt, x, y) {
            for (i = from; i <= n[k]; i++) { x = t[k, i] / 3600; y = arr[k, i]; sx += x; sy += y; sxx += x * x; sxy += x * y; cnt++ }
            if (cnt < 2 || cnt * sxx - sx * sx == 0) return 0
            return (cnt * sxy - sx * sy) / (cnt * sxx - sx * sx) }
        END {
            printf "%-12s %8s %7s %11s %11s %11s %9s %9s %9s %8s %s\n", "daemon", "pid", "samples", "rss_kib", "pss_kib", "anon_kib", "rss_kib/h", "pss_kib/h", "anon_kib/h", "cpu_s/h", "flat"
            for (j = 1; j <= m; j++) { k = order[j]; if (n[k] < 3) continue
                split(k, kk, ",")
                half = int(n[k] / 2) + 1
                ps = slope(k, a, half); dt = (t[k, n[k]] - t[k, 1]) / 3600
                printf "%-12s %8s %7d %5d->%-5d %5d->%-5d %5d->%-5d %9.0f %9.0f %9.0f %8.1f %s\n", kk[1], kk[2], n[k],
                    r[k, 1], r[k, n[k]], p[k, 1], p[k, n[k]], a[k, 1], a[k, n[k]], slope(k, r, 1), slope(k, p, 1), slope(k, a, 1),
                    (dt > 0 ? (c[k, n[k]] - c[k, 1]) / dt : 0), ((ps < 1024 && ps > -1024) ? "yes" : "NO")
                runs++; if (ps >= 1024 || ps <= -1024) notflat++ }
            printf "runs judged: %d, not flat: %d\n", runs, notflat }' "$out/samples.csv"
} | tee "$out/summary.txt"
