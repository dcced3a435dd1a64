/* test_baselines.c: the expansion baselines of eval/judge.h (vote-expansion,
 * ppr, fused; issue 15 item 2) on a hand-made catalog, against a dense
 * reference written here from their definitions: the debiased vote vector
 * and its cosine with each training row's tag vector; personalised PageRank
 * by power iteration on the dense image-tag transition matrix; the convex
 * combination with the raw-visual cosine. Also: alpha 1 ranks the restart
 * (the visual neighbours by cosine), w 1 is raw-visual over the whole
 * gallery, w 0 is vote-expansion; val and test rows and the query itself are
 * never results; bad settings are refused; mms_eval_add_baselines records
 * the three methods. With $MMS_SHARED_DATA, on Corel5k's val split
 * (--val-fraction 0.1) vote-expansion and fused beat raw-visual. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_mulan.h"
#include "judge.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_test.h"

typedef struct {
    const char *id;
    int split;
    const char *tags; /* "a|b" or "" */
    float x[2];
} spec_t;

static mms_catalog_t *make_catalog(const char *dir, const spec_t *rows, int n) {
    mms_catalog_writer_t *w = NULL;
    T_OK(mms_catalog_writer_open(dir, 1, 2, 0, "test_baselines", &w));
    for (int i = 0; i < n; i++) {
        char tb[256];
        char *tags[16];
        int nt = 0;
        snprintf(tb, sizeof tb, "%s", rows[i].tags);
        for (char *p = tb[0] ? tb : NULL; p && nt < 16;) {
            tags[nt++] = p;
            p = strchr(p, '|');
            if (p) *p++ = '\0';
        }
        mms_catalog_row_t r = {0};
        r.id = rows[i].id;
        r.split = rows[i].split;
        r.tags = (const char *const *)tags;
        r.ntags = nt;
        r.features = rows[i].x;
        T_OK(mms_catalog_writer_add(w, &r));
    }
    T_OK(mms_catalog_writer_finish(&w));
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(dir, &c));
    return c;
}

static int has_tag(const mms_catalog_t *c, int64_t r, int32_t t) {
    for (int64_t e = c->tag_ptr[r]; e < c->tag_ptr[r + 1]; e++)
        if (c->tag_idx[e] == t) return 1;
    return 0;
}

static double cosine(const mms_catalog_t *c, int64_t a, int64_t b) {
    const float *x = c->x + a * c->dim, *y = c->x + b * c->dim;
    double d = 0, na = 0, nb = 0;
    for (int i = 0; i < c->dim; i++) {
        d += (double)x[i] * y[i];
        na += (double)x[i] * x[i];
        nb += (double)y[i] * y[i];
    }
    return na > 0 && nb > 0 ? d / sqrt(na * nb) : 0;
}

/* The query's k nearest training rows by cosine (ties by lower row). */
static int neighbours(const mms_catalog_t *c, int64_t q, int k, int64_t *nb, double *sim) {
    int n = 0;
    for (int64_t r = 0; r < c->n; r++) {
        if (c->split[r] != MMS_SPLIT_TRAIN || r == q) continue;
        double s = cosine(c, q, r);
        int at = n < k ? n : k;
        while (at > 0 && sim[at - 1] < s)
            at--;
        if (at >= k) continue;
        for (int j = (n < k ? n : k - 1); j > at; j--) {
            nb[j] = nb[j - 1];
            sim[j] = sim[j - 1];
        }
        nb[at] = r;
        sim[at] = s;
        if (n < k) n++;
    }
    return n;
}

/* Reference scores of every catalog row (NAN: not in the gallery). */
static void reference(const mms_catalog_t *c, int64_t q, mms_expand_kind kind,
                      const mms_expand_params_t *p, double *score) {
    int64_t nb[64];
    double sim[64];
    int n = neighbours(c, q, p->k, nb, sim);
    double v[64] = {0}, freq[64] = {0}, nv = 0;
    for (int64_t r = 0; r < c->n; r++)
        for (int32_t t = 0; t < c->ntags; t++)
            freq[t] += c->split[r] == MMS_SPLIT_TRAIN && has_tag(c, r, t);
    for (int i = 0; i < n; i++)
        for (int32_t t = 0; t < c->ntags; t++)
            v[t] += has_tag(c, nb[i], t) ? sim[i] : 0;
    for (int32_t t = 0; t < c->ntags; t++) {
        v[t] /= sqrt(freq[t] > 0 ? freq[t] : 1);
        nv += v[t] * v[t];
    }
    nv = sqrt(nv);
    for (int64_t r = 0; r < c->n; r++) {
        score[r] = NAN;
        if (c->split[r] != MMS_SPLIT_TRAIN || r == q) continue;
        double dot = 0, deg = 0;
        for (int32_t t = 0; t < c->ntags; t++)
            if (has_tag(c, r, t)) dot += v[t], deg++;
        double e = deg > 0 && nv > 0 ? dot / (nv * sqrt(deg)) : 0;
        score[r] = kind == MMS_EXPAND_FUSED ? p->w * cosine(c, q, r) + (1 - p->w) * e : e;
    }
    if (kind != MMS_EXPAND_PPR) return;
    /* dense PPR: nodes = catalog rows (only training rows used) then tags */
    int N = (int)c->n + c->ntags;
    double *P = calloc((size_t)N * N, sizeof *P), *r = calloc((size_t)N, sizeof *r),
           *x = calloc((size_t)N, sizeof *x), *y = calloc((size_t)N, sizeof *y);
    double tot = 0;
    for (int i = 0; i < n; i++)
        tot += sim[i] > 0 ? sim[i] : 0;
    for (int i = 0; i < n; i++)
        r[nb[i]] = tot > 0 ? (sim[i] > 0 ? sim[i] : 0) / tot : 1.0 / n;
    for (int64_t a = 0; a < c->n; a++) { /* P[to * N + from] */
        if (c->split[a] != MMS_SPLIT_TRAIN) continue;
        int deg = 0;
        for (int32_t t = 0; t < c->ntags; t++)
            deg += has_tag(c, a, t);
        for (int32_t t = 0; t < c->ntags; t++)
            if (has_tag(c, a, t)) {
                P[(size_t)(c->n + t) * N + a] = 1.0 / deg;
                P[(size_t)a * N + (c->n + t)] = 1.0 / freq[t];
            }
    }
    memcpy(x, r, (size_t)N * sizeof *x);
    for (int it = 0; it < p->iters; it++) {
        double kept = 0;
        for (int i = 0; i < N; i++) {
            y[i] = 0;
            for (int j = 0; j < N; j++)
                y[i] += P[(size_t)i * N + j] * x[j];
            kept += y[i];
        }
        double dangling = 1.0 - kept; /* mass that had nowhere to go */
        for (int i = 0; i < N; i++)
            x[i] = p->alpha * r[i] + (1 - p->alpha) * (y[i] + dangling * r[i]);
    }
    for (int64_t a = 0; a < c->n; a++)
        if (!isnan(score[a])) score[a] = x[a];
    free(P);
    free(r);
    free(x);
    free(y);
}

/* rows/scores (kout) are the top kout of the reference scores of q. */
static void check_against_reference(const mms_catalog_t *c, int64_t q, mms_expand_kind kind,
                                    const mms_expand_params_t *p, const int64_t *rows,
                                    const float *scores, int kout, int line) {
    double ref[64];
    reference(c, q, kind, p, ref);
    int bad = 0, n = 0;
    for (int t = 0; t < kout; t++) {
        if (rows[t] < 0) break;
        n++;
        int64_t r = rows[t];
        if (r >= c->n || c->split[r] != MMS_SPLIT_TRAIN || r == q) {
            bad++;
            continue;
        }
        if (fabs(ref[r] - (double)scores[t]) > 1e-5) bad++;
        if (t > 0 && scores[t] > scores[t - 1]) bad++;
        for (int u = 0; u < t; u++)
            bad += rows[u] == r;
    }
    /* nothing left out scores above the last kept one; the list is full */
    int gallery = 0;
    for (int64_t r = 0; r < c->n; r++) {
        if (isnan(ref[r])) continue;
        gallery++;
        int in = 0;
        for (int t = 0; t < n; t++)
            in |= rows[t] == r;
        if (!in && n > 0 && ref[r] > (double)scores[n - 1] + 1e-7) bad++;
    }
    if (n != (gallery < kout ? gallery : kout)) bad++;
    if (bad) fprintf(stderr, "  (kind %d, query %lld, line %d)\n", (int)kind, (long long)q, line);
    T_EQ_INT(bad, 0);
}

static const spec_t k_rows[] = {
    {"t0", MMS_SPLIT_TRAIN, "a|b", {1, 0}},      {"t1", MMS_SPLIT_TRAIN, "a", {0.9f, 0.1f}},
    {"t2", MMS_SPLIT_TRAIN, "c", {0, 1}},        {"t3", MMS_SPLIT_TRAIN, "c|d", {0.1f, 1}},
    {"t4", MMS_SPLIT_TRAIN, "b|c", {0.7f, 0.7f}}, {"t5", MMS_SPLIT_TRAIN, "a|b", {-1, 0}},
    {"t6", MMS_SPLIT_TRAIN, "", {0, -1}},        {"v0", MMS_SPLIT_VAL, "a|b", {1, 0.05f}},
    {"q0", MMS_SPLIT_TEST, "a|b", {1, 0.02f}},   {"q1", MMS_SPLIT_TEST, "c", {0, 0}},
    {"q2", MMS_SPLIT_TEST, "d", {0.3f, 1}},      {"t7", MMS_SPLIT_TRAIN, "d|e", {0.2f, 0.9f}},
    {"q3", MMS_SPLIT_TEST, "", {0.1f, -1}}, /* near t6, which has no tags: PPR's dangling mass */
};

static void test_small(const char *dir) {
    mms_catalog_t *c = make_catalog(dir, k_rows, (int)(sizeof k_rows / sizeof k_rows[0]));
    if (!c) return;
    int64_t q[6] = {mms_catalog_id_lookup(c, "q0"), mms_catalog_id_lookup(c, "q1"),
                    mms_catalog_id_lookup(c, "q2"), mms_catalog_id_lookup(c, "t0"),
                    mms_catalog_id_lookup(c, "v0"), mms_catalog_id_lookup(c, "q3")};
    enum { KOUT = 6 };
    int64_t rows[6 * KOUT];
    float sc[6 * KOUT];
    const mms_expand_kind kinds[3] = {MMS_EXPAND_VOTE, MMS_EXPAND_PPR, MMS_EXPAND_FUSED};
    const int ks[3] = {1, 2, 4};
    const double alphas[3] = {0.15, 0.5, 0.9}, ws[3] = {0.2, 0.5, 0.8};
    for (int kk = 0; kk < 3; kk++)
        for (int a = 0; a < 3; a++)
            for (int kind = 0; kind < 3; kind++) {
                mms_expand_params_t p;
                mms_expand_params_default(&p);
                p.k = ks[kk];
                p.alpha = alphas[a];
                p.w = ws[a];
                p.iters = 7;
                T_OK(mms_baseline_expand(c, q, 6, kinds[kind], &p, KOUT, rows, sc));
                for (int i = 0; i < 6; i++)
                    check_against_reference(c, q[i], kinds[kind], &p, rows + i * KOUT,
                                            sc + i * KOUT, KOUT, __LINE__);
            }
    /* the whole gallery asked for: 8 training rows (7 for the training query), then padding */
    mms_expand_params_t p;
    mms_expand_params_default(&p);
    p.k = 3;
    int64_t all[5 * 10];
    float alls[5 * 10];
    T_OK(mms_baseline_expand(c, q, 5, MMS_EXPAND_VOTE, &p, 10, all, alls));
    T_EQ_INT(all[8], -1);
    T_CHECK(all[7] >= 0);
    T_EQ_INT(all[3 * 10 + 7], -1); /* t0 queries: itself excluded */
    for (int i = 0; i < 5 * 10; i++)
        if (all[i] >= 0) T_EQ_INT(c->split[all[i]], MMS_SPLIT_TRAIN);
    /* hand-checked: q0's neighbours t0, t1 vote a and b; t0 and t5 (a|b) tie at
     * the top, lower row first; rows sharing no voted tag (t2, t3, t6 without
     * tags, t7) score 0 and come last by row */
    p.k = 2;
    T_OK(mms_baseline_expand(c, q, 1, MMS_EXPAND_VOTE, &p, 10, all, alls));
    T_EQ_INT(all[0], mms_catalog_id_lookup(c, "t0"));
    T_EQ_INT(all[1], mms_catalog_id_lookup(c, "t5"));
    T_NEAR(alls[0], alls[1], 0);
    T_NEAR(alls[7], 0, 0);
    T_EQ_INT(all[6], mms_catalog_id_lookup(c, "t6"));
    T_EQ_INT(all[7], mms_catalog_id_lookup(c, "t7"));
    T_NEAR(alls[4], 0, 0);
    /* alpha 1: PPR is the restart, the neighbours by cosine first */
    p.k = 3;
    p.alpha = 1;
    T_OK(mms_baseline_expand(c, q, 3, MMS_EXPAND_PPR, &p, KOUT, rows, sc));
    int64_t vr[3 * 3];
    float vs[3 * 3];
    T_OK(mms_baseline_visual(c, 1, q, 3, 3, vr, vs));
    for (int i = 0; i < 3; i++)
        if (i != 1) /* q1 is all-zero: equal shares, any order of equals */
            for (int t = 0; t < 3; t++)
                T_EQ_INT(rows[i * KOUT + t], vr[i * 3 + t]);
    /* w 1: raw-visual over the whole gallery; w 0: vote-expansion */
    p.w = 1;
    T_OK(mms_baseline_expand(c, q, 5, MMS_EXPAND_FUSED, &p, KOUT, rows, sc));
    int64_t vr6[5 * KOUT];
    float vs6[5 * KOUT];
    T_OK(mms_baseline_visual(c, 1, q, 5, KOUT, vr6, vs6));
    for (int i = 0; i < 5 * KOUT; i++) {
        if (i / KOUT == 1) continue; /* q1: every cosine 0 */
        T_EQ_INT(rows[i], vr6[i]);
        T_NEAR(sc[i], vs6[i], 1e-6);
    }
    p.w = 0;
    T_OK(mms_baseline_expand(c, q, 5, MMS_EXPAND_FUSED, &p, KOUT, rows, sc));
    T_OK(mms_baseline_expand(c, q, 5, MMS_EXPAND_VOTE, &p, KOUT, vr6, vs6));
    for (int i = 0; i < 5 * KOUT; i++) {
        T_EQ_INT(rows[i], vr6[i]);
        T_NEAR(sc[i], vs6[i], 1e-7);
    }
    /* from given neighbours (the GNN's, in eval): with the raw-visual ones it
     * is vote-expansion itself; -1 entries vote nothing; a neighbour that is
     * not a training row is refused */
    {
        mms_expand_params_t pf;
        mms_expand_params_default(&pf);
        pf.k = 3;
        int64_t nb[5 * 4], fr[5 * KOUT], er[5 * KOUT];
        float ns[5 * 4], fs[5 * KOUT], es[5 * KOUT];
        T_OK(mms_baseline_visual(c, 1, q, 5, 4, nb, ns));
        T_OK(mms_baseline_expand_from(c, q, 5, MMS_EXPAND_VOTE, &pf, nb, ns, 4, KOUT, fr, fs));
        T_OK(mms_baseline_expand(c, q, 5, MMS_EXPAND_VOTE, &pf, KOUT, er, es));
        for (int i = 0; i < 5 * KOUT; i++) {
            T_EQ_INT(fr[i], er[i]);
            T_NEAR(fs[i], es[i], 1e-7);
        }
        for (int i = 0; i < 5; i++) nb[i * 4 + 2] = -1; /* the third neighbour absent */
        pf.k = 2;
        T_OK(mms_baseline_expand(c, q, 5, MMS_EXPAND_VOTE, &pf, KOUT, er, es));
        pf.k = 3;
        T_OK(mms_baseline_expand_from(c, q, 5, MMS_EXPAND_VOTE, &pf, nb, ns, 4, KOUT, fr, fs));
        for (int i = 0; i < 5 * KOUT; i++) T_EQ_INT(fr[i], er[i]);
        nb[0] = q[0]; /* a test row as a neighbour */
        T_FAILS(mms_baseline_expand_from(c, q, 1, MMS_EXPAND_VOTE, &pf, nb, ns, 4, KOUT, fr, fs), MMS_ERR_ARG);
        T_MSG_HAS("not a training row");
        pf.k = 5;
        T_FAILS(mms_baseline_expand_from(c, q, 1, MMS_EXPAND_VOTE, &pf, nb, ns, 4, KOUT, fr, fs), MMS_ERR_ARG);
    }
    /* bad settings */
    mms_expand_params_default(&p);
    p.k = 0;
    T_FAILS(mms_baseline_expand(c, q, 1, MMS_EXPAND_VOTE, &p, KOUT, rows, sc), MMS_ERR_ARG);
    T_MSG_HAS("--baseline-k");
    mms_expand_params_default(&p);
    p.alpha = 0;
    T_FAILS(mms_baseline_expand(c, q, 1, MMS_EXPAND_PPR, &p, KOUT, rows, sc), MMS_ERR_ARG);
    T_MSG_HAS("--ppr-alpha");
    mms_expand_params_default(&p);
    p.w = 1.5;
    T_FAILS(mms_baseline_expand(c, q, 1, MMS_EXPAND_FUSED, &p, KOUT, rows, sc), MMS_ERR_ARG);
    T_MSG_HAS("--fuse-weight");
    /* recorded by the accumulator under their names, with the given settings */
    mms_judge_t *j = NULL;
    mms_eval_t *e = NULL;
    T_OK(mms_judge_create(c, &j));
    T_OK(mms_eval_create(c, j, "small", &e));
    mms_expand_params_default(&p);
    p.k = 2;
    T_OK(mms_eval_add_baselines_ex(e, q, 3, MMS_BASELINE_ALL, 5, 1, &p));
    const char *names[] = {"raw-visual", "vote-expansion", "ppr", "fused"};
    for (int i = 0; i < 4; i++) {
        int m = mms_eval_find_method(e, names[i]);
        T_CHECK(m >= 0);
        if (m >= 0) T_EQ_INT(mms_eval_queries(e, m), 3);
    }
    int m = mms_eval_find_method(e, "vote-expansion");
    if (m >= 0) {
        mms_eval_query_t r;
        mms_eval_query(e, m, 0, &r);
        T_EQ_INT(r.rows[0], mms_catalog_id_lookup(c, "t0"));
    }
    mms_eval_destroy(&e);
    mms_judge_destroy(&j);
    mms_catalog_close(&c);
}

/* Corel5k val split: the expansion beats raw features (the sweep of
 * docs/results.md at the defaults). */
static void test_corel5k(const char *dir) {
    const char *tr = mms_test_shared("corel5k/Corel5k-train-sparse.arff");
    if (!tr) {
        fprintf(stderr, "test_baselines: $MMS_SHARED_DATA/corel5k absent, Corel5k case "
                        "skipped\n");
        return;
    }
    char train[MMS_PATH_MAX], test[MMS_PATH_MAX], xml[MMS_PATH_MAX], out[MMS_PATH_MAX];
    snprintf(train, sizeof train, "%s", tr);
    snprintf(test, sizeof test, "%s", mms_test_shared("corel5k/Corel5k-test-sparse.arff"));
    snprintf(xml, sizeof xml, "%s", mms_test_shared("corel5k/Corel5k.xml"));
    snprintf(out, sizeof out, "%s/corel5k", dir);
    mms_mulan_import_opts_t o = {train, test, xml, out, 1, 0.1};
    T_OK(mms_import_mulan_run(&o, NULL));
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(out, &c));
    if (!c) return;
    mms_judge_t *j = NULL;
    mms_eval_t *e = NULL;
    T_OK(mms_judge_create(c, &j));
    T_OK(mms_eval_create(c, j, "corel5k", &e));
    T_OK(mms_eval_set_split(e, MMS_SPLIT_VAL));
    int64_t *q = malloc((size_t)c->n * sizeof *q), nq = 0;
    for (int64_t r = 0; r < c->n; r++)
        if (c->split[r] == MMS_SPLIT_VAL) q[nq++] = r;
    T_OK(mms_eval_add_baselines(e, q, nq, MMS_BASELINE_VISUAL | MMS_BASELINE_EXPAND |
                                              MMS_BASELINE_PPR | MMS_BASELINE_FUSED,
                                5, 1));
    double nd[4];
    const char *names[] = {"raw-visual", "vote-expansion", "ppr", "fused"};
    for (int i = 0; i < 4; i++) {
        mms_eval_summary_t s;
        T_OK(mms_eval_summarize(e, mms_eval_find_method(e, names[i]), &s));
        nd[i] = s.ndcg_excellent[1];
    }
    fprintf(stderr, "test_baselines: Corel5k val (%lld queries) nDCG@5 raw-visual %.4f, "
                    "vote-expansion %.4f, ppr %.4f, fused %.4f\n",
            (long long)nq, nd[0], nd[1], nd[2], nd[3]);
    T_CHECK(nd[1] > nd[0] + 0.02);
    T_CHECK(nd[3] > nd[0] + 0.02);
    T_CHECK(nd[2] > nd[0]);
    free(q);
    mms_eval_destroy(&e);
    mms_judge_destroy(&j);
    mms_catalog_close(&c);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    char dir[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", mms_test_tmpdir("baselines"));
    char cat[MMS_PATH_MAX + 8];
    snprintf(cat, sizeof cat, "%s/cat", dir);
    test_small(cat);
    test_corel5k(dir);
    mms_rm_rf(dir);
    return mms_test_finish("test_baselines");
}
