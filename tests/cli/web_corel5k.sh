#!/usr/bin/env bash
# labels: e2e
# web_corel5k.sh: `mmsage web` in a real browser on Corel5k, a catalog without
# image files (features and tags only): the picker and the results show tags
# and scores in place of thumbnails, no upload is offered, and the rest of
# tests/web/browser_test.mjs holds as on COCO (query by id, keyword
# completion, the slider from 1 to 0 changes the results and raises the
# keyword's share, "why this result", negative keywords, keyboard, phone).
# Prints the slider's latency p50 from the browser's resource timing.
# Imports Corel5k, trains 200 steps and embeds at 2 ranks (about a minute).
# Skips (77) without $MMS_SHARED_DATA/corel5k; chromium and node_modules as
# in web_browser.sh (skip, or fail under CI=true).
set -u
MMSAGE=${MMSAGE:?}
# shellcheck source=tests/cli/lib/expect.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib/expect.bash"
# shellcheck source=tests/cli/lib/web.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib/web.bash"
corel5k_or_skip
web_tools_or_skip web_corel5k

T=$(mktemp -d)
trap 'web_cleanup; rm -rf "$T"' EXIT
fails=0
t0=$(date +%s)
mkdir -p "$T/corel5k"
import_corel5k "$T/corel5k/catalog"
step build "${WEB_MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$T/corel5k/catalog" --out "$T/G" --threshold -1 --normalize
step partition "$MMSAGE" partition --graph "$T/G" --parts 2
step train "${WEB_MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$T/G" --out "$T/M" --max-steps 200 --lr 1e-3 --tag-init mean
step embed "${WEB_MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$T/I"
echo "web_corel5k: index built in $(( $(date +%s) - t0 )) s"

web_start "$T/I" "$T/corel5k/catalog"
web_pick_query "$T/corel5k/catalog"
echo "web_corel5k: query image $qid (tags $qtags), keyword '$keyword', negative '$negative'"
web_browser "$WEB_ART/corel5k" --images no
web_stop

echo "web_corel5k: screenshots in $WEB_ART/corel5k; took $(( $(date +%s) - t0 )) s"
echo "web_corel5k: $fails failures"
[ "$fails" -eq 0 ]
