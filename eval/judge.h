/* judge.h: automatic graded relevance, retrieval and annotation metrics over an
 * evaluation run, and the baselines that need only the catalog
 * (docs/evaluation.md is the user-facing description). One header for three
 * files, by section below:
 *   judge.c     the judges: grades of (query, result) pairs, gallery counts
 *   metrics.c   nDCG and the accumulator (mms_eval_*) with its summaries
 *   baseline.c  the catalog-only baselines (mms_baseline_*, mms_eval_add_baselines)
 * (judge_internal.h holds the judge's sorted sets that the three share.)
 *
 * Grades are the paper's four labels (section 5.1): 3 Excellent, 2 Good,
 * 1 Acceptable, 0 Unacceptable. A judge stands in for the crowd workers and is
 * picked from the catalog by mms_judge_create:
 *   coco     objects.tsv with real object categories (MS-COCO). For query q and
 *            result r: (a) they share a concept (object categories plus the
 *            caption words used in >= 2 of an image's captions, the rule of the
 *            importer's --caption-tags); (b) every object category of q is in r;
 *            (c) every shared category is single (1) or multiple (> 1) instances
 *            in both. Grade = number of criteria met, except that a pair with
 *            no object category in common is Unacceptable whatever else.
 *   planted  synthetic catalogs (every category is cluster_<c>, topic_<k> or
 *            blend_<c>): 3 same topic and same cluster, 2 same topic, 1 same
 *            cluster, 0 neither.
 *   tags     anything else (Corel5k): 3 all of q's tags are in r's tags, 2 at
 *            least half, 1 at least one, 0 none (a query without tags: 0).
 * Queries are any rows (test rows in practice); results are training rows, and
 * the gallery is every training row except the query itself.
 *
 * mms_eval_t accumulates, per dataset, the ranked results and predicted tags of
 * named methods for many queries, grading as it goes, and summarises:
 * grade distribution of the top MMS_EVAL_K results, nDCG@3/@5 (gain 2^g - 1,
 * discount log2(rank + 1)) against the all-Excellent ideal and against the best
 * ranking the gallery allows, tag overlap and visual similarity over a
 * per-method top k, and the Corel5k annotation protocol (per-word precision
 * and recall over the words of the queries' ground truth, N+).
 *
 * Baselines: exact raw-visual cosine top-k, visual kNN tag voting, random
 * results, the tag oracle, and the expansion baselines through the tags of the
 * query's visual neighbours: vote expansion, personalised PageRank, and the
 * fused visual + expansion score (docs/evaluation.md, "Baselines").
 *
 * Ownership: the judge and the accumulator borrow the catalog (and the
 * accumulator the judge); both must outlive them. Nothing here writes files
 * (report.h writes the report) or prints, except progress lines of long
 * baseline scans through mms_log. Not thread-safe for writers; grading and
 * summaries only read.
 */
#ifndef MMS_JUDGE_H
#define MMS_JUDGE_H

#include <stddef.h>
#include <stdint.h>

#include "mms_catalog.h"
#include "mms_status.h"

/* --------------------------------------------------------------- judges (judge.c) */

enum {
    MMS_GRADE_UNACCEPTABLE = 0,
    MMS_GRADE_ACCEPTABLE = 1,
    MMS_GRADE_GOOD = 2,
    MMS_GRADE_EXCELLENT = 3
};

/* "Unacceptable" .. "Excellent"; "?" outside 0..3. */
const char *mms_grade_name(int grade);

typedef enum { MMS_JUDGE_TAGS = 0, MMS_JUDGE_COCO = 1, MMS_JUDGE_PLANTED = 2 } mms_judge_kind;

/* "tags" / "coco" / "planted". */
const char *mms_judge_kind_name(int kind);

typedef struct mms_judge mms_judge_t;

/* The judge the catalog calls for (see the top). Borrows c. */
mms_status mms_judge_create(const mms_catalog_t *c, mms_judge_t **out);
/* A given kind: coco and planted need objects.tsv (planted also the planted
 * category names); tags works on any catalog. */
mms_status mms_judge_create_kind(const mms_catalog_t *c, mms_judge_kind kind, mms_judge_t **out);
void mms_judge_destroy(mms_judge_t **j);

mms_judge_kind mms_judge_kind_of(const mms_judge_t *j);
/* Grade of result row r for query row q (catalog rows, 0 <= q, r < n). */
int mms_judge_grade(const mms_judge_t *j, int64_t q, int64_t r);
/* counts[g] = gallery rows (training rows other than q) of grade g for query q. */
mms_status mms_judge_gallery_counts(const mms_judge_t *j, int64_t q, int64_t counts[4]);
/* The concepts the judge sees for row: coco: object categories then caption
 * concept words; planted: the cluster_/topic_ names; tags: the tags. Up to cap
 * borrowed names into names (valid while the judge lives); returns the total. */
int mms_judge_concepts(const mms_judge_t *j, int64_t row, const char **names, int cap);

/* ------------------------------------------------------------ nDCG (metrics.c) */

/* DCG of grades[0..k) (entries < 0 count as gain 0): sum (2^g - 1) / log2(i + 2). */
double mms_dcg(const int *grades, int k);
/* Ideal DCG@k of the all-Excellent ranking: sum 7 / log2(i + 2). */
double mms_dcg_ideal_excellent(int k);
/* Ideal DCG@k of the best ranking of a gallery with counts[g] rows of grade g. */
double mms_dcg_ideal_gallery(const int64_t counts[4], int k);

/* ----------------------------------------------------- accumulator (metrics.c) */

#define MMS_EVAL_K 5         /* results graded per query (the paper's top 5) */
#define MMS_EVAL_MAX_K 1000  /* longest result list kept per query */
#define MMS_EVAL_NTAGS 5     /* tags predicted per image (the annotation protocol) */
#define MMS_EVAL_NAME_MAX 63 /* method and dataset name length */

typedef struct mms_eval mms_eval_t;

/* An empty accumulator for one dataset (name: letters, digits, "._+-", at most
 * MMS_EVAL_NAME_MAX). Borrows c and j (j must judge c). */
mms_status mms_eval_create(const mms_catalog_t *c, const mms_judge_t *j, const char *dataset,
                           mms_eval_t **out);
void mms_eval_destroy(mms_eval_t **e);

/* Declare a method (a new, unique name: letters, digits, "._+-@"; e.g.
 * "raw-visual", "gnn-image+tags", "slider-0.75"). k_overlap (1..MMS_EVAL_MAX_K)
 * is the top k over which tag overlap and visual similarity are averaged
 * (5 in the tables, 10 in the slider test). *method receives its index. */
mms_status mms_eval_method(mms_eval_t *e, const char *name, int k_overlap, int *method);
/* Index of a declared method, -1 if none. */
int mms_eval_find_method(const mms_eval_t *e, const char *name);

/* Record the ranked results of one query: rows[0..n) training rows, best first,
 * distinct, -1 allowed only as trailing padding; scores (may be NULL) n floats.
 * The first max(MMS_EVAL_K, k_overlap) are kept. A query is recorded at most
 * once per method. Results shorter than MMS_EVAL_K count as gain 0 in DCG. */
mms_status mms_eval_add_results(mms_eval_t *e, int method, int64_t query, const int64_t *rows,
                                const float *scores, int n);
/* Record the predicted tags of one query (catalog tag indices, distinct, best
 * first, n <= MMS_EVAL_NTAGS; -1 padding allowed), once per method and query. */
mms_status mms_eval_add_tags(mms_eval_t *e, int method, int64_t query, const int32_t *tags, int n);

typedef struct {
    int64_t queries;          /* queries with results */
    int64_t results;          /* results graded (top MMS_EVAL_K entries present) */
    int64_t short_lists;      /* queries with fewer than MMS_EVAL_K results */
    double grade_pct[4];      /* % of graded results per grade (index = grade) */
    double ndcg_excellent[2]; /* nDCG@3, nDCG@5 against the all-Excellent ideal */
    double ndcg_gallery[2];   /* nDCG@3, nDCG@5 against the gallery's best ranking */
    int k_overlap;
    double tag_overlap;  /* mean fraction of the query's tags in each top-k result */
    double visual_sim;   /* mean cosine of the query's features with each top-k result's */
    int64_t tag_queries; /* queries with predicted tags */
    int64_t tag_words;   /* words of those queries' ground truth */
    double tag_p, tag_r; /* mean per-word precision (0 if never predicted) and recall */
    int64_t tag_nplus;   /* words with recall > 0 */
} mms_eval_summary_t;

/* Metrics of one method (fields of an absent kind are 0). */
mms_status mms_eval_summarize(const mms_eval_t *e, int method, mms_eval_summary_t *out);

/* The split the queries were drawn from (MMS_SPLIT_VAL or MMS_SPLIT_TEST,
 * the default), stated by the report in its first lines and in metrics.tsv.
 * The accumulator does not check the queries' rows against it. */
mms_status mms_eval_set_split(mms_eval_t *e, int split);
int mms_eval_split(const mms_eval_t *e);

int mms_eval_methods(const mms_eval_t *e);
const char *mms_eval_method_name(const mms_eval_t *e, int method);
const char *mms_eval_dataset(const mms_eval_t *e);
const mms_catalog_t *mms_eval_catalog(const mms_eval_t *e);
const mms_judge_t *mms_eval_judge(const mms_eval_t *e);

/* One recorded query of a method, in recording order (all borrowed). */
typedef struct {
    int64_t query;        /* catalog row */
    int n;                /* results kept (may be 0 when the method has only tags) */
    const int64_t *rows;  /* n */
    const float *scores;  /* n, or NULL when none were given */
    const int8_t *grades; /* n */
    int ntags;            /* predicted tags (0 if none) */
    const int32_t *tags;
    int nk;               /* results in the method's top k_overlap (0: none) */
    double overlap;       /* tag overlap of those results (mean), 0 when nk is 0 */
    double visual;        /* their mean visual cosine with the query */
    double ndcg5;         /* nDCG@5 on the all-Excellent scale (0 without results) */
} mms_eval_query_t;

int64_t mms_eval_queries(const mms_eval_t *e, int method);
/* Index i of query row `query` in a method's records, -1 if not recorded. */
int64_t mms_eval_find_query(const mms_eval_t *e, int method, int64_t query);
void mms_eval_query(const mms_eval_t *e, int method, int64_t i, mms_eval_query_t *out);

/* ------------------------------------------------------- baselines (baseline.c) */

/* Exact cosine top-k of the query rows against the training rows (excluding a
 * query's own row), in the catalog's knn_features when use_knn and present,
 * else its features. Output nq x k, best first, ties by lower row, padded with
 * -1 / -INFINITY. An all-zero vector has cosine 0 with everything. Scores are
 * float, the ranking is by the double-precision cosine (a float matrix product
 * filters candidates, a double dot product decides). */
mms_status mms_baseline_visual(const mms_catalog_t *c, int use_knn, const int64_t *qrows,
                               int64_t nq, int k, int64_t *rows_out, float *sims_out);

/* Visual kNN tag voting: for each query, the first k of its neighbours
 * (nbr / sims: nq rows of `stride` entries, -1 padding) vote for their tags
 * with weight sim (weighted) or 1; a tag's votes are divided by its
 * training-set frequency to the power prior_power (0: plain votes, the
 * literature's protocol; 0.5: the square root, which stops the few frequent
 * words from taking every slot); the nout tags with the most votes win, ties
 * (and tags without votes) by training-set frequency, then lower tag index.
 * tags_out: nq x nout. */
#define MMS_VOTE_PRIOR_POWER 0.5
mms_status mms_baseline_tag_vote(const mms_catalog_t *c, const int64_t *nbr, const float *sims,
                                 int64_t nq, int stride, int k, int weighted, double prior_power,
                                 int nout, int32_t *tags_out);

/* k distinct random training rows per query (not the query itself), a pure
 * function of (seed, query row). rows_out: nq x k. */
mms_status mms_baseline_random(const mms_catalog_t *c, const int64_t *qrows, int64_t nq, int k,
                               uint64_t seed, int64_t *rows_out);

/* Tag oracle: training rows by number of tags shared with the query's tags,
 * then by higher Jaccard similarity, then lower row; score = shared tags.
 * rows_out / scores_out: nq x k. */
mms_status mms_baseline_tag_oracle(const mms_catalog_t *c, const int64_t *qrows, int64_t nq, int k,
                                   int64_t *rows_out, float *scores_out);

/* The expansion baselines: image-only retrieval through the tags of the
 * query's visual neighbours, the strongest simple rivals of gnn-image
 * (docs/evaluation.md, "Baselines"). The query's k nearest training rows in
 * the raw-visual space (mms_baseline_visual) are its neighbours; then
 *   VOTE   they vote for their tags with weight cosine, each tag's votes divided
 *          by the square root of its training frequency (MMS_VOTE_PRIOR_POWER,
 *          as the debiased tag vote), and every training row scores the
 *          cosine of that vote vector with its binary tag vector (0 without
 *          tags);
 *   PPR    personalised PageRank on the bipartite graph of the training rows
 *          and their tags: restart (probability alpha) at the neighbours in
 *          proportion to their cosine (clipped at 0; equal shares if all are
 *          0), walk image -> one of its tags -> one of that tag's images,
 *          each uniformly; mass at an untagged image restarts; iters
 *          synchronous power iterations from the restart vector; rows scored
 *          by their image mass;
 *   FUSED  w * raw-visual cosine + (1 - w) * the VOTE score, every row.
 * Training rows (not the query) are ranked by score, ties by lower row. */
typedef enum { MMS_EXPAND_VOTE = 0, MMS_EXPAND_PPR = 1, MMS_EXPAND_FUSED = 2 } mms_expand_kind;

typedef struct {
    int k;        /* visual neighbours per query, 1..MMS_EVAL_MAX_K */
    double alpha; /* PPR restart probability, (0, 1] */
    int iters;    /* PPR power iterations, >= 1 */
    double w;     /* FUSED weight of the visual cosine, [0, 1] */
} mms_expand_params_t;

/* The defaults, chosen on Corel5k's validation split (docs/results.md,
 * "Baselines, settings chosen on validation"). */
#define MMS_EXPAND_K 1000
#define MMS_EXPAND_ALPHA 0.03
#define MMS_EXPAND_ITERS 20
#define MMS_EXPAND_W 0.1
void mms_expand_params_default(mms_expand_params_t *p);

/* Top kout training rows of each query (rows_out / scores_out: nq x kout,
 * padded with -1 / -INFINITY). */
mms_status mms_baseline_expand(const mms_catalog_t *c, const int64_t *qrows, int64_t nq,
                               mms_expand_kind kind, const mms_expand_params_t *p, int kout,
                               int64_t *rows_out, float *scores_out);

/* The same expansions from neighbour lists the caller found (e.g. the GNN's
 * top p->k results): nbr / sims are nq x stride (training rows, -1 = none;
 * the first p->k used, sims as vote weights). Output as mms_baseline_expand. */
mms_status mms_baseline_expand_from(const mms_catalog_t *c, const int64_t *qrows, int64_t nq,
                                    mms_expand_kind kind, const mms_expand_params_t *p,
                                    const int64_t *nbr, const float *sims, int stride, int kout,
                                    int64_t *rows_out, float *scores_out);

enum {
    MMS_BASELINE_VISUAL = 1,  /* "raw-visual": cosine top-k, with kNN tag voting (k = 5, weighted) */
    MMS_BASELINE_RANDOM = 2,  /* "random" */
    MMS_BASELINE_ORACLE = 4,  /* "tag-oracle" */
    MMS_BASELINE_PRIOR = 8,   /* "tag-prior": the 5 most frequent training tags (annotation only) */
    MMS_BASELINE_EXPAND = 16, /* "vote-expansion": MMS_EXPAND_VOTE */
    MMS_BASELINE_PPR = 32,    /* "ppr": MMS_EXPAND_PPR */
    MMS_BASELINE_FUSED = 64,  /* "fused": MMS_EXPAND_FUSED */
    MMS_BASELINE_ALL = 127
};

/* Run the chosen baselines for the query rows and record them in e under the
 * names above (k_overlap as given, results kept: max(MMS_EVAL_K, k_overlap)),
 * the expansion ones with the default parameters. */
mms_status mms_eval_add_baselines(mms_eval_t *e, const int64_t *qrows, int64_t nq, unsigned which,
                                  int k_overlap, uint64_t seed);
/* The same with the expansion baselines' parameters (NULL: the defaults). */
mms_status mms_eval_add_baselines_ex(mms_eval_t *e, const int64_t *qrows, int64_t nq,
                                     unsigned which, int k_overlap, uint64_t seed,
                                     const mms_expand_params_t *p);

#endif
