/* SPDX-License-Identifier: MIT */
/* Checked mode: each detection is proven by committing the bug and seeing
 * it caught; the core guarantees still hold. */
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define BLOCK 48

struct report {
    atomic_int count;
    const char *what[16];
    const void *block[16];
};

static void on_misuse(const char *what, const void *block, void *arg)
{
    struct report *r = arg;
    int i = atomic_fetch_add(&r->count, 1);
    if (i < 16) {
        r->what[i] = what;
        r->block[i] = block;
    }
}

static mempool *checked_pool(size_t capacity, struct report *r)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = capacity;
    cfg.block_size = BLOCK;
    cfg.flags = MEMPOOL_CHECKED;
    if (r) {
        memset(r, 0, sizeof *r);
        cfg.on_misuse = on_misuse;
        cfg.arg = r;
    }
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    return pool;
}

static int reports_of(struct report *r, const char *what, const void *block)
{
    int n = 0, count = atomic_load(&r->count);
    for (int i = 0; i < count && i < 16; i++)
        n += !strcmp(r->what[i], what) && (!block || r->block[i] == block);
    return n;
}

/* Two threads put the same block at the same moment: exactly one wins. */
struct racer {
    mempool *pool;
    void *_Atomic block;
    atomic_int go, done, wins, attempts;
};

static void *racer_main(void *arg)
{
    struct racer *rc = arg;
    for (int seen = 1;; seen++) {
        while (atomic_load(&rc->go) < seen) {
            if (atomic_load(&rc->done))
                return NULL;
            sched_yield();
        }
        if (mempool_put(rc->pool, atomic_load(&rc->block)) == 0)
            atomic_fetch_add(&rc->wins, 1);
        atomic_fetch_add(&rc->attempts, 1);
    }
}

static void *make_block(void *arg)
{
    (void)arg;
    return malloc(BLOCK);
}

static void unmake_block(void *block, void *arg)
{
    (void)arg;
    free(block);
}

static void test_racing_repeated_put(int generator)
{
    struct report r;
    mempool *pool;
    if (generator) {
        mempool_config cfg;
        memset(&cfg, 0, sizeof cfg);
        memset(&r, 0, sizeof r);
        cfg.capacity = 4;
        cfg.make = make_block;
        cfg.unmake = unmake_block;
        cfg.flags = MEMPOOL_CHECKED;
        cfg.on_misuse = on_misuse;
        cfg.arg = &r;
        pool = mempool_create(&cfg);
        REQUIRE(pool != NULL);
    } else {
        pool = checked_pool(4, &r);
    }
    struct racer rc = { .pool = pool };
    atomic_init(&rc.go, 0);
    atomic_init(&rc.done, 0);
    atomic_init(&rc.wins, 0);
    atomic_init(&rc.attempts, 0);
    pthread_t t[2] = { check_thread(racer_main, &rc), check_thread(racer_main, &rc) };
    int rounds = (int)(2000 * check_scale());
    if (rounds < 50)
        rounds = 50;
    int bad = 0;
    for (int i = 1; i <= rounds; i++) {
        void *b = mempool_get(pool);
        REQUIRE(b != NULL);
        atomic_store(&rc.wins, 0);
        atomic_store(&rc.block, b);
        atomic_store(&rc.go, i);
        while (atomic_load(&rc.attempts) < 2 * i)
            sched_yield();
        bad += atomic_load(&rc.wins) != 1;
    }
    atomic_store(&rc.done, 1);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    CHECK_EQ(bad, 0);
    mempool_stats s;
    CHECK_EQ(mempool_stats_read(pool, &s), 0);
    CHECK_EQ(s.refused_puts, (uint64_t)rounds);
    mempool_destroy(pool);
}

/* A write after put is reported, with the block, when it is handed out
 * again; the get still hands it out. */
static void test_write_after_put(void)
{
    struct report r;
    mempool *pool = checked_pool(1, &r);
    unsigned char *b = mempool_get(pool);
    memset(b, 0x11, BLOCK);
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(atomic_load(&r.count), 0);
    check_sneak_write(b + 5, 0x22); /* the bug */
    unsigned char *again = mempool_get(pool);
    CHECK(again == b);
    CHECK_EQ(reports_of(&r, "write-after-put", b), 1);
    CHECK_EQ(again[0], 0x11); /* contents kept, the write included */
    CHECK_EQ(again[5], 0x22);
    /* Re-sealed on the next put: no report without a new write. */
    CHECK_EQ(mempool_put(pool, again), 0);
    CHECK(mempool_get(pool) == b);
    CHECK_EQ(atomic_load(&r.count), 1);
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);
}

/* A block size that is not a multiple of 8: the checksum covers the bytes
 * after the last whole word too. */
static void test_write_after_put_tail(void)
{
    struct report r;
    memset(&r, 0, sizeof r);
    mempool_config cfg = { .capacity = 1, .block_size = 13, .flags = MEMPOOL_CHECKED,
                           .on_misuse = on_misuse, .arg = &r };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    unsigned char *b = mempool_get(pool);
    memset(b, 0x11, 13);
    CHECK_EQ(mempool_put(pool, b), 0);
    check_sneak_write(b + 12, 0x22); /* the bug, in the last byte */
    CHECK(mempool_get(pool) == b);
    CHECK_EQ(reports_of(&r, "write-after-put", b), 1);
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);
}

/* The checksum covers exactly the block's bytes, for any size: a write to
 * the last byte of a free block of an odd size is a write after put, and one
 * just past its end (into the guard) is not one (it is an overflow, found
 * at the block's next put). Catches a checksum loop that stops a byte short
 * or reads a byte past the block. */
static void test_checksum_extent(void)
{
    static const size_t sizes[] = { 1, 7, 9, 45, 64 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct report r;
        memset(&r, 0, sizeof r);
        mempool_config cfg = { .capacity = 1, .block_size = sizes[k], .flags = MEMPOOL_CHECKED,
                               .on_misuse = on_misuse, .arg = &r };
        mempool *pool = mempool_create(&cfg);
        REQUIRE(pool != NULL);
        unsigned char *b = mempool_get(pool);
        REQUIRE(b != NULL);
        CHECK_EQ(mempool_put(pool, b), 0);
        check_sneak_write(b + sizes[k] - 1, 0x5a); /* its last byte */
        CHECK(mempool_get(pool) == b);
        CHECK_EQ(reports_of(&r, "write-after-put", b), 1);
        CHECK_EQ(mempool_put(pool, b), 0);
        check_sneak_write(b + sizes[k], 0x5a); /* the first guard byte */
        CHECK(mempool_get(pool) == b);
        CHECK_EQ(reports_of(&r, "write-after-put", b), 1); /* no second one */
        CHECK_EQ(mempool_put(pool, b), 0);
        CHECK_EQ(reports_of(&r, "overflow", b), 1);
        mempool_destroy(pool);
    }
}

/* A write past the end is reported at put, the put is still accepted and
 * the guard restored. */
static void test_overflow(void)
{
    struct report r;
    mempool *pool = checked_pool(2, &r);
    unsigned char *b = mempool_get(pool);
    check_sneak_write(b + BLOCK, 0); /* one past the end: the bug */
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(reports_of(&r, "overflow", b), 1);
    CHECK_EQ(mempool_available(pool), 2);
    void *x = mempool_get(pool), *y = mempool_get(pool);
    CHECK_EQ(mempool_put(pool, x), 0);
    CHECK_EQ(mempool_put(pool, y), 0);
    CHECK_EQ(atomic_load(&r.count), 1); /* guard restored */
    mempool_destroy(pool);
}

/* FIFO reuse keeps a put-back block free while older blocks are available,
 * so a late second put by its former owner is refused instead of freeing a
 * block that someone else got meanwhile. */
static void test_quarantine(void)
{
    struct report r;
    mempool *pool = checked_pool(4, &r);
    void *x = mempool_get(pool);
    CHECK_EQ(mempool_put(pool, x), 0);
    void *other = mempool_get(pool); /* in LIFO order this would be x */
    CHECK(other != x);
    CHECK_EQ(mempool_put(pool, x), EINVAL); /* the former owner's late put */
    CHECK_EQ(reports_of(&r, "repeated", x), 1);
    /* A small pool never waits while a block sits in quarantine: with every
     * other block out, x is handed out at once. */
    void *held[2] = { mempool_get(pool), mempool_get(pool) };
    CHECK(held[0] && held[1]);
    void *last = mempool_try_get(pool);
    CHECK(last == x);
    CHECK(mempool_try_get(pool) == NULL && errno == EAGAIN);
    CHECK_EQ(mempool_put(pool, last), 0);
    CHECK_EQ(mempool_put(pool, held[0]), 0);
    CHECK_EQ(mempool_put(pool, held[1]), 0);
    CHECK_EQ(mempool_put(pool, other), 0);
    /* FIFO: the oldest free block comes first. */
    CHECK(mempool_get(pool) == x);
    mempool_stats s;
    CHECK_EQ(mempool_stats_read(pool, &s), 0);
    CHECK_EQ(s.out_high, 4);
    CHECK_EQ(s.cache_hits, 0);
    mempool_destroy(pool); /* x is still out: reported as a leak */
    CHECK_EQ(reports_of(&r, "leak", x), 1);
}

/* A waiter is served by a put even in checked mode. */
static void *late_put(void *arg)
{
    void **pb = arg;
    check_sleep_ns(20000000);
    CHECK_EQ(mempool_put(pb[0], pb[1]), 0);
    return NULL;
}

static void test_waiting(void)
{
    mempool *pool = checked_pool(1, NULL);
    void *b = mempool_get(pool);
    void *pb[2] = { pool, b };
    pthread_t t = check_thread(late_put, pb);
    void *got = mempool_get_timeout(pool, 5000000000LL);
    CHECK(got == b);
    pthread_join(t, NULL);
    CHECK_EQ(mempool_put(pool, got), 0);
    void *two[2];
    CHECK_EQ(mempool_get_bulk(pool, two, 1, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, two, 1), 0);
    mempool_destroy(pool);
}

static void test_bulk(void)
{
    struct report r;
    mempool *pool = checked_pool(4, &r);
    void *b[4];
    CHECK_EQ(mempool_get_bulk(pool, b, 4, 0), 0);
    void *dup[3] = { b[0], b[1], b[0] };
    CHECK_EQ(mempool_put_bulk(pool, dup, 3), EINVAL);
    CHECK_EQ(reports_of(&r, "repeated-in-array", b[0]), 1);
    CHECK_EQ(mempool_available(pool), 0); /* nothing put */
    CHECK_EQ(mempool_put_bulk(pool, b, 4), 0);
    CHECK_EQ(mempool_put_bulk(pool, b, 1), EINVAL);
    CHECK_EQ(reports_of(&r, "repeated", b[0]), 1);
    mempool_destroy(pool);
    CHECK_EQ(reports_of(&r, "leak", NULL), 0);
}

/* Without on_misuse: refused puts and leaks print one line each and carry
 * on; corruption aborts. Run in a child with stderr captured. */
static int run_child(void (*body)(void), char *text, size_t size)
{
    int fd[2];
    REQUIRE(pipe(fd) == 0);
    fflush(NULL); /* the child's exit flushes its copy of stdio */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        body();
        exit(0); /* a normal exit: coverage builds write the child's counts */
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t got;
    while (len + 1 < size && (got = read(fd[0], text + len, size - 1 - len)) > 0)
        len += (size_t)got;
    text[len] = 0;
    close(fd[0]);
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return status;
}

static void child_refused_and_leak(void)
{
    mempool *pool = checked_pool(2, NULL);
    void *b = mempool_get(pool);
    mempool_put(pool, b);
    mempool_put(pool, b);
    b = mempool_get(pool);
    mempool_destroy(pool);
}

static void child_write_after_put(void)
{
    mempool *pool = checked_pool(1, NULL);
    unsigned char *b = mempool_get(pool);
    mempool_put(pool, b);
    check_sneak_write(b, 1);
    mempool_get(pool);
}

static void child_overflow(void)
{
    mempool *pool = checked_pool(1, NULL);
    unsigned char *b = mempool_get(pool);
    check_sneak_write(b + BLOCK + 3, 1);
    mempool_put(pool, b);
}

static void test_default_reports(void)
{
    char text[1024];
    int status = run_child(child_refused_and_leak, text, sizeof text);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(text, ": repeated: block") != NULL);
    CHECK(strstr(text, ": leak: block") != NULL);
    status = run_child(child_write_after_put, text, sizeof text);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(text, ": write-after-put: block") != NULL);
    status = run_child(child_overflow, text, sizeof text);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(text, ": overflow: block") != NULL);
}

int main(void)
{
    test_racing_repeated_put(0);
    test_racing_repeated_put(1);
    test_write_after_put();
    test_write_after_put_tail();
    test_overflow();
    test_checksum_extent();
    test_quarantine();
    test_waiting();
    test_bulk();
    test_default_reports();
    CHECK_DONE();
}
