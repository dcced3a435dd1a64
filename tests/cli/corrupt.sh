#!/usr/bin/env bash
# labels: mpi e2e
# corrupt.sh: silent corruption is refused (issue 12, items 3, 4 and 5).
#   - every payload file of every mmsage directory is recorded in its manifest
#     (size + xxHash3), and the reader that opens it verifies it: 16 flipped
#     bytes in the middle of a file (or a truncation) make the command fail
#     with the file's name, never a served result or a trained model
#     (index emb/x/vis/params/tags_emb/tags.tsv through serve, search and
#     eval; model params/tags through embed; graph tags.tsv and a partition's
#     halo through train; catalog features through build)
#   - a .npy whose header under-declares its data (N x 63 over N x 64) is
#     refused by info and build, with or without a manifest
#   - NaN written into a shard's vis.npy is named (vis.npy), not "qmat: row R"
set -u
MMSAGE=${MMSAGE:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MPI=(timeout 180 mpirun --oversubscribe --bind-to none)

"$MMSAGE" synth --images 1500 --dim 32 --tags 50 --seed 3 --out "$tmp/C" >/dev/null 2>&1 &&
    "${MPI[@]}" -np 2 "$MMSAGE" build --catalog "$tmp/C" --out "$tmp/G" --threshold -1 >"$tmp/log" 2>&1 &&
    "$MMSAGE" partition --graph "$tmp/G" --parts 2 >>"$tmp/log" 2>&1 &&
    "${MPI[@]}" -np 2 "$MMSAGE" train --graph "$tmp/G" --out "$tmp/M" --max-steps 5 --lr 1e-3 >>"$tmp/log" 2>&1 &&
    "${MPI[@]}" -np 2 "$MMSAGE" embed --graph "$tmp/G" --model "$tmp/M" --out "$tmp/I" >>"$tmp/log" 2>&1 ||
    { tail -5 "$tmp/log"; echo "pipeline failed"; exit 1; }
row=$(awk -F'\t' '$2 == "test" {print NR - 1; exit}' "$tmp/C/images.tsv")
printf '%s\n' "$row" >"$tmp/q.tsv"

# every file of every directory is recorded (logs and the self-checked checkpoint aside)
recorded() { # DIR: the relative paths its manifest records, sorted
    python3 - "$1/manifest.msgpack" <<'PY'
import sys
b = open(sys.argv[1], 'rb').read()
# keys are msgpack strings: pick out the "xxh3.<path>" ones without a msgpack module
out, i = [], 0
while True:
    i = b.find(b'xxh3.', i)
    if i < 0: break
    j = i + 5
    while j < len(b) and 0x20 <= b[j] < 0x7f: j += 1
    out.append(b[i + 5:j].decode()); i = j
print('\n'.join(sorted(out)))
PY
}
for d in C G G/parts-2 M I; do
    want=$(cd "$tmp/$d" && find . -maxdepth 2 -type f ! -name manifest.msgpack ! -path './parts-*' \
        ! -name loss.tsv ! -name checkpoint.bin | sed 's|^\./||' | sort)
    [ "$(recorded "$tmp/$d")" = "$want" ] || fail "$d: recorded files differ from the files: $(diff <(recorded "$tmp/$d") <(echo "$want") | tr '\n' ' ')"
done

# info reads every kind of directory, as text and as JSON, and --verify checks all shards;
# a directory of another kind than the option names is refused
"$MMSAGE" info --model "$tmp/I" >/dev/null 2>&1 && fail "info --model of an index succeeded"
for d in C:catalog G:graph G/parts-2:partition M:model I:index; do
    dir=${d%%:*} kind=${d#*:}
    "$MMSAGE" info --dir "$tmp/$dir" >"$tmp/info.txt" 2>&1 || fail "info --dir $dir: $(tail -1 "$tmp/info.txt")"
    "$MMSAGE" info --"$kind" "$tmp/$dir" --json --verify >"$tmp/info.json" 2>"$tmp/info.err" || fail "info --$kind --json --verify $dir: $(tail -1 "$tmp/info.err")"
    python3 -m json.tool "$tmp/info.json" >/dev/null || fail "info --$kind --json: not JSON"
    jq -e --arg k "$kind" '.kind == $k and .verified == true and (.files | length) > 0' "$tmp/info.json" >/dev/null ||
        fail "info --json $dir: $(head -c 300 "$tmp/info.json")"
done
"$MMSAGE" info --index "$tmp/I" --json | jq -e '.files["shard-1/emb.npy"].bytes > 0 and .fields.shards == 2' >/dev/null ||
    fail "info --json of the index lacks its shard files or fields"

flip() { # FILE: overwrite 16 bytes in the middle with their complement
    python3 - "$1" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); m = len(b) // 2
for i in range(m, min(m + 16, len(b))): b[i] ^= 0xff
open(p, 'wb').write(bytes(b))
PY
}
expect_refused() { # WHAT PATTERN CMD...: fails (no hang) and names the file
    local what=$1 pat=$2; shift 2
    "$@" >"$tmp/out" 2>&1
    local rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$what: exit $rc (expected a refusal)"
    grep -q -- "$pat" "$tmp/out" || fail "$what: no '$pat' in: $(grep -m2 -i 'error' "$tmp/out")"
}
n=0
serve_once() { # INDEX: start a server; it must refuse to start (exit non-zero) within the timeout
    "${MPI[@]}" -np 3 "$MMSAGE" serve --index "$1" --listen 127.0.0.1:0
}
search_once() { n=$((n + 1)); "${MPI[@]}" -np 2 "$MMSAGE" search --index "$1" --queries "$tmp/q.tsv" --features "$tmp/C/features.npy" --out "$tmp/s$n.jsonl"; }
eval_once() { n=$((n + 1)); "${MPI[@]}" -np 2 "$MMSAGE" eval --catalog "$tmp/C" --index "$1" --report "$tmp/rep$n" --max-queries 20 --plots 0; }

# index files through serve, search and eval
for f in shard-0/emb.npy shard-1/x.npy shard-0/vis.npy params.npy tags_emb.npy tags.tsv; do
    rm -rf "$tmp/Ib" && cp -r "$tmp/I" "$tmp/Ib" && flip "$tmp/Ib/$f"
    expect_refused "serve, corrupt $f" "Ib/$f' is corrupt" serve_once "$tmp/Ib"
    expect_refused "search, corrupt $f" "Ib/$f' is corrupt" search_once "$tmp/Ib"
done
rm -rf "$tmp/Ib" && cp -r "$tmp/I" "$tmp/Ib" && flip "$tmp/Ib/shard-1/emb.npy"
expect_refused "eval, corrupt shard-1/emb.npy" "Ib/shard-1/emb.npy' is corrupt" eval_once "$tmp/Ib"
expect_refused "info --verify, corrupt shard-1/emb.npy" "Ib/shard-1/emb.npy' is corrupt" "$MMSAGE" info --dir "$tmp/Ib" --verify
rm -rf "$tmp/Ib" && cp -r "$tmp/I" "$tmp/Ib" && truncate -s 1000 "$tmp/Ib/shard-1/h1.npy"
expect_refused "search, truncated shard-1/h1.npy" "Ib/shard-1/h1.npy' is 1000 bytes, but" search_once "$tmp/Ib"

# model arrays into embed
for f in params.npy tags.npy; do
    rm -rf "$tmp/Mb" && cp -r "$tmp/M" "$tmp/Mb" && flip "$tmp/Mb/$f"
    expect_refused "embed, corrupt model $f" "Mb/$f' is corrupt" \
        "${MPI[@]}" -np 2 "$MMSAGE" embed --graph "$tmp/G" --model "$tmp/Mb" --out "$tmp/Ix"
    [ -e "$tmp/Ix" ] && fail "embed with a corrupt model $f published '$tmp/Ix'"
done

# graph tags.tsv and a partition's halo into train
rm -rf "$tmp/Gb" && cp -r "$tmp/G" "$tmp/Gb" && flip "$tmp/Gb/tags.tsv"
expect_refused "train, corrupt graph tags.tsv" "Gb/tags.tsv' is corrupt" \
    "${MPI[@]}" -np 2 "$MMSAGE" train --graph "$tmp/Gb" --out "$tmp/Mx" --max-steps 3
rm -rf "$tmp/Gb" && cp -r "$tmp/G" "$tmp/Gb" && flip "$tmp/Gb/parts-2/part-1/halo1.npy"
expect_refused "train, corrupt halo1.npy" "part-1/halo1.npy' is corrupt" \
    "${MPI[@]}" -np 2 "$MMSAGE" train --graph "$tmp/Gb" --out "$tmp/Mx" --max-steps 3
# only rank 1 reads part-1: every rank (and so mpirun) exits with the failure's
# own code, 3 (format), never 8 (mpi) from the rank that only stopped
for i in 1 2 3; do
    "${MPI[@]}" -np 2 "$MMSAGE" train --graph "$tmp/Gb" --out "$tmp/Mx" --max-steps 3 >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 3 ] || { fail "train, corrupt halo1.npy: exit $rc, expected 3 (format) on every rank"; break; }
done
[ -e "$tmp/Mx" ] && fail "train with a corrupt input published '$tmp/Mx'"

# catalog features into build and info
rm -rf "$tmp/Cb" && cp -r "$tmp/C" "$tmp/Cb" && flip "$tmp/Cb/features.npy"
expect_refused "build, corrupt features.npy" "Cb/features.npy' is corrupt" \
    "${MPI[@]}" -np 2 "$MMSAGE" build --catalog "$tmp/Cb" --out "$tmp/Gx"
expect_refused "info, corrupt features.npy" "Cb/features.npy' is corrupt" "$MMSAGE" info --catalog "$tmp/Cb"

# a header that under-declares its data: (N, 31) over N x 32 float32
narrow() { # FILE: rewrite the shape's width 32 -> 31 in place (same header length)
    sed -i '1s/, 32), }/, 31), }/' "$1"
}
rm -rf "$tmp/Cb" && cp -r "$tmp/C" "$tmp/Cb" && narrow "$tmp/Cb/features.npy"
grep -q "31), }" "$tmp/Cb/features.npy" || fail "test setup: the features.npy header was not rewritten"
expect_refused "info, header narrower than the data (manifest)" "Cb/features.npy' is corrupt" "$MMSAGE" info --catalog "$tmp/Cb"
rm -f "$tmp/Cb/manifest.msgpack" # a hand-made catalog: the .npy reader itself refuses it
expect_refused "info, header narrower than the data (no manifest)" "the data holds 192000 bytes but shape (1500, 31) float32 needs 186000" \
    "$MMSAGE" info --catalog "$tmp/Cb"
expect_refused "build, header narrower than the data (no manifest)" "the data holds 192000 bytes but shape (1500, 31)" \
    "${MPI[@]}" -np 2 "$MMSAGE" build --catalog "$tmp/Cb" --out "$tmp/Gx"
[ -e "$tmp/Gx" ] && fail "build on a bad catalog published '$tmp/Gx'"

echo "corrupt: $fails failures"
[ "$fails" -eq 0 ]
