/* mms_status.c: error recording and tracebacks (see mms_status.h). */
#include "mms_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_log.h"

static _Thread_local char tl_message[1024];

const char *mms_status_name(mms_status s) {
    switch (s) {
    case MMS_OK: return "ok";
    case MMS_ERR_ARG: return "argument";
    case MMS_ERR_IO: return "io";
    case MMS_ERR_FORMAT: return "format";
    case MMS_ERR_NOMEM: return "memory";
    case MMS_ERR_NUMERIC: return "numeric";
    case MMS_ERR_EXISTS: return "exists";
    case MMS_ERR_MISMATCH: return "mismatch";
    case MMS_ERR_MPI: return "mpi";
    case MMS_ERR_LIB: return "library";
    case MMS_ERR_INTERNAL: return "internal";
    default: return "unknown";
    }
}

/* Record the message; log it unless quiet. */
static void record(int log, mms_status code, const char *file, int line, const char *func,
                   const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
static void record(int log, mms_status code, const char *file, int line, const char *func,
                   const char *fmt, va_list ap) {
    vsnprintf(tl_message, sizeof tl_message, fmt, ap);
    if (log) mms_log_error_at(file, line, func, "%s error: %s", mms_status_name(code), tl_message);
}

void mms_error_set(mms_status code, const char *file, int line, const char *func,
                   const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record(1, code, file, line, func, fmt, ap);
    va_end(ap);
}

void mms_error_set_all(mms_status code, const char *file, int line, const char *func,
                       const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record(mms_log_rank() == 0, code, file, line, func, fmt, ap);
    va_end(ap);
}

void mms_error_trace(mms_status code, const char *file, int line, const char *func) {
    mms_log_trace_at(file, line, func, code);
}

const char *mms_error_message(void) { return tl_message; }

void mms_error_clear(void) { tl_message[0] = '\0'; }

mms_status mms_malloc(size_t bytes, void *out_ptr) {
    void **out = (void **)out_ptr;
    *out = malloc(bytes ? bytes : 1);
    MMS_CHECK(*out != NULL, MMS_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return MMS_OK;
}

mms_status mms_calloc(size_t n, size_t size, void *out_ptr) {
    void **out = (void **)out_ptr;
    MMS_CHECK(size == 0 || n <= (size_t)-1 / size, MMS_ERR_NOMEM,
              "allocation of %zu x %zu bytes overflows", n, size);
    *out = calloc(n ? n : 1, size ? size : 1);
    MMS_CHECK(*out != NULL, MMS_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", n, size);
    return MMS_OK;
}

mms_status mms_realloc(size_t bytes, void *inout_ptr) {
    void **p = (void **)inout_ptr;
    void *q = realloc(*p, bytes ? bytes : 1);
    MMS_CHECK(q != NULL, MMS_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", bytes);
    *p = q;
    return MMS_OK;
}

void mms_free(void *ptr_to_ptr) {
    void **p = (void **)ptr_to_ptr;
    if (p && *p) {
        free(*p);
        *p = NULL;
    }
}
