/* mms_status.h: status codes and the error path shared by every module.
 *
 * Every library function returns mms_status (0 = ok). Two macros carry errors
 * upward in the PETSc manner:
 *   MMS_CHECK(cond, code, fmt, ...)  validates input; on failure records and logs
 *                                    a message a user can act on and returns code.
 *   MMS_CALL(expr)                   calls a function returning mms_status; on
 *                                    failure logs "  at file:line func" and returns
 *                                    the same code, so a deep failure prints a
 *                                    traceback instead of a segfault.
 * The most recent message is kept per thread (mms_error_message) so a server can
 * copy it into an error response. Nothing here calls exit() or abort().
 */
#ifndef MMS_STATUS_H
#define MMS_STATUS_H

#include <stddef.h>

typedef int mms_status;

enum {
    MMS_OK = 0,
    MMS_ERR_ARG = 1,      /* bad option or argument value */
    MMS_ERR_IO = 2,       /* open/read/write/rename failed */
    MMS_ERR_FORMAT = 3,   /* malformed input file or message */
    MMS_ERR_NOMEM = 4,    /* allocation failed */
    MMS_ERR_NUMERIC = 5,  /* NaN/Inf or a numerical failure */
    MMS_ERR_EXISTS = 6,   /* output exists and --force was not given */
    MMS_ERR_MISMATCH = 7, /* inputs made from different sources or versions */
    MMS_ERR_MPI = 8,      /* an MPI call failed, or another rank failed */
    MMS_ERR_LIB = 9,      /* a foreign library (METIS, LAPACK, msgpack, ...) failed */
    MMS_ERR_INTERNAL = 10 /* a broken invariant: a bug in mmsage */
};

/* Short stable name of a code ("format", "io", ...). Never NULL. */
const char *mms_status_name(mms_status s);

/* Record (and log at error level) a formatted message for the current thread. */
void mms_error_set(mms_status code, const char *file, int line, const char *func,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same for an error every rank meets the same way (a bad argument, an
 * input that does not fit the rank count): recorded on every rank, logged by
 * rank 0 only, so the user reads it once. */
void mms_error_set_all(mms_status code, const char *file, int line, const char *func,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Log one traceback line for a failure passing through file:line func. */
void mms_error_trace(mms_status code, const char *file, int line, const char *func);
/* The most recent message set on this thread ("" if none). Borrowed. */
const char *mms_error_message(void);
void mms_error_clear(void);

#define MMS_CHECK(cond, code, ...)                                              \
    do {                                                                        \
        if (!(cond)) {                                                          \
            mms_error_set((code), __FILE__, __LINE__, __func__, __VA_ARGS__);   \
            return (code);                                                      \
        }                                                                       \
    } while (0)

/* MMS_CHECK for a condition every rank evaluates alike: logged once (rank 0). */
#define MMS_CHECK_ALL(cond, code, ...)                                          \
    do {                                                                        \
        if (!(cond)) {                                                          \
            mms_error_set_all((code), __FILE__, __LINE__, __func__, __VA_ARGS__); \
            return (code);                                                      \
        }                                                                       \
    } while (0)

#define MMS_CALL(expr)                                                          \
    do {                                                                        \
        mms_status mms_call_s_ = (expr);                                        \
        if (mms_call_s_ != MMS_OK) {                                            \
            mms_error_trace(mms_call_s_, __FILE__, __LINE__, __func__);         \
            return mms_call_s_;                                                 \
        }                                                                       \
    } while (0)

/* Like MMS_CALL but jumps to a cleanup label with the status stored in var. */
#define MMS_CALL_GOTO(var, label, expr)                                         \
    do {                                                                        \
        (var) = (expr);                                                         \
        if ((var) != MMS_OK) {                                                  \
            mms_error_trace((var), __FILE__, __LINE__, __func__);               \
            goto label;                                                         \
        }                                                                       \
    } while (0)

#define MMS_CHECK_GOTO(var, label, cond, code, ...)                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            (var) = (code);                                                     \
            mms_error_set((code), __FILE__, __LINE__, __func__, __VA_ARGS__);   \
            goto label;                                                         \
        }                                                                       \
    } while (0)

/* Allocation helpers: on failure they set an MMS_ERR_NOMEM message naming size. */
mms_status mms_malloc(size_t bytes, void *out_ptr);
mms_status mms_calloc(size_t n, size_t size, void *out_ptr);
mms_status mms_realloc(size_t bytes, void *inout_ptr);
/* Frees *ptr and sets it to NULL. */
void mms_free(void *ptr_to_ptr);

#endif
