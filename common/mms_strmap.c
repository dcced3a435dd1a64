/* mms_strmap.c: see mms_strmap.h. Keys live in chunked arenas so their
 * addresses stay valid as the map grows. */
#include "mms_strmap.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "mms_array.h"

typedef struct {
    uint64_t hash;
    int64_t val;
    int64_t order; /* index into keys[]; -1 = empty slot */
} slot_t;

struct mms_strmap {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t n;
    char **keys; /* by insertion order */
    size_t *klen;
    size_t keys_cap, klen_cap;
    char **chunks;
    size_t nchunks, chunks_cap;
    size_t chunk_used, chunk_size;
};

#define CHUNK 65536

mms_status mms_strmap_create(size_t expected, mms_strmap_t **out) {
    mms_strmap_t *m;
    MMS_CALL(mms_calloc(1, sizeof *m, &m));
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    m->cap = cap;
    mms_status s = mms_malloc(cap * sizeof *m->slots, &m->slots);
    if (s != MMS_OK) {
        free(m);
        return s;
    }
    for (size_t i = 0; i < cap; i++) m->slots[i].order = -1;
    *out = m;
    return MMS_OK;
}

void mms_strmap_destroy(mms_strmap_t **mp) {
    if (!mp || !*mp) return;
    mms_strmap_t *m = *mp;
    for (size_t i = 0; i < m->nchunks; i++) free(m->chunks[i]);
    free(m->chunks);
    free(m->keys);
    free(m->klen);
    free(m->slots);
    free(m);
    *mp = NULL;
}

size_t mms_strmap_size(const mms_strmap_t *m) { return m->n; }

static size_t probe(const mms_strmap_t *m, const char *key, size_t len, uint64_t h, int *found) {
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    for (;;) {
        const slot_t *s = &m->slots[i];
        if (s->order < 0) {
            *found = 0;
            return i;
        }
        if (s->hash == h && m->klen[s->order] == len && !memcmp(m->keys[s->order], key, len)) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

int mms_strmap_get(const mms_strmap_t *m, const char *key, size_t len, int64_t *val) {
    int found;
    size_t i = probe(m, key, len, XXH3_64bits(key, len), &found);
    if (found && val) *val = m->slots[i].val;
    return found;
}

static mms_status grow(mms_strmap_t *m) {
    size_t cap = m->cap * 2;
    slot_t *ns;
    MMS_CALL(mms_malloc(cap * sizeof *ns, &ns));
    for (size_t i = 0; i < cap; i++) ns[i].order = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].order < 0) continue;
        size_t j = (size_t)m->slots[i].hash & (cap - 1);
        while (ns[j].order >= 0) j = (j + 1) & (cap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = cap;
    return MMS_OK;
}

static mms_status store_key(mms_strmap_t *m, const char *key, size_t len, char **out) {
    size_t need = len + 1;
    if (m->nchunks == 0 || m->chunk_used + need > m->chunk_size) {
        MMS_CALL(mms_grow(&m->chunks, sizeof *m->chunks, m->nchunks + 1, &m->chunks_cap));
        size_t sz = need > CHUNK ? need : CHUNK;
        MMS_CALL(mms_malloc(sz, &m->chunks[m->nchunks]));
        m->nchunks++;
        m->chunk_used = 0;
        m->chunk_size = sz;
    }
    char *p = m->chunks[m->nchunks - 1] + m->chunk_used;
    memcpy(p, key, len);
    p[len] = '\0';
    m->chunk_used += need;
    *out = p;
    return MMS_OK;
}

mms_status mms_strmap_put(mms_strmap_t *m, const char *key, size_t len, int64_t val,
                          int *inserted, int64_t *existing) {
    uint64_t h = XXH3_64bits(key, len);
    int found;
    size_t i = probe(m, key, len, h, &found);
    if (found) {
        if (inserted) *inserted = 0;
        if (existing) *existing = m->slots[i].val;
        return MMS_OK;
    }
    if ((m->n + 1) * 10 > m->cap * 7) {
        MMS_CALL(grow(m));
        i = probe(m, key, len, h, &found);
    }
    MMS_CALL(mms_grow(&m->keys, sizeof *m->keys, m->n + 1, &m->keys_cap));
    MMS_CALL(mms_grow(&m->klen, sizeof *m->klen, m->n + 1, &m->klen_cap));
    char *k;
    MMS_CALL(store_key(m, key, len, &k));
    m->keys[m->n] = k;
    m->klen[m->n] = len;
    m->slots[i].hash = h;
    m->slots[i].val = val;
    m->slots[i].order = (int64_t)m->n;
    m->n++;
    if (inserted) *inserted = 1;
    if (existing) *existing = val;
    return MMS_OK;
}

const char *mms_strmap_key(const mms_strmap_t *m, size_t i) { return i < m->n ? m->keys[i] : NULL; }
