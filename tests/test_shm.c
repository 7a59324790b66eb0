/* SPDX-License-Identifier: MIT */
/* Shared pools: one pool used by several processes. Each test forks the
 * processes it needs; a child reports through its exit status (0: all its
 * checks held) or through a pipe. */
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shm_layout.h"

static mempool_config config_of(size_t capacity, size_t block_size)
{
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = capacity;
    c.block_size = block_size;
    return c;
}

static mempool *anon_pool(size_t capacity, size_t block_size)
{
    mempool_config c = config_of(capacity, block_size);
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    REQUIRE(pool);
    return pool;
}

/* Waits for a child: its exit status, or 128 + the signal that killed it. */
static int reap(pid_t pid)
{
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Polls until the pool's waits counter reaches n (a child is asleep). */
static void wait_for_waits(mempool *pool, uint64_t n)
{
    for (int i = 0; i < 5000; i++) {
        mempool_stats st;
        mempool_stats_read(pool, &st);
        if (st.waits >= n)
            return;
        check_sleep_ns(1000000);
    }
    REQUIRE(!"a child never slept");
}

/* The calls a private pool answers, answered the same for a shared one:
 * catches a shared path that skips validation or all-or-nothing. */
static void test_single_process(void)
{
    mempool *pool = anon_pool(8, 48);
    CHECK_EQ(mempool_capacity(pool), 8);
    CHECK_EQ(mempool_available(pool), 8);
    CHECK_EQ(mempool_block_size(pool), 48);
    CHECK(mempool_shm_fd(pool) >= 0);
    void *b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = mempool_try_get(pool);
        REQUIRE(b[i]);
        CHECK(mempool_owns(pool, b[i]));
        CHECK_EQ(mempool_block(pool, mempool_index(pool, b[i])), b[i]);
        memset(b[i], i, 48);
    }
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL && errno == EAGAIN);
    CHECK(mempool_get_timeout(pool, 20000000) == NULL && errno == ETIMEDOUT);
    CHECK_EQ(mempool_available(pool), 0);
    CHECK_EQ(mempool_put(pool, b[0]), 0);
    CHECK_EQ(mempool_put(pool, b[0]), EINVAL);           /* repeated */
    CHECK_EQ(mempool_put(pool, (char *)b[1] + 1), EINVAL); /* interior */
    CHECK_EQ(mempool_put(pool, NULL), EINVAL);
    int local;
    CHECK_EQ(mempool_put(pool, &local), EINVAL); /* foreign */
    /* Bulk: a repeat inside the array refuses the whole call. */
    void *twice[3] = { b[1], b[2], b[1] };
    CHECK_EQ(mempool_put_bulk(pool, twice, 3), EINVAL);
    CHECK_EQ(mempool_available(pool), 1);
    CHECK_EQ(mempool_put_bulk(pool, b + 1, 7), 0);
    CHECK_EQ(mempool_available(pool), 8);
    void *all[9];
    CHECK_EQ(mempool_get_bulk(pool, all, 9, 0), EINVAL); /* more than the capacity */
    CHECK_EQ(mempool_get_bulk(pool, all, 8, 0), 0);
    CHECK_EQ(mempool_get_bulk(pool, all + 8, 1, 0), EAGAIN);
    CHECK_EQ(mempool_put_bulk(pool, all, 8), 0);
    mempool_stats st;
    CHECK_EQ(mempool_stats_read(pool, &st), 0);
    CHECK_EQ(st.gets, 16);
    CHECK_EQ(st.puts, 16);
    CHECK_EQ(st.timeouts, 1);
    CHECK(st.refused_puts >= 5);
    CHECK_EQ(st.out_high, 8);
    mempool_arena_info a;
    CHECK_EQ(mempool_arena(pool, &a), 0);
    CHECK_EQ(a.stride, 48);
    CHECK_EQ(mempool_recover(pool, 0, NULL), 0);
    CHECK_EQ(mempool_recover(pool, 2, NULL), EINVAL);
    CHECK_EQ(mempool_drain(pool, 0), 0);
    mempool_close(pool);
    CHECK(mempool_get(pool) == NULL && errno == ECANCELED);
    mempool_destroy(pool);

    /* Calls that need a shared pool refuse a private one. */
    mempool_config c = config_of(4, 16);
    mempool *priv = mempool_create(&c);
    REQUIRE(priv);
    errno = 0;
    CHECK(mempool_shm_fd(priv) == -1 && errno == EINVAL);
    CHECK_EQ(mempool_recover(priv, 0, NULL), EINVAL);
    CHECK(mempool_shm_give(priv, mempool_get(priv)) == 0 && errno == EINVAL);
    mempool_destroy(priv);
}

static void count_init(void *block, void *arg);

static void *make_nothing(void *arg)
{
    return arg;
}

/* What create refuses: catches a config check that lets through a mode
 * whose process-local parts cannot be shared. */
static void test_config(void)
{
    mempool_config c = config_of(4, 16);
    CHECK(mempool_shm_create(NULL, NULL, 0) == NULL && errno == EINVAL);
    c.flags = MEMPOOL_CHECKED;
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EINVAL);
    c.flags = MEMPOOL_NUMA;
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EINVAL);
    c.flags = 0;
    c.alignment = 3;
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EINVAL);
    c.alignment = 0;
    c.block_size = 0;
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EINVAL);
    c.block_size = (size_t)PTRDIFF_MAX;
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EOVERFLOW);
    c.block_size = 16;
    CHECK(mempool_shm_create("noslash", &c, 0) == NULL && errno == EINVAL);
    CHECK(mempool_shm_create("/a/b", &c, 0) == NULL && errno == EINVAL);
    CHECK(mempool_shm_open("/") == NULL && errno == EINVAL);
    CHECK(mempool_shm_open_fd(-1) == NULL && errno == EINVAL);
    /* Descriptor 0 is a descriptor like any other: a segment there opens. */
    {
        mempool *seg0 = mempool_shm_create(NULL, &c, 0);
        REQUIRE(seg0);
        int saved = dup(0);
        REQUIRE(saved >= 0 && dup2(mempool_shm_fd(seg0), 0) == 0);
        mempool *peer = mempool_shm_open_fd(0);
        CHECK(peer != NULL);
        mempool_destroy(peer);
        /* And with descriptor 0 free, the pool's own copies may land there. */
        close(0);
        peer = mempool_shm_open_fd(mempool_shm_fd(seg0));
        CHECK(peer != NULL);
        mempool_destroy(peer);
        /* A named segment opened by name may land there too. */
        char name[64];
        snprintf(name, sizeof name, "/mempool-test-fd0-%ld", (long)getpid());
        mempool *named = mempool_shm_create(name, &c, 0);
        CHECK(named != NULL);
        close(0);
        peer = mempool_shm_open(name);
        CHECK(peer != NULL);
        void *b = peer ? mempool_get(peer) : NULL;
        CHECK(b != NULL && mempool_put(peer, b) == 0);
        mempool_destroy(peer);
        mempool_destroy(named);
        CHECK_EQ(mempool_shm_unlink(name), 0);
        REQUIRE(dup2(saved, 0) == 0);
        close(saved);
        mempool_destroy(seg0);
    }
    CHECK_EQ(mempool_shm_unlink("x"), EINVAL);
    c.block_size = SIZE_MAX;
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EOVERFLOW);
    /* Every field a shared pool cannot have, one at a time. */
    static int region[64];
    for (int field = 0; field < 9; field++) {
        mempool_config bad = config_of(4, 16);
        switch (field) {
        case 0: bad.capacity = 0; break;
        case 1: bad.capacity = MEMPOOL_CAPACITY_MAX + 1; break;
        case 2: bad.unmake = (void (*)(void *, void *))count_init; break;
        case 3: bad.memory = region; break;
        case 4: bad.memory_size = sizeof region; break;
        case 5: bad.fini = count_init; break;
        case 6: bad.numa_node = 1; break;
        case 7: bad.flags = 1u << 20; break;
        default: bad.flags = MEMPOOL_LAZY; break;
        }
        errno = 0;
        CHECK(mempool_shm_create(NULL, &bad, 0) == NULL && errno == EINVAL);
    }
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[0] = '/';
    longname[sizeof longname - 1] = 0;
    CHECK(mempool_shm_create(longname, &c, 0) == NULL && errno == EINVAL);
    CHECK(mempool_shm_open(NULL) == NULL && errno == EINVAL);
    CHECK_EQ(mempool_shm_unlink(NULL), EINVAL);
    CHECK(mempool_shm_fd(NULL) == -1 && errno == EINVAL);
    CHECK_EQ(mempool_recover(NULL, 0, NULL), EINVAL);
    c.block_size = 16;
    c.alignment = 8192; /* more than a mapping at any page keeps */
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EINVAL);
    c.alignment = 0;
    c.make = make_nothing;
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EINVAL);
    c.make = NULL;
    CHECK(mempool_shm_create("/mempool-test-mode", &c, 010000) == NULL && errno == EINVAL);
    CHECK(mempool_shm_open_fd(999) == NULL && errno == EINVAL);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(mempool_shm_open_fd(p[0]) == NULL && errno == EPROTO); /* not a file */
    close(p[0]);
    close(p[1]);
    c.flags = MEMPOOL_NO_CACHE;
    c.cache_size = 8;
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EINVAL);
    c.cache_size = 0;
    c.capacity = 4;
    c.block_size = ((size_t)PTRDIFF_MAX / 2) & ~(size_t)4095; /* 4 strides: too many */
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EOVERFLOW);
    c.capacity = 2; /* the arena fits, the segment around it does not */
    CHECK(mempool_shm_create(NULL, &c, 0) == NULL && errno == EOVERFLOW);
    c.capacity = 1024;
    c.block_size = 64;
    c.flags = MEMPOOL_HUGEPAGES;
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    CHECK(pool != NULL);
    void *none[1];
    CHECK_EQ(mempool_get_bulk(pool, NULL, 1, 0), EINVAL);
    CHECK_EQ(mempool_get_bulk(pool, none, 0, 0), 0);
    CHECK_EQ(mempool_put_bulk(pool, none, 0), 0);
    void *b = mempool_get(pool);
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_stats st;
    CHECK_EQ(mempool_stats_reset(pool), 0);
    CHECK_EQ(mempool_stats_read(pool, &st), 0);
    CHECK_EQ(st.gets, 0);
    CHECK_EQ(st.out_high, 0);
    /* A descriptor without write access cannot attach. */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", mempool_shm_fd(pool));
    int ro = open(path, O_RDONLY);
    REQUIRE(ro >= 0);
    CHECK(mempool_shm_open_fd(ro) == NULL && errno == EACCES);
    close(ro);
    int wo = open(path, O_WRONLY);
    REQUIRE(wo >= 0);
    CHECK(mempool_shm_open_fd(wo) == NULL && errno == EACCES); /* cannot read the header */
    close(wo);
    mempool_destroy(pool);
}

/* Nobody calls mempool_recover: a get about to sleep and a drain waiting
 * for blocks find the dead holder themselves. */
static void test_recovery_unasked(void)
{
    mempool *pool = anon_pool(4, 16);
    int fd = mempool_shm_fd(pool);
    for (int round = 0; round < 2; round++) {
        int ready[2];
        REQUIRE(pipe(ready) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            mempool *child = mempool_shm_open_fd(fd);
            void *b[4];
            char c = child && mempool_get_bulk(child, b, 4, 0) == 0 ? 'y' : 'n';
            if (write(ready[1], &c, 1) != 1)
                exit(1);
            pause();
            exit(0);
        }
        char c = 0;
        CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
        kill(pid, SIGKILL);
        CHECK_EQ(reap(pid), 128 + SIGKILL);
        if (round == 0) {
            void *b = mempool_get_timeout(pool, 2000000000);
            CHECK(b != NULL);
            CHECK_EQ(mempool_put(pool, b), 0);
        } else {
            CHECK_EQ(mempool_drain(pool, 2000000000), 0);
        }
        CHECK_EQ(mempool_available(pool), 4);
        close(ready[0]);
        close(ready[1]);
    }
    mempool_destroy(pool);
}

struct bulk_wait {
    mempool *pool;
    int rc;
};

static void *bulk_waiter(void *arg)
{
    struct bulk_wait *w = arg;
    void *b[3];
    w->rc = mempool_get_bulk(w->pool, b, 3, 5000000000);
    return NULL;
}

/* A waiter's list of granted blocks broken by a peer: the get gives back
 * what it could collect and fails with EPROTO instead of handing out a
 * block it cannot account for; a repair returns the lost one. */
static void test_broken_grant(void)
{
    mempool *pool = anon_pool(4, 64);
    int fd = mempool_shm_fd(pool);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    unsigned char *seg = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(seg != MAP_FAILED);
    uint64_t owners_offset;
    memcpy(&owners_offset, seg + 96, 8); /* src/shm.h's header layout */
    _Atomic uint64_t *owners = (_Atomic uint64_t *)(seg + owners_offset);
    void *all[4];
    REQUIRE(mempool_get_bulk(pool, all, 4, 0) == 0);
    struct bulk_wait w = { pool, -1 };
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, bulk_waiter, &w) == 0);
    wait_for_waits(pool, 1);
    CHECK_EQ(mempool_put(pool, all[0]), 0);
    /* Granted to waiter slot 1023 instead (kind GRANTED = 3). */
    atomic_store(&owners[mempool_index(pool, all[0])], (uint64_t)1023 << 2 | 3);
    CHECK_EQ(mempool_put_bulk(pool, all + 1, 2), 0);
    pthread_join(t, NULL);
    CHECK_EQ(w.rc, EPROTO);
    CHECK_EQ(mempool_available(pool), 2);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r), 0);
    CHECK_EQ(r.blocks, 1);
    CHECK_EQ(mempool_put(pool, all[3]), 0);
    CHECK_EQ(mempool_available(pool), 4);
    munmap(seg, (size_t)st.st_size);
    mempool_destroy(pool);
}

/* Processes and threads contending for the segment's lock at once, each
 * doing gets and puts: the counts come out exact. Catches a lock that lets
 * two holders in (a block handed out twice, a count lost). */
static void *hammer(void *arg)
{
    mempool *pool = arg;
    for (int i = 0; i < 20000; i++) {
        void *b[2];
        if (mempool_get_bulk(pool, b, 2, 1000000000) != 0 || mempool_put_bulk(pool, b, 2) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_contention(void)
{
    mempool *pool = anon_pool(6, 16);
    int fd = mempool_shm_fd(pool);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        REQUIRE(kids[k] >= 0);
        if (kids[k] == 0) {
            mempool *child = mempool_shm_open_fd(fd);
            void *rc = child ? hammer(child) : (void *)1;
            mempool_destroy(child);
            exit(rc ? 1 : 0);
        }
    }
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, hammer, pool) == 0);
    void *rc = hammer(pool);
    void *trc;
    pthread_join(t, &trc);
    CHECK(rc == NULL && trc == NULL);
    for (int k = 0; k < 2; k++)
        CHECK_EQ(reap(kids[k]), 0);
    mempool_stats st;
    CHECK_EQ(mempool_stats_read(pool, &st), 0);
    CHECK_EQ(st.gets, 4 * 40000);
    CHECK_EQ(st.puts, 4 * 40000);
    CHECK_EQ(mempool_available(pool), 6);
    mempool_destroy(pool);
}

/* Waiters that give up in another order than they queued: one leaves from
 * the middle of the queue, and a bulk one leaves with part of its blocks
 * granted, which go to the next waiter. */
struct timed {
    mempool *pool;
    size_t n;
    int64_t timeout;
    int rc;
};

static void *timed_get(void *arg)
{
    struct timed *t = arg;
    void *b[4];
    t->rc = mempool_get_bulk(t->pool, b, t->n, t->timeout);
    if (t->rc == 0)
        mempool_put_bulk(t->pool, b, t->n);
    return NULL;
}

static void test_timeouts_in_queue(void)
{
    mempool *pool = anon_pool(4, 16);
    void *all[4];
    REQUIRE(mempool_get_bulk(pool, all, 4, 0) == 0);
    struct timed first = { pool, 3, 500000000, -1 }, middle = { pool, 1, 100000000, -1 },
                 last = { pool, 1, 3000000000, -1 };
    pthread_t t1, t2, t3;
    REQUIRE(pthread_create(&t1, NULL, timed_get, &first) == 0);
    wait_for_waits(pool, 1);
    REQUIRE(pthread_create(&t2, NULL, timed_get, &middle) == 0);
    wait_for_waits(pool, 2);
    REQUIRE(pthread_create(&t3, NULL, timed_get, &last) == 0);
    wait_for_waits(pool, 3);
    pthread_join(t2, NULL); /* gives up from the middle */
    CHECK_EQ(middle.rc, ETIMEDOUT);
    CHECK_EQ(mempool_put(pool, all[0]), 0); /* granted to the bulk waiter */
    CHECK_EQ(mempool_put(pool, all[1]), 0);
    CHECK_EQ(mempool_available(pool), 2);
    /* The bulk waiter (3 blocks, 2 granted) gives up: its two go on. */
    pthread_join(t1, NULL);
    CHECK_EQ(first.rc, ETIMEDOUT);
    pthread_join(t3, NULL);
    CHECK_EQ(last.rc, 0);
    /* Nothing granted is left counted: two out, two free. */
    CHECK_EQ(mempool_available(pool), 2);
    CHECK_EQ(mempool_put_bulk(pool, all + 2, 2), 0);
    CHECK_EQ(mempool_available(pool), 4);
    mempool_destroy(pool);
}

/* A named segment whose creator has not written the magic yet: an open by
 * name waits a while for it, then refuses it. */
static void test_unready_named(void)
{
    char name[64];
    snprintf(name, sizeof name, "/mempool-test-unready-%ld", (long)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, 1 << 20) == 0);
    int64_t t0 = check_now_ns();
    /* The caller's errno says EINTR: the naps between looks must not take
     * it for an interrupted one and sleep again for ever. */
    errno = EINTR;
    CHECK(mempool_shm_open(name) == NULL && errno == EPROTO);
    CHECK(check_now_ns() - t0 > 500000000);
    close(fd);
    CHECK_EQ(mempool_shm_unlink(name), 0);
}

/* A bulk get for more than is free queues, and the blocks that are free
 * are granted to it at once: puts of the rest complete it. Catches a queued
 * bulk get that only ever receives blocks put after it queued (it waited
 * for ever with blocks free, and everyone behind it too). */
static void test_bulk_queues_with_free(void)
{
    mempool *pool = anon_pool(4, 16);
    void *two[2];
    REQUIRE(mempool_get_bulk(pool, two, 2, 0) == 0);
    struct bulk_wait w = { pool, -1 };
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, bulk_waiter, &w) == 0); /* 3 of 4, 2 free */
    wait_for_waits(pool, 1);
    CHECK_EQ(mempool_put(pool, two[0]), 0);
    pthread_join(t, NULL);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(mempool_put(pool, two[1]), 0);
    CHECK_EQ(mempool_available(pool), 1); /* the waiter's 3 are out */
    mempool_destroy(pool);
}

static void *sleeping_get(void *arg);

/* Waiter slots a peer scribbled on: a sleeping get whose wanted count was
 * raised still writes only its own array; a queue made into a cycle does
 * not hang a close. */
static void test_hostile_waiters(void)
{
    mempool *pool = anon_pool(8, 16);
    int fd = mempool_shm_fd(pool);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    unsigned char *seg = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(seg != MAP_FAILED);
    uint64_t state_offset, waiters_offset;
    memcpy(&state_offset, seg + 72, 8); /* src/shm.h's header and slot layouts */
    memcpy(&waiters_offset, seg + 88, 8);
    void *all[8];
    REQUIRE(mempool_get_bulk(pool, all, 8, 0) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, sleeping_get, pool) == 0); /* wants 1 */
    wait_for_waits(pool, 1);
    _Atomic uint32_t *first = (_Atomic uint32_t *)(seg + state_offset + 12);
    uint32_t w = atomic_load(first);
    REQUIRE(w < 1024);
    _Atomic uint32_t *need = (_Atomic uint32_t *)(seg + waiters_offset + (size_t)w * 64 + 16);
    atomic_store(need, 5);
    CHECK_EQ(mempool_put_bulk(pool, all, 5), 0); /* all five granted to it */
    void *got;
    pthread_join(t, &got);
    CHECK(got != NULL);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r), 0);
    CHECK_EQ(r.blocks, 4); /* the four it did not take */
    CHECK_EQ(mempool_put(pool, got), 0);
    CHECK_EQ(mempool_put_bulk(pool, all + 5, 3), 0);
    CHECK_EQ(mempool_available(pool), 8);
    /* A sleeping waiter's state scribbled to a value no waiter has, its
     * futex woken: the get fails with EPROTO (nothing was granted to it)
     * and the pool goes on whole. Catches a get that reports a scribbled
     * state as a close, or takes blocks it was not granted. */
    REQUIRE(mempool_get_bulk(pool, all, 8, 0) == 0);
    struct timed lost = { .pool = pool, .n = 1, .timeout = 10000000000 };
    REQUIRE(pthread_create(&t, NULL, timed_get, &lost) == 0);
    wait_for_waits(pool, 2);
    w = atomic_load(first);
    REQUIRE(w < 1024);
    _Atomic uint32_t *state = (_Atomic uint32_t *)(seg + waiters_offset + (size_t)w * 64);
    atomic_store(state, 9);
    syscall(SYS_futex, state, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
    pthread_join(t, NULL);
    CHECK_EQ(lost.rc, EPROTO);
    CHECK_EQ(mempool_put_bulk(pool, all, 8), 0);
    CHECK_EQ(mempool_recover(pool, 0, NULL), 0);
    CHECK_EQ(mempool_available(pool), 8);
    /* The lock word naming this very process while none of its threads
     * holds it (a peer wrote it): the next locker takes it over after a
     * slice instead of waiting for itself for ever. The id is the slot's
     * index and generation (src/shm.h's PROC_ID). */
    atomic_store((_Atomic uint32_t *)(seg + state_offset), our_process_id(seg) + 1);
    void *one = mempool_try_get(pool);
    CHECK(one != NULL);
    CHECK_EQ(mempool_put(pool, one), 0);
    CHECK_EQ(mempool_available(pool), 8);
    /* A one-slot cycle posing as a queued waiter. */
    _Atomic uint32_t *slot = (_Atomic uint32_t *)(seg + waiters_offset + 7 * 64);
    atomic_store(&slot[0], 1);  /* WAITING */
    atomic_store(&slot[7], 7);  /* after: itself */
    atomic_store(first, 7);
    mempool_close(pool);
    errno = 0;
    CHECK(mempool_try_get(pool) == NULL && errno == ECANCELED);
    CHECK_EQ(mempool_available(pool), 8);
    munmap(seg, (size_t)st.st_size);
    mempool_destroy(pool);
}

/* A queue that emptied and fills again: the second waiter is queued as the
 * first one, so the next put reaches it and a get does not pass it.
 * Catches a queue whose last entry outlives the queue (the new waiter would
 * hang behind a departed one, unreachable). */
static void test_queue_refills(void)
{
    mempool *pool = anon_pool(1, 16);
    void *b = mempool_get(pool);
    REQUIRE(b);
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, sleeping_get, pool) == 0);
        wait_for_waits(pool, (uint64_t)round + 1);
        CHECK_EQ(mempool_put(pool, b), 0);
        errno = 0;
        void *passed = mempool_try_get(pool);
        CHECK(passed == NULL && errno == EAGAIN);
        if (passed)
            CHECK_EQ(mempool_put(pool, passed), 0);
        pthread_join(t, &b);
        REQUIRE(b);
    }
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);
}

/* Detach looks at exactly the pool's block words. The word after the last
 * one is the first link of the free list; links that happen to read as a
 * block held by the detaching process (513 is "out, held by id 128", the
 * creator's) must not be taken for one. Catches a scan one word too far,
 * which would free a block that does not exist. */
static void test_detach_bounds(void)
{
    enum { CAP = 1024 };
    mempool_config c = config_of(CAP, 16);
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    REQUIRE(pool);
    static void *all[CAP];
    REQUIRE(mempool_get_bulk(pool, all, CAP, 0) == 0);
    for (size_t i = 0; i < CAP; i++)
        REQUIRE(mempool_index(pool, all[i]) == i);
    /* Block 0's link names block 513: put 513, then 0 on top of it. */
    for (size_t i = CAP; i-- > 0;)
        if (i != 0 && i != 513)
            REQUIRE(mempool_put(pool, all[i]) == 0);
    REQUIRE(mempool_put(pool, all[513]) == 0);
    REQUIRE(mempool_put(pool, all[0]) == 0);
    mempool *other = mempool_shm_open_fd(mempool_shm_fd(pool));
    REQUIRE(other);
    void *held = mempool_try_get(other);
    CHECK(held != NULL);
    mempool_destroy(pool);
    CHECK_EQ(mempool_available(other), CAP - 1);
    static void *rest[CAP];
    CHECK_EQ(mempool_get_bulk(other, rest, CAP - 1, 0), 0);
    CHECK(mempool_try_get(other) == NULL && errno == EAGAIN);
    CHECK_EQ(mempool_put_bulk(other, rest, CAP - 1), 0);
    CHECK_EQ(mempool_put(other, held), 0);
    mempool_destroy(other);
}

/* drain across processes: it returns once another process has put the
 * last block back, and times out while one is out. */
static void test_drain(void)
{
    mempool *pool = anon_pool(4, 16);
    void *b = mempool_get(pool);
    CHECK_EQ(mempool_drain(pool, 5000000), ETIMEDOUT);
    int fd = mempool_shm_fd(pool);
    size_t index = mempool_index(pool, b);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *child = mempool_shm_open_fd(fd);
        check_sleep_ns(20000000);
        int rc = child ? mempool_put(child, mempool_block(child, index)) : -1;
        mempool_destroy(child);
        exit(rc == 0 ? 0 : 1);
    }
    CHECK_EQ(mempool_drain(pool, 5000000000), 0);
    CHECK_EQ(reap(pid), 0);
    CHECK_EQ(mempool_available(pool), 4);
    mempool_destroy(pool);
}

static void count_init(void *block, void *arg)
{
    memset(block, 0x5A, 16);
    (*(int *)arg)++;
}

static void test_init_and_alignment(void)
{
    int inits = 0;
    mempool_config c = config_of(10, 16);
    c.init = count_init;
    c.arg = &inits;
    c.alignment = 256;
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    REQUIRE(pool);
    CHECK_EQ(inits, 10);
    unsigned char *b = mempool_get(pool);
    CHECK(((uintptr_t)b & 255) == 0);
    CHECK_EQ(b[15], 0x5A);
    mempool_put(pool, b);
    mempool_destroy(pool);
}

/* Named segments: exclusive create, the exact mode, open by name, unlink.
 * Catches a create that would attach to a squatter's object. */
static void test_named(void)
{
    char name[64];
    snprintf(name, sizeof name, "/mempool-test-%ld", (long)getpid());
    mempool_shm_unlink(name);
    mempool_config c = config_of(4, 32);
    mode_t old = umask(077);
    mempool *pool = mempool_shm_create(name, &c, 0644);
    umask(old);
    REQUIRE(pool);
    struct stat st;
    CHECK_EQ(fstat(mempool_shm_fd(pool), &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0644); /* not masked by the umask */
    CHECK(mempool_shm_create(name, &c, 0) == NULL && errno == EEXIST);
    void *held = mempool_get(pool);
    mempool *again = mempool_shm_open(name);
    REQUIRE(again);
    CHECK_EQ(mempool_available(again), 3);
    /* One block, two mappings: the same index everywhere. */
    size_t index = mempool_index(pool, held);
    CHECK_EQ(mempool_put(again, mempool_block(again, index)), 0);
    CHECK_EQ(mempool_available(pool), 4);
    /* A descriptor the header cannot be read through (write-only): the
     * caller may not read the segment, EACCES. Catches an open that
     * reports a permission problem as a corrupt segment. */
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    int wronly = open(path, O_WRONLY | O_CLOEXEC);
    if (wronly >= 0) {
        CHECK(mempool_shm_open_fd(wronly) == NULL && errno == EACCES);
        close(wronly);
    }
    CHECK_EQ(mempool_shm_unlink(name), 0);
    CHECK_EQ(mempool_shm_unlink(name), ENOENT);
    CHECK(mempool_shm_open(name) == NULL && errno == ENOENT);
    /* Still usable after the name is gone. */
    void *b = mempool_get(again);
    CHECK(b != NULL);
    CHECK_EQ(mempool_put(pool, mempool_block(pool, mempool_index(again, b))), 0);
    mempool_destroy(again);
    mempool_destroy(pool);
}

/* A child that attaches, takes `hold` blocks, tells the parent, and then is
 * killed: recovery returns exactly its blocks. Catches a recovery that
 * misses a dead holder or frees a live one's blocks. */
static void test_killed_holder(void)
{
    mempool *pool = anon_pool(64, 32);
    void *mine = mempool_get(pool);
    int fd = mempool_shm_fd(pool);
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *child = mempool_shm_open_fd(fd);
        void *b[10];
        int ok = child && mempool_get_bulk(child, b, 10, 0) == 0;
        char c = ok ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            exit(2);
        pause();
        exit(0);
    }
    char c = 0;
    CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
    CHECK_EQ(mempool_available(pool), 53);
    kill(pid, SIGKILL);
    CHECK_EQ(reap(pid), 128 + SIGKILL);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(r.processes, 1);
    CHECK_EQ(r.blocks, 10);
    CHECK_EQ(mempool_available(pool), 63);
    CHECK_EQ(mempool_recover(pool, 0, &r), 0); /* idempotent */
    CHECK_EQ(r.processes, 0);
    CHECK_EQ(r.blocks, 0);
    CHECK(mempool_owns(pool, mine));
    CHECK_EQ(mempool_put(pool, mine), 0);
    close(ready[0]);
    close(ready[1]);
    mempool_destroy(pool);
}

/* A zombie (exited, not reaped) counts as dead. Catches liveness judged by
 * kill(pid, 0), which a zombie passes. */
static void test_zombie(void)
{
    mempool *pool = anon_pool(16, 32);
    int fd = mempool_shm_fd(pool);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *child = mempool_shm_open_fd(fd);
        void *b[4];
        /* Exits holding them, not detached: _exit, or a leak checker's
         * report at exit would change the status. */
        _exit(child && mempool_get_bulk(child, b, 4, 0) == 0 ? 0 : 1);
    }
    /* Wait for it to exit without reaping it. */
    siginfo_t info;
    REQUIRE(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) == 0);
    CHECK_EQ(info.si_status, 0);
    CHECK_EQ(kill(pid, 0), 0); /* still there as a zombie */
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(r.processes, 1);
    CHECK_EQ(r.blocks, 4);
    CHECK_EQ(mempool_available(pool), 16);
    CHECK_EQ(reap(pid), 0);
    mempool_destroy(pool);
}

/* A new process that gets a dead participant's pid is not it: recovery
 * still returns the dead one's blocks. Needs root (ns_last_pid picks the
 * next pid); skipped otherwise. */
static void test_pid_reuse(void)
{
    mempool *pool = anon_pool(8, 16);
    int fd = mempool_shm_fd(pool);
    bool reused = false;
    for (int attempt = 0; attempt < 5 && !reused; attempt++) {
        int ready[2];
        REQUIRE(pipe(ready) == 0);
        pid_t dead = fork();
        REQUIRE(dead >= 0);
        if (dead == 0) {
            mempool *child = mempool_shm_open_fd(fd);
            void *b[3];
            char c = child && mempool_get_bulk(child, b, 3, 0) == 0 ? 'y' : 'n';
            if (write(ready[1], &c, 1) != 1)
                exit(1);
            pause();
            exit(0);
        }
        char c = 0;
        CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
        kill(dead, SIGKILL);
        CHECK_EQ(reap(dead), 128 + SIGKILL);
        close(ready[0]);
        close(ready[1]);
        FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
        if (!f || fprintf(f, "%ld", (long)dead - 1) < 0 || fclose(f) != 0) {
            printf("pid reuse: skipped (ns_last_pid is not writable)\n");
            mempool_recover(pool, 0, NULL);
            break;
        }
        int go[2];
        REQUIRE(pipe(go) == 0);
        pid_t newcomer = fork();
        REQUIRE(newcomer >= 0);
        if (newcomer == 0) {
            close(go[1]);
            char x;
            exit(read(go[0], &x, 1) == 0 ? 0 : 1);
        }
        close(go[0]);
        mempool_recovery r;
        CHECK_EQ(mempool_recover(pool, 0, &r), 0);
        if (newcomer == dead) {
            reused = true;
            CHECK_EQ(kill(newcomer, 0), 0); /* alive, with the dead one's pid */
            CHECK_EQ(r.processes, 1);
            CHECK_EQ(r.blocks, 3);
            printf("pid reuse: pid %ld reused, its dead holder's blocks recovered\n", (long)dead);
        }
        close(go[1]);
        CHECK_EQ(reap(newcomer), 0);
    }
    CHECK_EQ(mempool_available(pool), 8);
    mempool_destroy(pool);
}

/* A get that sleeps in one process is woken by a put in another, and the
 * waiters of several processes are served oldest first. Catches private
 * futexes (never woken across processes) and a queue out of order. */
static void test_fifo_across_processes(void)
{
    enum { KIDS = 4 };
    mempool *pool = anon_pool(4, 64);
    void *all[4];
    REQUIRE(mempool_get_bulk(pool, all, 4, 0) == 0);
    int fd = mempool_shm_fd(pool);
    int order[2], release[2];
    REQUIRE(pipe(order) == 0 && pipe(release) == 0);
    pid_t kids[KIDS];
    for (int k = 0; k < KIDS; k++) {
        kids[k] = fork();
        REQUIRE(kids[k] >= 0);
        if (kids[k] == 0) {
            mempool *child = mempool_shm_open_fd(fd);
            void *b = child ? mempool_get(child) : NULL; /* no deadline */
            char c = (char)('0' + k);
            if (!b || write(order[1], &c, 1) != 1)
                exit(1);
            /* Keep the block until the parent has seen every child served:
             * one given back earlier would serve the next waiter. */
            close(release[1]);
            if (read(release[0], &c, 1) != 0)
                exit(1);
            mempool_destroy(child);
            exit(0);
        }
        wait_for_waits(pool, (uint64_t)k + 1);
    }
    for (int k = 0; k < KIDS; k++) {
        CHECK_EQ(mempool_put(pool, all[k]), 0);
        char c = 0;
        CHECK(read(order[0], &c, 1) == 1);
        CHECK_EQ(c, '0' + k);
    }
    close(release[1]);
    for (int k = 0; k < KIDS; k++)
        CHECK_EQ(reap(kids[k]), 0);
    /* Each child's destroy gave its block back. */
    CHECK_EQ(mempool_available(pool), 4);
    close(order[0]);
    close(order[1]);
    close(release[0]);
    mempool_destroy(pool);
}

/* A waiter that is killed while first in the queue does not keep the next
 * live waiter from the block put after its death, within a second and with
 * nobody calling mempool_recover. */
static void test_killed_waiter(void)
{
    mempool *pool = anon_pool(2, 64);
    void *all[2];
    REQUIRE(mempool_get_bulk(pool, all, 2, 0) == 0);
    int fd = mempool_shm_fd(pool);
    pid_t first = fork();
    REQUIRE(first >= 0);
    if (first == 0) {
        mempool *child = mempool_shm_open_fd(fd);
        mempool_get(child);
        exit(0);
    }
    wait_for_waits(pool, 1);
    int done[2];
    REQUIRE(pipe(done) == 0);
    pid_t second = fork();
    REQUIRE(second >= 0);
    if (second == 0) {
        mempool *child = mempool_shm_open_fd(fd);
        void *b = mempool_get_timeout(child, 5000000000);
        int64_t at = check_now_ns();
        if (!b || write(done[1], &at, sizeof at) != sizeof at)
            exit(1);
        mempool_put(child, b);
        mempool_destroy(child);
        exit(0);
    }
    wait_for_waits(pool, 2);
    kill(first, SIGKILL);
    CHECK_EQ(reap(first), 128 + SIGKILL);
    int64_t put_at = check_now_ns();
    CHECK_EQ(mempool_put(pool, all[0]), 0);
    int64_t got_at = 0;
    CHECK(read(done[0], &got_at, sizeof got_at) == sizeof got_at);
    CHECK(got_at - put_at < 1000000000);
    CHECK_EQ(reap(second), 0);
    CHECK_EQ(mempool_put(pool, all[1]), 0);
    CHECK_EQ(mempool_available(pool), 2);
    close(done[0]);
    close(done[1]);
    mempool_destroy(pool);
}

/* Close in one process wakes the waiters of every process with ECANCELED. */
static void test_close_across_processes(void)
{
    mempool *pool = anon_pool(1, 64);
    void *b = mempool_get(pool);
    int fd = mempool_shm_fd(pool);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *child = mempool_shm_open_fd(fd);
        errno = 0;
        void *got = mempool_get_timeout(child, INT64_MAX - 1); /* as good as forever */
        int ok = got == NULL && errno == ECANCELED;
        mempool_destroy(child);
        exit(ok ? 0 : 1);
    }
    wait_for_waits(pool, 1);
    mempool_close(pool);
    CHECK_EQ(reap(pid), 0);
    CHECK_EQ(mempool_put(pool, b), 0); /* puts still land after close */
    CHECK_EQ(mempool_available(pool), 1);
    mempool_destroy(pool);
}

/* give and take: a block in transit survives its giver's death, a handle
 * works once, and MEMPOOL_RECOVER_TRANSIT returns what nobody took. */
static void test_give_take(void)
{
    mempool *pool = anon_pool(8, 64);
    int fd = mempool_shm_fd(pool);
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *child = mempool_shm_open_fd(fd);
        uint64_t h[2] = { 0, 0 };
        for (int i = 0; i < 2; i++) {
            char *b = mempool_get(child);
            if (!b)
                exit(1);
            strcpy(b, i ? "second" : "first");
            h[i] = mempool_shm_give(child, b);
        }
        if (write(pipefd[1], h, sizeof h) != sizeof h)
            exit(1);
        _exit(0); /* dies without detaching */
    }
    uint64_t h[2];
    CHECK(read(pipefd[0], h, sizeof h) == sizeof h);
    CHECK_EQ(reap(pid), 0);
    CHECK(h[0] != 0 && h[1] != 0);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(r.processes, 1);
    CHECK_EQ(r.blocks, 0);
    CHECK_EQ(r.in_transit, 2);
    CHECK_EQ(mempool_available(pool), 6);
    char *b = mempool_shm_take(pool, h[0]);
    CHECK(b && strcmp(b, "first") == 0);
    errno = 0;
    CHECK(mempool_shm_take(pool, h[0]) == NULL && errno == ESTALE);
    CHECK(mempool_shm_take(pool, 0) == NULL && errno == EINVAL);
    CHECK(mempool_shm_take(pool, 1) == NULL && errno == EINVAL); /* block 0, give count 0 */
    CHECK(mempool_shm_give(pool, NULL) == 0 && errno == EINVAL);
    CHECK(mempool_shm_take(pool, (uint64_t)1 << 32 | 99) == NULL && errno == EINVAL);
    /* Not ours to give twice; a free block is not ours at all. */
    uint64_t again = mempool_shm_give(pool, b);
    CHECK(again != 0 && again != h[0]);
    CHECK(mempool_shm_give(pool, b) == 0 && errno == EINVAL);
    CHECK(mempool_shm_take(pool, again) == b);
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK(mempool_shm_give(pool, b) == 0 && errno == EINVAL);
    CHECK(mempool_shm_take(pool, again) == NULL && errno == ESTALE);
    CHECK_EQ(mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r), 0);
    CHECK_EQ(r.in_transit, 1);
    CHECK_EQ(r.blocks, 1);
    CHECK(mempool_shm_take(pool, h[1]) == NULL && errno == ESTALE);
    CHECK_EQ(mempool_available(pool), 8);
    close(pipefd[0]);
    close(pipefd[1]);
    mempool_destroy(pool);
}

/* A fork child may not use its parent's handle (it would pass for the
 * parent, and the parent's death would go unseen while it lives); it
 * attaches on its own instead. */
static void test_fork_child_handle(void)
{
    mempool *pool = anon_pool(4, 16);
    int fd = mempool_shm_fd(pool);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int ok = 1;
        errno = 0;
        ok &= mempool_get(pool) == NULL && errno == EPERM;
        ok &= mempool_put(pool, mempool_block(pool, 0)) == EPERM;
        ok &= mempool_recover(pool, 0, NULL) == EPERM;
        ok &= mempool_stats_reset(pool) == EPERM;
        ok &= mempool_drain(pool, 0) == EPERM;
        ok &= mempool_shm_take(pool, 1) == NULL && errno == EPERM;
        ok &= mempool_shm_fd(pool) == -1;
        mempool_close(pool); /* not the child's to close: nothing happens */
        mempool *own = mempool_shm_open_fd(fd);
        void *b = own ? mempool_get(own) : NULL;
        ok &= b != NULL && mempool_put(own, b) == 0;
        mempool_destroy(own);
        /* The inherited handle may be destroyed: its memory goes, the
         * parent's attachment stays (checked below). */
        mempool_destroy(pool);
        exit(ok ? 0 : 1);
    }
    CHECK_EQ(reap(pid), 0);
    /* The parent still holds its slot: a child's exit did not release it. */
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(r.processes, 0);
    void *b = mempool_get(pool);
    CHECK(b != NULL);
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);
}

/* The participant table: one slot per attachment, EUSERS past it, and a
 * failed attach leaves nothing behind. */
static void test_process_table(void)
{
    enum { SLOTS = 128 };
    mempool *pool = anon_pool(4, 16);
    static mempool *more[SLOTS];
    int n = 0;
    while (n < SLOTS && (more[n] = mempool_shm_open_fd(mempool_shm_fd(pool))) != NULL)
        n++;
    CHECK_EQ(n, SLOTS - 1);
    CHECK_EQ(errno, EUSERS);
    for (int i = 0; i < n; i++)
        mempool_destroy(more[i]);
    mempool *again = mempool_shm_open_fd(mempool_shm_fd(pool));
    CHECK(again != NULL);
    mempool_destroy(again);
    mempool_destroy(pool);
}

/* The lowest descriptor number free now. */
static int lowest_free_fd(void)
{
    int fd = dup(0);
    REQUIRE(fd >= 0);
    close(fd);
    return fd;
}

/* A process that cannot grow a file cannot create a segment: ENOMEM, and
 * no name or descriptor is left behind. */
static void test_create_fails(void)
{
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = { 4096, 4096 };
        setrlimit(RLIMIT_FSIZE, &lim);
        mempool_config c = config_of(1024, 1024);
        char name[64];
        snprintf(name, sizeof name, "/mempool-test-fsize-%ld", (long)getpid());
        int free_fd = lowest_free_fd();
        int ok = mempool_shm_create(NULL, &c, 0) == NULL && errno == ENOMEM;
        ok &= mempool_shm_create(name, &c, 0) == NULL && errno == ENOMEM;
        ok &= mempool_shm_unlink(name) == ENOENT;
        ok &= lowest_free_fd() == free_fd;
        exit(ok ? 0 : 1);
    }
    CHECK_EQ(reap(pid), 0);
}

/* Creation and attach when the kernel refuses the mapping or a
 * descriptor: under an address-space limit a little above what the process
 * maps, a segment that does not fit fails to map (ENOMEM); with room for
 * one descriptor only, the segment's opens and the attach's own one does
 * not (EMFILE), and an open has none left for its copy. Each leaves no name
 * behind and no descriptor open. Catches a failed create that leaks its
 * name, its descriptor or a half-made handle. Run in a child (the limits
 * are for good); not under a sanitizer, memcheck or an emulator, which need
 * the address space. */
/* An anonymous and a named create both fail with err, leaving no name. */
static void creates_fail(const char *name, const mempool_config *c, int err)
{
    errno = 0;
    CHECK(mempool_shm_create(NULL, c, 0) == NULL);
    CHECK_EQ(errno, err);
    errno = 0;
    CHECK(mempool_shm_create(name, c, 0) == NULL);
    CHECK_EQ(errno, err);
    CHECK_EQ(mempool_shm_unlink(name), ENOENT);
}

static void create_limits_child(void)
{
    char name[64];
    snprintf(name, sizeof name, "/mempool-test-limits-%ld", (long)getpid());
    long kb = vm_size_kb();
    REQUIRE(kb > 0);
    struct rlimit as = { ((rlim_t)kb << 10) + (64u << 20), RLIM_INFINITY };
    REQUIRE(setrlimit(RLIMIT_AS, &as) == 0);
    mempool_config big = config_of(1u << 16, 4096); /* 256 MiB of blocks */
    creates_fail(name, &big, ENOMEM);
    as.rlim_cur = RLIM_INFINITY; /* lifted for the exit (coverage counts) */
    REQUIRE(setrlimit(RLIMIT_AS, &as) == 0);

    mempool_config small = config_of(16, 64);
    mempool *pool = mempool_shm_create(NULL, &small, 0);
    REQUIRE(pool);
    struct rlimit saved, nofile;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
    int free_fd = lowest_free_fd();
    nofile = saved;
    nofile.rlim_cur = (rlim_t)free_fd + 1;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &nofile) == 0);
    creates_fail(name, &small, EMFILE);
    nofile.rlim_cur = (rlim_t)free_fd;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &nofile) == 0);
    errno = 0;
    CHECK(mempool_shm_open_fd(mempool_shm_fd(pool)) == NULL);
    CHECK_EQ(errno, EMFILE);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
    CHECK_EQ(lowest_free_fd(), free_fd);
    mempool *again = mempool_shm_open_fd(mempool_shm_fd(pool));
    CHECK(again != NULL);
    mempool_destroy(again);
    mempool_destroy(pool);
}

static void test_create_limits(void)
{
    if (!plain_process()) {
        puts("create limits: skipped under a sanitizer, memcheck or an emulator");
        return;
    }
    in_child(create_limits_child);
}

/* Live state scribbled on by a peer: a free list naming a block that is
 * out, stray bits in free and in-transit words. The next call repairs from
 * the block words instead of handing out a held block. */
static void test_live_corruption(void)
{
    mempool *pool = anon_pool(8, 64);
    int fd = mempool_shm_fd(pool);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    unsigned char *seg = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(seg != MAP_FAILED);
    /* The header's layout (src/shm.h): the state's and the block words'
     * offsets; the free list's head is the state's third word. */
    uint64_t state_offset, owners_offset;
    memcpy(&state_offset, seg + 72, 8);
    memcpy(&owners_offset, seg + 96, 8);
    _Atomic uint32_t *free_head = (_Atomic uint32_t *)(seg + state_offset + 8);
    _Atomic uint64_t *owners = (_Atomic uint64_t *)(seg + owners_offset);
    void *held = mempool_get(pool);
    size_t index = mempool_index(pool, held);
    /* Stray bits in a free word and in a transit word, cleaned by the
     * repair that the broken free list below causes. */
    void *given = mempool_get(pool);
    size_t given_index = mempool_index(pool, given);
    uint64_t h = mempool_shm_give(pool, given);
    atomic_fetch_or(&owners[given_index], (uint64_t)0x7F << 2);
    size_t other = (given_index + 1) % 8 == index ? (given_index + 2) % 8 : (given_index + 1) % 8;
    atomic_fetch_or(&owners[other], (uint64_t)0x7F << 2);
    atomic_store(free_head, (uint32_t)index); /* names a block that is out */
    void *b[6];
    CHECK_EQ(mempool_get_bulk(pool, b, 6, 0), 0);
    for (int i = 0; i < 6; i++)
        CHECK(b[i] != held && b[i] != given);
    CHECK_EQ(mempool_put_bulk(pool, b, 6), 0);
    CHECK(mempool_shm_take(pool, h) == given); /* the handle still works */
    h = mempool_shm_give(pool, given);
    atomic_store(free_head, 0xFFFFFFF0u); /* out of range */
    void *one = mempool_get(pool);
    CHECK(one != NULL && one != held);
    CHECK_EQ(mempool_put(pool, one), 0);
    /* A free list whose second entry is a block that is out: the bulk get
     * takes none of them and repairs first. */
    void *top = mempool_get(pool);
    _Atomic uint32_t *next;
    uint64_t next_offset;
    memcpy(&next_offset, seg + 104, 8);
    next = (_Atomic uint32_t *)(seg + next_offset);
    CHECK_EQ(mempool_put(pool, top), 0);
    atomic_store(&next[mempool_index(pool, top)], (uint32_t)index);
    void *two[5];
    CHECK_EQ(mempool_get_bulk(pool, two, 5, 0), 0);
    for (int i = 0; i < 5; i++)
        CHECK(two[i] != held);
    CHECK_EQ(mempool_put_bulk(pool, two, 5), 0);
    /* A half-put mark left on a held block (its putter died) and a free
     * block's word claiming a waiter slot that does not exist: the repair
     * clears the mark, so the holder can still put it, and frees the
     * other. */
    atomic_fetch_or(&owners[index], (uint64_t)1 << 31);
    atomic_store(&owners[other], (uint64_t)4000 << 2 | 3);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r), 0);
    CHECK_EQ(r.in_transit, 1);
    CHECK_EQ(r.blocks, 2); /* the one in transit, the one claiming slot 4000 */
    CHECK(mempool_shm_take(pool, h) == NULL);
    /* A give count at its largest wraps past 0 (no handle is 0). */
    atomic_fetch_or(&owners[index], (uint64_t)UINT32_MAX << 32);
    uint64_t wrapped = mempool_shm_give(pool, held);
    CHECK(wrapped == ((uint64_t)1 << 32 | (index + 1)));
    CHECK(mempool_shm_take(pool, wrapped) == held);
    CHECK_EQ(mempool_put(pool, held), 0);
    CHECK_EQ(mempool_available(pool), 8);
    munmap(seg, (size_t)st.st_size);
    mempool_destroy(pool);
}

/* A bulk get waiting with part of its blocks granted, then a close: the
 * waiter is canceled and its blocks go back. */
static void test_bulk_wait_close(void)
{
    mempool *pool = anon_pool(4, 64);
    void *all[4];
    REQUIRE(mempool_get_bulk(pool, all, 4, 0) == 0);
    int fd = mempool_shm_fd(pool);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *child = mempool_shm_open_fd(fd);
        void *b[3];
        int rc = child ? mempool_get_bulk(child, b, 3, 10000000000) : -1;
        mempool_destroy(child);
        exit(rc == ECANCELED ? 0 : 1);
    }
    wait_for_waits(pool, 1);
    CHECK_EQ(mempool_put(pool, all[0]), 0);
    CHECK_EQ(mempool_available(pool), 1); /* granted, not yet enough */
    mempool_close(pool);
    CHECK_EQ(reap(pid), 0);
    CHECK_EQ(mempool_available(pool), 1);
    /* The close freed the granted block itself: a repair finds nothing
     * left granted to the canceled wait. */
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r), 0);
    CHECK_EQ(r.blocks, 0);
    CHECK_EQ(mempool_put_bulk(pool, all + 1, 3), 0);
    CHECK_EQ(mempool_available(pool), 4);
    mempool_destroy(pool);
}

/* Many threads asleep in one pool, served by one bulk put: more wake-ups
 * than one locked section collects. */
static void *sleeping_get(void *arg)
{
    return mempool_get_timeout(arg, 10000000000);
}

static void test_many_sleepers(void)
{
    enum { SLEEPERS = 40 };
    mempool *pool = anon_pool(SLEEPERS, 64);
    void *all[SLEEPERS];
    REQUIRE(mempool_get_bulk(pool, all, SLEEPERS, 0) == 0);
    pthread_t t[SLEEPERS];
    for (int i = 0; i < SLEEPERS; i++)
        REQUIRE(pthread_create(&t[i], NULL, sleeping_get, pool) == 0);
    wait_for_waits(pool, SLEEPERS);
    CHECK_EQ(mempool_put_bulk(pool, all, SLEEPERS), 0);
    for (int i = 0; i < SLEEPERS; i++) {
        void *b;
        pthread_join(t[i], &b);
        CHECK(b != NULL);
        all[i] = b;
    }
    CHECK_EQ(mempool_put_bulk(pool, all, SLEEPERS), 0);
    CHECK_EQ(mempool_available(pool), SLEEPERS);
    mempool_destroy(pool);
}

/* Destroy gives back every block the process holds, more than one batch. */
static void test_detach_returns(void)
{
    mempool *pool = anon_pool(200, 16);
    int fd = mempool_shm_fd(pool);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        mempool *child = mempool_shm_open_fd(fd);
        void *b[150];
        int ok = child && mempool_get_bulk(child, b, 150, 0) == 0;
        mempool_destroy(child);
        exit(ok ? 0 : 1);
    }
    CHECK_EQ(reap(pid), 0);
    CHECK_EQ(mempool_available(pool), 200);
    mempool_recovery r;
    CHECK_EQ(mempool_recover(pool, 0, &r), 0);
    CHECK_EQ(r.processes, 0); /* detached, not dead */
    mempool_destroy(pool);
}

/* A segment that is not a pool's, or a corrupt one, is refused with EPROTO,
 * and an unsealed memfd too. Catches an open that trusts the header. */
static void test_bad_segments(void)
{
    int fd = memfd_create("not-a-pool", MFD_ALLOW_SEALING);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, 65536) == 0);
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    CHECK(mempool_shm_open_fd(fd) == NULL && errno == EPROTO);
    close(fd);
    fd = memfd_create("unsealed", 0);
    REQUIRE(fd >= 0);
    CHECK(mempool_shm_open_fd(fd) == NULL && errno == EPROTO);
    close(fd);

    mempool *pool = anon_pool(32, 64);
    int seg = mempool_shm_fd(pool);
    /* A sealed segment cannot be truncated under its users. */
    CHECK(ftruncate(seg, 4096) != 0);
    struct stat st;
    REQUIRE(fstat(seg, &st) == 0);
    size_t size = (size_t)st.st_size;
    unsigned char *image = malloc(size);
    REQUIRE(image && pread(seg, image, size, 0) == (ssize_t)size);
    /* Each byte of the header and of the state after it changed in turn,
     * in a copy of the segment: the header's bytes are refused, the
     * state's are repaired (a lock word naming nobody alive is taken
     * over, a free list naming a block out is rebuilt). */
    for (size_t at = 0; at < 192; at++) {
        int copy = memfd_create("copy", MFD_ALLOW_SEALING);
        REQUIRE(copy >= 0);
        image[at] ^= 0x41;
        REQUIRE(pwrite(copy, image, size, 0) == (ssize_t)size);
        image[at] ^= 0x41;
        fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
        mempool *p = mempool_shm_open_fd(copy);
        if (at < 120) {
            CHECK(p == NULL && errno == EPROTO);
        } else if (p) {
            void *b[32];
            int rc = mempool_get_bulk(p, b, 32, 1000000000);
            /* ECANCELED: the byte was in `closed`. */
            CHECK(rc == 0 || rc == EPROTO || rc == ETIMEDOUT || rc == ECANCELED);
            if (rc == 0)
                CHECK_EQ(mempool_put_bulk(p, b, 32), 0);
            mempool_destroy(p);
        } else {
            CHECK_EQ(errno, EPROTO);
        }
        close(copy);
    }
    /* Geometry fields zeroed, a truncated copy and a file shorter than a
     * header: each refused. The header's layout is src/shm.h's. */
    static const size_t zeroed[] = { 32, 40, 48, 64, 68 }; /* capacity, block size,
                                                            * alignment, procs, waiters */
    for (size_t z = 0; z <= sizeof zeroed / sizeof zeroed[0]; z++) {
        int copy = memfd_create("copy", MFD_ALLOW_SEALING);
        REQUIRE(copy >= 0);
        size_t length = size;
        unsigned char saved8[8];
        if (z < sizeof zeroed / sizeof zeroed[0]) {
            memcpy(saved8, image + zeroed[z], 8);
            memset(image + zeroed[z], 0, zeroed[z] >= 64 ? 4 : 8);
        } else {
            length = 4096; /* the header is whole, the segment is not */
        }
        REQUIRE(pwrite(copy, image, length, 0) == (ssize_t)length);
        if (z < sizeof zeroed / sizeof zeroed[0])
            memcpy(image + zeroed[z], saved8, 8);
        fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
        CHECK(mempool_shm_open_fd(copy) == NULL && errno == EPROTO);
        close(copy);
    }
    /* Geometry fields with values the layout refuses, each alone: an
     * alignment past the largest a segment keeps, caches of one block and
     * of more than the largest size. Catches a layout check that lets one
     * of them through (the offsets would be computed from it). */
    static const struct {
        size_t at, width;
        uint64_t value;
    } refused[] = { { 48, 8, 8192 }, { 124, 4, 1 }, { 124, 4, 8192 } };
    for (size_t r = 0; r < sizeof refused / sizeof refused[0]; r++) {
        int copy = memfd_create("copy", MFD_ALLOW_SEALING);
        REQUIRE(copy >= 0);
        unsigned char saved8[8];
        memcpy(saved8, image + refused[r].at, 8);
        memcpy(image + refused[r].at, &refused[r].value, refused[r].width); /* little-endian */
        REQUIRE(pwrite(copy, image, size, 0) == (ssize_t)size);
        memcpy(image + refused[r].at, saved8, 8);
        fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
        CHECK(mempool_shm_open_fd(copy) == NULL && errno == EPROTO);
        close(copy);
    }
    /* An alignment past the largest that still gives the same layout
     * (blocks of 8192 bytes: the same stride at 4096 and at 8192): the
     * header adds up, and is refused for the alignment alone. */
    {
        mempool_config big = config_of(4, 8192);
        big.alignment = 4096;
        mempool *wide = mempool_shm_create(NULL, &big, 0);
        REQUIRE(wide);
        struct stat wst;
        REQUIRE(fstat(mempool_shm_fd(wide), &wst) == 0);
        size_t wsize = (size_t)wst.st_size;
        unsigned char *wimage = malloc(wsize);
        REQUIRE(wimage && pread(mempool_shm_fd(wide), wimage, wsize, 0) == (ssize_t)wsize);
        uint64_t alignment = 8192;
        memcpy(wimage + 48, &alignment, 8);
        int copy = memfd_create("copy", MFD_ALLOW_SEALING);
        REQUIRE(copy >= 0 && pwrite(copy, wimage, wsize, 0) == (ssize_t)wsize);
        fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
        CHECK(mempool_shm_open_fd(copy) == NULL && errno == EPROTO);
        close(copy);
        free(wimage);
        mempool_destroy(wide);
    }
    int tiny = memfd_create("tiny", MFD_ALLOW_SEALING);
    REQUIRE(tiny >= 0 && pwrite(tiny, image, 16, 0) == 16);
    fcntl(tiny, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    CHECK(mempool_shm_open_fd(tiny) == NULL && errno == EPROTO);
    close(tiny);
    free(image);
    mempool_destroy(pool);
}

int main(void)
{
    /* Children exit() (so that coverage counts them): nothing buffered
     * may be written twice. */
    setvbuf(stdout, NULL, _IONBF, 0);
    mempool_config c = config_of(4, 16);
    mempool *probe = mempool_shm_create(NULL, &c, 0);
    if (!probe && errno == ENOSYS) {
        printf("SKIPPED: no shared pools on this system\n");
        return 0;
    }
    REQUIRE(probe);
    mempool_destroy(probe);
    test_single_process();
    test_config();
    test_init_and_alignment();
    test_named();
    test_killed_holder();
    test_zombie();
    test_pid_reuse();
    test_fifo_across_processes();
    test_killed_waiter();
    test_close_across_processes();
    test_give_take();
    test_fork_child_handle();
    test_process_table();
    test_drain();
    test_contention();
    test_timeouts_in_queue();
    test_detach_bounds();
    test_bulk_queues_with_free();
    test_hostile_waiters();
    test_queue_refills();
    test_unready_named();
    test_recovery_unasked();
    test_broken_grant();
    test_create_fails();
    test_create_limits();
    test_live_corruption();
    test_bulk_wait_close();
    test_many_sleepers();
    test_detach_returns();
    test_bad_segments();
    CHECK_DONE();
}
