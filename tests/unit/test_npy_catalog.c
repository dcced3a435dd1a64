/* test_npy_catalog.c: .npy read/write/validation and the catalog writer/reader. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_npy.h"
#include "mms_test.h"

static void write_raw(const char *path, const char *hdr_dict, const void *data, size_t n) {
    size_t dl = strlen(hdr_dict), total = 10 + dl + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hl = dl + pad + 1;
    FILE *f = fopen(path, "wb");
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff),
                             (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(hdr_dict, 1, dl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void test_npy(const char *dir) {
    char p[MMS_PATH_MAX];
    float x[6] = {1, 2, 3, 4, 5, 6};
    snprintf(p, sizeof p, "%s/a.npy", dir);
    T_OK(mms_npy_write(p, MMS_DT_F32, x, 2, 3));
    mms_npy_t a;
    T_OK(mms_npy_open(p, MMS_DT_F32, &a));
    T_EQ_INT(a.rows, 2);
    T_EQ_INT(a.cols, 3);
    T_EQ_INT(a.hdr.ndim, 2);
    T_NEAR(((const float *)a.data)[5], 6.0, 0);
    T_EQ_INT(a.hdr.data_offset % 64, 0);
    mms_npy_close(&a);
    T_FAILS(mms_npy_open(p, MMS_DT_I64, &a), MMS_ERR_FORMAT);
    T_MSG_HAS("expected '<i8'");
    /* 1-D, streamed */
    mms_npy_writer_t w;
    snprintf(p, sizeof p, "%s/b.npy", dir);
    T_OK(mms_npy_writer_open(&w, p, MMS_DT_I64, 0));
    int64_t v[4] = {7, 8, 9, 10};
    T_OK(mms_npy_writer_append(&w, v, 2));
    T_OK(mms_npy_writer_append(&w, v + 2, 2));
    T_CHECK(!mms_path_exists(p)); /* only the temporary exists until close */
    T_OK(mms_npy_writer_close(&w));
    T_OK(mms_npy_open(p, MMS_DT_I64, &a));
    T_EQ_INT(a.hdr.ndim, 1);
    T_EQ_INT(a.rows, 4);
    T_EQ_INT(((const int64_t *)a.data)[3], 10);
    mms_npy_close(&a);
    /* hand-made headers: numpy's own spelling, Fortran order, other dtype, 3-D, truncated */
    snprintf(p, sizeof p, "%s/c.npy", dir);
    write_raw(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", x, sizeof x);
    T_OK(mms_npy_open(p, MMS_DT_F32, &a));
    mms_npy_close(&a);
    write_raw(p, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", x, sizeof x);
    T_FAILS(mms_npy_open(p, MMS_DT_F32, &a), MMS_ERR_FORMAT);
    T_MSG_HAS("Fortran order");
    write_raw(p, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", x, sizeof x);
    T_FAILS(mms_npy_open(p, MMS_DT_F32, &a), MMS_ERR_FORMAT);
    T_MSG_HAS("dtype '>f4' is not supported");
    write_raw(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3), }", x, 24);
    T_FAILS(mms_npy_open(p, MMS_DT_F32, &a), MMS_ERR_FORMAT);
    T_MSG_HAS("'<f8', expected '<f4'");
    write_raw(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", x, sizeof x);
    T_FAILS(mms_npy_open(p, MMS_DT_F32, &a), MMS_ERR_FORMAT);
    T_MSG_HAS("3 dimensions");
    write_raw(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", x, sizeof x);
    T_FAILS(mms_npy_open(p, MMS_DT_F32, &a), MMS_ERR_FORMAT);
    T_MSG_HAS("truncated .npy data");
    FILE *f = fopen(p, "wb");
    fputs("not numpy at all", f);
    fclose(f);
    T_FAILS(mms_npy_open(p, MMS_DT_F32, &a), MMS_ERR_FORMAT);
    T_MSG_HAS("bad magic");
}

static mms_catalog_row_t row(const char *id, int split, const char *const *tags, int nt,
                             const float *x) {
    mms_catalog_row_t r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.split = split;
    r.tags = tags;
    r.ntags = nt;
    r.features = x;
    return r;
}

static void test_catalog(const char *dir) {
    char out[MMS_PATH_MAX];
    snprintf(out, sizeof out, "%s/cat", dir);
    mms_catalog_writer_t *w;
    T_OK(mms_catalog_writer_open(out, 0, 3, 0, "unit test", &w));
    const char *t1[] = {"sky", "water", "sky"};
    const char *t2[] = {"beach"};
    const char *objs[] = {"person", "kite"};
    int cnts[] = {2, 1};
    const char *caps[] = {"a man\tflies a kite", "kite on the beach"};
    float x1[3] = {1, 0, 0}, x2[3] = {0, 1, 0}, x3[3] = {0, 0, 1};
    mms_catalog_row_t r = row("a", MMS_SPLIT_TRAIN, t1, 3, x1);
    r.obj_names = objs;
    r.obj_counts = cnts;
    r.nobj = 2;
    r.captions = caps;
    r.ncaptions = 2;
    r.path = "/img/a.jpg";
    T_OK(mms_catalog_writer_add(w, &r));
    r = row("b", MMS_SPLIT_TEST, t2, 1, x2);
    T_OK(mms_catalog_writer_add(w, &r));
    r = row("c", MMS_SPLIT_TRAIN, NULL, 0, x3);
    T_OK(mms_catalog_writer_add(w, &r));
    /* rejected rows leave the writer usable */
    r = row("a", MMS_SPLIT_TRAIN, NULL, 0, x3);
    r.where = "input.tsv:9";
    T_FAILS(mms_catalog_writer_add(w, &r), MMS_ERR_FORMAT);
    T_MSG_HAS("input.tsv:9: duplicate image id 'a'");
    float bad[3] = {0, NAN, 0};
    r = row("d", MMS_SPLIT_TRAIN, NULL, 0, bad);
    T_FAILS(mms_catalog_writer_add(w, &r), MMS_ERR_NUMERIC);
    T_MSG_HAS("feature 1 is NaN");
    const char *bt[] = {"a|b"};
    r = row("e", MMS_SPLIT_TRAIN, bt, 1, x1);
    T_FAILS(mms_catalog_writer_add(w, &r), MMS_ERR_FORMAT);
    r = row("f", 7, NULL, 0, x1);
    T_FAILS(mms_catalog_writer_add(w, &r), MMS_ERR_FORMAT);
    T_MSG_HAS("unknown split");
    T_CHECK(!mms_path_exists(out));
    T_OK(mms_catalog_writer_finish(&w));
    T_CHECK(w == NULL);
    T_CHECK(mms_path_is_dir(out));

    mms_catalog_t *c;
    T_OK(mms_catalog_open(out, &c));
    T_EQ_INT(c->n, 3);
    T_EQ_INT(c->dim, 3);
    T_EQ_INT(c->n_split[0], 2);
    T_EQ_INT(c->n_split[2], 1);
    T_EQ_INT(c->ntags, 3);
    T_STREQ(c->tag_names[0], "beach"); /* sorted vocabulary */
    T_STREQ(c->tag_names[2], "water");
    T_EQ_INT(c->tag_ptr[1] - c->tag_ptr[0], 2); /* duplicate tag dropped */
    T_EQ_INT(c->tag_count[mms_catalog_tag_lookup(c, "sky")], 1);
    T_EQ_INT(mms_catalog_tag_lookup(c, "nope"), -1);
    T_EQ_INT(mms_catalog_id_lookup(c, "c"), 2);
    T_CHECK(c->obj_ptr != NULL);
    T_EQ_INT(c->ncats, 2);
    T_EQ_INT(c->obj_ptr[1] - c->obj_ptr[0], 2);
    T_CHECK(c->cap_ptr != NULL);
    T_EQ_INT(c->cap_ptr[1], 2);
    T_STREQ(c->captions[0], "a man flies a kite");
    T_STREQ(c->paths[0], "/img/a.jpg");
    T_CHECK(c->paths[1] == NULL);
    T_NEAR(c->x[4], 1.0, 0);
    uint64_t sum;
    T_OK(mms_catalog_checksum(out, &sum));
    T_CHECK(sum == c->checksum);
    mms_catalog_close(&c);

    /* existing output refused without force; abort leaves nothing */
    T_FAILS(mms_catalog_writer_open(out, 0, 3, 0, "x", &w), MMS_ERR_EXISTS);
    char out2[MMS_PATH_MAX];
    snprintf(out2, sizeof out2, "%s/cat2", dir);
    T_OK(mms_catalog_writer_open(out2, 0, 3, 0, "x", &w));
    r = row("z", MMS_SPLIT_TEST, NULL, 0, x1);
    T_OK(mms_catalog_writer_add(w, &r));
    T_FAILS(mms_catalog_writer_finish(&w), MMS_ERR_FORMAT);
    T_MSG_HAS("no training images");
    T_CHECK(!mms_path_exists(out2));
    T_OK(mms_catalog_writer_open(out2, 0, 3, 0, "x", &w));
    T_FAILS(mms_catalog_writer_finish(&w), MMS_ERR_FORMAT);
    T_MSG_HAS("would be empty");
    T_CHECK(!mms_path_exists(out2));

    /* an edited file of a written catalog is refused by its checksum, naming
     * the file; the manifest's shape is checked against features.npy */
    char p[MMS_PATH_MAX];
    snprintf(p, sizeof p, "%s/images.tsv", out);
    FILE *f = fopen(p, "r+");
    fputs("A", f); /* same size, one byte changed */
    fclose(f);
    T_FAILS(mms_catalog_open(out, &c), MMS_ERR_FORMAT);
    T_MSG_HAS("images.tsv' is corrupt: its checksum is");
    f = fopen(p, "a");
    fputs("d\ttrain\t\n", f);
    fclose(f);
    T_FAILS(mms_catalog_open(out, &c), MMS_ERR_FORMAT);
    T_MSG_HAS("images.tsv' is 49 bytes, but");

    /* reader errors on hand-made catalogs (no manifest, so nothing recorded) */
    snprintf(p, sizeof p, "%s/manifest.msgpack", out);
    T_CHECK(remove(p) == 0);
    snprintf(p, sizeof p, "%s/images.tsv", out);
    f = fopen(p, "w");
    fputs("a\ttrain\tsky\nb\tholdout\t\nc\ttrain\t\n", f);
    fclose(f);
    T_FAILS(mms_catalog_open(out, &c), MMS_ERR_FORMAT);
    T_MSG_HAS("images.tsv:2: unknown split 'holdout'");
    f = fopen(p, "w");
    fputs("a\ttrain\tsky\na\ttest\t\nc\ttrain\t\n", f);
    fclose(f);
    T_FAILS(mms_catalog_open(out, &c), MMS_ERR_FORMAT);
    T_MSG_HAS("images.tsv:2: duplicate id 'a' (first on line 1)");
    f = fopen(p, "w");
    fputs("a\ttrain\tsky\nb\ttest\t\n", f);
    fclose(f);
    T_FAILS(mms_catalog_open(out, &c), MMS_ERR_FORMAT);
    T_MSG_HAS("has 2 lines but features.npy has 3 rows");
    f = fopen(p, "w");
    fputs("a\ttest\tsky\nb\ttest\t\nc\tval\t\n", f);
    fclose(f);
    T_FAILS(mms_catalog_open(out, &c), MMS_ERR_FORMAT);
    T_MSG_HAS("no training images");
    f = fopen(p, "w");
    fputs("a\ttrain\tsky||x\nb\ttest\t\nc\ttrain\t\n", f);
    fclose(f);
    T_FAILS(mms_catalog_open(out, &c), MMS_ERR_FORMAT);
    T_MSG_HAS("empty tag");
    f = fopen(p, "w");
    fputs("a\ttrain\tsky\nb\ttest\t\nc\ttrain\t\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/features.npy", out);
    float nanx[9] = {1, 2, 3, 4, INFINITY, 6, 7, 8, 9};
    T_OK(mms_npy_write(p, MMS_DT_F32, nanx, 3, 3));
    T_FAILS(mms_catalog_open(out, &c), MMS_ERR_NUMERIC);
    T_MSG_HAS("row 1, column 1 is Inf");
    T_OK(mms_npy_write(p, MMS_DT_F32, nanx, 0, 3));
    T_FAILS(mms_catalog_open(out, &c), MMS_ERR_FORMAT);
    T_MSG_HAS("catalog is empty");
    T_FAILS(mms_catalog_open("/nonexistent", &c), MMS_ERR_IO);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    const char *d = mms_test_tmpdir("npycat");
    char dir[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", d);
    test_npy(dir);
    test_catalog(dir);
    mms_rm_rf(dir);
    return mms_test_finish("test_npy_catalog");
}
