#!/usr/bin/env bash
# labels: mpi e2e
# mmsage build: byte-identical graphs at 1, 2 and 4 ranks (exact and IVF kNN;
# IVF's shared scratch file of the kNN rows removed),
# PCA at 1 and 2 ranks within float tolerance, and every bad input of the
# issue: a clear message and a non-zero exit on every rank, without a hang.
set -u
MMSAGE=${MMSAGE:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { local np=$1; shift; timeout 300 mpirun --oversubscribe --bind-to none -np "$np" "$MMSAGE" "$@" >"$tmp/out" 2>&1; rc=$?; }
"$MMSAGE" synth --images 2600 --dim 40 --knn-dim 64 --tags 70 --seed 4 --out "$tmp/cat" >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
files="indptr.npy indices.npy weights.npy adj_indptr.npy adj_indices.npy x.npy image_rows.npy tags.tsv manifest.msgpack"
for mode in exact approx; do
    extra=(); [ $mode = approx ] && extra=(--approx --nlist 16 --nprobe 4)
    for np in 1 2 4; do
        run $np build --catalog "$tmp/cat" --out "$tmp/g-$mode-$np" --k 5 --threshold 0.2 --tile 256 "${extra[@]}"
        [ "$rc" -eq 0 ] || { cat "$tmp/out"; fail "$mode build at $np ranks exited $rc"; }
    done
    for np in 2 4; do
        for f in $files; do
            cmp -s "$tmp/g-$mode-1/$f" "$tmp/g-$mode-$np/$f" || fail "$mode: $f differs between 1 and $np ranks"
        done
    done
done
grep -q "recall@5" "$tmp/out" || fail "approximate build does not print its recall"
# IVF's rows are one scratch file mapped by every rank (not a copy per rank): gone afterwards
for np in 1 2 4; do
    [ ! -e "$tmp/g-approx-$np/.knn_rows.npy" ] || fail "approx build at $np ranks left its scratch file .knn_rows.npy"
done
# PCA: 40 -> 16 at 1 and 2 ranks; the structure files are identical, x agrees to float tolerance
for np in 1 2; do
    run $np build --catalog "$tmp/cat" --out "$tmp/p$np" --threshold -1 --pca-dim 16
    [ "$rc" -eq 0 ] || { cat "$tmp/out"; fail "PCA build at $np ranks exited $rc"; }
done
for f in indptr.npy indices.npy adj_indices.npy tags.tsv; do
    cmp -s "$tmp/p1/$f" "$tmp/p2/$f" || fail "PCA: $f differs between 1 and 2 ranks"
done
python3 - "$tmp/p1/x.npy" "$tmp/p2/x.npy" <<'PY' || fail "PCA: x.npy differs beyond tolerance between 1 and 2 ranks"
import struct, sys
def load(p):
    b = open(p, 'rb').read(); hl = struct.unpack('<H', b[8:10])[0]; d = b[10 + hl:]
    return struct.unpack('<%df' % (len(d) // 4), d)
a, b = load(sys.argv[1]), load(sys.argv[2])
sys.exit(0 if len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < 1e-3 else 1)
PY
[ -f "$tmp/p1/pca_components.npy" ] || fail "PCA: no pca_components.npy in the graph"
# bad input
expect_fail() { # WHAT PATTERN NP ARGS...
    local what=$1 pat=$2; shift 2
    run "$@"
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$what: exit $rc (expected a failure, not success or a hang)"
    grep -q -- "$pat" "$tmp/out" || { fail "$what: no '$pat' in: $(tail -2 "$tmp/out")"; }
}
"$MMSAGE" synth --images 3 --dim 8 --tags 5 --seed 1 --out "$tmp/tiny" >/dev/null 2>&1
ntrain=$("$MMSAGE" info --catalog "$tmp/tiny" | sed -n 's/.*(train \([0-9]*\),.*/\1/p')
expect_fail "more ranks than training images" "training images" 4 build --catalog "$tmp/tiny" --out "$tmp/x1"
expect_fail "threshold above 1" "threshold must be in \[-1, 1\]" 2 build --catalog "$tmp/cat" --out "$tmp/x2" --threshold 1.5
expect_fail "K of 0" "k must be in \[1, 1000\]" 2 build --catalog "$tmp/cat" --out "$tmp/x3" --k 0
expect_fail "K above 1000" "k must be in \[1, 1000\]" 2 build --catalog "$tmp/cat" --out "$tmp/x4" --k 1001
expect_fail "pca-dim above the width" "is above the feature width" 2 build --catalog "$tmp/cat" --out "$tmp/x5" --pca-dim 41
expect_fail "existing output" "already exists" 2 build --catalog "$tmp/cat" --out "$tmp/g-exact-1"
for d in x1 x2 x3 x4 x5; do [ -e "$tmp/$d" ] && fail "$d: output left behind"; done
ls "$tmp" | grep -q '\.tmp\.' && fail "a temporary directory was left behind"
# a catalog changed after the graph was built is refused downstream
"$MMSAGE" partition --graph "$tmp/g-exact-1" --parts 2 >/dev/null 2>&1
run 2 train --graph "$tmp/g-exact-1" --out "$tmp/m" --max-steps 3 --walks 2
[ "$rc" -eq 0 ] || fail "train on the exact graph exited $rc"
cp -r "$tmp/cat" "$tmp/cat.orig"
sed -i '1s/\ttrain\t/\ttest\t/' "$tmp/cat/images.tsv"
expect_fail "catalog file edited in place" "images.tsv' is [0-9]* bytes, but .*manifest.msgpack records" 2 embed --graph "$tmp/g-exact-1" --model "$tmp/m" --out "$tmp/i"
"$MMSAGE" synth --images 2600 --dim 40 --knn-dim 64 --tags 70 --seed 5 --out "$tmp/cat" --force >/dev/null 2>&1 || fail "synth --force failed"
expect_fail "catalog changed since the graph was built" "changed since graph" 2 embed --graph "$tmp/g-exact-1" --model "$tmp/m" --out "$tmp/i"
rm -rf "$tmp/cat" && mv "$tmp/cat.orig" "$tmp/cat"
echo "$fails failures (tiny catalog: $ntrain training images)"
[ "$fails" -eq 0 ]
