/* report_html.c: examples.html, for every catalog: a few example queries
 * spread evenly over the answered queries, each an HTML table with one row per
 * method and slider position showing the top results labelled with id, score,
 * grade and tags (those the query shares highlighted). When the catalog has
 * image paths, the query and results show as thumbnails copied into the
 * report (report_thumbs.h) and linked relatively, so the report directory is
 * self-contained; an image that cannot be read shows a placeholder with its id.
 * Every catalog string (ids, tags, names) is HTML-escaped; the page loads
 * nothing from outside the report directory.
 *
 * Does not: link the catalog's own image files.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"
#include "report_thumbs.h"

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

/* The image of row: a thumbnail in the report, or a placeholder naming the id
 * when it cannot be made. Nothing when the catalog has no image paths. */
static mms_status put_thumb(FILE *f, report_thumbs_t *t, int64_t row, const char *cls) {
    const mms_catalog_t *c = t->c;
    if (!c->paths) return MMS_OK;
    char rel[MMS_PATH_MAX];
    int ok = 0;
    MMS_CALL(report_thumb(t, row, &ok, rel, sizeof rel));
    if (ok) {
        fprintf(f, "<img class=\"%s\" loading=\"lazy\" alt=\"", cls);
        html_puts(f, c->ids[row]);
        fprintf(f, "\" src=\"%s\">", rel); /* rel is [A-Za-z0-9._/-] only */
    } else {
        fprintf(f, "<div class=\"ph %s\" title=\"no thumbnail\">", cls);
        html_puts(f, c->ids[row]);
        fputs("</div>", f);
    }
    return MMS_OK;
}

/* Tags of row, those that q also has in <mark> (q < 0: none marked). */
static void put_tags(FILE *f, const mms_catalog_t *c, int64_t row, int64_t q) {
    if (c->tag_ptr[row + 1] == c->tag_ptr[row]) return;
    fputs("<div class=\"tags\">", f);
    for (int64_t e = c->tag_ptr[row]; e < c->tag_ptr[row + 1]; e++) {
        int32_t t = c->tag_idx[e];
        int shared = 0;
        if (q >= 0)
            for (int64_t u = c->tag_ptr[q]; u < c->tag_ptr[q + 1] && !shared; u++)
                shared = c->tag_idx[u] == t;
        if (e > c->tag_ptr[row]) fputs(", ", f);
        if (shared) fputs("<mark>", f);
        html_puts(f, c->tag_names[t]);
        if (shared) fputs("</mark>", f);
    }
    fputs("</div>", f);
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
static mms_status put_example(FILE *f, const ds_t *d, report_thumbs_t *t, int64_t q, int kshow) {
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
            MMS_CALL(put_thumb(f, t, q, "q"));
            fputs("<b>", f);
            html_puts(f, c->ids[q]);
            fputs("</b>", f);
            put_tags(f, c, q, -1);
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
            fprintf(f, "<td class=\"r\">");
            const char *cls = g == 3 ? "g3" : g == 2 ? "g2" : g == 1 ? "g1" : "g0";
            MMS_CALL(put_thumb(f, t, r.rows[k], cls));
            fputs("<span class=\"id\">", f);
            html_puts(f, c->ids[r.rows[k]]);
            fputs("</span>", f);
            if (r.scores && !isnan(r.scores[k])) fprintf(f, " &middot; %.3f", (double)r.scores[k]);
            fprintf(f, "<br><span class=\"l%d\">%s</span>", g, mms_grade_name(g));
            put_tags(f, c, r.rows[k], q);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    return MMS_OK;
}

/* Example queries of a dataset: evenly spread over the queries that the
 * reference method (the first slider position, else the first method with
 * results) answered. Returns how many. */
static int pick_examples(const ds_t *d, int want, int64_t *out) {
    if (want <= 0) return 0;
    int ref = d->nslider ? d->slider[0] : -1;
    for (int m = 0; m < d->nm && ref < 0; m++)
        if (d->sum[m].queries > 0) ref = m;
    if (ref < 0) return 0;
    int64_t nq = mms_eval_queries(d->e, ref), ncand = 0;
    for (int64_t i = 0; i < nq; i++) {
        mms_eval_query_t q;
        mms_eval_query(d->e, ref, i, &q);
        ncand += q.n > 0;
    }
    if (ncand == 0) return 0;
    int n = want < ncand ? want : (int)ncand;
    int64_t seen = 0;
    int got = 0;
    for (int64_t i = 0; i < nq && got < n; i++) {
        mms_eval_query_t q;
        mms_eval_query(d->e, ref, i, &q);
        if (q.n <= 0) continue;
        if (seen == (int64_t)got * ncand / n) out[got++] = q.query;
        seen++;
    }
    return got;
}

/* Body of the page for every dataset; *total example queries written. */
static mms_status put_datasets(FILE *f, const rep_t *r, int want, int kshow, int64_t *pick,
                               int *total) {
    int nthumbs = 0;
    *total = 0;
    for (int i = 0; i < r->nds; i++) {
        const ds_t *d = &r->ds[i];
        int n = pick_examples(d, want, pick);
        if (n == 0) continue;
        fputs("<h2>", f);
        html_puts(f, d->name);
        fprintf(f, " (judge: %s)</h2>\n",
                mms_judge_kind_name(mms_judge_kind_of(mms_eval_judge(d->e))));
        if (!d->c->paths)
            fputs("<p class=\"info\">This catalog has no image paths: results show as ids and "
                  "tags.</p>\n",
                  f);
        report_thumbs_t t;
        MMS_CALL(report_thumbs_init(&t, r->dir, d->c, d->name, i, &nthumbs));
        mms_status s = MMS_OK;
        for (int k = 0; k < n && s == MMS_OK; k++)
            s = put_example(f, d, &t, pick[k], kshow);
        report_thumbs_finish(&t);
        MMS_CALL(s);
        *total += n;
    }
    return MMS_OK;
}

mms_status report_write_examples(const rep_t *r, mms_report_info_t *info) {
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
    mms_status s = report_out_open(&o, r->dir, "examples.html");
    if (s != MMS_OK) {
        free(pick);
        MMS_CALL(s);
    }
    FILE *f = o.f;
    const char *title = r->o->title ? r->o->title : "mmsage evaluation";
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", f);
    html_puts(f, title);
    fputs(": examples</title>\n<style>\n"
          "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
          "table{border-collapse:collapse;margin-bottom:2em}\n"
          "th,td{padding:4px 6px;text-align:center;vertical-align:top;font-size:12px}\n"
          "tr+tr td{border-top:1px solid #ddd}\n"
          "img,.ph{width:150px;height:112px;object-fit:cover;display:block;margin:auto;border:4px "
          "solid #ccc;box-sizing:border-box}\n"
          ".ph{background:#eee;color:#777;font-size:11px;line-height:104px;overflow:hidden}\n"
          "img.q,.ph.q{width:160px;height:120px;border-color:#333}\n"
          ".ph.q{line-height:112px}\n"
          ".g3{border-color:#1a9850}.g2{border-color:#91cf60}.g1{border-color:#fc8d59}"
          ".g0{border-color:#d73027}\n"
          ".l3{color:#1a9850;font-weight:bold}.l2{color:#4d9221}.l1{color:#d9661f}.l0{color:#"
          "d73027}\n"
          ".tags{color:#555;max-width:150px;margin:auto}mark{background:#ffe08a;color:#222}\n"
          "td.m{font-weight:bold;white-space:nowrap}.info{font-size:13px;max-width:70em}\n"
          "</style></head><body>\n<h1>",
          f);
    html_puts(f, title);
    fputs(": examples</h1>\n<p>Each table is one query (left) and, per row, the top results of "
          "one method or slider position (visual / conceptual weight). A result shows its id, "
          "score, the automatic judge's grade (Excellent, Good, Acceptable, Unacceptable; also "
          "the frame colour of a thumbnail) and its tags, those shared with the query "
          "highlighted; docs/evaluation.md gives the rules. Thumbnails are copies in "
          "<code>thumbs/</code> beside this page; a grey box with an id is an image that could "
          "not be read.</p>\n",
          f);
    s = put_datasets(f, r, want, kshow, pick, &total);
    free(pick);
    if (s != MMS_OK) {
        report_out_abort(&o);
        MMS_CALL(s);
    }
    fputs("</body></html>\n", f);
    MMS_CALL(report_out_commit(&o));
    info->examples = total;
    return MMS_OK;
}
