/* report.h: the evaluation report of `mmsage eval` (docs/evaluation.md,
 * "Report files"), written from accumulated metrics (judge.h).
 *
 * Into one directory, written whole under a temporary name and renamed into
 * place at the end (an existing one is refused unless force):
 *   report.md        tables like the paper's Table 1 (grade distribution) and
 *                    Table 2 (nDCG, on both ideals), tag prediction with the
 *                    Corel5k literature rows, the slider table, training loss,
 *                    settings, and links to the plots and examples
 *   metrics.tsv      dataset<TAB>method<TAB>metric<TAB>value (a header line first)
 *   queries.tsv      dataset, method, query, rank, result, score, grade
 *   predictions.tsv  dataset, method, query, rank, tag, correct (when tags were predicted)
 *   examples.html    a few queries, a table each with one row per method or
 *                    slider position, results labelled id/score/grade/tags
 *   thumbs/          for catalogs with image paths, the page's thumbnails
 *                    (linked relatively: the directory can be copied anywhere)
 *   plots.gp, *.dat  the gnuplot script and its data; grades-<d>.png,
 *                    slider-<d>.png, loss-<d>.png when gnuplot runs
 * gnuplot is run without a shell (posix_spawnp); when it is missing or fails,
 * the plots are skipped with a warning and the report is still written.
 *
 * Methods named "slider-<w>" (w the visual weight in [0, 1], e.g.
 * "slider-0.75") form the slider table and curve, in order of w.
 * Nothing here prints except warnings through mms_log.
 *
 * Files: report.c checks the options, builds each dataset's state and calls
 * one writer per output kind: report_tsv.c, report_plots.c, report_html.c,
 * report_md.c (they share report_internal.h).
 */
#ifndef MMS_REPORT_H
#define MMS_REPORT_H

#include "judge.h"
#include "mms_status.h"

typedef struct {
    const mms_eval_t *eval; /* borrowed: metrics, catalog and judge of one dataset */
    const char *loss_tsv;   /* borrowed path of the model's loss.tsv, or NULL */
} mms_report_dataset_t;

typedef struct {
    const char *out_dir;                  /* written as a whole: see mms_report_write */
    int force;                            /* replace an existing out_dir */
    const mms_report_dataset_t *datasets; /* ndatasets entries, distinct dataset names */
    int ndatasets;
    const char *title;    /* NULL: "mmsage evaluation" */
    const char *settings; /* Markdown for the Settings section (command, model, options), or NULL */
    const char *gnuplot;  /* program for the plots; NULL: "gnuplot" from PATH; "": no plots */
    int examples;         /* query images per dataset in examples.html (default 6; 0: no page) */
    int example_k;        /* results shown per row (default 6) */
} mms_report_opts_t;

void mms_report_opts_default(mms_report_opts_t *o);

typedef struct {
    int plots;         /* PNG files written */
    int plots_skipped; /* 1 if plots were wanted but gnuplot was missing or failed */
    int examples;      /* example queries in examples.html (0: no page written) */
} mms_report_info_t;

/* Write the report (info may be NULL). The directory is written under
 * "<out_dir>.tmp.<host>.<pid>" (common/mms_fs.h) and renamed into place when
 * every file is complete; an existing out_dir is refused (MMS_ERR_EXISTS)
 * unless o->force, and then replaced only at that rename. On failure nothing
 * is left: neither out_dir nor a temporary. */
mms_status mms_report_write(const mms_report_opts_t *o, mms_report_info_t *info);

/* The default dataset name of a catalog directory: its last path component
 * (a catalog named "catalog" takes its parent's name: run/catalog -> run),
 * with every run of bytes outside [A-Za-z0-9._-] turned into one '-', leading
 * and trailing '-' dropped, cut to MMS_EVAL_NAME_MAX; "dataset" if nothing is
 * left. Always a valid mms_eval_create name. Returns out. */
const char *mms_report_dataset_name(const char *catalog_dir, char *out, size_t cap);

/* 1 and *w if name is "slider-<w>" with w a number in [0, 1]; else 0. */
int mms_report_slider_weight(const char *name, double *w);

#endif
