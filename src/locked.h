/* SPDX-License-Identifier: MIT */
/* The pool's locked layer (locked.c): everything that runs under the pool
 * lock, shared by the cache layer (cache.c), the waiting layer (wait.c),
 * the thread registry (registry.c) and the public calls (pool.c). All of it
 * runs with the lock held, except the calls that take it themselves
 * (put_slow, return_slot, cache_honour) and unlock_and_wake, which
 * releases it. Nothing here calls up into those files. */
#ifndef MEMPOOL_LOCKED_H
#define MEMPOOL_LOCKED_H

#include "internal.h"

/* Futex wakes are issued after the lock is released: a woken thread does not
 * need the lock, but the one it wakes next may. */
struct wakeups {
    _Atomic uint32_t *word[8];
    int count[8];
    int n;
};

/* A waiter's state; TIMED_OUT is only ever returned, never stored. */
enum { WAITING, DONE, CANCELED, SLOT, TIMED_OUT };

struct waiter {
    struct waiter *next, *prev;
    void **out;
    size_t need, have;
    _Atomic uint32_t state;
};

/* The waiter queue (FIFO) and the free structure under it. */
MEMPOOL_INTERNAL void mempool__queue_add(mempool *pool, struct waiter *w, bool front);
MEMPOOL_INTERNAL void mempool__queue_remove(mempool *pool, struct waiter *w);
/* The free structure: the stack, or a checked pool's FIFO ring. */
MEMPOOL_INTERNAL void mempool__free_locked(mempool *pool, const uint32_t *indices, size_t n);
MEMPOOL_INTERNAL uint32_t mempool__take_free_locked(mempool *pool);
/* Gives blocks to the oldest waiters, the rest to the free structure. */
MEMPOOL_INTERNAL void mempool__give_locked(mempool *pool, const uint32_t *indices, size_t n,
                                           struct wakeups *wk);
/* Gives back blocks a get had taken but cannot keep (all or nothing). */
MEMPOOL_INTERNAL void mempool__give_back_locked(mempool *pool, void **blocks, size_t n,
                                                struct wakeups *wk);
/* Keeps the WAIT bit and the caches' steal flags equal to "somebody sleeps
 * on this pool". */
MEMPOOL_INTERNAL void mempool__wait_bit_update(mempool *pool);
MEMPOOL_INTERNAL void mempool__unlock_and_wake(mempool *pool, struct wakeups *wk);

/* capacity minus the blocks out, caches included. */
MEMPOOL_INTERNAL size_t mempool__available_locked(const mempool *pool);
/* Drain: true when every block is back at one instant (caches armed), and
 * the check that wakes the drainers when it is. */
MEMPOOL_INTERNAL bool mempool__drain_complete_locked(const mempool *pool);
MEMPOOL_INTERNAL void mempool__drain_check(mempool *pool, struct wakeups *wk);

/* Caches under the lock: emptying one, and taking the blocks of every cache
 * whose owner is not mid-call, given to waiters or the stack: how many
 * moved. keep_armed leaves every cache armed (for a get about to sleep);
 * otherwise a reclaim that finds all counts zero costs no barrier. */
MEMPOOL_INTERNAL size_t mempool__cache_empty_locked(mempool *pool, struct cache *c,
                                                    struct wakeups *wk);
MEMPOOL_INTERNAL size_t mempool__caches_reclaim(mempool *pool, struct wakeups *wk,
                                                bool keep_armed);
/* The depot's full magazines, given to waiters or the stack: how many
 * blocks moved. */
MEMPOOL_INTERNAL size_t mempool__depot_empty_locked(mempool *pool, struct wakeups *wk);
/* Marks every cache CLOSED, past the heavy barrier: a get that starts
 * after close returns leaves the hit path and fails. */
MEMPOOL_INTERNAL void mempool__caches_close_locked(mempool *pool);
/* Empties the caller's cache under the lock (cache.h: honouring a steal
 * request). */
MEMPOOL_INTERNAL void mempool__cache_honour(mempool *pool, struct cache *c);

#endif
