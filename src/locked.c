/* SPDX-License-Identifier: MIT */
/* The locked layer: hand-off to waiters, the free structure, the WAIT bit,
 * drain completion, and the caches' side of the reclaim protocol (arming,
 * the heavy barrier, emptying). The waiting protocol these serve, with its
 * invariants, is described in wait.c; the cache protocol in cache.h. */
#include <errno.h>

#include "cache.h"
#include "depot.h"
#include "index.h"
#include "locked.h"
#include "ring.h"

static size_t caches_count_locked(const mempool *pool);
static void caches_arm(mempool *pool, bool on);
static bool caches_idle_locked(const mempool *pool);
static void caches_barrier(mempool *pool);

static void wake_later(struct wakeups *wk, _Atomic uint32_t *word, int count)
{
    if (wk->n < 8) {
        wk->word[wk->n] = word;
        wk->count[wk->n++] = count;
    } else {
        mempool__os_wake(word, count);
    }
}

/* The invariants of the waiting protocol (wait.c), checked before every
 * unlock that follows a change, in MEMPOOL_DEBUG builds. */
static void locked_invariants(const mempool *pool)
{
#ifdef MEMPOOL_DEBUG
    uint64_t head = atomic_load_explicit(&pool->stack.head, memory_order_relaxed);
    size_t collected = 0;
    for (const struct waiter *w = pool->first; w; w = w->next) {
        DEBUG_ASSERT(w->have < w->need);
        DEBUG_ASSERT(w->next ? w->next->prev == w : pool->last == w);
        collected += w->have;
    }
    DEBUG_ASSERT(collected == atomic_load_explicit(&pool->collected, memory_order_relaxed));
    /* Waiters queued: every put hands off to them, and lazy slots that come
     * back go to them, so nothing free is left outside the caches. */
    if (pool->first) {
        DEBUG_ASSERT(stack_top(head) == STACK_NIL);
        DEBUG_ASSERT(atomic_load_explicit(&pool->ring_length, memory_order_relaxed) == 0);
        DEBUG_ASSERT(atomic_load_explicit(&pool->unmade, memory_order_relaxed) == 0);
        DEBUG_ASSERT(pool->depot.full_count == 0);
    }
    DEBUG_ASSERT(atomic_load_explicit(&pool->depot.rounds, memory_order_relaxed) ==
                 (size_t)pool->depot.full_count * pool->depot.size);
    bool want = pool->first || pool->drainers;
    DEBUG_ASSERT(!!(head & STACK_WAIT) == want);
    DEBUG_ASSERT(pool->caches_armed == want);
#else
    (void)pool;
#endif
}

void mempool__unlock_and_wake(mempool *pool, struct wakeups *wk)
{
    locked_invariants(pool);
    os_unlock(&pool->lock);
    for (int i = 0; i < wk->n; i++)
        mempool__os_wake(wk->word[i], wk->count[i]);
}

void mempool__queue_add(mempool *pool, struct waiter *w, bool front)
{
    if (front) {
        w->prev = NULL;
        w->next = pool->first;
        if (pool->first)
            pool->first->prev = w;
        else
            pool->last = w;
        pool->first = w;
    } else {
        w->next = NULL;
        w->prev = pool->last;
        if (pool->last)
            pool->last->next = w;
        else
            pool->first = w;
        pool->last = w;
    }
    atomic_fetch_add_explicit(&pool->collected, w->have, memory_order_relaxed);
}

void mempool__queue_remove(mempool *pool, struct waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        pool->first = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        pool->last = w->prev;
    atomic_fetch_sub_explicit(&pool->collected, w->have, memory_order_relaxed);
}

void mempool__wait_bit_update(mempool *pool)
{
    bool want = pool->first || pool->drainers;
    bool have = atomic_load_explicit(&pool->stack.head, memory_order_relaxed) & STACK_WAIT;
    if (want != have)
        stack_set_wait(&pool->stack, want);
    caches_arm(pool, want);
}

/* The free blocks, summed from terms read one after another: a block moving
 * between two of them can count twice (see drain_complete_locked). */
static size_t free_sum_locked(const mempool *pool)
{
    return stack_depth(&pool->stack) +
           atomic_load_explicit(&pool->ring_length, memory_order_relaxed) +
           atomic_load_explicit(&pool->collected, memory_order_relaxed) +
           atomic_load_explicit(&pool->unmade, memory_order_relaxed) +
           atomic_load_explicit(&pool->depot.rounds, memory_order_relaxed) +
           caches_count_locked(pool);
}

size_t mempool__available_locked(const mempool *pool)
{
    size_t n = free_sum_locked(pool);
    return n < pool->capacity ? n : pool->capacity;
}

/* True when every block is back, at one instant. Only with the caches armed
 * (a drain waits): no owner can then start an operation, and one still in
 * an operation makes the answer no (it honours the steal request when it
 * ends, under the lock, and checks again). So nothing moves between the
 * stack and a cache while the terms are read; what can still change is
 * blocks leaving (lock-free pops, lazy slots claimed), and a sum of terms
 * that only shrink equals the capacity only if the pool was complete when
 * the first was read. */
bool mempool__drain_complete_locked(const mempool *pool)
{
    DEBUG_ASSERT(pool->caches_armed);
    if (!caches_idle_locked(pool))
        return false;
    size_t n = free_sum_locked(pool);
    /* Nothing in flight between the terms: none can count twice. */
    DEBUG_ASSERT(n <= pool->capacity);
    return n == pool->capacity;
}

/* A drain sleeps until a put sees the pool complete; it is told by a bump of
 * drain_seq, so it returns 0 even if a get takes a block right after. */
void mempool__drain_check(mempool *pool, struct wakeups *wk)
{
    if (pool->drainers && mempool__drain_complete_locked(pool)) {
        atomic_fetch_add_explicit(&pool->drain_seq, 1, memory_order_release);
        wake_later(wk, &pool->drain_seq, 1 << 30);
    }
}

/* The free structure: the stack, or a checked pool's FIFO ring. */
void mempool__free_locked(mempool *pool, const uint32_t *indices, size_t n)
{
    if (!pool->checked) {
        stack_push_many(&pool->stack, indices, n, true);
        return;
    }
    for (size_t i = 0; i < n; i++)
        ring_add(pool, indices[i]);
}

uint32_t mempool__take_free_locked(mempool *pool)
{
    return pool->checked ? ring_take(pool) : stack_pop(&pool->stack, NULL);
}

void mempool__give_locked(mempool *pool, const uint32_t *indices, size_t n,
                        struct wakeups *wk)
{
    size_t i = 0;
    while (i < n && pool->first) {
        struct waiter *w = pool->first;
        stack_mark_out(&pool->stack, indices[i]);
        w->out[w->have++] = block_at(pool, indices[i++]);
        atomic_fetch_add_explicit(&pool->collected, 1, memory_order_relaxed);
        if (w->have < w->need)
            continue;
        mempool__queue_remove(pool, w);
        /* Release: the waiter reads out[] after it sees DONE. After this
         * store `w` may be gone; only its state's address is used. */
        atomic_store_explicit(&w->state, DONE, memory_order_release);
        wake_later(wk, &w->state, 1);
    }
    if (i < n) {
        mempool__free_locked(pool, indices + i, n - i);
        mempool__drain_check(pool, wk);
    }
}

/* Gives back blocks a get had taken but cannot keep (all or nothing). */
void mempool__give_back_locked(mempool *pool, void **blocks, size_t n, struct wakeups *wk)
{
    const char *what;
    for (size_t i = 0; i < n; i++) {
        uint32_t index = block_lookup(pool, blocks[i], &what);
        mempool__give_locked(pool, &index, 1, wk);
    }
}

void mempool__put_slow(mempool *pool, const uint32_t *indices, size_t n)
{
    struct wakeups wk = { .n = 0 };
    os_lock(&pool->lock);
    mempool__give_locked(pool, indices, n, &wk);
    mempool__wait_bit_update(pool);
    mempool__unlock_and_wake(pool, &wk);
}

static void return_slot_locked(mempool *pool, struct wakeups *wk)
{
    struct waiter *w = pool->first;
    if (!w) {
        atomic_fetch_add_explicit(&pool->unmade, 1, memory_order_relaxed);
        mempool__drain_check(pool, wk);
        return;
    }
    mempool__queue_remove(pool, w);
    atomic_store_explicit(&w->state, SLOT, memory_order_release);
    wake_later(wk, &w->state, 1);
}

void mempool__return_slot(mempool *pool)
{
    struct wakeups wk = { .n = 0 };
    os_lock(&pool->lock);
    return_slot_locked(pool, &wk);
    mempool__wait_bit_update(pool);
    mempool__unlock_and_wake(pool, &wk);
}

/* Moves every block of the cache (both magazines) to waiters or the shared
 * stack; the pool lock is held and the cache is not busy (or is the
 * caller's own). The counts drop to zero before any block moves, and all of
 * them move in one hand-over: a completion check for a drain never sees a
 * block both in the cache and in the stack. The check runs even when the
 * cache was empty: an owner that was busy during an earlier check comes
 * here when it ends. */
size_t mempool__cache_empty_locked(mempool *pool, struct cache *c, struct wakeups *wk)
{
    uint32_t moved[CACHE_SIZE_MAX];
    uint32_t n = atomic_load_explicit(&c->count, memory_order_acquire);
    uint32_t prev = atomic_load_explicit(&c->prev_count, memory_order_acquire);
    DEBUG_ASSERT(n <= c->size && prev <= c->size && 2 * c->size <= CACHE_SIZE_MAX);
    for (uint32_t i = 0; i < n; i++)
        moved[i] = atomic_load_explicit(&c->loaded[i], memory_order_relaxed);
    for (uint32_t i = 0; i < prev; i++)
        moved[n + i] = atomic_load_explicit(&c->previous[i], memory_order_relaxed);
    atomic_store_explicit(&c->count, 0, memory_order_relaxed);
    atomic_store_explicit(&c->prev_count, 0, memory_order_relaxed);
    mempool__give_locked(pool, moved, n + prev, wk);
    if (!(n + prev))
        mempool__drain_check(pool, wk);
    return n + prev;
}

/* Moves the blocks of every full magazine in the depot to waiters or the
 * shared stack (a get about to sleep or fail): how many moved. */
size_t mempool__depot_empty_locked(mempool *pool, struct wakeups *wk)
{
    struct depot *d = &pool->depot;
    size_t moved = 0;
    _Atomic uint32_t *m;
    while ((m = depot_take_full(d))) {
        uint32_t blocks[CACHE_SIZE_MAX / 2];
        for (uint32_t i = 0; i < d->size; i++)
            blocks[i] = atomic_load_explicit(&m[i], memory_order_relaxed);
        mempool__depot_give_empty(d, m);
        mempool__give_locked(pool, blocks, d->size, wk);
        moved += d->size;
    }
    return moved;
}

void mempool__cache_honour(mempool *pool, struct cache *c)
{
    struct wakeups wk = { .n = 0 };
    os_lock(&pool->lock);
    mempool__cache_empty_locked(pool, c, &wk);
    mempool__wait_bit_update(pool);
    mempool__unlock_and_wake(pool, &wk);
}

static size_t caches_count_locked(const mempool *pool)
{
    size_t n = 0;
    for (const struct cache *c = pool->caches; c; c = c->next)
        n += atomic_load_explicit(&c->count, memory_order_relaxed) +
             atomic_load_explicit(&c->prev_count, memory_order_relaxed);
    return n;
}

/* Sets or clears ARMED on every cache with magazines (pool lock held), the
 * permanent marks kept. Stores are ordered (seq_cst) so that the ordered
 * variant's Dekker argument holds. */
static void caches_set_steal(mempool *pool, bool on)
{
    uint32_t unusual = pool->cache_marks | (on ? CACHE_ARMED : 0);
    for (struct cache *c = pool->caches; c; c = c->next)
        if (c->size)
            atomic_store_explicit(&c->unusual, unusual, memory_order_seq_cst);
}

/* Adds a permanent mark to every cache (pool lock held). */
static void caches_mark(mempool *pool, uint32_t mark)
{
    pool->cache_marks |= mark;
    for (struct cache *c = pool->caches; c; c = c->next)
        atomic_fetch_or_explicit(&c->unusual, mark, memory_order_seq_cst);
}

static void caches_arm(mempool *pool, bool on)
{
    if (pool->caches_armed == on)
        return;
    pool->caches_armed = on;
    caches_set_steal(pool, on);
    if (on)
        caches_barrier(pool);
}

/* The heavy barrier after steal was set, when it has anything to order: not
 * in a pool without caches, nor when the only cache is the caller's own
 * (it holds the lock and is not inside an operation). A barrier that fails
 * switches the pool to the ordered protocol for good (cache.h). */
static void caches_barrier(mempool *pool)
{
    if (cache_ordered(pool))
        return;
    const struct cache *self = cache_lookup(pool);
    const struct cache *c = pool->caches;
    while (c && (c == self || !c->size))
        c = c->next;
    if (c && !mempool__os_heavy_barrier()) {
        atomic_store_explicit(&pool->cache_ordered, true, memory_order_seq_cst);
        caches_mark(pool, CACHE_ORDERED);
    }
}

void mempool__caches_close_locked(mempool *pool)
{
    caches_mark(pool, CACHE_CLOSED);
    caches_barrier(pool);
}

/* True when the owner is provably outside any operation (past the barrier,
 * or past its ordered exchange), or is the calling thread: the magazine and
 * count are stable while the caller holds the lock. */
static bool cache_idle_now(const mempool *pool, const struct cache *c)
{
    if (c == cache_lookup(pool))
        return true;
    uint32_t idle = cache_ordered(pool) ? CACHE_IDLE : CACHE_IDLE_FENCED;
    return atomic_load_explicit(&c->busy, memory_order_seq_cst) == idle;
}

static bool caches_idle_locked(const mempool *pool)
{
    for (const struct cache *c = pool->caches; c; c = c->next)
        if (c->size && !cache_idle_now(pool, c))
            return false;
    return true;
}

size_t mempool__caches_reclaim(mempool *pool, struct wakeups *wk, bool keep_armed)
{
    /* A polling try_get must not pay a barrier when there is nothing to
     * take: look at the counts first (an armed reclaim is for a get that is
     * about to sleep, and must look even when they read zero). */
    if (!pool->cache_size || !pool->caches ||
        (!keep_armed && !pool->caches_armed && caches_count_locked(pool) == 0))
        return 0;
    if (!pool->caches_armed) {
        caches_set_steal(pool, true);
        caches_barrier(pool);
    }
    size_t moved = 0;
    for (struct cache *c = pool->caches; c; c = c->next)
        if (c->size && cache_idle_now(pool, c))
            moved += mempool__cache_empty_locked(pool, c, wk);
    if (keep_armed)
        pool->caches_armed = true;
    else if (!pool->caches_armed)
        caches_set_steal(pool, false);
    return moved;
}