/* SPDX-License-Identifier: MIT */
/* Recovering a shared pool from the death of a participant (shm.h).
 *
 * The block words are the truth; everything else (the free list, each
 * waiter's granted blocks, the queue, the counts) is rebuilt from them under
 * the lock. A block is kept by its holder while the holder lives; a dead
 * process's blocks, the blocks granted to its waiters, and the marks of a
 * put it left half done all go back. Every step is idempotent: a repair
 * killed part way leaves words that the next one, by whoever takes the lock
 * over, reads the same way, and the dead slot is freed only at the end, so
 * the next look still finds it dead. Liveness comes from the kernel (os.h),
 * asked once per slot per repair. */
#include <errno.h>
#include <string.h>

#include "shm.h"

bool mempool__shm_alive(const struct shm *s, uint32_t id)
{
    uint32_t slot = PROC_SLOT(id);
    uint64_t word = atomic_load_explicit(&s->procs[slot].word, memory_order_acquire);
    if (PROC_STATE(word) != PROC_LIVE || PROC_ID(slot, PROC_GEN(word)) != id)
        return false;
    return id == s->id || mempool__os_shm_held(s->own, slot);
}

bool mempool__shm_any_dead(const struct shm *s)
{
    for (uint32_t slot = 0; slot < SHM_PROCS; slot++) {
        uint64_t word = atomic_load_explicit(&s->procs[slot].word, memory_order_relaxed);
        if (PROC_STATE(word) == PROC_LIVE &&
            !mempool__shm_alive(s, PROC_ID(slot, PROC_GEN(word))))
            return true;
    }
    return false;
}

/* One repair's view: which process ids live, and which waiter slots hold a
 * live process's wait. */
struct census {
    uint32_t live[SHM_PROCS]; /* the live id in each slot, or SHM_NONE */
    uint64_t dead[SHM_PROCS]; /* the word of a slot found dead, or 0 */
    bool waiting[SHM_WAITERS];
    bool cache_live[SHM_CACHES]; /* the cache slot's owner lives */
};

static bool census_alive(const struct census *c, uint32_t id)
{
    return c->live[PROC_SLOT(id)] == id;
}

static void take_census(struct shm *s, struct census *c, mempool_recovery *report)
{
    for (uint32_t slot = 0; slot < SHM_PROCS; slot++) {
        uint64_t word = atomic_load_explicit(&s->procs[slot].word, memory_order_acquire);
        uint32_t id = PROC_ID(slot, PROC_GEN(word));
        c->live[slot] = SHM_NONE;
        c->dead[slot] = 0;
        if (PROC_STATE(word) != PROC_LIVE)
            continue;
        if (mempool__shm_alive(s, id)) {
            c->live[slot] = id;
        } else {
            c->dead[slot] = word;
            report->processes++;
        }
    }
}

/* Waiter slots: a dead process's waits are removed; a live one's keep their
 * state, with their granted blocks recounted from the block words. */
static void census_waiters(struct shm *s, struct census *c)
{
    for (uint32_t w = 0; w < SHM_WAITERS; w++) {
        struct shm_waiter *sw = &s->waiters[w];
        uint32_t state = atomic_load_explicit(&sw->state, memory_order_relaxed);
        c->waiting[w] = false;
        if (state == WAIT_EMPTY)
            continue;
        if (state > WAIT_CANCELED ||
            !census_alive(c, atomic_load_explicit(&sw->owner, memory_order_relaxed))) {
            atomic_store_explicit(&sw->state, WAIT_EMPTY, memory_order_relaxed);
            continue;
        }
        atomic_store_explicit(&sw->chain, SHM_NONE, memory_order_relaxed);
        atomic_store_explicit(&sw->have, 0, memory_order_relaxed);
        c->waiting[w] = state == WAIT_WAITING || state == WAIT_DONE;
    }
}

/* Cache slots: a live process's keep their blocks (its threads use them
 * without the lock, and the words say whose they are); a dead one's, or a
 * slot with an owner that is no process, give theirs back. */
static void census_caches(struct shm *s, struct census *c)
{
    for (uint32_t k = 0; k < s->h.caches; k++) {
        uint32_t owner = atomic_load_explicit(&s->caches[k].owner, memory_order_relaxed);
        c->cache_live[k] = owner != 0 && census_alive(c, owner - 1);
    }
}

/* Rebuilds the queue from the live WAITING slots, in ticket order. */
static void queue_rebuild(struct shm *s, const struct census *c)
{
    uint32_t order[SHM_WAITERS];
    uint32_t count = 0;
    for (uint32_t w = 0; w < SHM_WAITERS; w++) {
        if (!c->waiting[w] ||
            atomic_load_explicit(&s->waiters[w].state, memory_order_relaxed) != WAIT_WAITING)
            continue;
        uint64_t ticket = atomic_load_explicit(&s->waiters[w].ticket, memory_order_relaxed);
        uint32_t at = count++;
        for (; at > 0 && atomic_load_explicit(&s->waiters[order[at - 1]].ticket,
                                              memory_order_relaxed) > ticket;
             at--)
            order[at] = order[at - 1];
        order[at] = w;
    }
    for (uint32_t i = 0; i < count; i++)
        atomic_store_explicit(&s->waiters[order[i]].after, i + 1 < count ? order[i + 1] : SHM_NONE,
                              memory_order_relaxed);
    struct shm_state *st = s->state;
    atomic_store_explicit(&st->first, count ? order[0] : SHM_NONE, memory_order_relaxed);
    atomic_store_explicit(&st->last, count ? order[count - 1] : SHM_NONE, memory_order_relaxed);
    atomic_store_explicit(&st->queued, count, memory_order_relaxed);
}

/* Every block word, read once: a dead holder's block, a block granted to a
 * wait that is gone and a half-put block go back; the free list and the
 * live waiters' lists are built again. */
static void census_blocks(struct shm *s, const struct census *c, unsigned flags,
                          mempool_recovery *report)
{
    struct shm_state *st = s->state;
    uint32_t head = SHM_NONE;
    uint64_t free_count = 0;
    for (size_t i = s->h.capacity; i-- > 0;) {
        _Atomic uint64_t *word = &s->owners[i];
        uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
        uint32_t kind = OWN_KIND(w), who = OWN_WHO(w), seq = OWN_SEQ(w);
        bool reclaim = false;
        if (kind == OWN_OUT) {
            reclaim = !census_alive(c, who);
            if (!reclaim && (w & OWN_MARK))
                atomic_store_explicit(word, OWN_MAKE(OWN_OUT, who, seq), memory_order_relaxed);
        } else if (kind == OWN_TRANSIT) {
            report->in_transit++;
            /* A CAS: a take may be racing for it (takes need no lock). */
            uint64_t clean = OWN_MAKE(OWN_TRANSIT, 0, seq);
            if (flags & MEMPOOL_RECOVER_TRANSIT) {
                if (atomic_compare_exchange_strong_explicit(word, &w, OWN_MAKE(OWN_FREE, 0, seq),
                                                            memory_order_relaxed,
                                                            memory_order_relaxed))
                    report->blocks++;
                else
                    continue; /* taken just now: OUT, held by a live taker */
                w = OWN_MAKE(OWN_FREE, 0, seq);
                kind = OWN_FREE;
            } else if (w != clean) {
                atomic_compare_exchange_strong_explicit(word, &w, clean, memory_order_relaxed,
                                                        memory_order_relaxed);
            }
        } else if (kind == OWN_FREE && who != 0) {
            uint32_t k = own_cache_slot(s, w);
            if (k != SHM_NONE && c->cache_live[k])
                continue;
            reclaim = true; /* a dead thread cache's */
        } else if (kind == OWN_GRANTED) {
            if (who < SHM_WAITERS && c->waiting[who]) {
                struct shm_waiter *sw = &s->waiters[who];
                atomic_store_explicit(&s->next[i],
                                      atomic_load_explicit(&sw->chain, memory_order_relaxed),
                                      memory_order_relaxed);
                atomic_store_explicit(&sw->chain, (uint32_t)i, memory_order_relaxed);
                atomic_fetch_add_explicit(&sw->have, 1, memory_order_relaxed);
                continue;
            }
            reclaim = true;
        }
        if (reclaim) {
            atomic_store_explicit(word, OWN_MAKE(OWN_FREE, 0, seq), memory_order_relaxed);
            SHM_STEP();
            report->blocks++;
            kind = OWN_FREE;
        } else if (kind == OWN_FREE && w != OWN_MAKE(OWN_FREE, 0, seq)) {
            atomic_store_explicit(word, OWN_MAKE(OWN_FREE, 0, seq), memory_order_relaxed);
        }
        if (kind == OWN_FREE) {
            atomic_store_explicit(&s->next[i], head, memory_order_relaxed);
            head = (uint32_t)i;
            free_count++;
        }
    }
    atomic_store_explicit(&st->free_head, head, memory_order_relaxed);
    atomic_store_explicit(&st->free_count, free_count, memory_order_relaxed);
}

void mempool__shm_repair(struct shm *s, unsigned flags, mempool_recovery *report,
                         struct shm_wakes *wk)
{
    mempool_recovery ignored;
    if (!report)
        report = &ignored;
    memset(report, 0, sizeof *report);
    struct census c;
    take_census(s, &c, report);
    census_waiters(s, &c);
    census_caches(s, &c);
    census_blocks(s, &c, flags, report);
    struct shm_state *st = s->state;
    bool closed = atomic_load_explicit(&st->closed, memory_order_relaxed);
    /* The live waits: served now if their blocks are all there (the waker
     * died before saying so), canceled if a close was cut short. */
    uint64_t collected = 0;
    for (uint32_t w = 0; w < SHM_WAITERS; w++) {
        struct shm_waiter *sw = &s->waiters[w];
        if (!c.waiting[w] ||
            atomic_load_explicit(&sw->state, memory_order_relaxed) != WAIT_WAITING)
            continue;
        uint32_t have = atomic_load_explicit(&sw->have, memory_order_relaxed);
        if (closed || have >= atomic_load_explicit(&sw->need, memory_order_relaxed)) {
            if (closed) {
                for (uint32_t i = atomic_load_explicit(&sw->chain, memory_order_relaxed), n = 0;
                     i < s->h.capacity && n < have; n++) {
                    uint32_t next = atomic_load_explicit(&s->next[i], memory_order_relaxed);
                    uint64_t word = atomic_load_explicit(&s->owners[i], memory_order_relaxed);
                    atomic_store_explicit(&s->owners[i], OWN_MAKE(OWN_FREE, 0, OWN_SEQ(word)),
                                          memory_order_relaxed);
                    atomic_store_explicit(&s->next[i],
                                          atomic_load_explicit(&st->free_head,
                                                               memory_order_relaxed),
                                          memory_order_relaxed);
                    atomic_store_explicit(&st->free_head, i, memory_order_relaxed);
                    atomic_fetch_add_explicit(&st->free_count, 1, memory_order_relaxed);
                    i = next;
                }
                atomic_store_explicit(&sw->chain, SHM_NONE, memory_order_relaxed);
            }
            atomic_store_explicit(&sw->state, closed ? WAIT_CANCELED : WAIT_DONE,
                                  memory_order_release);
            if (wk->n < (int)(sizeof wk->slot / sizeof wk->slot[0]))
                wk->slot[wk->n++] = w;
            else
                mempool__os_shared_wake(&sw->state, 1);
            continue;
        }
        collected += have;
    }
    atomic_store_explicit(&st->collected, collected, memory_order_relaxed);
    queue_rebuild(s, &c);
    /* Free blocks go to waiters first, as any put's would (each index
     * checked again: a peer may write the list while we hold the lock). */
    mempool__shm_feed(s, wk);
    /* A queue that is back keeps the caches armed; one that is gone frees
     * them of it. */
    if (atomic_load_explicit(&st->queued, memory_order_relaxed))
        mempool__shm_reclaim(s, wk);
    else
        mempool__shm_settle(s);
    /* Last: the dead slots, now that nothing in the segment names them. */
    SHM_STEP();
    for (uint32_t k = 0; k < s->h.caches; k++) {
        if (!c.cache_live[k] && atomic_load_explicit(&s->caches[k].owner, memory_order_relaxed))
            mempool__shm_caches_free(s, atomic_load_explicit(&s->caches[k].owner,
                                                             memory_order_relaxed) - 1);
    }
    for (uint32_t slot = 0; slot < SHM_PROCS; slot++) {
        uint64_t word = c.dead[slot];
        SHM_STEP();
        if (word)
            atomic_compare_exchange_strong_explicit(&s->procs[slot].word, &word,
                                                    PROC_WORD(PROC_GEN(word), PROC_FREE),
                                                    memory_order_release,
                                                    memory_order_relaxed);
    }
}

int mempool_recover(mempool *pool, unsigned flags, mempool_recovery *report)
{
    int err;
    struct shm *s = mempool__shm_of(pool, &err);
    if (!s)
        return err;
    if (flags & ~(unsigned)MEMPOOL_RECOVER_TRANSIT)
        return EINVAL;
    if (report)
        memset(report, 0, sizeof *report);
    if (!(flags & MEMPOOL_RECOVER_TRANSIT) && !mempool__shm_any_dead(s))
        return 0;
    struct shm_wakes wk = { .n = 0 };
    mempool_recovery first;
    /* Taking the lock over from a dead holder repairs once already: that
     * repair's findings are this call's too. */
    mempool__shm_lock_report(pool, &first);
    mempool__shm_repair(s, flags, report, &wk);
    mempool__shm_unlock(pool);
    mempool__shm_wake(s, &wk);
    if (report) {
        report->processes += first.processes;
        report->blocks += first.blocks;
    }
    return 0;
}
