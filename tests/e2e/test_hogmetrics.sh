#!/usr/bin/env bash
# test_hogmetrics.sh - hogmetrics.awk (the per-hog metrics of the e2e summary) on a recording
# made up here, whose answers are known: pressure seconds from the guest's stats samples, the
# first grant, what was granted and how fast it came back; by column name, whatever columns the
# agent adds. Needs only awk (ctest label `unit`).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
M=1024

header="t_ms,round,vm,name,reason,old_target_kib,new_target_kib,actual_kib,max_kib,unused_kib,usable_kib,stats_age_ms,stuck,vm_kib,host_kib,host_total_kib,host_available_kib,host_min_unused_kib,applied"
# row T_MS ROUND REASON ACTUAL_MIB UNUSED_MIB USABLE_MIB AGE_MS GIVEN_MIB (one VM, "hogvm")
row() {
    printf '%d,%d,uuid-h,"hogvm",%s,%d,%d,%d,%d,%d,%d,%d,0,0,%d,8388608,4194304,204800,1\n' \
        "$1" "$2" "$3" $(($4 * M)) $((($4 + $8) * M)) $(($4 * M)) $((1024 * M)) $(($5 * M)) \
        $(($6 * M)) "$7" $(($8 * M))
}
# A hog starts at t=1000. Samples (t_ms - age): 0.5 s (unused 200), 1.5 s (150; usable 95), 2.5 s (90:
# below 100), 3.5 s (80), the same sample again at 4 s, 4.5 s (150). Below the minimum from
# 2.5 s to 4.5 s: 2 s. Grows at 3000 (+100) and 4000 (+60): first grant 2 s after the hog,
# 160 MiB granted. Free at 6000; the balloon, 460 at its highest, comes down 64 a round to
# 332 (128 returned); 90 % of that (115.2) is reached at 9000.
{
    echo "$header"
    row 1000 1 in_band 300 200 195 500 0
    row 2000 2 in_band 300 150 95 500 0
    row 3000 3 grow 300 90 85 500 100
    row 4000 4 grow 400 80 75 500 60
    row 4500 5 in_flight 400 80 75 1000 0
    row 5000 6 in_band 460 150 145 500 0
    row 6500 7 in_band 460 400 395 500 0
    row 7000 8 shrink 460 400 395 500 0
    row 8000 9 shrink 396 340 335 500 0
    row 9000 10 shrink 332 280 275 500 0
    row 10000 11 in_band 332 280 275 500 0
} >"$tmp/rounds.csv"

# expect NAME WANT FILE [awk -v ...]: hogmetrics.awk's line must be WANT.
expect() {
    local name=$1 want=$2 file=$3 got
    shift 3
    got=$(awk -F, -v vm=hogvm -v min_kib=$((100 * M)) "$@" -f "$here/csvcols.awk" \
        -f "$here/hogmetrics.awk" "$file" 2>&1)
    if [ "$got" = "$want" ]; then
        echo "ok   $name: $got"
    else
        echo "FAIL $name: want \"$want\", got \"$got\""
        failures=$((failures + 1))
    fi
}

expect freed "pressure_ms=2000 first_grant_ms=2000 granted_kib=163840 giveback90_ms=3000 returned_kib=131072" \
    "$tmp/rounds.csv" -v t0=1000 -v t_free=6000
# Without a free: active to the last round; no give-back.
expect not_freed "pressure_ms=2000 first_grant_ms=2000 granted_kib=163840 giveback90_ms= returned_kib=0" \
    "$tmp/rounds.csv" -v t0=1000
# The window clips the pressure: a hog from 3 s sees 1.5 s of it.
expect late_start "pressure_ms=1500 first_grant_ms=0 granted_kib=163840 giveback90_ms= returned_kib=0" \
    "$tmp/rounds.csv" -v t0=3000
# The usable signal (MemAvailable) is below 100 one sample earlier (at 1.5 s): 1 s more.
expect usable "pressure_ms=3000 first_grant_ms=2000 granted_kib=163840 giveback90_ms=3000 returned_kib=131072" \
    "$tmp/rounds.csv" -v t0=1000 -v t_free=6000 -v signal=usable
# More columns at the end of the header change nothing.
awk -F, -v OFS=, '{ print $0, (NR == 1 ? "promised_kib,rate_kib_s" : "7,8") }' "$tmp/rounds.csv" >"$tmp/extra.csv"
expect extra_cols "pressure_ms=2000 first_grant_ms=2000 granted_kib=163840 giveback90_ms=3000 returned_kib=131072" \
    "$tmp/extra.csv" -v t0=1000 -v t_free=6000

if [ "$failures" -gt 0 ]; then
    echo "test_hogmetrics: $failures case(s) failed"
    exit 1
fi
echo "test_hogmetrics: all cases passed"
