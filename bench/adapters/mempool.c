/* SPDX-License-Identifier: MIT */
/* The library under test: with its per-thread cache, without it, and in
 * checked mode (the cost of catching the caller's bugs). */
#include <mempool.h>

#include "../adapter.h"

static void *create_with_flags(size_t block_size, size_t capacity, unsigned flags)
{
    mempool_config config = {
        .capacity = capacity,
        .block_size = block_size,
        .flags = flags,
    };
    return mempool_create(&config);
}

static void *create_cached(size_t block_size, size_t capacity)
{
    return create_with_flags(block_size, capacity, 0);
}

static void *create_uncached(size_t block_size, size_t capacity)
{
    return create_with_flags(block_size, capacity, MEMPOOL_NO_CACHE);
}

static void *create_checked(size_t block_size, size_t capacity)
{
    return create_with_flags(block_size, capacity, MEMPOOL_CHECKED);
}

static void *create_hugepages(size_t block_size, size_t capacity)
{
    return create_with_flags(block_size, capacity, MEMPOOL_HUGEPAGES);
}

static const char *version(void)
{
    return MEMPOOL_BENCH_VERSION;
}

static void destroy(void *pool)
{
    mempool_destroy(pool);
}

static void *get(void *pool)
{
    return mempool_try_get(pool);
}

static void put(void *pool, void *block)
{
    mempool_put(pool, block);
}

static void *get_wait(void *pool)
{
    return mempool_get(pool);
}

static int get_bulk(void *pool, void **blocks, size_t n)
{
    return mempool_get_bulk(pool, blocks, n, 0);
}

static void put_bulk(void *pool, void *const *blocks, size_t n)
{
    mempool_put_bulk(pool, blocks, n);
}

/* The futex backend's calls go through syscall(3); the condition-variable
 * backend's through the C library's, where they are not counted. */
#ifndef BENCH_MEMPOOL_FUTEX
#define BENCH_MEMPOOL_FUTEX 0
#endif

#define MEMPOOL_ADAPTER(label, make)                                           \
    {                                                                          \
        .name = label, .version = version, .create = make, .destroy = destroy, \
        .get = get, .put = put, .get_wait = get_wait, .get_bulk = get_bulk,    \
        .put_bulk = put_bulk, .counts_syscalls = BENCH_MEMPOOL_FUTEX,          \
    }

static const struct bench_impl mempool_cached = MEMPOOL_ADAPTER("mempool", create_cached);
static const struct bench_impl mempool_uncached =
    MEMPOOL_ADAPTER("mempool-nocache", create_uncached);
static const struct bench_impl mempool_checked =
    MEMPOOL_ADAPTER("mempool-checked", create_checked);
/* Huge pages only tell in a pool larger than the TLB covers. */
static const struct bench_impl mempool_hugepages = {
    .name = "mempool-hugepages", .version = version, .create = create_hugepages,
    .destroy = destroy, .get = get, .put = put, .get_wait = get_wait, .get_bulk = get_bulk,
    .put_bulk = put_bulk, .counts_syscalls = BENCH_MEMPOOL_FUTEX, .only_in = "large",
};
BENCH_ADAPTER(mempool_cached)
BENCH_ADAPTER(mempool_hugepages)
BENCH_ADAPTER(mempool_uncached)
BENCH_ADAPTER(mempool_checked)
