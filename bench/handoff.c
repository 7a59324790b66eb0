/* SPDX-License-Identifier: MIT */
/* handoff: a pool of one block and two threads that pass it back and forth
 * through blocking gets.
 *
 * Each thread gets the block (sleeping until the other puts it), holds it
 * for HOLD_NS of busy work, stamps the time and puts it. The wake-up latency
 * is the time from that stamp to the return of the other thread's get. After
 * a put, a thread waits (outside the measured get, napping) until the other
 * thread owns the block, so nobody can take back its own block. The holder
 * puts only once the other thread has said it is about to call its get, and
 * SETTLE_NS after that, so that the get is asleep when the put comes: a nap
 * may take longer than the hold (the timer slack alone is 50 us by default),
 * and a get that finds the block already free would measure the nap, not a
 * wake-up. The CPU time spent inside the gets is measured with the thread
 * CPU clock.
 *
 * With a capacity over 1 (handoff-cached), the calling thread takes all but
 * one block first and keeps them until the two threads are done: the two
 * pass the last block as before, but in a pool whose threads have caches.
 *
 * The heavy barriers and futex calls are those the whole process makes
 * through syscall(3) while the two threads run (gets and puts together),
 * divided by the waits: only for implementations that make them there. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

#define HOLD_NS 20000
#define SETTLE_NS 10000

struct handoff {
    size_t total;               /* gets to do, both threads together */
    _Atomic size_t gets;        /* gets done so far */
    _Atomic uint64_t put_ns;    /* when the block was last put */
    double *latency_us;         /* one per get after the first */
    uint64_t cpu_ns[2];         /* CPU time inside the measured gets */
    _Atomic bool calling[2];    /* thread i is about to call its get */
};

static uint64_t thread_cpu_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void nap(void)
{
    struct timespec short_nap = {0, 1000};
    nanosleep(&short_nap, NULL);
}

/* Holds the block for HOLD_NS from `woke` and until the other thread has
 * been on its way into its get for SETTLE_NS. The other thread always comes:
 * it calls its get as soon as it sees this thread's, the last one included
 * (which finds the count done and returns). */
static void hold(struct handoff *h, unsigned index, void *block, uint64_t woke, size_t n)
{
    while (!atomic_load(&h->calling[1 - index])) {
        bench_touch(block, n);
        if (bench_now_ns() - woke >= HOLD_NS)
            sched_yield(); /* it may be waiting for this CPU */
    }
    uint64_t seen = bench_now_ns();
    while (bench_now_ns() - woke < HOLD_NS || bench_now_ns() - seen < SETTLE_NS)
        bench_touch(block, n);
}

static void handoff_body(const struct bench_impl *impl, void *pool, unsigned index, void *shared)
{
    struct handoff *h = shared;
    for (;;) {
        atomic_store(&h->calling[index], true);
        uint64_t cpu = thread_cpu_ns();
        void *block = impl->get_wait(pool);
        uint64_t woke = bench_now_ns();
        atomic_store(&h->calling[index], false);
        if (!block)
            bench_fail(impl, "blocking get failed");
        size_t n = atomic_fetch_add(&h->gets, 1) + 1;
        if (n > h->total) { /* the other thread is done: let it go too */
            impl->put(pool, block);
            return;
        }
        if (n > 1) {
            h->latency_us[n - 2] = (double)(woke - atomic_load(&h->put_ns)) / 1e3;
            h->cpu_ns[index] += thread_cpu_ns() - cpu;
        }
        hold(h, index, block, woke, n);
        atomic_store(&h->put_ns, bench_now_ns());
        impl->put(pool, block);
        if (n == h->total)
            return;
        while (atomic_load(&h->gets) == n)
            nap();
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Calls per wait, NAN when the implementation's calls are not counted. */
static double per_wait(const struct bench_impl *impl, uint64_t calls, size_t waits)
{
    return impl->counts_syscalls ? (double)calls / (double)waits : NAN;
}

/* The value is the median wake-up latency in µs; the extras are its 99th
 * percentile, the CPU time used per wait in µs, and the barriers, futex
 * waits and futex wakes per wait. */
int threads_handoff(const struct bench_impl *impl, void *pool, const struct params *p,
                    struct sample *out)
{
    struct handoff h = {.total = p->handoffs < 3 ? 3 : p->handoffs};
    size_t held = p->capacity - 1;
    void **others = calloc(held ? held : 1, sizeof *others);
    if (!(h.latency_us = calloc(h.total, sizeof *h.latency_us)) || !others) {
        free(h.latency_us);
        free(others);
        return ENOMEM;
    }
    for (size_t i = 0; i < held; i++)
        if (!(others[i] = impl->get(pool)))
            bench_fail(impl, "get found the pool empty");
    struct syscall_counts before = bench_syscall_counts();
    bench_threads(impl, pool, 2, p->pin, handoff_body, &h);
    struct syscall_counts after = bench_syscall_counts();
    for (size_t i = 0; i < held; i++)
        impl->put(pool, others[i]);
    free(others);
    size_t count = h.total - 1;
    qsort(h.latency_us, count, sizeof *h.latency_us, compare_double);
    out->value = h.latency_us[count / 2];
    out->extra[0] = h.latency_us[count * 99 / 100];
    out->extra[1] = (double)(h.cpu_ns[0] + h.cpu_ns[1]) / 1e3 / (double)count;
    out->extra[2] = per_wait(impl, after.barriers - before.barriers, count);
    out->extra[3] = per_wait(impl, after.futex_waits - before.futex_waits, count);
    out->extra[4] = per_wait(impl, after.futex_wakes - before.futex_wakes, count);
    free(h.latency_us);
    return 0;
}
