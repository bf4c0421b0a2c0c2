#!/usr/bin/env bash
# metrics.sh - the coordinator's Prometheus endpoint, checked by Prometheus' own tools
# (ctest label `integration`).
#
#   metrics.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR
#
# A coordinator with metrics_listen and two agents on sim hosts (CURVE, SQLite, loopback).
# Checks: /metrics answers with the exposition content type; `promtool check metrics` accepts
# the scrape; per-host and per-VM series carry host, domain and uuid; a real Prometheus server
# scraping the coordinator answers /api/v1/query for the fleet's host memory with exactly what
# `memschedctl --json status` reports; a VM left alone says why (memsched_vm_skipped); after a fleet policy, each host's ack and its floor
# headroom (available above host_min_unused) show; an unknown path is 404. Needs jq, curl, promtool and
# prometheus (Debian's prometheus package): a skip (77) when absent, a failure under CI=true.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4
. "$(dirname "$0")/../lib/daemons.sh"
need_jq
for tool in curl promtool prometheus; do
    command -v "$tool" >/dev/null && continue
    [ "${CI:-}" = "true" ] && { echo "FAIL: no $tool (deploy/install-deps.sh --test installs it)"; exit 1; }
    echo "SKIP: no $tool (deploy/install-deps.sh --test installs it)"
    exit 77
done
daemons_init metrics

ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

port=$(free_port) metrics_port=$(free_port) prom_port=$(free_port)
[ "$port" != 0 ] && [ "$metrics_port" != 0 ] && [ "$prom_port" != 0 ] || fail "no free port"
[ "$port" != "$metrics_port" ] && [ "$metrics_port" != "$prom_port" ] && [ "$port" != "$prom_port" ] ||
    fail "free_port gave the same port twice: run again"
fleet_keys host1 host2
start_coordinator "metrics_listen=$metrics_port"

eventually 10 test -S "$work/control.sock" || fail "coordinator did not open its control socket"
start_agent host1 one_hog.json
start_agent host2 no_driver.json
host_is() { ctl hosts | grep -E "^$1 +fresh\b"; }
eventually 20 host_is host1 || fail "host1 never registered"
eventually 20 host_is host2 || fail "host2 never registered"

# The scrape: content type, both hosts' VMs in it (a document is published every second).
scrape() { curl -sf "http://127.0.0.1:$metrics_port/metrics" -o "$work/scrape.txt"; }
has_both() { scrape && grep -q 'host="host1"' "$work/scrape.txt" && grep -q 'host="host2"' "$work/scrape.txt"; }
eventually 10 has_both || fail "the scrape never showed both hosts"
type=$(curl -sf -o /dev/null -w '%{content_type}' "http://127.0.0.1:$metrics_port/metrics")
[ "$type" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "content type '$type'"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics_port/nothing")
[ "$code" = 404 ] || fail "an unknown path answered $code, not 404"

promtool check metrics <"$work/scrape.txt" >"$work/promtool.log" 2>&1 ||
    fail "promtool check metrics refused the scrape: $(cat "$work/promtool.log")"
grep -Eq '^memsched_vm_balloon_actual_bytes\{host="host1",domain="[^"]+",uuid="[0-9a-f-]{36}"\} [0-9]+$' \
    "$work/scrape.txt" || fail "no per-VM balloon series with host, domain and uuid"
grep -Eq '^memsched_host_liveness\{host="host1",liveness="fresh"\} 1$' "$work/scrape.txt" ||
    fail "host1 is not fresh in the scrape"
grep -Eq '^memsched_fleet_hosts\{liveness="fresh"\} 2$' "$work/scrape.txt" ||
    fail "the scrape does not count 2 fresh hosts"
grep -Eq '^memsched_decisions_total\{host="host1",reason="grow"\} [0-9]+$' "$work/scrape.txt" ||
    fail "no decisions counter by reason"
# The history's own series: at its full resolution (a small fleet), holding some series.
grep -Eq '^memsched_history_step_seconds\{tier="fine"\} 10$' "$work/scrape.txt" ||
    fail "no history resolution (10 s) in the scrape"
grep -Eq '^memsched_history_series [1-9][0-9]*$' "$work/scrape.txt" || fail "no history series counted"
# host2's guest without a balloon device is left alone, and the scrape says why.
grep -Eq '^memsched_vm_skipped\{host="host2",domain="noballoon",uuid="[0-9a-f-]{36}",reason="no_balloon"\} 1$' \
    "$work/scrape.txt" || fail "no skip reason for host2's VM without a balloon"

# A fleet policy: each host's ack shows, and its floor headroom is its available memory above
# that policy's host_min_unused (both from one scrape).
ctl policy set --scope fleet --reason "metrics test" host_min_unused_mib=300 >/dev/null ||
    fail "policy set failed"
acked() { scrape && grep -Eq '^memsched_host_policy_ack_applied\{host="host1"\} 1$' "$work/scrape.txt"; }
eventually 20 acked || fail "host1's ack of the fleet policy never showed"
sample() { sed -n "s/^$1 //p" "$work/scrape.txt"; }
available=$(sample 'memsched_host_available_bytes{host="host1"}')
headroom=$(sample 'memsched_host_floor_headroom_bytes{host="host1"}')
[ -n "$available" ] && [ -n "$headroom" ] || fail "no available or floor headroom sample for host1"
[ $((available - headroom)) = $((300 * 1024 * 1024)) ] ||
    fail "available $available - floor headroom $headroom is not host_min_unused (300 MiB)"
promtool check metrics <"$work/scrape.txt" >"$work/promtool.log" 2>&1 ||
    fail "promtool check metrics refused the scrape with a policy: $(cat "$work/promtool.log")"

# A real Prometheus server scrapes the coordinator; the fleet's host memory read back through
# its HTTP API equals memschedctl's.
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: memsched
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" >>"$work/prometheus.log" 2>&1 &
pids+=("$!")

query() {
    curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
        jq -er '.data.result[0].value[1]'
}
eventually 30 query memsched_fleet_host_memory_bytes ||
    fail "Prometheus never had memsched_fleet_host_memory_bytes"
want=$(ctl --json status | jq -er '.status.memory.host_total_kib * 1024')
got=$(query memsched_fleet_host_memory_bytes)
[ "$got" = "$want" ] || fail "Prometheus says $got bytes of host memory, memschedctl $want"
hosts_want=$(ctl --json status | jq -er '.status.hosts.total')
hosts_got=$(query 'sum(memsched_fleet_hosts)')
[ "$hosts_got" = "$hosts_want" ] || fail "Prometheus counts $hosts_got hosts, memschedctl $hosts_want"
up=$(query 'up{job="memsched"}')
[ "$up" = 1 ] || fail "Prometheus sees the target as up=$up"
# The Grafana dashboard (deploy/grafana/memsched.json) asks only for what is exported: every
# panel's expression, with $host as all hosts, is valid PromQL here, and every memsched_ metric
# it names is in the scrape.
dashboard="$(dirname "$0")/../../deploy/grafana/memsched.json"
jq -r '.panels[].targets[].expr' "$dashboard" | sed 's/\$host/.*/g' >"$work/exprs.txt"
while IFS= read -r expr; do
    status=$(curl -s "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$expr" |
        jq -r '.status')
    [ "$status" = success ] || fail "the dashboard's '$expr' is not a query Prometheus takes"
done <"$work/exprs.txt"
for metric in $(grep -o 'memsched_[a-z_]*' "$work/exprs.txt" | sort -u); do
    grep -q "^$metric[{ ]" "$work/scrape.txt" || fail "the dashboard uses $metric, which is not exported"
done
echo "PASS: promtool accepts the scrape ($(wc -c <"$work/scrape.txt") bytes); Prometheus reads $got bytes of host memory, as memschedctl does"
