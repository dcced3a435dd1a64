/* model_io.c: the model directory's writer and readers (see model_io.h). */
#include "model_io.h"

#include <stdlib.h>
#include <string.h>

#include "mms_fs.h"
#include "mms_npy.h"

mms_status mms_model_manifest(const mms_sage_model_t *mod, const mms_model_origin_t *o,
                              mms_manifest_t **out) {
    const mms_sage_config_t *c = &mod->cfg;
    mms_manifest_t *m;
    MMS_CALL(mms_manifest_create("model", MMS_MODEL_FORMAT, &m));
    /* key order is the file's byte order: keep it */
    mms_manifest_set_uint(m, "graph_checksum", o->graph_checksum);
    mms_manifest_set_str(m, "graph", o->graph);
    mms_manifest_set_int(m, "dim", c->dim);
    mms_manifest_set_int(m, "hidden", c->hidden);
    mms_manifest_set_int(m, "s1", c->s1);
    mms_manifest_set_int(m, "s2", c->s2);
    mms_manifest_set_int(m, "max_degree", c->max_degree);
    mms_manifest_set_real(m, "dropout", c->dropout);
    mms_manifest_set_int(m, "train_tags", c->train_tags);
    mms_manifest_set_int(m, "seed", (int64_t)c->seed);
    mms_manifest_set_int(m, "n_params", (int64_t)mod->n_params);
    mms_manifest_set_int(m, "tags", mod->n_tags);
    mms_manifest_set_int(m, "images", o->images);
    mms_manifest_set_real(m, "lr", o->lr);
    mms_manifest_set_int(m, "batch", o->batch);
    mms_manifest_set_int(m, "neg", o->neg);
    mms_manifest_set_int(m, "walks", o->walks);
    mms_manifest_set_int(m, "walk_len", o->walk_len);
    mms_manifest_set_real(m, "hide_tags", o->hide_tags);
    mms_manifest_set_str(m, "tag_init", o->tag_init);
    mms_manifest_set_real(m, "temperature", o->temperature);
    mms_manifest_set_int(m, "steps_per_epoch", o->steps_per_epoch);
    mms_manifest_set_int(m, "step", o->step);
    mms_manifest_set_real(m, "loss", o->loss);
    *out = m;
    return MMS_OK;
}

mms_status mms_model_write(const char *dir, const mms_sage_model_t *m, mms_manifest_t *man) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, MMS_MODEL_PARAMS_FILE));
    MMS_CALL(mms_npy_write(p, MMS_DT_F32, m->params, m->n_params, 0));
    MMS_CALL(mms_path_join(p, sizeof p, dir, MMS_MODEL_TAGS_FILE));
    MMS_CALL(mms_npy_write(p, MMS_DT_F32, m->tags, (size_t)m->n_tags, (size_t)m->cfg.dim));
    static const char *const unchecked[] = {"loss.tsv", "checkpoint.bin", NULL};
    return mms_manifest_seal_dir(man, dir, unchecked);
}

/* An int32 configuration field (0 <= v <= INT32_MAX). */
static mms_status get_int32(const mms_manifest_t *m, const char *key, int32_t *v) {
    int64_t x;
    MMS_CALL(mms_manifest_get_int(m, key, &x));
    MMS_CHECK(x >= 0 && x <= INT32_MAX, MMS_ERR_FORMAT, "%s manifest: '%s' is %lld", m->kind, key,
              (long long)x);
    *v = (int32_t)x;
    return MMS_OK;
}

static mms_status read_config(const mms_manifest_t *m, mms_sage_config_t *c, int64_t *n_tags,
                              int64_t *n_params) {
    int64_t v;
    double r;
    mms_sage_config_default(c);
    MMS_CALL(get_int32(m, "dim", &c->dim));
    MMS_CALL(get_int32(m, "hidden", &c->hidden));
    MMS_CALL(get_int32(m, "s1", &c->s1));
    MMS_CALL(get_int32(m, "s2", &c->s2));
    MMS_CALL(get_int32(m, "max_degree", &c->max_degree));
    MMS_CALL(mms_manifest_get_real(m, "dropout", &r));
    c->dropout = (float)r;
    MMS_CALL(mms_manifest_get_int(m, "train_tags", &v));
    c->train_tags = (int)v;
    MMS_CALL(mms_manifest_get_int(m, "seed", &v));
    c->seed = (uint64_t)v;
    MMS_CALL(mms_manifest_get_int(m, "tags", n_tags));
    MMS_CALL(mms_manifest_get_int(m, "n_params", n_params));
    MMS_CHECK(*n_tags >= 0, MMS_ERR_FORMAT, "%s manifest: 'tags' is %lld", m->kind,
              (long long)*n_tags);
    return mms_sage_config_check(c);
}

/* Copy dir/name (<f4, rows x cols values; cols 0 = any shape of that size)
 * into dst. */
static mms_status read_array(const char *kind, const char *dir, const char *name, int64_t rows,
                             int32_t cols, float *dst) {
    char p[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(p, sizeof p, dir, name));
    MMS_CHECK(mms_path_exists(p), MMS_ERR_IO, "%s '%s': '%s' is missing", kind, dir, name);
    mms_npy_t a;
    MMS_CALL(mms_npy_open(p, MMS_DT_F32, &a));
    int ok = cols == 0 ? (int64_t)(a.rows * a.cols) == rows
                       : (int64_t)a.rows == rows && (int32_t)a.cols == cols;
    if (ok) memcpy(dst, a.data, (size_t)rows * (size_t)(cols ? cols : 1) * sizeof(float));
    size_t ar = a.rows, ac = a.cols;
    mms_npy_close(&a);
    MMS_CHECK(ok, MMS_ERR_FORMAT, "%s '%s': %s has shape %zu x %zu, expected %lld x %d", kind, dir,
              name, ar, ac, (long long)rows, cols ? cols : 1);
    return MMS_OK;
}

mms_status mms_model_read(const char *dir, const mms_manifest_t *man, mms_sage_model_t **out) {
    *out = NULL;
    mms_sage_config_t c;
    int64_t tags = 0, np = 0;
    MMS_CALL(read_config(man, &c, &tags, &np));
    mms_sage_model_t *mod;
    MMS_CALL(mms_sage_model_create(&c, tags, &mod));
    mms_status s = MMS_OK;
    if (np != (int64_t)mod->n_params) {
        mms_error_set(MMS_ERR_FORMAT, __FILE__, __LINE__, __func__,
                      "%s '%s': manifest says %lld parameters, the configuration has %zu",
                      man->kind, dir, (long long)np, mod->n_params);
        s = MMS_ERR_FORMAT;
    }
    if (s == MMS_OK)
        s = mms_manifest_verify_file(man, dir, MMS_MODEL_PARAMS_FILE);
    if (s == MMS_OK && tags > 0) s = mms_manifest_verify_file(man, dir, MMS_MODEL_TAGS_FILE);
    if (s == MMS_OK)
        s = read_array(man->kind, dir, MMS_MODEL_PARAMS_FILE, (int64_t)mod->n_params, 0,
                       mod->params);
    if (s == MMS_OK && tags > 0)
        s = read_array(man->kind, dir, MMS_MODEL_TAGS_FILE, tags, c.dim, mod->tags);
    if (s != MMS_OK) {
        mms_error_trace(s, __FILE__, __LINE__, __func__);
        mms_sage_model_destroy(&mod);
        return s;
    }
    *out = mod;
    return MMS_OK;
}

mms_status mms_model_load(const char *dir, uint64_t graph_checksum, mms_sage_model_t **out) {
    *out = NULL;
    mms_manifest_t *m;
    MMS_CALL(mms_manifest_read_dir(dir, "model", MMS_MODEL_FORMAT, &m));
    uint64_t gsum = 0;
    mms_status s = mms_manifest_get_uint(m, "graph_checksum", &gsum);
    if (s == MMS_OK && graph_checksum && gsum != graph_checksum) {
        mms_error_set(MMS_ERR_MISMATCH, __FILE__, __LINE__, __func__,
                      "model '%s' was trained on another graph (checksum %016llx, expected %016llx)",
                      dir, (unsigned long long)gsum, (unsigned long long)graph_checksum);
        s = MMS_ERR_MISMATCH;
    }
    if (s == MMS_OK) s = mms_model_read(dir, m, out);
    mms_manifest_destroy(&m);
    return s;
}

mms_status mms_model_copy_arrays(const char *model_dir, const char *to_dir) {
    MMS_CALL(mms_file_copy(model_dir, to_dir, MMS_MODEL_PARAMS_FILE));
    return mms_file_copy(model_dir, to_dir, MMS_MODEL_TAGS_FILE);
}
