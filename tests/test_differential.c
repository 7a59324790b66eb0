/* SPDX-License-Identifier: MIT */
/* Threaded differential test: 2 to 8 threads drive one pool with random
 * sequences of every call (get, try_get, timed get, bulk get and put of any
 * size from 1 to the capacity, flush, drain, puts of pointers that are not
 * blocks) while a controller thread drains, reads the counts and sometimes
 * closes the pool. The model beside the pool:
 *
 *   - a shadow owner table, one atomic owner per block index: a block
 *     received is claimed with a CAS from free, and released with a CAS
 *     back before it is put, so a block handed to two holders at once fails
 *     the test at the second claim;
 *   - per thread, the number of blocks it holds and how many times that
 *     number fell to zero, in one atomic word. A thread counts a block after
 *     its get returned and stops counting it before its put starts, so while
 *     the count is above zero some block is out. A drain that returns 0 while
 *     a thread held blocks throughout the call (count above zero before,
 *     generation unchanged after) broke its contract; so does a drain that
 *     returns 0 to a thread that holds a block itself;
 *   - a tag in each block's first bytes, written by its holder and checked
 *     before the put: the pool never writes into a block, and nobody else
 *     holds it.
 *
 * At the end of each round every thread has put everything back: available
 * must equal the capacity, drain(0) must return 0, the statistics must count
 * exactly the gets, puts and refusals made, and (if the pool is open) every
 * block must come out exactly once.
 *
 * Rounds sweep every capacity of {1, 2, 63, 64, 65, 4096, 65536} against
 * every cache setting of {none, 1, 2, automatic, 4096, 5000 (past the
 * clamp)}, with the thread count going round 2..8 and the mode going round
 * arena, eager generator, lazy generator and checked arena; every third
 * round closes the pool while the threads run. MEMPOOL_TEST_SCALE sizes the
 * operations per thread.
 *
 *   test_differential [--seed N] [--round R]
 *
 * replays one seed (all rounds, or only round R); the seed is printed at the
 * start and with every failure. */
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

#define US ((int64_t)1000)
#define MS ((int64_t)1000000)

enum { THREADS_MIN = 2, THREADS_MAX = 8, BLOCK_BYTES = 64, TAG_BYTES = 8 };
enum mode { ARENA, EAGER, LAZY, CHECKED, MODES };
static const char *const mode_names[] = { "arena", "eager", "lazy", "checked" };

static const size_t capacities[] = { 1, 2, 63, 64, 65, 4096, 65536 };
/* UINT32_MAX stands for MEMPOOL_NO_CACHE. */
static const unsigned cache_sizes[] = { UINT32_MAX, 1, 2, 0, 4096, 5000 };
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Operations per thread per round at scale 1, and a cap on the blocks a
 * round moves in all, so that the 2^16-block rounds take no longer than
 * the others. */
#define OPS_PER_THREAD 6000
#define BLOCKS_PER_ROUND 3000000

static char foreign[64];

struct round {
    mempool *pool;
    size_t capacity;
    enum mode mode;
    unsigned cache_size;
    int threads;
    bool close_midway;
    uint64_t seed;
    long ops;               /* per thread */
    long block_budget;      /* per thread: blocks moved by bulk calls */
    _Atomic uint32_t *owner; /* per block index: 0 free, else holder id */
    /* Per thread: blocks held (low 32 bits) and the times that count fell
     * to zero (high 32 bits), written by the thread only. */
    _Atomic uint64_t held[THREADS_MAX];
    atomic_int running;     /* workers not finished yet */
    atomic_long progress;   /* operations done, in steps of 256 */
    atomic_bool closed;
    /* Totals for the statistics check. */
    atomic_long gets, puts, refused, misuse_reports;
    atomic_long ops_done, blocks_moved, drains_zero, drains_timed_out, makes, unmakes;
};

static uint64_t base_seed;
static int round_number;

/* "arena, capacity 65, cache 4096, 2 threads" */
static const char *round_label(const struct round *r)
{
    static char label[96];
    char cache[16];
    if (r->cache_size == UINT32_MAX)
        snprintf(cache, sizeof cache, "none");
    else if (r->cache_size == 0)
        snprintf(cache, sizeof cache, "auto");
    else
        snprintf(cache, sizeof cache, "%u", r->cache_size);
    snprintf(label, sizeof label, "%-7s capacity %5zu, cache %4s, %d threads",
             mode_names[r->mode], r->capacity, cache, r->threads);
    return label;
}

/* Reports a broken contract and stops at once: later events would only
 * repeat it, and a hang would hide it. */
#define FAIL_ROUND(r, ...)                                                  \
    do {                                                                    \
        fprintf(stderr, "%s:%d: round %d (seed %llu, %s): ", __FILE__, __LINE__, \
                round_number, (unsigned long long)base_seed, round_label(r)); \
        fprintf(stderr, __VA_ARGS__);                                       \
        fputc('\n', stderr);                                                \
        fflush(stderr);                                                     \
        _Exit(1);                                                           \
    } while (0)

static uint64_t next_random(uint64_t *state)
{
    /* splitmix64: every seed, zero included, gives a full-period stream. */
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static size_t below(uint64_t *state, size_t n)
{
    return n ? (size_t)(next_random(state) % n) : 0;
}

static void *make_block(void *arg)
{
    struct round *r = arg;
    atomic_fetch_add_explicit(&r->makes, 1, memory_order_relaxed);
    void *b = calloc(1, BLOCK_BYTES);
    REQUIRE(b);
    return b;
}

static void unmake_block(void *block, void *arg)
{
    struct round *r = arg;
    atomic_fetch_add_explicit(&r->unmakes, 1, memory_order_relaxed);
    free(block);
}

static void on_misuse(const char *what, const void *block, void *arg)
{
    (void)what;
    (void)block;
    struct round *r = arg;
    atomic_fetch_add_explicit(&r->misuse_reports, 1, memory_order_relaxed);
}

/* One worker's state: the blocks it holds, in any order. */
struct worker {
    struct round *r;
    int id;                 /* 1-based: 0 in the owner table means free */
    uint64_t rng;
    void **held;
    size_t count;
    void **scratch;         /* room for a bulk call: capacity + 2 */
    uint32_t zero_drops;
    long block_budget;      /* blocks this thread may still move in bulk */
};

static void publish_held(struct worker *w)
{
    atomic_store(&w->r->held[w->id - 1], (uint64_t)w->zero_drops << 32 | w->count);
}

static size_t index_of(struct worker *w, const void *b)
{
    size_t i = mempool_index(w->r->pool, b);
    if (i >= w->r->capacity)
        FAIL_ROUND(w->r, "thread %d received %p, which is not a block (index %zu)", w->id, b, i);
    return i;
}

/* A block has just been handed to this thread. */
static void claim(struct worker *w, void *b)
{
    size_t i = index_of(w, b);
    uint32_t expected = 0;
    if (!atomic_compare_exchange_strong(&w->r->owner[i], &expected, (uint32_t)w->id))
        FAIL_ROUND(w->r, "block %zu handed to thread %d while thread %u holds it", i, w->id,
                   expected);
    uint64_t tag = (uint64_t)w->id << 32 | i;
    memcpy(b, &tag, TAG_BYTES);
    w->held[w->count++] = b;
    publish_held(w);
    atomic_fetch_add_explicit(&w->r->gets, 1, memory_order_relaxed);
}

/* The held block at position k is about to be put: nobody may have written
 * to it, and the owner table must still name this thread. */
static void *release(struct worker *w, size_t k)
{
    void *b = w->held[k];
    size_t i = index_of(w, b);
    uint64_t tag;
    memcpy(&tag, b, TAG_BYTES);
    if (tag != ((uint64_t)w->id << 32 | i))
        FAIL_ROUND(w->r, "block %zu changed while thread %d held it", i, w->id);
    uint32_t expected = (uint32_t)w->id;
    if (!atomic_compare_exchange_strong(&w->r->owner[i], &expected, 0))
        FAIL_ROUND(w->r, "block %zu held by thread %d is marked %u in the owner table", i,
                   w->id, expected);
    w->held[k] = w->held[--w->count];
    if (w->count == 0)
        w->zero_drops++;
    publish_held(w);
    return b;
}

/* Bulk sizes: small ones, the edges where the library changes path (the
 * 64-block chunk, the cache size, the capacity), and any size. */
static size_t pick_bulk_size(struct worker *w, size_t limit)
{
    if (limit == 0)
        return 0;
    size_t cache = w->r->cache_size == UINT32_MAX ? 0 : w->r->cache_size;
    size_t n;
    switch (below(&w->rng, 8)) {
    case 0: case 1: case 2:
        n = 1 + below(&w->rng, 16);
        break;
    case 3: {
        const size_t edges[] = { 63, 64, 65, 128, 256, 257, cache, cache + 1 };
        n = edges[below(&w->rng, COUNT(edges))];
        break;
    }
    case 4:
        n = limit;
        break;
    case 5:
        n = limit / (size_t)w->r->threads;
        break;
    default:
        n = 1 + below(&w->rng, limit);
        break;
    }
    if (n == 0)
        n = 1;
    return n < limit ? n : limit;
}

static int64_t pick_timeout(struct worker *w)
{
    switch (below(&w->rng, 4)) {
    case 0: return 0;
    case 1: return (int64_t)below(&w->rng, 50) * US;
    case 2: return (int64_t)below(&w->rng, 400) * US;
    default: return 1 + (int64_t)below(&w->rng, 5 * US);
    }
}

static void expect_get_error(struct worker *w, int err, bool waited, const char *call)
{
    bool closed = atomic_load(&w->r->closed);
    bool ok = err == ECANCELED ? closed : err == (waited ? ETIMEDOUT : EAGAIN);
    if (!ok)
        FAIL_ROUND(w->r, "%s in thread %d failed with errno %d (closed %d)", call, w->id, err,
                   closed);
}

static void op_get(struct worker *w, int variant)
{
    struct round *r = w->r;
    void *b;
    int64_t timeout = 0;
    errno = 0;
    if (variant == 0) {
        b = mempool_try_get(r->pool);
    } else if (variant == 1 || w->count > 0) {
        /* A thread that holds blocks never waits forever: every holder
         * waiting for another would be a deadlock of the test's making. */
        timeout = pick_timeout(w);
        b = mempool_get_timeout(r->pool, timeout);
    } else {
        b = mempool_get(r->pool);
        if (!b && errno != ECANCELED)
            FAIL_ROUND(r, "blocking get in thread %d failed with errno %d", w->id, errno);
    }
    if (b)
        claim(w, b);
    else
        expect_get_error(w, errno, timeout != 0, "get");
}

static void op_get_bulk(struct worker *w)
{
    struct round *r = w->r;
    size_t n = pick_bulk_size(w, r->capacity - w->count);
    if (n == 0)
        return;
    int64_t timeout = pick_timeout(w);
    int err = mempool_get_bulk(r->pool, w->scratch, n, timeout);
    w->block_budget -= (long)n;
    if (err) {
        expect_get_error(w, err, timeout != 0, "get_bulk");
        return;
    }
    for (size_t k = 0; k < n; k++)
        claim(w, w->scratch[k]);
    atomic_fetch_add_explicit(&r->blocks_moved, (long)n, memory_order_relaxed);
}

static void op_put(struct worker *w)
{
    if (!w->count)
        return;
    void *b = release(w, below(&w->rng, w->count));
    int rc = mempool_put(w->r->pool, b);
    if (rc)
        FAIL_ROUND(w->r, "put of a held block in thread %d gave %d", w->id, rc);
    atomic_fetch_add_explicit(&w->r->puts, 1, memory_order_relaxed);
}

static void op_put_bulk(struct worker *w)
{
    struct round *r = w->r;
    size_t n = pick_bulk_size(w, w->count);
    if (n == 0)
        return;
    for (size_t k = 0; k < n; k++)
        w->scratch[k] = release(w, below(&w->rng, w->count));
    int rc = mempool_put_bulk(r->pool, w->scratch, n);
    if (rc)
        FAIL_ROUND(r, "put_bulk of %zu held blocks in thread %d gave %d", n, w->id, rc);
    w->block_budget -= (long)n;
    atomic_fetch_add_explicit(&r->puts, (long)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->blocks_moved, (long)n, memory_order_relaxed);
}

/* A pointer that is not a block of the pool: NULL, outside it, or inside a
 * block the thread holds (held blocks stay held: the put must be refused). */
static void *bad_pointer(struct worker *w)
{
    switch (below(&w->rng, 3)) {
    case 0:
        return NULL;
    case 1:
        return foreign + below(&w->rng, 16);
    default:
        return w->count ? (char *)w->held[below(&w->rng, w->count)] + 1 : foreign;
    }
}

/* Puts that must be refused and change nothing: a bad pointer alone, or in
 * a bulk array of held blocks, or a held block twice in one array. */
static void op_put_invalid(struct worker *w)
{
    struct round *r = w->r;
    int rc;
    if (w->count == 0 || below(&w->rng, 3) == 0) {
        rc = mempool_put(r->pool, bad_pointer(w));
    } else {
        size_t n = 1 + below(&w->rng, w->count < 64 ? w->count : 64);
        size_t start = below(&w->rng, w->count - n + 1);
        memcpy(w->scratch, w->held + start, n * sizeof *w->scratch);
        size_t at = below(&w->rng, n + 1);
        w->scratch[n] = w->scratch[at < n ? at : 0];
        if (below(&w->rng, 2))
            w->scratch[at] = bad_pointer(w);
        rc = mempool_put_bulk(r->pool, w->scratch, n + 1);
    }
    if (rc != EINVAL)
        FAIL_ROUND(r, "a put that must be refused gave %d in thread %d", rc, w->id);
    atomic_fetch_add_explicit(&r->refused, 1, memory_order_relaxed);
}

/* A thread that holds a block knows the pool is not complete. */
static void op_drain_holding(struct worker *w)
{
    if (!w->count)
        return;
    int64_t timeout = below(&w->rng, 2) ? 0 : (int64_t)below(&w->rng, 100) * US;
    int rc = mempool_drain(w->r->pool, timeout);
    if (rc != ETIMEDOUT)
        FAIL_ROUND(w->r, "drain(%lld) gave %d to thread %d, which holds %zu blocks",
                   (long long)timeout, rc, w->id, w->count);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct round *r = w->r;
    for (long op = 0; op < r->ops; op++) {
        if ((op & 255) == 255)
            atomic_fetch_add_explicit(&r->progress, 256, memory_order_relaxed);
        unsigned pick = (unsigned)below(&w->rng, 100);
        bool bulk_allowed = w->block_budget > 0;
        if (pick < 22)
            op_get(w, pick % 3);
        else if (pick < 30 && bulk_allowed)
            op_get_bulk(w);
        else if (pick < 52)
            op_put(w);
        else if (pick < 60 && bulk_allowed)
            op_put_bulk(w);
        else if (pick < 66)
            mempool_flush(r->pool);
        else if (pick < 70)
            op_put_invalid(w);
        else if (pick < 73)
            op_drain_holding(w);
        else if (pick < 76)
            sched_yield();
        else
            op_get(w, 0);
    }
    atomic_fetch_add_explicit(&r->ops_done, r->ops, memory_order_relaxed);
    /* Everything goes back, in bulk or one by one. */
    while (w->count) {
        if (below(&w->rng, 2))
            op_put_bulk(w);
        else
            op_put(w);
    }
    if (below(&w->rng, 2))
        mempool_flush(r->pool);
    atomic_fetch_sub(&r->running, 1);
    return NULL;
}

/* Drains, with and without waiting, while the workers run; a drain that
 * returns 0 while some thread held blocks all along fails the round. */
static void controller_drain(struct round *r, uint64_t *rng)
{
    uint64_t before[THREADS_MAX];
    for (int t = 0; t < r->threads; t++)
        before[t] = atomic_load(&r->held[t]);
    int64_t timeout = below(rng, 3) ? 0 : (int64_t)below(rng, 2000) * US;
    int rc = mempool_drain(r->pool, timeout);
    if (rc == ETIMEDOUT) {
        atomic_fetch_add_explicit(&r->drains_timed_out, 1, memory_order_relaxed);
        return;
    }
    if (rc != 0)
        FAIL_ROUND(r, "drain(%lld) gave %d", (long long)timeout, rc);
    atomic_fetch_add_explicit(&r->drains_zero, 1, memory_order_relaxed);
    for (int t = 0; t < r->threads; t++) {
        uint64_t after = atomic_load(&r->held[t]);
        if ((uint32_t)before[t] && before[t] >> 32 == after >> 32)
            FAIL_ROUND(r, "drain(%lld) returned 0 while thread %d held blocks throughout "
                       "(%u before, %u after)", (long long)timeout, t + 1,
                       (uint32_t)before[t], (uint32_t)after);
    }
}

static void controller(struct round *r, uint64_t seed)
{
    uint64_t rng = seed;
    /* A close somewhere between a tenth and nine tenths of the way. */
    long close_at = r->close_midway ? r->ops * r->threads / 100 * (10 + (long)below(&rng, 81))
                                    : -1;
    while (atomic_load(&r->running) > 0) {
        switch (below(&rng, 4)) {
        case 0:
            controller_drain(r, &rng);
            break;
        case 1: {
            size_t available = mempool_available(r->pool);
            if (available > r->capacity)
                FAIL_ROUND(r, "available %zu above the capacity", available);
            break;
        }
        default:
            check_sleep_ns((int64_t)below(&rng, 200) * US);
            break;
        }
        if (close_at >= 0 && !r->closed &&
            atomic_load_explicit(&r->progress, memory_order_relaxed) >= close_at) {
            atomic_store(&r->closed, true);
            mempool_close(r->pool);
        }
    }
}

static mempool *round_pool(struct round *r)
{
    mempool_config c = { .capacity = r->capacity, .arg = r, .on_misuse = on_misuse };
    if (r->mode == EAGER || r->mode == LAZY) {
        c.make = make_block;
        c.unmake = unmake_block;
        c.flags = r->mode == LAZY ? MEMPOOL_LAZY : 0;
    } else {
        c.block_size = BLOCK_BYTES;
        c.flags = r->mode == CHECKED ? MEMPOOL_CHECKED : 0;
    }
    if (r->cache_size == UINT32_MAX)
        c.flags |= MEMPOOL_NO_CACHE;
    else
        c.cache_size = r->cache_size;
    mempool *pool = mempool_create(&c);
    if (!pool)
        FAIL_ROUND(r, "create failed: errno %d", errno);
    return pool;
}

/* After the round: nothing lost, nothing held twice, the counts exact. */
static void round_check(struct round *r)
{
    for (size_t i = 0; i < r->capacity; i++)
        if (atomic_load(&r->owner[i]))
            FAIL_ROUND(r, "block %zu still marked held by thread %u", i,
                       atomic_load(&r->owner[i]));
    if (mempool_available(r->pool) != r->capacity)
        FAIL_ROUND(r, "available %zu after every block came back", mempool_available(r->pool));
    if (mempool_drain(r->pool, 0) != 0)
        FAIL_ROUND(r, "drain(0) failed after every block came back");
    mempool_stats s;
    REQUIRE(mempool_stats_read(r->pool, &s) == 0);
    if (s.out != 0 || s.gets != (uint64_t)r->gets || s.puts != (uint64_t)r->puts ||
        s.refused_puts != (uint64_t)r->refused)
        FAIL_ROUND(r, "stats: out %llu, gets %llu, puts %llu, refused %llu; made %ld gets, "
                   "%ld puts, %ld refused", (unsigned long long)s.out,
                   (unsigned long long)s.gets, (unsigned long long)s.puts,
                   (unsigned long long)s.refused_puts, r->gets, r->puts, r->refused);
    if (r->misuse_reports != r->refused)
        FAIL_ROUND(r, "%ld misuse reports for %ld refused puts", r->misuse_reports, r->refused);
    if (!r->closed) {
        void **all = malloc(r->capacity * sizeof *all);
        REQUIRE(all);
        check_get_all(r->pool, all);
        REQUIRE(mempool_put_bulk(r->pool, all, r->capacity) == 0);
        free(all);
    }
}

static void run_round(struct round *r)
{
    r->owner = calloc(r->capacity, sizeof *r->owner);
    REQUIRE(r->owner);
    r->pool = round_pool(r);
    struct worker workers[THREADS_MAX];
    pthread_t threads[THREADS_MAX];
    atomic_store(&r->running, r->threads);
    for (int t = 0; t < r->threads; t++) {
        struct worker *w = &workers[t];
        *w = (struct worker){ .r = r, .id = t + 1, .rng = r->seed + (uint64_t)t + 1,
                              .block_budget = r->block_budget };
        w->held = malloc(r->capacity * sizeof *w->held);
        w->scratch = malloc((r->capacity + 2) * sizeof *w->scratch);
        REQUIRE(w->held && w->scratch);
        threads[t] = check_thread(worker_main, w);
    }
    controller(r, r->seed);
    for (int t = 0; t < r->threads; t++) {
        pthread_join(threads[t], NULL);
        free(workers[t].held);
        free(workers[t].scratch);
    }
    round_check(r);
    mempool_destroy(r->pool);
    if (r->mode == EAGER || r->mode == LAZY) {
        if (r->makes != r->unmakes)
            FAIL_ROUND(r, "%ld blocks made, %ld unmade", r->makes, r->unmakes);
    }
    free(r->owner);
}

int main(int argc, char **argv)
{
    int only = -1;
    base_seed = (uint64_t)check_now_ns();
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seed") == 0)
            base_seed = strtoull(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--round") == 0)
            only = atoi(argv[i + 1]);
    }
    /* Lines reach the log even when a failure ends the run with _Exit. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    double scale = check_scale();
    long ops = (long)(OPS_PER_THREAD * scale);
    ops = ops > 100 ? ops : 100;
    printf("differential: seed %llu, scale %g (replay: test_differential --seed %llu)\n",
           (unsigned long long)base_seed, scale, (unsigned long long)base_seed);
    long total_ops = 0, total_blocks = 0, total_drains = 0;
    int rounds = 0;
    int64_t start = check_now_ns();
    for (size_t c = 0; c < COUNT(capacities); c++) {
        for (size_t k = 0; k < COUNT(cache_sizes); k++) {
            round_number = (int)(c * COUNT(cache_sizes) + k);
            if (only >= 0 && round_number != only)
                continue;
            struct round *r = calloc(1, sizeof *r);
            REQUIRE(r);
            r->capacity = capacities[c];
            r->cache_size = cache_sizes[k];
            r->mode = (enum mode)(round_number % MODES);
            r->threads = THREADS_MIN + round_number % (THREADS_MAX - THREADS_MIN + 1);
            r->close_midway = round_number % 3 == 2;
            r->seed = base_seed ^ ((uint64_t)round_number * UINT64_C(0x9E3779B97F4A7C15));
            r->ops = ops;
            r->block_budget = (long)(BLOCKS_PER_ROUND * scale) / r->threads;
            int64_t t0 = check_now_ns();
            run_round(r);
            printf("round %2d: %s%s: %ld ops, %ld blocks in bulk, drain 0 x%ld / timed out "
                   "x%ld, %.2f s\n", round_number, round_label(r),
                   r->closed ? ", closed midway" : "", (long)r->ops_done,
                   (long)r->blocks_moved, (long)r->drains_zero, (long)r->drains_timed_out,
                   (double)(check_now_ns() - t0) / 1e9);
            total_ops += r->ops_done;
            total_blocks += r->blocks_moved;
            total_drains += r->drains_zero + r->drains_timed_out;
            rounds++;
            free(r);
        }
    }
    printf("differential: %d rounds, %ld ops, %ld blocks in bulk calls, %ld drains, "
           "threads %d..%d, %.1f s\n", rounds, total_ops, total_blocks, total_drains,
           THREADS_MIN, THREADS_MAX, (double)(check_now_ns() - start) / 1e9);
    CHECK_DONE();
}
