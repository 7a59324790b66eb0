/* SPDX-License-Identifier: MIT */
/* Fault injection: every internal allocation and every `make` call that can
 * fail is made to fail in turn, and each failure must give the documented
 * result, leak nothing and leave the other pools usable.
 *
 * Built against a copy of the library compiled with MEMPOOL_FAULT_INJECTION
 * (tests/CMakeLists.txt): setting mempool__fault_countdown to k > 0 makes the
 * k-th internal allocation from then on fail. Each scenario runs with
 * k = 1, 2, ... until a run finishes without reaching the k-th allocation,
 * so every allocation point on its path has failed once. Leaks are caught
 * by LeakSanitizer (the asan tiers) and memcheck (the valgrind tier); blocks
 * made by `make` are also counted here.
 *
 * Documented results checked:
 *   - mempool_create: NULL with errno ENOMEM, every block made so far unmade
 *     exactly once (generator mode);
 *   - a thread's first use of a cached pool allocates its cache (and its
 *     table of caches); when that fails the thread runs uncached: its gets
 *     and puts still succeed (a put never fails with ENOMEM, nor an arena
 *     get), and nothing is stranded when it exits;
 *   - a lazy get whose `make` fails returns ENOMEM, takes nothing and gives
 *     its slot back; the next get makes the block;
 *   - destroy completes whatever fails inside it;
 *   - a heavy barrier that fails (mempool__fault_barrier) takes nothing from
 *     another thread's cache, and the pool goes on with the ordered protocol:
 *     the cache is taken once its owner has made a call. */
#include <stdatomic.h>

#include "check.h"
#include "waiter.h"

extern _Atomic long mempool__fault_countdown;
extern _Atomic int mempool__fault_barrier;
extern _Atomic long mempool__fault_barrier_failures;

enum { BLOCK_BYTES = 48, K_LIMIT = 10000 };
#define SECOND ((int64_t)1000000000)

/* Arms the k-th allocation from now to fail (0 disarms). */
static void fault_arm(long k)
{
    atomic_store(&mempool__fault_countdown, k);
}

/* True when the armed allocation was reached (and failed); disarms. */
static int fault_fired(void)
{
    return atomic_exchange(&mempool__fault_countdown, 0) == 0;
}

/* ---- the test's own make/unmake: counts calls, fails the chosen one ---- */

struct maker {
    atomic_long calls, live, unmade;
    atomic_long fail_at;        /* the call number that fails (0: none) */
    int duplicate;              /* the failing call returns an earlier block */
    void *first;
};

static void *maker_make(void *arg)
{
    struct maker *m = arg;
    long call = atomic_fetch_add(&m->calls, 1) + 1;
    if (call == atomic_load(&m->fail_at)) {
        if (m->duplicate && m->first)
            return m->first;
        return NULL;
    }
    void *b = malloc(BLOCK_BYTES);
    REQUIRE(b);
    if (!m->first)
        m->first = b;
    atomic_fetch_add(&m->live, 1);
    return b;
}

static void maker_unmake(void *block, void *arg)
{
    struct maker *m = arg;
    atomic_fetch_add(&m->live, -1);
    atomic_fetch_add(&m->unmade, 1);
    free(block);
}

static void maker_reset(struct maker *m, long fail_at, int duplicate)
{
    atomic_store(&m->calls, 0);
    atomic_store(&m->live, 0);
    atomic_store(&m->unmade, 0);
    atomic_store(&m->fail_at, fail_at);
    m->duplicate = duplicate;
    m->first = NULL;
}

/* ---- pool kinds ---- */

enum kind { ARENA, ARENA_INIT, ARENA_BIG, EAGER, LAZY, KINDS };
static const char *const kind_names[] = { "arena", "arena+init", "arena (mapped)", "eager",
                                          "lazy" };

static void init_block(void *block, void *arg)
{
    (void)arg;
    memset(block, 0x5A, BLOCK_BYTES);
}

static mempool_config config_of(enum kind kind, int cached, size_t capacity, struct maker *m)
{
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = capacity;
    if (kind <= ARENA_BIG) {
        /* Above 64 KiB the arena comes from mmap rather than the heap. */
        c.block_size = kind == ARENA_BIG ? 4096 : BLOCK_BYTES;
        c.init = kind == ARENA_INIT ? init_block : NULL;
    } else {
        c.make = maker_make;
        c.unmake = maker_unmake;
        c.arg = m;
        c.flags = kind == LAZY ? MEMPOOL_LAZY : 0;
    }
    if (cached)
        c.cache_size = 4;
    else
        c.flags |= MEMPOOL_NO_CACHE;
    return c;
}

/* Gets every block (mixing the get calls), checks them, puts them back. */
static void exercise(mempool *pool)
{
    size_t cap = mempool_capacity(pool);
    void **b = calloc(cap, sizeof *b);
    REQUIRE(b);
    size_t n = 0;
    if (cap >= 2) {
        CHECK_EQ(mempool_get_bulk(pool, b, 2, 0), 0);
        n = 2;
    }
    for (; n < cap; n++) {
        errno = 0;
        b[n] = n % 2 ? mempool_try_get(pool) : mempool_get_timeout(pool, 0);
        CHECK(b[n] != NULL);
        if (!b[n])
            break;
        CHECK(mempool_owns(pool, b[n]));
    }
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL);
    CHECK_EQ(errno, EAGAIN);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(mempool_put(pool, b[i]), 0);
    CHECK_EQ(mempool_available(pool), cap);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    free(b);
}

/* ---- a pool that exists throughout and must stay usable ---- */

static struct {
    mempool *pool;
    void *held[3];
} bystander;

static void bystander_check(void)
{
    mempool *p = bystander.pool;
    CHECK_EQ(mempool_available(p), mempool_capacity(p) - 3);
    void *b = mempool_try_get(p);
    CHECK(b != NULL);
    if (b) {
        CHECK(b != bystander.held[0] && b != bystander.held[1] && b != bystander.held[2]);
        CHECK_EQ(mempool_put(p, b), 0);
    }
    /* A held block goes back and comes out again. */
    CHECK_EQ(mempool_put(p, bystander.held[0]), 0);
    bystander.held[0] = mempool_get(p);
    CHECK(bystander.held[0] != NULL);
}

static long points_total;

/* ---- create: every allocation ---- */

static void fault_create(enum kind kind, int cached)
{
    struct maker m;
    long k, points = 0;
    for (k = 1; k < K_LIMIT; k++) {
        maker_reset(&m, 0, 0);
        mempool_config c = config_of(kind, cached, 64, &m);
        errno = 0;
        fault_arm(k);
        mempool *pool = mempool_create(&c);
        int err = errno;
        int fired = fault_fired();
        if (!fired) {
            CHECK(pool != NULL);
            if (pool) {
                exercise(pool);
                mempool_destroy(pool);
            }
            break;
        }
        points++;
        CHECK(pool == NULL);
        CHECK_EQ(err, ENOMEM);
        if (pool)
            mempool_destroy(pool);
        CHECK_EQ(atomic_load(&m.live), 0);      /* every block made was unmade */
        bystander_check();
    }
    CHECK(k < K_LIMIT);
    printf("create %-15s %-8s: %ld allocation points failed in turn\n", kind_names[kind],
           cached ? "cached" : "uncached", points);
    points_total += points;
}

/* ---- create: every make call, returning NULL or a duplicate ---- */

static void fault_create_make(int cached, int duplicate)
{
    struct maker m;
    long k, points = 0;
    for (k = 1; k < K_LIMIT; k++) {
        maker_reset(&m, k, duplicate);
        mempool_config c = config_of(EAGER, cached, 16, &m);
        errno = 0;
        mempool *pool = mempool_create(&c);
        int err = errno;
        if (atomic_load(&m.calls) < k) {
            CHECK(pool != NULL);
            if (pool) {
                exercise(pool);
                mempool_destroy(pool);
            }
            CHECK_EQ(atomic_load(&m.live), 0);
            break;
        }
        points++;
        CHECK(pool == NULL);
        CHECK_EQ(err, ENOMEM);
        CHECK_EQ(atomic_load(&m.calls), k);     /* no make after the failure */
        if (pool)
            mempool_destroy(pool);
        /* Each distinct block made was unmade once, the duplicate included
         * (it is the same block). */
        CHECK_EQ(atomic_load(&m.live), 0);
        CHECK_EQ(atomic_load(&m.unmade), k - 1);
        bystander_check();
    }
    CHECK(k < K_LIMIT);
    printf("create eager %-8s: make %s at each of %ld calls\n", cached ? "cached" : "uncached",
           duplicate ? "returning a duplicate" : "failing", points);
    points_total += points;
}

/* ---- a thread's first use of a cached pool ---- */

enum first_op { FIRST_GET, FIRST_TRY_GET, FIRST_PUT, FIRST_GET_BULK, FIRST_PUT_BULK, FIRST_OPS };
static const char *const first_names[] = { "get", "try_get", "put", "get_bulk", "put_bulk" };

struct first_use {
    mempool **pools;
    size_t npools;
    enum first_op op;
    long k;
    void *given[2];             /* blocks handed in for the put variants */
    int fired;
};

/* In a new thread: arm, then the first call on each pool, then keep using
 * them. Whatever allocation fails, every call succeeds. */
static void *first_use_thread(void *arg)
{
    struct first_use *f = arg;
    fault_arm(f->k);
    for (size_t i = 0; i < f->npools; i++) {
        mempool *pool = f->pools[i];
        void *b[2] = { NULL, NULL };
        switch (f->op) {
        case FIRST_GET:
            errno = 0;
            b[0] = mempool_get(pool);
            CHECK(b[0] != NULL);
            CHECK_EQ(errno, 0);
            break;
        case FIRST_TRY_GET:
            b[0] = mempool_try_get(pool);
            CHECK(b[0] != NULL);
            break;
        case FIRST_GET_BULK:
            CHECK_EQ(mempool_get_bulk(pool, b, 2, -1), 0);
            break;
        case FIRST_PUT:
        case FIRST_PUT_BULK:
            /* The first pool's first call is a put of the blocks handed in;
             * on the other pools (no blocks handed in) it is a get. */
            if (i == 0) {
                if (f->op == FIRST_PUT) {
                    CHECK_EQ(mempool_put(pool, f->given[0]), 0);
                    CHECK_EQ(mempool_put(pool, f->given[1]), 0);
                } else {
                    CHECK_EQ(mempool_put_bulk(pool, f->given, 2), 0);
                }
            }
            b[0] = mempool_get(pool);
            CHECK(b[0] != NULL);
            break;
        default:
            break;
        }
        /* Keep working on it: more than a cache's worth of gets and puts. */
        for (int round = 0; round < 20; round++) {
            void *x = mempool_try_get(pool);
            CHECK(x != NULL);
            CHECK_EQ(mempool_put(pool, x), 0);
        }
        CHECK_EQ(mempool_put(pool, b[0]), 0);
        if (b[1] && f->op == FIRST_GET_BULK)
            CHECK_EQ(mempool_put(pool, b[1]), 0);
    }
    f->fired = fault_fired();
    return NULL;
}

/* Ten cached pools, so that the thread's table of caches grows past its
 * first size (8 slots) and that growth fails too. */
enum { FIRST_POOLS = 10, FIRST_CAPACITY = 32 };

static void fault_first_use(enum kind kind, enum first_op op)
{
    struct maker m[FIRST_POOLS];
    mempool *pools[FIRST_POOLS];
    long k, points = 0;
    for (k = 1; k < K_LIMIT; k++) {
        for (int i = 0; i < FIRST_POOLS; i++) {
            maker_reset(&m[i], 0, 0);
            mempool_config c = config_of(kind, 1, FIRST_CAPACITY, &m[i]);
            pools[i] = mempool_create(&c);
            REQUIRE(pools[i]);
        }
        struct first_use f = { pools, FIRST_POOLS, op, k, { NULL, NULL }, 0 };
        if (op == FIRST_PUT || op == FIRST_PUT_BULK) {
            /* Taken here (the main thread caches them, which is fine) and
             * handed to the thread, whose first call is their put. */
            CHECK_EQ(mempool_get_bulk(pools[0], f.given, 2, 0), 0);
        }
        pthread_join(check_thread(first_use_thread, &f), NULL);
        /* The thread has exited: its cache went back, whether it had one.
         * Destroyed last to first, so that the next round's pools get the
         * freed slots in ascending order (slots are reused last in, first
         * out) and the thread's table has to grow as it meets them. */
        for (int i = FIRST_POOLS - 1; i >= 0; i--) {
            CHECK_EQ(mempool_available(pools[i]), FIRST_CAPACITY);
            CHECK_EQ(mempool_drain(pools[i], 0), 0);
            /* Counted whether the thread had a cache or ran without one
             * (its counts then go to the pool's shared counters). */
            mempool_stats s;
            CHECK_EQ(mempool_stats_read(pools[i], &s), 0);
            CHECK(s.gets >= 21);
            CHECK_EQ(s.gets, s.puts);
            exercise(pools[i]);
            mempool_destroy(pools[i]);
            CHECK_EQ(atomic_load(&m[i].live), 0);
        }
        if (!f.fired)
            break;
        points++;
        bystander_check();
    }
    CHECK(k < K_LIMIT);
    printf("first use %-6s %-8s: %ld allocation points failed in turn\n", kind_names[kind],
           first_names[op], points);
    points_total += points;
}

/* ---- lazy gets: every make call fails in turn ---- */

static void fault_lazy_make(int cached, int bulk, int duplicate)
{
    enum { CAP = 12 };
    struct maker m;
    long k, points = 0;
    for (k = 1; k < K_LIMIT; k++) {
        maker_reset(&m, k, duplicate);
        mempool_config c = config_of(LAZY, cached, CAP, &m);
        mempool *pool = mempool_create(&c);
        REQUIRE(pool);
        void *b[CAP];
        size_t n = 0;
        int failures = 0;
        while (n < CAP) {
            long calls = atomic_load(&m.calls);
            size_t want = bulk && n + 3 <= CAP ? 3 : 1;
            int err;
            if (want == 3) {
                err = mempool_get_bulk(pool, b + n, 3, 0);
            } else {
                errno = 0;
                b[n] = n % 2 ? mempool_try_get(pool) : mempool_get(pool);
                err = b[n] ? 0 : errno;
            }
            int failed = atomic_load(&m.calls) >= k && calls < k;
            if (failed) {
                failures++;
                CHECK_EQ(err, ENOMEM);
                /* Nothing taken, the slot given back. */
                CHECK_EQ(mempool_available(pool), CAP - n);
            } else {
                CHECK_EQ(err, 0);
                if (!err)
                    n += want;
            }
            if (failures > 1 || (err && !failed))
                break;
        }
        CHECK_EQ(n, CAP);
        errno = 0;
        CHECK(mempool_try_get(pool) == NULL);
        CHECK_EQ(errno, EAGAIN);
        CHECK_EQ(mempool_put_bulk(pool, b, n), 0);
        CHECK_EQ(mempool_available(pool), CAP);
        mempool_destroy(pool);
        CHECK_EQ(atomic_load(&m.live), 0);
        if (!failures)
            break;
        points++;
        bystander_check();
    }
    CHECK(k < K_LIMIT);
    printf("lazy %-8s %-8s: make %s at each of %ld calls\n", cached ? "cached" : "uncached",
           bulk ? "get_bulk" : "get", duplicate ? "returning a duplicate" : "failing", points);
    points_total += points;
}

/* ---- lazy gets: every internal allocation (the thread's cache) ---- */

struct lazy_alloc {
    mempool *pool;
    long k;
    int fired;
};

static void *lazy_alloc_thread(void *arg)
{
    struct lazy_alloc *a = arg;
    void *b[8];
    fault_arm(a->k);
    for (int i = 0; i < 8; i++) {
        errno = 0;
        b[i] = i % 2 ? mempool_try_get(a->pool) : mempool_get(a->pool);
        CHECK(b[i] != NULL);
    }
    for (int i = 0; i < 8; i++)
        CHECK_EQ(mempool_put(a->pool, b[i]), 0);
    a->fired = fault_fired();
    return NULL;
}

static void fault_lazy_alloc(void)
{
    struct maker m;
    long k, points = 0;
    for (k = 1; k < K_LIMIT; k++) {
        maker_reset(&m, 0, 0);
        mempool_config c = config_of(LAZY, 1, 8, &m);
        mempool *pool = mempool_create(&c);
        REQUIRE(pool);
        struct lazy_alloc a = { pool, k, 0 };
        pthread_join(check_thread(lazy_alloc_thread, &a), NULL);
        CHECK_EQ(mempool_available(pool), 8);
        CHECK_EQ(atomic_load(&m.calls), 8);
        exercise(pool);
        mempool_destroy(pool);
        CHECK_EQ(atomic_load(&m.live), 0);
        if (!a.fired)
            break;
        points++;
        bystander_check();
    }
    CHECK(k < K_LIMIT);
    printf("lazy gets, cached  : %ld allocation points failed in turn\n", points);
    points_total += points;
}

/* ---- destroy: an allocation inside it (the registry's list of free cache
 * slots) fails: destroy still completes and releases everything ---- */

static void fault_destroy(void)
{
    long k, points = 0;
    for (k = 1; k < K_LIMIT; k++) {
        /* Several cached pools destroyed in a row, so that the registry's
         * list grows at some point within them whatever its state. */
        mempool *pools[80];
        for (int i = 0; i < 80; i++)
            pools[i] = check_arena_pool(64, BLOCK_BYTES, 0);
        for (int i = 0; i < 80; i++)
            CHECK_EQ(mempool_put(pools[i], mempool_get(pools[i])), 0);
        fault_arm(k);
        for (int i = 0; i < 80; i++)
            mempool_destroy(pools[i]);
        int fired = fault_fired();
        /* The slots are still handed out: new cached pools work. */
        mempool *p = check_arena_pool(64, BLOCK_BYTES, 0);
        exercise(p);
        mempool_destroy(p);
        if (!fired)
            break;
        points++;
        bystander_check();
    }
    CHECK(k < K_LIMIT);
    printf("destroy, cached    : %ld allocation points failed in turn\n", points);
    points_total += points;
}

/* ---- a failing heavy barrier ---- */

struct parked {
    mempool *pool;
    atomic_int stage; /* 1: 16 blocks cached; 2: make a call; 3: made; 4: exit */
};

static void *parked_main(void *arg)
{
    struct parked *p = arg;
    check_park_in_cache(p->pool, 16);
    atomic_store(&p->stage, 1);
    check_await(&p->stage, 2);
    mempool_flush(p->pool); /* a call: it hands the cache over itself */
    atomic_store(&p->stage, 3);
    check_await(&p->stage, 4);
    return NULL;
}

static void fault_barrier(void)
{
    mempool_config cfg = { .capacity = 64, .block_size = BLOCK_BYTES, .cache_size = 16 };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    struct parked p = { .pool = pool };
    pthread_t t = check_thread(parked_main, &p);
    check_await(&p.stage, 1);
    void *held[64];
    long failures = atomic_load(&mempool__fault_barrier_failures);
    atomic_store(&mempool__fault_barrier, 1);
    size_t got = check_take_free(pool, held, 0, 64);
    bool failed = atomic_load(&mempool__fault_barrier_failures) > failures;
    /* Backends and builds without the barrier are ordered from the start. */
    CHECK_EQ(got, failed ? 48 : 64);
    atomic_store(&p.stage, 2);
    check_await(&p.stage, 3);
    got = check_take_free(pool, held, got, 64);
    CHECK_EQ(got, 64);
    CHECK_EQ(mempool_put_bulk(pool, held, got), 0);
    atomic_store(&p.stage, 4);
    pthread_join(t, NULL);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    atomic_store(&mempool__fault_barrier, 0);
    mempool_destroy(pool);
}

/* A get that sleeps because its barrier failed leaves the other caches
 * armed; the owner honours at its next call of any kind (a get or a put,
 * single or bulk, even a refused put) or at its exit, which serves the
 * sleeper, and once nobody waits the caches are disarmed again: otherwise
 * every later call would empty a cache once more (all misses, each through
 * the pool lock; debug builds also assert the WAIT bit). A failed barrier turns the whole process to the ordered
 * protocol, so each kind of call runs in a child of its own. */
enum honour_call { HONOUR_GET, HONOUR_PUT, HONOUR_REFUSED_PUT, HONOUR_GET_BULK,
                   HONOUR_PUT_BULK, HONOUR_EXIT, HONOUR_CALLS };

struct honourer {
    mempool *pool;
    enum honour_call call;
    atomic_int stage; /* 1: cache full; 2: make a call; 3: made; 4: churn; 5: done */
};

static void *honourer_main(void *arg)
{
    struct honourer *h = arg;
    check_park_in_cache(h->pool, 16);
    void *b[2] = { NULL, NULL };
    if (h->call == HONOUR_PUT || h->call == HONOUR_PUT_BULK)
        REQUIRE((b[0] = mempool_get(h->pool)) != NULL && (b[1] = mempool_get(h->pool)) != NULL);
    atomic_store(&h->stage, 1);
    check_await(&h->stage, 2);
    if (h->call == HONOUR_EXIT)
        return NULL; /* its exit hands the cache over */
    switch (h->call) { /* each sees the request and hands its cache over */
    case HONOUR_GET: /* put back only later: the put would honour too */
        REQUIRE((b[0] = mempool_get(h->pool)) != NULL);
        break;
    case HONOUR_PUT:
        CHECK_EQ(mempool_put(h->pool, b[0]), 0);
        CHECK_EQ(mempool_put(h->pool, b[1]), 0);
        break;
    case HONOUR_REFUSED_PUT:
        CHECK_EQ(mempool_put(h->pool, NULL), EINVAL);
        break;
    case HONOUR_GET_BULK:
        CHECK_EQ(mempool_get_bulk(h->pool, b, 2, 0), 0);
        break;
    default:
        CHECK_EQ(mempool_put_bulk(h->pool, b, 2), 0);
        break;
    }
    atomic_store(&h->stage, 3);
    check_await(&h->stage, 4);
    if (h->call == HONOUR_GET)
        CHECK_EQ(mempool_put(h->pool, b[0]), 0);
    if (h->call == HONOUR_GET_BULK)
        CHECK_EQ(mempool_put_bulk(h->pool, b, 2), 0);
    for (int i = 0; i < 100; i++) {
        REQUIRE((b[0] = mempool_get(h->pool)) != NULL);
        CHECK_EQ(mempool_put(h->pool, b[0]), 0);
    }
    atomic_store(&h->stage, 5);
    return NULL;
}

static void fault_barrier_honour(enum honour_call call)
{
    mempool_config cfg = { .capacity = 32, .block_size = BLOCK_BYTES, .cache_size = 16 };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    struct honourer h = { .pool = pool, .call = call };
    pthread_t t = check_thread(honourer_main, &h);
    check_await(&h.stage, 1);
    void *held[32];
    atomic_store(&mempool__fault_barrier, 1);
    size_t got = check_take_free(pool, held, 0, 32);
    if (atomic_load(&mempool__fault_barrier_failures) == 0) {
        /* No barrier in this build or backend: nothing to honour. */
        atomic_store(&mempool__fault_barrier, 0);
        CHECK_EQ(mempool_put_bulk(pool, held, got), 0);
        got = 0;
        atomic_store(&h.stage, 2);
        if (call == HONOUR_EXIT)
            pthread_join(t, NULL);
        else
            check_await(&h.stage, 3);
    } else {
        struct waiter w = { .pool = pool, .call = WAITER_GET_TIMEOUT,
                            .timeout_ns = 5 * SECOND };
        waiter_start(&w);
        REQUIRE(waiter_wait_asleep(&w));
        atomic_store(&h.stage, 2);
        if (call == HONOUR_EXIT)
            pthread_join(t, NULL);
        else
            check_await(&h.stage, 3);
        waiter_join(&w);
        if (!w.block)
            fprintf(stderr, "honour call %d: the sleeper was not served\n", (int)call);
        CHECK(w.block != NULL);
        if (w.block)
            held[got++] = w.block;
        atomic_store(&mempool__fault_barrier, 0);
    }
    CHECK_EQ(mempool_put_bulk(pool, held, got), 0);
    mempool_stats before, after;
    CHECK_EQ(mempool_stats_read(pool, &before), 0);
    if (call == HONOUR_EXIT) { /* the churn is this thread's */
        for (int i = 0; i < 100; i++) {
            void *b = mempool_get(pool);
            REQUIRE(b != NULL);
            CHECK_EQ(mempool_put(pool, b), 0);
        }
    } else {
        atomic_store(&h.stage, 4);
        check_await(&h.stage, 5);
        pthread_join(t, NULL);
    }
    CHECK_EQ(mempool_stats_read(pool, &after), 0);
    /* 100 gets of one thread with blocks free: at most a refill, then hits. */
    CHECK(after.cache_hits - before.cache_hits >= 99);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_destroy(pool);
}

#if defined(_WIN32)
static void fault_barrier_honour_all(void)
{
    fault_barrier_honour(HONOUR_GET); /* no fork: one kind */
}
#else
#include <sys/wait.h>
#include <unistd.h>
static void fault_barrier_honour_all(void)
{
    for (int call = HONOUR_GET; call < HONOUR_CALLS; call++) {
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            fault_barrier_honour((enum honour_call)call);
            exit(check_failures ? 1 : 0);
        }
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}
#endif

int main(void)
{
    /* A cached pool with blocks out, created before any fault, that every
     * failure elsewhere must leave alone. */
    bystander.pool = check_arena_pool(64, BLOCK_BYTES, 0);
    for (int i = 0; i < 3; i++) {
        bystander.held[i] = mempool_get(bystander.pool);
        REQUIRE(bystander.held[i]);
    }

    for (int kind = ARENA; kind < KINDS; kind++)
        for (int cached = 0; cached <= 1; cached++)
            fault_create((enum kind)kind, cached);
    for (int cached = 0; cached <= 1; cached++) {
        fault_create_make(cached, 0);
        fault_create_make(cached, 1);
    }
    for (int op = FIRST_GET; op < FIRST_OPS; op++) {
        fault_first_use(ARENA, (enum first_op)op);
        fault_first_use(LAZY, (enum first_op)op);
    }
    for (int cached = 0; cached <= 1; cached++)
        for (int bulk = 0; bulk <= 1; bulk++) {
            fault_lazy_make(cached, bulk, 0);
            fault_lazy_make(cached, bulk, 1);
        }
    fault_lazy_alloc();
    fault_destroy();
    fault_barrier_honour_all(); /* before any barrier of this process fails */
    fault_barrier();

    for (int i = 0; i < 3; i++)
        CHECK_EQ(mempool_put(bystander.pool, bystander.held[i]), 0);
    CHECK_EQ(mempool_available(bystander.pool), 64);
    mempool_destroy(bystander.pool);
    printf("fault points injected: %ld\n", points_total);
    CHECK(points_total > 0);
    CHECK_DONE();
}
