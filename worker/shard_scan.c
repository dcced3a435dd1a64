/* shard_scan.c: exact top-k by inner product with an int8 filter
 * (shard_scan.h). No MPI, no index.
 *
 * Why: a query scans every row of a shard twice (the kNN space for its visual
 * neighbours, the embeddings for the results). That is memory-bound: one float
 * pass over 100,000 x 256 is 102 MB. An int8 copy is a quarter of the bytes,
 * and with per-row error bounds it filters without losing exactness.
 *
 * The bound (docs/query.md, "Exactness"). Row v = s q + r with s = max_j |v_j| /
 * 127, q = round(v / s) (int8) and residual r; query u = t p + w the same way.
 *   u.v = s t (p.q) + s (w.q) + u.r
 * so with A = s t (p.q) (p.q an exact integer dot product)
 *   |u.v - A| <= |w| (s |q|) + |u| |r|.
 * A float evaluation f of u.v, in any summation order, has |f - u.v| <=
 * gamma_d |u| |v| (gamma_d = d eps / (1 - d eps), eps = 2^-24). Hence every
 * float score lies in [a - b, a + b] with
 *   b = |w| qnorm_v + |u| rbound_v       (qnorm = s|q|, rbound = |r| + gamma_d |v|)
 * plus a margin for the float rounding of a and b themselves. If L is the k-th
 * largest lower bound a - b over the rows, at least k rows score >= L, so every
 * row of the float top-k (ties included) has a + b >= L. The scan keeps the
 * rows with a + b >= (the running L, which only grows), drops those below the
 * final L, re-scores the rest with the float rows and sorts by (score desc,
 * id asc): the float top-k, exactly.
 *
 * The query is quantised finer than the rows, with two int8 digits: u = t P + w
 * with P = 254 p1 + p2 (|p1|, |p2| <= 127, |P| <= 32258), so |w| is 254 times
 * smaller than with one digit and the bound is dominated by the rows' own
 * residual (measured: 5x fewer candidates). The kernel treats the two digits as
 * two query rows; A = s t (254 p1.q + p2.q).
 *
 * Layout of m->q: blocks of 64 rows, each 64 * dp bytes; inside a block, four
 * groups of 16 rows; inside a group, for each run of 4 dimensions g, 16 rows x
 * 4 bytes (one 512-bit vector). So VNNI's vpdpbusd multiplies 4 dimensions of
 * one query digit (broadcast) by 16 rows at once. The query side is unsigned:
 * p + 128 (the sum of q corrects it: (p + 128).q = p.q + 128 sum(q)).
 *
 * The approximate list scan (mms_qmat_topk_lists4) reads 4-bit codes instead:
 * at a million images the int8 list scan ran at the memory bandwidth of the
 * two cores (14 GB/s together), so half the bytes is most of half the time.
 * Its codes carry no proven bound worth using (the error is 18 times the
 * int8 one), so it keeps the best approximate scores and re-ranks them in
 * float, as faiss's IVF-SQ with a refine step does; we wrote it here because
 * the rows, lists, dead flags and top-k order are ours and the kernel is 20
 * lines of VNNI.
 */
#define _GNU_SOURCE /* madvise, MADV_HUGEPAGE */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define QSCAN_VNNI 1
#else
#define QSCAN_VNNI 0
#endif

#include "mms_array.h"
#include "mms_topk.h"
#include "shard_scan.h"

#define QB 64           /* rows per block */
#define QTILE_BLOCKS 4  /* blocks per tile (the batched path reuses a tile from L2) */
#define QTILE (QB * QTILE_BLOCKS)

static float round_up(double x) {
    float f = (float)x;
    if ((double)f < x) f = nextafterf(f, INFINITY);
    return f;
}

/* Zeroed, 64-byte aligned. Arrays of 2 MiB and more are 2 MiB aligned and
 * asked for transparent huge pages (the kernel's default here is "madvise"):
 * a list scan jumps from list to list across hundreds of MB, and with 4 KiB
 * pages every jump is a TLB miss (docs/query.md, "Approximate search"). */
#define HUGE_PAGE ((size_t)2 << 20)
static void *alloc_aligned(size_t bytes) {
    size_t b = (bytes + 63) / 64 * 64;
    if (b >= HUGE_PAGE) {
        b = (b + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
        void *p = aligned_alloc(HUGE_PAGE, b);
        if (p) {
            (void)madvise(p, b, MADV_HUGEPAGE); /* advice only: 4 KiB pages if refused */
            memset(p, 0, b);
        }
        return p;
    }
    void *p = aligned_alloc(64, b ? b : 64);
    if (p) memset(p, 0, b ? b : 64);
    return p;
}

void mms_qmat_destroy(mms_qmat_t **mp) {
    if (!mp || !*mp) return;
    mms_qmat_t *m = *mp;
    free(m->q);
    free(m->scale);
    free(m->qsum);
    free(m->qnorm);
    free(m->rbound);
    free(m->perm);
    free(m->lptr);
    free(m->q4);
    free(m);
    *mp = NULL;
}

size_t mms_qmat_bytes(const mms_qmat_t *m) {
    if (!m) return 0;
    return (size_t)m->nb * QB * ((size_t)m->dp + 16) + (m->perm ? (size_t)m->n * 4 : 0) +
           (m->lptr ? (size_t)(m->nlist + 1) * 8 : 0) +
           (m->q4 ? (size_t)m->nb * 4 * MMS_Q4_GROUP(m->dp8) : 0);
}

static double gamma_of(int32_t d) {
    double u = ldexp(1.0, -24);
    return (double)d * u / (1.0 - (double)d * u);
}

/* Row v's 4-bit codes from its float row (max |v_j| = mx). Layout of a
 * 16-row group: for each run h of 8 dimensions, 64 bytes, byte 4 r + j of
 * row r holding dimension 8 h + j in its low half and 8 h + 4 + j in its
 * high half (j < 4), so one 512-bit load and two masks give the kernel two
 * vpdpbusd operands in the int8 layout (16 rows x 4 dimensions). */
static void code4_row(mms_qmat_t *m, int64_t v, const float *row, float mx) {
    const float s = mx / 7.0f;
    uint8_t *grp = m->q4 + (size_t)(v / 16) * MMS_Q4_GROUP(m->dp8);
    const int r = (int)(v % 16);
    for (int32_t j = 0; j < m->d; j++) {
        int c = 8;
        if (s > 0) {
            long l = lrintf(row[j] / s);
            c = 8 + (int)(l > 7 ? 7 : l < -7 ? -7 : l);
        }
        const int32_t h = j / 8, jj = j % 8;
        uint8_t *b = grp + (size_t)h * 64 + (size_t)r * 4 + (jj % 4);
        *b = jj < 4 ? (uint8_t)((*b & 0xF0) | c) : (uint8_t)((*b & 0x0F) | (c << 4));
    }
    for (int32_t j = m->d; j < m->dp8; j++) { /* padding: the code of 0 */
        const int32_t h = j / 8, jj = j % 8;
        uint8_t *b = grp + (size_t)h * 64 + (size_t)r * 4 + (jj % 4);
        *b = jj < 4 ? (uint8_t)((*b & 0xF0) | 8) : (uint8_t)((*b & 0x0F) | (8 << 4));
    }
    memcpy(grp + 8 * (size_t)m->dp8 + 4 * (size_t)r, &s, sizeof s);
}

mms_status mms_qmat_add_codes4(mms_qmat_t *m, const float *X) {
    MMS_CHECK(m && m->lptr && m->nlist > 0 && (X || m->n == 0), MMS_ERR_ARG,
              "qmat codes4: the rows have no inverted lists");
    if (m->q4) return MMS_OK;
    const int32_t dp8 = (m->d + 7) & ~7;
    const size_t groups = (size_t)(m->nb > 0 ? m->nb : 1) * (QB / 16);
    uint8_t *q4 = alloc_aligned(groups * MMS_Q4_GROUP(dp8));
    if (!q4) {
        mms_error_set(MMS_ERR_NOMEM, __FILE__, __LINE__, __func__,
                      "qmat codes4: out of memory for %lld x %d codes", (long long)m->n, m->d);
        return MMS_ERR_NOMEM;
    }
    m->q4 = q4;
    m->dp8 = dp8;
    for (int64_t v = 0; v < m->n; v++) { /* rows are finite: qmat_build checked them */
        const float *row = X + (size_t)(m->perm ? m->perm[v] : v) * m->d;
        float mx = 0;
        for (int32_t j = 0; j < m->d; j++) mx = fabsf(row[j]) > mx ? fabsf(row[j]) : mx;
        code4_row(m, v, row, mx);
    }
    return MMS_OK;
}

/* The int8 rows of X in the order perm gives (NULL: identity; taken over). */
static mms_status qmat_build(const float *X, int64_t n, int32_t d, int32_t *perm, int32_t nlist,
                             int64_t *lptr, mms_qmat_t **out) {
    *out = NULL;
    mms_qmat_t *m;
    mms_status cs = mms_calloc(1, sizeof *m, &m);
    if (cs != MMS_OK) {
        free(perm);
        free(lptr);
        return cs;
    }
    m->perm = perm;
    m->nlist = nlist;
    m->lptr = lptr;
    m->n = n;
    m->d = d;
    m->dp = (d + 3) & ~3;
    m->nb = (n + QB - 1) / QB;
    size_t rows = (size_t)(m->nb > 0 ? m->nb : 1) * QB;
    m->q = alloc_aligned(rows * (size_t)m->dp);
    m->scale = alloc_aligned(rows * sizeof(float));
    m->qsum = alloc_aligned(rows * sizeof(int32_t));
    m->qnorm = alloc_aligned(rows * sizeof(float));
    m->rbound = alloc_aligned(rows * sizeof(float));
    if (!m->q || !m->scale || !m->qsum || !m->qnorm || !m->rbound) {
        mms_qmat_destroy(&m);
        mms_error_set(MMS_ERR_NOMEM, __FILE__, __LINE__, __func__,
                      "qmat: out of memory for %lld x %d int8 rows", (long long)n, d);
        return MMS_ERR_NOMEM;
    }
    const int32_t G = m->dp / 4;
    const double gam = gamma_of(d);
    for (int64_t v = 0; v < n; v++) {
        const int64_t o = perm ? perm[v] : v;
        const float *row = X + (size_t)o * d;
        float mx = 0;
        for (int32_t j = 0; j < d; j++) {
            if (!isfinite(row[j])) {
                mms_qmat_destroy(&m);
                mms_error_set(MMS_ERR_NUMERIC, __FILE__, __LINE__, __func__,
                              "qmat: row %lld has a non-finite value at column %d", (long long)o, j);
                return MMS_ERR_NUMERIC;
            }
            float a = fabsf(row[j]);
            if (a > mx) mx = a;
        }
        float s = mx / 127.0f;
        int8_t *blk = m->q + (size_t)(v / QB) * QB * m->dp;
        int r = (int)(v % QB), sub = r / 16, lane = r % 16;
        double qq = 0, rr = 0, vv = 0;
        int32_t sum = 0;
        for (int32_t j = 0; j < d; j++) {
            int qj = 0;
            if (s > 0) {
                long l = lrintf(row[j] / s);
                qj = (int)(l > 127 ? 127 : l < -127 ? -127 : l);
            }
            blk[((size_t)sub * G + j / 4) * 64 + (size_t)lane * 4 + j % 4] = (int8_t)qj;
            sum += qj;
            qq += (double)qj * qj;
            double res = (double)row[j] - (double)s * qj; /* exact: 24-bit x 8-bit */
            rr += res * res;
            vv += (double)row[j] * row[j];
        }
        m->scale[v] = s;
        m->qsum[v] = sum;
        m->qnorm[v] = round_up((double)s * sqrt(qq) * (1 + 1e-12));
        m->rbound[v] = round_up((sqrt(rr) + gam * sqrt(vv)) * (1 + 1e-12));
    }
    *out = m;
    return MMS_OK;
}

mms_status mms_qmat_create(const float *X, int64_t n, int32_t d, mms_qmat_t **out) {
    *out = NULL;
    MMS_CHECK(d >= 1 && d <= MMS_QMAT_MAX_DIM, MMS_ERR_ARG,
              "qmat: row width %d outside [1, %d]", d, MMS_QMAT_MAX_DIM);
    MMS_CHECK(n >= 0 && (n == 0 || X), MMS_ERR_ARG, "qmat: no rows given");
    return qmat_build(X, n, d, NULL, 0, NULL, out);
}

mms_status mms_qmat_create_lists(const float *X, int64_t n, int32_t d, const int32_t *list,
                                 int32_t nlist, mms_qmat_t **out) {
    *out = NULL;
    MMS_CHECK(d >= 1 && d <= MMS_QMAT_MAX_DIM, MMS_ERR_ARG,
              "qmat: row width %d outside [1, %d]", d, MMS_QMAT_MAX_DIM);
    MMS_CHECK(n >= 0 && n <= INT32_MAX && (n == 0 || (X && list)) && nlist >= 1, MMS_ERR_ARG,
              "qmat: bad rows or lists (%lld rows, %d lists)", (long long)n, nlist);
    int32_t *perm = NULL;
    int64_t *lptr = NULL;
    MMS_CALL(mms_calloc((size_t)nlist + 1, sizeof *lptr, &lptr));
    for (int64_t i = 0; i < n; i++) {
        if (list[i] < 0 || list[i] >= nlist) {
            free(lptr);
            mms_error_set(MMS_ERR_ARG, __FILE__, __LINE__, __func__,
                          "qmat: row %lld is in list %d, outside [0, %d)", (long long)i, list[i],
                          nlist);
            return MMS_ERR_ARG;
        }
        lptr[list[i] + 1]++;
    }
    for (int32_t l = 0; l < nlist; l++) lptr[l + 1] += lptr[l];
    mms_status s = mms_malloc((size_t)n * sizeof *perm + 1, &perm);
    if (s != MMS_OK) {
        free(lptr);
        return s;
    }
    /* counting sort, stable: rows ascending inside a list */
    int64_t *at = NULL;
    s = mms_malloc((size_t)nlist * sizeof *at, &at);
    if (s != MMS_OK) {
        free(lptr);
        free(perm);
        return s;
    }
    memcpy(at, lptr, (size_t)nlist * sizeof *at);
    for (int64_t i = 0; i < n; i++) perm[at[list[i]]++] = (int32_t)i;
    free(at);
    return qmat_build(X, n, d, perm, nlist, lptr, out);
}

/* ---------------------------------------------------------------- kernels */

/* S[i * lds + r] = sum_j P[i * ldp + j] * q(row b*64 + r)[j], r in [0, 64), for
 * queries i in [0, nq), one 64-row block b. P is unsigned (p + 128). */
#if QSCAN_VNNI
static inline __m512i bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

static void block_dots(const mms_qmat_t *m, int64_t b, const uint8_t *P, int32_t nq, int32_t ldp,
                       int32_t *S, int64_t lds) {
    const int32_t G = m->dp / 4;
    const int8_t *B = m->q + (size_t)b * QB * m->dp;
    const int8_t *B1 = B + (size_t)G * 64, *B2 = B + (size_t)2 * G * 64, *B3 = B + (size_t)3 * G * 64;
    int32_t i = 0;
    for (; i + 4 <= nq; i += 4) {
        __m512i acc[4][4];
        for (int a = 0; a < 4; a++)
            for (int c = 0; c < 4; c++) acc[a][c] = _mm512_setzero_si512();
        const uint8_t *p0 = P + (size_t)i * ldp;
        for (int32_t g = 0; g < G; g++) {
            __m512i r0 = _mm512_load_si512(B + (size_t)g * 64);
            __m512i r1 = _mm512_load_si512(B1 + (size_t)g * 64);
            __m512i r2 = _mm512_load_si512(B2 + (size_t)g * 64);
            __m512i r3 = _mm512_load_si512(B3 + (size_t)g * 64);
            for (int a = 0; a < 4; a++) {
                __m512i x = bcast4(p0 + (size_t)a * ldp + 4 * (size_t)g);
                acc[a][0] = _mm512_dpbusd_epi32(acc[a][0], x, r0);
                acc[a][1] = _mm512_dpbusd_epi32(acc[a][1], x, r1);
                acc[a][2] = _mm512_dpbusd_epi32(acc[a][2], x, r2);
                acc[a][3] = _mm512_dpbusd_epi32(acc[a][3], x, r3);
            }
        }
        for (int a = 0; a < 4; a++)
            for (int c = 0; c < 4; c++)
                _mm512_storeu_si512(S + (size_t)(i + a) * lds + 16 * c, acc[a][c]);
    }
    for (; i + 2 <= nq; i += 2) {
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        __m512i c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        const uint8_t *p0 = P + (size_t)i * ldp, *p1 = p0 + ldp;
        for (int32_t g = 0; g < G; g++) {
            __m512i r0 = _mm512_load_si512(B + (size_t)g * 64);
            __m512i r1 = _mm512_load_si512(B1 + (size_t)g * 64);
            __m512i r2 = _mm512_load_si512(B2 + (size_t)g * 64);
            __m512i r3 = _mm512_load_si512(B3 + (size_t)g * 64);
            __m512i x = bcast4(p0 + 4 * (size_t)g), y = bcast4(p1 + 4 * (size_t)g);
            a0 = _mm512_dpbusd_epi32(a0, x, r0);
            a1 = _mm512_dpbusd_epi32(a1, x, r1);
            a2 = _mm512_dpbusd_epi32(a2, x, r2);
            a3 = _mm512_dpbusd_epi32(a3, x, r3);
            c0 = _mm512_dpbusd_epi32(c0, y, r0);
            c1 = _mm512_dpbusd_epi32(c1, y, r1);
            c2 = _mm512_dpbusd_epi32(c2, y, r2);
            c3 = _mm512_dpbusd_epi32(c3, y, r3);
        }
        int32_t *o = S + (size_t)i * lds, *o2 = o + lds;
        _mm512_storeu_si512(o, a0);
        _mm512_storeu_si512(o + 16, a1);
        _mm512_storeu_si512(o + 32, a2);
        _mm512_storeu_si512(o + 48, a3);
        _mm512_storeu_si512(o2, c0);
        _mm512_storeu_si512(o2 + 16, c1);
        _mm512_storeu_si512(o2 + 32, c2);
        _mm512_storeu_si512(o2 + 48, c3);
    }
    for (; i < nq; i++) {
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        const uint8_t *p0 = P + (size_t)i * ldp;
        for (int32_t g = 0; g < G; g++) {
            __m512i x = bcast4(p0 + 4 * (size_t)g);
            a0 = _mm512_dpbusd_epi32(a0, x, _mm512_load_si512(B + (size_t)g * 64));
            a1 = _mm512_dpbusd_epi32(a1, x, _mm512_load_si512(B1 + (size_t)g * 64));
            a2 = _mm512_dpbusd_epi32(a2, x, _mm512_load_si512(B2 + (size_t)g * 64));
            a3 = _mm512_dpbusd_epi32(a3, x, _mm512_load_si512(B3 + (size_t)g * 64));
        }
        int32_t *o = S + (size_t)i * lds;
        _mm512_storeu_si512(o, a0);
        _mm512_storeu_si512(o + 16, a1);
        _mm512_storeu_si512(o + 32, a2);
        _mm512_storeu_si512(o + 48, a3);
    }
}
#else
static void block_dots(const mms_qmat_t *m, int64_t b, const uint8_t *P, int32_t nq, int32_t ldp,
                       int32_t *S, int64_t lds) {
    const int32_t G = m->dp / 4;
    const int8_t *B = m->q + (size_t)b * QB * m->dp;
    for (int32_t i = 0; i < nq; i++) {
        const uint8_t *p = P + (size_t)i * ldp;
        for (int r = 0; r < QB; r++) {
            const int8_t *base = B + (size_t)(r / 16) * G * 64 + (size_t)(r % 16) * 4;
            int32_t acc = 0;
            for (int32_t g = 0; g < G; g++) {
                const int8_t *c = base + (size_t)g * 64;
                const uint8_t *pp = p + 4 * (size_t)g;
                acc += (int32_t)pp[0] * c[0] + (int32_t)pp[1] * c[1] + (int32_t)pp[2] * c[2] +
                       (int32_t)pp[3] * c[3];
            }
            S[(size_t)i * lds + r] = acc;
        }
    }
}
#endif

/* The list scans' kernel: the integer dots of one query's two digit rows p1,
 * p2 (unsigned, +128) with the 16 rows of group gi (rows 16 gi .. 16 gi + 15;
 * a group is contiguous in the layout), into S[0..16) and S2[0..16). A list
 * scan so reads only the 16-row groups its list touches, not whole blocks. */
#define QG 16
#if QSCAN_VNNI
static void group_dots2(const mms_qmat_t *m, int64_t gi, const uint8_t *p1, const uint8_t *p2,
                        int32_t *S, int32_t *S2) {
    const int32_t G = m->dp / 4;
    const int8_t *B = m->q + (size_t)(gi / 4) * QB * m->dp + (size_t)(gi % 4) * G * 64;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, c0 = a0, c1 = a0;
    int32_t g = 0;
    for (; g + 2 <= G; g += 2) { /* two chains per digit: the adds' latency overlaps */
        __m512i r0 = _mm512_load_si512(B + (size_t)g * 64);
        __m512i r1 = _mm512_load_si512(B + (size_t)(g + 1) * 64);
        a0 = _mm512_dpbusd_epi32(a0, bcast4(p1 + 4 * (size_t)g), r0);
        c0 = _mm512_dpbusd_epi32(c0, bcast4(p2 + 4 * (size_t)g), r0);
        a1 = _mm512_dpbusd_epi32(a1, bcast4(p1 + 4 * (size_t)g + 4), r1);
        c1 = _mm512_dpbusd_epi32(c1, bcast4(p2 + 4 * (size_t)g + 4), r1);
    }
    if (g < G) {
        __m512i r0 = _mm512_load_si512(B + (size_t)g * 64);
        a0 = _mm512_dpbusd_epi32(a0, bcast4(p1 + 4 * (size_t)g), r0);
        c0 = _mm512_dpbusd_epi32(c0, bcast4(p2 + 4 * (size_t)g), r0);
    }
    _mm512_storeu_si512(S, _mm512_add_epi32(a0, a1));
    _mm512_storeu_si512(S2, _mm512_add_epi32(c0, c1));
}
#else
static void group_dots2(const mms_qmat_t *m, int64_t gi, const uint8_t *p1, const uint8_t *p2,
                        int32_t *S, int32_t *S2) {
    const int32_t G = m->dp / 4;
    const int8_t *B = m->q + (size_t)(gi / 4) * QB * m->dp + (size_t)(gi % 4) * G * 64;
    for (int r = 0; r < QG; r++) {
        int32_t a = 0, c = 0;
        for (int32_t g = 0; g < G; g++) {
            const int8_t *q = B + (size_t)g * 64 + (size_t)r * 4;
            const uint8_t *x = p1 + 4 * (size_t)g, *y = p2 + 4 * (size_t)g;
            a += (int32_t)x[0] * q[0] + (int32_t)x[1] * q[1] + (int32_t)x[2] * q[2] + (int32_t)x[3] * q[3];
            c += (int32_t)y[0] * q[0] + (int32_t)y[1] * q[1] + (int32_t)y[2] * q[2] + (int32_t)y[3] * q[3];
        }
        S[r] = a;
        S2[r] = c;
    }
}
#endif

/* ---------------------------------------------------------------- per query state */

typedef struct {
    float s;
    int64_t id, row;
} cand_t;

typedef struct {
    float t, un, om; /* quantisation step, |u|, |w| (rounded up) */
    int64_t ex;      /* excluded row or -1 */
    uint64_t *heap;  /* the k largest lower bounds (mms_topk_key, id 0), worst at the root */
    int32_t nheap;
    float L;         /* k-th largest lower bound (-inf until k rows) */
    int64_t *crow;   /* candidates: rows and their upper bounds */
    float *chi;
    int64_t nc;
    size_t cap_row, cap_hi;
    int64_t climit;  /* most candidates kept; beyond: a float scan for this query */
    int overflow;
} qstate_t;

static mms_status cand_push(qstate_t *st, int64_t row, float hi) {
    if (st->nc >= st->climit) { /* scores too close to filter (e.g. a zero query) */
        st->overflow = 1;
        return MMS_OK;
    }
    MMS_CALL(mms_grow(&st->crow, sizeof *st->crow, (size_t)st->nc + 1, &st->cap_row));
    MMS_CALL(mms_grow(&st->chi, sizeof *st->chi, (size_t)st->nc + 1, &st->cap_hi));
    st->crow[st->nc] = row;
    st->chi[st->nc] = hi;
    st->nc++;
    return MMS_OK;
}

static int cmp_cand(const void *pa, const void *pb) {
    const cand_t *a = pa, *b = pb;
    return mms_topk_cmp(a->s, a->id, b->s, b->id);
}

/* Sort the re-scored candidates cs[0..nc) and write the first k (row, score). */
static void take_best(cand_t *cs, int64_t nc, int32_t k, int64_t *rows, float *scores) {
    qsort(cs, (size_t)nc, sizeof *cs, cmp_cand);
    int64_t take = nc < k ? nc : k;
    for (int64_t j = 0; j < take; j++) {
        rows[j] = cs[j].row;
        scores[j] = cs[j].s;
    }
}

/* Rows [v0, v0 + nr) of one tile for one query: S and S2 hold the integer
 * dots of its two digits. a, b: nr scratch floats each. */
static mms_status tile_query(const mms_qmat_t *m, qstate_t *st, int32_t k, const int32_t *S,
                             const int32_t *S2, int64_t v0, int nr, float *a, float *b) {
    const double t = st->t;
    const float un = st->un, om = st->om, L0 = st->L;
    const float grow = 1.0f + 0x1p-20f, rel = 0x1p-21f;
    int cnt = 0;
    for (int r = 0; r < nr; r++) {
        int64_t v = v0 + r;
        int32_t c = 128 * m->qsum[v];
        /* 254 p1.q + p2.q is exact in double; one rounding to float */
        double x = 254.0 * (double)(S[r] - c) + (double)(S2[r] - c);
        float av = (float)((double)m->scale[v] * t * x);
        float bv = (om * m->qnorm[v] + un * m->rbound[v]) * grow + fabsf(av) * rel;
        a[r] = av;
        b[r] = bv;
        cnt += av + bv >= L0;
    }
    if (!cnt) return MMS_OK;
    for (int r = 0; r < nr; r++) {
        float hi = a[r] + b[r];
        if (!(hi >= st->L) || st->overflow) continue;
        int64_t v = v0 + r, o = m->perm ? m->perm[v] : v;
        if (o == st->ex || (m->dead && m->dead[o])) continue;
        /* L: the k-th largest lower bound; only its value matters, so the
         * keys carry no id and equal bounds never displace each other */
        float lo = a[r] - b[r];
        if (mms_topk_heap_offer(st->heap, &st->nheap, k, mms_topk_key(lo, 0)) && st->nheap == k)
            st->L = mms_topk_key_score(st->heap[0]);
        MMS_CALL(cand_push(st, v, hi));
    }
    return MMS_OK;
}

/* Candidate c of a query: float row o (of X, d wide) re-scored exactly. */
static void rescore(const float *X, int32_t d, const int64_t *ids, const float *u, int64_t o,
                    cand_t *c) {
    c->row = o;
    c->s = cblas_sdot(d, u, 1, X + (size_t)o * d, 1);
    c->id = ids ? ids[o] : o;
}

/* The candidates of st that survive its final threshold L, re-scored into cs
 * (room for st->nc); returns how many. */
static int64_t rescore_candidates(const mms_qmat_t *m, const float *X, const int64_t *ids,
                                  const float *u, const qstate_t *st, cand_t *cs) {
    int64_t nc = 0;
    for (int64_t c = 0; c < st->nc; c++) {
        if (!(st->chi[c] >= st->L)) continue;
        int64_t v = st->crow[c];
        rescore(X, m->d, ids, u, m->perm ? m->perm[v] : v, &cs[nc++]);
    }
    return nc;
}

/* Quantise query u (d floats) into two digit rows p1, p2 (dp bytes each, +128
 * offset) with u = t (254 p1 + p2) + w, and its bounds. */
static void quantize_query(const float *u, int32_t d, int32_t dp, uint8_t *p1, uint8_t *p2,
                           qstate_t *st) {
    float mx = 0;
    for (int32_t j = 0; j < d; j++) {
        float x = fabsf(u[j]);
        if (x > mx) mx = x;
    }
    float t = mx / 32258.0f; /* 254 * 127 */
    double ww = 0, uu = 0;
    for (int32_t j = 0; j < d; j++) {
        long P = 0, h = 0, l = 0;
        if (t > 0) {
            P = lrint((double)u[j] / t);
            P = P > 32258 ? 32258 : P < -32258 ? -32258 : P;
            h = lrint((double)P / 254.0);
            l = P - 254 * h; /* |l| <= 127 since |P| <= 254 * 127 */
        }
        p1[j] = (uint8_t)(h + 128);
        p2[j] = (uint8_t)(l + 128);
        double w = (double)u[j] - (double)t * (double)P;
        ww += w * w;
        uu += (double)u[j] * u[j];
    }
    for (int32_t j = d; j < dp; j++) p1[j] = p2[j] = 128;
    st->t = t;
    st->om = round_up(sqrt(ww) * (1 + 1e-12));
    st->un = round_up(sqrt(uu) * (1 + 1e-12));
}

/* The per-query states of a scan: each query quantised into P (rows 2i and
 * 2i + 1), its excluded row, an empty heap of k. *out is NULL on failure. */
static mms_status qstates_new(const float *Q, int32_t nq, int32_t d, int32_t dp, int32_t k,
                              const int64_t *exclude_rows, uint8_t *P, qstate_t **out) {
    qstate_t *st;
    *out = NULL;
    MMS_CALL(mms_calloc((size_t)nq, sizeof *st, &st));
    for (int32_t i = 0; i < nq; i++) {
        quantize_query(Q + (size_t)i * d, d, dp, P + (size_t)2 * i * dp, P + (size_t)(2 * i + 1) * dp,
                       &st[i]);
        st[i].ex = exclude_rows ? exclude_rows[i] : -1;
        st[i].L = -INFINITY;
        st[i].climit = 4 * (int64_t)k + 16384;
        mms_status s = mms_malloc((size_t)k * sizeof *st[i].heap, &st[i].heap);
        if (s != MMS_OK) {
            for (int32_t j = 0; j < i; j++) free(st[j].heap);
            free(st);
            return s;
        }
    }
    *out = st;
    return MMS_OK;
}

static void qstates_free(qstate_t *st, int32_t nq) {
    if (!st) return;
    for (int32_t i = 0; i < nq; i++) {
        free(st[i].heap);
        free(st[i].crow);
        free(st[i].chi);
    }
    free(st);
}

/* The scratch of a tiled scan of nq queries: P, their two digit rows each
 * (dp bytes a row), and S, the integer dots of one tile (2 nq x QTILE). */
static mms_status tile_scratch(int32_t nq, int32_t dp, const char *who, uint8_t **P, int32_t **S) {
    *P = alloc_aligned((size_t)2 * nq * dp);
    *S = alloc_aligned((size_t)2 * nq * QTILE * sizeof(int32_t));
    if (*P && *S) return MMS_OK;
    free(*P), free(*S);
    *P = NULL, *S = NULL;
    mms_error_set(MMS_ERR_NOMEM, __FILE__, __LINE__, __func__, "%s: out of memory", who);
    return MMS_ERR_NOMEM;
}

/* The tile of blocks from b0: the dots of every digit row of P with its rows
 * into S; returns its first row in *v0 and its rows in *nr. */
static void tile_dots(const mms_qmat_t *m, int64_t b0, const uint8_t *P, int32_t nq, int32_t *S,
                      int64_t *v0, int *nr) {
    int64_t nbk = m->nb - b0 < QTILE_BLOCKS ? m->nb - b0 : QTILE_BLOCKS;
    for (int64_t b = 0; b < nbk; b++) block_dots(m, b0 + b, P, 2 * nq, m->dp, S + b * QB, QTILE);
    *v0 = b0 * QB;
    *nr = (int)(m->n - *v0 < nbk * QB ? m->n - *v0 : nbk * QB);
}

mms_status mms_qmat_topk(const mms_qmat_t *m, const float *X, const int64_t *ids, const float *Q,
                         int32_t nq, int32_t k, const int64_t *exclude_rows, int64_t *out_rows,
                         float *out_scores, mms_qscan_stats_t *stats) {
    MMS_CHECK(m && k >= 1 && nq >= 0 && (nq == 0 || (Q && out_rows && out_scores)), MMS_ERR_ARG,
              "qmat topk: bad arguments (k %d, nq %d)", k, nq);
    mms_topk_pad(out_rows, out_scores, (size_t)nq * (size_t)k);
    if (nq == 0 || m->n == 0) return MMS_OK;
    MMS_CHECK(X != NULL, MMS_ERR_ARG, "qmat topk: the float rows are needed for the re-rank");
    const int32_t d = m->d, dp = m->dp;
    uint8_t *P; /* two digit rows per query */
    int32_t *S;
    MMS_CALL(tile_scratch(nq, dp, "qmat topk", &P, &S));
    mms_status s = MMS_OK;
    float *ab = NULL;
    qstate_t *st = NULL;
    cand_t *cs = NULL;
    MMS_CALL_GOTO(s, done, mms_malloc(2 * QTILE * sizeof(float), &ab));
    MMS_CALL_GOTO(s, done, qstates_new(Q, nq, d, dp, k, exclude_rows, P, &st));
    /* scan: a tile of rows through the kernel for every query, then the bounds */
    for (int64_t b0 = 0; b0 < m->nb; b0 += QTILE_BLOCKS) {
        int64_t v0;
        int nr;
        tile_dots(m, b0, P, nq, S, &v0, &nr);
        for (int32_t i = 0; i < nq; i++)
            MMS_CALL_GOTO(s, done, tile_query(m, &st[i], k, S + (size_t)2 * i * QTILE,
                                              S + (size_t)(2 * i + 1) * QTILE, v0, nr, ab,
                                              ab + QTILE));
    }
    /* re-rank the candidates that survive the final threshold */
    int64_t maxc = 0;
    for (int32_t i = 0; i < nq; i++) maxc = st[i].nc > maxc ? st[i].nc : maxc;
    MMS_CALL_GOTO(s, done, mms_malloc((size_t)(maxc + 1) * sizeof *cs, &cs));
    for (int32_t i = 0; i < nq; i++) {
        const float *u = Q + (size_t)i * d;
        if (st[i].overflow) {
            /* the filter cannot separate this query's rows (e.g. a zero query): scan them
             * all in float; row numbers as ids tie-break like the ascending ids */
            int64_t ex = st[i].ex;
            MMS_CALL_GOTO(s, done, mms_scan_float_live(X, m->n, d, m->dead, m->ndead, u, 1, k, &ex,
                                                       out_rows + (size_t)i * k,
                                                       out_scores + (size_t)i * k));
            if (stats) stats->reranked += m->n;
            continue;
        }
        int64_t nc = rescore_candidates(m, X, ids, u, &st[i], cs);
        take_best(cs, nc, k, out_rows + (size_t)i * k, out_scores + (size_t)i * k);
        if (stats) stats->reranked += nc;
    }
    if (stats) stats->rows_scanned += m->n * nq;
done:
    qstates_free(st, nq);
    free(cs);
    free(ab);
    free(P);
    free(S);
    return s;
}

/* ---------------------------------------------------------------- approximate top-k */

mms_status mms_qmat_approx_topk(const mms_qmat_t *m, const float *Q, int32_t nq, int32_t k,
                                int32_t *out_rows) {
    MMS_CHECK(m && k >= 1 && k <= m->n && nq >= 0 && (nq == 0 || (Q && out_rows)) &&
                  m->n <= MMS_TOPK_KEY_MAX_ID,
              MMS_ERR_ARG, "qmat approx topk: bad arguments (k %d, nq %d, %lld rows)", k, nq,
              m ? (long long)m->n : -1ll);
    if (nq == 0) return MMS_OK;
    const int32_t d = m->d, dp = m->dp;
    uint8_t *P;
    int32_t *S;
    MMS_CALL(tile_scratch(nq, dp, "qmat approx topk", &P, &S));
    mms_status s = MMS_OK;
    uint64_t *heap = NULL;
    int32_t *nh = NULL;
    qstate_t *st = NULL;
    MMS_CALL_GOTO(s, done, mms_malloc((size_t)nq * k * sizeof *heap, &heap));
    MMS_CALL_GOTO(s, done, mms_calloc((size_t)nq, sizeof *nh, &nh));
    MMS_CALL_GOTO(s, done, qstates_new(Q, nq, d, dp, 1, NULL, P, &st));
    for (int64_t b0 = 0; b0 < m->nb; b0 += QTILE_BLOCKS) {
        int64_t v0;
        int nr;
        tile_dots(m, b0, P, nq, S, &v0, &nr);
        for (int32_t i = 0; i < nq; i++) {
            const int32_t *S1 = S + (size_t)2 * i * QTILE, *S2 = S1 + QTILE;
            uint64_t *h = heap + (size_t)i * k;
            for (int r = 0; r < nr; r++) { /* tile_query's estimate a, without its bound */
                int64_t v = v0 + r;
                int32_t c = 128 * m->qsum[v];
                double x = 254.0 * (double)(S1[r] - c) + (double)(S2[r] - c);
                float av = (float)((double)m->scale[v] * st[i].t * x);
                mms_topk_heap_offer(h, &nh[i], k, mms_topk_key(av, m->perm ? m->perm[v] : v));
            }
        }
    }
    for (int32_t i = 0; i < nq; i++) {
        uint64_t *h = heap + (size_t)i * k;
        mms_topk_heap_sort(h, nh[i]);
        for (int32_t j = 0; j < k; j++) out_rows[(size_t)i * k + j] = (int32_t)mms_topk_key_id(h[j]);
    }
done:
    qstates_free(st, nq);
    free(heap);
    free(nh);
    free(P);
    free(S);
    return s;
}

/* ---------------------------------------------------------------- inverted lists */

/* The queries of each list, a CSR over the nl lists: list l is probed by
 * queries lq[lq_ptr[l] .. lq_ptr[l + 1]) (ascending), so a list's rows are
 * read once for all the batch's queries that probe it, while they sit in L1.
 * Entries -1 or >= nl are skipped. */
static mms_status list_queries(const int32_t *lists, int32_t nq, int32_t nprobe, int32_t nl,
                               int32_t **lq_ptr_out, int32_t **lq_out) {
    int32_t *lq_ptr = NULL, *lq = NULL, *at = NULL;
    mms_status s = mms_calloc((size_t)nl + 1, sizeof *lq_ptr, &lq_ptr);
    if (s == MMS_OK) s = mms_malloc((size_t)nq * nprobe * sizeof *lq + 1, &lq);
    if (s == MMS_OK) s = mms_malloc((size_t)nl * sizeof *at + 1, &at);
    if (s != MMS_OK) {
        free(lq_ptr), free(lq), free(at);
        return s;
    }
    for (size_t e = 0; e < (size_t)nq * nprobe; e++)
        if (lists[e] >= 0 && lists[e] < nl) lq_ptr[lists[e] + 1]++;
    for (int32_t l = 0; l < nl; l++) lq_ptr[l + 1] += lq_ptr[l];
    memcpy(at, lq_ptr, (size_t)nl * sizeof *at);
    for (int32_t i = 0; i < nq; i++)
        for (int32_t j = 0; j < nprobe; j++) {
            int32_t l = lists[(size_t)i * nprobe + j];
            if (l >= 0 && l < nl) lq[at[l]++] = i;
        }
    free(at);
    *lq_ptr_out = lq_ptr;
    *lq_out = lq;
    return MMS_OK;
}

mms_status mms_qmat_topk_lists(const mms_qmat_t *m, const float *X, const int64_t *ids,
                               const float *Q, int32_t nq, int32_t k, const int64_t *exclude_rows,
                               const int32_t *lists, int32_t nprobe, int64_t *out_rows,
                               float *out_scores, mms_qscan_stats_t *stats) {
    MMS_CHECK(m && k >= 1 && nq >= 0 && nprobe >= 0 &&
                  (nq == 0 || (Q && out_rows && out_scores && (lists || nprobe == 0))),
              MMS_ERR_ARG, "qmat topk lists: bad arguments (k %d, nq %d, nprobe %d)", k, nq, nprobe);
    MMS_CHECK(m->lptr && m->nlist > 0, MMS_ERR_ARG, "qmat topk lists: the rows have no inverted lists");
    mms_topk_pad(out_rows, out_scores, (size_t)nq * (size_t)k);
    if (nq == 0 || m->n == 0 || nprobe == 0) return MMS_OK;
    MMS_CHECK(X != NULL, MMS_ERR_ARG, "qmat topk lists: the float rows are needed for the re-rank");
    const int32_t d = m->d, dp = m->dp, nl = m->nlist;
    mms_status s = MMS_OK;
    uint8_t *P = alloc_aligned((size_t)2 * nq * dp); /* two digit rows per query */
    int32_t *S = alloc_aligned((size_t)2 * QG * sizeof(int32_t));
    float *ab = NULL;
    qstate_t *st = NULL;
    cand_t *cs = NULL;
    size_t cs_cap = 0;
    int32_t *lq_ptr = NULL, *lq = NULL;
    int64_t *inlists = NULL;
    if (!P || !S) {
        mms_error_set(MMS_ERR_NOMEM, __FILE__, __LINE__, __func__, "qmat topk lists: out of memory");
        s = MMS_ERR_NOMEM;
        goto done;
    }
    MMS_CALL_GOTO(s, done, mms_malloc(2 * QG * sizeof(float), &ab));
    MMS_CALL_GOTO(s, done, qstates_new(Q, nq, d, dp, k, exclude_rows, P, &st));
    MMS_CALL_GOTO(s, done, mms_calloc((size_t)nq, sizeof *inlists, &inlists));
    /* the queries of each list (CSR): a list's rows are read once for all the
     * batch's queries that probe it, while they sit in L1 */
    MMS_CALL_GOTO(s, done, list_queries(lists, nq, nprobe, nl, &lq_ptr, &lq));
    for (int32_t l = 0; l < nl; l++) {
        if (lq_ptr[l] == lq_ptr[l + 1]) continue;
        const int64_t lo = m->lptr[l], hi = m->lptr[l + 1];
        for (int32_t e = lq_ptr[l]; e < lq_ptr[l + 1]; e++) inlists[lq[e]] += hi - lo;
        for (int64_t g = lo / QG; g * QG < hi; g++) {
            int64_t r0 = (lo > g * QG ? lo : g * QG) - g * QG;
            int64_t r1 = (hi < (g + 1) * QG ? hi : (g + 1) * QG) - g * QG;
            for (int32_t e = lq_ptr[l]; e < lq_ptr[l + 1]; e++) {
                const int32_t i = lq[e];
                const uint8_t *p1 = P + (size_t)2 * i * dp;
                group_dots2(m, g, p1, p1 + dp, S, S + QG);
                MMS_CALL_GOTO(s, done, tile_query(m, &st[i], k, S + r0, S + QG + r0, g * QG + r0,
                                                  (int)(r1 - r0), ab, ab + QG));
            }
        }
    }
    for (int32_t i = 0; i < nq; i++) {
        const float *u = Q + (size_t)i * d;
        const int32_t *li = lists + (size_t)i * nprobe;
        if (stats) stats->rows_scanned += inlists[i];
        int64_t want = st[i].overflow ? inlists[i] : st[i].nc;
        MMS_CALL_GOTO(s, done, mms_grow(&cs, sizeof *cs, (size_t)want + 1, &cs_cap));
        int64_t nc = 0;
        if (st[i].overflow) {
            /* the filter cannot separate this query's rows: every live row of its lists in float */
            for (int32_t j = 0; j < nprobe; j++) {
                int32_t l = li[j];
                if (l < 0 || l >= nl) continue;
                for (int64_t v = m->lptr[l]; v < m->lptr[l + 1]; v++) {
                    int64_t o = m->perm ? m->perm[v] : v;
                    if (o == st[i].ex || (m->dead && m->dead[o])) continue;
                    rescore(X, d, ids, u, o, &cs[nc++]);
                }
            }
        } else {
            nc = rescore_candidates(m, X, ids, u, &st[i], cs);
        }
        take_best(cs, nc, k, out_rows + (size_t)i * k, out_scores + (size_t)i * k);
        if (stats) stats->reranked += nc;
    }
done:
    qstates_free(st, nq);
    free(cs);
    free(ab);
    free(P);
    free(S);
    free(lq_ptr);
    free(lq);
    free(inlists);
    return s;
}

/* ---------------------------------------------------------------- 4-bit list scan */

/* S[r] = sum_j p[j] c_r[j], r < 16: the integer dots of the int8 query p
 * (dp8 bytes, signed) with the 4-bit codes c in [0, 15] of the 16 rows of
 * group gi. */
#if QSCAN_VNNI
static void group_dots4(const mms_qmat_t *m, int64_t gi, const int8_t *p, int32_t *S) {
    const int32_t H = m->dp8 / 8;
    const uint8_t *B = m->q4 + (size_t)gi * MMS_Q4_GROUP(m->dp8);
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, c0 = a0, c1 = a0;
    int32_t h = 0;
    for (; h + 2 <= H; h += 2) { /* two chains per half: the adds' latency overlaps */
        __m512i v = _mm512_load_si512(B + (size_t)h * 64);
        __m512i w = _mm512_load_si512(B + (size_t)(h + 1) * 64);
        a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(v, lo4), bcast4((const uint8_t *)p + 8 * h));
        c0 = _mm512_dpbusd_epi32(c0, _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4),
                                 bcast4((const uint8_t *)p + 8 * h + 4));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(w, lo4), bcast4((const uint8_t *)p + 8 * h + 8));
        c1 = _mm512_dpbusd_epi32(c1, _mm512_and_si512(_mm512_srli_epi16(w, 4), lo4),
                                 bcast4((const uint8_t *)p + 8 * h + 12));
    }
    if (h < H) {
        __m512i v = _mm512_load_si512(B + (size_t)h * 64);
        a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(v, lo4), bcast4((const uint8_t *)p + 8 * h));
        c0 = _mm512_dpbusd_epi32(c0, _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4),
                                 bcast4((const uint8_t *)p + 8 * h + 4));
    }
    _mm512_storeu_si512(S, _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(c0, c1)));
}
#else
static void group_dots4(const mms_qmat_t *m, int64_t gi, const int8_t *p, int32_t *S) {
    const int32_t H = m->dp8 / 8;
    const uint8_t *B = m->q4 + (size_t)gi * MMS_Q4_GROUP(m->dp8);
    for (int r = 0; r < QG; r++) {
        int32_t a = 0;
        for (int32_t h = 0; h < H; h++) {
            const uint8_t *c = B + (size_t)h * 64 + (size_t)r * 4;
            for (int j = 0; j < 4; j++)
                a += (int32_t)p[8 * h + j] * (c[j] & 15) + (int32_t)p[8 * h + 4 + j] * (c[j] >> 4);
        }
        S[r] = a;
    }
}
#endif

typedef struct {
    float t;        /* query step: u ~ t p */
    int32_t sp;     /* sum_j p_j (the codes' +8 offset: p.(c - 8) = p.c - 8 sp) */
    int64_t ex;     /* excluded float row or -1 */
    uint64_t *heap; /* the refine best approximate scores (key: score, int8 row) */
    int32_t nheap;
} q4state_t;

/* Offer row r of group gi with approximate score a to the query's heap;
 * returns the heap's admission threshold after it. */
static inline float offer4(const mms_qmat_t *m, q4state_t *st, int32_t refine, int64_t gi, int r,
                           float a, float thr) {
    int64_t v = gi * QG + r, o = m->perm ? m->perm[v] : v;
    if (o == st->ex || (m->dead && m->dead[o])) return thr;
    if (mms_topk_heap_offer(st->heap, &st->nheap, refine, mms_topk_key(a, v)) && st->nheap == refine)
        thr = mms_topk_key_score(st->heap[0]);
    return thr;
}

/* Rows [r0, r1) of group gi for one query, from its integer dots S[0..16):
 * a = s (t (S - 8 sp)), the same float operations in both branches. */
static void group_offer4(const mms_qmat_t *m, q4state_t *st, int32_t refine, int64_t gi,
                         const int32_t *S, int r0, int r1) {
    const float *s4 = (const float *)(m->q4 + (size_t)gi * MMS_Q4_GROUP(m->dp8) + 8 * (size_t)m->dp8);
    const float t = st->t;
    const int32_t off = 8 * st->sp;
    float thr = st->nheap == refine ? mms_topk_key_score(st->heap[0]) : -INFINITY;
#if QSCAN_VNNI
    /* 16 scores at once; only the rows at or above the threshold go on */
    __m512 a = _mm512_mul_ps(_mm512_load_ps(s4),
                             _mm512_mul_ps(_mm512_set1_ps(t), _mm512_cvtepi32_ps(_mm512_sub_epi32(
                                                                  _mm512_loadu_si512(S), _mm512_set1_epi32(off)))));
    __mmask16 keep = _mm512_cmp_ps_mask(a, _mm512_set1_ps(thr), _CMP_GE_OQ) &
                     (__mmask16)(((1u << r1) - 1u) & ~((1u << r0) - 1u));
    if (!keep) return;
    float av[QG];
    _mm512_storeu_ps(av, a);
    while (keep) {
        int r = __builtin_ctz(keep);
        keep &= (__mmask16)(keep - 1);
        if (av[r] >= thr) thr = offer4(m, st, refine, gi, r, av[r], thr);
    }
#else
    for (int r = r0; r < r1; r++) {
        float a = s4[r] * (t * (float)(S[r] - off));
        if (a >= thr) thr = offer4(m, st, refine, gi, r, a, thr);
    }
#endif
}

mms_status mms_qmat_topk_lists4(const mms_qmat_t *m, const float *X, const int64_t *ids,
                                const float *Q, int32_t nq, int32_t k, int32_t refine,
                                const int64_t *exclude_rows, const int32_t *lists, int32_t nprobe,
                                int64_t *out_rows, float *out_scores, mms_qscan_stats_t *stats) {
    MMS_CHECK(m && k >= 1 && refine >= k && nq >= 0 && nprobe >= 0 &&
                  (nq == 0 || (Q && out_rows && out_scores && (lists || nprobe == 0))),
              MMS_ERR_ARG, "qmat topk lists4: bad arguments (k %d, refine %d, nq %d, nprobe %d)", k,
              refine, nq, nprobe);
    MMS_CHECK(m->lptr && m->nlist > 0 && m->q4, MMS_ERR_ARG,
              "qmat topk lists4: the rows have no inverted lists and codes");
    MMS_CHECK(m->n <= MMS_TOPK_KEY_MAX_ID, MMS_ERR_ARG, "qmat topk lists4: %lld rows in one shard",
              (long long)m->n);
    mms_topk_pad(out_rows, out_scores, (size_t)nq * (size_t)k);
    if (nq == 0 || m->n == 0 || nprobe == 0) return MMS_OK;
    MMS_CHECK(X != NULL, MMS_ERR_ARG, "qmat topk lists4: the float rows are needed for the re-rank");
    const int32_t d = m->d, dp8 = m->dp8, nl = m->nlist;
    mms_status s = MMS_OK;
    int8_t *P = alloc_aligned((size_t)nq * dp8);
    int32_t *S = alloc_aligned(QG * sizeof(int32_t));
    q4state_t *st = NULL;
    cand_t *cs = NULL;
    int32_t *lq_ptr = NULL, *lq = NULL;
    int64_t *inlists = NULL;
    if (!P || !S) {
        mms_error_set(MMS_ERR_NOMEM, __FILE__, __LINE__, __func__, "qmat topk lists4: out of memory");
        s = MMS_ERR_NOMEM;
        goto done;
    }
    MMS_CALL_GOTO(s, done, mms_calloc((size_t)nq, sizeof *st, &st));
    MMS_CALL_GOTO(s, done, mms_calloc((size_t)nq, sizeof *inlists, &inlists));
    MMS_CALL_GOTO(s, done, mms_malloc((size_t)refine * sizeof *cs, &cs));
    for (int32_t i = 0; i < nq; i++) {
        const float *u = Q + (size_t)i * d;
        int8_t *p = P + (size_t)i * dp8;
        float mx = 0;
        for (int32_t j = 0; j < d; j++) mx = fabsf(u[j]) > mx ? fabsf(u[j]) : mx;
        st[i].t = mx / 127.0f;
        st[i].ex = exclude_rows ? exclude_rows[i] : -1;
        int32_t sp = 0;
        for (int32_t j = 0; j < d; j++) {
            long l = st[i].t > 0 ? lrintf(u[j] / st[i].t) : 0;
            p[j] = (int8_t)(l > 127 ? 127 : l < -127 ? -127 : l);
            sp += p[j];
        }
        st[i].sp = sp;
        if (st[i].t > 0) MMS_CALL_GOTO(s, done, mms_malloc((size_t)refine * sizeof *st[i].heap, &st[i].heap));
    }
    MMS_CALL_GOTO(s, done, list_queries(lists, nq, nprobe, nl, &lq_ptr, &lq));
    for (int32_t l = 0; l < nl; l++) {
        if (lq_ptr[l] == lq_ptr[l + 1]) continue;
        const int64_t lo = m->lptr[l], hi = m->lptr[l + 1];
        for (int32_t e = lq_ptr[l]; e < lq_ptr[l + 1]; e++) inlists[lq[e]] += hi - lo;
        for (int64_t g = lo / QG; g * QG < hi; g++) {
            int r0 = (int)((lo > g * QG ? lo : g * QG) - g * QG);
            int r1 = (int)((hi < (g + 1) * QG ? hi : (g + 1) * QG) - g * QG);
            for (int32_t e = lq_ptr[l]; e < lq_ptr[l + 1]; e++) {
                const int32_t i = lq[e];
                if (!st[i].heap) continue; /* a zero query: the int8 list scan below */
                group_dots4(m, g, P + (size_t)i * dp8, S);
                group_offer4(m, &st[i], refine, g, S, r0, r1);
            }
        }
    }
    for (int32_t i = 0; i < nq; i++) {
        const float *u = Q + (size_t)i * d;
        if (!st[i].heap) { /* every approximate score is 0: the exact list scan decides */
            int64_t ex = st[i].ex;
            MMS_CALL_GOTO(s, done, mms_qmat_topk_lists(m, X, ids, u, 1, k, &ex, lists + (size_t)i * nprobe,
                                                       nprobe, out_rows + (size_t)i * k,
                                                       out_scores + (size_t)i * k, stats));
            continue;
        }
        for (int32_t c = 0; c < st[i].nheap; c++) {
            int64_t v = mms_topk_key_id(st[i].heap[c]);
            rescore(X, d, ids, u, m->perm ? m->perm[v] : v, &cs[c]);
        }
        take_best(cs, st[i].nheap, k, out_rows + (size_t)i * k, out_scores + (size_t)i * k);
        if (stats) {
            stats->rows_scanned += inlists[i];
            stats->reranked += st[i].nheap;
        }
    }
done:
    if (st)
        for (int32_t i = 0; i < nq; i++) free(st[i].heap);
    free(st);
    free(cs);
    free(P);
    free(S);
    free(lq_ptr);
    free(lq);
    free(inlists);
    return s;
}

int64_t mms_qmat_lists_rows(const mms_qmat_t *m, const int32_t *lists, int32_t nq, int32_t nprobe) {
    if (!m || !m->lptr || !lists || nq <= 0 || nprobe <= 0) return 0;
    int64_t t = 0;
    for (size_t e = 0; e < (size_t)nq * (size_t)nprobe; e++) {
        const int32_t l = lists[e];
        if (l >= 0 && l < m->nlist) t += m->lptr[l + 1] - m->lptr[l];
    }
    return t;
}

int mms_qmat_lists4_pays(const mms_qmat_t *m, const int32_t *lists, int32_t nq, int32_t nprobe,
                         int32_t k) {
    if (!m || !m->q4 || nq <= 0) return 0;
    return mms_qmat_lists_rows(m, lists, nq, nprobe) >= (int64_t)nq * MMS_QSCAN4_MIN_ROWS((int64_t)k);
}

mms_status mms_scan_float_live(const float *X, int64_t n, int32_t d, const uint8_t *dead,
                               int64_t ndead, const float *Q, int32_t nq, int32_t k,
                               const int64_t *exclude_rows, int64_t *out_rows, float *out_scores) {
    if (!dead || ndead <= 0)
        return mms_topk_scan(X, n, d, NULL, 0, Q, nq, k, exclude_rows, out_rows, out_scores);
    /* the k + ndead best rows hold the k best live ones; drop the dead after */
    int64_t kk64 = (int64_t)k + ndead + 1;
    int32_t kk = (int32_t)(kk64 < n ? kk64 : n > 0 ? n : 1);
    if (kk < k) kk = k;
    int64_t *rows = NULL;
    float *sc = NULL;
    mms_status s = mms_malloc((size_t)nq * kk * sizeof *rows + 1, &rows);
    if (s == MMS_OK) s = mms_malloc((size_t)nq * kk * sizeof *sc + 1, &sc);
    if (s == MMS_OK) s = mms_topk_scan(X, n, d, NULL, 0, Q, nq, kk, exclude_rows, rows, sc);
    if (s == MMS_OK) {
        mms_topk_pad(out_rows, out_scores, (size_t)nq * (size_t)k);
        for (int32_t q = 0; q < nq; q++) {
            int32_t m = 0;
            for (int32_t j = 0; j < kk && m < k; j++) {
                int64_t r = rows[(size_t)q * kk + j];
                if (r < 0 || dead[r]) continue;
                out_rows[(size_t)q * k + m] = r;
                out_scores[(size_t)q * k + m] = sc[(size_t)q * kk + j];
                m++;
            }
        }
    }
    free(rows);
    free(sc);
    return s;
}
