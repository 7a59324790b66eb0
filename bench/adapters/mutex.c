/* SPDX-License-Identifier: MIT */
/* The textbook baseline: an intrusive free list behind one mutex, with a
 * condition variable to sleep on when it is empty. */
#include <pthread.h>
#include <stdlib.h>

#include "../adapter.h"

struct link {
    struct link *next;
};

struct mutex_pool {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    struct link *free;
    void *arena;
};

static void *create(size_t block_size, size_t capacity)
{
    struct mutex_pool *pool = calloc(1, sizeof *pool);
    size_t stride = bench_stride(block_size);
    if (!pool || !(pool->arena = aligned_alloc(16, stride * capacity))) {
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->nonempty, NULL);
    for (size_t i = capacity; i-- > 0;) {
        struct link *block = (struct link *)((char *)pool->arena + i * stride);
        block->next = pool->free;
        pool->free = block;
    }
    return pool;
}

static void destroy(void *opaque)
{
    struct mutex_pool *pool = opaque;
    pthread_cond_destroy(&pool->nonempty);
    pthread_mutex_destroy(&pool->lock);
    free(pool->arena);
    free(pool);
}

/* Takes the first block; the lock is held. */
static void *pop_locked(struct mutex_pool *pool)
{
    struct link *block = pool->free;
    if (block)
        pool->free = block->next;
    return block;
}

static void push_locked(struct mutex_pool *pool, void *block)
{
    struct link *link = block;
    link->next = pool->free;
    pool->free = link;
}

static void *get(void *opaque)
{
    struct mutex_pool *pool = opaque;
    pthread_mutex_lock(&pool->lock);
    void *block = pop_locked(pool);
    pthread_mutex_unlock(&pool->lock);
    return block;
}

static void *get_wait(void *opaque)
{
    struct mutex_pool *pool = opaque;
    pthread_mutex_lock(&pool->lock);
    void *block;
    while (!(block = pop_locked(pool)))
        pthread_cond_wait(&pool->nonempty, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return block;
}

static void put(void *opaque, void *block)
{
    struct mutex_pool *pool = opaque;
    pthread_mutex_lock(&pool->lock);
    push_locked(pool, block);
    pthread_mutex_unlock(&pool->lock);
    pthread_cond_signal(&pool->nonempty);
}

static int get_bulk(void *opaque, void **blocks, size_t n)
{
    struct mutex_pool *pool = opaque;
    size_t taken = 0;
    pthread_mutex_lock(&pool->lock);
    while (taken < n && (blocks[taken] = pop_locked(pool)))
        taken++;
    if (taken < n) /* all or nothing */
        while (taken > 0)
            push_locked(pool, blocks[--taken]);
    pthread_mutex_unlock(&pool->lock);
    return taken == n ? 0 : -1;
}

static void put_bulk(void *opaque, void *const *blocks, size_t n)
{
    struct mutex_pool *pool = opaque;
    pthread_mutex_lock(&pool->lock);
    for (size_t i = 0; i < n; i++)
        push_locked(pool, blocks[i]);
    pthread_mutex_unlock(&pool->lock);
    pthread_cond_broadcast(&pool->nonempty);
}

static const struct bench_impl mutex_pool = {
    .name = "mutex-list",
    .create = create,
    .destroy = destroy,
    .get = get,
    .put = put,
    .get_wait = get_wait,
    .get_bulk = get_bulk,
    .put_bulk = put_bulk,
};
BENCH_ADAPTER(mutex_pool)
