#!/usr/bin/env bash
# jobs/main.sh: the main job, end to end on one machine or inside a SLURM
# allocation (mpirun then takes the allocated slots). For every data set:
#   import   Corel5k (Mulan ARFF) and the COCO subset (JPEG pixels) from
#            ../shared/data, or a synthetic catalog when the real data is absent
#   build    the multi-modal graph (kNN image edges + tag edges), MPI
#   partition METIS into MMS_RANKS parts with halos
#   train    GraphSAGE on MMS_RANKS ranks, bounded by MMS_TRAIN_SECONDS
#   embed    the sharded index
#   serve    a query server on loopback, with example queries (image,
#            image + keyword at three slider positions, tag prediction)   [when available]
#   eval     the evaluation report                                         [when available]
#   usage: jobs/main.sh [WORKDIR]      (default: runs/main)
# Environment: MMSAGE (binary), MMS_RANKS (default: SLURM_NTASKS or 2),
#   MMS_SHARED_DATA (default ../shared/data), MMS_SYNTH_IMAGES (20000),
#   MMS_TRAIN_SECONDS (default 120 per data set), MMS_EPOCHS (default 50, the
#   paper's; the time bound usually ends training first), MMS_LR (1e-3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=jobs/common.sh
. "$here/jobs/common.sh"
MMS_SRC="${MMS_SRC:-$here}"
mms_find_binary
DATA="${MMS_SHARED_DATA:-$here/../shared/data}"
WORK="${1:-$here/runs/main}"
RANKS="${MMS_RANKS:-${SLURM_NTASKS:-2}}"
TRAIN_SECONDS="${MMS_TRAIN_SECONDS:-120}"
mkdir -p "$WORK"

pipeline() { # NAME: catalog in $WORK/NAME/catalog -> graph, partition, model, index
    local name=$1 d="$WORK/$1"
    mms_stage "$name: build the graph ($RANKS ranks)" \
        mms_mpirun "$RANKS" "$MMSAGE" build --catalog "$d/catalog" --out "$d/graph" --threshold -1 --force
    mms_stage "$name: partition into $RANKS parts" \
        "$MMSAGE" partition --graph "$d/graph" --parts "$RANKS" --force
    mms_stage "$name: train ($RANKS ranks, up to ${TRAIN_SECONDS}s)" \
        mms_mpirun "$RANKS" "$MMSAGE" train --graph "$d/graph" --out "$d/model" --force \
        --epochs "${MMS_EPOCHS:-50}" --time-limit "$TRAIN_SECONDS" --lr "${MMS_LR:-1e-3}" --log-every 200
    mms_stage "$name: embed ($RANKS ranks)" \
        mms_mpirun "$RANKS" "$MMSAGE" embed --graph "$d/graph" --model "$d/model" --out "$d/index" --force
}

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
