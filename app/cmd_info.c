/* cmd_info.c: `mmsage info` reads any mmsage directory (catalog, graph,
 * partition, model, index) and prints what it is: its manifest's fields, the
 * payload files it records, and for a catalog a validated summary (counts,
 * widths, tag statistics). --verify checks every recorded file against its
 * checksum (all shards, not one rank's share); --json prints the same as one
 * JSON object (manifests stay MessagePack on disk: this is how jq reads them). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mms_catalog.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_manifest.h"
#include "mms_opts.h"

static int is_file_key(const char *k) {
    return !strncmp(k, MMS_MANIFEST_SUM_PREFIX, strlen(MMS_MANIFEST_SUM_PREFIX)) ||
           !strncmp(k, MMS_MANIFEST_SIZE_PREFIX, strlen(MMS_MANIFEST_SIZE_PREFIX));
}

/* A checksum field (MessagePack does not keep the unsigned type, so by name). */
static int is_sum(const mms_mentry_t *e) {
    size_t n = strlen(e->key);
    return (e->type == MMS_MV_INT || e->type == MMS_MV_UINT) &&
           ((n >= 8 && !strcmp(e->key + n - 8, "checksum")) ||
            !strncmp(e->key, MMS_MANIFEST_SUM_PREFIX, strlen(MMS_MANIFEST_SUM_PREFIX)));
}

static json_t *entry_json(const mms_mentry_t *e) {
    if (is_sum(e)) {
        char hex[24]; /* 64-bit checksums as hex strings (JSON numbers lose bits) */
        snprintf(hex, sizeof hex, "%016" PRIx64, e->type == MMS_MV_UINT ? e->u : (uint64_t)e->i);
        return json_string(hex);
    }
    switch (e->type) {
    case MMS_MV_INT: return json_integer(e->i);
    case MMS_MV_UINT: return json_integer(e->u <= INT64_MAX ? (json_int_t)e->u : -1);
    case MMS_MV_REAL: return json_real(e->r);
    case MMS_MV_STR: return json_string(e->s);
    case MMS_MV_INTARR: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < e->arr_len; i++) json_array_append_new(a, json_integer(e->arr[i]));
        return a;
    }
    }
    return json_null();
}

static void entry_print(const mms_mentry_t *e) {
    printf("  %-24s ", e->key);
    if (is_sum(e)) {
        printf("%016" PRIx64 "\n", e->type == MMS_MV_UINT ? e->u : (uint64_t)e->i);
        return;
    }
    switch (e->type) {
    case MMS_MV_INT: printf("%lld\n", (long long)e->i); break;
    case MMS_MV_UINT: printf("%016" PRIx64 "\n", e->u); break;
    case MMS_MV_REAL: printf("%g\n", e->r); break;
    case MMS_MV_STR: printf("%s\n", e->s); break;
    case MMS_MV_INTARR:
        for (size_t i = 0; i < e->arr_len; i++) printf("%s%lld", i ? " " : "", (long long)e->arr[i]);
        printf("\n");
        break;
    }
}

/* Every recorded file, each shard or part included. *bytes: total size. */
static mms_status verify_all(const mms_manifest_t *m, const char *dir, uint64_t *bytes) {
    *bytes = 0;
    MMS_CALL(mms_manifest_verify_files(m, dir, NULL, bytes));
    /* the subdirectories that hold recorded files, each once */
    const size_t pl = strlen(MMS_MANIFEST_SUM_PREFIX);
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->e[i].key;
        if (strncmp(k, MMS_MANIFEST_SUM_PREFIX, pl)) continue;
        const char *rel = k + pl, *slash = strrchr(rel, '/');
        if (!slash) continue;
        char sub[MMS_PATH_MAX];
        size_t sl = (size_t)(slash - rel);
        if (sl >= sizeof sub) continue;
        memcpy(sub, rel, sl);
        sub[sl] = '\0';
        int seen = 0; /* an earlier key in the same subdirectory? */
        for (size_t j = 0; j < i && !seen; j++) {
            const char *kj = m->e[j].key;
            seen = !strncmp(kj, MMS_MANIFEST_SUM_PREFIX, pl) && !strncmp(kj + pl, sub, sl) &&
                   kj[pl + sl] == '/' && !strchr(kj + pl + sl + 1, '/');
        }
        if (!seen) MMS_CALL(mms_manifest_verify_files(m, dir, sub, bytes));
    }
    return MMS_OK;
}

/* A catalog's validated summary (the shared reader checks every rule). */
static mms_status catalog_summary(const char *dir, int top, json_t *js) {
    mms_catalog_t *c;
    MMS_CALL(mms_catalog_open(dir, &c));
    int64_t assigned = c->tag_ptr[c->n], untagged = 0;
    for (int64_t i = 0; i < c->n; i++) untagged += c->tag_ptr[i + 1] == c->tag_ptr[i];
    /* most frequent tags (selection by repeated max: top is small) */
    int32_t k = c->ntags < top ? c->ntags : top;
    int32_t *best_of = calloc((size_t)k + 1, sizeof *best_of);
    char *used = calloc((size_t)c->ntags + 1, 1);
    if (!best_of || !used) k = 0;
    for (int32_t r = 0; r < k; r++) {
        int32_t best = -1;
        for (int32_t t = 0; t < c->ntags; t++)
            if (!used[t] && (best < 0 || c->tag_count[t] > c->tag_count[best])) best = t;
        used[best] = 1;
        best_of[r] = best;
    }
    if (js) {
        json_t *s = json_object(), *tt = json_array();
        json_object_set_new(s, "images", json_integer(c->n));
        json_object_set_new(s, "train", json_integer(c->n_split[0]));
        json_object_set_new(s, "val", json_integer(c->n_split[1]));
        json_object_set_new(s, "test", json_integer(c->n_split[2]));
        json_object_set_new(s, "dim", json_integer(c->dim));
        json_object_set_new(s, "knn_dim", json_integer(c->knn_dim));
        json_object_set_new(s, "tags", json_integer(c->ntags));
        json_object_set_new(s, "tag_assignments", json_integer(assigned));
        json_object_set_new(s, "untagged_images", json_integer(untagged));
        json_object_set_new(s, "objects", json_integer(c->obj_ptr ? c->ncats : 0));
        json_object_set_new(s, "captions", json_integer(c->cap_ptr ? c->cap_ptr[c->n] : 0));
        json_object_set_new(s, "paths", json_boolean(c->paths != NULL));
        char hex[24];
        snprintf(hex, sizeof hex, "%016" PRIx64, c->checksum);
        json_object_set_new(s, "checksum", json_string(hex));
        for (int32_t r = 0; r < k; r++) {
            json_t *t = json_object();
            json_object_set_new(t, "tag", json_string(c->tag_names[best_of[r]]));
            json_object_set_new(t, "images", json_integer(c->tag_count[best_of[r]]));
            json_array_append_new(tt, t);
        }
        json_object_set_new(s, "top_tags", tt);
        json_object_set_new(js, "summary", s);
    } else {
        printf("catalog      %s\n", c->dir);
        printf("images       %lld (train %lld, val %lld, test %lld)\n", (long long)c->n,
               (long long)c->n_split[0], (long long)c->n_split[1], (long long)c->n_split[2]);
        printf("features     %d-d float32\n", c->dim);
        if (c->knn_dim) printf("knn features %d-d float32\n", c->knn_dim);
        printf("tags         %d distinct, %lld assignments, %.2f per image, %lld untagged images\n",
               c->ntags, (long long)assigned, (double)assigned / (double)c->n, (long long)untagged);
        if (c->obj_ptr) printf("objects      %d categories\n", c->ncats);
        if (c->cap_ptr) printf("captions     %lld\n", (long long)c->cap_ptr[c->n]);
        if (c->paths) printf("paths        yes\n");
        printf("checksum     %016llx\n", (unsigned long long)c->checksum);
        if (k > 0) {
            printf("top tags    ");
            for (int32_t r = 0; r < k; r++)
                printf(" %s(%lld)", c->tag_names[best_of[r]], (long long)c->tag_count[best_of[r]]);
            printf("\n");
        }
    }
    free(best_of);
    free(used);
    mms_catalog_close(&c);
    return MMS_OK;
}

mms_status mms_cmd_info(int argc, char **argv) {
    const char *catalog = NULL, *dir = NULL, *graph = NULL, *partition = NULL, *model = NULL,
               *index = NULL;
    int top = 10, json = 0, verify = 0;
    mms_opt_t opts[] = {
        {"dir", MMS_OPT_STR, &dir, "any mmsage directory: catalog, graph, partition (G/parts-P), model, index", 0, 0, 0, 0},
        {"catalog", MMS_OPT_STR, &catalog, "a catalog directory (refused if it is another kind)", 0, 0, 0, 0},
        {"graph", MMS_OPT_STR, &graph, "a graph directory (the same as --dir)", 0, 0, 0, 0},
        {"partition", MMS_OPT_STR, &partition, "a partition directory, G/parts-P (the same as --dir)", 0, 0, 0, 0},
        {"model", MMS_OPT_STR, &model, "a model directory (the same as --dir)", 0, 0, 0, 0},
        {"index", MMS_OPT_STR, &index, "an index directory (the same as --dir)", 0, 0, 0, 0},
        {"json", MMS_OPT_FLAG, &json, "print one JSON object (fields, recorded files, summary)", 0, 0, 0, 0},
        {"verify", MMS_OPT_FLAG, &verify, "check every recorded file (all shards) against its checksum", 0, 0, 0, 0},
        {"top-tags", MMS_OPT_INT, &top, "how many of the most frequent tags to list (catalogs)", 0, 1, 0, 1000},
    };
    int help;
    MMS_CALL(mms_opts_parse("info", "Describe and validate any mmsage directory.", opts,
                            (int)(sizeof opts / sizeof opts[0]), argc, argv, &help));
    if (help) return MMS_OK;
    const char *given[] = {dir, catalog, graph, partition, model, index};
    static const char *const kinds[] = {NULL, "catalog", "graph", "partition", "model", "index"};
    const char *want = NULL;
    int ngiven = 0;
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++)
        if (given[i]) {
            dir = given[i];
            want = kinds[i];
            ngiven++;
        }
    MMS_CHECK(ngiven == 1, MMS_ERR_ARG,
              "info: give one directory: --dir D (any kind), or --catalog, --graph, --partition, "
              "--model or --index");
    MMS_CHECK(mms_path_is_dir(dir), MMS_ERR_IO, "info: '%s' is not a directory", dir);
    char mpath[MMS_PATH_MAX];
    MMS_CALL(mms_path_join(mpath, sizeof mpath, dir, MMS_MANIFEST_FILE));
    mms_manifest_t *m = NULL;
    if (mms_path_exists(mpath))
        MMS_CALL(mms_manifest_read_dir(dir, want, INT64_MAX, &m));
    MMS_CHECK(m || catalog, MMS_ERR_FORMAT, /* a catalog may be made by hand, without one */
              "info: '%s' has no %s: not an mmsage directory (or an unfinished one)", dir,
              MMS_MANIFEST_FILE);
    const int is_catalog = !m || !strcmp(m->kind, "catalog");
    json_t *js = json ? json_object() : NULL;
    mms_status s = MMS_OK;
    if (js) {
        json_object_set_new(js, "dir", json_string(dir));
        json_object_set_new(js, "kind", json_string(m ? m->kind : "catalog"));
        json_object_set_new(js, "format", m ? json_integer(m->format) : json_null());
    } else if (m) {
        printf("%s %s (format %lld)\n", m->kind, dir, (long long)m->format);
    }
    if (s == MMS_OK && is_catalog) s = catalog_summary(dir, top, js);
    if (s == MMS_OK && m) {
        json_t *fields = js ? json_object() : NULL, *files = js ? json_object() : NULL;
        uint64_t total = 0;
        if (!js) printf("fields\n");
        for (size_t i = 0; i < m->n; i++) {
            const mms_mentry_t *e = &m->e[i];
            if (!strncmp(e->key, MMS_MANIFEST_SIZE_PREFIX, strlen(MMS_MANIFEST_SIZE_PREFIX)) &&
                (e->type == MMS_MV_INT || e->type == MMS_MV_UINT))
                total += e->type == MMS_MV_INT ? (uint64_t)e->i : e->u;
            if (is_file_key(e->key)) {
                if (!js || strncmp(e->key, MMS_MANIFEST_SUM_PREFIX, strlen(MMS_MANIFEST_SUM_PREFIX))) continue;
                const char *rel = e->key + strlen(MMS_MANIFEST_SUM_PREFIX);
                char sk[MMS_PATH_MAX + 16];
                snprintf(sk, sizeof sk, MMS_MANIFEST_SIZE_PREFIX "%s", rel);
                json_t *f = json_object();
                json_object_set_new(f, "xxh3", entry_json(e));
                for (size_t j = 0; j < m->n; j++)
                    if (!strcmp(m->e[j].key, sk)) json_object_set_new(f, "bytes", entry_json(&m->e[j]));
                json_object_set_new(files, rel, f);
            } else if (js) {
                json_object_set_new(fields, e->key, entry_json(e));
            } else {
                entry_print(e);
            }
        }
        size_t nf = mms_manifest_recorded_files(m);
        if (js) {
            json_object_set_new(js, "fields", fields);
            json_object_set_new(js, "files", files);
        } else {
            printf("files        %zu recorded, %.1f MB%s\n", nf, (double)total / 1e6,
                   nf ? "" : " (a directory written before checksums: nothing to verify)");
        }
        if (verify) {
            double t0 = mms_now();
            uint64_t bytes = 0;
            s = verify_all(m, dir, &bytes);
            if (js) {
                json_object_set_new(js, "verified", json_boolean(s == MMS_OK));
                if (s != MMS_OK) json_object_set_new(js, "verify_error", json_string(mms_error_message()));
            } else if (s == MMS_OK) {
                printf("verified     %zu files, %.1f MB in %.2f s: every checksum matches\n", nf,
                       (double)bytes / 1e6, mms_now() - t0);
            }
        }
    }
    if (js) {
        char *txt = json_dumps(js, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (txt) {
            printf("%s\n", txt);
            free(txt);
        }
        json_decref(js);
    }
    mms_manifest_destroy(&m);
    return s;
}
