/* import_mulan.c: Mulan ARFF + label XML into a catalog (see import_mulan.h).
 *
 * The ARFF reader works on lines from a FILE (a real file, or fmemopen over
 * bytes for tests and fuzzing), so the same code runs in both cases and only
 * one line is held at a time. Tokens are unquoted in place inside the line
 * buffer (unescaped text is never longer than its escaped form). It does not
 * build Weka's full data model: every value becomes a double.
 */
#define _GNU_SOURCE
#include "import_mulan.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_strmap.h"

/* Upper bound on attributes: far above any Mulan data set, keeps a hostile
 * header from asking for a giant row buffer. */
#define ARFF_MAX_ATTR (1 << 24)
/* Longest value text shown in an error message. */
#define SHOW 40

struct mms_arff {
    FILE *f;
    int own_f;
    char *name;
    char *relation;
    mms_arff_attr_t *attr;
    int32_t nattr, cap;
    mms_strmap_t *byname; /* attribute name -> index */
    char *buf;            /* current line, NUL-terminated */
    size_t bufcap;
    int64_t line;
    int64_t rows;
};

/* ------------------------------------------------------------ utilities */

static char *skip_ws(char *p) {
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

static int show_len(size_t len) { return (int)(len < SHOW ? len : SHOW); }

/* Read the next line into a->buf. *got = 0 at end of file. */
static mms_status read_line(mms_arff_t *a, int *got) {
    errno = 0;
    ssize_t n = getline(&a->buf, &a->bufcap, a->f);
    if (n < 0) {
        MMS_CHECK(!ferror(a->f), MMS_ERR_IO, "%s:%lld: read error: %s", a->name,
                  (long long)a->line + 1, strerror(errno));
        *got = 0;
        return MMS_OK;
    }
    a->line++;
    MMS_CHECK(memchr(a->buf, '\0', (size_t)n) == NULL, MMS_ERR_FORMAT,
              "%s:%lld: line contains a NUL byte (not a text ARFF file?)", a->name,
              (long long)a->line);
    while (n > 0 && (a->buf[n - 1] == '\n' || a->buf[n - 1] == '\r')) a->buf[--n] = '\0';
    if (a->line == 1 && n >= 3 && !memcmp(a->buf, "\xEF\xBB\xBF", 3)) /* UTF-8 BOM */
        memmove(a->buf, a->buf + 3, (size_t)n - 2);
    *got = 1;
    return MMS_OK;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Value of 4 hex digits at s, or -1 (stops at a NUL, never reads past it). */
static long hex4(const char *s) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* UTF-8 encoding of cp (< 0x110000) into w; returns bytes written. */
static int put_utf8(char *w, unsigned cp) {
    if (cp < 0x80) {
        w[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        w[0] = (char)(0xC0 | (cp >> 6));
        w[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        w[0] = (char)(0xE0 | (cp >> 12));
        w[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        w[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    w[0] = (char)(0xF0 | (cp >> 18));
    w[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    w[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    w[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Read one token at *pp. Quoted ('...' or "..."): unescaped in place, *quoted = 1.
 * Bare: runs up to a character of stops (or the end), trailing blanks trimmed.
 * The token is (*tok, *len), not NUL-terminated; *pp moves past it. */
static mms_status read_token(const mms_arff_t *a, char **pp, const char *stops, const char *what,
                             char **tok, size_t *len, int *quoted) {
    char *p = *pp;
    if (*p == '\'' || *p == '"') {
        char q = *p, *w = p, *r = p + 1;
        for (;;) {
            MMS_CHECK(*r, MMS_ERR_FORMAT, "%s:%lld: unterminated quoted %s (missing closing %c)",
                      a->name, (long long)a->line, what, q);
            if (*r == q) {
                r++;
                break;
            }
            if (*r == '\\' && r[1]) {
                r++;
                char c = *r++;
                if (c == 'n')
                    *w++ = '\n';
                else if (c == 't')
                    *w++ = '\t';
                else if (c == 'r')
                    *w++ = '\r';
                else if (c == 'u' && hex4(r) >= 0) {
                    long cp = hex4(r);
                    r += 4;
                    if (cp >= 0xD800 && cp <= 0xDBFF && r[0] == '\\' && r[1] == 'u' &&
                        hex4(r + 2) >= 0xDC00 && hex4(r + 2) <= 0xDFFF) { /* UTF-16 pair */
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(r + 2) - 0xDC00);
                        r += 6;
                    }
                    MMS_CHECK(cp != 0 && (cp < 0xD800 || cp > 0xDFFF), MMS_ERR_FORMAT,
                              "%s:%lld: quoted %s contains \\u%04lx (NUL or an unpaired "
                              "surrogate)",
                              a->name, (long long)a->line, what, cp);
                    w += put_utf8(w, (unsigned)cp);
                } else {
                    *w++ = c; /* \\ \' \" \% and any other escaped character */
                }
                continue;
            }
            *w++ = *r++;
        }
        *tok = p;
        *len = (size_t)(w - p);
        *quoted = 1;
        *pp = r;
        return MMS_OK;
    }
    char *s = p;
    while (*p && !strchr(stops, *p)) p++;
    char *e = p;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    *tok = s;
    *len = (size_t)(e - s);
    *quoted = 0;
    *pp = p;
    return MMS_OK;
}

/* Strict decimal number in s[0..len): 1 = ok, 0 = not a number, -1 = out of range. */
static int parse_num(const char *s, size_t len, double *out) {
    char tmp[72];
    if (len == 0 || len >= sizeof tmp) return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    const char *p = tmp;
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (isdigit((unsigned char)*p)) p++, digits++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) p++, digits++;
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p) return 0;
    double v = strtod(tmp, NULL);
    if (!isfinite(v)) return -1;
    *out = v;
    return 1;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Match "@keyword" at p (case-insensitive, then a blank or the end). */
static int is_keyword(const char *p, const char *kw) {
    size_t n = strlen(kw);
    return p[0] == '@' && !strncasecmp(p + 1, kw, n) &&
           (p[1 + n] == '\0' || p[1 + n] == ' ' || p[1 + n] == '\t' || p[1 + n] == '%');
}

static int at_line_end(const char *p) { return *p == '\0' || *p == '%'; }

/* ---------------------------------------------------------------- header */

static mms_status add_attribute(mms_arff_t *a, char *p) {
    p = skip_ws(p);
    MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT, "%s:%lld: @attribute without a name", a->name,
              (long long)a->line);
    char *tok;
    size_t len;
    int quoted;
    MMS_CALL(read_token(a, &p, " \t{%", "attribute name", &tok, &len, &quoted));
    MMS_CHECK(len > 0, MMS_ERR_FORMAT, "%s:%lld: empty attribute name", a->name,
              (long long)a->line);
    MMS_CHECK(a->nattr < ARFF_MAX_ATTR, MMS_ERR_FORMAT, "%s:%lld: more than %d attributes", a->name,
              (long long)a->line, ARFF_MAX_ATTR);
    if (a->nattr == a->cap) {
        int32_t c = a->cap ? 2 * a->cap : 64;
        MMS_CALL(mms_realloc((size_t)c * sizeof *a->attr, &a->attr));
        a->cap = c;
    }
    int inserted;
    int64_t first;
    MMS_CALL(mms_strmap_put(a->byname, tok, len, a->nattr, &inserted, &first));
    MMS_CHECK(inserted, MMS_ERR_FORMAT,
              "%s:%lld: duplicate attribute name '%.*s' (first declared on line %lld)", a->name,
              (long long)a->line, show_len(len), tok, (long long)a->attr[first].line);
    mms_arff_attr_t *at = &a->attr[a->nattr];
    memset(at, 0, sizeof *at);
    at->line = a->line;
    at->name = strndup(tok, len);
    MMS_CHECK(at->name, MMS_ERR_NOMEM, "out of memory");
    a->nattr++; /* counted now so close() frees the name even if the type is bad */
    if (quoted) {
        MMS_CHECK(*p == ' ' || *p == '\t' || *p == '{' || at_line_end(p), MMS_ERR_FORMAT,
                  "%s:%lld: expected a blank after the quoted attribute name", a->name,
                  (long long)a->line);
    }
    p = skip_ws(p);
    MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT, "%s:%lld: attribute '%s' has no type", a->name,
              (long long)a->line, at->name);
    if (*p == '{') {
        at->kind = MMS_ARFF_NOMINAL;
        size_t tt = 0;
        at->type_text[tt++] = '{';
        int32_t cap = 0;
        p++;
        for (;;) {
            p = skip_ws(p);
            MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT,
                      "%s:%lld: nominal values of attribute '%s' are not closed by '}'", a->name,
                      (long long)a->line, at->name);
            MMS_CALL(read_token(a, &p, ",}%", "nominal value", &tok, &len, &quoted));
            MMS_CHECK(len > 0 || quoted, MMS_ERR_FORMAT,
                      "%s:%lld: empty nominal value in the declaration of '%s'", a->name,
                      (long long)a->line, at->name);
            double v;
            int r = parse_num(tok, len, &v);
            MMS_CHECK(r == 1, MMS_ERR_FORMAT,
                      "%s:%lld: attribute '%s': nominal value '%.*s' is %s; mmsage imports only "
                      "numeric attributes and nominal ones with numeric values such as {0,1}",
                      a->name, (long long)a->line, at->name, show_len(len), tok,
                      r == 0 ? "not a number" : "out of range");
            if (at->nvalues == cap) {
                cap = cap ? 2 * cap : 4;
                MMS_CALL(mms_realloc((size_t)cap * sizeof *at->values, &at->values));
            }
            if (at->nvalues == 0) at->sparse_zero = v; /* Weka: index 0 = first declared value */
            at->values[at->nvalues++] = v;
            /* short type text for messages */
            for (size_t k = 0; k < len && tt < sizeof at->type_text - 5; k++)
                at->type_text[tt++] = tok[k];
            p = skip_ws(p);
            if (*p == ',') {
                if (tt < sizeof at->type_text - 5) at->type_text[tt++] = ',';
                p++;
                continue;
            }
            MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT,
                      "%s:%lld: nominal values of attribute '%s' are not closed by '}'", a->name,
                      (long long)a->line, at->name);
            MMS_CHECK(*p == '}', MMS_ERR_FORMAT,
                      "%s:%lld: expected ',' or '}' in the nominal values of '%s', found '%.20s'",
                      a->name, (long long)a->line, at->name, p);
            p++;
            break;
        }
        if (tt >= sizeof at->type_text - 5) memcpy(at->type_text + tt, "...", 3), tt += 3;
        at->type_text[tt++] = '}';
        at->type_text[tt] = '\0';
        qsort(at->values, (size_t)at->nvalues, sizeof *at->values, cmp_double);
    } else {
        char *w = p;
        while (isalpha((unsigned char)*p)) p++;
        size_t wl = (size_t)(p - w);
        if ((wl == 7 && !strncasecmp(w, "numeric", 7)) || (wl == 4 && !strncasecmp(w, "real", 4)) ||
            (wl == 7 && !strncasecmp(w, "integer", 7))) {
            at->kind = MMS_ARFF_NUMERIC;
            at->sparse_zero = 0.0;
            snprintf(at->type_text, sizeof at->type_text, "numeric");
        } else if ((wl == 6 && !strncasecmp(w, "string", 6)) ||
                   (wl == 4 && !strncasecmp(w, "date", 4)) ||
                   (wl == 10 && !strncasecmp(w, "relational", 10))) {
            MMS_CHECK(0, MMS_ERR_FORMAT,
                      "%s:%lld: attribute '%s' has type %.*s; mmsage imports only numeric "
                      "attributes and nominal ones with numeric values such as {0,1}",
                      a->name, (long long)a->line, at->name, (int)wl, w);
        } else {
            MMS_CHECK(0, MMS_ERR_FORMAT,
                      "%s:%lld: attribute '%s' has unknown type '%.20s' (want numeric, real, "
                      "integer or {v1,v2,...})",
                      a->name, (long long)a->line, at->name, w);
        }
    }
    p = skip_ws(p);
    MMS_CHECK(at_line_end(p), MMS_ERR_FORMAT,
              "%s:%lld: unexpected text '%.20s' after the type of attribute '%s'", a->name,
              (long long)a->line, p, at->name);
    return MMS_OK;
}

static mms_status parse_header(mms_arff_t *a) {
    int saw_relation = 0;
    for (;;) {
        int got;
        MMS_CALL(read_line(a, &got));
        MMS_CHECK(got, MMS_ERR_FORMAT,
                  "%s:%lld: end of file before @data (%d attributes declared; the header must end "
                  "with a line '@data' followed by the rows)",
                  a->name, (long long)a->line, a->nattr);
        char *p = skip_ws(a->buf);
        if (at_line_end(p)) continue;
        if (is_keyword(p, "relation")) {
            MMS_CHECK(!saw_relation && a->nattr == 0, MMS_ERR_FORMAT,
                      "%s:%lld: @relation must come once, before the attributes", a->name,
                      (long long)a->line);
            saw_relation = 1;
            p = skip_ws(p + 9);
            char *tok;
            size_t len;
            int quoted;
            MMS_CALL(read_token(a, &p, "%", "relation name", &tok, &len, &quoted));
            a->relation = strndup(tok, len);
            MMS_CHECK(a->relation, MMS_ERR_NOMEM, "out of memory");
        } else if (is_keyword(p, "attribute")) {
            MMS_CALL(add_attribute(a, p + 10));
        } else if (is_keyword(p, "data")) {
            MMS_CHECK(a->nattr > 0, MMS_ERR_FORMAT, "%s:%lld: @data before any @attribute", a->name,
                      (long long)a->line);
            p = skip_ws(p + 5);
            MMS_CHECK(at_line_end(p), MMS_ERR_FORMAT,
                      "%s:%lld: unexpected text after @data (rows start on the next line)", a->name,
                      (long long)a->line);
            return MMS_OK;
        } else {
            MMS_CHECK(0, MMS_ERR_FORMAT,
                      "%s:%lld: expected @relation, @attribute or @data in the ARFF header, found "
                      "'%.30s'",
                      a->name, (long long)a->line, p);
        }
    }
}

mms_status mms_arff_open(FILE *f, const char *name, int own_f, mms_arff_t **out) {
    *out = NULL;
    mms_arff_t *a;
    mms_status s = mms_calloc(1, sizeof *a, &a);
    if (s != MMS_OK) {
        if (own_f) fclose(f);
        return s;
    }
    a->f = f;
    a->own_f = own_f;
    a->name = strdup(name ? name : "(arff)");
    MMS_CHECK_GOTO(s, fail, a->name, MMS_ERR_NOMEM, "out of memory");
    MMS_CALL_GOTO(s, fail, mms_strmap_create(1024, &a->byname));
    MMS_CALL_GOTO(s, fail, parse_header(a));
    *out = a;
    return MMS_OK;
fail:
    mms_arff_close(&a);
    return s;
}

mms_status mms_arff_open_path(const char *path, mms_arff_t **out) {
    *out = NULL;
    FILE *f;
    MMS_CALL(mms_fopen(path, "rb", &f));
    MMS_CALL(mms_arff_open(f, path, 1, out));
    return MMS_OK;
}

mms_status mms_arff_open_mem(const char *name, const void *data, size_t len, mms_arff_t **out) {
    *out = NULL;
    static char empty[1];
    /* "r" never writes to the buffer; fmemopen takes a non-const pointer. */
    FILE *f = fmemopen(len ? (void *)(uintptr_t)data : empty, len, "r");
    MMS_CHECK(f, MMS_ERR_IO, "%s: cannot read from memory: %s", name, strerror(errno));
    MMS_CALL(mms_arff_open(f, name, 1, out));
    return MMS_OK;
}

void mms_arff_close(mms_arff_t **ap) {
    if (!ap || !*ap) return;
    mms_arff_t *a = *ap;
    if (a->own_f && a->f) fclose(a->f);
    for (int32_t i = 0; i < a->nattr; i++) {
        free(a->attr[i].name);
        free(a->attr[i].values);
    }
    free(a->attr);
    mms_strmap_destroy(&a->byname);
    free(a->buf);
    free(a->relation);
    free(a->name);
    free(a);
    *ap = NULL;
}

int32_t mms_arff_nattr(const mms_arff_t *a) { return a->nattr; }
const mms_arff_attr_t *mms_arff_attr(const mms_arff_t *a, int32_t i) {
    return i >= 0 && i < a->nattr ? &a->attr[i] : NULL;
}
const char *mms_arff_name(const mms_arff_t *a) { return a->name; }
const char *mms_arff_relation(const mms_arff_t *a) { return a->relation ? a->relation : ""; }
int64_t mms_arff_line(const mms_arff_t *a) { return a->line; }
int64_t mms_arff_rows(const mms_arff_t *a) { return a->rows; }

int32_t mms_arff_find(const mms_arff_t *a, const char *name) {
    int64_t v;
    return mms_strmap_get(a->byname, name, strlen(name), &v) ? (int32_t)v : -1;
}

/* ------------------------------------------------------------------ rows */

/* Convert the token of attribute i to a number, checking nominal membership. */
static mms_status convert(const mms_arff_t *a, int32_t i, const char *tok, size_t len, int quoted,
                          double *out) {
    const mms_arff_attr_t *at = &a->attr[i];
    MMS_CHECK(quoted || !(len == 1 && tok[0] == '?'), MMS_ERR_FORMAT,
              "%s:%lld: missing value '?' for attribute %d ('%s'); mmsage needs every value "
              "(impute or drop the row first)",
              a->name, (long long)a->line, i, at->name);
    MMS_CHECK(quoted || len > 0, MMS_ERR_FORMAT, "%s:%lld: empty value for attribute %d ('%s')",
              a->name, (long long)a->line, i, at->name);
    double v = 0;
    int r = parse_num(tok, len, &v);
    MMS_CHECK(r == 1, MMS_ERR_FORMAT, "%s:%lld: value '%.*s' of attribute %d ('%s') is %s", a->name,
              (long long)a->line, show_len(len), tok, i, at->name,
              r == 0 ? "not a number" : "out of range");
    if (at->kind == MMS_ARFF_NOMINAL)
        MMS_CHECK(bsearch(&v, at->values, (size_t)at->nvalues, sizeof v, cmp_double),
                  MMS_ERR_FORMAT,
                  "%s:%lld: value '%.*s' of attribute %d ('%s') is not one of its declared values "
                  "%s",
                  a->name, (long long)a->line, show_len(len), tok, i, at->name, at->type_text);
    *out = v;
    return MMS_OK;
}

static mms_status parse_dense(mms_arff_t *a, char *p, double *values) {
    int64_t i = 0;
    for (;;) {
        p = skip_ws(p);
        MMS_CHECK(!(*p == '{' && i > 0), MMS_ERR_FORMAT,
                  "%s:%lld: instance weights ('{w}' after the values) are not supported", a->name,
                  (long long)a->line);
        char *tok;
        size_t len;
        int quoted;
        MMS_CALL(read_token(a, &p, ",%", "value", &tok, &len, &quoted));
        p = skip_ws(p);
        MMS_CHECK(*p == ',' || at_line_end(p), MMS_ERR_FORMAT,
                  "%s:%lld: unexpected text '%.20s' after value %lld", a->name, (long long)a->line,
                  p, (long long)i);
        if (i < a->nattr) MMS_CALL(convert(a, (int32_t)i, tok, len, quoted, &values[i]));
        i++;
        if (*p != ',') break;
        p++;
    }
    MMS_CHECK(i == a->nattr, MMS_ERR_FORMAT,
              "%s:%lld: row has %lld values, expected %d (one per attribute)%s", a->name,
              (long long)a->line, (long long)i, a->nattr,
              i < a->nattr ? "; is the file truncated?" : "");
    return MMS_OK;
}

static mms_status parse_sparse(mms_arff_t *a, char *p, double *values) {
    for (int32_t i = 0; i < a->nattr; i++) values[i] = a->attr[i].sparse_zero;
    p++; /* '{' */
    int64_t prev = -1;
    int first = 1;
    for (;;) {
        p = skip_ws(p);
        if (*p == '}') {
            MMS_CHECK(first, MMS_ERR_FORMAT, "%s:%lld: sparse row ends with ',' before '}'",
                      a->name, (long long)a->line);
            p++;
            break;
        }
        MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT,
                  "%s:%lld: unterminated sparse row (missing '}'); is the file truncated?", a->name,
                  (long long)a->line);
        MMS_CHECK(isdigit((unsigned char)*p), MMS_ERR_FORMAT,
                  "%s:%lld: expected an attribute index in the sparse row, found '%.20s'", a->name,
                  (long long)a->line, p);
        int64_t idx = 0;
        while (isdigit((unsigned char)*p)) {
            if (idx < ((int64_t)1 << 40)) idx = idx * 10 + (*p - '0');
            p++;
        }
        MMS_CHECK(idx < a->nattr, MMS_ERR_FORMAT,
                  "%s:%lld: sparse index %lld is out of range (the header declares %d attributes, "
                  "indices 0..%d)",
                  a->name, (long long)a->line, (long long)idx, a->nattr, a->nattr - 1);
        MMS_CHECK(idx > prev, MMS_ERR_FORMAT,
                  "%s:%lld: sparse indices must increase: index %lld follows %lld", a->name,
                  (long long)a->line, (long long)idx, (long long)prev);
        MMS_CHECK(!at_line_end(skip_ws(p)), MMS_ERR_FORMAT,
                  "%s:%lld: unterminated sparse row (missing '}'); is the file truncated?", a->name,
                  (long long)a->line);
        MMS_CHECK(*p == ' ' || *p == '\t', MMS_ERR_FORMAT,
                  "%s:%lld: expected a blank and a value after sparse index %lld", a->name,
                  (long long)a->line, (long long)idx);
        p = skip_ws(p);
        char *tok;
        size_t len;
        int quoted;
        MMS_CALL(read_token(a, &p, ",}%", "value", &tok, &len, &quoted));
        MMS_CALL(convert(a, (int32_t)idx, tok, len, quoted, &values[idx]));
        prev = idx;
        first = 0;
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}') {
            p++;
            break;
        }
        MMS_CHECK(!at_line_end(p), MMS_ERR_FORMAT,
                  "%s:%lld: unterminated sparse row (missing '}'); is the file truncated?", a->name,
                  (long long)a->line);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: unexpected text '%.20s' after sparse index %lld",
                  a->name, (long long)a->line, p, (long long)idx);
    }
    p = skip_ws(p);
    if (*p == ',') {
        MMS_CHECK(*skip_ws(p + 1) != '{', MMS_ERR_FORMAT,
                  "%s:%lld: instance weights ('{w}' after the row) are not supported", a->name,
                  (long long)a->line);
    }
    MMS_CHECK(at_line_end(p), MMS_ERR_FORMAT,
              "%s:%lld: unexpected text '%.20s' after the sparse row", a->name, (long long)a->line,
              p);
    return MMS_OK;
}

mms_status mms_arff_next(mms_arff_t *a, double *values, int *got) {
    *got = 0;
    for (;;) {
        int more;
        MMS_CALL(read_line(a, &more));
        if (!more) return MMS_OK;
        char *p = skip_ws(a->buf);
        if (at_line_end(p)) continue;
        MMS_CHECK(*p != '@', MMS_ERR_FORMAT,
                  "%s:%lld: unexpected '%.20s' in the data section (after @data only rows may "
                  "follow)",
                  a->name, (long long)a->line, p);
        if (*p == '{')
            MMS_CALL(parse_sparse(a, p, values));
        else
            MMS_CALL(parse_dense(a, p, values));
        a->rows++;
        *got = 1;
        return MMS_OK;
    }
}

mms_status mms_arff_same_header(const mms_arff_t *a, const mms_arff_t *b) {
    MMS_CHECK(a->nattr == b->nattr, MMS_ERR_MISMATCH,
              "%s declares %d attributes but %s declares %d: the two ARFF headers must be the "
              "same",
              b->name, b->nattr, a->name, a->nattr);
    for (int32_t i = 0; i < a->nattr; i++) {
        const mms_arff_attr_t *x = &a->attr[i], *y = &b->attr[i];
        int same = !strcmp(x->name, y->name) && x->kind == y->kind && x->nvalues == y->nvalues &&
                   x->sparse_zero == y->sparse_zero;
        for (int32_t k = 0; same && k < x->nvalues; k++) same = x->values[k] == y->values[k];
        MMS_CHECK(same, MMS_ERR_MISMATCH,
                  "%s:%lld: attribute %d is '%.60s' %s but %s:%lld declares '%.60s' %s: the two "
                  "ARFF headers must be the same",
                  b->name, (long long)y->line, i, y->name, y->type_text, a->name,
                  (long long)x->line, x->name, x->type_text);
    }
    return MMS_OK;
}

/* ------------------------------------------------------------------- XML */

typedef struct {
    const char *name;
    const char *s;
    size_t n;
    size_t lpos; /* line counted up to here */
    int64_t line;
} xml_t;

/* Line number of position pos (pos never decreases between calls). */
static int64_t xml_line(xml_t *x, size_t pos) {
    for (; x->lpos < pos && x->lpos < x->n; x->lpos++)
        if (x->s[x->lpos] == '\n') x->line++;
    return x->line;
}

static int xml_starts(const xml_t *x, size_t p, const char *lit) {
    size_t l = strlen(lit);
    return p + l <= x->n && !memcmp(x->s + p, lit, l);
}

/* Position of lit at or after p, or (size_t)-1. */
static size_t xml_find(const xml_t *x, size_t p, const char *lit) {
    if (p > x->n) return (size_t)-1;
    const char *h = memmem(x->s + p, x->n - p, lit, strlen(lit));
    return h ? (size_t)(h - x->s) : (size_t)-1;
}

static int xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int xml_namechar(char c) {
    return isalnum((unsigned char)c) || c == '_' || c == ':' || c == '.' || c == '-' ||
           (unsigned char)c >= 0x80;
}

/* Decode an attribute value v[0..len) with entities into a new string. */
static mms_status xml_decode(xml_t *x, size_t at, const char *v, size_t len, char **out) {
    char *d;
    MMS_CALL(mms_malloc(len + 1, &d));
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        if (v[i] != '&') {
            d[w++] = v[i++];
            continue;
        }
        const char *semi = memchr(v + i, ';', len - i < 12 ? len - i : 12);
        size_t el = semi ? (size_t)(semi - (v + i)) - 1 : 0; /* entity name length */
        const char *e = v + i + 1;
        unsigned cp = 0;
        int ok = semi != NULL;
        if (ok && el == 3 && !memcmp(e, "amp", 3))
            cp = '&';
        else if (ok && el == 2 && !memcmp(e, "lt", 2))
            cp = '<';
        else if (ok && el == 2 && !memcmp(e, "gt", 2))
            cp = '>';
        else if (ok && el == 4 && !memcmp(e, "quot", 4))
            cp = '"';
        else if (ok && el == 4 && !memcmp(e, "apos", 4))
            cp = '\'';
        else if (ok && el >= 2 && e[0] == '#') {
            int hex = e[1] == 'x' || e[1] == 'X';
            size_t k = hex ? 2 : 1;
            ok = k < el;
            for (; ok && k < el; k++) {
                int dv = hex ? hexval(e[k]) : (isdigit((unsigned char)e[k]) ? e[k] - '0' : -1);
                ok = dv >= 0 && cp < 0x110000;
                cp = cp * (hex ? 16u : 10u) + (unsigned)(dv < 0 ? 0 : dv);
            }
            ok = ok && cp > 0 && cp < 0x110000 && (cp < 0xD800 || cp > 0xDFFF);
        } else {
            ok = 0;
        }
        if (!ok) {
            free(d);
            MMS_CHECK(0, MMS_ERR_FORMAT,
                      "%s:%lld: unknown or malformed entity '%.*s' in a label name", x->name,
                      (long long)xml_line(x, at), (int)(len - i < 12 ? len - i : 12), v + i);
        }
        w += (size_t)put_utf8(d + w, cp); /* an entity is never shorter than its encoding */
        i = (size_t)(semi - v) + 1;
    }
    d[w] = '\0';
    *out = d;
    return MMS_OK;
}

static mms_status labels_push(mms_mulan_labels_t *l, int32_t *cap, char *name, int64_t line) {
    if (l->n == *cap) {
        int32_t c = *cap ? 2 * *cap : 64;
        mms_status s = mms_realloc((size_t)c * sizeof *l->names, &l->names);
        if (s == MMS_OK) s = mms_realloc((size_t)c * sizeof *l->lines, &l->lines);
        if (s != MMS_OK) {
            free(name);
            return s;
        }
        *cap = c;
    }
    l->names[l->n] = name;
    l->lines[l->n] = line;
    l->n++;
    return MMS_OK;
}

/* Parse the element starting at p (just after '<'); a <label> adds its name.
 * *end gets the position after the tag's '>'. */
static mms_status xml_element(xml_t *x, size_t p, mms_mulan_labels_t *l, int32_t *cap,
                              mms_strmap_t *seen, size_t *end) {
    size_t tag = p - 1, q = p;
    while (q < x->n && xml_namechar(x->s[q])) q++;
    MMS_CHECK(q > p, MMS_ERR_FORMAT, "%s:%lld: stray '<' (not a tag)", x->name,
              (long long)xml_line(x, tag));
    const char *nm = x->s + p;
    size_t nl = q - p;
    const char *colon = memrchr(nm, ':', nl);
    if (colon) { /* namespace prefix */
        nl -= (size_t)(colon + 1 - nm);
        nm = colon + 1;
    }
    int is_label = nl == 5 && !memcmp(nm, "label", 5);
    char *name = NULL;
    int closed = 0;
    for (;;) {
        while (q < x->n && xml_space(x->s[q])) q++;
        if (q >= x->n) break;
        if (x->s[q] == '>') {
            q++;
            closed = 1;
            break;
        }
        if (x->s[q] == '/' && q + 1 < x->n && x->s[q + 1] == '>') {
            q += 2;
            closed = 1;
            break;
        }
        size_t an = q;
        while (q < x->n && xml_namechar(x->s[q])) q++;
        size_t anl = q - an;
        while (q < x->n && xml_space(x->s[q])) q++;
        if (anl == 0 || q >= x->n || x->s[q] != '=') {
            free(name);
            MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: malformed attribute in <%.*s> tag", x->name,
                      (long long)xml_line(x, tag), show_len(nl), nm);
        }
        q++;
        while (q < x->n && xml_space(x->s[q])) q++;
        if (q >= x->n || (x->s[q] != '"' && x->s[q] != '\'')) {
            free(name);
            MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: attribute value in <%.*s> tag is not quoted",
                      x->name, (long long)xml_line(x, tag), show_len(nl), nm);
        }
        char quote = x->s[q++];
        const char *close = memchr(x->s + q, quote, x->n - q);
        if (!close) {
            free(name);
            MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: unterminated attribute value in <%.*s> tag",
                      x->name, (long long)xml_line(x, tag), show_len(nl), nm);
        }
        size_t vlen = (size_t)(close - (x->s + q));
        if (is_label && anl == 4 && !memcmp(x->s + an, "name", 4)) {
            if (name) {
                free(name);
                MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: <label> has two name attributes", x->name,
                          (long long)xml_line(x, tag));
            }
            MMS_CALL(xml_decode(x, tag, x->s + q, vlen, &name));
        }
        q += vlen + 1;
    }
    if (!closed) {
        free(name);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: unterminated <%.*s> tag (missing '>')", x->name,
                  (long long)xml_line(x, tag), show_len(nl), nm);
    }
    *end = q;
    if (!is_label) return MMS_OK;
    int64_t line = xml_line(x, tag);
    MMS_CHECK(name, MMS_ERR_FORMAT, "%s:%lld: <label> element without a name attribute", x->name,
              (long long)line);
    if (!name[0]) {
        free(name);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s:%lld: <label> with an empty name", x->name,
                  (long long)line);
    }
    int inserted;
    int64_t first;
    mms_status s = mms_strmap_put(seen, name, strlen(name), l->n, &inserted, &first);
    if (s == MMS_OK && !inserted) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "%s:%lld: duplicate label '%.60s' (first on line %lld)", x->name,
                      (long long)line, name, (long long)l->lines[first]);
        s = MMS_ERR_FORMAT;
    }
    if (s != MMS_OK) {
        free(name);
        return s;
    }
    return labels_push(l, cap, name, line);
}

mms_status mms_mulan_labels_parse(const char *name, const char *xml, size_t len,
                                  mms_mulan_labels_t *out) {
    memset(out, 0, sizeof *out);
    xml_t x = {name, xml, len, 0, 1};
    mms_strmap_t *seen;
    MMS_CALL(mms_strmap_create(512, &seen));
    int32_t cap = 0;
    mms_status s = MMS_OK;
    size_t p = 0;
    while (p < len) {
        const char *lt = memchr(xml + p, '<', len - p);
        if (!lt) break;
        p = (size_t)(lt - xml);
        const char *close_lit = NULL;
        size_t skip = 0;
        if (xml_starts(&x, p, "<!--"))
            close_lit = "-->", skip = 4;
        else if (xml_starts(&x, p, "<![CDATA["))
            close_lit = "]]>", skip = 9;
        else if (xml_starts(&x, p, "<?"))
            close_lit = "?>", skip = 2;
        else if (xml_starts(&x, p, "<!") || xml_starts(&x, p, "</"))
            close_lit = ">", skip = 2;
        if (close_lit) {
            size_t e = xml_find(&x, p + skip, close_lit);
            MMS_CHECK_GOTO(s, fail, e != (size_t)-1, MMS_ERR_FORMAT,
                           "%s:%lld: unterminated %.*s... (no closing '%s')", name,
                           (long long)xml_line(&x, p), (int)skip, xml + p, close_lit);
            p = e + strlen(close_lit);
            continue;
        }
        MMS_CALL_GOTO(s, fail, xml_element(&x, p + 1, out, &cap, seen, &p));
    }
    MMS_CHECK_GOTO(s, fail, out->n > 0, MMS_ERR_FORMAT,
                   "%s: no <label name=\"...\"> elements found (is this a Mulan label XML?)", name);
    mms_strmap_destroy(&seen);
    return MMS_OK;
fail:
    mms_strmap_destroy(&seen);
    mms_mulan_labels_free(out);
    return s;
}

void mms_mulan_labels_free(mms_mulan_labels_t *l) {
    if (!l) return;
    for (int32_t i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->lines);
    memset(l, 0, sizeof *l);
}

/* --------------------------------------------------------- schema, rows */

static int valid_tag(const char *t) { return t[0] && strlen(t) < 256 && !strpbrk(t, "|\t\n\r"); }

mms_status mms_mulan_schema_build(const mms_arff_t *a, const mms_mulan_labels_t *l,
                                  const char *xml_name, mms_mulan_schema_t *out) {
    memset(out, 0, sizeof *out);
    uint8_t *is_label;
    MMS_CALL(mms_calloc((size_t)a->nattr, 1, &is_label));
    mms_status s = MMS_OK;
    for (int32_t k = 0; k < l->n; k++) {
        int32_t i = mms_arff_find(a, l->names[k]);
        MMS_CHECK_GOTO(s, fail, i >= 0, MMS_ERR_MISMATCH,
                       "%s:%lld: label '%.60s' is not an attribute of %s (it declares %d "
                       "attributes): the XML does not belong to this ARFF",
                       xml_name, (long long)l->lines[k], l->names[k], a->name, a->nattr);
        MMS_CHECK_GOTO(s, fail, valid_tag(a->attr[i].name), MMS_ERR_FORMAT,
                       "%s:%lld: label attribute '%.60s' cannot be a catalog tag (empty, longer "
                       "than 255 bytes, or contains '|', a tab or a line break)",
                       a->name, (long long)a->attr[i].line, a->attr[i].name);
        is_label[i] = 1;
    }
    out->nlabels = l->n;
    out->nfeat = a->nattr - l->n;
    MMS_CHECK_GOTO(s, fail, out->nfeat > 0, MMS_ERR_FORMAT,
                   "%s: all %d attributes of %s are labels: no features left", xml_name, a->nattr,
                   a->name);
    MMS_CALL_GOTO(s, fail,
                  mms_malloc((size_t)out->nfeat * sizeof *out->feat_attr, &out->feat_attr));
    MMS_CALL_GOTO(s, fail,
                  mms_malloc((size_t)out->nlabels * sizeof *out->label_attr, &out->label_attr));
    MMS_CALL_GOTO(s, fail,
                  mms_malloc((size_t)out->nlabels * sizeof *out->label_name, &out->label_name));
    int32_t nf = 0, nlab = 0;
    for (int32_t i = 0; i < a->nattr; i++) {
        if (is_label[i]) {
            out->label_attr[nlab] = i;
            out->label_name[nlab++] = a->attr[i].name;
        } else {
            out->feat_attr[nf++] = i;
        }
    }
    free(is_label);
    return MMS_OK;
fail:
    free(is_label);
    mms_mulan_schema_free(out);
    return s;
}

void mms_mulan_schema_free(mms_mulan_schema_t *s) {
    if (!s) return;
    free(s->feat_attr);
    free(s->label_attr);
    free(s->label_name);
    memset(s, 0, sizeof *s);
}

mms_status mms_mulan_row(const mms_mulan_schema_t *s, const mms_arff_t *a, const double *values,
                         float *feat, const char **tags, int *ntags) {
    for (int32_t f = 0; f < s->nfeat; f++) {
        double v = values[s->feat_attr[f]];
        feat[f] = (float)v;
        MMS_CHECK(isfinite(feat[f]), MMS_ERR_NUMERIC,
                  "%s:%lld: value %g of attribute %d ('%s') does not fit float32", a->name,
                  (long long)a->line, v, s->feat_attr[f], a->attr[s->feat_attr[f]].name);
    }
    int n = 0;
    for (int32_t k = 0; k < s->nlabels; k++) {
        double v = values[s->label_attr[k]];
        MMS_CHECK(v == 0.0 || v == 1.0, MMS_ERR_FORMAT,
                  "%s:%lld: label '%s' (attribute %d) has value %g; a label must be 0 or 1",
                  a->name, (long long)a->line, s->label_name[k], s->label_attr[k], v);
        if (v == 1.0) tags[n++] = s->label_name[k];
    }
    *ntags = n;
    return MMS_OK;
}

/* ---------------------------------------------------------------- import */

typedef struct {
    double *values;
    float *feat;
    const char **tags;
    int64_t *label_count;
} row_bufs_t;

static mms_status import_rows(mms_arff_t *a, const mms_mulan_schema_t *sc, int split,
                              mms_catalog_writer_t *w, row_bufs_t *b, int64_t *assignments) {
    const char *sname = mms_split_name(split);
    char label[64];
    snprintf(label, sizeof label, "import %s rows", sname);
    mms_progress_t pr;
    mms_progress_begin(&pr, label, 0, "rows");
    for (;;) {
        int got;
        MMS_CALL(mms_arff_next(a, b->values, &got));
        if (!got) break;
        int ntags;
        MMS_CALL(mms_mulan_row(sc, a, b->values, b->feat, b->tags, &ntags));
        char id[64], where[MMS_PATH_MAX + 32];
        snprintf(id, sizeof id, "%s-%06lld", sname, (long long)mms_arff_rows(a));
        snprintf(where, sizeof where, "%s:%lld", mms_arff_name(a), (long long)mms_arff_line(a));
        mms_catalog_row_t row = {0};
        row.where = where;
        row.id = id;
        row.split = split;
        row.tags = b->tags;
        row.ntags = ntags;
        row.features = b->feat;
        MMS_CALL(mms_catalog_writer_add(w, &row));
        for (int32_t k = 0; k < sc->nlabels; k++)
            b->label_count[k] += b->values[sc->label_attr[k]] == 1.0;
        *assignments += ntags;
        mms_progress_update(&pr, mms_arff_rows(a));
    }
    MMS_CHECK(mms_arff_rows(a) > 0, MMS_ERR_FORMAT, "%s:%lld: no data rows after @data",
              mms_arff_name(a), (long long)mms_arff_line(a));
    mms_progress_end(&pr);
    return MMS_OK;
}

mms_status mms_import_mulan_run(const mms_mulan_import_opts_t *o, mms_mulan_import_stats_t *stats) {
    double t0 = mms_now();
    MMS_CHECK(o && o->train && o->xml && o->out, MMS_ERR_ARG,
              "import mulan: --train, --xml and --out are required");
    mms_status s = MMS_OK;
    char *xml = NULL;
    size_t xml_len = 0;
    mms_mulan_labels_t labels = {0};
    mms_arff_t *tr = NULL, *te = NULL;
    mms_mulan_schema_t sc = {0};
    mms_catalog_writer_t *w = NULL;
    row_bufs_t b = {0};
    int64_t assignments = 0;

    MMS_CALL_GOTO(s, done, mms_read_file(o->xml, &xml, &xml_len));
    MMS_CALL_GOTO(s, done, mms_mulan_labels_parse(o->xml, xml, xml_len, &labels));
    MMS_CALL_GOTO(s, done, mms_arff_open_path(o->train, &tr));
    MMS_CALL_GOTO(s, done, mms_mulan_schema_build(tr, &labels, o->xml, &sc));
    if (o->test) {
        MMS_CALL_GOTO(s, done, mms_arff_open_path(o->test, &te));
        MMS_CALL_GOTO(s, done, mms_arff_same_header(tr, te));
    }
    mms_log_info("mulan: %d attributes = %d features + %d labels (relation '%s')",
                 mms_arff_nattr(tr), sc.nfeat, sc.nlabels, mms_arff_relation(tr));
    MMS_CALL_GOTO(s, done, mms_malloc((size_t)mms_arff_nattr(tr) * sizeof *b.values, &b.values));
    MMS_CALL_GOTO(s, done, mms_malloc((size_t)sc.nfeat * sizeof *b.feat, &b.feat));
    MMS_CALL_GOTO(s, done, mms_malloc((size_t)sc.nlabels * sizeof *b.tags, &b.tags));
    MMS_CALL_GOTO(s, done, mms_calloc((size_t)sc.nlabels, sizeof *b.label_count, &b.label_count));

    char source[3 * MMS_PATH_MAX];
    snprintf(source, sizeof source, "mulan: %s%s%s, labels %s", o->train, o->test ? " + " : "",
             o->test ? o->test : "", o->xml);
    MMS_CALL_GOTO(s, done, mms_catalog_writer_open(o->out, o->force, sc.nfeat, 0, source, &w));
    MMS_CALL_GOTO(s, done, import_rows(tr, &sc, MMS_SPLIT_TRAIN, w, &b, &assignments));
    if (te) MMS_CALL_GOTO(s, done, import_rows(te, &sc, MMS_SPLIT_TEST, w, &b, &assignments));

    int32_t used = 0;
    char unused[512] = "";
    size_t ul = 0;
    for (int32_t k = 0; k < sc.nlabels; k++) {
        if (b.label_count[k] > 0) {
            used++;
        } else if (ul < sizeof unused - 80) {
            int m = snprintf(unused + ul, sizeof unused - ul, "%s%.60s", ul ? ", " : "",
                             sc.label_name[k]);
            if (m > 0) ul += (size_t)m;
        }
    }
    if (used < sc.nlabels)
        mms_log_warn("mulan: %d of %d labels never occur (%s%s); they will not be tags",
                     sc.nlabels - used, sc.nlabels, unused,
                     ul >= sizeof unused - 80 ? ", ..." : "");

    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.format", "mulan"));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.train", o->train));
    if (o->test) MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.test", o->test));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_str(w, "import.xml", o->xml));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_int(w, "import.labels", sc.nlabels));
    MMS_CALL_GOTO(s, done, mms_catalog_writer_set_int(w, "import.labels_used", used));
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->train = mms_arff_rows(tr);
        stats->test = te ? mms_arff_rows(te) : 0;
        stats->dim = sc.nfeat;
        stats->nlabels = sc.nlabels;
        stats->labels_used = used;
        stats->assignments = assignments;
    }
    MMS_CALL_GOTO(s, done, mms_catalog_writer_finish(&w));
    if (stats) stats->seconds = mms_now() - t0;
    mms_log_info("mulan: wrote %s in %.2fs", o->out, mms_now() - t0);
done:
    mms_catalog_writer_abort(&w); /* no-op after finish */
    free(b.values);
    free(b.feat);
    free(b.tags);
    free(b.label_count);
    mms_mulan_schema_free(&sc);
    mms_arff_close(&te);
    mms_arff_close(&tr);
    mms_mulan_labels_free(&labels);
    free(xml);
    return s;
}
