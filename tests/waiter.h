/* SPDX-License-Identifier: MIT */
/* A thread that makes one waiting pool call (get, get_timeout, get_until,
 * get_bulk or drain) and records how it ended, for tests that need a call asleep inside
 * the pool while the main thread acts on it. Include after check.h. */
#ifndef MEMPOOL_TEST_WAITER_H
#define MEMPOOL_TEST_WAITER_H

#include <stdatomic.h>
#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "check.h"

/* An errno value no pool call sets: a successful call must leave it alone. */
#define WAITER_ERRNO_SENTINEL 4242
#define WAITER_BULK_MAX 16

enum waiter_call { WAITER_GET, WAITER_GET_TIMEOUT, WAITER_GET_UNTIL, WAITER_GET_BULK,
                   WAITER_DRAIN };

struct waiter {
    /* Set by the test before waiter_start(). */
    mempool *pool;
    enum waiter_call call;
    int64_t timeout_ns;     /* GET_TIMEOUT, GET_BULK, DRAIN */
    const struct timespec *deadline; /* GET_UNTIL */
    size_t n;               /* GET_BULK */
    atomic_int *order;      /* optional: a ticket is taken from it on return */

    /* Published by the waiter thread. */
    atomic_int tid;         /* its kernel tid, stored just before the call */
    atomic_int done;        /* 1 once the call has returned */
    _Atomic int64_t start_ns; /* CLOCK_MONOTONIC time just before the call */

    /* Written by the waiter before `done`; read after done or join. */
    void *block;            /* GET, GET_TIMEOUT, GET_UNTIL */
    void *blocks[WAITER_BULK_MAX];
    int err;                /* errno after NULL, or the int returned */
    int errno_kept;         /* a successful call left errno alone */
    int ticket;             /* place among the waiters sharing `order` */
    int64_t elapsed_ns;     /* wall time inside the call */
    int64_t cpu_ns;         /* this thread's CPU time inside the call */
    pthread_t thread;
};

static inline int64_t waiter_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    int rc = 0;

#if defined(_WIN32)
    atomic_store(&w->tid, (int)GetCurrentThreadId()); /* no /proc: waits sleep instead */
#else
    atomic_store(&w->tid, (int)syscall(SYS_gettid));
#endif
    errno = WAITER_ERRNO_SENTINEL;
    int64_t cpu0 = waiter_thread_cpu_ns();
    int64_t t0 = check_now_ns();
    atomic_store(&w->start_ns, t0);
    switch (w->call) {
    case WAITER_GET:
        w->block = mempool_get(w->pool);
        rc = w->block ? 0 : errno;
        break;
    case WAITER_GET_TIMEOUT:
        w->block = mempool_get_timeout(w->pool, w->timeout_ns);
        rc = w->block ? 0 : errno;
        break;
    case WAITER_GET_UNTIL:
        w->block = mempool_get_until(w->pool, w->deadline);
        rc = w->block ? 0 : errno;
        break;
    case WAITER_GET_BULK:
        rc = mempool_get_bulk(w->pool, w->blocks, w->n, w->timeout_ns);
        break;
    case WAITER_DRAIN:
        rc = mempool_drain(w->pool, w->timeout_ns);
        break;
    }
    /* int calls leave errno alone even when they fail. */
    int kept = errno == WAITER_ERRNO_SENTINEL;
    w->elapsed_ns = check_now_ns() - t0;
    w->cpu_ns = waiter_thread_cpu_ns() - cpu0;
    w->err = rc;
    w->errno_kept = (rc == 0 || w->call == WAITER_GET_BULK || w->call == WAITER_DRAIN)
                        ? kept : 1;
    w->ticket = w->order ? atomic_fetch_add(w->order, 1) : 0;
    atomic_store(&w->done, 1);
    return NULL;
}

static inline void waiter_start(struct waiter *w)
{
    atomic_init(&w->tid, 0);
    atomic_init(&w->done, 0);
    atomic_init(&w->start_ns, 0);
    w->block = NULL;
    w->err = -1;
    w->errno_kept = 0;
    w->thread = check_thread(waiter_main, w);
}

static inline void waiter_join(struct waiter *w)
{
    REQUIRE(pthread_join(w->thread, NULL) == 0);
}

static inline int waiter_done(struct waiter *w)
{
    return atomic_load(&w->done);
}

/* The scheduling state letter of a thread of this process ('R', 'S', ...),
 * or '?' when /proc cannot tell. */
static inline char waiter_task_state(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    /* The command name may contain spaces or parentheses: the state
     * follows the last ')'. */
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

/* Waits until the waiter is asleep inside its call: it has announced the
 * call and the kernel shows it sleeping in several polls in a row (a single
 * 'S' could be a thread briefly descheduled under a tool such as valgrind,
 * which only sleeps while another thread runs). Returns 1 when asleep, 0 when
 * the call returned instead. Fails the test if neither happens in 60 s. */
static inline int waiter_wait_asleep(struct waiter *w)
{
    int64_t deadline = check_now_ns() + 60 * (int64_t)1000000000;
    int asleep_polls = 0;
    while (asleep_polls < 4) {
        if (waiter_done(w))
            return 0;
        REQUIRE(check_now_ns() < deadline);
        int tid = atomic_load(&w->tid);
        char state = tid ? waiter_task_state(tid) : 'R';
        if (state == '?') {
            /* No /proc: a generous sleep has to do. */
            check_sleep_ns(300 * 1000000);
            return !waiter_done(w);
        }
        asleep_polls = state == 'S' ? asleep_polls + 1 : 0;
        check_sleep_ns(5 * 1000000);
    }
    return !waiter_done(w);
}

/* Waits up to timeout_ns for the call to return; 1 when it has. */
static inline int waiter_wait_done(struct waiter *w, int64_t timeout_ns)
{
    int64_t deadline = check_now_ns() + timeout_ns;
    while (!waiter_done(w)) {
        if (check_now_ns() > deadline)
            return 0;
        check_sleep_ns(200000);
    }
    return 1;
}

/* Polls mempool_available until it equals `want` (it may lag while a call
 * is in flight); returns the last value read. */
static inline size_t waiter_available_becomes(mempool *pool, size_t want,
                                              int64_t timeout_ns)
{
    int64_t deadline = check_now_ns() + timeout_ns;
    size_t got;
    while ((got = mempool_available(pool)) != want && check_now_ns() < deadline)
        check_sleep_ns(200000);
    return got;
}

#endif
