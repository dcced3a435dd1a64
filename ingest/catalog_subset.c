/* catalog_subset.c: a catalog of some rows of another (catalog_subset.h). */
#define _GNU_SOURCE
#include "catalog_subset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"

void mms_subset_opts_default(mms_subset_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->split = -1;
}

/* Mark the rows of c listed in path. */
static mms_status read_ids(const mms_catalog_t *c, const char *path, uint8_t *mark) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "r", &f));
    char *line = NULL;
    size_t cap = 0;
    long long lineno = 0;
    mms_status s = MMS_OK;
    int r;
    while (s == MMS_OK && (r = mms_getline(&line, &cap, f)) == 1) {
        lineno++;
        char *p = line, *e;
        while (*p == ' ' || *p == '\t') p++;
        e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
        if (!*p || *p == '#') continue;
        int64_t row = mms_catalog_id_lookup(c, p);
        if (row < 0) {
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "%s:%lld: '%s' is not an image of catalog '%s'", path, lineno, p, c->dir);
            s = MMS_ERR_ARG;
            break;
        }
        mark[row] = 1;
    }
    if (s == MMS_OK && r < 0) {
        mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "error reading '%s'", path);
        s = MMS_ERR_IO;
    }
    free(line);
    fclose(f);
    return s;
}

mms_status mms_catalog_subset(const mms_subset_opts_t *o, int64_t *rows) {
    *rows = 0;
    MMS_CHECK(o->from && o->ids && o->out, MMS_ERR_ARG, "import catalog: --from, --ids and --out are needed");
    mms_catalog_t *c = NULL;
    MMS_CALL(mms_catalog_open(o->from, &c));
    uint8_t *mark = NULL;
    const char **tags = NULL;
    mms_catalog_writer_t *w = NULL;
    mms_status s = mms_calloc((size_t)c->n + 1, 1, &mark);
    if (s == MMS_OK) s = read_ids(c, o->ids, mark);
    if (s == MMS_OK) s = mms_malloc((size_t)(c->ntags + 1) * sizeof *tags, &tags);
    char source[MMS_PATH_MAX + 64];
    snprintf(source, sizeof source, "rows of %s", c->dir);
    if (s == MMS_OK) s = mms_catalog_writer_open(o->out, o->force, c->dim, c->knn_dim, source, &w);
    for (int64_t r = 0; s == MMS_OK && r < c->n; r++) {
        if (mark[r] == (uint8_t)o->exclude) continue;
        int nt = 0;
        for (int64_t t = c->tag_ptr[r]; t < c->tag_ptr[r + 1]; t++) tags[nt++] = c->tag_names[c->tag_idx[t]];
        char where[64];
        snprintf(where, sizeof where, "row %lld", (long long)r);
        mms_catalog_row_t row = {
            .where = where,
            .id = c->ids[r],
            .split = o->split >= 0 ? o->split : c->split[r],
            .tags = tags,
            .ntags = nt,
            .features = c->x + (size_t)r * c->dim,
            .knn_features = c->knn_dim ? c->knn_x + (size_t)r * c->knn_dim : NULL,
            .path = c->paths ? c->paths[r] : NULL,
        };
        s = mms_catalog_writer_add(w, &row);
        if (s == MMS_OK) (*rows)++;
    }
    if (s == MMS_OK) s = mms_catalog_writer_set_str(w, "importer", "catalog");
    if (s == MMS_OK) s = mms_catalog_writer_finish(&w);
    else if (w) mms_catalog_writer_abort(&w);
    free(mark);
    free(tags);
    mms_catalog_close(&c);
    return s;
}
