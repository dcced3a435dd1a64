// labels: e2e
/* test_judge_corel5k.c: the raw-visual baseline, the tag judge and kNN tag
 * voting on Corel5k reproduce the Python peers' figures (shared/peers/README.md)
 * within 0.005 (grade shares within 0.5 points). Needs $MMS_SHARED_DATA/corel5k
 * (exits 77 without it); imports it with the library importer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_mulan.h"
#include "judge.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_test.h"

int main(void) {
    mms_log_init(0, 1, MMS_LOG_WARN);
    const char *data = mms_test_shared("corel5k");
    if (!data) {
        fprintf(stderr, "test_judge_corel5k: no corel5k data under $MMS_SHARED_DATA: skipped\n");
        return 77;
    }
    char dir[MMS_PATH_MAX], train[MMS_PATH_MAX], test[MMS_PATH_MAX], xml[MMS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/catalog", mms_test_tmpdir("judge-corel5k"));
    snprintf(train, sizeof train, "%s/Corel5k-train-sparse.arff", data);
    snprintf(test, sizeof test, "%s/Corel5k-test-sparse.arff", data);
    snprintf(xml, sizeof xml, "%s/Corel5k.xml", data);
    mms_mulan_import_opts_t io = {train, test, xml, dir, 1, 0};
    mms_status st = mms_import_mulan_run(&io, NULL);
    T_OK(st);
    if (st != MMS_OK) return mms_test_finish("test_judge_corel5k");
    mms_catalog_t *c = NULL;
    mms_judge_t *j = NULL;
    mms_eval_t *e = NULL;
    T_OK(mms_catalog_open(dir, &c));
    T_OK(mms_judge_create(c, &j));
    T_EQ_INT(mms_judge_kind_of(j), MMS_JUDGE_TAGS);
    T_OK(mms_eval_create(c, j, "corel5k", &e));
    int64_t nq = 0, *q = malloc((size_t)c->n * sizeof *q);
    for (int64_t r = 0; r < c->n; r++)
        if (c->split[r] == MMS_SPLIT_TEST) q[nq++] = r;
    T_EQ_INT(nq, 500);
    T_OK(mms_eval_add_baselines(e, q, nq, MMS_BASELINE_ALL, 5, 1));
    mms_eval_summary_t v, o, rnd, pr;
    T_OK(mms_eval_summarize(e, mms_eval_find_method(e, "raw-visual"), &v));
    T_OK(mms_eval_summarize(e, mms_eval_find_method(e, "tag-oracle"), &o));
    T_OK(mms_eval_summarize(e, mms_eval_find_method(e, "random"), &rnd));
    T_OK(mms_eval_summarize(e, mms_eval_find_method(e, "tag-prior"), &pr));
    fprintf(stderr,
            "raw-visual: nDCG@3 %.4f/%.4f nDCG@5 %.4f/%.4f (all-Excellent/gallery) grades 3/2/1/0 "
            "%.1f/%.1f/%.1f/%.1f %% overlap %.4f vis %.4f\n",
            v.ndcg_excellent[0], v.ndcg_gallery[0], v.ndcg_excellent[1], v.ndcg_gallery[1],
            v.grade_pct[3], v.grade_pct[2], v.grade_pct[1], v.grade_pct[0], v.tag_overlap,
            v.visual_sim);
    fprintf(stderr, "kNN voting: P %.4f R %.4f N+ %lld words %lld\n", v.tag_p, v.tag_r,
            (long long)v.tag_nplus, (long long)v.tag_words);
    fprintf(stderr, "tag-prior: P %.4f R %.4f N+ %lld\n", pr.tag_p, pr.tag_r,
            (long long)pr.tag_nplus);
    fprintf(stderr, "random: nDCG@5 %.4f/%.4f; tag-oracle: nDCG@5 %.4f/%.4f\n",
            rnd.ndcg_excellent[1], rnd.ndcg_gallery[1], o.ndcg_excellent[1], o.ndcg_gallery[1]);
    /* the peers' figures (shared/peers/README.md) */
    T_NEAR(v.ndcg_excellent[1], 0.114, 0.005);
    T_NEAR(v.ndcg_gallery[1], 0.165, 0.005);
    T_NEAR(v.grade_pct[3], 3.1, 0.5);
    T_NEAR(v.grade_pct[2], 11.5, 0.5);
    T_NEAR(v.grade_pct[1], 21.0, 0.5);
    T_NEAR(v.grade_pct[0], 64.4, 0.5);
    T_NEAR(v.tag_p, 0.081, 0.005);
    T_NEAR(v.tag_r, 0.097, 0.005);
    T_NEAR(v.tag_nplus, 70, 2);
    T_EQ_INT(v.tag_words, 263);
    T_NEAR(rnd.ndcg_excellent[1], 0.041, 0.01);
    T_NEAR(o.ndcg_excellent[1], 0.685, 0.005);
    free(q);
    mms_eval_destroy(&e);
    mms_judge_destroy(&j);
    mms_catalog_close(&c);
    mms_rm_rf(mms_test_tmpdir("judge-corel5k"));
    return mms_test_finish("test_judge_corel5k");
}
