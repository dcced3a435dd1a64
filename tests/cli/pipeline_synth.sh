#!/usr/bin/env bash
# labels: mpi e2e
# The main job (jobs/main.sh) end to end on a small synthetic catalog: every
# stage runs, the example queries answer, and the evaluation report's numbers
# are in range (metrics in [0, 1], grades summing to 100 %, the GNN above the
# random bound, the slider's w=1 end equal to gnn-image).
set -u
MMSAGE=${MMSAGE:?}; SRC=${MMS_SRC:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MMSAGE="$MMSAGE" MMS_SHARED_DATA="$tmp/no-data" MMS_SYNTH_IMAGES=3000 MMS_TRAIN_SECONDS=8 MMS_RANKS=2 \
    timeout 900 bash "$SRC/jobs/main.sh" "$tmp/run" >"$tmp/log" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { tail -30 "$tmp/log"; fail "main job exited $rc"; }
m="$tmp/run/synth/report/metrics.tsv"
[ -f "$m" ] || { fail "no metrics.tsv"; echo "$fails failures"; exit 1; }
grep -q "ready: listening on 127.0.0.1:" "$tmp/log" || fail "the query server never became ready"
grep -q "keyword" "$tmp/log" && grep -q "predicted tags:" "$tmp/log" || fail "example queries missing"
[ -f "$tmp/run/synth/report/report.md" ] || fail "no report.md"
awk -F'\t' 'NR > 1 && ($3 ~ /^ndcg/ || $3 ~ /^tag-[PR]$/ || $3 == "tag-overlap") && ($4 < 0 || $4 > 1) { print "out of range:", $0; bad = 1 }
            END { exit bad }' "$m" || fail "a metric outside [0, 1]"
get() { awk -F'\t' -v me="$1" -v mt="$2" '$2 == me && $3 == mt { print $4 }' "$m"; }
for me in raw-visual gnn-image gnn-image+tags slider-1 slider-0.5 slider-0 random; do
    [ -n "$(get "$me" ndcg@5-ideal-excellent)" ] || fail "method $me has no nDCG@5"
done
sum=$(awk -F'\t' '$2 == "gnn-image" && $3 ~ /^grade[0-3]-pct$/ { s += $4 } END { printf "%.1f", s }' "$m")
[ "$sum" = "100.0" ] || fail "gnn-image grades sum to $sum %"
awk -v g="$(get gnn-image ndcg@5)" -v r="$(get random ndcg@5)" 'BEGIN { exit !(g > r) }' ||
    fail "gnn-image nDCG@5 $(get gnn-image ndcg@5) is not above random $(get random ndcg@5)"
[ "$(get gnn-image ndcg@5)" = "$(get slider-1 ndcg@5)" ] || fail "slider-1 differs from gnn-image"
echo "gnn-image nDCG@5 $(get gnn-image ndcg@5), raw-visual $(get raw-visual ndcg@5), random $(get random ndcg@5)"
echo "$fails failures"
[ "$fails" -eq 0 ]
