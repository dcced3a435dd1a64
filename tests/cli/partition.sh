#!/bin/bash
# labels: unit
# partition.sh: `mmsage partition` end to end on a small clustered graph: the
# output layout, the METIS/hash table, determinism for a fixed seed (same
# part.npy with --force), and the refusals (bad P, not a graph, existing
# output without --force, unknown method), each with a non-zero exit.
# The graph comes from tests/unit/test_partition --write-graph (330 nodes) until
# `mmsage build` can make one; without either the test is skipped (77).
set -u
MMSAGE=${MMSAGE:?set MMSAGE to the mmsage binary}
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

if ! "$MMSAGE" partition --help >/dev/null 2>&1; then
    echo "skip: this mmsage has no 'partition' command (not in app/main.c yet)"
    exit 77
fi
helper=${MMS_BUILD:-}/tests/test_partition
if [ ! -x "$helper" ]; then
    echo "skip: no graph writer ($helper missing) and no graph to partition"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mms-cli-partition.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
G=$tmp/graph
"$helper" --write-graph "$G" || { echo "FAIL: cannot write the test graph" >&2; exit 1; }

# --- METIS into 3 parts
if ! "$MMSAGE" partition --graph "$G" --parts 3 --seed 7 >"$tmp/out" 2>"$tmp/err"; then
    fail "partition --parts 3 failed: $(cat "$tmp/err")"
fi
cat "$tmp/out"
for f in manifest.msgpack part.npy part-0/owned.npy part-0/halo1.npy part-0/halo2.npy \
         part-2/owned.npy part-2/halo2.npy; do
    [ -f "$G/parts-3/$f" ] || fail "missing $G/parts-3/$f"
done
[ -e "$G/parts-3/part-3" ] && fail "a fourth part directory in parts-3"
ls -d "$G"/parts-3.tmp.* >/dev/null 2>&1 && fail "temporary directory left behind"
grep -q "metis (written)" "$tmp/out" || fail "table has no 'metis (written)' column"
grep -q "hash" "$tmp/out" || fail "table has no hash column"
cut_line=$(grep "^  edge cut  " "$tmp/out")
mcut=$(echo "$cut_line" | awk '{print $3}')
hcut=$(echo "$cut_line" | awk '{print $4}')
if [ -z "$mcut" ] || [ -z "$hcut" ] || [ "$mcut" -gt "$hcut" ]; then
    fail "METIS edge cut '$mcut' is not below the hash cut '$hcut'"
fi
grep -q "halo bytes" "$tmp/out" || fail "table has no halo bytes row"

# --- refuses an existing output, then the same seed gives the same part.npy
cp "$G/parts-3/part.npy" "$tmp/first.npy"
if "$MMSAGE" partition --graph "$G" --parts 3 --seed 7 >/dev/null 2>"$tmp/err"; then
    fail "existing parts-3 replaced without --force"
fi
grep -q -- "--force" "$tmp/err" || fail "no hint about --force: $(cat "$tmp/err")"
"$MMSAGE" partition --graph "$G" --parts 3 --seed 7 --force >/dev/null 2>"$tmp/err" ||
    fail "partition --force failed: $(cat "$tmp/err")"
cmp -s "$tmp/first.npy" "$G/parts-3/part.npy" || fail "same seed, different part.npy"

# --- P = 1 with the hash method
"$MMSAGE" partition --graph "$G" --parts 1 --method hash >"$tmp/out" 2>"$tmp/err" ||
    fail "partition --parts 1 --method hash failed: $(cat "$tmp/err")"
grep -q "hash (written)" "$tmp/out" || fail "P=1 hash: table lacks 'hash (written)'"
[ -f "$G/parts-1/part-0/owned.npy" ] || fail "P=1: no part-0/owned.npy"

# --- refusals
expect_fail() { # message-substring command...
    local want=$1
    shift
    if "$@" >/dev/null 2>"$tmp/err"; then
        fail "succeeded: $*"
    elif ! grep -q -- "$want" "$tmp/err"; then
        fail "'$*' did not say '$want': $(cat "$tmp/err")"
    fi
}
expect_fail "at least 1" "$MMSAGE" partition --graph "$G" --parts 0
expect_fail "image nodes" "$MMSAGE" partition --graph "$G" --parts 100000
expect_fail "not an mmsage graph directory" "$MMSAGE" partition --graph "$tmp" --parts 2
expect_fail "not a directory" "$MMSAGE" partition --graph "$tmp/nowhere" --parts 2
expect_fail "unknown partition method" "$MMSAGE" partition --graph "$G" --parts 2 --method spectral
expect_fail "imbalance" "$MMSAGE" partition --graph "$G" --parts 2 --imbalance 0.9
[ -e "$G/parts-100000" ] && fail "parts-100000 created for a refused P"

if [ "$fails" -ne 0 ]; then
    echo "partition.sh: $fails failure(s)" >&2
    exit 1
fi
echo "partition.sh: ok"
