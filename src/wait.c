/* SPDX-License-Identifier: MIT */
/* The waiting layer: sleeping gets, lazy makes, close and drain (the hand-off
 * puts and the rest of what runs under the lock are in locked.c).
 *
 * PROTOCOL
 *   Sleeping gets queue in FIFO order under pool->lock. A queued get holds a
 *   struct waiter on its own stack with a futex word, `state`. While the
 *   queue is not empty (or a drain waits), the stack's WAIT bit is set, and
 *   puts take the lock and hand their blocks straight to the oldest waiter,
 *   which is then woken with state DONE. With no waiter and no drainer the
 *   bit is clear and puts never leave the lock-free path.
 *
 * WHY NO WAKE-UP IS LOST
 *   A get decides to sleep only under the lock, after it sets the WAIT bit
 *   with an atomic OR on the stack head and sees, in the value that OR
 *   returned, that the stack was still empty. Every fast push is a CAS on the
 *   same head word that fails when WAIT is set, so each put either landed
 *   before the OR (and the get pops its block instead of sleeping) or sees
 *   WAIT and takes the lock, where it finds the waiter queued. A woken waiter
 *   never needs to find its block itself: the put already wrote it into the
 *   waiter's array before setting the state, so a spurious or late wake-up
 *   changes nothing. A waiter whose deadline passes takes the lock and looks
 *   at its state once more: if a put got there first, it keeps the block.
 *
 * INVARIANTS (under the lock)
 *   - waiters queued => the stack is empty (all puts hand off to them);
 *   - WAIT bit set <=> waiters queued or a drain waits;
 *   - `collected` = blocks sitting in queued waiters' arrays (bulk gets),
 *     counted as available;
 *   - waiters queued => the depot holds no full magazine (depot.h);
 *   - lazy mode: waiters queued => no unmade slot (a slot that comes back
 *     after a failed make goes to the first waiter, state SLOT).
 */
#include <errno.h>

#include "cache.h"
#include "index.h"
#include "locked.h"
#include "shm.h"


static int64_t deadline_after(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return OS_FOREVER;
    int64_t now = mempool__os_now();
    return timeout_ns >= OS_FOREVER - now ? OS_FOREVER : now + timeout_ns;
}

/* Makes a block for each slot the get claimed. ENOMEM when a make fails or
 * returns a pointer that is already a block; the unused slots go back. */
static int make_claimed(mempool *pool, struct waiter *w, size_t *claimed)
{
    while (*claimed) {
        void *block = mempool__call_make(pool);
        uint32_t index = block ? mempool__register(pool, block) : STACK_NIL;
        if (index == STACK_NIL) {
            if (block)
                mempool__report(pool, "duplicate", block);
            for (; *claimed; (*claimed)--)
                mempool__return_slot(pool);
            return ENOMEM;
        }
        w->out[w->have++] = block;
        (*claimed)--;
    }
    return 0;
}

enum take { TAKE_DONE, TAKE_MAKE, TAKE_EMPTY, TAKE_SLEEP };

/* Under the lock: fills the waiter from the stack, claims lazy slots, or
 * arms the WAIT bit so that the caller may sleep. */
static enum take take_locked(mempool *pool, struct waiter *w, size_t *claimed,
                             bool front, bool no_wait, struct wakeups *wk)
{
    for (;;) {
        while (w->have < w->need) {
            uint32_t index = mempool__take_free_locked(pool);
            if (index == STACK_NIL)
                break;
            stack_mark_out(&pool->stack, index);
            w->out[w->have++] = block_at(pool, index);
        }
        if (w->have == w->need)
            return TAKE_DONE;
        /* Full magazines in the depot are free blocks nobody holds. */
        if (mempool__depot_empty_locked(pool, wk))
            continue;
        /* Blocks parked in caches (the caller's own included) are free too:
         * take them before making new ones, failing or sleeping (they go to
         * the stack, or to waiters ahead of us). */
        if (mempool__caches_reclaim(pool, wk, false))
            continue;
        /* Waiters ahead have first call on anything free; a get coming back
         * with a slot (front) is still at the head. */
        if (!pool->first || front) {
            while (w->have + *claimed < w->need && mempool__claim_slot(pool))
                (*claimed)++;
            if (*claimed)
                return TAKE_MAKE;
        }
        if (no_wait)
            return TAKE_EMPTY;
        uint64_t old = atomic_fetch_or_explicit(&pool->stack.head, STACK_WAIT,
                                                memory_order_seq_cst);
        if (stack_top(old) != STACK_NIL)
            continue;
        /* WAIT is set: fast pushes now fail. Arm the caches too, so that no
         * cache put can complete unseen, and look at them once more. */
        if (mempool__caches_reclaim(pool, wk, true))
            continue;
        return TAKE_SLEEP;
    }
}

/* Sleeps until the waiter is served or its deadline passes; the final state. */
static uint32_t sleep_queued(mempool *pool, struct waiter *w, int64_t deadline)
{
    uint32_t state;
    while ((state = atomic_load_explicit(&w->state, memory_order_acquire)) == WAITING) {
        if (mempool__os_wait(&w->state, WAITING, deadline) != ETIMEDOUT)
            continue;
        struct wakeups wk = { .n = 0 };
        os_lock(&pool->lock);
        state = atomic_load_explicit(&w->state, memory_order_acquire);
        if (state == WAITING) {
            mempool__queue_remove(pool, w);
            mempool__give_back_locked(pool, w->out, w->have, &wk);
            w->have = 0;
            mempool__wait_bit_update(pool);
        }
        mempool__unlock_and_wake(pool, &wk);
        return state == WAITING ? TIMED_OUT : state;
    }
    return state;
}

int mempool__get_slow(mempool *pool, void **out, size_t n, int64_t timeout_ns)
{
    struct waiter w = { .out = out, .need = n };
    /* Read the clock only for a get that actually sleeps: most never do. */
    int64_t deadline = 0;
    bool have_deadline = false;
    size_t claimed = 0;
    bool front = false;
    for (;;) {
        if (claimed) {
            int err = make_claimed(pool, &w, &claimed);
            if (err || w.have == n) {
                if (err && w.have) {
                    struct wakeups wk = { .n = 0 };
                    os_lock(&pool->lock);
                    mempool__give_back_locked(pool, out, w.have, &wk);
                    mempool__wait_bit_update(pool);
                    mempool__unlock_and_wake(pool, &wk);
                }
                return err;
            }
        }
        struct wakeups wk = { .n = 0 };
        os_lock(&pool->lock);
        enum take take = TAKE_EMPTY;
        int err = ECANCELED;
        if (!atomic_load_explicit(&pool->closed, memory_order_relaxed)) {
            take = take_locked(pool, &w, &claimed, front, timeout_ns == 0, &wk);
            err = take == TAKE_EMPTY ? EAGAIN : 0;
        }
        if (take == TAKE_SLEEP) {
            atomic_fetch_add_explicit(&pool->waits, 1, memory_order_relaxed);
            atomic_store_explicit(&w.state, WAITING, memory_order_relaxed);
            mempool__queue_add(pool, &w, front);
        } else if (err) {
            mempool__give_back_locked(pool, out, w.have, &wk);
        }
        mempool__wait_bit_update(pool);
        mempool__unlock_and_wake(pool, &wk);
        if (take == TAKE_DONE || err)
            return err;
        if (take == TAKE_MAKE)
            continue;
        if (!have_deadline) {
            deadline = deadline_after(timeout_ns);
            have_deadline = true;
        }
        switch (sleep_queued(pool, &w, deadline)) {
        case DONE:
            return 0;
        case CANCELED:
            return ECANCELED;
        case SLOT:
            claimed = 1;
            front = true;
            continue;
        default: /* TIMED_OUT */
            atomic_fetch_add_explicit(&pool->timeouts, 1, memory_order_relaxed);
            return ETIMEDOUT;
        }
    }
}

void mempool_close(mempool *pool)
{
    if (!pool)
        return;
    if (pool->shm) {
        mempool__shm_close(pool);
        return;
    }
    struct wakeups wk = { .n = 0 };
    os_lock(&pool->lock);
    atomic_store_explicit(&pool->closed, true, memory_order_release);
    mempool__caches_close_locked(pool);
    struct waiter *w = pool->first;
    pool->first = pool->last = NULL;
    atomic_store_explicit(&pool->collected, 0, memory_order_relaxed);
    while (w) {
        struct waiter *next = w->next;
        const char *what;
        for (size_t i = 0; i < w->have; i++) {
            uint32_t index = block_lookup(pool, w->out[i], &what);
            mempool__free_locked(pool, &index, 1);
        }
        w->have = 0;
        atomic_store_explicit(&w->state, CANCELED, memory_order_release);
        /* Woken at once: there may be more waiters than wake_later holds. */
        mempool__os_wake(&w->state, 1);
        w = next;
    }
    mempool__drain_check(pool, &wk);
    mempool__wait_bit_update(pool);
    mempool__unlock_and_wake(pool, &wk);
}

int mempool_drain(mempool *pool, int64_t timeout_ns)
{
    if (!pool)
        return EINVAL;
    if (pool->shm)
        return mempool__shm_drain(pool, timeout_ns);
    int err = 0;
    os_lock(&pool->lock);
    pool->drainers++;
    mempool__wait_bit_update(pool);
    uint32_t seq = atomic_load_explicit(&pool->drain_seq, memory_order_acquire);
    /* From here on every put, cached or not, takes the lock and checks for
     * completion (the caches are armed, past the heavy barrier); the check
     * below covers the puts that landed before. There is no cheaper check
     * before arming: without it, blocks moving between a cache and the
     * stack can be counted twice. */
    bool complete = mempool__drain_complete_locked(pool);
    if (!complete && timeout_ns == 0) {
        err = ETIMEDOUT;
    } else if (!complete) {
        int64_t deadline = deadline_after(timeout_ns);
        os_unlock(&pool->lock);
        while (atomic_load_explicit(&pool->drain_seq, memory_order_acquire) == seq) {
            if (mempool__os_wait(&pool->drain_seq, seq, deadline) == ETIMEDOUT) {
                err = atomic_load_explicit(&pool->drain_seq, memory_order_acquire) == seq
                    ? ETIMEDOUT : 0;
                break;
            }
        }
        os_lock(&pool->lock);
    }
    pool->drainers--;
    mempool__wait_bit_update(pool);
    os_unlock(&pool->lock);
    return err;
}
