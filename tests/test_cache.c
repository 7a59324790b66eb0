/* SPDX-License-Identifier: MIT */
/* Per-thread caches: exact capacity with no stranded blocks, no starvation,
 * thread exit, and lifetimes in every order. */
#include <stdatomic.h>
#include <stdbool.h>

#include "check.h"

#define CAP 256
#define CACHE 32
#define SECOND 1000000000LL

static mempool *cached_pool(size_t capacity, unsigned cache_size)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.block_size = 64;
    cfg.cache_size = cache_size;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    return pool;
}

/* A thread that takes `count` blocks, puts them back (so they land in its
 * cache), signals, then idles until told to go, without calling the pool. */
struct idler {
    mempool *pool;
    size_t count;
    atomic_int parked;
    atomic_int go;
};

static void *idler_main(void *arg)
{
    struct idler *it = arg;
    void **held = calloc(it->count, sizeof *held);
    REQUIRE(held != NULL);
    for (size_t i = 0; i < it->count; i++)
        REQUIRE((held[i] = mempool_get(it->pool)) != NULL);
    for (size_t i = 0; i < it->count; i++)
        CHECK_EQ(mempool_put(it->pool, held[i]), 0);
    free(held);
    atomic_store(&it->parked, 1);
    while (!atomic_load(&it->go))
        check_sleep_ns(1000000);
    return NULL;
}

/* Blocks parked in idle threads' caches are still available and are taken
 * by a get that would otherwise wait: with a timeout, with try_get, in bulk. */
static void test_idle_caches(int idlers, int how)
{
    mempool *pool = cached_pool(CAP, CACHE);
    struct idler it[4];
    pthread_t t[4];
    for (int i = 0; i < idlers; i++) {
        it[i] = (struct idler){ .pool = pool, .count = CAP / (size_t)idlers };
        atomic_init(&it[i].parked, 0);
        atomic_init(&it[i].go, 0);
        t[i] = check_thread(idler_main, &it[i]);
        while (!atomic_load(&it[i].parked))
            check_sleep_ns(1000000);
    }
    CHECK_EQ(mempool_available(pool), CAP);
    void *all[CAP];
    if (how == 2) {
        CHECK_EQ(mempool_get_bulk(pool, all, CAP, SECOND), 0);
    } else {
        for (size_t i = 0; i < CAP; i++) {
            all[i] = how == 0 ? mempool_get_timeout(pool, SECOND) : mempool_try_get(pool);
            REQUIRE(all[i] != NULL);
        }
    }
    CHECK_EQ(mempool_available(pool), 0);
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL && errno == EAGAIN);
    /* Every block exactly once. */
    for (size_t i = 0; i < CAP; i++)
        for (size_t j = i + 1; j < CAP; j++)
            CHECK(all[i] != all[j]);
    CHECK_EQ(mempool_put_bulk(pool, all, CAP), 0);
    CHECK_EQ(mempool_available(pool), CAP);
    for (int i = 0; i < idlers; i++) {
        atomic_store(&it[i].go, 1);
        pthread_join(t[i], NULL);
    }
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_destroy(pool);
}

/* A thread that keeps getting and putting the one free block (which lives
 * in its cache) cannot starve a waiter: each timed get is served. */
struct churner {
    mempool *pool;
    atomic_int stop;
    atomic_long rounds;
};

static void *churner_main(void *arg)
{
    struct churner *ch = arg;
    while (!atomic_load(&ch->stop)) {
        void *b = mempool_get_timeout(ch->pool, SECOND / 10);
        if (b) {
            CHECK_EQ(mempool_put(ch->pool, b), 0);
            atomic_fetch_add(&ch->rounds, 1);
        }
    }
    return NULL;
}

static void test_no_starvation(void)
{
    enum { SMALL = 64 };
    mempool *pool = cached_pool(SMALL, 16);
    void *held[SMALL];
    for (size_t i = 0; i < SMALL - 1; i++)
        REQUIRE((held[i] = mempool_get(pool)) != NULL);
    struct churner ch = { .pool = pool };
    atomic_init(&ch.stop, 0);
    atomic_init(&ch.rounds, 0);
    pthread_t t = check_thread(churner_main, &ch);
    while (atomic_load(&ch.rounds) < 100)
        check_sleep_ns(100000);
    int rounds = (int)(200 * check_scale());
    for (int i = 0; i < rounds; i++) {
        void *b = mempool_get_timeout(pool, 5 * SECOND);
        CHECK(b != NULL);
        if (b)
            CHECK_EQ(mempool_put(pool, b), 0);
    }
    atomic_store(&ch.stop, 1);
    pthread_join(t, NULL);
    CHECK_EQ(mempool_put_bulk(pool, held, SMALL - 1), 0);
    CHECK_EQ(mempool_available(pool), SMALL);
    mempool_destroy(pool);
}

/* Blocks cached by a thread go back to the pool when it exits. */
static void *take_and_put(void *arg)
{
    mempool *pool = arg;
    void *b[8];
    for (int i = 0; i < 8; i++)
        REQUIRE((b[i] = mempool_get(pool)) != NULL);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(mempool_put(pool, b[i]), 0);
    return NULL;
}

static void test_thread_exit(void)
{
    mempool *pool = cached_pool(CAP, CACHE);
    for (int round = 0; round < 20; round++) {
        pthread_t t = check_thread(take_and_put, pool);
        pthread_join(t, NULL);
    }
    /* Nothing cached anywhere now: all of it is in the shared stack, so a
     * bulk get of everything needs no reclaim and cannot fail. */
    void *all[CAP];
    CHECK_EQ(mempool_get_bulk(pool, all, CAP, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, all, CAP), 0);
    mempool_destroy(pool);
}

/* Destroy while threads that used the pool are alive, threads exiting after
 * the pool is gone, and new pools (possibly at the same address and slot)
 * meeting the old caches: none of it may touch freed memory or mix pools. */
struct lifetime {
    mempool *_Atomic pool;
    atomic_int phase;
    atomic_int done;
};

static void *lifetime_main(void *arg)
{
    struct lifetime *lt = arg;
    for (int phase = 1; phase <= 3; phase++) {
        while (atomic_load(&lt->phase) < phase)
            check_sleep_ns(100000);
        mempool *pool = atomic_load(&lt->pool);
        void *b = mempool_get(pool);
        REQUIRE(b != NULL);
        CHECK_EQ(mempool_put(pool, b), 0);
        atomic_fetch_add(&lt->done, 1);
    }
    return NULL;
}

static void test_lifetimes(void)
{
    enum { THREADS = 3 };
    struct lifetime lt;
    atomic_init(&lt.phase, 0);
    atomic_init(&lt.done, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        t[i] = check_thread(lifetime_main, &lt);
    for (int phase = 1; phase <= 3; phase++) {
        /* The previous pool was destroyed with its caches still attached to
         * live threads; this one may reuse its address and slot. */
        atomic_store(&lt.pool, cached_pool(CAP, CACHE));
        atomic_store(&lt.phase, phase);
        while (atomic_load(&lt.done) < phase * THREADS)
            check_sleep_ns(100000);
        mempool *pool = atomic_load(&lt.pool);
        CHECK_EQ(mempool_available(pool), CAP);
        void *all[CAP];
        CHECK_EQ(mempool_get_bulk(pool, all, CAP, SECOND), 0);
        CHECK_EQ(mempool_put_bulk(pool, all, CAP), 0);
        mempool_destroy(pool);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    /* A thread that used a pool now destroyed exits cleanly, and a thread
     * exiting while its pool lives returns blocks to it (above). */
}

/* Many pools per thread, more than any fixed table would hold. */
static void test_many_pools(void)
{
    enum { POOLS = 100 };
    mempool *pools[POOLS];
    void *b[POOLS];
    for (int i = 0; i < POOLS; i++) {
        pools[i] = cached_pool(64, 4);
        REQUIRE((b[i] = mempool_get(pools[i])) != NULL);
    }
    for (int i = 0; i < POOLS; i++) {
        CHECK_EQ(mempool_put(pools[i], b[i]), 0);
        CHECK_EQ(mempool_put(pools[i], b[i]), EINVAL); /* cached: still free */
        CHECK_EQ(mempool_available(pools[i]), 64);
    }
    for (int i = 0; i < POOLS; i += 2)
        mempool_destroy(pools[i]);
    for (int i = 1; i < POOLS; i += 2) {
        CHECK(mempool_owns(pools[i], b[i]));
        void *again = mempool_get(pools[i]);
        CHECK(again == b[i]); /* the hottest cached block comes back first */
        CHECK_EQ(mempool_put(pools[i], again), 0);
        mempool_destroy(pools[i]);
    }
}

/* flush empties the caller's cache: blocks it held become visible to a
 * drain without any reclaim, and the cache works again afterwards. */
static void test_flush(void)
{
    mempool *pool = cached_pool(CAP, CACHE);
    void *b[CACHE];
    for (int i = 0; i < CACHE; i++)
        REQUIRE((b[i] = mempool_get(pool)) != NULL);
    for (int i = 0; i < CACHE; i++)
        CHECK_EQ(mempool_put(pool, b[i]), 0);
    mempool_flush(pool);
    CHECK_EQ(mempool_available(pool), CAP);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    void *x = mempool_get(pool);
    CHECK(x != NULL);
    CHECK_EQ(mempool_put(pool, x), 0);
    CHECK_EQ(mempool_put(pool, x), EINVAL);
    mempool_flush(NULL);
    mempool_destroy(pool);
}

/* A miss refills the cache from the shared stack, so the gets after it are
 * hits. Catches a refill that brings nothing: every get would still succeed,
 * one by one from the shared stack, and the cache would be dead weight. */
static void test_refill(void)
{
    mempool *pool = cached_pool(CAP, CACHE);
    void *b[CACHE];
    for (int i = 0; i < CACHE; i++)
        REQUIRE((b[i] = mempool_get(pool)) != NULL);
    mempool_stats s;
    CHECK_EQ(mempool_stats_read(pool, &s), 0);
    CHECK_EQ(s.gets, CACHE);
    CHECK(s.cache_misses >= 1 && s.cache_misses <= 4);
    CHECK_EQ(s.cache_hits, CACHE - s.cache_misses);
    CHECK_EQ(mempool_put_bulk(pool, b, CACHE), 0);
    mempool_destroy(pool);
}

/* Exactly as many free blocks as a get asks for, all on the shared stack:
 * the refill that brings them serves the get, single or bulk, for every
 * count up to the cache size. Catches a refill that reports failure when it
 * brought exactly enough (the get would then fail, or sleep, while the
 * blocks sit in the caller's own cache). */
struct holder {
    mempool *pool;
    size_t n;
    void **blocks;
};

static void *holder_main(void *arg)
{
    struct holder *h = arg;
    for (size_t i = 0; i < h->n; i++)
        REQUIRE((h->blocks[i] = mempool_get(h->pool)) != NULL);
    return NULL; /* its exit hands its cache back: the rest is on the stack */
}

static void test_refill_exact(void)
{
    enum { SIZE = 16, CAPACITY = 64 };
    for (size_t want = 1; want <= SIZE; want++) {
        mempool *pool = cached_pool(CAPACITY, SIZE);
        void *held[CAPACITY];
        struct holder h = { .pool = pool, .n = CAPACITY - want, .blocks = held };
        pthread_join(check_thread(holder_main, &h), NULL);
        CHECK_EQ(mempool_available(pool), want);
        void *b[SIZE];
        if (want == 1) {
            b[0] = mempool_try_get(pool);
            CHECK(b[0] != NULL);
        } else {
            CHECK_EQ(mempool_get_bulk(pool, b, want, 0), 0);
        }
        CHECK_EQ(mempool_available(pool), 0);
        if (b[0])
            CHECK_EQ(mempool_put_bulk(pool, b, want), 0);
        CHECK_EQ(mempool_put_bulk(pool, held, CAPACITY - want), 0);
        CHECK_EQ(mempool_drain(pool, 0), 0);
        mempool_destroy(pool);
    }
}

int main(void)
{
    for (int how = 0; how < 3; how++) {
        test_idle_caches(1, how);
        test_idle_caches(4, how);
    }
    test_no_starvation();
    test_thread_exit();
    test_lifetimes();
    test_many_pools();
    test_flush();
    test_refill();
    test_refill_exact();
    CHECK_DONE();
}
