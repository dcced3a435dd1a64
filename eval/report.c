/* report.c: see report.h. Files are written one by one under temporary names
 * and renamed; gnuplot draws into temporary names that are renamed only when
 * it succeeds. */
#define _GNU_SOURCE
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mms_fs.h"
#include "mms_log.h"

extern char **environ;

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

/* ---------------------------------------------------------------- files */

typedef struct {
    char final[MMS_PATH_MAX];
    char tmp[MMS_PATH_MAX];
    FILE *f;
} outfile_t;

static mms_status out_open(outfile_t *o, const char *dir, const char *name) {
    o->f = NULL;
    MMS_CALL(mms_path_join(o->final, sizeof o->final, dir, name));
    MMS_CALL(mms_file_tmpname(o->final, o->tmp, sizeof o->tmp));
    MMS_CALL(mms_fopen(o->tmp, "w", &o->f));
    return MMS_OK;
}

static mms_status out_commit(outfile_t *o) {
    MMS_CALL(mms_fclose(&o->f, o->tmp));
    MMS_CALL(mms_file_commit(o->tmp, o->final));
    return MMS_OK;
}

static void out_abort(outfile_t *o) {
    if (o->f) {
        fclose(o->f);
        o->f = NULL;
        unlink(o->tmp);
    }
}

/* ---------------------------------------------------------------- state */

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
} rep_t;

static void ds_free(ds_t *d) {
    free(d->sum);
    free(d->slider);
    free(d->slider_w);
    free(d->loss);
}

static int contains_ci(const char *s, const char *sub) {
    size_t n = strlen(sub);
    for (; *s; s++)
        if (!strncasecmp(s, sub, n)) return 1;
    return 0;
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

/* ---------------------------------------------------------------- tsv */

static void put_metric_f(FILE *f, const ds_t *d, int m, const char *metric, double v) {
    fprintf(f, "%s\t%s\t%s\t%.6g\n", d->name, mms_eval_method_name(d->e, m), metric, v);
}

static void put_metric_i(FILE *f, const ds_t *d, int m, const char *metric, int64_t v) {
    fprintf(f, "%s\t%s\t%s\t%lld\n", d->name, mms_eval_method_name(d->e, m), metric, (long long)v);
}

static mms_status write_metrics(const rep_t *r) {
    outfile_t o;
    MMS_CALL(out_open(&o, r->o->out_dir, "metrics.tsv"));
    FILE *f = o.f;
    fprintf(f, "dataset\tmethod\tmetric\tvalue\n");
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        for (int m = 0; m < d->nm; m++) {
            const mms_eval_summary_t *s = &d->sum[m];
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
    mms_status s = out_commit(&o);
    if (s != MMS_OK) out_abort(&o);
    MMS_CALL(s);
    return MMS_OK;
}

static mms_status write_queries(const rep_t *r) {
    outfile_t o, p, qm;
    MMS_CALL(out_open(&o, r->o->out_dir, "queries.tsv"));
    mms_status s = out_open(&p, r->o->out_dir, "predictions.tsv");
    if (s != MMS_OK) {
        out_abort(&o);
        MMS_CALL(s);
    }
    s = out_open(&qm, r->o->out_dir, "query-metrics.tsv");
    if (s != MMS_OK) {
        out_abort(&o);
        out_abort(&p);
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
    s = out_commit(&o);
    if (s == MMS_OK) s = out_commit(&p);
    if (s == MMS_OK) s = out_commit(&qm);
    if (s != MMS_OK) {
        out_abort(&o);
        out_abort(&p);
        out_abort(&qm);
        MMS_CALL(s);
    }
    return MMS_OK;
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

/* ---------------------------------------------------------------- plots */

/* A gnuplot single-quoted string: only ' needs escaping (as ''). */
static void gp_str(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

typedef struct {
    char final[MMS_PATH_MAX];
    char tmp[MMS_PATH_MAX];
} plot_t;

#define MAX_PLOTS 1024

typedef struct {
    plot_t *p;
    int n;
} plots_t;

/* Register a plot and start it in the script: output to its temporary name. */
static mms_status gp_begin(FILE *gp, plots_t *pl, const char *dir, const char *png) {
    MMS_CHECK(pl->n < MAX_PLOTS, MMS_ERR_ARG, "report: more than %d plots", MAX_PLOTS);
    plot_t *p = &pl->p[pl->n++];
    MMS_CALL(mms_path_join(p->final, sizeof p->final, dir, png));
    MMS_CALL(mms_file_tmpname(p->final, p->tmp, sizeof p->tmp));
    fprintf(gp, "reset\nset output ");
    gp_str(gp, p->tmp);
    fputc('\n', gp);
    return MMS_OK;
}

/* Data file + plot commands of one dataset's grade bars. */
static mms_status plot_grades(const rep_t *r, const ds_t *d, FILE *gp, plots_t *pl) {
    char name[MMS_PATH_MAX], png[MMS_PATH_MAX];
    snprintf(name, sizeof name, "grades-%s.dat", d->name);
    snprintf(png, sizeof png, "grades-%s.png", d->name);
    outfile_t o;
    MMS_CALL(out_open(&o, r->o->out_dir, name));
    fprintf(o.f, "# method Excellent Good Acceptable Unacceptable (%% of top-%d results)\n",
            MMS_EVAL_K);
    for (int m = 0; m < d->nm; m++)
        if (d->sum[m].queries > 0)
            fprintf(o.f, "%s %.4f %.4f %.4f %.4f\n", mms_eval_method_name(d->e, m),
                    d->sum[m].grade_pct[3], d->sum[m].grade_pct[2], d->sum[m].grade_pct[1],
                    d->sum[m].grade_pct[0]);
    mms_status s = out_commit(&o);
    if (s != MMS_OK) out_abort(&o);
    MMS_CALL(s);
    MMS_CALL(gp_begin(gp, pl, r->o->out_dir, png));
    fprintf(gp,
            "set title '%s: grade of the top-%d results (judge: %s)'\n"
            "set style data histograms\nset style histogram clustered gap 1\n"
            "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
            "set ylabel '%% of results'\nset yrange [0:100]\nset grid ytics\n"
            "set xtics rotate by -25 nomirror\nset key outside right top\n",
            d->name, MMS_EVAL_K, mms_judge_kind_name(mms_judge_kind_of(mms_eval_judge(d->e))));
    fprintf(gp, "plot ");
    gp_str(gp, o.final);
    fprintf(gp,
            " using 2:xtic(1) title 'Excellent' lc rgb '#1a9850', '' using 3 title 'Good' lc rgb "
            "'#91cf60', '' using 4 title 'Acceptable' lc rgb '#fc8d59', '' using 5 title "
            "'Unacceptable' lc rgb '#d73027'\n");
    return MMS_OK;
}

static mms_status plot_slider(const rep_t *r, const ds_t *d, FILE *gp, plots_t *pl) {
    char name[MMS_PATH_MAX], png[MMS_PATH_MAX];
    snprintf(name, sizeof name, "slider-%s.dat", d->name);
    snprintf(png, sizeof png, "slider-%s.png", d->name);
    outfile_t o;
    MMS_CALL(out_open(&o, r->o->out_dir, name));
    fprintf(
        o.f,
        "# w_visual tag_overlap visual_sim ndcg@5 ndcg@5_ideal_excellent (over top-k_overlap)\n");
    for (int i = 0; i < d->nslider; i++) {
        const mms_eval_summary_t *s = &d->sum[d->slider[i]];
        fprintf(o.f, "%.4f %.6f %.6f %.6f %.6f\n", d->slider_w[i], s->tag_overlap, s->visual_sim,
                s->ndcg_gallery[1], s->ndcg_excellent[1]);
    }
    mms_status s = out_commit(&o);
    if (s != MMS_OK) out_abort(&o);
    MMS_CALL(s);
    int k = d->sum[d->slider[0]].k_overlap;
    MMS_CALL(gp_begin(gp, pl, r->o->out_dir, png));
    fprintf(
        gp,
        "set title '%s: the slider, visual weight w (1 = image only, 0 = tags only)'\n"
        "set xlabel 'w (visual weight)'\nset ylabel 'mean over queries'\nset xrange [-0.02:1.02]\n"
        "set yrange [0:*]\nset grid\nset key outside right top\n",
        d->name);
    fprintf(gp, "plot ");
    gp_str(gp, o.final);
    fprintf(gp,
            " using 1:2 with linespoints lw 2 pt 7 title 'tag overlap@%d', '' using 1:3 with "
            "linespoints lw 2 pt 5 title 'visual similarity@%d', '' using 1:4 with linespoints dt "
            "2 pt 9 "
            "title 'nDCG@5 (gallery ideal)'\n",
            k, k);
    return MMS_OK;
}

static mms_status plot_loss(const rep_t *r, const ds_t *d, FILE *gp, plots_t *pl) {
    char name[MMS_PATH_MAX], png[MMS_PATH_MAX];
    snprintf(name, sizeof name, "loss-%s.dat", d->name);
    snprintf(png, sizeof png, "loss-%s.png", d->name);
    outfile_t o;
    MMS_CALL(out_open(&o, r->o->out_dir, name));
    fprintf(o.f, "# step epoch loss smoothed pairs_per_s elapsed_s (from %s)\n", d->loss_path);
    for (int64_t i = 0; i < d->loss_n; i++) {
        const double *v = d->loss + (size_t)i * 6;
        fprintf(o.f, "%.0f %.6g %.6g %.6g %.6g %.6g\n", v[0], v[1], v[2], v[3], v[4], v[5]);
    }
    mms_status s = out_commit(&o);
    if (s != MMS_OK) out_abort(&o);
    MMS_CALL(s);
    MMS_CALL(gp_begin(gp, pl, r->o->out_dir, png));
    fprintf(gp,
            "set title '%s: training loss'\nset xlabel 'step'\nset ylabel 'loss'\nset grid\n"
            "set key top right\n",
            d->name);
    fprintf(gp, "plot ");
    gp_str(gp, o.final);
    fprintf(gp,
            " using 1:3 with points pt 7 ps 0.3 lc rgb '#9ecae1' title 'loss', '' using 1:4 with "
            "lines lw 2 lc rgb '#08519c' title 'smoothed'\n");
    return MMS_OK;
}

/* Run prog with one argument, stdin from /dev/null and stdout onto stderr (no
 * shell). Returns 0 and *code (exit status, 128 + signal) or an errno value
 * when it could not be started. */
static int run_program(const char *prog, const char *arg, int *code) {
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa)) return ENOMEM;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    char *argv[3] = {(char *)prog, (char *)arg, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) return rc;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return errno;
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return 0;
}

static mms_status write_plots(const rep_t *r, mms_report_info_t *info, int has_plot[][3]) {
    const char *prog = r->o->gnuplot ? r->o->gnuplot : "gnuplot";
    plots_t pl = {0};
    outfile_t o;
    mms_status s;
    MMS_CALL(mms_calloc(MAX_PLOTS, sizeof *pl.p, &pl.p));
    MMS_CALL_GOTO(s, fail, out_open(&o, r->o->out_dir, "plots.gp"));
    fprintf(o.f,
            "# plots.gp: the report's plots (written by mmsage eval); gnuplot plots.gp redraws "
            "them\n# under temporary names that mmsage renames to the final .png names.\n");
    fprintf(o.f,
            "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n  set terminal pngcairo size 960,540 "
            "noenhanced font ',11'\n} else {\n  set terminal png size 960,540 noenhanced\n}\n");
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        int at = pl.n;
        if (d->any_results) MMS_CALL_GOTO(s, fail_open, plot_grades(r, d, o.f, &pl));
        has_plot[i][0] = pl.n > at;
        at = pl.n;
        if (d->nslider >= 2) MMS_CALL_GOTO(s, fail_open, plot_slider(r, d, o.f, &pl));
        has_plot[i][1] = pl.n > at;
        at = pl.n;
        if (d->loss_n > 0) MMS_CALL_GOTO(s, fail_open, plot_loss(r, d, o.f, &pl));
        has_plot[i][2] = pl.n > at;
    }
    fprintf(o.f, "set output\n");
    MMS_CALL_GOTO(s, fail_open, out_commit(&o));
    if (pl.n == 0 || !prog[0]) {
        for (int i = 0; i < r->nds; i++)
            has_plot[i][0] = has_plot[i][1] = has_plot[i][2] = 0;
        free(pl.p); /* no plots wanted ("") or none to draw */
        return MMS_OK;
    }
    int code = 0, rc = run_program(prog, o.final, &code);
    int ok = rc == 0 && code == 0;
    for (int k = 0; k < pl.n && ok; k++)
        ok = mms_path_exists(pl.p[k].tmp);
    if (ok) {
        for (int k = 0; k < pl.n; k++)
            MMS_CALL_GOTO(s, fail, mms_file_commit(pl.p[k].tmp, pl.p[k].final));
        info->plots = pl.n;
    } else {
        if (rc == ENOENT || (rc == 0 && code == 127))
            mms_log_warn(
                "report: '%s' not found (install gnuplot-nox): plots skipped; the data and "
                "%s are in the report directory",
                prog, o.final);
        else if (rc)
            mms_log_warn("report: cannot run '%s' (%s): plots skipped", prog, strerror(rc));
        else
            mms_log_warn("report: '%s %s' failed (exit %d): plots skipped", prog, o.final, code);
        for (int k = 0; k < pl.n; k++)
            unlink(pl.p[k].tmp);
        for (int i = 0; i < r->nds; i++)
            has_plot[i][0] = has_plot[i][1] = has_plot[i][2] = 0;
        info->plots_skipped = 1;
    }
    free(pl.p);
    return MMS_OK;
fail_open:
    out_abort(&o);
fail:
    for (int k = 0; k < pl.n; k++)
        unlink(pl.p[k].tmp);
    free(pl.p);
    return s;
}

/* ---------------------------------------------------------------- examples.html */

static void html_puts(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* file:// URL of a catalog image path (relative paths are under the catalog). */
static void put_img_url(FILE *f, const mms_catalog_t *c, const char *path) {
    fputs("file://", f);
    const char *parts[2] = {path[0] == '/' ? "" : c->dir, path};
    for (int k = 0; k < 2; k++) {
        for (const unsigned char *p = (const unsigned char *)parts[k]; *p; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("/._-~", *p))
                fputc(*p, f);
            else
                fprintf(f, "%%%02X", *p);
        }
        if (k == 0 && parts[0][0]) fputc('/', f);
    }
}

static void put_thumb(FILE *f, const mms_catalog_t *c, int64_t row, const char *cls) {
    fprintf(f, "<img class=\"%s\" loading=\"lazy\" alt=\"", cls);
    html_puts(f, c->ids[row]);
    fputs("\" src=\"", f);
    if (c->paths[row]) put_img_url(f, c, c->paths[row]);
    fputs("\">", f);
}

static void put_query_info(FILE *f, const ds_t *d, int64_t q) {
    const mms_catalog_t *c = d->c;
    fputs("<p class=\"info\"><b>tags:</b> ", f);
    for (int64_t e = c->tag_ptr[q]; e < c->tag_ptr[q + 1]; e++) {
        if (e > c->tag_ptr[q]) fputs(", ", f);
        html_puts(f, c->tag_names[c->tag_idx[e]]);
    }
    if (c->obj_ptr && c->obj_ptr[q + 1] > c->obj_ptr[q]) {
        fputs("<br><b>objects:</b> ", f);
        for (int64_t e = c->obj_ptr[q]; e < c->obj_ptr[q + 1]; e++) {
            if (e > c->obj_ptr[q]) fputs(", ", f);
            html_puts(f, c->cat_names[c->obj_cat[e]]);
            fprintf(f, " &times;%d", c->obj_count[e]);
        }
    }
    const mms_judge_t *j = mms_eval_judge(d->e);
    if (mms_judge_kind_of(j) == MMS_JUDGE_COCO) {
        const char *names[256];
        int n = mms_judge_concepts(j, q, names, 256);
        fputs("<br><b>concepts (judge):</b> ", f);
        for (int k = 0; k < n && k < 256; k++) {
            if (k) fputs(", ", f);
            html_puts(f, names[k]);
        }
    }
    fputs("</p>\n", f);
}

/* Rows of one example: every method with results for q, sliders last by w. */
static void put_example(FILE *f, const ds_t *d, int64_t q, int kshow) {
    const mms_catalog_t *c = d->c;
    int order[256], n = 0;
    for (int m = 0; m < d->nm && n < 256; m++) {
        double w;
        if (!mms_report_slider_weight(mms_eval_method_name(d->e, m), &w)) order[n++] = m;
    }
    for (int i = 0; i < d->nslider && n < 256; i++)
        order[n++] = d->slider[i];
    int rows = 0;
    for (int i = 0; i < n; i++) {
        int64_t at = mms_eval_find_query(d->e, order[i], q);
        mms_eval_query_t r;
        if (at < 0) continue;
        mms_eval_query(d->e, order[i], at, &r);
        if (r.n > 0) rows++;
    }
    fputs("<h3>query ", f);
    html_puts(f, c->ids[q]);
    fputs("</h3>\n", f);
    put_query_info(f, d, q);
    fputs("<table>\n<tr><th>query</th><th>method / slider</th>", f);
    for (int k = 0; k < kshow; k++)
        fprintf(f, "<th>%d</th>", k + 1);
    fputs("</tr>\n", f);
    int first = 1;
    for (int i = 0; i < n; i++) {
        int m = order[i];
        int64_t at = mms_eval_find_query(d->e, m, q);
        mms_eval_query_t r;
        if (at < 0) continue;
        mms_eval_query(d->e, m, at, &r);
        if (r.n == 0) continue;
        fputs("<tr>", f);
        if (first) {
            fprintf(f, "<td rowspan=\"%d\" class=\"qcell\">", rows);
            put_thumb(f, c, q, "q");
            fputs("<br>", f);
            html_puts(f, c->ids[q]);
            fputs("</td>", f);
            first = 0;
        }
        double w;
        const char *mn = mms_eval_method_name(d->e, m);
        if (mms_report_slider_weight(mn, &w))
            fprintf(f, "<td class=\"m\">visual %.2f<br>conceptual %.2f</td>", w, 1 - w);
        else {
            fputs("<td class=\"m\">", f);
            html_puts(f, mn);
            fputs("</td>", f);
        }
        for (int k = 0; k < kshow; k++) {
            if (k >= r.n) {
                fputs("<td></td>", f);
                continue;
            }
            int g = r.grades[k];
            fprintf(f, "<td>");
            put_thumb(f, c, r.rows[k], g == 3 ? "g3" : g == 2 ? "g2" : g == 1 ? "g1" : "g0");
            fputs("<br>", f);
            html_puts(f, c->ids[r.rows[k]]);
            if (r.scores && !isnan(r.scores[k])) fprintf(f, " &middot; %.3f", (double)r.scores[k]);
            fprintf(f, "<br><span class=\"l%d\">%s</span></td>", g, mms_grade_name(g));
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* Example queries of a dataset: evenly spread over the queries that the
 * reference method (the first slider position, else the first method with
 * results) answered and that have an image path. Returns how many. */
static int pick_examples(const ds_t *d, int want, int64_t *out) {
    const mms_catalog_t *c = d->c;
    if (!c->paths || want <= 0) return 0;
    int ref = d->nslider ? d->slider[0] : -1;
    for (int m = 0; m < d->nm && ref < 0; m++)
        if (d->sum[m].queries > 0) ref = m;
    if (ref < 0) return 0;
    int64_t nq = mms_eval_queries(d->e, ref), ncand = 0;
    for (int64_t i = 0; i < nq; i++) {
        mms_eval_query_t q;
        mms_eval_query(d->e, ref, i, &q);
        ncand += q.n > 0 && c->paths[q.query];
    }
    if (ncand == 0) return 0;
    int n = want < ncand ? want : (int)ncand;
    int64_t seen = 0;
    int got = 0;
    for (int64_t i = 0; i < nq && got < n; i++) {
        mms_eval_query_t q;
        mms_eval_query(d->e, ref, i, &q);
        if (!(q.n > 0 && c->paths[q.query])) continue;
        if (seen == (int64_t)got * ncand / n) out[got++] = q.query;
        seen++;
    }
    return got;
}

static mms_status write_examples(const rep_t *r, mms_report_info_t *info) {
    int want = r->o->examples;
    int kshow = r->o->example_k > 0 ? r->o->example_k : 6;
    if (want <= 0) return MMS_OK;
    if (want > 1000) want = 1000;
    int64_t *pick = NULL;
    MMS_CALL(mms_malloc((size_t)want * sizeof *pick, &pick));
    int total = 0;
    for (int i = 0; i < r->nds; i++)
        total += pick_examples(&r->ds[i], want, pick);
    if (total == 0) {
        free(pick);
        return MMS_OK;
    }
    outfile_t o;
    mms_status s = out_open(&o, r->o->out_dir, "examples.html");
    if (s != MMS_OK) {
        free(pick);
        MMS_CALL(s);
    }
    FILE *f = o.f;
    const char *title = r->o->title ? r->o->title : "mmsage evaluation";
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
    html_puts(f, title);
    fputs(": examples</title>\n<style>\n"
          "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
          "table{border-collapse:collapse;margin-bottom:2em}\n"
          "th,td{padding:4px 6px;text-align:center;vertical-align:top;font-size:12px}\n"
          "tr+tr td{border-top:1px solid #ddd}\n"
          "img{width:150px;height:112px;object-fit:cover;display:block;margin:auto;border:4px "
          "solid #ccc}\n"
          "img.q{width:200px;height:150px;border-color:#333}\n"
          "img.g3{border-color:#1a9850}img.g2{border-color:#91cf60}img.g1{border-color:#fc8d59}"
          "img.g0{border-color:#d73027}\n"
          ".l3{color:#1a9850;font-weight:bold}.l2{color:#4d9221}.l1{color:#d9661f}.l0{color:#"
          "d73027}\n"
          "td.m{font-weight:bold;white-space:nowrap}.info{font-size:13px;max-width:70em}\n"
          "</style></head><body>\n<h1>",
          f);
    html_puts(f, title);
    fputs(
        ": examples</h1>\n<p>Each table is one query image (left) and, per row, the top "
        "results of one method or slider position (visual / conceptual weight). A result shows "
        "its id, score and the automatic judge's grade (frame colour: Excellent, Good, Acceptable, "
        "Unacceptable); docs/evaluation.md gives the rules. Images load from the catalogs' "
        "paths.tsv.</p>\n",
        f);
    total = 0;
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        int n = pick_examples(d, want, pick);
        if (n == 0) continue;
        fputs("<h2>", f);
        html_puts(f, d->name);
        fprintf(f, " (judge: %s)</h2>\n",
                mms_judge_kind_name(mms_judge_kind_of(mms_eval_judge(d->e))));
        for (int k = 0; k < n; k++)
            put_example(f, d, pick[k], kshow);
        total += n;
    }
    fputs("</body></html>\n", f);
    free(pick);
    s = out_commit(&o);
    if (s != MMS_OK) out_abort(&o);
    MMS_CALL(s);
    info->examples = total;
    return MMS_OK;
}

/* ---------------------------------------------------------------- report.md */

static void md_table_head(FILE *f, const char *const *cols, int n) {
    fputs("|", f);
    for (int k = 0; k < n; k++)
        fprintf(f, " %s |", cols[k]);
    fputs("\n|", f);
    for (int k = 0; k < n; k++)
        fputs(k ? "---:|" : "---|", f);
    fputc('\n', f);
}

static mms_status write_md(const rep_t *r, const mms_report_info_t *info, int has_plot[][3]) {
    outfile_t o;
    MMS_CALL(out_open(&o, r->o->out_dir, "report.md"));
    FILE *f = o.f;
    const char *title = r->o->title ? r->o->title : "mmsage evaluation";
    fprintf(f, "# %s\n\n", title);
    fputs("Automatic evaluation of image-to-image retrieval and tag prediction; the judge, the "
          "metrics and these files are described in docs/evaluation.md. Machine-readable numbers: "
          "`metrics.tsv`; every graded result: `queries.tsv`.\n\n",
          f);

    fputs("## Datasets\n\n", f);
    {
        const char *cols[] = {"dataset", "judge", "images",           "train (gallery)",
                              "test",    "tags",  "queries evaluated"};
        md_table_head(f, cols, 7);
    }
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        int64_t nq = 0;
        for (int m = 0; m < d->nm; m++) {
            int64_t v = d->sum[m].queries > d->sum[m].tag_queries ? d->sum[m].queries
                                                                  : d->sum[m].tag_queries;
            if (v > nq) nq = v;
        }
        fprintf(f, "| %s | %s | %lld | %lld | %lld | %d | %lld |\n", d->name,
                mms_judge_kind_name(mms_judge_kind_of(mms_eval_judge(d->e))), (long long)d->c->n,
                (long long)d->c->n_split[MMS_SPLIT_TRAIN], (long long)d->c->n_split[MMS_SPLIT_TEST],
                (int)d->c->ntags, (long long)nq);
    }
    fputs(
        "\nJudges: *coco* grades by the paper's three criteria (shared concept, all query objects "
        "present, single/multiple instances match; no object in common is Unacceptable); *tags* by "
        "the share of the query's tags the result carries (all / at least half / at least one / "
        "none); *planted* by the synthetic ground truth (same topic and cluster / same topic / "
        "same "
        "cluster / neither).\n\n",
        f);

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

    fputs(
        "## nDCG (the paper's Table 2)\n\nGain 2^grade - 1, discount log2(rank + 1). "
        "*all-Excellent* "
        "divides by the DCG of five Excellent results (the scale of the paper's 0.41 / 0.39); "
        "*gallery* divides by the best ranking the query's gallery allows. Tag overlap and visual "
        "similarity are means over the top-k results (k in the column).\n\n",
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

    int any_tags = 0;
    for (int i = 0; i < r->nds; i++)
        any_tags |= r->ds[i].any_tags;
    if (any_tags) {
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

    int any_slider = 0;
    for (int i = 0; i < r->nds; i++)
        any_slider |= r->ds[i].nslider > 0;
    if (any_slider) {
        fputs("## The slider: visual against conceptual intent\n\nQuery = image plus tags, fused "
              "with "
              "visual weight w (1 = image only). Tag overlap: mean share of the query's tags "
              "carried by "
              "each result; visual similarity: mean cosine of the raw features.\n\n",
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

    int any_loss = 0;
    for (int i = 0; i < r->nds; i++)
        any_loss |= r->ds[i].loss_n > 0;
    if (any_loss) {
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

    if (info->examples > 0)
        fprintf(
            f,
            "## Examples\n\n[examples.html](examples.html): %d query images with the results of "
            "every method and slider position, thumbnails labelled with id, score and grade.\n\n",
            info->examples);
    if (info->plots_skipped)
        fputs(
            "*Plots were skipped (gnuplot missing or failed); `plots.gp` and the `.dat` files can "
            "draw them later.*\n\n",
            f);

    fputs("## Settings\n\n", f);
    if (r->o->settings && r->o->settings[0])
        fprintf(f, "%s\n\n", r->o->settings);
    else
        fputs("(none given)\n\n", f);

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
    if (info->examples > 0) fputs("- `examples.html`: example queries with thumbnails\n", f);
    mms_status s = out_commit(&o);
    if (s != MMS_OK) out_abort(&o);
    MMS_CALL(s);
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
    MMS_CALL(mms_mkdir_p(o->out_dir));
    mms_report_info_t info = {0};
    rep_t r = {o, NULL, o->ndatasets};
    int(*has_plot)[3] = NULL;
    mms_status s;
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)r.nds, sizeof *r.ds, &r.ds));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)r.nds, sizeof *has_plot, &has_plot));
    for (int i = 0; i < r.nds; i++)
        MMS_CALL_GOTO(s, out, ds_init(&r.ds[i], &o->datasets[i]));
    MMS_CALL_GOTO(s, out, write_metrics(&r));
    MMS_CALL_GOTO(s, out, write_queries(&r));
    MMS_CALL_GOTO(s, out, write_plots(&r, &info, has_plot));
    MMS_CALL_GOTO(s, out, write_examples(&r, &info));
    MMS_CALL_GOTO(s, out, write_md(&r, &info, has_plot));
    if (info_out) *info_out = info;
out:
    if (r.ds)
        for (int i = 0; i < r.nds; i++)
            ds_free(&r.ds[i]);
    free(r.ds);
    free(has_plot);
    return s;
}
