/* SPDX-License-Identifier: MIT */
/* Generator mode, eager: make runs capacity times at create, indices follow
 * make order, a failing or repeating make unwinds exactly what was made,
 * destroy unmakes exactly the free blocks, unmake is optional. */
#include <stdbool.h>

#include "check.h"

#define MAX_MADE 64
#define BLOCK_BYTES 40

struct gen {
    size_t makes;           /* calls to make */
    size_t unmakes;         /* calls to unmake */
    size_t fail_at;         /* make call (1-based) that returns NULL; 0: none */
    size_t dup_at;          /* make call that returns an earlier block; 0: none */
    size_t dup_of;          /* ... this one: made[dup_of] */
    size_t made_count;      /* distinct blocks made */
    void *made[MAX_MADE];   /* in make order */
    int unmade[MAX_MADE];   /* unmake calls per made block */
    size_t stray_unmakes;   /* unmake of a pointer never made */
    size_t bad_arg;         /* a callback got another arg */
    size_t cancel_enabled;  /* a callback ran with cancellation enabled */
    bool use_static;        /* hand out static storage: nothing to free */
};

static unsigned char static_blocks[MAX_MADE][BLOCK_BYTES];

static void note_cancel_state(struct gen *g)
{
#if defined(_WIN32) /* Windows threads have no cancellation */
    (void)g;
#else
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    if (old != PTHREAD_CANCEL_DISABLE)
        g->cancel_enabled++;
    pthread_setcancelstate(old, &old);
#endif
}

static struct gen *current; /* the arg every callback must receive */

static void *gen_make(void *arg)
{
    struct gen *g = arg;
    if (g != current)
        current->bad_arg++;
    note_cancel_state(current);
    g = current;
    g->makes++;
    if (g->makes == g->fail_at)
        return NULL;
    if (g->makes == g->dup_at)
        return g->made[g->dup_of];
    REQUIRE(g->made_count < MAX_MADE);
    void *p = g->use_static ? static_blocks[g->made_count] : malloc(BLOCK_BYTES);
    REQUIRE(p != NULL);
    g->made[g->made_count++] = p;
    return p;
}

static void gen_unmake(void *block, void *arg)
{
    struct gen *g = arg;
    if (g != current)
        current->bad_arg++;
    note_cancel_state(current);
    g = current;
    g->unmakes++;
    for (size_t i = 0; i < g->made_count; i++) {
        if (g->made[i] == block) {
            /* Free only once so that a repeated unmake is counted, not a crash. */
            if (g->unmade[i]++ == 0 && !g->use_static)
                free(block);
            return;
        }
    }
    g->stray_unmakes++;
}

static mempool_config gen_config(struct gen *g, size_t capacity, unsigned flags)
{
    memset(g, 0, sizeof *g);
    current = g;
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.make = gen_make;
    cfg.unmake = gen_unmake;
    cfg.arg = g;
    cfg.flags = flags;
    return cfg;
}

static size_t made_index(const struct gen *g, const void *p)
{
    for (size_t i = 0; i < g->made_count; i++)
        if (g->made[i] == p)
            return i;
    return SIZE_MAX;
}

/* Releases blocks the pool did not unmake (they were out at destroy). */
static void free_not_unmade(struct gen *g)
{
    for (size_t i = 0; i < g->made_count; i++)
        if (g->unmade[i] == 0 && !g->use_static)
            free(g->made[i]);
}

static void test_eager_basic(unsigned flags)
{
    const size_t cap = 12;
    struct gen g;
    mempool_config cfg = gen_config(&g, cap, flags);
    int old;
    errno = 4242;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    CHECK_EQ(errno, 4242);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    CHECK_EQ(old, PTHREAD_CANCEL_ENABLE); /* restored after the callbacks */

    /* Exactly capacity makes, all before create returned. */
    CHECK_EQ(g.makes, cap);
    CHECK_EQ(g.made_count, cap);
    CHECK_EQ(g.unmakes, 0);
    CHECK_EQ(mempool_capacity(pool), cap);
    CHECK_EQ(mempool_available(pool), cap);
    CHECK_EQ(mempool_block_size(pool), 0);

    /* Indices follow make order. */
    for (size_t i = 0; i < cap; i++) {
        CHECK(mempool_block(pool, i) == g.made[i]);
        CHECK_EQ(mempool_index(pool, g.made[i]), i);
        CHECK_EQ(mempool_owns(pool, g.made[i]), 1);
    }
    errno = 0;
    CHECK(mempool_block(pool, cap) == NULL);
    CHECK_EQ(errno, EINVAL);

    /* Every get returns a made block, each once; contents are kept across
     * put and get. */
    unsigned char *blocks[12];
    bool seen[12] = { false };
    for (size_t i = 0; i < cap; i++) {
        blocks[i] = mempool_get(pool);
        REQUIRE(blocks[i] != NULL);
        size_t m = made_index(&g, blocks[i]);
        REQUIRE(m < cap);
        CHECK(!seen[m]);
        seen[m] = true;
        memset(blocks[i], (int)(m + 1), BLOCK_BYTES);
    }
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL);
    CHECK_EQ(errno, EAGAIN);
    for (size_t i = 0; i < cap; i++)
        CHECK_EQ(mempool_put(pool, blocks[i]), 0);
    for (size_t i = 0; i < cap; i++) {
        blocks[i] = mempool_try_get(pool); /* a lost block fails, not hangs */
        REQUIRE(blocks[i] != NULL);
        size_t m = made_index(&g, blocks[i]);
        REQUIRE(m < cap);
        size_t wrong = 0;
        for (size_t j = 0; j < BLOCK_BYTES; j++)
            wrong += blocks[i][j] != (unsigned char)(m + 1);
        CHECK_EQ(wrong, 0);
    }
    for (size_t i = 0; i < cap; i++)
        CHECK_EQ(mempool_put(pool, blocks[i]), 0);
    /* Gets and puts never make more. */
    CHECK_EQ(g.makes, cap);
    CHECK_EQ(g.unmakes, 0);

    mempool_destroy(pool);
    CHECK_EQ(g.unmakes, cap);
    for (size_t i = 0; i < cap; i++)
        CHECK_EQ(g.unmade[i], 1);
    CHECK_EQ(g.stray_unmakes, 0);
    CHECK_EQ(g.bad_arg, 0);
    CHECK_EQ(g.cancel_enabled, 0);
}

/* make returns NULL at call k: the k-1 blocks made so far are unmade once
 * each, create fails with ENOMEM and nothing more is made. */
static void test_make_fails_at_every_call(void)
{
    const size_t cap = 9;
    for (size_t k = 1; k <= cap; k++) {
        struct gen g;
        mempool_config cfg = gen_config(&g, cap, 0);
        g.fail_at = k;
        errno = 0;
        mempool *pool = mempool_create(&cfg);
        CHECK(pool == NULL);
        CHECK_EQ(errno, ENOMEM);
        mempool_destroy(pool);
        CHECK_EQ(g.makes, k);
        CHECK_EQ(g.made_count, k - 1);
        CHECK_EQ(g.unmakes, k - 1);
        for (size_t i = 0; i < g.made_count; i++)
            CHECK_EQ(g.unmade[i], 1);
        CHECK_EQ(g.stray_unmakes, 0);
        free_not_unmade(&g);
    }
}

/* make returns a pointer it already returned: ENOMEM, and each distinct
 * block is unmade exactly once (the repeated one is not unmade twice). */
static void test_make_repeats(void)
{
    const size_t cap = 7;
    for (size_t k = 2; k <= cap; k++) {
        for (size_t of = 0; of + 1 < k; of += k - 2 > 0 ? k - 2 : 1) {
            struct gen g;
            mempool_config cfg = gen_config(&g, cap, 0);
            g.dup_at = k;
            g.dup_of = of;
            errno = 0;
            mempool *pool = mempool_create(&cfg);
            CHECK(pool == NULL);
            CHECK_EQ(errno, ENOMEM);
            mempool_destroy(pool);
            CHECK(g.makes >= k && g.makes <= cap);
            for (size_t i = 0; i < g.made_count; i++)
                CHECK_EQ(g.unmade[i], 1);
            CHECK_EQ(g.unmakes, g.made_count);
            CHECK_EQ(g.stray_unmakes, 0);
            free_not_unmade(&g);
        }
    }
}

struct cycle_arg {
    mempool *pool;
    size_t n;
};

/* Takes n blocks and puts them back, then exits: the blocks may sit in
 * this thread's cache until it exits. */
static void *get_put_thread(void *p)
{
    struct cycle_arg *a = p;
    void *blocks[MAX_MADE];
    for (size_t i = 0; i < a->n; i++) {
        blocks[i] = mempool_get(a->pool);
        REQUIRE(blocks[i] != NULL);
    }
    for (size_t i = 0; i < a->n; i++)
        CHECK_EQ(mempool_put(a->pool, blocks[i]), 0);
    return NULL;
}

/* destroy unmakes the free blocks, wherever they were put back, and leaves
 * the blocks still out to the caller. */
static void test_destroy_unmakes_free_only(unsigned flags)
{
    const size_t cap = 10;
    struct gen g;
    mempool_config cfg = gen_config(&g, cap, flags);
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);

    /* Another thread cycles some blocks and exits. */
    struct cycle_arg a = { pool, 4 };
    pthread_t t = check_thread(get_put_thread, &a);
    pthread_join(t, NULL);

    void *out[3];
    for (size_t i = 0; i < 3; i++) {
        out[i] = mempool_get(pool);
        REQUIRE(out[i] != NULL);
    }
    /* Two more cycled by this thread: they may sit in its cache. */
    void *x = mempool_get(pool), *y = mempool_get(pool);
    REQUIRE(x != NULL && y != NULL);
    CHECK_EQ(mempool_put(pool, x), 0);
    CHECK_EQ(mempool_put(pool, y), 0);
    CHECK_EQ(mempool_available(pool), cap - 3);

    mempool_destroy(pool);
    CHECK_EQ(g.unmakes, cap - 3);
    for (size_t i = 0; i < cap; i++) {
        bool is_out = g.made[i] == out[0] || g.made[i] == out[1] || g.made[i] == out[2];
        CHECK_EQ(g.unmade[i], is_out ? 0 : 1);
    }
    CHECK_EQ(g.stray_unmakes, 0);
    /* The blocks that were out are still the caller's: usable, then freed. */
    for (size_t i = 0; i < 3; i++)
        memset(out[i], 0x11, BLOCK_BYTES);
    free_not_unmade(&g);
}

/* Without unmake, create, use, destroy and a failing create all work; the
 * blocks are static storage so nothing can leak. */
static void test_no_unmake(void)
{
    const size_t cap = 6;
    struct gen g;
    mempool_config cfg = gen_config(&g, cap, 0);
    g.use_static = true;
    cfg.unmake = NULL;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    CHECK_EQ(g.makes, cap);
    void *b = mempool_get(pool);
    REQUIRE(b != NULL);
    CHECK(made_index(&g, b) < cap);
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);

    cfg = gen_config(&g, cap, 0);
    g.use_static = true;
    g.fail_at = 4;
    cfg.unmake = NULL;
    errno = 0;
    CHECK(mempool_create(&cfg) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(g.makes, 4);
}

/* A caller that disabled cancellation keeps it disabled after create and
 * destroy. */
static void test_cancel_state_kept(void)
{
    struct gen g;
    mempool_config cfg = gen_config(&g, 3, 0);
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    mempool_destroy(pool);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    CHECK_EQ(old, PTHREAD_CANCEL_DISABLE);
    CHECK_EQ(g.unmakes, 3);
}

int main(void)
{
    test_eager_basic(0);
    test_eager_basic(MEMPOOL_NO_CACHE);
    test_make_fails_at_every_call();
    test_make_repeats();
    test_destroy_unmakes_free_only(0);
    test_destroy_unmakes_free_only(MEMPOOL_NO_CACHE);
    test_no_unmake();
    test_cancel_state_kept();
    CHECK_DONE();
}
