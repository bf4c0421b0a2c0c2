#!/usr/bin/env bash
# web.sh - the dashboard in a real browser (ctest label `web`; root not needed).
#
#   web.sh AGENT COORDINATOR MEMSCHEDCTL SCENARIO_DIR WEB_ROOT NODE_MODULES ARTIFACTS
#
# A coordinator (CURVE, SQLite, loopback) serving the dashboard from WEB_ROOT on its metrics
# listener, three agents on sim hosts, and a fleet policy they ack. Then dashboard.mjs drives
# Debian's headless chromium through playwright-core (NODE_MODULES, installed at build time
# from tests/web/package-lock.json) over every page: no console error, the host table equals
# `memschedctl --json hosts`, the host page's charts have data points and decision marks, the
# VM page shows `memschedctl why`, the policy page each host's ack. Screenshots and the
# coordinator's log are kept in ARTIFACTS. Needs node, chromium, jq, playwright-core and the
# chart library: a skip (77) when absent, a failure under CI=true.
set -euo pipefail

agent_bin=$1 coordinator_bin=$2 ctl_bin=$3 scenarios=$4 web_root=$5 node_modules=$6 artifacts=$7
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/daemons.sh"
need_jq

missing() {
    [ "${CI:-}" = "true" ] && { echo "FAIL: $1"; exit 1; }
    echo "SKIP: $1"
    exit 77
}
command -v node >/dev/null || missing "no node (deploy/install-deps.sh --test installs nodejs)"
[ -x /usr/bin/chromium ] || missing "no /usr/bin/chromium (deploy/install-deps.sh --test installs it)"
[ -d "$node_modules/playwright-core" ] || missing "no playwright-core in $node_modules (the build runs npm ci when npm is there)"
[ -f "$web_root/uPlot.iife.min.js" ] || missing "no chart library in $web_root (the build runs npm ci when npm is there)"

daemons_init web
mkdir -p "$artifacts"
rm -f "$artifacts"/*.png
ctl() { "$ctl_bin" --socket "ipc://$work/control.sock" "$@"; }

port=$(free_port) http_port=$(free_port)
[ "$port" != 0 ] && [ "$http_port" != 0 ] && [ "$port" != "$http_port" ] || fail "no two free ports"
mkdir -p "$work/want"
fleet_keys hv1 hv2 hv3
start_coordinator "metrics_listen=$http_port" "web_root=$web_root" stale_after_ms=60000 \
    down_after_ms=120000

eventually 10 test -S "$work/control.sock" || fail "coordinator did not open its control socket"
start_agent hv1 one_hog.json "labels = rack=r1"
start_agent hv2 demand_moves.json "labels = rack=r1"
start_agent hv3 stuck_balloon.json "labels = rack=r1"
for h in hv1 hv2 hv3; do
    eventually 20 sh -c "'$ctl_bin' --socket 'ipc://$work/control.sock' hosts | grep -Eq '^$h +fresh'" ||
        fail "$h never registered"
done
ctl policy set --scope fleet --reason "web test" host_min_unused_mib=250 >/dev/null || fail "policy set failed"
acked() { ctl --json policy show | jq -e '[.hosts[] | select(.last_ack.applied == true)] | length == 3'; }
eventually 20 acked || fail "the hosts never acked the fleet policy"

# hv1's hog: a VM with decisions, so its why and its chart have something to show.
vm=$(ctl --json vms --host hv1 | jq -er '.vms[] | select(.name == "hog") | .uuid') || fail "no hog on hv1"
has_why() { ctl --json why hv1 "$vm" | jq -e '.decisions | length > 0'; }
eventually 20 has_why || fail "hv1's hog never had a decision"
# Its history: every VM's points and the decisions (the coordinator samples every few seconds).
has_history() {
    ctl --json history hv1 | jq -e '(.vms | length > 0) and all(.vms[]; (.t | length) >= 2) and (.decisions | length > 0)'
}
eventually 60 has_history || fail "no history with two points a VM and decisions for hv1 (memschedctl history hv1)"
# hv1's agent stopped (and liveness slow to notice), so what the VM page, the host page's
# history and memschedctl show of hv1 is the same; hv2 and hv3 keep reporting.
kill -STOP "$hv1_pid"
sleep 1 # a report on its way lands
# What memschedctl says, read just before the browser does.
ctl --json hosts >"$work/want/hosts.json"
ctl --json why hv1 "$vm" >"$work/want/why.json"
ctl --json history hv1 >"$work/want/history.json"
ctl --json policy show >"$work/want/policy.json"

BASE="http://127.0.0.1:$http_port" WANT="$work/want" HOST=hv1 VM="$vm" ARTIFACTS="$artifacts" \
    FIXTURE="$here/fixtures/history.json" NODE_MODULES="$node_modules" \
    node "$here/dashboard.mjs" 2>&1 | tee "$work/dashboard.log" || true
cp "$work/coordinator.log" "$artifacts/" 2>/dev/null || true
grep -q '^PASS' "$work/dashboard.log" || fail "the browser test failed (screenshots in $artifacts)"
echo "screenshots: $artifacts"
