/* sample.c: deterministic padded-adjacency sampling (see sample.h). */
#include "sample.h"

#include "mms_rng.h"

/* Permutation keys live above every global id (ids are < 2^62). */
#define PERM_KEY_BIT (1ull << 63)
#define MAX_K 4096

int32_t mms_sample_padded(const mms_csr_t *adj, const int64_t *gid, uint64_t seed, int32_t cap,
                          int32_t v, int32_t c) {
    int64_t lo = adj->indptr[v], d = adj->indptr[v + 1] - lo;
    if (d <= 0) return MMS_SAMPLE_DUMMY;
    if (d >= cap) return (int32_t)adj->indices[lo + c];
    uint64_t g = gid ? (uint64_t)gid[v] : (uint64_t)v;
    uint64_t h = mms_rng_hash(seed, MMS_STREAM_SAMPLE, g, (uint64_t)c);
    return (int32_t)adj->indices[lo + (int64_t)(h % (uint64_t)d)];
}

mms_status mms_sample_columns(uint64_t seed, uint64_t step, int hop, int32_t cap, int32_t k,
                              int32_t *cols) {
    MMS_CHECK(cap > 0 && k > 0 && k <= cap, MMS_ERR_ARG,
              "sample columns: need 0 < k (%d) <= cap (%d)", k, cap);
    MMS_CHECK(k <= MAX_K, MMS_ERR_ARG, "sample columns: k = %d exceeds %d", k, MAX_K);
    MMS_CHECK(hop >= 0 && hop < 4 && step < (1ull << 60), MMS_ERR_ARG,
              "sample columns: hop %d / step %llu out of range", hop, (unsigned long long)step);
    /* Partial Fisher-Yates over the virtual array 0..cap-1: positions < k live in
     * cols[], positions >= k that were swapped are kept in a small override list. */
    int32_t opos[MAX_K], oval[MAX_K];
    int n_over = 0;
    for (int32_t i = 0; i < k; i++) cols[i] = i;
    mms_rng_t r;
    mms_rng_init(&r, seed, MMS_STREAM_SAMPLE, PERM_KEY_BIT | (step << 2) | (uint64_t)hop);
    for (int32_t i = 0; i < k; i++) {
        int32_t j = i + (int32_t)mms_rng_below(&r, (uint32_t)(cap - i));
        if (j < k) {
            int32_t t = cols[i];
            cols[i] = cols[j];
            cols[j] = t;
            continue;
        }
        int o = -1;
        for (int q = 0; q < n_over; q++)
            if (opos[q] == j) o = q;
        int32_t vj = o >= 0 ? oval[o] : j;
        if (o < 0) {
            o = n_over++;
            opos[o] = j;
        }
        oval[o] = cols[i];
        cols[i] = vj;
    }
    return MMS_OK;
}

mms_status mms_sample_neighbours(const mms_csr_t *adj, const int64_t *gid, uint64_t seed,
                                 int32_t cap, const int32_t *cols, int32_t k,
                                 const int32_t *nodes, int64_t n, int32_t *out) {
    MMS_CHECK(adj && adj->indptr && (adj->indices || adj->n == 0), MMS_ERR_ARG,
              "sample: adjacency is not set");
    MMS_CHECK(adj->n <= INT32_MAX, MMS_ERR_ARG,
              "sample: %lld local nodes do not fit int32 local ids", (long long)adj->n);
    MMS_CHECK(cap > 0 && k > 0 && k <= cap, MMS_ERR_ARG, "sample: need 0 < k (%d) <= cap (%d)",
              k, cap);
    for (int j = 0; j < k; j++)
        MMS_CHECK(cols[j] >= 0 && cols[j] < cap, MMS_ERR_ARG, "sample: column %d out of range",
                  cols[j]);
    for (int64_t i = 0; i < n; i++) {
        int32_t v = nodes[i];
        MMS_CHECK(v >= 0 && v < adj->n, MMS_ERR_ARG,
                  "sample: node %d (position %lld) is not a local id in [0, %lld)", v,
                  (long long)i, (long long)adj->n);
        for (int32_t j = 0; j < k; j++)
            out[i * k + j] = mms_sample_padded(adj, gid, seed, cap, v, cols[j]);
    }
    return MMS_OK;
}

mms_status mms_sample_list(const int32_t *list, int32_t len, uint64_t seed, uint64_t key,
                           int32_t cap, const int32_t *cols, int32_t k, int32_t *out) {
    MMS_CHECK(len >= 0 && (list || len == 0), MMS_ERR_ARG, "sample list: bad list (len %d)", len);
    MMS_CHECK(cap > 0 && k > 0 && k <= cap, MMS_ERR_ARG,
              "sample list: need 0 < k (%d) <= cap (%d)", k, cap);
    for (int32_t j = 0; j < k; j++) {
        int32_t c = cols[j];
        MMS_CHECK(c >= 0 && c < cap, MMS_ERR_ARG, "sample list: column %d out of range", c);
        if (len == 0)
            out[j] = MMS_SAMPLE_DUMMY;
        else if (len >= cap)
            out[j] = list[c];
        else
            out[j] = list[mms_rng_hash(seed, MMS_STREAM_SAMPLE, key, (uint64_t)c) % (uint64_t)len];
    }
    return MMS_OK;
}
