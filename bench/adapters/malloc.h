/* SPDX-License-Identifier: MIT */
/* The malloc/free adapter calls, shared by every allocator that replaces
 * malloc for its process: each such adapter only names itself and says how
 * to read its version. */
#ifndef BENCH_ADAPTERS_MALLOC_H
#define BENCH_ADAPTERS_MALLOC_H

#include <stddef.h>

void *bench_malloc_create(size_t block_size, size_t capacity);
void bench_malloc_destroy(void *heap);
void *bench_malloc_get(void *heap);
void bench_malloc_put(void *heap, void *block);

#define BENCH_MALLOC_ADAPTER(label, version_fn)                                \
    {                                                                          \
        .name = label, .version = version_fn, .create = bench_malloc_create,   \
        .destroy = bench_malloc_destroy, .get = bench_malloc_get,              \
        .put = bench_malloc_put,                                               \
    }

#endif
