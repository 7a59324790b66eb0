/* SPDX-License-Identifier: MIT */
/* MEMPOOL_LAZY: blocks are made on first need, never more than capacity,
 * free blocks are reused first, non-waiting gets still make, a failing or
 * repeating make returns its slot, destroy unmakes only made free blocks. */
#include <stdatomic.h>
#include <stdbool.h>

#include "check.h"

#define MAX_MADE 64
#define BLOCK_BYTES 24
/* Bounds waits that a correct pool never needs, so a bug fails instead of
 * hanging. */
#define BOUND_NS (2 * 1000000000LL)

struct lazy {
    pthread_mutex_t lock;    /* make may run on several threads at once */
    pthread_cond_t cond;
    size_t makes;            /* calls to make */
    size_t unmakes;
    size_t fail_next;        /* this many next make calls return NULL */
    void *dup_next;          /* non-NULL: the next make returns this pointer */
    bool hold_failure;       /* the next failing make waits for release */
    bool held;               /* ... it is waiting now */
    bool release;
    size_t made_count;
    void *made[MAX_MADE];    /* in make order */
    int unmade[MAX_MADE];
    size_t stray_unmakes;
    size_t bad_arg;
    /* on_misuse */
    size_t misuse_calls;
    const char *misuse_what;
    const void *misuse_block;
};

static struct lazy *current;

static void *lazy_make(void *arg)
{
    struct lazy *g = current;
    void *p = NULL;
    pthread_mutex_lock(&g->lock);
    if (arg != g)
        g->bad_arg++;
    g->makes++;
    if (g->dup_next) {
        p = g->dup_next;
        g->dup_next = NULL;
    } else if (g->fail_next) {
        g->fail_next--;
        if (g->hold_failure) {
            g->hold_failure = false;
            g->held = true;
            pthread_cond_broadcast(&g->cond);
            while (!g->release)
                pthread_cond_wait(&g->cond, &g->lock);
        }
    } else {
        REQUIRE(g->made_count < MAX_MADE);
        p = malloc(BLOCK_BYTES);
        REQUIRE(p != NULL);
        g->made[g->made_count++] = p;
    }
    pthread_mutex_unlock(&g->lock);
    return p;
}

static void lazy_unmake(void *block, void *arg)
{
    struct lazy *g = current;
    pthread_mutex_lock(&g->lock);
    if (arg != g)
        g->bad_arg++;
    g->unmakes++;
    bool found = false;
    for (size_t i = 0; i < g->made_count && !found; i++) {
        if (g->made[i] == block) {
            found = true;
            if (g->unmade[i]++ == 0)
                free(block);
        }
    }
    if (!found)
        g->stray_unmakes++;
    pthread_mutex_unlock(&g->lock);
}

static void lazy_misuse(const char *what, const void *block, void *arg)
{
    struct lazy *g = current;
    if (arg != g)
        g->bad_arg++;
    g->misuse_calls++;
    g->misuse_what = what;
    g->misuse_block = block;
}

static mempool *lazy_pool(struct lazy *g, size_t capacity, unsigned flags)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    current = g;
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.make = lazy_make;
    cfg.unmake = lazy_unmake;
    cfg.on_misuse = lazy_misuse;
    cfg.arg = g;
    cfg.flags = MEMPOOL_LAZY | flags;
    errno = 4242;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    CHECK_EQ(errno, 4242);
    return pool;
}

/* Destroys the pool, then checks that exactly the made blocks not in
 * `out` were unmade, once each, and frees the ones left to the caller. */
static void destroy_and_check(mempool *pool, struct lazy *g, void *const *out,
                              size_t n_out)
{
    mempool_destroy(pool);
    CHECK_EQ(g->unmakes, g->made_count - n_out);
    for (size_t i = 0; i < g->made_count; i++) {
        bool is_out = false;
        for (size_t j = 0; j < n_out; j++)
            is_out |= g->made[i] == out[j];
        CHECK_EQ(g->unmade[i], is_out ? 0 : 1);
        if (is_out)
            free(g->made[i]);
    }
    CHECK_EQ(g->stray_unmakes, 0);
    CHECK_EQ(g->bad_arg, 0);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

static void expect_enoent(mempool *pool, size_t index, int line)
{
    errno = 0;
    void *b = mempool_block(pool, index);
    if (b != NULL || errno != ENOENT) {
        fprintf(stderr, "%s:%d: mempool_block(%zu): expected NULL/ENOENT, got %p/errno %d\n",
                __FILE__, line, index, b, errno);
        check_failures++;
    }
}
#define EXPECT_ENOENT(pool, index) expect_enoent((pool), (index), __LINE__)

static void test_lazy_basic(unsigned flags)
{
    const size_t cap = 5;
    struct lazy g;
    mempool *pool = lazy_pool(&g, cap, flags);

    /* Nothing made yet; every slot counts as available. */
    CHECK_EQ(g.makes, 0);
    CHECK_EQ(mempool_capacity(pool), cap);
    CHECK_EQ(mempool_available(pool), cap);
    CHECK_EQ(mempool_block_size(pool), 0);
    for (size_t i = 0; i < cap; i++)
        EXPECT_ENOENT(pool, i);
    errno = 0;
    CHECK(mempool_block(pool, cap) == NULL);
    CHECK_EQ(errno, EINVAL);

    /* The first get makes block 0. */
    void *a = mempool_get(pool);
    REQUIRE(a != NULL);
    CHECK_EQ(g.makes, 1);
    CHECK(a == g.made[0]);
    CHECK(mempool_block(pool, 0) == a);
    CHECK_EQ(mempool_index(pool, a), 0);
    EXPECT_ENOENT(pool, 1);
    CHECK_EQ(mempool_available(pool), cap - 1);

    /* A free block is reused before a new one is made. */
    memset(a, 0x5c, BLOCK_BYTES);
    CHECK_EQ(mempool_put(pool, a), 0);
    CHECK_EQ(mempool_available(pool), cap);
    void *a2 = mempool_get(pool);
    CHECK(a2 == a);
    CHECK_EQ(g.makes, 1);
    CHECK_EQ(((unsigned char *)a2)[BLOCK_BYTES - 1], 0x5c);

    /* Two more gets make blocks 1 and 2, in make order. */
    void *b = mempool_get(pool);
    void *c = mempool_get(pool);
    REQUIRE(b != NULL && c != NULL);
    CHECK_EQ(g.makes, 3);
    CHECK(mempool_block(pool, 1) == g.made[1]);
    CHECK(mempool_block(pool, 2) == g.made[2]);
    CHECK_EQ(mempool_available(pool), cap - 3);

    /* Put one back (it may sit in this thread's cache): the next get still
     * reuses it. */
    CHECK_EQ(mempool_put(pool, b), 0);
    void *b2 = mempool_get(pool);
    CHECK(b2 == b);
    CHECK_EQ(g.makes, 3);

    /* Non-waiting gets make when a slot is unmade ("no wait" means no
     * sleep). */
    errno = 4242;
    void *d = mempool_try_get(pool);
    CHECK(d != NULL);
    CHECK_EQ(g.makes, 4);
    void *e = mempool_get_timeout(pool, 0);
    CHECK(e != NULL);
    CHECK_EQ(g.makes, 5);
    CHECK_EQ(errno, 4242);
    CHECK_EQ(mempool_available(pool), 0);
    for (size_t i = 0; i < cap; i++) {
        CHECK(mempool_block(pool, i) == g.made[i]);
        CHECK_EQ(mempool_index(pool, g.made[i]), i);
    }

    /* All made and all out: no more makes, EAGAIN, then a short wait times
     * out. */
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL);
    CHECK_EQ(errno, EAGAIN);
    errno = 0;
    CHECK(mempool_get_timeout(pool, 0) == NULL);
    CHECK_EQ(errno, EAGAIN);
    int64_t start = check_now_ns();
    errno = 0;
    CHECK(mempool_get_timeout(pool, 5000000) == NULL);
    CHECK_EQ(errno, ETIMEDOUT);
    CHECK(check_now_ns() - start >= 5000000);
    CHECK_EQ(g.makes, cap);

    /* Destroy with a2 and d out: only the other three are unmade. */
    CHECK_EQ(mempool_put(pool, b2), 0);
    CHECK_EQ(mempool_put(pool, c), 0);
    CHECK_EQ(mempool_put(pool, e), 0);
    CHECK_EQ(mempool_available(pool), cap - 2);
    void *out[2] = { a2, d };
    destroy_and_check(pool, &g, out, 2);
}

/* Destroy of a lazy pool with unmade slots unmakes only what was made. */
static void test_lazy_destroy_partial(void)
{
    struct lazy g;
    mempool *pool = lazy_pool(&g, 8, 0);
    destroy_and_check(pool, &g, NULL, 0);
    CHECK_EQ(g.makes, 0);

    pool = lazy_pool(&g, 8, 0);
    void *x = mempool_get(pool), *y = mempool_get(pool), *z = mempool_get(pool);
    REQUIRE(x && y && z);
    CHECK_EQ(mempool_put(pool, y), 0);
    CHECK_EQ(mempool_available(pool), 6);
    void *out[2] = { x, z };
    destroy_and_check(pool, &g, out, 2);
    CHECK_EQ(g.makes, 3);
    CHECK_EQ(g.unmakes, 1);
}

/* A get whose make fails returns ENOMEM at once (whatever its timeout) and
 * returns its slot: the slot is available again and a later get makes. */
static void test_make_failure(void)
{
    const size_t cap = 3;
    struct lazy g;
    mempool *pool = lazy_pool(&g, cap, 0);

    g.fail_next = 1;
    errno = 0;
    CHECK(mempool_get(pool) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(g.makes, 1);
    CHECK_EQ(mempool_available(pool), cap);
    EXPECT_ENOENT(pool, 0);

    g.fail_next = 1;
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL);
    CHECK_EQ(errno, ENOMEM);
    g.fail_next = 1;
    errno = 0;
    CHECK(mempool_get_timeout(pool, 0) == NULL);
    CHECK_EQ(errno, ENOMEM);
    g.fail_next = 1;
    errno = 0;
    CHECK(mempool_get_timeout(pool, BOUND_NS) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(g.makes, 4);
    CHECK_EQ(mempool_available(pool), cap);
    CHECK_EQ(g.misuse_calls, 0); /* a NULL make is not misuse */

    /* The slot is usable again: the next successful make is index 0. */
    void *a = mempool_get_timeout(pool, BOUND_NS);
    REQUIRE(a != NULL);
    CHECK(mempool_block(pool, 0) == a);
    CHECK_EQ(mempool_available(pool), cap - 1);

    /* Failure on the last slot, then success on it. */
    void *b = mempool_get_timeout(pool, BOUND_NS);
    REQUIRE(b != NULL);
    g.fail_next = 1;
    errno = 0;
    CHECK(mempool_get_timeout(pool, 1000000) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(mempool_available(pool), 1);
    EXPECT_ENOENT(pool, 2);
    void *c = mempool_try_get(pool);
    REQUIRE(c != NULL);
    CHECK(mempool_block(pool, 2) == c);
    CHECK_EQ(g.made_count, 3);
    CHECK_EQ(mempool_available(pool), 0);

    CHECK_EQ(mempool_put(pool, a), 0);
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(mempool_put(pool, c), 0);
    destroy_and_check(pool, &g, NULL, 0);
    CHECK_EQ(g.unmakes, 3);
}

/* make returning a pointer already in the pool is a failure: ENOMEM,
 * reported to on_misuse, never unmade for it, the slot returned. */
static void test_make_repeats(void)
{
    const size_t cap = 3;
    struct lazy g;
    mempool *pool = lazy_pool(&g, cap, 0);

    void *a = mempool_get(pool);
    REQUIRE(a != NULL);
    g.dup_next = a;
    errno = 0;
    CHECK(mempool_get(pool) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(g.makes, 2);
    CHECK_EQ(g.misuse_calls, 1);
    CHECK(g.misuse_what != NULL);
    CHECK(g.misuse_block == a);
    CHECK_EQ(g.unmakes, 0);
    CHECK_EQ(mempool_available(pool), cap - 1);
    CHECK_EQ(mempool_index(pool, a), 0);
    EXPECT_ENOENT(pool, 1);

    /* The same through a non-waiting get. */
    g.dup_next = a;
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(g.misuse_calls, 2);
    CHECK_EQ(g.unmakes, 0);

    /* Its slot is free for a real block, then all slots fill normally. */
    void *b = mempool_get_timeout(pool, BOUND_NS);
    void *c = mempool_get_timeout(pool, BOUND_NS);
    REQUIRE(b != NULL && c != NULL);
    CHECK(b != a && c != a && b != c);
    CHECK(mempool_block(pool, 1) == b);
    CHECK(mempool_block(pool, 2) == c);
    CHECK_EQ(g.made_count, 3);

    /* Every block was made once and is unmade once, the repeated one
     * included. */
    CHECK_EQ(mempool_put(pool, a), 0);
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(mempool_put(pool, c), 0);
    CHECK_EQ(g.misuse_calls, 2);
    destroy_and_check(pool, &g, NULL, 0);
}

struct getter {
    mempool *pool;
    int64_t timeout_ns;
    void *block;
    int err;
    atomic_bool done;
    size_t bulk;            /* > 0: a bulk get of this many, into blocks[] */
    void *blocks[2];
};

static void *getter_thread(void *p)
{
    struct getter *gt = p;
    errno = 0;
    if (gt->bulk) {
        gt->err = mempool_get_bulk(gt->pool, gt->blocks, gt->bulk, gt->timeout_ns);
    } else {
        gt->block = mempool_get_timeout(gt->pool, gt->timeout_ns);
        gt->err = errno;
    }
    atomic_store(&gt->done, true);
    return NULL;
}

/* One slot left: thread A takes it and its make fails slowly; thread B,
 * meanwhile, finds no block and no slot and sleeps. A's failure returns
 * the slot, so B must wake and make a block for itself. A bulk B of two
 * then still needs one: it must sleep again at the head of the queue (a
 * bug there loses its place or its block) and take the next put. */
static void test_failed_make_wakes_waiter(bool bulk)
{
    struct lazy g;
    mempool *pool = lazy_pool(&g, 2, 0);
    void *first = mempool_get(pool);
    REQUIRE(first != NULL);

    g.fail_next = 1;
    g.hold_failure = true;
    struct getter ga = { .pool = pool, .timeout_ns = -1 };
    pthread_t ta = check_thread(getter_thread, &ga);
    pthread_mutex_lock(&g.lock);
    while (!g.held)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);

    /* The bound only keeps a lost wake-up from hanging the test. */
    struct getter gb = { .pool = pool, .timeout_ns = 5 * BOUND_NS, .bulk = bulk ? 2 : 0 };
    pthread_t tb = check_thread(getter_thread, &gb);
    check_sleep_ns(50000000); /* let B fall asleep */
    CHECK(!atomic_load(&gb.done)); /* no block, no slot: B must wait */

    pthread_mutex_lock(&g.lock);
    g.release = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);

    pthread_join(ta, NULL);
    CHECK(ga.block == NULL);
    CHECK_EQ(ga.err, ENOMEM);
    if (bulk) {
        check_sleep_ns(50000000);
        CHECK(!atomic_load(&gb.done)); /* one made, one to wait for */
        CHECK_EQ(mempool_put(pool, first), 0);
    }
    pthread_join(tb, NULL);
    CHECK_EQ(gb.err, 0);
    CHECK_EQ(g.makes, 3);
    CHECK_EQ(g.made_count, 2);
    if (bulk) {
        CHECK(gb.blocks[0] == g.made[1]);
        CHECK(gb.blocks[1] == first);
        CHECK_EQ(mempool_available(pool), 0);
        CHECK_EQ(mempool_put_bulk(pool, gb.blocks, 2), 0);
    } else {
        CHECK(gb.block == g.made[1]);
        CHECK_EQ(mempool_available(pool), 0);
        CHECK_EQ(mempool_put(pool, first), 0);
        if (gb.block)
            CHECK_EQ(mempool_put(pool, gb.block), 0);
    }
    destroy_and_check(pool, &g, NULL, 0);
}

struct churn {
    mempool *pool;
    int rounds;
};

/* Gets up to three blocks, puts them back, repeatedly. */
static void *churn_thread(void *p)
{
    struct churn *c = p;
    for (int r = 0; r < c->rounds; r++) {
        void *held[3];
        int n = 0;
        for (int i = 0; i < 3; i++) {
            held[n] = mempool_get_timeout(c->pool, 0);
            if (held[n])
                n++;
        }
        for (int i = 0; i < n; i++)
            CHECK_EQ(mempool_put(c->pool, held[i]), 0);
    }
    return NULL;
}

/* Several threads on a lazy pool: make is never called more than capacity
 * times in total, and every block is unmade once at the end. */
static void test_never_more_than_capacity(void)
{
    const size_t cap = 8;
    struct lazy g;
    mempool *pool = lazy_pool(&g, cap, 0);
    struct churn c = { pool, 2000 };
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        t[i] = check_thread(churn_thread, &c);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(g.makes <= cap);
    CHECK_EQ(g.makes, g.made_count);
    CHECK(g.made_count >= 1);
    CHECK_EQ(mempool_available(pool), cap);
    /* Concurrent makes may finish in any order, but the made blocks hold
     * the first made_count indices, one each. */
    bool seen[8] = { false };
    for (size_t i = 0; i < g.made_count; i++) {
        size_t idx = mempool_index(pool, g.made[i]);
        REQUIRE(idx < g.made_count);
        CHECK(!seen[idx]);
        seen[idx] = true;
        CHECK(mempool_block(pool, idx) == g.made[i]);
    }
    if (g.made_count < cap)
        EXPECT_ENOENT(pool, g.made_count);
    destroy_and_check(pool, &g, NULL, 0);
}

int main(void)
{
    test_lazy_basic(0);
    test_lazy_basic(MEMPOOL_NO_CACHE);
    test_lazy_destroy_partial();
    test_make_failure();
    test_make_repeats();
    test_failed_make_wakes_waiter(false);
    test_failed_make_wakes_waiter(true);
    test_never_more_than_capacity();
    CHECK_DONE();
}
