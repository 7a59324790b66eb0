/* SPDX-License-Identifier: MIT */
/* Portable POSIX wait backend: futex semantics emulated with a fixed table
 * of mutex + condition variable buckets, hashed by the word's address.
 *
 * Why it cannot lose a wake-up: a waiter compares the word with `expected`
 * while it holds the bucket mutex and releases that mutex only inside
 * pthread_cond_timedwait. A waker changes the word before it takes the same
 * mutex to broadcast, so either the waiter saw the new value, or it was
 * already asleep on the condition when the broadcast came. The waker touches
 * only the static bucket, never the word's memory, so a waiter may return
 * and release its word while the wake is still under way. Several words share
 * a bucket, hence broadcast, and waiters re-check their own word. */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "os.h"

#define BUCKETS 64

static struct bucket {
    pthread_mutex_t lock;
    pthread_cond_t cond;
} buckets[BUCKETS];

static pthread_once_t buckets_once = PTHREAD_ONCE_INIT;

#if !defined(MEMPOOL_NO_CONDATTR_SETCLOCK)
/* The conditions time out on the monotonic clock, the deadlines' own. */
static void bucket_cond_init(struct bucket *b)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cond, &attr);
    pthread_condattr_destroy(&attr);
}

static struct timespec cond_deadline(int64_t deadline)
{
    return (struct timespec){ (time_t)(deadline / 1000000000), (long)(deadline % 1000000000) };
}
#else
/* Without pthread_condattr_setclock, conditions time out on CLOCK_REALTIME:
 * each timed wait turns the time left on the monotonic clock into a wall
 * clock deadline, and the caller's monotonic deadline stays the judge (a
 * wait that the wall clock ends early returns 0 and is waited again, see
 * mempool__os_wait). A step of the wall clock backwards during a wait
 * delays its timeout by the step; none makes it early. */
static void bucket_cond_init(struct bucket *b)
{
    pthread_cond_init(&b->cond, NULL);
}

static struct timespec cond_deadline(int64_t deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t left = deadline - mempool__os_now();
    int64_t wall = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    int64_t at = left > 0 && left > INT64_MAX - wall ? INT64_MAX : wall + (left > 0 ? left : 0);
    return (struct timespec){ (time_t)(at / 1000000000), (long)(at % 1000000000) };
}
#endif

static void buckets_init(void)
{
    for (int i = 0; i < BUCKETS; i++) {
        pthread_mutex_init(&buckets[i].lock, NULL);
        bucket_cond_init(&buckets[i]);
    }
}

/* The buckets are shared by every pool, so a wait or wake on any pool holds
 * one for a moment, and their conditions count the threads asleep on them:
 * a child of fork() could find a mutex held, or a condition waited on, by a
 * thread that does not exist there. The child, which runs alone, starts
 * them afresh. They are not taken around the fork instead: that would add
 * 64 locks to every fork, and sanitizer runtimes that hold their own locks
 * across fork() deadlock on a first use of a mutex then. */
void mempool__os_fork_child(void)
{
    buckets_init();
}

static struct bucket *bucket_of(const void *word)
{
    pthread_once(&buckets_once, buckets_init);
    uintptr_t h = (uintptr_t)word >> 2;
    h ^= h >> 7;
    return &buckets[h % BUCKETS];
}

int mempool__os_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline)
{
    if (deadline != OS_FOREVER && mempool__os_now() >= deadline)
        return ETIMEDOUT;
    struct bucket *b = bucket_of(word);
    struct timespec ts = cond_deadline(deadline);
    int saved = errno;
    /* pthread_cond_wait is a cancellation point; the pool's waits are not. */
    int cancel = mempool__os_cancel_off();
    int err = 0;
    pthread_mutex_lock(&b->lock);
    if (atomic_load_explicit(word, memory_order_acquire) == expected) {
        if (deadline == OS_FOREVER)
            pthread_cond_wait(&b->cond, &b->lock);
        else
            err = pthread_cond_timedwait(&b->cond, &b->lock, &ts);
    }
    pthread_mutex_unlock(&b->lock);
    mempool__os_cancel_restore(cancel);
    errno = saved;
    /* Never early: the condition's clock may run ahead of the deadline's. */
    return err == ETIMEDOUT && mempool__os_now() >= deadline ? ETIMEDOUT : 0;
}

void mempool__os_wake(_Atomic uint32_t *word, int count)
{
    (void)count;
    struct bucket *b = bucket_of(word);
    pthread_mutex_lock(&b->lock);
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* No portable heavy barrier: caches use ordered atomics with this backend. */
bool mempool__os_heavy_barrier_init(void)
{
    return false;
}

bool mempool__os_heavy_barrier(void)
{
    return false;
}
