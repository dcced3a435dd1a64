/* report.c: mms_report_write (see report.h): checks the options, builds each
 * dataset's state once (summaries, slider order, the loss log), then calls the
 * writers in order: the tsv files, the plots, examples.html, report.md, all
 * into a temporary directory that is renamed over the report directory only
 * when all succeeded. Also the output files' temporary-name-then-rename
 * helpers the writers share, and the default dataset name.
 *
 * Does not: format any output itself (report_tsv.c, report_plots.c,
 * report_html.c, report_md.c) or compute a metric (metrics.c).
 */
#define _GNU_SOURCE
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mms_fs.h"
#include "mms_log.h"
#include "report_internal.h"

void mms_report_opts_default(mms_report_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->examples = 6;
    o->example_k = 6;
}

int mms_report_slider_weight(const char *name, double *w) {
    if (strncmp(name, "slider-", 7) || !name[7]) return 0;
    char *end;
    double v = strtod(name + 7, &end);
    if (*end || !isfinite(v) || v < 0 || v > 1) return 0;
    *w = v;
    return 1;
}

/* ------------------------------------------------------ paired differences */

const char *const report_ref_methods[REPORT_NREF] = {"raw-visual", "vote-expansion", "ppr",
                                                      "fused"};

void report_paired_ndcg5(const mms_eval_t *e, int a, int b, double *mean, double *se, int64_t *n) {
    double s1 = 0, s2 = 0;
    int64_t k = 0, nq = mms_eval_queries(e, b);
    for (int64_t i = 0; i < nq; i++) {
        mms_eval_query_t qb, qa;
        mms_eval_query(e, b, i, &qb);
        if (qb.n == 0) continue;
        int64_t j = mms_eval_find_query(e, a, qb.query);
        if (j < 0) continue;
        mms_eval_query(e, a, j, &qa);
        if (qa.n == 0) continue;
        double d = qb.ndcg5 - qa.ndcg5;
        s1 += d, s2 += d * d;
        k++;
    }
    *n = k;
    *mean = k >= 2 ? s1 / (double)k : 0;
    *se = k >= 2 ? sqrt(fmax(0, (s2 - (double)k * *mean * *mean) / (double)(k - 1)) / (double)k)
                 : 0;
}

/* ---------------------------------------------------------------- files */

mms_status report_out_open(outfile_t *o, const char *dir, const char *name) {
    o->f = NULL;
    MMS_CALL(mms_path_join(o->final, sizeof o->final, dir, name));
    MMS_CALL(mms_file_tmpname(o->final, o->tmp, sizeof o->tmp));
    MMS_CALL(mms_fopen(o->tmp, "w", &o->f));
    return MMS_OK;
}

mms_status report_out_commit(outfile_t *o) {
    mms_status s = mms_fclose(&o->f, o->tmp);
    if (s == MMS_OK) s = mms_file_commit(o->tmp, o->final);
    if (s != MMS_OK) unlink(o->tmp); /* no metrics.tsv.tmp.* left by a full disk */
    return s;
}

void report_out_abort(outfile_t *o) {
    if (o->f) {
        fclose(o->f);
        o->f = NULL;
        unlink(o->tmp);
    }
}

const char *mms_report_dataset_name(const char *catalog_dir, char *out, size_t cap) {
    if (cap == 0) return out;
    char path[MMS_PATH_MAX];
    snprintf(path, sizeof path, "%s", catalog_dir ? catalog_dir : "");
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') path[--n] = '\0';
    char *b = strrchr(path, '/');
    const char *name = b ? b + 1 : path;
    /* a catalog called "catalog" inside a run directory: name it after the run */
    if (!strcmp(name, "catalog") && b && b > path) {
        *b = '\0';
        char *a = strrchr(path, '/');
        name = a ? a + 1 : path;
    }
    size_t max = cap - 1 < MMS_EVAL_NAME_MAX ? cap - 1 : MMS_EVAL_NAME_MAX, k = 0;
    for (const char *p = name; *p && k < max; p++) {
        char c = *p;
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (ok)
            out[k++] = c;
        else if (k > 0 && out[k - 1] != '-')
            out[k++] = '-';
    }
    while (k > 0 && out[k - 1] == '-') k--;
    out[k] = '\0';
    if (k == 0 || !strcmp(out, ".") || !strcmp(out, "..")) snprintf(out, cap, "dataset");
    return out;
}

/* ---------------------------------------------------------------- state */

static void ds_free(ds_t *d) {
    free(d->sum);
    free(d->slider);
    free(d->slider_w);
    free(d->loss);
}

/* Numeric lines of a loss.tsv (a header and malformed lines are skipped). A
 * missing file is a warning, not an error: the report goes on without it. */
static mms_status read_loss(ds_t *d) {
    if (!d->loss_path) return MMS_OK;
    if (!mms_path_exists(d->loss_path)) {
        mms_log_warn("report: %s: no such loss log; the loss curve is skipped", d->loss_path);
        return MMS_OK;
    }
    char *buf = NULL;
    size_t len = 0;
    MMS_CALL(mms_read_file(d->loss_path, &buf, &len));
    int64_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    mms_status s = mms_malloc((size_t)lines * 6 * sizeof *d->loss, &d->loss);
    if (s != MMS_OK) {
        free(buf);
        MMS_CALL(s);
    }
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        double v[6];
        char *p = line, *end;
        int k = 0;
        for (; k < 6; k++) {
            v[k] = strtod(p, &end);
            if (end == p || !isfinite(v[k])) break;
            p = end;
        }
        if (k < 6) continue;
        memcpy(d->loss + (size_t)d->loss_n * 6, v, sizeof v);
        d->loss_n++;
    }
    free(buf);
    if (d->loss_n == 0) mms_log_warn("report: %s has no loss lines", d->loss_path);
    return MMS_OK;
}

static mms_status ds_init(ds_t *d, const mms_report_dataset_t *in) {
    memset(d, 0, sizeof *d);
    d->e = in->eval;
    d->c = mms_eval_catalog(in->eval);
    d->name = mms_eval_dataset(in->eval);
    d->nm = mms_eval_methods(in->eval);
    d->loss_path = in->loss_tsv;
    int n = d->nm ? d->nm : 1;
    MMS_CALL(mms_calloc((size_t)n, sizeof *d->sum, &d->sum));
    MMS_CALL(mms_malloc((size_t)n * sizeof *d->slider, &d->slider));
    MMS_CALL(mms_malloc((size_t)n * sizeof *d->slider_w, &d->slider_w));
    for (int m = 0; m < d->nm; m++) {
        MMS_CALL(mms_eval_summarize(d->e, m, &d->sum[m]));
        d->any_results |= d->sum[m].queries > 0;
        d->any_tags |= d->sum[m].tag_queries > 0;
        double w;
        if (d->sum[m].queries > 0 && mms_report_slider_weight(mms_eval_method_name(d->e, m), &w)) {
            int i = d->nslider++; /* insertion by w */
            for (; i > 0 && d->slider_w[i - 1] > w; i--) {
                d->slider_w[i] = d->slider_w[i - 1];
                d->slider[i] = d->slider[i - 1];
            }
            d->slider_w[i] = w;
            d->slider[i] = m;
        }
    }
    MMS_CALL(read_loss(d));
    return MMS_OK;
}

mms_status mms_report_write(const mms_report_opts_t *o, mms_report_info_t *info_out) {
    MMS_CHECK(o && o->out_dir && o->out_dir[0], MMS_ERR_ARG, "report: no output directory");
    MMS_CHECK(o->ndatasets >= 1 && o->datasets, MMS_ERR_ARG, "report: no datasets");
    for (int i = 0; i < o->ndatasets; i++) {
        MMS_CHECK(o->datasets[i].eval, MMS_ERR_ARG, "report: dataset %d has no metrics", i);
        for (int k = 0; k < i; k++)
            MMS_CHECK(strcmp(mms_eval_dataset(o->datasets[i].eval),
                             mms_eval_dataset(o->datasets[k].eval)),
                      MMS_ERR_ARG, "report: dataset '%s' given twice",
                      mms_eval_dataset(o->datasets[i].eval));
    }
    char tmp[MMS_PATH_MAX] = "";
    MMS_CALL(mms_outdir_begin(o->out_dir, o->force, tmp, sizeof tmp));
    mms_report_info_t info = {0};
    rep_t r = {o, NULL, o->ndatasets, tmp};
    int(*has_plot)[3] = NULL;
    mms_status s;
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)r.nds, sizeof *r.ds, &r.ds));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)r.nds, sizeof *has_plot, &has_plot));
    for (int i = 0; i < r.nds; i++)
        MMS_CALL_GOTO(s, out, ds_init(&r.ds[i], &o->datasets[i]));
    MMS_CALL_GOTO(s, out, report_write_metrics(&r));
    MMS_CALL_GOTO(s, out, report_write_queries(&r));
    MMS_CALL_GOTO(s, out, report_write_plots(&r, &info, has_plot));
    MMS_CALL_GOTO(s, out, report_write_examples(&r, &info));
    MMS_CALL_GOTO(s, out, report_write_md(&r, &info, has_plot));
    MMS_CALL_GOTO(s, out, mms_outdir_commit(tmp, o->out_dir, o->force));
    tmp[0] = '\0';
    if (info_out) *info_out = info;
out:
    if (tmp[0]) mms_outdir_abort(tmp); /* a failed report leaves nothing */
    if (r.ds)
        for (int i = 0; i < r.nds; i++)
            ds_free(&r.ds[i]);
    free(r.ds);
    free(has_plot);
    return s;
}
