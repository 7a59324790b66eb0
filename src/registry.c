/* SPDX-License-Identifier: MIT */
/* The registry: pool ids and cache slots, each thread's table of caches, and
 * the return of a thread's cached blocks when it exits. */
#include <errno.h>
#include <string.h>

#include "cache.h"
#include "locked.h"

_Thread_local struct cache_table mempool__cache_table;

/* Pool ids and slot numbers. Slot numbers index the thread-local tables and
 * are reused after destroy, so tables stay as small as the number of live
 * pools; ids are never reused. The lock also orders destroy against thread
 * exit: a cache's `pool` is read and cleared under it. It is global, held by
 * create and destroy of any pool and by exiting threads, so fork() takes it
 * first (atfork handlers): a child never finds it held by a thread that
 * does not exist there. */
static struct {
    pthread_mutex_t lock;
    uint64_t next_id;
    uint32_t next_slot;
    uint32_t *free_slots;
    uint32_t free_count, free_capacity;
    pthread_key_t exit_key;
    bool key_ready;
} registry = { PTHREAD_MUTEX_INITIALIZER, 1, 0, NULL, 0, 0, 0, false };

static void cache_thread_exit(void *table);

static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&registry.lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&registry.lock);
}

/* The child also resets what the OS seam shares between threads. */
static void fork_child(void)
{
    mempool__os_fork_child();
    pthread_mutex_unlock(&registry.lock);
}

static void registry_init(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Gives the pool its id and a slot (UINT32_MAX: none, so every thread runs
 * without per-thread state for it). Pools without caching get a slot too:
 * their per-thread state holds the statistics counters. */
void mempool__registry_add(mempool *pool)
{
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry.lock);
    pool->id = registry.next_id++;
    pool->cache_slot = UINT32_MAX;
    if (!registry.key_ready)
        registry.key_ready = pthread_key_create(&registry.exit_key, cache_thread_exit) == 0;
    if (registry.key_ready) {
        if (registry.free_count)
            pool->cache_slot = registry.free_slots[--registry.free_count];
        else if (registry.next_slot < UINT32_MAX)
            pool->cache_slot = registry.next_slot++;
    }
    pthread_mutex_unlock(&registry.lock);
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

/* Detaches every cache from a pool being destroyed. The blocks they hold are
 * marked free in the side array, so destroy finds them there. */
void mempool__registry_remove(mempool *pool)
{
    pthread_mutex_lock(&registry.lock);
    for (struct cache *c = pool->caches; c; c = c->next)
        c->pool = NULL;
    pool->caches = NULL;
    if (pool->cache_slot != UINT32_MAX)
        slot_release(pool->cache_slot);
    pthread_mutex_unlock(&registry.lock);
}

void mempool__cache_free(struct cache *c)
{
    mempool__os_free(c, cache_bytes(c->size), CACHE_LINE);
}

/* Grows the calling thread's table to hold `slot`; false when out of memory. */
bool mempool__table_reserve(struct cache_table *table, uint32_t slot)
{
    if (slot < table->length)
        return true;
    uint32_t length = table->length ? table->length : 8;
    while (length <= slot)
        length *= 2;
    struct cache_slot *slots = mempool__os_alloc(length * sizeof *slots, CACHE_LINE);
    if (!slots)
        return false;
    if (table->slots)
        memcpy(slots, table->slots, table->length * sizeof *slots);
    mempool__os_free(table->slots, table->length * sizeof *slots, CACHE_LINE);
    if (!table->length)
        pthread_setspecific(registry.exit_key, table);
    table->slots = slots;
    table->length = length;
    return true;
}

/* Returns each cached block to its pool when a thread exits. */
static void cache_thread_exit(void *arg)
{
    struct cache_table *table = arg;
    for (uint32_t i = 0; i < table->length; i++) {
        struct cache *c = table->slots[i].cache;
        if (!c)
            continue;
        pthread_mutex_lock(&registry.lock);
        mempool *pool = c->pool;
        if (pool) {
            struct wakeups wk = { .n = 0 };
            pthread_mutex_lock(&pool->lock);
            mempool__cache_empty_locked(pool, c, &wk);
            for (int s = 0; s < STAT_COUNT; s++)
                atomic_fetch_add_explicit(&pool->retired[s],
                                          atomic_load_explicit(&c->stats[s], memory_order_relaxed),
                                          memory_order_relaxed);
            if (c->prev)
                c->prev->next = c->next;
            else
                pool->caches = c->next;
            if (c->next)
                c->next->prev = c->prev;
            mempool__wait_bit_update(pool);
            mempool__unlock_and_wake(pool, &wk);
        }
        pthread_mutex_unlock(&registry.lock);
        mempool__cache_free(c);
    }
    mempool__os_free(table->slots, table->length * sizeof *table->slots, CACHE_LINE);
    table->slots = NULL;
    table->length = 0;
}