/* test_judge.c: the three judges on hand-made catalogs with known grades, nDCG
 * on both ideals against hand-computed values, the annotation protocol (P, R,
 * N+ with a never-predicted word), kNN tag voting tie-breaks, the visual,
 * random and oracle baselines, and the accumulator's input checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_coco.h"
#include "judge.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_test.h"

/* ---------------------------------------------------------------- catalogs */

typedef struct {
    const char *id;
    int split;
    const char *tags;    /* "a|b|c" or "" */
    const char *objects; /* "person:1,dog:2" or "" */
    const char *caps[4];
    float x[2];
} spec_t;

/* Split s at sep into out (pointers into buf); returns the count. */
static int split_list(const char *s, char sep, char *buf, size_t cap, char **out, int maxn) {
    snprintf(buf, cap, "%s", s);
    int n = 0;
    if (!buf[0]) return 0;
    for (char *p = buf; p && n < maxn;) {
        out[n++] = p;
        p = strchr(p, sep);
        if (p) *p++ = '\0';
    }
    return n;
}

static mms_catalog_t *make_catalog(const char *name, const spec_t *rows, int n) {
    char dir[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/cat", mms_test_tmpdir(name));
    mms_catalog_writer_t *w = NULL;
    T_OK(mms_catalog_writer_open(dir, 1, 2, 0, "test_judge", &w));
    for (int i = 0; i < n; i++) {
        char tb[512], ob[512], path[64];
        char *tags[32], *objs[32];
        const char *onames[32];
        int ocnt[32];
        int nt = split_list(rows[i].tags, '|', tb, sizeof tb, tags, 32);
        int no = split_list(rows[i].objects, ',', ob, sizeof ob, objs, 32);
        for (int k = 0; k < no; k++) {
            char *colon = strchr(objs[k], ':');
            *colon = '\0';
            onames[k] = objs[k];
            ocnt[k] = atoi(colon + 1);
        }
        int nc = 0;
        while (nc < 4 && rows[i].caps[nc])
            nc++;
        snprintf(path, sizeof path, "/nonexistent/%s.jpg", rows[i].id);
        mms_catalog_row_t r = {0};
        r.id = rows[i].id;
        r.split = rows[i].split;
        r.tags = (const char *const *)tags;
        r.ntags = nt;
        r.features = rows[i].x;
        r.obj_names = onames;
        r.obj_counts = ocnt;
        r.nobj = no;
        r.captions = rows[i].caps;
        r.ncaptions = nc;
        r.path = path;
        T_OK(mms_catalog_writer_add(w, &r));
    }
    T_OK(mms_catalog_writer_finish(&w));
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(dir, &c));
    return c;
}

static int64_t row_of(const mms_catalog_t *c, const char *id) {
    int64_t r = mms_catalog_id_lookup(c, id);
    if (r < 0) fprintf(stderr, "no id %s\n", id);
    return r;
}

#define GRADE(j, c, q, r) mms_judge_grade((j), row_of((c), (q)), row_of((c), (r)))

/* ---------------------------------------------------------------- coco */

static void test_coco(void) {
    /* q: one person, two dogs; caption concepts (>= 2 captions): dogs, man, park
     * ("walks", "two", "person" appear in one caption only). */
    const spec_t rows[] = {
        {"q",
         MMS_SPLIT_TEST,
         "dog|person",
         "person:1,dog:2",
         {"A man walks his dogs in the park", "Person with two dogs at the park", "a man and dogs",
          NULL},
         {1, 0}},
        /* all three: same categories, single person, multiple dogs */
        {"r1", MMS_SPLIT_TRAIN, "dog|person", "person:1,dog:3", {NULL}, {1, 0}},
        /* (a) (b), not (c): one dog against two */
        {"r2", MMS_SPLIT_TRAIN, "dog|person", "person:1,dog:1", {NULL}, {1, 1}},
        /* (a) only: dog missing, two persons against one */
        {"r3", MMS_SPLIT_TRAIN, "person", "person:2", {NULL}, {0, 1}},
        /* (a) (c), not (b): dog missing, the shared person is single in both */
        {"r4", MMS_SPLIT_TRAIN, "cat|person", "person:1,cat:1", {NULL}, {1, 2}},
        /* caption concepts shared (man, park) but no object in common: Unacceptable */
        {"r5",
         MMS_SPLIT_TRAIN,
         "cat",
         "cat:1",
         {"a man in the park with a cat", "man sitting in a park", NULL},
         {2, 1}},
        {"r6", MMS_SPLIT_TRAIN, "frisbee", "frisbee:1", {"dogs", NULL}, {0, 0}},
        /* a query without objects: nothing in common with anything */
        {"q0",
         MMS_SPLIT_TEST,
         "",
         "",
         {"a man and dogs in the park", "man with dogs in a park", NULL},
         {1, 0}},
        /* multiple instances on both sides of a shared category: (c) holds */
        {"q2", MMS_SPLIT_TEST, "dog", "dog:4", {NULL}, {1, 0}},
    };
    mms_catalog_t *c = make_catalog("judge-coco", rows, (int)(sizeof rows / sizeof rows[0]));
    mms_judge_t *j = NULL;
    T_OK(mms_judge_create(c, &j));
    T_EQ_INT(mms_judge_kind_of(j), MMS_JUDGE_COCO);
    T_EQ_INT(GRADE(j, c, "q", "r1"), MMS_GRADE_EXCELLENT);
    T_EQ_INT(GRADE(j, c, "q", "r2"), MMS_GRADE_GOOD);
    T_EQ_INT(GRADE(j, c, "q", "r3"), MMS_GRADE_ACCEPTABLE);
    T_EQ_INT(GRADE(j, c, "q", "r4"), MMS_GRADE_GOOD);
    T_EQ_INT(GRADE(j, c, "q", "r5"), MMS_GRADE_UNACCEPTABLE);
    T_EQ_INT(GRADE(j, c, "q", "r6"), MMS_GRADE_UNACCEPTABLE);
    for (int k = 1; k <= 6; k++) {
        char id[8];
        snprintf(id, sizeof id, "r%d", k);
        T_EQ_INT(GRADE(j, c, "q0", id), MMS_GRADE_UNACCEPTABLE);
    }
    /* q2 (dog x4): r1 dog x3 -> all three; r2 dog x1 -> (a) (b) */
    T_EQ_INT(GRADE(j, c, "q2", "r1"), MMS_GRADE_EXCELLENT);
    T_EQ_INT(GRADE(j, c, "q2", "r2"), MMS_GRADE_GOOD);
    /* concepts: categories then caption words used in >= 2 captions */
    const char *names[16];
    int n = mms_judge_concepts(j, row_of(c, "q"), names, 16);
    int has_dogs = 0, has_man = 0, has_park = 0, has_walks = 0, has_two = 0, has_dog = 0;
    for (int k = 0; k < n && k < 16; k++) {
        has_dogs |= !strcmp(names[k], "dogs");
        has_man |= !strcmp(names[k], "man");
        has_park |= !strcmp(names[k], "park");
        has_walks |= !strcmp(names[k], "walks");
        has_two |= !strcmp(names[k], "two");
        has_dog |= !strcmp(names[k], "dog");
    }
    T_EQ_INT(n, 5); /* dog, person, dogs, man, park */
    T_CHECK(has_dogs && has_man && has_park && has_dog);
    T_CHECK(!has_walks && !has_two);
    /* r6's "dogs" is in one caption only: not a concept */
    T_EQ_INT(mms_judge_concepts(j, row_of(c, "r6"), names, 16), 1);
    /* gallery of q: r1 3, r2 2, r3 1, r4 2, r5 0, r6 0 */
    int64_t counts[4];
    T_OK(mms_judge_gallery_counts(j, row_of(c, "q"), counts));
    T_EQ_INT(counts[0], 2);
    T_EQ_INT(counts[1], 1);
    T_EQ_INT(counts[2], 2);
    T_EQ_INT(counts[3], 1);
    /* a training row as query: itself is not in its gallery (r1 vs r2 Good:
     * dog 3 vs 1; r3: person x1 vs x2, dog missing: Acceptable; r4: Good) */
    T_OK(mms_judge_gallery_counts(j, row_of(c, "r1"), counts));
    T_EQ_INT(counts[0] + counts[1] + counts[2] + counts[3], 5);
    T_EQ_INT(counts[3], 0);
    T_EQ_INT(counts[2], 2);
    T_EQ_INT(counts[1], 1);

    /* nDCG on hand-computed numbers: results r3 r1 r5 r2 r4 -> grades 1 3 0 2 2
     * DCG@3 = 1 + 7/log2(3) + 0                            = 5.41650828
     * DCG@5 = DCG@3 + 3/log2(5) + 3/log2(6)                = 7.86909637
     * all-Excellent ideal: @3 14.91650828, @5 20.63921383
     * gallery (3 2 2 1 0): @3 7 + 3/log2(3) + 3/2 = 10.39278926, @5 10.82346582
     * nDCG: all-Excellent 0.36312173 / 0.38126919, gallery 0.52117946 / 0.72704035 */
    int g[5] = {1, 3, 0, 2, 2};
    T_NEAR(mms_dcg(g, 3), 5.41650828, 1e-7);
    T_NEAR(mms_dcg(g, 5), 7.86909637, 1e-7);
    T_NEAR(mms_dcg_ideal_excellent(5), 20.63921383, 1e-7);
    int64_t gal[4] = {2, 1, 2, 1};
    T_NEAR(mms_dcg_ideal_gallery(gal, 3), 10.39278926, 1e-7);
    T_NEAR(mms_dcg_ideal_gallery(gal, 5), 10.82346582, 1e-7);
    mms_eval_t *e = NULL;
    int m;
    T_OK(mms_eval_create(c, j, "coco-test", &e));
    T_OK(mms_eval_method(e, "gnn-image", 5, &m));
    int64_t res[5] = {row_of(c, "r3"), row_of(c, "r1"), row_of(c, "r5"), row_of(c, "r2"),
                      row_of(c, "r4")};
    float sc[5] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
    T_OK(mms_eval_add_results(e, m, row_of(c, "q"), res, sc, 5));
    mms_eval_summary_t s;
    T_OK(mms_eval_summarize(e, m, &s));
    T_EQ_INT(s.queries, 1);
    T_EQ_INT(s.results, 5);
    T_NEAR(s.ndcg_excellent[0], 0.36312173, 1e-7);
    T_NEAR(s.ndcg_excellent[1], 0.38126919, 1e-7);
    T_NEAR(s.ndcg_gallery[0], 0.52117946, 1e-7);
    T_NEAR(s.ndcg_gallery[1], 0.72704035, 1e-7);
    T_NEAR(s.grade_pct[0], 20, 1e-9);
    T_NEAR(s.grade_pct[1], 20, 1e-9);
    T_NEAR(s.grade_pct[2], 40, 1e-9);
    T_NEAR(s.grade_pct[3], 20, 1e-9);
    /* a short list: 2 results, gain 0 for the missing ones; a query whose
     * gallery has nothing relevant scores 0 against the gallery ideal */
    int m2;
    T_OK(mms_eval_method(e, "short", 5, &m2));
    int64_t two[3] = {row_of(c, "r1"), row_of(c, "r2"), -1};
    T_OK(mms_eval_add_results(e, m2, row_of(c, "q"), two, NULL, 3));
    T_OK(mms_eval_add_results(e, m2, row_of(c, "q0"), two, NULL, 2));
    T_OK(mms_eval_summarize(e, m2, &s));
    T_EQ_INT(s.queries, 2);
    T_EQ_INT(s.short_lists, 2);
    /* q: DCG@5 = 7 + 3/log2(3) = 8.89278926 -> /20.63921383 and /10.82346582; q0: 0 */
    T_NEAR(s.ndcg_excellent[1], (8.89278926 / 20.63921383) / 2, 1e-7);
    T_NEAR(s.ndcg_gallery[1], (8.89278926 / 10.82346582) / 2, 1e-7);
    mms_eval_destroy(&e);
    mms_judge_destroy(&j);
    /* a COCO catalog can still be judged by tags on request */
    T_OK(mms_judge_create_kind(c, MMS_JUDGE_TAGS, &j));
    T_EQ_INT(GRADE(j, c, "q", "r3"), MMS_GRADE_GOOD); /* person = half of {dog, person} */
    mms_judge_destroy(&j);
    T_FAILS(mms_judge_create_kind(c, MMS_JUDGE_PLANTED, &j), MMS_ERR_ARG);
    mms_catalog_close(&c);
}

/* ---------------------------------------------------------------- tags */

static void test_tags(void) {
    const spec_t rows[] = {
        {"q4", MMS_SPLIT_TEST, "a|b|c|d", "", {NULL}, {1, 0}},
        {"q3", MMS_SPLIT_TEST, "a|b|c", "", {NULL}, {1, 0}},
        {"q1", MMS_SPLIT_TEST, "a", "", {NULL}, {1, 0}},
        {"qn", MMS_SPLIT_TEST, "", "", {NULL}, {1, 0}},
        {"all", MMS_SPLIT_TRAIN, "a|b|c|d|e", "", {NULL}, {1, 0}},
        {"half", MMS_SPLIT_TRAIN, "a|b", "", {NULL}, {1, 1}},
        {"halfx", MMS_SPLIT_TRAIN, "a|b|x", "", {NULL}, {0, 1}},
        {"one", MMS_SPLIT_TRAIN, "a", "", {NULL}, {2, 1}},
        {"none", MMS_SPLIT_TRAIN, "x", "", {NULL}, {1, 2}},
        {"empty", MMS_SPLIT_TRAIN, "", "", {NULL}, {0, 0}},
    };
    mms_catalog_t *c = make_catalog("judge-tags", rows, (int)(sizeof rows / sizeof rows[0]));
    mms_judge_t *j = NULL;
    T_OK(mms_judge_create(c, &j));
    T_EQ_INT(mms_judge_kind_of(j), MMS_JUDGE_TAGS);
    T_EQ_INT(GRADE(j, c, "q4", "all"), MMS_GRADE_EXCELLENT);
    T_EQ_INT(GRADE(j, c, "q4", "half"), MMS_GRADE_GOOD); /* exactly half */
    T_EQ_INT(GRADE(j, c, "q4", "halfx"), MMS_GRADE_GOOD);
    T_EQ_INT(GRADE(j, c, "q4", "one"), MMS_GRADE_ACCEPTABLE);
    T_EQ_INT(GRADE(j, c, "q4", "none"), MMS_GRADE_UNACCEPTABLE);
    T_EQ_INT(GRADE(j, c, "q4", "empty"), MMS_GRADE_UNACCEPTABLE);
    T_EQ_INT(GRADE(j, c, "q3", "one"), MMS_GRADE_ACCEPTABLE); /* 1/3 < half */
    T_EQ_INT(GRADE(j, c, "q3", "half"), MMS_GRADE_GOOD);      /* 2/3 */
    T_EQ_INT(GRADE(j, c, "q3", "all"), MMS_GRADE_EXCELLENT);
    T_EQ_INT(GRADE(j, c, "q1", "one"), MMS_GRADE_EXCELLENT);
    T_EQ_INT(GRADE(j, c, "qn", "all"), MMS_GRADE_UNACCEPTABLE);
    int64_t counts[4];
    T_OK(mms_judge_gallery_counts(j, row_of(c, "q4"), counts));
    T_EQ_INT(counts[3], 1);
    T_EQ_INT(counts[2], 2);
    T_EQ_INT(counts[1], 1);
    T_EQ_INT(counts[0], 2);
    T_OK(mms_judge_gallery_counts(j, row_of(c, "qn"), counts));
    T_EQ_INT(counts[0], 6);
    /* a training query: itself excluded ("half" {a,b}: all 3, halfx 3, one 1, none 0, empty 0) */
    T_OK(mms_judge_gallery_counts(j, row_of(c, "half"), counts));
    T_EQ_INT(counts[3], 2);
    T_EQ_INT(counts[2], 1);
    T_EQ_INT(counts[1], 0);
    T_EQ_INT(counts[0], 2);

    /* tag overlap and visual similarity over the top k_overlap */
    mms_eval_t *e = NULL;
    int m;
    T_OK(mms_eval_create(c, j, "tags-test", &e));
    T_OK(mms_eval_method(e, "m", 2, &m));
    int64_t res[3] = {row_of(c, "half"), row_of(c, "one"), row_of(c, "all")};
    T_OK(mms_eval_add_results(e, m, row_of(c, "q4"), res, NULL, 3));
    mms_eval_summary_t s;
    T_OK(mms_eval_summarize(e, m, &s));
    /* overlap (2/4 + 1/4) / 2; cosines of (1,0) with (1,1) and (2,1) */
    T_NEAR(s.tag_overlap, 0.375, 1e-12);
    T_NEAR(s.visual_sim, (1 / sqrt(2.0) + 2 / sqrt(5.0)) / 2, 1e-9);
    T_EQ_INT(s.k_overlap, 2);
    /* input checks */
    int64_t bad[2] = {row_of(c, "q1"), -1}; /* a test row as a result */
    T_FAILS(mms_eval_add_results(e, m, row_of(c, "q3"), bad, NULL, 1), MMS_ERR_ARG);
    int64_t dup[2] = {row_of(c, "one"), row_of(c, "one")};
    T_FAILS(mms_eval_add_results(e, m, row_of(c, "q3"), dup, NULL, 2), MMS_ERR_ARG);
    int64_t gap[3] = {row_of(c, "one"), -1, row_of(c, "all")};
    T_FAILS(mms_eval_add_results(e, m, row_of(c, "q3"), gap, NULL, 3), MMS_ERR_ARG);
    T_FAILS(mms_eval_add_results(e, m, row_of(c, "q4"), res, NULL, 3), MMS_ERR_ARG); /* twice */
    T_FAILS(mms_eval_method(e, "m", 5, &m), MMS_ERR_ARG);
    T_FAILS(mms_eval_method(e, "bad name", 5, &m), MMS_ERR_ARG);
    mms_eval_destroy(&e);
    mms_judge_destroy(&j);
    mms_catalog_close(&c);
}

/* ---------------------------------------------------------------- planted */

static void test_planted(void) {
    const spec_t rows[] = {
        {"q", MMS_SPLIT_TEST, "t", "cluster_1:1,topic_2:1", {NULL}, {1, 0}},
        {"both", MMS_SPLIT_TRAIN, "t", "cluster_1:1,topic_2:1,blend_3:1", {NULL}, {1, 0}},
        {"topic", MMS_SPLIT_TRAIN, "t", "cluster_3:1,topic_2:1", {NULL}, {1, 0}},
        {"cluster", MMS_SPLIT_TRAIN, "t", "cluster_1:1,topic_5:1", {NULL}, {1, 0}},
        {"cluster2", MMS_SPLIT_TRAIN, "t", "cluster_1:1,topic_5:1", {NULL}, {1, 0}},
        {"neither", MMS_SPLIT_TRAIN, "t", "cluster_3:1,topic_5:1,blend_1:1", {NULL}, {1, 0}},
    };
    mms_catalog_t *c = make_catalog("judge-planted", rows, (int)(sizeof rows / sizeof rows[0]));
    mms_judge_t *j = NULL;
    T_OK(mms_judge_create(c, &j));
    T_EQ_INT(mms_judge_kind_of(j), MMS_JUDGE_PLANTED);
    T_EQ_INT(GRADE(j, c, "q", "both"), MMS_GRADE_EXCELLENT);
    T_EQ_INT(GRADE(j, c, "q", "topic"), MMS_GRADE_GOOD);
    T_EQ_INT(GRADE(j, c, "q", "cluster"), MMS_GRADE_ACCEPTABLE);
    T_EQ_INT(GRADE(j, c, "q", "neither"), MMS_GRADE_UNACCEPTABLE); /* blend_ is not the cluster */
    int64_t counts[4];
    T_OK(mms_judge_gallery_counts(j, row_of(c, "q"), counts));
    T_EQ_INT(counts[3], 1);
    T_EQ_INT(counts[2], 1);
    T_EQ_INT(counts[1], 2);
    T_EQ_INT(counts[0], 1);
    T_OK(mms_judge_gallery_counts(j, row_of(c, "cluster"), counts)); /* itself excluded */
    T_EQ_INT(counts[3], 1);
    T_EQ_INT(counts[1], 1);
    T_EQ_INT(counts[0] + counts[1] + counts[2] + counts[3], 4);
    mms_judge_destroy(&j);
    mms_catalog_close(&c);
}

/* ---------------------------------------------------------------- annotation, voting */

static void test_annotation_and_voting(void) {
    /* training tag frequencies: a 1, b 2, c 3, d 4, e 1 */
    const spec_t rows[] = {
        {"n1", MMS_SPLIT_TRAIN, "a|b", "", {NULL}, {1, 0}},
        {"n2", MMS_SPLIT_TRAIN, "c", "", {NULL}, {0, 1}},
        {"r3", MMS_SPLIT_TRAIN, "b|c|d", "", {NULL}, {1, 1}},
        {"r4", MMS_SPLIT_TRAIN, "c|d", "", {NULL}, {1, 2}},
        {"r5", MMS_SPLIT_TRAIN, "d|e", "", {NULL}, {2, 1}},
        {"r6", MMS_SPLIT_TRAIN, "d|x", "", {NULL}, {0, 0}},
        {"q1", MMS_SPLIT_TEST, "a|b", "", {NULL}, {1, 0}},
        {"q2", MMS_SPLIT_TEST, "b|c", "", {NULL}, {1, 0}},
        {"q3", MMS_SPLIT_TEST, "d", "", {NULL}, {1, 0}},
    };
    mms_catalog_t *c = make_catalog("judge-annot", rows, (int)(sizeof rows / sizeof rows[0]));
    mms_judge_t *j = NULL;
    mms_eval_t *e = NULL;
    T_OK(mms_judge_create(c, &j));
    T_OK(mms_eval_create(c, j, "annot", &e));
    int32_t a = mms_catalog_tag_lookup(c, "a"), b = mms_catalog_tag_lookup(c, "b"),
            cc = mms_catalog_tag_lookup(c, "c"), d = mms_catalog_tag_lookup(c, "d"),
            ee = mms_catalog_tag_lookup(c, "e"), x = mms_catalog_tag_lookup(c, "x");
    /* test words a b c d. Predictions: q1 [a c], q2 [b a], q3 [b x]
     *   a: true 1, predicted 2, correct 1 -> P 1/2, R 1
     *   b: true 2, predicted 2, correct 1 -> P 1/2, R 1/2
     *   c: true 1, predicted 1, correct 0 -> P 0,   R 0
     *   d: true 1, never predicted        -> P 0,   R 0
     *   x: not a test word: ignored
     * P = 1/4, R = 3/8, N+ = 2 of 4 words */
    int m;
    T_OK(mms_eval_method(e, "pred", 5, &m));
    int32_t p1[2] = {a, cc}, p2[2] = {b, a}, p3[3] = {b, x, -1};
    T_OK(mms_eval_add_tags(e, m, row_of(c, "q1"), p1, 2));
    T_OK(mms_eval_add_tags(e, m, row_of(c, "q2"), p2, 2));
    T_OK(mms_eval_add_tags(e, m, row_of(c, "q3"), p3, 3));
    T_FAILS(mms_eval_add_tags(e, m, row_of(c, "q3"), p3, 2), MMS_ERR_ARG); /* twice */
    int32_t twice[2] = {a, a};
    T_FAILS(mms_eval_add_tags(e, m, row_of(c, "r3"), twice, 2), MMS_ERR_ARG);
    mms_eval_summary_t s;
    T_OK(mms_eval_summarize(e, m, &s));
    T_EQ_INT(s.tag_queries, 3);
    T_EQ_INT(s.tag_words, 4);
    T_NEAR(s.tag_p, 0.25, 1e-12);
    T_NEAR(s.tag_r, 0.375, 1e-12);
    T_EQ_INT(s.tag_nplus, 2);
    T_EQ_INT(s.queries, 0);

    /* voting: neighbours n1 {a,b} and n2 {c} at equal weight: a, b, c tie at
     * 0.5 and go by training frequency (c 3, b 2, a 1); then the tags without
     * votes by frequency (d 4), then e and x (1 each) by lower index: e */
    int64_t nbr[3] = {row_of(c, "n1"), row_of(c, "n2"), row_of(c, "r6")};
    float sims[3] = {0.5f, 0.5f, 0.1f};
    int32_t out[5];
    T_OK(mms_baseline_tag_vote(c, nbr, sims, 1, 3, 2, 1, 0.0, 5, out));
    T_EQ_INT(out[0], cc);
    T_EQ_INT(out[1], b);
    T_EQ_INT(out[2], a);
    T_EQ_INT(out[3], d);
    T_EQ_INT(out[4], ee);
    /* heavier n1: its tags first (b before a by frequency), then c */
    sims[0] = 0.6f;
    T_OK(mms_baseline_tag_vote(c, nbr, sims, 1, 3, 2, 1, 0.0, 5, out));
    T_EQ_INT(out[0], b);
    T_EQ_INT(out[1], a);
    T_EQ_INT(out[2], cc);
    T_EQ_INT(out[3], d);
    /* unweighted: back to the tie */
    T_OK(mms_baseline_tag_vote(c, nbr, sims, 1, 3, 2, 0, 0.0, 5, out));
    T_EQ_INT(out[0], cc);
    T_EQ_INT(out[1], b);
    /* k = 3 adds r6 {d, x}: d 0.1 + frequency 4 beats nothing; x has a vote too */
    T_OK(mms_baseline_tag_vote(c, nbr, sims, 1, 3, 3, 1, 0.0, 5, out));
    T_EQ_INT(out[3], d);
    T_EQ_INT(out[4], x);
    /* divided by frequency (power 1): with n1 at 0.6 and n2 at 0.5,
     * a 0.6/1, b 0.6/2, c 0.5/3 -> a, b, c; the power 0.5 keeps b (0.424)
     * above c (0.289) */
    T_OK(mms_baseline_tag_vote(c, nbr, sims, 1, 3, 2, 1, 1.0, 5, out));
    T_EQ_INT(out[0], a);
    T_EQ_INT(out[1], b);
    T_EQ_INT(out[2], cc);
    T_EQ_INT(out[3], d);
    /* equal weights, power 1: c (0.5/3) falls below b (0.5/2) below a (0.5) */
    sims[0] = 0.5f;
    T_OK(mms_baseline_tag_vote(c, nbr, sims, 1, 3, 2, 1, 1.0, 5, out));
    T_EQ_INT(out[0], a);
    T_EQ_INT(out[1], b);
    T_EQ_INT(out[2], cc);
    T_FAILS(mms_baseline_tag_vote(c, nbr, sims, 1, 3, 2, 1, -1.0, 5, out), MMS_ERR_ARG);

    /* visual baseline: q1 = (1,0) against n1 (1,0) 1.0, n2 (0,1) 0, r3 (1,1)
     * 0.707, r4 (1,2) 0.447, r5 (2,1) 0.894, r6 (0,0) 0 -> n1 r5 r3 r4, then
     * the cosine-0 rows by lower row: n2 (row 1) before r6 (row 5) */
    int64_t q = row_of(c, "q1"), vr[6];
    float vs[6];
    T_OK(mms_baseline_visual(c, 1, &q, 1, 6, vr, vs));
    T_EQ_INT(vr[0], row_of(c, "n1"));
    T_EQ_INT(vr[1], row_of(c, "r5"));
    T_EQ_INT(vr[2], row_of(c, "r3"));
    T_EQ_INT(vr[3], row_of(c, "r4"));
    T_EQ_INT(vr[4], row_of(c, "n2"));
    T_EQ_INT(vr[5], row_of(c, "r6"));
    T_NEAR(vs[0], 1.0, 1e-6);
    T_NEAR(vs[1], 2 / sqrt(5.0), 1e-6);
    /* a training row as query never retrieves itself; padding past the gallery */
    int64_t qt = row_of(c, "n1"), tr[7];
    float ts[7];
    T_OK(mms_baseline_visual(c, 0, &qt, 1, 7, tr, ts));
    for (int k = 0; k < 5; k++)
        T_CHECK(tr[k] >= 0 && tr[k] != qt);
    T_EQ_INT(tr[5], -1);
    T_CHECK(isinf(ts[6]) && ts[6] < 0);
    T_EQ_INT(tr[0], row_of(c, "r5")); /* (2,1): the best of the others */

    /* random: distinct training rows, not the query, deterministic */
    int64_t qs[2] = {row_of(c, "q1"), row_of(c, "r3")}, rr[10], rr2[10];
    T_OK(mms_baseline_random(c, qs, 2, 5, 7, rr));
    T_OK(mms_baseline_random(c, qs, 2, 5, 7, rr2));
    T_CHECK(!memcmp(rr, rr2, sizeof rr));
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 5; k++) {
            int64_t r = rr[i * 5 + k];
            T_CHECK(r >= 0 && c->split[r] == MMS_SPLIT_TRAIN && r != qs[i]);
            for (int t = 0; t < k; t++)
                T_CHECK(rr[i * 5 + t] != r);
        }
    /* tag oracle for q2 {b, c}: r3 {b,c,d} shares 2 (Jaccard 2/3), then the
     * one-tag rows by Jaccard: n2 {c} 1/2, n1 {a,b} 1/3 = r4 {c,d} 1/3 (lower
     * row first), then the rest at 0 by lower row */
    int64_t q2 = row_of(c, "q2"), orr[6];
    float osc[6];
    T_OK(mms_baseline_tag_oracle(c, &q2, 1, 6, orr, osc));
    T_EQ_INT(orr[0], row_of(c, "r3"));
    T_EQ_INT(orr[1], row_of(c, "n2"));
    T_EQ_INT(orr[2], row_of(c, "n1"));
    T_EQ_INT(orr[3], row_of(c, "r4"));
    T_EQ_INT(orr[4], row_of(c, "r5"));
    T_EQ_INT(orr[5], row_of(c, "r6"));
    T_NEAR(osc[0], 2, 0);
    T_NEAR(osc[4], 0, 0);

    /* all baselines through the accumulator */
    int64_t tq[3] = {row_of(c, "q1"), row_of(c, "q2"), row_of(c, "q3")};
    T_OK(mms_eval_add_baselines(e, tq, 3, MMS_BASELINE_ALL, 5, 1));
    T_CHECK(mms_eval_find_method(e, "raw-visual") >= 0 && mms_eval_find_method(e, "random") >= 0 &&
            mms_eval_find_method(e, "tag-oracle") >= 0 &&
            mms_eval_find_method(e, "tag-prior") >= 0);
    T_OK(mms_eval_summarize(e, mms_eval_find_method(e, "tag-oracle"), &s));
    T_NEAR(s.ndcg_gallery[1], 1.0, 1e-12);
    T_OK(mms_eval_summarize(e, mms_eval_find_method(e, "raw-visual"), &s));
    T_EQ_INT(s.queries, 3);
    T_EQ_INT(s.tag_queries, 3);
    mms_eval_destroy(&e);
    mms_judge_destroy(&j);
    mms_catalog_close(&c);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    T_CHECK(!strcmp(mms_grade_name(3), "Excellent") && !strcmp(mms_grade_name(0), "Unacceptable"));
    test_coco();
    test_tags();
    test_planted();
    test_annotation_and_voting();
    const char *names[] = {"judge-coco", "judge-tags", "judge-planted", "judge-annot"};
    for (int i = 0; i < 4; i++)
        mms_rm_rf(mms_test_tmpdir(names[i]));
    return mms_test_finish("test_judge");
}
