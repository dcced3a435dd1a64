/* cmd_info.c: `mmsage info --catalog C` validates a catalog with the shared
 * reader and prints a summary to stdout (counts, widths, tag statistics). */
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "mms_catalog.h"
#include "mms_log.h"
#include "mms_opts.h"

mms_status mms_cmd_info(int argc, char **argv) {
    const char *catalog = NULL;
    int top = 10;
    mms_opt_t opts[] = {
        {"catalog", MMS_OPT_STR, &catalog, "catalog directory to validate and summarise", 1, 0, 0, 0},
        {"top-tags", MMS_OPT_INT, &top, "how many of the most frequent tags to list", 0, 1, 0, 1000},
    };
    int help;
    MMS_CALL(mms_opts_parse("info", "Validate a catalog and print a summary.", opts, 2, argc, argv,
                            &help));
    if (help) return MMS_OK;
    mms_catalog_t *c;
    MMS_CALL(mms_catalog_open(catalog, &c));
    int64_t assigned = c->tag_ptr[c->n], untagged = 0;
    for (int64_t i = 0; i < c->n; i++) untagged += c->tag_ptr[i + 1] == c->tag_ptr[i];
    printf("catalog      %s\n", c->dir);
    printf("images       %lld (train %lld, val %lld, test %lld)\n", (long long)c->n,
           (long long)c->n_split[0], (long long)c->n_split[1], (long long)c->n_split[2]);
    printf("features     %d-d float32\n", c->dim);
    if (c->knn_dim) printf("knn features %d-d float32\n", c->knn_dim);
    printf("tags         %d distinct, %lld assignments, %.2f per image, %lld untagged images\n",
           c->ntags, (long long)assigned, (double)assigned / (double)c->n, (long long)untagged);
    if (c->obj_ptr) printf("objects      %d categories\n", c->ncats);
    if (c->cap_ptr) printf("captions     %lld\n", (long long)c->cap_ptr[c->n]);
    if (c->paths) printf("paths        yes\n");
    printf("checksum     %016llx\n", (unsigned long long)c->checksum);
    /* most frequent tags (selection by repeated max: top is small) */
    int32_t k = c->ntags < top ? c->ntags : top;
    char *used = calloc((size_t)c->ntags + 1, 1);
    if (used && k > 0) {
        printf("top tags    ");
        for (int32_t r = 0; r < k; r++) {
            int32_t best = -1;
            for (int32_t t = 0; t < c->ntags; t++)
                if (!used[t] && (best < 0 || c->tag_count[t] > c->tag_count[best])) best = t;
            used[best] = 1;
            printf(" %s(%lld)", c->tag_names[best], (long long)c->tag_count[best]);
        }
        printf("\n");
    }
    free(used);
    mms_catalog_close(&c);
    return MMS_OK;
}
