/* SPDX-License-Identifier: MIT */
/* The process's malloc/free, whichever allocator provides them. A malloc
 * never runs out, so capacity is ignored and nothing can block. */
#include <stdlib.h>

#include "malloc.h"

struct heap {
    size_t block_size;
};

void *bench_malloc_create(size_t block_size, size_t capacity)
{
    (void)capacity;
    struct heap *heap = malloc(sizeof *heap);
    if (heap)
        heap->block_size = block_size;
    return heap;
}

void bench_malloc_destroy(void *heap)
{
    free(heap);
}

void *bench_malloc_get(void *heap)
{
    return malloc(((struct heap *)heap)->block_size);
}

void bench_malloc_put(void *heap, void *block)
{
    (void)heap;
    free(block);
}
