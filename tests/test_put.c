/* SPDX-License-Identifier: MIT */
/* Put validation: NULL, foreign, interior, misaligned and repeated puts are
 * refused with EINVAL and leave the pool unchanged; on_misuse reports each
 * refusal once, on the calling thread, and may call back into the pool;
 * put_bulk validates the whole array before putting anything. */
#include <stdbool.h>

#include "check.h"

struct misuse_log {
    mempool *pool;
    size_t calls;          /* every call, nested ones included */
    const char *what;      /* of the outermost call */
    const void *block;
    void *arg;
    pthread_t thread;
    bool reenter;          /* call back into the pool from the callback */
    int depth;
    size_t available_seen; /* mempool_available inside the callback */
    int reenter_put_rc;    /* put of a block taken inside the callback */
    int nested_rc;         /* put(NULL) inside the callback */
};

static void on_misuse(const char *what, const void *block, void *arg)
{
    struct misuse_log *log = arg;
    if (log == NULL) {
        /* Wrong arg: nothing to record into; make the test fail cleanly. */
        check_failures++;
        fprintf(stderr, "on_misuse(\"%s\", %p): NULL arg\n", what ? what : "(null)", block);
        return;
    }
    log->calls++;
    if (log->depth == 0) {
        log->what = what;
        log->block = block;
        log->arg = arg;
        log->thread = pthread_self();
    }
    if (log->reenter && log->depth == 0) {
        /* The pool holds no lock here, so these must not deadlock. */
        log->depth++;
        log->available_seen = mempool_available(log->pool);
        void *b = log->available_seen ? mempool_get(log->pool) : NULL;
        log->reenter_put_rc = b ? mempool_put(log->pool, b) : -1;
        log->nested_rc = mempool_put(log->pool, NULL);
        log->depth--;
    }
    errno = 999; /* the caller's errno must survive this */
}

static mempool *make_arena(struct misuse_log *log, size_t cap, size_t size,
                           unsigned flags)
{
    memset(log, 0, sizeof *log);
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = cap;
    cfg.block_size = size;
    cfg.flags = flags;
    cfg.on_misuse = on_misuse;
    cfg.arg = log;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    log->pool = pool;
    return pool;
}

static bool is_one_of(const char *what, const char *a, const char *b)
{
    return what && ((a && strcmp(what, a) == 0) || (b && strcmp(what, b) == 0));
}

/* A put that must be refused: EINVAL, errno kept, one on_misuse call on this
 * thread with the block and arg, `what` one of the given strings, and the
 * count of available blocks unchanged. */
static void expect_refused(mempool *pool, struct misuse_log *log, void *block,
                           const char *what1, const char *what2, int line)
{
    size_t before = mempool_available(pool);
    log->calls = 0;
    log->what = NULL;
    log->block = (void *)&log->block; /* not any argument put could pass */
    errno = 4242;
    int rc = mempool_put(pool, block);
    int err = errno;
    bool ok = rc == EINVAL && err == 4242 && log->calls == 1 &&
              log->block == block && log->arg == log &&
              pthread_equal(log->thread, pthread_self()) &&
              is_one_of(log->what, what1, what2) &&
              mempool_available(pool) == before;
    if (!ok) {
        fprintf(stderr, "%s:%d: put(%p): expected EINVAL/\"%s\"; got rc %d, errno %d, "
                "%zu on_misuse call(s), what \"%s\", block %p, available %zu -> %zu\n",
                __FILE__, line, block, what1, rc, err, log->calls,
                log->what ? log->what : "(null)", log->block, before,
                mempool_available(pool));
        check_failures++;
    }
}
#define EXPECT_REFUSED(pool, log, block, what) \
    expect_refused((pool), (log), (block), (what), NULL, __LINE__)
#define EXPECT_REFUSED2(pool, log, block, what1, what2) \
    expect_refused((pool), (log), (block), (what1), (what2), __LINE__)

static void put_all(mempool *pool, void **blocks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(mempool_put(pool, blocks[i]), 0);
}

struct put_arg {
    mempool *pool;
    void *block;
    int rc;
    pthread_t self;
};

static void *put_thread(void *p)
{
    struct put_arg *a = p;
    a->self = pthread_self();
    a->rc = mempool_put(a->pool, a->block);
    return NULL;
}

static void test_arena_refusals(unsigned flags)
{
    enum { CAP = 8, SIZE = 64 };
    struct misuse_log log, other_log;
    mempool *pool = make_arena(&log, CAP, SIZE, flags);
    mempool *other = make_arena(&other_log, CAP, SIZE, flags);
    void *blocks[CAP];
    int on_stack = 0;
    void *heap = malloc(SIZE);
    REQUIRE(heap != NULL);

    EXPECT_REFUSED(pool, &log, NULL, "null");
    EXPECT_REFUSED(pool, &log, &on_stack, "foreign");
    EXPECT_REFUSED(pool, &log, heap, "foreign");
    /* Another pool's blocks, free and out. */
    EXPECT_REFUSED(pool, &log, mempool_block(other, 0), "foreign");
    void *theirs = mempool_get(other);
    REQUIRE(theirs != NULL);
    EXPECT_REFUSED(pool, &log, theirs, "foreign");
    CHECK_EQ(other_log.calls, 0);
    CHECK_EQ(mempool_put(other, theirs), 0);

    /* Blocks still free from the start: a put of one is repeated. */
    for (size_t i = 0; i < CAP; i++)
        EXPECT_REFUSED(pool, &log, mempool_block(pool, i), "repeated");

    unsigned char *b = mempool_get(pool);
    REQUIRE(b != NULL);
    /* Interior pointers: misaligned, aligned, the last byte. */
    EXPECT_REFUSED(pool, &log, b + 1, "interior");
    EXPECT_REFUSED(pool, &log, b + 8, "interior");
    EXPECT_REFUSED(pool, &log, b + SIZE - 1, "interior");
    /* Just outside the arena, either side. */
    uintptr_t first = (uintptr_t)mempool_block(pool, 0);
    uintptr_t last = (uintptr_t)mempool_block(pool, CAP - 1);
    uintptr_t stride = (last - first) / (CAP - 1);
    EXPECT_REFUSED2(pool, &log, (void *)(last + stride), "foreign", "interior");
    EXPECT_REFUSED2(pool, &log, (void *)(first - 1), "foreign", "interior");
    EXPECT_REFUSED2(pool, &log, (void *)(first - stride), "foreign", "interior");

    /* Put back once, then again from the same thread: repeated. */
    b[0] = 0x77;
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(log.calls, 1); /* unchanged by a put that succeeds */
    EXPECT_REFUSED(pool, &log, b, "repeated");
    EXPECT_REFUSED(pool, &log, b, "repeated");

    /* Put back by another thread that we then joined: repeated too. */
    void *c = mempool_get(pool);
    REQUIRE(c != NULL);
    struct put_arg pa = { pool, c, -1, pthread_self() };
    pthread_t t = check_thread(put_thread, &pa);
    pthread_join(t, NULL);
    CHECK_EQ(pa.rc, 0);
    EXPECT_REFUSED(pool, &log, c, "repeated");

    /* The pool is unchanged by all that: every block once, then empty. */
    CHECK_EQ(mempool_available(pool), CAP);
    check_get_all(pool, blocks);
    CHECK_EQ(b[0], 0x77); /* a refused put does not touch the block either */
    put_all(pool, blocks, CAP);
    mempool_flush(pool);
    CHECK_EQ(mempool_available(pool), CAP);
    check_get_all(pool, blocks);
    put_all(pool, blocks, CAP);

    free(heap);
    mempool_destroy(other);
    mempool_destroy(pool);
}

/* Without on_misuse the refusals are the same, silently. */
static void test_no_callback(void)
{
    mempool *pool = check_arena_pool(4, 32, 0);
    int x;
    errno = 4242;
    CHECK_EQ(mempool_put(pool, NULL), EINVAL);
    CHECK_EQ(mempool_put(pool, &x), EINVAL);
    char *b = mempool_get(pool);
    REQUIRE(b != NULL);
    CHECK_EQ(mempool_put(pool, b + 1), EINVAL);
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(mempool_put(pool, b), EINVAL);
    void *pair[2] = { b, b };
    CHECK_EQ(mempool_put_bulk(pool, pair, 2), EINVAL);
    CHECK_EQ(errno, 4242);
    CHECK_EQ(mempool_available(pool), 4);
    mempool_destroy(pool);
}

/* on_misuse may call the pool: available, get, put, even a refused put that
 * reports again. None of it may deadlock or leak into the outer result. */
static void test_reentrant_callback(unsigned flags)
{
    struct misuse_log log;
    mempool *pool = make_arena(&log, 4, 16, flags);
    log.reenter = true;
    void *a = mempool_get(pool);
    REQUIRE(a != NULL);
    log.calls = 0;
    errno = 4242;
    CHECK_EQ(mempool_put(pool, (char *)a + 1), EINVAL);
    CHECK_EQ(errno, 4242);
    CHECK_EQ(log.calls, 2); /* the outer refusal and the nested put(NULL) */
    CHECK(is_one_of(log.what, "interior", NULL));
    CHECK_EQ(log.available_seen, 3);
    CHECK_EQ(log.reenter_put_rc, 0);
    CHECK_EQ(log.nested_rc, EINVAL);
    CHECK_EQ(mempool_available(pool), 3);

    /* The same from put_bulk. */
    void *pair[2] = { a, NULL };
    log.calls = 0;
    CHECK_EQ(mempool_put_bulk(pool, pair, 2), EINVAL);
    CHECK_EQ(errno, 4242);
    CHECK_EQ(log.calls, 2);
    CHECK(is_one_of(log.what, "null", NULL));
    CHECK_EQ(log.reenter_put_rc, 0);
    CHECK_EQ(log.nested_rc, EINVAL);
    CHECK_EQ(mempool_available(pool), 3);

    CHECK_EQ(mempool_put(pool, a), 0);
    CHECK_EQ(mempool_available(pool), 4);
    mempool_destroy(pool);
}

/* on_misuse runs on the thread whose put was refused. */
static void test_callback_thread(void)
{
    struct misuse_log log;
    mempool *pool = make_arena(&log, 2, 16, 0);
    struct put_arg pa = { pool, NULL, -1, pthread_self() };
    pthread_t t = check_thread(put_thread, &pa);
    pthread_join(t, NULL);
    CHECK_EQ(pa.rc, EINVAL);
    CHECK_EQ(log.calls, 1);
    CHECK(pthread_equal(log.thread, pa.self));
    CHECK(!pthread_equal(log.thread, pthread_self()));
    mempool_destroy(pool);
}

/* put_bulk refuses the whole array, reporting its first bad element once,
 * and puts nothing. */
static void expect_bulk_refused(mempool *pool, struct misuse_log *log,
                                void *const *blocks, size_t n, const void *bad,
                                const char *what, int line)
{
    size_t before = mempool_available(pool);
    log->calls = 0;
    log->what = NULL;
    log->block = (void *)&log->block;
    errno = 4242;
    int rc = mempool_put_bulk(pool, blocks, n);
    int err = errno;
    bool ok = rc == EINVAL && err == 4242 && log->calls == 1 &&
              log->block == bad && log->arg == log &&
              pthread_equal(log->thread, pthread_self()) &&
              is_one_of(log->what, what, NULL) &&
              mempool_available(pool) == before;
    if (!ok) {
        fprintf(stderr, "%s:%d: put_bulk: expected EINVAL/\"%s\" for %p; got rc %d, errno %d, "
                "%zu on_misuse call(s), what \"%s\", block %p, available %zu -> %zu\n",
                __FILE__, line, what, bad, rc, err, log->calls,
                log->what ? log->what : "(null)", log->block, before,
                mempool_available(pool));
        check_failures++;
    }
}
#define EXPECT_BULK_REFUSED(pool, log, array, bad, what) \
    expect_bulk_refused((pool), (log), (array), sizeof(array) / sizeof((array)[0]), \
                        (bad), (what), __LINE__)

static void test_put_bulk(unsigned flags)
{
    enum { CAP = 6 };
    struct misuse_log log;
    mempool *pool = make_arena(&log, CAP, 32, flags);
    int on_stack;
    void *blocks[CAP];

    /* n == 0 is 0 whatever the array. */
    errno = 4242;
    CHECK_EQ(mempool_put_bulk(pool, NULL, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, blocks, 0), 0);
    CHECK_EQ(errno, 4242);
    CHECK_EQ(log.calls, 0);

    void *a = mempool_get(pool), *b = mempool_get(pool), *c = mempool_get(pool);
    REQUIRE(a && b && c);
    CHECK_EQ(mempool_available(pool), CAP - 3);
    void *free_block = mempool_try_get(pool); /* a block known to be free */
    REQUIRE(free_block != NULL);
    CHECK_EQ(mempool_put(pool, free_block), 0);

    void *with_null[] = { a, b, NULL };
    EXPECT_BULK_REFUSED(pool, &log, with_null, NULL, "null");
    void *with_foreign[] = { a, &on_stack, b };
    EXPECT_BULK_REFUSED(pool, &log, with_foreign, &on_stack, "foreign");
    void *with_interior[] = { a, (char *)b + 1 };
    EXPECT_BULK_REFUSED(pool, &log, with_interior, (char *)b + 1, "interior");
    void *with_free[] = { a, free_block, b };
    EXPECT_BULK_REFUSED(pool, &log, with_free, free_block, "repeated");
    void *twice[] = { a, b, c, a };
    EXPECT_BULK_REFUSED(pool, &log, twice, a, "repeated-in-array");
    void *adjacent[] = { c, c };
    EXPECT_BULK_REFUSED(pool, &log, adjacent, c, "repeated-in-array");
    /* Only the first bad element is reported. */
    void *null_first[] = { NULL, &on_stack, a, a };
    EXPECT_BULK_REFUSED(pool, &log, null_first, NULL, "null");
    void *foreign_first[] = { &on_stack, a, a };
    EXPECT_BULK_REFUSED(pool, &log, foreign_first, &on_stack, "foreign");
    void *dup_first[] = { b, b, &on_stack };
    EXPECT_BULK_REFUSED(pool, &log, dup_first, b, "repeated-in-array");

    /* Nothing was put: a, b and c are still out, so each can be put now,
     * once. */
    void *good[] = { a, b };
    log.calls = 0;
    errno = 4242;
    CHECK_EQ(mempool_put_bulk(pool, good, 2), 0);
    CHECK_EQ(errno, 4242);
    CHECK_EQ(mempool_available(pool), CAP - 1);
    void *one[] = { c };
    CHECK_EQ(mempool_put_bulk(pool, one, 1), 0);
    CHECK_EQ(mempool_available(pool), CAP);
    CHECK_EQ(log.calls, 0);
    /* Now they are free: putting them again is repeated. */
    EXPECT_BULK_REFUSED(pool, &log, good, a, "repeated");

    /* The whole pool through put_bulk, and every block once afterwards. */
    log.calls = 0;
    check_get_all(pool, blocks);
    CHECK_EQ(mempool_put_bulk(pool, blocks, CAP), 0);
    CHECK_EQ(mempool_available(pool), CAP);
    check_get_all(pool, blocks);
    CHECK_EQ(mempool_put_bulk(pool, blocks, CAP), 0);
    CHECK_EQ(log.calls, 0);
    mempool_destroy(pool);
}

/* Generator mode, eager and lazy: the same refusals through the
 * pointer-to-index map. */
static void *make_block(void *arg)
{
    (void)arg;
    return malloc(48);
}

static void unmake_block(void *block, void *arg)
{
    (void)arg;
    free(block);
}

static void test_generator_refusals(unsigned flags)
{
    enum { CAP = 5 };
    struct misuse_log log;
    memset(&log, 0, sizeof log);
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = CAP;
    cfg.make = make_block;
    cfg.unmake = unmake_block;
    cfg.on_misuse = on_misuse;
    cfg.arg = &log;
    cfg.flags = flags;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    log.pool = pool;
    int on_stack;
    void *heap = malloc(48);
    REQUIRE(heap != NULL);
    void *blocks[CAP];

    EXPECT_REFUSED(pool, &log, NULL, "null");
    EXPECT_REFUSED(pool, &log, &on_stack, "foreign");
    EXPECT_REFUSED(pool, &log, heap, "foreign");

    char *b = mempool_get(pool);
    REQUIRE(b != NULL);
    /* The pool knows only block starts; an interior pointer is not one. */
    EXPECT_REFUSED2(pool, &log, b + 1, "foreign", "interior");
    EXPECT_REFUSED2(pool, &log, b + 16, "foreign", "interior");
    CHECK_EQ(mempool_put(pool, b), 0);
    EXPECT_REFUSED(pool, &log, b, "repeated");

    void *c = mempool_get(pool), *d = mempool_get(pool);
    REQUIRE(c && d);
    void *twice[] = { c, d, c };
    EXPECT_BULK_REFUSED(pool, &log, twice, c, "repeated-in-array");
    void *with_heap[] = { c, heap };
    EXPECT_BULK_REFUSED(pool, &log, with_heap, heap, "foreign");
    void *good[] = { c, d };
    CHECK_EQ(mempool_put_bulk(pool, good, 2), 0);
    EXPECT_REFUSED(pool, &log, c, "repeated");
    EXPECT_REFUSED(pool, &log, d, "repeated");

    CHECK_EQ(mempool_available(pool), CAP);
    check_get_all(pool, blocks);
    put_all(pool, blocks, CAP);
    /* With every block made and free, each put is repeated. */
    for (size_t i = 0; i < CAP; i++)
        EXPECT_REFUSED(pool, &log, blocks[i], "repeated");
    CHECK_EQ(mempool_available(pool), CAP);

    free(heap);
    mempool_destroy(pool);
}

#if !defined(_WIN32)
/* on_misuse runs with cancellation disabled (a refusal is no cancellation
 * point), and the caller's state is restored afterwards, either way. */
static void test_callback_cancel_state(void)
{
    struct misuse_log log;
    mempool *pool = make_arena(&log, 4, 16, 0);
    for (int disabled = 0; disabled <= 1; disabled++) {
        int want = disabled ? PTHREAD_CANCEL_DISABLE : PTHREAD_CANCEL_ENABLE, old;
        pthread_setcancelstate(want, NULL);
        CHECK_EQ(mempool_put(pool, NULL), EINVAL);
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
        CHECK_EQ(old, want);
    }
    CHECK_EQ(log.calls, 2);
    mempool_destroy(pool);
}
#endif

int main(void)
{
    test_arena_refusals(0);
    test_arena_refusals(MEMPOOL_NO_CACHE);
    test_no_callback();
    test_reentrant_callback(0);
    test_reentrant_callback(MEMPOOL_NO_CACHE);
    test_callback_thread();
#if !defined(_WIN32)
    test_callback_cancel_state();
#endif
    test_put_bulk(0);
    test_put_bulk(MEMPOOL_NO_CACHE);
    test_generator_refusals(0);
    test_generator_refusals(MEMPOOL_NO_CACHE);
    test_generator_refusals(MEMPOOL_LAZY);
    CHECK_DONE();
}
