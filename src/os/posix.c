/* SPDX-License-Identifier: MIT */
/* The parts of the OS seam that every POSIX system shares: the monotonic
 * clock, memory and cancellation state. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

/* Below this, memory comes from the C heap; above, straight from mmap so that
 * a big arena is committed page by page as blocks are first touched. */
#define OS_MAP_THRESHOLD ((size_t)64 << 10)

/* The clock of every deadline. A system without CLOCK_MONOTONIC has only
 * the wall clock, whose steps then move timeouts (README, platforms). */
#if defined(MEMPOOL_NO_CLOCK_MONOTONIC)
#define OS_CLOCK CLOCK_REALTIME
#else
#define OS_CLOCK CLOCK_MONOTONIC
#endif

int64_t mempool__os_now(void)
{
    struct timespec ts;
    clock_gettime(OS_CLOCK, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t os_page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}

static size_t os_round_up(size_t n, size_t to)
{
    return (n + to - 1) & ~(to - 1);
}

static void *os_map(size_t size, size_t alignment)
{
    size_t page = os_page_size();
    size_t length = os_round_up(size, page);
    size_t extra = alignment > page ? alignment : 0;
    if (length + extra < length)
        return NULL;
    char *raw = mmap(NULL, length + extra, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    if (!extra)
        return raw;
    /* Over-reserved by `alignment`: trim both ends so that the mapping is
     * exactly [aligned, aligned + length) and free needs no bookkeeping. */
    char *aligned = (char *)os_round_up((uintptr_t)raw, alignment);
    if (aligned > raw)
        munmap(raw, (size_t)(aligned - raw));
    size_t tail = (size_t)(raw + length + extra - (aligned + length));
    if (tail)
        munmap(aligned + length, tail);
    return aligned;
}

#ifdef MEMPOOL_FAULT_INJECTION
/* Test builds only: when set to k > 0, the k-th allocation from now fails
 * (and the countdown stops at 0), so tests can fail every allocation point
 * in turn. */
_Atomic long mempool__fault_countdown;
_Atomic int mempool__fault_barrier;
_Atomic long mempool__fault_barrier_failures;

static bool os_fault_now(void)
{
    long left = atomic_load(&mempool__fault_countdown);
    while (left > 0)
        if (atomic_compare_exchange_weak(&mempool__fault_countdown, &left, left - 1))
            return left == 1;
    return false;
}
#else
static bool os_fault_now(void)
{
    return false;
}
#endif

void *mempool__os_alloc(size_t size, size_t alignment)
{
    if (os_fault_now())
        return NULL;
    if (size == 0)
        size = 1;
    if (size >= OS_MAP_THRESHOLD)
        return os_map(size, alignment);
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    void *p = NULL;
    int saved = errno;
    int rc = posix_memalign(&p, alignment, size);
    errno = saved;
    if (rc != 0)
        return NULL;
    memset(p, 0, size);
    return p;
}

void mempool__os_free(void *p, size_t size, size_t alignment)
{
    (void)alignment;
    if (!p)
        return;
    if (size == 0)
        size = 1;
    if (size >= OS_MAP_THRESHOLD)
        munmap(p, os_round_up(size, os_page_size()));
    else
        free(p);
}

static pthread_key_t exit_key;
static void (*exit_fn)(void);

static void exit_trampoline(void *ignored)
{
    (void)ignored;
    exit_fn();
}

bool mempool__os_exit_hook(void (*at_exit)(void))
{
    exit_fn = at_exit;
    return pthread_key_create(&exit_key, exit_trampoline) == 0;
}

void mempool__os_exit_arm(void)
{
    /* Any non-NULL value makes the destructor run at thread exit. */
    pthread_setspecific(exit_key, &exit_key);
}

void mempool__os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    pthread_atfork(prepare, parent, child);
}

int mempool__os_cancel_off(void)
{
    int old = PTHREAD_CANCEL_ENABLE;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

void mempool__os_cancel_restore(int old_state)
{
    int ignored;
    pthread_setcancelstate(old_state, &ignored);
}
