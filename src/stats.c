/* SPDX-License-Identifier: MIT */
/* Statistics: per-thread counters summed on read, slow-path counters in the
 * pool, and a baseline snapshot for reset, so that nothing ever writes
 * another thread's counters and the hit path adds no shared write. */
#include <errno.h>
#include <inttypes.h>

#include "cache.h"
#include "locked.h"
#include "shm.h"

void mempool__stats_raise_high(mempool *pool, size_t out)
{
    uint64_t high = atomic_load_explicit(&pool->out_high, memory_order_relaxed);
    while (out > high && !atomic_compare_exchange_weak_explicit(
                             &pool->out_high, &high, out, memory_order_relaxed,
                             memory_order_relaxed)) {
    }
}

static void stats_sum_locked(const mempool *pool, mempool_stats *s)
{
    uint64_t sum[STAT_COUNT];
    for (int i = 0; i < STAT_COUNT; i++)
        sum[i] = atomic_load_explicit(&pool->retired[i], memory_order_relaxed);
    for (const struct cache *c = pool->caches; c; c = c->next)
        for (int i = 0; i < STAT_COUNT; i++)
            sum[i] += atomic_load_explicit(&c->stats[i], memory_order_relaxed);
    *s = (mempool_stats){ 0 };
    s->out = pool->capacity - mempool__available_locked(pool);
    s->puts = sum[STAT_PUTS];
    s->gets = s->puts + s->out;
    s->cache_misses = sum[STAT_MISSES];
    s->cache_hits = s->gets - s->cache_misses;
    s->waits = atomic_load_explicit(&pool->waits, memory_order_relaxed);
    s->timeouts = atomic_load_explicit(&pool->timeouts, memory_order_relaxed);
    s->refused_puts = atomic_load_explicit(&pool->refused, memory_order_relaxed);
    uint64_t high = atomic_load_explicit(&pool->out_high, memory_order_relaxed);
    s->out_high = high > s->out ? high : s->out;
}

int mempool_stats_read(const mempool *pool, mempool_stats *out)
{
    if (!pool || !out)
        return EINVAL;
    if (pool->shm) {
        mempool__shm_stats(pool, out);
        return 0;
    }
    os_lock_t *lock = (os_lock_t *)&pool->lock;
    os_lock(lock);
    stats_sum_locked(pool, out);
    const mempool_stats *b = &pool->baseline;
    out->gets -= b->gets;
    out->puts -= b->puts;
    out->cache_hits -= b->cache_hits;
    out->cache_misses -= b->cache_misses;
    out->waits -= b->waits;
    out->timeouts -= b->timeouts;
    out->refused_puts -= b->refused_puts;
    os_unlock(lock);
    return 0;
}

int mempool_stats_reset(mempool *pool)
{
    if (!pool)
        return EINVAL;
    if (pool->shm)
        return mempool__shm_stats_reset(pool);
    os_lock(&pool->lock);
    stats_sum_locked(pool, &pool->baseline);
    atomic_store_explicit(&pool->out_high, pool->baseline.out, memory_order_relaxed);
    os_unlock(&pool->lock);
    return 0;
}

int mempool_stats_print(const mempool *pool, FILE *out)
{
    mempool_stats s;
    if (!out || mempool_stats_read(pool, &s))
        return EINVAL;
    int saved = errno; /* int-returning calls leave errno alone */
    int n = fprintf(out,
                    "mempool %p: capacity %zu, block size %zu\n"
                    "  gets %" PRIu64 " (cache hits %" PRIu64 ", misses %" PRIu64 ")"
                    ", puts %" PRIu64 ", refused puts %" PRIu64 "\n"
                    "  waits %" PRIu64 ", timeouts %" PRIu64 "\n"
                    "  out now %" PRIu64 ", highest %" PRIu64 ", available %zu\n",
                    (const void *)pool, pool->capacity, pool->block_size, s.gets,
                    s.cache_hits, s.cache_misses, s.puts, s.refused_puts, s.waits,
                    s.timeouts, s.out, s.out_high, (size_t)(pool->capacity - s.out));
    if (n >= 0 && pool->base) {
        /* Where the blocks live, as the kernel maps them now. */
        mempool_arena_info a;
        mempool_arena(pool, &a);
        int node = mempool__os_node_of(pool->base);
        int m = fprintf(out, "  arena %zu bytes at %p, stride %zu, %zu KiB pages, %s",
                        a.size, a.base, a.stride, a.page_size >> 10,
                        pool->shm ? "a shared segment" : pool->arena_borrowed ? "the caller's region" : "mapped by the pool");
        if (m >= 0 && node >= 0)
            m = fprintf(out, ", node %d%s", node, pool->numa_node >= 0 ? " (bound)" : "");
        if (m >= 0)
            m = fprintf(out, "\n");
        n = m < 0 ? m : n;
    }
    int err = n < 0 || fflush(out) != 0 ? EIO : 0;
    errno = saved;
    return err;
}
