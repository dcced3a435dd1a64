/* protocol.h: the query wire protocol (docs/protocol.md), encode and decode.
 *
 * A connection starts with an 8-byte hello each way (mms_hello_*), then
 * carries frames both ways: a 4-byte big-endian length, then that
 * many bytes holding exactly one MessagePack map. A client sends request maps,
 * the server answers each with one response map, in request order.
 *
 * This file knows the wire format and nothing else: no sockets (netserver.c,
 * netclient.c), no index (the coordinator's handler). The request decoder runs
 * on bytes from the network: it never reads outside buf[0..len), never
 * crashes, never calls the handler with a half-valid request, and names the
 * field that is wrong in a message a user can act on (fuzzed: tests/fuzz/).
 * Decode failures are part of the protocol (a response carries them), not
 * library errors: the decoders return an mms_proto_error code and write the
 * message into the caller's buffer without logging anything.
 *
 * Memory: a decoded request or response owns every string and vector it points
 * to through one private arena (req->arena_, resp->arena_); mms_request_free /
 * mms_response_free release it all. A request or response built by a caller
 * may instead point at the caller's memory (borrowed): free() then releases
 * only what the helpers below allocated.
 *
 * Files: protocol_request.c (requests), protocol_response.c (responses),
 * protocol.c (names, the arena, msgpack helpers and framing they share through
 * protocol_internal.h).
 */
#ifndef MMS_PROTOCOL_H
#define MMS_PROTOCOL_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

/* The protocol version this build speaks (docs/protocol.md, "Handshake").
 * 1: frames only; 2: a connection starts with a hello each way. */
#define MMS_PROTO_VERSION 2

/* Limits (docs/protocol.md, "Limits"). */
#define MMS_PROTO_MAX_FRAME_DEFAULT (16u << 20) /* request frames, server side */
#define MMS_PROTO_MAX_RESPONSE_DEFAULT (256u << 20) /* response frames, client side */
#define MMS_PROTO_K_MAX 10000
#define MMS_PROTO_NEIGHBORS_MAX 1000
#define MMS_PROTO_TAG_K_MAX 1000
#define MMS_PROTO_MAX_TAGS 1024    /* tags in one request */
#define MMS_PROTO_MAX_STR 1024     /* bytes of one tag, of exclude or of auth */
#define MMS_PROTO_MAX_VALUES 65536 /* MessagePack values in one request (a map entry counts 2) */
#define MMS_PROTO_K_DEFAULT 10
#define MMS_PROTO_NEIGHBORS_DEFAULT 5
#define MMS_PROTO_TAG_K_DEFAULT 5

/* Error codes of the protocol. The numbers and names are stable: clients match
 * on them. 0 is success and never appears in an error map. */
typedef enum {
    MMS_PERR_OK = 0,
    MMS_PERR_MALFORMED = 1,       /* "malformed": not one MessagePack map, trailing bytes, non-string key */
    MMS_PERR_FIELD_TYPE = 2,      /* "field_type": a known field has the wrong MessagePack type */
    MMS_PERR_VECTOR_LENGTH = 3,   /* "vector_length": byte length not 4*d, empty, or d != index width */
    MMS_PERR_NON_FINITE = 4,      /* "non_finite": NaN or Inf in a vector */
    MMS_PERR_K_RANGE = 5,         /* "k_range": k, neighbors or tag_k out of range */
    MMS_PERR_VISUAL_RANGE = 6,    /* "visual_range": visual not in [0, 1] (or NaN) */
    MMS_PERR_FRAME_TOO_LARGE = 7, /* "frame_too_large": length prefix above the server's limit */
    MMS_PERR_TIMEOUT = 8,         /* "timeout": a frame not completed within the request timeout */
    MMS_PERR_JPEG = 9,            /* "jpeg": the JPEG bytes do not decode */
    MMS_PERR_NO_INPUT = 10,       /* "no_input": no image and no known tag */
    MMS_PERR_UNSUPPORTED = 11,    /* "unsupported": unknown op, or an input this index cannot use */
    MMS_PERR_INTERNAL = 12,       /* "internal": a server-side failure (a bug or out of memory) */
    MMS_PERR_UNAVAILABLE = 13,    /* "unavailable": the server is at its client limit */
    MMS_PERR_INVALID = 14,        /* "invalid": a well-typed value that is not allowed (see docs) */
    MMS_PERR_UNAUTHORIZED = 15,   /* "unauthorized": the server wants a token and 'auth' is
                                     missing or differs */
    MMS_PERR_RELOAD_REFUSED = 16, /* "reload_refused": the new index version did not open on
                                     every rank (the message says why, naming the file); the
                                     old version keeps serving */
    MMS_PERR_COUNT
} mms_proto_error;

/* Stable short name of a code ("malformed", ...); "unknown" outside the table. */
const char *mms_proto_error_name(int code);

typedef enum {
    MMS_OP_SEARCH = 0,       /* "search": top-k images for the fused query embedding */
    MMS_OP_PREDICT_TAGS = 1, /* "predict_tags": top tag_k tags for the query image */
    MMS_OP_INFO = 2,         /* "info": the index's description (free-form key/values) */
    MMS_OP_PING = 3,         /* "ping": an empty ok response */
    MMS_OP_RELOAD = 4        /* "reload": switch to the index version the server's --index
                                names now; answers with info (old and new version and
                                directory) or reload_refused */
} mms_op;
#define MMS_OP_COUNT 5
#define MMS_PROTO_HAS_RELOAD 1

const char *mms_op_name(mms_op op);

/* How the query image connects to the graph (docs/query.md): its visual
 * neighbours, its known tags, or both. The numbers are the engine's
 * MMS_ENGINE_CONNECT_* values. */
typedef enum { MMS_CONNECT_IMAGE = 0, MMS_CONNECT_TAGS = 1, MMS_CONNECT_BOTH = 2 } mms_connect;
#define MMS_PROTO_HAS_CONNECT 1
#define MMS_PROTO_HAS_NPROBE 1
#define MMS_PROTO_NPROBE_MAX 65536
#define MMS_PROTO_HAS_NEGATIVE_TAGS 1

/* "image" / "tags" / "both" (NULL outside the table). */
const char *mms_connect_name(int c);

/* The conceptual side E_t of the slider (docs/query.md): "tags", the mean of
 * the stored embeddings of the query's tags (the paper's equation 1), or
 * "node", the inductive embedding of a new node connected to those tags only
 * (no image features), the way connect "tags" embeds a query. */
typedef enum { MMS_CONCEPT_TAGS = 0, MMS_CONCEPT_NODE = 1 } mms_concept;

/* "tags" / "node" (NULL outside the table). */
const char *mms_concept_name(int c);

typedef struct mms_arena mms_arena_t; /* private to protocol.c */

/* ---- requests ---------------------------------------------------------- */

/* One request. After mms_request_decode every default has been applied and the
 * invariants below hold; a caller building a request for mms_request_encode
 * starts from mms_request_init and may point the fields at its own memory. */
typedef struct {
    uint64_t id;              /* echoed in the response; 0 when absent */
    mms_op op;
    const float *image;       /* image_dim floats in the node-feature space, or NULL;
                                 decoded: 64-byte aligned, all finite */
    int image_dim;
    const float *image_knn;   /* image_knn_dim floats in the kNN space, or NULL (only with
                                 image: the index's separate neighbour-search space) */
    int image_knn_dim;
    const uint8_t *jpeg;      /* jpeg_len bytes starting with the SOI marker, or NULL;
                                 never together with image */
    size_t jpeg_len;
    const char *const *tags;  /* ntags NUL-terminated keywords (1..MMS_PROTO_MAX_STR bytes,
                                 no NUL inside), in request order; duplicates kept */
    int ntags;
    float visual;             /* w_visual in [0, 1]; w_concept = 1 - visual */
    int visual_given;         /* 1 if the client sent visual, 0 if it is the default:
                                 1 with only an image, 0 with only tags, 0.5 with both */
    int k;                    /* 1..MMS_PROTO_K_MAX results */
    int neighbors;            /* 1..MMS_PROTO_NEIGHBORS_MAX visual neighbours of the query */
    const char *exclude;      /* an image id to drop from the results, or NULL */
    int tag_k;                /* 1..MMS_PROTO_TAG_K_MAX tags to predict */
    int predict_tags;         /* search: also predict tag_k tags (always 1 for predict_tags) */
    int connect;              /* mms_connect; MMS_CONNECT_IMAGE when absent */
    int concept;              /* mms_concept; MMS_CONCEPT_TAGS when absent */
    const char *const *negative_tags; /* nnegative_tags keywords to subtract from the concept
                                 (same rules as tags); never a query on their own */
    int nnegative_tags;
    int nprobe;               /* 0 when absent; 1..MMS_PROTO_NPROBE_MAX inverted lists to scan per
                                 shard round (approximate search, capped at the index's nlist) */
    int exact;                /* 0 when absent (the server's default); 1 (true): exact search;
                                 -1 (false): approximate (the request's or the default nprobe) */
    const char *auth;         /* the shared-secret token (1..MMS_PROTO_MAX_STR bytes, no NUL),
                                 or NULL when absent; the server compares it with its own
                                 token (when it has one) before the handler sees the request */
    mms_arena_t *arena_;      /* owns the decoded data; NULL for a caller-built request */
} mms_request_t;

/* Zero r and set the defaults (op search, k 10, neighbors 5, tag_k 5, visual
 * not given). Allocates nothing. */
void mms_request_init(mms_request_t *r);

/* Decode one request map held in buf[0..len) (the frame payload, without the
 * 4-byte length). On success returns MMS_PERR_OK and *out owns its data (free
 * with mms_request_free). On failure returns the error code, writes a message
 * naming the field into err[0..errlen) (err may be NULL), leaves *out empty
 * (safe to free), and sets *id_out (if not NULL) to the request's id when the
 * map was readable far enough to find it, else 0, so the error response can
 * still echo it. Validation done here: types, ranges, vector byte lengths a
 * multiple of 4, NaN/Inf, the JPEG SOI marker, duplicate known keys (refused,
 * "invalid"), at least one input for search/predict_tags. Not done here (the
 * handler's job): vector widths against the index, whether tags are known,
 * whether the JPEG decodes fully. Unknown keys are ignored; nil is the same
 * as an absent field. */
int mms_request_decode(const void *buf, size_t len, mms_request_t *out, uint64_t *id_out,
                       char *err, size_t errlen);

/* Append one frame (length prefix + request map) to sb. Only fields that differ
 * from "absent" are written (visual only when visual_given). On failure (out of
 * memory) sb is left as it was. */
mms_status mms_request_encode(const mms_request_t *r, msgpack_sbuffer *sb);

/* Release what r owns and re-initialise it (mms_request_init). NULL is a no-op. */
void mms_request_free(mms_request_t *r);

/* ---- responses --------------------------------------------------------- */

typedef struct {
    const char *id;          /* image id */
    float score;             /* dot product with the query embedding (higher is closer) */
    const char *const *tags; /* ntags tag names of the image */
    int ntags;
    const char *path;        /* image file for display, or NULL */
} mms_result_t;

typedef struct {
    const char *tag;
    float score;
} mms_tag_score_t;

typedef struct {
    char stage[32]; /* e.g. "embed", "scatter", "merge", "server" */
    uint64_t us;
} mms_timing_t;

typedef enum { MMS_INFO_STR = 0, MMS_INFO_INT = 1, MMS_INFO_REAL = 2 } mms_info_type;

typedef struct {
    const char *key;
    mms_info_type type;
    const char *s; /* MMS_INFO_STR */
    int64_t i;     /* MMS_INFO_INT */
    double r;      /* MMS_INFO_REAL */
} mms_info_t;

/* One response. Arrays are sized by their n* counts; *_cap is the room the
 * array has (a handler may write results[0..results_cap) directly and set
 * nresults). Strings and per-result tag arrays are either copied in by the
 * helpers (owned by the arena) or borrowed from the handler's storage, which
 * must then stay valid until the handler is called again (the server encodes
 * every response as soon as the handler returns). */
typedef struct {
    uint64_t id;                 /* the request's id */
    mms_op op;                   /* the request's op (decides which empty arrays are sent);
                                    a decoded response has MMS_OP_SEARCH */
    int ok;                      /* 1 unless an error was set */
    int error_code;              /* mms_proto_error when !ok */
    char error_message[512];     /* when !ok */
    mms_result_t *results;       /* search results, best first */
    int nresults, results_cap;
    mms_tag_score_t *tags;       /* predicted tags, best first */
    int ntags, tags_cap;
    const char **warnings;       /* e.g. "unknown keyword 'zebra'" */
    int nwarnings, warnings_cap;
    mms_timing_t *timing;        /* microseconds per stage */
    int ntiming, timing_cap;
    mms_info_t *info;            /* op info: free-form key/values */
    int ninfo, info_cap;
    mms_arena_t *arena_;         /* private */
} mms_response_t;

/* Zero r, ok = 1, copy id and op from req (req may be NULL: id 0, op search). */
void mms_response_init(mms_response_t *r, const mms_request_t *req);
/* Make room for at least nresults results and ntags predicted tags. */
mms_status mms_response_reserve(mms_response_t *r, int nresults, int ntags);
/* Append a result; id, tags and path (may be NULL) are copied. */
mms_status mms_response_add_result(mms_response_t *r, const char *id, float score,
                                   const char *const *tags, int ntags, const char *path);
/* Append a predicted tag (copied). */
mms_status mms_response_add_tag(mms_response_t *r, const char *tag, float score);
/* Append a formatted warning (copied; truncated at 1024 bytes). */
mms_status mms_response_add_warning(mms_response_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append a timing stage (the name is truncated to 31 bytes). */
mms_status mms_response_add_timing(mms_response_t *r, const char *stage, uint64_t us);
/* Append an info entry (key and value copied). */
mms_status mms_response_add_info_str(mms_response_t *r, const char *key, const char *value);
mms_status mms_response_add_info_int(mms_response_t *r, const char *key, int64_t value);
mms_status mms_response_add_info_real(mms_response_t *r, const char *key, double value);
/* A copy of s owned by the response (NULL when out of memory). */
const char *mms_response_strdup(mms_response_t *r, const char *s);
/* Mark r failed with code and a formatted message. Never fails: the message
 * lives in r->error_message. Results and tags already added are not sent;
 * warnings and timings are. */
void mms_response_set_error(mms_response_t *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append one frame (length prefix + response map) to sb; NULL strings are sent
 * as "". On failure (out of memory, frame above 4 GiB) sb is left as it was. */
mms_status mms_response_encode(const mms_response_t *r, msgpack_sbuffer *sb);

/* Decode one response map held in buf[0..len) (the frame payload). Same
 * contract as mms_request_decode: a code, a message in err, *out owning its
 * data on success and empty on failure. Unknown keys are ignored. */
int mms_response_decode(const void *buf, size_t len, mms_response_t *out, char *err,
                        size_t errlen);

/* Release what r owns and zero it. NULL is a no-op. */
void mms_response_free(mms_response_t *r);

/* ---- framing ----------------------------------------------------------- */

/* Looks at the start of a byte stream buf[0..len). Returns 1 and sets
 * *payload_len when a whole frame (4 + *payload_len bytes) is there; 0 when
 * more bytes are needed (*payload_len is set once the 4-byte prefix is in);
 * -1 when the prefix announces more than max_payload bytes (*payload_len set). */
int mms_frame_peek(const void *buf, size_t len, size_t max_payload, size_t *payload_len);

/* ---- handshake (docs/protocol.md, "Handshake") ------------------------- */

/* The hello both sides send first: "MMSG", the version as a big-endian u16,
 * then "\r\n" (so that a line-based server such as an HTTP one sees a whole
 * line and answers at once instead of waiting for more). */
#define MMS_HELLO_LEN 8
#define MMS_HELLO_MAGIC "MMSG"

/* Write the hello of `version` into out[0..MMS_HELLO_LEN). */
void mms_hello_encode(unsigned char out[MMS_HELLO_LEN], unsigned version);

/* Looks at the first len bytes a peer sent. Returns 1 and sets *version when
 * buf starts with a whole hello; 0 when the len bytes are a prefix of a hello
 * (more are needed); -1 when they cannot start one (not an mmsage peer). */
int mms_hello_parse(const void *buf, size_t len, unsigned *version);

/* 1 when buf[0..len) starts like an HTTP request line: 3..7 upper-case
 * letters then a space ("GET ", "OPTIONS "). */
int mms_hello_looks_http(const void *buf, size_t len);

/* The first bytes of buf[0..len) as printable text for a message: at most
 * 48 bytes, stopping at the first line break (CR or LF), every other
 * non-printable byte as \xHH, "..." when cut. Writes a NUL-terminated string
 * into out[0..cap) (cap >= 1) and returns out. */
char *mms_hello_describe(const void *buf, size_t len, char *out, size_t cap);

#endif
