#!/usr/bin/env bash
# plot.sh SCENARIO_DIR TITLE [NAME_PREFIX]
#
# SCENARIO_DIR/rounds.csv (memsched-agent --record) and events.txt ("AGENT_MS label" lines)
# -> SCENARIO_DIR/plot.png: per guest over time, its balloon (solid) and its used memory
# (balloon - guest MemFree, dashed), with the scenario's events as vertical lines; below, the
# host's available memory above the floor memsched keeps (host_min_unused), which the host
# never gives away. Needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail

dir=${1:?usage: plot.sh SCENARIO_DIR TITLE [NAME_PREFIX]}
title=${2:?usage: plot.sh SCENARIO_DIR TITLE [NAME_PREFIX]}
prefix=${3:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
csv="$dir/rounds.csv"
data="$dir/plot"
[ -s "$csv" ] || { echo "plot.sh: no $csv" >&2; exit 1; }
rm -rf "$data"
mkdir -p "$data"

# One data file per guest: t_s balloon_mib used_mib (used blank without stats), and the host's.
# Columns by name (csvcols.awk): the agent may add columns to its CSV.
awk -F, -v out="$data" -v prefix="$prefix" -f "$here/csvcols.awk" -f - "$csv" <<'AWK'
    FNR == 1 || NF != HNF { next }
    {
        name = vm_name(); sub("^" prefix, "", name)
        t = $C["t_ms"] / 1000.0
        u = $C["unused_kib"]; a = $C["actual_kib"]
        used = u == "" ? "NaN" : (a - u) / 1024.0
        printf "%.2f %.1f %s\n", t, a / 1024.0, used > (out "/" name ".dat")
        if (!(name in seen)) { seen[name] = 1; names = names name "\n" }
        r = $C["round"]
        if (r != last) {
            printf "%.2f %.1f\n", t, ($C["host_available_kib"] - $C["host_min_unused_kib"]) / 1024.0 > (out "/host.dat")
            last = r
        }
    }
    END { printf "%s", names | "sort > " out "/names" }
AWK

# From libvirt's samples (domstats.csv: t_ms,name,current_kib,rss_kib,host_available_kib), the
# host's spare as far as the guests are concerned: the first sample's spare less what the
# guests' QEMU processes grew since (other work on the machine left out).
host_plot="'$data/host.dat' using 1:2 with steps lw 2 lc rgb 'black' title 'as the agent saw it'"
if [ -s "$dir/domstats.csv" ]; then
    floor=$(awk -F, -f "$here/csvcols.awk" -f - "$csv" <<'AWK'
FNR == 2 { print $C["host_min_unused_kib"]; exit }
AWK
)
    awk -F, -v floor="$floor" 'NR == 1 { next }
        { rss[$1] += $4; avail[$1] = $5; if (!($1 in seen)) { seen[$1] = 1; ts[++n] = $1 } }
        END { for (i = 1; i <= n; i++) {
                  if (i == 1) { spare0 = avail[ts[1]] - floor; rss0 = rss[ts[1]] }
                  printf "%.2f %.1f\n", ts[i] / 1000.0, (spare0 - (rss[ts[i]] - rss0)) / 1024.0 } }' \
        "$dir/domstats.csv" >"$data/guests.dat"
    host_plot+=", '$data/guests.dat' using 1:2 with lines lw 2 lc rgb '#17becf' title 'less only what the guests took (domstats)'"
fi

# Events: a vertical line and a label each.
arrows=""
n=0
if [ -f "$dir/events.txt" ]; then
    while read -r ms label; do
        n=$((n + 1))
        t=$(awk -v ms="$ms" 'BEGIN { printf "%.2f", ms / 1000.0 }')
        y=$((n % 2 == 0 ? 96 : 90))
        arrows+="set arrow $n from $t, graph 0 to $t, graph 1 nohead dt 3 lc rgb '#888888'"$'\n'
        arrows+="set label $n \"${label//\"/}\" at $t, graph 0.$y font ',8' offset 0.3,0"$'\n'
    done <"$dir/events.txt"
fi

colors=("#1f77b4" "#d62728" "#2ca02c" "#ff7f0e" "#9467bd" "#8c564b")
plots=""
i=0
while read -r name; do
    [ -n "$name" ] || continue
    c=${colors[$((i % ${#colors[@]}))]}
    plots+="'$data/$name.dat' using 1:2 with lines lw 2 lc rgb '$c' title '$name balloon', "
    plots+="'$data/$name.dat' using 1:3 with lines lw 1 dt 2 lc rgb '$c' title '$name used', "
    i=$((i + 1))
done <"$data/names"
plots=${plots%, }

gnuplot <<EOF
set terminal pngcairo noenhanced size 1200,820 font 'sans,10'
set output '$dir/plot.png'
set datafile missing 'NaN'
set multiplot layout 2,1 title '$title' font ',12'
set lmargin at screen 0.07
set rmargin at screen 0.83
set size 1,0.68
set origin 0,0.30
set grid
set key outside right top
set ylabel 'MiB'
set xlabel 'seconds since the agent started'
set yrange [0:*]
$arrows
plot $plots
unset arrow
unset label
set size 1,0.28
set origin 0,0
set ylabel 'MiB'
set xlabel 'seconds since the agent started'
set yrange [*:*]
set title 'host: MiB above the floor memsched keeps (host_min_unused)' font ',10'
set key inside right top font ',9'
plot $host_plot, 0 with lines dt 2 lc rgb 'red' title 'floor'
unset multiplot
EOF
echo "plot.sh: $dir/plot.png"
