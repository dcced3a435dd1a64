/* report_internal.h: what the report's writers share: the temporary-then-rename
 * output file, the per-dataset state (summaries, slider order, loss log) that
 * report.c builds once, and one writer per output kind:
 *   report_tsv.c    metrics.tsv, queries.tsv, predictions.tsv, query-metrics.tsv
 *   report_plots.c  plots.gp, the .dat files and the PNGs (runs gnuplot)
 *   report_html.c   examples.html
 *   report_md.c     report.md
 * Not a public API: callers use report.h. The writers only read the state.
 */
#ifndef MMS_REPORT_INTERNAL_H
#define MMS_REPORT_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "mms_fs.h"
#include "report.h"

/* One output file, written under tmp and renamed to final by report_out_commit. */
typedef struct {
    char final[MMS_PATH_MAX];
    char tmp[MMS_PATH_MAX];
    FILE *f;
} outfile_t;

/* Open dir/name under a temporary name. */
mms_status report_out_open(outfile_t *o, const char *dir, const char *name);
/* Close (checking every write reached the disk) and rename into place. The
 * file is closed and, on failure, its temporary removed whatever happens, so
 * a failed commit leaves nothing for report_out_abort to do. */
mms_status report_out_commit(outfile_t *o);
/* Close (if open) and remove the temporary file. */
void report_out_abort(outfile_t *o);

/* One dataset of the report. */
typedef struct {
    const mms_eval_t *e;
    const mms_catalog_t *c;
    const char *name;
    int nm;
    mms_eval_summary_t *sum; /* nm */
    int *slider;             /* methods named slider-<w>, by w */
    double *slider_w;
    int nslider;
    int any_results, any_tags;
    /* loss log */
    const char *loss_path;
    int64_t loss_n;
    double *loss; /* loss_n x 6: step, epoch, loss, smoothed, pairs_per_s, elapsed_s */
} ds_t;

typedef struct {
    const mms_report_opts_t *o;
    ds_t *ds;
    int nds;
    const char *dir; /* where the writers write: the report's temporary directory */
} rep_t;

/* The baselines every method is compared with, query by query, in the
 * report (those present with results): REPORT_NREF names. */
#define REPORT_NREF 4
extern const char *const report_ref_methods[REPORT_NREF];

/* Mean and standard error (sd / sqrt(n)) of the per-query difference
 * b - a of nDCG@5 (all-Excellent scale) over the n queries both methods
 * answered with results (report.c); mean and se 0 when n < 2. */
void report_paired_ndcg5(const mms_eval_t *e, int a, int b, double *mean, double *se, int64_t *n);

/* report_tsv.c */
mms_status report_write_metrics(const rep_t *r);
mms_status report_write_queries(const rep_t *r);

/* report_plots.c: has_plot[i] = {grades, slider, loss} drawn for dataset i. */
mms_status report_write_plots(const rep_t *r, mms_report_info_t *info, int has_plot[][3]);

/* report_html.c: sets info->examples. */
mms_status report_write_examples(const rep_t *r, mms_report_info_t *info);

/* report_md.c */
mms_status report_write_md(const rep_t *r, const mms_report_info_t *info, int has_plot[][3]);

#endif
