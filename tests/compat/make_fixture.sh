#!/usr/bin/env bash
# make_fixture.sh OLD_COMMIT [NEW_BUILD_DIR] - the bytes a previous release's agent sends.
#
# Builds OLD_COMMIT's wire code in a temporary worktree (with compat_report.c added to it),
# encodes compat_report's report with it into tests/compat/report_<short commit>.bin - the
# fixture compat_previous_report decodes with today's rules - and the other way round decodes
# today's encoding (compat_report from NEW_BUILD_DIR, default build/dev) with the old rules: what
# a coordinator not yet upgraded makes of an upgraded agent. Run it when the protocol changes,
# commit the new fixture, and keep the old ones.
set -euo pipefail
old=$1 new_build=${2:-build/dev}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
cleanup() { git -C "$src" worktree remove --force "$tmp/old" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
short=$(git -C "$src" rev-parse --short=7 "$old")
git -C "$src" worktree add -q --detach "$tmp/old" "$old"
cat >>"$tmp/old/CMakeLists.txt" <<CMAKE
add_executable(compat_report $src/tests/compat/compat_report.c)
target_link_libraries(compat_report PRIVATE memsched_wire)
CMAKE
cmake -S "$tmp/old" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$tmp/build" -j 2 --target compat_report >/dev/null
"$tmp/build/compat_report" encode "$src/tests/compat/report_$short.bin"
echo "make_fixture: wrote tests/compat/report_$short.bin ($(stat -c %s "$src/tests/compat/report_$short.bin") bytes) with $old's encoder"
"$src/$new_build/tests/compat/compat_report" encode "$tmp/new.bin"
echo "make_fixture: today's report decoded by $old's rules: $("$tmp/build/compat_report" decode "$tmp/new.bin")"
