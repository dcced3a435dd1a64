#!/usr/bin/env bash
# synth.sh: `mmsage synth` end to end: a 2,000-image catalog with kNN features
# and a validation split checked by `mmsage info`; the same seed gives the same
# bytes, another seed other bytes; an existing output is refused without
# --force and replaced with it; bad option values exit non-zero with a message
# naming the option, and leave no output behind.
# labels: unit
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

run_synth() { # OUT ARGS... (quiet; stderr kept in $T/err)
    local out=$1
    shift
    "$MMSAGE" synth --out "$out" "$@" >"$T/out" 2>"$T/err"
}

# 1. a catalog that `info` validates and summarises
if run_synth "$T/a" --images 2000 --dim 96 --knn-dim 128 --val-fraction 0.05 --seed 5; then
    "$MMSAGE" info --catalog "$T/a" >"$T/info" 2>&1 || fail "info on the synthetic catalog"
    for re in 'images +2000 \(train [0-9]+, val [0-9]+, test [0-9]+\)' 'features +96-d float32' \
        'knn features 128-d float32' 'tags +[0-9]+ distinct, [0-9]+ assignments, [3-8]\.[0-9]+ per image, 0 untagged' \
        'objects +[0-9]+ categories'; do
        grep -Eq -- "$re" "$T/info" || { fail "info lacks /$re/:"; cat "$T/info"; }
    done
    read -r tr va te < <(sed -nE 's/.*\(train ([0-9]+), val ([0-9]+), test ([0-9]+)\).*/\1 \2 \3/p' "$T/info")
    [ "$((tr + va + te))" -eq 2000 ] || fail "splits do not add up: $tr + $va + $te"
    [ "$va" -gt 40 ] && [ "$va" -lt 170 ] || fail "val split $va is far from 5% of 2000"
    [ "$te" -gt 120 ] && [ "$te" -lt 290 ] || fail "test split $te is far from 10% of 2000"
    grep -q 'synth: 2000/2000 rows' "$T/err" || { fail "no final progress line"; cat "$T/err"; }
    head -1 "$T/a/images.tsv" | grep -Eq '^img00000000	train	[a-z0-9]+(\|[a-z0-9]+){2,7}$' ||
        fail "unexpected first images.tsv line: $(head -1 "$T/a/images.tsv")"
    grep -Eq '^img00000000	cluster_[0-9]+:1,topic_[0-9]+:1(,blend_[0-9]+:1)?$' "$T/a/objects.tsv" ||
        fail "unexpected objects.tsv line: $(head -1 "$T/a/objects.tsv")"
    [ "$(wc -l <"$T/a/objects.tsv")" -eq 2000 ] || fail "objects.tsv has not 2000 lines"
else
    fail "synth --images 2000 failed:"; cat "$T/err"
fi

# 2. same seed, same bytes (other chunking); another seed, other bytes
run_synth "$T/b" --images 2000 --dim 96 --knn-dim 128 --val-fraction 0.05 --seed 5 --chunk-rows 333 ||
    fail "second run"
for f in features.npy knn_features.npy images.tsv objects.tsv manifest.msgpack; do
    cmp -s "$T/a/$f" "$T/b/$f" || fail "$f differs between two runs with seed 5"
done
run_synth "$T/c" --images 2000 --dim 96 --knn-dim 128 --val-fraction 0.05 --seed 6 || fail "seed 6 run"
for f in features.npy images.tsv; do
    cmp -s "$T/a/$f" "$T/c/$f" && fail "$f is the same for seeds 5 and 6"
done

# 3. an existing output: refused without --force, replaced with it
before=$(cksum <"$T/a/features.npy")
if run_synth "$T/a" --images 100 --dim 8; then
    fail "synth overwrote an existing catalog without --force"
else
    grep -q -- '--force' "$T/err" || { fail "refusal does not mention --force:"; cat "$T/err"; }
    [ "$(cksum <"$T/a/features.npy")" = "$before" ] || fail "refused run changed the catalog"
fi
run_synth "$T/a" --images 100 --dim 8 --force || { fail "--force did not replace:"; cat "$T/err"; }
"$MMSAGE" info --catalog "$T/a" 2>/dev/null | grep -Eq 'images +100 ' || fail "replaced catalog has not 100 images"

# 4. bad values: non-zero exit, a message naming the option, no output
bad() { # EXPECTED-IN-MESSAGE ARGS...
    local want=$1
    shift
    rm -rf "$T/bad"
    if "$MMSAGE" synth --out "$T/bad" "$@" >"$T/out" 2>"$T/err"; then
        fail "synth $* succeeded"
    elif ! grep -q -- "$want" "$T/err"; then
        fail "synth $*: message lacks '$want':"; cat "$T/err"
    fi
    [ -e "$T/bad" ] && fail "synth $* left $T/bad behind"
    return 0
}
bad '--images' --images 0
bad '--images' --images -5
bad '--images' --images lots
bad '--images' --dim 8
bad '--dim' --images 10 --dim 0
bad '--dim' --images 10 --dim 70000
bad '--knn-dim' --images 10 --knn-dim -1
bad '--tags' --images 10 --tags -3
bad '--test-fraction' --images 10 --test-fraction 1.5
bad '--test-fraction' --images 10 --test-fraction 0.6 --val-fraction 0.5
bad '--max-tags' --images 10 --min-tags 6 --max-tags 4
bad '--p-primary' --images 10 --p-primary 2
bad 'model tables' --images 10 --clusters 1000000 --latent-dim 4096
bad '--out' --images 10 --out
bad 'unknown option' --images 10 --colour blue
"$MMSAGE" synth --help >"$T/out" 2>&1 || fail "synth --help exits non-zero"
grep -q -- '--knn-dim' "$T/out" || fail "synth --help does not list --knn-dim"

# 5. the smallest catalog: one image (always train), one tag
run_synth "$T/one" --images 1 --tags 1 --clusters 1 --topics 1 --dim 1 --test-fraction 0.9 ||
    { fail "one-image catalog:"; cat "$T/err"; }
"$MMSAGE" info --catalog "$T/one" 2>/dev/null | grep -Eq 'images +1 \(train 1,' || fail "one-image catalog"

if [ "$failures" -ne 0 ]; then
    echo "synth.sh: $failures failure(s)"
    exit 1
fi
echo "synth.sh: all checks passed"
