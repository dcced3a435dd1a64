#!/usr/bin/env bash
# labels: mpi e2e
# The trainer end to end on a small synthetic graph:
#   - the same seed gives the same loss trajectory at 1, 2 and 4 ranks (float tolerance)
#   - stop + --resume ends with the same parameters as an uninterrupted run (bitwise)
#   - embed writes an index with every node
#   - --tag-init mean: tag inputs are their images' mean input, the same at any rank count
#   - bad input: ranks != parts, resume without checkpoint, corrupt checkpoint,
#     model dir of another graph, lr <= 0, a diverging run (NaN loss) stops with the step
#   - a failed run (bad halo or owned file, NaN in x.npy, NaN loss) leaves an
#     existing model byte for byte and publishes nothing under --out
set -u
MMSAGE=${MMSAGE:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { # run NP ARGS... ; output in $tmp/out, status in $rc
    local np=$1; shift
    mpirun --oversubscribe --bind-to none -np "$np" "$MMSAGE" "$@" >"$tmp/out" 2>&1; rc=$?
}
"$MMSAGE" synth --images 1500 --dim 48 --tags 60 --clusters 12 --topics 8 --seed 3 --out "$tmp/cat" >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
run 2 build --catalog "$tmp/cat" --out "$tmp/g" --threshold -1
[ "$rc" -eq 0 ] || { cat "$tmp/out"; echo "build failed"; exit 1; }
for p in 1 2 4; do "$MMSAGE" partition --graph "$tmp/g" --parts $p >/dev/null 2>&1 || fail "partition $p"; done
common=(--graph "$tmp/g" --max-steps 12 --lr 1e-3 --log-every 1 --walks 10 --seed 5)
for p in 1 2 4; do
    run $p train "${common[@]}" --out "$tmp/m$p"
    [ "$rc" -eq 0 ] || { cat "$tmp/out"; fail "train at $p ranks exited $rc"; }
done
# loss column (3) of loss.tsv, compared with a relative tolerance
for p in 2 4; do
    if ! paste <(cut -f1,3 "$tmp/m1/loss.tsv") <(cut -f1,3 "$tmp/m$p/loss.tsv") | awk -F'\t' '
        NR == 1 { next }
        { n++; if ($1 != $3) bad = 1; d = $2 - $4; if (d < 0) d = -d; if (d > 1e-4 * ($2 < 0 ? -$2 : $2) + 1e-5) bad = 1 }
        END { exit (bad || n != 12) }'; then
        fail "loss trajectory at $p ranks differs from 1 rank"
        paste "$tmp/m1/loss.tsv" "$tmp/m$p/loss.tsv" | head -5
    fi
done
# resume: 12 steps straight vs 6 + resume to 12, both at 2 ranks
run 2 train "${common[@]}" --max-steps 6 --out "$tmp/r"
[ "$rc" -eq 0 ] || fail "first half exited $rc"
run 2 train "${common[@]}" --out "$tmp/r" --resume
[ "$rc" -eq 0 ] || { cat "$tmp/out"; fail "resume exited $rc"; }
cmp -s "$tmp/m2/params.npy" "$tmp/r/params.npy" || fail "resumed parameters differ from an uninterrupted run"
cmp -s "$tmp/m2/tags.npy" "$tmp/r/tags.npy" || fail "resumed tag vectors differ from an uninterrupted run"
[ "$(wc -l < "$tmp/r/loss.tsv")" -eq 13 ] || fail "resumed loss.tsv should have 12 steps"
# embed
run 2 embed --graph "$tmp/g" --model "$tmp/m2" --out "$tmp/idx"
[ "$rc" -eq 0 ] || { cat "$tmp/out"; fail "embed exited $rc"; }
grep -q "image and 60 tag embeddings in 2 shards" "$tmp/out" || fail "embed summary: $(tail -1 "$tmp/out")"
# --tag-init mean (frozen, so tags.npy keeps the start): the same bits at 1, 2
# and 4 ranks, and tag k's row is the mean of the input rows of its images
for p in 1 2 4; do
    run $p train "${common[@]}" --max-steps 1 --tag-init mean --freeze-tags --out "$tmp/tm$p"
    [ "$rc" -eq 0 ] || { cat "$tmp/out"; fail "train --tag-init mean at $p ranks exited $rc"; }
done
cmp -s "$tmp/tm1/tags.npy" "$tmp/tm2/tags.npy" && cmp -s "$tmp/tm1/tags.npy" "$tmp/tm4/tags.npy" ||
    fail "--tag-init mean: tag inputs differ between rank counts"
cmp -s "$tmp/tm1/tags.npy" "$tmp/m1/tags.npy" && fail "--tag-init mean left the random tag inputs"
python3 - "$tmp/g" "$tmp/cat/images.tsv" "$tmp/tm1/tags.npy" <<'PY' || fail "--tag-init mean: a tag row is not the mean of its images"
import struct, sys
def npy(path):  # float32 / int64 C-order arrays, stdlib only
    b = open(path, 'rb').read()
    hl = struct.unpack('<H', b[8:10])[0]; h = b[10:10 + hl].decode()
    shape = eval(h[h.index("'shape':") + 8:h.index(')') + 1])
    fmt = 'f' if "'<f4'" in h else 'q'
    n = 1
    for d in shape: n *= d
    return shape, struct.unpack('<%d%s' % (n, fmt), b[10 + hl:10 + hl + n * struct.calcsize(fmt)])
g, cat, tagsf = sys.argv[1:]
(ni, D), x = npy(g + '/x.npy')
_, rows = npy(g + '/image_rows.npy')
names = [l.split('\t')[0] for l in open(g + '/tags.tsv')]
ctags = [l.rstrip('\n').split('\t')[2].split('|') for l in open(cat)]
(nt, D2), tab = npy(tagsf)
assert nt == len(names) and D2 == D
worst = 0.0
for k in range(0, nt, 7):
    imgs = [i for i in range(ni) if names[k] in ctags[rows[i]]]
    assert imgs, names[k]
    for d in range(D):
        m = sum(x[i * D + d] for i in imgs) / len(imgs)
        worst = max(worst, abs(m - tab[k * D + d]))
print('tag-init mean: max |row - mean of its images| = %.3g' % worst)
sys.exit(worst > 1e-5)
PY
# bad input: every rank fails with a message, no hang (timeout guards)
expect_fail() { # WHAT PATTERN NP ARGS...
    local what=$1 pat=$2; shift 2
    timeout 120 bash -c 'mpirun --oversubscribe --bind-to none -np "$0" "$1" "${@:2}"' "$@" >"$tmp/out" 2>&1; rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$what: exit $rc (expected a failure, not success or a hang)"
    grep -q -- "$pat" "$tmp/out" || { fail "$what: no '$pat' in output"; tail -3 "$tmp/out"; }
}
expect_fail "3 ranks, no 3-part partition" "has no partition into 3 parts (one per rank): it has parts 1, 2, 4; run under mpirun -np N" 3 "$MMSAGE" train "${common[@]}" --out "$tmp/x3"
[ "$(grep -c "has no partition into 3 parts" "$tmp/out")" -eq 1 ] || fail "rank-count mismatch reported $(grep -c "has no partition into 3 parts" "$tmp/out") times, not once"
[ "$rc" -eq 7 ] || fail "rank-count mismatch: exit $rc, expected 7 (mismatch) from every rank"
expect_fail "resume without checkpoint" "has no checkpoint.bin" 2 "$MMSAGE" train "${common[@]}" --out "$tmp/none" --resume
cp -r "$tmp/r" "$tmp/corrupt"
truncate -s -100 "$tmp/corrupt/checkpoint.bin"
expect_fail "truncated checkpoint" "corrupt or truncated" 2 "$MMSAGE" train "${common[@]}" --out "$tmp/corrupt" --resume
expect_fail "bad --tag-init" "--tag-init must be" 2 "$MMSAGE" train "${common[@]}" --out "$tmp/x" --tag-init median
expect_fail "lr 0" "--lr must be > 0" 2 "$MMSAGE" train "${common[@]}" --out "$tmp/x" --lr 0
expect_fail "existing output" "already exists" 2 "$MMSAGE" train "${common[@]}" --out "$tmp/m2"
"$MMSAGE" synth --images 1200 --dim 48 --tags 60 --seed 9 --out "$tmp/cat2" >/dev/null 2>&1
run 1 build --catalog "$tmp/cat2" --out "$tmp/g2" --threshold -1
"$MMSAGE" partition --graph "$tmp/g2" --parts 2 >/dev/null 2>&1
cp -r "$tmp/r" "$tmp/other"
expect_fail "model of another graph" "another graph" 2 "$MMSAGE" train --graph "$tmp/g2" --out "$tmp/other" --resume --max-steps 12
expect_fail "diverging run" "No model is written" 2 "$MMSAGE" train "${common[@]}" --out "$tmp/nan" --lr 1e30 --max-steps 200
[ -e "$tmp/nan" ] && fail "diverging run: '$tmp/nan' exists (a failed run must publish nothing)"
# A failed run never touches an existing model, and never publishes half a one
# (each of these failed before: --force deleted the model first; a bad input
# left --out behind, empty or with only loss.tsv).
no_debris() { # WHAT: no <name>.tmp.* left in $tmp
    if compgen -G "$tmp/*.tmp.*" >/dev/null; then fail "$1: temporary left: $(ls -d "$tmp"/*.tmp.*)"; rm -rf "$tmp"/*.tmp.*; fi
}
cp -r "$tmp/g" "$tmp/gbad"
cp -r "$tmp/m2" "$tmp/keep" && cp -r "$tmp/m2" "$tmp/keep.orig"
truncate -s 100 "$tmp/gbad/parts-2/part-1/halo1.npy"
expect_fail "--force over a model, bad halo file" "halo1.npy" 2 "$MMSAGE" train --graph "$tmp/gbad" --out "$tmp/keep" --force --max-steps 3 --lr 1e-3
for f in params.npy tags.npy checkpoint.bin manifest.msgpack loss.tsv; do
    cmp -s "$tmp/keep/$f" "$tmp/keep.orig/$f" || fail "--force with a bad input changed or removed $f of the existing model"
done
no_debris "--force over a model, bad halo file"
cp "$tmp/g/parts-2/part-1/halo1.npy" "$tmp/gbad/parts-2/part-1/halo1.npy"
truncate -s 100 "$tmp/gbad/parts-2/part-0/owned.npy"
expect_fail "bad owned file" "owned.npy" 2 "$MMSAGE" train --graph "$tmp/gbad" --out "$tmp/half" --max-steps 3 --lr 1e-3
[ -e "$tmp/half" ] && fail "bad owned file: '$tmp/half' exists"
no_debris "bad owned file"
cp "$tmp/g/parts-2/part-0/owned.npy" "$tmp/gbad/parts-2/part-0/owned.npy"
python3 - "$tmp/gbad/x.npy" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
hl = struct.unpack('<H', b[8:10])[0]
off = 10 + hl + 4 * 48 * 7 + 4 * 3  # node 7, column 3 (float32, 48 columns)
b[off:off + 4] = struct.pack('<f', float('nan'))
open(p, 'wb').write(bytes(b))
PY
expect_fail "NaN in the graph's x.npy (caught by its checksum)" "gbad/x.npy' is corrupt: its checksum is" 2 "$MMSAGE" train --graph "$tmp/gbad" --out "$tmp/keep" --force --max-steps 3 --lr 1e-3
cmp -s "$tmp/keep/params.npy" "$tmp/keep.orig/params.npy" || fail "NaN input changed the existing model"
no_debris "NaN in the graph's x.npy"
# and a good --force run does replace it
run 2 train "${common[@]}" --out "$tmp/keep" --force --max-steps 3
[ "$rc" -eq 0 ] || { tail -3 "$tmp/out"; fail "--force with good inputs exited $rc"; }
[ "$(awk 'END { print NR }' "$tmp/keep/loss.tsv")" -eq 4 ] || fail "--force did not replace the model (loss.tsv has $(wc -l <"$tmp/keep/loss.tsv") lines)"
no_debris "--force with good inputs"
# the command's defaults are the measured settings; --preset paper gives the
# paper's, and an option overrides the preset whatever the order
run 2 train --graph "$tmp/g" --out "$tmp/pdef" --max-steps 2 --walks 2
[ "$rc" -eq 0 ] || fail "train with its defaults exited $rc"
"$MMSAGE" info --dir "$tmp/pdef" --json | jq -e '.fields.lr == 0.001 and .fields.tag_init == "mean" and .fields.dropout == 0.5' >/dev/null ||
    fail "train's defaults are not the measured settings: $("$MMSAGE" info --dir "$tmp/pdef" --json | jq -c '.fields | {lr, tag_init, dropout}')"
run 2 train --graph "$tmp/g" --out "$tmp/ppap" --max-steps 2 --walks 2 --lr 2e-4 --preset paper
[ "$rc" -eq 0 ] || fail "train --preset paper exited $rc"
"$MMSAGE" info --dir "$tmp/ppap" --json | jq -e '.fields.lr == 0.0002 and .fields.tag_init == "random" and (.fields.dropout - 0.2 | fabs) < 1e-6' >/dev/null ||
    fail "--preset paper with --lr: $("$MMSAGE" info --dir "$tmp/ppap" --json | jq -c '.fields | {lr, tag_init, dropout}')"
expect_fail "unknown preset" "--preset must be 'measured' or 'paper'" 2 "$MMSAGE" train --graph "$tmp/g" --out "$tmp/px" --preset best
echo "$fails failures"
[ "$fails" -eq 0 ]
