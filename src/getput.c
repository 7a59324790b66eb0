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
#include "shm.h"
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

/* Everything but a cache hit for a get of one block (single, or a bulk
 * call of one): errors (in *err), attaching a cache, swapping magazines,
 * the depot, the shared stack and sleeping. Kept out of line (get_full) so
 * that the hit path stays a leaf with nothing to save. */
static ALWAYS_INLINE void *get_slow_one(mempool *pool, int64_t timeout_ns, int *err)
{
    if (unlikely(!pool)) {
        *err = EINVAL;
        return NULL;
    }
    if (unlikely(pool_closed(pool))) {
        /* A shared pool's handle reads closed, so that its calls take this
         * branch and private pools pay nothing for the test. */
        if (pool->shm) {
            /* Its thread reads a cache that says NONE: its own hit path
             * is the next thing to try. */
            void *block = mempool__shm_get_one(pool, timeout_ns);
            *err = block ? 0 : errno;
            return block;
        }
        honour_if_armed(pool);
        *err = ECANCELED;
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
        *err = ECANCELED;
        return NULL;
    }
    if (index != STACK_NIL) {
        stack_mark_out(&pool->stack, index);
        block = block_at(pool, index);
    } else {
        *err = mempool__get_slow(pool, &block, 1, timeout_ns);
        if (*err)
            return NULL;
        left = stack_depth(&pool->stack);
    }
    if (served != SERVED_CACHE) {
        stats_add(pool, cache, STAT_MISSES, 1);
        note_out(pool, left);
    }
    handed_out(pool, block);
    return block;
}

static NOINLINE void *get_full(mempool *pool, int64_t timeout_ns)
{
    int err;
    void *block = get_slow_one(pool, timeout_ns, &err);
    if (!block)
        errno = err;
    return block;
}

/* A get the private hit path did not serve. A thread of a shared pool
 * reads NONE there and goes on to its slot's hit path at once: the test
 * costs private pools nothing on their hit path, and the shared one no
 * second lookup. */
static NOINLINE void *get_miss(mempool *pool, struct cache *cache, int64_t timeout_ns)
{
    if (cache->shared_fast)
        return mempool__shm_get_fast(pool, cache, timeout_ns);
    return get_full(pool, timeout_ns);
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
        return get_miss(pool, cache, timeout_ns);
    }
    return get_full(pool, timeout_ns);
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

static NOINLINE int put_full(mempool *pool, void *block)
{
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

/* A put the hit path did not serve, with the rotation it computed. A
 * shared pool's (whose own hit path comes next, given the rotation) and a
 * mode's (checked mode's) are tail calls from here, before anything is
 * saved. */
static NOINLINE int put_miss(mempool *pool, void *block, uint64_t rotated)
{
    if (pool->shm)
        return mempool__shm_put_one(pool, block, rotated);
    if (pool->ops)
        return pool->ops->put(pool, block);
    return put_full(pool, block);
}

/* A put that landed in the cache while it was being armed. */
static NOINLINE int put_honour(mempool *pool, struct cache *cache)
{
    mempool__cache_honour(pool, cache);
    return 0;
}

int mempool_put(mempool *pool, void *block)
{
    /* The rotation first: a pool whose puts the hit path cannot serve (no
     * cache, tools) fails it at once and skips the cache entirely. */
    if (unlikely(!pool))
        return EINVAL;
    uint64_t rotated = hit_index((uintptr_t)pool->base, pool->stride_shift & 63, block);
    if (likely(rotated < pool->hit_limit)) {
        struct cache *cache = cache_lookup(pool);
        enum hit hit = cache_hit_put(pool, cache, &block, 1, &rotated);
        if (likely(hit == HIT_DONE))
            return 0;
        if (hit == HIT_HONOUR)
            return put_honour(pool, cache);
    }
    return put_miss(pool, block, rotated);
}

/* Hands n blocks the caller took, still unseen by anyone, back to the
 * shared stack (to the oldest waiter while gets wait). */
static void give_back(mempool *pool, void *const *blocks, size_t n)
{
    const char *what;
    uint32_t indices[CHUNK];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < CHUNK ? n - done : CHUNK;
        for (size_t i = 0; i < k; i++)
            indices[i] = block_lookup(pool, blocks[done + i], &what);
        if (!stack_push_many(&pool->stack, indices, k, false))
            mempool__put_slow(pool, indices, k);
        done += k;
    }
}

/* Everything but a cache hit for a bulk get of n blocks. The blocks come a
 * step at a time (a chunk, or a magazine when that is smaller) through the
 * full cache operation, or from the shared stack with one CAS per step, so
 * that a get larger than a magazine still trades whole magazines with the
 * depot. All or nothing: when a step finds too few without sleeping, the
 * blocks taken so far go back and the locked path (wait.c) serves the whole
 * call, in its FIFO turn. */
static NOINLINE int get_bulk_miss(mempool *pool, void **blocks, size_t n, int64_t timeout_ns)
{
    if (!pool)
        return EINVAL;
    if (n == 0)
        return 0;
    if (!blocks || n > pool->capacity)
        return EINVAL;
    if (n == 1) {
        int err;
        void *block = get_slow_one(pool, timeout_ns, &err);
        if (!block)
            return err;
        blocks[0] = block;
        return 0;
    }
    if (pool_closed(pool)) {
        if (pool->shm)
            return mempool__shm_get(pool, blocks, n, timeout_ns);
        honour_if_armed(pool);
        return ECANCELED;
    }
    struct cache *cache = thread_state(pool);
    bool cached = cache && cache->size;
    size_t step = cached && cache->size < CHUNK ? cache->size : CHUNK;
    size_t got = 0, missed = 0;
    while (got < n) {
        uint32_t indices[CHUNK];
        size_t k = n - got < step ? n - got : step;
        enum served served = cached ? mempool__cache_get(pool, cache, indices, k) : SERVED_NOT;
        if (served == SERVED_NOT && !stack_pop_many(&pool->stack, indices, k, true))
            break;
        if (served != SERVED_CACHE)
            missed += k;
        for (size_t i = 0; i < k; i++) {
            stack_mark_out(&pool->stack, indices[i]);
            blocks[got + i] = block_at(pool, indices[i]);
        }
        got += k;
    }
    if (got && unlikely(pool_closed(pool))) {
        /* As in get_miss: closed meanwhile, so give the blocks back. */
        give_back(pool, blocks, got);
        return ECANCELED;
    }
    if (got < n) {
        give_back(pool, blocks, got);
        int err = mempool__get_slow(pool, blocks, n, timeout_ns);
        if (err)
            return err;
        missed = n;
    }
    for (size_t i = 0; i < n; i++)
        handed_out(pool, blocks[i]);
    if (missed) {
        stats_add(pool, cache, STAT_MISSES, missed);
        note_out(pool, stack_depth(&pool->stack));
    }
    return 0;
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

/* The full path of a bulk put: validates every block (in order, so that
 * the first bad one is the one reported), then moves them a chunk at a time
 * through the full cache operation or onto the shared stack. */
static NOINLINE int put_bulk_miss(mempool *pool, void *const *blocks, size_t n)
{
    if (!pool)
        return EINVAL;
    if (n == 0)
        return 0;
    if (!blocks) {
        mempool__put_refused(pool, "null", NULL);
        return EINVAL;
    }
    if (n == 1)
        return mempool_put(pool, blocks[0]);
    if (pool->ops)
        return pool->ops->put_bulk(pool, blocks, n);
    /* Each accepted block's entry is set to ENTRY_IN_CACHE at once, the state
     * it has in a magazine. A block that reads free is a repeated put, or
     * appears twice in the array: only then is the array searched, to tell
     * the two apart. Nobody else touches these entries: the caller owns the
     * blocks. */
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
                atomic_store_explicit(entry, ENTRY_IN_CACHE, memory_order_relaxed);
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
    for (size_t done = 0; done < n;) {
        size_t k = n - done < CHUNK ? n - done : CHUNK;
        for (size_t i = 0; done && i < k; i++) {
            uint64_t wide = hit_index(base, shift, blocks[done + i]);
            indices[i] = likely(wide < limit) ? (uint32_t)wide
                                              : block_lookup(pool, blocks[done + i], &what);
        }
        if (unlikely(pool->track))
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
        done += k;
    }
    return 0;
}

int mempool_put_bulk(mempool *pool, void *const *blocks, size_t n)
{
    if (likely(pool && blocks)) {
        struct cache *cache = cache_lookup(pool);
        enum hit hit = cache_hit_put(pool, cache, blocks, n, NULL);
        if (likely(hit == HIT_DONE))
            return 0;
        if (hit == HIT_HONOUR)
            return put_honour(pool, cache);
    }
    return put_bulk_miss(pool, blocks, n);
}
