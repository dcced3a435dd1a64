#!/usr/bin/env bash
# scripts/drift.sh: what the nightly `add` costs against a full rebuild
# (issue 14, "Drift, measured"; docs/nightly.md). For every seed:
#   full         build, partition, train and embed on every training image of
#                CATALOG, then eval on its test images
#   incremental  the same on the training images minus the LAST share of them
#                (catalog order: "train on the first 4,000, add the remaining
#                500"), then `mmsage add` of that share with the frozen model,
#                then eval of the new version on the same test images
#                (--judge-catalog: every live image)
#   base         the incremental run's index before the add (how much the add
#                itself brings)
# and prints, per seed and as mean +- sd over seeds, image-only retrieval
# nDCG@5 (all-Excellent ideal) and tag prediction P / R / N+ of every run,
# with the paired per-query difference incremental - full and its SE.
#
#   scripts/drift.sh --catalog C --add 500|10% --work W [--seeds "1 2 3"] [--ranks 2]
#                    [--build-args "..."] [--train-args "..."]
# Needs a built mmsage (MMSAGE or build/app/mmsage); writes only under W.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=jobs/common.sh
. "$here/jobs/common.sh"
MMS_SRC="${MMS_SRC:-$here}"
mms_find_binary

usage() { echo "usage: scripts/drift.sh --catalog C --add N|P% --work W [--seeds \"1 2 3\"] [--ranks R] [--build-args A] [--train-args A]" >&2; exit 2; }
cat="" add="" work="" seeds="1 2 3" ranks=2 bargs="" targs=""
while [ $# -gt 0 ]; do
    case "$1" in
        --catalog) cat=$2; shift 2 ;;
        --add) add=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --ranks) ranks=$2; shift 2 ;;
        --build-args) bargs=$2; shift 2 ;;
        --train-args) targs=$2; shift 2 ;;
        *) usage ;;
    esac
done
[ -n "$cat" ] && [ -n "$add" ] && [ -n "$work" ] || usage
[ -f "$cat/images.tsv" ] || mms_die "--catalog $cat: no images.tsv (a catalog directory from mmsage import or synth)"
[[ "$add" =~ ^[1-9][0-9]*%?$ ]] || mms_die "--add '$add': a count of images or a percentage such as 10%"
read -r -a BARGS <<<"$bargs"
read -r -a TARGS <<<"$targs"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
mms_mpi_env

# the held-out share: the last training images in catalog order
awk -F'\t' 'NR > 1 && $2 == "train" { print $1 }' "$cat/images.tsv" >"$work/train.ids"
ntrain=$(wc -l <"$work/train.ids")
if [[ "$add" == *% ]]; then nadd=$((ntrain * ${add%\%} / 100)); else nadd=$add; fi
[ "$nadd" -ge 1 ] && [ "$nadd" -lt "$ntrain" ] || mms_die "--add $add: $nadd of $ntrain training images"
tail -n "$nadd" "$work/train.ids" >"$work/delta.ids"
mms_log "drift: $ntrain training images, the last $nadd added later; seeds $seeds; $ranks ranks"
"$MMSAGE" import catalog --from "$cat" --ids "$work/delta.ids" --exclude --out "$work/base-catalog" --force
"$MMSAGE" import catalog --from "$cat" --ids "$work/delta.ids" --split train --out "$work/delta-catalog" --force

pipeline() { # CATALOG DIR SEED: graph, model, index under DIR
    local c=$1 d=$2 s=$3
    mms_mpirun "$ranks" "$MMSAGE" build --catalog "$c" --out "$d/graph" --force "${BARGS[@]}"
    "$MMSAGE" partition --graph "$d/graph" --parts "$ranks" --force
    mms_mpirun "$ranks" "$MMSAGE" train --graph "$d/graph" --out "$d/model" --seed "$s" --force "${TARGS[@]}"
    mms_mpirun "$ranks" "$MMSAGE" embed --graph "$d/graph" --model "$d/model" --out "$d/index" --force
}
for s in $seeds; do
    f="$work/seed-$s/full" i="$work/seed-$s/incr"
    if [ ! -s "$f/report/query-metrics.tsv" ]; then
        mms_stage "seed $s: full build" pipeline "$cat" "$f" "$s"
        mms_stage "seed $s: full eval" mms_mpirun "$ranks" "$MMSAGE" eval --catalog "$cat" --index "$f/index" \
            --report "$f/report" --plots 0 --force
    fi
    if [ ! -s "$i/report/query-metrics.tsv" ]; then
        mms_stage "seed $s: base build" pipeline "$work/base-catalog" "$i" "$s"
        mms_stage "seed $s: base eval" mms_mpirun "$ranks" "$MMSAGE" eval --catalog "$work/base-catalog" \
            --index "$i/index" --report "$i/base-report" --plots 0 --force
        mms_stage "seed $s: add $nadd" mms_mpirun "$ranks" "$MMSAGE" add --index "$i/index" \
            --catalog "$work/delta-catalog" --out "$i/index2" --force
        "$MMSAGE" import catalog --from-index "$i/index2" --out "$i/judge" --force
        mms_stage "seed $s: incremental eval" mms_mpirun "$ranks" "$MMSAGE" eval --catalog "$work/base-catalog" \
            --index "$i/index2" --judge-catalog "$i/judge" --report "$i/report" --plots 0 --force
    fi
done

# the table: per run, gnn-image nDCG@5 and gnn-image tag P/R/N+
metric() { awk -F'\t' -v m="$2" -v k="$3" '$2 == m && $3 == k { print $4 }' "$1/metrics.tsv"; }
paired() { # A B: mean and SE of A - B over common queries (gnn-image)
    awk -F'\t' 'FNR == 1 { f++; next } $2 != "gnn-image" { next }
        f == 1 { a[$3] = $4 } f == 2 && ($3 in a) { x = a[$3] - $4; n++; s += x; ss += x * x }
        END { m = s / n; v = (ss - n * m * m) / (n - 1); printf "%+.4f\t%.4f\t%d", m, sqrt(v / n), n }' \
        "$1/query-metrics.tsv" "$2/query-metrics.tsv"
}
out="$work/drift.tsv"
printf 'seed\trun\tndcg5\ttag_P\ttag_R\ttag_N+\tminus_full\tse\tqueries\n' >"$out"
for s in $seeds; do
    f="$work/seed-$s/full/report" i="$work/seed-$s/incr/report" b="$work/seed-$s/incr/base-report"
    for run in full incremental base; do
        case $run in full) r=$f ;; incremental) r=$i ;; base) r=$b ;; esac
        p=$'\t\t'
        [ $run != full ] && p=$(paired "$r" "$f")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$run" "$(metric "$r" gnn-image ndcg@5-ideal-excellent)" \
            "$(metric "$r" gnn-image tag-P)" "$(metric "$r" gnn-image tag-R)" "$(metric "$r" gnn-image tag-N+)" "$p" >>"$out"
    done
done
awk -F'\t' 'NR > 1 { for (j = 3; j <= 6; j++) { s[$2, j] += $j; ss[$2, j] += $j * $j } n[$2]++
        if ($7 != "") { d[$2] += $7 } }
    END { for (r in n) { printf "mean over %d seeds  %-12s", n[r], r
            for (j = 3; j <= 6; j++) { m = s[r, j] / n[r]; v = n[r] > 1 ? (ss[r, j] - n[r] * m * m) / (n[r] - 1) : 0
                printf "  %.4f +- %.4f", m, sqrt(v > 0 ? v : 0) }
            if (r != "full") printf "  (minus full: %+.4f)", d[r] / n[r]
            printf "\n" } }' "$out" >"$work/drift-summary.txt"
column -t -s $'\t' "$out"
echo "columns: nDCG@5 (all-Excellent), tag P, tag R, tag N+ (gnn-image), each mean +- sd"
cat "$work/drift-summary.txt"
