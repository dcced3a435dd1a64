/* import_mulan.c: the Mulan import of import_mulan.h: the schema (which ARFF
 * attributes are labels, named in the XML, and which are features), one parsed
 * row to features + tags, and mms_import_mulan_run, which streams the train
 * (and test) ARFF row by row into the catalog writer.
 *
 * Does not: parse ARFF text (import_mulan_arff.c) or XML (import_mulan_xml.c);
 * it sees the reader only through its accessors.
 */
#define _GNU_SOURCE
#include "import_mulan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "import_split.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"

/* --------------------------------------------------------- schema, rows */

static int valid_tag(const char *t) { return t[0] && strlen(t) < 256 && !strpbrk(t, "|\t\n\r"); }

mms_status mms_mulan_schema_build(const mms_arff_t *a, const mms_mulan_labels_t *l,
                                  const char *xml_name, mms_mulan_schema_t *out) {
    memset(out, 0, sizeof *out);
    uint8_t *is_label;
    MMS_CALL(mms_calloc((size_t)mms_arff_nattr(a), 1, &is_label));
    mms_status s = MMS_OK;
    for (int32_t k = 0; k < l->n; k++) {
        int32_t i = mms_arff_find(a, l->names[k]);
        MMS_CHECK_GOTO(s, fail, i >= 0, MMS_ERR_MISMATCH,
                       "%s:%lld: label '%.60s' is not an attribute of %s (it declares %d "
                       "attributes): the XML does not belong to this ARFF",
                       xml_name, (long long)l->lines[k], l->names[k], mms_arff_name(a),
                       mms_arff_nattr(a));
        const mms_arff_attr_t *at = mms_arff_attr(a, i);
        MMS_CHECK_GOTO(s, fail, valid_tag(at->name), MMS_ERR_FORMAT,
                       "%s:%lld: label attribute '%.60s' cannot be a catalog tag (empty, longer "
                       "than 255 bytes, or contains '|', a tab or a line break)",
                       mms_arff_name(a), (long long)at->line, at->name);
        is_label[i] = 1;
    }
    out->nlabels = l->n;
    out->nfeat = mms_arff_nattr(a) - l->n;
    MMS_CHECK_GOTO(s, fail, out->nfeat > 0, MMS_ERR_FORMAT,
                   "%s: all %d attributes of %s are labels: no features left", xml_name,
                   mms_arff_nattr(a), mms_arff_name(a));
    MMS_CALL_GOTO(s, fail,
                  mms_malloc((size_t)out->nfeat * sizeof *out->feat_attr, &out->feat_attr));
    MMS_CALL_GOTO(s, fail,
                  mms_malloc((size_t)out->nlabels * sizeof *out->label_attr, &out->label_attr));
    MMS_CALL_GOTO(s, fail,
                  mms_malloc((size_t)out->nlabels * sizeof *out->label_name, &out->label_name));
    int32_t nf = 0, nlab = 0;
    for (int32_t i = 0; i < mms_arff_nattr(a); i++) {
        if (is_label[i]) {
            out->label_attr[nlab] = i;
            out->label_name[nlab++] = mms_arff_attr(a, i)->name;
        } else {
            out->feat_attr[nf++] = i;
        }
    }
    free(is_label);
    return MMS_OK;
fail:
    free(is_label);
    mms_mulan_schema_free(out);
    return s;
}

void mms_mulan_schema_free(mms_mulan_schema_t *s) {
    if (!s) return;
    free(s->feat_attr);
    free(s->label_attr);
    free(s->label_name);
    memset(s, 0, sizeof *s);
}

mms_status mms_mulan_row(const mms_mulan_schema_t *s, const mms_arff_t *a, const double *values,
                         float *feat, const char **tags, int *ntags) {
    for (int32_t f = 0; f < s->nfeat; f++) {
        double v = values[s->feat_attr[f]];
        feat[f] = (float)v;
        MMS_CHECK(isfinite(feat[f]), MMS_ERR_NUMERIC,
                  "%s:%lld: value %g of attribute %d ('%s') does not fit float32",
                  mms_arff_name(a), (long long)mms_arff_line(a), v, s->feat_attr[f],
                  mms_arff_attr(a, s->feat_attr[f])->name);
    }
    int n = 0;
    for (int32_t k = 0; k < s->nlabels; k++) {
        double v = values[s->label_attr[k]];
        MMS_CHECK(v == 0.0 || v == 1.0, MMS_ERR_FORMAT,
                  "%s:%lld: label '%s' (attribute %d) has value %g; a label must be 0 or 1",
                  mms_arff_name(a), (long long)mms_arff_line(a), s->label_name[k],
                  s->label_attr[k], v);
        if (v == 1.0) tags[n++] = s->label_name[k];
    }
    *ntags = n;
    return MMS_OK;
}

/* ---------------------------------------------------------------- import */

typedef struct {
    double *values;
    float *feat;
    const char **tags;
    int64_t *label_count;
} row_bufs_t;

/* Rows of a into w with split (ids "<split>-<row>"); training rows go to val
 * by the draw of import_split.h; n_split counts the rows per split written. */
static mms_status import_rows(mms_arff_t *a, const mms_mulan_schema_t *sc, int split,
                              double val_fraction, mms_catalog_writer_t *w, row_bufs_t *b,
                              int64_t *assignments, int64_t n_split[3]) {
    const char *sname = mms_split_name(split);
    char label[64];
    snprintf(label, sizeof label, "import %s rows", sname);
    mms_progress_t pr;
    mms_progress_begin(&pr, label, 0, "rows");
    for (;;) {
        int got;
        MMS_CALL(mms_arff_next(a, b->values, &got));
        if (!got) break;
        int ntags;
        MMS_CALL(mms_mulan_row(sc, a, b->values, b->feat, b->tags, &ntags));
        char id[64], where[MMS_PATH_MAX + 32];
        snprintf(id, sizeof id, "%s-%06lld", sname, (long long)mms_arff_rows(a));
        snprintf(where, sizeof where, "%s:%lld", mms_arff_name(a), (long long)mms_arff_line(a));
        mms_catalog_row_t row = {0};
        row.where = where;
        row.id = id;
        row.split = mms_import_val_split(split, id, val_fraction);
        row.tags = b->tags;
        row.ntags = ntags;
        row.features = b->feat;
        MMS_CALL(mms_catalog_writer_add(w, &row));
        for (int32_t k = 0; k < sc->nlabels; k++)
            b->label_count[k] += b->values[sc->label_attr[k]] == 1.0;
        *assignments += ntags;
        n_split[row.split]++;
        mms_progress_update(&pr, mms_arff_rows(a));
    }
    MMS_CHECK(mms_arff_rows(a) > 0, MMS_ERR_FORMAT, "%s:%lld: no data rows after @data",
              mms_arff_name(a), (long long)mms_arff_line(a));
    mms_progress_end(&pr);
    return MMS_OK;
}

mms_status mms_import_mulan_run(const mms_mulan_import_opts_t *o, mms_mulan_import_stats_t *stats) {
    double t0 = mms_now();
    MMS_CHECK(o && o->train && o->xml && o->out, MMS_ERR_ARG,
              "import mulan: --train, --xml and --out are required");
    MMS_CALL(mms_import_val_check("import mulan", o->val_fraction));
    mms_status s = MMS_OK;
    char *xml = NULL;
    size_t xml_len = 0;
    mms_mulan_labels_t labels = {0};
    mms_arff_t *tr = NULL, *te = NULL;
    mms_mulan_schema_t sc = {0};
    mms_catalog_writer_t *w = NULL;
    row_bufs_t b = {0};
    int64_t assignments = 0, n_split[3] = {0, 0, 0};

    MMS_CALL_GOTO(s, done, mms_read_file(o->xml, &xml, &xml_len));
    MMS_CALL_GOTO(s, done, mms_mulan_labels_parse(o->xml, xml, xml_len, &labels));
    MMS_CALL_GOTO(s, done, mms_arff_open_path(o->train, &tr));
    MMS_CALL_GOTO(s, done, mms_mulan_schema_build(tr, &labels, o->xml, &sc));
    if (o->test) {
        MMS_CALL_GOTO(s, done, mms_arff_open_path(o->test, &te));
        MMS_CALL_GOTO(s, done, mms_arff_same_header(tr, te));
    }
    mms_log_info("mulan: %d attributes = %d features + %d labels (relation '%s')",
                 mms_arff_nattr(tr), sc.nfeat, sc.nlabels, mms_arff_relation(tr));
    MMS_CALL_GOTO(s, done, mms_malloc((size_t)mms_arff_nattr(tr) * sizeof *b.values, &b.values));
    MMS_CALL_GOTO(s, done, mms_malloc((size_t)sc.nfeat * sizeof *b.feat, &b.feat));
    MMS_CALL_GOTO(s, done, mms_malloc((size_t)sc.nlabels * sizeof *b.tags, &b.tags));
    MMS_CALL_GOTO(s, done, mms_calloc((size_t)sc.nlabels, sizeof *b.label_count, &b.label_count));

    char source[3 * MMS_PATH_MAX];
    snprintf(source, sizeof source, "mulan: %s%s%s, labels %s", o->train, o->test ? " + " : "",
             o->test ? o->test : "", o->xml);
    MMS_CALL_GOTO(s, done, mms_catalog_writer_open(o->out, o->force, sc.nfeat, 0, source, &w));
    MMS_CALL_GOTO(s, done,
                  import_rows(tr, &sc, MMS_SPLIT_TRAIN, o->val_fraction, w, &b, &assignments,
                              n_split));
    if (te)
        MMS_CALL_GOTO(s, done,
                      import_rows(te, &sc, MMS_SPLIT_TEST, o->val_fraction, w, &b, &assignments,
                                  n_split));

    int32_t used = 0;
    char unused[512] = "";
    size_t ul = 0;
    for (int32_t k = 0; k < sc.nlabels; k++) {
        if (b.label_count[k] > 0) {
            used++;
        } else if (ul < sizeof unused - 80) {
            int m = snprintf(unused + ul, sizeof unused - ul, "%s%.60s", ul ? ", " : "",
                             sc.label_name[k]);
            if (m > 0) ul += (size_t)m;
        }
    }
    if (used < sc.nlabels)
        mms_log_warn("mulan: %d of %d labels never occur (%s%s); they will not be tags",
                     sc.nlabels - used, sc.nlabels, unused,
                     ul >= sizeof unused - 80 ? ", ..." : "");

    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.format", "mulan"));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.train", o->train));
    if (o->test) MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.test", o->test));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.xml", o->xml));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_int(w, "import.labels", sc.nlabels));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_int(w, "import.labels_used", used));
    MMS_CALL_GOTO(s, done, mms_import_val_record(w, o->val_fraction));
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->train = n_split[MMS_SPLIT_TRAIN];
        stats->val = n_split[MMS_SPLIT_VAL];
        stats->test = n_split[MMS_SPLIT_TEST];
        stats->dim = sc.nfeat;
        stats->nlabels = sc.nlabels;
        stats->labels_used = used;
        stats->assignments = assignments;
    }
    MMS_CALL_GOTO(s, done, mms_catalog_writer_finish(&w));
    if (stats) stats->seconds = mms_now() - t0;
    mms_log_info("mulan: wrote %s in %.2fs", o->out, mms_now() - t0);
done:
    mms_catalog_writer_abort(&w); /* no-op after finish */
    free(b.values);
    free(b.feat);
    free(b.tags);
    free(b.label_count);
    mms_mulan_schema_free(&sc);
    mms_arff_close(&te);
    mms_arff_close(&tr);
    mms_mulan_labels_free(&labels);
    free(xml);
    return s;
}
