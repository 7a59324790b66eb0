/* SPDX-License-Identifier: MIT */
/* The single-thread scenarios. Each measured loop is its own non-inlined
 * function named loop_*, so that callgrind can count exactly the loops
 * (--toggle-collect=loop_*) and nothing of the set-up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Writes into the block and lets the pointer escape into an empty asm that
 * may read all memory: the compiler must keep every get/put (or malloc/free)
 * pair and the write, without paying for a call. */
void bench_touch(void *block, size_t i)
{
    *(volatile unsigned char *)block = (unsigned char)i;
    __asm__ volatile("" : : "r"(block) : "memory");
}

void bench_fail(const struct bench_impl *impl, const char *what)
{
    fprintf(stderr, "mempool-bench: %s: %s\n", impl->name, what);
    exit(2);
}

__attribute__((noinline)) void loop_pair(const struct bench_impl *impl, void *pool, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *block = impl->get(pool);
        if (!block)
            bench_fail(impl, "get found the pool empty");
        bench_touch(block, i);
        impl->put(pool, block);
    }
}

__attribute__((noinline)) static void loop_burst(const struct bench_impl *impl, void *pool,
                                                 void **blocks, size_t burst, size_t rounds)
{
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < burst; i++) {
            if (!(blocks[i] = impl->get(pool)))
                bench_fail(impl, "get found the pool empty");
            bench_touch(blocks[i], i);
        }
        for (size_t i = 0; i < burst; i++)
            impl->put(pool, blocks[i]);
    }
}

__attribute__((noinline)) static void loop_bulk(const struct bench_impl *impl, void *pool,
                                                void **blocks, size_t burst, size_t rounds)
{
    for (size_t r = 0; r < rounds; r++) {
        if (impl->get_bulk(pool, blocks, burst) != 0)
            bench_fail(impl, "get_bulk found too few blocks");
        for (size_t i = 0; i < burst; i++)
            bench_touch(blocks[i], i);
        impl->put_bulk(pool, blocks, burst);
    }
}

int single_pair(const struct bench_impl *impl, void *pool, const struct params *p,
                struct sample *out)
{
    uint64_t start = bench_now_ns();
    loop_pair(impl, pool, p->iterations);
    out->value = (double)(bench_now_ns() - start) / (double)p->iterations;
    return 0;
}

/* burst and bulk: whole rounds of p->arg blocks, at least one. */
static int run_rounds(const struct bench_impl *impl, void *pool, const struct params *p,
                      struct sample *out,
                      void (*loop)(const struct bench_impl *, void *, void **, size_t, size_t))
{
    void **blocks = malloc(p->arg * sizeof *blocks);
    if (!blocks)
        return ENOMEM;
    size_t rounds = p->iterations / p->arg ? p->iterations / p->arg : 1;
    uint64_t start = bench_now_ns();
    loop(impl, pool, blocks, p->arg, rounds);
    out->value = (double)(bench_now_ns() - start) / (double)(rounds * p->arg);
    free(blocks);
    return 0;
}

int single_burst(const struct bench_impl *impl, void *pool, const struct params *p,
                 struct sample *out)
{
    return run_rounds(impl, pool, p, out, loop_burst);
}

int single_bulk(const struct bench_impl *impl, void *pool, const struct params *p,
                struct sample *out)
{
    return run_rounds(impl, pool, p, out, loop_bulk);
}

/* A small fast generator for the random choices (xorshift64). */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

__attribute__((noinline)) static void loop_large(const struct bench_impl *impl, void *pool,
                                                 void **held, size_t count, size_t block_size,
                                                 size_t n, uint64_t *seed)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = next_random(seed);
        size_t j = (size_t)(r % count);
        impl->put(pool, held[j]);
        void *block = impl->get(pool);
        if (!block)
            bench_fail(impl, "get found the pool empty");
        held[j] = block;
        bench_touch((char *)block + (size_t)(r >> 40) % block_size, i);
    }
}

/* large: every block out, then random steps over all of them. The taking
 * and the final return are not measured. */
int single_large(const struct bench_impl *impl, void *pool, const struct params *p,
                 struct sample *out)
{
    void **held = malloc(p->capacity * sizeof *held);
    if (!held)
        return ENOMEM;
    size_t count = 0;
    for (; count < p->capacity; count++) {
        held[count] = impl->get(pool);
        if (!held[count])
            break;
        bench_touch(held[count], count);
    }
    int err = count == p->capacity ? 0 : ENOMEM;
    if (!err) {
        uint64_t seed = 0x9e3779b97f4a7c15u;
        uint64_t start = bench_now_ns();
        loop_large(impl, pool, held, count, p->block_size, p->iterations, &seed);
        out->value = (double)(bench_now_ns() - start) / (double)p->iterations;
    }
    for (size_t i = 0; i < count; i++)
        impl->put(pool, held[i]);
    free(held);
    return err;
}
