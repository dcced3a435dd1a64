#!/usr/bin/env bash
# labels: mpi e2e
# jobs/million.sh at 50,000 images (issue 13: "the same script at 50k images
# runs in the test suite"): every stage runs at 2 ranks with approximate
# search forced (--nprobe 16), per-rank time and peak memory are recorded for
# every stage, the disk table is written, the query benchmark reports recall
# against the exact path, the evaluation judges 200 test queries; a bad
# setting is refused naming the variable.
set -u
MMSAGE=${MMSAGE:?}; SRC=${MMS_SRC:?}
BQ="${MMS_BUILD:-}/bench/bench_query"
[ -x "$BQ" ] || { echo "SKIP: $BQ not built (set MMS_BUILD)"; exit 77; }
[ -x /usr/bin/time ] || { echo "SKIP: /usr/bin/time missing (scripts/setup.sh installs it)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

MMSAGE="$MMSAGE" MMS_BENCH_QUERY="$BQ" MMS_RANKS=2 MMS_MILLION_IMAGES=50000 MMS_MILLION_STEPS=100 \
    MMS_MILLION_QUERIES=200 MMS_QUERY_ARGS="--nprobe 16" timeout 1200 bash "$SRC/jobs/million.sh" "$tmp/w" \
    >"$tmp/log" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { tail -30 "$tmp/log"; fail "million.sh exited $rc"; }
t="$tmp/w/million.tsv"
for s in synth build partition train embed serve bench eval; do
    want=2
    case $s in synth | partition) want=1 ;; serve) want=3 ;; esac
    n=$(awk -F'\t' -v s="$s" '$1 == s && $2 ~ /^[0-9]+$/ && $3 > 0 && $4 > 0' "$t" | wc -l)
    [ "$n" -eq "$want" ] || fail "stage $s: $n rank rows with time and memory in million.tsv, expected $want"
done
n=$(awk -F'\t' 'NR > 1 && $3 > 0' "$tmp/w/disk.tsv" | wc -l)
[ "$n" -eq 5 ] || fail "disk.tsv: $n stage outputs with bytes, expected 5"
r=$(sed -n 's/.*recall@10 against the exact path: fused image+tags \([0-9.]*\).*/\1/p' "$tmp/w/bench.log")
awk -v r="${r:-x}" 'BEGIN { exit !(r + 0 > 0 && r + 0 <= 1) }' || fail "bench: no recall against the exact path ('$r')"
grep -q "nprobe 16 of" "$tmp/w/bench.log" || fail "bench did not search approximately"
grep -q "p50" "$tmp/w/bench.log" || fail "bench: no latency"
q=$(awk -F'\t' '$2 == "gnn-image" && $3 == "queries" { print $4 }' "$tmp/w/report/metrics.tsv" 2>/dev/null)
[ "$q" = 200 ] || fail "eval judged '$q' queries, expected 200"
grep -q "ready:" "$tmp/w/serve.log" || fail "the server never became ready"

MMSAGE="$MMSAGE" MMS_BENCH_QUERY="$BQ" MMS_MILLION_IMAGES=lots bash "$SRC/jobs/million.sh" "$tmp/bad" >"$tmp/bad.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep -q "MMS_MILLION_IMAGES" "$tmp/bad.log" || fail "a bad MMS_MILLION_IMAGES: exit $rc, $(tail -1 "$tmp/bad.log")"
echo "$fails failures"
[ "$fails" -eq 0 ]
