/* mms_fs.h: paths, atomic outputs and checksums.
 *
 * Every output of mmsage is written to a temporary name beside its final place
 * and renamed at the end, so a crash or a bad input never leaves a half-written
 * file or directory where a later step would read it:
 *   mms_outdir_begin(final, force, tmp)  makes "<final>.tmp.<host>.<pid>"
 *                                        (refuses an existing final unless force)
 *   mms_outdir_commit(tmp, final, force) renames it into place (an existing
 *                                        final is swapped out, then removed)
 *   mms_outdir_abort(tmp)                removes it
 * Files use mms_file_begin (or mms_file_tmpname inside an output directory),
 * mms_fclose (checks every write, flushes and fsyncs), then mms_file_commit
 * (rename) or mms_file_abort (unlink) the same way.
 *
 * Stale temporaries: a run killed with SIGKILL leaves its "<final>.tmp.*".
 * mms_outdir_begin, mms_file_begin and mms_file_tmpname first remove those of
 * the same final name whose process is gone (mms_tmp_reap), one log line each.
 * <host> is this machine's short host name, so that on a filesystem shared by
 * several nodes a run only judges pids of its own host: it removes
 * "<final>.tmp.<thishost>.<pid>" and the legacy "<final>.tmp.<pid>" (written
 * before host names were added) when kill(pid, 0) fails with ESRCH, and never
 * touches a name of another host, a live pid or any other name.
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

/* "<path>.tmp.<host>.<pid>" (trailing '/' of path dropped); also removes the
 * stale temporaries of path (mms_tmp_reap). */
mms_status mms_file_tmpname(const char *path, char *out, size_t cap);
/* Start a single-file output: refuses an existing path unless force (a
 * directory is always refused), reaps stale temporaries, and gives the
 * temporary name to write (then mms_fclose, mms_file_commit or mms_file_abort). */
mms_status mms_file_begin(const char *path, int force, char *tmp_out, size_t cap);
/* rename(tmp, final): replaces an existing final file atomically. */
mms_status mms_file_commit(const char *tmp_path, const char *final_path);
/* Remove a temporary file (missing is fine). */
void mms_file_abort(const char *tmp_path);

/* This host's name as used in temporary names: the short host name with
 * every byte outside [A-Za-z0-9-] turned into '-' ("host" if unknown). */
void mms_tmp_host(char *out, size_t cap);
/* Remove the stale temporaries of final (a file or directory path): entries of
 * its parent directory named exactly "<base>.tmp.<thishost>.<digits>" or
 * "<base>.tmp.<digits>" whose pid is not this process and is gone
 * (kill(pid, 0) == -1 with ESRCH). Logs one line per removal; never fails (a
 * removal that fails is a warning). Returns how many were removed. */
int mms_tmp_reap(const char *final);

/* fopen with an error naming the path and the reason. */
mms_status mms_fopen(const char *path, const char *mode, FILE **out);
/* Close a file opened for writing, checking that everything reached the disk:
 * an earlier failed write (ferror), the final flush, fsync (regular files) and
 * fclose, with the error naming path and the real cause (ENOSPC, EIO, ...).
 * *f is NULL afterwards whatever happens. Also fine on files opened to read. */
mms_status mms_fclose(FILE **f, const char *path);
/* The same check for stdout at the end of a command that wrote results to it
 * (flush, earlier write errors, fsync when it is a regular file); what names
 * the output in the message, e.g. "standard output". */
mms_status mms_stdout_flush(const char *what);
/* Whole file into a NUL-terminated malloc'd buffer (caller frees). */
mms_status mms_read_file(const char *path, char **out, size_t *len);
/* Write bytes atomically (tmp + rename). */
mms_status mms_write_file_atomic(const char *path, const void *data, size_t len);
/* Copy the file <from_dir>/<name> to <to_dir>/<name> (atomically). */
mms_status mms_file_copy(const char *from_dir, const char *to_dir, const char *name);

/* Recreate the tree under from_dir in to_dir (which must exist): every
 * directory made, every regular file hard-linked (copied where the two are on
 * different filesystems or links are refused). Names listed in skip
 * (NULL-terminated paths relative to from_dir, or NULL) and temporary names
 * (containing ".tmp.") are left out, as is anything that is neither a file
 * nor a directory. *linked / *copied (either may be NULL) get the bytes
 * shared by a link and the bytes copied. A file of to_dir that is later
 * replaced by rename never changes from_dir's (the rename swaps the name, not
 * the shared inode); never write into a linked file in place. */
mms_status mms_dir_link_tree(const char *from_dir, const char *to_dir, const char *const *skip,
                             uint64_t *linked, uint64_t *copied);

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

/* A line of an id list (remove --ids, import catalog --ids): the id with
 * blanks around it trimmed (line is modified), or NULL for a blank line or a
 * '#' comment. */
char *mms_id_line(char *line);

/* Read one line of any length into *buf (growing it); strips '\n' and '\r'.
 * Returns 1 on a line, 0 at EOF, -1 on a read error. */
int mms_getline(char **buf, size_t *cap, FILE *f);

#endif
