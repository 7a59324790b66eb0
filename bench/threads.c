/* SPDX-License-Identifier: MIT */
/* The multi-thread scenarios and the one way they start threads: every
 * worker registers with the implementation, optionally pins itself, and
 * waits at a barrier, so the clock covers only the measured work. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bench.h"

struct worker {
    const struct bench_impl *impl;
    void *pool;
    unsigned index;
    bool pin;
    worker_body body;
    void *shared;
    pthread_barrier_t *barrier;
    uint64_t start_ns, end_ns;
};

void bench_pin(unsigned index)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(index % (unsigned)(cpus > 0 ? cpus : 1), &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (w->pin)
        bench_pin(w->index);
    if (w->impl->thread_enter)
        w->impl->thread_enter(w->pool);
    pthread_barrier_wait(w->barrier);
    w->start_ns = bench_now_ns();
    w->body(w->impl, w->pool, w->index, w->shared);
    w->end_ns = bench_now_ns();
    if (w->impl->thread_exit)
        w->impl->thread_exit(w->pool);
    return NULL;
}

/* Runs `body` on n threads at once; the wall time in ns from the first
 * thread's start to the last one's end (at least 1). */
uint64_t bench_threads(const struct bench_impl *impl, void *pool, unsigned n, bool pin,
                       worker_body body, void *shared)
{
    struct worker workers[BENCH_MAX_THREADS];
    pthread_t ids[BENCH_MAX_THREADS];
    pthread_barrier_t barrier;
    if (n == 0 || n > BENCH_MAX_THREADS)
        bench_fail(impl, "thread count out of range");
    pthread_barrier_init(&barrier, NULL, n + 1);
    unsigned started = 0;
    for (; started < n; started++) {
        workers[started] = (struct worker){impl, pool, started, pin, body, shared, &barrier, 0, 0};
        if (pthread_create(&ids[started], NULL, worker_main, &workers[started]) != 0)
            bench_fail(impl, "cannot start a thread");
    }
    pthread_barrier_wait(&barrier);
    uint64_t start = UINT64_MAX, end = 0;
    for (unsigned i = 0; i < n; i++) {
        pthread_join(ids[i], NULL);
        start = workers[i].start_ns < start ? workers[i].start_ns : start;
        end = workers[i].end_ns > end ? workers[i].end_ns : end;
    }
    pthread_barrier_destroy(&barrier);
    return end > start ? end - start : 1;
}

static void parallel_body(const struct bench_impl *impl, void *pool, unsigned index,
                          void *shared)
{
    (void)index;
    loop_pair(impl, pool, *(const size_t *)shared);
}

/* parallel and oversubscribed: the same total of get+put pairs, split over
 * the threads. The value is wall time per pair (the inverse of aggregate
 * throughput); the extras are throughput and the cost per pair seen by one
 * thread. */
int threads_parallel(const struct bench_impl *impl, void *pool, const struct params *p,
                     struct sample *out)
{
    size_t per_thread = p->iterations / p->threads ? p->iterations / p->threads : 1;
    uint64_t wall = bench_threads(impl, pool, p->threads, p->pin, parallel_body, &per_thread);
    out->value = (double)wall / (double)(per_thread * p->threads);
    out->extra[0] = 1e3 / out->value;
    out->extra[1] = out->value * p->threads;
    return 0;
}

/* A bounded single-producer/single-consumer ring: the getter thread passes
 * every block through it to the putter thread, so no block is ever put by
 * the thread that got it (the pattern that defeats thread caches). */
#define RING_SIZE 64

struct ring {
    _Alignas(64) _Atomic size_t head; /* next slot to fill, written by the getter */
    _Alignas(64) _Atomic size_t tail; /* next slot to drain, written by the putter */
    _Alignas(64) void *slots[RING_SIZE];
    size_t count;
};

/* Spins briefly, then yields: with more threads than cores the other side
 * may need this core to make progress. */
static void ring_backoff(unsigned *spins)
{
    if (++*spins > 64)
        sched_yield();
}

static void pipeline_body(const struct bench_impl *impl, void *pool, unsigned index,
                          void *shared)
{
    struct ring *ring = shared;
    for (size_t i = 0; i < ring->count; i++) {
        unsigned spins = 0;
        if (index == 0) {
            void *block;
            while (!(block = impl->get(pool)))
                ring_backoff(&spins);
            bench_touch(block, i);
            while (i - atomic_load_explicit(&ring->tail, memory_order_acquire) >= RING_SIZE)
                ring_backoff(&spins);
            ring->slots[i % RING_SIZE] = block;
            atomic_store_explicit(&ring->head, i + 1, memory_order_release);
        } else {
            while (atomic_load_explicit(&ring->head, memory_order_acquire) == i)
                ring_backoff(&spins);
            void *block = ring->slots[i % RING_SIZE];
            atomic_store_explicit(&ring->tail, i + 1, memory_order_release);
            bench_touch(block, i);
            impl->put(pool, block);
        }
    }
}

int threads_pipeline(const struct bench_impl *impl, void *pool, const struct params *p,
                     struct sample *out)
{
    static struct ring ring;
    atomic_store(&ring.head, 0);
    atomic_store(&ring.tail, 0);
    ring.count = p->iterations;
    uint64_t wall = bench_threads(impl, pool, 2, p->pin, pipeline_body, &ring);
    out->value = (double)wall / (double)p->iterations;
    return 0;
}
