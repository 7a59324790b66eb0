/* SPDX-License-Identifier: MIT */
/* Per-thread caches: attaching a cache to a thread, and the full get and put
 * through the two magazines, with the depot exchange under the lock. The
 * protocol and its argument are in cache.h; the depot in depot.h; the
 * locked side of the reclaim (arming, emptying) in locked.c; thread
 * directories and thread exit in registry.c. */
#include <errno.h>
#include <string.h>

#include "cache.h"
#include "depot.h"
#include "locked.h"
#include "shm.h"

/* A new cache for the pool in the directory entry, which holds the sentinel
 * or a detached cache (freed here: the thread owns it). */
static struct cache *cache_attach(mempool *pool, struct cache **entry)
{
    if (*entry != &mempool__sentinel)
        mempool__cache_free(*entry);
    *entry = &mempool__sentinel;
    uint32_t size = pool->cache_size / 2;
    struct cache *c = mempool__os_alloc(sizeof *c, CACHE_LINE);
    if (!c)
        return NULL; /* this thread runs uncached for the pool, for now */
    _Atomic uint32_t *spare = NULL;
    if (size) {
        c->loaded = mempool__magazine_alloc(size);
        c->previous = mempool__magazine_alloc(size);
        spare = mempool__magazine_alloc(size);
        if (!c->loaded || !c->previous || !spare) {
            mempool__magazine_free(spare, size);
            c->size = size;
            mempool__cache_free(c);
            return NULL;
        }
    }
    c->size = size;
    c->pool = pool;
    os_lock(&pool->lock);
    if (size && !mempool__depot_reserve(&pool->depot, 3)) {
        os_unlock(&pool->lock);
        mempool__magazine_free(spare, size);
        mempool__cache_free(c);
        return NULL;
    }
    if (size)
        mempool__depot_give_empty(&pool->depot, spare);
    /* Read under the lock, which a switch to the ordered protocol and every
     * change of the marks hold: this cache starts with all of them. */
    atomic_store_explicit(&c->busy, cache_ordered(pool) ? CACHE_IDLE : CACHE_IDLE_FENCED,
                          memory_order_relaxed);
    uint32_t unusual = size ? pool->cache_marks : pool->cache_marks | CACHE_NONE;
    if (size && pool->caches_armed)
        unusual |= CACHE_ARMED;
    atomic_store_explicit(&c->unusual, unusual, memory_order_relaxed);
    cache_link(pool, c);
    os_unlock(&pool->lock);
    *entry = c;
    return c;
}

struct cache *mempool__cache_of(mempool *pool)
{
    struct cache *c = cache_lookup(pool);
    if (cache_is_real(pool, c))
        return c;
    if (!pool->cache_slot)
        return NULL;
    struct cache **entry = mempool__dir_entry(pool->cache_dir, pool->cache_page);
    return entry ? cache_attach(pool, entry) : NULL;
}

/* Swaps the loaded and previous magazines (owner, busy or under the lock). */
static void mag_swap(struct cache *c)
{
    _Atomic uint32_t *m = c->loaded;
    c->loaded = c->previous;
    c->previous = m;
    uint32_t count = atomic_load_explicit(&c->count, memory_order_relaxed);
    atomic_store_explicit(&c->count, atomic_load_explicit(&c->prev_count, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&c->prev_count, count, memory_order_relaxed);
}

/* n rounds from the two magazines, swapping them when the loaded one runs
 * out; false (nothing taken) when they hold fewer. */
static bool mags_take(struct cache *c, uint32_t *out, size_t n)
{
    uint32_t count = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (count + atomic_load_explicit(&c->prev_count, memory_order_relaxed) < n)
        return false;
    if (count < n) {
        mag_pop(c, count, out, count);
        out += count;
        n -= count;
        mag_swap(c);
        count = atomic_load_explicit(&c->count, memory_order_relaxed);
    }
    mag_pop(c, count, out, n);
    return true;
}

/* n blocks into the two magazines, swapping them when the loaded one fills;
 * false (nothing moved) when they lack room. */
static bool mags_give(mempool *pool, struct cache *c, const uint32_t *indices, size_t n)
{
    uint32_t count = atomic_load_explicit(&c->count, memory_order_relaxed);
    uint32_t room = c->size - count;
    if (room + (c->size - atomic_load_explicit(&c->prev_count, memory_order_relaxed)) < n)
        return false;
    if (room < n) {
        mag_push(pool->stack.entries, pool->stack.mask, true, c, count, indices, room);
        indices += room;
        n -= room;
        mag_swap(c);
        count = atomic_load_explicit(&c->count, memory_order_relaxed);
    }
    mag_push(pool->stack.entries, pool->stack.mask, true, c, count, indices, n);
    return true;
}

/* Under the lock, both magazines too empty for n: trade an empty one for a
 * full one from the depot, else fill the loaded one from the shared stack.
 * True when they then hold n rounds.
 *
 * The previous magazine is always empty or full: it only changes by a swap
 * (after a take emptied the loaded one, or a give filled it), a trade with
 * the depot (for a full or an empty one) or an emptying. With n <= M rounds
 * missing, it is the empty one here, and the full one in spill_locked. */
static bool refill_locked(mempool *pool, struct cache *c, size_t n)
{
    DEBUG_ASSERT(atomic_load_explicit(&c->prev_count, memory_order_relaxed) == 0);
    _Atomic uint32_t *full = depot_take_full(&pool->depot);
    if (full) {
        mempool__depot_give_empty(&pool->depot, c->previous);
        c->previous = full;
        atomic_store_explicit(&c->prev_count, c->size, memory_order_relaxed);
        return true;
    }
    uint32_t taken[CACHE_SIZE_MAX / 2];
    uint32_t count = atomic_load_explicit(&c->count, memory_order_relaxed);
    size_t k = stack_pop_many(&pool->stack, taken, c->size - count, false);
    /* The shared top is the hottest block: it goes on top of the magazine. */
    for (size_t i = 0; i < k; i++)
        atomic_store_explicit(&c->loaded[count + k - 1 - i], taken[i], memory_order_relaxed);
    atomic_store_explicit(&c->count, count + (uint32_t)k, memory_order_relaxed);
    return count + k >= n;
}

/* Under the lock, both magazines too full for n, so the previous one is
 * full: trade it for an empty one from the depot, else push its rounds onto
 * the shared stack. Afterwards the previous magazine is empty. */
static void spill_locked(mempool *pool, struct cache *c)
{
    DEBUG_ASSERT(atomic_load_explicit(&c->prev_count, memory_order_relaxed) == c->size);
    _Atomic uint32_t *empty = depot_take_empty(&pool->depot);
    if (empty) {
        depot_give_full(&pool->depot, c->previous);
        c->previous = empty;
    } else {
        /* Every magazine is in use: the blocks go behind the depot. No
         * waiter or drain exists (the caches are not armed), so the WAIT
         * bit is clear and the locked push changes nothing else. */
        uint32_t moved[CACHE_SIZE_MAX / 2];
        for (uint32_t i = 0; i < c->size; i++)
            moved[i] = atomic_load_explicit(&c->previous[i], memory_order_relaxed);
        stack_push_many(&pool->stack, moved, c->size, true);
    }
    atomic_store_explicit(&c->prev_count, 0, memory_order_relaxed);
}

/* The lock-free part of a full get (into out) or put (of indices): the two
 * magazines inside a busy section, on the pool's protocol, ordered or not.
 * True when they served the call; a steal request seen at the end is
 * honoured. */
static bool mags_lock_free(mempool *pool, struct cache *c, uint32_t *out,
                           const uint32_t *indices, size_t n)
{
    bool ordered = cache_ordered(pool);
    cache_enter(c, ordered);
    bool done = !(cache_unusual(c) & CACHE_ARMED) &&
                (out ? mags_take(c, out, n) : mags_give(pool, c, indices, n));
    cache_idle(c, ordered);
    if (done && (cache_unusual(c) & CACHE_ARMED))
        mempool__cache_honour(pool, c);
    return done;
}

enum served mempool__cache_get(mempool *pool, struct cache *c, uint32_t *out, size_t n)
{
    DEBUG_ASSERT(c->size && n <= c->size);
    if (mags_lock_free(pool, c, out, NULL, n))
        return SERVED_CACHE;
    struct wakeups wk = { .n = 0 };
    enum served served = SERVED_NOT;
    os_lock(&pool->lock);
    /* Under the lock, the cache is armed exactly when the pool is (a
     * reclaim that armed it for a moment may have ended since). */
    if (pool->caches_armed)
        mempool__cache_empty_locked(pool, c, &wk);
    else if (mags_take(c, out, n) || (refill_locked(pool, c, n) && mags_take(c, out, n)))
        served = SERVED_DEPOT;
    mempool__wait_bit_update(pool);
    mempool__unlock_and_wake(pool, &wk);
    return served;
}

enum served mempool__cache_put(mempool *pool, struct cache *c, const uint32_t *indices,
                               size_t n)
{
    DEBUG_ASSERT(c->size && n <= c->size);
    if (mags_lock_free(pool, c, NULL, indices, n))
        return SERVED_CACHE;
    struct wakeups wk = { .n = 0 };
    os_lock(&pool->lock);
    if (pool->caches_armed) {
        /* A waiter or a drain: the blocks go to the oldest waiter. */
        mempool__cache_empty_locked(pool, c, &wk);
        mempool__give_locked(pool, indices, n, &wk);
    } else if (!mags_give(pool, c, indices, n)) {
        spill_locked(pool, c);
        mags_give(pool, c, indices, n);
    }
    mempool__wait_bit_update(pool);
    mempool__unlock_and_wake(pool, &wk);
    return SERVED_DEPOT;
}

void mempool_flush(mempool *pool)
{
    if (!pool)
        return;
    if (pool->shm) {
        mempool__shm_flush(pool);
        return;
    }
    struct cache *c = cache_lookup(pool);
    if (cache_is_real(pool, c) && c->size)
        mempool__cache_honour(pool, c);
}
