/* import_coco.c: COCO JSON parsing, merging by image id, tag derivation, and
 * the `import coco` driver that writes a catalog (see import_coco.h).
 *
 * Does: validate every field it uses and name it in errors; merge sources;
 * compute one descriptor per image. Does not: read segmentations, boxes or
 * keypoints (ignored), stream JSON (a file is parsed whole by jansson, about
 * ten times its size in memory), or compute descriptors in parallel.
 */
#define _GNU_SOURCE /* realpath, strndup */
#include "import_coco.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import_split.h"
#include "mms_array.h"
#include "mms_catalog.h"
#include "mms_descriptor.h"
#include "mms_fs.h"
#include "mms_log.h"
#include "mms_rng.h"
#include "mms_strmap.h"
#include "mms_text.h"

typedef struct {
    int32_t cat;   /* category vocabulary index */
    int32_t count; /* non-crowd instances */
} catcnt_t;

typedef struct {
    int64_t id;
    char *file;       /* file_name, owned */
    int src;          /* first instances file listing it */
    int64_t pos;      /* its index in that file's images[] */
    uint64_t srcmask; /* every instances file listing it */
    int64_t nann;     /* annotations referring to it (after de-duplication) */
    catcnt_t *cc;
    int ncc;
    size_t capcc;
    /* filled by finish (strings borrowed from the collection) */
    const char **caps;
    int ncap;
    size_t capcap;
    const char **tags;
    int ntags;
    size_t captags;
    const char **obj_names;
    int *obj_counts;
    int nobj;
    char *where;
} img_t;

typedef struct {
    int64_t image_id;
    char *text; /* owned */
} caption_t;

struct mms_coco {
    int nsrc;
    char *src_name[MMS_COCO_MAX_SOURCES];
    char *src_dir[MMS_COCO_MAX_SOURCES];
    img_t *img;
    size_t nimg, capimg;
    mms_strmap_t *ids;      /* decimal image id -> index into img */
    mms_strmap_t *cats;     /* category name -> vocabulary index (insertion order) */
    mms_strmap_t *seen_ann; /* "image:annotation" ids already counted */
    mms_strmap_t *seen_cap;
    caption_t *cap;
    size_t ncap, capcap;
    mms_strmap_t *words; /* caption words used as tags: stable key storage */
    int64_t *order;      /* catalog images (indices into img), sorted by id */
    int64_t norder;
    mms_coco_counts_t counts;
    int finished;
};

/* --------------------------------------------------------------- helpers */

static size_t id_key(char *buf, size_t cap, int64_t id) {
    return (size_t)snprintf(buf, cap, "%lld", (long long)id);
}

static size_t pair_key(char *buf, size_t cap, int64_t a, int64_t b) {
    return (size_t)snprintf(buf, cap, "%lld:%lld", (long long)a, (long long)b);
}

static mms_status load_json(const char *buf, size_t len, const char *name, json_t **out) {
    json_error_t e;
    json_t *root = json_loadb(buf, len, 0, &e);
    MMS_CHECK(root, MMS_ERR_FORMAT, "%s: malformed JSON at line %d, column %d: %s", name, e.line,
              e.column, e.text);
    if (!json_is_object(root)) {
        json_decref(root);
        MMS_CHECK(0, MMS_ERR_FORMAT, "%s: the top level is not a JSON object", name);
    }
    *out = root;
    return MMS_OK;
}

/* root[key] as an array; *arr = NULL when absent and optional. */
static mms_status get_array(json_t *root, const char *key, const char *name, int required,
                            json_t **arr) {
    *arr = json_object_get(root, key);
    MMS_CHECK(*arr || !required, MMS_ERR_FORMAT, "%s: missing key '%s'", name, key);
    MMS_CHECK(!*arr || json_is_array(*arr), MMS_ERR_FORMAT, "%s: '%s' is not an array", name, key);
    return MMS_OK;
}

static mms_status get_elem(json_t *arr, size_t i, const char *name, const char *aname,
                           json_t **obj) {
    *obj = json_array_get(arr, i);
    MMS_CHECK(json_is_object(*obj), MMS_ERR_FORMAT, "%s: %s[%zu] is not an object", name, aname, i);
    return MMS_OK;
}

/* obj[key] as an integer. When absent: an error if required, else *present = 0. */
static mms_status get_int(json_t *obj, const char *key, const char *name, const char *aname,
                          size_t i, int required, int64_t *out, int *present) {
    json_t *v = json_object_get(obj, key);
    if (present) *present = v != NULL;
    MMS_CHECK(v || !required, MMS_ERR_FORMAT, "%s: %s[%zu].%s is missing", name, aname, i, key);
    if (!v) return MMS_OK;
    MMS_CHECK(json_is_integer(v), MMS_ERR_FORMAT, "%s: %s[%zu].%s is not an integer", name, aname,
              i, key);
    *out = (int64_t)json_integer_value(v);
    return MMS_OK;
}

static mms_status get_str(json_t *obj, const char *key, const char *name, const char *aname,
                          size_t i, const char **out) {
    json_t *v = json_object_get(obj, key);
    MMS_CHECK(v, MMS_ERR_FORMAT, "%s: %s[%zu].%s is missing", name, aname, i, key);
    MMS_CHECK(json_is_string(v), MMS_ERR_FORMAT, "%s: %s[%zu].%s is not a string", name, aname, i,
              key);
    *out = json_string_value(v);
    return MMS_OK;
}

static int has_ctrl(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* --------------------------------------------------------------- lifecycle */

mms_status mms_coco_create(mms_coco_t **out) {
    *out = NULL;
    mms_coco_t *c;
    MMS_CALL(mms_calloc(1, sizeof *c, &c));
    mms_status s;
    MMS_CALL_GOTO(s, fail, mms_strmap_create(256, &c->ids));
    MMS_CALL_GOTO(s, fail, mms_strmap_create(64, &c->cats));
    MMS_CALL_GOTO(s, fail, mms_strmap_create(256, &c->seen_ann));
    MMS_CALL_GOTO(s, fail, mms_strmap_create(256, &c->seen_cap));
    MMS_CALL_GOTO(s, fail, mms_strmap_create(256, &c->words));
    *out = c;
    return MMS_OK;
fail:
    mms_coco_destroy(&c);
    return s;
}

void mms_coco_destroy(mms_coco_t **cp) {
    if (!cp || !*cp) return;
    mms_coco_t *c = *cp;
    for (int i = 0; i < c->nsrc; i++) {
        free(c->src_name[i]);
        free(c->src_dir[i]);
    }
    for (size_t i = 0; i < c->nimg; i++) {
        img_t *m = &c->img[i];
        free(m->file);
        free(m->cc);
        free(m->caps);
        free(m->tags);
        free(m->obj_names);
        free(m->obj_counts);
        free(m->where);
    }
    free(c->img);
    for (size_t i = 0; i < c->ncap; i++)
        free(c->cap[i].text);
    free(c->cap);
    free(c->order);
    mms_strmap_destroy(&c->ids);
    mms_strmap_destroy(&c->cats);
    mms_strmap_destroy(&c->seen_ann);
    mms_strmap_destroy(&c->seen_cap);
    mms_strmap_destroy(&c->words);
    free(c);
    *cp = NULL;
}

/* --------------------------------------------------------------- instances */

/* categories[] -> per-file map "category id" -> vocabulary index. */
static mms_status read_categories(mms_coco_t *c, json_t *arr, const char *name,
                                  mms_strmap_t *catid) {
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o;
        int64_t id;
        const char *nm;
        MMS_CALL(get_elem(arr, i, name, "categories", &o));
        MMS_CALL(get_int(o, "id", name, "categories", i, 1, &id, NULL));
        MMS_CALL(get_str(o, "name", name, "categories", i, &nm));
        size_t len = strlen(nm);
        const char *bad = strpbrk(nm, "|,:");
        MMS_CHECK(len > 0 && len < 256, MMS_ERR_FORMAT,
                  "%s: categories[%zu].name is empty or longer than 255 bytes", name, i);
        /* '|' separates tags, ',' and ':' separate objects.tsv entries */
        MMS_CHECK(!bad, MMS_ERR_FORMAT, "%s: categories[%zu].name '%s' contains '%c'", name, i, nm,
                  bad ? *bad : ' ');
        MMS_CHECK(!has_ctrl(nm), MMS_ERR_FORMAT,
                  "%s: categories[%zu].name contains a control character", name, i);
        int64_t vocab;
        MMS_CALL(mms_strmap_put(c->cats, nm, len, (int64_t)mms_strmap_size(c->cats), NULL, &vocab));
        char key[32];
        size_t kl = id_key(key, sizeof key, id);
        int ins;
        int64_t prev;
        MMS_CALL(mms_strmap_put(catid, key, kl, vocab, &ins, &prev));
        MMS_CHECK(ins || prev == vocab, MMS_ERR_FORMAT,
                  "%s: categories[%zu].id %lld is used twice, for '%s' and '%s'", name, i,
                  (long long)id, mms_strmap_key(c->cats, (size_t)prev), nm);
    }
    return MMS_OK;
}

/* images[] -> merged images; per-file map "image id" -> index into c->img. */
static mms_status read_images(mms_coco_t *c, int src, json_t *arr, const char *name,
                              mms_strmap_t *imgid) {
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o;
        int64_t id;
        const char *fn;
        MMS_CALL(get_elem(arr, i, name, "images", &o));
        MMS_CALL(get_int(o, "id", name, "images", i, 1, &id, NULL));
        MMS_CHECK(id >= 0, MMS_ERR_FORMAT, "%s: images[%zu].id %lld is negative", name, i,
                  (long long)id);
        MMS_CALL(get_str(o, "file_name", name, "images", i, &fn));
        MMS_CHECK(fn[0] && strlen(fn) < 1024, MMS_ERR_FORMAT,
                  "%s: images[%zu].file_name is empty or longer than 1023 bytes", name, i);
        MMS_CHECK(fn[0] != '/' && !has_ctrl(fn), MMS_ERR_FORMAT,
                  "%s: images[%zu].file_name '%.60s' is an absolute path or contains a control "
                  "character (want a name inside the --images folder)",
                  name, i, fn);
        char key[32];
        size_t kl = id_key(key, sizeof key, id);
        int ins;
        int64_t at;
        MMS_CALL(mms_strmap_put(c->ids, key, kl, (int64_t)c->nimg, &ins, &at));
        if (ins) {
            MMS_CALL(mms_grow(&c->img, sizeof *c->img, c->nimg + 1, &c->capimg));
            img_t *m = &c->img[c->nimg];
            memset(m, 0, sizeof *m);
            m->id = id;
            m->src = src;
            m->pos = (int64_t)i;
            m->file = strdup(fn);
            MMS_CHECK(m->file, MMS_ERR_NOMEM, "out of memory");
            c->nimg++;
        }
        img_t *m = &c->img[at];
        MMS_CHECK(!strcmp(m->file, fn), MMS_ERR_MISMATCH,
                  "%s: images[%zu] (id %lld) has file_name '%s', but %s: images[%lld] gives '%s' "
                  "for the same id",
                  name, i, (long long)id, fn, c->src_name[m->src], (long long)m->pos, m->file);
        m->srcmask |= (uint64_t)1 << src;
        MMS_CALL(mms_strmap_put(imgid, key, kl, at, NULL, NULL));
    }
    return MMS_OK;
}

static mms_status read_annotations(mms_coco_t *c, json_t *arr, const char *name,
                                   mms_strmap_t *imgid, mms_strmap_t *catid) {
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o;
        int64_t image_id, cat_id, crowd = 0, ann_id = 0;
        int has_crowd, has_id;
        MMS_CALL(get_elem(arr, i, name, "annotations", &o));
        MMS_CALL(get_int(o, "image_id", name, "annotations", i, 1, &image_id, NULL));
        MMS_CALL(get_int(o, "category_id", name, "annotations", i, 1, &cat_id, NULL));
        MMS_CALL(get_int(o, "iscrowd", name, "annotations", i, 0, &crowd, &has_crowd));
        MMS_CHECK(crowd == 0 || crowd == 1, MMS_ERR_FORMAT,
                  "%s: annotations[%zu].iscrowd is %lld, not 0 or 1", name, i, (long long)crowd);
        MMS_CALL(get_int(o, "id", name, "annotations", i, 0, &ann_id, &has_id));
        char key[48];
        size_t kl = id_key(key, sizeof key, image_id);
        int64_t at, vocab;
        MMS_CHECK(mms_strmap_get(imgid, key, kl, &at), MMS_ERR_FORMAT,
                  "%s: annotations[%zu].image_id %lld is not in this file's images", name, i,
                  (long long)image_id);
        kl = id_key(key, sizeof key, cat_id);
        MMS_CHECK(mms_strmap_get(catid, key, kl, &vocab), MMS_ERR_FORMAT,
                  "%s: annotations[%zu].category_id %lld is not in this file's categories", name, i,
                  (long long)cat_id);
        if (has_id) {
            int ins;
            kl = pair_key(key, sizeof key, image_id, ann_id);
            MMS_CALL(mms_strmap_put(c->seen_ann, key, kl, 0, &ins, NULL));
            if (!ins) {
                c->counts.dup_annotations++;
                continue;
            }
        }
        img_t *m = &c->img[at];
        m->nann++;
        c->counts.annotations++;
        int k = 0;
        while (k < m->ncc && m->cc[k].cat != (int32_t)vocab)
            k++;
        if (k == m->ncc) {
            MMS_CHECK(m->ncc < INT_MAX, MMS_ERR_NOMEM, "too many entries for one image");
            MMS_CALL(mms_grow(&m->cc, sizeof *m->cc, (size_t)m->ncc + 1, &m->capcc));
            m->cc[k].cat = (int32_t)vocab;
            m->cc[k].count = 0;
            m->ncc++;
        }
        if (!crowd) m->cc[k].count++;
    }
    return MMS_OK;
}

mms_status mms_coco_add_instances(mms_coco_t *c, const char *json, size_t len, const char *name,
                                  const char *image_dir) {
    MMS_CHECK(!c->finished, MMS_ERR_INTERNAL, "coco: add after finish");
    name = name ? name : "instances";
    MMS_CHECK(c->nsrc < MMS_COCO_MAX_SOURCES, MMS_ERR_ARG,
              "%s: more than %d instances files in one import", name, MMS_COCO_MAX_SOURCES);
    int src = c->nsrc;
    c->src_name[src] = strdup(name);
    c->src_dir[src] = strdup(image_dir ? image_dir : ".");
    c->nsrc++;
    MMS_CHECK(c->src_name[src] && c->src_dir[src], MMS_ERR_NOMEM, "out of memory");
    json_t *root, *cats, *imgs, *anns;
    MMS_CALL(load_json(json, len, name, &root));
    mms_strmap_t *catid = NULL, *imgid = NULL;
    mms_status s;
    MMS_CALL_GOTO(s, out, get_array(root, "images", name, 1, &imgs));
    MMS_CALL_GOTO(s, out, get_array(root, "categories", name, 1, &cats));
    MMS_CALL_GOTO(s, out, get_array(root, "annotations", name, 1, &anns));
    MMS_CALL_GOTO(s, out, mms_strmap_create(json_array_size(cats), &catid));
    MMS_CALL_GOTO(s, out, mms_strmap_create(json_array_size(imgs), &imgid));
    MMS_CALL_GOTO(s, out, read_categories(c, cats, name, catid));
    MMS_CALL_GOTO(s, out, read_images(c, src, imgs, name, imgid));
    MMS_CALL_GOTO(s, out, read_annotations(c, anns, name, imgid, catid));
out:
    mms_strmap_destroy(&catid);
    mms_strmap_destroy(&imgid);
    json_decref(root);
    return s;
}

/* --------------------------------------------------------------- captions */

static mms_status read_captions(mms_coco_t *c, json_t *root, const char *name) {
    json_t *imgs, *anns;
    MMS_CALL(get_array(root, "images", name, 0, &imgs));
    MMS_CALL(get_array(root, "annotations", name, 1, &anns));
    mms_strmap_t *listed = NULL;
    mms_status s = MMS_OK;
    char key[48];
    if (imgs) {
        MMS_CALL(mms_strmap_create(json_array_size(imgs), &listed));
        for (size_t i = 0; i < json_array_size(imgs); i++) {
            json_t *o;
            int64_t id;
            MMS_CALL_GOTO(s, out, get_elem(imgs, i, name, "images", &o));
            MMS_CALL_GOTO(s, out, get_int(o, "id", name, "images", i, 1, &id, NULL));
            MMS_CALL_GOTO(s, out,
                          mms_strmap_put(listed, key, id_key(key, sizeof key, id), 0, NULL, NULL));
        }
    }
    for (size_t i = 0; i < json_array_size(anns); i++) {
        json_t *o;
        int64_t image_id, ann_id = 0;
        int has_id;
        const char *text;
        MMS_CALL_GOTO(s, out, get_elem(anns, i, name, "annotations", &o));
        MMS_CALL_GOTO(s, out, get_int(o, "image_id", name, "annotations", i, 1, &image_id, NULL));
        MMS_CALL_GOTO(s, out, get_str(o, "caption", name, "annotations", i, &text));
        MMS_CALL_GOTO(s, out, get_int(o, "id", name, "annotations", i, 0, &ann_id, &has_id));
        MMS_CHECK_GOTO(
            s, out, !listed || mms_strmap_get(listed, key, id_key(key, sizeof key, image_id), NULL),
            MMS_ERR_FORMAT, "%s: annotations[%zu].image_id %lld is not in this file's images", name,
            i, (long long)image_id);
        /* trim; an empty caption carries nothing */
        while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
            text++;
        size_t tl = strlen(text);
        while (tl > 0 && (text[tl - 1] == ' ' || text[tl - 1] == '\t' || text[tl - 1] == '\n' ||
                          text[tl - 1] == '\r'))
            tl--;
        if (tl == 0) continue;
        if (has_id) {
            int ins;
            MMS_CALL_GOTO(s, out,
                          mms_strmap_put(c->seen_cap, key,
                                         pair_key(key, sizeof key, image_id, ann_id), 0, &ins,
                                         NULL));
            if (!ins) {
                c->counts.dup_captions++;
                continue;
            }
        }
        MMS_CALL_GOTO(s, out, mms_grow(&c->cap, sizeof *c->cap, c->ncap + 1, &c->capcap));
        c->cap[c->ncap].image_id = image_id;
        c->cap[c->ncap].text = strndup(text, tl);
        MMS_CHECK_GOTO(s, out, c->cap[c->ncap].text, MMS_ERR_NOMEM, "out of memory");
        c->ncap++;
    }
out:
    mms_strmap_destroy(&listed);
    return s;
}

mms_status mms_coco_add_captions(mms_coco_t *c, const char *json, size_t len, const char *name) {
    MMS_CHECK(!c->finished, MMS_ERR_INTERNAL, "coco: add after finish");
    name = name ? name : "captions";
    json_t *root;
    MMS_CALL(load_json(json, len, name, &root));
    mms_status s = read_captions(c, root, name);
    json_decref(root);
    return s;
}

/* --------------------------------------------------------------- finish */

typedef struct {
    mms_coco_t *c;
    img_t *m;
} tag_sink_t;

/* Append a caption word to the image's tags unless it is a category already. */
static mms_status add_word_tag(void *arg, const char *w) {
    tag_sink_t *t = arg;
    img_t *m = t->m;
    for (int k = 0; k < m->ntags; k++)
        if (!strcmp(m->tags[k], w)) return MMS_OK;
    int64_t at;
    MMS_CALL(mms_strmap_put(t->c->words, w, strlen(w), (int64_t)mms_strmap_size(t->c->words), NULL,
                            &at));
    MMS_CALL(mms_grow(&m->tags, sizeof *m->tags, (size_t)m->ntags + 1, &m->captags));
    m->tags[m->ntags++] = mms_strmap_key(t->c->words, (size_t)at);
    return MMS_OK;
}

/* Append to m->tags the caption words found in >= MMS_TEXT_CAPTION_VOTES of
 * its captions. */
static mms_status caption_words(mms_coco_t *c, img_t *m, const mms_strmap_t *stop) {
    tag_sink_t sink = {c, m};
    MMS_CALL(mms_text_caption_words(m->caps, m->ncap, MMS_TEXT_CAPTION_VOTES,
                                    stop, add_word_tag, &sink));
    return MMS_OK;
}

static int cmp_order(const void *a, const void *b, void *arg) {
    const img_t *img = arg;
    int64_t x = img[*(const int64_t *)a].id, y = img[*(const int64_t *)b].id;
    return (x > y) - (x < y);
}

/* Sort an image's category entries by name (insertion sort: a handful). */
static void sort_cc(const mms_coco_t *c, img_t *m) {
    for (int i = 1; i < m->ncc; i++)
        for (int j = i; j > 0; j--) {
            const char *a = mms_strmap_key(c->cats, (size_t)m->cc[j - 1].cat);
            const char *b = mms_strmap_key(c->cats, (size_t)m->cc[j].cat);
            if (strcmp(a, b) <= 0) break;
            catcnt_t t = m->cc[j];
            m->cc[j] = m->cc[j - 1];
            m->cc[j - 1] = t;
        }
}

static mms_status finish_image(mms_coco_t *c, img_t *m, int caption_tags, const mms_strmap_t *stop,
                               uint8_t *cat_used) {
    sort_cc(c, m);
    int n = m->ncc > 0 ? m->ncc : 1;
    MMS_CALL(mms_grow(&m->tags, sizeof *m->tags, (size_t)n, &m->captags));
    MMS_CALL(mms_malloc((size_t)n * sizeof *m->obj_names, &m->obj_names));
    MMS_CALL(mms_malloc((size_t)n * sizeof *m->obj_counts, &m->obj_counts));
    for (int k = 0; k < m->ncc; k++) {
        const char *nm = mms_strmap_key(c->cats, (size_t)m->cc[k].cat);
        cat_used[m->cc[k].cat] = 1;
        m->tags[m->ntags++] = nm;
        if (m->cc[k].count > 0) {
            m->obj_names[m->nobj] = nm;
            m->obj_counts[m->nobj++] = m->cc[k].count;
        }
    }
    if (caption_tags) MMS_CALL(caption_words(c, m, stop));
    size_t wl = strlen(c->src_name[m->src]) + 48;
    MMS_CALL(mms_malloc(wl, &m->where));
    snprintf(m->where, wl, "%s: images[%lld]", c->src_name[m->src], (long long)m->pos);
    return MMS_OK;
}

mms_status mms_coco_finish(mms_coco_t *c, int caption_tags) {
    MMS_CHECK(!c->finished, MMS_ERR_INTERNAL, "coco: finish called twice");
    c->finished = 1;
    MMS_CALL(mms_malloc((c->nimg ? c->nimg : 1) * sizeof *c->order, &c->order));
    c->norder = 0;
    for (size_t i = 0; i < c->nimg; i++)
        if (c->img[i].nann > 0) c->order[c->norder++] = (int64_t)i;
    qsort_r(c->order, (size_t)c->norder, sizeof *c->order, cmp_order, c->img);
    c->counts.listed = (int64_t)c->nimg;
    c->counts.images = c->norder;
    c->counts.unannotated = (int64_t)c->nimg - c->norder;
    /* captions in the order they were read, to catalog images only */
    for (size_t i = 0; i < c->ncap; i++) {
        char key[32];
        int64_t at;
        if (!mms_strmap_get(c->ids, key, id_key(key, sizeof key, c->cap[i].image_id), &at))
            continue;
        img_t *m = &c->img[at];
        if (m->nann == 0) continue;
        MMS_CHECK(m->ncap < INT_MAX, MMS_ERR_NOMEM, "too many entries for one image");
        MMS_CALL(mms_grow(&m->caps, sizeof *m->caps, (size_t)m->ncap + 1, &m->capcap));
        m->caps[m->ncap++] = c->cap[i].text;
        c->counts.captions++;
    }
    mms_strmap_t *stop = NULL;
    uint8_t *cat_used = NULL;
    mms_status s;
    MMS_CALL_GOTO(s, out, mms_text_stopwords(&stop));
    MMS_CALL_GOTO(s, out, mms_calloc(mms_strmap_size(c->cats) + 1, 1, &cat_used));
    for (int64_t i = 0; i < c->norder; i++)
        MMS_CALL_GOTO(s, out, finish_image(c, &c->img[c->order[i]], caption_tags, stop, cat_used));
    for (size_t k = 0; k < mms_strmap_size(c->cats); k++)
        c->counts.categories += cat_used[k];
out:
    free(cat_used);
    mms_strmap_destroy(&stop);
    return s;
}

/* --------------------------------------------------------------- access */

int64_t mms_coco_count(const mms_coco_t *c) { return c->finished ? c->norder : 0; }

void mms_coco_image(const mms_coco_t *c, int64_t i, mms_coco_image_t *out) {
    const img_t *m = &c->img[c->order[i]];
    out->id = m->id;
    out->file_name = m->file;
    out->where = m->where;
    out->nsources = __builtin_popcountll(m->srcmask);
    out->tags = m->tags;
    out->ntags = m->ntags;
    out->obj_names = m->obj_names;
    out->obj_counts = m->obj_counts;
    out->nobj = m->nobj;
    out->captions = m->caps;
    out->ncaptions = m->ncap;
}

void mms_coco_get_counts(const mms_coco_t *c, mms_coco_counts_t *out) { *out = c->counts; }

int mms_coco_image_dirs(const mms_coco_t *c, int64_t i, const char **dirs, int cap) {
    const img_t *m = &c->img[c->order[i]];
    int n = 0;
    for (int s = 0; s < c->nsrc && n < cap; s++)
        if (m->srcmask & ((uint64_t)1 << s)) dirs[n++] = c->src_dir[s];
    return n;
}

int mms_coco_split(uint64_t seed, double test_fraction, int64_t image_id) {
    uint64_t h = mms_rng_hash(seed, MMS_STREAM_SPLIT, (uint64_t)image_id, 0);
    double u = mms_rng_unit(h);
    return u < test_fraction ? MMS_SPLIT_TEST : MMS_SPLIT_TRAIN;
}

/* --------------------------------------------------------------- import */

/* Absolute path of image i's JPEG: the first folder (in source order) holding
 * a regular file of that name. */
static mms_status locate_jpeg(const mms_coco_t *c, int64_t i, char **out) {
    *out = NULL;
    mms_coco_image_t im;
    mms_coco_image(c, i, &im);
    const char *dirs[MMS_COCO_MAX_SOURCES];
    int nd = mms_coco_image_dirs(c, i, dirs, MMS_COCO_MAX_SOURCES);
    char first[MMS_PATH_MAX] = "";
    for (int k = 0; k < nd; k++) {
        char p[MMS_PATH_MAX];
        MMS_CALL(mms_path_join(p, sizeof p, dirs[k], im.file_name));
        if (k == 0) strcpy(first, p);
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        *out = realpath(p, NULL);
        MMS_CHECK(*out, MMS_ERR_IO, "%s (id %lld): cannot resolve the path of %s", im.where,
                  (long long)im.id, p);
        MMS_CHECK(!has_ctrl(*out), MMS_ERR_FORMAT,
                  "%s (id %lld): path %s contains a control character", im.where, (long long)im.id,
                  *out);
        return MMS_OK;
    }
    MMS_CHECK(0, MMS_ERR_IO, "%s (id %lld): JPEG not found: %s", im.where, (long long)im.id, first);
}

static mms_status read_sources(mms_coco_t *c, const mms_coco_import_opts_t *o) {
    for (int k = 0; k < o->nsources; k++) {
        char *buf;
        size_t len;
        MMS_CALL(mms_read_file(o->instances[k], &buf, &len));
        mms_status s = mms_coco_add_instances(c, buf, len, o->instances[k], o->image_dirs[k]);
        free(buf);
        MMS_CALL(s);
    }
    for (int k = 0; k < o->ncaptions; k++) {
        char *buf;
        size_t len;
        MMS_CALL(mms_read_file(o->captions[k], &buf, &len));
        mms_status s = mms_coco_add_captions(c, buf, len, o->captions[k]);
        free(buf);
        MMS_CALL(s);
    }
    return MMS_OK;
}

static mms_status write_catalog(const mms_coco_t *c, const mms_coco_import_opts_t *o,
                                char *const *paths) {
    int64_t n = mms_coco_count(c);
    int dim = mms_descriptor_dim();
    char source[256];
    snprintf(source, sizeof source, "coco: %d instances files, %d captions files", o->nsources,
             o->ncaptions);
    mms_catalog_writer_t *w = NULL;
    float *x = NULL;
    mms_status s;
    MMS_CALL(mms_catalog_writer_open(o->out_dir, o->force, dim, 0, source, &w));
    char frac[32];
    snprintf(frac, sizeof frac, "%.17g", o->test_fraction);
    MMS_CALL_GOTO(s, fail, mms_catalog_writer_set_str(w, "importer", "coco"));
    MMS_CALL_GOTO(s, fail, mms_catalog_writer_set_str(w, "descriptor", MMS_DESCRIPTOR_NAME));
    MMS_CALL_GOTO(s, fail, mms_catalog_writer_set_int(w, "seed", (int64_t)o->seed));
    MMS_CALL_GOTO(s, fail, mms_catalog_writer_set_str(w, "test_fraction", frac));
    MMS_CALL_GOTO(s, fail, mms_catalog_writer_set_int(w, "caption_tags", o->caption_tags ? 1 : 0));
    MMS_CALL_GOTO(s, fail, mms_import_val_record(w, o->val_fraction));
    MMS_CALL_GOTO(s, fail, mms_malloc((size_t)dim * sizeof *x, &x));
    mms_progress_t pr;
    mms_progress_begin(&pr, "coco descriptors", n, "images");
    for (int64_t i = 0; i < n; i++) {
        mms_coco_image_t im;
        mms_coco_image(c, i, &im);
        MMS_CALL_GOTO(s, fail, mms_descriptor_from_jpeg_file(paths[i], x));
        char id[32];
        id_key(id, sizeof id, im.id);
        mms_catalog_row_t row = {
            .where = im.where,
            .id = id,
            .split = mms_import_val_split(mms_coco_split(o->seed, o->test_fraction, im.id), id,
                                          o->val_fraction),
            .tags = im.tags,
            .ntags = im.ntags,
            .features = x,
            .obj_names = im.obj_names,
            .obj_counts = im.obj_counts,
            .nobj = im.nobj,
            .captions = im.captions,
            .ncaptions = im.ncaptions,
            .path = paths[i],
        };
        MMS_CALL_GOTO(s, fail, mms_catalog_writer_add(w, &row));
        mms_progress_update(&pr, i + 1);
    }
    mms_progress_end(&pr);
    free(x);
    MMS_CALL(mms_catalog_writer_finish(&w));
    return MMS_OK;
fail:
    free(x);
    mms_catalog_writer_abort(&w);
    return s;
}

mms_status mms_coco_import(const mms_coco_import_opts_t *o, mms_coco_counts_t *counts) {
    double t0 = mms_now();
    MMS_CHECK(o->nsources >= 1, MMS_ERR_ARG,
              "import coco: give at least one --images folder with its --instances file");
    MMS_CHECK(o->nsources <= MMS_COCO_MAX_SOURCES, MMS_ERR_ARG,
              "import coco: at most %d --images/--instances pairs", MMS_COCO_MAX_SOURCES);
    MMS_CHECK(o->test_fraction >= 0.0 && o->test_fraction < 1.0, MMS_ERR_ARG,
              "import coco: --test-fraction must be in [0, 1), got %g", o->test_fraction);
    MMS_CALL(mms_import_val_check("import coco", o->val_fraction));
    MMS_CHECK(o->out_dir && o->out_dir[0], MMS_ERR_ARG, "import coco: --out is empty");
    MMS_CHECK(o->force || !mms_path_exists(o->out_dir), MMS_ERR_EXISTS,
              "import coco: output '%s' exists (use --force to replace it)", o->out_dir);
    for (int k = 0; k < o->nsources; k++)
        MMS_CHECK(mms_path_is_dir(o->image_dirs[k]), MMS_ERR_IO,
                  "import coco: --images '%s' (paired with --instances %s) is not a directory",
                  o->image_dirs[k], o->instances[k]);
    mms_coco_t *c = NULL;
    char **paths = NULL;
    int64_t n = 0;
    mms_status s;
    MMS_CALL(mms_coco_create(&c));
    MMS_CALL_GOTO(s, out, read_sources(c, o));
    MMS_CALL_GOTO(s, out, mms_coco_finish(c, o->caption_tags));
    mms_coco_counts_t k;
    mms_coco_get_counts(c, &k);
    if (counts) *counts = k;
    mms_log_info("coco: %lld images listed, %lld without annotations skipped, %lld to import; "
                 "%lld annotations (%lld repeated ones merged), %lld captions (%lld repeated), "
                 "%lld categories",
                 (long long)k.listed, (long long)k.unannotated, (long long)k.images,
                 (long long)k.annotations, (long long)k.dup_annotations, (long long)k.captions,
                 (long long)k.dup_captions, (long long)k.categories);
    n = mms_coco_count(c);
    MMS_CHECK_GOTO(s, out, n > 0, MMS_ERR_FORMAT,
                   "import coco: no annotated images in the %d instances files", o->nsources);
    MMS_CALL_GOTO(s, out, mms_calloc((size_t)n, sizeof *paths, &paths));
    for (int64_t i = 0; i < n; i++)
        MMS_CALL_GOTO(s, out, locate_jpeg(c, i, &paths[i]));
    double t1 = mms_now();
    MMS_CALL_GOTO(s, out, write_catalog(c, o, paths));
    double t2 = mms_now();
    mms_log_info("coco: wrote %lld images to %s in %.2f s (JSON %.2f s, descriptors %.1f images/s)",
                 (long long)n, o->out_dir, t2 - t0, t1 - t0,
                 (double)n / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
out:
    if (paths)
        for (int64_t i = 0; i < n; i++)
            free(paths[i]);
    free(paths);
    mms_coco_destroy(&c);
    return s;
}
