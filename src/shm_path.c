/* SPDX-License-Identifier: MIT */
/* A shared pool's data path: the lock word, gets (sleeping in one FIFO with
 * every process's waiters), puts that hand blocks to the oldest waiter, and
 * the hand-over of blocks between processes (shm.h has the protocol).
 *
 * Every index read from the segment is checked against the private copy of
 * the geometry before use; one that fails the check, or a word in a state
 * that the protocol never stores, makes the caller repair the state from
 * the block words (shm_recover.c) rather than trust it. */
#include <errno.h>

#include "index.h"
#include "shm.h"


/* How long a sleeper waits before it asks whether a process it waits on
 * still lives: the lock's holder (one system call per look, and the lock
 * is never held long), or a waiter ahead or a waker (a look at every
 * attached slot, and a recovery when one is dead). */
#define LOCK_SLICE_NS 10000000 /* 10 ms */
#define SLICE_NS 100000000      /* 0.1 s */

#ifdef MEMPOOL_FAULT_INJECTION
_Atomic long mempool__shm_crash_countdown;

void mempool__shm_step(void)
{
    long left = atomic_load(&mempool__shm_crash_countdown);
    while (left > 0)
        if (atomic_compare_exchange_weak(&mempool__shm_crash_countdown, &left, left - 1)) {
            if (left == 1)
                mempool__os_die();
            return;
        }
}
#endif

/* True when the lock word names a holder that has died, or names us: the
 * threads of one process take the shared lock one at a time, under the
 * handle's own lock, so a word naming us while we wait was not written by
 * a holder (a peer scribbled it) and waiting on it would never end. */
static bool holder_dead(const struct shm *s, uint32_t word)
{
    uint32_t id = (word & ~LOCK_WAITERS) - 1;
    return id == s->id || !mempool__shm_alive(s, id);
}

void mempool__shm_lock(mempool *pool)
{
    mempool__shm_lock_report(pool, NULL);
}

void mempool__shm_lock_report(mempool *pool, mempool_recovery *report)
{
    if (report)
        *report = (mempool_recovery){ 0 };
    struct shm *s = pool->shm;
    os_lock(&pool->lock);
    _Atomic uint32_t *lock = &s->state->lock;
    uint32_t mine = s->id + 1;
    uint32_t cur = 0;
    if (likely(atomic_compare_exchange_strong_explicit(lock, &cur, mine, memory_order_acquire,
                                                       memory_order_relaxed))) {
        SHM_STEP();
        return;
    }
    /* Contended: from now on take it with WAITERS set, since others may be
     * asleep behind us. */
    int64_t check = mempool__os_now() + LOCK_SLICE_NS;
    for (;;) {
        if (cur == 0) {
            if (atomic_compare_exchange_weak_explicit(lock, &cur, mine | LOCK_WAITERS,
                                                      memory_order_acquire,
                                                      memory_order_relaxed))
                return;
            continue;
        }
        if (!(cur & LOCK_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(lock, &cur, cur | LOCK_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        uint32_t seen = cur | LOCK_WAITERS;
        if (mempool__os_shared_wait(lock, seen, check) == ETIMEDOUT) {
            check = mempool__os_now() + LOCK_SLICE_NS;
            cur = atomic_load_explicit(lock, memory_order_relaxed);
            if (cur == seen && holder_dead(s, seen) &&
                atomic_compare_exchange_strong_explicit(lock, &cur, mine | LOCK_WAITERS,
                                                        memory_order_acquire,
                                                        memory_order_relaxed)) {
                /* Died holding it: whatever it was doing is undone or
                 * finished by rebuilding from the block words. */
                struct shm_wakes wk = { .n = 0 };
                mempool__shm_repair(s, 0, report, &wk);
                mempool__shm_wake(s, &wk);
                return;
            }
            continue;
        }
        cur = atomic_load_explicit(lock, memory_order_relaxed);
    }
}

void mempool__shm_unlock(mempool *pool)
{
    _Atomic uint32_t *lock = &pool->shm->state->lock;
    SHM_STEP();
    if (atomic_exchange_explicit(lock, 0, memory_order_release) & LOCK_WAITERS)
        mempool__os_shared_wake(lock, 1);
    os_unlock(&pool->lock);
}

void mempool__shm_wake(struct shm *s, struct shm_wakes *wk)
{
    for (int i = 0; i < wk->n; i++)
        mempool__os_shared_wake(&s->waiters[wk->slot[i]].state, 1);
    wk->n = 0;
}

static void wake_later(struct shm *s, uint32_t slot, struct shm_wakes *wk)
{
    if (wk->n == (int)(sizeof wk->slot / sizeof wk->slot[0]))
        mempool__shm_wake(s, wk); /* early: the word is always mapped */
    wk->slot[wk->n++] = slot;
}

/* The oldest queued waiter, or SHM_NONE. */
static uint32_t queue_first(struct shm *s)
{
    uint32_t w = atomic_load_explicit(&s->state->first, memory_order_relaxed);
    return w < s->h.waiters ? w : SHM_NONE;
}

static void queue_pop(struct shm *s, uint32_t w)
{
    uint32_t after = atomic_load_explicit(&s->waiters[w].after, memory_order_relaxed);
    atomic_store_explicit(&s->state->first, after, memory_order_relaxed);
    if (after >= s->h.waiters)
        atomic_store_explicit(&s->state->last, SHM_NONE, memory_order_relaxed);
    LOCKED_ADD(s->state->queued, -1);
}

void mempool__shm_release(struct shm *s, const uint32_t *indices, size_t n,
                          struct shm_wakes *wk)
{
    struct shm_state *st = s->state;
    for (size_t i = 0; i < n; i++) {
        uint32_t index = indices[i];
        uint32_t w = queue_first(s);
        struct shm_waiter *sw = w == SHM_NONE ? NULL : &s->waiters[w];
        if (!sw || atomic_load_explicit(&sw->state, memory_order_relaxed) != WAIT_WAITING) {
            free_push(s, index);
            continue;
        }
        /* To the oldest waiter: the block's word says so first, then the
         * waiter's list holds it, then (once it has all it asked for) the
         * waiter leaves the queue and its futex word says DONE. */
        uint64_t old = atomic_load_explicit(&s->owners[index], memory_order_relaxed);
        atomic_store_explicit(&s->owners[index], OWN_MAKE(OWN_GRANTED, w, OWN_SEQ(old)),
                              memory_order_relaxed);
        SHM_STEP();
        atomic_store_explicit(&s->next[index], atomic_load_explicit(&sw->chain,
                                                                    memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&sw->chain, index, memory_order_relaxed);
        uint32_t have = atomic_load_explicit(&sw->have, memory_order_relaxed) + 1;
        atomic_store_explicit(&sw->have, have, memory_order_relaxed);
        if (have < atomic_load_explicit(&sw->need, memory_order_relaxed)) {
            LOCKED_ADD(st->collected, 1);
            continue;
        }
        LOCKED_ADD(st->collected, -(uint64_t)(have - 1));
        queue_pop(s, w);
        atomic_store_explicit(&sw->state, WAIT_DONE, memory_order_release);
        wake_later(s, w, wk);
    }
}

void mempool__shm_feed(struct shm *s, struct shm_wakes *wk)
{
    while (queue_first(s) != SHM_NONE) {
        uint32_t index = free_pop(s);
        if (index == SHM_NONE)
            return;
        mempool__shm_release(s, &index, 1, wk);
    }
}

void mempool__shm_note_out(struct shm *s)
{
    uint64_t free_now = atomic_load_explicit(&s->state->free_count, memory_order_relaxed) +
                        atomic_load_explicit(&s->state->collected, memory_order_relaxed);
    uint64_t out = free_now < s->h.capacity ? s->h.capacity - free_now : 0;
    if (out > atomic_load_explicit(&s->state->out_high, memory_order_relaxed))
        atomic_store_explicit(&s->state->out_high, out, memory_order_relaxed);
}

/* Takes n free blocks for us under the lock: true, or false with nothing
 * taken (too few, or a corrupt list: *corrupt). */
static bool take_free(mempool *pool, void **blocks, size_t n, bool *corrupt)
{
    struct shm *s = pool->shm;
    *corrupt = false;
    if (atomic_load_explicit(&s->state->free_count, memory_order_relaxed) < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint32_t index = free_pop(s);
        if (index == SHM_NONE) {
            /* What was taken goes back as it was (the repair that follows
             * rebuilds the list from the words, so the words must say
             * free). */
            *corrupt = true;
            for (size_t j = 0; j < i; j++) {
                const char *what;
                uint32_t back = block_lookup(pool, blocks[j], &what);
                uint64_t w = atomic_load_explicit(&s->owners[back], memory_order_relaxed);
                atomic_store_explicit(&s->owners[back], OWN_MAKE(OWN_FREE, 0, OWN_SEQ(w)),
                                      memory_order_relaxed);
                free_push(s, back);
            }
            return false;
        }
        uint64_t old = atomic_load_explicit(&s->owners[index], memory_order_relaxed);
        atomic_store_explicit(&s->owners[index], OWN_MAKE(OWN_OUT, s->id, OWN_SEQ(old)),
                              memory_order_relaxed);
        SHM_STEP();
        blocks[i] = block_at(pool, index);
    }
    LOCKED_ADD(s->state->gets, n);
    mempool__shm_note_out(s);
    return true;
}

/* A free waiter slot, marked WAITING for us; SHM_NONE when all are taken. */
static uint32_t waiter_claim(struct shm *s, size_t n)
{
    for (uint32_t w = 0; w < s->h.waiters; w++) {
        struct shm_waiter *sw = &s->waiters[w];
        if (atomic_load_explicit(&sw->state, memory_order_relaxed) != WAIT_EMPTY)
            continue;
        atomic_store_explicit(&sw->owner, s->id, memory_order_relaxed);
        atomic_store_explicit(&sw->need, (uint32_t)n, memory_order_relaxed);
        atomic_store_explicit(&sw->have, 0, memory_order_relaxed);
        atomic_store_explicit(&sw->chain, SHM_NONE, memory_order_relaxed);
        atomic_store_explicit(&sw->after, SHM_NONE, memory_order_relaxed);
        atomic_store_explicit(&sw->ticket,
                              atomic_fetch_add_explicit(&s->state->ticket, 1,
                                                        memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&sw->state, WAIT_WAITING, memory_order_release);
        SHM_STEP();
        return w;
    }
    return SHM_NONE;
}

static void queue_append(struct shm *s, uint32_t w)
{
    uint32_t last = atomic_load_explicit(&s->state->last, memory_order_relaxed);
    if (last < s->h.waiters)
        atomic_store_explicit(&s->waiters[last].after, w, memory_order_relaxed);
    else
        atomic_store_explicit(&s->state->first, w, memory_order_relaxed);
    atomic_store_explicit(&s->state->last, w, memory_order_relaxed);
    LOCKED_ADD(s->state->queued, 1);
    SHM_STEP();
}

/* Removes a waiter from anywhere in the queue (a timeout); the walk is
 * bounded, since a corrupt queue may hold a cycle. */
static void queue_remove(struct shm *s, uint32_t w)
{
    uint32_t prev = SHM_NONE;
    uint32_t at = atomic_load_explicit(&s->state->first, memory_order_relaxed);
    for (uint32_t steps = 0; at < s->h.waiters && steps < s->h.waiters; steps++) {
        uint32_t after = atomic_load_explicit(&s->waiters[at].after, memory_order_relaxed);
        if (at == w) {
            if (prev == SHM_NONE)
                atomic_store_explicit(&s->state->first, after, memory_order_relaxed);
            else
                atomic_store_explicit(&s->waiters[prev].after, after, memory_order_relaxed);
            if (atomic_load_explicit(&s->state->last, memory_order_relaxed) == w)
                atomic_store_explicit(&s->state->last, prev, memory_order_relaxed);
            LOCKED_ADD(s->state->queued, -1);
            return;
        }
        prev = at;
        at = after;
    }
}

/* Takes the blocks granted to waiter w: the first n ours now (into blocks,
 * DONE), or all back to the pool (blocks NULL: a timeout); the slot is
 * empty afterwards. Under the lock. The limit is the caller's n, never the
 * count in the segment, which a peer may have raised: the array holds n. */
static size_t waiter_collect(mempool *pool, uint32_t w, void **blocks, size_t n,
                             struct shm_wakes *wk)
{
    struct shm *s = pool->shm;
    struct shm_waiter *sw = &s->waiters[w];
    uint32_t index = atomic_load_explicit(&sw->chain, memory_order_relaxed);
    size_t got = 0;
    while (index < s->h.capacity && got < n) {
        uint64_t word = atomic_load_explicit(&s->owners[index], memory_order_relaxed);
        if (OWN_KIND(word) != OWN_GRANTED || OWN_WHO(word) != w)
            break;
        uint32_t next = atomic_load_explicit(&s->next[index], memory_order_relaxed);
        if (blocks) {
            atomic_store_explicit(&s->owners[index], OWN_MAKE(OWN_OUT, s->id, OWN_SEQ(word)),
                                  memory_order_relaxed);
            blocks[got] = block_at(pool, index);
        } else {
            atomic_store_explicit(&s->owners[index], OWN_MAKE(OWN_FREE, 0, OWN_SEQ(word)),
                                  memory_order_relaxed);
            LOCKED_ADD(s->state->collected, -1);
            mempool__shm_release(s, &index, 1, wk);
        }
        SHM_STEP();
        got++;
        index = next;
    }
    atomic_store_explicit(&sw->chain, SHM_NONE, memory_order_relaxed);
    atomic_store_explicit(&sw->state, WAIT_EMPTY, memory_order_release);
    return got;
}

static int64_t deadline_after(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return OS_FOREVER;
    int64_t now = mempool__os_now();
    return timeout_ns >= OS_FOREVER - now ? OS_FOREVER : now + timeout_ns;
}

static void give_back_locked(mempool *pool, void *const *blocks, size_t n,
                             struct shm_wakes *wk);

/* Sleeps in waiter slot w until served, canceled or past the deadline; a
 * slice at a time, asking between slices whether a waiter or waker died. */
static int sleep_queued(mempool *pool, uint32_t w, void **blocks, size_t n, int64_t deadline)
{
    struct shm *s = pool->shm;
    struct shm_waiter *sw = &s->waiters[w];
    /* Asking every attached process whether it lives costs a system call
     * per process: a wait asks after a slice, not before it sleeps, so the
     * short waits of a pool that ran dry for a moment never pay it. */
    for (;;) {
        uint32_t state = atomic_load_explicit(&sw->state, memory_order_acquire);
        if (state == WAIT_WAITING) {
            int64_t now = mempool__os_now();
            if (now < deadline) {
                int64_t until = deadline - now > SLICE_NS ? now + SLICE_NS : deadline;
                if (mempool__os_shared_wait(&sw->state, WAIT_WAITING, until) == ETIMEDOUT &&
                    until < deadline && mempool__shm_any_dead(s))
                    mempool_recover(pool, 0, NULL);
                continue;
            }
        }
        struct shm_wakes wk = { .n = 0 };
        mempool__shm_lock(pool);
        state = atomic_load_explicit(&sw->state, memory_order_acquire);
        int err = 0;
        if (state == WAIT_DONE) {
            size_t got = waiter_collect(pool, w, blocks, n, &wk);
            if (got != n) {
                /* A corrupt list: what was taken goes back, and the get
                 * fails rather than hand out blocks it cannot account for. */
                give_back_locked(pool, blocks, got, &wk);
                err = EPROTO;
            } else {
                LOCKED_ADD(s->state->gets, n);
                mempool__shm_note_out(s);
            }
        } else if (state == WAIT_WAITING) {
            queue_remove(s, w);
            waiter_collect(pool, w, NULL, n, &wk);
            LOCKED_ADD(s->state->timeouts, 1);
            err = ETIMEDOUT;
        } else {
            /* CANCELED by a close, or emptied by a repair that found the slot
             * inconsistent: nothing of ours is in it. */
            atomic_store_explicit(&sw->state, WAIT_EMPTY, memory_order_release);
            err = state == WAIT_CANCELED ? ECANCELED : EPROTO;
        }
        mempool__shm_settle(s);
        mempool__shm_unlock(pool);
        mempool__shm_wake(s, &wk);
        return err;
    }
}

int mempool__shm_get(mempool *pool, void **blocks, size_t n, int64_t timeout_ns)
{
    int err;
    struct shm *s = mempool__shm_of(pool, &err);
    if (!s)
        return err;
    /* blocks, and 0 < n <= capacity: the callers' checks (getput.c). */
    if (n == 1 && s->h.caches && mempool__shm_cache_get(pool, blocks))
        return 0;
    int64_t deadline = 0;
    bool have_deadline = false;
    for (;;) {
        struct shm_wakes wk = { .n = 0 };
        mempool__shm_lock(pool);
        if (atomic_load_explicit(&s->state->closed, memory_order_relaxed)) {
            mempool__shm_unlock(pool);
            return ECANCELED;
        }
        bool corrupt = false;
        /* FIFO: nobody passes a queued waiter. */
        bool first = queue_first(s) == SHM_NONE;
        if (first && take_free(pool, blocks, n, &corrupt)) {
            mempool__shm_unlock(pool);
            return 0;
        }
        /* Too few free: before waiting or failing, take what the caches of
         * every process hold (their owners idle; busy ones hand theirs over
         * when their call ends, to the queue we are about to join). */
        if (first && !corrupt && s->h.caches) {
            mempool__shm_reclaim(s, &wk);
            if (take_free(pool, blocks, n, &corrupt)) {
                mempool__shm_settle(s);
                mempool__shm_unlock(pool);
                mempool__shm_wake(s, &wk);
                return 0;
            }
        }
        if (corrupt) {
            mempool__shm_repair(s, 0, NULL, &wk);
            mempool__shm_unlock(pool);
            mempool__shm_wake(s, &wk);
            continue;
        }
        if (timeout_ns == 0) {
            mempool__shm_settle(s);
            mempool__shm_unlock(pool);
            mempool__shm_wake(s, &wk);
            return EAGAIN;
        }
        uint32_t w = waiter_claim(s, n);
        if (w != SHM_NONE) {
            queue_append(s, w);
            LOCKED_ADD(s->state->waits, 1);
            /* Fewer free than it asked for: those few are granted to the
             * queue now, as puts grant theirs, or they would sit free while
             * the waiter (and everyone behind it) waits. */
            mempool__shm_feed(s, &wk);
        }
        mempool__shm_unlock(pool);
        mempool__shm_wake(s, &wk);
        if (!have_deadline) {
            deadline = deadline_after(timeout_ns);
            have_deadline = true;
        }
        if (w != SHM_NONE)
            return sleep_queued(pool, w, blocks, n, deadline);
        /* What the dead hold may be what we wait for. */
        if (mempool__shm_any_dead(s))
            mempool_recover(pool, 0, NULL);
        /* Every waiter slot is taken: wait a little and try again. */
        if (mempool__os_now() >= deadline)
            return ETIMEDOUT;
        mempool__os_sleep_ms(1);
    }
}

/* Puts blocks, each the start of one (the caller checked), under the lock:
 * 0, or EINVAL with nothing put and *bad the first block that is not out
 * (free, granted, or twice in the array). A bulk put marks each checked
 * block's word, so that a repeat in the array finds its mark; the marks go
 * with the blocks, or are cleared when the call is refused (or by a repair,
 * when the putter dies in between). */
static int put_locked(mempool *pool, void *const *blocks, size_t n, size_t *bad,
                      struct shm_wakes *wk)
{
    struct shm *s = pool->shm;
    const char *what;
    for (size_t i = 0; i < n; i++) {
        _Atomic uint64_t *word = &s->owners[block_lookup(pool, blocks[i], &what)];
        uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
        uint32_t kind = OWN_KIND(w);
        if ((kind != OWN_OUT && kind != OWN_TRANSIT) || (w & OWN_MARK)) {
            for (size_t j = 0; j < i; j++)
                atomic_fetch_and_explicit(&s->owners[block_lookup(pool, blocks[j], &what)],
                                          ~OWN_MARK, memory_order_relaxed);
            *bad = i;
            return EINVAL;
        }
        /* Gives and takes change words without the lock: claim the word
         * with a CAS, so that a give or take landing between the check
         * and the claim refuses the put instead of being overwritten (a
         * put and a take of one block are still the caller's to order). */
        if (!atomic_compare_exchange_strong_explicit(word, &w, w | OWN_MARK,
                                                     memory_order_relaxed,
                                                     memory_order_relaxed)) {
            for (size_t j = 0; j < i; j++)
                atomic_fetch_and_explicit(&s->owners[block_lookup(pool, blocks[j], &what)],
                                          ~OWN_MARK, memory_order_relaxed);
            *bad = i;
            return EINVAL;
        }
        SHM_STEP();
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t index = block_lookup(pool, blocks[i], &what);
        uint64_t w = atomic_load_explicit(&s->owners[index], memory_order_relaxed);
        atomic_store_explicit(&s->owners[index], OWN_MAKE(OWN_FREE, 0, OWN_SEQ(w)),
                              memory_order_relaxed);
        mempool__shm_release(s, &index, 1, wk);
        SHM_STEP();
    }
    return 0;
}

/* A refused put: counted for the whole pool, reported in this process. */
static void shm_report(mempool *pool, const char *what, const void *block)
{
    atomic_fetch_add_explicit(&pool->shm->state->refused, 1, memory_order_relaxed);
    mempool__report(pool, what, block);
}

int mempool__shm_put(mempool *pool, void *const *blocks, size_t n)
{
    int err;
    struct shm *s = mempool__shm_of(pool, &err);
    if (!s)
        return err;
    /* n > 0: the callers' check (getput.c). */
    /* blocks is not NULL: the callers' check (getput.c). */
    const char *what = "null";
    if (n == 1 && s->h.caches) {
        uint32_t index = block_lookup(pool, blocks[0], &what);
        if (index != STACK_NIL && mempool__shm_cache_put(pool, index))
            return 0;
    }
    size_t bad = 0;
    for (; bad < n; bad++)
        if (block_lookup(pool, blocks[bad], &what) == STACK_NIL)
            break;
    if (bad == n) {
        struct shm_wakes wk = { .n = 0 };
        mempool__shm_lock(pool);
        err = put_locked(pool, blocks, n, &bad, &wk);
        if (!err) {
            LOCKED_ADD(s->state->puts, n);
            mempool__shm_settle(s);
        }
        mempool__shm_unlock(pool);
        mempool__shm_wake(s, &wk);
        if (!err)
            return 0;
        what = "repeated";
        for (size_t j = 0; j < bad; j++)
            if (blocks[j] == blocks[bad])
                what = "repeated-in-array";
    }
    shm_report(pool, what, blocks[bad]);
    return EINVAL;
}

const struct pool_ops mempool__shm_ops = {
    .put = NULL, /* single puts go to mempool__shm_put_one first (getput.c) */
    .put_bulk = mempool__shm_put,
    .got = NULL, /* gets never reach the private path, which calls it */
    .report = shm_report,
};

/* Gives back blocks a get took but cannot keep (under the lock). */
static void give_back_locked(mempool *pool, void *const *blocks, size_t n,
                             struct shm_wakes *wk)
{
    size_t bad;
    put_locked(pool, blocks, n, &bad, wk);
}

uint64_t mempool_shm_give(mempool *pool, void *block)
{
    int err;
    struct shm *s = mempool__shm_of(pool, &err);
    const char *what;
    uint32_t index = s ? block_lookup(pool, block, &what) : STACK_NIL;
    if (index == STACK_NIL) {
        errno = s ? EINVAL : err;
        return 0;
    }
    _Atomic uint64_t *word = &s->owners[index];
    uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
    uint32_t seq = OWN_SEQ(w) + 1 ? OWN_SEQ(w) + 1 : 1;
    /* One CAS from "out here" (unmarked: no put has claimed it) to "in
     * transit", so a death on either side of it leaves one state. */
    if (w != OWN_MAKE(OWN_OUT, s->id, OWN_SEQ(w)) ||
        !atomic_compare_exchange_strong_explicit(word, &w, OWN_MAKE(OWN_TRANSIT, 0, seq),
                                                 memory_order_release,
                                                 memory_order_relaxed)) {
        errno = EINVAL;
        return 0;
    }
    SHM_STEP();
    return (uint64_t)seq << 32 | (index + 1);
}

void *mempool_shm_take(mempool *pool, uint64_t handle)
{
    int err;
    struct shm *s = mempool__shm_of(pool, &err);
    if (!s) {
        errno = err;
        return NULL;
    }
    uint64_t index = (handle & UINT32_MAX) - 1;
    uint32_t seq = (uint32_t)(handle >> 32);
    if (index >= s->h.capacity || seq == 0) {
        errno = EINVAL;
        return NULL;
    }
    uint64_t w = OWN_MAKE(OWN_TRANSIT, 0, seq);
    if (!atomic_compare_exchange_strong_explicit(&s->owners[index], &w,
                                                 OWN_MAKE(OWN_OUT, s->id, seq),
                                                 memory_order_acquire, memory_order_relaxed)) {
        errno = ESTALE;
        return NULL;
    }
    SHM_STEP();
    return block_at(pool, (uint32_t)index);
}

void mempool__shm_close(mempool *pool)
{
    int err;
    struct shm *s = mempool__shm_of(pool, &err);
    if (!s)
        return;
    struct shm_wakes wk = { .n = 0 };
    mempool__shm_lock(pool);
    atomic_store_explicit(&s->state->closed, 1, memory_order_relaxed);
    mempool__shm_caches_close(s);
    SHM_STEP();
    uint32_t w;
    /* At most every slot once: a queue a peer made cyclic ends too, and the
     * repair below cancels whatever it still holds. */
    for (uint32_t left = s->h.waiters; left > 0 && (w = queue_first(s)) != SHM_NONE; left--) {
        queue_pop(s, w);
        struct shm_waiter *sw = &s->waiters[w];
        uint32_t index = atomic_load_explicit(&sw->chain, memory_order_relaxed);
        for (uint32_t n = 0; index < s->h.capacity && n < s->h.capacity; n++) {
            uint64_t word = atomic_load_explicit(&s->owners[index], memory_order_relaxed);
            if (OWN_KIND(word) != OWN_GRANTED || OWN_WHO(word) != w)
                break;
            uint32_t next = atomic_load_explicit(&s->next[index], memory_order_relaxed);
            atomic_store_explicit(&s->owners[index], OWN_MAKE(OWN_FREE, 0, OWN_SEQ(word)),
                                  memory_order_relaxed);
            LOCKED_ADD(s->state->collected, -1);
            free_push(s, index);
            SHM_STEP();
            index = next;
        }
        atomic_store_explicit(&sw->chain, SHM_NONE, memory_order_relaxed);
        atomic_store_explicit(&sw->state, WAIT_CANCELED, memory_order_release);
        wake_later(s, w, &wk);
    }
    if (queue_first(s) != SHM_NONE)
        mempool__shm_repair(s, 0, NULL, &wk);
    mempool__shm_unlock(pool);
    mempool__shm_wake(s, &wk);
}

size_t mempool__shm_available(const mempool *pool)
{
    const struct shm *s = pool->shm;
    uint64_t n = atomic_load_explicit(&s->state->free_count, memory_order_relaxed) +
                 atomic_load_explicit(&s->state->collected, memory_order_relaxed) +
                 mempool__shm_cached(s);
    return n < s->h.capacity ? (size_t)n : s->h.capacity;
}

/* Every block back, wherever it was: the processes have no way to tell us,
 * so this looks every millisecond (sleeping in between). */
int mempool__shm_drain(mempool *pool, int64_t timeout_ns)
{
    int err;
    struct shm *s = mempool__shm_of(pool, &err);
    if (!s)
        return err;
    int64_t deadline = deadline_after(timeout_ns);
    while (mempool__shm_available(pool) != s->h.capacity) {
        if (mempool__shm_any_dead(s))
            mempool_recover(pool, 0, NULL);
        if (mempool__os_now() >= deadline)
            return ETIMEDOUT;
        mempool__os_sleep_ms(1);
    }
    return 0;
}

void mempool__shm_stats(const mempool *pool, mempool_stats *out)
{
    const struct shm_state *st = pool->shm->state;
    *out = (mempool_stats){ 0 };
#define LOAD(f) atomic_load_explicit(&st->f, memory_order_relaxed)
    uint64_t hit_gets, hit_puts;
    mempool__shm_cache_counts(pool->shm, &hit_gets, &hit_puts);
    out->gets = LOAD(gets) + hit_gets - LOAD(base_gets);
    out->puts = LOAD(puts) + hit_puts - LOAD(base_puts);
    out->cache_misses = LOAD(gets) - LOAD(base_misses);
    out->cache_hits = out->gets > out->cache_misses ? out->gets - out->cache_misses : 0;
    out->waits = LOAD(waits) - LOAD(base_waits);
    out->timeouts = LOAD(timeouts) - LOAD(base_timeouts);
    out->refused_puts = LOAD(refused) - LOAD(base_refused);
    out->out = pool->capacity - mempool__shm_available(pool);
    uint64_t high = LOAD(out_high);
#undef LOAD
    out->out_high = high > out->out ? high : out->out;
}

int mempool__shm_stats_reset(mempool *pool)
{
    int err;
    if (!mempool__shm_of(pool, &err))
        return err;
    struct shm_state *st = pool->shm->state;
    mempool__shm_lock(pool);
#define RESET(f) atomic_store_explicit(&st->base_##f, \
                                       atomic_load_explicit(&st->f, memory_order_relaxed), \
                                       memory_order_relaxed)
    uint64_t hit_gets, hit_puts;
    mempool__shm_cache_counts(pool->shm, &hit_gets, &hit_puts);
    atomic_store_explicit(&st->base_misses, atomic_load_explicit(&st->gets, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&st->base_gets,
                          atomic_load_explicit(&st->gets, memory_order_relaxed) + hit_gets,
                          memory_order_relaxed);
    atomic_store_explicit(&st->base_puts,
                          atomic_load_explicit(&st->puts, memory_order_relaxed) + hit_puts,
                          memory_order_relaxed);
    RESET(waits);
    RESET(timeouts);
    RESET(refused);
#undef RESET
    atomic_store_explicit(&st->out_high, pool->capacity - mempool__shm_available(pool),
                          memory_order_relaxed);
    mempool__shm_unlock(pool);
    return 0;
}
