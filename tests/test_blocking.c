/* SPDX-License-Identifier: MIT */
/* Blocking gets: a get sleeps while the pool is empty and returns once a
 * block is put; waiters are served in FIFO order; a put hands its block to
 * the oldest waiter so nobody can take it first; no wake-up is lost with many
 * waiters and putters, nor when one put_bulk serves a dozen of them; a
 * capacity-1 pool ping-pongs between two threads. */
#include <sched.h>
#include <stdatomic.h>

#include "check.h"
#include "waiter.h"

#define SECOND ((int64_t)1000000000)
#define MS ((int64_t)1000000)

static void test_get_sleeps_until_put(void)
{
    mempool *pool = check_arena_pool(2, 64, 0);
    void *a = mempool_get(pool), *b = mempool_get(pool);
    REQUIRE(a && b);

    struct waiter w = { .pool = pool, .call = WAITER_GET };
    waiter_start(&w);
    CHECK(waiter_wait_asleep(&w));
    /* Still empty: the get must keep sleeping. */
    check_sleep_ns(100 * MS);
    CHECK(!waiter_done(&w));

    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK(waiter_wait_done(&w, 10 * SECOND));
    waiter_join(&w);
    CHECK(w.block == b);        /* the only free block */
    CHECK(w.errno_kept);

    CHECK_EQ(mempool_put(pool, w.block), 0);
    CHECK_EQ(mempool_put(pool, a), 0);
    CHECK_EQ(mempool_available(pool), 2);
    mempool_destroy(pool);
}

/* Waiters started one at a time (each asleep before the next) must be
 * served in that order, each by the one block put while it is the oldest. */
static void test_fifo_order(enum waiter_call kind_a, enum waiter_call kind_b, int reverse)
{
    enum { K = 5 };
    mempool *pool = check_arena_pool(K, 32, 0);
    void *held[K];
    for (int i = 0; i < K; i++)
        REQUIRE((held[i] = mempool_get(pool)) != NULL);

    atomic_int order;
    atomic_init(&order, 0);
    struct waiter w[K];
    memset(w, 0, sizeof w);
    for (int i = 0; i < K; i++) {
        w[i].pool = pool;
        w[i].call = i % 2 ? kind_b : kind_a;
        w[i].timeout_ns = w[i].call == WAITER_GET_TIMEOUT && i % 3 == 0 ? -1 : 60 * SECOND;
        w[i].n = 1;
        w[i].order = &order;
        waiter_start(&w[i]);
        REQUIRE(waiter_wait_asleep(&w[i]));
    }

    for (int i = 0; i < K; i++) {
        void *blk = held[reverse ? K - 1 - i : i];
        CHECK_EQ(mempool_put(pool, blk), 0);
        int64_t deadline = check_now_ns() + 10 * SECOND;
        while (atomic_load(&order) < i + 1 && check_now_ns() < deadline)
            check_sleep_ns(100000);
        REQUIRE(atomic_load(&order) == i + 1);
        /* The returning waiter takes its ticket just before it says done. */
        while (!waiter_done(&w[i]) && check_now_ns() < deadline)
            check_sleep_ns(100000);
        /* Exactly the oldest waiter returned, with the block just put. */
        CHECK(waiter_done(&w[i]));
        if (waiter_done(&w[i])) {
            CHECK_EQ(w[i].ticket, i);
            void *got = w[i].call == WAITER_GET_BULK ? w[i].blocks[0] : w[i].block;
            CHECK_EQ(w[i].err, 0);
            CHECK(got == blk);
        }
        for (int j = i + 1; j < K; j++)
            CHECK(!waiter_done(&w[j]));
    }
    for (int i = 0; i < K; i++) {
        waiter_join(&w[i]);
        void *got = w[i].call == WAITER_GET_BULK ? w[i].blocks[0] : w[i].block;
        if (got)
            CHECK_EQ(mempool_put(pool, got), 0);
    }
    CHECK_EQ(mempool_available(pool), K);
    mempool_destroy(pool);
}

struct try_get_result {
    mempool *pool;
    void *block;
    int err;
};

static void *try_get_thread(void *arg)
{
    struct try_get_result *r = arg;
    r->block = mempool_try_get(r->pool);
    r->err = r->block ? 0 : errno;
    return NULL;
}

/* A put while a waiter sleeps hands the block to that waiter: a try_get
 * ordered after the put (in a third thread, or in the putter) finds the pool
 * empty, and the waiter returns exactly that block. */
static void test_put_hands_off(enum waiter_call kind)
{
    mempool *pool = check_arena_pool(1, 64, 0);
    void *blk = mempool_get(pool);
    REQUIRE(blk);

    for (int round = 0; round < 4; round++) {
        struct waiter w = { .pool = pool, .call = kind, .timeout_ns = 30 * SECOND, .n = 1 };
        waiter_start(&w);
        REQUIRE(waiter_wait_asleep(&w));

        CHECK_EQ(mempool_put(pool, blk), 0);
        struct try_get_result r = { .pool = pool };
        pthread_t third = check_thread(try_get_thread, &r);
        REQUIRE(pthread_join(third, NULL) == 0);
        CHECK(r.block == NULL);
        CHECK_EQ(r.err, EAGAIN);
        if (r.block)
            CHECK_EQ(mempool_put(pool, r.block), 0);

        errno = 0;
        void *mine = mempool_try_get(pool);
        CHECK(mine == NULL);
        CHECK_EQ(errno, EAGAIN);
        if (mine)
            CHECK_EQ(mempool_put(pool, mine), 0);

        CHECK(waiter_wait_done(&w, 10 * SECOND));
        waiter_join(&w);
        void *got = kind == WAITER_GET_BULK ? w.blocks[0] : w.block;
        CHECK_EQ(w.err, 0);
        CHECK(got == blk);
        if (!got) {
            blk = mempool_try_get(pool);
            REQUIRE(blk);
        }
    }
    CHECK_EQ(mempool_put(pool, blk), 0);
    CHECK_EQ(mempool_available(pool), 1);
    mempool_destroy(pool);
}

/* The same hand-off on a pool with thread caches, every cache empty when
 * the get goes to sleep: the put it waits for reaches it, not the putter's
 * own cache (the get armed the caches before sleeping, though they all
 * read empty). Catches a reclaim that skips arming for a get about to
 * sleep because the counts read zero, as it may for a polling try_get. */
static void test_put_hands_off_cached(void)
{
    mempool_config cfg = { .capacity = 64, .block_size = 64, .cache_size = 16 };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    void *all[64];
    REQUIRE(mempool_get_bulk(pool, all, 64, 0) == 0);
    mempool_flush(pool); /* this thread's cache is empty too */
    struct waiter w = { .pool = pool, .call = WAITER_GET_TIMEOUT, .timeout_ns = 30 * SECOND };
    waiter_start(&w);
    REQUIRE(waiter_wait_asleep(&w));
    CHECK_EQ(mempool_put(pool, all[0]), 0);
    errno = 0;
    void *mine = mempool_try_get(pool);
    CHECK(mine == NULL);
    CHECK_EQ(errno, EAGAIN);
    if (mine)
        CHECK_EQ(mempool_put(pool, mine), 0);
    CHECK(waiter_wait_done(&w, 10 * SECOND));
    waiter_join(&w);
    CHECK(w.block == all[0]);
    if (w.block)
        CHECK_EQ(mempool_put(pool, w.block), 0);
    CHECK_EQ(mempool_put_bulk(pool, all + 1, 63), 0);
    CHECK_EQ(mempool_available(pool), 64);
    mempool_destroy(pool);
}

/* Many threads get and put on a small pool, most of them waiting most of the
 * time. A lost wake-up leaves a thread asleep forever, caught by the
 * deadline; a shadow owner per block catches a block given to two threads. */
enum { CHURN_CAPACITY = 3, CHURN_THREADS = 8 };

struct churn {
    mempool *pool;
    atomic_int owner[CHURN_CAPACITY];
    atomic_int finished;
    atomic_int errors;
    int iterations;
};

struct churn_arg {
    struct churn *c;
    int id;
};

static void churn_take(struct churn *c, void *b, int id)
{
    size_t idx = mempool_index(c->pool, b);
    if (idx >= CHURN_CAPACITY) {
        atomic_fetch_add(&c->errors, 1);
        return;
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong(&c->owner[idx], &expected, id))
        atomic_fetch_add(&c->errors, 1);
}

static void churn_give(struct churn *c, void *b, int id)
{
    size_t idx = mempool_index(c->pool, b);
    if (idx >= CHURN_CAPACITY || atomic_exchange(&c->owner[idx], 0) != id)
        atomic_fetch_add(&c->errors, 1);
    if (mempool_put(c->pool, b) != 0)
        atomic_fetch_add(&c->errors, 1);
}

static void *churn_thread(void *arg)
{
    struct churn_arg *a = arg;
    struct churn *c = a->c;
    int id = a->id + 1;
    for (int i = 0; i < c->iterations; i++) {
        void *b[2] = { NULL, NULL };
        size_t n = 1;
        switch ((a->id + i) % 4) {
        case 0:
            b[0] = mempool_get(c->pool);
            break;
        case 1:
            b[0] = mempool_get_timeout(c->pool, -1);
            break;
        case 2:
            b[0] = mempool_get_timeout(c->pool, 60 * SECOND);
            break;
        case 3:
            n = 2;
            if (mempool_get_bulk(c->pool, b, 2, -1) != 0)
                b[0] = b[1] = NULL;
            break;
        }
        if (!b[0]) {
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        for (size_t k = 0; k < n; k++)
            churn_take(c, b[k], id);
        if (i % 3 == 0)
            sched_yield();
        for (size_t k = 0; k < n; k++)
            churn_give(c, b[k], id);
    }
    mempool_flush(c->pool);
    atomic_fetch_add(&c->finished, 1);
    return NULL;
}

static void test_many_waiters_and_putters(void)
{
    struct churn c;
    c.pool = check_arena_pool(CHURN_CAPACITY, 64, 0);
    for (int i = 0; i < CHURN_CAPACITY; i++)
        atomic_init(&c.owner[i], 0);
    atomic_init(&c.finished, 0);
    atomic_init(&c.errors, 0);
    c.iterations = (int)(10000 * check_scale());
    if (c.iterations < 40)
        c.iterations = 40;

    pthread_t t[CHURN_THREADS];
    struct churn_arg args[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++) {
        args[i] = (struct churn_arg){ &c, i };
        t[i] = check_thread(churn_thread, &args[i]);
    }
    /* Generous: a lost wake-up never finishes at all. */
    int64_t deadline = check_now_ns() + 240 * SECOND;
    while (atomic_load(&c.finished) < CHURN_THREADS) {
        if (check_now_ns() > deadline) {
            fprintf(stderr, "churn: %d of %d threads finished: lost wake-up?\n",
                    atomic_load(&c.finished), CHURN_THREADS);
            REQUIRE(0);
        }
        check_sleep_ns(10 * MS);
    }
    for (int i = 0; i < CHURN_THREADS; i++)
        REQUIRE(pthread_join(t[i], NULL) == 0);
    CHECK_EQ(atomic_load(&c.errors), 0);
    CHECK_EQ(mempool_available(c.pool), CHURN_CAPACITY);
    CHECK_EQ(mempool_drain(c.pool, 0), 0);
    mempool_destroy(c.pool);
}

/* One put_bulk serves more sleeping waiters than one unlock gathers
 * wake-ups for (eight): the rest are woken at once, and none is missed. */
enum { MANY_WAITERS = 12 };

static void *wait_for_block(void *arg)
{
    return mempool_get_timeout(arg, 60 * SECOND);
}

static void test_put_bulk_wakes_many(void)
{
    mempool *pool = check_arena_pool(MANY_WAITERS, 64, MEMPOOL_NO_CACHE);
    void *blocks[MANY_WAITERS];
    REQUIRE(mempool_get_bulk(pool, blocks, MANY_WAITERS, 0) == 0);
    pthread_t t[MANY_WAITERS];
    for (int i = 0; i < MANY_WAITERS; i++)
        t[i] = check_thread(wait_for_block, pool);
    /* Every get counts its wait when it queues. */
    mempool_stats s;
    int64_t deadline = check_now_ns() + 60 * SECOND;
    do {
        check_sleep_ns(MS);
        REQUIRE(mempool_stats_read(pool, &s) == 0);
    } while (s.waits < MANY_WAITERS && check_now_ns() < deadline);
    CHECK_EQ(s.waits, MANY_WAITERS);
    CHECK_EQ(mempool_put_bulk(pool, blocks, MANY_WAITERS), 0);
    for (int i = 0; i < MANY_WAITERS; i++) {
        void *got = NULL;
        REQUIRE(pthread_join(t[i], &got) == 0);
        CHECK(got != NULL);
        if (got)
            CHECK_EQ(mempool_put(pool, got), 0);
    }
    CHECK_EQ(mempool_available(pool), MANY_WAITERS);
    mempool_destroy(pool);
}

/* Capacity 1, two threads: the block goes back and forth. The count kept
 * inside the block is written by both threads with only the pool between
 * them, so a hand-off that does not order memory shows up as a wrong count
 * (or as a race under TSan). */
struct ping_pong {
    mempool *pool;
    atomic_int holders;
    atomic_int errors;
    int rounds;
};

static void *ping_pong_thread(void *arg)
{
    struct ping_pong *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        long *count = i % 2 ? mempool_get_timeout(p->pool, -1) : mempool_get(p->pool);
        if (!count) {
            atomic_fetch_add(&p->errors, 1);
            continue;
        }
        if (atomic_fetch_add(&p->holders, 1) != 0)
            atomic_fetch_add(&p->errors, 1);
        ++*count;
        atomic_fetch_sub(&p->holders, 1);
        if (mempool_put(p->pool, count) != 0)
            atomic_fetch_add(&p->errors, 1);
    }
    /* The other thread may still need the block: leave none cached here. */
    mempool_flush(p->pool);
    return NULL;
}

static void test_ping_pong(void)
{
    struct ping_pong p;
    p.pool = check_arena_pool(1, sizeof(long), 0);
    atomic_init(&p.holders, 0);
    atomic_init(&p.errors, 0);
    p.rounds = (int)(20000 * check_scale());
    if (p.rounds < 100)
        p.rounds = 100;

    pthread_t a = check_thread(ping_pong_thread, &p);
    pthread_t b = check_thread(ping_pong_thread, &p);
    REQUIRE(pthread_join(a, NULL) == 0);
    REQUIRE(pthread_join(b, NULL) == 0);
    CHECK_EQ(atomic_load(&p.errors), 0);

    long *count = mempool_try_get(p.pool);
    REQUIRE(count);
    CHECK_EQ(*count, 2L * p.rounds);   /* arena blocks start zero-filled */
    CHECK_EQ(mempool_put(p.pool, count), 0);
    CHECK_EQ(mempool_available(p.pool), 1);
    mempool_destroy(p.pool);
}

int main(void)
{
    test_get_sleeps_until_put();
    test_fifo_order(WAITER_GET, WAITER_GET, 0);
    test_fifo_order(WAITER_GET_TIMEOUT, WAITER_GET, 1);
    test_fifo_order(WAITER_GET_BULK, WAITER_GET_TIMEOUT, 0);
    test_put_hands_off(WAITER_GET);
    test_put_hands_off(WAITER_GET_TIMEOUT);
    test_put_hands_off(WAITER_GET_BULK);
    test_put_hands_off_cached();
    test_many_waiters_and_putters();
    test_ping_pong();
    test_put_bulk_wakes_many();
    CHECK_DONE();
}
