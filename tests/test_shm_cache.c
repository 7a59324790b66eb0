/* SPDX-License-Identifier: MIT */
/* Shared pools with thread caches: the slots in the segment that let a
 * thread get and put its own blocks without the lock, and everything that
 * must still hold across processes with blocks parked in them (no get waits
 * or fails while another process's cache holds a free block, none passes a
 * queued waiter, a dead process's caches come back, a cached block cannot
 * be put again, a thread's slot goes back when it exits). */
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shm_layout.h"

static int reap(pid_t pid)
{
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static mempool_stats stats_of(mempool *pool)
{
    mempool_stats st;
    REQUIRE(mempool_stats_read(pool, &st) == 0);
    return st;
}

/* A child that attaches, leaves `parked` blocks in its thread's cache (and
 * holds `held` more), tells the parent over `ready`, then waits on `go`
 * without touching the pool: an idle process with a full cache. */
static pid_t park_child(int fd, int parked, int held, int ready, int go)
{
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid)
        return pid;
    mempool *own = mempool_shm_open_fd(fd);
    void *b[256];
    int ok = own != NULL;
    for (int i = 0; ok && i < parked + held; i++)
        ok = (b[i] = mempool_get(own)) != NULL;
    for (int i = 0; ok && i < parked; i++)
        ok = mempool_put(own, b[i]) == 0;
    char c = ok ? 'k' : 'x';
    ok = write(ready, &c, 1) == 1 && ok;
    ok = read(go, &c, 1) == 1 && ok;
    _exit(ok ? 0 : 1);
}

static void wait_ready(int ready)
{
    char c;
    REQUIRE(read(ready, &c, 1) == 1);
    REQUIRE(c == 'k');
}

/* The hit path serves a thread's pairs from its slot: a handful of locked
 * refills for thousands of pairs, every get and put counted, and cached
 * blocks counted as available. Catches a hit path that is never taken,
 * counters that lose the slot's share, and cached blocks missing from
 * available. */
static void test_hits(void)
{
    mempool *pool = cached_pool(256, 32);
    for (int i = 0; i < 5000; i++) {
        void *b = mempool_get(pool);
        REQUIRE(b);
        CHECK_EQ(mempool_put(pool, b), 0);
    }
    mempool_stats st = stats_of(pool);
    CHECK_EQ(st.gets, 5000);
    CHECK_EQ(st.puts, 5000);
    /* The refill sampled the high-water mark (blocks in the slot count as
     * out then): at least the one held, though none is out now. */
    CHECK(st.out_high >= 1);
    CHECK_EQ(st.out, 0);
    CHECK(st.cache_hits >= 4998);
    CHECK(st.cache_misses <= 2);
    CHECK_EQ(st.cache_hits, st.gets - st.cache_misses);
    CHECK_EQ(mempool_available(pool), 256);
    /* A flush empties the thread's slot: the next get refills it. */
    mempool_flush(pool);
    void *f = mempool_get(pool);
    CHECK_EQ(stats_of(pool).cache_misses, st.cache_misses + 1);
    CHECK_EQ(mempool_put(pool, f), 0);
    /* Across a refill and a flush: 40 out, 40 back, through a slot of 32. */
    void *b[40];
    for (int i = 0; i < 40; i++)
        REQUIRE((b[i] = mempool_get(pool)) != NULL);
    CHECK_EQ(mempool_available(pool), 216);
    for (int i = 0; i < 40; i++)
        CHECK_EQ(mempool_put(pool, b[i]), 0);
    CHECK_EQ(mempool_available(pool), 256);
    /* A cached block is free: putting it again is refused. */
    void *x = mempool_get(pool);
    CHECK_EQ(mempool_put(pool, x), 0);
    CHECK_EQ(mempool_put(pool, x), EINVAL);
    CHECK_EQ(stats_of(pool).refused_puts, 1);
    CHECK_EQ(stats_of(pool).gets, 5042);
    /* The smallest cache there is, 2 blocks: still a cache. Catches a size
     * rule that turns it into none. */
    mempool *small = cached_pool(64, 2);
    for (int i = 0; i < 1000; i++) {
        void *s = mempool_get(small);
        REQUIRE(s);
        CHECK_EQ(mempool_put(small, s), 0);
    }
    CHECK(stats_of(small).cache_misses <= 2);
    mempool_destroy(small);
    /* Reset counts from here, the slots' share included. */
    CHECK_EQ(mempool_stats_reset(pool), 0);
    x = mempool_get(pool);
    CHECK_EQ(mempool_put(pool, x), 0);
    st = stats_of(pool);
    CHECK_EQ(st.gets, 1);
    CHECK_EQ(st.puts, 1);
    mempool_destroy(pool);
}

/* Shared pools created, used and destroyed by several threads at once:
 * each attach takes a directory slot and joins the process's list of
 * attachments under the library's lock. Catches an attach or a detach that
 * changes those outside the lock (ThreadSanitizer reports the race; a
 * corrupted list or a slot given twice fails the pairs or the destroys). */
static void *create_destroy(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        mempool *p = cached_pool(64, 8), *q = cached_pool(64, 8);
        void *a = mempool_get(p), *b = mempool_get(q);
        if (!a || !b || mempool_put(p, a) != 0 || mempool_put(q, b) != 0)
            return (void *)1;
        mempool_destroy(p);
        mempool_destroy(q);
    }
    return NULL;
}

static void test_concurrent_create(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&t[i], NULL, create_destroy, NULL) == 0);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        CHECK(rc == NULL);
    }
}

/* A bulk get that waits for more than is free (all-or-nothing, with more
 * than a slot's worth free): the slots stay armed until it is served, so
 * every put goes to it and no get passes it. Catches a put that lands in
 * the putter's slot while a bulk waiter is queued, and a get that takes it
 * back past the waiter. */
struct bulk48 {
    mempool *pool;
    void *b[48];
    int rc;
};

static void *bulk_get_48(void *arg)
{
    struct bulk48 *a = arg;
    a->rc = mempool_get_bulk(a->pool, a->b, 48, 10000000000);
    return NULL;
}

static void test_bulk_waiter_keeps_armed(void)
{
    mempool *pool = cached_pool(64, 8);
    void *warm = mempool_get(pool); /* this thread's slot, warm */
    REQUIRE(warm);
    CHECK_EQ(mempool_put(pool, warm), 0);
    void *held[20];
    REQUIRE(mempool_get_bulk(pool, held, 20, 0) == 0);
    struct bulk48 a = { .pool = pool };
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, bulk_get_48, &a) == 0);
    for (int i = 0; i < 5000 && stats_of(pool).waits < 1; i++)
        check_sleep_ns(1000000);
    REQUIRE(stats_of(pool).waits >= 1);
    CHECK_EQ(mempool_put(pool, held[0]), 0);
    CHECK_EQ(mempool_put(pool, held[1]), 0);
    errno = 0;
    void *x = mempool_try_get(pool);
    CHECK(x == NULL && errno == EAGAIN);
    if (x)
        CHECK_EQ(mempool_put(pool, x), 0);
    for (int i = 2; i < 20; i++)
        CHECK_EQ(mempool_put(pool, held[i]), 0);
    pthread_join(t, NULL);
    CHECK_EQ(a.rc, 0);
    if (a.rc == 0)
        CHECK_EQ(mempool_put_bulk(pool, a.b, 48), 0);
    CHECK_EQ(mempool_available(pool), 64);
    mempool_destroy(pool);
}

/* A get that gave up (its timeout) leaves the queue: once blocks are free
 * again the slots disarm and serve pairs without the lock. Catches a queue
 * that still counts the departed waiter, which keeps every slot armed and
 * every get on the locked path for good. */
static void test_timeout_then_hits(void)
{
    mempool *pool = cached_pool(64, 8);
    void *all[64];
    REQUIRE(mempool_get_bulk(pool, all, 64, 0) == 0);
    errno = 0;
    CHECK(mempool_get_timeout(pool, 10000000) == NULL && errno == ETIMEDOUT);
    CHECK_EQ(mempool_put_bulk(pool, all, 64), 0);
    mempool_stats before = stats_of(pool);
    for (int i = 0; i < 200; i++) {
        void *b = mempool_get(pool);
        REQUIRE(b);
        CHECK_EQ(mempool_put(pool, b), 0);
    }
    CHECK(stats_of(pool).cache_misses - before.cache_misses <= 4);
    CHECK_EQ(mempool_available(pool), 64);
    mempool_destroy(pool);
}

/* A thread that used a shared pool, which is then destroyed (its segment
 * unmapped), goes on with later pools that take the same directory entry:
 * private, shared, and shared again from another thread's destroy. Catches
 * a destroy that leaves the thread's object pointing at the old slot,
 * which the next call's hit path would follow into the unmapped segment. */
static void *destroy_pool(void *arg)
{
    mempool_destroy(arg);
    return NULL;
}

static void pairs_on(mempool *pool, int n)
{
    for (int i = 0; i < n; i++) {
        void *b = mempool_get(pool);
        REQUIRE(b);
        CHECK_EQ(mempool_put(pool, b), 0);
    }
}

static void test_destroyed_then_reused(void)
{
    for (int round = 0; round < 3; round++) {
        mempool *shared = cached_pool(64, 8);
        pairs_on(shared, 10);
        if (round == 2) {
            pthread_t t;
            REQUIRE(pthread_create(&t, NULL, destroy_pool, shared) == 0);
            pthread_join(t, NULL);
        } else {
            mempool_destroy(shared);
        }
        mempool_config c = { .capacity = 64, .block_size = 64 };
        mempool *next = round == 0 ? mempool_create(&c) : cached_pool(64, 8);
        REQUIRE(next);
        pairs_on(next, 10);
        CHECK_EQ(mempool_available(next), 64);
        mempool_destroy(next);
    }
}

/* A stride that is not a power of two (48-byte blocks): the put's hit path
 * cannot use the rotation and finds the index by the full lookup, then
 * serves from the slot as for any other stride. Catches a hit path that
 * never serves such pools, one that caches an interior or foreign pointer,
 * and one that accepts a cached block again. */
static void test_odd_stride(void)
{
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = 64;
    c.block_size = 48;
    c.alignment = 16;
    c.cache_size = 8;
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    REQUIRE(pool);
    for (int i = 0; i < 1000; i++) {
        char *b = mempool_get(pool);
        REQUIRE(b);
        memset(b, i, 48);
        CHECK_EQ(mempool_put(pool, b), 0);
    }
    mempool_stats st = stats_of(pool);
    CHECK_EQ(st.puts, 1000);
    CHECK(st.cache_misses <= 2);
    CHECK_EQ(st.cache_hits, st.gets - st.cache_misses);
    char *b = mempool_get(pool);
    REQUIRE(b);
    CHECK_EQ(mempool_index(pool, b) < 64, 1);
    CHECK_EQ(mempool_put(pool, b + 16), EINVAL); /* interior */
    CHECK_EQ(mempool_put(pool, b + 48 * 64), EINVAL); /* past the arena */
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(mempool_put(pool, b), EINVAL); /* in the slot: free */
    CHECK_EQ(stats_of(pool).refused_puts, 3);
    CHECK_EQ(mempool_available(pool), 64);
    mempool_destroy(pool);
}

/* Blocks parked in an idle process's cache are taken by a get that would
 * otherwise fail or wait: a try_get, a bulk get of the whole pool and a
 * timed get all succeed. Catches a reclaim that skips other processes'
 * slots, or a get that fails with blocks free in a cache. */
static void test_no_stranding(void)
{
    mempool *pool = cached_pool(64, 16);
    int fd = mempool_shm_fd(pool);
    int ready[2], go[2];
    REQUIRE(pipe(ready) == 0 && pipe(go) == 0);
    pid_t pid = park_child(fd, 16, 0, ready[1], go[0]);
    wait_ready(ready[0]);
    CHECK_EQ(mempool_available(pool), 64);
    void *all[64];
    CHECK_EQ(mempool_get_bulk(pool, all, 64, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, all, 64), 0);
    /* Again, the blocks parked once more, by single tries. */
    char c = 'g';
    REQUIRE(write(go[1], &c, 1) == 1);
    CHECK_EQ(reap(pid), 0);
    pid = park_child(fd, 16, 8, ready[1], go[0]);
    wait_ready(ready[0]);
    size_t got = 0;
    for (void *b; (b = mempool_try_get(pool)) != NULL;)
        all[got++] = b;
    CHECK_EQ(got, 56);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(mempool_put_bulk(pool, all, got), 0);
    /* A timed get with the free list empty and the rest parked. */
    for (got = 0; got < 40; got++)
        REQUIRE((all[got] = mempool_get_timeout(pool, 0)) != NULL);
    void *b = mempool_get_timeout(pool, 1000000000);
    CHECK(b != NULL);
    if (b)
        all[got++] = b;
    CHECK_EQ(mempool_put_bulk(pool, all, got), 0);
    REQUIRE(write(go[1], &c, 1) == 1);
    CHECK_EQ(reap(pid), 0); /* exited holding 8: recovered below */
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(mempool_available(pool), 64);
    mempool_destroy(pool);
}

/* A process killed with blocks in its cache and held: recovery returns
 * both kinds, and counts them. Catches a repair that leaves a dead slot's
 * blocks cached, or frees a live slot's. */
static void test_killed_with_cache(void)
{
    mempool *pool = cached_pool(128, 32);
    /* Ours parked too: a repair must leave a live slot alone. */
    void *mine[10];
    for (int i = 0; i < 10; i++)
        REQUIRE((mine[i] = mempool_get(pool)) != NULL);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(mempool_put(pool, mine[i]), 0);
    int ready[2], go[2];
    REQUIRE(pipe(ready) == 0 && pipe(go) == 0);
    pid_t pid = park_child(mempool_shm_fd(pool), 20, 5, ready[1], go[0]);
    wait_ready(ready[0]);
    kill(pid, SIGKILL);
    CHECK_EQ(reap(pid), 128 + SIGKILL);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(r.processes, 1);
    /* Its 5 held and 20 parked, and the rest of its last refill. */
    CHECK(r.blocks >= 25 && r.blocks <= 25 + 16);
    CHECK_EQ(mempool_available(pool), 124);
    /* Our four held are still ours; our parked ones still come out. */
    for (int i = 6; i < 10; i++)
        CHECK_EQ(mempool_put(pool, mine[i]), 0);
    CHECK_EQ(mempool_available(pool), 128);
    void *all[128];
    CHECK_EQ(mempool_get_bulk(pool, all, 128, 0), 0);
    static unsigned char seen[128];
    for (int i = 0; i < 128; i++) {
        size_t index = mempool_index(pool, all[i]);
        REQUIRE(index < 128);
        CHECK(!seen[index]);
        seen[index] = 1;
    }
    CHECK_EQ(mempool_put_bulk(pool, all, 128), 0);
    mempool_destroy(pool);
}

static void *blocking_get(void *arg)
{
    return mempool_get_timeout(arg, 5000000000);
}

/* A waiter queued in one process, and a process with a cache that puts:
 * the block goes to the waiter, not into the putter's cache, and the
 * putter's next try does not pass it. Catches a cached put that strands a
 * block while a get waits, and a cached get that passes the queue. */
static void test_fifo_with_caches(void)
{
    mempool *pool = cached_pool(64, 16);
    int fd = mempool_shm_fd(pool);
    void *all[64];
    size_t n = 0;
    for (void *b; (b = mempool_try_get(pool)) != NULL;)
        all[n++] = b;
    REQUIRE(n == 64);
    /* A warm cache of ours: a put and a get through it before the wait. */
    CHECK_EQ(mempool_put(pool, all[--n]), 0);
    REQUIRE((all[n++] = mempool_get(pool)) != NULL);
    int result[2];
    REQUIRE(pipe(result) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *own = mempool_shm_open_fd(fd);
        void *b = own ? mempool_get_timeout(own, 5000000000) : NULL;
        size_t index = b ? mempool_index(own, b) : SIZE_MAX;
        _exit(write(result[1], &index, sizeof index) == sizeof index ? 0 : 1);
    }
    for (int i = 0; i < 5000 && stats_of(pool).waits < 1; i++)
        check_sleep_ns(1000000);
    REQUIRE(stats_of(pool).waits >= 1);
    void *given = all[--n];
    CHECK_EQ(mempool_put(pool, given), 0);
    CHECK(mempool_try_get(pool) == NULL);
    size_t index;
    REQUIRE(read(result[0], &index, sizeof index) == sizeof index);
    CHECK_EQ(index, mempool_index(pool, given));
    CHECK_EQ(reap(pid), 0);
    /* It exited holding the block: back, and ours again. */
    CHECK_EQ(mempool_recover(pool, 0, NULL), 0);
    void *back = mempool_try_get(pool);
    CHECK(back == given);
    all[n++] = back;
    /* Two waiters of ours, then puts from our cache's thread: oldest first. */
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        uint64_t before = stats_of(pool).waits;
        REQUIRE(pthread_create(&t[i], NULL, blocking_get, pool) == 0);
        for (int k = 0; k < 5000 && stats_of(pool).waits == before; k++)
            check_sleep_ns(1000000);
    }
    void *first = all[--n], *second = all[--n];
    CHECK_EQ(mempool_put(pool, first), 0);
    CHECK_EQ(mempool_put(pool, second), 0);
    void *got[2];
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], &got[i]);
    CHECK(got[0] == first && got[1] == second);
    all[n++] = first;
    all[n++] = second;
    CHECK_EQ(mempool_put_bulk(pool, all, n), 0);
    CHECK_EQ(mempool_available(pool), 64);
    /* Once blocks are plentiful again, the caches serve again. */
    mempool_stats before = stats_of(pool);
    for (int i = 0; i < 1000; i++) {
        void *b = mempool_get(pool);
        CHECK_EQ(mempool_put(pool, b), 0);
    }
    CHECK(stats_of(pool).cache_misses - before.cache_misses <= 2);
    mempool_destroy(pool);
}

/* A waiter killed while queued: the repair rebuilds the queue and its
 * count, and with nobody waiting the caches serve again. Catches a repair
 * that leaves a stale count, which would keep every slot armed (and every
 * call on the lock) for good. */
static void test_killed_waiter_disarms(void)
{
    mempool *pool = cached_pool(64, 8);
    int fd = mempool_shm_fd(pool);
    void *all[64];
    size_t n = 0;
    for (void *b; (b = mempool_try_get(pool)) != NULL;)
        all[n++] = b;
    REQUIRE(n == 64);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *own = mempool_shm_open_fd(fd);
        if (own)
            mempool_get(own);
        _exit(1);
    }
    for (int i = 0; i < 5000 && stats_of(pool).waits < 1; i++)
        check_sleep_ns(1000000);
    REQUIRE(stats_of(pool).waits >= 1);
    kill(pid, SIGKILL);
    CHECK_EQ(reap(pid), 128 + SIGKILL);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(r.processes, 1);
    CHECK_EQ(mempool_put_bulk(pool, all, n), 0);
    mempool_stats before = stats_of(pool);
    for (int i = 0; i < 1000; i++) {
        void *b = mempool_get(pool);
        REQUIRE(b);
        CHECK_EQ(mempool_put(pool, b), 0);
    }
    CHECK(stats_of(pool).cache_misses - before.cache_misses <= 2);
    mempool_destroy(pool);
}

/* More threads over time than the segment has cache slots: each thread's
 * slot goes back when it exits, with its blocks, so that later threads
 * still get one. Catches a slot or its blocks leaked at thread exit. */
static void *pairs(void *arg)
{
    mempool *pool = arg;
    void *b[3];
    for (int i = 0; i < 3; i++)
        if ((b[i] = mempool_get(pool)) == NULL)
            return (void *)1;
    for (int i = 0; i < 3; i++)
        if (mempool_put(pool, b[i]) != 0)
            return (void *)1;
    return NULL;
}

static void test_thread_exit(void)
{
    mempool *pool = cached_pool(1024, 16);
    for (int i = 0; i < 300; i++) {
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, pairs, pool) == 0);
        void *rc;
        pthread_join(t, &rc);
        CHECK(rc == NULL);
    }
    CHECK_EQ(mempool_available(pool), 1024);
    /* Every thread's counts, once each: its slot's share moves to the pool
     * when the slot is freed, and the slot keeps none of it. */
    mempool_stats all_counts = stats_of(pool);
    CHECK_EQ(all_counts.gets, 900);
    CHECK_EQ(all_counts.puts, 900);
    /* The last thread still had a slot: one refill for its 3 gets. */
    mempool_stats before = stats_of(pool);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, pairs, pool) == 0);
    pthread_join(t, NULL);
    CHECK_EQ(stats_of(pool).cache_misses - before.cache_misses, 1);
    /* Nothing left in any slot: a bulk get of everything is served from
     * the free list without a reclaim. */
    void *all[1024];
    CHECK_EQ(mempool_get_bulk(pool, all, 1024, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, all, 1024), 0);
    mempool_destroy(pool);
}

/* Close with blocks parked: gets fail everywhere, even with blocks in the
 * caller's own cache, and puts are still taken. Catches a hit path that
 * serves gets after close. */
static void test_close_with_caches(void)
{
    mempool *pool = cached_pool(64, 16);
    void *b[4];
    for (int i = 0; i < 4; i++)
        REQUIRE((b[i] = mempool_get(pool)) != NULL);
    CHECK_EQ(mempool_put(pool, b[0]), 0);
    mempool_close(pool);
    errno = 0;
    CHECK(mempool_get(pool) == NULL);
    CHECK_EQ(errno, ECANCELED);
    for (int i = 1; i < 4; i++)
        CHECK_EQ(mempool_put(pool, b[i]), 0);
    CHECK_EQ(mempool_available(pool), 64);
    mempool_destroy(pool);
}

/* A peer that scribbles on our slot: a count past the magazine, entries
 * outside the pool, an entry naming a block that is out. Every call still
 * returns, hands out only blocks of the pool that nobody else holds, and
 * the pool goes on. Catches a hit path that trusts the segment. */
static void test_corrupt_slot(void)
{
    mempool *pool = cached_pool(64, 16);
    int fd = mempool_shm_fd(pool);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    unsigned char *seg = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(seg != MAP_FAILED);
    uint64_t caches_offset, mags_offset;
    memcpy(&caches_offset, seg + 128, 8); /* src/shm.h's header and slot layouts */
    memcpy(&mags_offset, seg + 136, 8);
    void *held = mempool_get(pool); /* claims slot 0 */
    REQUIRE(held);
    _Atomic uint32_t *count = (_Atomic uint32_t *)(seg + caches_offset + 12);
    _Atomic uint32_t *mag = (_Atomic uint32_t *)(seg + mags_offset);
    uint32_t was = atomic_load(count);
    REQUIRE(was > 0);
    atomic_store(count, 100000);
    void *b = mempool_get(pool);
    CHECK(b != NULL && b != held);
    CHECK_EQ(mempool_put(pool, b), 0);
    atomic_store(&mag[atomic_load(count) - 1], 0xFFFFFFF0u);
    b = mempool_get(pool);
    CHECK(b != NULL && b != held);
    CHECK_EQ(mempool_put(pool, b), 0);
    atomic_store(&mag[atomic_load(count) - 1], (uint32_t)mempool_index(pool, held));
    b = mempool_get(pool);
    CHECK(b != NULL && b != held);
    CHECK_EQ(mempool_put(pool, held), 0);
    CHECK_EQ(mempool_put(pool, b), 0);
    void *all[64];
    size_t n = 0;
    for (void *x; (x = mempool_try_get(pool)) != NULL;)
        all[n++] = x;
    static unsigned char seen[64];
    for (size_t i = 0; i < n; i++) {
        size_t index = mempool_index(pool, all[i]);
        REQUIRE(index < 64);
        CHECK(!seen[index]);
        seen[index] = 1;
    }
    CHECK_EQ(mempool_put_bulk(pool, all, n), 0);
    munmap(seg, (size_t)st.st_size);
    mempool_destroy(pool);
}

/* Processes of several threads each, getting and putting single blocks
 * through their caches and bulk ones through the lock, pool often dry: a
 * byte in each block says it is held, so a block handed to two owners is
 * seen, and the count is exact at the end. Catches any lost or doubled
 * block between caches, the free list and the waiters. */
static void *churn(void *arg)
{
    mempool *pool = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    void *mine[8];
    int n = 0;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        int op = (int)(seed >> 16) % 4;
        if (op < 2 && n < 8) {
            void *b = mempool_get_timeout(pool, 2000000000);
            if (!b)
                return (void *)1;
            _Atomic unsigned char *flag = b;
            if (atomic_exchange(flag, 1) != 0)
                return (void *)2; /* two owners */
            mine[n++] = b;
        } else if (op == 2 && n <= 6) {
            void *b[2];
            if (mempool_get_bulk(pool, b, 2, 2000000000) != 0)
                return (void *)1;
            for (int k = 0; k < 2; k++) {
                if (atomic_exchange((_Atomic unsigned char *)b[k], 1) != 0)
                    return (void *)2;
                mine[n++] = b[k];
            }
        } else if (n > 0) {
            void *b = mine[--n];
            atomic_store((_Atomic unsigned char *)b, 0);
            if (mempool_put(pool, b) != 0)
                return (void *)3;
        }
    }
    while (n > 0) {
        void *b = mine[--n];
        atomic_store((_Atomic unsigned char *)b, 0);
        if (mempool_put(pool, b) != 0)
            return (void *)3;
    }
    return NULL;
}

static void test_churn(void)
{
    mempool *pool = cached_pool(40, 8);
    int fd = mempool_shm_fd(pool);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        REQUIRE(kids[k] >= 0);
        if (kids[k] == 0) {
            mempool *own = mempool_shm_open_fd(fd);
            pthread_t t[2];
            int bad = !own;
            for (int i = 0; !bad && i < 2; i++)
                bad = pthread_create(&t[i], NULL, churn, own) != 0;
            for (int i = 0; !own || i < 2; i++) {
                void *rc = NULL;
                if (own)
                    pthread_join(t[i], &rc);
                bad |= rc != NULL;
                if (!own)
                    break;
            }
            mempool_destroy(own);
            _exit(bad);
        }
    }
    void *rc = churn(pool);
    CHECK(rc == NULL);
    for (int k = 0; k < 2; k++)
        CHECK_EQ(reap(kids[k]), 0);
    CHECK_EQ(mempool_available(pool), 40);
    void *all[40];
    CHECK_EQ(mempool_get_bulk(pool, all, 40, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, all, 40), 0);
    mempool_destroy(pool);
}

/* Attaching to a pool with caches registers the process for the barrier
 * that reclaimers issue: without it, the barrier would not reach our
 * fence-free hit paths. Where the kernel grants the barrier, the slots run
 * fence-free (in builds that do not order every cache); whether the
 * process is registered is checked where the kernel can say (Linux 6.3 and
 * later). Catches an attach that misreads the registration's result and
 * runs ordered for nothing, or runs fence-free unregistered. */
#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif
static void test_barrier_registered(void)
{
    long granted = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        long before = syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
        mempool *pool = cached_pool(64, 8);
        long after = syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
        /* Registered, the process's slots run fence-free (unless the build
         * orders every cache): a slot left by a pair reads 0, not the
         * ordered protocol's IDLE (2). */
        void *b = mempool_get(pool);
        int ok = b && mempool_put(pool, b) == 0;
        uint32_t busy = only_slot_busy(mempool_shm_fd(pool));
        mempool_destroy(pool);
        if (granted <= 0 || !(granted & MEMBARRIER_CMD_GLOBAL_EXPEDITED))
            _exit(ok ? 0 : 1); /* the kernel grants no such barrier */
        ok &= busy == (BUILD_ORDERED ? 2u : 0u);
        if (before >= 0) /* the kernel can tell */
            ok &= !(before & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
                  (after & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
        _exit(ok && !check_failures ? 0 : 1);
    }
    CHECK_EQ(reap(pid), 0);
}

struct closed_arg {
    mempool *pool;
    void *b;
    int rc;
};

static void *closed_thread(void *arg)
{
    struct closed_arg *a = arg;
    errno = 0;
    int got = mempool_get(a->pool) != NULL;
    a->rc = got || errno != ECANCELED ? 1 : mempool_put(a->pool, a->b);
    return NULL;
}

/* Every slot taken (a peer wrote their owner words): a new thread runs
 * uncached, through the lock, and exits without a slot to return; a slot
 * claimed after close carries the close; puts of blocks the calling process
 * does not hold (another process's, one in transit) take the locked path
 * even with a slot; a flush of an empty slot or from a thread without a
 * cache does nothing. Catches a thread without a slot that dereferences
 * one, a claim that forgets the close, and a hit path that caches a block
 * it does not hold. */
static void *one_pair(void *arg)
{
    mempool *pool = arg;
    mempool_flush(pool); /* no cache yet */
    void *b = mempool_get(pool);
    if (!b || mempool_put(pool, b) != 0)
        return (void *)1;
    mempool_flush(pool);
    mempool_flush(pool); /* empty already */
    return NULL;
}

static void test_slots_taken(void)
{
    mempool *pool = cached_pool(64, 8);
    int fd = mempool_shm_fd(pool);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    unsigned char *seg = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(seg != MAP_FAILED);
    uint64_t caches_offset;
    memcpy(&caches_offset, seg + 128, 8);
    for (int k = 0; k < 256; k++)
        atomic_store((_Atomic uint32_t *)(seg + caches_offset + (size_t)k * 64), 0x7FFFFFFFu);
    mempool_stats before = stats_of(pool);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, one_pair, pool) == 0);
    void *rc;
    pthread_join(t, &rc);
    CHECK(rc == NULL);
    CHECK_EQ(stats_of(pool).cache_misses - before.cache_misses, 1);
    for (int k = 0; k < 256; k++)
        atomic_store((_Atomic uint32_t *)(seg + caches_offset + (size_t)k * 64), 0);
    /* Another process's block and a block in transit, put from here. */
    int result[2], hold[2];
    REQUIRE(pipe(result) == 0 && pipe(hold) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *own = mempool_shm_open_fd(fd);
        void *b = own ? mempool_get(own) : NULL;
        void *g = own ? mempool_get(own) : NULL;
        size_t msg[2] = { b ? mempool_index(own, b) : SIZE_MAX, 0 };
        msg[1] = g ? (size_t)mempool_shm_give(own, g) : 0;
        int ok = write(result[1], msg, sizeof msg) == sizeof msg;
        char c;
        ok = read(hold[0], &c, 1) == 1 && ok; /* killed while waiting here */
        _exit(ok ? 0 : 1);
    }
    size_t msg[2];
    REQUIRE(read(result[0], msg, sizeof msg) == sizeof msg);
    REQUIRE(msg[0] < 64 && msg[1] != 0);
    void *warm = mempool_get(pool); /* this thread has a slot with room */
    CHECK_EQ(mempool_put(pool, mempool_block(pool, msg[0])), 0);
    uint64_t h = msg[1];
    void *given = mempool_block(pool, (size_t)(h & UINT32_MAX) - 1);
    CHECK_EQ(mempool_put(pool, given), 0);
    CHECK(mempool_shm_take(pool, h) == NULL);
    CHECK_EQ(mempool_put(pool, warm), 0);
    kill(pid, SIGKILL);
    CHECK_EQ(reap(pid), 128 + SIGKILL);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    /* Both of its blocks were put already: what comes back is what its
     * slot still held, a refill (4 of a slot of 8) less its second get. */
    CHECK_EQ(r.blocks, 3);
    CHECK_EQ(mempool_available(pool), 64);
    /* A slot claimed after close: its gets fail, its puts go through. */
    void *b = mempool_get(pool);
    mempool_close(pool);
    struct closed_arg arg = { pool, b, -1 };
    REQUIRE(pthread_create(&t, NULL, closed_thread, &arg) == 0);
    pthread_join(t, NULL);
    CHECK_EQ(arg.rc, 0);
    CHECK_EQ(mempool_available(pool), 64);
    munmap(seg, (size_t)st.st_size);
    mempool_destroy(pool);
}

/* A peer that scribbles on the shared state around a thread's slot: a
 * queue count with nobody queued and a closed word without the slots'
 * marks (a refill declines, the locked path decides), a full slot whose
 * older entries name nothing of its own (the flush skips them), a count
 * past the magazine on a put (the slot empties, the lock takes the put),
 * every waiter slot taken (a get naps until its deadline), and a foreign
 * pointer put through a slot. Catches a refill that passes a queue or a
 * close, a flush that trusts its entries, and a put that trusts the count. */
static void test_hostile_state(void)
{
    mempool *pool = cached_pool(64, 8);
    int fd = mempool_shm_fd(pool);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    unsigned char *seg = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(seg != MAP_FAILED);
    uint64_t state_offset, waiters_offset, caches_offset, mags_offset;
    memcpy(&state_offset, seg + 72, 8); /* src/shm.h's header and state layouts */
    memcpy(&waiters_offset, seg + 88, 8);
    memcpy(&caches_offset, seg + 128, 8);
    memcpy(&mags_offset, seg + 136, 8);
    _Atomic uint32_t *closed = (_Atomic uint32_t *)(seg + state_offset + 4);
    _Atomic uint32_t *queued = (_Atomic uint32_t *)(seg + state_offset + 20);
    atomic_store(queued, 1);
    void *a = mempool_get(pool); /* the refill declines; the lock serves it */
    CHECK(a != NULL);
    atomic_store(queued, 0);
    atomic_store(closed, 1);
    errno = 0;
    CHECK(mempool_get(pool) == NULL);
    CHECK_EQ(errno, ECANCELED);
    atomic_store(closed, 0);
    /* Fill our slot (slot 0, claimed by the first get) to its 8: nine
     * gets through two refills of 4 leave one there, seven puts fill it. */
    void *b[9];
    for (int i = 0; i < 9; i++)
        REQUIRE((b[i] = mempool_get(pool)) != NULL);
    _Atomic uint32_t *count = (_Atomic uint32_t *)(seg + caches_offset + 12);
    _Atomic uint32_t *mag = (_Atomic uint32_t *)(seg + mags_offset);
    for (int i = 0; i < 7; i++)
        CHECK_EQ(mempool_put(pool, b[i]), 0);
    REQUIRE(atomic_load(count) == 8);
    atomic_store(&mag[0], 0xFFFFFFF0u);
    atomic_store(&mag[1], (uint32_t)mempool_index(pool, a)); /* out, ours */
    CHECK_EQ(mempool_put(pool, b[7]), 0); /* a flush that skips both */
    CHECK_EQ(mempool_put(pool, b[8]), 0);
    CHECK_EQ(mempool_put(pool, a), 0);
    atomic_store(count, 100000);
    void *c = mempool_try_get(pool);
    REQUIRE(c != NULL);
    atomic_store(count, 100000);
    CHECK_EQ(mempool_put(pool, c), 0);
    /* A foreign pointer, from a thread with a slot. */
    CHECK_EQ(mempool_put(pool, (char *)mempool_block(pool, 0) - 64), EINVAL);
    /* Every waiter slot taken: a timed get that would wait naps, then
     * times out. */
    void *all[64];
    size_t n = 0;
    for (void *x; (x = mempool_try_get(pool)) != NULL;)
        all[n++] = x;
    for (int w = 0; w < 1024; w++)
        atomic_store((_Atomic uint32_t *)(seg + waiters_offset + (size_t)w * 64), 1);
    errno = 0;
    CHECK(mempool_get_timeout(pool, 20000000) == NULL);
    CHECK_EQ(errno, ETIMEDOUT);
    for (int w = 0; w < 1024; w++)
        atomic_store((_Atomic uint32_t *)(seg + waiters_offset + (size_t)w * 64), 0);
    CHECK_EQ(mempool_put_bulk(pool, all, n), 0);
    /* A queue whose head names an empty waiter slot: a put goes to the free
     * list. A waiter slot in no state the protocol stores, and a free
     * block's word with a put's mark: a repair clears both. */
    _Atomic uint32_t *first = (_Atomic uint32_t *)(seg + state_offset + 12);
    void *two[2];
    REQUIRE(mempool_get_bulk(pool, two, 2, 0) == 0);
    atomic_store(first, 3);
    CHECK_EQ(mempool_put_bulk(pool, two, 2), 0);
    atomic_store(first, UINT32_MAX);
    atomic_store((_Atomic uint32_t *)(seg + waiters_offset + 5 * 64), 7);
    uint64_t owners_offset;
    memcpy(&owners_offset, seg + 96, 8);
    size_t free_one = mempool_index(pool, two[0]);
    _Atomic uint64_t *word = (_Atomic uint64_t *)(seg + owners_offset) + free_one;
    atomic_fetch_or(word, (uint64_t)1 << 31);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r), 0);
    CHECK_EQ(atomic_load((_Atomic uint32_t *)(seg + waiters_offset + 5 * 64)), 0);
    CHECK_EQ(atomic_load(word) & ((uint64_t)1 << 31), 0);
    /* A block granted to a live process's wait that nobody woke (its waker
     * died before saying so): a repair finds all it asked for and marks
     * it served; with the pool closed meanwhile, it cancels the wait and
     * frees the block. */
    uint32_t me = our_process_id(seg);
    void *x;
    REQUIRE(mempool_get_bulk(pool, &x, 1, 0) == 0);
    _Atomic uint64_t *xw = (_Atomic uint64_t *)(seg + owners_offset) + mempool_index(pool, x);
    atomic_store(xw, (atomic_load(xw) & ~(uint64_t)UINT32_MAX) | 9u << 2 | 3u);
    unsigned char *w9 = seg + waiters_offset + 9 * 64;
    atomic_store((_Atomic uint32_t *)(w9 + 4), me);
    atomic_store((_Atomic uint32_t *)(w9 + 16), 1);
    atomic_store((_Atomic uint32_t *)w9, 1);
    CHECK_EQ(mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r), 0);
    CHECK_EQ(atomic_load((_Atomic uint32_t *)w9), 2); /* served */
    atomic_store((_Atomic uint32_t *)w9, 1);
    atomic_store(closed, 1);
    CHECK_EQ(mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r), 0);
    CHECK_EQ(atomic_load((_Atomic uint32_t *)w9), 3); /* canceled */
    CHECK_EQ(atomic_load(xw) & 3, 0);                 /* and the block free */
    atomic_store((_Atomic uint32_t *)w9, 0);
    atomic_store(closed, 0);
    /* A second handle of this process detaches: it leaves the segment's
     * lock free (a detach that kept it would cost the next locker a
     * takeover after a slice, and a repair). */
    mempool *second = mempool_shm_open_fd(fd);
    REQUIRE(second);
    void *s2 = mempool_get(second);
    REQUIRE(s2);
    mempool_destroy(second);
    CHECK_EQ(atomic_load((_Atomic uint32_t *)(seg + state_offset)), 0);
    /* Two entries were lost to the scribbles at most: the rest is whole. */
    CHECK(mempool_available(pool) >= 62);
    munmap(seg, (size_t)st.st_size);
    mempool_destroy(pool);
}

/* Creating a pool runs init with cancellation off, and turns it back on:
 * a thread that created one can still be canceled. */
static void no_op_init(void *block, void *arg)
{
    (void)block, (void)arg;
}

/* Nothing of this thread's own is on its stack when it is canceled: the
 * forced unwinding leaves AddressSanitizer's marks of a canceled frame in
 * place, which its thread teardown would then trip over. */
static const mempool_config with_init = { .capacity = 4, .block_size = 16, .init = no_op_init };

static void *create_then_sleep(void *arg)
{
    atomic_store((_Atomic(mempool *) *)arg, mempool_shm_create(NULL, &with_init, 0));
    sleep(3); /* a cancellation point */
    return NULL;
}

static void test_cancel_after_create(void)
{
    _Atomic(mempool *) made = NULL;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, create_then_sleep, &made) == 0);
    while (!atomic_load(&made))
        check_sleep_ns(1000000);
    pthread_cancel(t);
    void *rc;
    pthread_join(t, &rc);
    CHECK(rc == PTHREAD_CANCELED);
    mempool_destroy(atomic_load(&made));
}

/* A lock word naming a live process: nobody takes the lock over, however
 * long it is held (a peer stopped inside the lock is not a dead one); the
 * waiter goes on once it is free. Catches a takeover from the living. */
struct bulk_get {
    mempool *pool;
    void *b[2];
    _Atomic int done;
    int rc;
};

static void *bulk_get_thread(void *arg)
{
    struct bulk_get *g = arg;
    g->rc = mempool_get_bulk(g->pool, g->b, 2, 0);
    atomic_store(&g->done, 1);
    return NULL;
}

static void test_live_holder_kept(void)
{
    mempool *pool = cached_pool(64, 8);
    int fd = mempool_shm_fd(pool);
    int ready[2], go[2];
    REQUIRE(pipe(ready) == 0 && pipe(go) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *own = mempool_shm_open_fd(fd);
        char x = own ? 'k' : 'x';
        int ok = write(ready[1], &x, 1) == 1;
        ok = read(go[0], &x, 1) == 1 && ok;
        _exit(ok ? 0 : 1);
    }
    wait_ready(ready[0]);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    unsigned char *seg = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(seg != MAP_FAILED);
    uint64_t state_offset, procs_offset;
    memcpy(&state_offset, seg + 72, 8);
    memcpy(&procs_offset, seg + 80, 8);
    uint32_t id = UINT32_MAX;
    for (uint32_t k = 0; k < 128; k++) {
        uint64_t pw = atomic_load((_Atomic uint64_t *)(seg + procs_offset + (size_t)k * 64));
        int64_t p = atomic_load((_Atomic int64_t *)(seg + procs_offset + (size_t)k * 64 + 8));
        if ((uint32_t)pw == 1 && p == pid)
            id = k | (uint32_t)((pw >> 32) & 0x3FFFFF) << 7;
    }
    REQUIRE(id != UINT32_MAX);
    _Atomic uint32_t *lock = (_Atomic uint32_t *)(seg + state_offset);
    atomic_store(lock, id + 1);
    struct bulk_get g = { .pool = pool };
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, bulk_get_thread, &g) == 0);
    check_sleep_ns(100000000); /* ten of the lock's slices */
    CHECK_EQ(atomic_load(&g.done), 0);
    atomic_store(lock, 0);
    pthread_join(t, NULL);
    CHECK_EQ(g.rc, 0);
    CHECK_EQ(mempool_put_bulk(pool, g.b, 2), 0);
    REQUIRE(write(go[1], "g", 1) == 1);
    CHECK_EQ(reap(pid), 0);
    munmap(seg, (size_t)st.st_size);
    mempool_destroy(pool);
}

/* A thread that forks after using the pool: in the child it is the only
 * thread, and when it exits there, its inherited object must not touch
 * the parent's slot (the handle is the parent's). Catches a thread exit
 * that returns a fork child's inherited slot. */
static void *end_later(void *arg)
{
    (void)arg;
    check_sleep_ns(200000000);
    _exit(0);
}

static void *fork_then_exit(void *arg)
{
    mempool *pool = arg;
    void *b = mempool_get(pool);
    if (!b || mempool_put(pool, b) != 0)
        return (void *)1;
    pid_t pid = fork();
    if (pid == 0) {
        errno = 0;
        int bad = mempool_get(pool) != NULL || errno != EPERM;
        mempool_flush(pool);
        pthread_t ender;
        if (bad || pthread_create(&ender, NULL, end_later, NULL) != 0)
            _exit(1);
        /* This thread's exit runs its cleanup; the other ends the process
         * (with _exit: the main thread's memory is out of reach in this
         * child, which a leak check at exit would report). */
        pthread_exit(NULL);
    }
    return pid > 0 && reap(pid) == 0 ? NULL : (void *)1;
}

static void test_fork_from_thread(void)
{
#if UNDER_TSAN
    /* ThreadSanitizer cannot start a thread in the child of a fork made
     * with several threads, which this test needs. */
    printf("fork from a thread: not run under ThreadSanitizer\n");
    return;
#endif
#ifdef HAVE_MEMCHECK
    /* memcheck's leak check at the child's exit counts the other threads'
     * memory, which that child cannot reach, as lost. */
    if (RUNNING_ON_VALGRIND) {
        printf("fork from a thread: not run under memcheck\n");
        return;
    }
#endif
    mempool *pool = cached_pool(64, 8);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fork_then_exit, pool) == 0);
    void *rc;
    pthread_join(t, &rc);
    CHECK(rc == NULL);
    CHECK_EQ(mempool_available(pool), 64);
    void *all[64];
    CHECK_EQ(mempool_get_bulk(pool, all, 64, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, all, 64), 0);
    mempool_destroy(pool);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = 4;
    c.block_size = 16;
    mempool *probe = mempool_shm_create(NULL, &c, 0);
    if (!probe && errno == ENOSYS) {
        printf("SKIPPED: no shared pools on this system\n");
        return 0;
    }
    REQUIRE(probe);
    mempool_destroy(probe);
    test_barrier_registered();
    test_hits();
    test_odd_stride();
    test_concurrent_create();
    test_destroyed_then_reused();
    test_bulk_waiter_keeps_armed();
    test_timeout_then_hits();
    test_no_stranding();
    test_killed_with_cache();
    test_fifo_with_caches();
    test_killed_waiter_disarms();
    test_thread_exit();
    test_close_with_caches();
    test_corrupt_slot();
    test_churn();
    test_slots_taken();
    test_fork_from_thread();
    test_hostile_state();
    test_cancel_after_create();
    test_live_holder_kept();
    CHECK_DONE();
}
