/* SPDX-License-Identifier: MIT */
/* A checked pool's free blocks: a FIFO ring of indices, oldest first, under
 * the pool lock (checked.c says why checked pools hand blocks out in FIFO
 * order). */
#ifndef MEMPOOL_RING_H
#define MEMPOOL_RING_H

#include "internal.h"

/* The entry of a free block of a checked pool: FREE, in the ring. */
#define ENTRY_RINGED (ENTRY_FREE | ((uint64_t)1 << 61))

static inline void ring_add(mempool *pool, uint32_t index)
{
    atomic_store_explicit(stack_entry(&pool->stack, index), ENTRY_RINGED, memory_order_relaxed);
    size_t length = atomic_load_explicit(&pool->ring_length, memory_order_relaxed);
    pool->ring[(pool->ring_head + length) % pool->capacity] = index;
    atomic_store_explicit(&pool->ring_length, length + 1, memory_order_relaxed);
}

/* The oldest free block, or STACK_NIL. */
static inline uint32_t ring_take(mempool *pool)
{
    size_t length = atomic_load_explicit(&pool->ring_length, memory_order_relaxed);
    if (!length)
        return STACK_NIL;
    uint32_t index = pool->ring[pool->ring_head];
    pool->ring_head = (pool->ring_head + 1) % pool->capacity;
    atomic_store_explicit(&pool->ring_length, length - 1, memory_order_relaxed);
    return index;
}

#endif
