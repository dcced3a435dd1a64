/* mms_npy.c: see mms_npy.h. The header is a Python dict literal; we parse the
 * three keys NumPy writes (descr, fortran_order, shape) and nothing more. */
#define _GNU_SOURCE
#include "mms_npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *k_descr[MMS_DT_COUNT] = {"<f4", "<f8", "<i4", "<i8", "|u1"};
static const size_t k_size[MMS_DT_COUNT] = {4, 8, 4, 8, 1};

const char *mms_dtype_descr(mms_dtype t) { return (unsigned)t < MMS_DT_COUNT ? k_descr[t] : "?"; }
const char *mms_dtype_name(mms_dtype t) {
    static const char *const names[MMS_DT_COUNT] = {"float32", "float64", "int32", "int64", "uint8"};
    return (unsigned)t < MMS_DT_COUNT ? names[t] : "?";
}

size_t mms_dtype_size(mms_dtype t) { return (unsigned)t < MMS_DT_COUNT ? k_size[t] : 0; }

/* Find the value that follows 'key': in the dict text. Returns pointer after the colon. */
static const char *find_key(const char *h, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 <= n; i++) {
        if ((h[i] == '\'' || h[i] == '"') && !memcmp(h + i + 1, key, kl) && h[i + 1 + kl] == h[i]) {
            size_t j = i + kl + 2;
            while (j < n && isspace((unsigned char)h[j])) j++;
            if (j < n && h[j] == ':') return h + j + 1;
        }
    }
    return NULL;
}

mms_status mms_npy_parse_header(const void *buf, size_t len, const char *name,
                                mms_npy_header_t *out) {
    const unsigned char *b = buf;
    memset(out, 0, sizeof *out);
    MMS_CHECK(len >= 10 && !memcmp(b, "\x93NUMPY", 6), MMS_ERR_FORMAT,
              "%s: not a .npy file (bad magic)", name);
    unsigned major = b[6];
    size_t hlen, pre;
    if (major == 1) {
        hlen = (size_t)b[8] | ((size_t)b[9] << 8);
        pre = 10;
    } else if (major == 2 || major == 3) {
        MMS_CHECK(len >= 12, MMS_ERR_FORMAT, "%s: truncated .npy header", name);
        hlen = (size_t)b[8] | ((size_t)b[9] << 8) | ((size_t)b[10] << 16) | ((size_t)b[11] << 24);
        pre = 12;
    } else {
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s: unsupported .npy format version %u", name, major);
    }
    MMS_CHECK(hlen <= 1 << 20 && pre + hlen <= len, MMS_ERR_FORMAT,
              "%s: truncated .npy header (header length %zu, file %zu bytes)", name, hlen, len);
    const char *h = (const char *)b + pre;
    /* descr */
    const char *v = find_key(h, hlen, "descr");
    MMS_CHECK(v, MMS_ERR_FORMAT, "%s: .npy header has no 'descr' field", name);
    const char *end = h + hlen;
    while (v < end && isspace((unsigned char)*v)) v++;
    MMS_CHECK(v < end && (*v == '\'' || *v == '"'), MMS_ERR_FORMAT,
              "%s: .npy field 'descr' is not a string", name);
    char q = *v++;
    const char *ve = memchr(v, q, (size_t)(end - v));
    MMS_CHECK(ve, MMS_ERR_FORMAT, "%s: .npy field 'descr' is unterminated", name);
    char descr[16] = {0};
    size_t dl = (size_t)(ve - v);
    MMS_CHECK(dl > 0 && dl < sizeof descr, MMS_ERR_FORMAT,
              "%s: .npy field 'descr' has an unsupported dtype", name);
    memcpy(descr, v, dl);
    /* '=' and '<' are the same on little-endian hosts; '|u1' may be written 'u1'. */
    if (descr[0] == '=') descr[0] = '<';
    int dt = -1;
    for (int t = 0; t < MMS_DT_COUNT; t++)
        if (!strcmp(descr, k_descr[t]) || (t == MMS_DT_U8 && !strcmp(descr, "<u1"))) dt = t;
    MMS_CHECK(dt >= 0, MMS_ERR_FORMAT,
              "%s: .npy dtype '%s' is not supported (want float32 '<f4', or <f8/<i4/<i8/|u1)",
              name, descr);
    out->dtype = (mms_dtype)dt;
    /* fortran_order */
    v = find_key(h, hlen, "fortran_order");
    MMS_CHECK(v, MMS_ERR_FORMAT, "%s: .npy header has no 'fortran_order' field", name);
    while (v < end && isspace((unsigned char)*v)) v++;
    if ((size_t)(end - v) >= 4 && !memcmp(v, "True", 4))
        MMS_CHECK(0, MMS_ERR_FORMAT,
                  "%s: .npy array is in Fortran order; save it in C order "
                  "(numpy.ascontiguousarray) first",
                  name);
    MMS_CHECK((size_t)(end - v) >= 5 && !memcmp(v, "False", 5), MMS_ERR_FORMAT,
              "%s: .npy field 'fortran_order' is not True/False", name);
    /* shape */
    v = find_key(h, hlen, "shape");
    MMS_CHECK(v, MMS_ERR_FORMAT, "%s: .npy header has no 'shape' field", name);
    while (v < end && isspace((unsigned char)*v)) v++;
    MMS_CHECK(v < end && *v == '(', MMS_ERR_FORMAT, "%s: .npy field 'shape' is not a tuple", name);
    v++;
    size_t dims[3];
    int nd = 0;
    for (;;) {
        while (v < end && isspace((unsigned char)*v)) v++;
        MMS_CHECK(v < end, MMS_ERR_FORMAT, "%s: .npy field 'shape' is unterminated", name);
        if (*v == ')') break;
        MMS_CHECK(isdigit((unsigned char)*v), MMS_ERR_FORMAT,
                  "%s: .npy field 'shape' has a non-integer entry", name);
        size_t x = 0;
        while (v < end && isdigit((unsigned char)*v)) {
            MMS_CHECK(x < ((size_t)1 << 50), MMS_ERR_FORMAT, "%s: .npy shape entry too large", name);
            x = x * 10 + (size_t)(*v - '0');
            v++;
        }
        MMS_CHECK(nd < 3, MMS_ERR_FORMAT, "%s: .npy array has more than 2 dimensions", name);
        dims[nd++] = x;
        while (v < end && isspace((unsigned char)*v)) v++;
        if (v < end && *v == ',') v++;
    }
    MMS_CHECK(nd == 1 || nd == 2, MMS_ERR_FORMAT,
              "%s: .npy array has %d dimensions (want a 1-D or 2-D array)", name, nd);
    out->ndim = nd;
    out->shape[0] = dims[0];
    out->shape[1] = nd == 2 ? dims[1] : 1;
    out->data_offset = pre + hlen;
    return MMS_OK;
}

mms_status mms_npy_open(const char *path, int want, mms_npy_t *out) {
    memset(out, 0, sizeof *out);
    MMS_CALL(mms_map_file(path, &out->map));
    mms_status s = mms_npy_parse_header(out->map.data, out->map.len, path, &out->hdr);
    if (s != MMS_OK) {
        mms_unmap(&out->map);
        return s;
    }
    if (want >= 0 && out->hdr.dtype != (mms_dtype)want) {
        mms_unmap(&out->map);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s: .npy dtype is '%s', expected '%s'", path,
                  mms_dtype_descr(out->hdr.dtype), mms_dtype_descr((mms_dtype)want));
    }
    out->rows = out->hdr.shape[0];
    out->cols = out->hdr.shape[1];
    size_t es = mms_dtype_size(out->hdr.dtype);
    size_t need = out->rows * out->cols * es;
    if (out->cols && need / out->cols / es != out->rows) need = (size_t)-1;
    if (out->map.len < out->hdr.data_offset || out->map.len - out->hdr.data_offset < need) {
        size_t have = out->map.len > out->hdr.data_offset ? out->map.len - out->hdr.data_offset : 0;
        mms_unmap(&out->map);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s: truncated .npy data (%zu x %zu needs %zu bytes, has %zu)",
                  path, out->rows, out->cols, need, have);
    }
    if (out->map.len - out->hdr.data_offset != need) {
        /* a header that under-declares its data (rows x 63 over rows x 64) would
         * be read with every row shifted: refuse it rather than guess */
        size_t have = out->map.len - out->hdr.data_offset;
        char shape[64];
        if (out->hdr.ndim == 2)
            snprintf(shape, sizeof shape, "(%zu, %zu)", out->rows, out->cols);
        else
            snprintf(shape, sizeof shape, "(%zu,)", out->rows);
        mms_unmap(&out->map);
        MMS_CHECK(0, MMS_ERR_FORMAT,
                  "%s: the data holds %zu bytes but shape %s %s needs %zu: the header's row count "
                  "or width does not match the data",
                  path, have, shape, mms_dtype_name(out->hdr.dtype), need);
    }
    out->data = (const char *)out->map.data + out->hdr.data_offset;
    return MMS_OK;
}

void mms_npy_close(mms_npy_t *a) {
    if (!a) return;
    mms_unmap(&a->map);
    a->data = NULL;
}

void mms_npy_release(const mms_npy_t *a) {
    if (a && a->map.data && a->map.len) (void)madvise(a->map.data, a->map.len, MADV_DONTNEED);
}

/* A v1 header padded to 128 bytes total: room for any 2-D shape we write. */
#define NPY_HDR_TOTAL 128

static mms_status write_header(FILE *f, const char *path, mms_dtype t, size_t rows, size_t cols) {
    char dict[NPY_HDR_TOTAL];
    int n;
    if (cols)
        n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }",
                     mms_dtype_descr(t), rows, cols);
    else
        n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu,), }",
                     mms_dtype_descr(t), rows);
    MMS_CHECK(n > 0 && n < NPY_HDR_TOTAL - 11, MMS_ERR_INTERNAL, "npy header overflow");
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = NPY_HDR_TOTAL - 10;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    char hdr[NPY_HDR_TOTAL];
    memset(hdr, ' ', sizeof hdr);
    memcpy(hdr, dict, (size_t)n);
    hdr[hlen - 1] = '\n';
    MMS_CHECK(fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, hlen, f) == hlen, MMS_ERR_IO,
              "error writing '%s': %s", path, strerror(errno));
    return MMS_OK;
}

mms_status mms_npy_writer_open(mms_npy_writer_t *w, const char *path, mms_dtype t, size_t cols) {
    memset(w, 0, sizeof *w);
    MMS_CHECK(strlen(path) < sizeof w->path, MMS_ERR_ARG, "path too long: %s", path);
    strcpy(w->path, path);
    MMS_CALL(mms_file_tmpname(path, w->tmp, sizeof w->tmp));
    MMS_CALL(mms_fopen(w->tmp, "wb", &w->f));
    w->dtype = t;
    w->cols = cols;
    mms_status s = write_header(w->f, w->tmp, t, 0, cols);
    if (s != MMS_OK) mms_npy_writer_abort(w);
    return s;
}

mms_status mms_npy_writer_append(mms_npy_writer_t *w, const void *rows_data, size_t nrows) {
    size_t per = (w->cols ? w->cols : 1) * mms_dtype_size(w->dtype);
    size_t wrote = fwrite(rows_data, per, nrows, w->f);
    MMS_CHECK(wrote == nrows, MMS_ERR_IO, "error writing '%s': %s", w->tmp, strerror(errno));
    w->rows += nrows;
    return MMS_OK;
}

mms_status mms_npy_writer_close(mms_npy_writer_t *w) {
    MMS_CHECK(w->f, MMS_ERR_INTERNAL, "npy writer not open");
    MMS_CHECK(fseek(w->f, 0, SEEK_SET) == 0, MMS_ERR_IO, "cannot seek in '%s'", w->tmp);
    mms_status s = write_header(w->f, w->tmp, w->dtype, w->rows, w->cols);
    if (s == MMS_OK) s = mms_fclose(&w->f, w->tmp);
    if (s != MMS_OK) {
        mms_npy_writer_abort(w);
        return s;
    }
    return mms_file_commit(w->tmp, w->path);
}

void mms_npy_writer_abort(mms_npy_writer_t *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
    if (w->tmp[0]) unlink(w->tmp);
}

mms_status mms_npy_write(const char *path, mms_dtype t, const void *data, size_t rows, size_t cols) {
    mms_npy_writer_t w;
    MMS_CALL(mms_npy_writer_open(&w, path, t, cols));
    mms_status s = mms_npy_writer_append(&w, data, rows);
    if (s != MMS_OK) {
        mms_npy_writer_abort(&w);
        return s;
    }
    return mms_npy_writer_close(&w);
}

mms_status mms_npy_create_sized(const char *path, mms_dtype t, size_t rows, size_t cols,
                                size_t *data_offset) {
    FILE *f;
    MMS_CALL(mms_fopen(path, "wb", &f));
    mms_status s = write_header(f, path, t, rows, cols);
    if (s == MMS_OK) {
        size_t total = NPY_HDR_TOTAL + rows * (cols ? cols : 1) * mms_dtype_size(t);
        if (ftruncate(fileno(f), (off_t)total) != 0) {
            mms_error_set(MMS_ERR_IO, __FILE__, __LINE__, __func__, "cannot size '%s': %s", path,
                          strerror(errno));
            s = MMS_ERR_IO;
        }
    }
    mms_status s2 = mms_fclose(&f, path);
    if (s == MMS_OK) s = s2;
    *data_offset = NPY_HDR_TOTAL;
    return s;
}

mms_status mms_npy_pwrite_rows(const char *path, size_t data_offset, mms_dtype t, size_t cols,
                               size_t row0, const void *data, size_t nrows) {
    int fd = open(path, O_WRONLY);
    MMS_CHECK(fd >= 0, MMS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t per = (cols ? cols : 1) * mms_dtype_size(t);
    const char *p = data;
    size_t left = nrows * per;
    off_t off = (off_t)(data_offset + row0 * per);
    while (left > 0) {
        ssize_t w = pwrite(fd, p, left, off);
        if (w <= 0) {
            close(fd);
            MMS_CHECK(0, MMS_ERR_IO, "error writing '%s': %s", path, strerror(errno));
        }
        p += w;
        left -= (size_t)w;
        off += w;
    }
    MMS_CHECK(close(fd) == 0, MMS_ERR_IO, "error closing '%s': %s", path, strerror(errno));
    return MMS_OK;
}
