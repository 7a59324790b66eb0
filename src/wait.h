/* SPDX-License-Identifier: MIT */
/* The slow-path pieces that the cache layer shares with wait.c. All of them
 * run with the pool lock held, except unlock_and_wake, which releases it. */
#ifndef MEMPOOL_WAIT_H
#define MEMPOOL_WAIT_H

#include "internal.h"

/* Futex wakes are issued after the lock is released: a woken thread does not
 * need the lock, but the one it wakes next may. */
struct wakeups {
    _Atomic uint32_t *word[8];
    int count[8];
    int n;
};

/* Gives blocks to the oldest waiters, the rest to the shared stack. */
MEMPOOL_INTERNAL void mempool__give_locked(mempool *pool, const uint32_t *indices, size_t n,
                                           struct wakeups *wk);
/* Keeps the WAIT bit and the caches' steal flags equal to "somebody sleeps
 * on this pool". */
MEMPOOL_INTERNAL void mempool__wait_bit_update(mempool *pool);
MEMPOOL_INTERNAL void mempool__unlock_and_wake(mempool *pool, struct wakeups *wk);

/* capacity minus the blocks out, caches included. */
MEMPOOL_INTERNAL size_t mempool__available_locked(const mempool *pool);

/* Cache side (cache.c). */
MEMPOOL_INTERNAL size_t mempool__caches_count_locked(const mempool *pool);
MEMPOOL_INTERNAL void mempool__caches_arm(mempool *pool, bool on);
/* True when no cache's owner may be inside an operation (caches armed). */
MEMPOOL_INTERNAL bool mempool__caches_idle_locked(const mempool *pool);
/* Wakes the drainers when the pool is complete. */
MEMPOOL_INTERNAL void mempool__drain_check(mempool *pool, struct wakeups *wk);
/* Takes the blocks of every cache whose owner is not mid-call and gives them
 * to waiters or the stack: how many moved. keep_armed leaves every cache
 * armed (for a get about to sleep); otherwise a reclaim that finds all
 * counts zero costs no barrier. */
MEMPOOL_INTERNAL size_t mempool__caches_reclaim(mempool *pool, struct wakeups *wk,
                                                bool keep_armed);

#endif
