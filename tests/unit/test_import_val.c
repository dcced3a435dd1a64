/* test_import_val.c: the validation share of the importers (`--val-fraction`,
 * ingest/import_split.h): the draw itself (deterministic, about F of the
 * training ids, nested in F, never a test row, independent of the test
 * draw), and the npy and Mulan importers with it: only training rows become
 * val, the same ids whatever the row order, the rule in the manifest, a bad
 * fraction refused with nothing written. With $MMS_SHARED_DATA, Corel5k
 * imported with --val-fraction 0.1 sets about 450 of its 4,500 training
 * images aside and none of its 500 test images. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_mulan.h"
#include "import_npy.h"
#include "import_split.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_npy.h"
#include "mms_test.h"

static void test_draw(void) {
    char id[32];
    int nval = 0, nested_bad = 0, test_kept = 0, same = 0, both = 0, ntest = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "img%d", i);
        int v1 = mms_import_val_split(MMS_SPLIT_TRAIN, id, 0.1);
        T_CHECK(v1 == MMS_SPLIT_TRAIN || v1 == MMS_SPLIT_VAL);
        nval += v1 == MMS_SPLIT_VAL;
        same += v1 == mms_import_val_split(MMS_SPLIT_TRAIN, id, 0.1);
        /* a larger fraction keeps every val image of the smaller one */
        if (v1 == MMS_SPLIT_VAL && mms_import_val_split(MMS_SPLIT_TRAIN, id, 0.3) != MMS_SPLIT_VAL)
            nested_bad++;
        test_kept += mms_import_val_split(MMS_SPLIT_TEST, id, 0.9) == MMS_SPLIT_TEST;
        if (mms_import_val_split(MMS_SPLIT_TRAIN, id, 0.0) != MMS_SPLIT_TRAIN) nested_bad++;
        /* independent of npy's test draw (seed 1, counter 0): the val share
         * among the ids the test draw kept for training is still about 0.1 */
        if (mms_import_npy_split(id, strlen(id), 1, 0.5) == MMS_SPLIT_TRAIN) {
            ntest++;
            both += v1 == MMS_SPLIT_VAL;
        }
    }
    T_EQ_INT(same, 20000);
    T_EQ_INT(nested_bad, 0);
    T_EQ_INT(test_kept, 20000);
    T_CHECK(nval > 1800 && nval < 2200); /* 10 % +- 5 sigma */
    T_CHECK(both > ntest / 10 - 5 * 30 && both < ntest / 10 + 5 * 30);
    /* the draw is of the id's bytes: the same id, the same draw */
    T_NEAR(mms_import_val_draw("abc", 3), mms_import_val_draw("abcd", 3), 0);
    T_CHECK(mms_import_val_draw("abc", 3) != mms_import_val_draw("abd", 3));
    T_OK(mms_import_val_check("x", 0.0));
    T_OK(mms_import_val_check("x", 0.5));
    T_FAILS(mms_import_val_check("import npy", 1.0), MMS_ERR_ARG);
    T_MSG_HAS("--val-fraction must be in [0, 1)");
    T_FAILS(mms_import_val_check("import npy", -0.1), MMS_ERR_ARG);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The split of every id of catalog dir into splits[id "r<i>"] (-1: absent). */
static void read_splits(const char *dir, int n, int *splits) {
    mms_catalog_t *c = NULL;
    for (int i = 0; i < n; i++)
        splits[i] = -1;
    T_OK(mms_catalog_open(dir, &c));
    if (!c) return;
    for (int64_t r = 0; r < c->n; r++) {
        int i = atoi(c->ids[r] + 1);
        if (i >= 0 && i < n) splits[i] = c->split[r];
    }
    mms_catalog_close(&c);
}

#define NR 400

static void test_npy(const char *dir) {
    char fx[MMS_PATH_MAX], tsv[MMS_PATH_MAX], rev[MMS_PATH_MAX], out[MMS_PATH_MAX],
        out2[MMS_PATH_MAX];
    snprintf(fx, sizeof fx, "%s/x.npy", dir);
    snprintf(tsv, sizeof tsv, "%s/t.tsv", dir);
    snprintf(rev, sizeof rev, "%s/rev.tsv", dir);
    snprintf(out, sizeof out, "%s/cat", dir);
    snprintf(out2, sizeof out2, "%s/cat-rev", dir);
    float *x = calloc(NR * 2, sizeof *x);
    char *a = calloc(NR, 40), *b = calloc(NR, 40);
    size_t la = 0, lb = 0;
    for (int i = 0; i < NR; i++) {
        x[2 * i] = (float)i;
        x[2 * i + 1] = 1;
        /* every 4th row is a test row in the TSV */
        la += (size_t)sprintf(a + la, "r%d\t%s\tt%d\n", i, i % 4 ? "train" : "test", i % 7);
        int j = NR - 1 - i;
        lb += (size_t)sprintf(b + lb, "r%d\t%s\tt%d\n", j, j % 4 ? "train" : "test", j % 7);
    }
    T_OK(mms_npy_write(fx, MMS_DT_F32, x, NR, 2));
    write_text(tsv, a);
    write_text(rev, b);
    mms_npy_import_opts_t o = {0};
    o.features = fx;
    o.tags = tsv;
    o.out = out;
    o.seed = 1;
    o.val_fraction = 0.25;
    mms_npy_import_stats_t st;
    T_OK(mms_import_npy_run(&o, &st));
    int s1[NR], s2[NR], expect_val = 0;
    for (int i = 0; i < NR; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        expect_val += i % 4 && mms_import_val_draw(id, strlen(id)) < 0.25;
    }
    T_EQ_INT(st.n_split[MMS_SPLIT_VAL], expect_val);
    T_EQ_INT(st.n_split[MMS_SPLIT_TEST], NR / 4);
    T_CHECK(expect_val > 40 && expect_val < 110); /* ~75 of 300 */
    read_splits(out, NR, s1);
    int bad = 0;
    for (int i = 0; i < NR; i++)
        bad += (i % 4 == 0) != (s1[i] == MMS_SPLIT_TEST); /* test rows untouched */
    T_EQ_INT(bad, 0);
    /* the rule is in the manifest */
    mms_manifest_t *m = NULL;
    T_OK(mms_manifest_read_dir(out, "catalog", 0, &m));
    if (m) {
        const char *v = NULL;
        int64_t seed = 0, nv = 0;
        T_OK(mms_manifest_get_str(m, "import.val_fraction", &v));
        if (v) T_STREQ(v, "0.25");
        T_OK(mms_manifest_get_int(m, "import.val_seed", &seed));
        T_EQ_INT(seed, (int64_t)MMS_IMPORT_VAL_SEED);
        T_OK(mms_manifest_get_int(m, "val", &nv));
        T_EQ_INT(nv, expect_val);
        mms_manifest_destroy(&m);
    }
    /* the same rows in reverse order: the same ids are val */
    o.tags = rev;
    o.out = out2;
    T_OK(mms_import_npy_run(&o, &st));
    read_splits(out2, NR, s2);
    bad = 0;
    for (int i = 0; i < NR; i++)
        bad += s1[i] != s2[i];
    T_EQ_INT(bad, 0);
    /* ids without a split column: val only among the hash's training rows */
    size_t lc = 0;
    for (int i = 0; i < NR; i++)
        lc += (size_t)sprintf(a + lc, "r%d\tt%d\n", i, i % 7);
    write_text(tsv, a);
    o.tags = tsv;
    o.out = out;
    o.force = 1;
    o.test_fraction = 0.2;
    T_OK(mms_import_npy_run(&o, &st));
    T_EQ_INT(st.split_from_tsv, 0);
    read_splits(out, NR, s1);
    bad = 0;
    for (int i = 0; i < NR; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        int want = mms_import_val_split(mms_import_npy_split(id, strlen(id), 1, 0.2), id, 0.25);
        bad += s1[i] != want;
    }
    T_EQ_INT(bad, 0);
    T_CHECK(st.n_split[MMS_SPLIT_VAL] > 0 && st.n_split[MMS_SPLIT_TEST] > 0);
    /* a bad fraction: refused before anything is written */
    o.out = out;
    mms_rm_rf(out);
    o.val_fraction = 1.0;
    T_FAILS(mms_import_npy_run(&o, &st), MMS_ERR_ARG);
    T_MSG_HAS("--val-fraction");
    T_CHECK(!mms_path_exists(out));
    free(x);
    free(a);
    free(b);
}

static void test_mulan(const char *dir) {
    char train[MMS_PATH_MAX], test[MMS_PATH_MAX], xml[MMS_PATH_MAX], out[MMS_PATH_MAX];
    snprintf(train, sizeof train, "%s/tr.arff", dir);
    snprintf(test, sizeof test, "%s/te.arff", dir);
    snprintf(xml, sizeof xml, "%s/l.xml", dir);
    snprintf(out, sizeof out, "%s/mulan", dir);
    const char *head = "@relation r\n@attribute f0 numeric\n@attribute sky {0,1}\n@data\n";
    size_t cap = 64 + 40 * NR;
    char *t = malloc(cap);
    size_t n = (size_t)sprintf(t, "%s", head);
    for (int i = 0; i < NR; i++)
        n += (size_t)sprintf(t + n, "%d,%d\n", i, i % 2);
    write_text(train, t);
    write_text(test, t);
    write_text(xml, "<labels><label name=\"sky\"/></labels>");
    mms_mulan_import_opts_t o = {train, test, xml, out, 0, 0.1};
    mms_mulan_import_stats_t st;
    T_OK(mms_import_mulan_run(&o, &st));
    int expect_val = 0;
    for (int i = 1; i <= NR; i++) {
        char id[32];
        snprintf(id, sizeof id, "train-%06d", i);
        expect_val += mms_import_val_draw(id, strlen(id)) < 0.1;
    }
    T_EQ_INT(st.val, expect_val);
    T_EQ_INT(st.train + st.val, NR);
    T_EQ_INT(st.test, NR);
    T_CHECK(expect_val > 10 && expect_val < 80);
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(out, &c));
    if (c) {
        T_EQ_INT(c->n_split[MMS_SPLIT_VAL], expect_val);
        T_EQ_INT(c->n_split[MMS_SPLIT_TEST], NR);
        int bad = 0;
        for (int64_t r = 0; r < c->n; r++)
            if (c->split[r] == MMS_SPLIT_VAL) bad += strncmp(c->ids[r], "train-", 6) != 0;
        T_EQ_INT(bad, 0); /* val ids keep their train- name: they come from --train */
        mms_catalog_close(&c);
    }
    free(t);
}

static void test_corel5k(const char *dir) {
    const char *tr = mms_test_shared("corel5k/Corel5k-train-sparse.arff");
    if (!tr) {
        fprintf(stderr, "test_import_val: $MMS_SHARED_DATA/corel5k absent, Corel5k case "
                        "skipped\n");
        return;
    }
    char train[MMS_PATH_MAX], test[MMS_PATH_MAX], xml[MMS_PATH_MAX], out[MMS_PATH_MAX];
    snprintf(train, sizeof train, "%s", tr);
    snprintf(test, sizeof test, "%s", mms_test_shared("corel5k/Corel5k-test-sparse.arff"));
    snprintf(xml, sizeof xml, "%s", mms_test_shared("corel5k/Corel5k.xml"));
    snprintf(out, sizeof out, "%s/corel5k", dir);
    mms_mulan_import_opts_t o = {train, test, xml, out, 0, 0.1};
    mms_mulan_import_stats_t st;
    T_OK(mms_import_mulan_run(&o, &st));
    fprintf(stderr, "test_import_val: Corel5k with --val-fraction 0.1: train %lld, val %lld, "
                    "test %lld\n",
            (long long)st.train, (long long)st.val, (long long)st.test);
    T_EQ_INT(st.train + st.val, 4500);
    T_EQ_INT(st.test, 500);
    T_CHECK(st.val > 450 - 5 * 20 && st.val < 450 + 5 * 20);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    const char *tmp = mms_test_tmpdir("import_val");
    char dir[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", tmp);
    test_draw();
    test_npy(dir);
    test_mulan(dir);
    test_corel5k(dir);
    mms_rm_rf(dir);
    return mms_test_finish("test_import_val");
}
