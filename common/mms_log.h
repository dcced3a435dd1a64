/* mms_log.h: rank-aware logging, progress lines and timers.
 *
 * All log output goes to stderr with a "[rank/nranks elapsed]" prefix. Info and
 * progress are printed by rank 0 only; per-rank facts use mms_log_rank(), and
 * errors are printed by whichever rank meets them. Results never go through
 * here: they go to stdout or files. The process-wide settings (rank, level,
 * start time) are set once in main() by mms_log_init() before any thread starts.
 */
#ifndef MMS_LOG_H
#define MMS_LOG_H

#include <stdint.h>

#include "mms_status.h"

typedef enum {
    MMS_LOG_QUIET = 0, /* nothing, not even errors (fuzzers) */
    MMS_LOG_ERROR = 1,
    MMS_LOG_WARN = 2,
    MMS_LOG_INFO = 3,
    MMS_LOG_DEBUG = 4
} mms_log_level;

void mms_log_init(int rank, int nranks, mms_log_level level);
void mms_log_set_level(mms_log_level level);
mms_log_level mms_log_get_level(void);
int mms_log_rank(void);
int mms_log_nranks(void);

/* Seconds since mms_log_init (monotonic). */
double mms_log_elapsed(void);
/* Monotonic wall clock in seconds. */
double mms_now(void);

void mms_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mms_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mms_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed by every rank that calls it (a per-rank fact). */
void mms_log_rankinfo(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mms_log_error_at(const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void mms_log_trace_at(const char *file, int line, const char *func, mms_status code);

/* Progress of a long step: done/total, rate, ETA; rank 0 only, at most one line
 * per interval (a rewriting line on a terminal, plain lines otherwise). */
typedef struct {
    const char *label; /* borrowed */
    const char *unit;  /* borrowed, e.g. "rows" */
    int64_t total;
    int64_t done;
    double t_start;
    double t_last;
    double interval;
    int printed;
} mms_progress_t;

void mms_progress_begin(mms_progress_t *p, const char *label, int64_t total, const char *unit);
void mms_progress_update(mms_progress_t *p, int64_t done);
/* Prints the final line (total, elapsed, mean rate). */
void mms_progress_end(mms_progress_t *p);

/* Human-readable byte count into buf ("1.5 GiB"). Returns buf. */
const char *mms_fmt_bytes(double bytes, char *buf, int len);

#endif
