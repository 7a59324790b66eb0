/* SPDX-License-Identifier: MIT */
/* DPDK's rte_mempool, with its per-lcore cache and without.
 *
 * The EAL starts without hugepages or PCI, in plain process memory, so it
 * runs anywhere, root or not. rte_eal_init pins the calling thread, and every
 * thread created later inherits that mask, so the mask from before the init
 * is put back. The per-lcore cache serves only threads with an lcore id:
 * every worker thread registers with rte_thread_register, so the cached row
 * measures the cache as DPDK applications use it. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_version.h>

#include "../adapter.h"

/* rte_mempool's cache must stay under capacity / 1.5 (see rte_mempool.h). */
#define CACHE_SIZE 256

static int start(char *why, size_t why_size)
{
    static int started, result;
    if (started)
        return result;
    started = 1;
    cpu_set_t mask;
    pthread_getaffinity_np(pthread_self(), sizeof mask, &mask);
    char *argv[] = {"mempool-bench", "--no-huge", "--no-pci", "--no-shconf", "-m", "256",
                    "-l", "0", "--no-telemetry", "--log-level=error", NULL};
    if (rte_eal_init((int)(sizeof argv / sizeof *argv) - 1, argv) < 0) {
        result = rte_errno ? rte_errno : EINVAL;
        snprintf(why, why_size, "rte_eal_init failed: %s", rte_strerror(rte_errno));
        return result;
    }
    pthread_setaffinity_np(pthread_self(), sizeof mask, &mask);
    return 0;
}

static void *create_with_cache(size_t block_size, size_t capacity, unsigned cache)
{
    static atomic_uint serial;
    char name[RTE_MEMPOOL_NAMESIZE];
    snprintf(name, sizeof name, "bench%u", atomic_fetch_add(&serial, 1));
    if (cache > capacity * 2 / 3)
        cache = (unsigned)(capacity * 2 / 3);
    return rte_mempool_create(name, (unsigned)capacity, (unsigned)block_size, cache, 0, NULL,
                              NULL, NULL, NULL, SOCKET_ID_ANY, 0);
}

static void *create_cached(size_t block_size, size_t capacity)
{
    return create_with_cache(block_size, capacity, CACHE_SIZE);
}

static void *create_uncached(size_t block_size, size_t capacity)
{
    return create_with_cache(block_size, capacity, 0);
}

static void destroy(void *pool)
{
    rte_mempool_free(pool);
}

static void *get(void *pool)
{
    void *block;
    return rte_mempool_get(pool, &block) == 0 ? block : NULL;
}

static void put(void *pool, void *block)
{
    rte_mempool_put(pool, block);
}

static int get_bulk(void *pool, void **blocks, size_t n)
{
    return rte_mempool_get_bulk(pool, blocks, (unsigned)n);
}

static void put_bulk(void *pool, void *const *blocks, size_t n)
{
    rte_mempool_put_bulk(pool, blocks, (unsigned)n);
}

static void thread_enter(void *pool)
{
    (void)pool;
    rte_thread_register();
}

static void thread_exit(void *pool)
{
    (void)pool;
    rte_thread_unregister();
}

static const char *version(void)
{
    return rte_version();
}

#define DPDK_ADAPTER(label, make, text)                                        \
    {                                                                          \
        .name = label, .version = version, .start = start, .create = make,     \
        .destroy = destroy, .get = get, .put = put, .get_bulk = get_bulk,      \
        .put_bulk = put_bulk, .thread_enter = thread_enter,                    \
        .thread_exit = thread_exit, .one_thread_per_cpu = 1, .note = text,     \
    }

static const struct bench_impl dpdk_cached = DPDK_ADAPTER(
    "dpdk", create_cached,
    "dpdk: rte_mempool, 256-block per-lcore cache; every thread registered with "
    "rte_thread_register, so the cache serves all of them (EAL: --no-huge --no-pci); "
    "not run with more threads than CPUs: its ring makes a preempted thread stall the others");
static const struct bench_impl dpdk_uncached = DPDK_ADAPTER(
    "dpdk-nocache", create_uncached,
    "dpdk-nocache: rte_mempool with cache_size 0 (ring only), same thread limit");
BENCH_ADAPTER(dpdk_cached)
BENCH_ADAPTER(dpdk_uncached)
