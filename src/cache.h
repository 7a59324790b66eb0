/* SPDX-License-Identifier: MIT */
/* Per-thread caches: a magazine of free block indices per (thread, pool),
 * in front of the shared stack.
 *
 * HIT PATH
 *   A get or put that the calling thread's cache can serve does no atomic
 *   read-modify-write, takes no lock and makes no system call. The magazine
 *   is a stack: the hottest block is on top, a refill brings half a magazine
 *   from the shared stack with one CAS, and a full magazine sends its cold
 *   half back with one CAS.
 *
 * NO STRANDED BLOCKS: THE ASYMMETRIC FENCE
 *   A get that would sleep or fail must be able to take blocks parked in
 *   other threads' caches, including caches of idle threads. The owner and a
 *   reclaimer follow a Dekker protocol on two words of the cache:
 *     owner:     busy = 1; [1] if (steal) go slow; work; busy = 0; [2]
 *                if (steal) honour it (flush the cache under the pool lock)
 *     reclaimer: (pool lock held) steal = 1; heavy barrier;
 *                for each cache: if (!busy) take its blocks
 *   The owner's [1] and [2] are compiler barriers only. The heavy barrier
 *   (membarrier) makes every thread of the process execute a full fence at
 *   some point P during the call. Owner operations that ended before P are
 *   visible to the reclaimer afterwards (it sees busy == 0 and their blocks);
 *   owner loads after P see steal == 1, so the owner goes to the slow path,
 *   which needs the pool lock that the reclaimer holds. An operation that
 *   straddles P is seen busy and skipped, and its closing check [2] comes
 *   after P, so it sees steal and hands its blocks over when it ends: a
 *   sleeping get is served as soon as that call ends. Either way the
 *   reclaimer and the owner never touch the magazine at the same time.
 *   Where the OS refuses the heavy barrier (and with the condvar backend, and
 *   under ThreadSanitizer, which models neither membarrier nor fences), the
 *   owner's busy stores are sequentially consistent exchanges instead and
 *   the same argument holds in the C11 model.
 *
 *   A BARRIER THAT FAILS LATER (a seccomp filter installed after start-up,
 *   ENOMEM in the kernel) switches the pool to the ordered protocol for
 *   good. The switch cannot reach an owner in the middle of a fence-free
 *   operation, whose busy store the reclaimer may not see, so the cache
 *   records how its owner left it: 0 after a fence-free operation, IDLE
 *   after an ordered one (and from the start in a pool that is ordered when
 *   the cache attaches). An ordered pool takes a cache only when it reads
 *   IDLE: that owner's operation is over (the exchange released it) and its
 *   next one reads the flag as set (it did already) and so is ordered. A
 *   cache whose owner last ran fence-free is left alone until the owner
 *   makes a call, which then honours a steal request itself; until then its
 *   blocks wait there, which is the price of the failure.
 *
 *   While a get waits or a drain runs, every cache of the pool keeps steal
 *   set ("armed"): puts then go to the slow path, which hands blocks to the
 *   oldest waiter instead of a cache, so a waiter cannot starve behind a
 *   thread that keeps getting and putting the last block.
 *
 * LIFETIME
 *   A thread finds its cache through a thread-local table indexed by the
 *   pool's slot number and checked against the pool's id, which is never
 *   reused, so a new pool at a destroyed pool's address or slot never meets
 *   an old cache. Caches belong to their thread: the pool's list links them
 *   (pool lock), destroy detaches them (registry lock), and the thread frees
 *   them when it exits or when it finds one detached.
 */
#ifndef MEMPOOL_CACHE_H
#define MEMPOOL_CACHE_H

#include "internal.h"

/* The values of a cache's busy word. */
enum { CACHE_IDLE_FENCED = 0, CACHE_BUSY = 1, CACHE_IDLE = 2 };

struct cache {
    _Atomic uint32_t busy;   /* CACHE_BUSY while the owner is inside an operation */
    _Atomic uint32_t steal;  /* armed: the owner must take the slow path */
    _Atomic uint32_t count;  /* blocks in the magazine */
    uint32_t size;           /* magazine capacity */
    mempool *pool;           /* NULL once the pool is destroyed (registry lock) */
    struct cache *next, *prev; /* the pool's caches (pool lock) */
    _Atomic uint64_t stats[STAT_COUNT]; /* written by the owner only */
    _Atomic uint32_t blocks[]; /* magazine, hottest block on top */
};

struct cache_slot {
    uint64_t pool_id;
    struct cache *cache; /* NULL: this thread runs uncached for that pool */
};

struct cache_table {
    struct cache_slot *slots;
    uint32_t length;
};

extern _Thread_local struct cache_table mempool__cache_table
#if defined(__GNUC__)
    __attribute__((tls_model("initial-exec"), visibility("hidden")))
#endif
    ;

static inline size_t cache_bytes(uint32_t size)
{
    return sizeof(struct cache) + size * sizeof(uint32_t);
}

/* The thread's table grown to hold `slot`, false when out of memory; and the
 * release of a cache the thread owns (registry.c). */
MEMPOOL_INTERNAL bool mempool__table_reserve(struct cache_table *table, uint32_t slot);
MEMPOOL_INTERNAL void mempool__cache_free(struct cache *c);

/* The calling thread's cache for the pool, attaching one on first use, or
 * NULL to run uncached. */
MEMPOOL_INTERNAL struct cache *mempool__cache_of(mempool *pool);
/* The full cache operations, for when the inline hit path misses: they
 * refill, spill and honour steal requests. The cache has a size (callers
 * check: a pool without caching has size-0 caches for its statistics). */
MEMPOOL_INTERNAL uint32_t mempool__cache_get(mempool *pool, struct cache *cache);
MEMPOOL_INTERNAL bool mempool__cache_put(mempool *pool, struct cache *cache, uint32_t index);
MEMPOOL_INTERNAL void mempool__cache_honour(mempool *pool, struct cache *cache);
/* Bulk, n <= cache size: all n blocks or none (get tops the cache up from
 * the shared stack first; put spills cold blocks to make room). */
MEMPOOL_INTERNAL bool mempool__cache_get_many(mempool *pool, struct cache *cache,
                                              uint32_t *out, size_t n);
MEMPOOL_INTERNAL bool mempool__cache_put_many(mempool *pool, struct cache *cache,
                                              const uint32_t *indices, size_t n);

/* The calling thread's per-pool state if it has one already (pools without
 * caching have it too, with size 0, for the statistics counters); NULL for a
 * thread that has not used the pool yet. */
static inline struct cache *cache_lookup(const mempool *pool)
{
    struct cache_table *table = &mempool__cache_table;
    uint32_t slot = pool->cache_slot;
    if (likely(slot < table->length && table->slots[slot].pool_id == pool->id))
        return table->slots[slot].cache;
    return NULL;
}
/* Counts n events of one kind for the calling thread: a plain increment of
 * its own counter (readers sum them under the pool lock), or a shared atomic
 * for a thread that has no cache. */
static inline void stats_add(mempool *pool, struct cache *c, enum stat which, uint64_t n)
{
    if (likely(c))
        atomic_store_explicit(&c->stats[which],
                              atomic_load_explicit(&c->stats[which], memory_order_relaxed) + n,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&pool->retired[which], n, memory_order_relaxed);
}

static inline bool cache_ordered(const mempool *pool)
{
    return atomic_load_explicit(&pool->cache_ordered, memory_order_relaxed);
}

/* Ends the owner's operation (or its attempt to start one). */
static inline void cache_idle(const mempool *pool, struct cache *c)
{
    if (cache_ordered(pool)) {
        atomic_exchange_explicit(&c->busy, CACHE_IDLE, memory_order_seq_cst);
    } else {
        atomic_store_explicit(&c->busy, CACHE_IDLE_FENCED, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
    }
}

/* Marks the owner busy; false (not busy) when the cache is armed. */
static inline bool cache_enter(const mempool *pool, struct cache *c)
{
    if (cache_ordered(pool)) {
        atomic_exchange_explicit(&c->busy, CACHE_BUSY, memory_order_seq_cst);
    } else {
        atomic_store_explicit(&c->busy, CACHE_BUSY, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
    }
    if (likely(!atomic_load_explicit(&c->steal, memory_order_seq_cst)))
        return true;
    cache_idle(pool, c);
    return false;
}

/* Ends the owner's operation; true when the cache was armed meanwhile. */
static inline bool cache_leave(const mempool *pool, struct cache *c)
{
    cache_idle(pool, c);
    return atomic_load_explicit(&c->steal, memory_order_seq_cst);
}

/* Takes the top (hottest) block of the magazine, or STACK_NIL; the owner is
 * busy or holds the pool lock. */
static inline uint32_t cache_pop(struct cache *c)
{
    uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (unlikely(n == 0))
        return STACK_NIL;
    uint32_t index = atomic_load_explicit(&c->blocks[n - 1], memory_order_relaxed);
    atomic_store_explicit(&c->count, n - 1, memory_order_relaxed);
    return index;
}

/* Puts a validated block on top of the magazine, which has room; the block
 * is marked free (and cached) so that a repeated put of it is refused. */
static inline void cache_push(mempool *pool, struct cache *c, uint32_t index)
{
    uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    atomic_store_explicit(stack_entry(&pool->stack, index), ENTRY_FREE | ENTRY_CACHED,
                          memory_order_relaxed);
    atomic_store_explicit(&c->blocks[n], index, memory_order_relaxed);
    atomic_store_explicit(&c->count, n + 1, memory_order_relaxed);
}

/* What a hit-path operation did. HIT_HONOUR: it was served, but the cache
 * was armed meanwhile, so the caller must call mempool__cache_honour (out of
 * line, in tail position, so that the hit path saves no registers). */
enum hit { HIT_MISS, HIT_DONE, HIT_HONOUR };

/* The hit path of a get: the hottest cached block's index in *index, or
 * HIT_MISS when the cache is empty or armed (the caller takes the full
 * path). */
static inline enum hit cache_hit_get(mempool *pool, struct cache *c, uint32_t *index)
{
    if (unlikely(!cache_enter(pool, c)))
        return HIT_MISS;
    *index = cache_pop(c);
    bool armed = cache_leave(pool, c);
    if (unlikely(*index == STACK_NIL))
        return HIT_MISS;
    return unlikely(armed) ? HIT_HONOUR : HIT_DONE;
}

/* The hit path of a put of a validated block: HIT_MISS when the cache is
 * full or armed (the caller takes the full path). */
static inline enum hit cache_hit_put(mempool *pool, struct cache *c, uint32_t index)
{
    if (unlikely(!cache_enter(pool, c)))
        return HIT_MISS;
    bool room = atomic_load_explicit(&c->count, memory_order_relaxed) < c->size;
    if (likely(room))
        cache_push(pool, c, index);
    bool armed = cache_leave(pool, c);
    if (unlikely(!room))
        return HIT_MISS;
    stats_add(pool, c, STAT_PUTS, 1);
    return unlikely(armed) ? HIT_HONOUR : HIT_DONE;
}

#endif
