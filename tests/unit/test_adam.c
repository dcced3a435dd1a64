/* test_adam.c: Adam (TF semantics) against hand-computed values, the lazy
 * sparse-row variant, and the state accessors used by checkpoints. */
#include <math.h>
#include <stdio.h>

#include "adam.h"
#include "mms_log.h"
#include "mms_test.h"

static void test_dense(void) {
    /* lr 0.1, beta1 0.9, beta2 0.999, eps 1e-8; w0 = {1, -2, 0.5}.
     * Step 1, g = {0.5, -1, 0}:
     *   m = 0.1 g = {0.05, -0.1, 0};  v = 0.001 g^2 = {2.5e-4, 1e-3, 0}
     *   lr_1 = 0.1 sqrt(1 - 0.999) / (1 - 0.9) = 0.1 * 0.0316227766 / 0.1 = 0.0316227766
     *   w -= lr_1 m / (sqrt v + eps):
     *     0.0316227766 * 0.05 / (0.0158113883 + 1e-8) = 0.0999999368 -> w0 = 0.9000000632
     *     0.0316227766 * -0.1 / (0.0316227766 + 1e-8) = -0.0999999684 -> w1 = -1.9000000316
     *     g = 0: no change                                             -> w2 = 0.5
     * Step 2, g = {0.5, 1, 2}:
     *   m = 0.9 m + 0.1 g = {0.095, 0.01, 0.2}
     *   v = 0.999 v + 0.001 g^2 = {4.9975e-4, 1.999e-3, 4e-3}
     *   lr_2 = 0.1 sqrt(1 - 0.998001) / (1 - 0.81) = 0.1 * 0.0447101778 / 0.19 = 0.0235316725
     *     w0: 0.0235316725 * 0.095 / (0.0223550889 + 1e-8) = 0.0999999553 -> 0.8000001079
     *     w1: 0.0235316725 * 0.01  / (0.0447101778 + 1e-8) = 0.0052630960 -> -1.9052631276
     *     w2: 0.0235316725 * 0.2   / (0.0632455532 + 1e-8) = 0.0744124733 -> 0.4255875267
     */
    mms_adam_config_t c;
    mms_adam_config_default(&c);
    T_NEAR(c.lr, 1e-5, 1e-12);
    T_NEAR(c.beta1, 0.9, 1e-7);
    T_NEAR(c.beta2, 0.999, 1e-7);
    T_NEAR(c.eps, 1e-8, 1e-15);
    c.lr = 0.1f;
    mms_adam_t *a = NULL;
    T_OK(mms_adam_create(&c, 3, &a));
    float w[3] = {1, -2, 0.5f}, g1[3] = {0.5f, -1, 0}, g2[3] = {0.5f, 1, 2};
    T_OK(mms_adam_step(a, w, g1));
    T_NEAR(w[0], 0.9000000632, 2e-7);
    T_NEAR(w[1], -1.9000000316, 2e-7);
    T_NEAR(w[2], 0.5, 0);
    T_OK(mms_adam_step(a, w, g2));
    /* float betas (0.999f = 0.99900001...) move step-2 values by ~1e-6 */
    T_NEAR(w[0], 0.8000001079, 3e-6);
    T_NEAR(w[1], -1.9052631276, 3e-6);
    T_NEAR(w[2], 0.4255875267, 3e-6);
    T_EQ_INT(mms_adam_steps(a), 2);
    size_t nf = 0;
    float *st = mms_adam_state(a, &nf);
    T_EQ_INT(nf, 6);
    T_NEAR(st[0], 0.095, 1e-7);         /* m0 */
    T_NEAR(st[2], 0.2, 1e-7);           /* m2 */
    T_NEAR(st[3 + 1], 1.999e-3, 1e-7);  /* v1 */
    T_NEAR(st[3 + 2], 4e-3, 1e-7);      /* v2 */

    /* restore into a fresh optimiser from the state: identical next step */
    mms_adam_t *b = NULL;
    T_OK(mms_adam_create(&c, 3, &b));
    size_t nb = 0;
    float *sb = mms_adam_state(b, &nb);
    for (size_t i = 0; i < nb; i++) sb[i] = st[i];
    mms_adam_set_steps(b, mms_adam_steps(a));
    float wa[3] = {w[0], w[1], w[2]}, wb[3] = {w[0], w[1], w[2]}, g3[3] = {-0.3f, 0.2f, 0.1f};
    T_OK(mms_adam_step(a, wa, g3));
    T_OK(mms_adam_step(b, wb, g3));
    T_CHECK(wa[0] == wb[0] && wa[1] == wb[1] && wa[2] == wb[2]);
    mms_adam_set_lr(b, 0.5f);
    T_NEAR(mms_adam_config(b)->lr, 0.5, 0);
    mms_adam_destroy(&a);
    mms_adam_destroy(&b);
    T_CHECK(a == NULL && b == NULL);
    mms_adam_destroy(&a); /* NULL: no-op */
}

static void test_rows(void) {
    /* table 4 rows x 2; step 1 touches rows 1 and 3, step 2 row 1 only */
    mms_adam_config_t c;
    mms_adam_config_default(&c);
    c.lr = 0.1f;
    mms_adam_t *a = NULL;
    T_OK(mms_adam_create(&c, 8, &a));
    float tab[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int64_t r1[2] = {1, 3}, r2[1] = {1};
    float g1[4] = {0.5f, -1, 2, 0}, g2[2] = {0.5f, 1};
    T_OK(mms_adam_step_rows(a, tab, 2, r1, 2, g1));
    /* step 1 as the dense case: w -= ~lr sign(g) */
    T_NEAR(tab[2], 0.9000000632, 2e-7);
    T_NEAR(tab[3], 1.0999999684, 2e-7);
    T_NEAR(tab[6], 1 - 0.0316227766 * 0.2 / (sqrt(0.004) + 1e-8), 2e-7);
    T_NEAR(tab[7], 1, 0);
    T_CHECK(tab[0] == 1 && tab[1] == 1 && tab[4] == 1 && tab[5] == 1); /* untouched */
    T_OK(mms_adam_step_rows(a, tab, 2, r2, 1, g2));
    /* row 1 at t = 2 as in the dense case; row 3 unchanged (lazy): */
    T_NEAR(tab[2], 0.8000001079, 3e-6);
    T_NEAR(tab[3], 1.0999999684 - 0.0052630960, 3e-6);
    T_NEAR(tab[6], 1 - 0.0316227766 * 0.2 / (sqrt(0.004) + 1e-8), 2e-7);
    size_t nf;
    float *st = mms_adam_state(a, &nf);
    T_NEAR(st[6], 0.2, 1e-7);       /* m of row 3 not decayed (lazy) */
    T_NEAR(st[8 + 6], 4e-3, 1e-7);  /* v of row 3 not decayed */
    T_EQ_INT(mms_adam_steps(a), 2);
    T_OK(mms_adam_step_rows(a, tab, 2, NULL, 0, NULL)); /* empty step still counts */
    T_EQ_INT(mms_adam_steps(a), 3);
    int64_t bad = 4;
    T_FAILS(mms_adam_step_rows(a, tab, 2, &bad, 1, g2), MMS_ERR_ARG);
    T_MSG_HAS("outside the table");
    T_FAILS(mms_adam_step_rows(a, tab, 3, r2, 1, g2), MMS_ERR_ARG);
    T_MSG_HAS("width 3");
    mms_adam_destroy(&a);
    c.beta1 = 1.0f;
    T_FAILS(mms_adam_create(&c, 3, &a), MMS_ERR_ARG);
    T_CHECK(a == NULL);
}

/* TF's epsilon is added to sqrt(v) after the bias correction moved into lr_t;
 * with a large eps this differs clearly from the PyTorch form
 * (lr m_hat / (sqrt(v_hat) + eps) = 0.1 * 0.5 / (0.5 + 0.1) = 0.0833):
 *   lr_1 = 0.0316227766, m = 0.05, sqrt v = 0.0158113883
 *   step = 0.0316227766 * 0.05 / (0.0158113883 + 0.1) = 0.0136527059 */
static void test_eps_placement(void) {
    mms_adam_config_t c = {0.1f, 0.9f, 0.999f, 0.1f};
    mms_adam_t *a = NULL;
    T_OK(mms_adam_create(&c, 1, &a));
    float w = 1, g = 0.5f;
    T_OK(mms_adam_step(a, &w, &g));
    T_NEAR(w, 1 - 0.0136527059, 1e-6);
    mms_adam_destroy(&a);
}

int main(void) {
    mms_log_init(0, 1, MMS_LOG_QUIET);
    test_dense();
    test_rows();
    test_eps_placement();
    return mms_test_finish("test_adam");
}
