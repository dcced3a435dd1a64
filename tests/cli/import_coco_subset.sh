#!/usr/bin/env bash
# import_coco_subset.sh: imports the real COCO subset (coco-mini and coco-tiny,
# train and val: four --images/--instances pairs, plus the mini captions and
# the full val captions) and checks the merged catalog with `mmsage info`:
# 318 distinct annotated images (80 + 79 + 80 + 80 listed, image 435206 in both
# val files), 80 object categories, 1190 captions (the mini val captions are
# also in the full file and count once). A second import with --caption-tags
# must give bit-identical features. Skips (77) without $MMS_SHARED_DATA.
# labels: unit e2e
set -u

D="${MMS_SHARED_DATA:-}/coco-subset"
for f in coco-mini/annotations/instances_train2017.json coco-mini/annotations/instances_val2017.json \
    coco-tiny/annotations/instances_train2017.json coco-tiny/annotations/instances_val2017.json \
    coco-mini/annotations/captions_train2017.json coco-mini/annotations/captions_val2017.json \
    captions_val2017.json coco-mini/train2017 coco-tiny/val2017; do
    if [ ! -e "$D/$f" ]; then
        echo "import_coco_subset: skipped: $D/$f is absent (set MMS_SHARED_DATA)"
        exit 77
    fi
done
if [ -z "${MMSAGE:-}" ] || [ ! -x "$MMSAGE" ]; then
    echo "import_coco_subset: MMSAGE is not set to the mmsage binary" >&2
    exit 1
fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

SOURCES=()
for s in coco-mini/train2017 coco-mini/val2017 coco-tiny/train2017 coco-tiny/val2017; do
    set_=${s#*/}
    SOURCES+=(--images "$D/$s" --instances "$D/${s%/*}/annotations/instances_$set_.json")
done
CAPTIONS=(--captions "$D/captions_val2017.json"
    --captions "$D/coco-mini/annotations/captions_train2017.json"
    --captions "$D/coco-mini/annotations/captions_val2017.json")

t0=$(date +%s.%N)
if ! "$MMSAGE" import coco "${SOURCES[@]}" "${CAPTIONS[@]}" --test-fraction 0.2 --seed 1 \
    --out "$T/cat" 2> "$T/log"; then
    cat "$T/log" >&2
    echo "import_coco_subset: import failed" >&2
    exit 1
fi
t1=$(date +%s.%N)
grep "coco:" "$T/log"
echo "import took $(echo "$t1 - $t0" | bc) s"

"$MMSAGE" info --catalog "$T/cat" > "$T/info" 2>&1 || fail "info failed: $(cat "$T/info")"
cat "$T/info"
# the split is a fixed function of (seed 1, image id, 0.2)
grep -q "^images *318 (train 245, val 0, test 73)$" "$T/info" || fail "images: $(grep '^images' "$T/info")"
grep -q "^features *428-d float32$" "$T/info" || fail "features: $(grep '^features' "$T/info")"
grep -q "^tags *80 distinct, 1207 assignments" "$T/info" || fail "tags: $(grep '^tags' "$T/info")"
grep -q "^objects *80 categories$" "$T/info" || fail "objects: $(grep '^objects' "$T/info")"
grep -q "^captions *1190$" "$T/info" || fail "captions: $(grep '^captions' "$T/info")"
grep -q "^paths *yes$" "$T/info" || fail "no paths.tsv"
grep -q "318 images listed, 0 without annotations skipped, 318 to import" "$T/log" ||
    fail "merge summary: $(grep 'images listed' "$T/log")"
# image 435206 is in both val sources: once, with its counts not doubled
[ "$(grep -c $'^435206\t' "$T/cat/images.tsv")" -eq 1 ] || fail "435206 not exactly once"
grep -qx $'435206\tboat:1,cow:9,elephant:1,person:3,sheep:1' "$T/cat/objects.tsv" ||
    fail "objects of 435206: $(grep $'^435206\t' "$T/cat/objects.tsv")"
# every path is absolute and exists
while IFS=$'\t' read -r id p; do
    case "$p" in /*) ;; *) fail "relative path for $id: $p" ;; esac
    [ -f "$p" ] || fail "path of $id does not exist: $p"
done < "$T/cat/paths.tsv"

# --caption-tags: more tags, same images, same features (bit for bit)
if ! "$MMSAGE" import coco "${SOURCES[@]}" "${CAPTIONS[@]}" --caption-tags --out "$T/cat2" 2> "$T/log2"; then
    cat "$T/log2" >&2
    fail "import with --caption-tags failed"
else
    "$MMSAGE" info --catalog "$T/cat2" > "$T/info2" 2>&1 || fail "info on cat2"
    grep -q "^images *318 (train 245, val 0, test 73)$" "$T/info2" || fail "cat2 images: $(grep '^images' "$T/info2")"
    ntags=$(sed -n 's/^tags *\([0-9]*\) distinct.*/\1/p' "$T/info2")
    [ "${ntags:-0}" -gt 80 ] || fail "--caption-tags added no tags ($ntags distinct)"
    cmp -s "$T/cat/features.npy" "$T/cat2/features.npy" || fail "features differ between two imports"
fi

if [ "$failures" -ne 0 ]; then
    echo "import_coco_subset: $failures failures" >&2
    exit 1
fi
echo "import_coco_subset: passed"
