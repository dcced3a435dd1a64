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
#   scripts/drift.sh --catalog C --add "500|10% ..." --work W [--seeds "1 2 3"] [--ranks 2]
#                    [--build-args "..."] [--train-args "..."]
# Several --add shares (e.g. "10% 50%") share the full builds: the curve of
# docs/nightly.md.
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
for a in $add; do
    [[ "$a" =~ ^[1-9][0-9]*%?$ ]] || mms_die "--add '$a': a count of images or a percentage such as 10%"
done
read -r -a BARGS <<<"$bargs"
read -r -a TARGS <<<"$targs"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
mms_mpi_env

pipeline() { # CATALOG DIR SEED: graph, model, index under DIR
    local c=$1 d=$2 s=$3
    mms_mpirun "$ranks" "$MMSAGE" build --catalog "$c" --out "$d/graph" --force "${BARGS[@]}"
    "$MMSAGE" partition --graph "$d/graph" --parts "$ranks" --force
    mms_mpirun "$ranks" "$MMSAGE" train --graph "$d/graph" --out "$d/model" --seed "$s" --force "${TARGS[@]}"
    mms_mpirun "$ranks" "$MMSAGE" embed --graph "$d/graph" --model "$d/model" --out "$d/index" --force
}
awk -F'\t' 'NR > 1 && $2 == "train" { print $1 }' "$cat/images.tsv" >"$work/train.ids"
ntrain=$(wc -l <"$work/train.ids")
# share A: the last training images in catalog order, in W/add-A/
prepare() {
    local a=$1 nadd w="$work/add-${1%\%}"
    if [[ "$a" == *% ]]; then nadd=$((ntrain * ${a%\%} / 100)); else nadd=$a; fi
    [ "$nadd" -ge 1 ] && [ "$nadd" -lt "$ntrain" ] || mms_die "--add $a: $nadd of $ntrain training images"
    mkdir -p "$w"
    tail -n "$nadd" "$work/train.ids" >"$w/delta.ids"
    "$MMSAGE" import catalog --from "$cat" --ids "$w/delta.ids" --exclude --out "$w/base-catalog" --force
    "$MMSAGE" import catalog --from "$cat" --ids "$w/delta.ids" --split train --out "$w/delta-catalog" --force
    mms_log "drift: $ntrain training images, the last $nadd ($a) added later"
}
for a in $add; do prepare "$a"; done
mms_log "drift: seeds $seeds; $ranks ranks"
for s in $seeds; do
    f="$work/seed-$s/full"
    if [ ! -s "$f/report/query-metrics.tsv" ]; then
        mms_stage "seed $s: full build" pipeline "$cat" "$f" "$s"
        mms_stage "seed $s: full eval" mms_mpirun "$ranks" "$MMSAGE" eval --catalog "$cat" --index "$f/index" \
            --report "$f/report" --plots 0 --force
    fi
    for a in $add; do
        w="$work/add-${a%\%}" i="$work/add-${a%\%}/seed-$s"
        [ ! -s "$i/report/query-metrics.tsv" ] || continue
        mms_stage "seed $s, add $a: base build" pipeline "$w/base-catalog" "$i" "$s"
        mms_stage "seed $s, add $a: base eval" mms_mpirun "$ranks" "$MMSAGE" eval --catalog "$w/base-catalog" \
            --index "$i/index" --report "$i/base-report" --plots 0 --force
        mms_stage "seed $s, add $a: add" mms_mpirun "$ranks" "$MMSAGE" add --index "$i/index" \
            --catalog "$w/delta-catalog" --out "$i/index2" --force
        "$MMSAGE" import catalog --from-index "$i/index2" --out "$i/judge" --force
        mms_stage "seed $s, add $a: incremental eval" mms_mpirun "$ranks" "$MMSAGE" eval \
            --catalog "$w/base-catalog" --index "$i/index2" --judge-catalog "$i/judge" --report "$i/report" \
            --plots 0 --force
    done
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
printf 'add\tseed\trun\tndcg5\ttag_P\ttag_R\ttag_N+\tminus_full\tse\tqueries\n' >"$out"
for a in $add; do
    for s in $seeds; do
        f="$work/seed-$s/full/report" i="$work/add-${a%\%}/seed-$s/report" b="$work/add-${a%\%}/seed-$s/base-report"
        for run in full incremental base; do
            case $run in full) r=$f ;; incremental) r=$i ;; base) r=$b ;; esac
            p=$'\t\t'
            [ $run != full ] && p=$(paired "$r" "$f")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$a" "$s" "$run" \
                "$(metric "$r" gnn-image ndcg@5-ideal-excellent)" "$(metric "$r" gnn-image tag-P)" \
                "$(metric "$r" gnn-image tag-R)" "$(metric "$r" gnn-image tag-N+)" "$p" >>"$out"
        done
    done
done
awk -F'\t' 'NR > 1 { k = $1 SUBSEP $3; for (j = 4; j <= 7; j++) { s[k, j] += $j; ss[k, j] += $j * $j } n[k]++
        if ($8 != "") { d[k] += $8; dd[k] += $8 * $8 } }
    END { for (k in n) { split(k, kk, SUBSEP); printf "add %-5s %-12s %d seed(s)", kk[1], kk[2], n[k]
            for (j = 4; j <= 7; j++) { m = s[k, j] / n[k]; v = n[k] > 1 ? (ss[k, j] - n[k] * m * m) / (n[k] - 1) : 0
                printf "  %.4f +- %.4f", m, sqrt(v > 0 ? v : 0) }
            if (kk[2] != "full") { m = d[k] / n[k]; v = n[k] > 1 ? (dd[k] - n[k] * m * m) / (n[k] - 1) : 0
                printf "  minus full %+.4f +- %.4f (%+.1f %%)", m, sqrt(v > 0 ? v : 0), 100 * m / (s[k, 4] / n[k] - m) }
            printf "\n" } }' "$out" | sort >"$work/drift-summary.txt"
column -t -s $'\t' "$out"
echo "columns: nDCG@5 (all-Excellent), tag P, tag R, tag N+ (gnn-image), each mean +- sd over seeds;"
echo "minus full: the paired per-query difference against the full build of the same seed, its mean +- sd over seeds"
cat "$work/drift-summary.txt"
