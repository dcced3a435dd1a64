/* adam.h: the Adam optimiser with TensorFlow's update rule (tf.train.AdamOptimizer,
 * as used by the GraphSAGE reference), for the parameter block and, lazily, for
 * rows of the tag table.
 *
 * Step t (counted from 1):
 *   lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *   m = beta1 m + (1 - beta1) g ;  v = beta2 v + (1 - beta2) g^2
 *   w -= lr_t * m / (sqrt(v) + eps)          (eps is TF's "epsilon hat": not bias-corrected)
 *
 * Sparse rows (mms_adam_step_rows): LAZY Adam, like tf.contrib.opt.LazyAdamOptimizer:
 * only the listed rows' m, v and weights change; lr_t uses the global t. This is a
 * deviation from the reference, whose dense Adam also decays m, v and keeps moving
 * untouched rows by their momentum; mms_adam_step on the whole table with a dense
 * (mostly zero) gradient gives the reference behaviour.
 *
 * State for checkpoints: mms_adam_state() exposes m then v (2n floats) and
 * mms_adam_steps()/mms_adam_set_steps() the step count; no file I/O here.
 */
#ifndef MMS_ADAM_H
#define MMS_ADAM_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

typedef struct {
    float lr;    /* learning rate (paper: 1e-5) */
    float beta1; /* 0.9 */
    float beta2; /* 0.999 */
    float eps;   /* 1e-8 */
} mms_adam_config_t;

/* lr 1e-5 (the paper's), beta1 0.9, beta2 0.999, eps 1e-8. */
void mms_adam_config_default(mms_adam_config_t *c);

typedef struct mms_adam mms_adam_t;

/* State for n parameters (m = v = 0, t = 0). Free with mms_adam_destroy. */
mms_status mms_adam_create(const mms_adam_config_t *c, size_t n, mms_adam_t **out);
void mms_adam_destroy(mms_adam_t **a);

/* Dense step: t += 1, then all n parameters w[0..n) updated with g[0..n). */
mms_status mms_adam_step(mms_adam_t *a, float *w, const float *g);

/* Lazy sparse step over a table of n / width rows of `width` floats: t += 1,
 * then for each i < n_rows, row rows[i] of table (and of m, v) is updated with
 * grad_rows[i*width ..]. Rows must be distinct and < n / width. n_rows may be 0
 * (t still advances, so calling it every step keeps lr_t in step). */
mms_status mms_adam_step_rows(mms_adam_t *a, float *table, int32_t width, const int64_t *rows,
                              int64_t n_rows, const float *grad_rows);

void mms_adam_set_lr(mms_adam_t *a, float lr);
const mms_adam_config_t *mms_adam_config(const mms_adam_t *a);
/* Steps taken (t). */
int64_t mms_adam_steps(const mms_adam_t *a);
void mms_adam_set_steps(mms_adam_t *a, int64_t t);
/* The moment buffers, m[0..n) then v[0..n): *n_floats = 2n. Borrowed; writable
 * so a checkpoint can be restored in place. */
float *mms_adam_state(mms_adam_t *a, size_t *n_floats);

#endif
