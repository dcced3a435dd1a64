/* test_import_coco.c: the COCO importer (ingest/import_coco.h).
 * From memory: parsing, merging of sources by image id (nothing doubled, file
 * names checked), crowd handling, captions pooled and de-duplicated, caption
 * tags, and an error naming the file and field for every kind of bad input.
 * On disk: a full import of generated JPEGs into a catalog, read back with the
 * shared reader; splits; and failures (missing/corrupt JPEG, existing output)
 * that must leave nothing behind. With $MMS_SHARED_DATA, the four COCO subset
 * sources must merge to exactly 318 images. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "mms_descriptor.h"
#include "import_coco.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_test.h"

/* Two instances files sharing image 2 (same annotation 104 in both) and a
 * category ("dog") under different ids; image 3 has no annotations. */
static const char *k_inst_a =
    "{\"images\": [{\"id\": 1, \"file_name\": \"a1.jpg\"},\n"
    "            {\"id\": 2, \"file_name\": \"a2.jpg\"},\n"
    "            {\"id\": 3, \"file_name\": \"a3.jpg\"}],\n"
    " \"categories\": [{\"id\": 1, \"name\": \"person\"},\n"
    "                {\"id\": 10, \"name\": \"traffic light\"},\n"
    "                {\"id\": 18, \"name\": \"dog\"}],\n"
    " \"annotations\": [\n"
    "  {\"id\": 100, \"image_id\": 1, \"category_id\": 1, \"iscrowd\": 0, \"bbox\": [1, 2]},\n"
    "  {\"id\": 101, \"image_id\": 1, \"category_id\": 1, \"iscrowd\": 0},\n"
    "  {\"id\": 102, \"image_id\": 1, \"category_id\": 10, \"iscrowd\": 0},\n"
    "  {\"id\": 103, \"image_id\": 1, \"category_id\": 1, \"iscrowd\": 1},\n"
    "  {\"id\": 104, \"image_id\": 2, \"category_id\": 18, \"iscrowd\": 1}]}\n";

static const char *k_inst_b =
    "{\"images\": [{\"id\": 2, \"file_name\": \"a2.jpg\"},\n"
    "            {\"id\": 7, \"file_name\": \"b7.jpg\"}],\n"
    " \"categories\": [{\"id\": 5, \"name\": \"dog\"}, {\"id\": 6, \"name\": \"cat\"}],\n"
    " \"annotations\": [\n"
    "  {\"id\": 104, \"image_id\": 2, \"category_id\": 5, \"iscrowd\": 1},\n"
    "  {\"id\": 200, \"image_id\": 2, \"category_id\": 6, \"iscrowd\": 0},\n"
    "  {\"id\": 201, \"image_id\": 7, \"category_id\": 6}]}\n";

static const char *k_caps_1 =
    "{\"images\": [{\"id\": 1}, {\"id\": 2}],\n"
    " \"annotations\": [\n"
    "  {\"id\": 1, \"image_id\": 1, \"caption\": \"A man and a dog near a traffic light.\"},\n"
    "  {\"id\": 2, \"image_id\": 1, \"caption\": \"Two men standing by the red traffic light \"},\n"
    "  {\"id\": 3, \"image_id\": 1, \"caption\": \"A MAN waits at the light.\\n\"},\n"
    "  {\"id\": 4, \"image_id\": 2, \"caption\": \"A dog sleeping next to a caf\\u00e9\"},\n"
    "  {\"id\": 5, \"image_id\": 2, \"caption\": \"the caf\\u00e9 dog in 3d\"}]}\n";

/* No images list; repeats caption 1, adds one for image 7 and one for an image
 * that is not in the catalog. */
static const char *k_caps_2 =
    "{\"annotations\": [\n"
    "  {\"id\": 1, \"image_id\": 1, \"caption\": \"A man and a dog near a traffic light.\"},\n"
    "  {\"id\": 9, \"image_id\": 7, \"caption\": \"A cat.\"},\n"
    "  {\"id\": 10, \"image_id\": 99, \"caption\": \"Nobody sees this.\"}]}\n";

static int has_tag(const mms_coco_image_t *im, const char *t) {
    for (int i = 0; i < im->ntags; i++)
        if (!strcmp(im->tags[i], t)) return 1;
    return 0;
}

static int obj_count(const mms_coco_image_t *im, const char *name) {
    for (int i = 0; i < im->nobj; i++)
        if (!strcmp(im->obj_names[i], name)) return im->obj_counts[i];
    return 0;
}

static void test_parse_merge(void) {
    mms_coco_t *c;
    T_OK(mms_coco_create(&c));
    T_OK(mms_coco_add_instances(c, k_inst_a, strlen(k_inst_a), "a.json", "dirA"));
    T_OK(mms_coco_add_instances(c, k_inst_b, strlen(k_inst_b), "b.json", "dirB"));
    T_OK(mms_coco_finish(c, 0));
    T_EQ_INT(mms_coco_count(c), 3);
    mms_coco_counts_t k;
    mms_coco_get_counts(c, &k);
    T_EQ_INT(k.listed, 4);
    T_EQ_INT(k.unannotated, 1);
    T_EQ_INT(k.annotations, 7);
    T_EQ_INT(k.dup_annotations, 1);
    T_EQ_INT(k.categories, 4);
    mms_coco_image_t im;
    mms_coco_image(c, 0, &im);
    T_EQ_INT(im.id, 1);
    T_STREQ(im.file_name, "a1.jpg");
    T_STREQ(im.where, "a.json: images[0]");
    T_EQ_INT(im.ntags, 2);
    T_STREQ(im.tags[0], "person");
    T_STREQ(im.tags[1], "traffic light"); /* a multi-word category is one tag */
    T_EQ_INT(im.nobj, 2);
    T_EQ_INT(obj_count(&im, "person"), 2); /* the crowd annotation is not an instance */
    T_EQ_INT(obj_count(&im, "traffic light"), 1);
    mms_coco_image(c, 1, &im);
    T_EQ_INT(im.id, 2);
    T_EQ_INT(im.nsources, 2);
    T_CHECK(has_tag(&im, "dog") && has_tag(&im, "cat"));
    T_EQ_INT(im.ntags, 2);
    T_EQ_INT(im.nobj, 1); /* dog only as a crowd: a tag, not an object */
    T_EQ_INT(obj_count(&im, "cat"), 1);
    const char *dirs[4];
    T_EQ_INT(mms_coco_image_dirs(c, 1, dirs, 4), 2);
    T_STREQ(dirs[0], "dirA");
    T_STREQ(dirs[1], "dirB");
    mms_coco_image(c, 2, &im);
    T_EQ_INT(im.id, 7);
    T_STREQ(im.where, "b.json: images[1]");
    mms_coco_destroy(&c);
    T_CHECK(c == NULL);
    mms_coco_destroy(&c); /* no-op */

    /* the same source twice: one image each, counts not doubled */
    T_OK(mms_coco_create(&c));
    T_OK(mms_coco_add_instances(c, k_inst_a, strlen(k_inst_a), "a.json", "d1"));
    T_OK(mms_coco_add_instances(c, k_inst_a, strlen(k_inst_a), "a-copy.json", "d2"));
    T_OK(mms_coco_finish(c, 0));
    T_EQ_INT(mms_coco_count(c), 2);
    mms_coco_get_counts(c, &k);
    T_EQ_INT(k.annotations, 5);
    T_EQ_INT(k.dup_annotations, 5);
    mms_coco_image(c, 0, &im);
    T_EQ_INT(obj_count(&im, "person"), 2);
    T_EQ_INT(im.nsources, 2);
    mms_coco_destroy(&c);

    /* the same id under two file names */
    const char *clash = "{\"images\": [{\"id\": 2, \"file_name\": \"other.jpg\"}],"
                        " \"categories\": [], \"annotations\": []}";
    T_OK(mms_coco_create(&c));
    T_OK(mms_coco_add_instances(c, k_inst_a, strlen(k_inst_a), "a.json", "d1"));
    T_FAILS(mms_coco_add_instances(c, clash, strlen(clash), "c.json", "d2"), MMS_ERR_MISMATCH);
    T_MSG_HAS(
        "c.json: images[0] (id 2) has file_name 'other.jpg', but a.json: images[1] gives 'a2.jpg'");
    mms_coco_destroy(&c);
}

static void test_captions(void) {
    for (int order = 0; order < 2; order++) {
        mms_coco_t *c;
        T_OK(mms_coco_create(&c));
        if (order == 1) { /* captions before instances: same result */
            T_OK(mms_coco_add_captions(c, k_caps_1, strlen(k_caps_1), "caps1.json"));
            T_OK(mms_coco_add_captions(c, k_caps_2, strlen(k_caps_2), "caps2.json"));
        }
        T_OK(mms_coco_add_instances(c, k_inst_a, strlen(k_inst_a), "a.json", "dirA"));
        T_OK(mms_coco_add_instances(c, k_inst_b, strlen(k_inst_b), "b.json", "dirB"));
        if (order == 0) {
            T_OK(mms_coco_add_captions(c, k_caps_1, strlen(k_caps_1), "caps1.json"));
            T_OK(mms_coco_add_captions(c, k_caps_2, strlen(k_caps_2), "caps2.json"));
        }
        T_OK(mms_coco_finish(c, 1));
        mms_coco_counts_t k;
        mms_coco_get_counts(c, &k);
        T_EQ_INT(k.captions, 6);
        T_EQ_INT(k.dup_captions, 1);
        mms_coco_image_t im;
        mms_coco_image(c, 0, &im);
        T_EQ_INT(im.ncaptions, 3);
        T_STREQ(im.captions[0], "A man and a dog near a traffic light.");
        T_STREQ(im.captions[1], "Two men standing by the red traffic light"); /* trimmed */
        T_STREQ(im.captions[2], "A MAN waits at the light.");
        /* category tags first, then words in >= 2 captions, lower-cased */
        T_EQ_INT(im.ntags, 5);
        if (im.ntags == 5) {
            T_STREQ(im.tags[0], "person");
            T_STREQ(im.tags[1], "traffic light");
            T_STREQ(im.tags[2], "light");
            T_STREQ(im.tags[3], "man");
            T_STREQ(im.tags[4], "traffic");
        }
        T_CHECK(!has_tag(&im, "the") && !has_tag(&im, "a") && !has_tag(&im, "dog"));
        mms_coco_image(c, 1, &im);
        T_EQ_INT(im.ncaptions, 2);
        /* "dog" already a category tag; "café" and "3d" are no words */
        T_EQ_INT(im.ntags, 2);
        T_CHECK(!has_tag(&im, "caf") && !has_tag(&im, "d"));
        mms_coco_image(c, 2, &im);
        T_EQ_INT(im.ncaptions, 1);
        T_EQ_INT(im.ntags, 1); /* one caption: no caption tags */
        mms_coco_destroy(&c);
    }
    /* without --caption-tags, captions are kept but add no tags */
    mms_coco_t *c;
    T_OK(mms_coco_create(&c));
    T_OK(mms_coco_add_instances(c, k_inst_a, strlen(k_inst_a), "a.json", "dirA"));
    T_OK(mms_coco_add_captions(c, k_caps_1, strlen(k_caps_1), "caps1.json"));
    T_OK(mms_coco_finish(c, 0));
    mms_coco_image_t im;
    mms_coco_image(c, 0, &im);
    T_EQ_INT(im.ntags, 2);
    T_EQ_INT(im.ncaptions, 3);
    mms_coco_destroy(&c);
}

/* Instances JSON that must fail with code and a message containing msg. */
static void bad_instances(const char *json, mms_status code, const char *msg) {
    mms_coco_t *c;
    T_OK(mms_coco_create(&c));
    mms_status s = mms_coco_add_instances(c, json, strlen(json), "bad.json", "d");
    T_EQ_INT(s, code);
    T_MSG_HAS(msg);
    mms_coco_destroy(&c);
}

static void bad_captions(const char *json, const char *msg) {
    mms_coco_t *c;
    T_OK(mms_coco_create(&c));
    T_FAILS(mms_coco_add_captions(c, json, strlen(json), "caps.json"), MMS_ERR_FORMAT);
    T_MSG_HAS(msg);
    mms_coco_destroy(&c);
}

#define CATS "\"categories\": [{\"id\": 1, \"name\": \"person\"}]"
#define IMGS "\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}]"

static void test_errors(void) {
    const int F = MMS_ERR_FORMAT;
    bad_instances("{\"images\": [ {\"id\": 1,, } ]}", F,
                  "bad.json: malformed JSON at line 1, column");
    bad_instances("{\n\"images\": [\n  {\"id\": 1 \"file_name\": \"x\"}\n]}", F,
                  "bad.json: malformed JSON at line 3");
    bad_instances("", F, "bad.json: malformed JSON");
    bad_instances("[1, 2]", F, "bad.json: the top level is not a JSON object");
    bad_instances("{" IMGS ", " CATS "}", F, "bad.json: missing key 'annotations'");
    bad_instances("{\"images\": {}, " CATS ", \"annotations\": []}", F,
                  "bad.json: 'images' is not an array");
    bad_instances("{" IMGS ", " CATS ", \"annotations\": [{\"image_id\": 1, \"category_id\": 1},"
                  " {\"image_id\": 1, \"category_id\": \"1\"}]}",
                  F, "bad.json: annotations[1].category_id is not an integer");
    bad_instances("{" IMGS ", " CATS ", \"annotations\": [{\"category_id\": 1}]}", F,
                  "bad.json: annotations[0].image_id is missing");
    bad_instances("{" IMGS ", " CATS ", \"annotations\": [{\"image_id\": 42, \"category_id\": 1}]}",
                  F, "bad.json: annotations[0].image_id 42 is not in this file's images");
    bad_instances("{" IMGS ", " CATS ", \"annotations\": [{\"image_id\": 1, \"category_id\": 9}]}",
                  F, "bad.json: annotations[0].category_id 9 is not in this file's categories");
    bad_instances("{" IMGS ", " CATS
                  ", \"annotations\": [{\"image_id\": 1, \"category_id\": 1, \"iscrowd\": 2}]}",
                  F, "bad.json: annotations[0].iscrowd is 2, not 0 or 1");
    bad_instances("{" IMGS ", " CATS
                  ", \"annotations\": [{\"image_id\": 1, \"category_id\": 1, \"iscrowd\": false}]}",
                  F, "bad.json: annotations[0].iscrowd is not an integer");
    bad_instances("{" IMGS ", " CATS ", \"annotations\": [7]}", F,
                  "bad.json: annotations[0] is not an object");
    bad_instances("{\"images\": [{\"id\": 1, \"file_name\": 5}], " CATS ", \"annotations\": []}", F,
                  "bad.json: images[0].file_name is not a string");
    bad_instances("{\"images\": [{\"id\": 1.5, \"file_name\": \"x\"}], " CATS
                  ", \"annotations\": []}",
                  F, "bad.json: images[0].id is not an integer");
    bad_instances("{\"images\": [{\"file_name\": \"x\"}], " CATS ", \"annotations\": []}", F,
                  "bad.json: images[0].id is missing");
    bad_instances("{\"images\": [{\"id\": 1, \"file_name\": \"\"}], " CATS ", \"annotations\": []}",
                  F, "bad.json: images[0].file_name is empty");
    bad_instances("{\"images\": [{\"id\": 1, \"file_name\": \"/etc/x.jpg\"}], " CATS
                  ", \"annotations\": []}",
                  F, "bad.json: images[0].file_name '/etc/x.jpg' is an absolute path");
    bad_instances("{" IMGS
                  ", \"categories\": [{\"id\": 1, \"name\": \"a|b\"}], \"annotations\": []}",
                  F, "bad.json: categories[0].name 'a|b' contains '|'");
    bad_instances("{" IMGS ", \"categories\": [{\"id\": 1, \"name\": \"a\"}, {\"id\": 1, \"name\": "
                  "\"b\"}], \"annotations\": []}",
                  F, "bad.json: categories[1].id 1 is used twice, for 'a' and 'b'");
    bad_instances("{" IMGS ", \"categories\": [{\"id\": 1}], \"annotations\": []}", F,
                  "bad.json: categories[0].name is missing");
    bad_captions("{\"annotations\": [{\"image_id\": 1, \"caption\": 3}]}",
                 "caps.json: annotations[0].caption is not a string");
    bad_captions(
        "{\"images\": [{\"id\": 1}], \"annotations\": [{\"image_id\": 2, \"caption\": \"x\"}]}",
        "caps.json: annotations[0].image_id 2 is not in this file's images");
    bad_captions("{\"images\": []}", "caps.json: missing key 'annotations'");
    bad_captions("{\"annotations\": [{\"image_id\": 1, \"caption\": \"x\"}",
                 "caps.json: malformed JSON");
}

/* ---------------------------------------------------------------- on disk */

static void write_jpeg(const char *path, int w, int h, int r, int g, int b) {
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = px + 3 * (y * w + x);
            int stripe = (x / 5) % 2; /* some texture */
            q[0] = (uint8_t)(stripe ? r : r / 2);
            q[1] = (uint8_t)(stripe ? g : g / 2);
            q[2] = (uint8_t)(stripe ? b : b / 2);
        }
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *buf = NULL;
    unsigned long len = 0;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = px + (size_t)ci.next_scanline * (size_t)w * 3;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    T_OK(mms_write_file_atomic(path, buf, len));
    free(buf);
    free(px);
}

static void put(const char *dir, const char *name, const char *text, char *path_out) {
    char p[MMS_PATH_MAX];
    T_OK(mms_path_join(p, sizeof p, dir, name));
    T_OK(mms_write_file_atomic(p, text, strlen(text)));
    if (path_out) strcpy(path_out, p);
}

/* Nothing named <prefix>* may remain in dir (no output, no temporary). */
static int leftovers(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    if (d) closedir(d);
    return n;
}

static void test_import(void) {
    char tmp[MMS_PATH_MAX], da[MMS_PATH_MAX], db[MMS_PATH_MAX], p[MMS_PATH_MAX];
    strcpy(tmp, mms_test_tmpdir("import_coco")); /* both MMS_PATH_MAX */
    T_OK(mms_path_join(da, sizeof da, tmp, "dirA"));
    T_OK(mms_path_join(db, sizeof db, tmp, "dirB"));
    T_OK(mms_mkdir_p(da));
    T_OK(mms_mkdir_p(db));
    T_OK(mms_path_join(p, sizeof p, da, "a1.jpg"));
    write_jpeg(p, 64, 48, 250, 20, 20);
    T_OK(mms_path_join(p, sizeof p, db, "a2.jpg")); /* listed first by a.json, found in dirB */
    write_jpeg(p, 40, 60, 20, 200, 20);
    T_OK(mms_path_join(p, sizeof p, db, "b7.jpg"));
    write_jpeg(p, 50, 50, 20, 20, 220);
    char ia[MMS_PATH_MAX], ib[MMS_PATH_MAX], c1[MMS_PATH_MAX], c2[MMS_PATH_MAX], out[MMS_PATH_MAX];
    put(tmp, "a.json", k_inst_a, ia);
    put(tmp, "b.json", k_inst_b, ib);
    put(tmp, "c1.json", k_caps_1, c1);
    put(tmp, "c2.json", k_caps_2, c2);
    T_OK(mms_path_join(out, sizeof out, tmp, "cat"));

    const char *dirs[2] = {da, db}, *inst[2] = {ia, ib}, *caps[2] = {c1, c2};
    mms_coco_import_opts_t o = {.image_dirs = dirs,
                                .instances = inst,
                                .nsources = 2,
                                .captions = caps,
                                .ncaptions = 2,
                                .out_dir = out,
                                .force = 0,
                                .caption_tags = 1,
                                .test_fraction = 0.0,
                                .seed = 1};
    mms_coco_counts_t k;
    T_OK(mms_coco_import(&o, &k));
    T_EQ_INT(k.images, 3);
    mms_catalog_t *cat = NULL;
    T_OK(mms_catalog_open(out, &cat));
    if (cat) {
        T_EQ_INT(cat->n, 3);
        T_EQ_INT(cat->dim, MMS_DESCRIPTOR_DIM);
        T_EQ_INT(cat->n_split[MMS_SPLIT_TRAIN], 3);
        T_STREQ(cat->ids[0], "1");
        T_STREQ(cat->ids[1], "2");
        T_STREQ(cat->ids[2], "7");
        T_EQ_INT(cat->tag_ptr[1] - cat->tag_ptr[0], 5);
        T_CHECK(mms_catalog_tag_lookup(cat, "traffic light") >= 0);
        T_CHECK(cat->obj_ptr != NULL);
        if (cat->obj_ptr) T_EQ_INT(cat->obj_ptr[1] - cat->obj_ptr[0], 2);
        T_CHECK(cat->cap_ptr != NULL);
        if (cat->cap_ptr) T_EQ_INT(cat->cap_ptr[3], 6);
        T_CHECK(cat->paths != NULL);
        if (cat->paths) {
            T_CHECK(cat->paths[0][0] == '/' && strstr(cat->paths[0], "/dirA/a1.jpg"));
            T_CHECK(strstr(cat->paths[1], "/dirB/a2.jpg") != NULL);
        }
        /* the feature row is the descriptor of the file */
        float v[MMS_DESCRIPTOR_DIM];
        T_OK(mms_path_join(p, sizeof p, da, "a1.jpg"));
        T_OK(mms_descriptor_from_jpeg_file(p, v));
        T_CHECK(memcmp(v, cat->x, sizeof v) == 0);
        mms_catalog_close(&cat);
    }

    /* output exists: refused without force, replaced with it */
    T_FAILS(mms_coco_import(&o, NULL), MMS_ERR_EXISTS);
    T_MSG_HAS("--force");
    /* a seed that puts some of ids 1, 2, 7 in each split */
    uint64_t seed = 1;
    for (; seed < 1000; seed++) {
        int t = (mms_coco_split(seed, 0.5, 1) == MMS_SPLIT_TEST) +
                (mms_coco_split(seed, 0.5, 2) == MMS_SPLIT_TEST) +
                (mms_coco_split(seed, 0.5, 7) == MMS_SPLIT_TEST);
        if (t == 1 || t == 2) break;
    }
    o.force = 1;
    o.test_fraction = 0.5;
    o.seed = seed;
    T_OK(mms_coco_import(&o, NULL));
    T_OK(mms_catalog_open(out, &cat));
    if (cat) {
        T_CHECK(cat->n_split[MMS_SPLIT_TRAIN] > 0 && cat->n_split[MMS_SPLIT_TEST] > 0);
        for (int64_t i = 0; i < cat->n; i++)
            T_EQ_INT(cat->split[i], mms_coco_split(seed, 0.5, atoll(cat->ids[i])));
        mms_catalog_close(&cat);
    }
    T_EQ_INT(leftovers(tmp, "cat.tmp"), 0);

    /* one source from here on: a missing JPEG and a corrupt JPEG are errors
     * and leave nothing behind */
    char bad[MMS_PATH_MAX];
    T_OK(mms_path_join(out, sizeof out, tmp, "fail"));
    o.force = 0;
    o.nsources = 1;
    dirs[0] = db;
    inst[0] = bad;
    const char *inst_missing = "{\"images\": [{\"id\": 5, \"file_name\": \"nothere.jpg\"}],"
                               " \"categories\": [{\"id\": 1, \"name\": \"cat\"}],"
                               " \"annotations\": [{\"image_id\": 5, \"category_id\": 1}]}";
    put(tmp, "missing.json", inst_missing, bad);
    T_FAILS(mms_coco_import(&o, NULL), MMS_ERR_IO);
    T_MSG_HAS("missing.json: images[0] (id 5): JPEG not found");
    T_MSG_HAS("dirB/nothere.jpg");
    T_EQ_INT(leftovers(tmp, "fail"), 0);
    const char *inst_corrupt = "{\"images\": [{\"id\": 6, \"file_name\": \"corrupt.jpg\"}],"
                               " \"categories\": [{\"id\": 1, \"name\": \"cat\"}],"
                               " \"annotations\": [{\"image_id\": 6, \"category_id\": 1}]}";
    put(tmp, "corrupt.json", inst_corrupt, bad);
    put(db, "corrupt.jpg", "\xff\xd8\xff\xe0 this is not really a JPEG", NULL);
    T_FAILS(mms_coco_import(&o, NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("corrupt.jpg: not a valid JPEG");
    T_EQ_INT(leftovers(tmp, "fail"), 0);
    /* a bad field */
    put(tmp, "badfield.json",
        "{\"images\": [], \"categories\": [], \"annotations\": [{\"image_id\": \"6\"}]}", bad);
    T_FAILS(mms_coco_import(&o, NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("badfield.json: annotations[0].image_id is not an integer");
    T_EQ_INT(leftovers(tmp, "fail"), 0);
    /* no annotated image at all */
    put(tmp, "empty.json", "{\"images\": [], \"categories\": [], \"annotations\": []}", bad);
    T_FAILS(mms_coco_import(&o, NULL), MMS_ERR_FORMAT);
    T_MSG_HAS("no annotated images");
    /* arguments */
    inst[0] = ia;
    o.test_fraction = 1.0;
    T_FAILS(mms_coco_import(&o, NULL), MMS_ERR_ARG);
    T_MSG_HAS("--test-fraction");
    o.test_fraction = 0.2;
    o.nsources = 0;
    T_FAILS(mms_coco_import(&o, NULL), MMS_ERR_ARG);
    o.nsources = 1;
    dirs[0] = ia; /* a file, not a folder */
    T_FAILS(mms_coco_import(&o, NULL), MMS_ERR_IO);
    T_MSG_HAS("is not a directory");
    T_EQ_INT(leftovers(tmp, "fail"), 0);
    mms_rm_rf(tmp);
}

static void test_split(void) {
    int test = 0, bad = 0;
    for (int64_t id = 0; id < 20000; id++) {
        int s = mms_coco_split(1, 0.2, id);
        bad += s != MMS_SPLIT_TRAIN && s != MMS_SPLIT_TEST;
        bad += mms_coco_split(1, 0.0, id) != MMS_SPLIT_TRAIN;
        test += s == MMS_SPLIT_TEST;
    }
    T_EQ_INT(bad, 0);
    T_CHECK(test > 3700 && test < 4300); /* 20% of 20000, within 5 sigma */
    T_CHECK(mms_coco_split(1, 0.2, 435206) == mms_coco_split(1, 0.2, 435206));
}

/* The real subset: four sources merge into 318 distinct annotated images
 * (80 + 79 + 80 + 80 listed, image 435206 in both val files). JSON only. */
static void test_real_subset(void) {
    const char *base = mms_test_shared("coco-subset");
    if (!base) {
        fprintf(stderr,
                "test_import_coco: no $MMS_SHARED_DATA/coco-subset: real-data check skipped\n");
        return;
    }
    char root[MMS_PATH_MAX];
    strcpy(root, base); /* both MMS_PATH_MAX */
    const char *files[4] = {"coco-mini/annotations/instances_train2017.json",
                            "coco-mini/annotations/instances_val2017.json",
                            "coco-tiny/annotations/instances_train2017.json",
                            "coco-tiny/annotations/instances_val2017.json"};
    const char *capf[3] = {"captions_val2017.json", "coco-mini/annotations/captions_train2017.json",
                           "coco-mini/annotations/captions_val2017.json"};
    mms_coco_t *c;
    T_OK(mms_coco_create(&c));
    for (int i = 0; i < 7; i++) {
        char p[MMS_PATH_MAX], *buf = NULL;
        size_t len;
        T_OK(mms_path_join(p, sizeof p, root, i < 4 ? files[i] : capf[i - 4]));
        T_OK(mms_read_file(p, &buf, &len));
        if (!buf) continue;
        T_OK(i < 4 ? mms_coco_add_instances(c, buf, len, p, root)
                   : mms_coco_add_captions(c, buf, len, p));
        free(buf);
    }
    T_OK(mms_coco_finish(c, 0));
    mms_coco_counts_t k;
    mms_coco_get_counts(c, &k);
    T_EQ_INT(k.images, 318);
    T_EQ_INT(k.unannotated, 0);
    T_EQ_INT(k.categories, 80);
    T_EQ_INT(k.captions, 1190);
    T_EQ_INT(k.dup_captions, 395); /* the mini val captions are also in the full file */
    mms_coco_destroy(&c);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET); /* expected errors are checked, not shown */
    test_parse_merge();
    test_captions();
    test_errors();
    test_split();
    test_import();
    test_real_subset();
    return mms_test_finish("test_import_coco");
}
