/* SPDX-License-Identifier: MIT */
/* A thread blocked in the pool for about a second sleeps: it uses almost no
 * CPU time (measured by the thread itself, around the call), whichever way
 * it waits, and a put (or for drain, the last put) still wakes it. */
#include <sys/resource.h>

#include "check.h"
#include "waiter.h"

#define SECOND ((int64_t)1000000000)
#define MS ((int64_t)1000000)

/* A spinning waiter would use about the whole second. */
#define CPU_LIMIT (50 * MS)
#define WAIT_TIME (1 * SECOND)

/* getrusage(RUSAGE_THREAD) as a second opinion on the thread's own CPU. */
static int64_t rusage_thread_ns(void)
{
    struct rusage ru;
    REQUIRE(getrusage(RUSAGE_THREAD, &ru) == 0);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SECOND +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

struct measured {
    struct waiter w;
    int64_t rusage_ns;
};

static void *measured_main(void *arg)
{
    struct measured *m = arg;
    int64_t r0 = rusage_thread_ns();
    waiter_main(&m->w);
    m->rusage_ns = rusage_thread_ns() - r0;
    return NULL;
}

static void run_waiter(struct measured *m, int64_t hold_ns, mempool *pool, void *blk)
{
    atomic_init(&m->w.tid, 0);
    atomic_init(&m->w.done, 0);
    atomic_init(&m->w.start_ns, 0);
    m->w.thread = check_thread(measured_main, m);
    /* Not waiter_wait_asleep: a waiter that spins never looks asleep, and
     * this test is here to measure exactly that. */
    while (atomic_load(&m->w.start_ns) == 0)
        check_sleep_ns(MS);
    check_sleep_ns(hold_ns);
    CHECK(!waiter_done(&m->w));
    CHECK_EQ(mempool_put(pool, blk), 0);
    CHECK(waiter_wait_done(&m->w, 10 * SECOND));
    REQUIRE(pthread_join(m->w.thread, NULL) == 0);
}

static void check_sleeping_wait(enum waiter_call call, int64_t timeout_ns, const char *name)
{
    mempool *pool = check_arena_pool(1, 64, 0);
    void *blk = mempool_get(pool);
    REQUIRE(blk);

    /* A short unmeasured round first, so one-time costs (first use of the
     * wait path, a tool translating code) do not count. */
    struct measured m = { .w = { .pool = pool, .call = call, .timeout_ns = timeout_ns, .n = 1 } };
    run_waiter(&m, 10 * MS, pool, blk);
    blk = call == WAITER_DRAIN ? mempool_get(pool)
        : call == WAITER_GET_BULK ? m.w.blocks[0] : m.w.block;
    REQUIRE(blk);

    memset(&m, 0, sizeof m);
    m.w = (struct waiter){ .pool = pool, .call = call, .timeout_ns = timeout_ns, .n = 1 };
    run_waiter(&m, WAIT_TIME, pool, blk);
    printf("%-24s waited %4lld ms, CPU %.3f ms (rusage %.3f ms)\n", name,
           (long long)(m.w.elapsed_ns / MS), (double)m.w.cpu_ns / MS,
           (double)m.rusage_ns / MS);
    CHECK_EQ(m.w.err, 0);
    CHECK(m.w.elapsed_ns >= WAIT_TIME);
    CHECK(m.w.cpu_ns < CPU_LIMIT);
    CHECK(m.rusage_ns < CPU_LIMIT);
    if (call == WAITER_GET_BULK)
        CHECK(m.w.blocks[0] == blk);
    else if (call != WAITER_DRAIN)
        CHECK(m.w.block == blk);

    if (call != WAITER_DRAIN)
        CHECK_EQ(mempool_put(pool, blk), 0);
    CHECK_EQ(mempool_available(pool), 1);
    mempool_destroy(pool);
}

int main(void)
{
    check_sleeping_wait(WAITER_GET, 0, "get");
    check_sleeping_wait(WAITER_GET_TIMEOUT, 60 * SECOND, "get_timeout(60 s)");
    check_sleeping_wait(WAITER_GET_TIMEOUT, -1, "get_timeout(-1)");
    check_sleeping_wait(WAITER_GET_BULK, 60 * SECOND, "get_bulk(1, 60 s)");
    check_sleeping_wait(WAITER_DRAIN, -1, "drain(-1)");
    CHECK_DONE();
}
