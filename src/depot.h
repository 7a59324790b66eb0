/* SPDX-License-Identifier: MIT */
/* The depot: whole magazines that no thread holds, under the pool lock.
 *
 * A thread whose two magazines are both empty gives the depot an empty one
 * and takes a full one; a thread whose two are both full does the reverse.
 * Each exchange moves a pointer, whatever the magazine size. Full magazines
 * in the depot hold free blocks (their entries say ENTRY_IN_CACHE), counted in
 * `rounds` so that lock-free readers of the free count see them.
 *
 * INVARIANTS (pool lock)
 *   - full_count + empty_count <= slots; magazines = those here, those held
 *     by caches and `excess` more to free when one comes back empty;
 *   - rounds = full_count x size;
 *   - waiters queued => full_count = 0 (a get empties the depot before it
 *     sleeps, and while waiters are queued the caches are armed, so full
 *     magazines go to waiters instead of the depot).
 */
#ifndef MEMPOOL_DEPOT_H
#define MEMPOOL_DEPOT_H

#include "internal.h"

static inline size_t magazine_bytes(uint32_t size)
{
    return (size_t)size * sizeof(uint32_t);
}

/* A full magazine, or NULL. */
static inline _Atomic uint32_t *depot_take_full(struct depot *d)
{
    if (!d->full_count)
        return NULL;
    atomic_store_explicit(&d->rounds, atomic_load_explicit(&d->rounds, memory_order_relaxed) -
                                          d->size, memory_order_relaxed);
    return d->full[--d->full_count];
}

static inline void depot_give_full(struct depot *d, _Atomic uint32_t *m)
{
    DEBUG_ASSERT(d->full_count + d->empty_count < d->slots);
    d->full[d->full_count++] = m;
    atomic_store_explicit(&d->rounds, atomic_load_explicit(&d->rounds, memory_order_relaxed) +
                                          d->size, memory_order_relaxed);
}

static inline _Atomic uint32_t *depot_take_empty(struct depot *d)
{
    return d->empty_count ? d->empty[--d->empty_count] : NULL;
}

/* Takes an empty magazine back: kept, or freed when one is owed. */
MEMPOOL_INTERNAL void mempool__depot_give_empty(struct depot *d, _Atomic uint32_t *m);
/* Makes room for `more` magazines: false when out of memory. */
MEMPOOL_INTERNAL bool mempool__depot_reserve(struct depot *d, uint32_t more);
/* One fewer magazine is needed: frees an empty one, or owes it. */
MEMPOOL_INTERNAL void mempool__depot_shrink(struct depot *d);
/* Frees every magazine in the depot and its arrays (destroy). */
MEMPOOL_INTERNAL void mempool__depot_free(struct depot *d);
MEMPOOL_INTERNAL _Atomic uint32_t *mempool__magazine_alloc(uint32_t size);
MEMPOOL_INTERNAL void mempool__magazine_free(_Atomic uint32_t *m, uint32_t size);

#endif
