#!/bin/bash
# with_libvirtd.sh [--xml NODE.xml] -- COMMAND ARGS...
#
# Runs COMMAND against a private libvirtd (tests/lib/libvirtd.sh) and stops the daemon after it,
# whatever happens. Every argument "@URI@" becomes the daemon's test+unix URI and "@LIB@" the
# path of libvirtd.sh; LIBVIRTD_DIR is exported, so COMMAND can stop, kill or restart the same
# daemon. Exits 77 (skipped) when libvirtd cannot run here, saying why; else COMMAND's status.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib="$here/../lib/libvirtd.sh"
# shellcheck source=SCRIPTDIR/../lib/libvirtd.sh
. "$lib"

xml=""
while [ $# -gt 0 ]; do
    case "$1" in
    --xml) xml=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: with_libvirtd.sh [--xml NODE.xml] -- COMMAND ARGS..." >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "with_libvirtd.sh: no command" >&2; exit 2; }

if ! libvirtd_available; then
    if [ "${CI:-}" = "true" ]; then
        echo "FAIL: $LIBVIRTD_WHY (CI=true: a missing prerequisite is a failure)"
        exit 1
    fi
    echo "SKIP: $LIBVIRTD_WHY"
    exit 77
fi
libvirtd_start ${xml:+"$xml"} || { echo "with_libvirtd.sh: libvirtd did not start" >&2; exit 1; }
echo "with_libvirtd.sh: libvirtd pid $(cat "$LIBVIRTD_DIR/pid") at $LIBVIRTD_URI"

args=()
for a in "$@"; do
    a=${a//@URI@/$LIBVIRTD_URI}
    a=${a//@LIB@/$lib}
    args+=("$a")
done
"${args[@]}"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "with_libvirtd.sh: $1 exited $rc; libvirtd's log ends:" >&2
    tail -n 20 "$LIBVIRTD_DIR/libvirtd.log" >&2
fi
exit "$rc"
