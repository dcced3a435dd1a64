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
#     in $MMS_BUILD/tests/web-artifacts (MMS_WEB_ARTIFACTS overrides)
#   - SIGTERM stops both servers with exit 0
# Skips (77) without $MMS_SHARED_DATA/coco-subset. Without chromium or
# tests/web/node_modules it skips too, except under CI=true, where
# scripts/setup.sh installs them and their absence is a failure.
set -u
MMSAGE=${MMSAGE:?}
SRC=${MMS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${MMS_BUILD:-$SRC/build}
ART=${MMS_WEB_ARTIFACTS:-$BUILD/tests/web-artifacts}
CHROMIUM=${MMS_CHROMIUM:-/usr/bin/chromium}

missing_tool() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL: $1 (scripts/setup.sh installs it, and CI runs setup first)"
        exit 1
    fi
    echo "web_browser: skipped: $1 (run scripts/setup.sh)"
    exit 77
}
D="${MMS_SHARED_DATA:-}/coco-subset"
for f in coco-mini/annotations/instances_train2017.json coco-tiny/annotations/instances_val2017.json \
    coco-mini/train2017 coco-tiny/val2017; do
    if [ ! -e "$D/$f" ]; then
        echo "web_browser: skipped: $D/$f is absent (set MMS_SHARED_DATA)"
        exit 77
    fi
done
[ -x "$CHROMIUM" ] || missing_tool "no chromium at $CHROMIUM"
command -v node >/dev/null 2>&1 || missing_tool "no node"
[ -d "$SRC/tests/web/node_modules/puppeteer-core" ] || missing_tool "no $SRC/tests/web/node_modules/puppeteer-core"

T=$(mktemp -d)
serve_pid= web_pid=
cleanup() {
    [ -n "$web_pid" ] && kill -9 "$web_pid" 2>/dev/null
    [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none)
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
step import "$MMSAGE" import coco "${SOURCES[@]}" --test-fraction 0.2 --seed 1 --out "$T/C"
step build "${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$T/C" --out "$T/G" --threshold -1 --normalize
step partition "$MMSAGE" partition --graph "$T/G" --parts 2
step train "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$T/G" --out "$T/M" --max-steps 200 --lr 1e-3 --tag-init mean
step embed "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$T/I"
echo "web_browser: index built in $(( $(date +%s) - t0 )) s"

# ---- the query server and the web server, on free loopback ports
: >"$T/serve.err"
"${MPIRUN[@]}" -np 3 "$MMSAGE" serve --index "$T/I" --listen 127.0.0.1:0 --pid-file "$T/serve.pid" \
    >"$T/serve.out" 2>"$T/serve.err" &
serve_pid=$!
for _ in $(seq 600); do
    grep -q "^ready: listening on" "$T/serve.err" && [ -s "$T/serve.pid" ] && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
done
sport=$(sed -n 's/^ready: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$T/serve.err")
[ -n "$sport" ] || { cat "$T/serve.err"; echo "FAIL: the query server did not start"; exit 1; }
: >"$T/web.err"
"$MMSAGE" web --server "127.0.0.1:$sport" --catalog "$T/C" --listen 127.0.0.1:0 --pid-file "$T/web.pid" \
    2>"$T/web.err" &
web_pid=$!
for _ in $(seq 300); do
    grep -q "^ready: http://" "$T/web.err" && break
    kill -0 "$web_pid" 2>/dev/null || break
    sleep 0.1
done
wport=$(sed -n 's|^ready: http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$T/web.err")
[ -n "$wport" ] || { cat "$T/web.err"; echo "FAIL: mmsage web did not start"; exit 1; }
echo "web_browser: query server on port $sport, page on http://127.0.0.1:$wport/"

# ---- the query: the first test image with tags; the keyword: the most
# frequent training tag it does not carry, among tags on at most 40% of the
# training images (so that the keyword's share can rise); the negative
# keyword: the most frequent training tag
read -r qid qtags < <(awk -F'\t' '$2 == "test" && $3 != "" { print $1, $3; exit }' "$T/C/images.tsv")
awk -F'\t' '$2 == "train" { n++; k = split($3, a, "|"); for (i = 1; i <= k; i++) c[a[i]]++ }
    END { for (t in c) printf "%d\t%d\t%s\n", c[t], n, t }' "$T/C/images.tsv" | sort -t$'\t' -k1,1nr >"$T/tagfreq"
negative=$(head -1 "$T/tagfreq" | cut -f3)
keyword=$(awk -F'\t' -v q="|$qtags|" '$1 <= 0.4 * $2 && index(q, "|" $3 "|") == 0 { print $3; exit }' "$T/tagfreq")
# a normalised path: chromium refuses to read an upload whose path has ".."
upload=$(realpath "$(ls "$D/coco-tiny/val2017"/*.jpg | head -1)")
echo "web_browser: query image $qid (tags $qtags), keyword '$keyword', negative '$negative', upload $(basename "$upload")"

rm -rf "$ART"
mkdir -p "$ART"
fails=0
(cd "$SRC/tests/web" && timeout 300 node browser_test.mjs --url "http://127.0.0.1:$wport/" --chromium "$CHROMIUM" \
    --artifacts "$ART" --id "$qid" --keyword "$keyword" --negative "$negative" --upload "$upload") | tee "$T/browser.out"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "FAIL: browser test"; fails=$((fails + 1)); }
grep "slider latency" "$T/browser.out" >"$ART/latency.txt"

# ---- both servers stop cleanly on SIGTERM
kill -TERM "$(cat "$T/web.pid")"
wait "$web_pid"
rc=$?
web_pid=
[ "$rc" -eq 0 ] || { echo "FAIL: mmsage web exited $rc after SIGTERM"; tail -5 "$T/web.err"; fails=$((fails + 1)); }
[ ! -e "$T/web.pid" ] || { echo "FAIL: web pid file left behind"; fails=$((fails + 1)); }
kill -TERM "$(cat "$T/serve.pid")"
wait "$serve_pid"
rc=$?
serve_pid=
[ "$rc" -eq 0 ] || { echo "FAIL: the query server exited $rc after SIGTERM"; fails=$((fails + 1)); }
if grep -q 'Sanitizer\|runtime error' "$T/web.err"; then echo "FAIL: sanitizer report"; cat "$T/web.err"; fails=$((fails + 1)); fi

echo "web_browser: screenshots in $ART; took $(( $(date +%s) - t0 )) s"
echo "web_browser: $fails failures"
[ "$fails" -eq 0 ]
