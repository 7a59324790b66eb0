/* SPDX-License-Identifier: MIT */
/* mempool_get_timeout: 0 does not wait, a negative or huge timeout waits
 * forever, a timed wait is never early and never hangs, errno is untouched on
 * success, signals neither cut a wait short nor lose its wake-up, and a
 * timeout racing a put never loses the block. */
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>

#include "check.h"
#include "waiter.h"

#define SECOND ((int64_t)1000000000)
#define MS ((int64_t)1000000)
#define US ((int64_t)1000)

/* Late only by scheduling noise: this bound only catches a hang. */
#define LATE_BOUND (2 * SECOND)

static void test_zero_does_not_wait(void)
{
    mempool *pool = check_arena_pool(1, 16, 0);
    void *blk = mempool_get_timeout(pool, 0);
    CHECK(blk != NULL);

    int64_t t0 = check_now_ns();
    errno = 0;
    CHECK(mempool_get_timeout(pool, 0) == NULL);
    CHECK_EQ(errno, EAGAIN);
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL);
    CHECK_EQ(errno, EAGAIN);
    /* No wait allowed: anything near a second means it slept. */
    CHECK(check_now_ns() - t0 < LATE_BOUND);

    CHECK_EQ(mempool_put(pool, blk), 0);
    mempool_destroy(pool);
}

static void test_timed_get_expires(void)
{
    static const int64_t timeouts[] = { 1, 1 * US, 1 * MS, 20 * MS, 150 * MS };
    mempool *pool = check_arena_pool(2, 16, 0);
    void *a = mempool_get(pool), *b = mempool_get(pool);
    REQUIRE(a && b);
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        int64_t t0 = check_now_ns();
        errno = 0;
        void *got = mempool_get_timeout(pool, timeouts[i]);
        int err = errno;
        int64_t elapsed = check_now_ns() - t0;
        CHECK(got == NULL);
        CHECK_EQ(err, ETIMEDOUT);
        if (elapsed < timeouts[i] || elapsed > timeouts[i] + LATE_BOUND)
            fprintf(stderr, "timeout %lld ns returned after %lld ns\n",
                    (long long)timeouts[i], (long long)elapsed);
        CHECK(elapsed >= timeouts[i]);
        CHECK(elapsed <= timeouts[i] + LATE_BOUND);
    }
    CHECK_EQ(mempool_available(pool), 0);
    CHECK_EQ(mempool_put(pool, a), 0);
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);
}

/* A waiter with this timeout must still be asleep well after it started,
 * and must take the block a put hands it. */
static void check_waits_until_put(int64_t timeout_ns)
{
    mempool *pool = check_arena_pool(1, 16, 0);
    void *blk = mempool_get(pool);
    REQUIRE(blk);

    struct waiter w = { .pool = pool, .call = WAITER_GET_TIMEOUT, .timeout_ns = timeout_ns };
    waiter_start(&w);
    CHECK(waiter_wait_asleep(&w));
    check_sleep_ns(100 * MS);
    if (waiter_done(&w))
        fprintf(stderr, "timeout %lld returned early: err %d\n", (long long)timeout_ns, w.err);
    CHECK(!waiter_done(&w));

    CHECK_EQ(mempool_put(pool, blk), 0);
    CHECK(waiter_wait_done(&w, 10 * SECOND));
    waiter_join(&w);
    CHECK(w.block == blk);
    CHECK(w.errno_kept);
    if (w.block)
        CHECK_EQ(mempool_put(pool, w.block), 0);
    CHECK_EQ(mempool_available(pool), 1);
    mempool_destroy(pool);
}

static void test_forever(void)
{
    check_waits_until_put(-1);
    check_waits_until_put(-SECOND);
    check_waits_until_put(INT64_MIN);
    /* Huge values saturate to forever instead of wrapping into the past. */
    check_waits_until_put(INT64_MAX);
    check_waits_until_put(INT64_MAX - 1);
    check_waits_until_put(INT64_MAX - SECOND + 1);
    check_waits_until_put(INT64_MAX / 2);
    /* A long finite timeout is woken by a put the same way. */
    check_waits_until_put(60 * SECOND);
}

static void test_errno_kept_on_success(void)
{
    mempool *pool = check_arena_pool(1, 16, 0);
    static const int64_t timeouts[] = { 0, 1, MS, SECOND, -1, INT64_MAX };
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        errno = WAITER_ERRNO_SENTINEL;
        void *blk = mempool_get_timeout(pool, timeouts[i]);
        CHECK(blk != NULL);
        CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);
        CHECK_EQ(mempool_put(pool, blk), 0);
        CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);
    }
    errno = WAITER_ERRNO_SENTINEL;
    void *blk = mempool_try_get(pool);
    CHECK(blk != NULL);
    CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);
    CHECK_EQ(mempool_put(pool, blk), 0);
    blk = mempool_get(pool);
    CHECK(blk != NULL);
    CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);
    CHECK_EQ(mempool_put(pool, blk), 0);
    mempool_destroy(pool);
}

#if !defined(_WIN32) /* POSIX signals */
/* Signals sent to a waiting thread. */
static atomic_int signals_handled;

static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals_handled, 1);
}

static void install_handler(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(sig, &sa, NULL) == 0);
}

/* Sends `sig` to the waiter every 2 ms until it returns or `for_ns` passes;
 * returns the number sent. */
static int pester(struct waiter *w, int sig, int64_t for_ns)
{
    int64_t end = check_now_ns() + for_ns;
    int sent = 0;
    while (!waiter_done(w) && check_now_ns() < end) {
        if (pthread_kill(w->thread, sig) == 0)
            sent++;
        check_sleep_ns(2 * MS);
    }
    return sent;
}

static void test_signals(int sig, int sa_flags)
{
    install_handler(sig, sa_flags);
    mempool *pool = check_arena_pool(1, 16, 0);
    void *blk = mempool_get(pool);
    REQUIRE(blk);

    /* A timed wait under signals still expires on time with ETIMEDOUT.
     * Signals start as soon as the call is announced: waiting to see it
     * asleep could, on a loaded machine, take longer than the timeout. */
    const int64_t timeout = 500 * MS;
    struct waiter w = { .pool = pool, .call = WAITER_GET_TIMEOUT, .timeout_ns = timeout };
    int before = atomic_load(&signals_handled);
    waiter_start(&w);
    while (atomic_load(&w.start_ns) == 0)
        check_sleep_ns(100 * US);
    int sent = pester(&w, sig, timeout + 10 * SECOND);
    CHECK(waiter_wait_done(&w, 10 * SECOND));
    waiter_join(&w);
    CHECK(sent > 0);
    CHECK(atomic_load(&signals_handled) > before);
    CHECK(w.block == NULL);
    CHECK_EQ(w.err, ETIMEDOUT);
    CHECK(w.elapsed_ns >= timeout);
    CHECK(w.elapsed_ns <= timeout + LATE_BOUND);

    /* Waits that only a put ends: signals do not end them, the put does. */
    static const struct { enum waiter_call call; int64_t timeout; } kinds[] = {
        { WAITER_GET, 0 },
        { WAITER_GET_TIMEOUT, -1 },
        { WAITER_GET_TIMEOUT, 60 * SECOND },
        { WAITER_GET_BULK, -1 },
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct waiter v = { .pool = pool, .call = kinds[k].call,
                            .timeout_ns = kinds[k].timeout, .n = 1 };
        before = atomic_load(&signals_handled);
        waiter_start(&v);
        CHECK(waiter_wait_asleep(&v));
        CHECK(pester(&v, sig, 200 * MS) > 0);
        if (waiter_done(&v))
            fprintf(stderr, "signal %d ended wait kind %zu: err %d\n", sig, k, v.err);
        CHECK(!waiter_done(&v));

        CHECK_EQ(mempool_put(pool, blk), 0);
        pester(&v, sig, 10 * SECOND);
        CHECK(waiter_wait_done(&v, 10 * SECOND));
        waiter_join(&v);
        /* Handled by now (a sanitizer may defer a handler to the call's end). */
        CHECK(atomic_load(&signals_handled) > before);
        CHECK_EQ(v.err, 0);
        CHECK(v.errno_kept);
        void *got = kinds[k].call == WAITER_GET_BULK ? v.blocks[0] : v.block;
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

/* Timed gets with tiny timeouts racing puts. The put is aimed at the
 * getter's deadline (from just before it to well after, where the kernel's
 * timer slack lets the wait end), so that the put often lands while the
 * getter is giving up. After each round the block is either with a getter
 * or free in the pool; a wake-up swallowed by a timing-out waiter loses it. */
#endif

static void test_timeout_races_put(void)
{
    enum { CAP = 2 };
    mempool *pool = check_arena_pool(CAP, 16, 0);
    void *held[CAP];
    for (int i = 0; i < CAP; i++)
        REQUIRE((held[i] = mempool_get(pool)) != NULL);

    int rounds = (int)(3000 * check_scale());
    if (rounds < 60)
        rounds = 60;
    int served = 0, expired = 0;
    for (int r = 0; r < rounds; r++) {
        /* One or two getters; timeouts of 0 to ~200 us. */
        int getters = 1 + r % 2;
        struct waiter w[2];
        memset(w, 0, sizeof w);
        for (int g = 0; g < getters; g++) {
            w[g].pool = pool;
            w[g].call = (r / 2 + g) % 3 == 2 ? WAITER_GET_BULK : WAITER_GET_TIMEOUT;
            w[g].n = 1;
            w[g].timeout_ns = ((r * 37 + g * 101) % 200) * US;
            waiter_start(&w[g]);
        }
        int64_t start;
        while ((start = atomic_load(&w[0].start_ns)) == 0)
            sched_yield();
        int64_t target = start + w[0].timeout_ns + ((r * 7) % 120 - 20) * US;
        while (check_now_ns() < target)
            sched_yield();
        for (int g = 0; g < getters; g++)
            CHECK_EQ(mempool_put(pool, held[g]), 0);

        int got = 0;
        for (int g = 0; g < getters; g++) {
            waiter_join(&w[g]);
            void *b = w[g].call == WAITER_GET_BULK ? w[g].blocks[0] : w[g].block;
            if (w[g].err == 0) {
                CHECK(b == held[0] || b == held[1]);
                got++;
            } else {
                CHECK(w[g].err == ETIMEDOUT || (w[g].timeout_ns == 0 && w[g].err == EAGAIN));
            }
        }
        served += got;
        expired += getters - got;
        /* Nothing lost: what the getters did not take is free (the main
         * thread still holds the blocks it did not put this round). */
        CHECK_EQ(mempool_available(pool), getters - got);
        int k = 0;
        for (int g = 0; g < getters; g++) {
            void *b = w[g].call == WAITER_GET_BULK ? w[g].blocks[0] : w[g].block;
            if (w[g].err == 0)
                held[k++] = b;
        }
        while (k < getters) {
            void *b = mempool_try_get(pool);
            CHECK(b != NULL);
            REQUIRE(b);
            held[k++] = b;
        }
        CHECK_EQ(mempool_available(pool), 0);
    }
    printf("timeout races: %d served, %d expired\n", served, expired);
    for (int i = 0; i < CAP; i++)
        CHECK_EQ(mempool_put(pool, held[i]), 0);
    CHECK_EQ(mempool_available(pool), CAP);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_destroy(pool);
}

int main(void)
{
    test_zero_does_not_wait();
    test_timed_get_expires();
    test_forever();
    test_errno_kept_on_success();
#if !defined(_WIN32)
    test_signals(SIGUSR1, SA_RESTART);
    test_signals(SIGUSR2, 0);
#else
    printf("skipped on Windows: signals interrupting a wait (POSIX signals)\n");
#endif
    test_timeout_races_put();
    CHECK_DONE();
}
