#!/usr/bin/env bash
# import_coco_bad.sh: `mmsage import coco` on small fake COCO files. Every bad
# input (argument, JSON, field, id, JPEG, existing output) must exit with the
# expected non-zero code, print a message naming the file and field, and leave
# no output (nor temporary directory) behind; a good input imports.
# JPEGs come from the fuzz seed corpus in the source tree (tiny, made with libjpeg).
# labels: unit
set -u

MMS_SRC=${MMS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${MMSAGE:-}" ] || [ ! -x "$MMSAGE" ]; then
    echo "import_coco_bad: MMSAGE is not set to the mmsage binary" >&2
    exit 1
fi
JPG="$MMS_SRC/tests/fuzz/corpus/fuzz_jpeg/rgb420_32x24.jpg"
GREY="$MMS_SRC/tests/fuzz/corpus/fuzz_jpeg/grey_24x16.jpg"
if [ ! -f "$JPG" ] || [ ! -f "$GREY" ]; then
    echo "import_coco_bad: seed JPEGs missing under $MMS_SRC/tests/fuzz/corpus/fuzz_jpeg" >&2
    exit 1
fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export MMS_LOG=info
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

mkdir -p "$T/img" "$T/img2"
cp "$JPG" "$T/img/1.jpg"
cp "$GREY" "$T/img/2.jpg"
cp "$JPG" "$T/img2/1.jpg"
printf 'not a jpeg at all\n' > "$T/img/text.jpg"
head -c 300 "$JPG" > "$T/img/cut.jpg"
: > "$T/img/empty.jpg"

CATS='"categories": [{"id": 1, "name": "person"}, {"id": 10, "name": "traffic light"}]'
# instances JSON with the given images list and annotations list
inst() { printf '{"images": [%s],\n %s,\n "annotations": [%s]}\n' "$1" "$CATS" "$2"; }
inst '{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}, {"id": 3, "file_name": "3.jpg"}' \
    '{"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0},
     {"id": 6, "image_id": 1, "category_id": 1, "iscrowd": 0},
     {"id": 7, "image_id": 1, "category_id": 10, "iscrowd": 1},
     {"id": 8, "image_id": 2, "category_id": 10, "iscrowd": 0}' > "$T/good.json"
inst '{"id": 1, "file_name": "1.jpg"}' \
    '{"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0}' > "$T/again.json"
inst '{"id": 1, "file_name": "other.jpg"}' '{"image_id": 1, "category_id": 1}' > "$T/clash.json"
printf '{\n "images": [\n  {"id": 1,, "file_name": "1.jpg"}\n ]}\n' > "$T/malformed.json"
inst '{"id": 1, "file_name": "1.jpg"}' \
    '{"image_id": 1, "category_id": 1}, {"image_id": 1, "category_id": "10"}' > "$T/wrongtype.json"
inst '{"id": 1, "file_name": "1.jpg"}' '{"image_id": 42, "category_id": 1}' > "$T/unknown_image.json"
inst '{"id": 1, "file_name": "1.jpg"}' '{"image_id": 1, "category_id": 9}' > "$T/unknown_cat.json"
printf '{"images": [], %s}\n' "$CATS" > "$T/nokey.json"
for name in missing text cut empty; do
    inst "{\"id\": 4, \"file_name\": \"$name.jpg\"}" '{"image_id": 4, "category_id": 1}' > "$T/jpeg_$name.json"
done
printf '{"images": [{"id": 1}], "annotations": [{"image_id": 1, "caption": 12}]}\n' > "$T/badcaps.json"

# expect CODE MESSAGE ARGS...: run `mmsage import coco ARGS --out $T/out`
expect() {
    local code=$1 msg=$2
    shift 2
    "$MMSAGE" import coco "$@" --out "$T/out" > "$T/stdout" 2> "$T/stderr"
    local rc=$?
    if [ "$rc" -ne "$code" ]; then
        fail "exit $rc, want $code: import coco $*"
        sed 's/^/    /' "$T/stderr" >&2
    fi
    if ! grep -qF -- "$msg" "$T/stderr"; then
        fail "stderr lacks '$msg': import coco $*"
        sed 's/^/    /' "$T/stderr" >&2
    fi
    if ls -d "$T"/out* > /dev/null 2>&1; then
        fail "output or temporary left behind: $(ls -d "$T"/out*)"
        rm -rf "$T"/out*
    fi
}

G=(--images "$T/img" --instances "$T/good.json")
expect 1 "give them in pairs" --images "$T/img" --images "$T/img2" --instances "$T/good.json"
expect 1 "missing required option --instances" --images "$T/img"
expect 1 "--test-fraction must be in" "${G[@]}" --test-fraction 1.5
expect 2 "is not a directory" --images "$T/img/1.jpg" --instances "$T/good.json"
expect 2 "$T/nothere.json" --images "$T/img" --instances "$T/nothere.json"
expect 3 "malformed.json: malformed JSON at line 3, column" --images "$T/img" --instances "$T/malformed.json"
expect 3 "wrongtype.json: annotations[1].category_id is not an integer" \
    --images "$T/img" --instances "$T/wrongtype.json"
expect 3 "unknown_image.json: annotations[0].image_id 42 is not in this file's images" \
    --images "$T/img" --instances "$T/unknown_image.json"
expect 3 "unknown_cat.json: annotations[0].category_id 9 is not in this file's categories" \
    --images "$T/img" --instances "$T/unknown_cat.json"
expect 3 "nokey.json: missing key 'annotations'" --images "$T/img" --instances "$T/nokey.json"
expect 3 "badcaps.json: annotations[0].caption is not a string" "${G[@]}" --captions "$T/badcaps.json"
expect 7 "clash.json: images[0] (id 1) has file_name 'other.jpg'" \
    "${G[@]}" --images "$T/img2" --instances "$T/clash.json"
expect 2 "jpeg_missing.json: images[0] (id 4): JPEG not found: $T/img/missing.jpg" \
    --images "$T/img" --instances "$T/jpeg_missing.json"
expect 3 "text.jpg: not a valid JPEG: Not a JPEG file" --images "$T/img" --instances "$T/jpeg_text.json"
expect 3 "cut.jpg: not a valid JPEG: Premature end of JPEG file" \
    --images "$T/img" --instances "$T/jpeg_cut.json"
expect 3 "empty.jpg: empty file" --images "$T/img" --instances "$T/jpeg_empty.json"

# --help: usage on stdout, exit 0
if ! "$MMSAGE" import coco --help > "$T/help" 2>&1 || ! grep -q -- "--caption-tags" "$T/help"; then
    fail "import coco --help"
fi

# a good import: two sources sharing image 1 (merged once), image 3 unannotated
if ! "$MMSAGE" import coco "${G[@]}" --images "$T/img2" --instances "$T/again.json" \
    --test-fraction 0 --out "$T/cat" 2> "$T/stderr"; then
    fail "good import failed"
    sed 's/^/    /' "$T/stderr" >&2
else
    "$MMSAGE" info --catalog "$T/cat" > "$T/info" 2>&1 || fail "info on the imported catalog"
    grep -q "^images *2 (train 2, val 0, test 0)" "$T/info" || fail "info: $(grep '^images' "$T/info")"
    grep -q "^objects *2 categories" "$T/info" || fail "info: $(grep '^objects' "$T/info")"
    grep -qx $'1\tperson|traffic light' <(cut -f1,3 "$T/cat/images.tsv") || fail "tags of image 1"
    grep -qx $'1\tperson:2' "$T/cat/objects.tsv" || fail "objects of image 1: $(head -1 "$T/cat/objects.tsv")"
    grep -qx $'2\t'"$(cd "$T/img" && pwd -P)/2.jpg" "$T/cat/paths.tsv" || fail "paths.tsv: $(cat "$T/cat/paths.tsv")"
    grep -q "1 without annotations skipped" "$T/stderr" || fail "the skipped unannotated image is not reported"
    # existing output: refused without --force (and left intact), replaced with it
    "$MMSAGE" import coco "${G[@]}" --out "$T/cat" > /dev/null 2> "$T/stderr"
    rc=$?
    [ "$rc" -eq 6 ] || fail "existing output: exit $rc, want 6"
    grep -qF "output '$T/cat' exists (use --force" "$T/stderr" || fail "existing output message: $(cat "$T/stderr")"
    [ -f "$T/cat/features.npy" ] || fail "existing catalog damaged by a refused import"
    "$MMSAGE" import coco "${G[@]}" --out "$T/cat" --force 2> /dev/null || fail "--force import"
    if ls -d "$T"/cat.tmp* > /dev/null 2>&1; then fail "temporary directory left behind"; fi
fi

if [ "$failures" -ne 0 ]; then
    echo "import_coco_bad: $failures failures" >&2
    exit 1
fi
echo "import_coco_bad: all cases passed"
