#!/usr/bin/env bash
# test_check_rounds.sh - check_rounds.awk must pass a good recording and catch each broken rule.
# A checker that passes everything proves nothing: each case below breaks one invariant in an
# otherwise valid round and wants the checker to name it. It reads the agent's CSV by column
# name (csvcols.awk): extra columns at the end and another column order must not change a
# verdict, a missing column is refused. Needs only awk (ctest label `unit`).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

header="t_ms,round,vm,name,reason,old_target_kib,new_target_kib,actual_kib,max_kib,unused_kib,usable_kib,stats_age_ms,stuck,vm_kib,host_kib,host_total_kib,host_available_kib,host_min_unused_kib,applied"
M=1024
# A good round: a donor (unused 400 MiB) gives 64 MiB to a needy VM (unused 50 MiB), which also
# gets 36 MiB from the host (spare 500 MiB above the floor); one VM in band; one without stats.
row() { # round name reason old new actual unused vm host [stuck] [applied] [avail]
    printf '%d,%d,uuid-%s,"%s",%s,%d,%d,%d,%d,%s,,900,%d,%d,%d,%d,%d,%d,%d\n' \
        $(($1 * 1000)) "$1" "$2" "$2" "$3" $(($4 * M)) $(($5 * M)) $(($6 * M)) $((1024 * M)) \
        "$7" "${10:-0}" $(($8 * M)) $(($9 * M)) $((8192 * M)) $((${12:-700} * M)) $((200 * M)) "${11:-1}"
}
good_round() {
    row "$1" donor shrink 512 448 512 $((400 * M)) 64 0
    row "$1" needy grow 400 500 400 $((50 * M)) 64 36
    row "$1" calm in_band 384 384 384 $((250 * M)) 0 0
    row "$1" nodrv no_stats 1024 1024 1024 "" 0 0
}

# expect NAME WANT(pass|fail) PATTERN: run the checker on $tmp/NAME.csv.
expect() {
    local name=$1 want=$2 pattern=${3:-}
    local out rc
    out=$(awk -F, -v floor_kib=$((256 * M)) -v min_unused_kib=$((${MIN_UNUSED_MIB:-100} * M)) \
        -v excess_kib=$((300 * M)) -v step_kib=$((64 * M)) -v signal="${SIGNAL:-}" \
        -v predictive="${PREDICTIVE:-0}" -f "$here/csvcols.awk" -f "$here/check_rounds.awk" \
        "$tmp/$name.csv" 2>&1)
    rc=$?
    if [ "$want" = pass ] && [ "$rc" -eq 0 ]; then
        echo "ok   $name: passes"
    elif [ "$want" = fail ] && [ "$rc" -eq 1 ] && grep -q -- "$pattern" <<<"$out"; then
        echo "ok   $name: caught ($(grep -m1 -- "$pattern" <<<"$out"))"
    else
        echo "FAIL $name: want $want${pattern:+ with \"$pattern\"}, got rc=$rc:"
        printf '     %s\n' "$out"
        failures=$((failures + 1))
    fi
}

# case_ NAME WANT PATTERN ROW2...: round 1 good, round 2 = the good round with the rows given
# (each "name:reason old new actual unused_mib vm host [stuck] [applied] [avail]") replacing
# the good ones of the same name.
case_() {
    local name=$1 want=$2 pattern=$3
    shift 3
    declare -A over=()
    local spec n
    for spec in "$@"; do
        n=${spec%%:*}
        over[$n]=${spec#*:}
    done
    {
        echo "$header"
        good_round 1
        for n in donor needy calm nodrv; do
            if [ -n "${over[$n]:-}" ]; then
                # shellcheck disable=SC2086 # the spec is words
                set -- ${over[$n]}
                local unused=""
                [ "$5" = - ] || unused=$(($5 * M))
                row 2 "$n" "$1" "$2" "$3" "$4" "$unused" "$6" "$7" "${8:-0}" "${9:-1}" "${10:-700}"
            else
                good_round 2 | grep "\"$n\""
            fi
        done
    } >"$tmp/$name.csv"
    expect "$name" "$want" "$pattern"
}

case_ good pass ""
case_ touched fail "touched: reason in_band" "calm:in_band 384 400 384 250 0 0"
case_ skip_touched fail "touched: reason no_stats" "nodrv:no_stats 1024 512 1024 - 0 0"
case_ grow_not_needy fail "grow: unused" "needy:grow 400 500 400 150 64 36"
case_ grow_above_max fail "above max" "needy:grow 1000 1100 1000 50 64 36"
case_ grow_sum fail "grow: target" "needy:grow 400 520 400 50 64 36"
case_ below_floor fail "below the floor" "donor:shrink 300 236 300 400 64 0"
case_ step fail "step is" "donor:shrink 512 412 512 400 100 0" "needy:grow 400 536 400 50 100 36"
case_ shrink_not_donor fail "not above the excess" "donor:shrink 512 448 512 150 64 0"
MIN_UNUSED_MIB=290 case_ min_unused fail "minimum" "donor:shrink 512 448 512 320 64 0"
case_ stuck_donor fail "stuck" "donor:shrink 512 448 512 400 64 0 1"
case_ balance fail "balance" "needy:grow 400 532 400 50 96 36" "donor:shrink 512 448 512 400 64 0"
case_ host_floor fail "host floor" "donor:shrink 512 448 512 400 64 0 0 1 220" \
    "needy:grow 400 500 400 50 64 36 0 1 220" "calm:in_band 384 384 384 250 0 0 0 1 220" \
    "nodrv:no_stats 1024 1024 1024 - 0 0 0 1 220"
# 500 MiB spare, but 480 MiB of grows still in flight (a target above the balloon): no room for 36.
case_ inflight fail "host floor" "calm:in_band 864 864 384 250 0 0"
case_ order fail "order" "donor:shrink 512 384 512 400 64 64" "needy:grow 400 500 400 50 64 36"
case_ not_applied fail "applied" "calm:in_band 384 384 384 250 0 0 0 0"

# By name: two more columns at the end (the agent may add some), or the columns in another
# order, change nothing - the good file passes and a broken one is still caught.
awk -F, -v OFS=, '{ print $0, (NR == 1 ? "promised_kib,rate_kib_s" : "0,0") }' "$tmp/good.csv" >"$tmp/extra_cols.csv"
expect extra_cols pass ""
awk -F, -v OFS=, '{ print $0, (NR == 1 ? "promised_kib" : "0") }' "$tmp/balance.csv" >"$tmp/extra_cols_balance.csv"
expect extra_cols_balance fail "balance"
# reverse the columns (the name column is quoted but holds no comma)
awk -F, -v OFS=, '{ line = $NF; for (i = NF - 1; i >= 1; i--) line = line "," $i; print line }' \
    "$tmp/good.csv" >"$tmp/reordered.csv"
expect reordered pass ""
awk -F, -v OFS=, '{ line = $NF; for (i = NF - 1; i >= 1; i--) line = line "," $i; print line }' \
    "$tmp/grow_not_needy.csv" >"$tmp/reordered_grow.csv"
expect reordered_grow fail "grow: unused"
# The signal the agent used: usable_kib (MemAvailable) below the minimum makes a grow right
# with signal=usable even though unused_kib (MemFree) is above it, and wrong with unused.
awk -F, -v OFS=, -v M="$M" 'NR > 1 { $11 = $10; if ($4 == "\"needy\"" && $2 == 2) $10 = 150 * M } { print }' \
    "$tmp/good.csv" >"$tmp/usable.csv"
SIGNAL=usable expect usable pass ""
cp "$tmp/usable.csv" "$tmp/usable_as_unused.csv"
expect usable_as_unused fail "grow: unused"
# predictive (the agent grows ahead of the minimum at the rate it estimated): not below min is fine
cp "$tmp/grow_not_needy.csv" "$tmp/predictive.csv"
PREDICTIVE=1 expect predictive pass ""
# With the agent's look-ahead recorded, a grow above the minimum is right when the look-ahead
# takes the signal below it, and wrong when it does not, predictive or not; a host grant that
# only fits when memory granted but untouched is left out breaks the floor.
awk -F, -v OFS=, -v M="$M" '{ la = 0; if (NR > 1 && $4 == "\"needy\"") la = 100 * M
    print $0, (NR == 1 ? "untouched_kib,lookahead_kib" : "0," la) }' \
    "$tmp/grow_not_needy.csv" >"$tmp/lookahead.csv"
expect lookahead pass ""
awk -F, -v OFS=, '{ print $0, (NR == 1 ? "untouched_kib,lookahead_kib" : "0,0") }' \
    "$tmp/grow_not_needy.csv" >"$tmp/no_lookahead.csv"
PREDICTIVE=1 expect no_lookahead fail "grow: unused"
awk -F, -v OFS=, -v M="$M" '{ ut = 0; if (NR > 1 && $4 == "\"calm\"") ut = 480 * M
    print $0, (NR == 1 ? "untouched_kib,lookahead_kib" : ut ",0") }' \
    "$tmp/good.csv" >"$tmp/untouched.csv"
expect untouched fail "host floor"
# A column missing: refused, not guessed.
awk -F, -v OFS=, '{ NF = NF - 1; print }' "$tmp/good.csv" >"$tmp/no_applied.csv"
out=$(awk -F, -v floor_kib=1 -v min_unused_kib=1 -v excess_kib=1 -v step_kib=1 \
    -f "$here/csvcols.awk" -f "$here/check_rounds.awk" "$tmp/no_applied.csv" 2>&1)
if [ $? -eq 2 ] && grep -q "no column applied" <<<"$out"; then
    echo "ok   no_applied: refused ($out)"
else
    echo "FAIL no_applied: $out"
    failures=$((failures + 1))
fi

echo "$header" >"$tmp/empty.csv"
expect empty fail "no rounds"
echo "something,else" >"$tmp/notcsv.csv"
out=$(awk -F, -v floor_kib=1 -v min_unused_kib=1 -v excess_kib=1 -v step_kib=1 \
    -f "$here/csvcols.awk" -f "$here/check_rounds.awk" "$tmp/notcsv.csv" 2>&1)
if [ $? -eq 2 ]; then echo "ok   notcsv: refused"; else echo "FAIL notcsv: $out"; failures=$((failures + 1)); fi

if [ "$failures" -gt 0 ]; then
    echo "test_check_rounds: $failures case(s) failed"
    exit 1
fi
echo "test_check_rounds: all cases passed"
