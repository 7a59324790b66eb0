/* SPDX-License-Identifier: MIT */
/* The five steps of a pool's life: create, get (waiting or with a timeout),
 * put, ask its capacity, and shut it down. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mempool.h"

struct message {
    int id;
    char text[60];
};

static void *late_put(void *arg)
{
    void **pair = arg; /* pool, block */
    struct timespec delay = { 0, 50 * 1000 * 1000 };
    nanosleep(&delay, NULL);
    mempool_put(pair[0], pair[1]);
    return NULL;
}

int main(void)
{
    /* 1. Create: four blocks of one message each, allocated once, up front. */
    mempool_config config = { .capacity = 4, .block_size = sizeof(struct message) };
    mempool *pool = mempool_create(&config);
    if (!pool) {
        perror("mempool_create");
        return 1;
    }

    /* 2. Get: take every block. */
    struct message *held[4];
    for (int i = 0; i < 4; i++) {
        held[i] = mempool_get(pool);
        held[i]->id = i;
        snprintf(held[i]->text, sizeof held[i]->text, "message %d", i);
    }
    /* The pool is empty: a timed get gives up, and says why. */
    if (!mempool_get_timeout(pool, 10 * 1000 * 1000) && errno == ETIMEDOUT)
        printf("timed get on an empty pool: ETIMEDOUT after 10 ms\n");

    /* A plain get sleeps until another thread puts a block back. */
    void *pair[2] = { pool, held[3] };
    pthread_t thread;
    pthread_create(&thread, NULL, late_put, pair);
    struct message *again = mempool_get(pool);
    printf("waiting get woke with \"%s\" (block %zu)\n", again->text,
           mempool_index(pool, again));
    pthread_join(thread, NULL);
    held[3] = again;

    /* 3. Put: give the blocks back; a second put of one block is refused. */
    for (int i = 0; i < 4; i++)
        mempool_put(pool, held[i]);
    int err = mempool_put(pool, held[0]);
    printf("repeated put refused: %s\n", err == EINVAL ? "EINVAL" : "accepted?!");

    /* 4. Capacity is fixed; availability is what is not out right now. */
    printf("capacity %zu, available %zu\n", mempool_capacity(pool),
           mempool_available(pool));

    /* 5. Shut down: close wakes any waiter, drain waits for every block,
     * destroy releases the memory. */
    mempool_close(pool);
    if (mempool_drain(pool, -1) == 0)
        printf("drained, destroying\n");
    mempool_destroy(pool);
    return 0;
}
