/* mms_rng.h: counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * A draw is a pure function of (seed, stream, index, counter): the same global
 * node id and walk number give the same numbers on any rank at any rank count.
 * "stream" separates purposes (walks, negatives, dropout, init, ...), "index" is
 * usually a global id. mms_rng_t is a small cursor over one (seed, stream,
 * index) sequence; its position (ctr) can be saved in a checkpoint and restored.
 * No global state.
 */
#ifndef MMS_RNG_H
#define MMS_RNG_H

#include <stdint.h>

/* Streams used across mmsage; fixed numbers so files stay reproducible. */
enum {
    MMS_STREAM_SYNTH = 1,
    MMS_STREAM_SPLIT = 2,
    MMS_STREAM_INIT = 3,
    MMS_STREAM_WALK = 4,
    MMS_STREAM_NEG = 5,
    MMS_STREAM_SAMPLE = 6,
    MMS_STREAM_DROPOUT = 7,
    MMS_STREAM_KMEANS = 8,
    MMS_STREAM_SHUFFLE = 9,
    MMS_STREAM_DEGCAP = 10,
    MMS_STREAM_FUZZ = 11,
    MMS_STREAM_MASK = 12,
    MMS_STREAM_PARTITION = 13,
    MMS_STREAM_EVAL = 14
};

/* One Philox4x32-10 block: 4 x 32 random bits for counter (c0..c3) under key (k0,k1). */
void mms_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Stateless: 64 random bits for (seed, stream, index, counter). */
uint64_t mms_rng_hash(uint64_t seed, uint32_t stream, uint64_t index, uint64_t counter);

/* Uniform double in [0, 1) from the top 53 bits of h (e.g. an mms_rng_hash):
 * the one mapping every draw from a hash uses, so files stay reproducible. */
static inline double mms_rng_unit(uint64_t h) { return (double)(h >> 11) * 0x1.0p-53; }

typedef struct {
    uint32_t key[2];
    uint64_t index;  /* part of the counter */
    uint32_t stream; /* part of the counter */
    uint64_t ctr;    /* block number: the saved position */
    uint32_t buf[4];
    int pos; /* next unused word in buf; 4 = empty */
} mms_rng_t;

void mms_rng_init(mms_rng_t *r, uint64_t seed, uint32_t stream, uint64_t index);
/* Jump to block number ctr (discarding buffered words). */
void mms_rng_seek(mms_rng_t *r, uint64_t ctr);
uint32_t mms_rng_u32(mms_rng_t *r);
uint64_t mms_rng_u64(mms_rng_t *r);
/* Uniform in [0, 1) with 24 random bits (float) / 53 bits (double). */
float mms_rng_uniformf(mms_rng_t *r);
double mms_rng_uniform(mms_rng_t *r);
/* Uniform integer in [0, n), unbiased (Lemire). n > 0. */
uint32_t mms_rng_below(mms_rng_t *r, uint32_t n);
uint64_t mms_rng_below64(mms_rng_t *r, uint64_t n);
/* Standard normal (Box-Muller). */
double mms_rng_normal(mms_rng_t *r);

#endif
