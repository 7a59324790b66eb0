/* SPDX-License-Identifier: MIT */
/* Arena mode: alignment, zero fill, init, blocks that do not overlap,
 * contents kept between put and get, the size queries, exhaustion, and
 * errno left alone by calls that succeed. */
#include <stdalign.h>
#include <stdbool.h>

#include "check.h"

static mempool *arena_pool(size_t capacity, size_t block_size, size_t alignment,
                           unsigned flags)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.block_size = block_size;
    cfg.alignment = alignment;
    cfg.flags = flags;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    return pool;
}

/* check_get_all for blocks used as bytes. */
static void get_all(mempool *pool, unsigned char **blocks)
{
    size_t cap = mempool_capacity(pool);
    void **taken = calloc(cap, sizeof *taken);
    REQUIRE(taken != NULL);
    check_get_all(pool, taken);
    for (size_t i = 0; i < cap; i++)
        blocks[i] = taken[i];
    free(taken);
}

static void put_all(mempool *pool, unsigned char **blocks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(mempool_put(pool, blocks[i]), 0);
}

/* A byte pattern that differs between neighbouring blocks and along a block. */
static unsigned char pattern(size_t index, size_t offset)
{
    return (unsigned char)(index * 131 + offset * 7 + 1);
}

static void test_alignment(void)
{
    const size_t alignments[] = { 0, 1, 2, 4, 8, 64, 4096, 8192 };
    const size_t sizes[] = { 1, 3, 24, 100, 4097 };
    for (size_t a = 0; a < sizeof alignments / sizeof alignments[0]; a++) {
        size_t want = alignments[a] ? alignments[a] : alignof(max_align_t);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            const size_t cap = 9;
            mempool *pool = arena_pool(cap, sizes[s], alignments[a], 0);
            unsigned char *blocks[9];
            for (size_t i = 0; i < cap; i++) {
                unsigned char *b = mempool_block(pool, i);
                REQUIRE(b != NULL);
                CHECK_EQ((uintptr_t)b % want, 0);
            }
            get_all(pool, blocks);
            for (size_t i = 0; i < cap; i++)
                CHECK_EQ((uintptr_t)blocks[i] % want, 0);
            put_all(pool, blocks, cap);
            mempool_destroy(pool);
        }
    }
}

/* Without init every byte of every block is zero at creation. */
static void test_zero_filled(void)
{
    const size_t cap = 50, size = 1000;
    mempool *pool = arena_pool(cap, size, 0, 0);
    unsigned char *blocks[50];
    get_all(pool, blocks);
    size_t nonzero = 0;
    for (size_t i = 0; i < cap; i++)
        for (size_t j = 0; j < size; j++)
            nonzero += blocks[i][j] != 0;
    CHECK_EQ(nonzero, 0);
    put_all(pool, blocks, cap);
    mempool_destroy(pool);
}

struct init_ctx {
    mempool *pool;       /* NULL while create runs */
    size_t calls;
    size_t block_size;
    size_t bad_arg;
    size_t cancel_enabled; /* init ran with cancellation enabled */
    unsigned char *blocks[64];
};

static void init_block(void *block, void *arg)
{
    struct init_ctx *ctx = arg;
#if !defined(_WIN32) /* Windows threads have no cancellation */
    int old;
    /* The pool disables cancellation around callbacks. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    if (old != PTHREAD_CANCEL_DISABLE)
        ctx->cancel_enabled++;
    pthread_setcancelstate(old, &old);
#endif
    if (ctx->calls < 64)
        ctx->blocks[ctx->calls] = block;
    ctx->calls++;
    memset(block, 0xc3, ctx->block_size);
}

static void init_counting(void *block, void *arg)
{
    (void)block;
    ((struct init_ctx *)arg)->calls++;
}

/* init runs exactly once per block, at creation, with the configured arg,
 * and its work is what the blocks hold afterwards. */
static void test_init(void)
{
    const size_t cap = 40, size = 56;
    struct init_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.block_size = size;

    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = cap;
    cfg.block_size = size;
    cfg.init = init_block;
    cfg.arg = &ctx;
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    /* The caller's cancellation state is restored. */
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    CHECK_EQ(old, PTHREAD_CANCEL_ENABLE);
    CHECK_EQ(ctx.cancel_enabled, 0);
    CHECK_EQ(ctx.calls, cap);

    /* Every block was passed exactly once. */
    bool seen[40] = { false };
    for (size_t i = 0; i < cap && i < 64; i++) {
        size_t idx = mempool_index(pool, ctx.blocks[i]);
        REQUIRE(idx < cap);
        CHECK(!seen[idx]);
        seen[idx] = true;
    }

    unsigned char *blocks[40];
    get_all(pool, blocks);
    size_t wrong = 0;
    for (size_t i = 0; i < cap; i++)
        for (size_t j = 0; j < size; j++)
            wrong += blocks[i][j] != 0xc3;
    CHECK_EQ(wrong, 0);
    put_all(pool, blocks, cap);
    get_all(pool, blocks);
    put_all(pool, blocks, cap);
    /* Gets and puts never run init again. */
    CHECK_EQ(ctx.calls, cap);
    mempool_destroy(pool);
    CHECK_EQ(ctx.calls, cap);

    /* A caller that disabled cancellation keeps it disabled. */
    struct init_ctx ctx2;
    memset(&ctx2, 0, sizeof ctx2);
    cfg.init = init_counting;
    cfg.arg = &ctx2;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    CHECK_EQ(old, PTHREAD_CANCEL_DISABLE);
    CHECK_EQ(ctx2.calls, cap);
    mempool_destroy(pool);
}

/* Every block is block_size bytes of its own: a distinct pattern written to
 * each survives writing all the others. Then the pool must not touch free
 * blocks: the patterns survive put and get again. */
static void test_no_overlap_and_contents_kept(size_t cap, size_t size,
                                              size_t alignment, unsigned flags)
{
    mempool *pool = arena_pool(cap, size, alignment, flags);
    unsigned char **blocks = calloc(cap, sizeof *blocks);
    REQUIRE(blocks != NULL);
    get_all(pool, blocks);
    for (size_t i = 0; i < cap; i++) {
        size_t idx = mempool_index(pool, blocks[i]);
        for (size_t j = 0; j < size; j++)
            blocks[i][j] = pattern(idx, j);
    }
    size_t wrong = 0;
    for (size_t i = 0; i < cap; i++) {
        size_t idx = mempool_index(pool, blocks[i]);
        for (size_t j = 0; j < size; j++)
            wrong += blocks[i][j] != pattern(idx, j);
    }
    CHECK_EQ(wrong, 0);

    /* Round trip through the pool, twice, in different orders. */
    put_all(pool, blocks, cap);
    CHECK_EQ(mempool_available(pool), cap);
    get_all(pool, blocks);
    for (size_t i = cap; i-- > 0;)
        CHECK_EQ(mempool_put(pool, blocks[i]), 0);
    mempool_flush(pool);
    get_all(pool, blocks);
    wrong = 0;
    for (size_t i = 0; i < cap; i++) {
        size_t idx = mempool_index(pool, blocks[i]);
        for (size_t j = 0; j < size; j++)
            wrong += blocks[i][j] != pattern(idx, j);
    }
    CHECK_EQ(wrong, 0);
    put_all(pool, blocks, cap);
    free(blocks);
    mempool_destroy(pool);
}

/* Available, capacity and block_size while blocks go out and come back;
 * exhaustion gives EAGAIN without waiting. */
static void test_queries_and_exhaustion(unsigned flags)
{
    const size_t cap = 17, size = 33;
    mempool *pool = arena_pool(cap, size, 0, flags);
    unsigned char *blocks[17];

    CHECK_EQ(mempool_capacity(pool), cap);
    CHECK_EQ(mempool_block_size(pool), size);
    CHECK_EQ(mempool_available(pool), cap);
    for (size_t i = 0; i < cap; i++) {
        blocks[i] = mempool_get(pool);
        REQUIRE(blocks[i] != NULL);
        CHECK_EQ(mempool_available(pool), cap - 1 - i);
    }
    CHECK_EQ(mempool_capacity(pool), cap);

    errno = 0;
    CHECK(mempool_try_get(pool) == NULL);
    CHECK_EQ(errno, EAGAIN);
    errno = 0;
    CHECK(mempool_get_timeout(pool, 0) == NULL);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(mempool_available(pool), 0);

    /* One block back: exactly that one comes out again. */
    CHECK_EQ(mempool_put(pool, blocks[5]), 0);
    CHECK_EQ(mempool_available(pool), 1);
    unsigned char *again = mempool_try_get(pool);
    CHECK(again == blocks[5]);
    CHECK_EQ(mempool_available(pool), 0);
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL);
    CHECK_EQ(errno, EAGAIN);

    for (size_t i = 0; i < cap; i++) {
        CHECK_EQ(mempool_put(pool, blocks[i]), 0);
        CHECK_EQ(mempool_available(pool), i + 1);
    }
    mempool_flush(pool);
    CHECK_EQ(mempool_available(pool), cap);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_destroy(pool);
}

/* No successful call changes errno. */
static void test_errno_kept(void)
{
    errno = 4242;
    mempool *pool = arena_pool(4, 8, 64, 0);
    CHECK_EQ(errno, 4242);

    void *a = mempool_get(pool);
    CHECK(a != NULL);
    void *b = mempool_try_get(pool);
    CHECK(b != NULL);
    void *c = mempool_get_timeout(pool, 0);
    CHECK(c != NULL);
    void *d = mempool_get_timeout(pool, 1000000000);
    CHECK(d != NULL);
    CHECK_EQ(errno, 4242);

    CHECK_EQ(mempool_capacity(pool), 4);
    CHECK_EQ(mempool_available(pool), 0);
    CHECK_EQ(mempool_block_size(pool), 8);
    CHECK_EQ(mempool_owns(pool, a), 1);
    CHECK(mempool_index(pool, a) < 4);
    CHECK(mempool_block(pool, 3) != NULL);
    CHECK_EQ(mempool_put(pool, a), 0);
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(mempool_put(pool, c), 0);
    CHECK_EQ(mempool_put(pool, d), 0);
    mempool_flush(pool);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    void *e = mempool_get_timeout(pool, -1);
    CHECK(e != NULL);
    CHECK_EQ(mempool_put(pool, e), 0);
    CHECK_EQ(errno, 4242);
    mempool_destroy(pool);
    CHECK_EQ(errno, 4242);
}

/* Destroying a pool that still holds every block, or has blocks out, is
 * fine in arena mode (the blocks out become invalid). */
static void test_destroy_with_blocks_out(void)
{
    mempool *pool = arena_pool(8, 64, 0, 0);
    void *a = mempool_get(pool);
    void *b = mempool_get(pool);
    CHECK(a != NULL && b != NULL && a != b);
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);
}

int main(void)
{
    test_alignment();
    test_zero_filled();
    test_init();
    test_no_overlap_and_contents_kept(1, 1, 0, 0);
    test_no_overlap_and_contents_kept(37, 1, 1, 0);
    test_no_overlap_and_contents_kept(37, 24, 8, 0);
    test_no_overlap_and_contents_kept(64, 100, 0, 0);
    test_no_overlap_and_contents_kept(64, 100, 0, MEMPOOL_NO_CACHE);
    test_no_overlap_and_contents_kept(20, 4096, 4096, 0);
    test_no_overlap_and_contents_kept(9, 5000, 8192, 0);
    test_no_overlap_and_contents_kept(300, 7, 4, 0);
    test_queries_and_exhaustion(0);
    test_queries_and_exhaustion(MEMPOOL_NO_CACHE);
    test_errno_kept();
    test_destroy_with_blocks_out();
    CHECK_DONE();
}
