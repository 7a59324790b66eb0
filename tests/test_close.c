/* SPDX-License-Identifier: MIT */
/* mempool_close and mempool_drain: close wakes every waiter with ECANCELED,
 * later gets fail even with blocks free, puts are still taken, nothing handed
 * out is lost; drain waits for every block, works on a closed pool, and the
 * close -> drain -> join -> destroy shutdown works with live workers. */
#include <sched.h>
#include <stdatomic.h>

#include "check.h"
#include "waiter.h"

#define SECOND ((int64_t)1000000000)
#define MS ((int64_t)1000000)
#define US ((int64_t)1000)

static void test_close_wakes_waiters(void)
{
    enum { CAP = 2, W = 6 };
    mempool *pool = check_arena_pool(CAP, 32, 0);
    void *a = mempool_get(pool), *b = mempool_get(pool);
    REQUIRE(a && b);

    struct waiter w[W] = {
        { .pool = pool, .call = WAITER_GET },
        { .pool = pool, .call = WAITER_GET_TIMEOUT, .timeout_ns = -1 },
        { .pool = pool, .call = WAITER_GET_TIMEOUT, .timeout_ns = 60 * SECOND },
        { .pool = pool, .call = WAITER_GET_BULK, .n = 1, .timeout_ns = -1 },
        { .pool = pool, .call = WAITER_GET_BULK, .n = CAP, .timeout_ns = 60 * SECOND },
        { .pool = pool, .call = WAITER_GET, },
    };
    for (int i = 0; i < W; i++) {
        waiter_start(&w[i]);
        CHECK(waiter_wait_asleep(&w[i]));
    }
    mempool_close(pool);
    for (int i = 0; i < W; i++) {
        CHECK(waiter_wait_done(&w[i], 10 * SECOND));
        waiter_join(&w[i]);
        CHECK(w[i].block == NULL);
        CHECK_EQ(w[i].err, ECANCELED);
        CHECK(w[i].errno_kept);    /* the int-returning bulk get leaves errno */
    }
    CHECK_EQ(mempool_available(pool), 0);

    /* Puts are still accepted, and closed gets fail even with blocks free. */
    CHECK_EQ(mempool_put(pool, a), 0);
    CHECK_EQ(mempool_available(pool), 1);
    CHECK_EQ(mempool_put(pool, a), EINVAL);     /* still refused when repeated */
    mempool_close(pool);                        /* idempotent */
    for (int round = 0; round < 2; round++) {
        errno = 0;
        CHECK(mempool_get(pool) == NULL);
        CHECK_EQ(errno, ECANCELED);
        errno = 0;
        CHECK(mempool_try_get(pool) == NULL);
        CHECK_EQ(errno, ECANCELED);
        static const int64_t timeouts[] = { 0, 1, 50 * MS, -1, INT64_MAX };
        for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
            errno = 0;
            CHECK(mempool_get_timeout(pool, timeouts[i]) == NULL);
            CHECK_EQ(errno, ECANCELED);
            void *out[CAP];
            errno = WAITER_ERRNO_SENTINEL;
            CHECK_EQ(mempool_get_bulk(pool, out, 1, timeouts[i]), ECANCELED);
            CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);
        }
        CHECK_EQ(mempool_available(pool), 1 + round);
        if (round == 0)
            CHECK_EQ(mempool_put(pool, b), 0);
    }
    CHECK_EQ(mempool_available(pool), CAP);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_close(pool);
    mempool_destroy(pool);

    /* NULL is a no-op for close. */
    mempool_close(NULL);
}

/* A put then a close race a waiter: the waiter returns the put block or
 * ECANCELED, and in the second case the block is free. A close then a put:
 * the waiter must fail (it was woken by the close, or arrives closed) and the
 * put block is free. */
static void test_close_races_put(void)
{
    int rounds = (int)(300 * check_scale());
    if (rounds < 20)
        rounds = 20;
    int served = 0;
    for (int r = 0; r < rounds; r++) {
        mempool *pool = check_arena_pool(1, 16, 0);
        void *blk = mempool_get(pool);
        REQUIRE(blk);
        int close_first = r % 2;
        struct waiter w = { .pool = pool, .n = 1, .timeout_ns = -1,
                            .call = (r / 2) % 3 == 0 ? WAITER_GET
                                    : (r / 2) % 3 == 1 ? WAITER_GET_TIMEOUT : WAITER_GET_BULK };
        waiter_start(&w);
        check_sleep_ns(((r * 31) % 150) * US);
        if (close_first) {
            mempool_close(pool);
            CHECK_EQ(mempool_put(pool, blk), 0);
        } else {
            CHECK_EQ(mempool_put(pool, blk), 0);
            mempool_close(pool);
        }
        waiter_join(&w);
        void *got = w.call == WAITER_GET_BULK ? w.blocks[0] : w.block;
        if (close_first) {
            CHECK_EQ(w.err, ECANCELED);
        } else if (w.err == 0) {
            CHECK(got == blk);
            CHECK_EQ(mempool_available(pool), 0);
            CHECK_EQ(mempool_put(pool, got), 0);
            served++;
        } else {
            CHECK_EQ(w.err, ECANCELED);
        }
        CHECK_EQ(mempool_available(pool), 1);
        CHECK_EQ(mempool_drain(pool, 0), 0);
        mempool_destroy(pool);
    }
    printf("close races: %d of %d put-first rounds served\n", served, (rounds + 1) / 2);
}

static void test_drain_basics(void)
{
    mempool *pool = check_arena_pool(3, 16, 0);
    errno = WAITER_ERRNO_SENTINEL;
    CHECK_EQ(mempool_drain(pool, 0), 0);
    CHECK_EQ(mempool_drain(pool, -1), 0);
    CHECK_EQ(mempool_drain(pool, MS), 0);
    CHECK_EQ(mempool_drain(pool, INT64_MAX), 0);

    void *blk = mempool_get(pool);
    REQUIRE(blk);
    CHECK_EQ(mempool_drain(pool, 0), ETIMEDOUT);
    int64_t t0 = check_now_ns();
    CHECK_EQ(mempool_drain(pool, 30 * MS), ETIMEDOUT);
    int64_t elapsed = check_now_ns() - t0;
    CHECK(elapsed >= 30 * MS);
    CHECK(elapsed <= 30 * MS + 2 * SECOND);
    CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);    /* int calls leave errno alone */

    CHECK_EQ(mempool_put(pool, blk), 0);
    CHECK_EQ(mempool_drain(pool, 0), 0);

    /* Closed: the same answers, never ECANCELED. */
    blk = mempool_get(pool);
    REQUIRE(blk);
    mempool_close(pool);
    CHECK_EQ(mempool_drain(pool, 0), ETIMEDOUT);
    t0 = check_now_ns();
    CHECK_EQ(mempool_drain(pool, 30 * MS), ETIMEDOUT);
    CHECK(check_now_ns() - t0 >= 30 * MS);
    CHECK_EQ(mempool_put(pool, blk), 0);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    CHECK_EQ(mempool_drain(pool, -1), 0);
    mempool_destroy(pool);

    CHECK_EQ(mempool_drain(NULL, 0), EINVAL);
    CHECK_EQ(mempool_drain(NULL, -1), EINVAL);
    CHECK_EQ(mempool_drain(NULL, SECOND), EINVAL);
    CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);
}

/* A drainer sleeps while blocks are out, keeps sleeping through a close and
 * through puts that leave blocks out, and returns 0 after the last put. */
static void check_drainer(int64_t timeout_ns, int close_while_waiting, int close_before)
{
    enum { CAP = 3 };
    mempool *pool = check_arena_pool(CAP, 16, 0);
    void *held[CAP];
    for (int i = 0; i < CAP; i++)
        REQUIRE((held[i] = mempool_get(pool)) != NULL);
    CHECK_EQ(mempool_put(pool, held[2]), 0);    /* one free, two out */
    if (close_before)
        mempool_close(pool);

    struct waiter w = { .pool = pool, .call = WAITER_DRAIN, .timeout_ns = timeout_ns };
    waiter_start(&w);
    CHECK(waiter_wait_asleep(&w));
    check_sleep_ns(50 * MS);
    CHECK(!waiter_done(&w));
    if (close_while_waiting) {
        mempool_close(pool);
        check_sleep_ns(50 * MS);
        CHECK(!waiter_done(&w));
    }
    CHECK_EQ(mempool_put(pool, held[0]), 0);
    check_sleep_ns(50 * MS);
    CHECK(!waiter_done(&w));
    CHECK_EQ(mempool_put(pool, held[1]), 0);
    CHECK(waiter_wait_done(&w, 10 * SECOND));
    waiter_join(&w);
    CHECK_EQ(w.err, 0);
    CHECK(w.errno_kept);
    CHECK_EQ(mempool_available(pool), CAP);
    mempool_destroy(pool);
}

/* The put completing the pool comes from another thread. */
struct delayed_put {
    mempool *pool;
    void *block;
    int64_t delay_ns;
    int rc;
};

static void *delayed_put_thread(void *arg)
{
    struct delayed_put *d = arg;
    check_sleep_ns(d->delay_ns);
    d->rc = mempool_put(d->pool, d->block);
    return NULL;
}

static void test_drain_woken_by_other_thread(void)
{
    mempool *pool = check_arena_pool(2, 16, 0);
    void *blk = mempool_get(pool);
    REQUIRE(blk);
    struct delayed_put d = { pool, blk, 100 * MS, -1 };
    int64_t t0 = check_now_ns();
    pthread_t t = check_thread(delayed_put_thread, &d);
    int rc = mempool_drain(pool, -1);
    int64_t elapsed = check_now_ns() - t0;
    REQUIRE(pthread_join(t, NULL) == 0);
    CHECK_EQ(rc, 0);
    CHECK_EQ(d.rc, 0);
    CHECK(elapsed >= 100 * MS);     /* it could not have been complete sooner */
    CHECK_EQ(mempool_available(pool), 2);
    mempool_destroy(pool);
}

/* Lazy slots not made yet count as in. */
static void *make_block(void *arg)
{
    (void)arg;
    return malloc(16);
}

static void unmake_block(void *block, void *arg)
{
    (void)arg;
    free(block);
}

static void test_drain_lazy(void)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = 4;
    cfg.make = make_block;
    cfg.unmake = unmake_block;
    cfg.flags = MEMPOOL_LAZY;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    void *blk = mempool_get(pool);
    REQUIRE(blk);
    CHECK_EQ(mempool_drain(pool, 0), ETIMEDOUT);
    mempool_close(pool);
    CHECK_EQ(mempool_drain(pool, MS), ETIMEDOUT);
    CHECK_EQ(mempool_put(pool, blk), 0);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_destroy(pool);
}

/* The documented shutdown with live workers: close stops them, drain
 * waits for what they hold, then join and destroy. */
enum { WORK_CAPACITY = 4, WORKERS = 6 };

struct work {
    mempool *pool;
    atomic_int started;
    atomic_int errors;
    atomic_long done_ops;
};

struct worker_arg {
    struct work *wk;
    int id;
};

static void *worker_thread(void *arg)
{
    struct worker_arg *a = arg;
    struct work *wk = a->wk;
    atomic_fetch_add(&wk->started, 1);
    for (unsigned i = (unsigned)a->id;; i++) {
        void *b[2] = { NULL, NULL };
        size_t n = 1;
        int err;
        switch (i % 4) {
        case 0:
            b[0] = mempool_get(wk->pool);
            err = b[0] ? 0 : errno;
            break;
        case 1:
            b[0] = mempool_get_timeout(wk->pool, 60 * SECOND);
            err = b[0] ? 0 : errno;
            break;
        case 2:
            b[0] = mempool_get_timeout(wk->pool, 200 * US);
            err = b[0] ? 0 : errno;
            break;
        default:
            n = 2;
            err = mempool_get_bulk(wk->pool, b, 2, -1);
            break;
        }
        if (err == ECANCELED)
            break;
        if (err == ETIMEDOUT && i % 4 == 2)
            continue;
        if (err != 0) {
            atomic_fetch_add(&wk->errors, 1);
            break;
        }
        if (i % 2)
            sched_yield();
        if (n == 1) {
            if (mempool_put(wk->pool, b[0]) != 0)
                atomic_fetch_add(&wk->errors, 1);
        } else if (mempool_put_bulk(wk->pool, b, n) != 0) {
            atomic_fetch_add(&wk->errors, 1);
        }
        atomic_fetch_add(&wk->done_ops, 1);
    }
    mempool_flush(wk->pool);
    return NULL;
}

static void test_shutdown_pattern(void)
{
    struct work wk;
    wk.pool = check_arena_pool(WORK_CAPACITY, 64, 0);
    atomic_init(&wk.started, 0);
    atomic_init(&wk.errors, 0);
    atomic_init(&wk.done_ops, 0);
    pthread_t t[WORKERS];
    struct worker_arg args[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        args[i] = (struct worker_arg){ &wk, i };
        t[i] = check_thread(worker_thread, &args[i]);
    }
    int64_t deadline = check_now_ns() + 60 * SECOND;
    while ((atomic_load(&wk.started) < WORKERS || atomic_load(&wk.done_ops) < 100)
           && check_now_ns() < deadline)
        check_sleep_ns(MS);
    check_sleep_ns(50 * MS);

    mempool_close(wk.pool);
    /* Bounded only to report a hang instead of stalling the run. */
    CHECK_EQ(mempool_drain(wk.pool, 60 * SECOND), 0);
    for (int i = 0; i < WORKERS; i++)
        REQUIRE(pthread_join(t[i], NULL) == 0);
    CHECK_EQ(atomic_load(&wk.errors), 0);
    CHECK(atomic_load(&wk.done_ops) > 0);
    CHECK_EQ(mempool_available(wk.pool), WORK_CAPACITY);
    printf("shutdown: %ld operations before close\n", atomic_load(&wk.done_ops));
    mempool_destroy(wk.pool);
}

/* A thread whose cache holds free blocks gets nothing from it after close:
 * close marks every cache, so their hit paths refuse too. */
struct warm {
    mempool *pool;
    atomic_int stage; /* 1: cache warm; 2: pool closed; 3: done */
    int err;
    void *block;
};

static void *warm_main(void *arg)
{
    struct warm *w = arg;
    check_park_in_cache(w->pool, 8);
    atomic_store(&w->stage, 1);
    check_await(&w->stage, 2);
    errno = 0;
    w->block = mempool_get(w->pool);
    w->err = errno;
    atomic_store(&w->stage, 3);
    return NULL;
}

static void test_close_warm_caches(void)
{
    mempool_config cfg = { .capacity = 32, .block_size = 16, .cache_size = 16 };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    struct warm w = { .pool = pool };
    pthread_t t = check_thread(warm_main, &w);
    check_await(&w.stage, 1);
    check_park_in_cache(pool, 8); /* the closing thread's own cache too */
    mempool_close(pool);
    errno = 0;
    CHECK(mempool_get(pool) == NULL && errno == ECANCELED);
    CHECK(mempool_try_get(pool) == NULL && errno == ECANCELED);
    atomic_store(&w.stage, 2);
    pthread_join(t, NULL);
    CHECK(w.block == NULL);
    CHECK_EQ(w.err, ECANCELED);
    CHECK_EQ(mempool_available(pool), 32);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_destroy(pool);
}

int main(void)
{
    test_close_wakes_waiters();
    test_close_races_put();
    test_drain_basics();
    check_drainer(-1, 0, 0);
    check_drainer(60 * SECOND, 0, 0);
    check_drainer(INT64_MAX, 1, 0);
    check_drainer(-1, 1, 0);
    check_drainer(-1, 0, 1);
    test_drain_woken_by_other_thread();
    test_drain_lazy();
    test_shutdown_pattern();
    test_close_warm_caches();
    CHECK_DONE();
}
