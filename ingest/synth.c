/* synth.c: the synthetic stock-photo catalog generator (see synth.h and
 * docs/synth.md for the generative model). Single-threaded; rows are pure
 * functions of (parameters, seed, index), made a chunk at a time and streamed
 * through the catalog writer. No libm: normals come from a polynomial
 * Box-Muller below, so the output is the same on every IEEE-754 host. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* gcc's ISO mode (-std=c11) already contracts nothing */
#endif
#include "synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mms_array.h"
#include "mms_catalog.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "mms_strmap.h"

/* ------------------------------------------------------------ parameters */

void mms_synth_params_default(mms_synth_params_t *p) {
    memset(p, 0, sizeof *p);
    p->images = 0;
    p->tags = 0;
    p->dim = 512;
    p->knn_dim = 0;
    p->clusters = 0;
    p->topics = 0;
    p->latent_dim = 64;
    p->min_tags = 3;
    p->max_tags = 8;
    p->test_fraction = 0.1;
    p->val_fraction = 0.0;
    p->p_primary = 0.75;
    p->p_blend = 0.1;
    p->p_topic_tag = 0.8;
    p->spread = 0.9;
    p->topic_weight = 0.4;
    p->noise = 0.8;
    p->knn_noise = 0.3;
    p->seed = 1;
    p->chunk_rows = 4096;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Length of each topic's tag list. */
static int32_t topic_list_len(const mms_synth_params_t *p) {
    int64_t s = clamp64(3 * (int64_t)p->tags / p->topics, 8, 256);
    return (int32_t)(s < p->tags ? s : p->tags);
}

mms_status mms_synth_params_resolve(mms_synth_params_t *p) {
    MMS_CHECK(p->images >= 1 && p->images <= (1ll << 40), MMS_ERR_ARG,
              "synth: --images must be in [1, 2^40], got %lld", (long long)p->images);
    MMS_CHECK(p->dim >= 1 && p->dim <= MMS_SYNTH_MAX_DIM, MMS_ERR_ARG,
              "synth: --dim must be in [1, %d], got %d", MMS_SYNTH_MAX_DIM, p->dim);
    MMS_CHECK(p->knn_dim >= 0 && p->knn_dim <= MMS_SYNTH_MAX_DIM, MMS_ERR_ARG,
              "synth: --knn-dim must be 0 (none) or in [1, %d], got %d", MMS_SYNTH_MAX_DIM,
              p->knn_dim);
    MMS_CHECK(p->tags >= 0 && p->tags <= 10000000, MMS_ERR_ARG,
              "synth: --tags must be in [1, 10000000] (or 0 = auto), got %d", p->tags);
    MMS_CHECK(p->clusters >= 0 && p->clusters <= 1000000, MMS_ERR_ARG,
              "synth: --clusters must be in [1, 1000000] (or 0 = auto), got %d", p->clusters);
    MMS_CHECK(p->topics >= 0 && p->topics <= 1000000, MMS_ERR_ARG,
              "synth: --topics must be in [1, 1000000] (or 0 = auto), got %d", p->topics);
    MMS_CHECK(p->latent_dim >= 1 && p->latent_dim <= 4096, MMS_ERR_ARG,
              "synth: --latent-dim must be in [1, 4096], got %d", p->latent_dim);
    MMS_CHECK(p->min_tags >= 1 && p->min_tags <= MMS_SYNTH_MAX_TAGS, MMS_ERR_ARG,
              "synth: --min-tags must be in [1, %d], got %d", MMS_SYNTH_MAX_TAGS, p->min_tags);
    MMS_CHECK(p->max_tags >= p->min_tags && p->max_tags <= MMS_SYNTH_MAX_TAGS, MMS_ERR_ARG,
              "synth: --max-tags must be in [--min-tags = %d, %d], got %d", p->min_tags,
              MMS_SYNTH_MAX_TAGS, p->max_tags);
    MMS_CHECK(p->test_fraction >= 0 && p->test_fraction < 1 && p->val_fraction >= 0 &&
                  p->val_fraction < 1 && p->test_fraction + p->val_fraction < 1,
              MMS_ERR_ARG,
              "synth: --test-fraction (%g) and --val-fraction (%g) must be in [0, 1) and leave "
              "some images for training (sum < 1)",
              p->test_fraction, p->val_fraction);
    const struct {
        const char *name;
        double v, hi;
    } reals[] = {{"p-primary", p->p_primary, 1},         {"p-blend", p->p_blend, 1},
                 {"p-topic-tag", p->p_topic_tag, 1},     {"spread", p->spread, 100},
                 {"topic-weight", p->topic_weight, 100}, {"noise", p->noise, 100},
                 {"knn-noise", p->knn_noise, 100}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        MMS_CHECK(reals[i].v >= 0 && reals[i].v <= reals[i].hi, MMS_ERR_ARG,
                  "synth: --%s must be in [0, %g], got %g", reals[i].name, reals[i].hi, reals[i].v);
    MMS_CHECK(p->chunk_rows >= 1 && p->chunk_rows <= (1 << 20), MMS_ERR_ARG,
              "synth: --chunk-rows must be in [1, 1048576], got %d", p->chunk_rows);
    if (p->tags == 0) p->tags = (int32_t)clamp64(p->images / 50, 200, 20000);
    if (p->clusters == 0) p->clusters = (int32_t)clamp64(p->images / 100, 8, 5000);
    if (p->topics == 0) p->topics = (int32_t)clamp64(p->clusters / 4, 2, 1000);
    /* the tables must stay small: they are the only state besides one chunk */
    double floats = ((double)p->clusters + p->topics + p->dim + p->knn_dim) * p->latent_dim +
                    (double)p->topics * topic_list_len(p);
    MMS_CHECK(floats <= (double)(1 << 28), MMS_ERR_ARG,
              "synth: model tables would need %.1f GiB ((clusters + topics + dim + knn-dim) x "
              "latent-dim floats); reduce --clusters, --topics or --latent-dim",
              floats * 4 / (1 << 30));
    return MMS_OK;
}

/* ------------------------------------------------------------ fast normals */

/* ln(k / 2^24) for integer k in [1, 2^24], absolute error ~1e-7: exponent from
 * the float bits, ln of the mantissa in [1/sqrt2, sqrt2) by the atanh series
 * 2 (s + s^3/3 + ... + s^9/9), s = (m-1)/(m+1), |s| < 0.172 (truncation < 1e-9). */
static inline float ln_u24(uint32_t k) {
    float f = (float)k;
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    int32_t e = (int32_t)(b >> 23) - 127;
    b = (b & 0x007FFFFFu) | 0x3F800000u;
    float m;
    memcpy(&m, &b, sizeof m);
    int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e += big;
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float lnm =
        2.0f * s * (1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9)))));
    return (float)(e - 24) * 0.6931471805599453f + lnm;
}

/* Box-Muller on pairs of 32-bit words, without libm: radius sqrt(-2 ln u1) with
 * u1 = (top 24 bits + 1) / 2^24 in (0, 1] (so |z| <= 5.77: the tail beyond
 * has mass 8e-9), angle psi uniform in [-pi/2, pi/2) from 23 bits with a
 * random sign on the cosine (the same as a uniform angle on the circle), and
 * Taylor sin/cos to degree 11/12 (error < 6e-8 on that interval). */
#define NORMAL_BATCH 256

/* sqrt(v) for v in [0, 34]: a bit-level first guess (error < 4%) and three
 * Newton steps, ~1 ulp. Plain arithmetic, unlike sqrtf (errno), so the loop
 * below vectorises; v <= 0 gives a tiny positive number instead of 0. */
static inline float sqrt_pos(float v) {
    v = v > 0.0f ? v : 0.0f;
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    b = 0x1FBD1DF5u + (b >> 1);
    float y;
    memcpy(&y, &b, sizeof y);
    y = 0.5f * (y + v / y);
    y = 0.5f * (y + v / y);
    y = 0.5f * (y + v / y);
    return y;
}

/* n even, at most NORMAL_BATCH. Written as straight-line loops over arrays so
 * the compiler can vectorise them (no libm call, no data-dependent branch). */
static void box_muller(const uint32_t *restrict u, float *restrict z, int32_t n) {
    float c[NORMAL_BATCH / 2], s[NORMAL_BATCH / 2];
    int32_t h = n / 2;
    for (int32_t q = 0; q < h; q++) {
        uint32_t a = u[2 * q], b = u[2 * q + 1];
        float r = sqrt_pos(-2.0f * ln_u24((a >> 8) + 1u));
        float x = ((float)(b >> 9) * (1.0f / 8388608.0f) - 0.5f) * 3.14159265358979f;
        float x2 = x * x;
        /* Taylor coefficients (-1)^k / (2k+1)! and (-1)^k / (2k)!, Horner order */
        float sn = -2.5052108e-8f;
        sn = 2.7557319e-6f + x2 * sn;
        sn = -1.9841270e-4f + x2 * sn;
        sn = 8.3333333e-3f + x2 * sn;
        sn = -1.6666667e-1f + x2 * sn;
        sn = x * (1.0f + x2 * sn);
        float cs = 2.0876757e-9f;
        cs = -2.7557319e-7f + x2 * cs;
        cs = 2.4801587e-5f + x2 * cs;
        cs = -1.3888889e-3f + x2 * cs;
        cs = 4.1666667e-2f + x2 * cs;
        cs = -0.5f + x2 * cs;
        cs = 1.0f + x2 * cs;
        float sign = 1.0f - (float)((b >> 7) & 2u); /* bit 8: +1 or -1 */
        c[q] = r * cs * sign;
        s[q] = r * sn;
    }
    for (int32_t q = 0; q < h; q++) {
        z[2 * q] = c[q];
        z[2 * q + 1] = s[q];
    }
}

/* n standard normals for (seed, index) starting at Philox block ctr0: normal j
 * always comes from 32-bit words 2*(j/2) and 2*(j/2)+1 of that sequence, so
 * the values do not depend on n or on how calls are split. */
static void fill_normals(uint64_t seed, uint64_t index, uint64_t ctr0, float *out, int32_t n) {
    mms_rng_t r;
    mms_rng_init(&r, seed, MMS_STREAM_SYNTH, index);
    mms_rng_seek(&r, ctr0);
    uint32_t u[NORMAL_BATCH];
    float z[NORMAL_BATCH];
    for (int32_t off = 0; off < n; off += NORMAL_BATCH) {
        int32_t k = n - off < NORMAL_BATCH ? n - off : NORMAL_BATCH;
        int32_t k2 = (k + 1) & ~1;
        for (int32_t j = 0; j < k2; j++) u[j] = mms_rng_u32(&r);
        box_muller(u, z, k2);
        memcpy(out + off, z, (size_t)k * sizeof *out);
    }
}

/* ------------------------------------------------------------ alias tables */

/* Walker/Vose alias table: O(1) draws from a fixed discrete distribution. */
typedef struct {
    int32_t n;
    uint32_t *thr;  /* accept column i when a 32-bit word < thr[i] */
    int32_t *alias; /* otherwise take alias[i] */
} alias_t;

static void alias_free(alias_t *a) {
    mms_free(&a->thr);
    mms_free(&a->alias);
}

/* Weights w[0..n) >= 0 with a positive sum. Deterministic (plain IEEE double). */
static mms_status alias_build(alias_t *a, const double *w, int32_t n) {
    mms_status s = MMS_OK;
    double *q = NULL;
    int32_t *small = NULL, *large = NULL;
    a->n = n;
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)n * sizeof *a->thr, &a->thr));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)n * sizeof *a->alias, &a->alias));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)n * sizeof *q, &q));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)n * sizeof *small, &small));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)n * sizeof *large, &large));
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += w[i];
    MMS_CHECK_GOTO(s, out, sum > 0, MMS_ERR_INTERNAL, "alias table with zero total weight");
    int32_t ns = 0, nl = 0;
    for (int32_t i = 0; i < n; i++) {
        q[i] = w[i] * n / sum;
        a->alias[i] = i;
        if (q[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        int32_t sm = small[--ns], lg = large[nl - 1];
        a->thr[sm] = (uint32_t)(q[sm] * 4294967296.0);
        a->alias[sm] = lg;
        q[lg] -= 1.0 - q[sm];
        if (q[lg] < 1.0) {
            nl--;
            small[ns++] = lg;
        }
    }
    /* what is left is 1 up to rounding: always accept */
    while (nl > 0) a->thr[large[--nl]] = 0xFFFFFFFFu;
    while (ns > 0) a->thr[small[--ns]] = 0xFFFFFFFFu;
out:
    mms_free(&q);
    mms_free(&small);
    mms_free(&large);
    if (s != MMS_OK) alias_free(a);
    return s;
}

static int32_t alias_draw(const alias_t *a, mms_rng_t *r) {
    int32_t i = (int32_t)mms_rng_below(r, (uint32_t)a->n);
    uint32_t u = mms_rng_u32(r);
    return u < a->thr[i] || a->thr[i] == 0xFFFFFFFFu ? i : a->alias[i];
}

/* ------------------------------------------------------------ the model */

/* RNG index spaces under MMS_STREAM_SYNTH: image i uses index i (Philox block
 * regions below); model tables use index TABLE(t, j), far above any image. */
#define TABLE(t, j) ((1ull << 62) | ((uint64_t)(t) << 40) | (uint64_t)(j))
enum {
    T_CENTRE = 1,  /* j = cluster: L normals */
    T_TOPIC = 2,   /* j = topic: L normals */
    T_CLUSTER = 3, /* j = cluster: spread factor, primary topic */
    T_LIST = 4,    /* j = topic: its tag list */
    T_PROJ_A = 5,  /* j = latent row: D normals */
    T_DIMS_A = 6,  /* j = output dim: noise scale, channel gain */
    T_PROJ_B = 7,
    T_DIMS_B = 8,
    T_NAME = 9 /* j = tag: name syllables (seed-independent) */
};
/* Philox block regions of image i's sequence. */
#define R_META 0ull           /* cluster, topic, blend, exposure, tag count */
#define R_LATENT (1ull << 20) /* L normals: own variation */
#define R_TAGS (1ull << 24)   /* tag draws */
#define R_NOISE_A (1ull << 32)
#define R_NOISE_B (1ull << 40)
#define NAME_SEED 0x6D6D73616765ull /* tag names do not depend on --seed */

typedef struct {
    int32_t dim;
    float *proj;  /* L x dim: output = proj^T latent */
    float *noise; /* dim: per-dimension noise std (anisotropic) */
    float *gain;  /* dim: channel gain after the ReLU */
} space_t;

struct mms_synth_model {
    mms_synth_params_t p; /* resolved */
    int32_t list_len;     /* S: tags per topic list */
    alias_t cluster_prior, tag_prior, list_pos;
    float *centre;    /* C x L, unit norm */
    float *topic_dir; /* K x L, unit norm */
    float *profile;   /* L: latent spectrum, a_l ~ 1/sqrt(l+1), mean square 1 */
    float *spread;    /* C: per-cluster spread of the own variation */
    int32_t *primary; /* C: primary topic */
    int32_t *list;    /* K x S: tag lists, position 0 = the topic's strongest tag */
    space_t a, b;
    char *names;       /* T NUL-terminated names */
    int64_t *name_off; /* T */
};

static const char *const k_onset[] = {"b",  "c",  "d",  "f",  "g",  "h",  "j",  "k", "l",  "m",
                                      "n",  "p",  "r",  "s",  "t",  "v",  "w",  "z", "br", "ch",
                                      "cr", "dr", "fl", "gr", "pl", "sh", "st", "tr"};
static const char *const k_vowel[] = {"a", "e", "i", "o",  "u",  "a",
                                      "e", "i", "o", "ai", "ea", "ou"};
static const char *const k_coda[] = {"", "", "", "", "n", "r", "s", "l", "m", "t", "nd", "st"};
#define NELEM(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

/* A word-like name from r: 2 syllables (3/4), 3 (3/16) or 4 (1/16), and an
 * optional final consonant, e.g. "lomad", "trevisa". */
static void make_name(mms_rng_t *r, char *buf, size_t cap) {
    uint32_t u = mms_rng_u32(r);
    int nsyl = (u & 3u) ? 2 : ((u >> 2) & 3u) ? 3 : 4;
    size_t len = 0;
    buf[0] = '\0';
    for (int s = 0; s < nsyl; s++) {
        const char *on = k_onset[mms_rng_below(r, NELEM(k_onset))];
        const char *vo = k_vowel[mms_rng_below(r, NELEM(k_vowel))];
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", on, vo);
    }
    snprintf(buf + len, cap - len, "%s", k_coda[mms_rng_below(r, NELEM(k_coda))]);
}

static mms_status build_names(mms_synth_model_t *m) {
    int32_t T = m->p.tags;
    mms_strmap_t *seen = NULL;
    mms_status s = MMS_OK;
    size_t cap = (size_t)T * 16 + 64, used = 0;
    MMS_CALL_GOTO(s, out, mms_malloc(cap, &m->names));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)T * sizeof *m->name_off, &m->name_off));
    MMS_CALL_GOTO(s, out, mms_strmap_create((size_t)T, &seen));
    for (int32_t t = 0; t < T; t++) {
        mms_rng_t r;
        mms_rng_init(&r, NAME_SEED, MMS_STREAM_SYNTH, TABLE(T_NAME, t));
        char name[96];
        int inserted = 0;
        for (int attempt = 0; attempt < 32 && !inserted; attempt++) {
            make_name(&r, name, sizeof name);
            MMS_CALL_GOTO(s, out, mms_strmap_put(seen, name, strlen(name), t, &inserted, NULL));
        }
        if (!inserted) { /* letters + digits of t: cannot collide with a letters-only name */
            size_t l = strlen(name);
            snprintf(name + l, sizeof name - l, "%d", t);
            MMS_CALL_GOTO(s, out, mms_strmap_put(seen, name, strlen(name), t, &inserted, NULL));
            MMS_CHECK_GOTO(s, out, inserted, MMS_ERR_INTERNAL, "tag name '%s' repeated", name);
        }
        size_t l = strlen(name) + 1;
        MMS_CALL_GOTO(s, out, mms_grow(&m->names, 1, used + l, &cap));
        memcpy(m->names + used, name, l);
        m->name_off[t] = (int64_t)used;
        used += l;
    }
out:
    mms_strmap_destroy(&seen);
    return s;
}

/* Unit-norm rows (rows x L) of normals shaped by the latent spectrum. */
static void unit_rows(uint64_t seed, int t, const float *profile, float *v, int32_t rows,
                      int32_t L) {
    for (int32_t j = 0; j < rows; j++) {
        float *x = v + (size_t)j * (size_t)L;
        fill_normals(seed, TABLE(t, j), 0, x, L);
        for (int32_t l = 0; l < L; l++) x[l] *= profile[l];
        double n2 = 0;
        for (int32_t l = 0; l < L; l++) n2 += (double)x[l] * x[l];
        float inv = n2 > 0 ? (float)(1.0 / __builtin_sqrt(n2)) : 0.0f;
        for (int32_t l = 0; l < L; l++) x[l] *= inv;
    }
}

/* One "network": a random projection of the latent (entries N(0, 1), so an
 * output dimension has the latent's squared norm as variance), per-dimension
 * noise of std noise * typical latent norm * a in [0.5, 1.5] (mean square 1),
 * and a channel gain in [0.4, 1.6] applied after the ReLU. */
static mms_status build_space(space_t *sp, uint64_t seed, int tproj, int tdims, int32_t dim,
                              int32_t L, double noise, double latent_norm) {
    sp->dim = dim;
    MMS_CALL(mms_malloc((size_t)L * (size_t)dim * sizeof *sp->proj, &sp->proj));
    MMS_CALL(mms_malloc((size_t)dim * sizeof *sp->noise, &sp->noise));
    MMS_CALL(mms_malloc((size_t)dim * sizeof *sp->gain, &sp->gain));
    for (int32_t l = 0; l < L; l++)
        fill_normals(seed, TABLE(tproj, l), 0, sp->proj + (size_t)l * dim, dim);
    const double ms = 13.0 / 12.0; /* E[(0.5 + U)^2] */
    for (int32_t j = 0; j < dim; j++) {
        mms_rng_t r;
        mms_rng_init(&r, seed, MMS_STREAM_SYNTH, TABLE(tdims, j));
        double a = 0.5 + mms_rng_uniform(&r);
        sp->noise[j] = (float)(noise * latent_norm * a / __builtin_sqrt(ms));
        sp->gain[j] = (float)(0.4 + 1.2 * mms_rng_uniform(&r));
    }
    return MMS_OK;
}

static void free_space(space_t *sp) {
    mms_free(&sp->proj);
    mms_free(&sp->noise);
    mms_free(&sp->gain);
}

/* Topic k's list: S distinct tags drawn from a flattened Zipf prior (weight
 * 1/sqrt(rank+1), so popular tags belong to many topics), then shuffled so a
 * topic's strongest tag is not simply a globally popular one. */
static void build_list(const mms_synth_model_t *m, const alias_t *flat, int32_t k, uint8_t *used,
                       int32_t *list) {
    int32_t S = m->list_len, T = m->p.tags;
    mms_rng_t r;
    mms_rng_init(&r, m->p.seed, MMS_STREAM_SYNTH, TABLE(T_LIST, k));
    for (int32_t j = 0; j < S; j++) {
        int32_t t = -1;
        for (int attempt = 0; attempt < 64 && t < 0; attempt++) {
            int32_t c = alias_draw(flat, &r);
            if (!used[c]) t = c;
        }
        if (t < 0) { /* the prior is nearly exhausted: next unused from a random start */
            t = (int32_t)mms_rng_below(&r, (uint32_t)T);
            while (used[t]) t = (t + 1) % T;
        }
        used[t] = 1;
        list[j] = t;
    }
    for (int32_t j = S - 1; j > 0; j--) {
        int32_t o = (int32_t)mms_rng_below(&r, (uint32_t)j + 1), tmp = list[j];
        list[j] = list[o];
        list[o] = tmp;
    }
    for (int32_t j = 0; j < S; j++) used[list[j]] = 0;
}

typedef struct {
    double f;
    int32_t t;
} keyed_t;

/* Descending key, ties by ascending index: a total order, so qsort is deterministic. */
static int cmp_keyed(const void *a, const void *b) {
    const keyed_t *x = a, *y = b;
    if (x->f != y->f) return x->f > y->f ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}

/* Relabel tags so that index = expected popularity rank, then build the global
 * noise-tag prior (Zipf over the original draw index, weight 1/(t+1)). The
 * expected frequency of a tag is p_topic_tag * sum over topics of P(topic) *
 * P(its list position) + (1 - p_topic_tag) * its Zipf weight; P(topic) follows
 * from the cluster prior, the primary topics and p_primary. w is scratch of
 * max(C, T) doubles. */
static mms_status rank_tags(mms_synth_model_t *m, double *w) {
    const mms_synth_params_t *q = &m->p;
    int32_t C = q->clusters, K = q->topics, T = q->tags, S = m->list_len;
    double *ptopic = NULL;
    keyed_t *f = NULL;
    int32_t *rank_of = NULL;
    mms_status s = MMS_OK;
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)K, sizeof *ptopic, &ptopic));
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)T, sizeof *f, &f));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)T * sizeof *rank_of, &rank_of));
    double wc = 0, ht = 0, hs = 0;
    for (int32_t c = 0; c < C; c++) wc += 1.0 / __builtin_sqrt((double)c + 1.0);
    double other = K > 1 ? (1.0 - q->p_primary) / (K - 1) : 0.0;
    double own = K > 1 ? q->p_primary : 1.0;
    for (int32_t k = 0; k < K; k++) ptopic[k] = other;
    for (int32_t c = 0; c < C; c++)
        ptopic[m->primary[c]] += (own - other) / __builtin_sqrt((double)c + 1.0) / wc;
    for (int32_t t = 0; t < T; t++) ht += 1.0 / (t + 1.0);
    for (int32_t j = 0; j < S; j++) hs += 1.0 / (j + 1.0);
    for (int32_t t = 0; t < T; t++) {
        f[t].t = t;
        f[t].f = (1.0 - q->p_topic_tag) / ((t + 1.0) * ht);
    }
    for (int32_t k = 0; k < K; k++)
        for (int32_t j = 0; j < S; j++)
            f[m->list[(size_t)k * S + j]].f += q->p_topic_tag * ptopic[k] / ((j + 1.0) * hs);
    qsort(f, (size_t)T, sizeof *f, cmp_keyed);
    for (int32_t r = 0; r < T; r++) rank_of[f[r].t] = r;
    for (size_t i = 0; i < (size_t)K * S; i++) m->list[i] = rank_of[m->list[i]];
    for (int32_t r = 0; r < T; r++) w[r] = 1.0 / (f[r].t + 1.0);
    MMS_CALL_GOTO(s, out, alias_build(&m->tag_prior, w, T));
out:
    mms_free(&ptopic);
    mms_free(&f);
    mms_free(&rank_of);
    return s;
}

void mms_synth_model_destroy(mms_synth_model_t **mp) {
    if (!mp || !*mp) return;
    mms_synth_model_t *m = *mp;
    alias_free(&m->cluster_prior);
    alias_free(&m->tag_prior);
    alias_free(&m->list_pos);
    mms_free(&m->centre);
    mms_free(&m->topic_dir);
    mms_free(&m->profile);
    mms_free(&m->spread);
    mms_free(&m->primary);
    mms_free(&m->list);
    free_space(&m->a);
    free_space(&m->b);
    mms_free(&m->names);
    mms_free(&m->name_off);
    free(m);
    *mp = NULL;
}

mms_status mms_synth_model_create(const mms_synth_params_t *p, mms_synth_model_t **out) {
    *out = NULL;
    mms_synth_model_t *m;
    MMS_CALL(mms_calloc(1, sizeof *m, &m));
    mms_status s = MMS_OK;
    double *w = NULL;
    uint8_t *used = NULL;
    alias_t flat = {0, NULL, NULL};
    m->p = *p;
    MMS_CALL_GOTO(s, fail, mms_synth_params_resolve(&m->p));
    const mms_synth_params_t *q = &m->p;
    int32_t C = q->clusters, K = q->topics, T = q->tags, L = q->latent_dim;
    m->list_len = topic_list_len(q);
    int32_t S = m->list_len;
    int32_t wn = C > T ? C : T;
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)wn * sizeof *w, &w));

    /* cluster sizes: mild power law, weight 1/sqrt(c+1) */
    for (int32_t c = 0; c < C; c++) w[c] = 1.0 / __builtin_sqrt((double)c + 1.0);
    MMS_CALL_GOTO(s, fail, alias_build(&m->cluster_prior, w, C));
    /* position within a topic's list: Zipf over S positions */
    for (int32_t j = 0; j < S; j++) w[j] = 1.0 / ((double)j + 1.0);
    MMS_CALL_GOTO(s, fail, alias_build(&m->list_pos, w, S));
    /* which tags a topic lists: flattened Zipf */
    for (int32_t t = 0; t < T; t++) w[t] = 1.0 / __builtin_sqrt((double)t + 1.0);
    MMS_CALL_GOTO(s, fail, alias_build(&flat, w, T));

    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)C * (size_t)L * sizeof *m->centre, &m->centre));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)K * (size_t)L * sizeof *m->topic_dir, &m->topic_dir));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)C * sizeof *m->spread, &m->spread));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)C * sizeof *m->primary, &m->primary));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)K * (size_t)S * sizeof *m->list, &m->list));
    /* a few strong latent factors and many weak ones: variance 1/(l+1) */
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)L * sizeof *m->profile, &m->profile));
    double h = 0;
    for (int32_t l = 0; l < L; l++) h += 1.0 / (l + 1.0);
    for (int32_t l = 0; l < L; l++) m->profile[l] = (float)__builtin_sqrt(L / (h * (l + 1.0)));
    unit_rows(q->seed, T_CENTRE, m->profile, m->centre, C, L);
    unit_rows(q->seed, T_TOPIC, m->profile, m->topic_dir, K, L);
    for (int32_t c = 0; c < C; c++) {
        mms_rng_t r;
        mms_rng_init(&r, q->seed, MMS_STREAM_SYNTH, TABLE(T_CLUSTER, c));
        /* tight and diffuse clusters: spread x [0.6, 1.4]; the variation is L
         * normals (norm ~ sqrt(L)) scaled to norm ~spread */
        m->spread[c] =
            (float)(q->spread * (0.6 + 0.8 * mms_rng_uniform(&r)) / __builtin_sqrt((double)L));
        m->primary[c] = (int32_t)mms_rng_below(&r, (uint32_t)K);
    }
    MMS_CALL_GOTO(s, fail, mms_calloc((size_t)T, 1, &used));
    for (int32_t k = 0; k < K; k++) build_list(m, &flat, k, used, m->list + (size_t)k * S);
    MMS_CALL_GOTO(s, fail, rank_tags(m, w));

    /* typical latent norm: unit centre + topic + own variation, roughly orthogonal */
    double latent_norm =
        __builtin_sqrt(1.0 + q->topic_weight * q->topic_weight + q->spread * q->spread);
    MMS_CALL_GOTO(
        s, fail, build_space(&m->a, q->seed, T_PROJ_A, T_DIMS_A, q->dim, L, q->noise, latent_norm));
    if (q->knn_dim > 0)
        MMS_CALL_GOTO(s, fail,
                      build_space(&m->b, q->seed, T_PROJ_B, T_DIMS_B, q->knn_dim, L, q->knn_noise,
                                  latent_norm));
    MMS_CALL_GOTO(s, fail, build_names(m));
    mms_free(&w);
    mms_free(&used);
    alias_free(&flat);
    *out = m;
    return MMS_OK;
fail:
    mms_free(&w);
    mms_free(&used);
    alias_free(&flat);
    mms_synth_model_destroy(&m);
    return s;
}

const char *mms_synth_model_tag_name(const mms_synth_model_t *m, int32_t t) {
    return t >= 0 && t < m->p.tags ? m->names + m->name_off[t] : "?";
}

/* ------------------------------------------------------------ one image */

/* Scratch for one call of model_rows: latent, normals, pre-activation. */
typedef struct {
    float *latent, *e, *z, *n;
} scratch_t;

/* out[0..dim) = exposure * gain * ReLU(proj^T latent + noise * normals). */
static void render(const space_t *sp, const float *latent, int32_t L, uint64_t seed, uint64_t index,
                   uint64_t region, float exposure, scratch_t *w, float *restrict out) {
    int32_t D = sp->dim;
    float *restrict z = w->z, *restrict nz = w->n;
    const float *restrict noise = sp->noise, *restrict gain = sp->gain;
    memset(z, 0, (size_t)D * sizeof *z);
    for (int32_t l = 0; l < L; l++) { /* z = proj^T latent, one fixed summation order */
        const float *restrict pr = sp->proj + (size_t)l * (size_t)D;
        float s = latent[l];
        for (int32_t j = 0; j < D; j++) z[j] += s * pr[j];
    }
    fill_normals(seed, index, region, nz, D);
    for (int32_t j = 0; j < D; j++) {
        float v = z[j] + noise[j] * nz[j];
        v = v > 0.0f ? v : 0.0f;
        out[j] = exposure * gain[j] * v;
    }
}

static int has_tag(const int32_t *tags, int32_t n, int32_t t) {
    for (int32_t i = 0; i < n; i++)
        if (tags[i] == t) return 1;
    return 0;
}

static void one_image(const mms_synth_model_t *m, int64_t i, float *x, float *knn_x,
                      mms_synth_image_t *info, scratch_t *w) {
    const mms_synth_params_t *q = &m->p;
    int32_t C = q->clusters, K = q->topics, L = q->latent_dim, T = q->tags;
    mms_synth_image_t im;
    memset(&im, 0, sizeof im); /* unused tag slots are 0: rows compare bytewise */
    mms_rng_t r;
    mms_rng_init(&r, q->seed, MMS_STREAM_SYNTH, (uint64_t)i);
    im.cluster = alias_draw(&m->cluster_prior, &r);
    im.topic = m->primary[im.cluster];
    if (mms_rng_uniformf(&r) >= q->p_primary && K > 1) { /* another topic, uniformly */
        int32_t t = (int32_t)mms_rng_below(&r, (uint32_t)K - 1);
        im.topic = t >= im.topic ? t + 1 : t;
    }
    im.blend = -1;
    float mix = 1.0f;
    if (mms_rng_uniformf(&r) < q->p_blend && C > 1) {
        int32_t c2 = alias_draw(&m->cluster_prior, &r);
        if (c2 == im.cluster)
            c2 = (int32_t)((im.cluster + 1 + (int32_t)mms_rng_below(&r, (uint32_t)C - 1)) % C);
        im.blend = c2;
        mix = 0.55f + 0.35f * mms_rng_uniformf(&r);
    }
    float exposure = 0.75f + 0.5f * mms_rng_uniformf(&r);
    int32_t nt =
        q->min_tags + (int32_t)mms_rng_below(&r, (uint32_t)(q->max_tags - q->min_tags + 1));
    im.ntags = nt < T ? nt : T;
    uint64_t h = mms_rng_hash(q->seed, MMS_STREAM_SPLIT, (uint64_t)i, 0);
    double u = mms_rng_unit(h);
    im.split = i == 0                                   ? MMS_SPLIT_TRAIN
               : u < q->test_fraction                   ? MMS_SPLIT_TEST
               : u < q->test_fraction + q->val_fraction ? MMS_SPLIT_VAL
                                                        : MMS_SPLIT_TRAIN;

    /* tags: from the topic's list (Zipf over positions) or global Zipf noise;
     * a repeat is redrawn, and after 32 tries the next unused tag is taken */
    mms_rng_seek(&r, R_TAGS);
    const int32_t *list = m->list + (size_t)im.topic * (size_t)m->list_len;
    for (int32_t k = 0; k < im.ntags; k++) {
        int32_t t = -1;
        for (int attempt = 0; attempt < 32 && t < 0; attempt++) {
            int32_t c = mms_rng_uniformf(&r) < q->p_topic_tag ? list[alias_draw(&m->list_pos, &r)]
                                                              : alias_draw(&m->tag_prior, &r);
            if (!has_tag(im.tags, k, c)) t = c;
        }
        if (t < 0) {
            t = (int32_t)mms_rng_below(&r, (uint32_t)T);
            while (has_tag(im.tags, k, t)) t = (t + 1) % T;
        }
        im.tags[k] = t;
    }
    if (info) *info = im;
    if (!x && !(knn_x && q->knn_dim > 0)) return;

    /* latent = unit(mix c + (1-mix) c2) + topic_weight * topic + spread_c * e */
    float *lat = w->latent;
    const float *c1 = m->centre + (size_t)im.cluster * (size_t)L;
    if (im.blend >= 0) {
        const float *c2 = m->centre + (size_t)im.blend * (size_t)L;
        double n2 = 0;
        for (int32_t l = 0; l < L; l++) {
            lat[l] = mix * c1[l] + (1.0f - mix) * c2[l];
            n2 += (double)lat[l] * lat[l];
        }
        float inv = n2 > 0 ? (float)(1.0 / __builtin_sqrt(n2)) : 0.0f;
        for (int32_t l = 0; l < L; l++) lat[l] *= inv;
    } else {
        memcpy(lat, c1, (size_t)L * sizeof *lat);
    }
    const float *td = m->topic_dir + (size_t)im.topic * (size_t)L;
    float tw = (float)q->topic_weight, sp = m->spread[im.cluster];
    fill_normals(q->seed, (uint64_t)i, R_LATENT, w->e, L);
    for (int32_t l = 0; l < L; l++) lat[l] += tw * td[l] + sp * m->profile[l] * w->e[l];
    if (x) render(&m->a, lat, L, q->seed, (uint64_t)i, R_NOISE_A, exposure, w, x);
    if (knn_x && q->knn_dim > 0)
        render(&m->b, lat, L, q->seed, (uint64_t)i, R_NOISE_B, exposure, w, knn_x);
}

mms_status mms_synth_model_rows(const mms_synth_model_t *m, int64_t first, int64_t count, float *x,
                                float *knn_x, mms_synth_image_t *info) {
    const mms_synth_params_t *q = &m->p;
    MMS_CHECK(first >= 0 && count >= 0 && first + count <= q->images, MMS_ERR_ARG,
              "synth: rows [%lld, %lld) are outside the catalog's %lld images", (long long)first,
              (long long)(first + count), (long long)q->images);
    int32_t wide = q->dim > q->knn_dim ? q->dim : q->knn_dim;
    scratch_t w = {NULL, NULL, NULL, NULL};
    float *block;
    size_t L = (size_t)q->latent_dim;
    MMS_CALL(mms_malloc((2 * L + 2 * (size_t)wide) * sizeof *block, &block));
    w.latent = block;
    w.e = block + L;
    w.z = block + 2 * L;
    w.n = block + 2 * L + (size_t)wide;
    for (int64_t r = 0; r < count; r++)
        one_image(m, first + r, x ? x + (size_t)r * (size_t)q->dim : NULL,
                  knn_x && q->knn_dim > 0 ? knn_x + (size_t)r * (size_t)q->knn_dim : NULL,
                  info ? info + r : NULL, &w);
    free(block);
    return MMS_OK;
}

/* ------------------------------------------------------------ the catalog */

static mms_status set_manifest(mms_catalog_writer_t *cw, const mms_synth_params_t *q) {
    char buf[64];
    MMS_CALL(mms_catalog_writer_set_int(cw, "synth.format", MMS_SYNTH_FORMAT));
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)q->seed);
    MMS_CALL(mms_catalog_writer_set_str(cw, "synth.seed", buf));
    MMS_CALL(mms_catalog_writer_set_int(cw, "synth.tags", q->tags));
    MMS_CALL(mms_catalog_writer_set_int(cw, "synth.clusters", q->clusters));
    MMS_CALL(mms_catalog_writer_set_int(cw, "synth.topics", q->topics));
    MMS_CALL(mms_catalog_writer_set_int(cw, "synth.latent_dim", q->latent_dim));
    MMS_CALL(mms_catalog_writer_set_int(cw, "synth.min_tags", q->min_tags));
    MMS_CALL(mms_catalog_writer_set_int(cw, "synth.max_tags", q->max_tags));
    const struct {
        const char *key;
        double v;
    } reals[] = {{"synth.test_fraction", q->test_fraction}, {"synth.val_fraction", q->val_fraction},
                 {"synth.p_primary", q->p_primary},         {"synth.p_blend", q->p_blend},
                 {"synth.p_topic_tag", q->p_topic_tag},     {"synth.spread", q->spread},
                 {"synth.topic_weight", q->topic_weight},   {"synth.noise", q->noise},
                 {"synth.knn_noise", q->knn_noise}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        snprintf(buf, sizeof buf, "%.17g", reals[i].v);
        MMS_CALL(mms_catalog_writer_set_str(cw, reals[i].key, buf));
    }
    return MMS_OK;
}

/* Add one generated row to the writer: id, split, tag names, truth objects. */
static mms_status add_row(mms_catalog_writer_t *cw, const mms_synth_model_t *m, int64_t i, int idw,
                          const float *x, const float *kx, const mms_synth_image_t *im) {
    char id[32], objbuf[3][32];
    const char *tags[MMS_SYNTH_MAX_TAGS], *objs[3];
    int counts[3] = {1, 1, 1};
    snprintf(id, sizeof id, "img%0*lld", idw, (long long)i);
    for (int32_t k = 0; k < im->ntags; k++) tags[k] = mms_synth_model_tag_name(m, im->tags[k]);
    snprintf(objbuf[0], sizeof objbuf[0], "cluster_%d", im->cluster);
    snprintf(objbuf[1], sizeof objbuf[1], "topic_%d", im->topic);
    snprintf(objbuf[2], sizeof objbuf[2], "blend_%d", im->blend);
    for (int o = 0; o < 3; o++) objs[o] = objbuf[o];
    mms_catalog_row_t row = {0};
    row.id = id;
    row.split = im->split;
    row.tags = tags;
    row.ntags = im->ntags;
    row.features = x;
    row.knn_features = kx;
    row.obj_names = objs;
    row.obj_counts = counts;
    row.nobj = im->blend >= 0 ? 3 : 2;
    return mms_catalog_writer_add(cw, &row);
}

mms_status mms_synth_generate(const mms_synth_params_t *p, const char *out_dir, int force) {
    mms_synth_model_t *m = NULL;
    mms_catalog_writer_t *cw = NULL;
    float *x = NULL, *kx = NULL;
    mms_synth_image_t *info = NULL;
    mms_status s = MMS_OK;
    MMS_CALL(mms_synth_model_create(p, &m));
    const mms_synth_params_t *q = &m->p;
    /* a chunk holds at most ~64 MiB of features */
    int64_t row_bytes = 4 * ((int64_t)q->dim + q->knn_dim);
    int64_t chunk = clamp64((64ll << 20) / row_bytes, 1, q->chunk_rows);
    if (chunk > q->images) chunk = q->images;
    int idw = 8;
    for (int64_t lim = 100000000; q->images > lim && idw < 18; lim *= 10) idw++;
    char knn[48] = "";
    if (q->knn_dim > 0) snprintf(knn, sizeof knn, " + %d-d kNN features", q->knn_dim);
    mms_log_info(
        "synth: %lld images, %d-d features%s, %d clusters, %d topics, %d tags "
        "(topic lists of %d), latent %d, seed %llu",
        (long long)q->images, q->dim, knn, q->clusters, q->topics, q->tags, m->list_len,
        q->latent_dim, (unsigned long long)q->seed);
    char source[128];
    snprintf(source, sizeof source, "synthetic (mmsage synth, model %d, seed %llu)",
             MMS_SYNTH_FORMAT, (unsigned long long)q->seed);
    MMS_CALL_GOTO(s, out, mms_catalog_writer_open(out_dir, force, q->dim, q->knn_dim, source, &cw));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)chunk * (size_t)q->dim * sizeof *x, &x));
    if (q->knn_dim > 0)
        MMS_CALL_GOTO(s, out, mms_malloc((size_t)chunk * (size_t)q->knn_dim * sizeof *kx, &kx));
    MMS_CALL_GOTO(s, out, mms_malloc((size_t)chunk * sizeof *info, &info));
    mms_progress_t prog;
    mms_progress_begin(&prog, "synth", q->images, "rows");
    for (int64_t r0 = 0; r0 < q->images; r0 += chunk) {
        int64_t cnt = q->images - r0 < chunk ? q->images - r0 : chunk;
        MMS_CALL_GOTO(s, out, mms_synth_model_rows(m, r0, cnt, x, kx, info));
        for (int64_t r = 0; r < cnt; r++)
            MMS_CALL_GOTO(s, out,
                          add_row(cw, m, r0 + r, idw, x + (size_t)r * (size_t)q->dim,
                                  kx ? kx + (size_t)r * (size_t)q->knn_dim : NULL, &info[r]));
        mms_progress_update(&prog, r0 + cnt);
    }
    mms_progress_end(&prog);
    MMS_CALL_GOTO(s, out, set_manifest(cw, q));
    MMS_CALL_GOTO(s, out, mms_catalog_writer_finish(&cw));
out:
    if (cw) mms_catalog_writer_abort(&cw);
    mms_free(&x);
    mms_free(&kx);
    mms_free(&info);
    mms_synth_model_destroy(&m);
    return s;
}
