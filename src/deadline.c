/* SPDX-License-Identifier: MIT */
/* mempool_get_until: a get with an absolute CLOCK_MONOTONIC deadline.
 *
 * The deadline becomes a relative timeout against the clock the waits use.
 * That is never early: the wait computes its own deadline from a "now" read
 * later than ours, so it ends at or after the caller's deadline. A deadline
 * too far away to express saturates to forever, one already past becomes a
 * zero timeout (no wait, EAGAIN when nothing is free). */
#include <errno.h>
#include <time.h>

#include "mempool.h"
#include "os.h"

#define NS_PER_SECOND 1000000000

/* The deadline as a timeout for mempool_get_timeout: -1 forever, 0 past. */
static int64_t timeout_until(const struct timespec *deadline)
{
    if (!deadline)
        return -1;
    if (deadline->tv_sec < 0)
        return 0;
    if ((uint64_t)deadline->tv_sec > (uint64_t)(INT64_MAX / NS_PER_SECOND) - 1)
        return -1;
    int64_t at = (int64_t)deadline->tv_sec * NS_PER_SECOND + deadline->tv_nsec;
    int64_t now = mempool__os_now();
    return at > now ? at - now : 0;
}

void *mempool_get_until(mempool *pool, const struct timespec *deadline)
{
    if (deadline && (deadline->tv_nsec < 0 || deadline->tv_nsec >= NS_PER_SECOND)) {
        errno = EINVAL;
        return NULL;
    }
    return mempool_get_timeout(pool, timeout_until(deadline));
}
