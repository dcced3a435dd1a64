/* cmd_import_coco.c: `mmsage import coco` parses its options and runs the COCO
 * importer (ingest/import_coco.h): instances + captions JSON and JPEG
 * folders -> a catalog whose features are the JPEG descriptors. */
#include <stdint.h>

#include "commands.h"
#include "import_coco.h"
#include "mms_log.h"
#include "mms_opts.h"


mms_status mms_cmd_import_coco(int argc, char **argv) {
    mms_strlist_t images = {0}, instances = {0}, captions = {0};
    const char *out = NULL;
    int force = 0, caption_tags = 0;
    double test_fraction = 0.2, val_fraction = 0;
    int64_t seed = 1;
    mms_opt_t opts[] = {
        {"images", MMS_OPT_STRLIST, &images,
         "folder of JPEGs; the i-th --images goes with the i-th --instances", 1, 0, 0, 0},
        {"instances", MMS_OPT_STRLIST, &instances,
         "COCO instances JSON (images, categories, annotations)", 1, 0, 0, 0},
        {"captions", MMS_OPT_STRLIST, &captions,
         "COCO captions JSON; all files are pooled by image id", 0, 0, 0, 0},
        {"out", MMS_OPT_STR, &out, "catalog directory to write", 1, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &force, "replace --out if it exists", 0, 0, 0, 0},
        {"caption-tags", MMS_OPT_FLAG, &caption_tags,
         "also tag images with caption words used in at least 2 of their captions", 0, 0, 0, 0},
        {"test-fraction", MMS_OPT_DOUBLE, &test_fraction,
         "share of images put in the test split (the rest is train)", 0, 1, 0.0, 1.0},
        {"seed", MMS_OPT_INT64, &seed, "seed of the train/test split", 0, 1, 0.0, 9.0e15},
        {"val-fraction", MMS_OPT_DOUBLE, &val_fraction,
         "share of the training images set aside as the val split, chosen by a hash of the id "
         "with a fixed seed, not --seed (test images never)",
         0, 1, 0.0, 1.0},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    int help;
    MMS_CALL(mms_opts_parse("import coco",
                            "Import MS-COCO: images listed in instances files (with their JPEG "
                            "folders), tagged with their object categories, described by their "
                            "pixels.",
                            opts, nopts, argc, argv, &help));
    if (help) return MMS_OK;
    MMS_CHECK(images.n == instances.n, MMS_ERR_ARG,
              "import coco: %d --images folders but %d --instances files: give them in pairs, "
              "the i-th folder holding the JPEGs of the i-th instances file",
              images.n, instances.n);
    mms_opts_echo("import coco", opts, nopts);
    mms_coco_import_opts_t o = {
        .image_dirs = images.v,
        .instances = instances.v,
        .nsources = images.n,
        .captions = captions.v,
        .ncaptions = captions.n,
        .out_dir = out,
        .force = force,
        .caption_tags = caption_tags,
        .test_fraction = test_fraction,
        .seed = (uint64_t)seed,
        .val_fraction = val_fraction,
    };
    MMS_CALL(mms_coco_import(&o, NULL));
    return MMS_OK;
}
