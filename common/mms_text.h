/* mms_text.h: words of free text (captions): the tokenizer and stopword list
 * shared by the COCO importer and the evaluation judge. */
#ifndef MMS_TEXT_H
#define MMS_TEXT_H

#include "mms_status.h"
#include "mms_strmap.h"

/* Captions a word must appear in to count (caption tags, judge concepts). */
#define MMS_TEXT_CAPTION_VOTES 2

/* The caption-word rule: the COCO importer's caption tags (ingest/import_coco.c)
 * and the evaluation judge's concepts (eval/judge.c) use the same words. stop comes from
 * mms_text_stopwords (a new map of the stopword list; the caller destroys it).
 * Words are runs of ASCII letters not glued to a digit or a non-ASCII byte,
 * lower-cased, 2..64 letters, not stopwords; each distinct word found in at
 * least min_votes (>= 1) of caps[0..ncap) is passed once, in bytewise order,
 * to emit(arg, word) (NUL-terminated, valid during the call only). A non-OK
 * status from emit stops the scan and is returned. */
typedef mms_status (*mms_text_word_fn)(void *arg, const char *word);
mms_status mms_text_stopwords(mms_strmap_t **out);
mms_status mms_text_caption_words(const char *const *caps, int ncap, int min_votes,
                                  const mms_strmap_t *stop, mms_text_word_fn emit, void *arg);

#endif
