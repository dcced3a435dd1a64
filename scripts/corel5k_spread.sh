#!/usr/bin/env bash
# scripts/corel5k_spread.sh: the spread of the Corel5k end-to-end figures over
# seeds and OpenBLAS kernels (issue 10). For every kernel K (OPENBLAS_CORETYPE)
# it builds and partitions the graph under K, then for every seed S trains,
# embeds and evaluates under K, and appends one row per (K, S) to OUT/spread.tsv:
# gnn-image and raw-visual nDCG@5, the tags of gnn-knn-vote-debiased and of
# raw-visual (P, R, N+), and every slider step of both fusions as a paired
# mean and standard error (tag overlap and visual similarity), plus the seconds
# each stage took. Rows already in spread.tsv are kept (a rerun resumes).
#
#   scripts/corel5k_spread.sh OUT [--kernels "Prescott Haswell SkylakeX"]
#       [--seeds "1 2 3"] [--ranks 2] [--train-args "..."] [--build-args "..."]
#
# Needs MMSAGE (or build/app/mmsage) and $MMS_SHARED_DATA (default ../shared/data).
# Training settings default to jobs/common.sh's. Several minutes per row.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=jobs/common.sh
. "$here/jobs/common.sh"
# shellcheck source=scripts/lib/metrics.bash
. "$here/scripts/lib/metrics.bash"
out=${1:?usage: corel5k_spread.sh OUT [--kernels K..] [--seeds S..] [--ranks P] [--train-args A] [--build-args A]}
shift
kernels="Prescott Haswell SkylakeX" seeds="1 2 3" ranks=2
train_args="$MMS_DEFAULT_TRAIN_ARGS" build_args="$MMS_DEFAULT_BUILD_ARGS"
while [ $# -gt 0 ]; do
    case $1 in
        --kernels) kernels=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --ranks) ranks=$2; shift 2 ;;
        --train-args) train_args=$2; shift 2 ;;
        --build-args) build_args=$2; shift 2 ;;
        *) mms_die "corel5k_spread.sh: unknown option '$1'" ;;
    esac
done
MMSAGE=${MMSAGE:-$here/build/app/mmsage}
mms_find_binary
data="${MMS_SHARED_DATA:-$(cd "$here/.." && pwd)/shared/data}/corel5k"
[ -f "$data/Corel5k.xml" ] || mms_die "no Corel5k at $data (set MMS_SHARED_DATA)"
read -r -a BA <<<"$build_args"
read -r -a TA <<<"$train_args"
mkdir -p "$out"
tsv="$out/spread.tsv"
cols="kernel\tseed\tranks\tcorename\traw_ndcg5\tgnn_ndcg5\tgnn_P\tgnn_R\tgnn_N+\tvis_P\tvis_R\tvis_N+"
for fam in slider slider-node; do
    for w in 0.75 0.5 0.25 0; do
        cols+="\t$fam-$w:overlap\t$fam-$w:overlap_se\t$fam-$w:vissim\t$fam-$w:vissim_se"
    done
done
cols+="\tnode0_ndcg5\tpaper0_ndcg5\ttrain_s\tembed_s\teval_s"
[ -s "$tsv" ] || printf "%b\n" "$cols" >"$tsv"

run() { # LOG CMD...: run, keep the log, fail loudly
    local log=$1
    shift
    "$@" >"$log" 2>&1 || { tail -20 "$log" >&2; mms_die "failed: $* (log $log)"; }
}
secs() { local t0=$1; awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[ -d "$out/C" ] || run "$out/import.log" "$MMSAGE" import mulan --train "$data/Corel5k-train-sparse.arff" \
    --test "$data/Corel5k-test-sparse.arff" --xml "$data/Corel5k.xml" --out "$out/C"
for k in $kernels; do
    export OPENBLAS_CORETYPE=$k
    g="$out/G-$k"
    if [ ! -d "$g/parts-$ranks" ]; then
        rm -rf "$g"
        run "$out/build-$k.log" mms_mpirun "$ranks" "$MMSAGE" build --catalog "$out/C" --out "$g" "${BA[@]}"
        run "$out/partition-$k.log" "$MMSAGE" partition --graph "$g" --parts "$ranks"
    fi
    for s in $seeds; do
        if awk -F'\t' -v k="$k" -v s="$s" -v p="$ranks" '$1 == k && $2 == s && $3 == p { f = 1 } END { exit !f }' "$tsv"; then
            mms_log "kernel $k seed $s: already in $tsv"
            continue
        fi
        r="$out/run-$k-$s"
        if [ -s "$r/R/query-metrics.tsv" ] && [ -s "$r/R/metrics.tsv" ]; then
            mms_log "kernel $k seed $s: reusing the finished run in $r"
            read -r ts es vs <"$r/seconds" 2>/dev/null || { ts='?' es='?' vs='?'; }
        else
            rm -rf "$r"; mkdir -p "$r"
            t0=$(date +%s.%N)
            run "$r/train.log" mms_mpirun "$ranks" "$MMSAGE" train --graph "$g" --out "$r/M" "${TA[@]}" --seed "$s" --log-every 1000
            ts=$(secs "$t0"); t0=$(date +%s.%N)
            run "$r/embed.log" mms_mpirun "$ranks" "$MMSAGE" embed --graph "$g" --model "$r/M" --out "$r/I"
            es=$(secs "$t0"); t0=$(date +%s.%N)
            run "$r/eval.log" mms_mpirun "$ranks" "$MMSAGE" eval --catalog "$out/C" --index "$r/I" --report "$r/R" --plots 0
            vs=$(secs "$t0")
            echo "$ts $es $vs" >"$r/seconds"
        fi
        m="$r/R/metrics.tsv" qm="$r/R/query-metrics.tsv"
        core=$(grep -o "BLAS core [A-Za-z0-9]*" "$r/train.log" | head -1 | awk '{print $3}' || true)
        row="$k\t$s\t$ranks\t${core:-?}\t$(mms_metric "$m" raw-visual ndcg@5-ideal-excellent)\t$(mms_metric "$m" gnn-image ndcg@5-ideal-excellent)"
        for x in P R N+; do row+="\t$(mms_metric "$m" gnn-knn-vote-debiased "tag-$x")"; done
        for x in P R N+; do row+="\t$(mms_metric "$m" raw-visual "tag-$x")"; done
        for fam in slider slider-node; do
            prev=slider-1
            for w in 0.75 0.5 0.25 0; do
                read -r mo so <<<"$(mms_paired_step "$qm" "$prev" "$fam-$w" 5)"
                read -r mv sv <<<"$(mms_paired_step "$qm" "$prev" "$fam-$w" 6)"
                row+="\t$mo\t$so\t$mv\t$sv"
                prev="$fam-$w"
            done
        done
        row+="\t$(mms_metric "$m" slider-node-0 ndcg@5-ideal-excellent)\t$(mms_metric "$m" slider-0 ndcg@5-ideal-excellent)"
        row+="\t$ts\t$es\t$vs"
        printf "%b\n" "$row" >>"$tsv"
        mms_log "kernel $k seed $s: train $ts s, embed $es s, eval $vs s"
        rm -rf "$r/M/ckpt"* 2>/dev/null || true
    done
done

# The summary: every numeric column's mean, standard deviation, min and max
# over the rows of this rank count, as a Markdown table (OUT/spread.md).
awk -F'\t' -v p="$ranks" '
    NR == 1 { for (i = 1; i <= NF; i++) name[i] = $i; nf = NF; next }
    $3 != p { next }
    { n++; for (i = 5; i <= nf; i++) if ($i != "?" && $i != "") { v = $i + 0; c[i]++; s[i] += v; ss[i] += v * v
          if (!(i in mn) || v < mn[i]) mn[i] = v; if (!(i in mx) || v > mx[i]) mx[i] = v } }
    END {
        printf "| figure | mean | sd | min | max | runs |\n|---|---:|---:|---:|---:|---:|\n"
        for (i = 5; i <= nf; i++) if (c[i]) {
            m = s[i] / c[i]; var = c[i] > 1 ? (ss[i] - c[i] * m * m) / (c[i] - 1) : 0; if (var < 0) var = 0
            printf "| %s | %.4f | %.4f | %.4f | %.4f | %d |\n", name[i], m, sqrt(var), mn[i], mx[i], c[i]
        }
    }' "$tsv" >"$out/spread.md"
mms_log "spread: $(($(wc -l <"$tsv") - 1)) rows in $tsv; summary in $out/spread.md"
