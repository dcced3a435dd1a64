# shellcheck shell=bash
# scripts/lib/metrics.bash: read an eval report (sourced; not a program).
# Shared by the Corel5k e2e test and scripts/corel5k_spread.sh so that both
# compute the same figures the same way.
#
#   mms_metric METRICS.TSV METHOD METRIC    one value of metrics.tsv (empty if absent)
#   mms_paired_step QUERY-METRICS.TSV A B COLUMN
#       "mean se" of the per-query difference B - A of COLUMN (5: tag overlap,
#       6: visual similarity) over the queries both methods answered; se is the
#       standard error of that mean (the paired standard error)

mms_metric() {
    awk -F'\t' -v me="$2" -v mt="$3" '$2 == me && $3 == mt { print $4 }' "$1"
}

mms_paired_step() {
    awk -F'\t' -v a="$2" -v b="$3" -v c="$4" '
        $2 == a { va[$3] = $c } $2 == b { vb[$3] = $c }
        END { for (q in vb) if (q in va) { d = vb[q] - va[q]; n++; s += d; ss += d * d }
              if (n < 2) { print "nan nan"; exit }
              m = s / n; v = (ss - n * m * m) / (n - 1) / n; if (v < 0) v = 0
              printf "%.6f %.6f\n", m, sqrt(v) }' "$1"
}
