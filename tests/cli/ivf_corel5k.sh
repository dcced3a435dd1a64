#!/usr/bin/env bash
# labels: mpi e2e slow
# ivf_corel5k.sh: approximate search (docs/query.md "Approximate search
# (IVF)") on real data. Corel5k (Mulan: 4,500 train + 500 test images, 499-d
# bag-of-visual-words, 374 tags): import, build (threshold -1), partition 2,
# a short training (200 steps), embed (default nlist: 256 lists per space),
# then the 500 test queries (their features and tags fused at w_visual 0.5,
# both rounds) searched exactly and with the default nprobe (`--approx`):
#   - recall@10 of the approximate results against the exact ones >= 0.98
#     (measured 0.98-0.99 at nprobe 96-117 of 256);
#   - with every list probed and scanned with the int8 filter (--int8-lists)
#     the answers equal the exact ones; from the 4-bit codes (--list-scan
#     codes4: approximate inside the lists too) recall@10 >= 0.99;
#   - --list-scan with an unknown scan fails naming the option, and so does
#     --int8-lists beside another scan;
#   - eval's figures (image-only and slider-0.5 nDCG@5, the GNN's tag
#     prediction P and R) with --approx
#     equal the exact eval's within 0.01 (the noise of 500 queries).
# A few minutes on two cores (label slow). Skipped (77) without the data.
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
# shellcheck source=tests/cli/lib/expect.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib/expect.bash"
corel5k_or_skip
# shellcheck source=scripts/lib/metrics.bash
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib/metrics.bash"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)
t0=$(date +%s)
import_corel5k "$T/C"
step build "${MPIRUN[@]}" "$MMSAGE" build --catalog "$T/C" --out "$T/G" --threshold -1
step partition "$MMSAGE" partition --graph "$T/G" --parts 2
step train "${MPIRUN[@]}" "$MMSAGE" train --graph "$T/G" --out "$T/M" --max-steps 200 --lr 1e-3 --seed 1
step embed "${MPIRUN[@]}" "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$T/I"
nlist=$("$MMSAGE" info --index "$T/I" --json | jq -r '.fields.ivf_nlist // 0')
echo "nlist $nlist"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
[ "$nlist" -gt 0 ] || fail "the index has no inverted lists"
for m in exact approx; do
    step "search --$m" "${MPIRUN[@]}" "$MMSAGE" search --index "$T/I" --catalog "$T/C" --split test \
        --visual 0.5 --k 10 --out "$T/$m.jsonl" --"$m"
done
step "search --nprobe $nlist --int8-lists" "${MPIRUN[@]}" "$MMSAGE" search --index "$T/I" \
    --catalog "$T/C" --split test --visual 0.5 --k 10 --out "$T/all8.jsonl" --nprobe "$nlist" --int8-lists
step "search --nprobe $nlist --list-scan codes4" "${MPIRUN[@]}" "$MMSAGE" search --index "$T/I" \
    --catalog "$T/C" --split test --visual 0.5 --k 10 --out "$T/all.jsonl" --nprobe "$nlist" \
    --list-scan codes4
for bad in "--list-scan fast" "--list-scan codes4 --int8-lists"; do
    # shellcheck disable=SC2086 # the options split on purpose
    if "$MMSAGE" search --index "$T/I" --catalog "$T/C" --split test --out "$T/bad.jsonl" $bad \
        >/dev/null 2>"$T/bad.err"; then
        fail "search $bad succeeded"
    elif ! grep -q -- "--list-scan" "$T/bad.err"; then
        fail "search $bad: the error does not name --list-scan: $(cat "$T/bad.err")"
    fi
    [ ! -e "$T/bad.jsonl" ] || fail "search $bad wrote its output"
done
answers() { jq -c '[.results[] | [.id, .score]]' "$1"; }
cmp -s <(answers "$T/exact.jsonl") <(answers "$T/all8.jsonl") ||
    fail "--nprobe $nlist --int8-lists differs from --exact"
recall_all=$(recall_of "$T/exact.jsonl" "$T/all.jsonl")
echo "recall@10 of --nprobe $nlist (4-bit codes) against --exact: $recall_all"
awk -v r="$recall_all" 'BEGIN { exit !(r >= 0.99) }' || fail "recall@10 $recall_all < 0.99 with every list probed"
recall=$(recall_of "$T/exact.jsonl" "$T/approx.jsonl")
echo "recall@10 of --approx against --exact: $recall"
awk -v r="$recall" 'BEGIN { exit !(r >= 0.98) }' || fail "recall@10 $recall < 0.98 at the default nprobe"
for m in exact approx; do
    step "eval --$m" "${MPIRUN[@]}" "$MMSAGE" eval --catalog "$T/C" --index "$T/I" --report "$T/R$m" \
        --plots 0 --"$m"
done
for mt in "gnn-image ndcg@5-ideal-excellent" "slider-0.5 ndcg@5-ideal-excellent" \
    "gnn-knn-vote-debiased tag-P" "gnn-knn-vote-debiased tag-R"; do
    read -r meth met <<<"$mt"
    a=$(mms_metric "$T/Rexact/metrics.tsv" "$meth" "$met")
    b=$(mms_metric "$T/Rapprox/metrics.tsv" "$meth" "$met")
    echo "eval $meth $met: exact $a, approx $b"
    [ -n "$a" ] && [ -n "$b" ] || { fail "no $meth $met in metrics.tsv"; continue; }
    awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01) }' ||
        fail "eval $meth $met: exact $a vs approx $b differ by more than 0.01"
done
echo "ivf corel5k: $(($(date +%s) - t0)) s"
exit $((fails > 0))
