/* report_thumbs.h: the thumbnails of examples.html, copied next to the report
 * (report/thumbs/<dataset index>-<row>-<id>.jpg, longest side at most
 * MMS_REPORT_THUMB_SIDE) so that the report directory is self-contained: the
 * page links them by relative paths and can be copied anywhere.
 *
 * A thumbnail is made on demand, once per catalog row (a row shown many times
 * is decoded once), and at most MMS_REPORT_THUMBS_MAX per report. An image
 * that cannot be read or decoded (missing, corrupt, not a JPEG) or one over
 * the limit is not an error: the caller shows a placeholder, and one warning
 * per dataset says how many and why. Only a failure to write into the report
 * (full disk) is an error.
 *
 * Not a public API (report_internal.h's writers only).
 */
#ifndef MMS_REPORT_THUMBS_H
#define MMS_REPORT_THUMBS_H

#include <stddef.h>
#include <stdint.h>

#include "mms_catalog.h"
#include "mms_status.h"

#define MMS_REPORT_THUMB_SIDE 160
#define MMS_REPORT_THUMBS_MAX 2000

typedef struct {
    const char *dir;          /* borrowed: the report's (temporary) directory */
    const mms_catalog_t *c;   /* borrowed */
    const char *dataset;      /* borrowed: for messages */
    int dsidx;                /* dataset index in the report: part of the file names */
    int *total;               /* borrowed: thumbnails made in the whole report */
    int8_t *state;            /* c->n: 0 untried, 1 made, -1 cannot be made */
    int made, failed, capped; /* of this dataset */
    char first_err[256];      /* why the first one failed */
} report_thumbs_t;

/* Start the thumbnails of one dataset; *total is shared by the datasets of a
 * report (starts at 0). */
mms_status report_thumbs_init(report_thumbs_t *t, const char *dir, const mms_catalog_t *c,
                              const char *dataset, int dsidx, int *total);

/* The thumbnail of catalog row `row`: *ok = 1 and rel (cap bytes) its path
 * relative to the report directory ("thumbs/..."; only [A-Za-z0-9._/-], safe
 * in a URL and in HTML as is), or *ok = 0 when it cannot be made (no path,
 * unreadable, over the limit). Errors only when writing into the report fails. */
mms_status report_thumb(report_thumbs_t *t, int64_t row, int *ok, char *rel, size_t cap);

/* Warn once about the thumbnails that could not be made, and free. */
void report_thumbs_finish(report_thumbs_t *t);

#endif
