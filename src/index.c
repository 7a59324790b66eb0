/* SPDX-License-Identifier: MIT */
/* Block pointer <-> index, in both modes, without a division.
 *
 * Arena mode: block i is at base + i * stride. A pointer's offset is divided
 * by the stride with a shift (power-of-two stride) or a multiply by the
 * precomputed ceil(2^64 / stride) keeping the high half: for an exact
 * multiple k * stride (below 2^63) that product is k plus an error under one
 * half, so the quotient is exact; for anything else the check q * stride ==
 * offset fails, which is also how interior pointers are told apart.
 *
 * Generator mode: blocks are arbitrary pointers, so a hash table maps them to
 * indices (struct ptr_map). Memory: 8 bytes per block for index -> pointer,
 * plus 12 bytes per table slot with 2 to 4 slots per block. */
#include <errno.h>
#include <string.h>

#include "index.h"

static size_t map_slots(size_t capacity)
{
    size_t slots = 4;
    while (slots < 2 * capacity)
        slots <<= 1;
    return slots;
}

size_t mempool__map_bytes(size_t capacity)
{
    return map_slots(capacity) * (sizeof(uintptr_t) + sizeof(uint32_t));
}

void mempool__map_init(struct ptr_map *map, void *memory, size_t capacity)
{
    size_t slots = map_slots(capacity);
    map->keys = memory;
    map->values = (_Atomic uint32_t *)((char *)memory + slots * sizeof(uintptr_t));
    map->mask = slots - 1;
    map->shift = 64;
    while (slots > 1) {
        slots >>= 1;
        map->shift--;
    }
}

uint32_t mempool__register(mempool *pool, void *block)
{
    struct ptr_map *map = &pool->map;
    uintptr_t key = (uintptr_t)block;
    /* Two threads inserting one pointer probe the same sequence and meet at
     * the same first empty slot, so exactly one CAS wins and the other sees
     * the key: a duplicate is always caught, even between concurrent makes. */
    for (size_t i = map_hash(map, key);; i = (i + 1) & map->mask) {
        uintptr_t k = atomic_load_explicit(&map->keys[i], memory_order_acquire);
        if (k == 0 && atomic_compare_exchange_strong_explicit(
                          &map->keys[i], &k, key, memory_order_acq_rel,
                          memory_order_acquire)) {
            uint32_t index = (uint32_t)atomic_fetch_add_explicit(&pool->made, 1,
                                                                 memory_order_relaxed);
            atomic_store_explicit(&pool->blocks[index], block, memory_order_release);
            atomic_store_explicit(&map->values[i], index + 1, memory_order_release);
            return index;
        }
        if (k == key)
            return STACK_NIL;
    }
}

int mempool_owns(const mempool *pool, const void *block)
{
    const char *what;
    return pool && block_lookup(pool, block, &what) != STACK_NIL;
}

size_t mempool_index(const mempool *pool, const void *block)
{
    const char *what;
    uint32_t index = pool ? block_lookup(pool, block, &what) : STACK_NIL;
    return index == STACK_NIL ? SIZE_MAX : index;
}

void *mempool_block(const mempool *pool, size_t index)
{
    if (!pool || index >= pool->capacity) {
        errno = EINVAL;
        return NULL;
    }
    void *block = block_at(pool, (uint32_t)index);
    if (!block)
        errno = ENOENT;
    return block;
}
