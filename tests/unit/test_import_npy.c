/* test_import_npy.c: the tags TSV reader (in memory), the id-hash split, and the
 * whole npy import on small files written with mms_npy_write or by hand in a
 * scratch directory: a good import, and every refused input with its message
 * and no output left behind. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_npy.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_npy.h"
#include "mms_test.h"

/* Read every line of text; returns the first failure, rows read in *rows. */
static mms_status read_all(const char *text, int64_t *rows) {
    mms_tagstsv_t *t;
    mms_status s = mms_tagstsv_open_mem("t.tsv", text, strlen(text), &t);
    if (s != MMS_OK) return s;
    int64_t n = 0;
    int got = 1;
    while (got) {
        mms_tagstsv_row_t r;
        s = mms_tagstsv_next(t, &r, &got);
        if (s != MMS_OK) break;
        n += got;
    }
    if (rows) *rows = n;
    mms_tagstsv_close(&t);
    return s;
}

static void test_tsv(void) {
    const char *text = "a\ttrain\tsky|sea water\r\n"
                       "b\tval\t\n"
                       "c\ttest\tsky|sky\n";
    mms_tagstsv_t *t;
    T_OK(mms_tagstsv_open_mem("t.tsv", text, strlen(text), &t));
    if (!t) return;
    T_EQ_INT(mms_tagstsv_has_split(t), -1);
    mms_tagstsv_row_t r;
    int got;
    T_OK(mms_tagstsv_next(t, &r, &got));
    T_EQ_INT(got, 1);
    T_EQ_INT(mms_tagstsv_has_split(t), 1);
    T_STREQ(r.id, "a");
    T_EQ_INT(r.split, MMS_SPLIT_TRAIN);
    T_EQ_INT(r.ntags, 2);
    if (r.ntags == 2) {
        T_STREQ(r.tags[0], "sky");
        T_STREQ(r.tags[1], "sea water");
    }
    T_EQ_INT(r.line, 1);
    T_OK(mms_tagstsv_next(t, &r, &got));
    T_STREQ(r.id, "b");
    T_EQ_INT(r.split, MMS_SPLIT_VAL);
    T_EQ_INT(r.ntags, 0);
    T_OK(mms_tagstsv_next(t, &r, &got));
    T_EQ_INT(r.split, MMS_SPLIT_TEST);
    T_EQ_INT(r.ntags, 2);
    T_OK(mms_tagstsv_next(t, &r, &got));
    T_EQ_INT(got, 0);
    mms_tagstsv_close(&t);
    T_CHECK(t == NULL);

    text = "\xEF\xBB\xBFx1\tcat|dog\nx2\t\nx3\tbird"; /* BOM, two columns, no final '\n' */
    T_OK(mms_tagstsv_open_mem("t.tsv", text, strlen(text), &t));
    if (!t) return;
    T_OK(mms_tagstsv_next(t, &r, &got));
    T_EQ_INT(mms_tagstsv_has_split(t), 0);
    T_EQ_INT(r.split, -1);
    T_STREQ(r.id, "x1");
    T_EQ_INT(r.ntags, 2);
    T_OK(mms_tagstsv_next(t, &r, &got));
    T_EQ_INT(r.ntags, 0);
    T_OK(mms_tagstsv_next(t, &r, &got));
    T_STREQ(r.id, "x3");
    T_STREQ(r.tags[0], "bird");
    T_OK(mms_tagstsv_next(t, &r, &got));
    T_EQ_INT(got, 0);
    mms_tagstsv_close(&t);

    int64_t rows;
    struct {
        const char *text, *msg;
    } bad[] = {
        {"", "t.tsv is empty"},
        {"a\ttrain\tx\n\nb\ttrain\ty\n", "t.tsv:2: empty line"},
        {"a\ttrain\tx\nb train y\n", "t.tsv:2: no tab"},
        {"a\ttrain\tx\tz\n", "t.tsv:1: more than 3 tab-separated fields"},
        {"a\ttrain\tx\nb\ty\n",
         "t.tsv:2: has the form 'id<TAB>tags' but line 1 has 'id<TAB>split<TAB>tags'"},
        {"a\tx\nb\ttrain\ty\n", "t.tsv:2: has the form 'id<TAB>split<TAB>tags' but line 1"},
        {"a\ttrain\tx\n\ttrain\ty\n", "t.tsv:2: empty id"},
        {"a\ttrain\tx\nb\tvalid\ty\n", "t.tsv:2: unknown split 'valid' for id 'b'"},
        {"id\tsplit\ttags\n", "t.tsv:1: unknown split 'split' for id 'id' (want train, val or "
                              "test); a header line is not allowed"},
        {"a\ttrain\tx||y\n", "t.tsv:1: empty tag for id 'a'"},
        {"a\ttrain\tx|\n", "t.tsv:1: empty tag"},
        {"a\t|x\n", "t.tsv:1: empty tag"},
        {"a\ttrain\tx\nb\ttrain\ty\nc\ttrain\tz\nb\ttest\tw\n",
         "t.tsv:4: duplicate id 'b' (also on line 2)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_FAILS(read_all(bad[i].text, &rows), MMS_ERR_FORMAT);
        T_MSG_HAS(bad[i].msg);
    }
    const char nul[] = "a\ttrain\tx\nb\0\ttrain\ty\n";
    T_OK(mms_tagstsv_open_mem("t.tsv", nul, sizeof nul - 1, &t));
    if (t) {
        T_OK(mms_tagstsv_next(t, &r, &got));
        T_FAILS(mms_tagstsv_next(t, &r, &got), MMS_ERR_FORMAT);
        T_MSG_HAS("t.tsv:2: line contains a NUL byte");
        mms_tagstsv_close(&t);
    }
    char longtag[400];
    memset(longtag, 'q', sizeof longtag);
    memcpy(longtag, "a\tx|", 4);
    longtag[sizeof longtag - 1] = '\0';
    T_FAILS(read_all(longtag, &rows), MMS_ERR_FORMAT);
    T_MSG_HAS("longer than 255 bytes");
}

static void test_split_hash(void) {
    int n_test = 0, same = 0, differ = 0;
    char id[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "img%d", i);
        int s = mms_import_npy_split(id, strlen(id), 1, 0.1);
        T_CHECK(s == MMS_SPLIT_TRAIN || s == MMS_SPLIT_TEST);
        n_test += s == MMS_SPLIT_TEST;
        same += s == mms_import_npy_split(id, strlen(id), 1, 0.1);
        differ += s != mms_import_npy_split(id, strlen(id), 2, 0.1);
        if (mms_import_npy_split(id, strlen(id), 7, 0.0) != MMS_SPLIT_TRAIN) differ = -1000000;
        if (mms_import_npy_split(id, strlen(id), 7, 1.0) != MMS_SPLIT_TEST) differ = -1000000;
    }
    T_EQ_INT(same, 20000);
    T_CHECK(n_test > 1800 && n_test < 2200); /* 10% +- 5 sigma */
    T_CHECK(differ > 1000);                  /* another seed gives another split */
}

/* A .npy with a hand-written header dict (for layouts mms_npy_write never makes). */
static void write_raw(const char *path, const char *dict, const void *data, size_t n) {
    size_t dl = strlen(dict), total = 10 + dl + 1, pad = (64 - total % 64) % 64, hl = dl + pad + 1;
    FILE *f = fopen(path, "wb");
    if (!f) return;
    unsigned char pre[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, dl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int has_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL) found |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return found;
}

typedef struct {
    char dir[MMS_PATH_MAX], fx[MMS_PATH_MAX], fk[MMS_PATH_MAX], tsv[MMS_PATH_MAX],
        out[MMS_PATH_MAX], other[MMS_PATH_MAX];
} paths_t;

/* Run the import expecting failure code with message msg, and no output left. */
static void expect_fail(const paths_t *p, const mms_npy_import_opts_t *o, mms_status code,
                        const char *msg, int line) {
    mms_status s = mms_import_npy_run(o, NULL);
    if (s != code || !strstr(mms_error_message(), msg))
        fprintf(stderr, "  (case at line %d)\n", line);
    T_EQ_INT(s, code);
    T_MSG_HAS(msg);
    T_CHECK(!mms_path_exists(p->out));
    T_CHECK(!has_tmp(p->dir));
}
#define EXPECT_FAIL(code, msg) expect_fail(&p, &o, (code), (msg), __LINE__)

static void test_import(const char *dir) {
    paths_t p;
    snprintf(p.dir, sizeof p.dir, "%s", dir);
    snprintf(p.fx, sizeof p.fx, "%s/x.npy", dir);
    snprintf(p.fk, sizeof p.fk, "%s/k.npy", dir);
    snprintf(p.tsv, sizeof p.tsv, "%s/t.tsv", dir);
    snprintf(p.out, sizeof p.out, "%s/cat", dir);
    snprintf(p.other, sizeof p.other, "%s/o.npy", dir);
    float x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; /* 4 x 3 */
    float k[8] = {0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4};     /* 4 x 2 */
    T_OK(mms_npy_write(p.fx, MMS_DT_F32, x, 4, 3));
    T_OK(mms_npy_write(p.fk, MMS_DT_F32, k, 4, 2));
    write_text(p.tsv, "a\ttrain\tsky|sea\nb\tval\tsky\nc\ttest\t\nd\ttrain\tgrass\n");
    mms_npy_import_opts_t o = {p.fx, p.fk, p.tsv, p.out, 0, 0.1, 1, 0};
    mms_npy_import_stats_t st;
    T_OK(mms_import_npy_run(&o, &st));
    T_EQ_INT(st.rows, 4);
    T_EQ_INT(st.n_split[0], 2);
    T_EQ_INT(st.n_split[1], 1);
    T_EQ_INT(st.n_split[2], 1);
    T_EQ_INT(st.dim, 3);
    T_EQ_INT(st.knn_dim, 2);
    T_EQ_INT(st.split_from_tsv, 1);
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(p.out, &c));
    if (c) {
        T_EQ_INT(c->n, 4);
        T_EQ_INT(c->dim, 3);
        T_EQ_INT(c->knn_dim, 2);
        T_NEAR(c->x[11], 12, 0);
        T_NEAR(c->knn_x[3], 2, 0);
        T_STREQ(c->ids[2], "c");
        T_EQ_INT(c->split[1], MMS_SPLIT_VAL);
        T_EQ_INT(c->ntags, 3);
        mms_catalog_close(&c);
    }
    /* exists: refused without --force, replaced with it */
    T_FAILS(mms_import_npy_run(&o, NULL), MMS_ERR_EXISTS);
    T_MSG_HAS("already exists (pass --force");
    T_CHECK(mms_path_exists(p.out));
    T_CHECK(!has_tmp(p.dir));
    o.force = 1;
    write_text(p.tsv, "a\tsky|sea\nb\tsky\nc\t\nd\tgrass\n");
    o.knn_features = NULL;
    T_OK(mms_import_npy_run(&o, &st));
    T_EQ_INT(st.split_from_tsv, 0);
    T_EQ_INT(st.knn_dim, 0);
    T_OK(mms_catalog_open(p.out, &c));
    if (c) {
        const char *ids[4] = {"a", "b", "c", "d"};
        for (int i = 0; i < 4; i++) T_EQ_INT(c->split[i], mms_import_npy_split(ids[i], 1, 1, 0.1));
        T_EQ_INT(c->knn_dim, 0);
        mms_catalog_close(&c);
    }
    T_OK(mms_rm_rf(p.out));
    o.force = 0;
    o.knn_features = p.fk;

    /* row counts: TSV vs features, kNN features vs features */
    write_text(p.tsv, "a\ttrain\tsky\nb\ttrain\tsky\nc\ttrain\tsky\n");
    EXPECT_FAIL(MMS_ERR_MISMATCH, "t.tsv has 3 lines but");
    T_MSG_HAS("x.npy has 4 rows");
    write_text(p.tsv, "a\ttrain\tsky\nb\ttrain\tsky\nc\ttrain\tsky\nd\ttrain\tsky\ne\ttrain\tx\n");
    EXPECT_FAIL(MMS_ERR_MISMATCH, "t.tsv has 5 lines but");
    write_text(p.tsv, "a\ttrain\tsky\nb\ttrain\tsky\nc\ttrain\tsky\nd\ttrain\tsky\n\r\n\n");
    EXPECT_FAIL(MMS_ERR_MISMATCH, "t.tsv has 6 lines but");
    T_MSG_HAS("in the same order; its last 2 lines are empty");
    write_text(p.tsv, "a\ttrain\tsky\nb\ttrain\tsky\nc\ttrain\tsky\nd\ttrain\tsky\n");
    T_OK(mms_npy_write(p.other, MMS_DT_F32, k, 3, 2));
    o.knn_features = p.other;
    EXPECT_FAIL(MMS_ERR_MISMATCH, "x.npy has 4 rows but");
    T_MSG_HAS("o.npy has 3");
    o.knn_features = p.fk;

    /* per-line TSV errors name the line */
    write_text(p.tsv, "a\ttrain\tsky\nb\ttrain\tsky\nc\ttrain\tsky\nb\ttrain\tsky\n");
    EXPECT_FAIL(MMS_ERR_FORMAT, "t.tsv:4: duplicate id 'b' (also on line 2)");
    write_text(p.tsv, "a\ttrain\tsky\nb\ttrian\tsky\nc\ttrain\tsky\nd\ttrain\tsky\n");
    EXPECT_FAIL(MMS_ERR_FORMAT, "t.tsv:2: unknown split 'trian'");
    write_text(p.tsv, "");
    EXPECT_FAIL(MMS_ERR_FORMAT, "t.tsv is empty");
    write_text(p.tsv, "a\ttest\tsky\nb\tval\tsky\nc\ttest\tsky\nd\ttest\tsky\n");
    EXPECT_FAIL(MMS_ERR_FORMAT, "has no training images");
    write_text(p.tsv, "a\ttrain\tsky\nb\ttrain\tsky\nc\ttrain\tsky\nd\ttrain\tsky\n");

    /* NaN / Inf name the file, row and column */
    float xn[12];
    memcpy(xn, x, sizeof xn);
    xn[7] = NAN; /* row 2, column 1 */
    T_OK(mms_npy_write(p.other, MMS_DT_F32, xn, 4, 3));
    o.features = p.other;
    EXPECT_FAIL(MMS_ERR_NUMERIC, "o.npy: row 2, column 1 (0-based) is NaN (image 'c'");
    T_MSG_HAS("t.tsv:3");
    o.features = p.fx;
    float kn[8];
    memcpy(kn, k, sizeof kn);
    kn[1] = -INFINITY;
    T_OK(mms_npy_write(p.other, MMS_DT_F32, kn, 4, 2));
    o.knn_features = p.other;
    EXPECT_FAIL(MMS_ERR_NUMERIC, "o.npy: row 0, column 1 (0-based) is Inf (image 'a'");
    o.knn_features = p.fk;

    /* layouts: dtype, Fortran order, 1-D, empty, shape vs data, missing */
    o.features = p.other;
    double xd[12] = {0};
    T_OK(mms_npy_write(p.other, MMS_DT_F64, xd, 4, 3));
    EXPECT_FAIL(MMS_ERR_FORMAT, "o.npy: dtype is '<f8' (float64); features must be float32");
    write_raw(p.other, "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 3), }", x, sizeof x);
    EXPECT_FAIL(MMS_ERR_FORMAT, "Fortran order");
    T_MSG_HAS("o.npy");
    T_OK(mms_npy_write(p.other, MMS_DT_F32, x, 12, 0));
    EXPECT_FAIL(MMS_ERR_FORMAT, "o.npy: is a 1-D array of 12 values");
    write_text(p.other, "");
    EXPECT_FAIL(MMS_ERR_FORMAT, "o.npy is empty (0 bytes)");
    write_raw(p.other, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", x, 0);
    EXPECT_FAIL(MMS_ERR_FORMAT, "o.npy has shape (0, 3): no rows");
    write_raw(p.other, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }", x, sizeof x);
    EXPECT_FAIL(MMS_ERR_FORMAT, "o.npy: the data holds 48 bytes but shape (4, 2) float32 needs 32");
    write_raw(p.other, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", x, 40);
    EXPECT_FAIL(MMS_ERR_FORMAT, "o.npy: truncated .npy data");
    write_raw(p.other, "{'descr': '<i4', 'fortran_order': False, 'shape': (4, 3), }", x, sizeof x);
    EXPECT_FAIL(MMS_ERR_FORMAT, "dtype is '<i4' (int32)");
    o.features = p.fx;
    o.knn_features = p.other; /* the kNN matrix gets the same checks */
    T_OK(mms_npy_write(p.other, MMS_DT_F32, k, 8, 0));
    EXPECT_FAIL(MMS_ERR_FORMAT, "o.npy: is a 1-D array of 8 values");
    o.knn_features = p.fk;
    snprintf(p.other, sizeof p.other, "%s/missing.npy", dir);
    o.features = p.other;
    EXPECT_FAIL(MMS_ERR_IO, "missing.npy");
    o.features = p.fx;
    o.tags = p.other;
    EXPECT_FAIL(MMS_ERR_IO, "missing.npy");
    o.tags = p.tsv;
    /* still good after all that */
    T_OK(mms_import_npy_run(&o, NULL));
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    char dir[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", mms_test_tmpdir("import_npy"));
    test_tsv();
    test_split_hash();
    test_import(dir);
    mms_rm_rf(dir);
    return mms_test_finish("test_import_npy");
}
