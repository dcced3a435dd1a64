#!/usr/bin/env bash
# import_mulan_bad.sh: `mmsage import mulan` on small ARFF/XML files written here.
# Every bad input must exit non-zero with a message naming the file and line, and
# leave neither the output directory nor a *.tmp.* behind; an existing --out is
# refused unless --force. Needs only bash and printf.
# labels: unit
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0

hdr() { # 4 attributes; the first data line is line 7
    printf '@relation r\n@attribute f0 numeric\n@attribute f1 {0,1}\n'
    printf '@attribute sky {0,1}\n@attribute sea {0,1}\n@data\n'
}
printf '<?xml version="1.0"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">\n' >"$T/l.xml"
printf '<label name="sky"></label>\n<label name="sea"></label>\n</labels>\n' >>"$T/l.xml"
{ hdr; printf '0.5,1,1,0\n{0 2,3 1}\n'; } >"$T/good.arff"

# expect_fail NAME PATTERN ARGS...: run the import with ARGS --out $T/out.
# shellcheck source=tests/cli/lib/expect.bash
. "$(dirname "$0")/lib/expect.bash"
expect_fail() { expect_import_fail mulan "$@"; }

# bad.arff: the header followed by the rows given
bad_rows() { { hdr; printf "$@"; } >"$T/bad.arff"; }

bad_rows '0.5,1,1\n'
expect_fail "dense row too short" "bad.arff:7: row has 3 values, expected 4" --train "$T/bad.arff" --xml "$T/l.xml"
bad_rows '0.5,1,1,0\n0.5,1,1,0,1\n'
expect_fail "dense row too long" "bad.arff:8: row has 5 values, expected 4" --train "$T/bad.arff" --xml "$T/l.xml"
bad_rows '{0 1,5 1}\n'
expect_fail "sparse index out of range" "bad.arff:7: sparse index 5 is out of range" --train "$T/bad.arff" --xml "$T/l.xml"
bad_rows '{0 1}\n{3 1,2 1}\n'
expect_fail "sparse index not increasing" "bad.arff:8: sparse indices must increase" --train "$T/bad.arff" --xml "$T/l.xml"
bad_rows 'abc,1,1,0\n'
expect_fail "non-numeric value" "bad.arff:7: value 'abc' of attribute 0 ('f0') is not a number" --train "$T/bad.arff" --xml "$T/l.xml"
bad_rows '1,0,2,0\n'
expect_fail "label value 2 (nominal)" "bad.arff:7: value '2' of attribute 2 ('sky') is not one of its declared values {0,1}" --train "$T/bad.arff" --xml "$T/l.xml"
printf '@relation r\n@attribute f0 numeric\n@attribute sky numeric\n@attribute sea {0,1}\n@data\n1,0,0\n1,0.5,1\n' >"$T/num.arff"
expect_fail "label value 0.5 (numeric)" "num.arff:7: label 'sky' (attribute 1) has value 0.5; a label must be 0 or 1" --train "$T/num.arff" --xml "$T/l.xml"
bad_rows '1,0,1,0\n{0 2,3'
expect_fail "truncated sparse row" "bad.arff:8: unterminated sparse row (missing '}')" --train "$T/bad.arff" --xml "$T/l.xml"
bad_rows '1,0,1,0\n0.25,0,'
expect_fail "truncated dense row" "bad.arff:8: empty value for attribute 2" --train "$T/bad.arff" --xml "$T/l.xml"
printf '@relation r\n@attribute f0 numeric\n@attribute sky {0,1}\n' >"$T/nodata.arff"
expect_fail "header without @data" "nodata.arff:3: end of file before @data" --train "$T/nodata.arff" --xml "$T/l.xml"
bad_rows '%% no rows\n'
expect_fail "no data rows" "bad.arff:7: no data rows after @data" --train "$T/bad.arff" --xml "$T/l.xml"
printf '<labels>\n<label name="sky"/>\n<label name="cloud"/>\n</labels>\n' >"$T/l2.xml"
expect_fail "XML label missing from ARFF" "l2.xml:3: label 'cloud' is not an attribute of $T/good.arff" --train "$T/good.arff" --xml "$T/l2.xml"
printf '<labels>\n<label nam="sky"/>\n</labels>\n' >"$T/l3.xml"
expect_fail "XML label without name" "l3.xml:2: <label> element without a name attribute" --train "$T/good.arff" --xml "$T/l3.xml"
printf '@relation r\n@attribute f0 numeric\n@attribute f1 numeric\n@attribute sky {0,1}\n@attribute sea {0,1}\n@data\n1,1,1,0\n' >"$T/other.arff"
expect_fail "train and test headers differ" "other.arff:3: attribute 1 is 'f1' numeric but $T/good.arff:3 declares 'f1' {0,1}" --train "$T/good.arff" --test "$T/other.arff" --xml "$T/l.xml"
bad_rows '1,0,1,0\n{1 1,9 1}\n'
expect_fail "bad row in --test after good train rows" "bad.arff:8: sparse index 9 is out of range" --train "$T/good.arff" --test "$T/bad.arff" --xml "$T/l.xml"
expect_fail "missing ARFF" "cannot open '$T/none.arff'" --train "$T/none.arff" --xml "$T/l.xml"
expect_fail "missing --xml" "missing required option --xml" --train "$T/good.arff"

# a good import, then the existing output
"$MMSAGE" import mulan --train "$T/good.arff" --test "$T/good.arff" --xml "$T/l.xml" --out "$T/cat" >"$T/stdout" 2>"$T/stderr"
rc=$?
if [ $rc -ne 0 ]; then echo "FAIL good import: exit $rc"; cat "$T/stderr"; failures=$((failures + 1)); fi
"$MMSAGE" info --catalog "$T/cat" >"$T/info" 2>&1
if ! grep -Eq '^images +4 \(train 2, val 0, test 2\)' "$T/info" || ! grep -Eq '^features +2-d float32' "$T/info" \
    || ! grep -Eq '^tags +2 distinct' "$T/info"; then
    echo "FAIL good import: unexpected info:"; cat "$T/info"; failures=$((failures + 1))
else
    echo "ok   good import"
fi
sum1=$(grep checksum "$T/info")
"$MMSAGE" import mulan --train "$T/good.arff" --xml "$T/l.xml" --out "$T/cat" >"$T/stdout" 2>"$T/stderr"
rc=$?
if [ $rc -eq 0 ] || ! grep -qF "output '$T/cat' already exists (pass --force" "$T/stderr"; then
    echo "FAIL existing output: exit $rc, stderr:"; cat "$T/stderr"; failures=$((failures + 1))
elif [ "$("$MMSAGE" info --catalog "$T/cat" 2>&1 | grep checksum)" != "$sum1" ]; then
    echo "FAIL existing output: the refused import changed it"; failures=$((failures + 1))
else
    echo "ok   existing output refused (exit $rc)"
fi
"$MMSAGE" import mulan --train "$T/good.arff" --xml "$T/l.xml" --out "$T/cat" --force >"$T/stdout" 2>"$T/stderr"
rc=$?
if [ $rc -ne 0 ] || ! "$MMSAGE" info --catalog "$T/cat" 2>&1 | grep -Eq '^images +2 \(train 2, val 0, test 0\)'; then
    echo "FAIL --force: exit $rc"; cat "$T/stderr"; failures=$((failures + 1))
elif ls -a "$T" | grep -q '\.tmp\.\|\.old\.'; then
    echo "FAIL --force: leftovers: $(ls -a "$T")"; failures=$((failures + 1))
else
    echo "ok   --force replaces the output"
fi

if [ $failures -ne 0 ]; then echo "import_mulan_bad: $failures FAILED"; exit 1; fi
echo "import_mulan_bad: all passed"
