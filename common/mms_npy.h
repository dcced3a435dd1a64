/* mms_npy.h: NumPy .npy files (format 1.0-3.0), read and write.
 *
 * Reads are memory-mapped so a 20 GB feature matrix costs no copy; only
 * C-order little-endian arrays of the listed dtypes are accepted, and anything
 * else gets an error naming the file and the field. Writes go to a temporary
 * name and are renamed on close. A streaming writer appends rows without
 * knowing the row count in advance (the header is padded so the final shape
 * fits when it is patched on close).
 */
#ifndef MMS_NPY_H
#define MMS_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mms_fs.h"
#include "mms_status.h"

typedef enum {
    MMS_DT_F32 = 0, /* '<f4' */
    MMS_DT_F64,     /* '<f8' */
    MMS_DT_I32,     /* '<i4' */
    MMS_DT_I64,     /* '<i8' */
    MMS_DT_U8,      /* '|u1' */
    MMS_DT_COUNT
} mms_dtype;

const char *mms_dtype_descr(mms_dtype t);
/* numpy's name of the dtype ("float32", ...), for messages. */
const char *mms_dtype_name(mms_dtype t);
size_t mms_dtype_size(mms_dtype t);

typedef struct {
    mms_dtype dtype;
    int ndim;         /* 1 or 2 */
    size_t shape[2];  /* shape[1] = 1 for 1-D */
    size_t data_offset;
} mms_npy_header_t;

/* Parse a .npy header held in buf[0..len). name is used in messages. */
mms_status mms_npy_parse_header(const void *buf, size_t len, const char *name,
                                mms_npy_header_t *out);

typedef struct {
    mms_npy_header_t hdr;
    mms_map_t map;
    const void *data; /* points into map; rows*cols elements */
    size_t rows, cols;
} mms_npy_t;

/* Map path read-only and check it has dtype want (any dtype if want < 0). */
mms_status mms_npy_open(const char *path, int want, mms_npy_t *out);
void mms_npy_close(mms_npy_t *a);
/* Drop a's pages from this process's resident set (madvise MADV_DONTNEED on
 * the read-only private map) after a pass over the whole array, e.g. a
 * validation: they stay in the page cache, and a later read of a row maps its
 * page back in, so a rank's resident memory holds only the rows it uses. */
void mms_npy_release(const mms_npy_t *a);

/* Write a whole 2-D (or 1-D when cols == 0) array atomically. */
mms_status mms_npy_write(const char *path, mms_dtype t, const void *data, size_t rows,
                         size_t cols);

/* Create path (not atomic: for use inside a temporary output directory) as a
 * C-order rows x cols array of dtype t, zero-filled, so that several processes
 * can pwrite their row blocks at *data_offset + row * cols * size. */
mms_status mms_npy_create_sized(const char *path, mms_dtype t, size_t rows, size_t cols,
                                size_t *data_offset);
/* Write rows [row0, row0 + nrows) into a file made by mms_npy_create_sized. */
mms_status mms_npy_pwrite_rows(const char *path, size_t data_offset, mms_dtype t, size_t cols,
                               size_t row0, const void *data, size_t nrows);

typedef struct {
    FILE *f;
    char path[MMS_PATH_MAX];
    char tmp[MMS_PATH_MAX];
    mms_dtype dtype;
    size_t cols; /* 0 = 1-D */
    size_t rows;
} mms_npy_writer_t;

mms_status mms_npy_writer_open(mms_npy_writer_t *w, const char *path, mms_dtype t, size_t cols);
mms_status mms_npy_writer_append(mms_npy_writer_t *w, const void *rows_data, size_t nrows);
/* Patch the header with the final row count, close and rename into place. */
mms_status mms_npy_writer_close(mms_npy_writer_t *w);
/* Close and delete the temporary file (on an error path). */
void mms_npy_writer_abort(mms_npy_writer_t *w);

#endif
