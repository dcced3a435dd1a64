#!/usr/bin/env bash
# labels: e2e
# web_browser.sh: `mmsage web` in a real browser (docs/web.md, "Tests").
#   - imports the COCO subset (JPEG pixels, so uploads work), builds, partitions,
#     trains briefly (200 steps) and embeds at 2 ranks
#   - starts `mpirun -np 3 mmsage serve` and `mmsage web` on free loopback ports
#   - tests/web/browser_test.mjs drives Debian's chromium (puppeteer-core from
#     tests/web/node_modules, installed by scripts/setup.sh): picker, query by id,
#     keyword completion, slider 1 -> 0 (results change, the keyword's share
#     rises), images render, slider latency p50 from the browser's resource
#     timing, a negative keyword (chip + request field), a JPEG upload,
#     keyboard order and labels, a phone-sized screen; a screenshot per state
#     in $MMS_BUILD/tests/web-artifacts/coco (MMS_WEB_ARTIFACTS overrides
#     the first part)
#   - SIGTERM stops both servers with exit 0
# Skips (77) without $MMS_SHARED_DATA/coco-subset. Without chromium or
# tests/web/node_modules it skips too, except under CI=true, where
# scripts/setup.sh installs them and their absence is a failure.
set -u
MMSAGE=${MMSAGE:?}
# shellcheck source=tests/cli/lib/web.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib/web.bash"
D="${MMS_SHARED_DATA:-}/coco-subset"
for f in coco-mini/annotations/instances_train2017.json coco-tiny/annotations/instances_val2017.json \
    coco-mini/train2017 coco-tiny/val2017; do
    if [ ! -e "$D/$f" ]; then
        echo "web_browser: skipped: $D/$f is absent (set MMS_SHARED_DATA)"
        exit 77
    fi
done
web_tools_or_skip web_browser

T=$(mktemp -d)
trap 'web_cleanup; rm -rf "$T"' EXIT
fails=0
step() { # NAME CMD...
    local name=$1
    shift
    "$@" >"$T/log" 2>&1 || { tail -20 "$T/log"; echo "FAIL: $name"; exit 1; }
}

t0=$(date +%s)
SOURCES=()
for s in coco-mini/train2017 coco-mini/val2017 coco-tiny/train2017 coco-tiny/val2017; do
    SOURCES+=(--images "$D/$s" --instances "$D/${s%/*}/annotations/instances_${s#*/}.json")
done
mkdir -p "$T/coco"
step import "$MMSAGE" import coco "${SOURCES[@]}" --test-fraction 0.2 --seed 1 --out "$T/coco/catalog"
step build "${WEB_MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$T/coco/catalog" --out "$T/G" --threshold -1 --normalize
step partition "$MMSAGE" partition --graph "$T/G" --parts 2
step train "${WEB_MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$T/G" --out "$T/M" --max-steps 200 --lr 1e-3 --tag-init mean
step embed "${WEB_MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$T/I"
echo "web_browser: index built in $(( $(date +%s) - t0 )) s"

web_start "$T/I" "$T/coco/catalog"
web_pick_query "$T/coco/catalog"
# a normalised path: chromium refuses to read an upload whose path has ".."
upload=$(realpath "$(ls "$D/coco-tiny/val2017"/*.jpg | head -1)")
echo "web_browser: query image $qid (tags $qtags), keyword '$keyword', negative '$negative', upload $(basename "$upload")"
web_browser "$WEB_ART/coco" --images yes --upload "$upload"
web_stop

echo "web_browser: screenshots in $WEB_ART/coco; took $(( $(date +%s) - t0 )) s"
echo "web_browser: $fails failures"
[ "$fails" -eq 0 ]
