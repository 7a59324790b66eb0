/* SPDX-License-Identifier: MIT */
/* The pool's layout and the functions the source files share. */
#ifndef MEMPOOL_INTERNAL_H
#define MEMPOOL_INTERNAL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mempool.h"
#include "os.h"
#include "stack.h"

#define CACHE_LINE 64

#if defined(__GNUC__)
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define likely(x) (x)
#define unlikely(x) (x)
#define NOINLINE
#define ALWAYS_INLINE inline
#endif

/* MEMPOOL_DEBUG builds check the invariants that the comments state (those
 * that hold under the pool lock, buffer bounds) and abort on a violation;
 * other builds compile the checks away. */
#ifdef MEMPOOL_DEBUG
#define DEBUG_ASSERT(cond) \
    ((cond) ? (void)0 : mempool__debug_fail(#cond, __FILE__, __LINE__))
#else
#define DEBUG_ASSERT(cond) ((void)0)
#endif

/* Generator mode: block pointer -> index, an open-addressing table with twice
 * the capacity's slots (rounded up to a power of two). Inserts claim a key
 * with one CAS and publish the index after it, so lookups run lock-free
 * beside lazy inserts; a key without its index yet is "not a block", which is
 * right: a block being registered has not been handed out. */
struct ptr_map {
    _Atomic uintptr_t *keys;
    _Atomic uint32_t *values; /* index + 1; 0 while the insert is in flight */
    size_t mask;
    unsigned shift; /* 64 - log2(slots): hashing keeps the product's top bits */
};

struct waiter;
struct cache;

/* Operations a mode runs instead of the plain ones, chosen at create:
 * NULL for a plain pool, &mempool__checked_ops for MEMPOOL_CHECKED. */
struct pool_ops {
    int (*put)(mempool *pool, void *block);
    int (*put_bulk)(mempool *pool, void *const *blocks, size_t n);
    void (*got)(mempool *pool, const void *block); /* a block handed out */
    void (*report)(mempool *pool, const char *what, const void *block); /* a refusal */
};

/* The depot (depot.h): whole magazines that no thread holds, full ones and
 * empty ones, exchanged under the pool lock. */
struct depot {
    _Atomic uint32_t **full;     /* magazines of `size` rounds each */
    _Atomic uint32_t **empty;
    uint32_t full_count, empty_count;
    uint32_t slots;              /* room in each array: magazines in all */
    uint32_t magazines;          /* magazines that exist, held or here */
    uint32_t excess;             /* to free when they come back empty */
    uint32_t size;               /* rounds per magazine */
    _Atomic size_t rounds;       /* blocks in full magazines (read unlocked) */
};

/* Counters kept per thread (struct cache) and, for threads without one and
 * threads that have exited, per pool. Gets are not counted: every block out
 * was got and not yet put, so gets = puts + out, and cache hits = gets -
 * misses; a get served by the cache costs no counter at all. */
enum stat { STAT_MISSES, STAT_PUTS, STAT_COUNT };

/* The largest per-thread cache, in blocks. */
#define CACHE_SIZE_MAX 4096u
/* The per-thread cache size a configuration asks for (create.c). */
MEMPOOL_INTERNAL uint32_t mempool__cache_size_for(const mempool_config *c);

/* ThreadSanitizer models neither membarrier nor standalone fences: its
 * builds use the ordered variant of the cache protocol (cache.h). */
#if !defined(MEMPOOL_TSAN) && defined(__SANITIZE_THREAD__)
#define MEMPOOL_TSAN 1
#endif
#if !defined(MEMPOOL_TSAN) && defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MEMPOOL_TSAN 1
#endif
#endif

struct mempool {
    /* Read-mostly: set at creation (closed changes once). */
    size_t capacity;
    size_t block_size;
    size_t stride;          /* arena: distance between block starts */
    unsigned stride_shift;  /* arena: log2(stride) when it is a power of two */
    uint64_t stride_inverse; /* arena: ceil(2^64 / stride) otherwise */
    char *base;             /* arena: block 0; NULL in generator mode */
    size_t arena_bytes;
    size_t arena_alignment;
    struct os_region arena_region; /* what was mapped for the arena */
    bool arena_borrowed;    /* the caller's region (config.memory): never freed */
    void (*fini)(void *block, void *arg); /* arena: undoes init at destroy */
    int numa_node;          /* MEMPOOL_NUMA: the node; else -1 */
    _Atomic(void *) *blocks; /* generator: index -> block */
    struct ptr_map map;
    void *(*make)(void *arg);
    void (*unmake)(void *block, void *arg);
    void (*on_misuse)(const char *what, const void *block, void *arg);
    void *arg;
    unsigned flags;
    size_t meta_bytes;      /* everything allocated besides the arena */
    struct os_region meta_region; /* what was mapped for it */
    _Atomic bool closed;
    unsigned track;         /* TRACK_* tools told about free blocks (track.h) */
    bool checked;           /* MEMPOOL_CHECKED (checked.c) */
    const struct pool_ops *ops; /* the mode's own operations, or NULL */
    struct shm *shm;        /* a shared pool's segment (shm.h), or NULL */
    uint64_t *checksums;    /* checked arena: contents at put, per block */
    uint32_t *ring;         /* checked: free blocks, oldest first (lock) */
    size_t ring_head;
    _Atomic size_t ring_length;
    uint64_t id;            /* never reused: names the pool in reports */
    uint32_t cache_slot;    /* slot in the threads' cache directories; 0: none */
    uint32_t cache_dir;     /* cache_slot / CACHE_PAGE and % CACHE_PAGE (cache.h) */
    uint32_t cache_page;
    uint32_t cache_size;    /* blocks per thread cache (two magazines); 0: none */
    /* Validation by rotation: a block's offset from base, rotated right by
     * stride_shift, is its index when below valid_limit (capacity for an
     * arena with a power-of-two stride, else 0: block_lookup decides).
     * hit_limit is the same for the pools whose puts the hit path serves
     * (cached, untracked), 0 for the others. */
    uint64_t valid_limit;
    uint64_t hit_limit;
    /* Ordered atomics instead of the heavy barrier: set at creation where
     * the OS grants no barrier, and for good when one fails later (cache.h). */
    _Atomic bool cache_ordered;

    /* The free list's head, alone on its line: every get and put CASes it. */
    alignas(CACHE_LINE) struct stack stack;

    /* Slow path state, guarded by lock. */
    alignas(CACHE_LINE) os_lock_t lock;
    struct waiter *first, *last; /* FIFO of sleeping gets */
    unsigned drainers;
    _Atomic size_t collected;    /* blocks held by queued bulk waiters */
    _Atomic uint32_t drain_seq;  /* bumped when a put completes the pool */
    struct cache *caches;        /* every thread cache of this pool */
    bool caches_armed;           /* ARMED set on every cache */
    uint32_t cache_marks;        /* permanent unusual bits of every cache (cache.h) */
    struct depot depot;          /* whole magazines (depot.h) */

    /* Statistics (stats.c). Slow-path events are counted here directly. */
    _Atomic uint64_t retired[STAT_COUNT]; /* exited or cacheless threads */
    _Atomic uint64_t waits, timeouts, refused;
    _Atomic uint64_t out_high;
    mempool_stats baseline;      /* subtracted on read: reset (lock) */

    /* Lazy generator mode. */
    _Atomic size_t unmade;       /* slots nobody has claimed for a make yet */
    _Atomic size_t made;         /* next index to give a made block */
};

/* Pointer <-> index (index.c; the hot-path lookups are inline in index.h). */
/* Registers a block that `make` returned: its index, or STACK_NIL when the
 * pointer is already a block of the pool. */
MEMPOOL_INTERNAL uint32_t mempool__register(mempool *pool, void *block);
MEMPOOL_INTERNAL size_t mempool__map_bytes(size_t capacity);
MEMPOOL_INTERNAL void mempool__map_init(struct ptr_map *map, void *memory, size_t capacity);

/* Reports a failed DEBUG_ASSERT on stderr and aborts (callback.c). */
MEMPOOL_INTERNAL void mempool__debug_fail(const char *what, const char *file, int line);

/* Callbacks run with cancellation off and errno kept (callback.c). */
MEMPOOL_INTERNAL void *mempool__call_make(mempool *pool);
MEMPOOL_INTERNAL void mempool__call_unmake(mempool *pool, void *block);
MEMPOOL_INTERNAL void mempool__report(mempool *pool, const char *what, const void *block);
/* Counts and reports a refused put. */
MEMPOOL_INTERNAL void mempool__put_refused(mempool *pool, const char *what, const void *block);

/* The sleeping get (wait.c). */
MEMPOOL_INTERNAL int mempool__get_slow(mempool *pool, void **out, size_t n,
                                       int64_t timeout_ns);
/* Hand-off puts and returned lazy slots, taking the lock (locked.c). */
MEMPOOL_INTERNAL void mempool__put_slow(mempool *pool, const uint32_t *indices, size_t n);
MEMPOOL_INTERNAL void mempool__return_slot(mempool *pool);

/* Checked mode (checked.c). Guard bytes follow each arena block. */
MEMPOOL_INTERNAL extern const struct pool_ops mempool__checked_ops;
#define CHECKED_GUARD 16
MEMPOOL_INTERNAL size_t mempool__checked_bytes(const mempool *pool);
MEMPOOL_INTERNAL void mempool__checked_init(mempool *pool, void *memory);
/* Claims a block being put: its CAS from "out" lets exactly one of two
 * racing puts win. The index, or STACK_NIL with *what saying why. */
MEMPOOL_INTERNAL uint32_t mempool__checked_claim(mempool *pool, const void *block,
                                                 const char **what);
MEMPOOL_INTERNAL void mempool__checked_unclaim(mempool *pool, uint32_t index);
/* Checks the guard of a claimed block and records its checksum. */
MEMPOOL_INTERNAL void mempool__checked_seal(mempool *pool, uint32_t index, const void *block);
/* Verifies a block handed out by a checked pool (no lock held). */
MEMPOOL_INTERNAL void mempool__checked_got(mempool *pool, const void *block);
MEMPOOL_INTERNAL void mempool__checked_leaks(mempool *pool);
/* Reports a detection: to on_misuse, else one line on stderr, and for
 * corruption ("write-after-put", "overflow") an abort. */
MEMPOOL_INTERNAL void mempool__checked_report(mempool *pool, const char *what,
                                              const void *block);

/* Statistics (stats.c). */
MEMPOOL_INTERNAL void mempool__stats_raise_high(mempool *pool, size_t out);

/* Samples the number of blocks out for the high-water mark: a shared read,
 * and a write only on a new high. */
static inline void stats_note_out(mempool *pool, size_t out)
{
    if (unlikely(out > atomic_load_explicit(&pool->out_high, memory_order_relaxed)))
        mempool__stats_raise_high(pool, out);
}

/* Pool ids and cache slots (registry.c). */
MEMPOOL_INTERNAL void mempool__registry_add(mempool *pool);
MEMPOOL_INTERNAL void mempool__registry_remove(mempool *pool);
/* A shared pool's handle: an id, no cache slot, and a place in the list
 * that a fork child walks to disown its parent's handles. */
MEMPOOL_INTERNAL void mempool__registry_shm_add(mempool *pool);
MEMPOOL_INTERNAL void mempool__registry_shm_remove(mempool *pool);

/* Claims one unmade slot (lazy mode): true when the caller may make a block. */
static inline bool mempool__claim_slot(mempool *pool)
{
    size_t unmade = atomic_load_explicit(&pool->unmade, memory_order_relaxed);
    while (unmade > 0) {
        if (atomic_compare_exchange_weak_explicit(&pool->unmade, &unmade, unmade - 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

#endif
