/* SPDX-License-Identifier: MIT */
/* Creates a pool, moves a block through it and checks the answers. */
#include <stdio.h>

#include <mempool.h>

int main(void)
{
    mempool_config config = { .capacity = 2, .block_size = 100 };
    mempool *pool = mempool_create(&config);
    if (!pool)
        return 1;
    void *block = mempool_get(pool);
    int ok = block && mempool_available(pool) == 1 && mempool_put(pool, block) == 0 &&
             mempool_put(pool, block) != 0 && mempool_available(pool) == 2;
    mempool_destroy(pool);
    puts(ok ? "consumer: ok" : "consumer: FAILED");
    return !ok;
}
