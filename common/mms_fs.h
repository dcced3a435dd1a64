/* mms_fs.h: paths, atomic outputs and checksums.
 *
 * Every output of mmsage is written to a temporary name beside its final place
 * and renamed at the end, so a crash or a bad input never leaves a half-written
 * file or directory where a later step would read it:
 *   mms_outdir_begin(final, force, tmp)  makes "<final>.tmp.<pid>" (refuses an
 *                                        existing final unless force)
 *   mms_outdir_commit(tmp, final, force) renames it into place
 *   mms_outdir_abort(tmp)                removes it
 * Files use mms_file_tmpname + mms_file_commit (rename) the same way.
 */
#ifndef MMS_FS_H
#define MMS_FS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mms_status.h"

#define MMS_PATH_MAX 4096

/* out = a + "/" + b (bounded); returns MMS_ERR_ARG if it does not fit. */
mms_status mms_path_join(char *out, size_t cap, const char *a, const char *b);
int mms_path_exists(const char *path);
int mms_path_is_dir(const char *path);
mms_status mms_mkdir_p(const char *path);
/* Remove a file or a directory tree; a missing path is ok. */
mms_status mms_rm_rf(const char *path);

mms_status mms_outdir_begin(const char *final_dir, int force, char *tmp_out, size_t cap);
mms_status mms_outdir_commit(const char *tmp_dir, const char *final_dir, int force);
void mms_outdir_abort(const char *tmp_dir);

/* "<path>.tmp.<pid>" */
mms_status mms_file_tmpname(const char *path, char *out, size_t cap);
mms_status mms_file_commit(const char *tmp_path, const char *final_path);

/* fopen with an error naming the path and the reason. */
mms_status mms_fopen(const char *path, const char *mode, FILE **out);
/* fclose checking for write errors (disk full) on files opened for writing. */
mms_status mms_fclose(FILE **f, const char *path);
/* Whole file into a NUL-terminated malloc'd buffer (caller frees). */
mms_status mms_read_file(const char *path, char **out, size_t *len);
/* Write bytes atomically (tmp + rename). */
mms_status mms_write_file_atomic(const char *path, const void *data, size_t len);
/* Copy the file <from_dir>/<name> to <to_dir>/<name> (atomically). */
mms_status mms_file_copy(const char *from_dir, const char *to_dir, const char *name);

/* xxHash64 (XXH3) of a file's bytes, and of a buffer. */
mms_status mms_file_checksum(const char *path, uint64_t *out);
uint64_t mms_checksum(const void *data, size_t len, uint64_t seed);

/* Read-only memory map of a whole file. */
typedef struct {
    void *data;
    size_t len;
} mms_map_t;
mms_status mms_map_file(const char *path, mms_map_t *m);
void mms_unmap(mms_map_t *m);

/* Read one line of any length into *buf (growing it); strips '\n' and '\r'.
 * Returns 1 on a line, 0 at EOF, -1 on a read error. */
int mms_getline(char **buf, size_t *cap, FILE *f);

#endif
