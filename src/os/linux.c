/* SPDX-License-Identifier: MIT */
/* Linux backend: a private futex per waiting thread, and membarrier(2) as
 * the heavy barrier.
 *
 * FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a wait
 * interrupted by a signal resumes against the same deadline and is never
 * stretched or shortened by restarts. FUTEX_WAKE on a private futex only
 * hashes the address; it never touches the word's memory, which is why a
 * waker may call it after the waiter has returned. */
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

int mempool__os_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != OS_FOREVER) {
        if (mempool__os_now() >= deadline)
            return ETIMEDOUT;
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    int saved = errno;
    long rc = syscall(SYS_futex, (uint32_t *)word,
                      FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tsp,
                      NULL, FUTEX_BITSET_MATCH_ANY);
    int err = rc == 0 ? 0 : errno;
    errno = saved;
    /* EAGAIN: the word had already changed; EINTR: a signal. Both are plain
     * returns for the caller, which re-checks its condition. */
    return err == ETIMEDOUT ? ETIMEDOUT : 0;
}

void mempool__os_wake(_Atomic uint32_t *word, int count)
{
    int saved = errno;
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count,
            NULL, NULL, 0);
    errno = saved;
}

static _Atomic bool membarrier_granted;
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;

static void membarrier_register(void)
{
    int saved = errno;
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    membarrier_granted = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    errno = saved;
}

bool mempool__os_heavy_barrier_init(void)
{
    pthread_once(&membarrier_once, membarrier_register);
    return membarrier_granted;
}


bool mempool__os_heavy_barrier(void)
{
    int saved = errno;
    bool done = !os_barrier_fault() &&
                syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
    errno = saved;
    if (!done)
        atomic_store(&membarrier_granted, false);
    return done;
}

/* Futexes hold no lock in user space: nothing to reset after fork. */
void mempool__os_fork_child(void)
{
}
