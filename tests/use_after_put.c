/* SPDX-License-Identifier: MIT */
/* Writes to a block after putting it back: a bug in the caller that the
 * tools should report. The ASan build of this program links the library
 * uninstrumented and expects "use-after-poison"; under valgrind it expects an
 * invalid write, and with "leak" a report of the block never put back;
 * "clean" makes only legal uses ("generator-clean": of malloc'd blocks;
 * "generator-leak": destroys a generator pool with a block out, which is
 * the caller's to free);
 * "never-got" writes to a block that was never handed out (free from the
 * start: poisoned at creation); "checked-bulk" puts the block back with a
 * bulk put of a checked pool (its own path) before writing to it. Not a ctest test on its own: it commits the bug on purpose. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mempool.h"

static void *make_block(void *arg)
{
    (void)arg;
    return malloc(40);
}

static void unmake_block(void *block, void *arg)
{
    (void)arg;
    free(block);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "arena";
    mempool_config cfg = { .capacity = 256, .block_size = 40 };
    if (!strcmp(mode, "checked-bulk"))
        cfg.flags = MEMPOOL_CHECKED;
    if (strstr(mode, "generator")) {
        /* Blocks from malloc: ASan knows their size, so they are tracked too. */
        cfg.block_size = 0;
        cfg.make = make_block;
        cfg.unmake = unmake_block;
    }
    mempool *pool = mempool_create(&cfg);
    if (!pool)
        return 2;
    char *block = mempool_get(pool);
    char *neighbour = mempool_get(pool);
    memset(block, 1, 40);
    memset(neighbour, 2, 40); /* in use: must never be reported */
    if (!strcmp(mode, "checked-bulk")) {
        void *two[2] = { block, mempool_get(pool) };
        if (mempool_put_bulk(pool, two, 2) != 0)
            return 2;
    } else if (mempool_put(pool, block) != 0) {
        return 2;
    }
    if (!strcmp(mode, "leak")) {
        /* neighbour is never put back: destroy must report it */
        mempool_destroy(pool);
        return 0;
    }
    if (!strcmp(mode, "generator-leak")) {
        /* A generator's block out at destroy is the caller's to free:
         * nothing to report. */
        mempool_destroy(pool);
        free(neighbour);
        return 0;
    }
    if (strstr(mode, "clean")) {
        block = mempool_get(pool); /* handed out again: fine to use */
        memset(block, 3, 40);
        void *both[2] = { block, neighbour };
        if (mempool_put_bulk(pool, both, 2) != 0)
            return 2;
        mempool_destroy(pool);
        puts("clean");
        return 0;
    }
    if (!strcmp(mode, "never-got")) {
        char *fresh = mempool_block(pool, 200);
        fprintf(stderr, "writing to %p, never handed out\n", (void *)fresh);
        ((volatile char *)fresh)[3] = 7;
        mempool_put(pool, neighbour);
        mempool_destroy(pool);
        return 0;
    }
    fprintf(stderr, "writing to %p after putting it back\n", (void *)block);
    ((volatile char *)block)[3] = 7;
    mempool_put(pool, neighbour);
    mempool_destroy(pool);
    return 0;
}
