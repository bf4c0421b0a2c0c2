# daemons.sh - what the integration scripts that start real daemons share (source it):
#   daemons_init NAME    a work dir /tmp/memsched-NAME-XXXXXX in $work, removed at exit (KEEP=1
#                        keeps it) after every pid in the pids array is killed
#   need_jq              jq, to read memschedctl --json: a skip (77) here, a failure under CI
#   fail MSG             print MSG and the tail of every log in $work, exit 1
#   eventually S CMD...  run CMD every 0.2 s until it succeeds, for at most S seconds
#                        (eventually.sh)
#   free_port            a TCP port nothing listens on at 127.0.0.1, below the ephemeral range
#                        (0 when none was found)

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
