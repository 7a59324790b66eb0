/* SPDX-License-Identifier: MIT */
/* Multithreaded invariant checker. Threads run random mixes of every get and
 * put flavour on a small shared pool while a shadow table (one atomic owner
 * per block index) catches a block held by two owners at once and any valid
 * put refused; misuse whose refusal is certain must give EINVAL. At the end
 * every block is back and each is handed out exactly once. Runs for an arena
 * pool and for eager and lazy generator pools.
 *
 * Each thread's operation sequence comes from a printed seed (base seed from
 * MEMPOOL_STRESS_SEED, default fixed) so a failing mix can be replayed.
 *
 * `test_stress --duration SECONDS` is the soak mode: it repeats the same
 * twelve runs with a new base seed each round until the time is up, then
 * prints the totals (operations, threads, time, violations). Without the
 * option (as under ctest) it makes one round with the fixed seed. */
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

#define SECOND ((int64_t)1000000000)
#define MS ((int64_t)1000000)
#define US ((int64_t)1000)

enum { HOLD_MAX = 4, BLOCK_BYTES = 64, PRIVATE_CAPACITY = 2 };
enum pool_kind { ARENA, GENERATOR, LAZY };
static const char *const kind_names[] = { "arena", "generator", "lazy" };

static atomic_long makes, unmakes;

/* Soak mode prints one line per run instead of every thread's seed: the
 * seeds follow from the printed base seed, and a failure prints its own. */
static int quiet;

static void *make_block(void *arg)
{
    (void)arg;
    void *b = malloc(BLOCK_BYTES);
    REQUIRE(b);
    atomic_fetch_add(&makes, 1);
    return b;
}

static void unmake_block(void *block, void *arg)
{
    (void)arg;
    free(block);
    atomic_fetch_add(&unmakes, 1);
}

struct run {
    mempool *pool;
    size_t capacity;
    atomic_int *owner;      /* per block index: 0 free, else the holder's id */
    atomic_int errors;
    atomic_int finished;
    atomic_long served, refused_empty, expired;     /* outcomes, for the log */
    int ops;
};

struct worker {
    struct run *run;
    int id;                 /* >= 1: the owner mark */
    uint64_t seed, state;
    atomic_int op;          /* operation in progress, for the hang report */
    atomic_int step;
    void *held[HOLD_MAX];
    size_t nheld;
    mempool *private_pool;  /* only this thread uses it: refusals are certain */
};

static uint64_t next_random(struct worker *w)
{
    /* xorshift64*: good enough to mix operations. */
    w->state ^= w->state >> 12;
    w->state ^= w->state << 25;
    w->state ^= w->state >> 27;
    return w->state * 2685821657736338717ull;
}

static void fail(struct worker *w, const char *what, const void *block, long detail)
{
    if (atomic_fetch_add(&w->run->errors, 1) < 20)
        fprintf(stderr, "thread %d (seed %llu) step %d: %s (block %p, %ld)\n", w->id,
                (unsigned long long)w->seed, atomic_load(&w->step), what, block, detail);
}

/* A get succeeded: the block must be this pool's and nobody else's. */
static void take(struct worker *w, void *b)
{
    struct run *r = w->run;
    size_t idx = mempool_index(r->pool, b);
    if (idx >= r->capacity) {
        fail(w, "got a block with no index", b, 0);
        return;
    }
    if (mempool_block(r->pool, idx) != b)
        fail(w, "index does not map back", b, (long)idx);
    int expected = 0;
    if (!atomic_compare_exchange_strong(&r->owner[idx], &expected, w->id)) {
        fail(w, "block already held by thread", b, expected);
        return;
    }
    *(int *)b = w->id;      /* checked at put: nobody else wrote it meanwhile */
    REQUIRE(w->nheld < HOLD_MAX);
    w->held[w->nheld++] = b;
}

/* Clears the owner mark before the put, as the put may hand the block on. */
static void *release(struct worker *w, size_t k)
{
    struct run *r = w->run;
    void *b = w->held[k];
    w->held[k] = w->held[--w->nheld];
    if (*(int *)b != w->id)
        fail(w, "block content changed while held", b, *(int *)b);
    size_t idx = mempool_index(r->pool, b);
    if (idx >= r->capacity || atomic_exchange(&r->owner[idx], 0) != w->id)
        fail(w, "held block not marked as ours", b, (long)idx);
    return b;
}

static void count_outcome(struct run *r, int err)
{
    atomic_fetch_add_explicit(err == 0 ? &r->served : err == EAGAIN ? &r->refused_empty
                              : &r->expired, 1, memory_order_relaxed);
}

static void check_get(struct worker *w, void *b, int err, int allowed)
{
    count_outcome(w->run, err);
    if (b)
        take(w, b);
    else if (err != allowed)
        fail(w, "get failed", NULL, err);
}

static void op_get(struct worker *w, uint64_t rnd)
{
    mempool *pool = w->run->pool;
    /* Wait without limit only while holding nothing, so that every thread
     * holding blocks is bound to give them back (no deadlock by design). */
    int may_block = w->nheld == 0;
    int64_t tiny = (int64_t)(1 + rnd % 20) * US;
    void *b;
    switch ((rnd >> 8) % 6) {
    case 0:
        if (may_block) {
            b = mempool_get(pool);
            check_get(w, b, b ? 0 : errno, -1);
            break;
        }
        /* fall through */
    case 1:
        b = mempool_try_get(pool);
        check_get(w, b, b ? 0 : errno, EAGAIN);
        break;
    case 2:
        b = mempool_get_timeout(pool, 0);
        check_get(w, b, b ? 0 : errno, EAGAIN);
        break;
    case 3:
        if (may_block) {
            b = mempool_get_timeout(pool, -1);
            check_get(w, b, b ? 0 : errno, -1);
            break;
        }
        /* fall through */
    default:
        b = mempool_get_timeout(pool, tiny);
        check_get(w, b, b ? 0 : errno, ETIMEDOUT);
        break;
    }
}

static void op_get_bulk(struct worker *w, uint64_t rnd)
{
    void *b[HOLD_MAX];
    size_t room = HOLD_MAX - w->nheld;
    size_t n = 1 + rnd % room;
    int64_t timeout;
    int allowed;
    switch ((rnd >> 8) % 3) {
    case 0:
        timeout = 0;
        allowed = EAGAIN;
        break;
    case 1:
        timeout = (int64_t)(1 + (rnd >> 16) % 20) * US;
        allowed = ETIMEDOUT;
        break;
    default:
        timeout = w->nheld == 0 ? -1 : 0;
        allowed = w->nheld == 0 ? -1 : EAGAIN;
        break;
    }
    int rc = mempool_get_bulk(w->run->pool, b, n, timeout);
    count_outcome(w->run, rc);
    if (rc == 0) {
        for (size_t k = 0; k < n; k++)
            take(w, b[k]);
    } else if (rc != allowed) {
        fail(w, "get_bulk failed", NULL, rc);
    }
}

static void op_put(struct worker *w, uint64_t rnd)
{
    void *b = release(w, rnd % w->nheld);
    int rc = mempool_put(w->run->pool, b);
    if (rc != 0)
        fail(w, "valid put refused", b, rc);
}

static void op_put_bulk(struct worker *w)
{
    void *b[HOLD_MAX];
    size_t n = 0;
    while (w->nheld)
        b[n++] = release(w, w->nheld - 1);
    int rc = mempool_put_bulk(w->run->pool, b, n);
    if (rc != 0)
        fail(w, "valid put_bulk refused", NULL, rc);
}

static void expect_refused(struct worker *w, mempool *pool, void *b, const char *what)
{
    int rc = mempool_put(pool, b);
    if (rc != EINVAL)
        fail(w, what, b, rc);
    void *arr[2] = { b, b };
    rc = mempool_put_bulk(pool, arr, 1);
    if (rc != EINVAL)
        fail(w, what, b, rc);
}

/* Puts the pool must refuse whatever the other threads do. */
static void op_misuse(struct worker *w, uint64_t rnd)
{
    struct run *r = w->run;
    long local = 0;
    switch (rnd % 5) {
    case 0:
        expect_refused(w, r->pool, NULL, "NULL put accepted");
        break;
    case 1:
        expect_refused(w, r->pool, &local, "stack pointer put accepted");
        break;
    case 2: {
        /* Another pool's block. */
        void *p = mempool_try_get(w->private_pool);
        if (!p) {
            fail(w, "private pool empty", NULL, errno);
            break;
        }
        expect_refused(w, r->pool, p, "other pool's block accepted");
        if (mempool_put(w->private_pool, p) != 0)
            fail(w, "private put refused", p, 0);
        break;
    }
    case 3: {
        /* Interior pointer of any made block, out or free. */
        void *b = mempool_block(r->pool, (size_t)((rnd >> 8) % r->capacity));
        if (b)
            expect_refused(w, r->pool, (char *)b + 1 + (rnd >> 16) % 8, "interior put accepted");
        break;
    }
    default:
        /* A block this thread holds, twice in one array: refused, still ours. */
        if (w->nheld) {
            void *h = w->held[(rnd >> 8) % w->nheld];
            void *arr[2] = { h, h };
            int rc = mempool_put_bulk(r->pool, arr, 2);
            if (rc != EINVAL)
                fail(w, "put_bulk with a repeated block accepted", h, rc);
        }
        break;
    }
}

/* Repeated puts on the thread's own pool, where nobody can take the block
 * in between: each must be refused. */
static void op_repeat_private(struct worker *w)
{
    mempool *p = w->private_pool;
    void *x = mempool_try_get(p), *y = mempool_try_get(p);
    if (!x || !y) {
        fail(w, "private pool empty", NULL, errno);
        return;
    }
    if (mempool_put(p, x) != 0)
        fail(w, "private put refused", x, 0);
    expect_refused(w, p, x, "repeated put accepted");
    void *xy[2] = { x, y };
    if (mempool_put_bulk(p, xy, 2) != EINVAL)
        fail(w, "put_bulk with a free block accepted", x, 0);
    if (mempool_put_bulk(p, &y, 1) != 0)
        fail(w, "private put_bulk refused", y, 0);
    expect_refused(w, p, y, "repeated put after put_bulk accepted");
    if (mempool_available(p) != PRIVATE_CAPACITY)
        fail(w, "private pool lost a block", NULL, (long)mempool_available(p));
}

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    w->private_pool = check_arena_pool(PRIVATE_CAPACITY, 16, 0);
    for (int i = 0; i < r->ops; i++) {
        atomic_store(&w->step, i);
        uint64_t rnd = next_random(w);
        unsigned pick = (unsigned)(rnd % 100);
        rnd >>= 8;
        if (w->nheld == HOLD_MAX && pick < 62)
            pick = 62 + pick % 26;      /* full hands: put instead */
        if (w->nheld == 0 && pick >= 62 && pick < 88)
            pick %= 62;                 /* empty hands: get instead */
        atomic_store(&w->op, (int)pick);
        if (pick < 50)
            op_get(w, rnd);
        else if (pick < 62)
            op_get_bulk(w, rnd);
        else if (pick < 80)
            op_put(w, rnd);
        else if (pick < 88)
            op_put_bulk(w);
        else if (pick < 91)
            mempool_flush(r->pool);
        else if (pick < 97)
            op_misuse(w, rnd);
        else
            op_repeat_private(w);
        if (pick % 16 == 0)
            sched_yield();
    }
    atomic_store(&w->op, -1);
    if (w->nheld)
        op_put_bulk(w);
    mempool_flush(r->pool);
    mempool_destroy(w->private_pool);
    atomic_fetch_add(&r->finished, 1);
    return NULL;
}

static mempool *make_pool(enum pool_kind kind, size_t capacity, unsigned cache_size)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.cache_size = cache_size;
    if (kind == ARENA) {
        cfg.block_size = BLOCK_BYTES;
    } else {
        cfg.make = make_block;
        cfg.unmake = unmake_block;
        cfg.flags = kind == LAZY ? MEMPOOL_LAZY : 0;
    }
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool);
    return pool;
}

/* cache_size 0 leaves these small pools uncached (the automatic rule); a
 * cached run gives every thread a cache that, summed over the threads, is
 * larger than the pool, so gets keep reclaiming from other threads' caches. */
static long ops_per_thread(void)
{
    long ops = (long)(40000 * check_scale());
    return ops < 200 ? 200 : ops;
}

/* Returns the number of violations seen: shadow-table findings plus failed
 * checks at quiescence. */
static long run_stress(enum pool_kind kind, int threads, uint64_t base_seed,
                       unsigned cache_size)
{
    int failures_before = check_failures;
    struct run r;
    r.capacity = cache_size ? (size_t)threads * 2 : (size_t)threads + (size_t)threads / 2;
    atomic_store(&makes, 0);
    atomic_store(&unmakes, 0);
    r.pool = make_pool(kind, r.capacity, cache_size);
    CHECK_EQ(atomic_load(&makes), kind == GENERATOR ? (long)r.capacity : 0);
    r.owner = calloc(r.capacity, sizeof *r.owner);
    REQUIRE(r.owner);
    for (size_t i = 0; i < r.capacity; i++)
        atomic_init(&r.owner[i], 0);
    atomic_init(&r.errors, 0);
    atomic_init(&r.finished, 0);
    atomic_init(&r.served, 0);
    atomic_init(&r.refused_empty, 0);
    atomic_init(&r.expired, 0);
    r.ops = (int)ops_per_thread();

    printf("%s pool, capacity %zu, cache %u, %d threads x %d operations, base seed %llu\n",
           kind_names[kind], r.capacity, cache_size, threads, r.ops,
           (unsigned long long)base_seed);
    struct worker *w = calloc((size_t)threads, sizeof *w);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    REQUIRE(w && t);
    for (int i = 0; i < threads; i++) {
        w[i].run = &r;
        w[i].id = i + 1;
        w[i].seed = base_seed * 1000003u + (uint64_t)kind * 1009u + (uint64_t)i + 1;
        w[i].state = w[i].seed;
        atomic_init(&w[i].op, 0);
        atomic_init(&w[i].step, 0);
        if (!quiet)
            printf("  thread %d seed %llu\n", w[i].id, (unsigned long long)w[i].seed);
    }
    fflush(stdout);
    for (int i = 0; i < threads; i++)
        t[i] = check_thread(worker_thread, &w[i]);

    int64_t deadline = check_now_ns() + 200 * SECOND;
    while (atomic_load(&r.finished) < threads) {
        if (check_now_ns() > deadline) {
            fprintf(stderr, "%s: %d of %d threads finished; still running:\n",
                    kind_names[kind], atomic_load(&r.finished), threads);
            for (int i = 0; i < threads; i++)
                if (atomic_load(&w[i].op) >= 0)
                    fprintf(stderr, "  thread %d step %d operation %d\n", w[i].id,
                            atomic_load(&w[i].step), atomic_load(&w[i].op));
            REQUIRE(0);
        }
        check_sleep_ns(10 * MS);
    }
    for (int i = 0; i < threads; i++)
        REQUIRE(pthread_join(t[i], NULL) == 0);
    long violations = atomic_load(&r.errors);
    CHECK_EQ(violations, 0);
    if (!quiet)
        printf("  gets: %ld served, %ld EAGAIN, %ld ETIMEDOUT\n", atomic_load(&r.served),
           atomic_load(&r.refused_empty), atomic_load(&r.expired));

    /* Quiescent: every block is back, and each comes out exactly once. */
    CHECK_EQ(mempool_available(r.pool), r.capacity);
    CHECK_EQ(mempool_drain(r.pool, 0), 0);
    void **all = calloc(r.capacity, sizeof *all);
    int *seen = calloc(r.capacity, sizeof *seen);
    REQUIRE(all && seen);
    size_t got = 0;
    for (; got < r.capacity; got++) {
        all[got] = mempool_try_get(r.pool);
        CHECK(all[got] != NULL);
        if (!all[got])
            break;
        size_t idx = mempool_index(r.pool, all[got]);
        CHECK(idx < r.capacity);
        if (idx < r.capacity)
            CHECK_EQ(seen[idx]++, 0);
    }
    errno = 0;
    CHECK(mempool_try_get(r.pool) == NULL);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(mempool_available(r.pool), 0);
    if (kind != ARENA)
        CHECK_EQ(atomic_load(&makes), (long)r.capacity);
    CHECK_EQ(mempool_put_bulk(r.pool, all, got), 0);
    CHECK_EQ(mempool_available(r.pool), r.capacity);
    mempool_destroy(r.pool);
    if (kind != ARENA)
        CHECK_EQ(atomic_load(&unmakes), atomic_load(&makes));

    free(all);
    free(seen);
    free(w);
    free(t);
    free(r.owner);
    /* The CHECK above already counted a nonzero r.errors once. */
    return violations + (check_failures - failures_before) - (violations != 0);
}


/* One round: every pool kind, uncached and cached, at 2 x cores and
 * oversubscribed. Adds the operations run to *ops. */
static long run_round(uint64_t seed, int per_cpu, int many, long *ops)
{
    long violations = 0;
    for (int kind = ARENA; kind <= LAZY; kind++) {
        violations += run_stress((enum pool_kind)kind, per_cpu, seed, 0);
        violations += run_stress((enum pool_kind)kind, many, seed + 1, 0);
        violations += run_stress((enum pool_kind)kind, per_cpu, seed + 2, 8);
        violations += run_stress((enum pool_kind)kind, many, seed + 3, 8);
        *ops += 2 * ops_per_thread() * (per_cpu + many);
    }
    return violations;
}

int main(int argc, char **argv)
{
    double duration = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc) {
            duration = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--duration SECONDS]\n", argv[0]);
            return 2;
        }
    }
    long cpus = check_cpus();
    if (cpus < 1)
        cpus = 1;
    if (cpus > 32)
        cpus = 32;
    int per_cpu = (int)(2 * cpus);
    int many = per_cpu < 8 ? 8 : per_cpu + 4;
    const char *env = getenv("MEMPOOL_STRESS_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 20240601u;
    printf("base seed %llu (set MEMPOOL_STRESS_SEED to change)\n", (unsigned long long)seed);

    if (duration <= 0) {
        long ops = 0;
        run_round(seed, per_cpu, many, &ops);
        CHECK_DONE();
    }

    quiet = 1;
    int64_t start = check_now_ns();
    int64_t end = start + (int64_t)(duration * (double)SECOND);
    long ops = 0, violations = 0, rounds = 0;
    /* Each round takes fresh seeds (4 per round, as run_round uses seed .. seed + 3). */
    do {
        violations += run_round(seed + 4 * (uint64_t)rounds, per_cpu, many, &ops);
        rounds++;
        fflush(stdout);
    } while (check_now_ns() < end);
    double elapsed = (double)(check_now_ns() - start) / (double)SECOND;
    printf("soak: %ld operations in %ld rounds, threads %d and %d (%ld cores), "
           "%.1f s, %ld violations\n", ops, rounds, per_cpu, many, cpus, elapsed, violations);
    CHECK_DONE();
}
