/* mms_text.c: caption words (mms_text.h). ASCII letters only: a caption word
 * is a tag, and tags are matched bytewise, so no Unicode folding is attempted. */
#include "mms_text.h"

#include <stdlib.h>
#include <string.h>

#include "mms_array.h"

/* Function words and caption fillers never used as tags. */
static const char *const k_stopwords[] = {
    "a",      "about",   "above",  "across",     "after",   "against", "along",      "alongside",
    "also",   "am",      "among",  "an",         "and",     "another", "any",        "are",
    "around", "as",      "at",     "be",         "been",    "before",  "behind",     "being",
    "below",  "beneath", "beside", "besides",    "between", "beyond",  "both",       "but",
    "by",     "can",     "could",  "did",        "do",      "does",    "doing",      "down",
    "during", "each",    "either", "eight",      "else",    "etc",     "ever",       "every",
    "few",    "five",    "for",    "four",       "from",    "front",   "further",    "had",
    "has",    "have",    "having", "he",         "her",     "here",    "hers",       "him",
    "his",    "how",     "if",     "image",      "in",      "inside",  "into",       "is",
    "it",     "its",     "itself", "just",       "many",    "may",     "me",         "might",
    "more",   "most",    "much",   "must",       "my",      "near",    "next",       "nine",
    "no",     "nor",     "not",    "of",         "off",     "on",      "one",        "onto",
    "or",     "other",   "others", "our",        "out",     "outside", "over",       "own",
    "past",   "per",     "photo",  "photograph", "pic",     "picture", "pictured",   "same",
    "seven",  "several", "she",    "should",     "six",     "so",      "some",       "such",
    "ten",    "than",    "that",   "the",        "their",   "them",    "then",       "there",
    "these",  "they",    "this",   "those",      "three",   "through", "to",         "together",
    "too",    "top",     "toward", "towards",    "two",     "under",   "underneath", "until",
    "up",     "upon",    "us",     "very",       "via",     "was",     "we",         "were",
    "what",   "when",    "where",  "which",      "while",   "who",     "whom",       "whose",
    "why",    "will",    "with",   "within",     "without", "would",   "you",        "your"};

typedef struct {
    const char *w; /* NUL-terminated, lower-case, in the scratch buffer */
    int cap;       /* caption index */
} tok_t;

static int cmp_tok(const void *a, const void *b) {
    const tok_t *x = a, *y = b;
    int d = strcmp(x->w, y->w);
    return d ? d : (x->cap > y->cap) - (x->cap < y->cap);
}

static int is_alpha(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

mms_status mms_text_stopwords(mms_strmap_t **out) {
    size_t nstop = sizeof k_stopwords / sizeof k_stopwords[0];
    MMS_CALL(mms_strmap_create(nstop, out));
    for (size_t i = 0; i < nstop; i++) {
        mms_status s = mms_strmap_put(*out, k_stopwords[i], strlen(k_stopwords[i]), 0, NULL, NULL);
        if (s != MMS_OK) {
            mms_strmap_destroy(out);
            MMS_CALL(s);
        }
    }
    return MMS_OK;
}

/* A word is a run of ASCII letters not touching a digit or a non-ASCII byte
 * (so "3d" and "café" are no words), lower-cased. */
mms_status mms_text_caption_words(const char *const *caps, int ncap, int min_votes,
                                  const mms_strmap_t *stop, mms_text_word_fn emit, void *arg) {
    MMS_CHECK(min_votes >= 1, MMS_ERR_ARG, "caption words: votes must be >= 1, got %d", min_votes);
    if (ncap < min_votes) return MMS_OK;
    size_t total = 1;
    for (int k = 0; k < ncap; k++)
        total += strlen(caps[k]) + 1;
    char *scratch = NULL;
    tok_t *tok = NULL;
    size_t ntok = 0, captok = 0, used = 0;
    mms_status s;
    MMS_CALL_GOTO(s, out, mms_malloc(total, &scratch));
    for (int k = 0; k < ncap; k++) {
        const unsigned char *t = (const unsigned char *)caps[k];
        size_t i = 0;
        while (t[i]) {
            if (!is_alpha(t[i])) {
                i++;
                continue;
            }
            size_t b = i;
            while (is_alpha(t[i]))
                i++;
            size_t len = i - b;
            int glued = (b > 0 && (t[b - 1] >= 0x80 || (t[b - 1] >= '0' && t[b - 1] <= '9'))) ||
                        t[i] >= 0x80 || (t[i] >= '0' && t[i] <= '9');
            if (glued || len < 2 || len > 64) continue;
            char *w = scratch + used;
            for (size_t j = 0; j < len; j++)
                w[j] = (char)(t[b + j] >= 'A' && t[b + j] <= 'Z' ? t[b + j] + 32 : t[b + j]);
            w[len] = '\0';
            if (mms_strmap_get(stop, w, len, NULL)) continue;
            used += len + 1;
            MMS_CALL_GOTO(s, out, mms_grow(&tok, sizeof *tok, ntok + 1, &captok));
            tok[ntok].w = w;
            tok[ntok].cap = k;
            ntok++;
        }
    }
    if (ntok > 1) qsort(tok, ntok, sizeof *tok, cmp_tok); /* qsort(NULL, 0) is undefined */
    for (size_t i = 0; i < ntok;) {
        size_t j = i;
        int votes = 0;
        for (; j < ntok && !strcmp(tok[j].w, tok[i].w); j++)
            if (j == i || tok[j].cap != tok[j - 1].cap) votes++;
        if (votes >= min_votes) MMS_CALL_GOTO(s, out, emit(arg, tok[i].w));
        i = j;
    }
    s = MMS_OK;
out:
    free(tok);
    free(scratch);
    return s;
}

