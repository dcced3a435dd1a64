/* mms_catalog.c: catalog writer and validating reader (see mms_catalog.h). */
#define _GNU_SOURCE
#include "mms_catalog.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_npy.h"
#include "mms_strmap.h"

static const char *k_split[3] = {"train", "val", "test"};

const char *mms_split_name(int split) { return split >= 0 && split < 3 ? k_split[split] : "?"; }

int mms_split_parse(const char *s, size_t len) {
    for (int i = 0; i < 3; i++)
        if (strlen(k_split[i]) == len && !memcmp(s, k_split[i], len)) return i;
    return -1;
}

/* ---------------------------------------------------------------- writer */

struct mms_catalog_writer {
    char final_dir[MMS_PATH_MAX];
    char tmp_dir[MMS_PATH_MAX];
    int force;
    int32_t dim, knn_dim;
    mms_npy_writer_t fx, fk;
    FILE *images, *objects, *captions, *paths;
    mms_strmap_t *ids;
    int64_t n, n_split[3];
    mms_manifest_t *man;
};

static int has_bad_char(const char *s, const char *bad) { return strpbrk(s, bad) != NULL; }

static mms_status open_in_tmp(mms_catalog_writer_t *w, const char *name, FILE **f) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, w->tmp_dir, name));
    MMS_CALL(mms_fopen(p, "w", f));
    return MMS_OK;
}

mms_status mms_catalog_writer_open(const char *out_dir, int force, int32_t dim, int32_t knn_dim,
                                   const char *source, mms_catalog_writer_t **out) {
    *out = NULL;
    MMS_CHECK(dim > 0 && dim <= 1 << 20, MMS_ERR_ARG, "feature width %d is out of range", dim);
    MMS_CHECK(knn_dim >= 0 && knn_dim <= 1 << 20, MMS_ERR_ARG, "kNN feature width %d out of range",
              knn_dim);
    MMS_CHECK(strlen(out_dir) < MMS_PATH_MAX - 64, MMS_ERR_ARG, "path too long: %s", out_dir);
    mms_catalog_writer_t *w;
    MMS_CALL(mms_calloc(1, sizeof *w, &w));
    strcpy(w->final_dir, out_dir);
    w->force = force;
    w->dim = dim;
    w->knn_dim = knn_dim;
    mms_status s = mms_outdir_begin(out_dir, force, w->tmp_dir, sizeof w->tmp_dir);
    if (s != MMS_OK) {
        free(w);
        return s;
    }
    char p[MMS_PATH_MAX];
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, w->tmp_dir, "features.npy"));
    MMS_CALL_GOTO(s, fail, mms_npy_writer_open(&w->fx, p, MMS_DT_F32, (size_t)dim));
    if (knn_dim > 0) {
        MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, w->tmp_dir, "knn_features.npy"));
        MMS_CALL_GOTO(s, fail, mms_npy_writer_open(&w->fk, p, MMS_DT_F32, (size_t)knn_dim));
    }
    MMS_CALL_GOTO(s, fail, open_in_tmp(w, "images.tsv", &w->images));
    MMS_CALL_GOTO(s, fail, mms_strmap_create(1024, &w->ids));
    MMS_CALL_GOTO(s, fail, mms_manifest_create("catalog", MMS_CATALOG_FORMAT, &w->man));
    MMS_CALL_GOTO(s, fail, mms_manifest_set_str(w->man, "source", source ? source : ""));
    *out = w;
    return MMS_OK;
fail:
    mms_catalog_writer_abort(&w);
    return s;
}

mms_status mms_catalog_writer_set_int(mms_catalog_writer_t *w, const char *key, int64_t v) {
    return mms_manifest_set_int(w->man, key, v);
}

mms_status mms_catalog_writer_set_str(mms_catalog_writer_t *w, const char *key, const char *v) {
    return mms_manifest_set_str(w->man, key, v);
}

/* Write s with tabs and line breaks turned into spaces (free text fields). */
static void put_clean(FILE *f, const char *s) {
    for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

mms_status mms_catalog_writer_add(mms_catalog_writer_t *w, const mms_catalog_row_t *r) {
    const char *at = r->where ? r->where : "row";
    const char *id = r->id ? r->id : "";
    MMS_CHECK(id[0] != '\0', MMS_ERR_FORMAT, "%s: empty image id", at);
    MMS_CHECK(strlen(id) < 1024 && !has_bad_char(id, "\t\n\r"), MMS_ERR_FORMAT,
              "%s: image id '%.40s' is too long or contains a tab or line break", at, id);
    MMS_CHECK(r->split >= 0 && r->split <= 2, MMS_ERR_FORMAT, "%s: image '%s' has unknown split %d",
              at, id, r->split);
    for (int32_t j = 0; j < w->dim; j++)
        MMS_CHECK(isfinite(r->features[j]), MMS_ERR_NUMERIC,
                  "%s: image '%s': feature %d is %s", at, id, j,
                  isnan(r->features[j]) ? "NaN" : "Inf");
    if (w->knn_dim > 0) {
        MMS_CHECK(r->knn_features, MMS_ERR_FORMAT, "%s: image '%s' has no kNN features", at, id);
        for (int32_t j = 0; j < w->knn_dim; j++)
            MMS_CHECK(isfinite(r->knn_features[j]), MMS_ERR_NUMERIC,
                      "%s: image '%s': kNN feature %d is %s", at, id, j,
                      isnan(r->knn_features[j]) ? "NaN" : "Inf");
    }
    for (int t = 0; t < r->ntags; t++) {
        const char *tg = r->tags[t];
        MMS_CHECK(tg && tg[0] && !has_bad_char(tg, "|\t\n\r") && strlen(tg) < 256, MMS_ERR_FORMAT,
                  "%s: image '%s': tag %d ('%.40s') is empty, too long or contains '|', a tab or "
                  "a line break",
                  at, id, t, tg ? tg : "");
    }
    for (int o = 0; o < r->nobj; o++)
        MMS_CHECK(r->obj_names[o] && r->obj_names[o][0] &&
                      !has_bad_char(r->obj_names[o], ",:\t\n\r") && r->obj_counts[o] > 0,
                  MMS_ERR_FORMAT, "%s: image '%s': object %d is malformed", at, id, o);
    MMS_CHECK(!r->path || !has_bad_char(r->path, "\t\n\r"), MMS_ERR_FORMAT,
              "%s: image '%s': path contains a tab or line break", at, id);
    int inserted;
    int64_t prev;
    MMS_CALL(mms_strmap_put(w->ids, id, strlen(id), w->n, &inserted, &prev));
    MMS_CHECK(inserted, MMS_ERR_FORMAT, "%s: duplicate image id '%s' (first seen at row %lld)", at,
              id, (long long)prev + 1);

    MMS_CALL(mms_npy_writer_append(&w->fx, r->features, 1));
    if (w->knn_dim > 0) MMS_CALL(mms_npy_writer_append(&w->fk, r->knn_features, 1));
    fprintf(w->images, "%s\t%s\t", id, mms_split_name(r->split));
    int written = 0;
    for (int t = 0; t < r->ntags; t++) {
        int dup = 0;
        for (int u = 0; u < t && !dup; u++) dup = !strcmp(r->tags[u], r->tags[t]);
        if (dup) continue;
        fprintf(w->images, "%s%s", written ? "|" : "", r->tags[t]);
        written++;
    }
    fputc('\n', w->images);
    if (r->nobj > 0) {
        if (!w->objects) MMS_CALL(open_in_tmp(w, "objects.tsv", &w->objects));
        fprintf(w->objects, "%s\t", id);
        for (int o = 0; o < r->nobj; o++)
            fprintf(w->objects, "%s%s:%d", o ? "," : "", r->obj_names[o], r->obj_counts[o]);
        fputc('\n', w->objects);
    }
    for (int c = 0; c < r->ncaptions; c++) {
        if (!w->captions) MMS_CALL(open_in_tmp(w, "captions.tsv", &w->captions));
        fprintf(w->captions, "%s\t", id);
        put_clean(w->captions, r->captions[c]);
        fputc('\n', w->captions);
    }
    if (r->path) {
        if (!w->paths) MMS_CALL(open_in_tmp(w, "paths.tsv", &w->paths));
        fprintf(w->paths, "%s\t%s\n", id, r->path);
    }
    w->n++;
    w->n_split[r->split]++;
    return MMS_OK;
}

static mms_status close_text(mms_catalog_writer_t *w, FILE **f, const char *name) {
    if (!*f) return MMS_OK;
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, w->tmp_dir, name));
    return mms_fclose(f, p);
}

mms_status mms_catalog_writer_finish(mms_catalog_writer_t **wp) {
    mms_catalog_writer_t *w = *wp;
    mms_status s = MMS_OK;
    MMS_CHECK_GOTO(s, fail, w->n > 0, MMS_ERR_FORMAT, "catalog '%s' would be empty: no images read",
                   w->final_dir);
    MMS_CHECK_GOTO(s, fail, w->n_split[MMS_SPLIT_TRAIN] > 0, MMS_ERR_FORMAT,
                   "catalog '%s' has no training images (%lld val, %lld test)", w->final_dir,
                   (long long)w->n_split[1], (long long)w->n_split[2]);
    MMS_CALL_GOTO(s, fail, mms_npy_writer_close(&w->fx));
    if (w->knn_dim > 0) MMS_CALL_GOTO(s, fail, mms_npy_writer_close(&w->fk));
    MMS_CALL_GOTO(s, fail, close_text(w, &w->images, "images.tsv"));
    MMS_CALL_GOTO(s, fail, close_text(w, &w->objects, "objects.tsv"));
    MMS_CALL_GOTO(s, fail, close_text(w, &w->captions, "captions.tsv"));
    MMS_CALL_GOTO(s, fail, close_text(w, &w->paths, "paths.tsv"));
    uint64_t sum;
    MMS_CALL_GOTO(s, fail, mms_catalog_checksum(w->tmp_dir, &sum));
    MMS_CALL_GOTO(s, fail, mms_manifest_set_int(w->man, "images", w->n));
    MMS_CALL_GOTO(s, fail, mms_manifest_set_int(w->man, "train", w->n_split[0]));
    MMS_CALL_GOTO(s, fail, mms_manifest_set_int(w->man, "val", w->n_split[1]));
    MMS_CALL_GOTO(s, fail, mms_manifest_set_int(w->man, "test", w->n_split[2]));
    MMS_CALL_GOTO(s, fail, mms_manifest_set_int(w->man, "dim", w->dim));
    MMS_CALL_GOTO(s, fail, mms_manifest_set_int(w->man, "knn_dim", w->knn_dim));
    MMS_CALL_GOTO(s, fail, mms_manifest_set_uint(w->man, "checksum", sum));
    MMS_CALL_GOTO(s, fail, mms_manifest_seal_dir(w->man, w->tmp_dir, NULL));
    MMS_CALL_GOTO(s, fail, mms_outdir_commit(w->tmp_dir, w->final_dir, w->force));
    w->tmp_dir[0] = '\0';
    mms_strmap_destroy(&w->ids);
    mms_manifest_destroy(&w->man);
    free(w);
    *wp = NULL;
    return MMS_OK;
fail:
    mms_catalog_writer_abort(wp);
    return s;
}

void mms_catalog_writer_abort(mms_catalog_writer_t **wp) {
    if (!wp || !*wp) return;
    mms_catalog_writer_t *w = *wp;
    if (w->fx.f) mms_npy_writer_abort(&w->fx);
    if (w->fk.f) mms_npy_writer_abort(&w->fk);
    FILE **fs[4] = {&w->images, &w->objects, &w->captions, &w->paths};
    for (int i = 0; i < 4; i++)
        if (*fs[i]) {
            fclose(*fs[i]);
            *fs[i] = NULL;
        }
    mms_outdir_abort(w->tmp_dir);
    mms_strmap_destroy(&w->ids);
    mms_manifest_destroy(&w->man);
    free(w);
    *wp = NULL;
}

/* ---------------------------------------------------------------- reader */

typedef struct {
    mms_npy_t fx, fk;
    mms_strmap_t *idmap, *tagmap;
    char *arena; /* ids and names */
} priv_t;

mms_status mms_catalog_checksum(const char *dir, uint64_t *out) {
    const char *files[3] = {"features.npy", "knn_features.npy", "images.tsv"};
    uint64_t parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        char p[MMS_PATH_MAX];
        MMS_CALL(mms_path_join(p, sizeof p, dir, files[i]));
        if (i == 1 && !mms_path_exists(p)) continue;
        MMS_CALL(mms_file_checksum(p, &parts[i]));
    }
    *out = mms_checksum(parts, sizeof parts, 0);
    return MMS_OK;
}

/* Growing string array with strdup'd items (freed by close). */
static mms_status push_str(char ***arr, size_t *n, size_t *cap, const char *s, size_t len) {
    MMS_CALL(mms_grow(arr, sizeof **arr, *n + 1, cap));
    char *d = strndup(s, len);
    MMS_CHECK(d, MMS_ERR_NOMEM, "out of memory");
    (*arr)[(*n)++] = d;
    return MMS_OK;
}

/* Free a[0..n) and a (NULL a: nothing). */
static void free_strs(char **a, int64_t n) {
    if (!a) return;
    for (int64_t i = 0; i < n; i++) free(a[i]);
    free(a);
}

/* A line "id<TAB>rest" of a per-image file (objects, captions, paths): *row
 * gets the image's row, *rest the text after the tab. form is the line's
 * expected shape for the message ("id<TAB>caption"). */
static mms_status line_row(const priv_t *pv, const char *path, int64_t lineno, char *line,
                           const char *form, int64_t *row, char **rest) {
    char *t = strchr(line, '\t');
    MMS_CHECK(t, MMS_ERR_FORMAT, "%s:%lld: expected '%s'", path, (long long)lineno, form);
    MMS_CHECK(mms_strmap_get(pv->idmap, line, (size_t)(t - line), row), MMS_ERR_FORMAT,
              "%s:%lld: unknown image id '%.*s'", path, (long long)lineno, (int)(t - line), line);
    *rest = t + 1;
    return MMS_OK;
}

/* Entries 0..ne-1 of rows row[] (in 0..n) grouped by row: the CSR row pointer
 * *ptr_out (n + 1) and each entry's slot in the grouped order *slot_out (ne;
 * stable: an image's entries keep their file order). */
static mms_status rows_csr(int64_t n, const int64_t *row, size_t ne, int64_t **ptr_out,
                           int64_t **slot_out) {
    int64_t *ptr = NULL, *slot = NULL, *fill = NULL;
    mms_status s;
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)n + 1, sizeof *ptr, &ptr));
    MMS_CALL_GOTO(s, fail, mms_malloc((ne ? ne : 1) * sizeof *slot, &slot));
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)n, sizeof *fill, &fill));
    for (size_t i = 0; i < ne; i++) ptr[row[i] + 1]++;
    for (int64_t r = 0; r < n; r++) ptr[r + 1] += ptr[r];
    for (size_t i = 0; i < ne; i++) slot[i] = ptr[row[i]] + fill[row[i]]++;
    free(fill);
    *ptr_out = ptr;
    *slot_out = slot;
    return MMS_OK;
fail:
    free(ptr);
    free(slot);
    free(fill);
    return s;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Build a sorted vocabulary from names in first-seen order; remap[i] = sorted index. */
static mms_status sort_vocab(char **names, int32_t n, int32_t **remap_out) {
    char **sorted;
    int32_t *remap;
    MMS_CALL(mms_malloc((size_t)(n ? n : 1) * sizeof *sorted, &sorted));
    mms_status s = mms_malloc((size_t)(n ? n : 1) * sizeof *remap, &remap);
    if (s != MMS_OK) {
        free(sorted);
        return s;
    }
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
    /* remap via binary search */
    for (int32_t i = 0; i < n; i++) {
        char **hit = bsearch(&names[i], sorted, (size_t)n, sizeof *sorted, cmp_str);
        remap[i] = (int32_t)(hit - sorted);
    }
    memcpy(names, sorted, (size_t)n * sizeof *sorted);
    free(sorted);
    *remap_out = remap;
    return MMS_OK;
}

static mms_status read_images(mms_catalog_t *c, priv_t *pv, const char *path) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "r", &f));
    char *line = NULL;
    size_t cap = 0, tcap = 0, tn = 0, tag_idx_cap = 0;
    mms_status s = MMS_OK;
    int64_t lineno = 0;
    char **tnames = NULL;
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)c->n + 1, sizeof *c->tag_ptr, &c->tag_ptr));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)c->n, 1, &c->split));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)c->n, sizeof *c->ids, &c->ids));
    MMS_CALL_GOTO(s, out, mms_strmap_create((size_t)c->n, &pv->idmap));
    MMS_CALL_GOTO(s, out, mms_strmap_create(1024, &pv->tagmap));
    int rc;
    while ((rc = mms_getline(&line, &cap, f)) == 1) {
        lineno++;
        MMS_CHECK_GOTO(s, out, lineno <= c->n, MMS_ERR_FORMAT,
                       "%s:%lld: more lines than features.npy has rows (%lld)", path,
                       (long long)lineno, (long long)c->n);
        char *t1 = strchr(line, '\t');
        MMS_CHECK_GOTO(s, out, t1, MMS_ERR_FORMAT,
                       "%s:%lld: expected 'id<TAB>split<TAB>tags', found no tab", path,
                       (long long)lineno);
        char *t2 = strchr(t1 + 1, '\t');
        MMS_CHECK_GOTO(s, out, t2, MMS_ERR_FORMAT,
                       "%s:%lld: expected 'id<TAB>split<TAB>tags', found one tab", path,
                       (long long)lineno);
        MMS_CHECK_GOTO(s, out, !strchr(t2 + 1, '\t'), MMS_ERR_FORMAT,
                       "%s:%lld: too many fields (tags are separated by '|', not tabs)", path,
                       (long long)lineno);
        size_t idlen = (size_t)(t1 - line);
        MMS_CHECK_GOTO(s, out, idlen > 0, MMS_ERR_FORMAT, "%s:%lld: empty id", path,
                       (long long)lineno);
        int sp = mms_split_parse(t1 + 1, (size_t)(t2 - t1 - 1));
        MMS_CHECK_GOTO(s, out, sp >= 0, MMS_ERR_FORMAT,
                       "%s:%lld: unknown split '%.*s' (want train, val or test)", path,
                       (long long)lineno, (int)(t2 - t1 - 1), t1 + 1);
        int ins;
        int64_t prev;
        MMS_CALL_GOTO(s, out, mms_strmap_put(pv->idmap, line, idlen, lineno - 1, &ins, &prev));
        MMS_CHECK_GOTO(s, out, ins, MMS_ERR_FORMAT, "%s:%lld: duplicate id '%.*s' (first on line %lld)",
                       path, (long long)lineno, (int)idlen, line, (long long)prev + 1);
        int64_t r = lineno - 1;
        c->ids[r] = strndup(line, idlen);
        MMS_CHECK_GOTO(s, out, c->ids[r], MMS_ERR_NOMEM, "out of memory");
        c->split[r] = (uint8_t)sp;
        c->n_split[sp]++;
        c->tag_ptr[r + 1] = c->tag_ptr[r];
        char *p = t2 + 1;
        while (*p) {
            char *e = strchr(p, '|');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            MMS_CHECK_GOTO(s, out, len > 0, MMS_ERR_FORMAT, "%s:%lld: empty tag in '%s'", path,
                           (long long)lineno, t2 + 1);
            int64_t tid;
            MMS_CALL_GOTO(s, out, mms_strmap_put(pv->tagmap, p, len, (int64_t)tn, &ins, &tid));
            if (ins) {
                MMS_CALL_GOTO(s, out, push_str(&tnames, &tn, &tcap, p, len));
            }
            /* skip a tag repeated on the same image */
            int dup = 0;
            for (int64_t q = c->tag_ptr[r]; q < c->tag_ptr[r + 1]; q++) dup |= c->tag_idx[q] == tid;
            if (!dup) {
                MMS_CALL_GOTO(s, out, mms_grow(&c->tag_idx, sizeof *c->tag_idx,
                                               (size_t)c->tag_ptr[r + 1] + 1, &tag_idx_cap));
                c->tag_idx[c->tag_ptr[r + 1]++] = (int32_t)tid;
            }
            p = e ? e + 1 : p + len;
        }
    }
    MMS_CHECK_GOTO(s, out, rc == 0, MMS_ERR_IO, "%s: read error", path);
    MMS_CHECK_GOTO(s, out, lineno == c->n, MMS_ERR_FORMAT,
                   "%s: has %lld lines but features.npy has %lld rows", path, (long long)lineno,
                   (long long)c->n);
    /* sorted vocabulary and counts */
    c->ntags = (int32_t)tn;
    int32_t *remap = NULL;
    MMS_CALL_GOTO(s, out, sort_vocab(tnames, c->ntags, &remap));
    c->tag_names = tnames;
    tnames = NULL;
    s = mms_calloc((size_t)(c->ntags ? c->ntags : 1), sizeof *c->tag_count, &c->tag_count);
    if (s == MMS_OK) {
        for (int64_t q = 0; q < c->tag_ptr[c->n]; q++) {
            c->tag_idx[q] = remap[c->tag_idx[q]];
            c->tag_count[c->tag_idx[q]]++;
        }
        /* keep each image's tag list sorted for stable downstream order */
        for (int64_t r = 0; r < c->n; r++) {
            int32_t *a = c->tag_idx + c->tag_ptr[r];
            int64_t m = c->tag_ptr[r + 1] - c->tag_ptr[r];
            for (int64_t i = 1; i < m; i++)
                for (int64_t j = i; j > 0 && a[j - 1] > a[j]; j--) {
                    int32_t tmp = a[j];
                    a[j] = a[j - 1];
                    a[j - 1] = tmp;
                }
        }
        /* tag map values now follow the sorted order */
        mms_strmap_destroy(&pv->tagmap);
        s = mms_strmap_create((size_t)c->ntags, &pv->tagmap);
        for (int32_t i = 0; s == MMS_OK && i < c->ntags; i++)
            s = mms_strmap_put(pv->tagmap, c->tag_names[i], strlen(c->tag_names[i]), i, NULL, NULL);
    }
    free(remap);
out:
    free_strs(tnames, (int64_t)tn);
    free(line);
    fclose(f);
    return s;
}

/* objects.tsv: id<TAB>cat:count,cat:count */
static mms_status read_objects(mms_catalog_t *c, priv_t *pv, const char *path) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "r", &f));
    char *line = NULL;
    size_t cap = 0, ncat = 0, catcap = 0, ne = 0, erow_cap = 0, ecat_cap = 0, ecnt_cap = 0;
    mms_status s = MMS_OK;
    int64_t lineno = 0;
    mms_strmap_t *cm = NULL;
    int64_t *slot = NULL; /* per-image entry lists, built as (row, cat, count) triples */
    int64_t *erow = NULL;
    int32_t *ecat = NULL, *ecnt = NULL;
    int32_t *remap = NULL;
    MMS_CALL_GOTO(s, out, mms_strmap_create(128, &cm));
    int rc;
    while ((rc = mms_getline(&line, &cap, f)) == 1) {
        lineno++;
        if (!line[0]) continue;
        int64_t row;
        char *p;
        MMS_CALL_GOTO(s, out,
                      line_row(pv, path, lineno, line, "id<TAB>category:count,...", &row, &p));
        while (*p) {
            char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char *colon = memchr(p, ':', len);
            MMS_CHECK_GOTO(s, out, colon && colon > p, MMS_ERR_FORMAT,
                           "%s:%lld: object entry '%.*s' is not 'category:count'", path,
                           (long long)lineno, (int)len, p);
            char *endp;
            long k = strtol(colon + 1, &endp, 10);
            MMS_CHECK_GOTO(s, out, endp == p + len && k > 0 && k < 1000000, MMS_ERR_FORMAT,
                           "%s:%lld: object count in '%.*s' is not a positive integer", path,
                           (long long)lineno, (int)len, p);
            int ins;
            int64_t cid;
            MMS_CALL_GOTO(s, out, mms_strmap_put(cm, p, (size_t)(colon - p), (int64_t)ncat, &ins, &cid));
            if (ins) {
                MMS_CALL_GOTO(s, out, push_str(&c->cat_names, &ncat, &catcap, p, (size_t)(colon - p)));
                c->ncats = (int32_t)ncat;
            }
            MMS_CALL_GOTO(s, out, mms_grow(&erow, sizeof *erow, ne + 1, &erow_cap));
            MMS_CALL_GOTO(s, out, mms_grow(&ecat, sizeof *ecat, ne + 1, &ecat_cap));
            MMS_CALL_GOTO(s, out, mms_grow(&ecnt, sizeof *ecnt, ne + 1, &ecnt_cap));
            erow[ne] = row;
            ecat[ne] = (int32_t)cid;
            ecnt[ne] = (int32_t)k;
            ne++;
            p = e ? e + 1 : p + len;
        }
    }
    MMS_CHECK_GOTO(s, out, rc == 0, MMS_ERR_IO, "%s: read error", path);
    c->ncats = (int32_t)ncat;
    MMS_CALL_GOTO(s, out, sort_vocab(c->cat_names, c->ncats, &remap));
    MMS_CALL_GOTO(s, out, rows_csr(c->n, erow, ne, &c->obj_ptr, &slot));
    MMS_CALL_GOTO(s, out, mms_malloc((ne ? ne : 1) * sizeof *c->obj_cat, &c->obj_cat));
    MMS_CALL_GOTO(s, out, mms_malloc((ne ? ne : 1) * sizeof *c->obj_count, &c->obj_count));
    for (size_t i = 0; i < ne; i++) {
        c->obj_cat[slot[i]] = remap[ecat[i]];
        c->obj_count[slot[i]] = ecnt[i];
    }
out:
    free(remap);
    free(slot);
    free(erow);
    free(ecat);
    free(ecnt);
    mms_strmap_destroy(&cm);
    free(line);
    fclose(f);
    return s;
}

static mms_status read_captions(mms_catalog_t *c, priv_t *pv, const char *path) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "r", &f));
    char *line = NULL;
    size_t cap = 0, n = 0, ncap = 0, rcap = 0;
    int64_t *rows = NULL, *slot = NULL;
    char **tmp = NULL;
    int64_t lineno = 0;
    mms_status s = MMS_OK;
    int rc;
    while ((rc = mms_getline(&line, &cap, f)) == 1) {
        lineno++;
        if (!line[0]) continue;
        int64_t row;
        char *text;
        MMS_CALL_GOTO(s, out, line_row(pv, path, lineno, line, "id<TAB>caption", &row, &text));
        MMS_CALL_GOTO(s, out, mms_grow(&rows, sizeof *rows, n + 1, &rcap));
        rows[n] = row;
        MMS_CALL_GOTO(s, out, push_str(&tmp, &n, &ncap, text, strlen(text)));
    }
    MMS_CHECK_GOTO(s, out, rc == 0, MMS_ERR_IO, "%s: read error", path);
    MMS_CALL_GOTO(s, out, rows_csr(c->n, rows, n, &c->cap_ptr, &slot));
    MMS_CALL_GOTO(s, out, mms_malloc((n ? n : 1) * sizeof *c->captions, &c->captions));
    for (size_t i = 0; i < n; i++) {
        c->captions[slot[i]] = tmp[i];
        tmp[i] = NULL;
    }
out:
    free_strs(tmp, (int64_t)n);
    free(rows);
    free(slot);
    free(line);
    fclose(f);
    return s;
}

static mms_status read_paths(mms_catalog_t *c, priv_t *pv, const char *path) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "r", &f));
    char *line = NULL;
    size_t cap = 0;
    int64_t lineno = 0;
    mms_status s = MMS_OK;
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)c->n, sizeof *c->paths, &c->paths));
    int rc;
    while ((rc = mms_getline(&line, &cap, f)) == 1) {
        lineno++;
        if (!line[0]) continue;
        int64_t row;
        char *p;
        MMS_CALL_GOTO(s, out, line_row(pv, path, lineno, line, "id<TAB>path", &row, &p));
        free(c->paths[row]);
        c->paths[row] = strdup(p);
        MMS_CHECK_GOTO(s, out, c->paths[row], MMS_ERR_NOMEM, "out of memory");
    }
    MMS_CHECK_GOTO(s, out, rc == 0, MMS_ERR_IO, "%s: read error", path);
out:
    free(line);
    fclose(f);
    return s;
}

static mms_status check_finite(const float *x, int64_t n, int32_t d, const char *path) {
    for (int64_t i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        float acc = 0.0f;
        for (int32_t j = 0; j < d; j++) acc += r[j] * 0.0f; /* NaN/Inf propagate */
        if (acc != 0.0f || isnan(acc)) {
            for (int32_t j = 0; j < d; j++)
                MMS_CHECK(isfinite(r[j]), MMS_ERR_NUMERIC, "%s: row %lld, column %d is %s", path,
                          (long long)i, j, isnan(r[j]) ? "NaN" : "Inf");
        }
    }
    return MMS_OK;
}

mms_status mms_catalog_open(const char *dir, mms_catalog_t **out) {
    *out = NULL;
    MMS_CHECK(mms_path_is_dir(dir), MMS_ERR_IO, "catalog '%s' is not a directory", dir);
    MMS_CHECK(strlen(dir) < 4000, MMS_ERR_ARG, "path too long: %s", dir);
    mms_catalog_t *c;
    MMS_CALL(mms_calloc(1, sizeof *c, &c));
    priv_t *pv;
    mms_status s = mms_calloc(1, sizeof *pv, &pv);
    if (s != MMS_OK) {
        free(c);
        return s;
    }
    c->priv = pv;
    strcpy(c->dir, dir);
    char p[MMS_PATH_MAX];
    /* manifest: optional (a catalog can be made by hand, docs/formats.md), but if
     * present it must be a catalog of a known format, and the files it records
     * must match their checksums */
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, MMS_MANIFEST_FILE));
    int have_sums = 0;
    uint64_t sums[3] = {0, 0, 0};
    int64_t man_images = -1, man_dim = -1, man_knn_dim = -1; /* -1: not recorded */
    if (mms_path_exists(p)) {
        mms_manifest_t *m;
        MMS_CALL_GOTO(s, fail, mms_manifest_read_dir(dir, "catalog", MMS_CATALOG_FORMAT, &m));
        if (mms_manifest_has(m, "images")) (void)mms_manifest_get_int(m, "images", &man_images);
        if (mms_manifest_has(m, "dim")) (void)mms_manifest_get_int(m, "dim", &man_dim);
        if (mms_manifest_has(m, "knn_dim")) (void)mms_manifest_get_int(m, "knn_dim", &man_knn_dim);
        s = mms_manifest_verify_files(m, dir, NULL, NULL);
        /* the catalog checksum from the verified per-file sums: no second pass */
        have_sums = s == MMS_OK && mms_manifest_file_sum(m, "features.npy", &sums[0]) &&
                    mms_manifest_file_sum(m, "images.tsv", &sums[2]);
        if (have_sums && !mms_manifest_file_sum(m, "knn_features.npy", &sums[1])) sums[1] = 0;
        mms_manifest_destroy(&m);
        MMS_CALL_GOTO(s, fail, s);
    }
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, "features.npy"));
    MMS_CHECK_GOTO(s, fail, mms_path_exists(p), MMS_ERR_FORMAT,
                   "catalog '%s' has no features.npy", dir);
    MMS_CALL_GOTO(s, fail, mms_npy_open(p, MMS_DT_F32, &pv->fx));
    MMS_CHECK_GOTO(s, fail, pv->fx.hdr.ndim == 2, MMS_ERR_FORMAT,
                   "%s: features must be a 2-D array (N x D)", p);
    MMS_CHECK_GOTO(s, fail, pv->fx.rows > 0, MMS_ERR_FORMAT, "%s: catalog is empty (0 rows)", p);
    MMS_CHECK_GOTO(s, fail, pv->fx.cols > 0 && pv->fx.cols <= (1u << 20), MMS_ERR_FORMAT,
                   "%s: feature width %zu is out of range", p, pv->fx.cols);
    MMS_CHECK_GOTO(s, fail,
                   (man_images < 0 || (int64_t)pv->fx.rows == man_images) &&
                       (man_dim < 0 || (int64_t)pv->fx.cols == man_dim),
                   MMS_ERR_FORMAT, "%s: shape %zu x %zu, but %s/%s says %lld images of width %lld", p,
                   pv->fx.rows, pv->fx.cols, dir, MMS_MANIFEST_FILE, (long long)man_images,
                   (long long)man_dim);
    c->n = (int64_t)pv->fx.rows;
    c->dim = (int32_t)pv->fx.cols;
    c->x = pv->fx.data;
    MMS_CALL_GOTO(s, fail, check_finite(c->x, c->n, c->dim, p));
    /* the check read every row; a rank keeps resident only the rows it uses */
    mms_npy_release(&pv->fx);
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, "knn_features.npy"));
    if (mms_path_exists(p)) {
        MMS_CALL_GOTO(s, fail, mms_npy_open(p, MMS_DT_F32, &pv->fk));
        MMS_CHECK_GOTO(s, fail, pv->fk.hdr.ndim == 2 && pv->fk.rows == (size_t)c->n,
                       MMS_ERR_FORMAT, "%s: has %zu rows, features.npy has %lld", p, pv->fk.rows,
                       (long long)c->n);
        MMS_CHECK_GOTO(s, fail, pv->fk.cols > 0, MMS_ERR_FORMAT, "%s: zero width", p);
        MMS_CHECK_GOTO(s, fail, man_knn_dim <= 0 || (int64_t)pv->fk.cols == man_knn_dim,
                       MMS_ERR_FORMAT, "%s: width %zu, but %s/%s says %lld", p, pv->fk.cols, dir,
                       MMS_MANIFEST_FILE, (long long)man_knn_dim);
        c->knn_dim = (int32_t)pv->fk.cols;
        c->knn_x = pv->fk.data;
        MMS_CALL_GOTO(s, fail, check_finite(c->knn_x, c->n, c->knn_dim, p));
        mms_npy_release(&pv->fk);
    }
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, "images.tsv"));
    MMS_CHECK_GOTO(s, fail, mms_path_exists(p), MMS_ERR_FORMAT, "catalog '%s' has no images.tsv",
                   dir);
    MMS_CALL_GOTO(s, fail, read_images(c, pv, p));
    MMS_CHECK_GOTO(s, fail, c->n_split[MMS_SPLIT_TRAIN] > 0, MMS_ERR_FORMAT,
                   "%s: catalog has no training images (split column is never 'train')", p);
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, "objects.tsv"));
    if (mms_path_exists(p)) MMS_CALL_GOTO(s, fail, read_objects(c, pv, p));
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, "captions.tsv"));
    if (mms_path_exists(p)) MMS_CALL_GOTO(s, fail, read_captions(c, pv, p));
    MMS_CALL_GOTO(s, fail, mms_path_join(p, sizeof p, dir, "paths.tsv"));
    if (mms_path_exists(p)) MMS_CALL_GOTO(s, fail, read_paths(c, pv, p));
    if (have_sums && (sums[1] != 0) == (pv->fk.data != NULL))
        c->checksum = mms_checksum(sums, sizeof sums, 0);
    else
        MMS_CALL_GOTO(s, fail, mms_catalog_checksum(dir, &c->checksum));
    *out = c;
    return MMS_OK;
fail:
    mms_catalog_close(&c);
    return s;
}

void mms_catalog_close(mms_catalog_t **cp) {
    if (!cp || !*cp) return;
    mms_catalog_t *c = *cp;
    priv_t *pv = c->priv;
    if (pv) {
        mms_npy_close(&pv->fx);
        mms_npy_close(&pv->fk);
        mms_strmap_destroy(&pv->idmap);
        mms_strmap_destroy(&pv->tagmap);
        free(pv);
    }
    free_strs(c->ids, c->ids ? c->n : 0); /* calloc'd: unfilled entries are NULL */
    free(c->split);
    free(c->tag_ptr);
    free(c->tag_idx);
    free_strs(c->tag_names, c->ntags);
    free(c->tag_count);
    free(c->obj_ptr);
    free(c->obj_cat);
    free(c->obj_count);
    free_strs(c->cat_names, c->ncats);
    if (c->captions) free_strs(c->captions, c->cap_ptr ? c->cap_ptr[c->n] : 0);
    free(c->cap_ptr);
    free_strs(c->paths, c->paths ? c->n : 0);
    free(c);
    *cp = NULL;
}

int32_t mms_catalog_tag_lookup(const mms_catalog_t *c, const char *name) {
    const priv_t *pv = c->priv;
    int64_t v;
    if (!pv->tagmap || !mms_strmap_get(pv->tagmap, name, strlen(name), &v)) return -1;
    return (int32_t)v;
}

int64_t mms_catalog_id_lookup(const mms_catalog_t *c, const char *id) {
    const priv_t *pv = c->priv;
    int64_t v;
    if (!pv->idmap || !mms_strmap_get(pv->idmap, id, strlen(id), &v)) return -1;
    return v;
}
