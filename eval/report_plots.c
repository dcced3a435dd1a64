/* report_plots.c: plots.gp and its data files (grades-<d>.dat, slider-<d>.dat,
 * loss-<d>.dat), and the PNGs: gnuplot is run once, without a shell, in the
 * report directory (plots.gp names its files relative to it, so it still works
 * after the directory is renamed into place), drawing into temporary names that
 * are renamed only when it succeeds. A missing or
 * failing gnuplot is a warning and the report goes on without plots.
 *
 * Does not: decide which plots report.md links (it reads has_plot).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mms_fs.h"
#include "mms_log.h"
#include "report_internal.h"

extern char **environ;

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

/* The last component of path (the script runs in the report directory). */
static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* Register a plot and start it in the script: output to its temporary name. */
static mms_status gp_begin(FILE *gp, plots_t *pl, const char *dir, const char *png) {
    MMS_CHECK(pl->n < MAX_PLOTS, MMS_ERR_ARG, "report: more than %d plots", MAX_PLOTS);
    plot_t *p = &pl->p[pl->n++];
    MMS_CALL(mms_path_join(p->final, sizeof p->final, dir, png));
    MMS_CALL(mms_file_tmpname(p->final, p->tmp, sizeof p->tmp));
    fprintf(gp, "reset\nset output ");
    gp_str(gp, base_name(p->tmp));
    fputc('\n', gp);
    return MMS_OK;
}

/* Data file + plot commands of one dataset's grade bars. */
static mms_status plot_grades(const rep_t *r, const ds_t *d, FILE *gp, plots_t *pl) {
    char name[MMS_PATH_MAX], png[MMS_PATH_MAX];
    snprintf(name, sizeof name, "grades-%s.dat", d->name);
    snprintf(png, sizeof png, "grades-%s.png", d->name);
    outfile_t o;
    MMS_CALL(report_out_open(&o, r->dir, name));
    fprintf(o.f, "# method Excellent Good Acceptable Unacceptable (%% of top-%d results)\n",
            MMS_EVAL_K);
    for (int m = 0; m < d->nm; m++)
        if (d->sum[m].queries > 0)
            fprintf(o.f, "%s %.4f %.4f %.4f %.4f\n", mms_eval_method_name(d->e, m),
                    d->sum[m].grade_pct[3], d->sum[m].grade_pct[2], d->sum[m].grade_pct[1],
                    d->sum[m].grade_pct[0]);
    MMS_CALL(report_out_commit(&o));
    MMS_CALL(gp_begin(gp, pl, r->dir, png));
    fprintf(gp,
            "set title '%s: grade of the top-%d results (judge: %s)'\n"
            "set style data histograms\nset style histogram clustered gap 1\n"
            "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
            "set ylabel '%% of results'\nset yrange [0:100]\nset grid ytics\n"
            "set xtics rotate by -25 nomirror\nset key outside right top\n",
            d->name, MMS_EVAL_K, mms_judge_kind_name(mms_judge_kind_of(mms_eval_judge(d->e))));
    fprintf(gp, "plot ");
    gp_str(gp, name);
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
    MMS_CALL(report_out_open(&o, r->dir, name));
    fprintf(
        o.f,
        "# w_visual tag_overlap visual_sim ndcg@5 ndcg@5_ideal_excellent (over top-k_overlap)\n");
    for (int i = 0; i < d->nslider; i++) {
        const mms_eval_summary_t *s = &d->sum[d->slider[i]];
        fprintf(o.f, "%.4f %.6f %.6f %.6f %.6f\n", d->slider_w[i], s->tag_overlap, s->visual_sim,
                s->ndcg_gallery[1], s->ndcg_excellent[1]);
    }
    MMS_CALL(report_out_commit(&o));
    int k = d->sum[d->slider[0]].k_overlap;
    MMS_CALL(gp_begin(gp, pl, r->dir, png));
    fprintf(
        gp,
        "set title '%s: the slider, visual weight w (1 = image only, 0 = tags only)'\n"
        "set xlabel 'w (visual weight)'\nset ylabel 'mean over queries'\nset xrange [-0.02:1.02]\n"
        "set yrange [0:*]\nset grid\nset key outside right top\n",
        d->name);
    fprintf(gp, "plot ");
    gp_str(gp, name);
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
    MMS_CALL(report_out_open(&o, r->dir, name));
    fprintf(o.f, "# step epoch loss smoothed pairs_per_s elapsed_s (from %s)\n", d->loss_path);
    for (int64_t i = 0; i < d->loss_n; i++) {
        const double *v = d->loss + (size_t)i * 6;
        fprintf(o.f, "%.0f %.6g %.6g %.6g %.6g %.6g\n", v[0], v[1], v[2], v[3], v[4], v[5]);
    }
    MMS_CALL(report_out_commit(&o));
    MMS_CALL(gp_begin(gp, pl, r->dir, png));
    fprintf(gp,
            "set title '%s: training loss'\nset xlabel 'step'\nset ylabel 'loss'\nset grid\n"
            "set key top right\n",
            d->name);
    fprintf(gp, "plot ");
    gp_str(gp, name);
    fprintf(gp,
            " using 1:3 with points pt 7 ps 0.3 lc rgb '#9ecae1' title 'loss', '' using 1:4 with "
            "lines lw 2 lc rgb '#08519c' title 'smoothed'\n");
    return MMS_OK;
}

/* Run prog with one argument in directory dir, stdin from /dev/null and stdout
 * onto stderr (no shell). Returns 0 and *code (exit status, 128 + signal) or
 * an errno value when it could not be started. */
static int run_program(const char *prog, const char *arg, const char *dir, int *code) {
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa)) return ENOMEM;
    posix_spawn_file_actions_addchdir_np(&fa, dir);
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

mms_status report_write_plots(const rep_t *r, mms_report_info_t *info, int has_plot[][3]) {
    const char *prog = r->o->gnuplot ? r->o->gnuplot : "gnuplot";
    plots_t pl = {0};
    outfile_t o;
    mms_status s;
    MMS_CALL(mms_calloc(MAX_PLOTS, sizeof *pl.p, &pl.p));
    MMS_CALL_GOTO(s, fail, report_out_open(&o, r->dir, "plots.gp"));
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
    MMS_CALL_GOTO(s, fail_open, report_out_commit(&o));
    if (pl.n == 0 || !prog[0]) {
        for (int i = 0; i < r->nds; i++)
            has_plot[i][0] = has_plot[i][1] = has_plot[i][2] = 0;
        free(pl.p); /* no plots wanted ("") or none to draw */
        return MMS_OK;
    }
    /* a relative prog ("./gp") names a file of the caller's directory */
    char progbuf[MMS_PATH_MAX];
    if (strchr(prog, '/') && prog[0] != '/') {
        char cwd[MMS_PATH_MAX];
        if (getcwd(cwd, sizeof cwd) && mms_path_join(progbuf, sizeof progbuf, cwd, prog) == MMS_OK)
            prog = progbuf;
        mms_error_clear();
    }
    int code = 0, rc = run_program(prog, "plots.gp", r->dir, &code);
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
                "plots.gp are in the report directory",
                prog);
        else if (rc)
            mms_log_warn("report: cannot run '%s' (%s): plots skipped", prog, strerror(rc));
        else
            mms_log_warn("report: '%s plots.gp' failed (exit %d): plots skipped", prog, code);
        for (int k = 0; k < pl.n; k++)
            unlink(pl.p[k].tmp);
        for (int i = 0; i < r->nds; i++)
            has_plot[i][0] = has_plot[i][1] = has_plot[i][2] = 0;
        info->plots_skipped = 1;
    }
    free(pl.p);
    return MMS_OK;
fail_open:
    report_out_abort(&o);
fail:
    for (int k = 0; k < pl.n; k++)
        unlink(pl.p[k].tmp);
    free(pl.p);
    return s;
}
