/* SPDX-License-Identifier: MIT */
/* mempool_get_until: an absolute CLOCK_MONOTONIC deadline is never returned
 * from early, a deadline already past does not wait, NULL and a deadline too
 * far to express wait until a put, close wakes the waiter with ECANCELED, and
 * a malformed timespec is refused with EINVAL. */
#include <stdint.h>

#include "check.h"
#include "waiter.h"

#define SECOND ((int64_t)1000000000)
#define MS ((int64_t)1000000)
#define US ((int64_t)1000)

/* Late only by scheduling noise: this bound only catches a hang. */
#define LATE_BOUND (2 * SECOND)

static struct timespec at_ns(int64_t ns)
{
    struct timespec ts = { (time_t)(ns / SECOND), (long)(ns % SECOND) };
    return ts;
}

static int64_t ns_of(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * SECOND + ts->tv_nsec;
}

static void test_never_early(void)
{
    static const int64_t offsets[] = { 1, 1 * US, 1 * MS, 20 * MS, 150 * MS };
    mempool *pool = check_arena_pool(1, 16, 0);
    void *only = mempool_get(pool);
    REQUIRE(only);
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        struct timespec deadline = at_ns(check_now_ns() + offsets[i]);
        errno = 0;
        void *got = mempool_get_until(pool, &deadline);
        int err = errno;
        struct timespec returned;
        clock_gettime(CLOCK_MONOTONIC, &returned);
        CHECK(got == NULL);
        /* A deadline a few ns away may be past before the call reads the
         * clock: then it does not wait (EAGAIN), still not early. */
        CHECK(err == ETIMEDOUT || (err == EAGAIN && offsets[i] < MS));
        if (ns_of(&returned) < ns_of(&deadline))
            fprintf(stderr, "deadline +%lld ns: returned %lld ns early\n",
                    (long long)offsets[i], (long long)(ns_of(&deadline) - ns_of(&returned)));
        CHECK(ns_of(&returned) >= ns_of(&deadline));
        CHECK(ns_of(&returned) <= ns_of(&deadline) + LATE_BOUND);
    }
    CHECK_EQ(mempool_put(pool, only), 0);
    mempool_destroy(pool);
}

/* A passed deadline behaves as a zero timeout: a free block is taken, and
 * without one the call fails at once with EAGAIN. */
static void test_past_does_not_wait(void)
{
    mempool *pool = check_arena_pool(1, 16, 0);
    struct timespec past[] = {
        at_ns(check_now_ns() - SECOND), at_ns(check_now_ns()), { 0, 0 }, { -5, 0 },
    };
    struct timespec yesterday = past[0];
    errno = WAITER_ERRNO_SENTINEL;
    void *only = mempool_get_until(pool, &yesterday);
    CHECK(only != NULL);
    CHECK_EQ(errno, WAITER_ERRNO_SENTINEL);
    for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
        int64_t t0 = check_now_ns();
        errno = 0;
        CHECK(mempool_get_until(pool, &past[i]) == NULL);
        CHECK_EQ(errno, EAGAIN);
        CHECK(check_now_ns() - t0 < LATE_BOUND);
    }
    CHECK_EQ(mempool_put(pool, only), 0);
    mempool_destroy(pool);
}

/* A one-block pool whose block this thread holds (*only), and a waiter
 * asleep in mempool_get_until on it. */
static mempool *start_asleep(struct waiter *w, const struct timespec *deadline, void **only)
{
    mempool *pool = check_arena_pool(1, 16, 0);
    *only = mempool_get(pool);
    REQUIRE(*only);
    *w = (struct waiter){ .pool = pool, .call = WAITER_GET_UNTIL, .deadline = deadline };
    waiter_start(w);
    CHECK(waiter_wait_asleep(w));
    return pool;
}

/* The waiter must still be asleep well after it started, and must take the
 * block a put from this thread hands it. */
static void check_waits_until_put(const struct timespec *deadline)
{
    struct waiter w;
    void *only;
    mempool *pool = start_asleep(&w, deadline, &only);
    check_sleep_ns(100 * MS);
    CHECK(!waiter_done(&w));
    CHECK_EQ(mempool_put(pool, only), 0);
    waiter_join(&w);
    CHECK_EQ(w.err, 0);
    CHECK(w.block == only);
    CHECK(w.errno_kept);
    CHECK_EQ(mempool_put(pool, w.block), 0);
    mempool_destroy(pool);
}

static void test_forever(void)
{
    check_waits_until_put(NULL);
    /* Too far to express in int64_t nanoseconds: saturates to forever. */
    struct timespec distant = { (time_t)(INT64_MAX / SECOND), 999999999 };
    check_waits_until_put(&distant);
    struct timespec farthest = { (time_t)(sizeof(time_t) >= 8 ? INT64_MAX : INT32_MAX),
                                 999999999 };
    check_waits_until_put(&farthest);
    /* An ordinary deadline a minute away also ends with the put. */
    struct timespec minute = at_ns(check_now_ns() + 60 * SECOND);
    check_waits_until_put(&minute);
}

static void check_close_wakes(const struct timespec *deadline)
{
    struct waiter w;
    void *only;
    mempool *pool = start_asleep(&w, deadline, &only);
    mempool_close(pool);
    waiter_join(&w);
    CHECK(w.block == NULL);
    CHECK_EQ(w.err, ECANCELED);
    /* Closed: even a passed deadline reports ECANCELED, not EAGAIN. */
    struct timespec past = { 0, 0 };
    errno = 0;
    CHECK(mempool_get_until(pool, &past) == NULL);
    CHECK_EQ(errno, ECANCELED);
    CHECK_EQ(mempool_put(pool, only), 0);
    mempool_destroy(pool);
}

static void test_close(void)
{
    check_close_wakes(NULL);
    struct timespec minute = at_ns(check_now_ns() + 60 * SECOND);
    check_close_wakes(&minute);
}

static void test_invalid(void)
{
    mempool *pool = check_arena_pool(2, 16, 0);
    const struct timespec bad[] = {
        { 0, -1 }, { 0, 1000000000 }, { 1, 2000000000 }, { -1, -1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        CHECK(mempool_get_until(pool, &bad[i]) == NULL);
        CHECK_EQ(errno, EINVAL);
    }
    CHECK_EQ(mempool_available(pool), 2);
    struct timespec now = at_ns(check_now_ns());
    errno = 0;
    CHECK(mempool_get_until(NULL, &now) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mempool_get_until(NULL, NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    mempool_destroy(pool);
}

/* Retries that share one deadline: once it has passed, a later call with
 * it does not wait again. */
static void test_shared_deadline(void)
{
    mempool *pool = check_arena_pool(1, 16, 0);
    void *only = mempool_get(pool);
    REQUIRE(only);
    struct timespec deadline = at_ns(check_now_ns() + 50 * MS);
    errno = 0;
    CHECK(mempool_get_until(pool, &deadline) == NULL);
    CHECK_EQ(errno, ETIMEDOUT);
    int64_t t0 = check_now_ns();
    errno = 0;
    CHECK(mempool_get_until(pool, &deadline) == NULL);
    CHECK_EQ(errno, EAGAIN);
    CHECK(check_now_ns() - t0 < LATE_BOUND);
    CHECK_EQ(mempool_put(pool, only), 0);
    mempool_destroy(pool);
}

int main(void)
{
    test_never_early();
    test_past_does_not_wait();
    test_forever();
    test_close();
    test_invalid();
    test_shared_deadline();
    CHECK_DONE();
}
