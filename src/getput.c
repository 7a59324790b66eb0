/* SPDX-License-Identifier: MIT */
/* The public get and put, single and bulk, read top to bottom.
 *
 * One path for both: a single get or put is a call of one block through the
 * same cache operations as a bulk call. The hit path (cache.h) finds the
 * thread's cache with two loads, tests one word for anything unusual, and
 * moves rounds of the loaded magazine. Everything else goes to one out-of-
 * line miss per direction: errors, attaching a cache, swapping magazines,
 * the depot, the shared stack and sleeping (wait.c). Validation reads the
 * block's entry in the side array: no read-modify-write, O(1) in both
 * modes; for a power-of-two stride the hit path does it with a rotation
 * and one compare. */
#include <errno.h>

#include "cache.h"
#include "index.h"
#include "track.h"

/* Bulk calls move blocks through a small index buffer, one CAS per chunk. */
#define CHUNK 64

static bool pool_closed(const mempool *pool)
{
    return atomic_load_explicit(&pool->closed, memory_order_acquire);
}

/* Free blocks outside the caches: a cache miss samples the high-water mark
 * with it (blocks in caches count as out, hence an upper bound). */
static size_t shared_free(const mempool *pool, size_t stacked)
{
    return stacked + atomic_load_explicit(&pool->collected, memory_order_relaxed) +
           atomic_load_explicit(&pool->depot.rounds, memory_order_relaxed) +
           atomic_load_explicit(&pool->unmade, memory_order_relaxed) +
           atomic_load_explicit(&pool->ring_length, memory_order_relaxed);
}

/* Samples the blocks out for the high-water mark. The terms of shared_free
 * are read at different moments, so a block moving between them (a bulk
 * waiter taking stacked blocks) can count twice: clamp instead of letting
 * the subtraction wrap. */
static inline void note_out(mempool *pool, size_t stacked)
{
    size_t free_now = shared_free(pool, stacked);
    stats_note_out(pool, free_now < pool->capacity ? pool->capacity - free_now : 0);
}

/* The calling thread's per-pool state, attaching it on first use; NULL when
 * it cannot have one. */
static struct cache *thread_state(mempool *pool)
{
    struct cache *cache = cache_lookup(pool);
    return cache_is_real(pool, cache) ? cache : mempool__cache_of(pool);
}

/* A block has just become the caller's: tell the tools, and in checked mode
 * verify that nobody wrote to it while it was free. */
static void handed_out(mempool *pool, void *block)
{
    track_out(pool, block);
    if (unlikely(pool->ops))
        pool->ops->got(pool, block);
}

/* For a call that leaves without a cache operation after its hit path may
 * have marked the cache busy and then seen a steal request: honour it, or a
 * drain that declined while the cache looked busy never checks again. */
static void honour_if_armed(mempool *pool)
{
    struct cache *cache = cache_lookup(pool);
    if (cache_is_real(pool, cache) && cache->size &&
        (atomic_load_explicit(&cache->unusual, memory_order_relaxed) & CACHE_ARMED))
        mempool__cache_honour(pool, cache);
}

/* Everything but a cache hit: errors, attaching a cache, swapping
 * magazines, the depot, the shared stack and sleeping. Kept out of line so
 * that the hit path stays a leaf with nothing to save. */
static NOINLINE void *get_miss(mempool *pool, int64_t timeout_ns)
{
    if (unlikely(!pool)) {
        errno = EINVAL;
        return NULL;
    }
    if (unlikely(pool_closed(pool))) {
        honour_if_armed(pool);
        errno = ECANCELED;
        return NULL;
    }
    struct cache *cache = thread_state(pool);
    uint32_t index = STACK_NIL;
    enum served served = cache && cache->size ? mempool__cache_get(pool, cache, &index, 1)
                                              : SERVED_NOT;
    uint32_t left = 0;
    void *block;
    if (served == SERVED_NOT)
        index = stack_pop(&pool->stack, &left);
    else
        left = stack_depth(&pool->stack);
    if (index != STACK_NIL && unlikely(pool_closed(pool))) {
        /* Closed since the check above: the block may have been put after
         * the close, and a get that takes it would be ordered after the
         * close too. Give it back; every later get fails. */
        if (!stack_push_many(&pool->stack, &index, 1, false))
            mempool__put_slow(pool, &index, 1);
        errno = ECANCELED;
        return NULL;
    }
    if (index != STACK_NIL) {
        stack_mark_out(&pool->stack, index);
        block = block_at(pool, index);
    } else {
        int err = mempool__get_slow(pool, &block, 1, timeout_ns);
        if (err) {
            errno = err;
            return NULL;
        }
        left = stack_depth(&pool->stack);
    }
    if (served != SERVED_CACHE) {
        stats_add(pool, cache, STAT_MISSES, 1);
        note_out(pool, left);
    }
    handed_out(pool, block);
    return block;
}

/* A cache hit that must also honour a steal request: out of line and
 * called in tail position. */
static NOINLINE void *get_honour(mempool *pool, struct cache *cache, void *block)
{
    mempool__cache_honour(pool, cache);
    return block;
}

/* The get of all three entry points, inlined into each so that none of them
 * costs a second call. */
static inline void *get_one(mempool *pool, int64_t timeout_ns)
{
    if (likely(pool)) {
        struct cache *cache = cache_lookup(pool);
        void *block;
        enum hit hit = cache_hit_get(pool, cache, &block, 1);
        if (likely(hit == HIT_DONE))
            return block;
        if (hit == HIT_HONOUR)
            return get_honour(pool, cache, block);
    }
    return get_miss(pool, timeout_ns);
}

void *mempool_get_timeout(mempool *pool, int64_t timeout_ns)
{
    return get_one(pool, timeout_ns);
}

void *mempool_get(mempool *pool)
{
    return get_one(pool, -1);
}

void *mempool_try_get(mempool *pool)
{
    return get_one(pool, 0);
}

/* The block's index if a put of it is valid, else STACK_NIL after reporting. */
static uint32_t put_check(mempool *pool, const void *block)
{
    const char *what;
    uint32_t index = block_lookup(pool, block, &what);
    if (likely(index != STACK_NIL)) {
        if (likely(!stack_is_free(&pool->stack, index)))
            return index;
        what = "repeated";
    }
    mempool__put_refused(pool, what, block);
    return STACK_NIL;
}

static NOINLINE int put_miss(mempool *pool, void *block)
{
    if (unlikely(!pool))
        return EINVAL;
    if (pool->ops)
        return pool->ops->put(pool, block);
    uint32_t index = put_check(pool, block);
    if (unlikely(index == STACK_NIL)) {
        honour_if_armed(pool);
        return EINVAL;
    }
    /* Poisoned before any other thread can see the block free. */
    track_free(pool, block);
    struct cache *cache = thread_state(pool);
    if (cache && cache->size)
        mempool__cache_put(pool, cache, &index, 1);
    else if (!stack_push_many(&pool->stack, &index, 1, false))
        mempool__put_slow(pool, &index, 1);
    stats_add(pool, cache, STAT_PUTS, 1);
    return 0;
}

/* A put that landed in the cache while it was being armed. */
static NOINLINE int put_honour(mempool *pool, struct cache *cache)
{
    mempool__cache_honour(pool, cache);
    return 0;
}

/* The index of a block of a power-of-two-stride arena, or a value of
 * hit_limit or more for anything else: the offset rotated right by the
 * stride's log, so that a misaligned offset lands in the top bits. */
static inline uint64_t hit_index(uintptr_t base, unsigned shift, const void *block)
{
    uint64_t offset = (uint64_t)((uintptr_t)block - base);
    return offset >> shift | offset << ((64 - shift) & 63);
}

int mempool_put(mempool *pool, void *block)
{
    if (likely(pool)) {
        uint64_t wide = hit_index((uintptr_t)pool->base, pool->stride_shift & 63, block);
        uint32_t index = (uint32_t)wide;
        _Atomic uint64_t *entries = pool->stack.entries;
        uint32_t mask = pool->stack.mask;
        if (likely(wide < pool->hit_limit) &&
            likely(!(atomic_load_explicit(entry_at(entries, mask, index), memory_order_relaxed) &
                     ENTRY_FREE))) {
            struct cache *cache = cache_lookup(pool);
            enum hit hit = cache_hit_put(entries, mask, true, cache, &index, 1);
            if (likely(hit == HIT_DONE))
                return 0;
            if (hit == HIT_HONOUR)
                return put_honour(pool, cache);
        }
    }
    return put_miss(pool, block);
}

/* Everything but a cache hit for a bulk get of n blocks. */
static NOINLINE int get_bulk_miss(mempool *pool, void **blocks, size_t n, int64_t timeout_ns)
{
    if (!pool)
        return EINVAL;
    if (n == 0)
        return 0;
    if (!blocks || n > pool->capacity)
        return EINVAL;
    if (pool_closed(pool)) {
        honour_if_armed(pool);
        return ECANCELED;
    }
    /* A bulk call of up to one chunk that fits a magazine is served through
     * the cache; a larger one is already a batch and goes to the shared
     * stack with one CAS. Both bounds matter: the indices land in a
     * chunk-sized buffer, and magazines hold up to 2048 blocks. */
    uint32_t indices[CHUNK];
    struct cache *cache = thread_state(pool);
    enum served served = cache && n <= CHUNK && n <= cache->size
        ? mempool__cache_get(pool, cache, indices, n) : SERVED_NOT;
    int err = 0;
    bool taken = served != SERVED_NOT ||
                 (n <= CHUNK && stack_pop_many(&pool->stack, indices, n, true));
    if (taken && unlikely(pool_closed(pool))) {
        /* As in get_miss: closed meanwhile, so give the blocks back. */
        if (!stack_push_many(&pool->stack, indices, n, false))
            mempool__put_slow(pool, indices, n);
        return ECANCELED;
    }
    if (taken) {
        for (size_t i = 0; i < n; i++) {
            stack_mark_out(&pool->stack, indices[i]);
            blocks[i] = block_at(pool, indices[i]);
        }
    } else {
        err = mempool__get_slow(pool, blocks, n, timeout_ns);
    }
    for (size_t i = 0; !err && i < n; i++)
        handed_out(pool, blocks[i]);
    if (!err && served != SERVED_CACHE) {
        stats_add(pool, cache, STAT_MISSES, n);
        note_out(pool, stack_depth(&pool->stack));
    }
    return err;
}

int mempool_get_bulk(mempool *pool, void **blocks, size_t n, int64_t timeout_ns)
{
    if (likely(pool && blocks && n - 1 < CHUNK)) {
        struct cache *cache = cache_lookup(pool);
        enum hit hit = cache_hit_get(pool, cache, blocks, n);
        if (likely(hit == HIT_DONE))
            return 0;
        if (hit == HIT_HONOUR) {
            mempool__cache_honour(pool, cache);
            return 0;
        }
    }
    return get_bulk_miss(pool, blocks, n, timeout_ns);
}

/* Marks blocks[from..to) free again after a refused put_bulk. */
static void put_bulk_unmark(mempool *pool, void *const *blocks, size_t from, size_t to)
{
    const char *what;
    for (size_t i = from; i < to; i++)
        stack_mark_out(&pool->stack, block_lookup(pool, blocks[i], &what));
}

int mempool_put_bulk(mempool *pool, void *const *blocks, size_t n)
{
    if (!pool)
        return EINVAL;
    if (n == 0)
        return 0;
    if (!blocks) {
        mempool__put_refused(pool, "null", NULL);
        return EINVAL;
    }
    if (pool->ops)
        return pool->ops->put_bulk(pool, blocks, n);
    /* One pass, in order, so that the first bad element is the one reported.
     * Each accepted block's entry is set to FREE | CACHED at once, the state
     * it has in a magazine, so that the cache need not write it again. A
     * block that reads free is a repeated put, or appears twice in the array:
     * only then is the array searched, to tell the two apart. Nobody else
     * touches these entries: the caller owns the blocks. */
    const char *what = NULL;
    uint32_t indices[CHUNK]; /* the first chunk's, kept for the move below */
    _Atomic uint64_t *entries = pool->stack.entries;
    uint32_t mask = pool->stack.mask;
    uint64_t limit = pool->valid_limit;
    uintptr_t base = (uintptr_t)pool->base;
    unsigned shift = pool->stride_shift & 63;
    for (size_t i = 0; i < n; i++) {
        uint64_t wide = hit_index(base, shift, blocks[i]);
        uint32_t index = (uint32_t)wide;
        if (unlikely(wide >= limit))
            index = block_lookup(pool, blocks[i], &what);
        if (likely(wide < limit) || index != STACK_NIL) {
            _Atomic uint64_t *entry = entry_at(entries, mask, index);
            if (!(atomic_load_explicit(entry, memory_order_relaxed) & ENTRY_FREE)) {
                atomic_store_explicit(entry, ENTRY_FREE | ENTRY_CACHED, memory_order_relaxed);
                if (i < CHUNK)
                    indices[i] = index;
                continue;
            }
            what = "repeated";
            for (size_t j = 0; j < i; j++)
                if (blocks[j] == blocks[i])
                    what = "repeated-in-array";
        }
        put_bulk_unmark(pool, blocks, 0, i);
        mempool__put_refused(pool, what, blocks[i]);
        return EINVAL;
    }
    struct cache *cache = cache_lookup(pool);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < CHUNK ? n - done : CHUNK;
        for (size_t i = 0; done && i < k; i++)
            indices[i] = block_lookup(pool, blocks[done + i], &what);
        enum hit hit = cache_hit_put(NULL, 0, false, cache, indices, k);
        if (likely(hit != HIT_MISS)) {
            if (unlikely(hit == HIT_HONOUR))
                mempool__cache_honour(pool, cache);
            done += k;
            continue;
        }
        for (size_t i = 0; i < k; i++)
            track_free(pool, blocks[done + i]);
        struct cache *own = thread_state(pool);
        if (own && own->size && k <= own->size) {
            mempool__cache_put(pool, own, indices, k);
        } else if (!stack_push_many(&pool->stack, indices, k, false)) {
            put_bulk_unmark(pool, blocks, done, done + k);
            mempool__put_slow(pool, indices, k);
        }
        stats_add(pool, own, STAT_PUTS, k);
        cache = cache_lookup(pool);
        done += k;
    }
    return 0;
}
