#!/usr/bin/env bash
# labels: mpi e2e
# val_split.sh: the validation split end to end (issue 15, item 1).
#   - import npy --val-fraction: only training rows become val, about the
#     share asked, the rule in the manifest; --val-fraction 1 is refused
#   - build makes graph nodes of the training images only (not val, not test)
#   - eval --split val: the val images are the queries, the gallery is the
#     training images (no result is a val or test image), report.md says
#     "val" in its first lines and metrics.tsv has split = val for every
#     method; the default is --split test and says so
#   - the expansion baselines (vote-expansion, ppr, fused) and their paired
#     differences are in the report; eval --baselines-only needs no index and
#     states its settings; eval without --index (and without it) is refused
#   - search --split val answers one line per val image
#   - clear errors: --split val on a catalog without val images (eval and
#     search) names the catalog and --val-fraction; eval --split train refused
set -u
MMSAGE=${MMSAGE:?}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
mpi() { mpirun --oversubscribe --bind-to none -np 1 "$MMSAGE" "$@"; }
# catalog -> graph -> partition -> model -> index, quietly; $1 catalog, $2 prefix
pipeline() {
    mpi build --catalog "$1" --out "$2-g" --threshold -1 >"$T/log" 2>&1 &&
        "$MMSAGE" partition --graph "$2-g" --parts 1 >>"$T/log" 2>&1 &&
        mpi train --graph "$2-g" --out "$2-m" --max-steps 20 >>"$T/log" 2>&1 &&
        mpi embed --graph "$2-g" --model "$2-m" --out "$2-i" >>"$T/log" 2>&1 ||
        { tail -20 "$T/log"; fail "pipeline on $1"; }
}
info() { "$MMSAGE" info --dir "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
split_of() { awk -F'\t' '{ print $1 "\t" $2 }' "$1/images.tsv"; }

# --- import npy --val-fraction, from a synthetic catalog's features and tags
"$MMSAGE" synth --images 600 --dim 24 --tags 30 --clusters 6 --topics 5 --seed 3 \
    --test-fraction 0.1 --val-fraction 0.15 --out "$T/cat" >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
"$MMSAGE" synth --images 600 --dim 24 --tags 30 --clusters 6 --topics 5 --seed 3 \
    --test-fraction 0.1 --out "$T/noval" >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
awk -F'\t' '{ print $1 "\t" ($2 == "test" ? "test" : "train") "\t" $3 }' "$T/cat/images.tsv" >"$T/t.tsv"
"$MMSAGE" import npy --features "$T/cat/features.npy" --tags "$T/t.tsv" --val-fraction 0.2 \
    --out "$T/npy" >"$T/out" 2>&1 || { cat "$T/out"; fail "import npy --val-fraction 0.2"; }
nv=$(awk -F'\t' '$2 == "val"' "$T/npy/images.tsv" | wc -l)
ntr=$(awk -F'\t' '$2 == "train"' "$T/t.tsv" | wc -l)
[ "$nv" -gt $((ntr / 10)) ] && [ "$nv" -lt $((ntr * 3 / 10)) ] ||
    fail "import npy --val-fraction 0.2: $nv val of $ntr training rows"
# test rows stay test, val rows were training rows
paste "$T/t.tsv" "$T/npy/images.tsv" | awk -F'\t' '$2 == "test" && $5 != "test" || $5 == "val" && $2 != "train" { bad++ } END { exit bad > 0 }' ||
    fail "import npy --val-fraction: a test row changed split, or val came from test"
grep -q "val $nv" "$T/out" || fail "import npy does not report its val count: $(cat "$T/out")"
[ "$(info "$T/npy" import.val_fraction)" = 0.20000000000000001 ] ||
    fail "manifest import.val_fraction: '$(info "$T/npy" import.val_fraction)'"
"$MMSAGE" import npy --features "$T/cat/features.npy" --tags "$T/t.tsv" --val-fraction 1 \
    --out "$T/npy1" >"$T/out" 2>&1 && fail "import npy --val-fraction 1 succeeded"
grep -q -- "--val-fraction" "$T/out" || fail "--val-fraction 1: no message naming it: $(cat "$T/out")"
[ -e "$T/npy1" ] && fail "--val-fraction 1 left an output"
for f in mulan coco npy; do
    "$MMSAGE" import $f --help | grep -q -- "--val-fraction" || fail "import $f --help has no --val-fraction"
done

# --- build: graph nodes are the training images only
pipeline "$T/cat" "$T/a"
[ "$(info "$T/a-g" images)" = "$(info "$T/cat" train)" ] ||
    fail "graph has $(info "$T/a-g" images) image nodes, catalog $(info "$T/cat" train) training images"

# --- eval --split val
mpi eval --catalog "$T/cat" --index "$T/a-i" --split val --report "$T/R" --plots 0 >"$T/out" 2>&1 ||
    { tail -20 "$T/out"; fail "eval --split val"; }
nval=$(awk -F'\t' '$2 == "val"' "$T/cat/images.tsv" | wc -l)
head -4 "$T/R/report.md" | grep -q "Computed on the val split" || fail "report.md does not start with the val split"
awk -F'\t' 'NR > 1 && $3 == "split" && $4 != "val" { bad++ } NR > 1 && $3 == "split" { n++ }
            END { exit bad > 0 || n < 5 }' "$T/R/metrics.tsv" || fail "metrics.tsv: split is not val for every method"
[ "$(awk -F'\t' '$2 == "gnn-image" && $3 == "queries" { print $4 }' "$T/R/metrics.tsv")" = "$nval" ] ||
    fail "gnn-image did not answer the $nval val queries"
# queries are val images, results training images
split_of "$T/cat" >"$T/splits"
awk -F'\t' 'FNR == NR { s[$1] = $2; next } FNR > 1 && (s[$3] != "val" || s[$5] != "train") { bad++ }
            END { exit bad > 0 }' "$T/splits" "$T/R/queries.tsv" ||
    fail "queries.tsv: a query that is not val, or a result that is not a training image"
mpi eval --catalog "$T/cat" --index "$T/a-i" --report "$T/R2" --plots 0 >"$T/out" 2>&1 ||
    { tail -20 "$T/out"; fail "eval (default split)"; }
head -4 "$T/R2/report.md" | grep -q "Computed on the test split" || fail "default eval report does not say test"
grep -q "^cat	gnn-image	split	test$" "$T/R2/metrics.tsv" || fail "default eval metrics.tsv: split is not test"
mpi eval --catalog "$T/cat" --index "$T/a-i" --split train --report "$T/R3" >"$T/out" 2>&1 &&
    fail "eval --split train succeeded"
grep -q "want val or test" "$T/out" || fail "eval --split train: $(tail -3 "$T/out")"

# --- the expansion baselines: in every report, and alone without an index
for me in vote-expansion ppr fused; do
    grep -q "^cat	$me	ndcg@5-ideal-excellent	" "$T/R/metrics.tsv" || fail "eval report has no $me"
done
grep -q "^cat	gnn-image	paired-ndcg@5-minus-vote-expansion	" "$T/R/metrics.tsv" ||
    fail "metrics.tsv has no paired difference of gnn-image against vote-expansion"
grep -q "## Paired differences" "$T/R/report.md" || fail "report.md has no paired differences"
mpi eval --catalog "$T/cat" --split val --baselines-only --baseline-k 7 --ppr-alpha 0.2 \
    --fuse-weight 0.4 --report "$T/RB" --plots 0 >"$T/out" 2>&1 || { tail -5 "$T/out"; fail "eval --baselines-only"; }
grep -q "^cat	gnn-image	" "$T/RB/metrics.tsv" && fail "--baselines-only ran the GNN"
grep -q "^cat	fused	queries	$nval$" "$T/RB/metrics.tsv" || fail "--baselines-only: fused did not answer the val queries"
grep -q "7 visual neighbours (\`--baseline-k\`), ppr restart 0.2" "$T/RB/report.md" ||
    fail "report.md does not state the baselines' settings"
head -4 "$T/RB/report.md" | grep -q "Computed on the val split" || fail "--baselines-only report does not say val"
mpi eval --catalog "$T/cat" --report "$T/RC" >"$T/out" 2>&1 && fail "eval without --index succeeded"
grep -q -- "--index is required" "$T/out" || fail "eval without --index: $(tail -3 "$T/out")"
mpi eval --catalog "$T/cat" --baselines-only --baseline-k 0 --report "$T/RC" >"$T/out" 2>&1 &&
    fail "eval --baseline-k 0 succeeded"
[ -e "$T/RC" ] && fail "a refused eval left a report"

# --- search --split val
mpi search --index "$T/a-i" --catalog "$T/cat" --split val --out "$T/s.jsonl" >"$T/out" 2>&1 ||
    { tail -5 "$T/out"; fail "search --split val"; }
[ "$(wc -l <"$T/s.jsonl")" -eq "$nval" ] || fail "search --split val: $(wc -l <"$T/s.jsonl") lines, $nval val images"

# --- a catalog without val images
pipeline "$T/noval" "$T/b"
mpi eval --catalog "$T/noval" --index "$T/b-i" --split val --report "$T/R4" >"$T/out" 2>&1 &&
    fail "eval --split val on a catalog without val images succeeded"
grep -q "has no val images" "$T/out" && grep -q -- "--val-fraction" "$T/out" && grep -q "noval" "$T/out" ||
    fail "eval --split val without val images: $(grep -i error "$T/out" | head -3)"
[ -e "$T/R4" ] && fail "failed eval left a report"
mpi search --index "$T/b-i" --catalog "$T/noval" --split val --out "$T/s2.jsonl" >"$T/out" 2>&1 &&
    fail "search --split val on a catalog without val images succeeded"
grep -q "has no val images" "$T/out" && grep -q -- "--val-fraction" "$T/out" ||
    fail "search --split val without val images: $(tail -3 "$T/out")"
echo "$fails failures"
[ "$fails" -eq 0 ]
