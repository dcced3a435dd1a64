#!/bin/bash
# scripts/scaling_plots.sh: the figures and tables of docs/scaling.md from the
# runs of jobs/scaling.sbatch.
#
#   scripts/scaling_plots.sh [DATA_DIR]        (default docs/scaling)
#
# DATA_DIR holds the runs' TSVs (ranks-*.tsv, bytes-*.tsv: copies of a run's
# WORK/ranks.tsv and WORK/bytes.tsv) and, optionally, rates.tsv (the measured
# kernel rates the model uses) and steps.tsv (training steps per size).
# Writes into DATA_DIR: model.md (the tables scripts/scaling_model.py prints),
# model-holdout.md (the same fitted without the 1M, 4-rank points: MMS_HOLDOUT),
# the gnuplot data files and cpu.png, memory.png, cut.png, extrapolation.png
# (gnuplot, package gnuplot-nox).
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$src/docs/scaling}
command -v gnuplot >/dev/null || { echo "error: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
# the model fitted without the largest run (its prediction of points it has not
# seen), then on every point (the constants and the extrapolation of docs/scaling.md)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
MMS_HOLDOUT="${MMS_HOLDOUT-1000000:4}" python3 "$src/scripts/scaling_model.py" "$dir" "$scratch" >"$dir/model-holdout.md"
python3 "$src/scripts/scaling_model.py" "$dir" "$dir" >"$dir/model.md"

# edge cut and halo nodes, METIS against hash, per (images, ranks)
awk -F'\t' 'NR > 1 && $3 == "partition" { v[$1 " " $2, $4] = $5; k[$1 " " $2] = 1 }
    END { for (x in k) { split(x, a, " "); if (a[2] > 1)
        print a[1], a[2], v[x, "edges"], v[x, "metis_edge_cut"], v[x, "hash_edge_cut"], v[x, "metis_halo_nodes"], v[x, "hash_halo_nodes"] } }' \
    "$dir"/bytes-*.tsv | sort -k1,1n -k2,2n | awk 'NR > 1 && $1 != p { print "" } { print; p = $1 }' >"$dir/cut.dat"

cd "$dir"
gnuplot <<'EOF'
set terminal pngcairo size 1200,700 font "sans,10"
set datafile missing "?"
set output "cpu.png"
set multiplot layout 2,3 title "CPU seconds per rank (max over ranks): measured (points) and model (lines); 4 ranks share 2 cores"
set logscale y
set xlabel "ranks"
set xtics (1, 2, 4)
set xrange [0.9:4.4]
set offsets 0, 0, graph 0.1, graph 0.1
set key bottom left
do for [s in "build partition train embed query"] {
    set title s
    f = "measured-".s.".dat"
    plot f index 0 using 2:3 with points pt 7 ps 1.2 lc 1 title "100k", \
         f index 0 using 2:6 with lines lc 1 notitle, \
         f index 1 using 2:3 with points pt 5 ps 1.2 lc 2 title "1M", \
         f index 1 using 2:6 with lines lc 2 notitle
}
unset multiplot

set output "memory.png"
set multiplot layout 2,3 title "peak resident MiB per rank (max over ranks): measured (points) and model (lines)"
do for [s in "build partition train embed query"] {
    set title s
    f = "measured-".s.".dat"
    plot f index 0 using 2:5 with points pt 7 ps 1.2 lc 1 title "100k", \
         f index 0 using 2:7 with lines lc 1 notitle, \
         f index 1 using 2:5 with points pt 5 ps 1.2 lc 2 title "1M", \
         f index 1 using 2:7 with lines lc 2 notitle
}
unset multiplot

set terminal pngcairo size 900,450 font "sans,10"
set output "cut.png"
unset logscale y
set title "edge cut / edges: METIS against a hash partition"
set xrange [1.8:4.2]
set offsets 0, 0, 0, 0
set xlabel "parts"
set ylabel "edge cut (% of edges)"
set style data linespoints
set key top left
plot "cut.dat" using 2:(100*$4/$3):(stringcolumn(1) eq "100000" ? 1 : 2) every ::0 with linespoints pt 7 lc variable title "METIS (100k: purple, 1M: green)", \
     "cut.dat" using 2:(100*$5/$3):(stringcolumn(1) eq "100000" ? 1 : 2) with linespoints pt 4 dt 2 lc variable title "hash"

set output "extrapolation.png"
set title "model: peak MiB per rank at 10M and 100M images (before the fixes of docs/scaling.md)"
set logscale xy
set xlabel "ranks"
set ylabel "MiB per rank"
set xtics (8, 32, 128, 256)
set xrange [6:340]
set autoscale y
set offsets 0, 0, 0, 0
set key outside right
plot "extrapolation.dat" index 0 using 2:9 with linespoints pt 7 lc 1 title "train 10M", \
     "extrapolation.dat" index 1 using 2:9 with linespoints pt 7 lc 1 dt 2 title "train 100M", \
     "extrapolation.dat" index 0 using 2:7 with linespoints pt 5 lc 2 title "build 10M", \
     "extrapolation.dat" index 1 using 2:7 with linespoints pt 5 lc 2 dt 2 title "build 100M", \
     "extrapolation.dat" index 0 using 2:10 with linespoints pt 9 lc 3 title "embed 10M", \
     "extrapolation.dat" index 1 using 2:10 with linespoints pt 9 lc 3 dt 2 title "embed 100M", \
     4096 with lines lc rgb "red" dt 3 title "4 GiB per rank"
EOF
echo "scaling_plots: $dir/{cpu,memory,cut,extrapolation}.png, $dir/model.md"
