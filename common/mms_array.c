/* mms_array.c: growable arrays and sorted id arrays (see mms_array.h). */
#include "mms_array.h"

#include <stdint.h>

mms_status mms_grow(void *arr_ptr, size_t elem, size_t need, size_t *cap) {
    return mms_grow_max(arr_ptr, elem, need, SIZE_MAX, cap);
}

mms_status mms_grow_max(void *arr_ptr, size_t elem, size_t need, size_t max, size_t *cap) {
    if (need <= *cap) return MMS_OK;
    MMS_CHECK(need <= max, MMS_ERR_INTERNAL, "an array capped at %zu elements asked for %zu", max,
              need);
    size_t c = *cap > MMS_GROW_MIN ? *cap : MMS_GROW_MIN;
    while (c < need) c = c > SIZE_MAX / 2 ? need : 2 * c;
    if (c > max) c = max;
    MMS_CHECK(elem == 0 || c <= SIZE_MAX / elem, MMS_ERR_NOMEM,
              "an array of %zu x %zu bytes overflows", c, elem);
    MMS_CALL(mms_realloc(c * elem, arr_ptr));
    *cap = c;
    return MMS_OK;
}

int64_t mms_find_i64(const int64_t *a, int64_t n, int64_t v) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo] == v ? lo : -1;
}

int mms_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}
