/* SPDX-License-Identifier: MIT */
/* The magazine layer: loaded and previous magazines, the depot, the thread
 * directory and its sentinel.
 *
 * - handoff: a producer gets, a consumer puts; their magazines travel
 *   through the depot. Catches a block handed to two owners, a lost block,
 *   and a miss path that takes the lock per block instead of per magazine.
 * - sweep: bulk and single calls of every size across magazine boundaries,
 *   for cache sizes from the smallest to the largest. Catches an off-by-one
 *   in the swap, refill or spill (a lost or duplicated round).
 * - pools: enough pools for several directory pages, slot reuse after
 *   destroy (the stale cache must be freed and never used), and more pools
 *   than slots (the rest run uncached). Catches a lookup into a wrong page,
 *   a stale cache serving a new pool, and a crash past the last slot.
 * - churn: threads that exit with full magazines, one after another.
 *   Catches blocks or magazines lost at thread exit.
 * - refusals: a bulk put with one bad block at every position, for every
 *   size up to a magazine and one more, on cached pools. Catches a hit path
 *   that publishes part of a refused call, or leaves an earlier block of it
 *   marked free (it could then never be put again).
 * - large: bulk gets and puts past the chunk and past both magazines, and
 *   a get of more than is free that must take nothing. Catches a stepwise
 *   get that keeps part of a failed call, or loses or repeats a step. */
#include "check.h"

/* One owner per block: a get claims its slot, a put releases it. */
struct owners {
    mempool *pool;
    atomic_int *owner;
};

static void claim(struct owners *o, void *block, int who)
{
    int expected = 0;
    size_t i = mempool_index(o->pool, block);
    REQUIRE(i < mempool_capacity(o->pool));
    if (!atomic_compare_exchange_strong(&o->owner[i], &expected, who)) {
        fprintf(stderr, "block %zu handed to %d while %d holds it\n", i, who, expected);
        check_failures++;
    }
}

static void release(struct owners *o, void *block, int who)
{
    size_t i = mempool_index(o->pool, block);
    int expected = who;
    if (!atomic_compare_exchange_strong(&o->owner[i], &expected, 0)) {
        fprintf(stderr, "block %zu put by %d but held by %d\n", i, who, expected);
        check_failures++;
    }
}

#define RING 64

struct handoff {
    struct owners o;
    void *ring[RING];
    atomic_size_t head, tail;
    size_t total;
};

static void *producer(void *arg)
{
    struct handoff *h = arg;
    for (size_t i = 0; i < h->total; i++) {
        void *b = mempool_get(h->o.pool);
        REQUIRE(b);
        claim(&h->o, b, 1);
        release(&h->o, b, 1);
        while (atomic_load(&h->head) - atomic_load(&h->tail) == RING)
            sched_yield();
        h->ring[atomic_load(&h->head) % RING] = b;
        atomic_fetch_add(&h->head, 1);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct handoff *h = arg;
    for (size_t i = 0; i < h->total; i++) {
        while (atomic_load(&h->tail) == atomic_load(&h->head))
            sched_yield();
        void *b = h->ring[atomic_load(&h->tail) % RING];
        atomic_fetch_add(&h->tail, 1);
        claim(&h->o, b, 2);
        release(&h->o, b, 2);
        CHECK_EQ(mempool_put(h->o.pool, b), 0);
    }
    return NULL;
}

static void test_handoff(void)
{
    enum { CAPACITY = 4096, CACHE = 64 };
    mempool_config config = { .capacity = CAPACITY, .block_size = 64, .cache_size = CACHE };
    struct handoff h = { .total = (size_t)(400000 * check_scale()) + 1000 };
    h.o.pool = mempool_create(&config);
    REQUIRE(h.o.pool);
    h.o.owner = calloc(CAPACITY, sizeof *h.o.owner);
    pthread_t p = check_thread(producer, &h), c = check_thread(consumer, &h);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    mempool_stats s;
    CHECK_EQ(mempool_stats_read(h.o.pool, &s), 0);
    CHECK_EQ(s.gets, h.total);
    CHECK_EQ(s.puts, h.total);
    /* A miss takes the lock; with the depot it brings a whole magazine of
     * CACHE / 2 blocks, so there is about one miss per magazine. */
    CHECK(s.cache_misses <= 2 * h.total / (CACHE / 2) + CAPACITY / (CACHE / 2));
    CHECK_EQ(mempool_available(h.o.pool), CAPACITY);
    CHECK_EQ(mempool_drain(h.o.pool, 0), 0);
    /* Full magazines are still in the depot: a get too large for any
     * cache must find them (a get about to fail or sleep empties the
     * depot first), or it would report the pool empty. */
    static void *all[CAPACITY];
    CHECK_EQ(mempool_get_bulk(h.o.pool, all, CAPACITY, 0), 0);
    CHECK_EQ(mempool_put_bulk(h.o.pool, all, CAPACITY), 0);
    check_get_all(h.o.pool, all);
    CHECK(mempool_try_get(h.o.pool) == NULL);
    for (size_t i = 0; i < CAPACITY; i++)
        CHECK_EQ(mempool_put(h.o.pool, all[i]), 0);
    free(h.o.owner);
    mempool_destroy(h.o.pool);
}

/* Gets and puts in calls of every size up to a little over two magazines
 * (and the chunk of 64), mixing single calls in, then checks that every
 * block comes back exactly once. */
static void test_sweep(void)
{
    static const unsigned sizes[] = { 2, 3, 4, 5, 7, 8, 63, 64, 65, 128, 4096 };
    enum { CAPACITY = 1 << 14 };
    void **held = malloc(CAPACITY * sizeof *held);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        mempool_config config = { .capacity = CAPACITY, .block_size = 32,
                                  .cache_size = sizes[s] };
        struct owners o = { mempool_create(&config), calloc(CAPACITY, sizeof(atomic_int)) };
        REQUIRE(o.pool);
        size_t top = sizes[s] + 2 > 70 ? 70 : sizes[s] + 2;
        size_t count = 0;
        for (int round = 0; round < 3; round++) {
            for (size_t n = 1; n <= top; n++) {
                CHECK_EQ(mempool_get_bulk(o.pool, held + count, n, 0), 0);
                for (size_t i = 0; i < n; i++)
                    claim(&o, held[count + i], 1);
                count += n;
                void *b = mempool_try_get(o.pool);
                REQUIRE(b);
                claim(&o, b, 1);
                held[count++] = b;
                /* Give back a different number than was taken, so the
                 * magazines' fill moves across every boundary. */
                size_t back = (n * 3 + round) % (count + 1);
                count -= back;
                for (size_t i = 0; i < back; i++)
                    release(&o, held[count + i], 1);
                CHECK_EQ(mempool_put_bulk(o.pool, held + count, back), 0);
                if (count && n % 2) {
                    release(&o, held[--count], 1);
                    CHECK_EQ(mempool_put(o.pool, held[count]), 0);
                }
            }
        }
        CHECK_EQ(mempool_available(o.pool), CAPACITY - count);
        for (size_t i = 0; i < count; i++)
            release(&o, held[i], 1);
        CHECK_EQ(mempool_put_bulk(o.pool, held, count), 0);
        CHECK_EQ(mempool_available(o.pool), CAPACITY);
        CHECK_EQ(mempool_drain(o.pool, 0), 0);
        /* Every block once: all of them can be taken, and no more. */
        check_get_all(o.pool, held);
        for (size_t i = 0; i < CAPACITY; i++)
            claim(&o, held[i], 2);
        CHECK(mempool_try_get(o.pool) == NULL);
        free(o.owner);
        mempool_destroy(o.pool);
    }
    free(held);
}

/* A seeded random walk of one thread's gets and puts, single and bulk, of
 * sizes up to two magazines and a bit, in a pool small enough that the
 * shared stack runs dry and the depot trades full and empty magazines: the
 * magazines reach fills the fixed sweep does not (a previous magazine partly
 * full when a refill merges it, a spill that moves only part of the loaded
 * one). After every step no block has two holders and the free count is
 * exact; at the end every block comes back once. */
static void test_random_walk(unsigned cache_size, unsigned seed)
{
    enum { CAPACITY = 96 };
    void *held[CAPACITY];
    mempool_config config = { .capacity = CAPACITY, .block_size = 16, .cache_size = cache_size };
    struct owners o = { mempool_create(&config), calloc(CAPACITY, sizeof(atomic_int)) };
    REQUIRE(o.pool && o.owner);
    size_t count = 0, top = 2 * (size_t)cache_size + 3;
    long steps = (long)(20000 * check_scale()) + 2000;
    for (long step = 0; step < steps; step++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % top;
        bool get = (seed >> 8) % 2 ? count + n <= CAPACITY : n > count;
        bool single = n == 1 || (seed >> 12) % 5 == 0;
        if (single)
            n = 1;
        if (get && count + n <= CAPACITY) {
            if (single)
                REQUIRE((held[count] = mempool_try_get(o.pool)) != NULL);
            else
                CHECK_EQ(mempool_get_bulk(o.pool, held + count, n, 0), 0);
            for (size_t i = 0; i < n; i++)
                claim(&o, held[count + i], 1);
            count += n;
        } else if (!get && n <= count) {
            count -= n;
            for (size_t i = 0; i < n; i++)
                release(&o, held[count + i], 1);
            if (single)
                CHECK_EQ(mempool_put(o.pool, held[count]), 0);
            else
                CHECK_EQ(mempool_put_bulk(o.pool, held + count, n), 0);
        }
        if (mempool_available(o.pool) != CAPACITY - count) {
            CHECK_EQ(mempool_available(o.pool), CAPACITY - count);
            break;
        }
    }
    for (size_t i = 0; i < count; i++)
        release(&o, held[i], 1);
    CHECK_EQ(mempool_put_bulk(o.pool, held, count), 0);
    CHECK_EQ(mempool_drain(o.pool, 0), 0);
    check_get_all(o.pool, held);
    free(o.owner);
    mempool_destroy(o.pool);
}

/* A pool's gets were served by this thread's cache. */
static bool served_by_cache(mempool *pool)
{
    void *b[3];
    for (int i = 0; i < 3; i++)
        b[i] = mempool_try_get(pool);
    for (int i = 0; i < 3; i++)
        if (b[i])
            mempool_put(pool, b[i]);
    for (int i = 0; i < 3; i++) {
        b[i] = mempool_try_get(pool);
        if (b[i])
            mempool_put(pool, b[i]);
    }
    mempool_stats s;
    mempool_stats_read(pool, &s);
    return s.cache_hits > 0;
}

static mempool *small_pool(void)
{
    mempool_config config = { .capacity = 64, .block_size = 16, .cache_size = 8 };
    return mempool_create(&config);
}

static void *use_pools(void *arg)
{
    mempool **pools = arg;
    for (size_t i = 0; pools[i]; i++) {
        CHECK(served_by_cache(pools[i]));
        CHECK_EQ(mempool_available(pools[i]), 64);
    }
    return NULL;
}

static void test_pools(void)
{
    enum { MANY = 700, SLOTS = 4095, PAST = SLOTS + 40 };
    mempool **pools = calloc(PAST + 1, sizeof *pools);
    for (size_t i = 0; i < MANY; i++)
        REQUIRE(pools[i] = small_pool());
    use_pools(pools);
    /* Half of them go; their slots come back to new pools, which this
     * thread must not serve from the old pools' caches. */
    for (size_t i = 0; i < MANY; i += 2) {
        mempool_destroy(pools[i]);
        REQUIRE(pools[i] = small_pool());
    }
    use_pools(pools);
    pthread_join(check_thread(use_pools, pools), NULL);
    /* Past the last slot, pools run uncached and still work. */
    for (size_t i = MANY; i < PAST; i++)
        REQUIRE(pools[i] = small_pool());
    for (size_t i = PAST - 80; i < PAST; i++) {
        void *b = mempool_try_get(pools[i]);
        CHECK(b != NULL);
        CHECK_EQ(mempool_available(pools[i]), 63);
        CHECK_EQ(mempool_put(pools[i], b), 0);
        CHECK_EQ(mempool_put(pools[i], b), EINVAL);
        CHECK_EQ(mempool_available(pools[i]), 64);
    }
    for (size_t i = 0; i < PAST; i++)
        mempool_destroy(pools[i]);
    /* With the slots free again, a new pool is cached. */
    mempool *again = small_pool();
    CHECK(served_by_cache(again));
    mempool_destroy(again);
    free(pools);
}

struct churn {
    mempool *pool;
    int take;
};

static void *churn_thread(void *arg)
{
    struct churn *c = arg;
    void *b[64];
    /* No repeated put here: the other thread may have got the block since,
     * and a second put of it would free that thread's block. */
    CHECK_EQ(mempool_get_bulk(c->pool, b, (size_t)c->take, 0), 0);
    CHECK_EQ(mempool_put_bulk(c->pool, b, (size_t)c->take), 0);
    return NULL; /* exits with its magazines full */
}

static void test_churn(void)
{
    mempool_config config = { .capacity = 1024, .block_size = 64, .cache_size = 64 };
    mempool *pool = mempool_create(&config);
    REQUIRE(pool);
    int threads = (int)(300 * check_scale()) + 10;
    for (int i = 0; i < threads; i++) {
        struct churn a = { pool, 1 + i % 64 }, b = { pool, 64 - i % 64 };
        pthread_t x = check_thread(churn_thread, &a), y = check_thread(churn_thread, &b);
        pthread_join(x, NULL);
        pthread_join(y, NULL);
        CHECK_EQ(mempool_available(pool), 1024);
    }
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_destroy(pool);
}

struct refusal {
    const char *what;
    const void *block;
    int calls;
};

static void on_refusal(const char *what, const void *block, void *arg)
{
    struct refusal *r = arg;
    r->what = what;
    r->block = block;
    r->calls++;
}

/* Every kind of bad block, at every position of a call of every size up to
 * a magazine and one more: refused with EINVAL and the first bad block
 * reported, nothing put, and every good block still out (each can be put
 * once afterwards). */
static void test_refusals(void)
{
    static const unsigned sizes[] = { 4, 8, 64, 128 };
    enum { CAPACITY = 512, KINDS = 4 };
    static const char *const expected[KINDS] = { "foreign", "interior", "repeated",
                                                 "repeated-in-array" };
    void *held[CAPACITY];
    void *call[CAPACITY];
    int on_stack;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        struct refusal r = { 0 };
        mempool_config config = { .capacity = CAPACITY, .block_size = 64,
                                  .cache_size = sizes[s], .on_misuse = on_refusal,
                                  .arg = &r };
        mempool *pool = mempool_create(&config);
        REQUIRE(pool);
        size_t m = sizes[s] / 2;
        size_t top = m + 1 > 70 ? 70 : m + 1;
        for (size_t n = 1; n <= top; n++) {
            for (size_t bad = 0; bad < n; bad++) {
                for (int kind = 0; kind < KINDS; kind++) {
                    if (kind == 3 && bad == 0)
                        continue; /* no earlier block to repeat */
                    size_t good = n - 1;
                    CHECK_EQ(mempool_get_bulk(pool, held, good, 0), 0);
                    /* A block known to be free: taken and put back. */
                    void *spare = mempool_try_get(pool);
                    REQUIRE(spare);
                    CHECK_EQ(mempool_put(pool, spare), 0);
                    /* Empty magazines: a call of up to a magazine fits,
                     * so the hit path is the one that refuses it. */
                    mempool_flush(pool);
                    size_t avail = mempool_available(pool);
                    for (size_t i = 0, g = 0; i < n; i++)
                        call[i] = i == bad ? NULL : held[g++];
                    const void *bad_block = kind == 0 ? (const void *)&on_stack
                                          : kind == 1 ? (const void *)((char *)spare + 1)
                                          : kind == 2 ? spare
                                                      : call[bad - 1];
                    call[bad] = (void *)bad_block;
                    r.calls = 0;
                    CHECK_EQ(mempool_put_bulk(pool, call, n), EINVAL);
                    CHECK_EQ(r.calls, 1);
                    CHECK(r.block == bad_block);
                    CHECK(r.what && strcmp(r.what, expected[kind]) == 0);
                    CHECK_EQ(mempool_available(pool), avail);
                    /* Still out: all of them go back, once. */
                    CHECK_EQ(mempool_put_bulk(pool, held, good), 0);
                    CHECK_EQ(r.calls, 1);
                }
            }
        }
        CHECK_EQ(mempool_available(pool), CAPACITY);
        check_get_all(pool, held);
        CHECK(mempool_try_get(pool) == NULL);
        CHECK_EQ(mempool_put_bulk(pool, held, CAPACITY), 0);
        mempool_destroy(pool);
    }
}

/* Bulk calls larger than a chunk and than both magazines, and a get of
 * one more than is free, with the free blocks spread over the caller's
 * magazines, the depot and the shared stack. */
static void test_large(void)
{
    static const unsigned sizes[] = { 2, 8, 64, 128, 256, 4096 };
    enum { CAPACITY = 1 << 13 };
    void **held = malloc(CAPACITY * sizeof *held);
    REQUIRE(held);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        mempool_config config = { .capacity = CAPACITY, .block_size = 32,
                                  .cache_size = sizes[s] };
        struct owners o = { mempool_create(&config), calloc(CAPACITY, sizeof(atomic_int)) };
        REQUIRE(o.pool && o.owner);
        size_t m = sizes[s] / 2;
        const size_t counts[] = { 65, 127, 128, 129, 255, 256, 257, 1000,
                                  2 * m + 1, 4 * m + 3, CAPACITY };
        for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
            size_t n = counts[c] > CAPACITY ? CAPACITY : counts[c];
            CHECK_EQ(mempool_get_bulk(o.pool, held, n, 0), 0);
            for (size_t i = 0; i < n; i++)
                claim(&o, held[i], 1);
            for (size_t i = 0; i < n; i++)
                release(&o, held[i], 1);
            CHECK_EQ(mempool_put_bulk(o.pool, held, n), 0);
            CHECK_EQ(mempool_available(o.pool), CAPACITY);
        }
        /* Hold all but `left`; put some of those back one at a time (into
         * the magazines and the depot), the rest in one call past a
         * magazine (through the depot to the shared stack). */
        const size_t lefts[] = { 1, m, m + 1, 2 * m + 1, 300 };
        for (size_t l = 0; l < sizeof lefts / sizeof *lefts; l++) {
            size_t left = lefts[l];
            check_get_all(o.pool, held);
            size_t singles = left / 2;
            for (size_t i = 0; i < singles; i++)
                CHECK_EQ(mempool_put(o.pool, held[CAPACITY - 1 - i]), 0);
            CHECK_EQ(mempool_put_bulk(o.pool, held + CAPACITY - left, left - singles), 0);
            CHECK_EQ(mempool_available(o.pool), left);
            /* One more than is free: EAGAIN, and nothing taken. */
            void **want = malloc((left + 1) * sizeof *want);
            REQUIRE(want);
            CHECK_EQ(mempool_get_bulk(o.pool, want, left + 1, 0), EAGAIN);
            CHECK_EQ(mempool_available(o.pool), left);
            /* Exactly what is free: every one of them, once. */
            CHECK_EQ(mempool_get_bulk(o.pool, want, left, 0), 0);
            for (size_t i = 0; i < CAPACITY - left; i++)
                claim(&o, held[i], 1);
            for (size_t i = 0; i < left; i++)
                claim(&o, want[i], 1);
            CHECK(mempool_try_get(o.pool) == NULL);
            for (size_t i = 0; i < CAPACITY - left; i++)
                release(&o, held[i], 1);
            for (size_t i = 0; i < left; i++)
                release(&o, want[i], 1);
            CHECK_EQ(mempool_put_bulk(o.pool, want, left), 0);
            CHECK_EQ(mempool_put_bulk(o.pool, held, CAPACITY - left), 0);
            CHECK_EQ(mempool_available(o.pool), CAPACITY);
            free(want);
        }
        free(o.owner);
        mempool_destroy(o.pool);
    }
    free(held);
}

int main(void)
{
    test_sweep();
    static const unsigned walk_sizes[] = { 1, 2, 3, 4, 7, 8, 16, 32 };
    for (unsigned i = 0; i < sizeof walk_sizes / sizeof *walk_sizes; i++)
        test_random_walk(walk_sizes[i], 7 + i);
    test_refusals();
    test_large();
    test_handoff();
    test_pools();
    test_churn();
    CHECK_DONE();
}
