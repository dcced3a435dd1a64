#!/usr/bin/env bash
# jobs/main.sh: the main job, end to end on one machine (or inside a SLURM
# allocation, where mpirun picks up the allocated slots). Stages:
#   data     import Corel5k and the COCO subset (../shared/data), or a synthetic
#            catalog when the real data is absent
#   info     validate and summarise each catalog
# Later stages (build, partition, train, embed, serve, query, eval) run as they
# land in mmsage; see README.md.
#   usage: jobs/main.sh [WORKDIR]      (default: runs/main)
# Environment: MMSAGE (binary; default build/app/mmsage), MMS_RANKS (default 2),
#   MMS_SHARED_DATA (default ../shared/data next to the repository),
#   MMS_SYNTH_IMAGES (default 20000).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MMSAGE="${MMSAGE:-$here/build/app/mmsage}"
DATA="${MMS_SHARED_DATA:-$here/../shared/data}"
WORK="${1:-$here/runs/main}"
[ -x "$MMSAGE" ] || { echo "main: $MMSAGE not found: run scripts/setup.sh first" >&2; exit 1; }
mkdir -p "$WORK"
stage=0
banner() { stage=$((stage + 1)); printf '\n==== [%d] %s ====\n' "$stage" "$*" >&2; }

catalogs=()
if [ -d "$DATA/corel5k" ]; then
  banner "import Corel5k (Mulan ARFF)"
  "$MMSAGE" import mulan --train "$DATA/corel5k/Corel5k-train-sparse.arff" \
    --test "$DATA/corel5k/Corel5k-test-sparse.arff" --xml "$DATA/corel5k/Corel5k.xml" \
    --out "$WORK/corel5k/catalog" --force
  catalogs+=(corel5k)
fi
if [ -d "$DATA/coco-subset" ]; then
  banner "import the COCO subset (descriptors from the JPEG pixels)"
  C="$DATA/coco-subset"
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
  banner "no real data at $DATA: synthetic catalog"
  "$MMSAGE" synth --images "${MMS_SYNTH_IMAGES:-20000}" --seed 1 --out "$WORK/synth/catalog" --force
  catalogs+=(synth)
fi
for c in "${catalogs[@]}"; do
  banner "catalog $c"
  "$MMSAGE" info --catalog "$WORK/$c/catalog"
done
printf '\nmain: done; outputs under %s\n' "$WORK" >&2
