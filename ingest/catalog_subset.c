/* catalog_subset.c: a catalog of rows of others (catalog_subset.h). */
#define _GNU_SOURCE
#include "catalog_subset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_strmap.h"

void mms_subset_opts_default(mms_subset_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->split = -1;
}

/* The ids listed in path into a set (value: its line). */
static mms_status read_ids(const char *path, mms_strmap_t **out) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "r", &f));
    mms_strmap_t *set = NULL;
    mms_status s = mms_strmap_create(1024, &set);
    char *line = NULL;
    size_t cap = 0;
    long long lineno = 0;
    int r = 0;
    while (s == MMS_OK && (r = mms_getline(&line, &cap, f)) == 1) {
        lineno++;
        char *p = mms_id_line(line);
        if (!p) continue;
        int ins = 0;
        s = mms_strmap_put(set, p, strlen(p), lineno, &ins, NULL);
    }
    if (s == MMS_OK && r < 0) {
        mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "error reading '%s'", path);
        s = MMS_ERR_IO;
    }
    free(line);
    fclose(f);
    if (s != MMS_OK) {
        mms_strmap_destroy(&set);
        return s;
    }
    *out = set;
    return MMS_OK;
}

/* Every id of the list must be a row of some catalog (the first one missing,
 * in file order, is named with its line). */
static mms_status check_listed(const mms_catalog_t *const *cats, int n, const mms_strmap_t *set,
                               const char *path) {
    size_t m = mms_strmap_size(set);
    for (size_t k = 0; k < m; k++) {
        const char *id = mms_strmap_key(set, k);
        int found = 0;
        for (int i = 0; i < n && !found; i++) found = mms_catalog_id_lookup(cats[i], id) >= 0;
        if (!found) {
            int64_t line = 0;
            mms_strmap_get(set, id, strlen(id), &line);
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "%s:%lld: '%s' is not an image of catalog '%s'%s", path, (long long)line,
                          id, cats[0]->dir, n > 1 ? " or the others given" : "");
            return MMS_ERR_ARG;
        }
    }
    return MMS_OK;
}

mms_status mms_catalog_subset(const mms_catalog_t *const *cats, const uint8_t *const *keep, int n,
                              const mms_subset_opts_t *o, int64_t *rows) {
    return mms_catalog_subset_split(cats, keep, NULL, n, o, rows);
}

mms_status mms_catalog_subset_split(const mms_catalog_t *const *cats, const uint8_t *const *keep,
                                    const int *split_of, int n, const mms_subset_opts_t *o,
                                    int64_t *rows) {
    *rows = 0;
    MMS_CHECK(n >= 1 && o->out, MMS_ERR_ARG, "import catalog: no source catalog or no --out");
    for (int i = 1; i < n; i++)
        MMS_CHECK(cats[i]->dim == cats[0]->dim && cats[i]->knn_dim == cats[0]->knn_dim,
                  MMS_ERR_MISMATCH,
                  "import catalog: '%s' has widths %d / %d (features / kNN), '%s' %d / %d",
                  cats[i]->dir, cats[i]->dim, cats[i]->knn_dim, cats[0]->dir, cats[0]->dim,
                  cats[0]->knn_dim);
    mms_strmap_t *listed = NULL, *seen = NULL;
    const char **tags = NULL, **objs = NULL;
    int *counts = NULL;
    int32_t maxt = 1, maxo = 1;
    mms_catalog_writer_t *w = NULL;
    mms_status s = MMS_OK;
    if (o->ids) {
        s = read_ids(o->ids, &listed); /* read once: the list may be a pipe */
        if (s == MMS_OK) s = check_listed(cats, n, listed, o->ids);
    }
    if (s == MMS_OK) s = mms_strmap_create(4096, &seen);
    for (int i = 0; i < n; i++) {
        maxt = cats[i]->ntags > maxt ? cats[i]->ntags : maxt;
        maxo = cats[i]->ncats > maxo ? cats[i]->ncats : maxo;
    }
    if (s == MMS_OK) s = mms_malloc((size_t)(maxt + 1) * sizeof *tags, &tags);
    if (s == MMS_OK) s = mms_malloc((size_t)(maxo + 1) * sizeof *objs, &objs);
    if (s == MMS_OK) s = mms_malloc((size_t)(maxo + 1) * sizeof *counts, &counts);
    char source[MMS_PATH_MAX + 64];
    snprintf(source, sizeof source, "rows of %s%s", cats[0]->dir, n > 1 ? " and others" : "");
    if (s == MMS_OK)
        s = mms_catalog_writer_open(o->out, o->force, cats[0]->dim, cats[0]->knn_dim, source, &w);
    for (int i = 0; s == MMS_OK && i < n; i++) {
        const mms_catalog_t *c = cats[i];
        for (int64_t r = 0; s == MMS_OK && r < c->n; r++) {
            if (keep && keep[i] && !keep[i][r]) continue;
            int64_t line;
            if (listed && (mms_strmap_get(listed, c->ids[r], strlen(c->ids[r]), &line) != 0) ==
                              o->exclude)
                continue;
            int ins = 0;
            s = mms_strmap_put(seen, c->ids[r], strlen(c->ids[r]), i, &ins, NULL);
            if (s == MMS_OK && !ins) {
                mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                              "import catalog: id '%s' of '%s' (images.tsv line %lld) is taken "
                              "twice", c->ids[r], c->dir, (long long)r + 1);
                s = MMS_ERR_ARG;
                break;
            }
            int nt = 0, no = 0;
            for (int64_t t = c->tag_ptr[r]; t < c->tag_ptr[r + 1]; t++) tags[nt++] = c->tag_names[c->tag_idx[t]];
            for (int64_t t = c->obj_ptr ? c->obj_ptr[r] : 0; c->obj_ptr && t < c->obj_ptr[r + 1]; t++) {
                objs[no] = c->cat_names[c->obj_cat[t]];
                counts[no++] = c->obj_count[t];
            }
            char where[MMS_PATH_MAX + 64];
            snprintf(where, sizeof where, "%s row %lld", c->dir, (long long)r);
            mms_catalog_row_t row = {
                .where = where,
                .id = c->ids[r],
                .split = split_of && split_of[i] >= 0 ? split_of[i]
                         : o->split >= 0                ? o->split
                                                        : c->split[r],
                .tags = tags,
                .ntags = nt,
                .features = c->x + (size_t)r * c->dim,
                .knn_features = c->knn_dim ? c->knn_x + (size_t)r * c->knn_dim : NULL,
                .obj_names = no ? objs : NULL,
                .obj_counts = no ? counts : NULL,
                .nobj = no,
                .captions = c->cap_ptr ? (const char *const *)c->captions + c->cap_ptr[r] : NULL,
                .ncaptions = c->cap_ptr ? (int)(c->cap_ptr[r + 1] - c->cap_ptr[r]) : 0,
                .path = c->paths ? c->paths[r] : NULL,
            };
            s = mms_catalog_writer_add(w, &row);
            if (s == MMS_OK) (*rows)++;
        }
    }
    if (s == MMS_OK) s = mms_catalog_writer_set_str(w, "importer", "catalog");
    if (s == MMS_OK) s = mms_catalog_writer_finish(&w);
    else if (w) mms_catalog_writer_abort(&w);
    mms_strmap_destroy(&listed);
    mms_strmap_destroy(&seen);
    free(tags);
    free(objs);
    free(counts);
    return s;
}
