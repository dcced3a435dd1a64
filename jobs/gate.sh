#!/bin/bash
# jobs/gate.sh: the nightly quality gate. Compares two evaluation reports of
# the same queries (mmsage eval --report, the new version's and the current
# one's) on one method's per-query nDCG@5 (all-Excellent ideal, the report's
# headline metric): the mean paired difference new - current and its standard
# error. Exit 0 when the new version may be published, 1 when it regressed by
# more than the allowed margin, 2 on a usage or input error.
#
#   bash jobs/gate.sh NEW_REPORT CURRENT_REPORT [METHOD] [MARGIN]
#
# METHOD defaults to gnn-image. The new version is refused when
#   mean(new - current) < -(MARGIN + 2 SE)
# MARGIN (default 0.01 nDCG@5) is the loss a night may cost for sure; 2 SE
# (the paired differences' standard error) is what the sample's noise alone
# can produce about 1 time in 40. Adding images changes the gallery, so the
# two lists differ even for an unchanged model: a drop within noise is not a
# regression, a drop beyond it is (docs/versions.md, "The quality gate").
set -u
[ $# -ge 2 ] || { echo "usage: gate.sh NEW_REPORT CURRENT_REPORT [METHOD] [MARGIN]" >&2; exit 2; }
new=$1/queries.tsv cur=$2/queries.tsv method=${3:-gnn-image} margin=${4:-0.01}
for f in "$new" "$cur"; do
    [ -s "$f" ] || { echo "gate: '$f' is missing or empty (an mmsage eval report)" >&2; exit 2; }
done
awk -F'\t' -v m="$method" -v margin="$margin" '
    FNR == 1 { file++; next }
    $2 != m || $4 > 5 { next }
    { g = $7 + 0; d = (g > 0) ? (2 ^ g - 1) / (log($4 + 1) / log(2)) : 0
      if (file == 1) { a[$3] += d; qa[$3] = 1 } else { b[$3] += d; qb[$3] = 1 } }
    END {
        ideal = 0; for (i = 1; i <= 5; i++) ideal += 7 / (log(i + 1) / log(2))
        n = 0; s = 0; ss = 0
        for (q in qa) { if (!(q in qb)) continue; x = (a[q] - b[q]) / ideal; n++; s += x; ss += x * x }
        if (n < 2) { printf "gate: %d common queries of method %s in the two reports\n", n, m > "/dev/stderr"; exit 2 }
        mean = s / n; var = (ss - n * mean * mean) / (n - 1); se = sqrt(var > 0 ? var : 0) / sqrt(n)
        na = 0; for (q in qa) na++
        printf "gate: %s nDCG@5 new - current = %+.4f (SE %.4f, %d paired queries); refused below %+.4f\n",
            m, mean, se, n, -(margin + 2 * se)
        exit (mean < -(margin + 2 * se)) ? 1 : 0
    }' "$new" "$cur"
