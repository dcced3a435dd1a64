#!/usr/bin/env bash
# jobs/main.sh: the main job, end to end on one machine or inside a SLURM
# allocation (mpirun then takes the allocated slots). For every data set:
#   import   Corel5k (Mulan ARFF) and the COCO subset (JPEG pixels) from
#            ../shared/data, or a synthetic catalog when the real data is absent
#   build    the multi-modal graph (kNN image edges + tag edges), MPI
#   partition METIS into MMS_RANKS parts with halos
#   train    GraphSAGE on MMS_RANKS ranks for a fixed amount of work (the 8
#            epochs of the defaults, or MMS_TRAIN_ARGS' --epochs/--max-steps) to
#            the end; a time limit is only a safety net, and when it cuts training
#            the report says so in its first lines (and this script at its end)
#   embed    the sharded index
#   serve    a query server on loopback, with example queries: a test image
#            alone, then with a keyword at three slider positions, and its
#            predicted tags (the paper's Figure 5)
#   eval     the evaluation report (report.md, metrics.tsv, plots, examples.html)
#   usage: jobs/main.sh [WORKDIR]      (default: runs/main)
# Environment: MMSAGE (binary), MMS_RANKS (default: SLURM_NTASKS or 2),
#   MMS_SHARED_DATA (default ../shared/data), MMS_SYNTH_IMAGES (20000),
#   MMS_TRAIN_SECONDS (a time bound per data set; default: none, so the numbers do
#   not depend on the machine's load and the README's commands typed as shown
#   reproduce them; inside SLURM, a guard of half the job's time left minus
#   10 minutes so the job ends before its wall), MMS_BUILD_ARGS and
#   MMS_TRAIN_ARGS (default: MMS_DEFAULT_BUILD_ARGS / MMS_DEFAULT_TRAIN_ARGS of
#   jobs/common.sh, the settings of docs/results.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=jobs/common.sh
. "$here/jobs/common.sh"
MMS_SRC="${MMS_SRC:-$here}"
mms_find_binary
DATA="${MMS_SHARED_DATA:-$here/../shared/data}"
WORK="${1:-$here/runs/main}"
RANKS="${MMS_RANKS:-${SLURM_NTASKS:-2}}"
TRAIN_SECONDS="${MMS_TRAIN_SECONDS:-0}"
if [ "$TRAIN_SECONDS" = 0 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    left=$(mms_seconds_left)
    [ -n "$left" ] && TRAIN_SECONDS=$(((left - 600) / 2 > 60 ? (left - 600) / 2 : 60))
fi
read -r -a BUILD_ARGS <<<"${MMS_BUILD_ARGS-$MMS_DEFAULT_BUILD_ARGS}"
read -r -a TRAIN_ARGS <<<"${MMS_TRAIN_ARGS-$MMS_DEFAULT_TRAIN_ARGS}"
mkdir -p "$WORK"

pipeline() { # NAME: catalog in $WORK/NAME/catalog -> graph, partition, model, index
    local name=$1 d="$WORK/$1"
    mms_stage "$name: build the graph ($RANKS ranks)" \
        mms_mpirun "$RANKS" "$MMSAGE" build --catalog "$d/catalog" --out "$d/graph" --force "${BUILD_ARGS[@]}"
    mms_stage "$name: partition into $RANKS parts" \
        "$MMSAGE" partition --graph "$d/graph" --parts "$RANKS" --force
    mms_stage "$name: train ($RANKS ranks$([ "$TRAIN_SECONDS" != 0 ] && echo ", at most ${TRAIN_SECONDS}s as a safety"))" \
        train_logged "$d/train.out" mms_mpirun "$RANKS" "$MMSAGE" train --graph "$d/graph" --out "$d/model" --force \
        --time-limit "$TRAIN_SECONDS" --log-every 200 "${TRAIN_ARGS[@]}"
    mms_stage "$name: embed ($RANKS ranks)" \
        mms_mpirun "$RANKS" "$MMSAGE" embed --graph "$d/graph" --model "$d/model" --out "$d/index" --force
    mms_stage "$name: serve + example queries" examples "$name"
    mms_stage "$name: evaluate ($RANKS ranks)" \
        mms_mpirun "$RANKS" "$MMSAGE" eval --catalog "$d/catalog" --index "$d/index" --report "$d/report" --force
    note_cut "$name"
    reports+=("$d/report/report.md")
}

# train's stdout (its summary) is shown and kept in FILE.
train_logged() { # FILE CMD...
    local out=$1
    shift
    "$@" | tee "$out"
}

# When the time limit (a safety) cut training short of its fixed epochs, the
# report says so in its first lines, and main.sh at its end.
note_cut() { # NAME
    local d="$WORK/$1" line
    line=$(grep -m 1 '^steps ' "$d/train.out" 2>/dev/null) || return 0
    case "$line" in *"(time limit)"*) ;; *) return 0 ;; esac
    line=$(echo "$line" | tr -s ' ')
    local note="**Training was cut by the time limit** (${TRAIN_SECONDS} s, MMS_TRAIN_SECONDS or the SLURM guard): ${line#steps }; the model below is trained less than its settings ask (TRAIN_ARGS: ${TRAIN_ARGS[*]:-the defaults}), so its figures are not the settings' figures."
    awk -v n="$note" 'NR == 1 { print; print ""; print n; next } { print }' "$d/report/report.md" >"$d/report/report.md.tmp"
    mv "$d/report/report.md.tmp" "$d/report/report.md"
    cuts+=("$1: $line")
}


# The query server's ranks: a coordinator plus workers that hold the RANKS
# shards. Inside a SLURM allocation of RANKS tasks it stays within them: RANKS
# ranks (RANKS-1 workers, one of them holding two shards), or 2 when RANKS is 1
# (the coordinator then shares the one slot: it waits politely between
# queries). Outside SLURM, one worker per shard (RANKS + 1).
serve_launch() { # ARGS...: mms_mpirun with the server's rank count
    local np=$((RANKS + 1))
    if [ -n "${SLURM_JOB_ID:-}" ]; then
        np=$RANKS
        if [ "$np" -lt 2 ]; then MMS_OVERSUBSCRIBE=1 mms_mpirun 2 "$@"; return; fi
    fi
    mms_mpirun "$np" "$@"
}

# A query server on an ephemeral loopback port; example queries; SIGTERM.
examples() {
    local name=$1 d="$WORK/$1" log="$WORK/$1/serve.log" pidf="$WORK/$1/serve.pid" port="" i
    rm -f "$pidf"
    serve_launch "$MMSAGE" serve --index "$d/index" --listen 127.0.0.1:0 \
        --pid-file "$pidf" >"$log" 2>&1 &
    local mpirun_pid=$!
    for i in $(seq 1 600); do
        port=$(sed -n 's/.*ready: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)
        [ -n "$port" ] && [ -s "$pidf" ] && break
        kill -0 "$mpirun_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        cat "$log" >&2
        mms_die "$name: the query server did not become ready"
    fi
    grep "ready:" "$log" >&2
    # two test images of the catalog, and the most frequent tag as the keyword
    local rows keyword
    rows=$(awk -F'\t' '$2 == "test" { print NR - 1 }' "$d/catalog/images.tsv" | head -n 2)
    keyword=$(sort -t$'\t' -k2,2nr "$d/index/tags.tsv" | head -n 1 | cut -f1)
    for r in $rows; do
        local id tags
        id=$(sed -n "$((r + 1))p" "$d/catalog/images.tsv" | cut -f1)
        tags=$(sed -n "$((r + 1))p" "$d/catalog/images.tsv" | cut -f3)
        printf '\n---- %s: test image %s (its tags: %s), image only, visual 1 ----\n' "$name" "$id" "${tags:-none}"
        "$MMSAGE" query --server "127.0.0.1:$port" --image-features "$d/catalog/features.npy" --row "$r" \
            --k 6 --predict-tags --tag-k 5
        for w in 0.75 0.5 0.25; do
            printf '\n---- %s: test image %s + keyword "%s", visual %s ----\n' "$name" "$id" "$keyword" "$w"
            "$MMSAGE" query --server "127.0.0.1:$port" --image-features "$d/catalog/features.npy" --row "$r" \
                --tags "$keyword" --visual "$w" --k 6
        done
        printf '\n---- %s: test image %s + keyword "%s", visual 0.5, the keyword as a node (--concept node) ----\n' \
            "$name" "$id" "$keyword"
        "$MMSAGE" query --server "127.0.0.1:$port" --image-features "$d/catalog/features.npy" --row "$r" \
            --tags "$keyword" --visual 0.5 --concept node --k 6
    done
    kill -TERM "$(cat "$pidf")" 2>/dev/null || true
    wait "$mpirun_pid" 2>/dev/null || true
}

reports=()
cuts=()

catalogs=()
if [ -d "$DATA/corel5k" ]; then
    mms_stage "corel5k: import (Mulan ARFF)" \
        "$MMSAGE" import mulan --train "$DATA/corel5k/Corel5k-train-sparse.arff" \
        --test "$DATA/corel5k/Corel5k-test-sparse.arff" --xml "$DATA/corel5k/Corel5k.xml" \
        --out "$WORK/corel5k/catalog" --force
    catalogs+=(corel5k)
fi
if [ -d "$DATA/coco-subset" ]; then
    C="$DATA/coco-subset"
    mms_stage "coco: import (descriptors from the JPEG pixels)" \
        "$MMSAGE" import coco \
        --images "$C/coco-mini/train2017" --instances "$C/coco-mini/annotations/instances_train2017.json" \
        --images "$C/coco-mini/val2017" --instances "$C/coco-mini/annotations/instances_val2017.json" \
        --images "$C/coco-tiny/train2017" --instances "$C/coco-tiny/annotations/instances_train2017.json" \
        --images "$C/coco-tiny/val2017" --instances "$C/coco-tiny/annotations/instances_val2017.json" \
        --captions "$C/coco-mini/annotations/captions_train2017.json" \
        --captions "$C/coco-mini/annotations/captions_val2017.json" \
        --captions "$C/captions_val2017.json" \
        --out "$WORK/coco/catalog" --force
    catalogs+=(coco)
fi
if [ ${#catalogs[@]} -eq 0 ]; then
    mms_stage "no real data at $DATA: synthetic catalog" \
        "$MMSAGE" synth --images "${MMS_SYNTH_IMAGES:-20000}" --seed 1 --out "$WORK/synth/catalog" --force
    catalogs+=(synth)
fi
for c in "${catalogs[@]}"; do
    mms_stage "$c: catalog summary" "$MMSAGE" info --catalog "$WORK/$c/catalog"
    pipeline "$c"
done
printf '\nmain: done; outputs under %s\n' "$WORK" >&2
for c in "${cuts[@]}"; do printf 'main: WARNING: training cut by the time limit (%s s): %s\n' "$TRAIN_SECONDS" "$c" >&2; done
for r in "${reports[@]}"; do printf 'main: report %s\n' "$r" >&2; done
# the live search page (docs/web.md) on the last data set indexed
last="${catalogs[${#catalogs[@]}-1]}"
printf 'main: browse %s with the slider (docs/web.md): start the query server, then the page, and open http://127.0.0.1:8080/\n' "$last" >&2
printf '  %s %q serve --index %q --listen 127.0.0.1:7700 &\n' "$(mms_mpirun_cmd "$((RANKS + 1))")" "$MMSAGE" "$WORK/$last/index" >&2
printf '  %q web --server 127.0.0.1:7700 --catalog %q --listen 127.0.0.1:8080\n' "$MMSAGE" "$WORK/$last/catalog" >&2
