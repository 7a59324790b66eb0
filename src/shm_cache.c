/* SPDX-License-Identifier: MIT */
/* A shared pool's thread caches (the protocol is in shm.h and cache.h): a
 * thread's slot in the segment, the hit paths of one block, the refill and
 * the flush under the lock, the reclaim that a get about to wait or fail
 * runs, and the slot's release at thread exit, detach and repair.
 *
 * The owner's thread keeps its private `struct cache` in the handle's
 * thread directory, as private pools do, so that thread exit and destroy
 * find it the same way; that object's own magazines stay empty (its
 * `unusual` says NONE, which sends every call off the private hit path) and
 * it points at the slot in the segment. Everything the owner reads from the
 * slot is checked before use: a count above the magazine's size, an index
 * outside the pool or a block word that does not say "in this slot" makes
 * the owner empty the slot under the lock and take the locked path. */
#include "cache.h"
#include "index.h"
#include "shm.h"

static _Atomic uint32_t *slot_mag(struct shm *s, uint32_t k)
{
    return s->mags + (size_t)k * s->h.cache_size;
}

/* A free slot made ours, or SHM_NONE when all are taken (under the lock). */
static uint32_t slot_claim(struct shm *s)
{
    for (uint32_t k = 0; k < s->h.caches; k++) {
        struct shm_cache *sc = &s->caches[k];
        if (atomic_load_explicit(&sc->owner, memory_order_relaxed) != 0)
            continue;
        atomic_store_explicit(&sc->count, 0, memory_order_relaxed);
        atomic_store_explicit(&sc->gets, 0, memory_order_relaxed);
        atomic_store_explicit(&sc->puts, 0, memory_order_relaxed);
        atomic_store_explicit(&sc->busy, s->ordered ? CACHE_IDLE : CACHE_IDLE_FENCED,
                              memory_order_relaxed);
        uint32_t unusual =
            (atomic_load_explicit(&s->state->armed, memory_order_relaxed) ? CACHE_ARMED : 0) |
            (atomic_load_explicit(&s->state->closed, memory_order_relaxed) ? CACHE_CLOSED : 0);
        atomic_store_explicit(&sc->unusual, unusual, memory_order_relaxed);
        atomic_store_explicit(&sc->owner, s->id + 1, memory_order_release);
        SHM_STEP();
        return k;
    }
    return SHM_NONE;
}

/* Every block of slot k's magazine back to the pool (its owner idle, or
 * dead, or us), to the oldest waiters first; under the lock. Only entries
 * whose block word says "in slot k" count: a repeated or foreign entry
 * returns nothing. */
static void slot_flush(struct shm *s, uint32_t k, struct shm_wakes *wk)
{
    struct shm_cache *sc = &s->caches[k];
    _Atomic uint32_t *mag = slot_mag(s, k);
    uint32_t count = atomic_load_explicit(&sc->count, memory_order_relaxed);
    if (count > s->h.cache_size)
        count = s->h.cache_size;
    for (uint32_t j = 0; j < count; j++) {
        uint32_t index = atomic_load_explicit(&mag[j], memory_order_relaxed);
        if (index >= s->h.capacity)
            continue;
        uint64_t w = atomic_load_explicit(&s->owners[index], memory_order_relaxed);
        if (OWN_LOW(w) != OWN_CACHED(k))
            continue;
        atomic_store_explicit(&s->owners[index], OWN_MAKE(OWN_FREE, 0, OWN_SEQ(w)),
                              memory_order_relaxed);
        SHM_STEP();
        mempool__shm_release(s, &index, 1, wk);
    }
    atomic_store_explicit(&sc->count, 0, memory_order_relaxed);
}

/* Frees slot k, its counters folded into the pool's (under the lock). */
static void slot_free(struct shm *s, uint32_t k)
{
    struct shm_cache *sc = &s->caches[k];
    LOCKED_ADD(s->state->cached_gets, atomic_load_explicit(&sc->gets, memory_order_relaxed));
    LOCKED_ADD(s->state->cached_puts, atomic_load_explicit(&sc->puts, memory_order_relaxed));
    atomic_store_explicit(&sc->gets, 0, memory_order_relaxed);
    atomic_store_explicit(&sc->puts, 0, memory_order_relaxed);
    atomic_store_explicit(&sc->count, 0, memory_order_relaxed);
    atomic_store_explicit(&sc->unusual, 0, memory_order_relaxed);
    atomic_store_explicit(&sc->owner, 0, memory_order_release);
}

void mempool__shm_caches_free(struct shm *s, uint32_t id)
{
    for (uint32_t k = 0; k < s->h.caches; k++)
        if (atomic_load_explicit(&s->caches[k].owner, memory_order_relaxed) == id + 1)
            slot_free(s, k);
}

/* The calling thread's private object for the pool, attaching one (and a
 * slot, while there are free ones) on first use; NULL when it cannot have
 * one. A thread that found no free slot runs uncached for the pool. */
static NOINLINE struct cache *attach_thread(mempool *pool);

static struct cache *thread_cache(mempool *pool)
{
    struct cache *c = cache_lookup(pool);
    return likely(cache_is_real(pool, c)) ? c : attach_thread(pool);
}

static NOINLINE struct cache *attach_thread(mempool *pool)
{
    struct cache *c;
    if (!pool->cache_slot)
        return NULL;
    struct cache **entry = mempool__dir_entry(pool->cache_dir, pool->cache_page);
    if (!entry)
        return NULL;
    if (*entry != &mempool__sentinel)
        mempool__cache_free(*entry); /* detached: a destroyed pool's */
    *entry = &mempool__sentinel;
    c = mempool__os_alloc(sizeof *c, CACHE_LINE);
    if (!c)
        return NULL;
    c->pool = pool;
    atomic_store_explicit(&c->unusual, CACHE_NONE, memory_order_relaxed);
    struct shm *s = pool->shm;
    mempool__shm_lock(pool);
    uint32_t k = slot_claim(s);
    if (k != SHM_NONE) {
        c->shared = &s->caches[k];
        c->shared_mag = slot_mag(s, k);
        c->shared_slot = k;
        c->shared_size = s->h.cache_size;
        c->shared_cached = OWN_CACHED(k);
        c->shared_out = OWN_LOW(OWN_MAKE(OWN_OUT, s->id, 0));
        c->shared_flip = c->shared_cached ^ c->shared_out;
        c->shared_owners = s->owners;
        c->shared_ordered = CACHE_HIT_ORDERED || s->ordered;
        c->shared_fast = c->shared_ordered ? NULL : c->shared;
    }
    cache_link(pool, c); /* under the handle's lock, which the shared one holds */
    mempool__shm_unlock(pool);
    *entry = c;
    return c;
}

/* The owner hands every block of its slot over (a steal request, or a
 * magazine found corrupt): to the oldest waiters, else the free list. */
static NOINLINE void honour(mempool *pool, struct cache *c)
{
    struct shm *s = pool->shm;
    struct shm_wakes wk = { .n = 0 };
    mempool__shm_lock(pool);
    slot_flush(s, c->shared_slot, &wk);
    mempool__shm_unlock(pool);
    mempool__shm_wake(s, &wk);
}

/* An empty slot: half a magazine of free blocks into it and one for the
 * caller, under the lock, unless a get waits (no passing it), the pool is
 * closed or the slot is armed; false then, or when no block is free. */
static NOINLINE bool refill(mempool *pool, struct cache *c, void **block)
{
    struct shm *s = pool->shm;
    struct shm_cache *sc = c->shared;
    bool done = false;
    mempool__shm_lock(pool);
    if (!atomic_load_explicit(&sc->unusual, memory_order_relaxed) &&
        atomic_load_explicit(&sc->count, memory_order_relaxed) == 0 &&
        !atomic_load_explicit(&s->state->closed, memory_order_relaxed) &&
        atomic_load_explicit(&s->state->queued, memory_order_relaxed) == 0) {
        uint32_t index = free_pop(s);
        if (index != SHM_NONE) {
            uint64_t w = atomic_load_explicit(&s->owners[index], memory_order_relaxed);
            atomic_store_explicit(&s->owners[index], OWN_MAKE(OWN_OUT, s->id, OWN_SEQ(w)),
                                  memory_order_relaxed);
            SHM_STEP();
            *block = block_at(pool, index);
            uint32_t n = 0, want = s->h.cache_size / 2;
            while (n < want && (index = free_pop(s)) != SHM_NONE) {
                w = atomic_load_explicit(&s->owners[index], memory_order_relaxed);
                atomic_store_explicit(&s->owners[index],
                                      (w & ~(uint64_t)UINT32_MAX) | OWN_CACHED(c->shared_slot),
                                      memory_order_relaxed);
                SHM_STEP();
                atomic_store_explicit(&c->shared_mag[n++], index, memory_order_relaxed);
            }
            atomic_store_explicit(&sc->count, n, memory_order_relaxed);
            LOCKED_ADD(s->state->gets, 1);
            mempool__shm_note_out(s);
            done = true;
        }
    }
    mempool__shm_unlock(pool);
    return done;
}

/* After a hit: whether a steal request came meanwhile, which the caller
 * honours at once (what is left in the slot goes to the waiters). */
static ALWAYS_INLINE bool armed_after(const struct shm_cache *sc)
{
    return atomic_load_explicit(&sc->unusual, memory_order_seq_cst) & CACHE_ARMED;
}

/* After a hit that saw a steal request, with nothing else live: out of
 * line and in tail position, so that the hit paths save no registers. */
static NOINLINE void *get_honour(mempool *pool, struct cache *c, void *block)
{
    honour(pool, c);
    return block;
}

static NOINLINE int put_honour(mempool *pool, struct cache *c)
{
    honour(pool, c);
    return 0;
}

/* A get the hit path did not serve: armed, closed, a magazine that does
 * not add up (what it holds goes back: a closed slot's stays for puts to
 * fill; the count is ours to read, since others only empty the slot, under
 * the lock), or empty (a refill). */
static NOINLINE bool get_missed(mempool *pool, struct cache *c, uint32_t unusual, uint32_t count,
                                void **block)
{
    if (unusual || count != 0) {
        if (((unusual & CACHE_ARMED) || !unusual) &&
            atomic_load_explicit(&c->shared->count, memory_order_relaxed))
            honour(pool, c);
        return false;
    }
    return refill(pool, c, block);
}

/* The slot's words as its owner reads them outside an operation: only
 * others' emptying under the lock changes them meanwhile, which the missed
 * paths' locked checks see. */
static uint32_t slot_unusual(const struct cache *c)
{
    return atomic_load_explicit(&c->shared->unusual, memory_order_relaxed);
}

static uint32_t slot_count(const struct cache *c)
{
    return atomic_load_explicit(&c->shared->count, memory_order_relaxed);
}

/* Every caller of the two below has tried the hit path just before, or has
 * no slot yet (the attach here gives it an empty one): what the hit path
 * declined is judged at once, without a second try. */
bool mempool__shm_cache_get(mempool *pool, void **block)
{
    struct cache *c = thread_cache(pool);
    if (!c || !c->shared)
        return false;
    return get_missed(pool, c, slot_unusual(c), slot_count(c), block);
}

/* A single get that the slot's hit path did not serve: the full get. */
static NOINLINE void *get_full(mempool *pool, int64_t timeout_ns)
{
    void *block = NULL;
    int err = mempool__shm_get(pool, &block, 1, timeout_ns);
    if (err) {
        errno = err;
        return NULL;
    }
    return block;
}

/* The single get on the slot's hit path, the fence protocol given: the
 * top of the slot's magazine, after checking that its count fits the
 * magazine, its index the pool and its block word says "in this slot";
 * anything else leaves the slot as it was and takes the full get. */
static ALWAYS_INLINE void *get_hit(mempool *pool, struct cache *c, int64_t timeout_ns,
                                   bool ordered)
{
    struct shm_cache *sc = c->shared;
    _Atomic uint64_t *owners = c->shared_owners;
    busy_enter(&sc->busy, ordered);
    uint32_t n = atomic_load_explicit(&sc->count, memory_order_relaxed);
    uint32_t u = atomic_load_explicit(&sc->unusual, memory_order_seq_cst);
    if (likely(!u) && likely(n - 1 < c->shared_size)) {
        uint32_t i = atomic_load_explicit(&c->shared_mag[n - 1], memory_order_relaxed);
        if (likely(i < pool->capacity)) {
            uint64_t w = atomic_load_explicit(&owners[i], memory_order_relaxed);
            if (likely(OWN_LOW(w) == c->shared_cached)) {
                atomic_store_explicit(&sc->count, n - 1, memory_order_relaxed);
                SHM_STEP();
                atomic_store_explicit(&owners[i], w ^ c->shared_flip, memory_order_relaxed);
                counter_own_add(&sc->gets, 1);
                busy_idle(&sc->busy, ordered);
                /* A shared pool is always an arena. An arm that came
                 * meanwhile is honoured at once, even when the slot is
                 * empty now (a lock for nothing, on a rare path, instead of
                 * a test on the hot one). */
                void *block = pool->base + (size_t)i * pool->stride;
                if (unlikely(armed_after(sc)))
                    return get_honour(pool, c, block);
                return block;
            }
        }
    }
    busy_idle(&sc->busy, ordered);
    return get_full(pool, timeout_ns);
}

/* The protocol is fixed at attach: the fence-free one has its own entry,
 * compiled without the other's branches. */
void *mempool__shm_get_fast(mempool *pool, struct cache *c, int64_t timeout_ns)
{
    return get_hit(pool, c, timeout_ns, false);
}

void *mempool__shm_get_one(mempool *pool, int64_t timeout_ns)
{
    struct cache *c = cache_lookup(pool);
    if (c->pool == pool && c->shared) /* the sentinel's pool is NULL */
        return get_hit(pool, c, timeout_ns, c->shared_ordered);
    return get_full(pool, timeout_ns);
}

/* A full slot: its older half back to the pool and the newer half moved
 * down, under the lock; then the caller's block goes in. False, with the
 * slot emptied, when it changed meanwhile (armed, closed, or not adding up)
 * or the block is no longer ours: the locked path decides then. */
static NOINLINE bool flush_and_put(mempool *pool, struct cache *c, uint32_t index)
{
    struct shm *s = pool->shm;
    struct shm_cache *sc = c->shared;
    _Atomic uint32_t *mag = c->shared_mag;
    struct shm_wakes wk = { .n = 0 };
    mempool__shm_lock(pool);
    uint32_t size = s->h.cache_size, half = size / 2;
    uint32_t count = atomic_load_explicit(&sc->count, memory_order_relaxed);
    uint32_t cached = OWN_CACHED(c->shared_slot);
    uint64_t w = atomic_load_explicit(&s->owners[index], memory_order_relaxed);
    bool done = count == size && !atomic_load_explicit(&sc->unusual, memory_order_relaxed) &&
                OWN_LOW(w) == OWN_LOW(OWN_MAKE(OWN_OUT, s->id, 0));
    if (done) {
        for (uint32_t j = 0; j < half; j++) {
            uint32_t i = atomic_load_explicit(&mag[j], memory_order_relaxed);
            uint64_t old = i < s->h.capacity
                ? atomic_load_explicit(&s->owners[i], memory_order_relaxed) : 0;
            if (i >= s->h.capacity || OWN_LOW(old) != cached)
                continue;
            atomic_store_explicit(&s->owners[i], OWN_MAKE(OWN_FREE, 0, OWN_SEQ(old)),
                                  memory_order_relaxed);
            SHM_STEP();
            mempool__shm_release(s, &i, 1, &wk);
        }
        for (uint32_t j = half; j < size; j++)
            atomic_store_explicit(&mag[j - half],
                                  atomic_load_explicit(&mag[j], memory_order_relaxed),
                                  memory_order_relaxed);
        count = size - half;
        atomic_store_explicit(&sc->count, count, memory_order_relaxed);
        SHM_STEP();
        atomic_store_explicit(&s->owners[index], (w & ~(uint64_t)UINT32_MAX) | cached,
                              memory_order_relaxed);
        SHM_STEP();
        atomic_store_explicit(&mag[count], index, memory_order_relaxed);
        atomic_store_explicit(&sc->count, count + 1, memory_order_relaxed);
        counter_own_add(&sc->puts, 1);
    } else {
        slot_flush(s, c->shared_slot, &wk);
    }
    mempool__shm_unlock(pool);
    mempool__shm_wake(s, &wk);
    return done;
}

/* The hit path of a put of a block this process holds (unmarked: the
 * rest, another process's, in transit or free, need the lock and its
 * checks): true when it went into the slot, else nothing changed and
 * *unusual and *count are as read. */
static ALWAYS_INLINE bool hit_put(struct cache *c, uint32_t index, bool ordered,
                                  uint32_t *unusual, uint32_t *count)
{
    struct shm_cache *sc = c->shared;
    _Atomic uint64_t *word = &c->shared_owners[index];
    uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
    *unusual = 0;
    *count = 0;
    if (unlikely(OWN_LOW(w) != c->shared_out))
        return false;
    bool hit = false;
    busy_enter(&sc->busy, ordered);
    uint32_t n = atomic_load_explicit(&sc->count, memory_order_relaxed);
    uint32_t u = atomic_load_explicit(&sc->unusual, memory_order_seq_cst);
    if (likely(!u) && likely(n < c->shared_size)) {
        atomic_store_explicit(word, w ^ c->shared_flip, memory_order_relaxed);
        SHM_STEP();
        atomic_store_explicit(&c->shared_mag[n], index, memory_order_relaxed);
        atomic_store_explicit(&sc->count, n + 1, memory_order_relaxed);
        counter_own_add(&sc->puts, 1);
        hit = true;
    }
    busy_idle(&sc->busy, ordered);
    *unusual = u;
    *count = n;
    return hit;
}

/* A put the hit path did not serve: armed or closed (the locked path puts
 * it, and an armed slot's blocks go to the waiters), a count that does not
 * add up (emptied), or a full slot (a flush). */
static NOINLINE bool put_missed(mempool *pool, struct cache *c, uint32_t index, uint32_t unusual,
                                uint32_t count)
{
    if (unusual || count > c->shared_size) {
        if (((unusual & CACHE_ARMED) || !unusual) &&
            atomic_load_explicit(&c->shared->count, memory_order_relaxed))
            honour(pool, c);
        return false;
    }
    if (count < c->shared_size)
        return false; /* declined for a reason gone now (a race): the locked path puts it */
    return flush_and_put(pool, c, index);
}

bool mempool__shm_cache_put(mempool *pool, uint32_t index)
{
    struct cache *c = thread_cache(pool);
    if (!c || !c->shared)
        return false;
    uint64_t w = atomic_load_explicit(&c->shared_owners[index], memory_order_relaxed);
    if (OWN_LOW(w) != c->shared_out)
        return false; /* not ours to cache: the locked path judges it */
    return put_missed(pool, c, index, slot_unusual(c), slot_count(c));
}

/* The single put of a shared pool, from the public calls (the mode's put
 * operation): the hit path first, inline; everything else through the
 * full put, which validates and reports. */
static NOINLINE int put_full(mempool *pool, void *block)
{
    return mempool__shm_put(pool, &block, 1);
}

/* The single put of block `index` on the slot's hit path. */
static ALWAYS_INLINE int put_hit(mempool *pool, struct cache *c, uint32_t index, void *block,
                                 bool ordered)
{
    uint32_t unusual, count;
    if (likely(hit_put(c, index, ordered, &unusual, &count)))
        return unlikely(armed_after(c->shared)) ? put_honour(pool, c) : 0;
    return put_full(pool, block);
}

/* The same for the ordered protocol, for strides the rotation does not
 * index, and for a thread without a slot yet (the full put attaches it). */
static NOINLINE int put_other(mempool *pool, struct cache *c, void *block)
{
    const char *what;
    uint32_t index;
    if (c->pool == pool && c->shared && /* the sentinel's pool is NULL */
        (index = block_lookup(pool, block, &what)) != STACK_NIL)
        return put_hit(pool, c, index, block, c->shared_ordered);
    return put_full(pool, block);
}

int mempool__shm_put_one(mempool *pool, void *block, uint64_t rotated)
{
    /* The rotation indexes power-of-two strides (valid_limit is 0 for the
     * others). */
    struct cache *c = cache_lookup(pool);
    if (likely(c->shared_fast) && likely(rotated < pool->valid_limit))
        return put_hit(pool, c, (uint32_t)rotated, block, false);
    return put_other(pool, c, block);
}

void mempool__shm_flush(mempool *pool)
{
    struct cache *c = cache_lookup(pool);
    if (cache_is_real(pool, c) && c->shared &&
        atomic_load_explicit(&c->shared->count, memory_order_relaxed))
        honour(pool, c);
}

void mempool__shm_reclaim(struct shm *s, struct shm_wakes *wk)
{
    /* Armed already, by a reclaim whose barrier has run: every operation
     * since went to the lock, and every one in flight then hands its
     * blocks over when it ends, so the slots hold nothing to take. */
    if (!s->h.caches || atomic_load_explicit(&s->state->armed, memory_order_relaxed))
        return;
    for (uint32_t k = 0; k < s->h.caches; k++)
        if (atomic_load_explicit(&s->caches[k].owner, memory_order_relaxed))
            atomic_fetch_or_explicit(&s->caches[k].unusual, CACHE_ARMED, memory_order_seq_cst);
    atomic_store_explicit(&s->state->armed, 1, memory_order_relaxed);
    SHM_STEP();
    bool fenced = mempool__os_shared_barrier();
    for (uint32_t k = 0; k < s->h.caches; k++) {
        struct shm_cache *sc = &s->caches[k];
        if (!atomic_load_explicit(&sc->owner, memory_order_relaxed))
            continue;
        /* Inside an operation: its owner sees the arm when it ends and
         * hands its blocks over itself. After a fence-free one, only a
         * barrier that ran makes what it stored visible here. */
        uint32_t busy = atomic_load_explicit(&sc->busy, memory_order_seq_cst);
        if (busy == CACHE_BUSY || (busy != CACHE_IDLE && !fenced))
            continue;
        slot_flush(s, k, wk);
    }
}

void mempool__shm_settle(struct shm *s)
{
    /* Not while blocks are scarce: a pool that ran dry once is likely to
     * again, and each arming costs a barrier across processes; the caches
     * come back once a refill's worth of blocks is free. */
    if (!atomic_load_explicit(&s->state->armed, memory_order_relaxed) ||
        atomic_load_explicit(&s->state->queued, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&s->state->free_count, memory_order_relaxed) < s->h.cache_size)
        return;
    /* Only lock holders arm a slot, and a slot claimed later starts from
     * the pool's state: a read-modify-write for armed slots only, not one
     * per slot of the table. */
    for (uint32_t k = 0; k < s->h.caches; k++) {
        struct shm_cache *sc = &s->caches[k];
        if (atomic_load_explicit(&sc->owner, memory_order_relaxed) &&
            (atomic_load_explicit(&sc->unusual, memory_order_relaxed) & CACHE_ARMED))
            atomic_fetch_and_explicit(&sc->unusual, ~(uint32_t)CACHE_ARMED,
                                      memory_order_relaxed);
    }
    atomic_store_explicit(&s->state->armed, 0, memory_order_relaxed);
}

void mempool__shm_caches_close(struct shm *s)
{
    if (!s->h.caches)
        return;
    for (uint32_t k = 0; k < s->h.caches; k++)
        atomic_fetch_or_explicit(&s->caches[k].unusual, CACHE_CLOSED, memory_order_seq_cst);
    /* A get that starts after the close returns sees it (or runs ordered). */
    mempool__os_shared_barrier();
}

uint64_t mempool__shm_cached(const struct shm *s)
{
    uint64_t n = 0;
    for (uint32_t k = 0; k < s->h.caches; k++) {
        const struct shm_cache *sc = &s->caches[k];
        if (!atomic_load_explicit(&sc->owner, memory_order_relaxed))
            continue;
        uint32_t count = atomic_load_explicit(&sc->count, memory_order_relaxed);
        n += count < s->h.cache_size ? count : s->h.cache_size;
    }
    return n;
}

void mempool__shm_cache_counts(const struct shm *s, uint64_t *gets, uint64_t *puts)
{
    *gets = atomic_load_explicit(&s->state->cached_gets, memory_order_relaxed);
    *puts = atomic_load_explicit(&s->state->cached_puts, memory_order_relaxed);
    for (uint32_t k = 0; k < s->h.caches; k++) {
        *gets += atomic_load_explicit(&s->caches[k].gets, memory_order_relaxed);
        *puts += atomic_load_explicit(&s->caches[k].puts, memory_order_relaxed);
    }
}

void mempool__shm_cache_retire(mempool *pool, struct cache *c)
{
    struct shm *s = pool->shm;
    struct shm_wakes wk = { .n = 0 };
    /* A fork child's copy of the handle is never used, and its locks may
     * have been held by threads that do not exist here: unlinked only. */
    if (!s->forked) {
        mempool__shm_lock(pool);
        if (c->shared &&
            atomic_load_explicit(&c->shared->owner, memory_order_relaxed) == s->id + 1) {
            slot_flush(s, c->shared_slot, &wk);
            slot_free(s, c->shared_slot);
        }
    }
    cache_unlink(pool, c);
    c->shared = c->shared_fast = NULL;
    if (!s->forked) {
        mempool__shm_unlock(pool);
        mempool__shm_wake(s, &wk);
    }
}
