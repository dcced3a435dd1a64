#!/usr/bin/env bash
# import_corel5k.sh: import the real Corel5k (Mulan) and check the catalog with
# `mmsage info`: 4,500 train + 500 test images, 499-d features, all 374 tags.
# The dense Corel5k-test.arff must give byte-identical features and images.tsv
# to the sparse one, and the union file Corel5k-sparse.arff the same counts.
# Prints the import time. Skipped (77) when $MMS_SHARED_DATA/corel5k is absent.
# labels: unit e2e
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
D="${MMS_SHARED_DATA:-}/corel5k"
for f in Corel5k-train-sparse.arff Corel5k-test-sparse.arff Corel5k-test.arff Corel5k-sparse.arff Corel5k.xml; do
    if [ ! -f "$D/$f" ]; then
        echo "skipped: $D/$f not found (set MMS_SHARED_DATA to the real data directory)"
        exit 77
    fi
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0

check_info() { # NAME CATALOG REGEX...
    local name=$1 cat=$2
    shift 2
    if ! "$MMSAGE" info --catalog "$cat" >"$T/info" 2>&1; then
        echo "FAIL $name: info failed:"; cat "$T/info"; failures=$((failures + 1)); return
    fi
    local re
    for re in "$@"; do
        if ! grep -Eq -- "$re" "$T/info"; then
            echo "FAIL $name: info lacks /$re/:"; cat "$T/info"; failures=$((failures + 1)); return
        fi
    done
    echo "ok   $name"
}

t0=$(date +%s.%N)
"$MMSAGE" import mulan --train "$D/Corel5k-train-sparse.arff" --test "$D/Corel5k-test-sparse.arff" \
    --xml "$D/Corel5k.xml" --out "$T/sparse" >"$T/stdout" 2>"$T/stderr"
rc=$?
t1=$(date +%s.%N)
if [ $rc -ne 0 ]; then echo "FAIL sparse import: exit $rc"; cat "$T/stderr"; exit 1; fi
cat "$T/stdout"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "corel5k sparse import (train + test, 5000 rows): %.3f s wall\n", b - a }'
if grep -q "never occur" "$T/stderr"; then echo "FAIL some labels never occur:"; cat "$T/stderr"; failures=$((failures + 1)); fi
check_info "sparse train + test" "$T/sparse" '^images +5000 \(train 4500, val 0, test 500\)' \
    '^features +499-d float32' '^tags +374 distinct, [0-9]+ assignments' ' 0 untagged images'
cat "$T/info"

"$MMSAGE" import mulan --train "$D/Corel5k-train-sparse.arff" --test "$D/Corel5k-test.arff" \
    --xml "$D/Corel5k.xml" --out "$T/dense" >/dev/null 2>"$T/stderr" \
    || { echo "FAIL dense-test import:"; cat "$T/stderr"; failures=$((failures + 1)); }
if cmp -s "$T/sparse/features.npy" "$T/dense/features.npy" && cmp -s "$T/sparse/images.tsv" "$T/dense/images.tsv"; then
    echo "ok   dense Corel5k-test.arff gives the same 500 rows as the sparse one"
else
    echo "FAIL dense and sparse test files give different catalogs"; failures=$((failures + 1))
fi

"$MMSAGE" import mulan --train "$D/Corel5k-sparse.arff" --xml "$D/Corel5k.xml" --out "$T/all" >/dev/null 2>"$T/stderr" \
    || { echo "FAIL union import:"; cat "$T/stderr"; failures=$((failures + 1)); }
check_info "union Corel5k-sparse.arff" "$T/all" '^images +5000 \(train 5000, val 0, test 0\)' \
    '^features +499-d float32' '^tags +374 distinct'

if [ $failures -ne 0 ]; then echo "import_corel5k: $failures FAILED"; exit 1; fi
echo "import_corel5k: all passed"
