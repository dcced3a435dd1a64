/* adam.c: Adam with TF semantics, dense and lazy-sparse (see adam.h). */
#include "adam.h"

#include <math.h>
#include <string.h>

struct mms_adam {
    mms_adam_config_t cfg;
    size_t n;
    int64_t t;
    float *mv; /* m (n) then v (n) */
};

void mms_adam_config_default(mms_adam_config_t *c) {
    c->lr = 1e-5f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
}

mms_status mms_adam_create(const mms_adam_config_t *c, size_t n, mms_adam_t **out) {
    MMS_CHECK(c && out, MMS_ERR_ARG, "adam: missing argument");
    *out = NULL;
    MMS_CHECK(c->lr >= 0 && c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 &&
                  c->eps >= 0,
              MMS_ERR_ARG, "adam: need lr >= 0, 0 <= beta1, beta2 < 1, eps >= 0 (got %g %g %g %g)",
              (double)c->lr, (double)c->beta1, (double)c->beta2, (double)c->eps);
    mms_adam_t *a = NULL;
    MMS_CALL(mms_calloc(1, sizeof *a, &a));
    a->cfg = *c;
    a->n = n;
    mms_status st = mms_calloc(2 * (n ? n : 1), sizeof(float), &a->mv);
    if (st != MMS_OK) {
        mms_free(&a);
        return st;
    }
    *out = a;
    return MMS_OK;
}

void mms_adam_destroy(mms_adam_t **pa) {
    if (!pa || !*pa) return;
    mms_free(&(*pa)->mv);
    mms_free(pa);
}

/* lr_t of step t (t >= 1). */
static float lr_at(const mms_adam_t *a, int64_t t) {
    double b1t = pow((double)a->cfg.beta1, (double)t), b2t = pow((double)a->cfg.beta2, (double)t);
    return (float)((double)a->cfg.lr * sqrt(1.0 - b2t) / (1.0 - b1t));
}

static void update(const mms_adam_t *a, float lr_t, float *w, const float *g, float *m, float *v,
                   size_t n) {
    const float b1 = a->cfg.beta1, b2 = a->cfg.beta2, eps = a->cfg.eps;
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        m[i] = b1 * m[i] + c1 * gi;
        v[i] = b2 * v[i] + c2 * gi * gi;
        w[i] -= lr_t * m[i] / (sqrtf(v[i]) + eps);
    }
}

mms_status mms_adam_step(mms_adam_t *a, float *w, const float *g) {
    MMS_CHECK(a && (a->n == 0 || (w && g)), MMS_ERR_ARG, "adam step: missing argument");
    a->t++;
    update(a, lr_at(a, a->t), w, g, a->mv, a->mv + a->n, a->n);
    return MMS_OK;
}

mms_status mms_adam_step_rows(mms_adam_t *a, float *table, int32_t width, const int64_t *rows,
                              int64_t n_rows, const float *grad_rows) {
    MMS_CHECK(a && width > 0 && n_rows >= 0, MMS_ERR_ARG, "adam rows: bad arguments");
    MMS_CHECK(n_rows == 0 || (table && rows && grad_rows), MMS_ERR_ARG,
              "adam rows: missing argument");
    MMS_CHECK(a->n % (size_t)width == 0, MMS_ERR_ARG,
              "adam rows: state of %zu floats is not a table of width %d", a->n, width);
    int64_t n_tab = (int64_t)(a->n / (size_t)width);
    for (int64_t i = 0; i < n_rows; i++)
        MMS_CHECK(rows[i] >= 0 && rows[i] < n_tab, MMS_ERR_ARG,
                  "adam rows: row %lld outside the table of %lld rows", (long long)rows[i],
                  (long long)n_tab);
    a->t++;
    float lr_t = lr_at(a, a->t);
    for (int64_t i = 0; i < n_rows; i++) {
        size_t off = (size_t)rows[i] * (size_t)width;
        update(a, lr_t, table + off, grad_rows + (size_t)i * width, a->mv + off,
               a->mv + a->n + off, (size_t)width);
    }
    return MMS_OK;
}

void mms_adam_set_lr(mms_adam_t *a, float lr) { a->cfg.lr = lr; }
const mms_adam_config_t *mms_adam_config(const mms_adam_t *a) { return &a->cfg; }
int64_t mms_adam_steps(const mms_adam_t *a) { return a->t; }
void mms_adam_set_steps(mms_adam_t *a, int64_t t) { a->t = t; }

float *mms_adam_state(mms_adam_t *a, size_t *n_floats) {
    if (n_floats) *n_floats = 2 * a->n;
    return a->mv;
}
