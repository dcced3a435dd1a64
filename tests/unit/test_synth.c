/* test_synth.c: the synthetic catalog generator (ingest/synth.h).
 *
 * Checks the contract, not golden files: option validation; the same seed gives
 * byte-identical files whatever the chunking, another seed differs; rows are
 * pure functions of their index (slices, prefixes, with or without kNN
 * features); the catalog opens with the shared reader; 3-8 distinct tags per
 * image with a decreasing, Zipf-like frequency; the planted clusters are
 * recoverable from the features (nearest centroid, 1-NN) well above chance;
 * tags follow topics, and topics follow clusters only partly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_test.h"
#include "synth.h"

static const char *k_files[] = {"features.npy", "knn_features.npy", "images.tsv", "objects.tsv",
                                "manifest.msgpack"};
#define NFILES 5

static mms_synth_params_t small_params(uint64_t seed) {
    mms_synth_params_t p;
    mms_synth_params_default(&p);
    p.images = 1500;
    p.dim = 64;
    p.knn_dim = 48;
    p.seed = seed;
    return p;
}

static void checksums(const char *dir, uint64_t out[NFILES]) {
    for (int i = 0; i < NFILES; i++) {
        char path[MMS_PATH_MAX];
        out[i] = 0;
        T_OK(mms_path_join(path, sizeof path, dir, k_files[i]));
        T_OK(mms_file_checksum(path, &out[i]));
    }
}

static void test_params(void) {
    mms_synth_params_t p;
    mms_synth_params_default(&p);
    T_FAILS(mms_synth_params_resolve(&p), MMS_ERR_ARG); /* images not set */
    T_MSG_HAS("--images");
    p.images = 2000;
    T_OK(mms_synth_params_resolve(&p));
    T_EQ_INT(p.tags, 200);    /* min(20000, max(200, N/50)) */
    T_EQ_INT(p.clusters, 20); /* clamp(N/100, 8, 5000) */
    T_EQ_INT(p.topics, 5);    /* clamp(C/4, 2, 1000) */
    T_EQ_INT(p.dim, 512);
    mms_synth_params_default(&p);
    p.images = 10000000;
    T_OK(mms_synth_params_resolve(&p));
    T_EQ_INT(p.tags, 20000);
    T_EQ_INT(p.clusters, 5000);
    T_EQ_INT(p.topics, 1000);

    mms_synth_params_default(&p);
    p.images = 10;
    p.dim = 0;
    T_FAILS(mms_synth_params_resolve(&p), MMS_ERR_ARG);
    T_MSG_HAS("--dim");
    p.dim = MMS_SYNTH_MAX_DIM + 1;
    T_FAILS(mms_synth_params_resolve(&p), MMS_ERR_ARG);
    T_MSG_HAS("--dim");
    p.dim = 8;
    p.knn_dim = -1;
    T_FAILS(mms_synth_params_resolve(&p), MMS_ERR_ARG);
    T_MSG_HAS("--knn-dim");
    p.knn_dim = 0;
    p.test_fraction = 0.6;
    p.val_fraction = 0.4;
    T_FAILS(mms_synth_params_resolve(&p), MMS_ERR_ARG);
    T_MSG_HAS("--test-fraction");
    p.val_fraction = 0;
    p.min_tags = 5;
    p.max_tags = 4;
    T_FAILS(mms_synth_params_resolve(&p), MMS_ERR_ARG);
    T_MSG_HAS("--max-tags");
    p.max_tags = 8;
    p.p_blend = 1.5;
    T_FAILS(mms_synth_params_resolve(&p), MMS_ERR_ARG);
    T_MSG_HAS("--p-blend");
    p.p_blend = 0.1;
    p.clusters = 1000000;
    p.latent_dim = 4096;
    T_FAILS(mms_synth_params_resolve(&p), MMS_ERR_ARG);
    T_MSG_HAS("model tables");
    /* tiny but valid: one image, one tag, one cluster */
    mms_synth_params_default(&p);
    p.images = 1;
    p.tags = 1;
    p.clusters = 1;
    p.topics = 1;
    p.dim = 1;
    T_OK(mms_synth_params_resolve(&p));
}

/* Rows are pure functions of (params, seed, index). */
static void test_rows(void) {
    mms_synth_params_t p = small_params(11);
    p.images = 300;
    p.tags = 150; /* explicit sizes: the prefix property needs them */
    p.clusters = 12;
    p.topics = 4;
    mms_synth_model_t *m = NULL, *m2 = NULL, *m3 = NULL;
    T_OK(mms_synth_model_create(&p, &m));
    int D = p.dim, D2 = p.knn_dim;
    float *x = calloc(300 * (size_t)D, 4), *k = calloc(300 * (size_t)D2, 4);
    float *y = calloc(300 * (size_t)D, 4), *ky = calloc(300 * (size_t)D2, 4);
    mms_synth_image_t *in = calloc(300, sizeof *in), *in2 = calloc(300, sizeof *in2);
    T_OK(mms_synth_model_rows(m, 0, 300, x, k, in));
    T_OK(mms_synth_model_rows(m, 100, 37, y, ky, in2));
    T_CHECK(!memcmp(x + 100 * D, y, 37 * (size_t)D * 4));
    T_CHECK(!memcmp(k + 100 * D2, ky, 37 * (size_t)D2 * 4));
    T_CHECK(!memcmp(in + 100, in2, 37 * sizeof *in));
    T_FAILS(mms_synth_model_rows(m, 290, 11, y, NULL, NULL), MMS_ERR_ARG);
    /* a longer catalog starts with the shorter one */
    p.images = 600;
    T_OK(mms_synth_model_create(&p, &m2));
    T_OK(mms_synth_model_rows(m2, 0, 300, y, ky, in2));
    T_CHECK(!memcmp(x, y, 300 * (size_t)D * 4));
    T_CHECK(!memcmp(in, in2, 300 * sizeof *in));
    /* the kNN space does not change the features */
    p.images = 300;
    p.knn_dim = 0;
    T_OK(mms_synth_model_create(&p, &m3));
    memset(y, 0, 300 * (size_t)D * 4);
    T_OK(mms_synth_model_rows(m3, 0, 300, y, ky, NULL));
    T_CHECK(!memcmp(x, y, 300 * (size_t)D * 4));
    /* features: finite, non-negative, about half zeros (ReLU) */
    size_t zeros = 0, bad = 0;
    for (size_t i = 0; i < 300 * (size_t)D; i++) {
        bad += !(x[i] >= 0.0f && x[i] < 1e6f);
        zeros += x[i] == 0.0f;
    }
    T_EQ_INT(bad, 0);
    T_CHECK(zeros > 300 * (size_t)D * 3 / 10 && zeros < 300 * (size_t)D * 7 / 10);
    /* tag names: unique and word-like */
    int dups = 0, odd = 0;
    for (int32_t t = 0; t < p.tags; t++) {
        const char *a = mms_synth_model_tag_name(m, t);
        odd += strlen(a) < 4 || strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(a);
        for (int32_t u = 0; u < t; u++) dups += !strcmp(a, mms_synth_model_tag_name(m, u));
    }
    T_EQ_INT(dups, 0);
    T_EQ_INT(odd, 0);
    free(x);
    free(k);
    free(y);
    free(ky);
    free(in);
    free(in2);
    mms_synth_model_destroy(&m);
    mms_synth_model_destroy(&m2);
    mms_synth_model_destroy(&m3);
    mms_synth_model_destroy(&m3); /* NULL: no-op */
}

/* Parse "cluster_<c>", "topic_<k>" out of the catalog's object categories. */
static int category_of(const mms_catalog_t *c, int64_t i, const char *prefix) {
    if (!c->obj_ptr) return -1;
    int found = -1;
    size_t pl = strlen(prefix);
    for (int64_t q = c->obj_ptr[i]; q < c->obj_ptr[i + 1]; q++) {
        const char *name = c->cat_names[c->obj_cat[q]];
        if (!strncmp(name, prefix, pl)) {
            if (found >= 0) return -2; /* twice */
            found = atoi(name + pl);
        }
    }
    return found;
}

static double cosine(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int j = 0; j < d; j++) {
        ab += (double)a[j] * b[j];
        aa += (double)a[j] * a[j];
        bb += (double)b[j] * b[j];
    }
    return aa > 0 && bb > 0 ? ab / __builtin_sqrt(aa * bb) : 0;
}

static int share_tag(const mms_catalog_t *c, int64_t a, int64_t b) {
    for (int64_t i = c->tag_ptr[a]; i < c->tag_ptr[a + 1]; i++)
        for (int64_t j = c->tag_ptr[b]; j < c->tag_ptr[b + 1]; j++)
            if (c->tag_idx[i] == c->tag_idx[j]) return 1;
    return 0;
}

static void check_catalog(const char *dir, const mms_synth_params_t *p0) {
    mms_synth_params_t p = *p0;
    T_OK(mms_synth_params_resolve(&p));
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(dir, &c));
    if (!c) return;
    T_EQ_INT(c->n, p.images);
    T_EQ_INT(c->dim, p.dim);
    T_EQ_INT(c->knn_dim, p.knn_dim);
    T_EQ_INT(c->n_split[0] + c->n_split[1] + c->n_split[2], c->n);
    T_CHECK(c->n_split[MMS_SPLIT_TEST] > c->n / 20 && c->n_split[MMS_SPLIT_TEST] < c->n / 6);
    T_EQ_INT(c->split[0], MMS_SPLIT_TRAIN);
    T_STREQ(c->ids[42], "img00000042");
    T_CHECK(c->ntags <= p.tags && c->ntags > p.tags / 2);
    /* 3-8 distinct tags on every image */
    int64_t outside = 0, hist[9] = {0};
    for (int64_t i = 0; i < c->n; i++) {
        int64_t k = c->tag_ptr[i + 1] - c->tag_ptr[i];
        if (k < 3 || k > 8)
            outside++;
        else
            hist[k]++;
    }
    T_EQ_INT(outside, 0);
    for (int k = 3; k <= 8; k++) T_CHECK(hist[k] > c->n / 12); /* roughly uniform */

    /* Zipf-like: by design rank r = tag index r of the model; frequency falls */
    mms_synth_model_t *m = NULL;
    T_OK(mms_synth_model_create(&p, &m));
    double bucket[4] = {0, 0, 0, 0};
    const int32_t lo[4] = {0, 5, 25, 100}, hi[4] = {5, 25, 100, 200};
    for (int b = 0; b < 4; b++) {
        for (int32_t t = lo[b]; t < hi[b]; t++) {
            int32_t id = mms_catalog_tag_lookup(c, mms_synth_model_tag_name(m, t));
            bucket[b] += id >= 0 ? (double)c->tag_count[id] : 0.0;
        }
        bucket[b] /= hi[b] - lo[b];
    }
    fprintf(stderr,
            "mean tag count by popularity rank: [0,5) %.1f  [5,25) %.1f  [25,100) %.1f  "
            "[100,200) %.1f\n",
            bucket[0], bucket[1], bucket[2], bucket[3]);
    T_CHECK(bucket[0] > 2 * bucket[1] && bucket[1] > 1.3 * bucket[2] && bucket[2] > bucket[3]);
    /* a heavy head: the 10% most frequent tags carry over a third of all uses */
    int64_t *cnt = malloc((size_t)c->ntags * sizeof *cnt), total = 0, head = 0;
    memcpy(cnt, c->tag_count, (size_t)c->ntags * sizeof *cnt);
    for (int32_t i = 0; i < c->ntags; i++) total += cnt[i];
    for (int32_t r = 0; r < c->ntags / 10; r++) { /* selection of the top 10% */
        int32_t best = r;
        for (int32_t j = r + 1; j < c->ntags; j++)
            if (cnt[j] > cnt[best]) best = j;
        int64_t tmp = cnt[r];
        cnt[r] = cnt[best];
        cnt[best] = tmp;
        head += cnt[r];
    }
    T_CHECK(head * 3 > total);
    free(cnt);
    mms_synth_model_destroy(&m);

    /* ground truth: one cluster and one topic per image, as the model says */
    int *cl = malloc((size_t)c->n * sizeof *cl), *tp = malloc((size_t)c->n * sizeof *tp);
    int64_t bad = 0;
    for (int64_t i = 0; i < c->n; i++) {
        cl[i] = category_of(c, i, "cluster_");
        tp[i] = category_of(c, i, "topic_");
        bad += cl[i] < 0 || cl[i] >= p.clusters || tp[i] < 0 || tp[i] >= p.topics;
    }
    T_EQ_INT(bad, 0);

    /* clusters recoverable: nearest centroid (built from train rows, cosine)
     * on the test rows, and 1-NN over all rows for 300 queries */
    int C = p.clusters, D = c->dim;
    double *cen = calloc((size_t)C * D, sizeof *cen);
    float *cenf = calloc((size_t)C * D, sizeof *cenf);
    for (int64_t i = 0; i < c->n; i++) {
        if (c->split[i] != MMS_SPLIT_TRAIN) continue;
        const float *r = c->x + (size_t)i * D;
        double n2 = 0;
        for (int j = 0; j < D; j++) n2 += (double)r[j] * r[j];
        for (int j = 0; j < D; j++) cen[(size_t)cl[i] * D + j] += r[j] / __builtin_sqrt(n2);
    }
    for (size_t j = 0; j < (size_t)C * D; j++) cenf[j] = (float)cen[j];
    int64_t right = 0, tested = 0;
    for (int64_t i = 0; i < c->n; i++) {
        if (c->split[i] != MMS_SPLIT_TEST) continue;
        int best = -1;
        double bv = -2;
        for (int k = 0; k < C; k++) {
            double v = cosine(c->x + (size_t)i * D, cenf + (size_t)k * D, D);
            if (v > bv) bv = v, best = k;
        }
        right += best == cl[i];
        tested++;
    }
    double acc_centroid = (double)right / (double)tested;
    int64_t nn_right = 0, nn_same_topic = 0, knn_right = 0;
    for (int64_t qi = 0; qi < 300; qi++) {
        int64_t q = (qi * 997) % c->n, best = -1, kbest = -1;
        double bv = -2, kbv = -2;
        for (int64_t j = 0; j < c->n; j++) {
            if (j == q) continue;
            double v = cosine(c->x + (size_t)q * D, c->x + (size_t)j * D, D);
            if (v > bv) bv = v, best = j;
            double kv = cosine(c->knn_x + (size_t)q * c->knn_dim, c->knn_x + (size_t)j * c->knn_dim,
                               c->knn_dim);
            if (kv > kbv) kbv = kv, kbest = j;
        }
        nn_right += cl[best] == cl[q];
        nn_same_topic += tp[best] == tp[q];
        knn_right += cl[kbest] == cl[q];
    }
    fprintf(stderr,
            "clusters (chance %.3f): nearest centroid %.3f, 1-NN features %.3f, 1-NN kNN "
            "features %.3f; 1-NN same topic %.3f\n",
            1.0 / C, acc_centroid, nn_right / 300.0, knn_right / 300.0, nn_same_topic / 300.0);
    T_CHECK(acc_centroid > 0.6);
    T_CHECK(nn_right > 150);
    T_CHECK(knn_right >= nn_right - 10); /* the "better network" is not worse */
    /* imperfect: some confusions (a realistic kNN graph) */
    T_CHECK(nn_right < 300 || acc_centroid < 0.999);
    free(cen);
    free(cenf);

    /* topics follow clusters only partly: share of images on their cluster's
     * modal topic is near p_primary (plus chance) */
    int *votes = calloc((size_t)C * p.topics, sizeof *votes);
    for (int64_t i = 0; i < c->n; i++) votes[(size_t)cl[i] * p.topics + tp[i]]++;
    int64_t modal = 0;
    for (int k = 0; k < C; k++) {
        int best = 0;
        for (int t = 0; t < p.topics; t++)
            if (votes[(size_t)k * p.topics + t] > best) best = votes[(size_t)k * p.topics + t];
        modal += best;
    }
    double fmodal = (double)modal / (double)c->n;
    /* tags follow topics: pairs on the same topic share a tag far more often */
    int64_t same = 0, same_share = 0, diff = 0, diff_share = 0;
    for (int64_t r = 0; r < 40000; r++) {
        int64_t a = (r * 7919) % c->n, b = (r * 104729 + 17) % c->n;
        if (a == b) continue;
        if (tp[a] == tp[b]) {
            same++;
            same_share += share_tag(c, a, b);
        } else {
            diff++;
            diff_share += share_tag(c, a, b);
        }
    }
    double ps = (double)same_share / (double)same, pd = (double)diff_share / (double)diff;
    fprintf(stderr,
            "images on their cluster's modal topic %.3f; share a tag: same topic %.3f, "
            "other topic %.3f\n",
            fmodal, ps, pd);
    T_CHECK(fmodal > 0.65 && fmodal < 0.9);
    T_CHECK(ps > 1.5 * pd);
    free(votes);
    free(cl);
    free(tp);
    mms_catalog_close(&c);
}

static void test_catalog(void) {
    const char *tmp = mms_test_tmpdir("synth");
    char a[MMS_PATH_MAX], b[MMS_PATH_MAX], d[MMS_PATH_MAX];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    snprintf(d, sizeof d, "%s/d", tmp);
    mms_synth_params_t p = small_params(7);
    T_OK(mms_synth_generate(&p, a, 0));
    p.chunk_rows = 7; /* other chunking, same bytes */
    T_OK(mms_synth_generate(&p, b, 0));
    uint64_t sa[NFILES], sb[NFILES], sd[NFILES];
    checksums(a, sa);
    checksums(b, sb);
    for (int i = 0; i < NFILES; i++) {
        if (sa[i] != sb[i]) fprintf(stderr, "%s differs between runs\n", k_files[i]);
        T_CHECK(sa[i] == sb[i]);
    }
    /* another seed: other features, tags and truth */
    mms_synth_params_t p2 = small_params(8);
    T_OK(mms_synth_generate(&p2, d, 0));
    checksums(d, sd);
    for (int i = 0; i < 4; i++) T_CHECK(sa[i] != sd[i]);
    /* an existing output is refused without force, replaced with it */
    T_FAILS(mms_synth_generate(&p2, a, 0), MMS_ERR_EXISTS);
    T_OK(mms_synth_generate(&p2, a, 1));
    checksums(a, sa);
    T_CHECK(sa[0] == sd[0]);
    /* a bad parameter leaves nothing behind */
    char e[MMS_PATH_MAX];
    snprintf(e, sizeof e, "%s/e", tmp);
    p2.dim = 0;
    T_FAILS(mms_synth_generate(&p2, e, 0), MMS_ERR_ARG);
    T_CHECK(!mms_path_exists(e));
    check_catalog(b, &p);
    mms_rm_rf(tmp);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_WARN);
    test_params();
    test_rows();
    test_catalog();
    return mms_test_finish("test_synth");
}
