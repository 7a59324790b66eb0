/* SPDX-License-Identifier: MIT */
/* mempool-bench-shared: one pool across processes, against what users write
 * by hand, measured side by side in one run (Linux).
 *
 *   shared-pair      one process: get + put on a shared pool and on a
 *                    private one (caches on, the default)
 *   shared-pipeline  a producer process and a consumer process: gets, writes
 *                    a block, gives it, sends the handle through a
 *                    single-producer ring in a shared mapping; the consumer
 *                    takes, reads and puts it. Against the same pipeline on
 *                    a process-shared pthread mutex + condition variable
 *                    free list (the hand-written way), and against two
 *                    threads of one process on a private pool
 *   shared-handoff   one block: a get asleep in one process woken by a put in
 *                    another, wake-up latency (put to the get's return);
 *                    against a bare FUTEX_WAIT / FUTEX_WAKE ping-pong
 *                    between two processes, the floor of a sleeping hand-off
 *   recovery         a process holding 10^5 blocks of a 2^20-block pool is
 *                    killed; the time of mempool_recover
 *
 * Every figure is the median of the repetitions (--repetitions, default 7),
 * with the range; ratios are of medians. --smoke runs a few thousand
 * operations. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mempool.h"

static size_t pairs = 2000000, messages = 400000, handoffs = 20000;
static unsigned reps = 7;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct figure {
    double median, low, high;
};

static struct figure summarize(double *v, unsigned n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return (struct figure){ n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1] };
}

static void *shared_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static void reap(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "a benchmark process failed\n");
        exit(1);
    }
}

static mempool *make_shared(size_t capacity, size_t block_size)
{
    mempool_config c = { .capacity = capacity, .block_size = block_size };
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    if (!pool) {
        perror("mempool_shm_create");
        exit(errno == ENOSYS ? 77 : 1);
    }
    return pool;
}

/* ---- shared-pair ---- */

static double pair_ns(mempool *pool)
{
    int64_t t0 = now_ns();
    for (size_t i = 0; i < pairs; i++) {
        void *b = mempool_get(pool);
        *(volatile char *)b = (char)i;
        mempool_put(pool, b);
    }
    return (double)(now_ns() - t0) / (double)pairs;
}

/* ---- the ring every pipeline uses: one producer, one consumer ---- */

#define RING 1024
struct ring {
    _Alignas(64) _Atomic uint64_t head; /* written by the producer */
    _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
    _Alignas(64) _Atomic uint64_t slot[RING];
};

static void ring_push(struct ring *r, uint64_t v)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (h - atomic_load_explicit(&r->tail, memory_order_acquire) == RING)
        sched_yield();
    atomic_store_explicit(&r->slot[h % RING], v, memory_order_relaxed);
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

static uint64_t ring_pop(struct ring *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    while (atomic_load_explicit(&r->head, memory_order_acquire) == t)
        sched_yield();
    uint64_t v = atomic_load_explicit(&r->slot[t % RING], memory_order_relaxed);
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return v;
}

enum { PIPE_BLOCKS = 256, PIPE_SIZE = 256 };

/* The shared pool's pipeline: the consumer attaches through the descriptor
 * it inherits (not the parent's handle). */
static double pipeline_shared(void)
{
    mempool *pool = make_shared(PIPE_BLOCKS, PIPE_SIZE);
    struct ring *r = shared_map(sizeof *r);
    int fd = mempool_shm_fd(pool);
    pid_t pid = fork();
    if (pid == 0) {
        mempool *own = mempool_shm_open_fd(fd);
        if (!own)
            _exit(1);
        for (size_t i = 0; i < messages; i++) {
            char *b = mempool_shm_take(own, ring_pop(r));
            if (!b || b[0] != (char)i)
                _exit(1);
            mempool_put(own, b);
        }
        mempool_destroy(own);
        _exit(0);
    }
    int64_t t0 = now_ns();
    for (size_t i = 0; i < messages; i++) {
        char *b = mempool_get(pool);
        memset(b, (char)i, 64);
        ring_push(r, mempool_shm_give(pool, b));
    }
    reap(pid);
    double ns = (double)(now_ns() - t0) / (double)messages;
    munmap(r, sizeof *r);
    mempool_destroy(pool);
    return ns;
}

/* The hand-written way: a free list of indices under a process-shared
 * mutex, a condition variable for an empty list. */
struct locked_list {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    uint32_t count;
    uint32_t free[PIPE_BLOCKS];
    struct ring ring;
    char blocks[PIPE_BLOCKS][PIPE_SIZE];
};

static double pipeline_mutex(void)
{
    struct locked_list *l = shared_map(sizeof *l);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&l->lock, &ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&l->nonempty, &ca);
    for (uint32_t i = 0; i < PIPE_BLOCKS; i++)
        l->free[l->count++] = i;
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; i < messages; i++) {
            uint32_t index = (uint32_t)ring_pop(&l->ring);
            if (l->blocks[index][0] != (char)i)
                _exit(1);
            pthread_mutex_lock(&l->lock);
            l->free[l->count++] = index;
            pthread_cond_signal(&l->nonempty);
            pthread_mutex_unlock(&l->lock);
        }
        _exit(0);
    }
    int64_t t0 = now_ns();
    for (size_t i = 0; i < messages; i++) {
        pthread_mutex_lock(&l->lock);
        while (l->count == 0)
            pthread_cond_wait(&l->nonempty, &l->lock);
        uint32_t index = l->free[--l->count];
        pthread_mutex_unlock(&l->lock);
        memset(l->blocks[index], (char)i, 64);
        ring_push(&l->ring, index);
    }
    reap(pid);
    double ns = (double)(now_ns() - t0) / (double)messages;
    munmap(l, sizeof *l);
    return ns;
}

/* The same pipeline between two threads of one process, private pool. */
struct thread_pipe {
    mempool *pool;
    struct ring ring;
    int failed;
};

static void *consume_private(void *arg)
{
    struct thread_pipe *t = arg;
    for (size_t i = 0; i < messages; i++) {
        char *b = (char *)(uintptr_t)ring_pop(&t->ring);
        if (b[0] != (char)i)
            t->failed = 1;
        mempool_put(t->pool, b);
    }
    return NULL;
}

static double pipeline_private(void)
{
    mempool_config c = { .capacity = PIPE_BLOCKS, .block_size = PIPE_SIZE };
    struct thread_pipe *t = shared_map(sizeof *t);
    t->pool = mempool_create(&c);
    pthread_t th;
    pthread_create(&th, NULL, consume_private, t);
    int64_t t0 = now_ns();
    for (size_t i = 0; i < messages; i++) {
        char *b = mempool_get(t->pool);
        memset(b, (char)i, 64);
        ring_push(&t->ring, (uint64_t)(uintptr_t)b);
    }
    pthread_join(th, NULL);
    double ns = (double)(now_ns() - t0) / (double)messages;
    if (t->failed)
        exit(1);
    mempool_destroy(t->pool);
    munmap(t, sizeof *t);
    return ns;
}

/* ---- shared-handoff ---- */

/* Wake-up latency of one block passed back and forth: each side sleeps in
 * a get until the other puts; the putter stamps the time just before its
 * put, the woken get's return reads the clock. The median of every
 * hand-off, in nanoseconds. */
struct stamps {
    _Atomic int64_t put_at;
    double lat[];
};

/* Waits until the pool has counted n sleeping gets in all: the other side
 * is queued, so a put now is a hand-off (a put before it would go to the
 * free list, and the putter's next get would take its own block back). */
static void await_waits(mempool *pool, uint64_t n)
{
    mempool_stats s;
    while (mempool_stats_read(pool, &s) == 0 && s.waits < n)
        usleep(1);
}

static double handoff_pool(void)
{
    mempool *pool = make_shared(1, 64);
    size_t rounds = handoffs / 2;
    struct stamps *st = shared_map(sizeof *st + 2 * rounds * sizeof(double));
    int fd = mempool_shm_fd(pool);
    void *b = mempool_get(pool);
    pid_t pid = fork();
    if (pid == 0) {
        mempool *own = mempool_shm_open_fd(fd);
        for (size_t k = 0; own && k < rounds; k++) {
            void *x = mempool_get(own);
            st->lat[2 * k] = (double)(now_ns() - atomic_load(&st->put_at));
            await_waits(own, 2 * k + 2);
            usleep(20); /* the other side falls asleep in its get */
            atomic_store(&st->put_at, now_ns());
            mempool_put(own, x);
        }
        mempool_destroy(own);
        _exit(own ? 0 : 1);
    }
    for (size_t k = 0; k < rounds; k++) {
        await_waits(pool, 2 * k + 1);
        usleep(20);
        atomic_store(&st->put_at, now_ns());
        mempool_put(pool, b);
        b = mempool_get(pool);
        st->lat[2 * k + 1] = (double)(now_ns() - atomic_load(&st->put_at));
    }
    reap(pid);
    struct figure f = summarize(st->lat, (unsigned)(2 * rounds));
    munmap(st, sizeof *st + 2 * rounds * sizeof(double));
    mempool_put(pool, b);
    mempool_destroy(pool);
    return f.median;
}

static long futex(_Atomic uint32_t *word, int op, uint32_t value)
{
    return syscall(SYS_futex, (uint32_t *)word, op, value, NULL, NULL, 0);
}

/* The floor: a word in a shared mapping, FUTEX_WAIT until it holds my turn,
 * FUTEX_WAKE after handing the turn over; the same pacing and stamps. */
struct ping {
    _Atomic uint32_t turn;
    _Atomic int64_t put_at;
    double lat[];
};

static void ping_side(struct ping *p, uint32_t me, size_t first)
{
    for (size_t i = first; i < handoffs; i += 2) {
        while (atomic_load(&p->turn) != me)
            futex(&p->turn, FUTEX_WAIT, me ^ 1);
        if (i > 0)
            p->lat[i] = (double)(now_ns() - atomic_load(&p->put_at));
        usleep(20);
        atomic_store(&p->put_at, now_ns());
        atomic_store(&p->turn, me ^ 1);
        futex(&p->turn, FUTEX_WAKE, 1);
    }
}

static double handoff_futex(void)
{
    struct ping *p = shared_map(sizeof *p + handoffs * sizeof(double));
    pid_t pid = fork();
    if (pid == 0) {
        ping_side(p, 1, 1);
        _exit(0);
    }
    ping_side(p, 0, 0);
    reap(pid);
    size_t n = 0;
    for (size_t i = 1; i < handoffs; i++)
        if (p->lat[i] > 0)
            p->lat[n++] = p->lat[i];
    struct figure f = summarize(p->lat, (unsigned)n);
    munmap(p, sizeof *p + handoffs * sizeof(double));
    return f.median;
}

/* ---- recovery ---- */

static double recovery_ms(size_t capacity, size_t held)
{
    mempool *pool = make_shared(capacity, 16);
    int fd = mempool_shm_fd(pool);
    int ready[2];
    if (pipe(ready) != 0)
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        mempool *own = mempool_shm_open_fd(fd);
        void **b = malloc(held * sizeof *b);
        char c = own && b && mempool_get_bulk(own, b, held, 0) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c = 0;
    if (read(ready[0], &c, 1) != 1 || c != 'y')
        exit(1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    mempool_recovery r;
    int64_t t0 = now_ns();
    mempool_recover(pool, 0, &r);
    double ms = (double)(now_ns() - t0) / 1e6;
    if (r.blocks != held || mempool_available(pool) != capacity) {
        fprintf(stderr, "recovery returned %zu of %zu blocks\n", r.blocks, held);
        exit(1);
    }
    close(ready[0]);
    close(ready[1]);
    mempool_destroy(pool);
    return ms;
}

static void row(const char *name, const char *unit, double *v, const char *versus, double base)
{
    struct figure f = summarize(v, reps);
    printf("  %-34s %10.2f %s  (%.2f-%.2f)", name, f.median, unit, f.low, f.high);
    if (versus)
        printf("   %.2fx %s", f.median / base, versus);
    printf("\n");
}

int main(int argc, char **argv)
{
    bool smoke = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke"))
            smoke = true;
        else if (!strcmp(argv[i], "--repetitions") && i + 1 < argc)
            reps = (unsigned)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--smoke] [--repetitions N]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 64)
        reps = 7;
    if (smoke) {
        pairs = 20000, messages = 5000, handoffs = 200;
        reps = 3;
    }
    size_t rec_capacity = smoke ? 1u << 14 : 1u << 20, rec_held = smoke ? 1000 : 100000;
    mempool_config probe = { .capacity = 4, .block_size = 16 };
    mempool *p = mempool_shm_create(NULL, &probe, 0);
    if (!p) {
        printf("shared pools are not supported here (%s)\n", strerror(errno));
        return errno == ENOSYS ? 77 : 1;
    }
    mempool_destroy(p);

    double shared_pair[64], private_pair[64], pipe_shared[64], pipe_mutex[64],
        pipe_private[64], hand_pool[64], hand_futex[64], recover[64];
    mempool *shared = make_shared(1024, 64);
    mempool_config pc = { .capacity = 1024, .block_size = 64 };
    mempool *private = mempool_create(&pc);
    /* Interleaved repetitions: the machine's noise falls on every column. */
    for (unsigned r = 0; r < reps; r++) {
        private_pair[r] = pair_ns(private);
        shared_pair[r] = pair_ns(shared);
        pipe_private[r] = pipeline_private();
        pipe_shared[r] = pipeline_shared();
        pipe_mutex[r] = pipeline_mutex();
        hand_futex[r] = handoff_futex();
        hand_pool[r] = handoff_pool();
        recover[r] = recovery_ms(rec_capacity, rec_held);
        fprintf(stderr, "repetition %u of %u done\n", r + 1, reps);
    }
    mempool_destroy(shared);
    mempool_destroy(private);
    double base;
    printf("mempool %s, shared pools; medians of %u repetitions (range)\n", mempool_version(),
           reps);
    printf("shared-pair (one process, get + put)\n");
    row("private pool (cached)", "ns", private_pair, NULL, 0);
    base = summarize(private_pair, reps).median;
    row("shared pool", "ns", shared_pair, "the private pool", base);
    printf("shared-pipeline (producer and consumer processes, per block)\n");
    row("in-process pipeline (two threads)", "ns", pipe_private, NULL, 0);
    row("mutex + condvar free list", "ns", pipe_mutex, NULL, 0);
    base = summarize(pipe_mutex, reps).median;
    row("shared pool, give + take", "ns", pipe_shared, "mutex + condvar", base);
    printf("  %-34s %10s     %.2fx the in-process pipeline\n", "", "",
           summarize(pipe_shared, reps).median / summarize(pipe_private, reps).median);
    printf("shared-handoff (wake-up latency across processes, median per run)\n");
    row("bare futex ping-pong", "ns", hand_futex, NULL, 0);
    base = summarize(hand_futex, reps).median;
    row("shared pool, get woken by put", "ns", hand_pool, "the futex ping-pong", base);
    printf("recovery (a dead process holding %zu of %zu blocks)\n", rec_held, rec_capacity);
    row("mempool_recover", "ms", recover, NULL, 0);
    return 0;
}
