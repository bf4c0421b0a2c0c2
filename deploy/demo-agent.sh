#!/usr/bin/env bash
# The single-agent demo: installs what is needed, builds, and runs one agent on a modelled host.
# Each round prints a per-VM table (balloon, unused, decision); the end prints a summary.
#   bash deploy/demo-agent.sh (as root) [SCENARIO.json]      (default tests/scenarios/demo.json)
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:-tests/scenarios/demo.json}
bash deploy/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target memsched-agent >/dev/null

state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
build/release/agent/memsched-agent --config deploy/demo/agent.conf --state-dir "$state" \
    --uri "sim:${scenario}?speed=4" --table
