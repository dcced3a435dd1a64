#!/usr/bin/env bash
# labels: mpi e2e
# movable.sh: directories that refer to others (graph -> catalog, index ->
# catalog and model) record the path relative to themselves and absolute, so
# every command runs from any working directory, and a tree moved as a whole
# (or an index moved alone, while the catalog stays) keeps working (issue 16,
# item 3). An index whose catalog is gone names both places it looked and the
# option that names it.
set -u
MMSAGE=${MMSAGE:?}
tmp=$(mktemp -d)
T=$tmp
# shellcheck source=tests/cli/lib/web.bash
. "$(dirname "$0")/lib/web.bash" # web_start_serve, web_stop_pid
trap 'web_cleanup; rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MPI=(timeout 180 mpirun --oversubscribe --bind-to none -np 2)

# made with relative paths from inside the run directory, as a user types them
mkdir -p "$tmp/run"
(cd "$tmp/run" && "$MMSAGE" synth --images 900 --dim 24 --tags 30 --seed 2 --out cat >/dev/null 2>&1 &&
    "${MPI[@]}" "$MMSAGE" build --catalog cat --out g --threshold -1 >log 2>&1 &&
    "$MMSAGE" partition --graph g --parts 2 >>log 2>&1 &&
    "${MPI[@]}" "$MMSAGE" train --graph g --out m --max-steps 4 --lr 1e-3 >>log 2>&1 &&
    "${MPI[@]}" "$MMSAGE" embed --graph g --model m --out idx >>log 2>&1) ||
    { tail -5 "$tmp/run/log"; echo "pipeline failed"; exit 1; }
row=$(awk -F'\t' '$2 == "test" {print NR - 1; exit}' "$tmp/run/cat/images.tsv")
printf '%s\n' "$row" >"$tmp/q.tsv"

search() { # N INDEX FEATURES [EXTRA...]: search from /, results into $tmp/sN.jsonl
    local n=$1 ix=$2 feat=$3; shift 3
    (cd / && "${MPI[@]}" "$MMSAGE" search --index "$ix" --queries "$tmp/q.tsv" --features "$feat" \
        --out "$tmp/s$n.jsonl" "$@") >"$tmp/out$n" 2>&1
}
ids() { jq -c '[.results[].id]' "$1"; }

search 1 "$tmp/run/idx" "$tmp/run/cat/features.npy" || fail "search from / with absolute paths: $(grep -m1 error "$tmp/out1")"
(cd / && "${MPI[@]}" "$MMSAGE" embed --graph "$tmp/run/g" --model "$tmp/run/m" --out "$tmp/idx2") >"$tmp/oute" 2>&1 ||
    fail "embed from / with absolute paths: $(grep -m1 error "$tmp/oute")"
(cd "$tmp/run/idx" && "${MPI[@]}" "$MMSAGE" eval --catalog ../cat --index . --report "$tmp/rep" --max-queries 10 --plots 0) \
    >"$tmp/outv" 2>&1 || fail "eval from inside the index: $(grep -m1 error "$tmp/outv")"
compgen -G "$tmp/rep/loss-*.dat" >/dev/null || fail "eval did not find the model's loss.tsv through the index"

mv "$tmp/run" "$tmp/moved" # the whole tree
search 2 "$tmp/moved/idx" "$tmp/moved/cat/features.npy" || fail "search after moving the tree: $(grep -m1 error "$tmp/out2")"
[ -s "$tmp/s1.jsonl" ] && [ "$(ids "$tmp/s1.jsonl")" = "$(ids "$tmp/s2.jsonl")" ] || fail "moved tree: results differ"
# served from a third directory, the moved index finds its moved catalog
mkdir -p "$tmp/third"
cd "$tmp/third" || exit 1
if web_start_serve "$tmp/moved/idx" 0; then
    "$MMSAGE" query --server "127.0.0.1:$sport" --image-features "$tmp/moved/cat/features.npy" \
        --row "$row" --json >"$tmp/q.json" 2>"$tmp/q.err" || fail "query of the served moved index: $(cat "$tmp/q.err")"
    [ "$(jq -c '[.results[].id]' "$tmp/q.json")" = "$(ids "$tmp/s1.jsonl")" ] || fail "served moved index: results differ from search"
else
    fail "serve of the moved index from a third directory: $(grep -m1 error "$T/serve.err")"
fi
web_stop_pid "$serve_pid" "$T/serve.pid"
serve_pid=
cd / || exit 1
mv "$tmp/moved/idx" "$tmp/idx-alone" # the index alone: its absolute record finds the catalog
mv "$tmp/moved" "$tmp/run"           # back where it was written
search 3 "$tmp/idx-alone" "$tmp/run/cat/features.npy" || fail "search with the index moved alone: $(grep -m1 error "$tmp/out3")"
mv "$tmp/run" "$tmp/gone" # now neither place holds the catalog
search 4 "$tmp/idx-alone" "$tmp/gone/cat/features.npy" && fail "search with the catalog gone succeeded"
grep -q "its catalog 'cat' is not found\|its catalog '../.*cat' is not found" "$tmp/out4" || fail "catalog gone: no clear message: $(grep -m1 error "$tmp/out4")"
grep -q -- "--index-catalog" "$tmp/out4" || fail "catalog gone: the message does not name --index-catalog"
search 5 "$tmp/idx-alone" "$tmp/gone/cat/features.npy" --index-catalog "$tmp/gone/cat" ||
    fail "--index-catalog: $(grep -m1 error "$tmp/out5")"
[ "$(ids "$tmp/s1.jsonl")" = "$(ids "$tmp/s5.jsonl")" ] || fail "--index-catalog: results differ"

echo "movable: $fails failures"
[ "$fails" -eq 0 ]
