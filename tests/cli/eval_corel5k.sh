#!/usr/bin/env bash
# labels: mpi e2e slow
# eval_corel5k.sh: issue 6's acceptance on real data, end to end at 2 ranks.
# Corel5k (4,500 train + 500 test, 499-d blob features, 374 tags): import,
# build and train with the jobs' default settings (MMS_DEFAULT_BUILD_ARGS and
# MMS_DEFAULT_TRAIN_ARGS of jobs/common.sh: top-5 without a threshold,
# L2-normalised inputs, 8 epochs, lr 1e-3, tag inputs from their images' mean,
# dropout 0.5), partition 2, embed, eval; then
# from the report's metrics.tsv and query-metrics.tsv it asserts only what
# holds with margin across the measured spread (docs/results.md, "Spread over
# seeds and BLAS kernels": 3 seeds x 2 OpenBLAS kernels + 1, 2 ranks):
#   - raw visual features reproduce ../shared/peers (nDCG@5 0.114 on the
#     all-Excellent scale, visual kNN tag voting P 0.081 R 0.097 N+ 70): no
#     training involved, the same in every run;
#   - GNN image-only retrieval >= 1.04 x raw features on nDCG@5 (measured
#     1.12-1.24 x, mean 1.18; the bound is ~3.5 sd below the mean);
#   - GNN tag prediction: recall above visual voting's and CMRM's (measured
#     0.117-0.133 against 0.097 and 0.09), N+ above CMRM's 66 (77-90),
#     precision >= 0.07 (0.087-0.105: whether it beats visual voting's 0.081
#     or CMRM's 0.10 depends on the seed, so it is printed, not asserted);
#   - the slider: every step whose direction is clear in every measured run
#     goes the right way (tag overlap does not fall, visual similarity does
#     not rise, beyond two paired standard errors), and from w 1 to 0 both move
#     significantly, for both fusions; the three flat steps (paper fusion
#     1 -> 0.75 visual similarity, both fusions' 0.25 -> 0 tag overlap) are
#     printed with their paired SE, not asserted;
#   - concept "node": keywords alone beat the mean of tag embeddings.
# Several minutes on two cores (label slow). Skipped (77) without the data.
# MMS_EVAL_REPORT=DIR checks an existing Corel5k report instead of running.
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
# shellcheck source=tests/cli/lib/expect.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib/expect.bash"
corel5k_or_skip
# shellcheck source=jobs/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/jobs/common.sh"
# shellcheck source=scripts/lib/metrics.bash
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib/metrics.bash"
read -r -a BUILD_ARGS <<<"$MMS_DEFAULT_BUILD_ARGS"
read -r -a TRAIN_ARGS <<<"$MMS_DEFAULT_TRAIN_ARGS"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)
t0=$(date +%s)
if [ -n "${MMS_EVAL_REPORT:-}" ]; then
    # judge an existing Corel5k report (the main job's, a spread run's) by
    # the same checks, without running the pipeline
    ln -s "$(cd "$MMS_EVAL_REPORT" && pwd)" "$T/R"
else
import_corel5k "$T/C"
step build "${MPIRUN[@]}" "$MMSAGE" build --catalog "$T/C" --out "$T/G" "${BUILD_ARGS[@]}"
step partition "$MMSAGE" partition --graph "$T/G" --parts 2
step train "${MPIRUN[@]}" "$MMSAGE" train --graph "$T/G" --out "$T/M" "${TRAIN_ARGS[@]}" \
    --seed 1 --log-every 1000
grep -E "^(loss|throughput)" "$T/log"
step embed "${MPIRUN[@]}" "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$T/I"
step eval "${MPIRUN[@]}" "$MMSAGE" eval --catalog "$T/C" --index "$T/I" --report "$T/R" --plots 0
grep -E "^(raw-visual|gnn-image|slider|tags)" "$T/log"
fi
m="$T/R/metrics.tsv"
qm="$T/R/query-metrics.tsv"
get() { mms_metric "$m" "$1" "$2"; }
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
check "GNN image-only >= 1.04 x raw visual on nDCG@5" 'g >= 1.04 * r' "g=$gnn" "r=$raw"
echo "note: GNN image-only / raw visual = $(awk -v g="$gnn" -v r="$raw" 'BEGIN { printf "%.3f", g / r }') (spread 1.12-1.24)"
gp=$(get gnn-knn-vote-debiased tag-P) gr=$(get gnn-knn-vote-debiased tag-R) gn=$(get gnn-knn-vote-debiased tag-N+)
check "GNN tag recall beats visual voting and CMRM (0.09)" 'g > v && g > 0.09' "g=$gr" "v=$(get raw-visual tag-R)"
check "GNN tag N+ beats CMRM (66)" 'n > 66' "n=$gn"
check "GNN tag precision >= 0.07" 'p >= 0.07' "p=$gp"
echo "note: GNN tags P $gp R $gr N+ $gn against visual voting P $(get raw-visual tag-P) N+ $(get raw-visual tag-N+) and CMRM P 0.10 (precision and N+ against voting: within the seed spread)"
# The slider, judged per query: from each position to the next lower w, the
# paired change of tag overlap (column 5) must not be negative and that of
# visual similarity (column 6) not positive beyond two paired standard errors.
flat() { # FAMILY W COLUMN: 0 if this step is flat in the measured spread (printed only)
    case "$1/$2/$3" in slider/0.75/6 | slider/0/5 | slider-node/0/5) return 0 ;; esac
    return 1
}
for fam in slider slider-node; do
    prev="slider-1"
    for w in 0.75 0.5 0.25 0; do
        read -r mo so <<<"$(mms_paired_step "$qm" "$prev" "$fam-$w" 5)"
        read -r mv sv <<<"$(mms_paired_step "$qm" "$prev" "$fam-$w" 6)"
        if flat "$fam" "$w" 5; then
            echo "note: $fam $prev -> $w: tag overlap change $mo +- $so (paired SE; flat in the spread)"
        else
            check "$fam $prev -> $w: tag overlap does not fall beyond 2 SE" 'm >= -2 * s' "m=$mo" "s=$so"
        fi
        if flat "$fam" "$w" 6; then
            echo "note: $fam $prev -> $w: visual similarity change $mv +- $sv (paired SE; flat in the spread)"
        else
            check "$fam $prev -> $w: visual similarity does not rise beyond 2 SE" 'm <= 2 * s' "m=$mv" "s=$sv"
        fi
        prev="$fam-$w"
    done
    read -r mo so <<<"$(mms_paired_step "$qm" slider-1 "$fam-0" 5)"
    read -r mv sv <<<"$(mms_paired_step "$qm" slider-1 "$fam-0" 6)"
    check "$fam 1 -> 0: tag overlap rises significantly" 'm > 2 * s' "m=$mo" "s=$so"
    check "$fam 1 -> 0: visual similarity falls significantly" 'm < -2 * s' "m=$mv" "s=$sv"
done
check "concept node: keywords alone beat the mean of tag embeddings on nDCG@5" 'n > t' \
    "n=$(get slider-node-0 ndcg@5-ideal-excellent)" "t=$(get slider-0 ndcg@5-ideal-excellent)"
echo "eval_corel5k: $(($(date +%s) - t0)) s, $fails failures"
[ "$fails" -eq 0 ]
