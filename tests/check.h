/* SPDX-License-Identifier: MIT */
/* Shared helpers for the test programs: assertions that report the failing
 * expression and keep going, a monotonic clock, a scale factor for stress
 * sizes and a thread starter. Each test's main() ends with CHECK_DONE(). */
#ifndef MEMPOOL_TEST_CHECK_H
#define MEMPOOL_TEST_CHECK_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mempool.h"

static int check_failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            check_failures++;                                               \
        }                                                                   \
    } while (0)

#define CHECK_EQ(a, b)                                                      \
    do {                                                                    \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);     \
        if (check_a_ != check_b_) {                                         \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);        \
            check_failures++;                                               \
        }                                                                   \
    } while (0)

/* Stops the test at once: for failures after which nothing else is meaningful. */
#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                       \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

#define CHECK_DONE()                                                        \
    do {                                                                    \
        if (check_failures) {                                               \
            fprintf(stderr, "%d check(s) failed\n", check_failures);        \
            return 1;                                                       \
        }                                                                   \
        return 0;                                                           \
    } while (0)

static inline int64_t check_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void check_sleep_ns(int64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* MEMPOOL_TEST_SCALE (default 1) multiplies stress sizes; sanitizer and
 * valgrind runs lower it, soak runs raise it. */
static inline double check_scale(void)
{
    const char *s = getenv("MEMPOOL_TEST_SCALE");
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

static inline pthread_t check_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fn, arg) == 0);
    return t;
}

static inline mempool *check_arena_pool(size_t capacity, size_t block_size,
                                        unsigned flags)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.block_size = block_size;
    cfg.flags = flags;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    return pool;
}

/* Gets n blocks and puts them back, hottest last: they stay free in the
 * calling thread's cache (a pool with a cache of at least n blocks). */
static inline void check_park_in_cache(mempool *pool, int n)
{
    void **blocks = calloc((size_t)n, sizeof *blocks);
    REQUIRE(blocks != NULL);
    for (int i = 0; i < n; i++)
        REQUIRE((blocks[i] = mempool_get(pool)) != NULL);
    for (int i = n; i-- > 0;)
        CHECK_EQ(mempool_put(pool, blocks[i]), 0);
    free(blocks);
}

/* Sleeps in 1 ms steps until *word == value: the hand-shake of tests that
 * step two threads through a scenario. */
static inline void check_await(atomic_int *word, int value)
{
    while (atomic_load(word) != value)
        check_sleep_ns(1000000);
}

/* Takes blocks with try_get into blocks[have..max) until none is left: the
 * new count. */
static inline size_t check_take_free(mempool *pool, void **blocks, size_t have, size_t max)
{
    while (have < max && (blocks[have] = mempool_try_get(pool)) != NULL)
        have++;
    return have;
}

/* Takes every block of the pool with try_get, so that a lost block fails the
 * test instead of hanging it: each index must come exactly once, and the
 * pool must then be empty. */
static inline void check_get_all(mempool *pool, void **blocks)
{
    size_t cap = mempool_capacity(pool);
    bool *seen = calloc(cap, sizeof *seen);
    REQUIRE(seen != NULL);
    for (size_t i = 0; i < cap; i++) {
        blocks[i] = mempool_try_get(pool);
        REQUIRE(blocks[i] != NULL);
        size_t idx = mempool_index(pool, blocks[i]);
        REQUIRE(idx < cap);
        CHECK(!seen[idx]);
        seen[idx] = true;
    }
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL);
    CHECK_EQ(errno, EAGAIN);
    free(seen);
}

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HAVE_MEMCHECK 1
#endif
#endif

/* The pool tells ASan and memcheck that free blocks and guard bytes are
 * off limits, so those tools report a write there before checked mode sees
 * it (tests/use_after_put.c proves that part). check_sneak_write writes one
 * byte behind the tools' back, to show that checked mode catches such a bug
 * alone. */
extern void __asan_poison_memory_region(void const volatile *, size_t) __attribute__((weak));
extern void __asan_unpoison_memory_region(void const volatile *, size_t) __attribute__((weak));

static inline void check_sneak_write(unsigned char *p, unsigned char value)
{
    if (__asan_unpoison_memory_region)
        __asan_unpoison_memory_region(p, 1);
#ifdef HAVE_MEMCHECK
    VALGRIND_MAKE_MEM_DEFINED(p, 1);
#endif
    *(volatile unsigned char *)p = value;
    if (__asan_poison_memory_region)
        __asan_poison_memory_region(p, 1);
#ifdef HAVE_MEMCHECK
    VALGRIND_MAKE_MEM_NOACCESS(p, 1);
#endif
}

/* Whether ThreadSanitizer instruments this build. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* The CPUs online, at least 1. */
#if defined(_WIN32)
#include <windows.h>
static inline long check_cpus(void)
{
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return info.dwNumberOfProcessors > 0 ? (long)info.dwNumberOfProcessors : 1;
}
#else
#include <unistd.h>
static inline long check_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

#include <stdbool.h>
#include <sys/wait.h>

/* True when the process maps memory only as the program asks: not under a
 * sanitizer (shadow memory, quarantines), memcheck or an emulator. */
static inline bool plain_process(void)
{
#ifdef HAVE_MEMCHECK
    if (RUNNING_ON_VALGRIND)
        return false;
#endif
    return !UNDER_TSAN && !__asan_poison_memory_region && !getenv("MEMPOOL_TEST_EMULATOR");
}

static inline long vm_size_kb(void)
{
    long kb = 0;
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* Runs body in a child, for a change to the process that is for good (a
 * limit, a filter); the child's failed checks fail the test. */
static inline void in_child(void (*body)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        body();
        exit(check_failures ? 1 : 0); /* a normal exit: coverage builds count it */
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
#endif

#endif
