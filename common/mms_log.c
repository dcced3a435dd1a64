/* mms_log.c: see mms_log.h. */
#define _POSIX_C_SOURCE 200809L
#include "mms_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set once in main() before threads start; read-only afterwards. */
static int g_rank = 0, g_nranks = 1;
static mms_log_level g_level = MMS_LOG_INFO;
static double g_t0 = -1.0;

double mms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void mms_log_init(int rank, int nranks, mms_log_level level) {
    g_rank = rank;
    g_nranks = nranks;
    g_level = level;
    g_t0 = mms_now();
}

void mms_log_set_level(mms_log_level level) { g_level = level; }
mms_log_level mms_log_get_level(void) { return g_level; }
int mms_log_rank(void) { return g_rank; }
int mms_log_nranks(void) { return g_nranks; }

double mms_log_elapsed(void) {
    if (g_t0 < 0) g_t0 = mms_now();
    return mms_now() - g_t0;
}

static void vlog(const char *tag, const char *fmt, va_list ap) {
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "[%d/%d %7.2fs] %s%s\n", g_rank, g_nranks, mms_log_elapsed(), tag, msg);
}

void mms_log_info(const char *fmt, ...) {
    if (g_rank != 0 || g_level < MMS_LOG_INFO) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void mms_log_warn(const char *fmt, ...) {
    if (g_rank != 0 || g_level < MMS_LOG_WARN) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}

void mms_log_debug(const char *fmt, ...) {
    if (g_level < MMS_LOG_DEBUG) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("debug: ", fmt, ap);
    va_end(ap);
}

void mms_log_rankinfo(const char *fmt, ...) {
    if (g_level < MMS_LOG_INFO) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void mms_log_error_at(const char *file, int line, const char *func, const char *fmt, ...) {
    if (g_level < MMS_LOG_ERROR) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_level >= MMS_LOG_DEBUG)
        fprintf(stderr, "[%d/%d %7.2fs] %s\n    at %s:%d %s\n", g_rank, g_nranks,
                mms_log_elapsed(), msg, file, line, func);
    else
        fprintf(stderr, "[%d/%d %7.2fs] %s\n", g_rank, g_nranks, mms_log_elapsed(), msg);
}

void mms_log_trace_at(const char *file, int line, const char *func, mms_status code) {
    /* Tracebacks are for developers: shown at debug level so users see one clear line. */
    if (g_level < MMS_LOG_DEBUG) return;
    fprintf(stderr, "[%d/%d %7.2fs]     at %s:%d %s (%s)\n", g_rank, g_nranks,
            mms_log_elapsed(), file, line, func, mms_status_name(code));
}

const char *mms_fmt_bytes(double bytes, char *buf, int len) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(buf, (size_t)len, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return buf;
}

static void fmt_duration(double s, char *buf, size_t len) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, len, "--");
    } else if (s < 60) {
        snprintf(buf, len, "%.0fs", s);
    } else if (s < 3600) {
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
    } else {
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
    }
}

void mms_progress_begin(mms_progress_t *p, const char *label, int64_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->unit = unit ? unit : "items";
    p->total = total;
    p->t_start = mms_now();
    p->t_last = p->t_start;
    p->interval = isatty(2) ? 0.25 : 5.0;
}

static void progress_print(mms_progress_t *p, int final) {
    double now = mms_now(), el = now - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0.0;
    char eta[32], elb[32];
    fmt_duration(rate > 0 && p->total > 0 ? (double)(p->total - p->done) / rate : -1, eta, sizeof eta);
    fmt_duration(el, elb, sizeof elb);
    int tty = isatty(2);
    if (p->total > 0) {
        double pct = 100.0 * (double)p->done / (double)p->total;
        if (final)
            fprintf(stderr, "%s[%d/%d %7.2fs] %s: %lld/%lld %s done in %s (%.0f %s/s)\n",
                    tty ? "\r\033[K" : "", g_rank, g_nranks, mms_log_elapsed(), p->label,
                    (long long)p->done, (long long)p->total, p->unit, elb, rate, p->unit);
        else
            fprintf(stderr, "%s[%d/%d %7.2fs] %s: %lld/%lld %s (%.1f%%), %.0f %s/s, ETA %s%s",
                    tty ? "\r\033[K" : "", g_rank, g_nranks, mms_log_elapsed(), p->label,
                    (long long)p->done, (long long)p->total, p->unit, pct, rate, p->unit, eta,
                    tty ? "" : "\n");
    } else {
        fprintf(stderr, "%s[%d/%d %7.2fs] %s: %lld %s, %.0f %s/s%s", tty ? "\r\033[K" : "",
                g_rank, g_nranks, mms_log_elapsed(), p->label, (long long)p->done, p->unit, rate,
                p->unit, final || !tty ? "\n" : "");
    }
    fflush(stderr);
    p->printed = 1;
}

void mms_progress_update(mms_progress_t *p, int64_t done) {
    p->done = done;
    if (g_rank != 0 || g_level < MMS_LOG_INFO) return;
    double now = mms_now();
    if (now - p->t_last < p->interval) return;
    p->t_last = now;
    progress_print(p, 0);
}

void mms_progress_end(mms_progress_t *p) {
    if (g_rank != 0 || g_level < MMS_LOG_INFO) return;
    progress_print(p, 1);
}
