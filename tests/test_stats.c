/* SPDX-License-Identifier: MIT */
/* Statistics: exact counts after known sequences, single- and
 * multi-threaded, reset by baseline, and the printed block. */
#include <stdatomic.h>

#include "check.h"

static mempool_stats stats_of(mempool *pool)
{
    mempool_stats s;
    memset(&s, 0xa5, sizeof s);
    REQUIRE(mempool_stats_read(pool, &s) == 0);
    return s;
}

static mempool *pool_with(size_t capacity, unsigned flags, unsigned cache_size)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.block_size = 32;
    cfg.flags = flags;
    cfg.cache_size = cache_size;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    return pool;
}

/* A known single-threaded sequence on an uncached pool: every count exact. */
static void test_sequence(unsigned flags, unsigned cache_size)
{
    enum { CAP = 64 };
    mempool *pool = pool_with(CAP, flags, cache_size);
    mempool_stats s = stats_of(pool);
    CHECK_EQ(s.gets, 0);
    CHECK_EQ(s.puts, 0);
    CHECK_EQ(s.out, 0);
    CHECK_EQ(s.out_high, 0);
    for (size_t i = 0; i < sizeof s.reserved / sizeof s.reserved[0]; i++)
        CHECK_EQ(s.reserved[i], 0);

    void *b[CAP];
    for (int i = 0; i < 10; i++)
        REQUIRE((b[i] = mempool_get(pool)) != NULL);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(mempool_put(pool, b[i]), 0);
    CHECK_EQ(mempool_put(pool, b[0]), EINVAL); /* repeated */
    CHECK_EQ(mempool_put(pool, NULL), EINVAL);
    s = stats_of(pool);
    CHECK_EQ(s.gets, 10);
    CHECK_EQ(s.puts, 4);
    CHECK_EQ(s.out, 6);
    /* Exact without a cache; with one, blocks a refill brought into the
     * cache count as out when it is sampled (an upper bound). */
    if (flags & MEMPOOL_NO_CACHE)
        CHECK_EQ(s.out_high, 10);
    else
        CHECK(s.out_high >= 10 && s.out_high <= 10 + cache_size);
    CHECK_EQ(s.refused_puts, 2);
    CHECK_EQ(s.cache_hits + s.cache_misses, s.gets);
    if (flags & MEMPOOL_NO_CACHE)
        CHECK_EQ(s.cache_hits, 0);

    /* Bulk counts every block; an empty pool with a timeout counts a wait
     * and a timeout; a try_get on it counts neither. */
    CHECK_EQ(mempool_put_bulk(pool, b + 4, 6), 0);
    CHECK_EQ(mempool_get_bulk(pool, b, CAP, 0), 0);
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL && errno == EAGAIN);
    CHECK(mempool_get_timeout(pool, 1000000) == NULL && errno == ETIMEDOUT);
    s = stats_of(pool);
    CHECK_EQ(s.gets, 10 + CAP);
    CHECK_EQ(s.puts, 10);
    CHECK_EQ(s.out, CAP);
    CHECK_EQ(s.out_high, CAP);
    CHECK_EQ(s.waits, 1);
    CHECK_EQ(s.timeouts, 1);

    /* Reset: counters from zero, out kept, the high-water mark from out. */
    CHECK_EQ(mempool_stats_reset(pool), 0);
    CHECK_EQ(mempool_put_bulk(pool, b, CAP), 0);
    s = stats_of(pool);
    CHECK_EQ(s.gets, 0);
    CHECK_EQ(s.puts, CAP);
    CHECK_EQ(s.waits, 0);
    CHECK_EQ(s.timeouts, 0);
    CHECK_EQ(s.refused_puts, 0);
    CHECK_EQ(s.out, 0);
    CHECK_EQ(s.out_high, CAP);
    void *x = mempool_get(pool);
    CHECK_EQ(mempool_put(pool, x), 0);
    CHECK_EQ(mempool_stats_reset(pool), 0);
    s = stats_of(pool);
    CHECK_EQ(s.out_high, 0);
    mempool_destroy(pool);
}

/* Threads count on their own: the sums are exact once they are done, also
 * for threads that have exited (their counts stay with the pool). */
struct worker {
    mempool *pool;
    int rounds;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        void *a = mempool_get(w->pool);
        void *b = mempool_get(w->pool);
        REQUIRE(a && b);
        CHECK_EQ(mempool_put(w->pool, a), 0);
        CHECK_EQ(mempool_put(w->pool, b), 0);
        /* Not a repeated put of b: another thread may hold it by now. */
        CHECK_EQ(mempool_put(w->pool, NULL), EINVAL);
    }
    return NULL;
}

static void test_threads(unsigned flags)
{
    enum { THREADS = 4 };
    mempool *pool = pool_with(256, flags, 0);
    int rounds = (int)(20000 * check_scale());
    if (rounds < 100)
        rounds = 100;
    struct worker w = { pool, rounds };
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        t[i] = check_thread(worker_main, &w);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    mempool_stats s = stats_of(pool);
    CHECK_EQ(s.gets, 2ull * THREADS * (uint64_t)rounds);
    CHECK_EQ(s.puts, 2ull * THREADS * (uint64_t)rounds);
    CHECK_EQ(s.refused_puts, (uint64_t)THREADS * (uint64_t)rounds);
    CHECK_EQ(s.out, 0);
    CHECK(s.out_high >= 2 && s.out_high <= 256);
    if (flags & MEMPOOL_NO_CACHE)
        CHECK(s.out_high <= 2 * THREADS);
    else
        CHECK(s.cache_hits > s.cache_misses);
    mempool_destroy(pool);
}

/* The report of a pool's statistics, as text. */
static void print_of(mempool *pool, char *text, size_t size)
{
    FILE *f = tmpfile();
    REQUIRE(f != NULL);
    CHECK_EQ(mempool_stats_print(pool, f), 0);
    rewind(f);
    size_t len = fread(text, 1, size - 1, f);
    text[len] = 0;
    fclose(f);
}

/* The arena line says where the blocks live: the caller's region for a
 * placed pool, a shared segment for a shared one (where the system has
 * them). Catches a line that calls every arena the pool's own mapping. */
static void test_arena_line_kinds(void)
{
    char text[512];
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = 16;
    c.block_size = 64;
    size_t bytes = mempool_arena_bytes(&c);
    void *region = malloc(bytes);
    REQUIRE(region);
    c.memory = region;
    c.memory_size = bytes;
    mempool *placed = mempool_create(&c);
    REQUIRE(placed);
    print_of(placed, text, sizeof text);
    CHECK(strstr(text, "the caller's region") != NULL);
    mempool_destroy(placed);
    free(region);
    c.memory = NULL;
    c.memory_size = 0;
    mempool *shared = mempool_shm_create(NULL, &c, 0);
    if (!shared) {
        CHECK_EQ(errno, ENOSYS);
        return;
    }
    print_of(shared, text, sizeof text);
    CHECK(strstr(text, "a shared segment") != NULL);
    mempool_destroy(shared);
}

static void test_print_and_errors(void)
{
    mempool *pool = pool_with(8, 0, 0);
    void *b = mempool_get(pool);
    char text[512];
    print_of(pool, text, sizeof text);
    CHECK(text[0] != 0);
    CHECK(strstr(text, "gets 1") != NULL);
    CHECK(strstr(text, "out now 1") != NULL);
    /* The arena line describes this pool's arena: 8 blocks of stride 32. */
    CHECK(strstr(text, "arena 256 bytes") != NULL);
    CHECK(strstr(text, "stride 32,") != NULL);
    mempool_stats s;
    CHECK_EQ(mempool_stats_read(NULL, &s), EINVAL);
    CHECK_EQ(mempool_stats_read(pool, NULL), EINVAL);
    CHECK_EQ(mempool_stats_reset(NULL), EINVAL);
    CHECK_EQ(mempool_stats_print(NULL, stdout), EINVAL);
    CHECK_EQ(mempool_stats_print(pool, NULL), EINVAL);
    /* A stream that cannot be written: the text fits its buffer, so only
     * the flush fails, and that is an error too (a report lost silently). */
#if !defined(_WIN32) /* a device whose writes fail with ENOSPC */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        errno = 0;
        CHECK_EQ(mempool_stats_print(pool, full), EIO);
        CHECK_EQ(errno, 0);
        /* A buffer that holds the report's first lines, not its arena
         * line: the arena line's write fails. */
        FILE *probe = tmpfile();
        REQUIRE(probe != NULL);
        CHECK_EQ(mempool_stats_print(pool, probe), 0);
        long whole = ftell(probe);
        rewind(probe);
        char text[1024] = { 0 };
        CHECK(fread(text, 1, sizeof text - 1, probe) > 0);
        fclose(probe);
        char *arena = strstr(text, "  arena");
        REQUIRE(arena != NULL && whole > 0);
        static char buffer[1024];
        fclose(full); /* a buffer is set before a stream's first output */
        full = fopen("/dev/full", "w");
        REQUIRE(full != NULL);
        setvbuf(full, buffer, _IOFBF, (size_t)(arena - text) + 1);
        CHECK_EQ(mempool_stats_print(pool, full), EIO);
        CHECK_EQ(errno, 0);
        fclose(full);
        /* Unbuffered, the first line's write fails already. */
        full = fopen("/dev/full", "w");
        REQUIRE(full != NULL);
        setvbuf(full, NULL, _IONBF, 0);
        CHECK_EQ(mempool_stats_print(pool, full), EIO);
        CHECK_EQ(errno, 0);
        fclose(full);
    }
#endif
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);
}

static void *make_block(void *arg)
{
    (void)arg;
    return malloc(32);
}

static void unmake_block(void *block, void *arg)
{
    (void)arg;
    free(block);
}

/* The high-water mark counts a bulk get that is a pool's first call, also
 * once its blocks are back (the peak is noted by the get itself). */
static void test_high_after_bulk(unsigned flags)
{
    mempool *pool = pool_with(64, flags, 0);
    void *b[10];
    CHECK_EQ(mempool_get_bulk(pool, b, 10, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, b, 10), 0);
    mempool_stats s = stats_of(pool);
    CHECK(s.out_high >= 10);
    if (flags & MEMPOOL_NO_CACHE)
        CHECK_EQ(s.out_high, 10);
    mempool_destroy(pool);
}

/* A bulk get larger than the loaded magazine, served from both of the
 * thread's magazines, is no miss: catches a bulk path that gives such a
 * call to the locked path anyway (the same blocks' worth, counted as
 * misses). */
static void test_bulk_across_magazines(void)
{
    mempool *pool = pool_with(256, 0, 32); /* two magazines of 16 */
    void *b[20];
    for (int i = 0; i < 20; i++)
        REQUIRE((b[i] = mempool_get(pool)) != NULL);
    for (int i = 0; i < 20; i++)
        CHECK_EQ(mempool_put(pool, b[i]), 0); /* 16 + 4 in the magazines */
    mempool_stats before = stats_of(pool);
    CHECK_EQ(mempool_get_bulk(pool, b, 20, 0), 0);
    mempool_stats after = stats_of(pool);
    CHECK_EQ(after.cache_misses - before.cache_misses, 0);
    CHECK_EQ(mempool_put_bulk(pool, b, 20), 0);
    mempool_destroy(pool);
}

/* A bulk put of exactly a magazine's worth that the hit path cannot take
 * (the loaded magazine holds one block already) still goes to the thread's
 * cache, across its magazines: the next bulk get of all of them is served
 * there. Catches a size test that sends a whole magazine's worth to the
 * shared stack. */
static void test_bulk_put_magazine(void)
{
    mempool *pool = pool_with(256, 0, 32); /* two magazines of 16 */
    void *b[17];
    REQUIRE(mempool_get_bulk(pool, b, 17, 0) == 0);
    mempool_flush(pool); /* both magazines empty */
    CHECK_EQ(mempool_put(pool, b[16]), 0);
    CHECK_EQ(mempool_put_bulk(pool, b, 16), 0);
    mempool_stats before = stats_of(pool);
    CHECK_EQ(mempool_get_bulk(pool, b, 17, 0), 0);
    CHECK_EQ(stats_of(pool).cache_misses - before.cache_misses, 0);
    CHECK_EQ(mempool_put_bulk(pool, b, 17), 0);
    mempool_destroy(pool);
}

/* The report's arena line is for arena pools only: a generator pool has no
 * arena to describe. */
static void test_print_generator(void)
{
    mempool_config cfg = { .capacity = 4, .make = make_block, .unmake = unmake_block };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    char text[512];
    print_of(pool, text, sizeof text);
    CHECK(strstr(text, "gets 0") != NULL);
    CHECK(strstr(text, "arena") == NULL);
    mempool_destroy(pool);
}

int main(void)
{
    test_sequence(MEMPOOL_NO_CACHE, 0);
    test_sequence(0, 16);
    test_threads(MEMPOOL_NO_CACHE);
    test_threads(0);
    test_print_and_errors();
    test_arena_line_kinds();
    test_print_generator();
    test_high_after_bulk(MEMPOOL_NO_CACHE);
    test_high_after_bulk(0);
    test_bulk_across_magazines();
    test_bulk_put_magazine();
    CHECK_DONE();
}
