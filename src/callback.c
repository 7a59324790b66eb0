/* SPDX-License-Identifier: MIT */
/* The caller's callbacks, run with cancellation off and errno kept: a
 * callback that fails or is cancelled must not leave the pool half done. */
#include <errno.h>

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
