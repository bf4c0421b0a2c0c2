#!/bin/bash
# coord_bench.sh [BUILD_DIR] [-- COORD_BENCH_ARGS...]
#
# The documented run of coord_bench (tests/bench/coord_bench.c): a real memsched-coordinator
# measured from outside over loopback. Its simulated agents share clients, so they cannot each
# hold the one key that is their host (issue 10: a key is a host): the coordinator runs with
# insecure=true on 127.0.0.1 and the bench without CURVE (--key -), so these numbers leave
# out CURVE's cost, but for ingest-curve, whose 20 agents each have a key. It makes a temporary directory with the coordinator's key pair (memschedctl
# keygen) and runs, each against a fresh coordinator from BUILD_DIR (default
# build/release) on a free loopback port with its own database and ipc control socket:
#   ingest         20 agents x 50-VM reports for 10 s: VM records/s, coordinator CPU, records
#                  per coordinator CPU-second (bench and coordinator share all CPUs)
#   ingest-pinned  the same with the coordinator pinned to CPU 0 and the bench to CPU 1
#                  (taskset; skipped on one CPU): the coordinator on exactly one core
#   ingest-curve   the ingest run over CURVE: each agent its own key, allowed as its host id
#                  (the target, 1,000,000 VM records per coordinator CPU-second, is with CURVE)
#   fanout         1,000 agents; policy-set to the last ack, and until policy-show shows them all
#   rss-paced      10,000 hosts x 50 VMs arriving at 3,000 hosts/s: VmRSS and VmHWM
#   rss-burst      the same as fast as the bench can send them (a reconnect storm)
#   scale-50000    50,000 hosts x 50 VMs (250 clients x 200 host ids) at 2,000 hosts/s
#                  each rss run also measures: `status` and `hosts --limit 100` while round 2
#                  reports, Pss / Pss_Anon (smaps_rollup), and a fleet policy set until policy
#                  show counts every host's ack
#   scrape-100, scrape-10000   the coordinator with metrics_listen, filled by the rss phase with
#                  100 or 10,000 hosts x 50 VMs: GET /metrics with curl (bytes, seconds to the
#                  last byte: a document the loop published, built a slice at a time), and
#                  how long `memschedctl status` waits while documents are being written
# It prints what each run measured and a summary table, and asserts nothing (benchmarks print
# numbers). Whatever it started is stopped and the directory removed, however it ends. Extra
# arguments after -- go to every coord_bench run (e.g. -- --vms 50). About 45 s on 2 CPUs, and
# about a minute more for the scrape runs. COORD_BENCH_ONLY=REGEX runs only the runs whose
# name matches (COORD_BENCH_ONLY=scrape: the scrape runs alone).
# From the repository root:
#   cmake --preset release && cmake --build --preset release -j2 && tests/bench/coord_bench.sh
set -eu
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build/release
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    build=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
bench="$build/tests/bench/coord_bench"
coordinator="$build/coordinator/memsched-coordinator"
ctl="$build/coordinator/memschedctl"
for f in "$bench" "$coordinator" "$ctl"; do
    [ -x "$f" ] || { echo "coord_bench.sh: $f not built" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memsched-coord-bench.XXXXXX")
coord_pid=
bench_pid=
tail_pid=
stop_coordinator() {
    if [ -n "$coord_pid" ]; then
        kill -TERM "$coord_pid" 2>/dev/null || true
        wait "$coord_pid" 2>/dev/null || true
        coord_pid=
    fi
}
cleanup() {
    if [ -n "$bench_pid" ]; then
        kill -TERM "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    if [ -n "$tail_pid" ]; then
        kill -TERM "$tail_pid" 2>/dev/null || true
        wait "$tail_pid" 2>/dev/null || true
    fi
    stop_coordinator
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1,000 agents are 1,000 TCP connections on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$tmp/keys" "$tmp/allow"
"$ctl" keygen coordinator --dir "$tmp/keys" >/dev/null
"$ctl" keygen bench-agents --dir "$tmp/keys" >/dev/null
cp "$tmp/keys/bench-agents.key" "$tmp/allow/"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_coordinator NAME [CPUS [KEY=VALUE...]]: a fresh coordinator (pinned to CPUS when not
# empty) with extra settings; sets coord_pid, endpoint and control.
start_coordinator() {
    local name=$1 cpus=${2:-}
    shift $(($# < 2 ? $# : 2))
    local pin=()
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    endpoint="tcp://127.0.0.1:$(free_port)"
    control="ipc://$tmp/$name.ctl"
    "${pin[@]}" "$coordinator" listen="$endpoint" control="$control" \
        key_file="$tmp/keys/coordinator.secret" allow_dir="$tmp/allow" db="$tmp/$name.db" \
        insecure="${insecure:-true}" "$@" 2>"$tmp/$name.log" &
    coord_pid=$!
    for _ in $(seq 1 100); do
        if "$ctl" --socket "$control" --timeout 200 status >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$coord_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "coord_bench.sh: the coordinator did not come up; its log:" >&2
    cat "$tmp/$name.log" >&2
    return 1
}

selected() { [[ "$1" =~ ${COORD_BENCH_ONLY:-.} ]]; }

# run NAME PHASE COORD_CPUS BENCH_CPUS [ARGS...]: one phase against a fresh coordinator; its
# output goes to the terminal and to $tmp/NAME.out. Empty CPU lists mean not pinned.
run() {
    local name=$1 phase=$2 coord_cpus=$3 bench_cpus=$4 rc=0
    shift 4
    selected "$name" || return 0
    local pin=()
    [ -n "$bench_cpus" ] && pin=(taskset -c "$bench_cpus")
    [ -n "$coord_cpus" ] && echo "[$name: coordinator pinned to CPU $coord_cpus, bench to CPU $bench_cpus]"
    start_coordinator "$name" "$coord_cpus" ${settings[@]+"${settings[@]}"} || return 1
    # In the background, so that a signal to this script is handled at once (by cleanup).
    "${pin[@]}" "$bench" "$phase" --pid "$coord_pid" --endpoint "$endpoint" --control "$control" \
        --server-key "$tmp/keys/coordinator.key" --key "${bench_key:--}" \
        "$@" "${extra[@]}" >"$tmp/$name.out" &
    bench_pid=$!
    tail -n +1 -s 0.1 --pid="$bench_pid" -f "$tmp/$name.out" &
    tail_pid=$!
    wait "$bench_pid" || rc=$?
    bench_pid=
    wait "$tail_pid" || true
    tail_pid=
    if ! kill -0 "$coord_pid" 2>/dev/null; then
        echo "coord_bench.sh: the coordinator died during $name; the end of its log:" >&2
        tail -20 "$tmp/$name.log" >&2
        rc=1
    fi
    echo "  (coordinator log: $(wc -l <"$tmp/$name.log") lines," \
        "$(grep -c '^\(warn\|err\) ' "$tmp/$name.log" || true) warnings/errors)"
    stop_coordinator
    [ "$rc" = 0 ] || echo "coord_bench.sh: $name exited with $rc" >&2
    echo
}

# scrape NAME CLIENTS HOSTS_PER_CLIENT: a coordinator with metrics_listen, filled by the rss
# phase, then scraped and asked for `status` while it writes documents (RESULT lines).
scrape() {
    local name=$1 clients=$2 per_client=$3 mport hosts want=$(($2 * $3))
    selected "$name" || return 0
    mport=$(free_port)
    start_coordinator "$name" "" "metrics_listen=$mport" || return 1
    "$bench" rss --pid "$coord_pid" --endpoint "$endpoint" --control "$control" \
        --server-key "$tmp/keys/coordinator.key" --key - --clients "$clients" \
        --hosts-per-client "$per_client" --rate 0 "${extra[@]}" >"$tmp/$name.rss" 2>&1 ||
        { echo "coord_bench.sh: $name: the rss phase failed" >&2; stop_coordinator; return 1; }
    # The first document with every host in it (one is published every second while scraped).
    for _ in $(seq 1 300); do
        hosts=$(curl -sf "http://127.0.0.1:$mport/metrics" |
            awk '/^memsched_fleet_hosts\{/ { n += $2 } END { print n + 0 }') || hosts=0
        [ "$hosts" = "$want" ] && break
        sleep 0.2
    done
    echo "$name: $want hosts x $(value_of "$tmp/$name.rss" rss_vms) VMs in the document: $hosts"
    for i in 1 2 3; do
        curl -sf -o /dev/null -w "RESULT scrape_bytes=%{size_download} scrape_s=%{time_total}\n" \
            "http://127.0.0.1:$mport/metrics" | tee -a "$tmp/$name.out"
    done
    # The control socket while documents are written (every second, as long as someone scrapes).
    for i in 1 2 3 4 5; do
        local t0 t1 curl_pid
        curl -sf -o /dev/null "http://127.0.0.1:$mport/metrics" &
        curl_pid=$!
        t0=$(date +%s%N)
        "$ctl" --socket "$control" --timeout 10000 status >/dev/null
        t1=$(date +%s%N)
        wait "$curl_pid" || true
        echo "RESULT status_during_scrape_ms=$(((t1 - t0) / 1000000))" | tee -a "$tmp/$name.out"
    done
    grep -h "VmHWM\|RESULT rss_round2_mib" "$tmp/$name.rss" | tail -2 || true
    stop_coordinator
    echo
}
value_of() { grep -o "\b$2=[^ ]*" "$1" 2>/dev/null | tail -1 | cut -d= -f2; }

extra=("$@")
ncpu=$(nproc)
echo "coord_bench.sh: $ncpu CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- |
    sed 's/^ *//')). The bench process (and its forked agents) and the coordinator share them:"
echo "  every rate below is for a coordinator competing with its own load generator for CPU."
echo "  Coordinator: $coordinator (log_level=info, to a file), CURVE on loopback."
echo
run ingest ingest "" "" || true
pinned=no
if [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null && selected ingest-pinned; then
    run ingest-pinned ingest 0 1 || true
    pinned=yes
fi
# With CURVE: each of the 20 agents its own key, allowed as its host id (a key is a host).
if selected ingest-curve; then
    for i in $(seq 0 19); do
        id=$(printf 'ingest-%04d' "$i")
        "$ctl" keygen "$id" --dir "$tmp/keys" >/dev/null
        cp "$tmp/keys/$id.key" "$tmp/allow/"
    done
    insecure=false bench_key=$tmp/keys/ run ingest-curve ingest "" "" || true
fi
run fanout fanout "" "" || true
run rss-paced rss "" "" --rate 3000 || true
run rss-burst rss "" "" --rate 0 || true
# 50,000 hosts: 250 clients (a ZeroMQ context holds 1,023 sockets, a client takes three) of 200
# host ids each, reporting at 2,000 hosts/s.
# A round of 50,000 hosts takes longer than the default down_after_ms here, and each host
# reports once a round: liveness is stretched so the first hosts of a round are not down by its
# end.
settings=(stale_after_ms=60000 down_after_ms=120000)
run scale-50000 rss "" "" --clients 250 --hosts-per-client 200 --rate 2000 || true
settings=()
if command -v curl >/dev/null; then
    scrape scrape-100 1 100 || true
    scrape scrape-10000 100 100 || true
else
    echo "coord_bench.sh: no curl: the scrape runs are left out"
fi

# The summary: the RESULT key=value lines of each run, one table.
value() { grep -o "\b$2=[^ ]*" "$tmp/$1.out" 2>/dev/null | tail -1 | cut -d= -f2; }
row() { printf '%-62s %s\n' "$1" "$(value "$2" "$3")${4:-}"; }
printf '%-62s %s\n' "measure" "value"
printf '%-62s %s\n' "-------" "-----"
for run_name in ingest ingest-pinned ingest-curve; do
    [ "$run_name" = ingest-pinned ] && [ "$pinned" = no ] && continue
    [ -f "$tmp/$run_name.out" ] || continue
    if [ "$run_name" = ingest ]; then
        t="ingest, $(value ingest ingest_agents) agents, CPUs shared"
    elif [ "$run_name" = ingest-curve ]; then
        t="ingest with CURVE, a key per agent, CPUs shared"
    else
        t="ingest pinned (coordinator CPU 0, bench CPU 1)"
    fi
    row "$t: VM records/s" "$run_name" ingest_records_per_s
    row "  coordinator CPU (% of one core)" "$run_name" ingest_coord_cpu_pct " %"
    row "    main thread / ZeroMQ I/O thread" "$run_name" ingest_coord_main_cpu_pct \
        " % / $(value "$run_name" ingest_coord_zmq_cpu_pct) %"
    row "  VM records per coordinator CPU-s (target >= 1M with CURVE)" "$run_name" \
        ingest_records_per_cpu_s
    row "  bench process CPU (% of one core)" "$run_name" ingest_bench_cpu_pct " %"
    row "  machine busy (% of all CPUs)" "$run_name" ingest_machine_busy_pct " %"
    row "  other processes on the machine (% of one core)" "$run_name" ingest_other_cpu_pct " %"
    row "  a control 'status' request waited" "$run_name" ingest_control_wait_ms " ms"
done
if [ -f "$tmp/fanout.out" ]; then
    row "fanout: agents" fanout fanout_hosts
    row "  policy-set answered (every push sent)" fanout fanout_reply_ms " ms"
    row "  last ack sent by the agents" fanout fanout_last_ack_ms " ms"
    row "  all acks recorded: policy-show answer (asked at)" fanout fanout_recorded_ms \
        " ms ($(value fanout fanout_recorded_asked_ms) ms), $(value fanout fanout_recorded) acks"
fi
for run_name in rss-paced rss-burst scale-50000; do
    [ -f "$tmp/$run_name.out" ] || continue
    rate=$(value "$run_name" rss_rate)
    [ "$rate" = 0 ] && how="unpaced" || how="$rate hosts/s"
    row "rss ($how): $(value "$run_name" rss_hosts) hosts x $(value "$run_name" rss_vms) VMs, VmRSS round 1" \
        "$run_name" rss_round1_mib " MiB"
    row "  VmRSS after round 2 (steady state)" "$run_name" rss_round2_mib " MiB"
    row "  VmHWM (peak)" "$run_name" hwm_round2_mib " MiB"
    row "  Pss / Pss_Anon (smaps_rollup; target VmRSS < 1024 MiB)" "$run_name" pss_mib \
        " MiB / $(value "$run_name" pss_anon_mib) MiB"
    row "  status while round 2 reports (target < 50 ms)" "$run_name" status_ms " ms"
    row "  hosts --limit 100 while round 2 reports (target < 50 ms)" "$run_name" hosts_limit_ms " ms"
    row "  policy set acked by every host, recorded (target < 10 s)" "$run_name" \
        fanout_all_recorded_s " s"
done
for run_name in scrape-100 scrape-10000; do
    [ -f "$tmp/$run_name.out" ] || continue
    row "$run_name: GET /metrics bytes" "$run_name" scrape_bytes
    row "  seconds to the last byte (last of 3)" "$run_name" scrape_s " s"
    row "  memschedctl status while documents are written (last of 5)" "$run_name" \
        status_during_scrape_ms " ms (all: $(grep -o 'status_during_scrape_ms=[0-9]*' \
        "$tmp/$run_name.out" | cut -d= -f2 | tr '\n' ' '))"
done
