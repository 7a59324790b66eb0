/* SPDX-License-Identifier: MIT */
/* mempool_get_bulk / mempool_put_bulk: argument checks in the documented
 * order, all or nothing, a bulk waiter's place in the FIFO and the blocks it
 * collects, giving them back on timeout or close, no deadlock between bulk
 * waiters that hold nothing, and put_bulk refusing a bad array whole. */
#include <sched.h>
#include <stdatomic.h>

#include "check.h"
#include "waiter.h"

#define SECOND ((int64_t)1000000000)
#define MS ((int64_t)1000000)
#define US ((int64_t)1000)

/* Never dereferenced: n == 0 must not look at the array. */
#define BOGUS_ARRAY ((void **)(uintptr_t)8)

static void test_argument_order(void)
{
    enum { CAP = 4 };
    mempool *pool = check_arena_pool(CAP, 32, 0);
    void *out[CAP + 1];

    errno = WAITER_ERRNO_SENTINEL;
    /* NULL pool first, whatever else is wrong. */
    CHECK_EQ(mempool_get_bulk(NULL, out, 1, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(NULL, NULL, 0, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(NULL, out, 0, -1), EINVAL);
    CHECK_EQ(mempool_put_bulk(NULL, out, 1), EINVAL);
    /* n == 0 next, whatever `blocks` is. */
    CHECK_EQ(mempool_get_bulk(pool, NULL, 0, 0), 0);
    CHECK_EQ(mempool_get_bulk(pool, BOGUS_ARRAY, 0, -1), 0);
    CHECK_EQ(mempool_get_bulk(pool, out, 0, SECOND), 0);
    CHECK_EQ(mempool_put_bulk(pool, NULL, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, BOGUS_ARRAY, 0), 0);
    /* Then NULL blocks, then n > capacity. */
    CHECK_EQ(mempool_get_bulk(pool, NULL, 1, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(pool, NULL, CAP + 1, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(pool, out, CAP + 1, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(pool, out, SIZE_MAX, -1), EINVAL);
    CHECK_EQ(mempool_available(pool), CAP);

    /* Then EAGAIN and ETIMEDOUT, none taken. */
    void *held = mempool_get(pool);
    REQUIRE(held);
    CHECK_EQ(mempool_get_bulk(pool, out, CAP, 0), EAGAIN);
    CHECK_EQ(mempool_available(pool), CAP - 1);
    int64_t t0 = check_now_ns();
    CHECK_EQ(mempool_get_bulk(pool, out, CAP, 20 * MS), ETIMEDOUT);
    int64_t elapsed = check_now_ns() - t0;
    CHECK(elapsed >= 20 * MS);
    CHECK(elapsed <= 20 * MS + 2 * SECOND);
    CHECK_EQ(mempool_available(pool), CAP - 1);
    CHECK_EQ(mempool_put(pool, held), 0);

    /* The whole pool at once: all distinct, all of this pool. */
    CHECK_EQ(mempool_get_bulk(pool, out, CAP, 0), 0);
    CHECK_EQ(mempool_available(pool), 0);
    int seen[CAP] = { 0 };
    for (int i = 0; i < CAP; i++) {
        size_t idx = mempool_index(pool, out[i]);
        REQUIRE(idx < CAP);
        CHECK_EQ(seen[idx]++, 0);
    }
    CHECK_EQ(mempool_put_bulk(pool, out, CAP), 0);
    CHECK_EQ(mempool_available(pool), CAP);
    CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);    /* int calls leave errno alone */

    /* Closed: n == 0, NULL blocks and n > capacity keep their answers, the
     * rest is ECANCELED even with every block free. */
    mempool_close(pool);
    CHECK_EQ(mempool_get_bulk(NULL, out, 1, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(pool, NULL, 0, 0), 0);
    CHECK_EQ(mempool_get_bulk(pool, BOGUS_ARRAY, 0, -1), 0);
    CHECK_EQ(mempool_get_bulk(pool, NULL, 1, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(pool, out, CAP + 1, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(pool, out, 1, 0), ECANCELED);
    CHECK_EQ(mempool_get_bulk(pool, out, CAP, -1), ECANCELED);
    CHECK_EQ(mempool_get_bulk(pool, out, 2, 20 * MS), ECANCELED);
    CHECK_EQ(mempool_available(pool), CAP);
    CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);
    mempool_destroy(pool);
}

/* on_misuse records what it was told, to check put_bulk reports once. */
static atomic_int misuse_calls;
static const void *misuse_block;

static void on_misuse(const char *what, const void *block, void *arg)
{
    (void)arg;
    CHECK(what != NULL);
    misuse_block = block;
    atomic_fetch_add(&misuse_calls, 1);
}

static void test_put_bulk_refuses_whole(void)
{
    enum { CAP = 4 };
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = CAP;
    cfg.block_size = 32;
    cfg.on_misuse = on_misuse;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool);
    mempool *other = check_arena_pool(1, 32, 0);
    void *foreign_block = mempool_get(other);
    REQUIRE(foreign_block);
    long on_stack = 0;

    void *a, *b, *c, *d;
    REQUIRE((a = mempool_get(pool)) && (b = mempool_get(pool)) && (c = mempool_get(pool)));
    d = mempool_get(pool);
    REQUIRE(d);
    CHECK_EQ(mempool_put(pool, d), 0);          /* d is free from here on */

    struct { void *arr[4]; size_t n; const void *first_bad; } bad[] = {
        { { a, b, a }, 3, a },                   /* repeated inside the array */
        { { a, a }, 2, a },
        { { a, foreign_block, b }, 3, foreign_block },
        { { a, &on_stack }, 2, &on_stack },
        { { a, (char *)b + 1, c }, 3, (char *)b + 1 },  /* interior */
        { { a, NULL }, 2, NULL },
        { { a, b, d }, 3, d },                   /* already free */
        { { d }, 1, d },
        { { foreign_block, a, a }, 3, foreign_block },  /* first bad reported */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        atomic_store(&misuse_calls, 0);
        misuse_block = (void *)&misuse_block;
        errno = WAITER_ERRNO_SENTINEL;
        CHECK_EQ(mempool_put_bulk(pool, bad[i].arr, bad[i].n), EINVAL);
        CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);
        CHECK_EQ(atomic_load(&misuse_calls), 1);
        if (misuse_block != bad[i].first_bad)
            fprintf(stderr, "put_bulk case %zu: on_misuse told %p, not %p\n", i,
                    misuse_block, bad[i].first_bad);
        CHECK(misuse_block == bad[i].first_bad);
        /* Nothing put: a, b and c are still out. */
        CHECK_EQ(mempool_available(pool), 1);
    }
    /* A NULL array is reported as a null block, and nothing is put. */
    atomic_store(&misuse_calls, 0);
    misuse_block = (void *)&misuse_block;
    CHECK_EQ(mempool_put_bulk(pool, NULL, 2), EINVAL);
    CHECK_EQ(atomic_load(&misuse_calls), 1);
    CHECK(misuse_block == NULL);
    CHECK_EQ(mempool_available(pool), 1);
    atomic_store(&misuse_calls, 0);
    /* Proof that a, b, c stayed out: each single put is accepted. */
    CHECK_EQ(mempool_put(pool, a), 0);
    void *bc[] = { b, c };
    CHECK_EQ(mempool_put_bulk(pool, bc, 2), 0);
    CHECK_EQ(atomic_load(&misuse_calls), 0);
    CHECK_EQ(mempool_available(pool), CAP);
    /* Everything is free now, so any non-empty put_bulk is refused. */
    CHECK_EQ(mempool_put_bulk(pool, bc, 2), EINVAL);
    CHECK_EQ(mempool_available(pool), CAP);

    CHECK_EQ(mempool_put(other, foreign_block), 0);
    mempool_destroy(other);
    mempool_destroy(pool);
}

/* A bulk waiter between two single waiters: the first single waiter is
 * served first, then the bulk waiter collects each put block (counted as
 * available) until it has all it needs, and only then the second single
 * waiter is served. */
static void test_bulk_waiter_in_fifo(void)
{
    enum { CAP = 4, NEED = 3 };
    mempool *pool = check_arena_pool(CAP, 32, 0);
    void *held[CAP];
    for (int i = 0; i < CAP; i++)
        REQUIRE((held[i] = mempool_get(pool)) != NULL);

    struct waiter s1 = { .pool = pool, .call = WAITER_GET };
    struct waiter bulk = { .pool = pool, .call = WAITER_GET_BULK, .n = NEED, .timeout_ns = -1 };
    struct waiter s2 = { .pool = pool, .call = WAITER_GET_TIMEOUT, .timeout_ns = 60 * SECOND };
    waiter_start(&s1);
    REQUIRE(waiter_wait_asleep(&s1));
    waiter_start(&bulk);
    REQUIRE(waiter_wait_asleep(&bulk));
    waiter_start(&s2);
    REQUIRE(waiter_wait_asleep(&s2));

    CHECK_EQ(mempool_put(pool, held[0]), 0);
    CHECK(waiter_wait_done(&s1, 10 * SECOND));
    waiter_join(&s1);
    CHECK(s1.block == held[0]);

    for (int k = 1; k < NEED; k++) {
        CHECK_EQ(mempool_put(pool, held[k]), 0);
        /* Collected blocks still count as available. */
        CHECK_EQ(waiter_available_becomes(pool, (size_t)k, 10 * SECOND), k);
        check_sleep_ns(30 * MS);
        CHECK(!waiter_done(&bulk));
        CHECK(!waiter_done(&s2));   /* behind the bulk waiter */
    }
    CHECK_EQ(mempool_put(pool, held[NEED]), 0);
    CHECK(waiter_wait_done(&bulk, 10 * SECOND));
    waiter_join(&bulk);
    CHECK_EQ(bulk.err, 0);
    for (int k = 0; k < NEED; k++) {
        int found = 0;
        for (int j = 1; j <= NEED; j++)
            found += bulk.blocks[k] == held[j];
        CHECK_EQ(found, 1);
    }
    CHECK_EQ(waiter_available_becomes(pool, 0, 10 * SECOND), 0);
    check_sleep_ns(30 * MS);
    CHECK(!waiter_done(&s2));

    /* The first waiter's block comes back: now the second is served. */
    if (s1.block)
        CHECK_EQ(mempool_put(pool, s1.block), 0);
    CHECK(waiter_wait_done(&s2, 10 * SECOND));
    waiter_join(&s2);
    CHECK(s2.block == held[0]);
    if (s2.block)
        CHECK_EQ(mempool_put(pool, s2.block), 0);
    if (bulk.err == 0)
        CHECK_EQ(mempool_put_bulk(pool, bulk.blocks, NEED), 0);
    CHECK_EQ(mempool_available(pool), CAP);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_destroy(pool);
}

/* A bulk waiter that times out or is closed while holding collected blocks
 * gives them back: nothing is lost. */
static void check_bulk_gives_back(int by_close)
{
    enum { CAP = 3 };
    mempool *pool = check_arena_pool(CAP, 32, 0);
    void *held[CAP];
    for (int i = 0; i < CAP; i++)
        REQUIRE((held[i] = mempool_get(pool)) != NULL);

    const int64_t timeout = by_close ? -1 : 2 * SECOND;
    struct waiter w = { .pool = pool, .call = WAITER_GET_BULK, .n = CAP, .timeout_ns = timeout };
    waiter_start(&w);
    /* With a timeout, a very slow machine may let it expire first: then the
     * puts below simply land in the pool and the checks still hold. */
    int asleep = waiter_wait_asleep(&w);
    if (by_close)
        REQUIRE(asleep);
    CHECK_EQ(mempool_put(pool, held[0]), 0);
    CHECK_EQ(mempool_put(pool, held[1]), 0);
    if (by_close) {
        CHECK_EQ(waiter_available_becomes(pool, 2, 10 * SECOND), 2);
        check_sleep_ns(20 * MS);
        CHECK(!waiter_done(&w));
        mempool_close(pool);
    }
    CHECK(waiter_wait_done(&w, timeout + 10 * SECOND));
    waiter_join(&w);
    CHECK_EQ(w.err, by_close ? ECANCELED : ETIMEDOUT);
    CHECK(w.errno_kept);
    if (!by_close)
        CHECK(w.elapsed_ns >= timeout);
    CHECK_EQ(mempool_available(pool), 2);

    if (!by_close) {
        /* The two blocks are free again, not stuck with a gone waiter. */
        void *x = mempool_try_get(pool), *y = mempool_try_get(pool);
        CHECK(x != NULL && y != NULL);
        CHECK((x == held[0] && y == held[1]) || (x == held[1] && y == held[0]));
        errno = 0;
        CHECK(mempool_try_get(pool) == NULL);
        CHECK_EQ(errno, EAGAIN);
        if (x)
            CHECK_EQ(mempool_put(pool, x), 0);
        if (y)
            CHECK_EQ(mempool_put(pool, y), 0);
    }
    CHECK_EQ(mempool_put(pool, held[2]), 0);
    CHECK_EQ(mempool_available(pool), CAP);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_destroy(pool);
}

/* Threads take random-size bulks (up to the whole pool) and give them back,
 * never waiting while they hold any block: none may deadlock. A shadow owner
 * per block catches a block given to two threads. */
enum { MIX_CAPACITY = 8, MIX_THREADS = 6 };

struct mix {
    mempool *pool;
    atomic_int owner[MIX_CAPACITY];
    atomic_int finished;
    atomic_int errors;
    int iterations;
};

struct mix_arg {
    struct mix *m;
    int id;
    unsigned seed;
};

static unsigned next_random(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 16;
}

static void *mix_thread(void *arg)
{
    struct mix_arg *a = arg;
    struct mix *m = a->m;
    int id = a->id + 1;
    for (int i = 0; i < m->iterations; i++) {
        void *b[MIX_CAPACITY];
        size_t n = 1 + next_random(&a->seed) % MIX_CAPACITY;
        unsigned pick = next_random(&a->seed) % 8;
        int64_t timeout = pick == 0 ? 0 : pick == 1 ? 100 * US : -1;
        int rc = mempool_get_bulk(m->pool, b, n, timeout);
        if (rc == EAGAIN || rc == ETIMEDOUT) {
            if (timeout < 0)
                atomic_fetch_add(&m->errors, 1);
            continue;
        }
        if (rc != 0) {
            atomic_fetch_add(&m->errors, 1);
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            size_t idx = mempool_index(m->pool, b[k]);
            int expected = 0;
            if (idx >= MIX_CAPACITY ||
                !atomic_compare_exchange_strong(&m->owner[idx], &expected, id)) {
                atomic_fetch_add(&m->errors, 1);
                b[k] = NULL;
            }
        }
        if (pick == 2)
            sched_yield();
        int fine = 1;
        for (size_t k = 0; k < n; k++) {
            size_t idx = b[k] ? mempool_index(m->pool, b[k]) : SIZE_MAX;
            if (idx >= MIX_CAPACITY || atomic_exchange(&m->owner[idx], 0) != id)
                fine = 0;
        }
        if (!fine) {
            atomic_fetch_add(&m->errors, 1);
            continue;
        }
        if (mempool_put_bulk(m->pool, b, n) != 0)
            atomic_fetch_add(&m->errors, 1);
    }
    mempool_flush(m->pool);
    atomic_fetch_add(&m->finished, 1);
    return NULL;
}

static void test_bulk_waiters_progress(void)
{
    struct mix m;
    m.pool = check_arena_pool(MIX_CAPACITY, 64, 0);
    for (int i = 0; i < MIX_CAPACITY; i++)
        atomic_init(&m.owner[i], 0);
    atomic_init(&m.finished, 0);
    atomic_init(&m.errors, 0);
    m.iterations = (int)(3000 * check_scale());
    if (m.iterations < 30)
        m.iterations = 30;

    pthread_t t[MIX_THREADS];
    struct mix_arg args[MIX_THREADS];
    for (int i = 0; i < MIX_THREADS; i++) {
        args[i] = (struct mix_arg){ &m, i, 1234u + 7919u * (unsigned)i };
        t[i] = check_thread(mix_thread, &args[i]);
    }
    int64_t deadline = check_now_ns() + 240 * SECOND;
    while (atomic_load(&m.finished) < MIX_THREADS) {
        if (check_now_ns() > deadline) {
            fprintf(stderr, "bulk mix: %d of %d threads finished: deadlock?\n",
                    atomic_load(&m.finished), MIX_THREADS);
            REQUIRE(0);
        }
        check_sleep_ns(10 * MS);
    }
    for (int i = 0; i < MIX_THREADS; i++)
        REQUIRE(pthread_join(t[i], NULL) == 0);
    CHECK_EQ(atomic_load(&m.errors), 0);
    CHECK_EQ(mempool_available(m.pool), MIX_CAPACITY);
    CHECK_EQ(mempool_drain(m.pool, 0), 0);
    mempool_destroy(m.pool);
}

int main(void)
{
    test_argument_order();
    test_put_bulk_refuses_whole();
    test_bulk_waiter_in_fifo();
    check_bulk_gives_back(0);
    check_bulk_gives_back(1);
    test_bulk_waiters_progress();
    CHECK_DONE();
}
