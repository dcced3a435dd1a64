/* index_version.h: writing a new version of an index (the format is index.h's
 * "Versions"): what `mmsage add` and `mmsage remove` share. No MPI.
 *
 * A version is made in a temporary directory beside its final place:
 *   mms_index_version_begin   the parent's tree hard-linked (nothing copied),
 *                             a manifest that names the parent, version + 1
 *   ..._add_segment           new rows of one shard (shard-p/add-V.*.npy)
 *   ..._add_catalog           the catalog of the added images (added-V/, its
 *                             files hard-linked from the catalog given)
 *   ..._set_removed           the removed list (removed.npy, a new file)
 *   ..._compact               a shard rewritten without its removed rows,
 *                             its segments merged into new base files
 *   mms_index_version_commit  checksums (taken over from the parent for the
 *                             linked files), manifest, rename into place
 * A file of the parent is never written: every file of the new version is
 * written under a temporary name and renamed over the link, which swaps the
 * name and leaves the parent's inode alone.
 */
#ifndef MMS_INDEX_VERSION_H
#define MMS_INDEX_VERSION_H

#include <stdint.h>

#include "index.h"
#include "mms_manifest.h"
#include "mms_status.h"

typedef struct {
    char parent[MMS_PATH_MAX]; /* the parent version's directory */
    char out[MMS_PATH_MAX];    /* the final directory */
    char stage[MMS_PATH_MAX];  /* where it is built */
    int force;
    mms_manifest_t *pm;        /* the parent's manifest */
    mms_manifest_t *m;         /* the new manifest */
    int64_t version;           /* the new version's number */
    int64_t images;            /* node ids given out (grows with add_catalog) */
    uint64_t linked, copied, written; /* bytes shared with the parent, copied, written new */
} mms_index_version_t;

/* Start version parent + 1 at out (refused if out exists, unless force).
 * Checks the parent's manifest (kind "index"). */
mms_status mms_index_version_begin(const char *parent, const char *out, int force,
                                   mms_index_version_t *v);
/* Rows added to shard `shard` (ascending node ids, all >= every id the
 * parent gave out). */
mms_status mms_index_version_add_segment(mms_index_version_t *v, int shard,
                                         const mms_index_rows_t *rows);
/* The catalog whose rows are the added images, nodes first .. first + n - 1
 * in row order (first must be v->images; v->images grows by n). */
mms_status mms_index_version_add_catalog(mms_index_version_t *v, const char *catalog, int64_t first,
                                         int64_t n);
/* The removed nodes after this version (ascending, n of them), of which
 * n_now are new in it. */
mms_status mms_index_version_set_removed(mms_index_version_t *v, const int64_t *removed, int64_t n,
                                         int64_t n_now);
/* Rewrite shard `shard` of the new version without its removed rows: its
 * base and segment rows merged into new base files, its segments dropped.
 * removed: the sorted list the version will have. *kept / *dropped: rows. */
mms_status mms_index_version_compact(mms_index_version_t *v, int shard, const int64_t *removed,
                                     int64_t n_removed, int64_t *kept, int64_t *dropped);
/* Record a string or integer of the version's provenance in its manifest. */
mms_status mms_index_version_note(mms_index_version_t *v, const char *key, const char *str);
mms_status mms_index_version_note_int(mms_index_version_t *v, const char *key, int64_t val);
/* Seal and rename into place. v is released either way. */
mms_status mms_index_version_commit(mms_index_version_t *v);
/* Remove the stage and release v. */
void mms_index_version_abort(mms_index_version_t *v);

/* Rows of shard `shard` of the index directory dir (base and segments, per its
 * manifest m) and how many of them are in removed[0..n_removed). */
mms_status mms_index_shard_rows(const char *dir, const mms_manifest_t *m, int shard,
                                const int64_t *removed, int64_t n_removed, int64_t *rows,
                                int64_t *dead);

/* ---------------------------------------------------------------- remove */

typedef struct {
    double compact_at;  /* rewrite a shard whose removed share passes this [0.2]; > 1: never */
    int ignore_missing; /* 1: ids that are no (live) image of the index are counted, not refused */
    int force;          /* replace an existing out */
} mms_index_remove_opts_t;

typedef struct {
    int64_t requested, removed_now, missing, removed_total, live;
    int compacted;      /* shards rewritten */
    uint64_t linked, written; /* bytes shared with the parent, bytes written new */
    int64_t version;
} mms_index_remove_report_t;

void mms_index_remove_opts_default(mms_index_remove_opts_t *o);

/* `mmsage remove`: version parent + 1 of index at out, without the images
 * whose ids are listed in ids_file (one id per line; blank lines and lines
 * starting with '#' skipped). An id that is no live image of the index is an
 * error naming the file and line (unless ignore_missing). Removed images are
 * tombstoned (removed.npy); a shard whose removed share passes compact_at is
 * rewritten without them. One process, no MPI. */
mms_status mms_index_remove(const char *index, const char *ids_file, const char *out,
                            const mms_index_remove_opts_t *o, mms_index_remove_report_t *rep);

#endif
