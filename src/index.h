/* SPDX-License-Identifier: MIT */
/* Block pointer <-> index on the hot paths, inline (see index.c for the
 * scheme and its exactness argument). */
#ifndef MEMPOOL_INDEX_H
#define MEMPOOL_INDEX_H

#include "internal.h"

static inline void *block_at(const mempool *pool, uint32_t index)
{
    if (pool->base)
        return pool->base + (size_t)index * pool->stride;
    return atomic_load_explicit(&pool->blocks[index], memory_order_acquire);
}

static inline size_t map_hash(const struct ptr_map *map, uintptr_t key)
{
    /* Fibonacci hashing: the product's top bits spread aligned pointers. */
    return (size_t)(((uint64_t)key * UINT64_C(0x9E3779B97F4A7C15)) >> map->shift);
}

static inline uint32_t map_find(const struct ptr_map *map, uintptr_t key)
{
    for (size_t i = map_hash(map, key);; i = (i + 1) & map->mask) {
        uintptr_t k = atomic_load_explicit(&map->keys[i], memory_order_acquire);
        if (k == 0)
            return STACK_NIL;
        if (k == key) {
            uint32_t v = atomic_load_explicit(&map->values[i], memory_order_acquire);
            return v ? v - 1 : STACK_NIL;
        }
    }
}

static inline size_t arena_divide(const mempool *pool, uintptr_t offset)
{
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 u128;
    return (size_t)(((u128)offset * pool->stride_inverse) >> 64);
#else
    return offset / pool->stride;
#endif
}

/* Index of `block`, or STACK_NIL with *what naming why it is not one. */
static inline uint32_t block_lookup(const mempool *pool, const void *block,
                                    const char **what)
{
    if (!block) {
        *what = "null";
        return STACK_NIL;
    }
    if (!pool->base) {
        uint32_t index = map_find(&pool->map, (uintptr_t)block);
        if (index == STACK_NIL)
            *what = "foreign";
        return index;
    }
    uintptr_t offset = (uintptr_t)block - (uintptr_t)pool->base;
    if (offset >= pool->arena_bytes) {
        *what = "foreign";
        return STACK_NIL;
    }
    /* A power-of-two stride (the common case) needs a mask and a shift;
     * the arena is exactly capacity strides, so the index is in range. */
    if (likely(pool->stride_inverse == 0)) {
        if (unlikely(offset & (pool->stride - 1))) {
            *what = "interior";
            return STACK_NIL;
        }
        return (uint32_t)(offset >> pool->stride_shift);
    }
    size_t index = arena_divide(pool, offset);
    if (index >= pool->capacity || index * pool->stride != offset) {
        *what = "interior";
        return STACK_NIL;
    }
    return (uint32_t)index;
}

#endif
