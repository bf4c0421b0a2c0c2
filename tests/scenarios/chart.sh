#!/usr/bin/env bash
# chart.sh CSV OUT.png [PLANNER...]
#
# A memsched-eval --record CSV (planner,t_ms,vm,actual_kib,target_kib,unused_kib,usable_kib,
# used_kib,wanted_kib) -> OUT.png: one panel per planner (default: every planner in the file),
# each guest's balloon (solid) and what its workload wanted (dashed) over time, in MiB.
# For people who would rather look than read. Needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail

csv=${1:?usage: chart.sh CSV OUT.png [PLANNER...]}
out=${2:?usage: chart.sh CSV OUT.png [PLANNER...]}
shift 2
[ -s "$csv" ] || { echo "chart.sh: no $csv" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "chart.sh: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

planners=("$@")
[ ${#planners[@]} -gt 0 ] || mapfile -t planners < <(cut -d, -f1 "$csv" | awk '!seen[$0]++')
# One data file per planner and guest: t_s balloon_mib wanted_mib.
awk -F, -v out="$data" '{
    f = out "/" $1 "." $3 ".dat"
    printf "%.1f %.1f %.1f\n", $2 / 1000.0, $4 / 1024.0, $9 / 1024.0 > f
    if (!(f in seen)) { seen[f] = 1; print $1 " " $3 > (out "/index") }
}' "$csv"

{
    echo "set terminal pngcairo size 1200,$((360 * ${#planners[@]})) font ',10'"
    echo "set output '$out'"
    echo "set multiplot layout ${#planners[@]},1"
    echo "set xlabel 'seconds'; set ylabel 'MiB'; set key outside right"
    for p in "${planners[@]}"; do
        echo "set title '$p: balloon (solid), workload wanted (dashed)'"
        plot="plot"
        sep=""
        i=1
        while read -r planner vm; do
            [ "$planner" = "$p" ] || continue
            f="$data/$planner.$vm.dat"
            plot+="$sep '$f' using 1:2 with lines lc $i lw 2 title '$vm', '$f' using 1:3 with lines lc $i dt 2 notitle"
            sep=","
            i=$((i + 1))
        done <"$data/index"
        echo "$plot"
    done
    echo "unset multiplot"
} | gnuplot
echo "chart.sh: wrote $out"
