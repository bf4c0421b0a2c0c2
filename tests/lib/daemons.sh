# daemons.sh - what the integration scripts that start real daemons share (source it):
#   daemons_init NAME    a work dir /tmp/memsched-NAME-XXXXXX in $work, removed at exit (KEEP=1
#                        keeps it) after every pid in the pids array is killed
#   need_jq              jq, to read memschedctl --json: a skip (77) here, a failure under CI
#   fail MSG             print MSG and the tail of every log in $work, exit 1
#   eventually S CMD...  run CMD every 0.2 s until it succeeds, for at most S seconds
#                        (eventually.sh)
#   free_port            a TCP port nothing listens on at 127.0.0.1, below the ephemeral range
#                        (0 when none was found)
# A coordinator and sim agents on loopback, over CURVE (these read $coordinator_bin,
# $agent_bin, $ctl_bin, $scenarios and the coordinator's $port):
#   fleet_keys NAME...   key pairs in $work/keys for the coordinator and each NAME
#                        (memschedctl keygen); each NAME's public key allowed in $work/allow
#   start_coordinator [KEY=VALUE...]
#                        the coordinator on tcp://127.0.0.1:$port with those keys, control
#                        socket $work/control.sock, store $work/fleet.db and the settings given;
#                        log coordinator.log; its pid in coordinator_pid and pids
#   start_agent NAME SCENARIO [LINE...]
#                        agent NAME on sim:$scenarios/SCENARIO, reporting to it every 500 ms:
#                        config NAME.conf (LINEs appended: a later key wins), state in
#                        state-NAME, log NAME.log; its pid in NAME_pid and pids
# (A script that starts its daemons another way defines its own start_* after sourcing this.)

. "$(dirname "${BASH_SOURCE[0]}")/eventually.sh"

daemons_init() {
    work=$(mktemp -d "/tmp/memsched-$1-XXXXXX")
    pids=()
    trap daemons_cleanup EXIT
}

daemons_cleanup() {
    local pid
    # CONT first: a test may have stopped a daemon to make it silent.
    for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP:-}" != "1" ]; then rm -rf "$work"; else echo "kept $work"; fi
}

need_jq() {
    command -v jq >/dev/null && return 0
    [ "${CI:-}" = "true" ] && { echo "FAIL: no jq (deploy/install-deps.sh --test installs it)"; exit 1; }
    echo "SKIP: no jq to read memschedctl's --json (deploy/install-deps.sh --test installs it)"
    exit 77
}

fail() {
    local f
    echo "FAIL: $*" >&2
    for f in "$work"/*.log; do
        [ -f "$f" ] || continue
        echo "--- ${f##*/}" >&2
        tail -n 20 "$f" >&2 || true
    done
    exit 1
}

free_port() {
    local port
    for _ in $(seq 50); do
        # Below the kernel's ephemeral range (32768 up here): no outgoing connection holds it.
        port=$((10000 + RANDOM % ($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range) - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    echo 0
}

fleet_keys() {
    local name
    mkdir -p "$work/keys" "$work/allow"
    for name in coordinator "$@"; do "$ctl_bin" keygen "$name" --dir "$work/keys" >/dev/null; done
    for name in "$@"; do cp "$work/keys/$name.key" "$work/allow/"; done
}

start_coordinator() {
    "$coordinator_bin" "listen=tcp://127.0.0.1:$port" "control=ipc://$work/control.sock" \
        "key_file=$work/keys/coordinator.secret" "allow_dir=$work/allow" "db=$work/fleet.db" \
        "$@" >>"$work/coordinator.log" 2>&1 &
    coordinator_pid=$!
    pids+=("$coordinator_pid")
}

start_agent() {
    local name=$1 scenario=$2 line
    shift 2
    {
        echo "uri = sim:$scenarios/$scenario"
        echo "coordinator = tcp://127.0.0.1:$port"
        echo "coordinator_key = $work/keys/coordinator.key"
        echo "key_file = $work/keys/$name.secret"
        echo "host_id = $name"
        echo "state_dir = $work/state-$name"
        echo "interval_ms = 500"
        for line in "$@"; do echo "$line"; done
    } >"$work/$name.conf"
    "$agent_bin" --config "$work/$name.conf" >>"$work/$name.log" 2>&1 &
    printf -v "${name}_pid" %s "$!"
    pids+=("$!")
}
