/* test_report.c: a report for fake metrics (a tiny COCO-like catalog with
 * image paths, baselines, model-like methods, slider positions, a loss log):
 * metrics.tsv lines, report.md sections, queries/predictions TSV, the
 * examples page, no temporary files left; plots when gnuplot is there, and a
 * warning plus a complete report when it is not (PATH emptied) or fails. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_test.h"
#include "report.h"

static char *slurp(const char *dir, const char *name) {
    char p[MMS_PATH_MAX];
    char *buf = NULL;
    size_t len;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (mms_read_file(p, &buf, &len) != MMS_OK) {
        fprintf(stderr, "cannot read %s\n", p);
        return NULL;
    }
    return buf;
}

static int has(const char *text, const char *sub) {
    if (text && strstr(text, sub)) return 1;
    fprintf(stderr, "missing: '%s'\n", sub);
    return 0;
}

static int count_lines(const char *text) {
    int n = 0;
    for (; text && *text; text++)
        n += *text == '\n';
    return n;
}

/* Files whose name contains ".tmp." in dir. */
static int tmp_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) {
            fprintf(stderr, "leftover %s\n", e->d_name);
            n++;
        }
    closedir(d);
    return n;
}

static int file_exists(const char *dir, const char *name) {
    char p[MMS_PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return mms_path_exists(p);
}

static mms_catalog_t *make_catalog(const char *root) {
    char dir[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/cat", root);
    mms_catalog_writer_t *w = NULL;
    T_OK(mms_catalog_writer_open(dir, 1, 2, 0, "test_report", &w));
    static const char *cats[4] = {"person", "dog", "cat", "car"};
    for (int i = 0; i < 24; i++) {
        char id[16], path[64];
        snprintf(id, sizeof id, "%d", 100 + i);
        snprintf(path, sizeof path, "/data/img %d&.jpg", i); /* needs URL and HTML escaping */
        const char *on[2] = {cats[i % 4], cats[(i / 4) % 4]};
        int oc[2] = {1 + i % 3, 1};
        int no = on[0] == on[1] ? 1 : 2;
        const char *caps[2] = {"a photo of a small thing", "a small thing outdoors"};
        float x[2] = {(float)(i % 5), (float)(i % 7)};
        mms_catalog_row_t r = {0};
        r.id = id;
        r.split = i < 18 ? MMS_SPLIT_TRAIN : MMS_SPLIT_TEST;
        r.tags = on;
        r.ntags = no;
        r.features = x;
        r.obj_names = on;
        r.obj_counts = oc;
        r.nobj = no;
        r.captions = caps;
        r.ncaptions = 2;
        r.path = path;
        T_OK(mms_catalog_writer_add(w, &r));
    }
    T_OK(mms_catalog_writer_finish(&w));
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(dir, &c));
    return c;
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_WARN);
    char root[MMS_PATH_MAX], out[MMS_PATH_MAX], loss[MMS_PATH_MAX];
    snprintf(root, sizeof root, "%s", mms_test_tmpdir("report"));
    snprintf(out, sizeof out, "%s/report", root);
    snprintf(loss, sizeof loss, "%s/loss.tsv", root);
    FILE *f = fopen(loss, "w");
    T_CHECK(f != NULL);
    if (!f) return mms_test_finish("test_report");
    fprintf(f, "step\tepoch\tloss\tsmoothed\tpairs_per_s\telapsed_s\n");
    for (int s = 1; s <= 50; s++)
        fprintf(f, "%d\t%.4f\t%.6f\t%.6f\t%.1f\t%.2f\n", s * 10, s / 50.0, 20.0 / s + 1,
                20.0 / s + 1.5, 1000.0, s * 0.1);
    fclose(f);

    mms_catalog_t *c = make_catalog(root);
    mms_judge_t *j = NULL;
    mms_eval_t *e = NULL;
    T_OK(mms_judge_create(c, &j));
    T_EQ_INT(mms_judge_kind_of(j), MMS_JUDGE_COCO);
    T_OK(mms_eval_create(c, j, "coco-fake", &e));
    int64_t q[6];
    for (int i = 0; i < 6; i++)
        q[i] = 18 + i;
    T_OK(mms_eval_add_baselines(e, q, 6, MMS_BASELINE_ALL, 5, 1));
    /* model-like methods: fixed rankings, with scores and predicted tags */
    const char *methods[] = {"gnn-image", "gnn-image+tags", "slider-0.00", "slider-0.50",
                             "slider-1.00"};
    for (int k = 0; k < 5; k++) {
        int m;
        T_OK(mms_eval_method(e, methods[k], k >= 2 ? 10 : 5, &m));
        for (int i = 0; i < 6; i++) {
            int64_t rows[10];
            float sc[10];
            for (int t = 0; t < 10; t++) {
                rows[t] = (i + 3 * k + t) % 18;
                sc[t] = 1.0f - 0.05f * (float)t;
            }
            T_OK(mms_eval_add_results(e, m, q[i], rows, sc, 10));
            if (k < 2) {
                int32_t tags[2] = {0, 1};
                T_OK(mms_eval_add_tags(e, m, q[i], tags, 2));
            }
        }
    }
    mms_report_dataset_t ds = {e, loss};
    mms_report_opts_t o;
    mms_report_opts_default(&o);
    o.out_dir = out;
    o.datasets = &ds;
    o.ndatasets = 1;
    o.settings = "- command: `mmsage eval --fake`\n- seed: 1";
    o.examples = 3;
    mms_report_info_t info;
    T_OK(mms_report_write(&o, &info));
    T_EQ_INT(info.examples, 3);

    char *metrics = slurp(out, "metrics.tsv");
    T_CHECK(has(metrics, "dataset\tmethod\tmetric\tvalue\n"));
    const char *must[] = {"coco-fake\traw-visual\tndcg@5-ideal-excellent\t",
                          "coco-fake\traw-visual\tndcg@3-ideal-excellent\t",
                          "coco-fake\traw-visual\tndcg@5\t",
                          "coco-fake\traw-visual\tndcg@3\t",
                          "coco-fake\traw-visual\tgrade0-pct\t",
                          "coco-fake\traw-visual\tgrade3-pct\t",
                          "coco-fake\traw-visual\ttag-P\t",
                          "coco-fake\traw-visual\ttag-R\t",
                          "coco-fake\traw-visual\ttag-N+\t",
                          "coco-fake\traw-visual\ttag-overlap\t",
                          "coco-fake\traw-visual\tvisual-sim\t",
                          "coco-fake\tgnn-image+tags\tndcg@5\t",
                          "coco-fake\tslider-0.50\ttag-overlap\t",
                          "coco-fake\tslider-0.50\toverlap-k\t10\n",
                          "coco-fake\ttag-oracle\tndcg@5\t",
                          "coco-fake\ttag-prior\ttag-P\t",
                          "coco-fake\trandom\tqueries\t6\n"};
    for (size_t k = 0; k < sizeof must / sizeof must[0]; k++)
        T_CHECK(has(metrics, must[k]));
    T_CHECK(!strstr(metrics, "tag-prior\tndcg@5")); /* annotation-only method */
    /* every line has 4 fields */
    int bad = 0;
    for (char *line = metrics; line && *line;) {
        char *nl = strchr(line, '\n');
        int tabs = 0;
        for (char *p = line; p < nl; p++)
            tabs += *p == '\t';
        bad += tabs != 3;
        line = nl ? nl + 1 : NULL;
    }
    T_EQ_INT(bad, 0);

    char *md = slurp(out, "report.md");
    const char *sections[] = {"## Datasets",          "## Graded relevance", "## nDCG",
                              "## Tag prediction",    "## The slider",       "## Training loss",
                              "## Examples",          "## Settings",         "mmsage eval --fake",
                              "| coco-fake | coco |", "0.41 | 0.39",         "| 0.50 |",
                              "examples.html"};
    for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++)
        T_CHECK(has(md, sections[k]));
    T_CHECK(!strstr(md, "CMRM")); /* literature rows only for Corel5k */

    char *qt = slurp(out, "queries.tsv");
    T_CHECK(has(qt, "dataset\tmethod\tquery\trank\tresult\tscore\tgrade\n"));
    T_CHECK(has(qt, "coco-fake\tgnn-image\t118\t1\t"));
    /* 6 queries x (raw-visual 5 + random 5 + oracle 5 + 2 x 5 + 3 x 10) + header */
    T_EQ_INT(count_lines(qt), 1 + 6 * (15 + 10 + 30));
    char *pt = slurp(out, "predictions.tsv");
    T_CHECK(has(pt, "coco-fake\tgnn-image\t118\t1\t"));
    /* per query: 6 queries x 8 methods with results + header; the paired steps in report.md */
    char *qm = slurp(out, "query-metrics.tsv");
    T_CHECK(has(qm, "dataset\tmethod\tquery\tndcg@5-ideal-excellent\ttag-overlap\tvisual-sim\n"));
    T_CHECK(has(qm, "coco-fake\tslider-0.50\t118\t"));
    T_EQ_INT(count_lines(qm), 1 + 6 * 8);
    T_CHECK(has(md, "step: overlap change +- paired SE"));
    T_CHECK(has(md, " +- "));
    free(qm);

    char *html = slurp(out, "examples.html");
    T_CHECK(has(html, "<img class=\"q\""));
    T_CHECK(has(html, "src=\"file:///data/img%2012%26.jpg\""));
    T_CHECK(has(html, "visual 0.50<br>conceptual 0.50"));
    T_CHECK(has(html, "Excellent") || has(html, "Good"));

    T_EQ_INT(tmp_leftovers(out), 0);
    T_CHECK(file_exists(out, "plots.gp") && file_exists(out, "grades-coco-fake.dat") &&
            file_exists(out, "slider-coco-fake.dat") && file_exists(out, "loss-coco-fake.dat"));

    const char *path = getenv("PATH");
    char *saved = path ? strdup(path) : NULL;
    /* gnuplot present on this machine? then the three plots exist */
    if (info.plots_skipped) {
        fprintf(stderr, "test_report: gnuplot not available here: plot files not checked\n");
    } else {
        T_EQ_INT(info.plots, 3);
        T_CHECK(file_exists(out, "grades-coco-fake.png") &&
                file_exists(out, "slider-coco-fake.png") && file_exists(out, "loss-coco-fake.png"));
        T_CHECK(has(md, "](grades-coco-fake.png)"));
    }

    /* no gnuplot in PATH: a warning, no plots, the report still complete */
    mms_rm_rf(out);
    setenv("PATH", "", 1);
    T_OK(mms_report_write(&o, &info));
    if (saved) setenv("PATH", saved, 1);
    T_EQ_INT(info.plots, 0);
    T_EQ_INT(info.plots_skipped, 1);
    T_CHECK(!file_exists(out, "grades-coco-fake.png"));
    T_CHECK(file_exists(out, "metrics.tsv") && file_exists(out, "report.md") &&
            file_exists(out, "examples.html"));
    free(md);
    md = slurp(out, "report.md");
    T_CHECK(has(md, "Plots were skipped"));
    T_CHECK(!strstr(md, ".png)"));
    T_EQ_INT(tmp_leftovers(out), 0);

    /* an existing report is refused without force, untouched */
    T_FAILS(mms_report_write(&o, &info), MMS_ERR_EXISTS);
    T_MSG_HAS("--force");
    T_CHECK(file_exists(out, "metrics.tsv") && file_exists(out, "report.md"));
    o.force = 1; /* and replaced with it */
    T_EQ_INT(tmp_leftovers(root), 0); /* no report.tmp.* beside it either */
    /* a "gnuplot" that fails: the same */
    o.gnuplot = "false";
    T_OK(mms_report_write(&o, &info));
    T_EQ_INT(info.plots_skipped, 1);
    T_EQ_INT(tmp_leftovers(out), 0);
    /* plots off: no warning, no skip note */
    o.gnuplot = "";
    T_OK(mms_report_write(&o, &info));
    T_EQ_INT(info.plots_skipped, 0);
    T_EQ_INT(info.plots, 0);

    /* bad options */
    o.gnuplot = NULL;
    mms_report_dataset_t two[2] = {ds, ds};
    o.datasets = two;
    o.ndatasets = 2;
    T_FAILS(mms_report_write(&o, &info), MMS_ERR_ARG);
    o.ndatasets = 0;
    T_FAILS(mms_report_write(&o, &info), MMS_ERR_ARG);

    /* the default dataset name of any catalog path is a valid one (issue 12 item 11) */
    char nm[128];
    const char *names[][2] = {{"/data/my cat", "my-cat"},
                              {"my cat/", "my-cat"},
                              {"/runs/run 1/catalog", "run-1"},
                              {"/runs/run 1/catalog/", "run-1"},
                              {"catalog", "catalog"},
                              {"/x/donn\xc3\xa9" "es  (v2)", "donn-es-v2"},
                              {"/x/a+b", "a-b"},
                              {"corel5k", "corel5k"},
                              {"/x/.hidden_1", ".hidden_1"},
                              {"/x/ !! ", "dataset"},
                              {"/", "dataset"},
                              {"", "dataset"},
                              {"/x/..", "dataset"}};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        mms_report_dataset_name(names[k][0], nm, sizeof nm);
        if (strcmp(nm, names[k][1]))
            fprintf(stderr, "dataset name of '%s': '%s', expected '%s'\n", names[k][0], nm, names[k][1]);
        T_STREQ(nm, names[k][1]);
    }
    char longp[300];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    T_EQ_INT(strlen(mms_report_dataset_name(longp, nm, sizeof nm)), MMS_EVAL_NAME_MAX);
    mms_eval_t *e2 = NULL;
    T_OK(mms_eval_create(c, j, mms_report_dataset_name("/d/my cat", nm, sizeof nm), &e2));
    mms_eval_destroy(&e2);

    double w;
    T_CHECK(mms_report_slider_weight("slider-0.75", &w) && w == 0.75);
    T_CHECK(!mms_report_slider_weight("slider-1.5", &w));
    T_CHECK(!mms_report_slider_weight("slider-", &w));
    T_CHECK(!mms_report_slider_weight("slider-0.5x", &w));
    T_CHECK(!mms_report_slider_weight("gnn-image", &w));

    free(saved);
    free(metrics);
    free(md);
    free(qt);
    free(pt);
    free(html);
    mms_eval_destroy(&e);
    mms_judge_destroy(&j);
    mms_catalog_close(&c);
    if (!mms_test_failures) mms_rm_rf(root);
    return mms_test_finish("test_report");
}
