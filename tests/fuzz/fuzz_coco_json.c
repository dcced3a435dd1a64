/* fuzz_coco_json.c: fuzz target for the COCO JSON parser and merger
 * (ingest/import_coco.h), driven from memory: the input is read as an
 * instances file and then as a captions file into one collection, and as a
 * captions file alone into another; whatever parses is finished with caption
 * tags and every image is checked. No JPEG is read and no file is written (the
 * image folder is never touched before the import step). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "import_coco.h"
#include "mms_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const mms_coco_t *c) {
    int64_t prev = -1;
    for (int64_t i = 0; i < mms_coco_count(c); i++) {
        mms_coco_image_t im;
        mms_coco_image(c, i, &im);
        if (im.id <= prev || im.ntags < 1 || !im.file_name[0] || !im.where) __builtin_trap();
        prev = im.id;
        for (int t = 0; t < im.ntags; t++)
            if (!im.tags[t][0] || strpbrk(im.tags[t], "|\t\n\r")) __builtin_trap();
        for (int o = 0; o < im.nobj; o++)
            if (im.obj_counts[o] < 1 || !im.obj_names[o][0]) __builtin_trap();
        for (int k = 0; k < im.ncaptions; k++)
            if (!im.captions[k][0]) __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mms_log_set_level(MMS_LOG_QUIET);
    const char *json = (const char *)data;
    for (int mode = 0; mode < 2; mode++) {
        mms_coco_t *c;
        if (mms_coco_create(&c) != MMS_OK) return 0;
        mms_status s =
            mode == 0 ? mms_coco_add_instances(c, json, size, "fuzz.json", "/nonexistent") : MMS_OK;
        if (s == MMS_OK) s = mms_coco_add_captions(c, json, size, "fuzz.json");
        if (s == MMS_OK && mms_coco_finish(c, 1) == MMS_OK) check(c);
        mms_coco_destroy(&c);
    }
    return 0;
}
