/* cmd_import_catalog.c: `mmsage import catalog`: a catalog of rows of others
 * (ingest/catalog_subset.h):
 *   --from C [--from C2 ...] [--ids FILE [--exclude]]   rows of catalogs, by id
 *   --from-index I                                     every live image of an
 *       index version (its catalog's rows, then the catalogs of the images its
 *       versions added, as training images, without removed ones): what judges
 *       a version's results (eval --judge-catalog) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_subset.h"
#include "commands.h"
#include "index.h"
#include "mms_array.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_opts.h"

/* The catalogs of index dir and, per catalog, which rows are live images or
 * (base catalog) not images at all (its val and test rows stay). */
static mms_status index_sources(mms_index_t *ix, const mms_catalog_t ***cats, uint8_t ***keep,
                                int **split_of, int *n) {
    int nc = 1 + (int)ix->n_additions;
    MMS_CALL(mms_calloc((size_t)nc, sizeof **cats, cats));
    MMS_CALL(mms_calloc((size_t)nc, sizeof **keep, keep));
    MMS_CALL(mms_malloc((size_t)nc * sizeof **split_of, split_of));
    for (int i = 0; i < nc; i++) (*split_of)[i] = i == 0 ? -1 : MMS_SPLIT_TRAIN; /* added: gallery */
    *n = nc;
    for (int i = 0; i < nc; i++) {
        const mms_catalog_t *c = i == 0 ? ix->cat : ix->added[i - 1].cat;
        (*cats)[i] = c;
        MMS_CALL(mms_malloc((size_t)c->n + 1, &(*keep)[i]));
        for (int64_t r = 0; r < c->n; r++) {
            int64_t node = i == 0 ? ix->row_node[r] : ix->added[i - 1].first + r;
            (*keep)[i][r] = node < 0 || !mms_index_is_removed(ix, node);
        }
    }
    return MMS_OK;
}

mms_status mms_cmd_import_catalog(int argc, char **argv) {
    mms_subset_opts_t o;
    mms_subset_opts_default(&o);
    mms_strlist_t from = {0};
    const char *split = "keep", *from_index = NULL;
    mms_opt_t opts[] = {
        {"from", MMS_OPT_STRLIST, &from, "catalog to take rows from (repeat for a union, in order)", 0, 0, 0, 0},
        {"from-index", MMS_OPT_STR, &from_index,
         "take the live images of this index version (its catalog and the catalogs of its additions)", 0, 0, 0, 0},
        {"ids", MMS_OPT_STR, &o.ids, "file of image ids to take, one per line ('#' comments; default: every row)", 0, 0, 0, 0},
        {"out", MMS_OPT_STR, &o.out, "catalog directory to create", 1, 0, 0, 0},
        {"exclude", MMS_OPT_FLAG, &o.exclude, "take every row except those of --ids", 0, 0, 0, 0},
        {"split", MMS_OPT_STR, &split, "split of every row: keep (each row's own), train, val or test", 0, 0, 0, 0},
        {"force", MMS_OPT_FLAG, &o.force, "replace an existing output directory", 0, 0, 0, 0},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    int help = 0;
    MMS_CALL(mms_opts_parse("import catalog",
                            "Make a catalog of rows of others: some rows by id (a nightly delta, "
                            "a hold-out set), a union, or every image of an index version.",
                            opts, n, argc, argv, &help));
    if (help) return MMS_OK;
    MMS_CHECK((from.n > 0) != (from_index != NULL), MMS_ERR_ARG,
              "import catalog: give --from (once or more) or --from-index, not both");
    MMS_CHECK(!o.exclude || o.ids, MMS_ERR_ARG, "import catalog: --exclude needs --ids");
    if (strcmp(split, "keep") != 0) {
        o.split = mms_split_parse(split, strlen(split));
        MMS_CHECK(o.split >= 0, MMS_ERR_ARG,
                  "import catalog: --split '%s' (want keep, train, val or test)", split);
    }
    MMS_CHECK(!from_index || o.split < 0, MMS_ERR_ARG,
              "import catalog: --from-index keeps the index catalog's splits (its added images are "
              "gallery: train); --split does not apply");
    mms_opts_echo("import catalog", opts, n);
    mms_catalog_t *own[MMS_STRLIST_MAX] = {0};
    const mms_catalog_t **cats = NULL;
    uint8_t **keep = NULL;
    int *split_of = NULL;
    mms_index_t *ix = NULL;
    int nc = 0;
    mms_status s = MMS_OK;
    if (from_index) {
        mms_index_open_t io;
        mms_index_open_default(&io);
        io.coordinator = 1;
        io.filter = 0;
        s = mms_index_open(from_index, &io, &ix);
        if (s == MMS_OK) s = index_sources(ix, &cats, &keep, &split_of, &nc);
    } else {
        s = mms_calloc((size_t)from.n, sizeof *cats, &cats);
        for (int i = 0; s == MMS_OK && i < from.n; i++) {
            s = mms_catalog_open(from.v[i], &own[i]);
            cats[i] = own[i];
            nc = i + 1;
        }
    }
    int64_t rows = 0;
    if (s == MMS_OK)
        s = mms_catalog_subset_split(cats, (const uint8_t *const *)keep, split_of, nc, &o, &rows);
    if (s == MMS_OK)
        printf("catalog      %s: %lld images from %d catalog%s\n", o.out, (long long)rows, nc,
               nc == 1 ? "" : "s");
    for (int i = 0; keep && i < nc; i++) free(keep[i]);
    free(keep);
    free(split_of);
    free(cats);
    for (int i = 0; i < from.n; i++) mms_catalog_close(&own[i]);
    mms_index_close(&ix);
    MMS_CALL(s);
    return mms_stdout_flush("import catalog");
}
