/* response_json.c: see response_json.h. */
#include "response_json.h"

#include <math.h>

json_t *mms_json_number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

json_t *mms_response_json(const mms_response_t *r) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)r->id));
    json_object_set_new(o, "ok", json_boolean(r->ok));
    if (!r->ok) {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_integer(r->error_code));
        json_object_set_new(e, "name", json_string(mms_proto_error_name(r->error_code)));
        json_object_set_new(e, "message", json_string(r->error_message));
        json_object_set_new(o, "error", e);
    } else {
        json_t *a = json_array();
        for (int i = 0; i < r->nresults; i++) {
            const mms_result_t *x = &r->results[i];
            json_t *it = json_object(), *t = json_array();
            json_object_set_new(it, "id", json_string(x->id ? x->id : ""));
            json_object_set_new(it, "score", mms_json_number(x->score));
            for (int j = 0; j < x->ntags; j++) json_array_append_new(t, json_string(x->tags[j]));
            json_object_set_new(it, "tags", t);
            if (x->path) json_object_set_new(it, "path", json_string(x->path));
            json_array_append_new(a, it);
        }
        json_object_set_new(o, "results", a);
        if (r->ntags > 0) {
            json_t *t = json_array();
            for (int i = 0; i < r->ntags; i++) {
                json_t *it = json_object();
                json_object_set_new(it, "tag", json_string(r->tags[i].tag));
                json_object_set_new(it, "score", mms_json_number(r->tags[i].score));
                json_array_append_new(t, it);
            }
            json_object_set_new(o, "tags", t);
        }
        if (r->ninfo > 0) {
            json_t *in = json_object();
            for (int i = 0; i < r->ninfo; i++) {
                const mms_info_t *e = &r->info[i];
                json_object_set_new(in, e->key,
                                    e->type == MMS_INFO_INT ? json_integer(e->i)
                                    : e->type == MMS_INFO_REAL ? mms_json_number(e->r)
                                                               : json_string(e->s ? e->s : ""));
            }
            json_object_set_new(o, "info", in);
        }
    }
    if (r->nwarnings > 0) {
        json_t *w = json_array();
        for (int i = 0; i < r->nwarnings; i++) json_array_append_new(w, json_string(r->warnings[i]));
        json_object_set_new(o, "warnings", w);
    }
    if (r->ntiming > 0) {
        json_t *t = json_object();
        for (int i = 0; i < r->ntiming; i++)
            json_object_set_new(t, r->timing[i].stage, json_integer((json_int_t)r->timing[i].us));
        json_object_set_new(o, "timing_us", t);
    }
    return o;
}

