/* test_report.c: a report for fake metrics (a tiny COCO-like catalog with
 * image paths, baselines, model-like methods, slider positions, a loss log):
 * metrics.tsv lines, report.md sections, queries/predictions TSV, the
 * examples page, no temporary files left; plots when gnuplot is there, and a
 * warning plus a complete report when it is not (PATH emptied) or fails.
 * examples.html (issue 16 item 7): for a catalog without image paths, tables
 * of ids, tags, scores and grades; for one with JPEGs (made here), thumbnails
 * in thumbs/ of at most 160 px linked relatively, placeholders for a missing
 * and a corrupt image, and every src/href still resolving after the report
 * directory is moved. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "mms_catalog.h"
#include "mms_descriptor.h"
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


/* A w x h JPEG of a colour gradient at path. */
static int write_jpeg(const char *path, int w, int h) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_start_compress(&ci, TRUE);
    unsigned char *row = malloc((size_t)w * 3);
    while (ci.next_scanline < ci.image_height) {
        for (int x = 0; x < w; x++) {
            row[3 * x] = (unsigned char)(x * 255 / w);
            row[3 * x + 1] = (unsigned char)(ci.next_scanline * 255 / (unsigned)h);
            row[3 * x + 2] = 128;
        }
        JSAMPROW rp[1] = {row};
        jpeg_write_scanlines(&ci, rp, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    return fclose(f) == 0;
}

/* Every src="..." and href="..." of html: relative (no scheme, no leading '/')
 * and an existing file under dir. Returns how many were checked, -1 on a bad one. */
static int check_refs(const char *html, const char *dir) {
    int n = 0, bad = 0;
    const char *attrs[2] = {" src=\"", " href=\""};
    for (int a = 0; a < 2; a++)
        for (const char *p = html; p && (p = strstr(p, attrs[a]));) {
            p += strlen(attrs[a]);
            const char *e = strchr(p, '"');
            if (!e) break;
            char ref[1024];
            snprintf(ref, sizeof ref, "%.*s", (int)(e - p), p);
            n++;
            if (ref[0] == '/' || strstr(ref, "://") || strstr(ref, "..") ||
                !file_exists(dir, ref)) {
                fprintf(stderr, "reference '%s' does not resolve under %s\n", ref, dir);
                bad++;
            }
            p = e;
        }
    return bad ? -1 : n;
}

static int count_of(const char *text, const char *sub) {
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, sub)); p += strlen(sub))
        n++;
    return n;
}

/* One method "gnn-image" answering each test query with every train row. */
static mms_eval_t *simple_eval(mms_catalog_t *c, mms_judge_t **j, const char *name, int ntrain) {
    mms_eval_t *e = NULL;
    T_OK(mms_judge_create(c, j));
    T_OK(mms_eval_create(c, *j, name, &e));
    int m;
    T_OK(mms_eval_method(e, "gnn-image", 5, &m));
    for (int64_t q = ntrain; q < c->n; q++) {
        int64_t rows[64];
        float sc[64];
        for (int t = 0; t < ntrain; t++) {
            rows[t] = (q + t) % ntrain;
            sc[t] = 0.95f - 0.05f * (float)t;
        }
        T_OK(mms_eval_add_results(e, m, q, rows, sc, ntrain));
    }
    return e;
}

/* A Corel5k-like catalog (tags, no image paths): examples.html has a table per
 * query with ids, tags (shared ones marked), scores and grades, and no images. */
static void test_no_paths(const char *root) {
    char dir[MMS_PATH_MAX], out[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/corel-like", root);
    snprintf(out, sizeof out, "%s/report-corel", root);
    mms_catalog_writer_t *w = NULL;
    T_OK(mms_catalog_writer_open(dir, 1, 2, 0, "test_report", &w));
    static const char *tags[5] = {"sky", "water", "r&b<x>", "tree", "grass"};
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof id, "c%d", 500 + i);
        const char *on[2] = {tags[i % 5], tags[(i + 2) % 5]};
        float x[2] = {(float)(i % 3), (float)(i % 4)};
        mms_catalog_row_t r = {0};
        r.id = id;
        r.split = i < 7 ? MMS_SPLIT_TRAIN : MMS_SPLIT_TEST;
        r.tags = on;
        r.ntags = 2;
        r.features = x;
        T_OK(mms_catalog_writer_add(w, &r));
    }
    T_OK(mms_catalog_writer_finish(&w));
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(dir, &c));
    if (!c) return;
    T_CHECK(c->paths == NULL);
    mms_judge_t *j = NULL;
    mms_eval_t *e = simple_eval(c, &j, "corel-like", 7);
    mms_report_dataset_t ds = {e, NULL};
    mms_report_opts_t o;
    mms_report_opts_default(&o);
    o.out_dir = out;
    o.datasets = &ds;
    o.ndatasets = 1;
    o.gnuplot = "";
    o.examples = 3;
    o.example_k = 4;
    mms_report_info_t info;
    T_OK(mms_report_write(&o, &info));
    T_EQ_INT(info.examples, 3);
    T_CHECK(file_exists(out, "examples.html"));
    char *html = slurp(out, "examples.html");
    T_CHECK(html != NULL);
    if (!html) html = strdup(""); /* the checks below fail, and say what is missing */
    T_CHECK(has(html, "<!DOCTYPE html>"));
    T_CHECK(has(html, "</body></html>\n"));
    T_EQ_INT(count_of(html, "<table>"), 3);
    T_EQ_INT(count_of(html, "<h3>query "), 3);
    /* the 3 queries c507..c509, each with a row for gnn-image of 4 results */
    for (int q = 507; q < 510; q++) {
        char h[64];
        snprintf(h, sizeof h, "<h3>query c%d</h3>", q);
        T_CHECK(has(html, h));
    }
    T_EQ_INT(count_of(html, "<td class=\"m\">gnn-image</td>"), 3);
    T_EQ_INT(count_of(html, "<td class=\"r\">"), 3 * 4);
    /* query c507 (grass, r&b<x>): its first result is row (7 + 0) % 7 = c500 (r&b<x>, sky,
     * Good), the third c502 (grass, r&b<x>, Excellent); the query's own tags are not marked */
    T_CHECK(has(html, "<b>c507</b><div class=\"tags\">grass, r&amp;b&lt;x&gt;</div></td>"));
    T_CHECK(has(html, "<span class=\"id\">c500</span> &middot; 0.950<br><span class=\"l2\">Good"
                      "</span><div class=\"tags\"><mark>r&amp;b&lt;x&gt;</mark>, sky</div></td>"));
    T_CHECK(has(html, "<span class=\"id\">c502</span> &middot; 0.850<br><span class=\"l3\">"
                      "Excellent</span><div class=\"tags\"><mark>grass</mark>, "
                      "<mark>r&amp;b&lt;x&gt;</mark></div></td>"));
    T_CHECK(!strstr(html, "r&b<x>")); /* a tag from the catalog is escaped */
    T_CHECK(has(html, "</span><div class=\"tags\">"));
    T_CHECK(strstr(html, "Excellent") || strstr(html, "Good") || strstr(html, "Acceptable") ||
            has(html, "Unacceptable"));
    T_CHECK(!strstr(html, "<img") && !strstr(html, "file://"));
    T_CHECK(check_refs(html, out) == 0);
    T_CHECK(!file_exists(out, "thumbs"));
    char *md = slurp(out, "report.md");
    T_CHECK(has(md, "(examples.html)"));
    free(md);
    free(html);
    mms_eval_destroy(&e);
    mms_judge_destroy(&j);
    mms_catalog_close(&c);
}

/* A catalog with JPEG paths (absolute and relative to the catalog), one
 * missing and one corrupt: thumbs/ JPEGs of at most 160 px, placeholders, only
 * relative references, still resolving after the directory is moved. */
static void test_jpeg_paths(const char *root) {
    char dir[MMS_PATH_MAX], out[MMS_PATH_MAX], moved[MMS_PATH_MAX], img[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/jpeg-cat", root);
    snprintf(out, sizeof out, "%s/report-jpeg", root);
    snprintf(moved, sizeof moved, "%s/elsewhere/copied-report", root);
    snprintf(img, sizeof img, "%s/imgs", root);
    T_OK(mms_mkdir_p(img));
    /* sizes of rows 0..7 (train) and 8..9 (test); 0 x 0: missing; -1: corrupt. The
     * method keeps 5 results: query 8 shows rows 0-4, query 9 rows 1-5. */
    static const int size[10][2] = {{400, 300}, {90, 60}, {1000, 200}, {0, 0}, {-1, -1},
                                    {161, 161}, {300, 400}, {640, 480}, {500, 375}, {0, 0}};
    mms_catalog_writer_t *w = NULL;
    T_OK(mms_catalog_writer_open(dir, 1, 2, 0, "test_report", &w));
    for (int i = 0; i < 10; i++) {
        char id[32], file[MMS_PATH_MAX], path[MMS_PATH_MAX];
        if (i == 2)
            snprintf(id, sizeof id, "a<b>&\"c'%d", i); /* needs escaping, unsafe in a file name */
        else
            snprintf(id, sizeof id, "im%d", i);
        snprintf(file, sizeof file, "%s/img %d.jpg", img, i);
        if (size[i][0] > 0) T_CHECK(write_jpeg(file, size[i][0], size[i][1]));
        if (size[i][0] < 0) {
            FILE *f = fopen(file, "wb");
            T_CHECK(f != NULL);
            if (f) {
                fputs("\xff\xd8\xff\xe0 this is not really a JPEG", f);
                fclose(f);
            }
        }
        if (i % 2) /* relative to the catalog directory */
            snprintf(path, sizeof path, "../imgs/img %d.jpg", i);
        else
            snprintf(path, sizeof path, "%s", file);
        static const char *tags[3] = {"sky", "water", "tree"};
        const char *on[1] = {tags[i % 3]};
        float x[2] = {(float)(i % 3), (float)(i % 4)};
        mms_catalog_row_t r = {0};
        r.id = id;
        r.split = i < 8 ? MMS_SPLIT_TRAIN : MMS_SPLIT_TEST;
        r.tags = on;
        r.ntags = 1;
        r.features = x;
        r.path = path;
        T_OK(mms_catalog_writer_add(w, &r));
    }
    T_OK(mms_catalog_writer_finish(&w));
    mms_catalog_t *c = NULL;
    T_OK(mms_catalog_open(dir, &c));
    if (!c) return;
    T_CHECK(c->paths != NULL);
    mms_judge_t *j = NULL;
    mms_eval_t *e = simple_eval(c, &j, "jpeg-cat", 8);
    mms_report_dataset_t ds = {e, NULL};
    mms_report_opts_t o;
    mms_report_opts_default(&o);
    o.out_dir = out;
    o.datasets = &ds;
    o.ndatasets = 1;
    o.gnuplot = "";
    o.examples = 2;
    o.example_k = 8;
    mms_report_info_t info;
    T_OK(mms_report_write(&o, &info));
    T_EQ_INT(info.examples, 2);
    T_EQ_INT(tmp_leftovers(out), 0);
    char *html = slurp(out, "examples.html");
    T_CHECK(html != NULL);
    if (!html) html = strdup("");
    T_CHECK(!strstr(html, "file://"));
    T_CHECK(!strstr(html, img)); /* no absolute path of an image */
    T_CHECK(!strstr(html, "src=\"/") && !strstr(html, "href=\"/"));
    T_CHECK(has(html, "<img class=\"q\""));
    /* a placeholder with the id for the missing (row 3, query 9) and corrupt (row 4) ones */
    T_CHECK(has(html, "<div class=\"ph q\" title=\"no thumbnail\">im9</div>"));
    T_CHECK(has(html, "title=\"no thumbnail\">im3</div>"));
    T_CHECK(has(html, "title=\"no thumbnail\">im4</div>"));
    T_CHECK(has(html, "a&lt;b&gt;&amp;&quot;c&#39;2"));
    T_CHECK(!strstr(html, "a<b>"));
    /* the thumbnails: one per readable image shown (rows 0-2, 5, 8), at most 160 px */
    char tdir[MMS_PATH_MAX];
    snprintf(tdir, sizeof tdir, "%s/thumbs", out);
    DIR *d = opendir(tdir);
    T_CHECK(d != NULL);
    int nthumbs = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        T_CHECK(strstr(de->d_name, ".jpg") != NULL && !strstr(de->d_name, ".tmp."));
        char rel[MMS_PATH_MAX], *buf = NULL;
        size_t len = 0;
        snprintf(rel, sizeof rel, "%s/%s", tdir, de->d_name);
        T_OK(mms_read_file(rel, &buf, &len));
        uint8_t *rgb = NULL;
        int tw = 0, th = 0;
        T_OK(mms_descriptor_decode_jpeg(buf, len, rel, 0, &rgb, &tw, &th));
        int side = tw > th ? tw : th;
        if (side > 160 || side < 1) fprintf(stderr, "%s is %d x %d\n", rel, tw, th);
        T_CHECK(side >= 1 && side <= 160);
        /* each is referenced by the page */
        char ref[MMS_PATH_MAX];
        snprintf(ref, sizeof ref, "src=\"thumbs/%s\"", de->d_name);
        T_CHECK(has(html, ref));
        free(rgb);
        free(buf);
        nthumbs++;
    }
    if (d) closedir(d);
    T_EQ_INT(nthumbs, 5);
    T_CHECK(has(html, "src=\"thumbs/0-1-im1.jpg\""));
    char small[MMS_PATH_MAX], *buf = NULL;
    size_t len = 0;
    snprintf(small, sizeof small, "%s/0-1-im1.jpg", tdir); /* 90 x 60: kept as is */
    uint8_t *rgb = NULL;
    int tw = 0, th = 0;
    if (mms_read_file(small, &buf, &len) == MMS_OK) {
        T_OK(mms_descriptor_decode_jpeg(buf, len, small, 0, &rgb, &tw, &th));
        T_EQ_INT(tw, 90);
        T_EQ_INT(th, 60);
    } else {
        T_CHECK(!"thumbs/0-1-im1.jpg missing");
    }
    free(rgb);
    free(buf);
    T_CHECK(check_refs(html, out) == 7);
    /* copied off the cluster: move it; every reference still resolves */
    char parent[MMS_PATH_MAX];
    snprintf(parent, sizeof parent, "%s/elsewhere", root);
    T_OK(mms_mkdir_p(parent));
    T_CHECK(rename(out, moved) == 0);
    T_CHECK(check_refs(html, moved) == 7);
    free(html);
    mms_eval_destroy(&e);
    mms_judge_destroy(&j);
    mms_catalog_close(&c);
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
    /* the queries' split: test by default, on every method (tags-only ones too) */
    T_CHECK(has(metrics, "coco-fake\traw-visual\tsplit\ttest\n"));
    T_CHECK(has(metrics, "coco-fake\ttag-prior\tsplit\ttest\n"));
    T_CHECK(!strstr(metrics, "\tsplit\tval"));
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
    /* the split in the first lines, before any section */
    {
        const char *at = strstr(md, "**Computed on the test split** of `coco-fake`");
        const char *sec = strstr(md, "\n## ");
        T_CHECK(at && sec && at < sec);
        T_CHECK(has(md, "| test | 6 |")); /* the datasets table's query split */
    }

    char *qt = slurp(out, "queries.tsv");
    T_CHECK(has(qt, "dataset\tmethod\tquery\trank\tresult\tscore\tgrade\n"));
    T_CHECK(has(qt, "coco-fake\tgnn-image\t118\t1\t"));
    /* 6 queries x (raw-visual 5 + random 5 + oracle 5 + vote-expansion, ppr, fused 3 x 5
     * + 2 x 5 + 3 x 10) + header */
    T_EQ_INT(count_lines(qt), 1 + 6 * (15 + 15 + 10 + 30));
    char *pt = slurp(out, "predictions.tsv");
    T_CHECK(has(pt, "coco-fake\tgnn-image\t118\t1\t"));
    /* per query: 6 queries x 8 methods with results + header; the paired steps in report.md */
    char *qm = slurp(out, "query-metrics.tsv");
    T_CHECK(has(qm, "dataset\tmethod\tquery\tndcg@5-ideal-excellent\ttag-overlap\tvisual-sim\n"));
    T_CHECK(has(qm, "coco-fake\tslider-0.50\t118\t"));
    T_EQ_INT(count_lines(qm), 1 + 6 * 11);
    /* paired differences: in report.md, and in metrics.tsv the mean per-query
     * nDCG@5 difference recomputed here from the accumulator's records */
    T_CHECK(has(md, "## Paired differences (nDCG@5, all-Excellent)"));
    T_CHECK(has(md, "| minus raw-visual | minus vote-expansion | minus ppr | minus fused |"));
    T_CHECK(has(metrics, "coco-fake\tgnn-image\tpaired-ndcg@5-minus-fused-se\t"));
    T_CHECK(!strstr(metrics, "coco-fake\traw-visual\tpaired-ndcg@5-minus-raw-visual"));
    {
        int mg = mms_eval_find_method(e, "gnn-image"), mr = mms_eval_find_method(e, "raw-visual");
        double sum = 0;
        int64_t n = 0;
        for (int64_t i = 0; i < mms_eval_queries(e, mg); i++) {
            mms_eval_query_t a, b;
            mms_eval_query(e, mg, i, &a);
            int64_t k2 = mms_eval_find_query(e, mr, a.query);
            if (k2 < 0) continue;
            mms_eval_query(e, mr, k2, &b);
            sum += a.ndcg5 - b.ndcg5;
            n++;
        }
        const char *at = strstr(metrics, "coco-fake\tgnn-image\tpaired-ndcg@5-minus-raw-visual\t");
        T_CHECK(at != NULL && n == 6);
        if (at) T_NEAR(strtod(at + strlen("coco-fake\tgnn-image\tpaired-ndcg@5-minus-raw-visual\t"), NULL),
                       sum / (double)n, 1e-5);
    }
    T_CHECK(has(md, "step: overlap change +- paired SE"));
    T_CHECK(has(md, " +- "));
    free(qm);

    char *html = slurp(out, "examples.html");
    /* the catalog's image files do not exist: placeholders, no file:// links */
    T_CHECK(has(html, "<div class=\"ph q\" title=\"no thumbnail\">118</div>"));
    T_CHECK(!strstr(html, "file://") && !strstr(html, "/data/img"));
    T_CHECK(!file_exists(out, "thumbs"));
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

    /* the val split: said first in report.md and on every metrics.tsv method */
    T_FAILS(mms_eval_set_split(e, MMS_SPLIT_TRAIN), MMS_ERR_ARG);
    T_EQ_INT(mms_eval_split(e), MMS_SPLIT_TEST);
    T_OK(mms_eval_set_split(e, MMS_SPLIT_VAL));
    T_OK(mms_report_write(&o, &info));
    free(md);
    md = slurp(out, "report.md");
    T_CHECK(has(md, "**Computed on the val split** of `coco-fake`"));
    T_CHECK(has(md, "Validation figures"));
    free(metrics);
    metrics = slurp(out, "metrics.tsv");
    T_CHECK(has(metrics, "coco-fake\tgnn-image\tsplit\tval\n"));
    T_CHECK(!strstr(metrics, "\tsplit\ttest"));
    T_OK(mms_eval_set_split(e, MMS_SPLIT_TEST));

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

    test_no_paths(root);
    test_jpeg_paths(root);

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
