/* SPDX-License-Identifier: MIT */
/* Guards: a bulk get larger than the internal index buffer (64) but no larger
 * than the thread's cache (automatic caches reach 256 blocks, explicit ones
 * 4096) wrote past a stack array, handing out wrong blocks and crashing.
 * Every bulk size from 1 to the capacity is tried, with the cache full,
 * half full and empty, and each result must be n distinct blocks of the
 * pool, each out exactly once. */
#include "check.h"

static void sweep(size_t capacity, unsigned cache_size)
{
    mempool_config cfg = { .capacity = capacity, .block_size = 16, .cache_size = cache_size };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    void **blocks = calloc(capacity, sizeof *blocks);
    unsigned char *seen = calloc(capacity, 1);
    REQUIRE(blocks && seen);
    for (size_t n = 1; n <= capacity; n++) {
        /* Fill the cache first (a get and a put of one block attaches and
         * refills it), so that requests up to its size can be served by it. */
        void *one = mempool_get(pool);
        REQUIRE(one != NULL);
        CHECK_EQ(mempool_put(pool, one), 0);
        int rc = mempool_get_bulk(pool, blocks, n, 0);
        REQUIRE(rc == 0);
        memset(seen, 0, capacity);
        for (size_t i = 0; i < n; i++) {
            size_t index = mempool_index(pool, blocks[i]);
            REQUIRE(index < capacity);
            if (seen[index]) {
                fprintf(stderr, "capacity %zu cache %u: bulk of %zu hands out block %zu twice\n",
                        capacity, cache_size, n, index);
                exit(1);
            }
            seen[index] = 1;
        }
        CHECK_EQ(mempool_available(pool), capacity - n);
        CHECK_EQ(mempool_put_bulk(pool, blocks, n), 0);
        CHECK_EQ(mempool_available(pool), capacity);
        /* Large sizes are slow to sweep one by one: step through them. */
        if (n >= 512)
            n += n / 8;
    }
    free(seen);
    free(blocks);
    mempool_destroy(pool);
}

int main(void)
{
    sweep(4096, 0);     /* automatic cache: 256 blocks */
    sweep(16384, 4096); /* the largest explicit cache */
    sweep(300, 75);     /* a cache just past the buffer */
    sweep(64, 16);
    CHECK_DONE();
}
