/* index_version.c: a new version of an index (index_version.h). No MPI. */
#define _GNU_SOURCE
#include "index_version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mms_array.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_npy.h"

static void release(mms_index_version_t *v) {
    mms_manifest_destroy(&v->pm);
    mms_manifest_destroy(&v->m);
}

void mms_index_version_abort(mms_index_version_t *v) {
    if (v->stage[0]) mms_outdir_abort(v->stage);
    v->stage[0] = '\0';
    release(v);
}

/* A deep copy of a manifest (encode, decode). */
static mms_status manifest_copy(const mms_manifest_t *m, const char *name, mms_manifest_t **out) {
    char *buf;
    size_t len;
    MMS_CALL(mms_manifest_encode(m, &buf, &len));
    mms_status s = mms_manifest_decode(buf, len, name, NULL, INT64_MAX, out);
    free(buf);
    return s;
}

/* Re-record a path the parent holds (relative to the parent) relative to the new place. */
static mms_status rebase_path(mms_index_version_t *v, const char *key) {
    if (!mms_manifest_has(v->pm, key)) return MMS_OK;
    char p[MMS_PATH_MAX];
    if (!mms_manifest_find_path(v->pm, key, v->parent, p, sizeof p)) return MMS_OK;
    return mms_manifest_set_path(v->m, key, p, v->out);
}

mms_status mms_index_version_begin(const char *parent, const char *out, int force,
                                   mms_index_version_t *v) {
    memset(v, 0, sizeof *v);
    MMS_CHECK(strlen(parent) < sizeof v->parent && strlen(out) < sizeof v->out, MMS_ERR_ARG,
              "index version: path too long");
    snprintf(v->parent, sizeof v->parent, "%s", parent);
    snprintf(v->out, sizeof v->out, "%s", out);
    v->force = force;
    mms_status s = mms_manifest_read_dir(parent, "index", MMS_INDEX_FORMAT, &v->pm);
    if (s == MMS_OK) s = manifest_copy(v->pm, parent, &v->m);
    int64_t ver = 1;
    if (s == MMS_OK && mms_manifest_has(v->pm, "version"))
        s = mms_manifest_get_int(v->pm, "version", &ver);
    if (s == MMS_OK) s = mms_manifest_get_int(v->pm, "images", &v->images);
    if (s != MMS_OK) {
        release(v);
        return s;
    }
    v->version = ver + 1;
    v->m->format = MMS_INDEX_FORMAT;
    if (!mms_manifest_has(v->m, "base_images")) s = mms_manifest_set_int(v->m, "base_images", v->images);
    if (s == MMS_OK) s = mms_manifest_set_int(v->m, "version", v->version);
    if (s == MMS_OK) s = mms_manifest_set_int(v->m, "added_now", 0);
    if (s == MMS_OK) s = mms_manifest_set_int(v->m, "removed_now", 0);
    if (s == MMS_OK) s = mms_outdir_begin(out, force, v->stage, sizeof v->stage);
    if (s == MMS_OK) s = mms_manifest_set_path(v->m, "parent", parent, out);
    if (s == MMS_OK) s = rebase_path(v, "catalog");
    if (s == MMS_OK) s = rebase_path(v, "model");
    const char *skip[] = {MMS_MANIFEST_FILE, NULL};
    if (s == MMS_OK) s = mms_dir_link_tree(parent, v->stage, skip, &v->linked, &v->copied);
    if (s != MMS_OK) {
        mms_index_version_abort(v);
        return s;
    }
    return MMS_OK;
}

/* Append a triple to the intarr under key. */
static mms_status append_triple(mms_manifest_t *m, const char *key, int64_t a, int64_t b,
                                int64_t c) {
    const int64_t *old = NULL;
    size_t n = 0;
    if (mms_manifest_has(m, key)) MMS_CALL(mms_manifest_get_intarr(m, key, &old, &n));
    int64_t *arr;
    MMS_CALL(mms_malloc((n + 3) * sizeof(int64_t), &arr));
    if (n) memcpy(arr, old, n * sizeof(int64_t));
    arr[n] = a;
    arr[n + 1] = b;
    arr[n + 2] = c;
    mms_status s = mms_manifest_set_intarr(m, key, arr, n + 3);
    free(arr);
    return s;
}

static mms_status write_array(mms_index_version_t *v, const char *dir, const char *name,
                              mms_dtype t, const void *data, int64_t n, int32_t cols) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, name));
    MMS_CALL(mms_npy_write(p, t, data, (size_t)n, (size_t)cols));
    v->written += (uint64_t)n * (uint64_t)(cols ? cols : 1) * mms_dtype_size(t);
    return MMS_OK;
}

static mms_status shard_dir(const mms_index_version_t *v, int shard, char *out, size_t cap) {
    char name[32];
    snprintf(name, sizeof name, MMS_INDEX_SHARD_DIR, shard);
    return mms_path_join(out, cap, v->stage, name);
}

mms_status mms_index_version_add_segment(mms_index_version_t *v, int shard,
                                         const mms_index_rows_t *r) {
    char d[MMS_PATH_MAX], f[64];
    MMS_CALL(shard_dir(v, shard, d, sizeof d));
    MMS_CHECK(mms_path_is_dir(d), MMS_ERR_ARG, "index version: '%s' is not a shard of '%s'", d,
              v->parent);
    mms_index_segment_file(f, sizeof f, v->version, MMS_INDEX_IDS_FILE);
    MMS_CALL(write_array(v, d, f, MMS_DT_I64, r->ids, r->n, 0));
    mms_index_segment_file(f, sizeof f, v->version, MMS_INDEX_EMB_FILE);
    MMS_CALL(write_array(v, d, f, MMS_DT_F32, r->emb, r->n, r->emb_dim));
    mms_index_segment_file(f, sizeof f, v->version, MMS_INDEX_H1_FILE);
    MMS_CALL(write_array(v, d, f, MMS_DT_F32, r->h1, r->n, r->emb_dim));
    mms_index_segment_file(f, sizeof f, v->version, MMS_INDEX_X_FILE);
    MMS_CALL(write_array(v, d, f, MMS_DT_F32, r->x, r->n, r->dim));
    mms_index_segment_file(f, sizeof f, v->version, MMS_INDEX_VIS_FILE);
    MMS_CALL(write_array(v, d, f, MMS_DT_F32, r->vis, r->n, r->knn_dim));
    return append_triple(v->m, "segments", shard, v->version, r->n);
}

mms_status mms_index_version_add_catalog(mms_index_version_t *v, const char *catalog, int64_t first,
                                         int64_t n) {
    MMS_CHECK(first == v->images, MMS_ERR_ARG, "index version: added nodes start at %lld, not %lld",
              (long long)first, (long long)v->images);
    char name[64], d[MMS_PATH_MAX];
    snprintf(name, sizeof name, MMS_INDEX_ADDED_DIR, (long long)v->version);
    MMS_CALL(mms_path_join(d, sizeof d, v->stage, name));
    MMS_CALL(mms_mkdir_p(d));
    uint64_t linked = 0, copied = 0;
    MMS_CALL(mms_dir_link_tree(catalog, d, NULL, &linked, &copied));
    v->linked += linked;
    v->copied += copied;
    v->images += n;
    MMS_CALL(append_triple(v->m, "additions", v->version, first, n));
    MMS_CALL(mms_manifest_set_int(v->m, "images", v->images));
    return mms_manifest_set_int(v->m, "added_now", n);
}

mms_status mms_index_version_set_removed(mms_index_version_t *v, const int64_t *removed, int64_t n,
                                         int64_t n_now) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, v->stage, MMS_INDEX_REMOVED_FILE));
    if (n > 0) {
        MMS_CALL(write_array(v, v->stage, MMS_INDEX_REMOVED_FILE, MMS_DT_I64, removed, n, 0));
    } else if (unlink(p) != 0 && errno != ENOENT) {
        MMS_CHECK(0, MMS_ERR_IO, "cannot remove '%s': %s", p, strerror(errno));
    }
    MMS_CALL(mms_manifest_set_int(v->m, "removed", n));
    return mms_manifest_set_int(v->m, "removed_now", n_now);
}

mms_status mms_index_version_note(mms_index_version_t *v, const char *key, const char *str) {
    return mms_manifest_set_str(v->m, key, str);
}

mms_status mms_index_version_note_int(mms_index_version_t *v, const char *key, int64_t val) {
    return mms_manifest_set_int(v->m, key, val);
}

/* The versions of shard's segments in m (ascending as recorded), *n of them (caller frees). */
static mms_status shard_segments(const mms_manifest_t *m, int shard, int64_t **vers,
                                 int64_t **rows, int64_t *n) {
    *vers = *rows = NULL;
    *n = 0;
    const int64_t *a = NULL;
    size_t na = 0;
    if (mms_manifest_has(m, "segments")) MMS_CALL(mms_manifest_get_intarr(m, "segments", &a, &na));
    MMS_CALL(mms_malloc((na / 3 + 1) * sizeof(int64_t), vers));
    MMS_CALL(mms_malloc((na / 3 + 1) * sizeof(int64_t), rows));
    for (size_t i = 0; i + 2 < na; i += 3)
        if (a[i] == shard) {
            (*vers)[*n] = a[i + 1];
            (*rows)[*n] = a[i + 2];
            (*n)++;
        }
    return MMS_OK;
}

mms_status mms_index_shard_rows(const char *dir, const mms_manifest_t *m, int shard,
                                const int64_t *removed, int64_t n_removed, int64_t *rows,
                                int64_t *dead) {
    *rows = *dead = 0;
    int64_t *vers = NULL, *segrows = NULL, ns = 0;
    mms_status s = shard_segments(m, shard, &vers, &segrows, &ns);
    char sd[MMS_PATH_MAX], name[32];
    snprintf(name, sizeof name, MMS_INDEX_SHARD_DIR, shard);
    if (s == MMS_OK) s = mms_path_join(sd, sizeof sd, dir, name);
    for (int64_t i = -1; s == MMS_OK && i < ns; i++) {
        char f[64], p[MMS_PATH_MAX];
        mms_index_segment_file(f, sizeof f, i < 0 ? 0 : vers[i], MMS_INDEX_IDS_FILE);
        s = mms_path_join(p, sizeof p, sd, f);
        mms_npy_t a;
        if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_I64, &a);
        if (s != MMS_OK) break;
        const int64_t *ids = a.data;
        *rows += (int64_t)a.rows;
        for (size_t r = 0; n_removed > 0 && r < a.rows; r++)
            *dead += mms_find_i64(removed, n_removed, ids[r]) >= 0;
        mms_npy_close(&a);
    }
    free(vers);
    free(segrows);
    return s;
}

/* One array of the shard: the live rows of the base and every segment, in
 * order, into a new base file (written under a temporary name, renamed over
 * the link). */
static mms_status compact_array(mms_index_version_t *v, const char *sd, const char *base,
                                mms_dtype t, const int64_t *vers, int64_t ns,
                                uint8_t *const *dead) {
    mms_npy_writer_t w;
    char out[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(out, sizeof out, sd, base));
    mms_status s = MMS_OK;
    int open = 0;
    for (int64_t i = -1; s == MMS_OK && i < ns; i++) {
        char f[64], p[MMS_PATH_MAX];
        mms_index_segment_file(f, sizeof f, i < 0 ? 0 : vers[i], base);
        s = mms_path_join(p, sizeof p, sd, f);
        mms_npy_t a;
        if (s == MMS_OK) s = mms_npy_open(p, (int)t, &a);
        if (s != MMS_OK) break;
        if (!open) {
            s = mms_npy_writer_open(&w, out, t, a.hdr.ndim == 1 ? 0 : a.cols);
            open = s == MMS_OK;
        }
        size_t per = (a.hdr.ndim == 1 ? 1 : a.cols) * mms_dtype_size(t);
        const uint8_t *dd = dead[i + 1];
        for (size_t r = 0; s == MMS_OK && r < a.rows;) {
            if (dd && dd[r]) {
                r++;
                continue;
            }
            size_t e = r;
            while (e < a.rows && !(dd && dd[e])) e++;
            s = mms_npy_writer_append(&w, (const char *)a.data + r * per, e - r);
            v->written += (uint64_t)(e - r) * per;
            r = e;
        }
        mms_npy_close(&a);
    }
    if (open) {
        if (s == MMS_OK) s = mms_npy_writer_close(&w);
        else mms_npy_writer_abort(&w);
    }
    return s;
}

/* Before a compaction of a shard with lists (ivf_lists.npy): every segment
 * without its own add-V.ivf_lists.npy gets one, assigned from the version's
 * centroids, so the lists compact like the other arrays (index.h). */
static mms_status segment_lists(const mms_index_version_t *v, const char *sd, const int64_t *vers,
                                int64_t ns) {
    mms_npy_t cv = {0}, ce = {0};
    char p[MMS_PATH_MAX];
    mms_status s = mms_path_join(p, sizeof p, v->stage, MMS_IVF_VIS_CENTROIDS_FILE);
    if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_F32, &cv);
    if (s == MMS_OK) s = mms_path_join(p, sizeof p, v->stage, MMS_IVF_EMB_CENTROIDS_FILE);
    if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_F32, &ce);
    for (int64_t i = 0; s == MMS_OK && i < ns; i++) {
        char f[64];
        mms_index_segment_file(f, sizeof f, vers[i], MMS_IVF_LISTS_FILE);
        s = mms_path_join(p, sizeof p, sd, f);
        if (s != MMS_OK || mms_path_exists(p)) continue;
        mms_npy_t a = {0}, b = {0};
        int32_t *L = NULL, *col = NULL;
        char q[MMS_PATH_MAX];
        mms_index_segment_file(f, sizeof f, vers[i], MMS_INDEX_VIS_FILE);
        s = mms_path_join(q, sizeof q, sd, f);
        if (s == MMS_OK) s = mms_npy_open(q, MMS_DT_F32, &a);
        mms_index_segment_file(f, sizeof f, vers[i], MMS_INDEX_EMB_FILE);
        if (s == MMS_OK) s = mms_path_join(q, sizeof q, sd, f);
        if (s == MMS_OK) s = mms_npy_open(q, MMS_DT_F32, &b);
        if (s == MMS_OK && (a.cols != cv.cols || b.cols != ce.cols || a.rows != b.rows)) {
            mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                          "index version: segment %lld of '%s' does not match the centroids' widths",
                          (long long)vers[i], sd);
            s = MMS_ERR_FORMAT;
        }
        size_t n = a.rows;
        if (s == MMS_OK) s = mms_malloc((n + 1) * 2 * sizeof *L, &L);
        if (s == MMS_OK) s = mms_malloc((n + 1) * sizeof *col, &col);
        for (int c = 0; c < 2 && s == MMS_OK; c++) {
            const mms_npy_t *x = c ? &b : &a, *cc = c ? &ce : &cv;
            s = mms_ivf_assign(cc->data, (int32_t)cc->rows, x->data, (int64_t)n, (int32_t)x->cols, col);
            for (size_t r = 0; s == MMS_OK && r < n; r++) L[2 * r + c] = col[r];
        }
        if (s == MMS_OK) s = mms_npy_write(p, MMS_DT_I32, L, n, 2);
        free(L);
        free(col);
        mms_npy_close(&a);
        mms_npy_close(&b);
    }
    mms_npy_close(&cv);
    mms_npy_close(&ce);
    return s;
}

mms_status mms_index_version_compact(mms_index_version_t *v, int shard, const int64_t *removed,
                                     int64_t n_removed, int64_t *kept, int64_t *dropped) {
    *kept = *dropped = 0;
    char sd[MMS_PATH_MAX];
    MMS_CALL(shard_dir(v, shard, sd, sizeof sd));
    int64_t *vers = NULL, *segrows = NULL, ns = 0;
    uint8_t **dead = NULL;
    mms_status s = shard_segments(v->m, shard, &vers, &segrows, &ns);
    if (s == MMS_OK) s = mms_calloc((size_t)(ns + 1), sizeof *dead, &dead);
    /* which rows go: the removed ones, per segment (base first) */
    for (int64_t i = -1; s == MMS_OK && i < ns; i++) {
        char f[64], p[MMS_PATH_MAX];
        mms_index_segment_file(f, sizeof f, i < 0 ? 0 : vers[i], MMS_INDEX_IDS_FILE);
        s = mms_path_join(p, sizeof p, sd, f);
        mms_npy_t a;
        if (s == MMS_OK) s = mms_npy_open(p, MMS_DT_I64, &a);
        if (s != MMS_OK) break;
        s = mms_calloc(a.rows + 1, 1, &dead[i + 1]);
        const int64_t *ids = a.data;
        for (size_t r = 0; s == MMS_OK && r < a.rows; r++) {
            dead[i + 1][r] = mms_find_i64(removed, n_removed, ids[r]) >= 0;
            *dropped += dead[i + 1][r];
            *kept += !dead[i + 1][r];
        }
        mms_npy_close(&a);
    }
    static const struct {
        const char *name;
        mms_dtype t;
    } arrays[] = {{MMS_INDEX_IDS_FILE, MMS_DT_I64}, {MMS_INDEX_EMB_FILE, MMS_DT_F32},
                  {MMS_INDEX_H1_FILE, MMS_DT_F32},  {MMS_INDEX_X_FILE, MMS_DT_F32},
                  {MMS_INDEX_VIS_FILE, MMS_DT_F32}, {MMS_IVF_LISTS_FILE, MMS_DT_I32}};
    /* the lists (last) only when the shard has them */
    size_t narr = sizeof arrays / sizeof arrays[0];
    {
        char lp[MMS_PATH_MAX];
        if (s == MMS_OK) s = mms_path_join(lp, sizeof lp, sd, MMS_IVF_LISTS_FILE);
        if (s == MMS_OK && !mms_path_exists(lp)) narr--;
        else if (s == MMS_OK) s = segment_lists(v, sd, vers, ns);
    }
    for (size_t a = 0; s == MMS_OK && a < narr; a++)
        s = compact_array(v, sd, arrays[a].name, arrays[a].t, vers, ns, dead);
    /* the segments are in the new base files now */
    for (int64_t i = 0; s == MMS_OK && i < ns; i++)
        for (size_t a = 0; s == MMS_OK && a < narr; a++) {
            char f[64], p[MMS_PATH_MAX];
            mms_index_segment_file(f, sizeof f, vers[i], arrays[a].name);
            s = mms_path_join(p, sizeof p, sd, f);
            if (s == MMS_OK && unlink(p) != 0) {
                mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "cannot remove '%s': %s",
                              p, strerror(errno));
                s = MMS_ERR_IO;
            }
        }
    if (s == MMS_OK && ns > 0) {
        const int64_t *a = NULL;
        size_t na = 0;
        s = mms_manifest_get_intarr(v->m, "segments", &a, &na);
        int64_t *keep = NULL;
        size_t nk = 0;
        if (s == MMS_OK) s = mms_malloc((na + 1) * sizeof(int64_t), &keep);
        for (size_t i = 0; s == MMS_OK && i + 2 < na; i += 3)
            if (a[i] != shard) {
                keep[nk++] = a[i];
                keep[nk++] = a[i + 1];
                keep[nk++] = a[i + 2];
            }
        if (s == MMS_OK) s = mms_manifest_set_intarr(v->m, "segments", keep, nk);
        free(keep);
    }
    for (int64_t i = 0; dead && i <= ns; i++) free(dead[i]);
    free(dead);
    free(vers);
    free(segrows);
    return s;
}

mms_status mms_index_version_commit(mms_index_version_t *v) {
    mms_status s = mms_manifest_seal_dir_from(v->m, v->stage, NULL, v->pm, v->parent);
    if (s == MMS_OK) s = mms_outdir_commit(v->stage, v->out, v->force);
    if (s != MMS_OK) {
        mms_index_version_abort(v);
        return s;
    }
    v->stage[0] = '\0';
    release(v);
    return MMS_OK;
}

/* ---------------------------------------------------------------- remove */

void mms_index_remove_opts_default(mms_index_remove_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->compact_at = 0.2;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The nodes of the ids listed in path (sorted, distinct) into *out, *n. */
static mms_status read_id_list(const mms_index_t *ix, const char *path, int ignore_missing,
                               int64_t **out, int64_t *n, int64_t *requested, int64_t *missing) {
    *out = NULL;
    *n = *requested = *missing = 0;
    FILE *f;
    MMS_CALL(mms_fopen(path, "r", &f));
    char *line = NULL;
    size_t cap = 0, ncap = 0;
    int64_t lineno = 0;
    mms_status s = MMS_OK;
    int r;
    while (s == MMS_OK && (r = mms_getline(&line, &cap, f)) == 1) {
        lineno++;
        char *p = mms_id_line(line);
        if (!p) continue;
        (*requested)++;
        int64_t node = mms_index_node_of(ix, p);
        if (node < 0) {
            if (ignore_missing) {
                (*missing)++;
                continue;
            }
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "%s:%lld: '%s' is not an image of index '%s' (unknown, or removed "
                          "already; --ignore-missing counts such ids instead)",
                          path, (long long)lineno, p, ix->dir);
            s = MMS_ERR_ARG;
            break;
        }
        s = mms_grow(out, sizeof **out, (size_t)*n + 1, &ncap);
        if (s == MMS_OK) (*out)[(*n)++] = node;
    }
    if (s == MMS_OK && r < 0) {
        mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "error reading '%s'", path);
        s = MMS_ERR_IO;
    }
    free(line);
    fclose(f);
    if (s != MMS_OK) {
        free(*out);
        *out = NULL;
        return s;
    }
    qsort(*out, (size_t)*n, sizeof **out, cmp_i64);
    int64_t w = 0;
    for (int64_t i = 0; i < *n; i++)
        if (w == 0 || (*out)[i] != (*out)[w - 1]) (*out)[w++] = (*out)[i];
    *n = w;
    return MMS_OK;
}

mms_status mms_index_remove(const char *index, const char *ids_file, const char *out,
                            const mms_index_remove_opts_t *o, mms_index_remove_report_t *rep) {
    memset(rep, 0, sizeof *rep);
    mms_index_open_t oo;
    mms_index_open_default(&oo);
    oo.coordinator = 1;
    oo.filter = 0;
    mms_index_t *ix = NULL;
    MMS_CALL(mms_index_open(index, &oo, &ix));
    int64_t *add = NULL, nadd = 0, *all = NULL;
    mms_index_version_t v;
    memset(&v, 0, sizeof v);
    mms_status s = read_id_list(ix, ids_file, o->ignore_missing, &add, &nadd, &rep->requested,
                                &rep->missing);
    /* the union with what was removed before (both sorted, disjoint: node_of skips removed) */
    int64_t nall = 0;
    if (s == MMS_OK) s = mms_malloc((size_t)(ix->n_removed + nadd + 1) * sizeof(int64_t), &all);
    if (s == MMS_OK) {
        int64_t i = 0, j = 0;
        while (i < ix->n_removed || j < nadd)
            all[nall++] = j >= nadd || (i < ix->n_removed && ix->removed[i] < add[j])
                              ? ix->removed[i++] : add[j++];
    }
    if (s == MMS_OK) s = mms_index_version_begin(index, out, o->force, &v);
    int begun = s == MMS_OK;
    if (s == MMS_OK) s = mms_index_version_set_removed(&v, all, nall, nadd);
    for (int sh = 0; s == MMS_OK && sh < ix->shards; sh++) {
        int64_t rows, dead;
        s = mms_index_shard_rows(v.stage, v.m, sh, all, nall, &rows, &dead);
        if (s != MMS_OK || rows == 0 || (double)dead <= o->compact_at * (double)rows) continue;
        int64_t kept, dropped;
        s = mms_index_version_compact(&v, sh, all, nall, &kept, &dropped);
        if (s == MMS_OK) {
            mms_log_info("remove: shard %d had %lld of %lld rows removed (more than %.0f %%): "
                         "rewritten with %lld rows", sh, (long long)dropped, (long long)rows,
                         100.0 * o->compact_at, (long long)kept);
            rep->compacted++;
        }
    }
    rep->removed_now = nadd;
    rep->removed_total = nall;
    rep->live = ix->n_images - nall;
    rep->version = v.version;
    rep->linked = v.linked;
    rep->written = v.written;
    if (s == MMS_OK) s = mms_index_version_commit(&v);
    else if (begun) mms_index_version_abort(&v);
    free(add);
    free(all);
    mms_index_close(&ix);
    return s;
}
