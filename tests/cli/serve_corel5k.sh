#!/usr/bin/env bash
# labels: mpi e2e
# serve_corel5k.sh: the slider on real data. Corel5k (Mulan: 4,500 train + 500
# test images, 499-d bag-of-visual-words, 374 tags): import, build (threshold
# -1), partition 2, a short training, embed, then `search` the 500 test images
# with their own features and tags at w_visual 1 and 0 (connect "image", k 10)
# and assert the paper's two directions from 1 to 0:
#   - the mean tag overlap of the top 10 with the query's tags rises
#     (per result: |tags(result) & tags(query)| / |tags(query)|),
#   - the mean visual cosine similarity of the top 10 to the query (raw
#     catalog features) falls.
# Prints both summaries (and w_visual 0.5). About a minute on two cores.
# Skipped (77) when $MMS_SHARED_DATA/corel5k is absent.
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
# shellcheck source=tests/cli/lib/expect.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib/expect.bash"
corel5k_or_skip
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none)
t0=$(date +%s)
import_corel5k "$T/C"
step build "${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$T/C" --out "$T/G" --threshold -1
step partition "$MMSAGE" partition --graph "$T/G" --parts 2
step train "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$T/G" --out "$T/M" --max-steps 200 --lr 1e-3 --seed 1
grep "^loss" "$T/log"
step embed "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$T/I"
for v in 1 0.5 0; do
    step "search at visual $v" "${MPIRUN[@]}" -np 2 "$MMSAGE" search --index "$T/I" --catalog "$T/C" --split test \
        --visual "$v" --connect image --k 10 --out "$T/r$v.jsonl" --summary "$T/s$v.json"
    echo "visual $v: $(jq -c '{queries, failed, mean_tag_overlap, mean_visual_cosine}' "$T/s$v.json")"
done
fails=0
[ "$(jq .queries "$T/s1.json")" -eq 500 ] && [ "$(jq .failed "$T/s1.json")" -eq 0 ] &&
    [ "$(jq .failed "$T/s0.json")" -eq 0 ] || { echo "FAIL: expected 500 answered queries"; fails=$((fails + 1)); }
if ! jq -n -e --slurpfile a "$T/s1.json" --slurpfile b "$T/s0.json" \
    '$b[0].mean_tag_overlap > $a[0].mean_tag_overlap' >/dev/null; then
    echo "FAIL: tag overlap does not rise from visual 1 to 0"
    fails=$((fails + 1))
fi
if ! jq -n -e --slurpfile a "$T/s1.json" --slurpfile b "$T/s0.json" \
    '$b[0].mean_visual_cosine < $a[0].mean_visual_cosine' >/dev/null; then
    echo "FAIL: visual similarity does not fall from visual 1 to 0"
    fails=$((fails + 1))
fi
echo "serve_corel5k: $(( $(date +%s) - t0 )) s, $fails failures"
[ "$fails" -eq 0 ]
