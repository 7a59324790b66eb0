/* SPDX-License-Identifier: MIT */
/* Per-thread caches: attaching a cache to a thread, the full get and put
 * operations with refill and spill, and flush. The protocol and its
 * argument are in cache.h; its locked side (arming, reclaim, emptying) is in
 * locked.c, and thread tables and thread exit are in registry.c. */
#include <errno.h>
#include <string.h>

#include "cache.h"
#include "index.h"
#include "locked.h"

static void cache_refill(mempool *pool, struct cache *c);
static bool cache_spill(mempool *pool, struct cache *c, uint32_t cold);

static struct cache *cache_attach(mempool *pool)
{
    struct cache_table *table = &mempool__cache_table;
    uint32_t slot = pool->cache_slot;
    if (slot == UINT32_MAX || !mempool__table_reserve(table, slot))
        return NULL;
    struct cache_slot *entry = &table->slots[slot];
    /* An older occupant belonged to a destroyed pool (slots are reused only
     * after destroy), which detached it: it is this thread's to free. */
    if (entry->cache)
        mempool__cache_free(entry->cache);
    entry->pool_id = pool->id;
    entry->cache = mempool__os_alloc(cache_bytes(pool->cache_size), CACHE_LINE);
    struct cache *c = entry->cache;
    if (!c)
        return NULL; /* recorded: this thread runs uncached for the pool */
    c->size = pool->cache_size;
    c->pool = pool;
    pthread_mutex_lock(&pool->lock);
    /* Read under the lock, which a switch to the ordered protocol holds:
     * this thread's later reads of the flag see it at least as set. */
    atomic_store_explicit(&c->busy, cache_ordered(pool) ? CACHE_IDLE : CACHE_IDLE_FENCED,
                          memory_order_relaxed);
    atomic_store_explicit(&c->steal, pool->caches_armed && c->size, memory_order_relaxed);
    c->next = pool->caches;
    if (pool->caches)
        pool->caches->prev = c;
    pool->caches = c;
    pthread_mutex_unlock(&pool->lock);
    return c;
}

struct cache *mempool__cache_of(mempool *pool)
{
    struct cache_table *table = &mempool__cache_table;
    uint32_t slot = pool->cache_slot;
    if (slot < table->length && table->slots[slot].pool_id == pool->id)
        return table->slots[slot].cache;
    return cache_attach(pool);
}

uint32_t mempool__cache_get(mempool *pool, struct cache *c)
{
    if (!cache_enter(pool, c)) {
        mempool__cache_honour(pool, c);
        return STACK_NIL;
    }
    if (atomic_load_explicit(&c->count, memory_order_relaxed) == 0)
        cache_refill(pool, c);
    uint32_t index = cache_pop(c);
    if (cache_leave(pool, c))
        mempool__cache_honour(pool, c);
    return index;
}

bool mempool__cache_put(mempool *pool, struct cache *c, uint32_t index)
{
    if (!cache_enter(pool, c)) {
        mempool__cache_honour(pool, c);
        return false;
    }
    bool room = atomic_load_explicit(&c->count, memory_order_relaxed) < c->size ||
                cache_spill(pool, c, c->size / 2 ? c->size / 2 : 1);
    if (room)
        cache_push(pool, c, index);
    if (cache_leave(pool, c))
        mempool__cache_honour(pool, c);
    return room;
}

void mempool_flush(mempool *pool)
{
    if (!pool || !pool->cache_size)
        return;
    struct cache_table *table = &mempool__cache_table;
    uint32_t slot = pool->cache_slot;
    if (slot < table->length && table->slots[slot].pool_id == pool->id &&
        table->slots[slot].cache)
        mempool__cache_honour(pool, table->slots[slot].cache);
}

static void cache_refill(mempool *pool, struct cache *c)
{
    uint32_t taken[CACHE_SIZE_MAX];
    size_t batch = c->size / 2 ? c->size / 2 : 1;
    DEBUG_ASSERT(c->size <= CACHE_SIZE_MAX);
    size_t n = stack_pop_many(&pool->stack, taken, batch, false);
    /* The shared top is the hottest block: it goes on top of the magazine. */
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&c->blocks[n - 1 - i], taken[i], memory_order_relaxed);
    atomic_store_explicit(&c->count, (uint32_t)n, memory_order_relaxed);
}

/* Sends the `cold` bottom blocks of the magazine to the shared stack with
 * one CAS; false (nothing moved) while the stack's WAIT bit is set. */
static bool cache_spill(mempool *pool, struct cache *c, uint32_t cold)
{
    uint32_t moved[CACHE_SIZE_MAX];
    uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    DEBUG_ASSERT(cold <= n && n <= c->size && c->size <= CACHE_SIZE_MAX);
    for (uint32_t i = 0; i < cold; i++)
        moved[i] = atomic_load_explicit(&c->blocks[i], memory_order_relaxed);
    if (!stack_push_many(&pool->stack, moved, cold, false))
        return false;
    for (uint32_t i = cold; i < n; i++)
        atomic_store_explicit(&c->blocks[i - cold],
                              atomic_load_explicit(&c->blocks[i], memory_order_relaxed),
                              memory_order_relaxed);
    atomic_store_explicit(&c->count, n - cold, memory_order_relaxed);
    return true;
}

bool mempool__cache_get_many(mempool *pool, struct cache *c, uint32_t *out, size_t n)
{
    if (!cache_enter(pool, c)) {
        mempool__cache_honour(pool, c);
        return false;
    }
    uint32_t count = atomic_load_explicit(&c->count, memory_order_relaxed);
    DEBUG_ASSERT(count <= c->size && n <= c->size);
    if (count < n) {
        uint32_t taken[CACHE_SIZE_MAX];
        size_t k = stack_pop_many(&pool->stack, taken, c->size - count, false);
        for (size_t i = k; i-- > 0;)
            atomic_store_explicit(&c->blocks[count++], taken[i], memory_order_relaxed);
    }
    bool enough = count >= n;
    if (enough) {
        for (size_t i = 0; i < n; i++)
            out[i] = atomic_load_explicit(&c->blocks[count - 1 - i], memory_order_relaxed);
        count -= (uint32_t)n;
    }
    atomic_store_explicit(&c->count, count, memory_order_relaxed);
    if (cache_leave(pool, c))
        mempool__cache_honour(pool, c);
    return enough;
}

bool mempool__cache_put_many(mempool *pool, struct cache *c, const uint32_t *indices,
                             size_t n)
{
    if (!cache_enter(pool, c)) {
        mempool__cache_honour(pool, c);
        return false;
    }
    uint32_t count = atomic_load_explicit(&c->count, memory_order_relaxed);
    bool room = count + n <= c->size;
    if (!room) {
        uint32_t cold = count + (uint32_t)n - c->size;
        if (cold < c->size / 2)
            cold = c->size / 2 < count ? c->size / 2 : count;
        room = cache_spill(pool, c, cold);
    }
    if (room) {
        count = atomic_load_explicit(&c->count, memory_order_relaxed);
        DEBUG_ASSERT(count + n <= c->size);
        for (size_t i = 0; i < n; i++) {
            atomic_store_explicit(stack_entry(&pool->stack, indices[i]),
                                  ENTRY_FREE | ENTRY_CACHED, memory_order_relaxed);
            atomic_store_explicit(&c->blocks[count + i], indices[i], memory_order_relaxed);
        }
        atomic_store_explicit(&c->count, count + (uint32_t)n, memory_order_relaxed);
    }
    if (cache_leave(pool, c))
        mempool__cache_honour(pool, c);
    return room;
}
