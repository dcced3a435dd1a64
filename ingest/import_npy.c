/* import_npy.c: features .npy + tags TSV into a catalog (see import_npy.h).
 *
 * Order of work: check both matrices' headers and sizes, count the TSV lines
 * (so a wrong file is reported by its counts before anything else), then stream
 * rows through the catalog writer, checking every value. Rows are copied out of
 * the map before use because a hand-written .npy header can leave the data
 * unaligned for float.
 */
#define _GNU_SOURCE
#include "import_npy.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import_split.h"
#include "mms_array.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_npy.h"
#include "mms_rng.h"
#include "mms_strmap.h"

/* -------------------------------------------------------------- tags TSV */

struct mms_tagstsv {
    FILE *f;
    int own_f;
    char *name;
    char *buf;
    size_t cap;
    int64_t line;
    int form;          /* -1 not known yet, 0 = id<TAB>tags, 1 = id<TAB>split<TAB>tags */
    mms_strmap_t *ids; /* id -> line */
    const char **tags;
    size_t tagcap;
};

mms_status mms_tagstsv_open(FILE *f, const char *name, int own_f, mms_tagstsv_t **out) {
    *out = NULL;
    mms_tagstsv_t *t;
    mms_status s = mms_calloc(1, sizeof *t, &t);
    if (s != MMS_OK) {
        if (own_f) fclose(f);
        return s;
    }
    t->f = f;
    t->own_f = own_f;
    t->form = -1;
    t->name = strdup(name ? name : "(tsv)");
    MMS_CHECK_GOTO(s, fail, t->name, MMS_ERR_NOMEM, "out of memory");
    MMS_CALL_GOTO(s, fail, mms_strmap_create(1024, &t->ids));
    *out = t;
    return MMS_OK;
fail:
    mms_tagstsv_close(&t);
    return s;
}

mms_status mms_tagstsv_open_path(const char *path, mms_tagstsv_t **out) {
    *out = NULL;
    FILE *f;
    MMS_CALL(mms_fopen(path, "rb", &f));
    MMS_CALL(mms_tagstsv_open(f, path, 1, out));
    return MMS_OK;
}

mms_status mms_tagstsv_open_mem(const char *name, const void *data, size_t len,
                                mms_tagstsv_t **out) {
    *out = NULL;
    static char empty[1];
    /* "r" never writes to the buffer; fmemopen takes a non-const pointer. */
    FILE *f = fmemopen(len ? (void *)(uintptr_t)data : empty, len, "r");
    MMS_CHECK(f, MMS_ERR_IO, "%s: cannot read from memory: %s", name, strerror(errno));
    MMS_CALL(mms_tagstsv_open(f, name, 1, out));
    return MMS_OK;
}

void mms_tagstsv_close(mms_tagstsv_t **tp) {
    if (!tp || !*tp) return;
    mms_tagstsv_t *t = *tp;
    if (t->own_f && t->f) fclose(t->f);
    mms_strmap_destroy(&t->ids);
    free(t->tags);
    free(t->buf);
    free(t->name);
    free(t);
    *tp = NULL;
}

int mms_tagstsv_has_split(const mms_tagstsv_t *t) { return t->form; }

static const char *form_text(int form) { return form ? "id<TAB>split<TAB>tags" : "id<TAB>tags"; }

mms_status mms_tagstsv_next(mms_tagstsv_t *t, mms_tagstsv_row_t *row, int *got) {
    *got = 0;
    memset(row, 0, sizeof *row);
    errno = 0;
    ssize_t n = getline(&t->buf, &t->cap, t->f);
    if (n < 0) {
        MMS_CHECK(!ferror(t->f), MMS_ERR_IO, "%s:%lld: read error: %s", t->name,
                  (long long)t->line + 1, strerror(errno));
        MMS_CHECK(t->line > 0, MMS_ERR_FORMAT, "%s is empty (want one line per feature row)",
                  t->name);
        return MMS_OK;
    }
    t->line++;
    const long long ln = (long long)t->line;
    char *s = t->buf;
    MMS_CHECK(memchr(s, '\0', (size_t)n) == NULL, MMS_ERR_FORMAT,
              "%s:%lld: line contains a NUL byte (not a text file?)", t->name, ln);
    if (n > 0 && s[n - 1] == '\n') s[--n] = '\0';
    if (n > 0 && s[n - 1] == '\r') s[--n] = '\0';
    if (t->line == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) { /* UTF-8 BOM */
        memmove(s, s + 3, (size_t)n - 2);
        n -= 3;
    }
    MMS_CHECK(n > 0, MMS_ERR_FORMAT, "%s:%lld: empty line (every feature row needs a line '%s')",
              t->name, ln, form_text(t->form > 0));
    char *t1 = strchr(s, '\t');
    MMS_CHECK(t1, MMS_ERR_FORMAT,
              "%s:%lld: no tab: expected 'id<TAB>split<TAB>tag1|tag2|...' or "
              "'id<TAB>tag1|tag2|...'",
              t->name, ln);
    char *t2 = strchr(t1 + 1, '\t');
    MMS_CHECK(!t2 || !strchr(t2 + 1, '\t'), MMS_ERR_FORMAT,
              "%s:%lld: more than 3 tab-separated fields (tags are separated by '|')", t->name, ln);
    int form = t2 != NULL;
    if (t->form < 0) t->form = form;
    MMS_CHECK(form == t->form, MMS_ERR_FORMAT,
              "%s:%lld: has the form '%s' but line 1 has '%s'; all lines must have the same "
              "fields",
              t->name, ln, form_text(form), form_text(t->form));
    size_t idlen = (size_t)(t1 - s);
    MMS_CHECK(idlen > 0, MMS_ERR_FORMAT, "%s:%lld: empty id", t->name, ln);
    MMS_CHECK(idlen < 1024 && !memchr(s, '\r', idlen), MMS_ERR_FORMAT,
              "%s:%lld: id '%.40s...' is longer than 1023 bytes or contains a carriage return",
              t->name, ln, s);
    *t1 = '\0';
    char *tags = t1 + 1;
    row->split = -1;
    if (form) {
        int sp = mms_split_parse(t1 + 1, (size_t)(t2 - t1 - 1));
        MMS_CHECK(sp >= 0, MMS_ERR_FORMAT,
                  "%s:%lld: unknown split '%.*s' for id '%.40s' (want train, val or test)%s",
                  t->name, ln, (int)(t2 - t1 - 1 < 20 ? t2 - t1 - 1 : 20), t1 + 1, s,
                  ln == 1 ? "; a header line is not allowed" : "");
        row->split = sp;
        *t2 = '\0';
        tags = t2 + 1;
    }
    int nt = 0;
    char *p = tags;
    for (int more = *p != '\0'; more;) { /* an empty field means no tags */
        char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        MMS_CHECK(len > 0, MMS_ERR_FORMAT,
                  "%s:%lld: empty tag for id '%.40s' (a '|' at the start or end, or '||')", t->name,
                  ln, s);
        MMS_CHECK(len < 256 && !memchr(p, '\r', len), MMS_ERR_FORMAT,
                  "%s:%lld: tag '%.40s...' of id '%.40s' is longer than 255 bytes or contains a "
                  "carriage return",
                  t->name, ln, p, s);
        MMS_CALL(mms_grow(&t->tags, sizeof *t->tags, (size_t)nt + 1, &t->tagcap));
        t->tags[nt++] = p;
        more = e != NULL;
        if (e) {
            *e = '\0';
            p = e + 1;
        }
    }
    int inserted;
    int64_t first;
    MMS_CALL(mms_strmap_put(t->ids, s, idlen, t->line, &inserted, &first));
    MMS_CHECK(inserted, MMS_ERR_FORMAT, "%s:%lld: duplicate id '%.60s' (also on line %lld)",
              t->name, ln, s, (long long)first);
    row->id = s;
    row->tags = t->tags;
    row->ntags = nt;
    row->line = t->line;
    *got = 1;
    return MMS_OK;
}

/* ---------------------------------------------------------------- import */

int mms_import_npy_split(const char *id, size_t len, uint64_t seed, double test_fraction) {
    uint64_t u = mms_rng_hash(seed, MMS_STREAM_SPLIT, mms_checksum(id, len, 0), 0);
    double x = mms_rng_unit(u);
    return x < test_fraction ? MMS_SPLIT_TEST : MMS_SPLIT_TRAIN;
}

/* Map a feature matrix and check it is a non-empty 2-D float32 array whose
 * data size matches its shape exactly. */
static mms_status open_matrix(const char *path, mms_npy_t *m) {
    memset(m, 0, sizeof *m);
    struct stat st;
    MMS_CHECK(stat(path, &st) == 0, MMS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    MMS_CHECK(st.st_size > 0, MMS_ERR_FORMAT, "%s is empty (0 bytes)", path);
    MMS_CALL(mms_npy_open(path, -1, m));
    mms_status s = MMS_OK;
    MMS_CHECK_GOTO(s, fail, m->hdr.dtype == MMS_DT_F32, MMS_ERR_FORMAT,
                   "%s: dtype is '%s' (%s); features must be float32 '<f4' "
                   "(numpy: x.astype(numpy.float32))",
                   path, mms_dtype_descr(m->hdr.dtype), mms_dtype_name(m->hdr.dtype));
    MMS_CHECK_GOTO(s, fail, m->hdr.ndim == 2, MMS_ERR_FORMAT,
                   "%s: is a 1-D array of %zu values; want a 2-D array (one row per image, one "
                   "column per feature)",
                   path, m->rows);
    MMS_CHECK_GOTO(s, fail, m->rows > 0, MMS_ERR_FORMAT, "%s has shape (0, %zu): no rows", path,
                   m->cols);
    MMS_CHECK_GOTO(s, fail, m->cols > 0 && m->cols <= (1u << 20), MMS_ERR_FORMAT,
                   "%s has %zu columns; want 1 to %u features per row", path, m->cols, 1u << 20);
    return MMS_OK; /* the data's size matches the shape: mms_npy_open checks it */
fail:
    mms_npy_close(m);
    return s;
}

/* Lines in a text file (a last line without '\n' counts), and how many of them
 * are empty lines at the very end (for a hint when the count is off). */
static mms_status count_lines(const char *path, int64_t *out, int64_t *empty_tail) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "rb", &f));
    char buf[1 << 16];
    int64_t n = 0, tail_nl = 0;
    size_t r;
    int last = '\n';
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
        for (char *p = buf; (p = memchr(p, '\n', (size_t)(buf + r - p))) != NULL; p++) n++;
        last = (unsigned char)buf[r - 1];
        size_t j = r;
        int64_t nl = 0;
        while (j > 0 && (buf[j - 1] == '\n' || buf[j - 1] == '\r')) nl += buf[--j] == '\n';
        tail_nl = j == 0 ? tail_nl + nl : nl;
    }
    int bad = ferror(f);
    fclose(f);
    MMS_CHECK(!bad, MMS_ERR_IO, "error reading '%s'", path);
    *out = n + (last != '\n');
    *empty_tail = tail_nl > 1 ? tail_nl - 1 : 0;
    return MMS_OK;
}

/* First non-finite value of row[0..n), or -1. */
static int64_t first_nonfinite(const float *row, size_t n) {
    for (size_t j = 0; j < n; j++)
        if (!isfinite(row[j])) return (int64_t)j;
    return -1;
}

mms_status mms_import_npy_run(const mms_npy_import_opts_t *o, mms_npy_import_stats_t *stats) {
    double t0 = mms_now();
    MMS_CHECK(o && o->features && o->tags && o->out, MMS_ERR_ARG,
              "import npy: --features, --tags and --out are required");
    MMS_CHECK(o->test_fraction >= 0 && o->test_fraction <= 1, MMS_ERR_ARG,
              "import npy: --test-fraction must be in [0, 1], got %g", o->test_fraction);
    MMS_CALL(mms_import_val_check("import npy", o->val_fraction));
    mms_status s = MMS_OK;
    mms_npy_t fx = {0}, fk = {0};
    mms_tagstsv_t *t = NULL;
    mms_catalog_writer_t *w = NULL;
    float *x = NULL, *k = NULL;
    int64_t n_split[3] = {0, 0, 0};

    MMS_CALL_GOTO(s, done, open_matrix(o->features, &fx));
    if (o->knn_features) {
        MMS_CALL_GOTO(s, done, open_matrix(o->knn_features, &fk));
        MMS_CHECK_GOTO(s, done, fk.rows == fx.rows, MMS_ERR_MISMATCH,
                       "%s has %zu rows but %s has %zu: both need one row per image", o->features,
                       fx.rows, o->knn_features, fk.rows);
    }
    int64_t lines, empty_tail;
    MMS_CALL_GOTO(s, done, count_lines(o->tags, &lines, &empty_tail));
    MMS_CHECK_GOTO(s, done, lines > 0, MMS_ERR_FORMAT,
                   "%s is empty (want one line per feature row)", o->tags);
    char hint[64] = "";
    if (empty_tail > 0)
        snprintf(hint, sizeof hint, "; its last %lld line%s empty", (long long)empty_tail,
                 empty_tail > 1 ? "s are" : " is");
    MMS_CHECK_GOTO(s, done, (uint64_t)lines == (uint64_t)fx.rows, MMS_ERR_MISMATCH,
                   "%s has %lld lines but %s has %zu rows: the TSV needs one line per feature "
                   "row, in the same order%s",
                   o->tags, (long long)lines, o->features, fx.rows, hint);
    MMS_CALL_GOTO(s, done, mms_tagstsv_open_path(o->tags, &t));
    MMS_CALL_GOTO(s, done, mms_malloc(fx.cols * sizeof *x, &x));
    if (o->knn_features) MMS_CALL_GOTO(s, done, mms_malloc(fk.cols * sizeof *k, &k));

    char source[3 * MMS_PATH_MAX];
    snprintf(source, sizeof source, "npy: %s%s%s, tags %s", o->features,
             o->knn_features ? " + " : "", o->knn_features ? o->knn_features : "", o->tags);
    MMS_CALL_GOTO(s, done,
                  mms_catalog_writer_open(o->out, o->force, (int32_t)fx.cols,
                                          o->knn_features ? (int32_t)fk.cols : 0, source, &w));
    mms_progress_t pr;
    mms_progress_begin(&pr, "import rows", (int64_t)fx.rows, "rows");
    for (size_t i = 0; i < fx.rows; i++) {
        mms_tagstsv_row_t r;
        int got;
        MMS_CALL_GOTO(s, done, mms_tagstsv_next(t, &r, &got));
        MMS_CHECK_GOTO(s, done, got, MMS_ERR_IO,
                       "%s: ended after %zu lines (it had %lld when counted)", o->tags, i,
                       (long long)lines);
        int split = r.split >= 0
                        ? r.split
                        : mms_import_npy_split(r.id, strlen(r.id), o->seed, o->test_fraction);
        split = mms_import_val_split(split, r.id, o->val_fraction);
        memcpy(x, (const char *)fx.data + i * fx.cols * sizeof *x, fx.cols * sizeof *x);
        int64_t j = first_nonfinite(x, fx.cols);
        MMS_CHECK_GOTO(s, done, j < 0, MMS_ERR_NUMERIC,
                       "%s: row %zu, column %lld (0-based) is %s (image '%.60s', %s:%lld)",
                       o->features, i, (long long)j, j >= 0 && isnan(x[j]) ? "NaN" : "Inf", r.id,
                       o->tags, (long long)r.line);
        if (k) {
            memcpy(k, (const char *)fk.data + i * fk.cols * sizeof *k, fk.cols * sizeof *k);
            j = first_nonfinite(k, fk.cols);
            MMS_CHECK_GOTO(s, done, j < 0, MMS_ERR_NUMERIC,
                           "%s: row %zu, column %lld (0-based) is %s (image '%.60s', %s:%lld)",
                           o->knn_features, i, (long long)j, j >= 0 && isnan(k[j]) ? "NaN" : "Inf",
                           r.id, o->tags, (long long)r.line);
        }
        char where[MMS_PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%lld", o->tags, (long long)r.line);
        mms_catalog_row_t row = {0};
        row.where = where;
        row.id = r.id;
        row.split = split;
        row.tags = r.tags;
        row.ntags = r.ntags;
        row.features = x;
        row.knn_features = k;
        MMS_CALL_GOTO(s, done, mms_catalog_writer_add(w, &row));
        n_split[split]++;
        mms_progress_update(&pr, (int64_t)i + 1);
    }
    mms_progress_end(&pr);
    int from_tsv = mms_tagstsv_has_split(t) == 1;
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.format", "npy"));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.features", o->features));
    if (o->knn_features)
        MMS_CALL_GOTO(s, done,
                      mms_catalog_writer_set_str(w, "import.knn_features", o->knn_features));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.tags", o->tags));
    MMS_CALL_GOTO(s, done,
                  mms_catalog_writer_set_str(w, "import.split", from_tsv ? "tsv" : "hash"));
    if (!from_tsv) {
        char fr[32];
        snprintf(fr, sizeof fr, "%.17g", o->test_fraction);
        MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.test_fraction", fr));
        MMS_CALL_GOTO(s, done, mms_catalog_writer_set_int(w, "import.seed", (int64_t)o->seed));
    }
    MMS_CALL_GOTO(s, done, mms_import_val_record(w, o->val_fraction));
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->rows = (int64_t)fx.rows;
        memcpy(stats->n_split, n_split, sizeof n_split);
        stats->dim = (int32_t)fx.cols;
        stats->knn_dim = o->knn_features ? (int32_t)fk.cols : 0;
        stats->split_from_tsv = from_tsv;
    }
    MMS_CALL_GOTO(s, done, mms_catalog_writer_finish(&w));
    if (stats) stats->seconds = mms_now() - t0;
    mms_log_info(
        "npy: wrote %s (%zu rows: train %lld, val %lld, test %lld; split from %s) in %.2fs", o->out,
        fx.rows, (long long)n_split[0], (long long)n_split[1], (long long)n_split[2],
        from_tsv ? "the TSV" : "id hashes", mms_now() - t0);
done:
    mms_catalog_writer_abort(&w); /* no-op after finish */
    mms_tagstsv_close(&t);
    free(x);
    free(k);
    mms_npy_close(&fx);
    mms_npy_close(&fk);
    return s;
}
