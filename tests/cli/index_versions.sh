#!/usr/bin/env bash
# labels: mpi e2e
# index_versions.sh: mmsage add / remove and index versions (issue 14, items
# 1-3; docs/versions.md). On a synthetic catalog split into a base (indexed by
# the normal pipeline) and a delta (every tenth training image):
#   add       the delta's images are found by a query of their own features
#             and tags (rank 1); the parent is untouched and shares its files
#             by hard links; the same version at 1 and 2 ranks
#   remove    removed images never appear in results, not even for a query of
#             their own features; a compacted shard answers exactly as the
#             tombstoned one; a removed id can be added again
#   errors    an id already indexed, a catalog of another width, an unknown id
#             to remove: refused with the file and line, nothing written
set -u
MMSAGE=${MMSAGE:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MPI=(timeout 300 mpirun --oversubscribe --bind-to none -np 2)
MPI1=(timeout 300 mpirun --oversubscribe --bind-to none -np 1)
cd "$tmp" || exit 1

"$MMSAGE" synth --images 1200 --dim 24 --tags 40 --seed 5 --out full >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
awk -F'\t' '$2 == "train" {print $1}' full/images.tsv | awk 'NR % 10 == 0' >delta.ids
"$MMSAGE" import catalog --from full --ids delta.ids --exclude --out base >log 2>&1 &&
    "$MMSAGE" import catalog --from full --ids delta.ids --split train --out delta >>log 2>&1 &&
    "${MPI[@]}" "$MMSAGE" build --catalog base --out g --threshold -1 >>log 2>&1 &&
    "$MMSAGE" partition --graph g --parts 2 >>log 2>&1 &&
    "${MPI[@]}" "$MMSAGE" train --graph g --out m --max-steps 60 >>log 2>&1 &&
    "${MPI[@]}" "$MMSAGE" embed --graph g --model m --out v1 >>log 2>&1 ||
    { tail -5 log; echo "pipeline failed"; exit 1; }
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 cksum); }
sums v1 >v1.before

# ---- add
"${MPI[@]}" "$MMSAGE" add --index v1 --catalog delta --out v2 >add.out 2>add.err ||
    fail "add: $(grep -m1 error add.err)"
grep -q "version 2, $(wc -l <delta.ids) images added" add.out || fail "add summary: $(head -1 add.out)"
[ "$(sums v1)" = "$(cat v1.before)" ] || fail "add changed a file of its parent"
[ "$(stat -c %i v1/shard-0/emb.npy)" = "$(stat -c %i v2/shard-0/emb.npy)" ] ||
    fail "v2/shard-0/emb.npy is not a hard link to v1's"
ls v2/shard-*/add-2.emb.npy >/dev/null 2>&1 || fail "no segment files add-2.* in v2"
"$MMSAGE" info --index v2 --verify >info2 2>&1 || fail "info --verify v2: $(grep -m1 error info2)"
"$MMSAGE" info --index v1 --verify >info1 2>&1 || fail "info --verify v1 after the add: $(grep -m1 error info1)"
# the same version at one rank (every shard on rank 0): the same segment bytes
"${MPI1[@]}" "$MMSAGE" add --index v1 --catalog delta --out v2one >/dev/null 2>add1.err ||
    fail "add at 1 rank: $(grep -m1 error add1.err)"
for f in v2/shard-*/add-2.*.npy; do
    cmp -s "$f" "v2one/${f#v2/}" || fail "add at 1 and 2 ranks: $f differs"
done

# an added image, queried by its own features and tags, is its own first result
rank1() { # INDEX CATALOG OUT: fraction "hits/n" of queries whose first result is themselves
    "${MPI[@]}" "$MMSAGE" search --index "$1" --catalog "$2" --split train --k 5 --connect both \
        --visual 1 --out "$3" >/dev/null 2>"$3.err" || { echo "error"; return; }
    jq -rs '[.[] | select(.results[0].id == .query)] | length | tostring' "$3" | tr -d '\n'
    printf '/%s' "$(wc -l <"$3")"
}
r=$(rank1 v2 delta s2.jsonl)
[ "$r" = "$(wc -l <delta.ids)/$(wc -l <delta.ids)" ] || fail "added images found at rank 1 by their own features: $r"
# and they are results of ordinary queries
"${MPI[@]}" "$MMSAGE" search --index v2 --catalog full --split test --k 20 --out t2.jsonl >/dev/null 2>&1 ||
    fail "search v2"
n_added=$(jq -r '.results[].id' t2.jsonl | grep -cxFf delta.ids)
[ "$n_added" -gt 0 ] || fail "no added image among 20 results of any test query"

# ---- errors: nothing written
"${MPI[@]}" "$MMSAGE" add --index v2 --catalog delta --out bad1 >/dev/null 2>e1
[ $? -ne 0 ] && grep -q "is already an image of index" e1 && grep -q "images.tsv line 1" e1 ||
    fail "adding indexed ids again: $(grep -m1 error e1)"
"$MMSAGE" synth --images 50 --dim 20 --tags 10 --seed 9 --out other >/dev/null 2>&1
"${MPI[@]}" "$MMSAGE" add --index v2 --catalog other --out bad2 >/dev/null 2>e2
[ $? -ne 0 ] && grep -q "feature width 20, index .* expects 24" e2 || fail "a catalog of another width: $(grep -m1 error e2)"
printf '%s\nno-such-image\n' "$(head -1 delta.ids)" >bad.ids
"$MMSAGE" remove --index v2 --ids bad.ids --out bad3 >/dev/null 2>e3
[ $? -ne 0 ] && grep -q "bad.ids:2: 'no-such-image' is not an image of index" e3 ||
    fail "removing an unknown id: $(grep -m1 error e3)"
ls -d bad1 bad2 bad3 ./*.tmp.* 2>/dev/null && fail "a refused add or remove left output behind"

# ---- remove
{ head -5 delta.ids; awk -F'\t' '$2 == "train" {print $1}' base/images.tsv | head -5; } >rm.ids
"$MMSAGE" remove --index v2 --ids rm.ids --out v3 >rm.out 2>rm.err || fail "remove: $(grep -m1 error rm.err)"
grep -q "version 3, 10 images removed now" rm.out || fail "remove summary: $(head -1 rm.out)"
"${MPI[@]}" "$MMSAGE" search --index v3 --catalog full --split test --k 50 --out t3.jsonl >/dev/null 2>&1 ||
    fail "search v3"
hits=$(jq -r '.results[].id' t3.jsonl | grep -cxFf rm.ids)
[ "$hits" = 0 ] || fail "$hits results of v3 are removed images"
hits=$(jq -r '.results[].id' t2.jsonl | grep -cxFf rm.ids)
[ "$hits" -gt 0 ] || echo "note: no removed image was among v2's results (the check above is weak)"
# a removed added image, queried by its own features: never returned, never a neighbour
"$MMSAGE" import catalog --from delta --ids <(head -5 delta.ids) --out gone >/dev/null 2>&1
"${MPI[@]}" "$MMSAGE" search --index v3 --catalog gone --split train --k 50 --connect both --out g3.jsonl \
    >/dev/null 2>&1 || fail "search v3 for removed images"
hits=$(jq -r '.results[].id' g3.jsonl | grep -cxFf rm.ids)
[ "$hits" = 0 ] || fail "removed images returned for their own features: $hits"
# eval of a version: refused without a catalog of its images, then judged by one
"${MPI[@]}" "$MMSAGE" eval --catalog base --index v3 --report rep3 --max-queries 20 --plots 0 >/dev/null 2>ev1
[ $? -ne 0 ] && grep -q "give --judge-catalog J, made with mmsage import catalog --from-index" ev1 ||
    fail "eval of a version without --judge-catalog: $(grep -m1 error ev1)"
"$MMSAGE" import catalog --from-index v3 --out j3 >/dev/null 2>j3.err || fail "import catalog --from-index: $(cat j3.err)"
"$MMSAGE" info --catalog j3 | grep -q "^images *$((1200 - 10)) (train $(($(grep -c $'\ttrain\t' full/images.tsv) - 10))," ||
    fail "the catalog of v3's live images: $("$MMSAGE" info --catalog j3 | grep '^images')"
"${MPI[@]}" "$MMSAGE" eval --catalog base --index v3 --judge-catalog j3 --report rep3 --max-queries 20 \
    --plots 0 >/dev/null 2>ev2 || fail "eval of v3 with --judge-catalog: $(grep -m1 error ev2)"
grep -qP '\tgnn-image\tqueries\t20$' rep3/metrics.tsv || fail "eval of v3: no 20 gnn-image queries in metrics.tsv"
# compaction: the rewritten shards answer exactly as the tombstoned ones
awk 'NR > 5 && NR <= 10' delta.ids >rm2.ids
"$MMSAGE" remove --index v3 --ids rm2.ids --out v4a --compact-at 2 >/dev/null 2>&1 || fail "remove, no compaction"
"$MMSAGE" remove --index v3 --ids rm2.ids --out v4b --compact-at 0.001 >c.out 2>&1 || fail "remove with compaction"
grep -q "2 shard(s) compacted" c.out || fail "compaction: $(grep bytes c.out)"
ls v4b/shard-*/add-* >/dev/null 2>&1 && fail "a compacted shard kept its segment files"
"$MMSAGE" info --index v4b --verify >/dev/null 2>&1 || fail "info --verify of the compacted version"
for v in v4a v4b; do
    "${MPI[@]}" "$MMSAGE" search --index $v --catalog full --split test --k 20 --out t$v.jsonl >/dev/null 2>&1 ||
        fail "search $v"
done
cmp -s <(jq -c '[.results[] | [.id, .score]]' tv4a.jsonl) <(jq -c '[.results[] | [.id, .score]]' tv4b.jsonl) ||
    fail "compacted and tombstoned versions answer differently"
# a removed id can come back (a new node, its newest entry)
"$MMSAGE" import catalog --from delta --ids <(head -1 delta.ids) --out back >/dev/null 2>&1
"${MPI[@]}" "$MMSAGE" add --index v4b --catalog back --out v5 >/dev/null 2>a5.err || fail "add a removed id again: $(grep -m1 error a5.err)"
r=$(rank1 v5 back s5.jsonl)
[ "$r" = "1/1" ] || fail "a re-added image found at rank 1: $r"

[ "$fails" -eq 0 ] && echo "index versions: add, remove, compaction, errors: all checks passed"
exit $((fails > 0))
