/* SPDX-License-Identifier: MIT */
/* Per-thread caches: two magazines of free block indices per (thread, pool),
 * in front of the pool's depot of whole magazines and the shared stack.
 *
 * LAYERS (Bonwick and Adams' magazines)
 *   A thread's cache holds a loaded and a previous magazine of M block
 *   indices each (M = cache_size / 2). A get pops the loaded magazine; when
 *   it is empty and the previous one is not, the two swap. A put pushes;
 *   when the loaded one is full and the previous one is not, they swap. Both
 *   run with no lock and no read-modify-write (the hit path below). Only when
 *   both magazines are empty (get) or full (put) does the call take the pool
 *   lock and trade a whole magazine with the depot (depot.c) in O(1): an
 *   empty one for a full one, or a full one for an empty one. A producer and
 *   a consumer thread thus move M blocks per exchange and never walk a list.
 *   Behind the depot, the shared stack holds every block no magazine holds.
 *   Memory per (thread, pool): the cache and three magazines (two held, one
 *   given to the depot at attach), 3 x 4 x M bytes.
 *
 * ONE WORD FOR "ANYTHING UNUSUAL"
 *   The owner's hit path tests one word, `unusual`, and leaves for the full
 *   path (cache.c, pool.c) when any bit is set: a steal request (ARMED), a
 *   closed pool, tools tracking free blocks, a pool on the ordered protocol,
 *   no magazines (the sentinel cache, pools without caching) or a pool
 *   destroyed under the cache. Every bit but ARMED is permanent.
 *   The thread finds its cache with two loads: a thread-local directory of
 *   pages indexed by the pool's slot. Unused directory entries point at a
 *   shared page of pointers to one sentinel cache whose `unusual` says NONE,
 *   so the lookup needs no bounds or id test: a thread without a cache for
 *   the pool reads the sentinel and takes the full path, which attaches one.
 *
 * NO STRANDED BLOCKS: THE ASYMMETRIC FENCE
 *   A get that would sleep or fail must be able to take blocks parked in
 *   other threads' caches, including caches of idle threads. The owner and a
 *   reclaimer follow a Dekker protocol on two words of the cache:
 *     owner:     busy = 1; [1] if (unusual) go slow; work; busy = 0; [2]
 *                if (ARMED) honour it (empty the cache under the pool lock)
 *     reclaimer: (pool lock held) unusual |= ARMED; heavy barrier;
 *                for each cache: if (!busy) take its blocks
 *   The owner's [1] and [2] are compiler barriers only. The heavy barrier
 *   (membarrier) makes every thread of the process execute a full fence at
 *   some point P during the call. Owner operations that ended before P are
 *   visible to the reclaimer afterwards (it sees busy == 0 and their blocks);
 *   owner loads after P see ARMED, so the owner goes to the full path, which
 *   needs the pool lock that the reclaimer holds. An operation that
 *   straddles P is seen busy and skipped, and its closing check [2] comes
 *   after P, so it sees ARMED and hands its blocks over when it ends: a
 *   sleeping get is served as soon as that call ends. Either way the
 *   reclaimer and the owner never touch the magazines at the same time.
 *   The owner changes its magazines outside a busy section only under the
 *   pool lock (the depot exchange), where no reclaimer runs.
 *   Where the OS refuses the heavy barrier at creation, and in builds for
 *   ThreadSanitizer (which models neither membarrier nor fences), the busy
 *   stores are sequentially consistent exchanges instead and the same
 *   argument holds in the C11 model.
 *
 *   A BARRIER THAT FAILS LATER (a seccomp filter installed after start-up,
 *   ENOMEM in the kernel) switches the pool to the ordered protocol for
 *   good: every cache gets the ORDERED bit, which sends its owner to the
 *   full path, where the same operations run with exchanges. The switch
 *   cannot reach an owner in the middle of a fence-free operation, whose
 *   busy store the reclaimer may not see, so the cache records how its owner
 *   left it: 0 after a fence-free operation, IDLE after an ordered one. An
 *   ordered pool takes a cache only when it reads IDLE. A cache whose owner
 *   last ran fence-free is left alone until the owner makes a call, which
 *   then honours a steal request itself; until then its blocks wait there,
 *   which is the price of the failure.
 *
 *   While a get waits or a drain runs, every cache of the pool stays armed:
 *   puts then go to the full path, which hands blocks to the oldest waiter
 *   instead of a cache, so a waiter cannot starve behind a thread that keeps
 *   getting and putting the last block. Close sets CLOSED on every cache and
 *   issues the barrier too, so a get that starts after close returns fails.
 *
 * LIFETIME
 *   Caches belong to their thread: the pool's list links them (pool lock),
 *   destroy detaches them (registry lock: `pool` cleared, DETACHED set), and
 *   the thread frees them when it exits or when it finds one detached, which
 *   it does before using a new pool that reuses the slot (its hit path reads
 *   DETACHED, ordered by the registry lock that destroy and create take).
 */
#ifndef MEMPOOL_CACHE_H
#define MEMPOOL_CACHE_H

#include "index.h"
#include "internal.h"

/* The values of a cache's busy word. */
enum { CACHE_IDLE_FENCED = 0, CACHE_BUSY = 1, CACHE_IDLE = 2 };

/* The bits of a cache's unusual word: any of them sends the owner's call
 * off the hit path. Only ARMED comes and goes. */
enum {
    CACHE_ARMED = 1u,    /* steal request: a waiter, a drain or a reclaim */
    CACHE_CLOSED = 2u,   /* the pool is closed: gets fail */
    CACHE_TRACK = 4u,    /* tools watch free blocks: every call tells them */
    CACHE_ORDERED = 8u,  /* the pool switched to the ordered protocol */
    CACHE_NONE = 16u,    /* no magazines: the sentinel, pools without caching */
    CACHE_DETACHED = 32u /* the pool was destroyed: this cache is garbage */
};

/* Compile-time ordered builds run the ordered protocol on the hit path. */
#if defined(MEMPOOL_TSAN) || defined(MEMPOOL_FORCE_ORDERED)
#define CACHE_HIT_ORDERED true
#else
#define CACHE_HIT_ORDERED false
#endif

struct cache {
    _Atomic uint32_t busy;       /* CACHE_BUSY while the owner is in an operation */
    _Atomic uint32_t unusual;    /* CACHE_* bits; 0 on the hit path */
    _Atomic uint32_t count;      /* rounds in the loaded magazine */
    _Atomic uint32_t prev_count; /* rounds in the previous magazine */
    /* The magazines, M slots each. The owner swaps them inside a busy
     * section or under the pool lock; others read them under the lock with
     * the owner idle. */
    _Atomic uint32_t *loaded;
    _Atomic uint32_t *previous;
    uint32_t size;               /* M, rounds per magazine; 0: no magazines */
    mempool *pool;               /* NULL once the pool is destroyed (registry lock) */
    struct cache *next, *prev;   /* the pool's caches (pool lock) */
    _Atomic uint64_t stats[STAT_COUNT]; /* written by the owner only */
    /* A shared pool's thread (shm_cache.c): its slot in the segment and
     * that slot's magazine, or NULL when it runs uncached; the segment's
     * block words and how to fence, copied here so that its hit paths read
     * one private line and the slot's. */
    struct shm_cache *shared;
    /* The same slot while its owner runs the fence-free protocol, else
     * NULL: the one test that sends a call to the fast hit paths. Cleared
     * with `shared`, and by destroy (a later pool may reuse the entry). */
    struct shm_cache *shared_fast;
    _Atomic uint32_t *shared_mag;
    _Atomic uint64_t *shared_owners;
    uint32_t shared_slot, shared_size;
    uint32_t shared_cached, shared_out; /* low halves of the block words */
    uint32_t shared_flip;               /* their xor: one turns into the other */
    bool shared_ordered;
};

/* The thread's directory: CACHE_DIR pages of CACHE_PAGE cache pointers, so
 * CACHE_DIR x CACHE_PAGE slots; slot 0 is never given to a pool, so that
 * pools with no slot use it and always find the sentinel. */
#define CACHE_DIR 16u
#define CACHE_PAGE 256u

extern _Thread_local struct cache **mempool__cache_dir[CACHE_DIR] OS_TLS_ATTRIBUTES;
/* The cache every unused entry points at (unusual = NONE), and the page of
 * pointers to it that every unused directory entry points at. */
MEMPOOL_INTERNAL extern struct cache mempool__sentinel;
MEMPOOL_INTERNAL extern struct cache *mempool__sentinel_page[CACHE_PAGE];

/* The calling thread's cache for the pool: the sentinel when it has none. */
static inline struct cache *cache_lookup(const mempool *pool)
{
    return mempool__cache_dir[pool->cache_dir][pool->cache_page];
}

static inline bool cache_is_real(const mempool *pool, const struct cache *c)
{
    return c != &mempool__sentinel && c->pool == pool;
}

/* The pool's list of its threads' objects (under the pool's lock): destroy
 * detaches every object on it. */
static inline void cache_link(mempool *pool, struct cache *c)
{
    c->prev = NULL;
    c->next = pool->caches;
    if (pool->caches)
        pool->caches->prev = c;
    pool->caches = c;
}

static inline void cache_unlink(mempool *pool, struct cache *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        pool->caches = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

/* Attaching (cache.c) and the thread's directory (registry.c). */
/* The calling thread's own cache for the pool, attaching one on first use
 * (a size-0 one in a pool without caching), or NULL when it cannot have one
 * (no slot, out of memory). */
MEMPOOL_INTERNAL struct cache *mempool__cache_of(mempool *pool);
/* The entry for `slot` in the thread's directory, its page allocated; NULL
 * when out of memory. */
MEMPOOL_INTERNAL struct cache **mempool__dir_entry(uint32_t dir, uint32_t page);
MEMPOOL_INTERNAL void mempool__cache_free(struct cache *c);

/* The full cache operations (cache.c), for calls the hit path did not
 * serve: they swap magazines, trade with the depot under the lock, and
 * honour steal requests. n <= c->size. What they did: */
enum served { SERVED_NOT, SERVED_CACHE, SERVED_DEPOT };
MEMPOOL_INTERNAL enum served mempool__cache_get(mempool *pool, struct cache *c,
                                                uint32_t *out, size_t n);
MEMPOOL_INTERNAL enum served mempool__cache_put(mempool *pool, struct cache *c,
                                                const uint32_t *indices, size_t n);
MEMPOOL_INTERNAL void mempool__cache_honour(mempool *pool, struct cache *c);

static inline bool cache_ordered(const mempool *pool)
{
    return atomic_load_explicit(&pool->cache_ordered, memory_order_relaxed);
}

/* Marks the owner busy, fence-free or ordered (a busy word of a private
 * cache, or of a shared pool's cache slot). */
static inline void busy_enter(_Atomic uint32_t *busy, bool ordered)
{
    if (ordered) {
        atomic_exchange_explicit(busy, CACHE_BUSY, memory_order_seq_cst);
    } else {
        atomic_store_explicit(busy, CACHE_BUSY, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
    }
}

/* Ends the owner's operation (or its attempt to start one). */
static inline void busy_idle(_Atomic uint32_t *busy, bool ordered)
{
    if (ordered) {
        atomic_exchange_explicit(busy, CACHE_IDLE, memory_order_seq_cst);
    } else {
        atomic_store_explicit(busy, CACHE_IDLE_FENCED, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
    }
}

static inline void cache_enter(struct cache *c, bool ordered)
{
    busy_enter(&c->busy, ordered);
}

static inline void cache_idle(struct cache *c, bool ordered)
{
    busy_idle(&c->busy, ordered);
}

static inline uint32_t cache_unusual(const struct cache *c)
{
    return atomic_load_explicit(&c->unusual, memory_order_seq_cst);
}

/* Copies n rounds off the top of the loaded magazine, which holds count. */
static inline void mag_pop(struct cache *c, uint32_t count, uint32_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = atomic_load_explicit(&c->loaded[count - 1 - i], memory_order_relaxed);
    atomic_store_explicit(&c->count, count - (uint32_t)n, memory_order_relaxed);
}

/* Pushes n validated blocks onto the loaded magazine, which holds count and
 * has room; each is marked free (and cached) so that a repeated put of it is
 * refused (unless the caller marked them already). */
static inline void mag_push(_Atomic uint64_t *entries, uint32_t mask, bool mark,
                            struct cache *c, uint32_t count, const uint32_t *indices, size_t n)
{
    _Atomic uint32_t *slot = c->loaded + count;
    for (size_t i = 0; i < n; i++) {
        if (mark)
            atomic_store_explicit(entry_at(entries, mask, indices[i]), ENTRY_IN_CACHE,
                                  memory_order_relaxed);
        atomic_store_explicit(slot + i, indices[i], memory_order_relaxed);
    }
    atomic_store_explicit(&c->count, count + (uint32_t)n, memory_order_relaxed);
}

/* The owner's own counter: a plain increment (readers sum under the lock).
 * Only the owner writes it, so no read-modify-write is needed; on x86-64
 * the increment is one unlocked add to memory (an aligned 8-byte access is
 * single-copy atomic there, so a reader's relaxed load sees a whole value),
 * where the C11 form costs a load, an add and a store. ThreadSanitizer
 * builds keep the C11 form, which it can see. */
static inline void counter_own_add(_Atomic uint64_t *counter, uint64_t n)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(MEMPOOL_TSAN)
    __asm__("addq %1, %0" : "+m"(*(uint64_t *)counter) : "er"(n));
#else
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
#endif
}

static inline void stats_own_add(struct cache *c, enum stat which, uint64_t n)
{
    counter_own_add(&c->stats[which], n);
}

/* Counts n events of one kind for the calling thread: a plain increment of
 * its own counter (readers sum them under the pool lock), or a shared atomic
 * for a thread that has no cache. */
static inline void stats_add(mempool *pool, struct cache *c, enum stat which, uint64_t n)
{
    if (likely(c && c != &mempool__sentinel))
        stats_own_add(c, which, n);
    else
        atomic_fetch_add_explicit(&pool->retired[which], n, memory_order_relaxed);
}

/* What a hit-path operation did. HIT_HONOUR: it was served, but the cache
 * was armed meanwhile, so the caller must call mempool__cache_honour (out of
 * line, in tail position, so that the hit path saves no registers). */
enum hit { HIT_MISS, HIT_DONE, HIT_HONOUR };

/* The hit path of a get of n blocks, for single and bulk calls alike: the
 * hottest n rounds of the loaded magazine, marked out and turned into
 * blocks, or HIT_MISS (the caller takes the full path) when it holds fewer
 * or anything is unusual. */
static inline enum hit cache_hit_get(mempool *pool, struct cache *c, void **blocks, size_t n)
{
    /* Read before the compiler barrier of cache_enter, so read once. */
    _Atomic uint64_t *entries = pool->stack.entries;
    uint32_t mask = pool->stack.mask;
    char *base = pool->base;
    size_t stride = pool->stride;
    cache_enter(c, CACHE_HIT_ORDERED);
    uint32_t count = atomic_load_explicit(&c->count, memory_order_relaxed);
    bool hit = likely(!cache_unusual(c)) && likely(n <= count);
    if (likely(hit)) {
        _Atomic uint32_t *top = c->loaded + count - 1;
        for (size_t i = 0; i < n; i++) {
            uint32_t index = atomic_load_explicit(top - i, memory_order_relaxed);
            atomic_store_explicit(entry_at(entries, mask, index), 0, memory_order_relaxed);
            blocks[i] = likely(base)
                ? base + (size_t)index * stride
                : atomic_load_explicit(&pool->blocks[index], memory_order_acquire);
        }
        atomic_store_explicit(&c->count, count - (uint32_t)n, memory_order_relaxed);
    }
    cache_idle(c, CACHE_HIT_ORDERED);
    if (unlikely(!hit))
        return HIT_MISS;
    return unlikely(cache_unusual(c) & CACHE_ARMED) ? HIT_HONOUR : HIT_DONE;
}

/* The index of a block of a power-of-two-stride arena, or a value of
 * hit_limit or more for anything else: the offset rotated right by the
 * stride's log, so that a misaligned offset lands in the top bits and a
 * pointer below the arena wraps to a huge value. */
static inline uint64_t hit_index(uintptr_t base, unsigned shift, const void *block)
{
    uint64_t offset = (uint64_t)((uintptr_t)block - base);
    return offset >> shift | offset << ((64 - shift) & 63);
}

/* The hit path of a put of n blocks, single and bulk alike, straight from
 * the caller's array: one pass validates each block (the rotation above,
 * then its entry must not read free) and pushes it, inside the busy
 * section, so that the index is computed once and never copied. HIT_MISS,
 * with every entry as it was, when the loaded magazine lacks room, anything
 * is unusual or any block fails the quick check (a bad one, one of an
 * arena the rotation cannot index, or one that appears twice): the caller's
 * full path then validates again and reports the first bad block. The
 * entries this call marked belong to blocks the caller still owns and that
 * no magazine count covers yet, so undoing them races with nobody.
 * `rotated`, when not NULL, holds the rotations the caller computed and
 * checked against hit_limit already (a single put does that first, so that
 * a pool the hit path cannot serve skips the cache entirely). */
static ALWAYS_INLINE enum hit cache_hit_put(mempool *pool, struct cache *c,
                                            void *const *blocks, size_t n, const uint64_t *rotated)
{
    cache_enter(c, CACHE_HIT_ORDERED);
    uint32_t count = atomic_load_explicit(&c->count, memory_order_relaxed);
    bool hit = likely(!cache_unusual(c)) && likely(n <= c->size - count);
    if (likely(hit)) {
        /* Read after the compiler barrier of cache_enter, where they are
         * needed: fewer registers live across it. */
        _Atomic uint64_t *entries = pool->stack.entries;
        uint32_t mask = pool->stack.mask;
        uint64_t limit = pool->hit_limit;
        uintptr_t base = (uintptr_t)pool->base;
        unsigned shift = pool->stride_shift & 63;
        _Atomic uint32_t *slot = c->loaded + count;
        size_t i = 0;
        for (; i < n; i++) {
            uint64_t wide = rotated ? rotated[i] : hit_index(base, shift, blocks[i]);
            if (!rotated && unlikely(wide >= limit))
                break;
            _Atomic uint64_t *entry = entry_at(entries, mask, (uint32_t)wide);
            if (unlikely(atomic_load_explicit(entry, memory_order_relaxed) & ENTRY_FREE))
                break;
            atomic_store_explicit(entry, ENTRY_IN_CACHE, memory_order_relaxed);
            atomic_store_explicit(slot + i, (uint32_t)wide, memory_order_relaxed);
        }
        if (likely(i == n)) {
            atomic_store_explicit(&c->count, count + (uint32_t)n, memory_order_relaxed);
        } else {
            hit = false;
            while (i--)
                atomic_store_explicit(
                    entry_at(entries, mask, atomic_load_explicit(slot + i, memory_order_relaxed)),
                    0, memory_order_relaxed);
        }
    }
    cache_idle(c, CACHE_HIT_ORDERED);
    if (unlikely(!hit))
        return HIT_MISS;
    stats_own_add(c, STAT_PUTS, n);
    return unlikely(cache_unusual(c) & CACHE_ARMED) ? HIT_HONOUR : HIT_DONE;
}

#endif
