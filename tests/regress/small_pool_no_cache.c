/* SPDX-License-Identifier: MIT */
/* Guards: the documented automatic cache size says "none below 64 blocks",
 * but pools of 32 to 63 blocks got a 2- or 3-block cache, so a small pool's
 * blocks could sit in a thread's cache unlike the docs said. A get right
 * after a put is a cache hit exactly when there is a cache. */
#include "check.h"

static uint64_t hits_after_pairs(size_t capacity, unsigned cache_size)
{
    mempool_config cfg = { .capacity = capacity, .block_size = 16, .cache_size = cache_size };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    for (int i = 0; i < 100; i++) {
        void *b = mempool_get(pool);
        REQUIRE(b != NULL);
        CHECK_EQ(mempool_put(pool, b), 0);
    }
    mempool_stats st;
    CHECK_EQ(mempool_stats_read(pool, &st), 0);
    mempool_destroy(pool);
    return st.cache_hits;
}

int main(void)
{
    for (size_t cap = 1; cap < 64; cap++)
        if (hits_after_pairs(cap, 0) != 0) {
            fprintf(stderr, "capacity %zu: automatic cache although below 64 blocks\n", cap);
            check_failures++;
        }
    CHECK(hits_after_pairs(64, 0) > 0);   /* 64 / 16 = 4 blocks */
    CHECK(hits_after_pairs(4096, 0) > 0); /* 256 blocks */
    CHECK(hits_after_pairs(40, 4) > 0);   /* an explicit size is honoured */
    CHECK_DONE();
}
