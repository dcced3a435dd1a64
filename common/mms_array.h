/* mms_array.h: growable arrays and sorted id arrays, the two array chores
 * every stage repeats.
 *
 *   mms_grow      make room for `need` elements in a malloc'd array, doubling
 *                 its capacity (amortised O(1) appends); mms_grow_max the same
 *                 with a ceiling on the capacity (a buffer with a known bound);
 *   mms_find_i64  binary search of an int64 id in an ascending array;
 *   mms_cmp_i64   the qsort comparator of int64 ids (ascending).
 * Plain arrays only: no hidden header, no element type; the caller keeps the
 * pointer, the count and the capacity (size_t) where it likes.
 */
#ifndef MMS_ARRAY_H
#define MMS_ARRAY_H

#include <stddef.h>
#include <stdint.h>

#include "mms_status.h"

/* Smallest capacity mms_grow allocates. */
#define MMS_GROW_MIN 16

/* Make the array *arr_ptr (elements of elem bytes, room for *cap of them; NULL
 * with *cap 0 is an empty array) hold at least need elements: the capacity is
 * doubled, from at least MMS_GROW_MIN, until it does, and the array
 * reallocated (its elements kept). Nothing happens when need <= *cap. On
 * failure (MMS_ERR_NOMEM with a message naming the size) the array and *cap
 * are unchanged. Usage: MMS_CALL(mms_grow(&a, sizeof *a, n + 1, &cap)). */
mms_status mms_grow(void *arr_ptr, size_t elem, size_t need, size_t *cap);

/* mms_grow whose capacity never exceeds max (need <= max; MMS_ERR_INTERNAL
 * otherwise): the doubling stops at max, so a buffer under a known bound (a
 * request body under its size limit) never holds more than the bound. */
mms_status mms_grow_max(void *arr_ptr, size_t elem, size_t need, size_t max, size_t *cap);

/* Index of v in a[0..n) sorted ascending, or -1 if absent. */
int64_t mms_find_i64(const int64_t *a, int64_t n, int64_t v);

/* qsort comparator: int64_t ascending. */
int mms_cmp_i64(const void *a, const void *b);

#endif
