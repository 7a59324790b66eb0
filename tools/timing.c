/* SPDX-License-Identifier: MIT */
/* Timing guarantees as data: how late a timed get returns after its timeout
 * expires, and how long a sleeping get takes to return after a put hands it
 * a block. Prints a table (docs/timing.md holds one run's). It asserts
 * nothing: the tests check only the safe bounds (never early, never hung),
 * since these numbers depend on the machine and its load.
 *
 *   timing [--scale X]    X multiplies the number of waits (default 1)
 *
 * Timed gets: a pool of one block whose block is held, so every get waits
 * its full timeout; lateness = observed - requested, on CLOCK_MONOTONIC.
 * Wake-up: a thread sleeps in mempool_get on an empty pool; once it has
 * been asleep for a while, the main thread stamps the time and puts; the
 * waiter stamps the time when its get returns. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mempool.h"

#ifndef MEMPOOL_TIMING_BACKEND
#define MEMPOOL_TIMING_BACKEND "?"
#endif

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts v and returns the value at quantile q (nearest rank). */
static int64_t quantile(int64_t *v, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static void print_us(int64_t ns)
{
    printf(" %9.1f us", (double)ns / 1000.0);
}

static mempool *one_block_pool(void)
{
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = 1;
    c.block_size = 64;
    mempool *pool = mempool_create(&c);
    if (!pool) {
        perror("mempool_create");
        exit(1);
    }
    return pool;
}

static void timed_gets(double scale)
{
    static const struct {
        int64_t timeout_ns;
        const char *label;
        int waits;
    } rows[] = {
        { 10 * 1000, "10 us", 2000 },
        { 100 * 1000, "100 us", 1000 },
        { 1000 * 1000, "1 ms", 300 },
        { 10 * 1000 * 1000, "10 ms", 60 },
    };
    mempool *pool = one_block_pool();
    void *held = mempool_get(pool);
    printf("Timed get on an empty pool: lateness = observed - requested\n\n");
    printf("| requested | waits | early | lateness p50 | lateness p99 | lateness max |\n");
    printf("|-----------|-------|-------|--------------|--------------|--------------|\n");
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        size_t n = (size_t)(rows[r].waits * scale);
        if (n < 10)
            n = 10;
        int64_t *late = malloc(n * sizeof *late);
        if (!late)
            exit(1);
        size_t early = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t t0 = now_ns();
            void *b = mempool_get_timeout(pool, rows[r].timeout_ns);
            int64_t t1 = now_ns();
            if (b || errno != ETIMEDOUT) {
                fprintf(stderr, "unexpected get result %p, errno %d\n", b, errno);
                exit(1);
            }
            late[i] = t1 - t0 - rows[r].timeout_ns;
            early += late[i] < 0;
        }
        qsort(late, n, sizeof *late, cmp_i64);
        printf("| %9s | %5zu | %5zu |", rows[r].label, n, early);
        print_us(quantile(late, n, 0.50));
        printf(" |");
        print_us(quantile(late, n, 0.99));
        printf(" |");
        print_us(late[n - 1]);
        printf(" |\n");
        free(late);
    }
    mempool_put(pool, held);
    mempool_destroy(pool);
}

struct wake {
    mempool *pool;
    atomic_int round;       /* the round the waiter is to run */
    atomic_int ready;       /* the round the waiter is about to sleep in */
    atomic_llong woke_at;
    void *got;
};

static void *waiter(void *arg)
{
    struct wake *w = arg;
    for (int round = 1;; round++) {
        int r;
        while ((r = atomic_load(&w->round)) >= 0 && r < round)
            sleep_ns(20 * 1000);
        if (r < 0)
            return NULL;   /* told to stop */
        atomic_store(&w->ready, round);
        void *b = mempool_get(w->pool);
        atomic_store(&w->woke_at, now_ns());
        w->got = b;
        atomic_store(&w->ready, -round);
    }
}

static void wake_ups(double scale)
{
    size_t n = (size_t)(1000 * scale);
    if (n < 10)
        n = 10;
    int64_t *lat = malloc(n * sizeof *lat);
    if (!lat)
        exit(1);
    struct wake w;
    memset(&w, 0, sizeof w);
    w.pool = one_block_pool();
    void *block = mempool_get(w.pool);
    pthread_t t;
    if (pthread_create(&t, NULL, waiter, &w) != 0)
        exit(1);
    for (size_t i = 0; i < n; i++) {
        int round = (int)i + 1;
        atomic_store(&w.round, round);
        while (atomic_load(&w.ready) != round)
            sleep_ns(10 * 1000);
        /* Long enough for the waiter to be asleep in the kernel, so that
         * the figure includes a real wake-up. */
        sleep_ns(500 * 1000);
        int64_t t0 = now_ns();
        mempool_put(w.pool, block);
        while (atomic_load(&w.ready) != -round)
            sleep_ns(10 * 1000);
        lat[i] = atomic_load(&w.woke_at) - t0;
        block = w.got;
    }
    atomic_store(&w.round, -1);
    pthread_join(t, NULL);
    mempool_put(w.pool, block);
    mempool_destroy(w.pool);
    qsort(lat, n, sizeof *lat, cmp_i64);
    printf("\nWake-up latency: put to the sleeping get's return\n\n");
    printf("| wake-ups |          p50 |          p99 |          max |\n");
    printf("|----------|--------------|--------------|--------------|\n");
    printf("| %8zu |", n);
    print_us(quantile(lat, n, 0.50));
    printf(" |");
    print_us(quantile(lat, n, 0.99));
    printf(" |");
    print_us(lat[n - 1]);
    printf(" |\n");
    free(lat);
}

int main(int argc, char **argv)
{
    double scale = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            scale = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--scale X]\n", argv[0]);
            return 2;
        }
    }
    if (scale <= 0)
        scale = 1;
    printf("mempool timing (wait backend: %s)\n\n", MEMPOOL_TIMING_BACKEND);
    timed_gets(scale);
    wake_ups(scale);
    return 0;
}
