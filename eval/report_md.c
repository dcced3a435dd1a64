/* report_md.c: report.md, the human-readable report, written as a sequence of
 * sections: title and introduction (with the queries' split), datasets,
 * graded relevance (the paper's Table 1), nDCG (Table 2), paired per-query
 * nDCG@5 differences against the baselines, tag prediction (the Corel5k annotation protocol,
 * with the literature's rows), the slider table with paired step errors, the
 * training loss, notes on examples and skipped plots, settings, and the list
 * of files. Each section is skipped when no dataset has what it shows.
 *
 * Does not: compute the metrics (metrics.c) or draw the plots it links
 * (report_plots.c says which exist through has_plot).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "report_internal.h"

/* The paper's Table 1 (crowd grades of 14,995 top-5 results) and Table 2. */
static const double k_paper_pct[4] = {9, 17, 60, 14}; /* by grade 0..3 */
static const double k_paper_ndcg[2] = {0.41, 0.39};   /* @3, @5 */

/* Corel5k annotation results in the literature on the same blob features. */
static const struct {
    const char *name;
    double p, r;
    int nplus;
} k_literature[2] = {{"translation model (Duygulu et al. 2002)", 0.04, 0.06, 49},
                     {"CMRM (Jeon et al. 2003)", 0.10, 0.09, 66}};

static int contains_ci(const char *s, const char *sub) {
    size_t n = strlen(sub);
    for (; *s; s++)
        if (!strncasecmp(s, sub, n)) return 1;
    return 0;
}

/* Mean and standard error of the per-query change from method a to b (tag
 * overlap and visual similarity of the top k_overlap), over the queries both
 * answered: the slider's steps are judged on the same queries. */
static void paired_step(const mms_eval_t *e, int a, int b, double *mo, double *so, double *mv,
                        double *sv) {
    double s1o = 0, s2o = 0, s1v = 0, s2v = 0;
    int64_t n = 0, nq = mms_eval_queries(e, b);
    for (int64_t i = 0; i < nq; i++) {
        mms_eval_query_t qb, qa;
        mms_eval_query(e, b, i, &qb);
        int64_t j = mms_eval_find_query(e, a, qb.query);
        if (j < 0 || qb.nk == 0) continue;
        mms_eval_query(e, a, j, &qa);
        if (qa.nk == 0) continue;
        double dov = qb.overlap - qa.overlap, dvi = qb.visual - qa.visual;
        s1o += dov, s2o += dov * dov, s1v += dvi, s2v += dvi * dvi;
        n++;
    }
    *mo = n ? s1o / (double)n : 0;
    *mv = n ? s1v / (double)n : 0;
    *so = n > 1 ? sqrt(fmax(0, (s2o - (double)n * *mo * *mo) / (double)(n - 1)) / (double)n) : 0;
    *sv = n > 1 ? sqrt(fmax(0, (s2v - (double)n * *mv * *mv) / (double)(n - 1)) / (double)n) : 0;
}

static void md_table_head(FILE *f, const char *const *cols, int n) {
    fputs("|", f);
    for (int k = 0; k < n; k++)
        fprintf(f, " %s |", cols[k]);
    fputs("\n|", f);
    for (int k = 0; k < n; k++)
        fputs(k ? "---:|" : "---|", f);
    fputc('\n', f);
}

/* Title and the introduction. */
static void md_intro(FILE *f, const rep_t *r) {
    const char *title = r->o->title ? r->o->title : "mmsage evaluation";
    fprintf(f, "# %s\n\n", title);
    /* which split the figures come from, first: val figures choose settings,
     * test figures are read once */
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        int sp = mms_eval_split(d->e);
        fprintf(f,
                "**Computed on the %s split** of `%s`: %lld %s images are the queries, the "
                "%lld training images the gallery (val and test images are never in it).%s\n\n",
                mms_split_name(sp), d->name, (long long)d->c->n_split[sp], mms_split_name(sp),
                (long long)d->c->n_split[MMS_SPLIT_TRAIN],
                sp == MMS_SPLIT_VAL ? " Validation figures: choose settings on these."
                                    : " Test figures: read them once, with settings chosen on "
                                      "validation.");
    }
    fputs("Automatic evaluation of image-to-image retrieval and tag prediction; the judge, the "
          "metrics and these files are described in docs/evaluation.md. Machine-readable numbers: "
          "`metrics.tsv`; every graded result: `queries.tsv`.\n\n",
          f);
}

/* One row per dataset: judge, sizes, queries evaluated; then the judges' rules. */
static void md_datasets(FILE *f, const rep_t *r) {
    fputs("## Datasets\n\n", f);
    const char *cols[] = {"dataset", "judge", "images", "train (gallery)", "val",
                          "test",    "tags",  "query split", "queries evaluated"};
    md_table_head(f, cols, 9);
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        int64_t nq = 0;
        for (int m = 0; m < d->nm; m++) {
            int64_t v = d->sum[m].queries > d->sum[m].tag_queries ? d->sum[m].queries
                                                                  : d->sum[m].tag_queries;
            if (v > nq) nq = v;
        }
        fprintf(f, "| %s | %s | %lld | %lld | %lld | %lld | %d | %s | %lld |\n", d->name,
                mms_judge_kind_name(mms_judge_kind_of(mms_eval_judge(d->e))), (long long)d->c->n,
                (long long)d->c->n_split[MMS_SPLIT_TRAIN], (long long)d->c->n_split[MMS_SPLIT_VAL],
                (long long)d->c->n_split[MMS_SPLIT_TEST], (int)d->c->ntags,
                mms_split_name(mms_eval_split(d->e)), (long long)nq);
    }
    fputs(
        "\nJudges: *coco* grades by the paper's three criteria (shared concept, all query objects "
        "present, single/multiple instances match; no object in common is Unacceptable); *tags* by "
        "the share of the query's tags the result carries (all / at least half / at least one / "
        "none); *planted* by the synthetic ground truth (same topic and cluster / same topic / "
        "same cluster / neither).\n\n",
        f);
}

/* Share of the top results per grade (the paper's Table 1), per dataset. */
static void md_grades(FILE *f, const rep_t *r, int has_plot[][3]) {
    fprintf(
        f,
        "## Graded relevance (the paper's Table 1)\n\nShare of the top-%d results of every query "
        "per grade.\n\n",
        MMS_EVAL_K);
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        if (!d->any_results) continue;
        fprintf(f, "### %s\n\n", d->name);
        const char *cols[] = {"method",     "Excellent",    "Good",
                              "Acceptable", "Unacceptable", "results"};
        md_table_head(f, cols, 6);
        for (int m = 0; m < d->nm; m++) {
            const mms_eval_summary_t *s = &d->sum[m];
            if (!s->queries) continue;
            fprintf(f, "| %s | %.1f %% | %.1f %% | %.1f %% | %.1f %% | %lld |\n",
                    mms_eval_method_name(d->e, m), s->grade_pct[3], s->grade_pct[2],
                    s->grade_pct[1], s->grade_pct[0], (long long)s->results);
        }
        fprintf(f,
                "| *paper (Adobe Stock, crowd judges)* | %.0f %% | %.0f %% | %.0f %% | %.0f %% | "
                "14995 |\n\n",
                k_paper_pct[3], k_paper_pct[2], k_paper_pct[1], k_paper_pct[0]);
        if (has_plot[i][0])
            fprintf(f, "![grade distribution, %s](grades-%s.png)\n\n", d->name, d->name);
    }
}

/* nDCG on both ideals with tag overlap and visual similarity (Table 2). */
static void md_ndcg(FILE *f, const rep_t *r) {
    fputs("## nDCG (the paper's Table 2)\n\nGain 2^grade - 1, discount log2(rank + 1). "
          "*all-Excellent* divides by the DCG of five Excellent results (the scale of the "
          "paper's 0.41 / 0.39); *gallery* divides by the best ranking the query's gallery "
          "allows. Tag overlap and visual similarity are means over the top-k results (k in the "
          "column).\n\n",
          f);
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        if (!d->any_results) continue;
        fprintf(f, "### %s\n\n", d->name);
        const char *cols[] = {"method",
                              "nDCG@3 (all-Excellent)",
                              "nDCG@5 (all-Excellent)",
                              "nDCG@3 (gallery)",
                              "nDCG@5 (gallery)",
                              "tag overlap",
                              "visual sim.",
                              "k"};
        md_table_head(f, cols, 8);
        for (int m = 0; m < d->nm; m++) {
            const mms_eval_summary_t *s = &d->sum[m];
            if (!s->queries) continue;
            fprintf(f, "| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %d |\n",
                    mms_eval_method_name(d->e, m), s->ndcg_excellent[0], s->ndcg_excellent[1],
                    s->ndcg_gallery[0], s->ndcg_gallery[1], s->tag_overlap, s->visual_sim,
                    s->k_overlap);
        }
        fprintf(f, "| *paper (Adobe Stock, crowd judges)* | %.2f | %.2f | - | - | - | - | - |\n\n",
                k_paper_ndcg[0], k_paper_ndcg[1]);
    }
}

/* Every method against each baseline, query by query: the mean per-query
 * nDCG@5 difference with its paired standard error. */
static void md_paired(FILE *f, const rep_t *r) {
    int any = 0;
    for (int i = 0; i < r->nds; i++)
        for (int b = 0; b < REPORT_NREF; b++) {
            int mb = mms_eval_find_method(r->ds[i].e, report_ref_methods[b]);
            any |= mb >= 0 && r->ds[i].sum[mb].queries > 0;
        }
    if (!any) return;
    fputs("## Paired differences (nDCG@5, all-Excellent)\n\nEach cell: the mean over the queries "
          "both methods answered of the row method's nDCG@5 minus the column baseline's, +- its "
          "paired standard error (sd / sqrt(n) of the per-query differences). A difference "
          "within about two standard errors of 0 is within the noise of this query set. The "
          "`gnn-image` row is the GNN against each baseline; the `raw-visual` column is every "
          "method against raw features.\n\n",
          f);
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        int ref[REPORT_NREF], nref = 0;
        for (int b = 0; b < REPORT_NREF; b++) {
            int mb = mms_eval_find_method(d->e, report_ref_methods[b]);
            if (mb >= 0 && d->sum[mb].queries > 0) ref[nref++] = mb;
        }
        if (!nref) continue;
        fprintf(f, "### %s\n\n", d->name);
        char head[REPORT_NREF][96];
        const char *cols[REPORT_NREF + 3];
        cols[0] = "method";
        cols[1] = "nDCG@5 (all-Excellent)";
        for (int b = 0; b < nref; b++) {
            snprintf(head[b], sizeof head[b], "minus %s", mms_eval_method_name(d->e, ref[b]));
            cols[2 + b] = head[b];
        }
        cols[2 + nref] = "paired queries";
        md_table_head(f, cols, nref + 3);
        for (int m = 0; m < d->nm; m++) {
            if (!d->sum[m].queries) continue;
            fprintf(f, "| %s | %.3f |", mms_eval_method_name(d->e, m), d->sum[m].ndcg_excellent[1]);
            int64_t npair = 0;
            for (int b = 0; b < nref; b++) {
                double mean, se;
                int64_t n;
                if (ref[b] == m) {
                    fputs(" - |", f);
                    continue;
                }
                report_paired_ndcg5(d->e, ref[b], m, &mean, &se, &n);
                if (n < 2)
                    fputs(" - |", f);
                else
                    fprintf(f, " %+.4f +- %.4f |", mean, se);
                if (n > npair) npair = n;
            }
            fprintf(f, " %lld |\n", (long long)npair);
        }
        fputc('\n', f);
    }
}

/* Tag prediction P / R / N+, with the literature's rows on Corel5k. */
static void md_tags(FILE *f, const rep_t *r) {
    int any_tags = 0;
    for (int i = 0; i < r->nds; i++)
        any_tags |= r->ds[i].any_tags;
    if (!any_tags) return;
    fprintf(f,
            "## Tag prediction (the Corel5k annotation protocol)\n\n%d tags per test image; "
            "precision and recall per word, averaged over the words of the test images' "
            "ground truth (a word never predicted has precision 0); N+ = words with recall > "
            "0.\n\n",
            MMS_EVAL_NTAGS);
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        if (!d->any_tags) continue;
        fprintf(f, "### %s\n\n", d->name);
        const char *cols[] = {"method", "P", "R", "N+", "words"};
        md_table_head(f, cols, 5);
        int64_t words = 0;
        for (int m = 0; m < d->nm; m++) {
            const mms_eval_summary_t *s = &d->sum[m];
            if (!s->tag_queries) continue;
            const char *mn = mms_eval_method_name(d->e, m);
            fprintf(f, "| %s%s | %.3f | %.3f | %lld | %lld |\n", mn,
                    strcmp(mn, "raw-visual") ? "" : " (visual kNN tag voting, k = 5)", s->tag_p,
                    s->tag_r, (long long)s->tag_nplus, (long long)s->tag_words);
            words = s->tag_words;
        }
        if (contains_ci(d->name, "corel"))
            for (int k = 0; k < 2; k++)
                fprintf(f, "| *%s* | %.2f | %.2f | %d | %lld |\n", k_literature[k].name,
                        k_literature[k].p, k_literature[k].r, k_literature[k].nplus,
                        (long long)words);
        fputc('\n', f);
    }
}

/* The slider table, from w = 1 down to 0, each step with its paired error. */
static void md_slider(FILE *f, const rep_t *r, int has_plot[][3]) {
    int any_slider = 0;
    for (int i = 0; i < r->nds; i++)
        any_slider |= r->ds[i].nslider > 0;
    if (!any_slider) return;
    fputs("## The slider: visual against conceptual intent\n\nQuery = image plus tags, fused "
          "with visual weight w (1 = image only). Tag overlap: mean share of the query's tags "
          "carried by each result; visual similarity: mean cosine of the raw features.\n\n",
          f);
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        if (!d->nslider) continue;
        int k = d->sum[d->slider[0]].k_overlap;
        fprintf(f, "### %s\n\n", d->name);
        char c1[64], c2[64];
        snprintf(c1, sizeof c1, "tag overlap@%d", k);
        snprintf(c2, sizeof c2, "visual sim.@%d", k);
        const char *cols[] = {"w (visual)",
                              c1,
                              c2,
                              "nDCG@5 (gallery)",
                              "nDCG@5 (all-Excellent)",
                              "queries",
                              "step: overlap change +- paired SE",
                              "step: visual change +- paired SE"};
        md_table_head(f, cols, 8);
        /* rows from w = 1 down to 0: each step against the row above */
        for (int si = d->nslider - 1; si >= 0; si--) {
            const mms_eval_summary_t *v = &d->sum[d->slider[si]];
            fprintf(f, "| %.2f | %.3f | %.3f | %.3f | %.3f | %lld |", d->slider_w[si],
                    v->tag_overlap, v->visual_sim, v->ndcg_gallery[1], v->ndcg_excellent[1],
                    (long long)v->queries);
            if (si == d->nslider - 1) {
                fputs(" | |\n", f);
                continue;
            }
            double mo, so, mv, sv;
            paired_step(d->e, d->slider[si + 1], d->slider[si], &mo, &so, &mv, &sv);
            fprintf(f, " %+.4f +- %.4f | %+.4f +- %.4f |\n", mo, so, mv, sv);
        }
        fputs("\nA step that goes the wrong way by less than about two paired standard errors "
              "is within the noise of this query set.\n\n",
              f);
        if (has_plot[i][1])
            fprintf(f, "![slider trade-off, %s](slider-%s.png)\n\n", d->name, d->name);
    }
}

/* First and last loss of each dataset's training log, and the loss plots. */
static void md_loss(FILE *f, const rep_t *r, int has_plot[][3]) {
    int any_loss = 0;
    for (int i = 0; i < r->nds; i++)
        any_loss |= r->ds[i].loss_n > 0;
    if (!any_loss) return;
    fputs("## Training loss\n\n", f);
    const char *cols[] = {"dataset",       "steps",        "epochs",         "first loss",
                          "last smoothed", "min smoothed", "pairs/s (last)", "time (s)"};
    md_table_head(f, cols, 8);
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        if (!d->loss_n) continue;
        const double *first = d->loss, *last = d->loss + (size_t)(d->loss_n - 1) * 6;
        double mn = first[3];
        for (int64_t k = 0; k < d->loss_n; k++)
            mn = fmin(mn, d->loss[(size_t)k * 6 + 3]);
        fprintf(f, "| %s | %.0f | %.3g | %.4f | %.4f | %.4f | %.0f | %.1f |\n", d->name,
                last[0], last[1], first[2], last[3], mn, last[4], last[5]);
    }
    fputc('\n', f);
    for (int i = 0; i < r->nds; i++)
        if (has_plot[i][2])
            fprintf(f, "![training loss, %s](loss-%s.png)\n\n", r->ds[i].name, r->ds[i].name);
}

/* A link to examples.html, and a note when the plots were skipped. */
static void md_notes(FILE *f, const mms_report_info_t *info) {
    if (info->examples > 0)
        fprintf(
            f,
            "## Examples\n\n[examples.html](examples.html): %d example queries with the results "
            "of every method and slider position, labelled with id, score, grade and tags "
            "(thumbnails in `thumbs/` when the catalog has images).\n\n",
            info->examples);
    if (info->plots_skipped)
        fputs(
            "*Plots were skipped (gnuplot missing or failed); `plots.gp` and the `.dat` files can "
            "draw them later.*\n\n",
            f);
}

/* The caller's settings (command, model, options). */
static void md_settings(FILE *f, const rep_t *r) {
    fputs("## Settings\n\n", f);
    if (r->o->settings && r->o->settings[0])
        fprintf(f, "%s\n\n", r->o->settings);
    else
        fputs("(none given)\n\n", f);
}

/* What each file of the report directory holds. */
static void md_files(FILE *f, const mms_report_info_t *info) {
    fputs(
        "## Files\n\n"
        "- `metrics.tsv`: dataset, method, metric, value\n"
        "- `queries.tsv`: dataset, method, query, rank, result, score, grade (every kept result)\n"
        "- `query-metrics.tsv`: dataset, method, query, nDCG@5 (all-Excellent), tag overlap and "
        "visual similarity of its results (per query, for paired comparisons)\n"
        "- `predictions.tsv`: dataset, method, query, rank, tag, correct\n"
        "- `plots.gp` with `grades-*.dat`, `slider-*.dat`, `loss-*.dat`: the plots' script and "
        "data\n",
        f);
    if (info->examples > 0)
        fputs("- `examples.html` (with `thumbs/`): example queries and their results\n", f);
}

mms_status report_write_md(const rep_t *r, const mms_report_info_t *info, int has_plot[][3]) {
    outfile_t o;
    MMS_CALL(report_out_open(&o, r->dir, "report.md"));
    FILE *f = o.f;
    md_intro(f, r);
    md_datasets(f, r);
    md_grades(f, r, has_plot);
    md_ndcg(f, r);
    md_paired(f, r);
    md_tags(f, r);
    md_slider(f, r, has_plot);
    md_loss(f, r, has_plot);
    md_notes(f, info);
    md_settings(f, r);
    md_files(f, info);
    MMS_CALL(report_out_commit(&o));
    return MMS_OK;
}