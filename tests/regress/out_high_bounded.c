/* SPDX-License-Identifier: MIT */
/* Guards: the high-water mark `out_high` could wrap to about 2^64. A get
 * samples "capacity minus the free blocks outside the caches" from reads
 * taken at different moments (the stack depth its pop left, then the blocks
 * collected by queued bulk waiters), so a bulk get that moves blocks from
 * the stack into its waiter between the two reads makes them count twice
 * and the subtraction wrap. Single gets race bulk gets that queue here, and
 * the mark must never exceed the capacity. */
#include <stdatomic.h>

#include "check.h"

#define CAPACITY 4

static atomic_int stop;

static void *single_main(void *arg)
{
    mempool *pool = arg;
    while (!atomic_load(&stop)) {
        void *b = mempool_get_timeout(pool, 1000000);
        if (b)
            CHECK_EQ(mempool_put(pool, b), 0);
    }
    return NULL;
}

static void *bulk_main(void *arg)
{
    mempool *pool = arg;
    void *blocks[CAPACITY];
    while (!atomic_load(&stop))
        if (mempool_get_bulk(pool, blocks, CAPACITY, 1000000) == 0)
            CHECK_EQ(mempool_put_bulk(pool, blocks, CAPACITY), 0);
    return NULL;
}

int main(void)
{
    mempool_config cfg = { .capacity = CAPACITY, .block_size = 16, .flags = MEMPOOL_NO_CACHE };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    pthread_t t[3];
    t[0] = check_thread(single_main, pool);
    t[1] = check_thread(single_main, pool);
    t[2] = check_thread(bulk_main, pool);
    int64_t end = check_now_ns() + (int64_t)(1.5e9 * check_scale()) + 100000000;
    mempool_stats st = { 0 };
    while (check_now_ns() < end) {
        check_sleep_ns(10000000);
        CHECK_EQ(mempool_stats_read(pool, &st), 0);
        if (st.out_high > CAPACITY)
            break;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(mempool_stats_read(pool, &st), 0);
    printf("%llu gets, %llu waits; out_high %llu (capacity %d)\n",
           (unsigned long long)st.gets, (unsigned long long)st.waits,
           (unsigned long long)st.out_high, CAPACITY);
    CHECK(st.out_high <= CAPACITY);
    mempool_destroy(pool);
    CHECK_DONE();
}
