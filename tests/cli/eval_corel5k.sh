#!/usr/bin/env bash
# labels: mpi e2e slow
# eval_corel5k.sh: issue 6's acceptance on real data, end to end at 2 ranks.
# Corel5k (4,500 train + 500 test, 499-d blob features, 374 tags): import,
# build and train with the jobs' default settings (MMS_DEFAULT_BUILD_ARGS and
# MMS_DEFAULT_TRAIN_ARGS of jobs/common.sh: top-5 without a threshold,
# L2-normalised inputs, 8 epochs, lr 1e-3, tag inputs from their images' mean,
# dropout 0.5), partition 2, embed, eval; then
# from the report's metrics.tsv:
#   - raw visual features reproduce ../shared/peers (nDCG@5 0.114 on the
#     all-Excellent scale, visual kNN tag voting P 0.081 R 0.097 N+ 70),
#   - GNN image-only retrieval beats raw features by at least 15 % on nDCG@5,
#   - GNN tag prediction beats visual kNN voting and CMRM on P, R and N+,
#   - the slider is monotone: tag overlap rises and visual similarity falls
#     from w_visual 1 to 0 (no step the wrong way beyond two paired standard
#     errors, both ends significantly apart) with concept "node"; with the
#     paper's fusion every step but the last one of tag overlap (w 0.25 -> 0,
#     which falls: printed as a note).
# Several minutes on two cores (label slow). Skipped (77) without the data.
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
# shellcheck source=tests/cli/lib/expect.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib/expect.bash"
corel5k_or_skip
# shellcheck source=jobs/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/jobs/common.sh"
read -r -a BUILD_ARGS <<<"$MMS_DEFAULT_BUILD_ARGS"
read -r -a TRAIN_ARGS <<<"$MMS_DEFAULT_TRAIN_ARGS"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)
t0=$(date +%s)
import_corel5k "$T/C"
step build "${MPIRUN[@]}" "$MMSAGE" build --catalog "$T/C" --out "$T/G" "${BUILD_ARGS[@]}"
step partition "$MMSAGE" partition --graph "$T/G" --parts 2
step train "${MPIRUN[@]}" "$MMSAGE" train --graph "$T/G" --out "$T/M" "${TRAIN_ARGS[@]}" \
    --seed 1 --log-every 1000
grep -E "^(loss|throughput)" "$T/log"
step embed "${MPIRUN[@]}" "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$T/I"
step eval "${MPIRUN[@]}" "$MMSAGE" eval --catalog "$T/C" --index "$T/I" --report "$T/R" --plots 0
grep -E "^(raw-visual|gnn-image|slider|tags)" "$T/log"
m="$T/R/metrics.tsv"
get() { awk -F'\t' -v me="$1" -v mt="$2" '$2 == me && $3 == mt { print $4 }' "$m"; }
fails=0
check() { # DESCRIPTION AWK-CONDITION var=value...
    local what=$1 cond=$2
    shift 2
    local args=() a
    for a in "$@"; do args+=(-v "$a"); done
    if awk "${args[@]}" "BEGIN { exit !($cond) }"; then
        echo "ok:   $what ($*)"
    else
        echo "FAIL: $what ($*)"
        fails=$((fails + 1))
    fi
}
raw=$(get raw-visual ndcg@5-ideal-excellent)
gnn=$(get gnn-image ndcg@5-ideal-excellent)
check "raw visual reproduces the peers' 0.114" 'r > 0.105 && r < 0.125' "r=$raw"
check "visual voting reproduces P 0.081 R 0.097 N+ 70" 'p > 0.075 && p < 0.087 && n >= 65 && n <= 75' \
    "p=$(get raw-visual tag-P)" "n=$(get raw-visual tag-N+)"
check "GNN image-only >= 1.15 x raw visual on nDCG@5" 'g >= 1.15 * r' "g=$gnn" "r=$raw"
for x in P R N+; do
    check "GNN tag prediction beats visual voting on $x" 'g > v' \
        "g=$(get gnn-knn-vote-debiased "tag-$x")" "v=$(get raw-visual "tag-$x")"
done
check "GNN tag prediction beats CMRM (P 0.10, R 0.09, N+ 66)" 'p > 0.10 && r > 0.09 && n > 66' \
    "p=$(get gnn-knn-vote-debiased tag-P)" "r=$(get gnn-knn-vote-debiased tag-R)" \
    "n=$(get gnn-knn-vote-debiased tag-N+)"
# The slider, judged per query (query-metrics.tsv): from each position to the
# next lower w, the paired change of tag overlap must not be negative and that
# of visual similarity not positive beyond two paired standard errors (the
# noise of 500 queries), and from w 1 to 0 both must move significantly.
qm="$T/R/query-metrics.tsv"
step_stats() { # METHOD-A METHOD-B COLUMN -> "mean se" of B - A over common queries
    awk -F'\t' -v a="$1" -v b="$2" -v c="$3" '
        $2 == a { va[$3] = $c } $2 == b { vb[$3] = $c }
        END { for (q in vb) if (q in va) { d = vb[q] - va[q]; n++; s += d; ss += d * d }
              m = s / n; printf "%.6f %.6f", m, sqrt((ss - n * m * m) / (n - 1) / n) }' "$qm"
}
for fam in slider slider-node; do
    prev="slider-1"
    for w in 0.75 0.5 0.25 0; do
        read -r mo so <<<"$(step_stats "$prev" "$fam-$w" 5)"
        read -r mv sv <<<"$(step_stats "$prev" "$fam-$w" 6)"
        if [ "$fam" = slider ] && [ "$w" = 0 ]; then
            # the paper's fusion: keywords alone (mean of tag embeddings) carry
            # fewer of the query's tags than keywords plus a quarter of image
            # (docs/results.md): reported, not asserted
            echo "note: $fam $prev -> $w: tag overlap change $mo +- $so (paired SE)"
        else
            check "$fam $prev -> $w: tag overlap does not fall beyond 2 SE" 'm >= -2 * s' "m=$mo" "s=$so"
        fi
        check "$fam $prev -> $w: visual similarity does not rise beyond 2 SE" 'm <= 2 * s' "m=$mv" "s=$sv"
        prev="$fam-$w"
    done
    read -r mo so <<<"$(step_stats slider-1 "$fam-0" 5)"
    read -r mv sv <<<"$(step_stats slider-1 "$fam-0" 6)"
    check "$fam 1 -> 0: tag overlap rises significantly" 'm > 2 * s' "m=$mo" "s=$so"
    check "$fam 1 -> 0: visual similarity falls significantly" 'm < -2 * s' "m=$mv" "s=$sv"
done
check "concept node: keywords alone beat the mean of tag embeddings on nDCG@5" 'n > t' \
    "n=$(get slider-node-0 ndcg@5-ideal-excellent)" "t=$(get slider-0 ndcg@5-ideal-excellent)"
echo "eval_corel5k: $(($(date +%s) - t0)) s, $fails failures"
[ "$fails" -eq 0 ]
