/* SPDX-License-Identifier: MIT */
/* The scenarios, the cases they expand to, and the method: warm-up, then
 * repetitions, reported as median, min and max. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Large enough for the biggest burst and for the pipeline ring, so that only
 * `handoff` ever finds a pool empty. */
#define POOL_CAPACITY 4096

/* large: more memory than any TLB covers with base pages (512 MiB). */
#define LARGE_CAPACITY ((size_t)1 << 18)
#define LARGE_BLOCK 2048

/* Units say what is measured: "ns/get+put" is one thread's time for one
 * get and one put; "wall ns/pair" is the elapsed time per get+put pair over
 * all threads together (the inverse of their aggregate throughput). */
const struct scenario bench_scenarios[] = {
    {"pair", "one thread: get then put, repeated (fast-path latency)", "ns/get+put",
     {NULL, NULL, 0}, POOL_CAPACITY, true, false, false, false, single_pair, NULL, 0},
    {"burst", "one thread: get N blocks, then put them all back", "ns/get+put",
     {NULL, NULL, 0}, POOL_CAPACITY, true, false, false, false, single_burst, NULL, 0},
    {"parallel", "T threads doing get+put pairs on one pool", "wall ns/pair",
     {"Mpairs/s", "thread ns/pair"}, POOL_CAPACITY, false, true, false, false, threads_parallel,
     NULL, 0},
    {"pipeline", "one thread gets, passes blocks through an SPSC ring, another puts",
     "wall ns/block", {NULL, NULL, 0}, POOL_CAPACITY, false, false, false, false, threads_pipeline,
     NULL, 0},
    {"oversubscribed", "8 threads doing get+put pairs, more threads than cores", "wall ns/pair",
     {"Mpairs/s", "thread ns/pair"}, POOL_CAPACITY, false, true, false, false, threads_parallel,
     NULL, 0},
    {"handoff", "capacity 1, two threads pass the block through blocking gets",
     "wake-up us", {"p99 us", "CPU us/wait", "barriers/wait", "FUTEX_WAIT/wait",
     "FUTEX_WAKE/wait"}, 1, false, false, true, false, threads_handoff,
     "handoff, handoff-cached: barriers/wait (membarrier PRIVATE_EXPEDITED), "
     "FUTEX_WAIT/wait and FUTEX_WAKE/wait count the calls the process makes through "
     "syscall(3) while both threads run, per wait: mempool's own calls; the C library's "
     "mutexes and condition variables make theirs directly, uncounted (-)", 0},
    {"handoff-cached", "capacity 64 (cached), 63 blocks held by a third thread: the two "
     "pass the last one through blocking gets", "wake-up us", {"p99 us", "CPU us/wait",
     "barriers/wait", "FUTEX_WAIT/wait", "FUTEX_WAKE/wait"}, 64, false, false, true, false,
     threads_handoff, NULL, 0},
    {"bulk", "one thread: get_bulk then put_bulk of N, per block", "ns/get+put",
     {NULL, NULL, 0}, POOL_CAPACITY, true, false, false, true, single_bulk,
     "bulk: each implementation's own bulk call (DPDK rte_mempool_get_bulk/put_bulk, "
     "mempool_get_bulk/put_bulk, the mutex list under one lock per call); the others "
     "have none (n/a)", 0},
    {"large", "one thread, 2^18 blocks of 2 KiB all out: put one at random, get one, "
     "write a byte of it", "ns/step", {NULL, NULL}, LARGE_CAPACITY, false, false, false,
     false, single_large,
     "large: a pool of 512 MiB, so each step's block is a TLB and cache miss; "
     "mempool-hugepages is mempool with MEMPOOL_HUGEPAGES", LARGE_BLOCK},
};
const size_t bench_scenario_count = sizeof bench_scenarios / sizeof *bench_scenarios;

static size_t add_case(const struct options *o, const struct scenario *s, size_t arg,
                       struct bench_case *out, size_t count, size_t max)
{
    struct bench_case c = {s, arg, ""};
    if (arg)
        snprintf(c.label, sizeof c.label, "%s/%zu", s->name, arg);
    else
        snprintf(c.label, sizeof c.label, "%s", s->name);
    if (count < max && (bench_listed(o->scenarios, s->name) || bench_listed(o->scenarios, c.label)))
        out[count++] = c;
    return count;
}

/* The default thread counts: 1, 2, 4, ... and twice the CPU count. */
static size_t default_threads(unsigned *out, size_t max)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned limit = 2 * (unsigned)(cpus > 0 ? cpus : 1), t = 1;
    size_t n = 0;
    for (; t < limit && n + 1 < max; t *= 2)
        out[n++] = t;
    out[n++] = limit;
    return n;
}

/* Expands the selected scenarios into cases, in table order. */
size_t bench_cases(const struct options *o, struct bench_case *out, size_t max)
{
    const struct scenario *s = bench_scenarios;
    unsigned threads[16];
    size_t thread_count = o->thread_count;
    if (thread_count)
        memcpy(threads, o->threads, thread_count * sizeof *threads);
    else
        thread_count = default_threads(threads, 16);
    size_t n = 0;
    n = add_case(o, &s[0], 0, out, n, max);
    n = add_case(o, &s[1], 32, out, n, max);
    n = add_case(o, &s[1], 256, out, n, max);
    for (size_t i = 0; i < thread_count; i++)
        n = add_case(o, &s[2], threads[i], out, n, max);
    n = add_case(o, &s[3], 0, out, n, max);
    n = add_case(o, &s[4], 8, out, n, max);
    n = add_case(o, &s[5], 0, out, n, max);
    n = add_case(o, &s[6], 0, out, n, max);
    static const size_t bulk_sizes[] = {1, 8, 32, 256};
    for (size_t i = 0; i < sizeof bulk_sizes / sizeof *bulk_sizes; i++)
        n = add_case(o, &s[7], bulk_sizes[i], out, n, max);
    n = add_case(o, &s[8], 0, out, n, max);
    return n;
}

static int compare_sample(const void *a, const void *b)
{
    double x = ((const struct sample *)a)->value, y = ((const struct sample *)b)->value;
    return (x > y) - (x < y);
}

/* Runs one case: warm-ups, then the repetitions on the same pool. */
static int run_case(const struct bench_impl *impl, const struct options *o,
                    const struct bench_case *c, struct row *row)
{
    const struct scenario *s = c->scenario;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned reps = o->repetitions < 64 ? o->repetitions : 64;
    if ((s->needs_wait && !impl->get_wait) || (s->needs_bulk && !impl->get_bulk) ||
        (impl->one_thread_per_cpu && s->arg_is_threads && (long)c->arg > cpus) ||
        (impl->only_in && strcmp(impl->only_in, s->name) != 0)) {
        row->na = true;
        progress_skip(c->label, impl->name, o->warmups + reps);
        return 0;
    }
    size_t block_size = s->block_size ? s->block_size : o->block_size;
    struct params p = {block_size, o->iterations, o->handoffs,
                       s->arg_is_threads ? (unsigned)c->arg : 1, c->arg, s->capacity, o->pin};
    void *pool = impl->create(block_size, s->capacity);
    if (!pool) {
        progress_skip(c->label, impl->name, o->warmups + reps);
        return errno ? errno : ENOMEM;
    }
    struct sample samples[64] = {{0}};
    int err = 0;
    unsigned i = 0;
    for (; i < o->warmups + reps && !err; i++) {
        bool warmup = i < o->warmups;
        err = s->run(impl, pool, &p, &samples[warmup ? 0 : i - o->warmups]);
        progress_step(c->label, impl->name, warmup ? i + 1 : i - o->warmups + 1,
                      warmup ? o->warmups : reps, warmup);
    }
    impl->destroy(pool);
    if (err) {
        progress_skip(c->label, impl->name, o->warmups + reps - i);
        return err;
    }
    qsort(samples, reps, sizeof *samples, compare_sample);
    struct sample *middle = &samples[reps / 2];
    *row = (struct row){.median = middle->value, .min = samples[0].value,
                        .max = samples[reps - 1].value};
    memcpy(row->extra, middle->extra, sizeof row->extra);
    return 0;
}

/* Runs every case for one implementation and adds its rows and facts. */
void bench_run_impl(const struct bench_impl *impl, const struct options *o,
                    const struct bench_case *cases, size_t case_count, struct results *r)
{
    char why[160] = "";
    if (impl->start && impl->start(why, sizeof why) != 0) {
        results_line(r, "skip %s: %s", impl->name, why);
        for (size_t i = 0; i < case_count; i++)
            progress_skip(cases[i].label, impl->name, o->warmups + o->repetitions);
        return;
    }
    if (impl->version)
        results_line(r, "version %s %s", impl->name, impl->version());
    if (impl->note)
        results_line(r, "note %s", impl->note);
    for (size_t i = 0; i < case_count; i++) {
        struct row row;
        int err = run_case(impl, o, &cases[i], &row);
        if (err) {
            results_line(r, "skip %s %s: %s", impl->name, cases[i].label, strerror(err));
            continue;
        }
        snprintf(row.label, sizeof row.label, "%s", cases[i].label);
        snprintf(row.impl, sizeof row.impl, "%s", impl->name);
        *results_add(r) = row;
    }
}
