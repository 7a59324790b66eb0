/* SPDX-License-Identifier: MIT */
/* The registry: pool ids and cache slots, each thread's directory of
 * caches, and the return of a thread's cached blocks when it exits. */
#include <errno.h>
#include <string.h>

#include "cache.h"
#include "depot.h"
#include "locked.h"
#include "shm.h"

/* The sentinel: never busy, never holds a block, always sends its caller to
 * the full path. Only its address and unusual word are ever read. */
struct cache mempool__sentinel = { .unusual = CACHE_NONE };

#define SENTINEL4 &mempool__sentinel, &mempool__sentinel, &mempool__sentinel, &mempool__sentinel
#define SENTINEL16 SENTINEL4, SENTINEL4, SENTINEL4, SENTINEL4
#define SENTINEL64 SENTINEL16, SENTINEL16, SENTINEL16, SENTINEL16
struct cache *mempool__sentinel_page[CACHE_PAGE] = { SENTINEL64, SENTINEL64, SENTINEL64,
                                                     SENTINEL64 };

#define PAGE4 mempool__sentinel_page, mempool__sentinel_page, mempool__sentinel_page, \
              mempool__sentinel_page
_Thread_local struct cache **mempool__cache_dir[CACHE_DIR] = { PAGE4, PAGE4, PAGE4, PAGE4 };

/* A page of a thread's directory: the caches of CACHE_PAGE slots (the
 * directory entry points at `slot`), and a link to the thread's other
 * pages, so that the thread-exit hook finds them all without the thread's
 * thread-local storage (the hook's context is the newest page). */
struct dir_page {
    struct cache *slot[CACHE_PAGE];
    struct dir_page *next;
    uint32_t dir;
};

static _Thread_local struct dir_page *dir_pages;

/* Pool ids and slot numbers. Slot numbers index the thread-local
 * directories and are reused after destroy, so directories stay as small as
 * the number of live pools; ids are never reused. The lock also orders destroy against thread
 * exit: a cache's `pool` is read and cleared under it. It is global, held by
 * create and destroy of any pool and by exiting threads, so fork() takes it
 * first (atfork handlers): a child never finds it held by a thread that
 * does not exist there. */
static struct {
    os_lock_t lock;
    uint64_t next_id;
    uint32_t next_slot; /* slot 0 is never given out */
    uint32_t *free_slots;
    uint32_t free_count, free_capacity;
    bool hook_ready; /* the OS runs cache_thread_exit at thread exit */
    struct shm *shm_attached; /* this process's shared-pool handles */
} registry = { OS_LOCK_INIT, 1, 1, NULL, 0, 0, false, NULL };

static void cache_thread_exit(void *context);

static os_once_t registry_once = OS_ONCE_INIT;

static void fork_prepare(void)
{
    os_lock(&registry.lock);
}

static void fork_parent(void)
{
    os_unlock(&registry.lock);
}

/* The child also resets what the OS seam shares between threads. */
static void fork_child(void)
{
    mempool__os_fork_child();
    for (struct shm *s = registry.shm_attached; s; s = s->next_attached)
        mempool__shm_fork_child(s);
    os_unlock(&registry.lock);
}

static void registry_init(void)
{
    mempool__os_atfork(fork_prepare, fork_parent, fork_child);
}

/* A directory slot for the pool (registry lock held): 0 when there is
 * none, or no thread-exit hook to return per-thread state with. */
static void slot_take(mempool *pool)
{
    pool->cache_slot = 0;
    if (!registry.hook_ready)
        registry.hook_ready = mempool__os_exit_hook(cache_thread_exit);
    if (registry.hook_ready) {
        if (registry.free_count)
            pool->cache_slot = registry.free_slots[--registry.free_count];
        else if (registry.next_slot < CACHE_DIR * CACHE_PAGE)
            pool->cache_slot = registry.next_slot++;
    }
    pool->cache_dir = pool->cache_slot / CACHE_PAGE;
    pool->cache_page = pool->cache_slot % CACHE_PAGE;
}

/* Gives the pool its id and a slot (0: none, so every thread runs without
 * per-thread state for it: past CACHE_DIR x CACHE_PAGE live pools). Pools
 * without caching get a slot too: their per-thread state holds the
 * statistics counters. */
void mempool__registry_add(mempool *pool)
{
    os_once(&registry_once, registry_init);
    os_lock(&registry.lock);
    pool->id = registry.next_id++;
    slot_take(pool);
    os_unlock(&registry.lock);
}

static bool slot_release(uint32_t slot)
{
    if (registry.free_count == registry.free_capacity) {
        uint32_t grown = registry.free_capacity ? 2 * registry.free_capacity : 64;
        uint32_t *slots = mempool__os_alloc(grown * sizeof *slots, sizeof *slots);
        if (!slots)
            return false; /* the slot number is simply never reused */
        if (registry.free_slots)
            memcpy(slots, registry.free_slots, registry.free_count * sizeof *slots);
        mempool__os_free(registry.free_slots, registry.free_capacity * sizeof *slots,
                         sizeof *slots);
        registry.free_slots = slots;
        registry.free_capacity = grown;
    }
    registry.free_slots[registry.free_count++] = slot;
    return true;
}

/* Detaches the pool's caches from their threads, which free them, and gives
 * its slot back (registry lock held). */
static void caches_detach(mempool *pool)
{
    for (struct cache *c = pool->caches; c; c = c->next) {
        c->pool = NULL;
        c->shared = c->shared_fast = NULL;
        atomic_fetch_or_explicit(&c->unusual, CACHE_DETACHED, memory_order_relaxed);
    }
    pool->caches = NULL;
    if (pool->cache_slot)
        slot_release(pool->cache_slot);
}

void mempool__registry_shm_add(mempool *pool)
{
    os_once(&registry_once, registry_init);
    os_lock(&registry.lock);
    pool->id = registry.next_id++;
    struct shm *s = pool->shm;
    /* A slot only where the segment has thread caches: the thread's object
     * in it leads to its slot in the segment (shm_cache.c). */
    pool->cache_slot = pool->cache_dir = pool->cache_page = 0;
    if (s->h.caches)
        slot_take(pool);
    s->prev_attached = NULL;
    s->next_attached = registry.shm_attached;
    if (s->next_attached)
        s->next_attached->prev_attached = s;
    registry.shm_attached = s;
    os_unlock(&registry.lock);
}

void mempool__registry_shm_remove(mempool *pool)
{
    struct shm *s = pool->shm;
    os_lock(&registry.lock);
    if (s->prev_attached)
        s->prev_attached->next_attached = s->next_attached;
    else
        registry.shm_attached = s->next_attached;
    if (s->next_attached)
        s->next_attached->prev_attached = s->prev_attached;
    caches_detach(pool);
    os_unlock(&registry.lock);
}

/* Detaches every cache from a pool being destroyed. The blocks they hold are
 * marked free in the side array, so destroy finds them there. DETACHED
 * keeps the owner off the hit path: before it uses a later pool that takes
 * the slot, it frees the cache (that pool's creation took this lock after
 * these stores, and the owner got the pool after that). */
void mempool__registry_remove(mempool *pool)
{
    os_lock(&registry.lock);
    caches_detach(pool);
    os_unlock(&registry.lock);
}

/* Frees a cache and the magazines it holds. */
void mempool__cache_free(struct cache *c)
{
    if (c->size) {
        mempool__magazine_free(c->loaded, c->size);
        mempool__magazine_free(c->previous, c->size);
    }
    mempool__os_free(c, sizeof *c, CACHE_LINE);
}

/* The calling thread's directory entry for a slot, its page allocated on
 * first use (filled with the sentinel); NULL when out of memory. */
struct cache **mempool__dir_entry(uint32_t dir, uint32_t page)
{
    struct cache **p = mempool__cache_dir[dir];
    if (p == mempool__sentinel_page) {
        struct dir_page *d = mempool__os_alloc(sizeof *d, CACHE_LINE);
        if (!d)
            return NULL;
        memcpy(d->slot, mempool__sentinel_page, sizeof d->slot);
        d->next = dir_pages;
        d->dir = dir;
        dir_pages = d;
        p = d->slot;
        mempool__cache_dir[dir] = p;
        mempool__os_exit_arm(d);
    }
    return &p[page];
}

/* Returns a cache's blocks and magazines to its live pool and retires its
 * counters (registry lock held, which keeps destroy away). */
static void cache_retire(mempool *pool, struct cache *c)
{
    if (pool->shm) {
        mempool__shm_cache_retire(pool, c);
        return;
    }
    struct wakeups wk = { .n = 0 };
    os_lock(&pool->lock);
    mempool__cache_empty_locked(pool, c, &wk);
    for (int s = 0; s < STAT_COUNT; s++)
        atomic_fetch_add_explicit(&pool->retired[s],
                                  atomic_load_explicit(&c->stats[s], memory_order_relaxed),
                                  memory_order_relaxed);
    if (c->size) {
        /* Three magazines fewer are needed: the two held come back empty. */
        mempool__depot_give_empty(&pool->depot, c->loaded);
        mempool__depot_give_empty(&pool->depot, c->previous);
        for (int i = 0; i < 3; i++)
            mempool__depot_shrink(&pool->depot);
        c->size = 0;
    }
    cache_unlink(pool, c);
    mempool__wait_bit_update(pool);
    mempool__unlock_and_wake(pool, &wk);
}

/* Returns each cached block to its pool when a thread exits, walking the
 * thread's pages from the newest (the context). Where the thread-locals
 * still live, the directory goes back to the sentinel, so that a call made
 * later in the thread's exit (another destructor) finds no freed page. */
static void cache_thread_exit(void *context)
{
    for (struct dir_page *d = context, *next; d; d = next) {
        next = d->next;
        for (uint32_t i = 0; i < CACHE_PAGE; i++) {
            struct cache *c = d->slot[i];
            if (c == &mempool__sentinel)
                continue;
            os_lock(&registry.lock);
            if (c->pool)
                cache_retire(c->pool, c);
            os_unlock(&registry.lock);
            mempool__cache_free(c);
        }
        if (OS_TLS_AT_EXIT) {
            mempool__cache_dir[d->dir] = mempool__sentinel_page;
            dir_pages = NULL;
        }
        mempool__os_free(d, sizeof *d, CACHE_LINE);
    }
}
