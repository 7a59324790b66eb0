/* SPDX-License-Identifier: MIT */
/* Per-thread caches: the registry of pools, attaching a cache to a thread,
 * refill and spill, reclaiming from other threads, and thread exit. The
 * protocol and its argument are in cache.h. */
#include <errno.h>
#include <string.h>

#include "cache.h"
#include "index.h"
#include "wait.h"

_Thread_local struct cache_table mempool__cache_table;

/* Pool ids and slot numbers. Slot numbers index the thread-local tables and
 * are reused after destroy, so tables stay as small as the number of live
 * pools; ids are never reused. The lock also orders destroy against thread
 * exit: a cache's `pool` is read and cleared under it. It is global, held by
 * create and destroy of any pool and by exiting threads, so fork() takes it
 * first (atfork handlers): a child then never finds it held by a thread
 * that does not exist there. */
static struct {
    pthread_mutex_t lock;
    uint64_t next_id;
    uint32_t next_slot;
    uint32_t *free_slots;
    uint32_t free_count, free_capacity;
    pthread_key_t exit_key;
    bool key_ready;
} registry = { PTHREAD_MUTEX_INITIALIZER, 1, 0, NULL, 0, 0, 0, false };

static void cache_thread_exit(void *table);

static void registry_lock(void)
{
    pthread_mutex_lock(&registry.lock);
}

static void registry_unlock(void)
{
    pthread_mutex_unlock(&registry.lock);
}

static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void registry_init(void)
{
    pthread_atfork(registry_lock, registry_unlock, registry_unlock);
}
static void cache_refill(mempool *pool, struct cache *c);
static bool cache_spill(mempool *pool, struct cache *c, uint32_t cold);
static void caches_barrier(mempool *pool);

/* Gives the pool its id and a slot (UINT32_MAX: none, so every thread runs
 * without per-thread state for it). Pools without caching get a slot too:
 * their per-thread state holds the statistics counters. */
void mempool__registry_add(mempool *pool)
{
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry.lock);
    pool->id = registry.next_id++;
    pool->cache_slot = UINT32_MAX;
    if (!registry.key_ready)
        registry.key_ready = pthread_key_create(&registry.exit_key, cache_thread_exit) == 0;
    if (registry.key_ready) {
        if (registry.free_count)
            pool->cache_slot = registry.free_slots[--registry.free_count];
        else if (registry.next_slot < UINT32_MAX)
            pool->cache_slot = registry.next_slot++;
    }
    pthread_mutex_unlock(&registry.lock);
}

static bool slot_release(uint32_t slot)
{
    if (registry.free_count == registry.free_capacity) {
        uint32_t grown = registry.free_capacity ? 2 * registry.free_capacity : 64;
        uint32_t *slots = mempool__os_alloc(grown * sizeof *slots, sizeof *slots);
        if (!slots)
            return false; /* the slot number is simply never reused */
        if (registry.free_slots)
            memcpy(slots, registry.free_slots, registry.free_count * sizeof *slots);
        mempool__os_free(registry.free_slots, registry.free_capacity * sizeof *slots,
                         sizeof *slots);
        registry.free_slots = slots;
        registry.free_capacity = grown;
    }
    registry.free_slots[registry.free_count++] = slot;
    return true;
}

/* Detaches every cache from a pool being destroyed. The blocks they hold are
 * marked free in the side array, so destroy finds them there. */
void mempool__registry_remove(mempool *pool)
{
    pthread_mutex_lock(&registry.lock);
    for (struct cache *c = pool->caches; c; c = c->next)
        c->pool = NULL;
    pool->caches = NULL;
    if (pool->cache_slot != UINT32_MAX)
        slot_release(pool->cache_slot);
    pthread_mutex_unlock(&registry.lock);
}

static size_t cache_bytes(uint32_t size)
{
    return sizeof(struct cache) + size * sizeof(uint32_t);
}

static void cache_free(struct cache *c)
{
    mempool__os_free(c, cache_bytes(c->size), CACHE_LINE);
}

/* Grows the calling thread's table to hold `slot`; false when out of memory. */
static bool table_reserve(struct cache_table *table, uint32_t slot)
{
    if (slot < table->length)
        return true;
    uint32_t length = table->length ? table->length : 8;
    while (length <= slot)
        length *= 2;
    struct cache_slot *slots = mempool__os_alloc(length * sizeof *slots, CACHE_LINE);
    if (!slots)
        return false;
    if (table->slots)
        memcpy(slots, table->slots, table->length * sizeof *slots);
    mempool__os_free(table->slots, table->length * sizeof *slots, CACHE_LINE);
    if (!table->length)
        pthread_setspecific(registry.exit_key, table);
    table->slots = slots;
    table->length = length;
    return true;
}

static struct cache *cache_attach(mempool *pool)
{
    struct cache_table *table = &mempool__cache_table;
    uint32_t slot = pool->cache_slot;
    if (slot == UINT32_MAX || !table_reserve(table, slot))
        return NULL;
    struct cache_slot *entry = &table->slots[slot];
    /* An older occupant belonged to a destroyed pool (slots are reused only
     * after destroy), which detached it: it is this thread's to free. */
    if (entry->cache)
        cache_free(entry->cache);
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

/* Moves every block of the cache to waiters or the shared stack; the pool
 * lock is held and the cache is not busy (or is the caller's own). The
 * count drops to zero before any block moves, and all of them move in one
 * hand-over: a completion check for a drain never sees a block both in the
 * cache and in the stack. The check runs even when the cache was empty: an
 * owner that was busy during an earlier check comes here when it ends. */
static size_t cache_empty_locked(mempool *pool, struct cache *c, struct wakeups *wk)
{
    uint32_t moved[CACHE_SIZE_MAX];
    uint32_t n = atomic_load_explicit(&c->count, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++)
        moved[i] = atomic_load_explicit(&c->blocks[i], memory_order_relaxed);
    atomic_store_explicit(&c->count, 0, memory_order_relaxed);
    mempool__give_locked(pool, moved, n, wk);
    if (!n)
        mempool__drain_check(pool, wk);
    return n;
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
    if (!c->size)
        return STACK_NIL;
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
    if (!c->size)
        return false;
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

void mempool__cache_honour(mempool *pool, struct cache *c)
{
    struct wakeups wk = { .n = 0 };
    pthread_mutex_lock(&pool->lock);
    cache_empty_locked(pool, c, &wk);
    mempool__wait_bit_update(pool);
    mempool__unlock_and_wake(pool, &wk);
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

size_t mempool__caches_count_locked(const mempool *pool)
{
    size_t n = 0;
    for (const struct cache *c = pool->caches; c; c = c->next)
        n += atomic_load_explicit(&c->count, memory_order_relaxed);
    return n;
}

/* Sets or clears steal on every cache (pool lock held). Stores are ordered
 * (seq_cst) so that the ordered variant's Dekker argument holds. */
static void caches_set_steal(mempool *pool, bool on)
{
    for (struct cache *c = pool->caches; c; c = c->next)
        if (c->size)
            atomic_store_explicit(&c->steal, on, memory_order_seq_cst);
}

void mempool__caches_arm(mempool *pool, bool on)
{
    if (pool->caches_armed == on)
        return;
    pool->caches_armed = on;
    caches_set_steal(pool, on);
    if (on)
        caches_barrier(pool);
}

/* The heavy barrier after steal was set, when it has anything to order: not
 * in a pool without caches, nor when the only cache is the caller's own
 * (it holds the lock and is not inside an operation). A barrier that fails
 * switches the pool to the ordered protocol for good (cache.h). */
static void caches_barrier(mempool *pool)
{
    if (cache_ordered(pool))
        return;
    const struct cache *self = cache_lookup(pool);
    const struct cache *c = pool->caches;
    while (c && (c == self || !c->size))
        c = c->next;
    if (c && !mempool__os_heavy_barrier())
        atomic_store_explicit(&pool->cache_ordered, true, memory_order_seq_cst);
}

/* True when the owner is provably outside any operation (past the barrier,
 * or past its ordered exchange), or is the calling thread: the magazine and
 * count are stable while the caller holds the lock. */
static bool cache_idle_now(const mempool *pool, const struct cache *c)
{
    if (c == cache_lookup(pool))
        return true;
    uint32_t idle = cache_ordered(pool) ? CACHE_IDLE : CACHE_IDLE_FENCED;
    return atomic_load_explicit(&c->busy, memory_order_seq_cst) == idle;
}

bool mempool__caches_idle_locked(const mempool *pool)
{
    for (const struct cache *c = pool->caches; c; c = c->next)
        if (c->size && !cache_idle_now(pool, c))
            return false;
    return true;
}

size_t mempool__caches_reclaim(mempool *pool, struct wakeups *wk, bool keep_armed)
{
    /* A polling try_get must not pay a barrier when there is nothing to
     * take: look at the counts first (an armed reclaim is for a get that is
     * about to sleep, and must look even when they read zero). */
    if (!pool->cache_size || !pool->caches ||
        (!keep_armed && !pool->caches_armed && mempool__caches_count_locked(pool) == 0))
        return 0;
    if (!pool->caches_armed) {
        caches_set_steal(pool, true);
        caches_barrier(pool);
    }
    size_t moved = 0;
    for (struct cache *c = pool->caches; c; c = c->next)
        if (c->size && cache_idle_now(pool, c))
            moved += cache_empty_locked(pool, c, wk);
    if (keep_armed)
        pool->caches_armed = true;
    else if (!pool->caches_armed)
        caches_set_steal(pool, false);
    return moved;
}

/* Returns each cached block to its pool when a thread exits. */
static void cache_thread_exit(void *arg)
{
    struct cache_table *table = arg;
    for (uint32_t i = 0; i < table->length; i++) {
        struct cache *c = table->slots[i].cache;
        if (!c)
            continue;
        pthread_mutex_lock(&registry.lock);
        mempool *pool = c->pool;
        if (pool) {
            struct wakeups wk = { .n = 0 };
            pthread_mutex_lock(&pool->lock);
            cache_empty_locked(pool, c, &wk);
            for (int s = 0; s < STAT_COUNT; s++)
                atomic_fetch_add_explicit(&pool->retired[s],
                                          atomic_load_explicit(&c->stats[s], memory_order_relaxed),
                                          memory_order_relaxed);
            if (c->prev)
                c->prev->next = c->next;
            else
                pool->caches = c->next;
            if (c->next)
                c->next->prev = c->prev;
            mempool__wait_bit_update(pool);
            mempool__unlock_and_wake(pool, &wk);
        }
        pthread_mutex_unlock(&registry.lock);
        cache_free(c);
    }
    mempool__os_free(table->slots, table->length * sizeof *table->slots, CACHE_LINE);
    table->slots = NULL;
    table->length = 0;
}
