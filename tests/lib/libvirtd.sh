# shellcheck shell=bash
#
# libvirtd.sh - a private libvirtd with libvirt's test driver, for tests and benchmarks.
#
# Source it, then:
#   libvirtd_available            0 when libvirtd can be run here; else 1 and LIBVIRTD_WHY says why
#   libvirtd_start [NODE.xml]     start a private daemon; sets and exports LIBVIRTD_DIR,
#                                 LIBVIRTD_SOCK and LIBVIRTD_URI (test+unix:///default?socket=...,
#                                 or the given test-driver XML, copied into LIBVIRTD_DIR)
#   libvirtd_stop                 SIGTERM, then SIGKILL after 10 s; the directory stays
#   libvirtd_kill                 SIGKILL at once (a crash); the directory stays
#   libvirtd_restart              stop if running, start again on the same socket and XML
#   libvirtd_cleanup              stop and remove LIBVIRTD_DIR (libvirtd_start traps EXIT with it)
#
# Why it runs the daemon like this: libvirtd run by root is the system daemon (qemu:///system,
# /run/libvirt, /var/lib/libvirt) and would collide with a real one; run by any other user it is
# a session daemon that keeps everything under the XDG directories it is given. So as root the
# daemon runs as the unprivileged user `nobody` (setpriv, from util-linux), otherwise as the
# caller; either way with private XDG directories in a fresh temp directory. Root's clients can
# use nobody's socket; the daemon reads the test-driver XML, so that is copied in beside it.
#
# State lives in LIBVIRTD_DIR (the pid file, the XML, the log), so a subshell or a test program
# that inherits LIBVIRTD_DIR can stop, kill or restart the same daemon: e.g.
#   bash -c '. tests/lib/libvirtd.sh && libvirtd_kill'
#
# It installs nothing. Debian packages: libvirt-daemon (libvirtd; the test driver is in libvirt0),
# installed with --no-install-recommends (otherwise it pulls in QEMU).

LIBVIRTD_START_TIMEOUT_S=${LIBVIRTD_START_TIMEOUT_S:-20}

_libvirtd_bin() {
    command -v libvirtd 2>/dev/null && return 0
    [ -x /usr/sbin/libvirtd ] && echo /usr/sbin/libvirtd && return 0
    return 1
}

libvirtd_available() {
    LIBVIRTD_WHY=""
    if ! _libvirtd_bin >/dev/null; then
        LIBVIRTD_WHY="libvirtd not found (Debian: apt-get install --no-install-recommends libvirt-daemon)"
        return 1
    fi
    if [ "$(id -u)" = 0 ]; then
        if ! command -v setpriv >/dev/null; then
            LIBVIRTD_WHY="running as root needs setpriv (util-linux) to run libvirtd as nobody"
            return 1
        fi
        if ! id nobody >/dev/null 2>&1; then
            LIBVIRTD_WHY="running as root needs the user nobody to run libvirtd as"
            return 1
        fi
    fi
    return 0
}

# The daemon's pid, or nothing when it is not running (a zombie counts as gone).
_libvirtd_pid() {
    local pid state
    [ -n "${LIBVIRTD_DIR:-}" ] && [ -f "$LIBVIRTD_DIR/pid" ] || return 1
    pid=$(cat "$LIBVIRTD_DIR/pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ] || return 1
    echo "$pid"
}

_libvirtd_wait_gone() {
    local deadline=$((SECONDS + $1))
    while _libvirtd_pid >/dev/null; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.05
    done
    return 0
}

# Start the daemon in LIBVIRTD_DIR (already laid out) and wait for its socket.
_libvirtd_spawn() {
    local bin pid deadline
    bin=$(_libvirtd_bin) || return 1
    rm -f "$LIBVIRTD_SOCK" # a killed daemon leaves its socket behind
    local -a run=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$LIBVIRTD_DIR/home"
        XDG_CONFIG_HOME="$LIBVIRTD_DIR/config" XDG_CACHE_HOME="$LIBVIRTD_DIR/cache"
        XDG_RUNTIME_DIR="$LIBVIRTD_DIR/run" "$bin")
    if [ "$(id -u)" = 0 ]; then
        run=(setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups "${run[@]}")
    fi
    # setpriv and env exec, so $! is the daemon itself. It stays in the caller's process group:
    # whatever kills a hung test (ctest's timeout) kills the daemon with it.
    "${run[@]}" >>"$LIBVIRTD_DIR/libvirtd.log" 2>&1 </dev/null &
    pid=$!
    disown "$pid" 2>/dev/null # no "Killed" job notice when a test kills it on purpose
    echo "$pid" >"$LIBVIRTD_DIR/pid"
    deadline=$((SECONDS + LIBVIRTD_START_TIMEOUT_S))
    until [ -S "$LIBVIRTD_SOCK" ]; do
        if ! _libvirtd_pid >/dev/null; then
            echo "libvirtd.sh: libvirtd exited at start; its log:" >&2
            tail -n 20 "$LIBVIRTD_DIR/libvirtd.log" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "libvirtd.sh: no socket after ${LIBVIRTD_START_TIMEOUT_S}s" >&2
            kill -KILL "$pid" 2>/dev/null
            return 1
        fi
        sleep 0.05
    done
    return 0
}

libvirtd_start() {
    local xml=${1:-}
    libvirtd_available || {
        echo "libvirtd.sh: $LIBVIRTD_WHY" >&2
        return 1
    }
    # As root the daemon runs as nobody, who must reach the directory: /tmp, whatever TMPDIR
    # says. Short paths also keep the socket within the 108 bytes a unix socket path may have.
    local base=${TMPDIR:-/tmp}
    [ "$(id -u)" = 0 ] && base=/tmp
    LIBVIRTD_DIR=$(mktemp -d "$base/memsched-libvirtd.XXXXXX") || return 1
    mkdir -p "$LIBVIRTD_DIR"/{config,cache,run,home}
    # The session daemon puts its socket under XDG_RUNTIME_DIR/libvirt.
    LIBVIRTD_SOCK="$LIBVIRTD_DIR/run/libvirt/libvirt-sock"
    if [ -n "$xml" ]; then
        cp "$xml" "$LIBVIRTD_DIR/node.xml" || return 1
        LIBVIRTD_URI="test+unix://$LIBVIRTD_DIR/node.xml?socket=$LIBVIRTD_SOCK"
    else
        LIBVIRTD_URI="test+unix:///default?socket=$LIBVIRTD_SOCK"
    fi
    if [ "$(id -u)" = 0 ]; then
        chown -R nobody: "$LIBVIRTD_DIR"
    fi
    chmod 0700 "$LIBVIRTD_DIR"
    export LIBVIRTD_DIR LIBVIRTD_SOCK LIBVIRTD_URI
    _libvirtd_trap_exit
    _libvirtd_spawn
}

libvirtd_stop() {
    local pid
    pid=$(_libvirtd_pid) || return 0
    kill -TERM "$pid" 2>/dev/null
    if ! _libvirtd_wait_gone 10; then
        kill -KILL "$pid" 2>/dev/null
        _libvirtd_wait_gone 5
    fi
    return 0
}

libvirtd_kill() {
    local pid
    pid=$(_libvirtd_pid) || return 0
    kill -KILL "$pid" 2>/dev/null
    _libvirtd_wait_gone 5
}

libvirtd_restart() {
    if [ -z "${LIBVIRTD_DIR:-}" ] || [ ! -d "$LIBVIRTD_DIR" ]; then
        echo "libvirtd.sh: libvirtd_restart without libvirtd_start (LIBVIRTD_DIR unset)" >&2
        return 1
    fi
    libvirtd_stop
    _libvirtd_spawn
}

libvirtd_cleanup() {
    [ -n "${LIBVIRTD_DIR:-}" ] || return 0
    libvirtd_stop
    case "$LIBVIRTD_DIR" in
    */memsched-libvirtd.*) rm -rf "$LIBVIRTD_DIR" ;;
    esac
    unset LIBVIRTD_DIR LIBVIRTD_SOCK LIBVIRTD_URI
}

# Run libvirtd_cleanup on exit, after whatever EXIT trap the caller had; INT and TERM exit so
# that the EXIT trap runs.
_libvirtd_trap_exit() {
    local prev words=()
    [ -n "${_LIBVIRTD_TRAPPED:-}" ] && return 0
    _LIBVIRTD_TRAPPED=1
    # `trap -p EXIT` prints  trap -- 'COMMAND' EXIT  (quoted for eval), or nothing.
    eval "words=($(trap -p EXIT))"
    prev=${words[2]:-}
    # shellcheck disable=SC2064 # expand prev now
    trap "libvirtd_cleanup${prev:+; $prev}" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
