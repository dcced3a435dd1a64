#!/usr/bin/env bash
# import_npy_bad.sh: `mmsage import npy` on small .npy/TSV files written here with
# printf (no numpy needed). Every bad input must exit non-zero with a message
# naming the file and the line, row or field, and leave neither the output
# directory nor a *.tmp.* behind; an existing --out is refused unless --force.
# labels: unit
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0

# npy FILE DESCR FORTRAN SHAPE VALUE...: a .npy (format 1.0) with the given header
# fields; each VALUE is one of 0 1 2 nan inf (4 bytes, float32) or d1 (8 bytes, 1.0).
npy() {
    local f=$1 descr=$2 fortran=$3 shape=$4
    shift 4
    local dict="{'descr': '$descr', 'fortran_order': $fortran, 'shape': $shape, }"
    local total=$((10 + ${#dict} + 1))
    local pad=$(((64 - total % 64) % 64))
    local hl=$((${#dict} + pad + 1))
    {
        printf '\x93NUMPY\x01\x00'
        printf "\\x$(printf %02x $((hl & 255)))\\x$(printf %02x $((hl >> 8)))"
        printf '%s' "$dict"
        printf "%${pad}s\n" ''
        local v
        for v in "$@"; do
            case $v in
            0) printf '\x00\x00\x00\x00' ;;
            1) printf '\x00\x00\x80\x3f' ;;
            2) printf '\x00\x00\x00\x40' ;;
            nan) printf '\x00\x00\xc0\x7f' ;;
            inf) printf '\x00\x00\x80\x7f' ;;
            d1) printf '\x00\x00\x00\x00\x00\x00\xf0\x3f' ;;
            esac
        done
    } >"$f"
}

npy "$T/x.npy" '<f4' False '(3, 2)' 1 2 0 1 2 2
npy "$T/k.npy" '<f4' False '(3, 1)' 1 0 2
printf 'a\ttrain\tsky|sea\nb\ttrain\tsky\nc\ttest\t\n' >"$T/t.tsv"

# expect_fail NAME PATTERN ARGS...: run the import with ARGS --out $T/out.
# shellcheck source=tests/cli/lib/expect.bash
. "$(dirname "$0")/lib/expect.bash"
expect_fail() { expect_import_fail npy "$@"; }

npy "$T/f8.npy" '<f8' False '(3, 2)' d1 d1 d1 d1 d1 d1
expect_fail "float64 features" "f8.npy: dtype is '<f8' (float64); features must be float32" --features "$T/f8.npy" --tags "$T/t.tsv"
npy "$T/fo.npy" '<f4' True '(3, 2)' 1 2 0 1 2 2
expect_fail "Fortran order" "fo.npy: .npy array is in Fortran order" --features "$T/fo.npy" --tags "$T/t.tsv"
npy "$T/one.npy" '<f4' False '(6,)' 1 2 0 1 2 2
expect_fail "1-D array" "one.npy: is a 1-D array of 6 values" --features "$T/one.npy" --tags "$T/t.tsv"
npy "$T/wide.npy" '<f4' False '(3, 3)' 1 2 0 1 2 2
expect_fail "shape wider than the data" "wide.npy: truncated .npy data" --features "$T/wide.npy" --tags "$T/t.tsv"
npy "$T/narrow.npy" '<f4' False '(3, 1)' 1 2 0 1 2 2
expect_fail "shape narrower than the data" "narrow.npy: the data holds 24 bytes but shape (3, 1) float32 needs 12" --features "$T/narrow.npy" --tags "$T/t.tsv"
: >"$T/empty.npy"
expect_fail "empty .npy" "empty.npy is empty (0 bytes)" --features "$T/empty.npy" --tags "$T/t.tsv"
npy "$T/nan.npy" '<f4' False '(3, 2)' 1 2 0 nan 2 2
expect_fail "NaN" "nan.npy: row 1, column 1 (0-based) is NaN (image 'b', $T/t.tsv:2)" --features "$T/nan.npy" --tags "$T/t.tsv"
npy "$T/inf.npy" '<f4' False '(3, 1)' 1 0 inf
expect_fail "Inf in --knn-features" "inf.npy: row 2, column 0 (0-based) is Inf (image 'c'" --features "$T/x.npy" --knn-features "$T/inf.npy" --tags "$T/t.tsv"
npy "$T/k2.npy" '<f4' False '(2, 1)' 1 0
expect_fail "kNN row count" "$T/x.npy has 3 rows but $T/k2.npy has 2" --features "$T/x.npy" --knn-features "$T/k2.npy" --tags "$T/t.tsv"
printf 'a\ttrain\tsky\nb\ttrain\tsky\n' >"$T/short.tsv"
expect_fail "TSV row count" "short.tsv has 2 lines but $T/x.npy has 3 rows" --features "$T/x.npy" --tags "$T/short.tsv"
printf 'a\ttrain\tsky\nb\ttrain\tsky\na\ttest\tsea\n' >"$T/dup.tsv"
expect_fail "duplicate id" "dup.tsv:3: duplicate id 'a' (also on line 1)" --features "$T/x.npy" --tags "$T/dup.tsv"
printf 'a\ttrain\tsky\nb\ttraining\tsky\nc\ttest\tsea\n' >"$T/split.tsv"
expect_fail "unknown split" "split.tsv:2: unknown split 'training'" --features "$T/x.npy" --tags "$T/split.tsv"
printf 'a\ttrain\tsky\nb\tsky\nc\ttest\tsea\n' >"$T/mixed.tsv"
expect_fail "mixed line forms" "mixed.tsv:2: has the form 'id<TAB>tags' but line 1 has" --features "$T/x.npy" --tags "$T/mixed.tsv"
printf 'a\ttrain\tsky\nb\ttrain\tsky|\nc\ttest\tsea\n' >"$T/tag.tsv"
expect_fail "empty tag" "tag.tsv:2: empty tag for id 'b'" --features "$T/x.npy" --tags "$T/tag.tsv"
: >"$T/empty.tsv"
expect_fail "empty TSV" "empty.tsv is empty" --features "$T/x.npy" --tags "$T/empty.tsv"
expect_fail "missing .npy" "cannot open '$T/none.npy'" --features "$T/none.npy" --tags "$T/t.tsv"
expect_fail "bad --test-fraction" "--test-fraction must be in [0, 1]" --features "$T/x.npy" --tags "$T/t.tsv" --test-fraction 1.5

# good imports
check_info() { # NAME CATALOG REGEX...
    local name=$1 cat=$2
    shift 2
    "$MMSAGE" info --catalog "$cat" >"$T/info" 2>&1
    local re
    for re in "$@"; do
        if ! grep -Eq -- "$re" "$T/info"; then
            echo "FAIL $name: info lacks /$re/:"; cat "$T/info"; failures=$((failures + 1)); return
        fi
    done
    echo "ok   $name"
}
"$MMSAGE" import npy --features "$T/x.npy" --knn-features "$T/k.npy" --tags "$T/t.tsv" --out "$T/cat" >/dev/null 2>"$T/stderr" \
    || { echo "FAIL good import:"; cat "$T/stderr"; failures=$((failures + 1)); }
check_info "good import" "$T/cat" '^images +3 \(train 2, val 0, test 1\)' '^features +2-d float32' \
    '^knn features +1-d float32' '^tags +2 distinct'
sum1=$(grep checksum "$T/info")
"$MMSAGE" import npy --features "$T/x.npy" --tags "$T/t.tsv" --out "$T/cat" >/dev/null 2>"$T/stderr"
rc=$?
if [ $rc -eq 0 ] || ! grep -qF "output '$T/cat' already exists (pass --force" "$T/stderr"; then
    echo "FAIL existing output: exit $rc"; cat "$T/stderr"; failures=$((failures + 1))
elif [ "$("$MMSAGE" info --catalog "$T/cat" 2>&1 | grep checksum)" != "$sum1" ]; then
    echo "FAIL existing output: the refused import changed it"; failures=$((failures + 1))
else
    echo "ok   existing output refused (exit $rc)"
fi
# two-column TSV: the split comes from the id hash; same seed, same split
printf 'a\tsky|sea\nb\tsky\nc\t\n' >"$T/t2.tsv"
"$MMSAGE" import npy --features "$T/x.npy" --tags "$T/t2.tsv" --out "$T/cat" --force --test-fraction 0 >/dev/null 2>"$T/stderr" \
    || { echo "FAIL two-column import:"; cat "$T/stderr"; failures=$((failures + 1)); }
check_info "two-column TSV, --test-fraction 0" "$T/cat" '^images +3 \(train 3, val 0, test 0\)'
"$MMSAGE" import npy --features "$T/x.npy" --tags "$T/t2.tsv" --out "$T/h1" --seed 5 --test-fraction 0.5 >/dev/null 2>&1
"$MMSAGE" import npy --features "$T/x.npy" --tags "$T/t2.tsv" --out "$T/h2" --seed 5 --test-fraction 0.5 >/dev/null 2>&1
if [ -f "$T/h1/images.tsv" ] && cmp -s "$T/h1/images.tsv" "$T/h2/images.tsv"; then
    echo "ok   hashed split is reproducible"
else
    echo "FAIL hashed split differs between two runs"; failures=$((failures + 1))
fi
if ls -a "$T" | grep -q '\.tmp\.\|\.old\.'; then
    echo "FAIL leftovers: $(ls -a "$T")"; failures=$((failures + 1))
fi

if [ $failures -ne 0 ]; then echo "import_npy_bad: $failures FAILED"; exit 1; fi
echo "import_npy_bad: all passed"
