/* SPDX-License-Identifier: MIT */
/* Guards: mempool_drain returned 0 while blocks were still out. Emptying a
 * cache handed its blocks over one by one and zeroed its count only at the
 * end, so each hand-over's completion check counted the moved blocks twice
 * (in the shared stack and still in the cache). With capacity 64, cache 16,
 * one thread holding 16 cached blocks and another holding 4 out, a waiting
 * drain returned as soon as the caching thread flushed, exited or honoured a
 * steal request. Then the documented shutdown (close, drain, join, destroy)
 * frees memory still in use. A second part churns cached threads while a
 * holder keeps blocks out and drains poll: none may report completion. */
#include <stdatomic.h>

#include "check.h"
#include "waiter.h"

#define CAPACITY 64
#define CACHE 16
#define HELD 4

enum cacher_end { END_FLUSH, END_EXIT, END_HONOUR };

struct cacher {
    mempool *pool;
    enum cacher_end end;
    atomic_int stage; /* 1: cache filled; 2: told to act; 3: acted */
};

/* Parks CACHE free blocks in this thread's cache, then empties it the way
 * the test asks once told to. */
static void *cacher_main(void *arg)
{
    struct cacher *c = arg;
    check_park_in_cache(c->pool, CACHE);
    atomic_store(&c->stage, 1);
    check_await(&c->stage, 2);
    if (c->end == END_FLUSH) {
        mempool_flush(c->pool);
    } else if (c->end == END_HONOUR) {
        /* A get and a put while the drain has the caches armed: the cache
         * sees the steal request and hands its blocks over. */
        void *b = mempool_get(c->pool);
        REQUIRE(b != NULL);
        CHECK_EQ(mempool_put(c->pool, b), 0);
    }
    atomic_store(&c->stage, 3);
    return NULL;
}

static void shutdown_scenario(enum cacher_end end)
{
    mempool_config cfg = { .capacity = CAPACITY, .block_size = 32, .cache_size = CACHE };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    struct cacher c = { .pool = pool, .end = end };
    pthread_t ct = check_thread(cacher_main, &c);
    check_await(&c.stage, 1);
    /* The main thread holds HELD blocks out; the rest of its refill stays
     * free in its own cache. */
    void *held[HELD];
    for (int i = 0; i < HELD; i++)
        REQUIRE((held[i] = mempool_get(pool)) != NULL);
    struct waiter d = { .pool = pool, .call = WAITER_DRAIN, .timeout_ns = 30000000000 };
    waiter_start(&d);
    REQUIRE(waiter_wait_asleep(&d));
    atomic_store(&c.stage, 2);
    check_await(&c.stage, 3);
    if (end == END_EXIT)
        pthread_join(ct, NULL);
    check_sleep_ns(100000000);
    if (waiter_done(&d)) {
        fprintf(stderr, "scenario %d: drain returned %d with %d blocks out\n", (int)end, d.err,
                HELD);
        check_failures++;
    }
    for (int i = 0; i < HELD; i++)
        CHECK_EQ(mempool_put(pool, held[i]), 0);
    waiter_join(&d);
    CHECK_EQ(d.err, 0);
    if (end != END_EXIT)
        pthread_join(ct, NULL);
    CHECK_EQ(mempool_available(pool), CAPACITY);
    mempool_destroy(pool);
}

/* The churn part: cached threads refill, spill, flush and exit while the
 * main thread holds one block and polls drain; a drain that reports
 * completion then is the defect. */
struct churn {
    mempool *pool;
    atomic_int *stop;
    unsigned seed;
};

static void *churn_main(void *arg)
{
    struct churn *ch = arg;
    void *mine[CACHE * 2];
    while (!atomic_load(ch->stop)) {
        ch->seed = ch->seed * 1103515245u + 12345u;
        int k = 1 + (int)((ch->seed >> 16) % (CACHE * 2));
        int got = 0;
        for (; got < k; got++)
            if (!(mine[got] = mempool_get_timeout(ch->pool, 1000000)))
                break;
        for (int i = got; i-- > 0;)
            CHECK_EQ(mempool_put(ch->pool, mine[i]), 0);
        if ((ch->seed >> 8) % 4 == 0)
            mempool_flush(ch->pool);
    }
    return NULL;
}

static void churn_scenario(void)
{
    mempool_config cfg = { .capacity = CAPACITY, .block_size = 32, .cache_size = CACHE };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    atomic_int stop = 0;
    enum { THREADS = 3 };
    struct churn ch[THREADS];
    pthread_t t[THREADS];
    int rounds = (int)(400 * check_scale()) + 20;
    for (int i = 0; i < THREADS; i++) {
        ch[i] = (struct churn){ .pool = pool, .stop = &stop, .seed = 7u + (unsigned)i };
        t[i] = check_thread(churn_main, &ch[i]);
    }
    int early = 0;
    for (int r = 0; r < rounds; r++) {
        void *held = mempool_get(pool);
        REQUIRE(held != NULL);
        if (mempool_drain(pool, 200000) == 0)
            early++;
        if (mempool_drain(pool, 0) == 0)
            early++;
        CHECK_EQ(mempool_put(pool, held), 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    if (early)
        fprintf(stderr, "churn: drain reported completion %d times with a block out\n", early);
    CHECK_EQ(early, 0);
    CHECK_EQ(mempool_drain(pool, 1000000000), 0);
    mempool_destroy(pool);
}

int main(void)
{
    shutdown_scenario(END_FLUSH);
    shutdown_scenario(END_EXIT);
    shutdown_scenario(END_HONOUR);
    churn_scenario();
    CHECK_DONE();
}
