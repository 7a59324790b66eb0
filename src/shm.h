/* SPDX-License-Identifier: MIT */
/* A pool shared by several processes: the segment's layout and the functions
 * its files share (shm.c: segment, validation and attachment; shm_path.c:
 * the lock, gets, puts, waits and hand-over; shm_recover.c: recovery).
 *
 * SEGMENT (offsets from its start; every part aligned to a cache line)
 *   header    written once by the creator, the magic last; an opener copies
 *             it into private memory with one read, recomputes the whole
 *             layout from the geometry and refuses any difference
 *   state     the lock word, counts, the waiter queue's ends, counters
 *   procs     the participant table: one slot per attached process
 *   waiters   one slot per sleeping get, its futex word included
 *   caches    one slot per thread cache (pools with caching): its owner,
 *             busy and unusual words, count and counters; then the slots'
 *             magazines, cache_size block indices each
 *   owners    one 64-bit word per block: the block's whole state
 *   next      one 32-bit link per block: the free list, and each waiter's
 *             list of blocks granted to it
 *   arena     the blocks
 * Nothing in the segment is a pointer: blocks are indices, waiters and
 * processes are slot numbers, so every process may map it anywhere.
 *
 * THE BLOCK'S STATE (owners[i], the single source of truth)
 *   bits 0..1   kind: FREE, OUT, TRANSIT, GRANTED
 *   bits 2..30  OUT: the holder's process id (slot and generation);
 *               GRANTED: the waiter slot it was handed to;
 *               FREE: 0 on the free list, else 1 + the cache slot that
 *               holds it (a cached block is free: a put of it is refused)
 *   bit  31     MARK: a bulk put in progress has checked this block
 *   bits 32..63 the block's give count: a handle names one give
 *   The free list, the waiters' lists and every count are derived from these
 *   words; recovery rebuilds them from the words alone.
 *
 * THE LOCK
 *   Every change of state but give and take (one CAS on the block's word)
 *   happens under one lock word in the segment: 0 when free, else the
 *   holder's process id + 1, with WAITERS set while someone sleeps on it.
 *   Nobody sleeps or calls back while holding it, and the threads of one
 *   process contend for it one at a time (under the handle's private lock),
 *   so a word naming our own id while we wait is corrupt. A contender that waits
 *   longer than a slice asks whether the holder's process still lives; if
 *   not, it takes the lock over and repairs the state from the block words,
 *   so a process killed at any instruction inside the lock costs a repair,
 *   never a lost or doubled block.
 *
 * PROCESS IDS
 *   slot | generation << 7. A slot's generation grows each time a process
 *   takes the slot over, so the words a dead process left carry an id that
 *   no live process has, even after its slot is reused. A process id is
 *   alive while its slot says LIVE with that generation and the slot's
 *   liveness lock (os.h) is held by another description, or it is ours.
 *
 * THREAD CACHES (shm_cache.c)
 *   A thread's cache is a slot in the segment, so that any process can take
 *   blocks parked in it and a dead process's caches are recovered from the
 *   block words like its held blocks. Its owner gets and puts its own blocks
 *   with plain loads and stores (a block it holds becomes FREE in its slot,
 *   and back), under the asymmetric fence of cache.h: a get that would wait
 *   or fail arms every slot under the lock, issues the barrier that reaches
 *   every attached process (membarrier's global command), and takes the
 *   blocks of every slot whose owner is not inside an operation; an owner
 *   that was sees the arm when its operation ends and hands its blocks over
 *   itself. While gets wait the slots stay armed, so puts hand their blocks
 *   to the oldest waiter and no get passes one. A process whose kernel
 *   refuses the barrier runs its caches with exchanges instead.
 */
#ifndef MEMPOOL_SHM_H
#define MEMPOOL_SHM_H

#include "internal.h"

#define SHM_MAGIC UINT64_C(0x53504f4f4c504d4d) /* "MMPLOOPS" little-endian */
#define SHM_ABI 2u
#define SHM_ENDIAN 0x01020304u
#define SHM_PROCS 128u    /* participants: at least 64, as documented */
#define SHM_WAITERS 1024u /* sleeping gets at one time, over all processes */
#define SHM_CACHES 256u   /* thread caches at one time, over all processes */
#define SHM_NONE UINT32_MAX

enum { OWN_FREE = 0, OWN_OUT = 1, OWN_TRANSIT = 2, OWN_GRANTED = 3 };
#define OWN_KIND(w) ((uint32_t)(w) & 3u)
#define OWN_WHO(w) (((uint32_t)(w) >> 2) & 0x1FFFFFFFu)
#define OWN_MARK ((uint64_t)1 << 31)
#define OWN_SEQ(w) ((uint32_t)((w) >> 32))
#define OWN_MAKE(kind, who, seq) ((uint64_t)(seq) << 32 | (uint64_t)(who) << 2 | (kind))
/* The low half of the word of a block in cache slot k: FREE, who k + 1. */
#define OWN_CACHED(k) ((uint32_t)((k) + 1) << 2 | OWN_FREE)
#define OWN_LOW(w) ((uint32_t)(w))

#define PROC_SLOT(id) ((id) & 0x7Fu)
#define PROC_GEN_MASK 0x3FFFFFu
#define PROC_ID(slot, gen) ((uint32_t)(slot) | ((gen) & PROC_GEN_MASK) << 7)
#define LOCK_WAITERS (1u << 31)

/* Immutable after creation: only the private copy is ever used. */
struct shm_header {
    uint64_t magic;
    uint32_t abi, header_size, endian, flags;
    uint64_t segment_size;
    uint64_t capacity, block_size, alignment, stride;
    uint32_t procs, waiters;
    uint64_t state_offset, procs_offset, waiters_offset, owners_offset, next_offset,
        arena_offset;
    uint32_t caches, cache_size; /* both 0 without caching */
    uint64_t caches_offset, mags_offset;
};

/* A participant slot's word: generation << 32 | state. One word, so that
 * a repair frees a slot by a CAS from the exact generation it judged dead,
 * and a new occupant's store can never be undone by it. */
enum { PROC_FREE = 0, PROC_LIVE = 1 };
#define PROC_WORD(gen, state) ((uint64_t)(gen) << 32 | (state))
#define PROC_GEN(word) ((uint32_t)((word) >> 32) & PROC_GEN_MASK)
#define PROC_STATE(word) ((uint32_t)(word))

struct shm_proc {
    _Atomic uint64_t word;
    _Atomic int64_t pid; /* in the attaching process's pid namespace: reports only */
    char pad[CACHE_LINE - 16];
};

/* Waiter slots: `state` is the futex word the get sleeps on. */
enum { WAIT_EMPTY = 0, WAIT_WAITING = 1, WAIT_DONE = 2, WAIT_CANCELED = 3 };

struct shm_waiter {
    _Atomic uint32_t state;
    _Atomic uint32_t owner; /* process id */
    _Atomic uint64_t ticket;
    _Atomic uint32_t need, have; /* blocks wanted; blocks granted so far */
    _Atomic uint32_t chain;      /* first granted block (list through next[]) */
    _Atomic uint32_t after;      /* the next waiter in the queue */
    char pad[CACHE_LINE - 32];
};

/* A thread cache's slot; its magazine is apart (mags_offset). The owner
 * word is the owning process's id + 1 (0: the slot is free). Only the
 * owner's thread writes count, the magazine and the counters outside the
 * lock; busy and unusual are the words of cache.h's protocol. */
struct shm_cache {
    _Atomic uint32_t owner;
    _Atomic uint32_t busy;
    _Atomic uint32_t unusual; /* CACHE_ARMED, CACHE_CLOSED */
    _Atomic uint32_t count;
    _Atomic uint64_t gets, puts;
    char pad[CACHE_LINE - 32];
};

struct shm_state {
    _Atomic uint32_t lock;
    _Atomic uint32_t closed;
    _Atomic uint32_t free_head;  /* the free list: a stack through next[] */
    _Atomic uint32_t first, last; /* the waiter queue, oldest first */
    _Atomic uint32_t queued;
    _Atomic uint32_t armed;      /* the cache slots are armed (shm_cache.c) */
    _Atomic uint64_t free_count; /* blocks on the free list */
    _Atomic uint64_t collected;  /* blocks granted to waiters not yet done */
    _Atomic uint64_t ticket;
    _Atomic uint64_t gets, puts, misses, waits, timeouts, refused, out_high;
    _Atomic uint64_t base_gets, base_puts, base_waits, base_timeouts, base_refused;
    _Atomic uint64_t cached_gets, cached_puts; /* counters of freed cache slots */
    _Atomic uint64_t base_misses;
};

/* The calling process's view of a shared pool (struct mempool.shm). */
struct shm {
    struct shm_header h;       /* the validated private copy */
    char *map;                 /* the mapping */
    int fd;                    /* the segment, owned by the pool */
    int own;                   /* our description, holding our slot's lock */
    uint32_t slot, id;         /* our participant slot and process id */
    bool forked;               /* this handle was inherited by a fork child */
    struct shm_state *state;
    struct shm_proc *procs;
    struct shm_waiter *waiters;
    struct shm_cache *caches;
    _Atomic uint32_t *mags;
    bool ordered;              /* our caches run with exchanges (no barrier) */
    _Atomic uint64_t *owners;
    _Atomic uint32_t *next;
    struct shm *prev_attached, *next_attached; /* the process's list (shm.c) */
    mempool *handle;           /* the handle this is part of: the list reaches
                                * every handle, a fork child's inherited ones
                                * included, which it may never destroy */
};

/* The counts change only under the lock, where a plain load and store do
 * what a read-modify-write would, for less (readers outside the lock load
 * them as atomics). */
#define LOCKED_ADD(count, delta)                                                  \
    atomic_store_explicit(&(count), atomic_load_explicit(&(count), memory_order_relaxed) + \
                                        (delta),                                  \
                          memory_order_relaxed)

/* Pops the free list's top: its index, or SHM_NONE when the list is empty
 * or its top is not a free block (then the caller repairs). Under the lock. */
static inline uint32_t free_pop(struct shm *s)
{
    uint32_t top = atomic_load_explicit(&s->state->free_head, memory_order_relaxed);
    if (top >= s->h.capacity)
        return SHM_NONE;
    uint64_t w = atomic_load_explicit(&s->owners[top], memory_order_relaxed);
    if (OWN_LOW(w) != OWN_FREE) /* free, and in no cache */
        return SHM_NONE;
    atomic_store_explicit(&s->state->free_head, atomic_load_explicit(&s->next[top],
                                                                     memory_order_relaxed),
                          memory_order_relaxed);
    LOCKED_ADD(s->state->free_count, -1);
    return top;
}

static inline void free_push(struct shm *s, uint32_t index)
{
    atomic_store_explicit(&s->next[index],
                          atomic_load_explicit(&s->state->free_head, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&s->state->free_head, index, memory_order_relaxed);
    LOCKED_ADD(s->state->free_count, 1);
}

/* Samples the blocks out for the high-water mark (under the lock). */
MEMPOOL_INTERNAL void mempool__shm_note_out(struct shm *s);

/* The shared pool behind a public call, or NULL with *err: ENOSYS, EINVAL
 * (not shared), EPERM (a fork child's copy of its parent's handle). */
MEMPOOL_INTERNAL struct shm *mempool__shm_of(const mempool *pool, int *err);
MEMPOOL_INTERNAL void mempool__shm_fork_child(struct shm *s);

/* The segment's layout for a geometry: false when it does not fit. */
MEMPOOL_INTERNAL bool mempool__shm_layout(struct shm_header *h);

/* The lock (shm_path.c). Taking it over from a dead holder repairs the
 * state (shm_recover.c) before returning. */
MEMPOOL_INTERNAL void mempool__shm_lock(mempool *pool);
/* The same, telling what a takeover's repair found (zeros otherwise). */
MEMPOOL_INTERNAL void mempool__shm_lock_report(mempool *pool, mempool_recovery *report);
MEMPOOL_INTERNAL void mempool__shm_unlock(mempool *pool);

/* Wakes collected while the lock was held, issued after it is released. */
struct shm_wakes {
    uint32_t slot[16];
    int n;
};
/* Gives blocks (already FREE in their words, or to be made so) to the
 * oldest waiters, the rest to the free list; under the lock. */
MEMPOOL_INTERNAL void mempool__shm_release(struct shm *s, const uint32_t *indices, size_t n,
                                           struct shm_wakes *wk);
MEMPOOL_INTERNAL void mempool__shm_wake(struct shm *s, struct shm_wakes *wk);
/* Grants free blocks to the queue while both have some (under the lock). */
MEMPOOL_INTERNAL void mempool__shm_feed(struct shm *s, struct shm_wakes *wk);

/* Recovery (shm_recover.c). mempool__shm_repair runs under the lock and
 * rebuilds everything derived from the block words; mempool__shm_any_dead
 * asks, without the lock, whether some attached process has died. */
MEMPOOL_INTERNAL bool mempool__shm_alive(const struct shm *s, uint32_t id);
MEMPOOL_INTERNAL bool mempool__shm_any_dead(const struct shm *s);
MEMPOOL_INTERNAL void mempool__shm_repair(struct shm *s, unsigned flags,
                                          mempool_recovery *report, struct shm_wakes *wk);

/* The shared pool's calls behind the public ones (shm_path.c); puts and
 * refusals reach them through the handle's mode operations. */
MEMPOOL_INTERNAL extern const struct pool_ops mempool__shm_ops;
MEMPOOL_INTERNAL int mempool__shm_get(mempool *pool, void **blocks, size_t n,
                                      int64_t timeout_ns);
MEMPOOL_INTERNAL int mempool__shm_put(mempool *pool, void *const *blocks, size_t n);
MEMPOOL_INTERNAL void mempool__shm_close(mempool *pool);
MEMPOOL_INTERNAL int mempool__shm_drain(mempool *pool, int64_t timeout_ns);
MEMPOOL_INTERNAL void mempool__shm_detach(mempool *pool);
MEMPOOL_INTERNAL size_t mempool__shm_available(const mempool *pool);
MEMPOOL_INTERNAL void mempool__shm_stats(const mempool *pool, mempool_stats *out);
MEMPOOL_INTERNAL int mempool__shm_stats_reset(mempool *pool);

/* Thread caches (shm_cache.c). The hit paths serve one block from or into
 * the calling thread's slot: true when served, false to take the locked
 * path (no slot, empty or full after a refill or flush, or anything
 * unusual). */
struct cache;
MEMPOOL_INTERNAL bool mempool__shm_cache_get(mempool *pool, void **block);
MEMPOOL_INTERNAL bool mempool__shm_cache_put(mempool *pool, uint32_t index);
/* The public single get and put of a shared pool: the hit path inline,
 * then the full call (errno set on failure; 0 or an errno value). */
MEMPOOL_INTERNAL void *mempool__shm_get_one(mempool *pool, int64_t timeout_ns);
/* The same, for a thread whose object for the pool has shared_fast set:
 * the private miss path comes here. */
MEMPOOL_INTERNAL void *mempool__shm_get_fast(mempool *pool, struct cache *c, int64_t timeout_ns);
/* The put, given the rotation of the block's offset that the private hit
 * path computed (cache.h's hit_index). */
MEMPOOL_INTERNAL int mempool__shm_put_one(mempool *pool, void *block, uint64_t rotated);
/* Under the lock: arms every slot and takes the blocks of every owner not
 * inside an operation (to the oldest waiters, else the free list). */
MEMPOOL_INTERNAL void mempool__shm_reclaim(struct shm *s, struct shm_wakes *wk);
/* Under the lock: disarms the slots once no get waits. */
MEMPOOL_INTERNAL void mempool__shm_settle(struct shm *s);
/* Under the lock, for close: every slot's gets fail from now on. */
MEMPOOL_INTERNAL void mempool__shm_caches_close(struct shm *s);
/* Under the lock: frees the slots of process `id` (ours at detach, a dead
 * one's in a repair) whose blocks are no longer theirs, folding their
 * counters into the pool's. */
MEMPOOL_INTERNAL void mempool__shm_caches_free(struct shm *s, uint32_t id);
/* The cache slot a block word says holds the block, or SHM_NONE. */
static inline uint32_t own_cache_slot(const struct shm *s, uint64_t w)
{
    uint32_t who = OWN_WHO(w);
    return OWN_KIND(w) == OWN_FREE && who - 1 < s->h.caches ? who - 1 : SHM_NONE;
}
/* Blocks in the caches, and the counters of all slots. */
MEMPOOL_INTERNAL uint64_t mempool__shm_cached(const struct shm *s);
MEMPOOL_INTERNAL void mempool__shm_cache_counts(const struct shm *s, uint64_t *gets,
                                                uint64_t *puts);
/* mempool_flush: the calling thread's slot empties into the pool. */
MEMPOOL_INTERNAL void mempool__shm_flush(mempool *pool);
/* Thread exit (registry lock held): the thread's slot goes back. */
MEMPOOL_INTERNAL void mempool__shm_cache_retire(mempool *pool, struct cache *c);

#ifdef MEMPOOL_FAULT_INJECTION
/* Test builds: when the countdown is k > 0, the k-th step from now of a
 * shared-pool operation kills the process (SIGKILL), so that tests can die
 * at every step in turn. */
extern _Atomic long mempool__shm_crash_countdown;
MEMPOOL_INTERNAL void mempool__shm_step(void);
#define SHM_STEP() mempool__shm_step()
#else
#define SHM_STEP() ((void)0)
#endif

#endif
