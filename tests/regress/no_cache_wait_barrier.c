/* SPDX-License-Identifier: MIT */
/* Guards: pools without a per-thread cache (MEMPOOL_NO_CACHE, small pools,
 * checked pools) ran the cache reclaim before each sleep and issued one
 * membarrier(PRIVATE_EXPEDITED) per wait: an interrupt to every CPU running
 * a thread of the process. A pool with no caches must never issue it, and a
 * cached pool whose only cache is the waiter's own has nothing to fence. */
#include <sched.h>
#include <stdatomic.h>

#include "check.h"
#include "syscall_spy.h"

struct pinger {
    mempool *pool;
    int rounds;
    atomic_int held; /* rounds in which the main thread holds every block */
    atomic_int turn; /* odd: the waiter is about to wait */
};

/* Takes the pool's only free block from the waiter many times: each get
 * finds the pool empty and sleeps until the main thread puts it back. */
static void *waiter_main(void *arg)
{
    struct pinger *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        while (atomic_load(&p->held) != i + 1)
            sched_yield();
        atomic_fetch_add(&p->turn, 1);
        void *b = mempool_get_timeout(p->pool, 5000000000);
        REQUIRE(b != NULL);
        CHECK_EQ(mempool_put(p->pool, b), 0);
        atomic_fetch_add(&p->turn, 1);
    }
    return NULL;
}

static long waits_and_barriers(const mempool_config *cfg, const char *name, int rounds,
                               long *barriers)
{
    mempool *pool = mempool_create(cfg);
    REQUIRE(pool != NULL);
    size_t cap = mempool_capacity(pool);
    void **held = calloc(cap, sizeof *held);
    REQUIRE(held != NULL);
    struct pinger p = { .pool = pool, .rounds = rounds };
    mempool_stats before, after;
    long start = atomic_load(&spy_barriers);
    CHECK_EQ(mempool_stats_read(pool, &before), 0);
    pthread_t t = check_thread(waiter_main, &p);
    for (int i = 0; i < rounds; i++) {
        /* Hold every block while the waiter asks for one, then give one. */
        for (size_t k = 0; k < cap; k++)
            REQUIRE((held[k] = mempool_get(pool)) != NULL);
        atomic_store(&p.held, i + 1);
        while (atomic_load(&p.turn) != 2 * i + 1)
            sched_yield();
        check_sleep_ns(20000);
        for (size_t k = 0; k < cap; k++)
            CHECK_EQ(mempool_put(pool, held[k]), 0);
        while (atomic_load(&p.turn) != 2 * i + 2)
            sched_yield();
    }
    pthread_join(t, NULL);
    CHECK_EQ(mempool_stats_read(pool, &after), 0);
    *barriers = atomic_load(&spy_barriers) - start;
    long waits = (long)(after.waits - before.waits);
    printf("%s: %ld waits, %ld heavy barriers\n", name, waits, *barriers);
    free(held);
    mempool_destroy(pool);
    return waits;
}

/* A cached pool used by one thread only: its timed gets on the empty pool
 * sleep and time out, and its own cache needs no fence. The heavy barriers
 * they issued. */
static long own_cache_only(int rounds)
{
    mempool_config cfg = { .capacity = 64, .block_size = 64, .cache_size = 16 };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    void *held[64];
    check_get_all(pool, held);
    long start = atomic_load(&spy_barriers);
    for (int i = 0; i < rounds; i++) {
        errno = 0;
        CHECK(mempool_get_timeout(pool, 10000) == NULL);
        CHECK_EQ(errno, ETIMEDOUT);
    }
    long barriers = atomic_load(&spy_barriers) - start;
    printf("one thread, its own cache only: %d timed waits, %ld heavy barriers\n", rounds,
           barriers);
    CHECK_EQ(mempool_put_bulk(pool, held, 64), 0);
    mempool_destroy(pool);
    return barriers;
}

int main(void)
{
    int rounds = (int)(300 * check_scale()) + 20;
    long barriers;
    mempool_config nocache = { .capacity = 1, .block_size = 64, .flags = MEMPOOL_NO_CACHE };
    long waits = waits_and_barriers(&nocache, "MEMPOOL_NO_CACHE", rounds, &barriers);
    CHECK(waits > 0);
    CHECK_EQ(barriers, 0);
    mempool_config small = { .capacity = 8, .block_size = 64 };
    waits = waits_and_barriers(&small, "small pool", rounds / 4, &barriers);
    CHECK(waits > 0);
    CHECK_EQ(barriers, 0);
    mempool_config checked = { .capacity = 2, .block_size = 64, .flags = MEMPOOL_CHECKED };
    waits = waits_and_barriers(&checked, "checked pool", rounds / 4, &barriers);
    CHECK(waits > 0);
    CHECK_EQ(barriers, 0);
    CHECK_EQ(own_cache_only(rounds / 4), 0);
    CHECK_DONE();
}
