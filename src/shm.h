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
 *               GRANTED: the waiter slot it was handed to
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
 */
#ifndef MEMPOOL_SHM_H
#define MEMPOOL_SHM_H

#include "internal.h"

#define SHM_MAGIC UINT64_C(0x53504f4f4c504d4d) /* "MMPLOOPS" little-endian */
#define SHM_ABI 1u
#define SHM_ENDIAN 0x01020304u
#define SHM_PROCS 128u    /* participants: at least 64, as documented */
#define SHM_WAITERS 1024u /* sleeping gets at one time, over all processes */
#define SHM_NONE UINT32_MAX

enum { OWN_FREE = 0, OWN_OUT = 1, OWN_TRANSIT = 2, OWN_GRANTED = 3 };
#define OWN_KIND(w) ((uint32_t)(w) & 3u)
#define OWN_WHO(w) (((uint32_t)(w) >> 2) & 0x1FFFFFFFu)
#define OWN_MARK ((uint64_t)1 << 31)
#define OWN_SEQ(w) ((uint32_t)((w) >> 32))
#define OWN_MAKE(kind, who, seq) ((uint64_t)(seq) << 32 | (uint64_t)(who) << 2 | (kind))

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

struct shm_state {
    _Atomic uint32_t lock;
    _Atomic uint32_t closed;
    _Atomic uint32_t free_head;  /* the free list: a stack through next[] */
    _Atomic uint32_t first, last; /* the waiter queue, oldest first */
    _Atomic uint32_t queued;
    _Atomic uint64_t free_count; /* blocks on the free list */
    _Atomic uint64_t collected;  /* blocks granted to waiters not yet done */
    _Atomic uint64_t ticket;
    _Atomic uint64_t gets, puts, misses, waits, timeouts, refused, out_high;
    _Atomic uint64_t base_gets, base_puts, base_waits, base_timeouts, base_refused;
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
    _Atomic uint64_t *owners;
    _Atomic uint32_t *next;
    struct shm *prev_attached, *next_attached; /* the process's list (shm.c) */
    mempool *handle;           /* the handle this is part of: the list reaches
                                * every handle, a fork child's inherited ones
                                * included, which it may never destroy */
};

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
