#!/usr/bin/env bash
# labels: unit
# nightly_gate.sh: jobs/gate.sh, the nightly quality gate, on hand-made
# queries.tsv files: the same results pass, a version whose results lost
# their relevant images is refused (exit 1) with the paired difference and
# its standard error, a drop within noise passes, bad input exits 2.
set -u
SRC=${MMS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# report DIR GRADE_FN: 200 queries x 5 ranks of gnn-image (and a raw-visual row
# the gate must ignore); GRADE_FN q r prints the grade
report() {
    mkdir -p "$1"
    {
        printf 'dataset\tmethod\tquery\trank\tresult\tscore\tgrade\n'
        for q in $(seq 1 200); do
            for r in 1 2 3 4 5 6; do
                printf 'd\tgnn-image\tq%d\t%d\tr%d\t0.5\t%d\n' "$q" "$r" "$r" "$($2 "$q" "$r")"
                printf 'd\traw-visual\tq%d\t%d\tr%d\t0.5\t0\n' "$q" "$r" "$r"
            done
        done
    } >"$1/queries.tsv"
}
good() { echo $((($1 + $2) % 4)); }
worse() { echo $(((($1 + $2) % 4) / 2)); }      # most grades halved: a real regression
noisy() { if [ $(($1 % 50)) = 0 ]; then echo 0; else good "$1" "$2"; fi; } # 4 queries of 200 lose
report "$tmp/cur" good
report "$tmp/same" good
report "$tmp/worse" worse
report "$tmp/noisy" noisy
bash "$SRC/jobs/gate.sh" "$tmp/same" "$tmp/cur" >"$tmp/o1" 2>&1 || fail "identical reports refused: $(cat "$tmp/o1")"
grep -q "new - current = +0.0000 (SE 0.0000, 200 paired queries)" "$tmp/o1" || fail "identical: $(cat "$tmp/o1")"
bash "$SRC/jobs/gate.sh" "$tmp/worse" "$tmp/cur" >"$tmp/o2" 2>&1
[ $? = 1 ] || fail "a regression was not refused: $(cat "$tmp/o2")"
grep -q "new - current = -0\.[0-9]* (SE" "$tmp/o2" || fail "regression message: $(cat "$tmp/o2")"
bash "$SRC/jobs/gate.sh" "$tmp/noisy" "$tmp/cur" >"$tmp/o3" 2>&1 || fail "a drop within noise refused: $(cat "$tmp/o3")"
bash "$SRC/jobs/gate.sh" "$tmp/noisy" "$tmp/cur" gnn-image 0 >"$tmp/o4" 2>&1
[ $? = 1 ] || echo "note: with margin 0 the noisy drop passes on 2 SE alone: $(cat "$tmp/o4")"
bash "$SRC/jobs/gate.sh" "$tmp/missing" "$tmp/cur" >"$tmp/o5" 2>&1
[ $? = 2 ] && grep -q "missing or empty" "$tmp/o5" || fail "missing report: $(cat "$tmp/o5")"
bash "$SRC/jobs/gate.sh" "$tmp/same" "$tmp/cur" no-such-method >"$tmp/o6" 2>&1
[ $? = 2 ] || fail "unknown method: $(cat "$tmp/o6")"
[ "$fails" -eq 0 ] && echo "gate: same passes, regression refused, noise passes, bad input exits 2"
exit $((fails > 0))
