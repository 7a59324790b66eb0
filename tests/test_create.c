/* SPDX-License-Identifier: MIT */
/* mempool_create and mempool_destroy: every configuration the contract
 * refuses (EINVAL, EOVERFLOW, ENOMEM), errno conventions, the largest
 * capacity, and what every function does with a NULL pool. */
#include <limits.h>
#include <stdalign.h>

#include <stddef.h>

#include "check.h"

/* An allocation far beyond any address space must fail with ENOMEM, not
 * abort: under AddressSanitizer that needs this option. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static void *make_malloc(void *arg)
{
    (void)arg;
    return malloc(16);
}

static void unmake_free(void *block, void *arg)
{
    (void)arg;
    free(block);
}

static void init_nothing(void *block, void *arg)
{
    (void)block;
    (void)arg;
}

static mempool_config arena_config(size_t capacity, size_t block_size)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.block_size = block_size;
    return cfg;
}

static mempool_config generator_config(size_t capacity)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.make = make_malloc;
    cfg.unmake = unmake_free;
    return cfg;
}

/* create must return NULL with errno == want; on success (a bug) the pool is
 * destroyed so the test does not leak. */
static void expect_refused(const mempool_config *cfg, int want, int line)
{
    errno = 0;
    mempool *pool = mempool_create(cfg);
    int err = errno;
    if (pool != NULL || err != want) {
        fprintf(stderr, "%s:%d: create: expected NULL/errno %d, got %p/errno %d\n",
                __FILE__, line, want, (void *)pool, err);
        check_failures++;
    }
    mempool_destroy(pool);
}
#define EXPECT_REFUSED(cfg, want) expect_refused(&(cfg), (want), __LINE__)

/* create must succeed and leave errno untouched. */
static void expect_created(const mempool_config *cfg, int line)
{
    errno = 4242;
    mempool *pool = mempool_create(cfg);
    if (pool == NULL || errno != 4242) {
        fprintf(stderr, "%s:%d: create: expected a pool with errno kept, got %p/errno %d\n",
                __FILE__, line, (void *)pool, errno);
        check_failures++;
    }
    mempool_destroy(pool);
}
#define EXPECT_CREATED(cfg) expect_created(&(cfg), __LINE__)

static void test_einval(void)
{
    mempool_config cfg;

    errno = 0;
    CHECK(mempool_create(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);

    /* Capacity bounds, both modes. */
    cfg = arena_config(0, 8);
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = arena_config(MEMPOOL_CAPACITY_MAX + 1, 8);
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = arena_config(SIZE_MAX, 8);
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = generator_config(0);
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = generator_config(MEMPOOL_CAPACITY_MAX + 1);
    EXPECT_REFUSED(cfg, EINVAL);

    /* Alignment not a power of two. */
    const size_t bad_alignments[] = { 3, 6, 24, 100, 4097, SIZE_MAX,
                                      ((size_t)1 << 63) + 1 };
    for (size_t i = 0; i < sizeof bad_alignments / sizeof bad_alignments[0]; i++) {
        cfg = arena_config(4, 8);
        cfg.alignment = bad_alignments[i];
        EXPECT_REFUSED(cfg, EINVAL);
    }

    /* Neither mode, or both. */
    cfg = arena_config(4, 0);
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = arena_config(4, 0);
    cfg.unmake = unmake_free; /* a generator field alone is not a mode */
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = arena_config(4, 0);
    cfg.init = init_nothing;
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = generator_config(4);
    cfg.block_size = 16;
    EXPECT_REFUSED(cfg, EINVAL);

    /* A field of the other mode. */
    cfg = generator_config(4);
    cfg.alignment = 64;
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = generator_config(4);
    cfg.init = init_nothing;
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = arena_config(4, 16);
    cfg.unmake = unmake_free;
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = arena_config(4, 16);
    cfg.flags = MEMPOOL_LAZY;
    EXPECT_REFUSED(cfg, EINVAL);

    /* No cache together with a cache size. */
    cfg = arena_config(4, 16);
    cfg.flags = MEMPOOL_NO_CACHE;
    cfg.cache_size = 8;
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = generator_config(4);
    cfg.flags = MEMPOOL_NO_CACHE | MEMPOOL_LAZY;
    cfg.cache_size = 1;
    EXPECT_REFUSED(cfg, EINVAL);

    /* Unknown flag bits: all bits set contains some unknown one whatever
     * flags exist; the top bit alone is unknown. */
    cfg = arena_config(4, 16);
    cfg.flags = ~0u;
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = arena_config(4, 16);
    cfg.flags = 1u << 31;
    EXPECT_REFUSED(cfg, EINVAL);
    cfg = generator_config(4);
    cfg.flags = MEMPOOL_LAZY | (1u << 31);
    EXPECT_REFUSED(cfg, EINVAL);

    /* The words 0.1 reserved (and required to be zero) hold the placement
     * fields: the struct keeps 0.1's size, and a nonzero one that 0.1 would
     * refuse is refused here too unless it is used as documented. */
    CHECK_EQ(sizeof(mempool_config),
             offsetof(mempool_config, on_misuse) + sizeof(void (*)(void)) + 4 * sizeof(uint64_t));
    CHECK_EQ(offsetof(mempool_config, memory),
             offsetof(mempool_config, on_misuse) + sizeof(void (*)(void)));
    for (int generator = 0; generator < 2; generator++) {
        cfg = generator ? generator_config(4) : arena_config(4, 16);
        cfg.memory_size = 4096; /* a size without a region */
        EXPECT_REFUSED(cfg, EINVAL);
        cfg = generator ? generator_config(4) : arena_config(4, 16);
        cfg.numa_node = 1; /* a node without MEMPOOL_NUMA */
        EXPECT_REFUSED(cfg, EINVAL);
        cfg.numa_node = -1;
        EXPECT_REFUSED(cfg, EINVAL);
    }
}

static void test_eoverflow(void)
{
    const size_t pmax = (size_t)PTRDIFF_MAX;
    mempool_config cfg;

    /* Rounding the stride up wraps size_t. */
    cfg = arena_config(1, SIZE_MAX);
    EXPECT_REFUSED(cfg, EOVERFLOW);
    /* The rounded stride is PTRDIFF_MAX + 1. */
    cfg = arena_config(1, pmax);
    EXPECT_REFUSED(cfg, EOVERFLOW);
    /* The stride fits, the arena of two blocks does not. */
    cfg = arena_config(2, pmax / 2 + 64);
    EXPECT_REFUSED(cfg, EOVERFLOW);
    /* The arena fits, the arena and the pool's side arrays together do not. */
    cfg = arena_config(1, pmax - 256);
    EXPECT_REFUSED(cfg, EOVERFLOW);
    /* The largest capacity times a moderate stride. */
    cfg = arena_config(MEMPOOL_CAPACITY_MAX, pmax / MEMPOOL_CAPACITY_MAX + 4096);
    EXPECT_REFUSED(cfg, EOVERFLOW);
    /* capacity * stride is exactly 2^64: it wraps to zero in size_t. */
    cfg = arena_config(MEMPOOL_CAPACITY_MAX, (size_t)1 << 40);
    EXPECT_REFUSED(cfg, EOVERFLOW);
    cfg = arena_config(16, 1);
    cfg.alignment = (size_t)1 << 60;
    EXPECT_REFUSED(cfg, EOVERFLOW);
    /* A huge alignment makes even a one-byte block's stride too large. */
    cfg = arena_config(1, 1);
    cfg.alignment = (size_t)1 << 63;
    EXPECT_REFUSED(cfg, EOVERFLOW);
    cfg = arena_config(2, 1);
    cfg.alignment = (size_t)1 << 62;
    EXPECT_REFUSED(cfg, EOVERFLOW);
}

static void test_enomem(void)
{
    /* 2^60 bytes fit in ptrdiff_t but in no address space: the allocation
     * itself fails. */
    mempool_config cfg = arena_config((size_t)1 << 20, 1);
    cfg.alignment = (size_t)1 << 40;
    EXPECT_REFUSED(cfg, ENOMEM);
}

static void test_valid(void)
{
    mempool_config cfg;

    cfg = arena_config(1, 1);
    EXPECT_CREATED(cfg);
    cfg = arena_config(3, 24);
    cfg.alignment = 8;
    cfg.init = init_nothing;
    cfg.arg = &cfg;
    EXPECT_CREATED(cfg);
    cfg = arena_config(4, 16);
    cfg.flags = MEMPOOL_NO_CACHE;
    EXPECT_CREATED(cfg);
    /* A cache size larger than useful is clamped, not refused. */
    cfg = arena_config(4, 16);
    cfg.cache_size = UINT_MAX;
    EXPECT_CREATED(cfg);
    cfg = generator_config(5);
    EXPECT_CREATED(cfg);
    cfg = generator_config(5);
    cfg.flags = MEMPOOL_LAZY | MEMPOOL_NO_CACHE;
    EXPECT_CREATED(cfg);
    cfg = generator_config(5);
    cfg.flags = MEMPOOL_LAZY;
    cfg.cache_size = UINT_MAX;
    EXPECT_CREATED(cfg);
    /* Lazy generator pools accept the largest capacity too: nothing is
     * made at creation. */
    cfg = generator_config(MEMPOOL_CAPACITY_MAX);
    cfg.flags = MEMPOOL_LAZY;
    EXPECT_CREATED(cfg);
}

/* The largest capacity in arena mode with a one-byte block: the arena is
 * committed lazily, so this is quick. */
static void test_capacity_max(void)
{
    mempool_config cfg = arena_config(MEMPOOL_CAPACITY_MAX, 1);
    int64_t start = check_now_ns();
    errno = 4242;
    mempool *pool = mempool_create(&cfg);
    CHECK_EQ(errno, 4242);
    REQUIRE(pool != NULL);
    CHECK_EQ(mempool_capacity(pool), MEMPOOL_CAPACITY_MAX);
    CHECK_EQ(mempool_available(pool), MEMPOOL_CAPACITY_MAX);
    CHECK_EQ(mempool_block_size(pool), 1);

    unsigned char *first = mempool_block(pool, 0);
    unsigned char *last = mempool_block(pool, MEMPOOL_CAPACITY_MAX - 1);
    REQUIRE(first != NULL && last != NULL);
    CHECK(last > first);
    CHECK_EQ(mempool_index(pool, last), MEMPOOL_CAPACITY_MAX - 1);
    CHECK_EQ(mempool_owns(pool, last), 1);
    unsigned char *b = mempool_get(pool);
    REQUIRE(b != NULL);
    *b = 0x5a; /* blocks are real memory (a free one must not be touched) */
    CHECK(mempool_owns(pool, b));
    CHECK_EQ(mempool_available(pool), MEMPOOL_CAPACITY_MAX - 1);
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(mempool_available(pool), MEMPOOL_CAPACITY_MAX);
    mempool_destroy(pool);

    /* Slow tools (sanitizers, valgrind) run with a lower scale. */
    double scale = check_scale();
    double limit_s = 5.0 / (scale < 1.0 ? scale : 1.0);
    double took_s = (double)(check_now_ns() - start) / 1e9;
    if (took_s > limit_s)
        fprintf(stderr, "capacity max: create+destroy took %.2f s\n", took_s);
    CHECK(took_s <= limit_s);
}

/* Every function with a NULL pool: the documented value, errno set only by
 * pointer-returning ones. */
static void test_null_pool(void)
{
    int dummy;
    void *blocks[2] = { &dummy, &dummy };

    errno = 4242;
    mempool_destroy(NULL);
    mempool_close(NULL);
    mempool_flush(NULL);
    CHECK_EQ(errno, 4242);

    errno = 0;
    CHECK(mempool_get(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mempool_get_timeout(NULL, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mempool_get_timeout(NULL, -1) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mempool_get_timeout(NULL, 1000000) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mempool_try_get(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mempool_block(NULL, 0) == NULL);
    CHECK_EQ(errno, EINVAL);

    errno = 4242;
    CHECK_EQ(mempool_put(NULL, &dummy), EINVAL);
    CHECK_EQ(mempool_put(NULL, NULL), EINVAL);
    CHECK_EQ(mempool_get_bulk(NULL, blocks, 2, 0), EINVAL);
    /* The NULL pool check comes before n == 0. */
    CHECK_EQ(mempool_get_bulk(NULL, blocks, 0, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(NULL, NULL, 0, 0), EINVAL);
    CHECK_EQ(mempool_put_bulk(NULL, blocks, 1), EINVAL);
    CHECK_EQ(mempool_drain(NULL, 0), EINVAL);
    CHECK_EQ(mempool_drain(NULL, -1), EINVAL);
    CHECK_EQ(mempool_capacity(NULL), 0);
    CHECK_EQ(mempool_available(NULL), 0);
    CHECK_EQ(mempool_block_size(NULL), 0);
    CHECK_EQ(mempool_owns(NULL, &dummy), 0);
    CHECK_EQ(mempool_owns(NULL, NULL), 0);
    CHECK(mempool_index(NULL, &dummy) == SIZE_MAX);
    CHECK(mempool_index(NULL, NULL) == SIZE_MAX);
    CHECK_EQ(errno, 4242);
}

/* A configuration is read, not kept: create must not depend on it after
 * returning, and must not write to it. */
static void test_config_not_kept(void)
{
    mempool_config cfg = arena_config(3, 40);
    mempool_config copy = cfg;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    CHECK(memcmp(&cfg, &copy, sizeof cfg) == 0);
    memset(&cfg, 0xff, sizeof cfg);
    CHECK_EQ(mempool_capacity(pool), 3);
    CHECK_EQ(mempool_block_size(pool), 40);
    void *b = mempool_get(pool);
    CHECK(b != NULL);
    CHECK_EQ(((uintptr_t)b) % alignof(max_align_t), 0);
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);
}

int main(void)
{
    test_einval();
    test_eoverflow();
    test_enomem();
    test_valid();
    test_capacity_max();
    test_null_pool();
    test_config_not_kept();
    CHECK_DONE();
}
