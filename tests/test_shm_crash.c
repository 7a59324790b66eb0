/* SPDX-License-Identifier: MIT */
/* Shared pools and processes killed at any step. Linked to the fault
 * library, whose shared-pool operations count their steps and SIGKILL the
 * process at the k-th one (mempool__shm_crash_countdown).
 *
 * The sweep kills a child at every step k of a fixed script of calls in
 * turn (gets, bulk gets, puts, bulk puts, single calls through the thread's
 * cache slot and the reclaim of it, a refused put, give and take, a
 * grant from one thread to another's wait, detaching) and of a recovery;
 * after each death the parent recovers and checks the exact count and that
 * every block can be taken exactly once. The soak kills random processes
 * of several threads each, over and over, while every block carries the id
 * of its holder, so that a block handed to two owners is seen. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shm_layout.h"

extern _Atomic long mempool__shm_crash_countdown;
extern _Atomic long mempool__fault_countdown;
extern _Atomic int mempool__fault_barrier;

enum { CAPACITY = 64, HELD = 3 };

static int reap(pid_t pid)
{
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The parent's view after a death: every block but the parent's own is
 * free again (in-transit ones after MEMPOOL_RECOVER_TRANSIT), and a bulk
 * get of all of them returns each exactly once. */
static void check_whole(mempool *pool, size_t held, long k)
{
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r), 0);
    size_t free_now = mempool_available(pool);
    if (free_now != CAPACITY - held)
        fprintf(stderr, "after a death at step %ld: %zu free, not %zu\n", k, free_now,
                (size_t)CAPACITY - held);
    CHECK_EQ(free_now, CAPACITY - held);
    void *all[CAPACITY];
    int rc = mempool_get_bulk(pool, all, free_now, 0);
    CHECK_EQ(rc, 0);
    if (rc)
        return;
    static unsigned char seen[CAPACITY];
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < free_now; i++) {
        size_t index = mempool_index(pool, all[i]);
        REQUIRE(index < CAPACITY);
        CHECK(!seen[index]);
        seen[index] = 1;
    }
    CHECK_EQ(mempool_put_bulk(pool, all, free_now), 0);
}

struct grant {
    mempool *pool;
    void *got;
};

static void *waiting_get(void *arg)
{
    struct grant *g = arg;
    g->got = mempool_get_timeout(g->pool, 2000000000);
    return NULL;
}

/* The script a child runs with the countdown armed: every kind of call. */
static int script(mempool *pool)
{
    void *b[16];
    void *one = mempool_get(pool);
    if (!one || mempool_get_bulk(pool, b, 5, 0) != 0)
        return 1;
    if (mempool_put(pool, b[0]) != 0 || mempool_put(pool, b[0]) != EINVAL)
        return 1;
    if (mempool_put_bulk(pool, b + 1, 3) != 0)
        return 1;
    uint64_t h = mempool_shm_give(pool, one);
    if (!h || mempool_shm_take(pool, h) != one)
        return 1;
    h = mempool_shm_give(pool, b[4]);
    if (!h)
        return 1;
    /* Single calls through the thread's cache slot (4 blocks here): across
     * refills and a flush. */
    void *c6[6];
    for (int i = 0; i < 6; i++)
        if ((c6[i] = mempool_get(pool)) == NULL)
            return 1;
    for (int i = 0; i < 6; i++)
        if (mempool_put(pool, c6[i]) != 0)
            return 1;
    /* Empty the pool, then let a thread wait and be served by a put. */
    size_t rest = mempool_available(pool);
    void *all[CAPACITY];
    if (mempool_get_bulk(pool, all, rest, 0) != 0)
        return 1;
    struct grant g = { pool, NULL };
    pthread_t t;
    mempool_stats before;
    mempool_stats_read(pool, &before);
    if (pthread_create(&t, NULL, waiting_get, &g) != 0)
        return 1;
    for (int i = 0; i < 2000; i++) {
        mempool_stats st;
        mempool_stats_read(pool, &st);
        if (st.waits > before.waits)
            break;
        check_sleep_ns(1000000);
    }
    if (mempool_put(pool, all[0]) != 0)
        return 1;
    pthread_join(t, NULL);
    if (g.got != all[0])
        return 1;
    if (mempool_put_bulk(pool, all + 1, rest - 1) != 0 || mempool_put(pool, g.got) != 0)
        return 1;
    if (mempool_shm_take(pool, h) != b[4] || mempool_put(pool, b[4]) != 0)
        return 1;
    mempool_destroy(pool);
    return 0;
}

static mempool *make_pool(void **held)
{
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = CAPACITY;
    c.block_size = 64;
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    REQUIRE(pool);
    REQUIRE(mempool_get_bulk(pool, held, HELD, 0) == 0);
    return pool;
}

/* Kills a child at step k of the script for every k until the script runs
 * to its end; returns the number of steps swept. */
static long sweep_script(void)
{
    void *held[HELD];
    mempool *pool = make_pool(held);
    int fd = mempool_shm_fd(pool);
    long k = 1;
    for (;; k++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            /* Armed before attaching: a death inside the attach counts. */
            atomic_store(&mempool__shm_crash_countdown, k);
            mempool *child = mempool_shm_open_fd(fd);
            if (!child)
                exit(2);
            exit(script(child));
        }
        int status = reap(pid);
        if (status != 128 + SIGKILL) {
            CHECK_EQ(status, 0);
            break;
        }
        check_whole(pool, HELD, k);
        if (check_failures)
            break;
    }
    CHECK_EQ(mempool_put_bulk(pool, held, HELD), 0);
    CHECK_EQ(mempool_available(pool), CAPACITY);
    mempool_destroy(pool);
    return k;
}

/* A recovery killed at every step: the next recovery finishes its work. */
static long sweep_recover(void)
{
    void *held[HELD];
    mempool *pool = make_pool(held);
    int fd = mempool_shm_fd(pool);
    long k = 1;
    for (;; k++) {
        pid_t holder = fork();
        REQUIRE(holder >= 0);
        if (holder == 0) {
            mempool *child = mempool_shm_open_fd(fd);
            void *b[20];
            /* Dies holding them, not detached (and unseen by leak checks). */
            _exit(child && mempool_get_bulk(child, b, 20, 0) == 0 ? 0 : 1);
        }
        CHECK_EQ(reap(holder), 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            mempool *child = mempool_shm_open_fd(fd); /* attaching recovers */
            atomic_store(&mempool__shm_crash_countdown, k);
            int ok = child && mempool_recover(child, MEMPOOL_RECOVER_TRANSIT, NULL) == 0;
            mempool_destroy(child);
            exit(ok ? 0 : 1);
        }
        int status = reap(pid);
        (void)status;
        check_whole(pool, HELD, k);
        if (status != 128 + SIGKILL || check_failures)
            break;
    }
    CHECK_EQ(mempool_put_bulk(pool, held, HELD), 0);
    mempool_destroy(pool);
    return k;
}

/* A close killed at every step, with a live waiter in another process:
 * the close took effect or it did not (then the pool is still open, and a
 * close now works); the waiter ends with ECANCELED either way, and every
 * block is accounted for. */
static void *close_waiter(void *arg)
{
    void *b[2];
    return (void *)(intptr_t)mempool_get_bulk(arg, b, 2, 10000000000);
}

static long sweep_close(void)
{
    long k = 1;
    for (;; k++) {
        void *held[HELD];
        mempool *pool = make_pool(held);
        void *rest[CAPACITY];
        size_t n = mempool_available(pool);
        REQUIRE(mempool_get_bulk(pool, rest, n, 0) == 0);
        pthread_t t;
        mempool_stats before;
        mempool_stats_read(pool, &before);
        REQUIRE(pthread_create(&t, NULL, close_waiter, pool) == 0);
        for (int i = 0; i < 5000; i++) {
            mempool_stats st;
            mempool_stats_read(pool, &st);
            if (st.waits > before.waits)
                break;
            check_sleep_ns(1000000);
        }
        CHECK_EQ(mempool_put(pool, rest[0]), 0); /* one of two granted */
        int fd = mempool_shm_fd(pool);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            mempool *child = mempool_shm_open_fd(fd);
            if (!child)
                exit(2);
            atomic_store(&mempool__shm_crash_countdown, k);
            mempool_close(child);
            mempool_destroy(child);
            exit(0);
        }
        int status = reap(pid);
        CHECK_EQ(mempool_recover(pool, 0, NULL), 0);
        /* The close happened or did not: either way, the pool's state
         * says one thing, and a close now cancels the waiter. */
        errno = 0;
        void *probe = mempool_try_get(pool);
        CHECK(probe == NULL && (errno == ECANCELED || errno == EAGAIN));
        if (errno == EAGAIN)
            mempool_close(pool);
        void *rc;
        pthread_join(t, &rc);
        CHECK_EQ((intptr_t)rc, ECANCELED);
        CHECK_EQ(mempool_put_bulk(pool, rest + 1, n - 1), 0);
        CHECK_EQ(mempool_put_bulk(pool, held, HELD), 0);
        CHECK_EQ(mempool_available(pool), CAPACITY);
        mempool_destroy(pool);
        if (status != 128 + SIGKILL || check_failures)
            break;
    }
    return k;
}

/* The number of descriptors this process has open. */
static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* Every allocation of create and attach failing in turn: ENOMEM, and
 * nothing left attached (the next attach finds a free slot and no dead). */
static void fail_allocations(void)
{
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = 16;
    c.block_size = 64;
    int failures = 0;
    for (long k = 1;; k++) {
        atomic_store(&mempool__fault_countdown, k);
        mempool *pool = mempool_shm_create(NULL, &c, 0);
        atomic_store(&mempool__fault_countdown, 0);
        if (pool) {
            mempool_destroy(pool);
            break;
        }
        CHECK_EQ(errno, ENOMEM);
        failures++;
    }
    char name[64];
    snprintf(name, sizeof name, "/mempool-crash-%ld", (long)getpid());
    for (long k = 1;; k++) {
        atomic_store(&mempool__fault_countdown, k);
        mempool *pool = mempool_shm_create(name, &c, 0);
        atomic_store(&mempool__fault_countdown, 0);
        if (pool) {
            mempool_destroy(pool);
            break;
        }
        CHECK_EQ(errno, ENOMEM);
        CHECK_EQ(mempool_shm_unlink(name), ENOENT); /* a failed create leaves no name */
        failures++;
    }
    CHECK_EQ(mempool_shm_unlink(name), 0);
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    REQUIRE(pool);
    int fds = open_fds();
    for (long k = 1;; k++) {
        atomic_store(&mempool__fault_countdown, k);
        mempool *again = mempool_shm_open_fd(mempool_shm_fd(pool));
        atomic_store(&mempool__fault_countdown, 0);
        if (again) {
            mempool_destroy(again);
            break;
        }
        CHECK_EQ(errno, ENOMEM);
        /* A failed attach closes what it opened (its copy of the
         * descriptor, its own description). */
        CHECK_EQ(open_fds(), fds);
        failures++;
    }
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(r.processes, 0);
    CHECK_EQ(mempool_available(pool), 16);
    CHECK(failures >= 4);
    mempool_destroy(pool);
}

/* The soak: workers of several threads get and put at random, and the
 * parent kills one of them at a random moment, over and over. */
enum { WORKERS = 4, THREADS = 2, IDS = 4096 };

struct board {
    _Atomic int stop;
    _Atomic unsigned next_id;
    _Atomic int doomed[IDS]; /* set just before a worker is killed */
    _Atomic long doubles, errors, ops;
};

struct stamp {
    _Atomic unsigned holder;
};

static struct board *board;

struct worker {
    mempool *pool;
    unsigned id;
    unsigned seed;
};

static bool take(struct worker *w, void *block)
{
    struct stamp *s = block;
    unsigned old = atomic_exchange(&s->holder, w->id);
    if (old != 0 && !atomic_load(&board->doomed[old % IDS])) {
        atomic_fetch_add(&board->doubles, 1);
        return false;
    }
    return true;
}

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    void *mine[8];
    int n = 0;
    while (!atomic_load(&board->stop)) {
        int op = (int)(rand_r(&w->seed) % 6);
        if (op < 2 && n < 8) {
            void *b = op ? mempool_get_timeout(w->pool, 2000000) : mempool_try_get(w->pool);
            if (b && take(w, b))
                mine[n++] = b;
        } else if (op == 2 && n <= 4) {
            if (mempool_get_bulk(w->pool, mine + n, 3, 1000000) == 0) {
                for (int i = 0; i < 3; i++)
                    take(w, mine[n + i]);
                n += 3;
            }
        } else if (op == 3 && n > 1) {
            for (int i = 0; i < 2; i++)
                atomic_store(&((struct stamp *)mine[n - 1 - i])->holder, 0);
            if (mempool_put_bulk(w->pool, mine + n - 2, 2) != 0)
                atomic_fetch_add(&board->errors, 1);
            n -= 2;
        } else if (n > 0) {
            atomic_store(&((struct stamp *)mine[n - 1])->holder, 0);
            if (mempool_put(w->pool, mine[--n]) != 0)
                atomic_fetch_add(&board->errors, 1);
        }
        atomic_fetch_add(&board->ops, 1);
    }
    while (n > 0) {
        atomic_store(&((struct stamp *)mine[n - 1])->holder, 0);
        mempool_put(w->pool, mine[--n]);
    }
    return NULL;
}

static pid_t spawn(int fd, unsigned *id_out)
{
    unsigned id = atomic_fetch_add(&board->next_id, 1);
    *id_out = id;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid)
        return pid;
    mempool *pool = mempool_shm_open_fd(fd);
    if (!pool)
        exit(2);
    struct worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ pool, id * THREADS + (unsigned)i, id * 7919u + (unsigned)i };
        pthread_create(&t[i], NULL, worker_thread, &w[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    mempool_destroy(pool);
    exit(0);
}

static void soak(double scale)
{
    board = mmap(NULL, sizeof *board, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(board != MAP_FAILED);
    atomic_store(&board->next_id, 1);
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = 32; /* small: gets wait and are granted often */
    c.block_size = sizeof(struct stamp);
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    REQUIRE(pool);
    int fd = mempool_shm_fd(pool);
    pid_t pids[WORKERS];
    unsigned ids[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pids[i] = spawn(fd, &ids[i]);
    unsigned seed = 12345;
    int kills = (int)(60 * scale);
    if (kills < 8)
        kills = 8;
    for (int round = 0; round < kills; round++) {
        check_sleep_ns(2000000 + (int64_t)(rand_r(&seed) % 20) * 1000000);
        int victim = (int)(rand_r(&seed) % WORKERS);
        /* Ids of worker threads: id * THREADS + t. */
        for (int t = 0; t < THREADS; t++)
            atomic_store(&board->doomed[(ids[victim] * THREADS + (unsigned)t) % IDS], 1);
        kill(pids[victim], SIGKILL);
        CHECK_EQ(reap(pids[victim]), 128 + SIGKILL);
        pids[victim] = spawn(fd, &ids[victim]);
    }
    atomic_store(&board->stop, 1);
    for (int i = 0; i < WORKERS; i++)
        CHECK_EQ(reap(pids[i]), 0);
    CHECK_EQ(mempool_recover(pool, 0, NULL), 0);
    CHECK_EQ(mempool_available(pool), 32);
    CHECK_EQ(atomic_load(&board->doubles), 0);
    CHECK_EQ(atomic_load(&board->errors), 0);
    CHECK(atomic_load(&board->ops) > 1000);
    printf("soak: %d kills, %ld operations\n", kills, atomic_load(&board->ops));
    mempool_destroy(pool);
    munmap(board, sizeof *board);
}

/* A barrier across processes that fails (as one refused by a seccomp filter
 * installed after attach): the reclaimer may not take a slot whose owner ran
 * fence-free, so a try_get leaves the blocks parked there; the owner's next
 * call sees the steal request and hands them over. And a thread whose first
 * call cannot allocate its cache object runs uncached, through the lock.
 * Catches a reclaimer that takes a fence-free slot without a barrier, an
 * owner that ignores the request, and a failed attach that leaves a half
 * made object. */
static void *pair_once(void *arg)
{
    void *b = mempool_get(arg);
    return b && mempool_put(arg, b) == 0 ? NULL : (void *)1;
}

static void barrier_and_alloc_failures(void)
{
    /* The owner's next call after the request: a get (round 0), or a put
     * of a block it holds (round 1); either hands the slot over. A pool
     * for each round: the child's slot is the only one. */
    for (int round = 0; round < 2; round++) {
        mempool *pool = cached_pool(32, 8);
        int fd = mempool_shm_fd(pool);
        int ready[2], go[2];
        REQUIRE(pipe(ready) == 0 && pipe(go) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            mempool *own = mempool_shm_open_fd(fd);
            void *b[9];
            int ok = own != NULL;
            for (int i = 0; ok && i < 9; i++)
                ok = (b[i] = mempool_get(own)) != NULL;
            for (int i = 0; ok && i < 8; i++)
                ok = mempool_put(own, b[i]) == 0; /* 8 in the slot, 1 held */
            char x = 'k';
            ok = write(ready[1], &x, 1) == 1 && ok;
            ok = read(go[0], &x, 1) == 1 && ok;
            if (round == 0) {
                void *one = own ? mempool_try_get(own) : NULL; /* sees the request */
                ok = (!one || mempool_put(own, one) == 0) && ok;
            }
            ok = own && mempool_put(own, b[8]) == 0 && ok; /* round 1: sees it here */
            ok = write(ready[1], &x, 1) == 1 && ok;
            ok = read(go[0], &x, 1) == 1 && ok;
            _exit(ok ? 0 : 1);
        }
        char x;
        REQUIRE(read(ready[0], &x, 1) == 1);
        /* How the child's slot was left: fence-free (0), or ordered (2, in
         * builds that run the ordered protocol), which a reclaimer may take
         * without the barrier. */
        uint32_t busy = only_slot_busy(fd);
        REQUIRE(busy == 0 || busy == 2);
        atomic_store(&mempool__fault_barrier, 1);
        void *all[32];
        size_t n = 0;
        for (void *b; (b = mempool_try_get(pool)) != NULL;)
            all[n++] = b;
        CHECK(busy == 0 ? n < 31 : n == 31); /* one block is held */
        atomic_store(&mempool__fault_barrier, 0);
        REQUIRE(write(go[1], "g", 1) == 1);
        REQUIRE(read(ready[0], &x, 1) == 1);
        for (void *b; n < 32 && (b = mempool_try_get(pool)) != NULL;)
            all[n++] = b;
        CHECK_EQ(n, 32);
        CHECK_EQ(mempool_put_bulk(pool, all, n), 0);
        REQUIRE(write(go[1], "g", 1) == 1);
        CHECK_EQ(reap(pid), 0);
        for (int i = 0; i < 2; i++) {
            close(ready[i]);
            close(go[i]);
        }
        mempool_destroy(pool);
    }
    mempool *pool = cached_pool(32, 8);
    for (long k = 1; k <= 3; k++) {
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, pair_once, pool) == 0);
        /* Armed after the thread exists: its own allocations fail. */
        atomic_store(&mempool__fault_countdown, k);
        void *rc;
        pthread_join(t, &rc);
        atomic_store(&mempool__fault_countdown, 0);
        CHECK(rc == NULL);
    }
    CHECK_EQ(mempool_recover(pool, 0, NULL), 0);
    CHECK_EQ(mempool_available(pool), 32);
    mempool_destroy(pool);
}

/* A reclaim whose barrier fails walks exactly the table's slots: the table
 * of 256 is followed by the magazines, whose first entries (slot 0's: block
 * indices 1, 2, 3, 4 in a fresh pool) would read as one more slot, idle,
 * with a count, and a flush of it would zero slot 0's fourth entry while
 * slot 0 keeps its blocks (its fence-free owner is skipped). Catches a walk
 * one slot too far, which loses that block for good. */
static void *drain_and_return(void *arg)
{
    mempool *pool = arg;
    void *all[64];
    size_t n = 0;
    for (void *b; n < 64 && (b = mempool_try_get(pool)) != NULL;)
        all[n++] = b;
    return mempool_put_bulk(pool, all, n) == 0 ? (void *)n : NULL;
}

static void reclaim_bounds(void)
{
    mempool *pool = cached_pool(64, 16);
    void *first = mempool_get(pool); /* block 0; slot 0 holds 1..8 */
    REQUIRE(first);
    atomic_store(&mempool__fault_barrier, 1);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, drain_and_return, pool) == 0);
    void *got;
    pthread_join(t, &got);
    atomic_store(&mempool__fault_barrier, 0);
    CHECK(got != NULL);
    CHECK_EQ(mempool_put(pool, first), 0);
    void *all[64];
    CHECK_EQ(mempool_get_bulk(pool, all, 64, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, all, 64), 0);
    CHECK_EQ(mempool_available(pool), 64);
    mempool_destroy(pool);
}

/* An attach whose barrier registration the kernel refuses (the hook
 * stands for it): that handle's caches run the ordered protocol, each
 * operation leaving the slot's busy word IDLE (2), so that a reclaimer
 * may take its blocks even where its own barrier fails. Catches an attach
 * that ignores the refusal (its fence-free slot would read 0 and strand
 * the blocks below), an ordered hit path that never serves, and one that
 * leaves its slot busy. */
static void ordered_attach(void)
{
    mempool *pool = cached_pool(32, 8);
    atomic_store(&mempool__fault_barrier, 1);
    mempool *own = mempool_shm_open_fd(mempool_shm_fd(pool));
    atomic_store(&mempool__fault_barrier, 0);
    REQUIRE(own);
    for (int i = 0; i < 1000; i++) {
        void *b = mempool_get(own);
        REQUIRE(b);
        CHECK_EQ(mempool_put(own, b), 0);
    }
    mempool_stats st;
    REQUIRE(mempool_stats_read(own, &st) == 0);
    CHECK(st.cache_misses <= 2);
    CHECK_EQ(st.cache_hits, st.gets - st.cache_misses);
    CHECK_EQ(only_slot_busy(mempool_shm_fd(pool)), 2);
    void *b[4];
    for (int i = 0; i < 4; i++)
        REQUIRE((b[i] = mempool_get(own)) != NULL);
    CHECK_EQ(mempool_put(own, b[0]), 0);
    CHECK_EQ(mempool_put(own, b[0]), EINVAL); /* cached: free */
    for (int i = 1; i < 4; i++)
        CHECK_EQ(mempool_put(own, b[i]), 0);
    /* Every block from the other handle with every barrier failing: the
     * ordered slot is taken all the same. */
    atomic_store(&mempool__fault_barrier, 1);
    void *all[32];
    size_t n = 0;
    for (void *x; n < 32 && (x = mempool_try_get(pool)) != NULL;)
        all[n++] = x;
    atomic_store(&mempool__fault_barrier, 0);
    CHECK_EQ(n, 32);
    CHECK_EQ(mempool_put_bulk(pool, all, n), 0);
    /* The owner, armed meanwhile, goes on through the lock and then its
     * slot again. */
    for (int i = 0; i < 100; i++) {
        void *x = mempool_get(own);
        REQUIRE(x);
        CHECK_EQ(mempool_put(own, x), 0);
    }
    CHECK_EQ(mempool_available(pool), 32);
    mempool_destroy(own);
    CHECK_EQ(mempool_available(pool), 32);
    mempool_destroy(pool);
}

int main(void)
{
    /* Children exit() (so that coverage counts them): nothing buffered
     * may be written twice. */
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
    long steps = sweep_script();
    printf("script: killed at each of %ld steps\n", steps - 1);
    CHECK(steps > 50);
    long rsteps = sweep_recover();
    printf("recovery: killed at each of %ld steps\n", rsteps - 1);
    CHECK(rsteps > 10);
    long csteps = sweep_close();
    printf("close: killed at each of %ld steps\n", csteps - 1);
    CHECK(csteps > 3);
    fail_allocations();
    barrier_and_alloc_failures();
    ordered_attach();
    reclaim_bounds();
    soak(check_scale());
    CHECK_DONE();
}
