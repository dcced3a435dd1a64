#!/usr/bin/env bash
# labels: mpi e2e
# serve_versions.sh: the nightly versions under a live server (issue 14,
# acceptance 1; docs/versions.md). A synthetic catalog is split into a base
# (indexed by the pipeline: v1) and a delta; v2 = add the delta, v3 = remove
# ten images (five of the delta, five of the base), bad = a copy of v3 with
# bytes of a segment flipped. `serve` (3 ranks) runs through the link
# cur/index while a client streams the delta images' queries (their own
# features and tags, connect both, visual 1) and thirty test images' again and
# again, and the link moves v1 -> v2 (SIGHUP) -> v3 (query --reload) -> bad
# (query --reload: refused, v3 keeps serving). Counted:
#   - every answer is ok, and equals the answer of v1, v2 or v3 to its line
#     (ids and scores): wholly from one version; at least 2000 answers
#   - v1 never returns an added image; once v2 is live every delta image is
#     its own first result; once v3 is live no removed image is returned
set -u
MMSAGE=${MMSAGE:?}
tmp=$(mktemp -d)
server_pid=''
loop_pid=''
cleanup() {
    [ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
command -v jq >/dev/null || { echo "SKIP: jq not found"; exit 77; }
MPIRUN=(timeout 600 mpirun --oversubscribe --bind-to none)
cd "$tmp" || exit 1

# ---- the versions
"$MMSAGE" synth --images 1200 --dim 24 --tags 40 --seed 5 --out full >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
awk -F'\t' '$2 == "train" {print $1}' full/images.tsv | awk 'NR % 10 == 0' >delta.ids
{ head -5 delta.ids; awk -F'\t' '$2 == "train" {print $1}' full/images.tsv | grep -vxFf delta.ids | head -5; } >rm.ids
{
    "$MMSAGE" import catalog --from full --ids delta.ids --exclude --out base &&
        "$MMSAGE" import catalog --from full --ids delta.ids --split train --out delta &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog base --out g --threshold -1 &&
        "$MMSAGE" partition --graph g --parts 2 &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph g --out m --max-steps 60 &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph g --model m --out v1 &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" add --index v1 --catalog delta --out v2 &&
        "$MMSAGE" remove --index v2 --ids rm.ids --out v3
} >log 2>&1 || { tail -20 log; echo "versions pipeline failed"; exit 1; }
cp -r v3 bad
seg=$(ls bad/shard-0/add-2.emb.npy 2>/dev/null || ls bad/shard-1/add-2.emb.npy)
python3 - "$seg" <<'EOF' || { echo "cannot corrupt the copy"; exit 1; }
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(200)
    b = f.read(16)
    f.seek(200)
    f.write(bytes(x ^ 0x5A for x in b))
EOF
V1=$(realpath v1) V2=$(realpath v2) V3=$(realpath v3) VB=$(realpath bad)
mkdir cur
ln -sfn "$V1" cur/index
relink() { ln -sfn "$1" cur/index.new && mv -T cur/index.new cur/index; }

# the queries: rows of full/features.npy with their tags, fused at visual 1
awk -F'\t' 'NR == FNR { d[$1] = 1; next }
    { t = $3; gsub(/\|/, ",", t) }
    ($1 in d) || ($2 == "test" && nt++ < 30) { print FNR - 1 "\t" t "\t1" }' delta.ids full/images.tsv >q.tsv
nq=$(wc -l <q.tsv)
[ "$nq" -ge 100 ] || { echo "only $nq queries"; exit 1; }
# line -> query id, for the checks
awk -F'\t' 'NR == FNR { id[NR - 1] = $1; next } { print FNR "\t" id[$1] }' full/images.tsv q.tsv >lines.tsv

# ---- the server, through the link
"${MPIRUN[@]}" -np 3 "$MMSAGE" serve --index cur/index --listen 127.0.0.1:0 --pid-file pid \
    >serve.out 2>serve.err &
server_pid=$!
for _ in $(seq 600); do
    grep -q "^ready: listening on" serve.err && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
port=$(sed -n 's/^ready: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' serve.err)
coord_pid=$(cat pid 2>/dev/null)
[ -n "$port" ] && [ -n "$coord_pid" ] || { cat serve.err; echo "server did not start"; exit 1; }
S=(--server "127.0.0.1:$port" --retry-for 5)
Q=(--queries q.tsv --image-features full/features.npy --connect both --k 10)
served() { "$MMSAGE" query "${S[@]}" --op info --json 2>/dev/null | jq -r '.info.version'; }
# wait_version V: info reports version V within 20 s
wait_version() {
    for _ in $(seq 200); do
        [ "$(served)" = "$1" ] && return 0
        sleep 0.1
    done
    fail "the server does not report version $1 (it reports '$(served)')"
}
canon() { jq -r '[.line, ([.results[].id] | join(",")), ([.results[].score | tostring] | join(","))] | @tsv' "$1" | sort -n; }

# ---- the answers of each version, one after the other
"$MMSAGE" query "${S[@]}" "${Q[@]}" >ref1.jsonl 2>qerr || fail "queries on v1: $(cat qerr)"
relink "$V2"
"$MMSAGE" query "${S[@]}" --reload >/dev/null 2>rerr || fail "reload to v2: $(cat rerr)"
wait_version 2
"$MMSAGE" query "${S[@]}" "${Q[@]}" >ref2.jsonl 2>qerr || fail "queries on v2: $(cat qerr)"
relink "$V3"
"$MMSAGE" query "${S[@]}" --reload >/dev/null 2>rerr || fail "reload to v3: $(cat rerr)"
wait_version 3
"$MMSAGE" query "${S[@]}" "${Q[@]}" >ref3.jsonl 2>qerr || fail "queries on v3: $(cat qerr)"
for v in 1 2 3; do canon ref$v.jsonl >ref$v; [ "$(wc -l <ref$v)" = "$nq" ] || fail "v$v answered $(wc -l <ref$v) of $nq"; done
# what each version must show
n=$(cut -f2 ref1 | tr ',' '\n' | grep -cxFf delta.ids)
[ "$n" = 0 ] || fail "v1 returned $n added images before they were added"
n=$(join -t $'\t' lines.tsv ref2 | awk -F'\t' 'NR == FNR { d[$1] = 1; next } ($2 in d) { split($3, r, ","); if (r[1] != $2) bad++ } END { print bad + 0 }' delta.ids -)
[ "$n" = 0 ] || fail "on v2, $n added images are not their own first result"
n=$(cut -f2 ref3 | tr ',' '\n' | grep -cxFf rm.ids)
[ "$n" = 0 ] || fail "v3 returned removed images $n times"
n=$(cut -f2 ref2 | tr ',' '\n' | grep -cxFf rm.ids)
[ "$n" -gt 0 ] || echo "note: v2 returned none of the images v3 removes (the removal check is weak)"

# ---- back to v1, then the loop while the versions change
relink "$V1"
kill -HUP "$coord_pid"
wait_version 1
: >loop.status
(
    i=0
    while [ ! -e stop ]; do
        date +%s.%N >"loop.$i.start"
        "$MMSAGE" query "${S[@]}" "${Q[@]}" --pipeline 16 >"loop.$i.jsonl" 2>"loop.$i.err"
        echo "$i $?" >>loop.status
        i=$((i + 1))
    done
) &
loop_pid=$!
sleep 2
relink "$V2"
kill -HUP "$coord_pid" # v2 by SIGHUP
wait_version 2
t2=$(date +%s.%N)
sleep 2
relink "$V3"
"$MMSAGE" query "${S[@]}" --reload >/dev/null 2>rerr || fail "reload to v3 in the loop: $(cat rerr)"
t3=$(date +%s.%N)
sleep 2
relink "$VB"
"$MMSAGE" query "${S[@]}" --reload --json >rb.json 2>/dev/null
[ "$(jq -r '.error.name' rb.json)" = reload_refused ] || fail "the corrupt version was not refused: $(cat rb.json)"
jq -r '.error.message' rb.json | grep -q "add-2.emb.npy" || fail "the refusal does not name the file: $(cat rb.json)"
[ "$(served)" = 3 ] || fail "after the refused version the server reports version '$(served)', not 3"
# on v3 until the loop has given at least 2000 answers (a loaded machine is slow)
for _ in $(seq 600); do
    [ $(($(wc -l <loop.status) * nq)) -ge 2100 ] && break
    sleep 0.5
done
touch stop
wait "$loop_pid"
loop_pid=''

# ---- the count
total=0 bad=0 mixed=0 seen1=0 seen2=0 seen3=0 late_removed=0 late_notfound=0
for f in loop.*.jsonl; do
    i=${f#loop.}
    i=${i%.jsonl}
    [ -s "$f" ] || continue
    total=$((total + $(wc -l <"$f")))
    bad=$((bad + $(jq -c 'select(.ok != true)' "$f" | wc -l)))
    canon "$f" >cur.canon
    # each line: which versions give exactly this answer
    read -r m1 m2 m3 none < <(join -t $'\t' cur.canon ref1 | join -t $'\t' - ref2 | join -t $'\t' - ref3 |
        awk -F'\t' '{ a = ($2 == $4 && $3 == $5); b = ($2 == $6 && $3 == $7); c = ($2 == $8 && $3 == $9)
                      m1 += a; m2 += b; m3 += c; if (!a && !b && !c) n++ } END { print m1 + 0, m2 + 0, m3 + 0, n + 0 }')
    mixed=$((mixed + none))
    [ "$m1" -gt 0 ] && seen1=1
    [ "$m2" -gt 0 ] && seen2=1
    [ "$m3" -gt 0 ] && seen3=1
    start=$(cat "loop.$i.start")
    if awk -v s="$start" -v t="$t3" 'BEGIN { exit !(s > t) }'; then
        n=$(cut -f2 cur.canon | tr ',' '\n' | grep -cxFf rm.ids)
        late_removed=$((late_removed + n))
    fi
    if awk -v s="$start" -v t="$t2" 'BEGIN { exit !(s > t) }'; then
        # a removed delta image (v3) is not its own first result any more: only
        # count the delta images that stay
        n=$(join -t $'\t' lines.tsv cur.canon | awk -F'\t' 'NR == FNR { d[$1] = 1; next } FILENAME == "rm.ids" { r[$1] = 1; next }
            ($2 in d) && !($2 in r) { split($3, x, ","); if (x[1] != $2) bad++ } END { print bad + 0 }' delta.ids rm.ids -)
        late_notfound=$((late_notfound + n))
    fi
done
failed_clients=$(awk '$2 != 0' loop.status | wc -l)
echo "loop: $total answers in $(wc -l <loop.status) passes; not ok $bad; from no single version $mixed; clients failed $failed_clients"
[ "$total" -ge 2000 ] || fail "only $total answers in the loop"
[ "$bad" = 0 ] || fail "$bad answers were not ok"
[ "$mixed" = 0 ] || fail "$mixed answers match no single version"
[ "$failed_clients" = 0 ] || fail "$failed_clients client passes failed: $(cat loop.*.err | head -3)"
[ "$seen1$seen2$seen3" = 111 ] || fail "the loop did not see every version (v1 $seen1, v2 $seen2, v3 $seen3)"
[ "$late_removed" = 0 ] || fail "$late_removed removed images returned after v3 was live"
[ "$late_notfound" = 0 ] || fail "$late_notfound added images not first for their own query after v2 was live"
kill -TERM "$server_pid" 2>/dev/null
wait "$server_pid" 2>/dev/null
server_pid=''
[ "$fails" -eq 0 ] && echo "serve_versions: add, remove and a refused version under a query loop: all checks passed"
exit $((fails > 0))
