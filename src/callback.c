/* SPDX-License-Identifier: MIT */
/* The caller's callbacks, run with cancellation off and errno kept: a
 * callback that fails or is cancelled must not leave the pool half done.
 * Also the report of a broken invariant in MEMPOOL_DEBUG builds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"


void *mempool__call_make(mempool *pool)
{
    int saved = errno;
    int cancel = mempool__os_cancel_off();
    void *block = pool->make(pool->arg);
    mempool__os_cancel_restore(cancel);
    errno = saved;
    return block;
}

void mempool__report(mempool *pool, const char *what, const void *block)
{
    if (!pool->on_misuse)
        return;
    int saved = errno;
    int cancel = mempool__os_cancel_off();
    pool->on_misuse(what, block, pool->arg);
    mempool__os_cancel_restore(cancel);
    errno = saved;
}

void mempool__call_unmake(mempool *pool, void *block)
{
    if (!pool->unmake)
        return;
    int saved = errno;
    int cancel = mempool__os_cancel_off();
    pool->unmake(block, pool->arg);
    mempool__os_cancel_restore(cancel);
    errno = saved;
}

void mempool__debug_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "mempool: internal invariant broken at %s:%d: %s\n", file, line, what);
    abort();
}

/* Counts and reports a refused put (a mode's own report first: checked
 * pools also speak without an on_misuse callback). */
void mempool__put_refused(mempool *pool, const char *what, const void *block)
{
    atomic_fetch_add_explicit(&pool->refused, 1, memory_order_relaxed);
    if (pool->ops)
        pool->ops->report(pool, what, block);
    else
        mempool__report(pool, what, block);
}
