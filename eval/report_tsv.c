/* report_tsv.c: the report's machine-readable files: metrics.tsv (one line per
 * dataset, method and metric), queries.tsv (every kept result with its score
 * and grade), predictions.tsv (every predicted tag, correct or not) and
 * query-metrics.tsv (per query, for paired comparisons).
 *
 * Does not: compute metrics (metrics.c summarises; this only prints them).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>

#include "report_internal.h"

static void put_metric_f(FILE *f, const ds_t *d, int m, const char *metric, double v) {
    fprintf(f, "%s\t%s\t%s\t%.6g\n", d->name, mms_eval_method_name(d->e, m), metric, v);
}

static void put_metric_i(FILE *f, const ds_t *d, int m, const char *metric, int64_t v) {
    fprintf(f, "%s\t%s\t%s\t%lld\n", d->name, mms_eval_method_name(d->e, m), metric, (long long)v);
}

mms_status report_write_metrics(const rep_t *r) {
    outfile_t o;
    MMS_CALL(report_out_open(&o, r->dir, "metrics.tsv"));
    FILE *f = o.f;
    fprintf(f, "dataset\tmethod\tmetric\tvalue\n");
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        for (int m = 0; m < d->nm; m++) {
            const mms_eval_summary_t *s = &d->sum[m];
            if (s->queries > 0 || s->tag_queries > 0) /* the queries' split: val or test */
                fprintf(f, "%s\t%s\tsplit\t%s\n", d->name, mms_eval_method_name(d->e, m),
                        mms_split_name(mms_eval_split(d->e)));
            if (s->queries > 0) {
                put_metric_i(f, d, m, "queries", s->queries);
                put_metric_f(f, d, m, "ndcg@3-ideal-excellent", s->ndcg_excellent[0]);
                put_metric_f(f, d, m, "ndcg@5-ideal-excellent", s->ndcg_excellent[1]);
                put_metric_f(f, d, m, "ndcg@3", s->ndcg_gallery[0]);
                put_metric_f(f, d, m, "ndcg@5", s->ndcg_gallery[1]);
                for (int g = 0; g < 4; g++) {
                    char name[32];
                    snprintf(name, sizeof name, "grade%d-pct", g);
                    put_metric_f(f, d, m, name, s->grade_pct[g]);
                }
                put_metric_f(f, d, m, "tag-overlap", s->tag_overlap);
                put_metric_f(f, d, m, "visual-sim", s->visual_sim);
                put_metric_i(f, d, m, "overlap-k", s->k_overlap);
                put_metric_i(f, d, m, "short-lists", s->short_lists);
                /* paired per-query nDCG@5 differences against each baseline */
                for (int b = 0; b < REPORT_NREF; b++) {
                    int mb = mms_eval_find_method(d->e, report_ref_methods[b]);
                    if (mb < 0 || mb == m || d->sum[mb].queries == 0) continue;
                    double mean, se;
                    int64_t n;
                    report_paired_ndcg5(d->e, mb, m, &mean, &se, &n);
                    if (n < 2) continue;
                    char name[96];
                    snprintf(name, sizeof name, "paired-ndcg@5-minus-%s", report_ref_methods[b]);
                    put_metric_f(f, d, m, name, mean);
                    snprintf(name, sizeof name, "paired-ndcg@5-minus-%s-se", report_ref_methods[b]);
                    put_metric_f(f, d, m, name, se);
                }
            }
            if (s->tag_queries > 0) {
                put_metric_i(f, d, m, "tag-queries", s->tag_queries);
                put_metric_f(f, d, m, "tag-P", s->tag_p);
                put_metric_f(f, d, m, "tag-R", s->tag_r);
                put_metric_i(f, d, m, "tag-N+", s->tag_nplus);
                put_metric_i(f, d, m, "tag-words", s->tag_words);
            }
        }
    }
    MMS_CALL(report_out_commit(&o));
    return MMS_OK;
}

mms_status report_write_queries(const rep_t *r) {
    outfile_t o, p, qm;
    MMS_CALL(report_out_open(&o, r->dir, "queries.tsv"));
    mms_status s = report_out_open(&p, r->dir, "predictions.tsv");
    if (s != MMS_OK) {
        report_out_abort(&o);
        MMS_CALL(s);
    }
    s = report_out_open(&qm, r->dir, "query-metrics.tsv");
    if (s != MMS_OK) {
        report_out_abort(&o);
        report_out_abort(&p);
        MMS_CALL(s);
    }
    fprintf(o.f, "dataset\tmethod\tquery\trank\tresult\tscore\tgrade\n");
    fprintf(p.f, "dataset\tmethod\tquery\trank\ttag\tcorrect\n");
    fprintf(qm.f, "dataset\tmethod\tquery\tndcg@5-ideal-excellent\ttag-overlap\tvisual-sim\n");
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        const mms_catalog_t *c = d->c;
        for (int m = 0; m < d->nm; m++) {
            const char *mn = mms_eval_method_name(d->e, m);
            int64_t nq = mms_eval_queries(d->e, m);
            for (int64_t k = 0; k < nq; k++) {
                mms_eval_query_t q;
                mms_eval_query(d->e, m, k, &q);
                if (q.n > 0)
                    fprintf(qm.f, "%s\t%s\t%s\t%.6f\t%.6f\t%.6f\n", d->name, mn, c->ids[q.query],
                            q.ndcg5, q.overlap, q.visual);
                for (int t = 0; t < q.n; t++) {
                    fprintf(o.f, "%s\t%s\t%s\t%d\t%s\t", d->name, mn, c->ids[q.query], t + 1,
                            c->ids[q.rows[t]]);
                    if (q.scores && !isnan(q.scores[t]))
                        fprintf(o.f, "%.6g", (double)q.scores[t]);
                    else
                        fputs("nan", o.f);
                    fprintf(o.f, "\t%d\n", q.grades[t]);
                }
                for (int t = 0; t < q.ntags; t++) {
                    int correct = 0;
                    for (int64_t e = c->tag_ptr[q.query]; e < c->tag_ptr[q.query + 1]; e++)
                        correct |= c->tag_idx[e] == q.tags[t];
                    fprintf(p.f, "%s\t%s\t%s\t%d\t%s\t%d\n", d->name, mn, c->ids[q.query], t + 1,
                            c->tag_names[q.tags[t]], correct);
                }
            }
        }
    }
    s = report_out_commit(&o);
    if (s == MMS_OK) s = report_out_commit(&p);
    if (s == MMS_OK) s = report_out_commit(&qm);
    if (s != MMS_OK) {
        report_out_abort(&o);
        report_out_abort(&p);
        report_out_abort(&qm);
        MMS_CALL(s);
    }
    return MMS_OK;
}
