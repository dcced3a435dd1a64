/* mms_rng.c: Philox4x32-10 and a cursor over it (see mms_rng.h). */
#include "mms_rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void mms_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* Counter layout: word0 = block (low 32), word1 = stream<<16 ^ block>>32 (blocks
 * beyond 2^48 per stream never happen in practice), word2/3 = index. */
static void make_ctr(uint32_t stream, uint64_t index, uint64_t block, uint32_t c[4]) {
    c[0] = (uint32_t)block;
    c[1] = (uint32_t)(block >> 32) ^ (stream << 16);
    c[2] = (uint32_t)index;
    c[3] = (uint32_t)(index >> 32);
}

uint64_t mms_rng_hash(uint64_t seed, uint32_t stream, uint64_t index, uint64_t counter) {
    uint32_t c[4], k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, o[4];
    make_ctr(stream, index, counter, c);
    mms_philox4x32(c, k, o);
    return ((uint64_t)o[0] << 32) | o[1];
}

void mms_rng_init(mms_rng_t *r, uint64_t seed, uint32_t stream, uint64_t index) {
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->stream = stream;
    r->index = index;
    r->ctr = 0;
    r->pos = 4;
}

void mms_rng_seek(mms_rng_t *r, uint64_t ctr) {
    r->ctr = ctr;
    r->pos = 4;
}

uint32_t mms_rng_u32(mms_rng_t *r) {
    if (r->pos >= 4) {
        uint32_t c[4];
        make_ctr(r->stream, r->index, r->ctr, c);
        mms_philox4x32(c, r->key, r->buf);
        r->ctr++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

uint64_t mms_rng_u64(mms_rng_t *r) {
    uint64_t hi = mms_rng_u32(r);
    return (hi << 32) | mms_rng_u32(r);
}

float mms_rng_uniformf(mms_rng_t *r) { return (float)(mms_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

double mms_rng_uniform(mms_rng_t *r) { return mms_rng_unit(mms_rng_u64(r)); }

uint32_t mms_rng_below(mms_rng_t *r, uint32_t n) {
    uint64_t m = (uint64_t)mms_rng_u32(r) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            m = (uint64_t)mms_rng_u32(r) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

uint64_t mms_rng_below64(mms_rng_t *r, uint64_t n) {
    if (n <= 0xFFFFFFFFull) return mms_rng_below(r, (uint32_t)n);
    /* rejection on the smallest power-of-two mask covering n */
    uint64_t mask = n - 1;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    uint64_t x;
    do {
        x = mms_rng_u64(r) & mask;
    } while (x >= n);
    return x;
}

double mms_rng_normal(mms_rng_t *r) {
    double u1 = mms_rng_uniform(r), u2 = mms_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
