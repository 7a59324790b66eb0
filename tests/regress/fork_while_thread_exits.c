/* SPDX-License-Identifier: MIT */
/* Guards: fork() could hang the child although the documented contract was
 * kept (no thread inside a call on the pool the child uses). The registry
 * lock is global and is held by create and destroy of any pool and by every
 * exiting thread that has a cache: a fork taken while another thread exits
 * left it locked in the child, whose first create or destroy then hung. The
 * portable wait backend's buckets are global too, held by any wait or wake
 * on any pool: a fork taken then left the child's first sleep or wake-up
 * hung. Here threads that used a cached pool exit all the time and others
 * sleep and wake on a pool of their own, while the main thread forks; each
 * child creates, uses, sleeps on and destroys pools and must finish within
 * seconds. */
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#if defined(__GNUC__)
#define NOINLINE_TEST __attribute__((noinline))
#else
#define NOINLINE_TEST
#endif

#define SHARED 64

static mempool *shared[SHARED];
/* How many of them each short-lived thread uses, and a pause between the
 * background threads' rounds: all of them and none, except in the slow
 * tiers (a small scale), where a tool that runs one thread at a time would
 * otherwise spend minutes on the background and barely reach the forks. */
static int shared_used = SHARED;
static int64_t pause_ns;
static atomic_int stop;

/* Uses the shared pools (a cache in each), then exits: its exit returns
 * every cache under the registry lock. */
static void *short_lived(void *arg)
{
    (void)arg;
    for (int i = 0; i < shared_used; i++) {
        void *b = mempool_get(shared[i]);
        if (b)
            mempool_put(shared[i], b);
    }
    /* Another pool, created and destroyed here, takes the lock too. */
    mempool_config cfg = { .capacity = 64, .block_size = 8 };
    mempool *p = mempool_create(&cfg);
    if (p) {
        void *x = mempool_get(p);
        mempool_put(p, x);
        mempool_destroy(p);
    }
    return NULL;
}

/* Two of these take turns on a one-block pool: every get sleeps until the
 * other puts, so waits and wake-ups run all the time. */
static mempool *pingpong;

static void *pinger(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        void *b = mempool_get_timeout(pingpong, 1000000);
        if (b)
            mempool_put(pingpong, b);
        if (pause_ns)
            check_sleep_ns(pause_ns);
    }
    return NULL;
}

/* Threads asleep for the whole run, each in a get on an empty pool of its
 * own: in the child their waits are left behind in the wait backend. */
#define SLEEPERS 16
static mempool *empty[SLEEPERS];

static void *sleeper(void *arg)
{
    void *b = mempool_get_timeout(arg, 60000000000);
    if (b)
        mempool_put(arg, b);
    return NULL;
}

static void *spawner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, NULL) == 0)
            pthread_join(t, NULL);
        if (pause_ns)
            check_sleep_ns(pause_ns);
    }
    return NULL;
}

/* A get that sleeps and times out, made `depth` steps further down the
 * stack: its errno. */
static NOINLINE_TEST int sleep_at_depth(mempool *q, int depth)
{
    volatile char pad[64];
    pad[0] = (char)depth;
    if (depth > 0)
        return sleep_at_depth(q, depth - 1) + pad[0] - (char)depth;
    errno = 0;
    void *b = mempool_get_timeout(q, 20000);
    return b ? 0 : errno;
}

static void *put_later(void *arg)
{
    void **pair = arg;
    check_sleep_ns(1000000);
    mempool_put(pair[0], pair[1]);
    return NULL;
}

/* The child: destroys a pool nobody used, then creates, uses, sleeps on and
 * destroys pools of its own: 0, or the step that failed. */
static int child_run(mempool *idle)
{
    mempool_destroy(idle);
    mempool_config cfg = { .capacity = 128, .block_size = 16 };
    mempool *p = mempool_create(&cfg);
    if (!p)
        return 2;
    void *b = mempool_get(p);
    if (!b || mempool_put(p, b) != 0)
        return 3;
    mempool_destroy(p);
    /* A sleep that times out, then one that a put from a second thread of
     * the child ends: both go through the wait backend. */
    mempool_config one = { .capacity = 1, .block_size = 16, .flags = MEMPOOL_NO_CACHE };
    mempool *q = mempool_create(&one);
    void *only = q ? mempool_get(q) : NULL;
    if (!only)
        return 4;
    /* From many stack depths, so that the sleeps' words spread over the
     * backend's buckets. */
    for (int depth = 0; depth < 64; depth++)
        if (sleep_at_depth(q, depth) != ETIMEDOUT)
            return 4;
    pthread_t t;
    if (pthread_create(&t, NULL, put_later, (void *[]){ q, only }) != 0)
        return 5;
    void *again = mempool_get_timeout(q, 5000000000);
    pthread_join(t, NULL);
    if (again != only || mempool_put(q, again) != 0)
        return 6;
    mempool_destroy(q);
    return 0;
}

/* The child's result goes through a pipe, not its exit status, which a
 * memory checker may replace with its own (the threads of the parent that
 * do not exist in the child leave their memory behind there). */
static void child(mempool *idle, int fd)
{
    unsigned char result = (unsigned char)child_run(idle);
    ssize_t written = write(fd, &result, 1);
    _exit(written == 1 ? 0 : 1);
}

/* Waits for the child at most `seconds`: 0 once it has ended, or -1 after
 * killing a child that hung. */
static int reap(pid_t pid, int seconds)
{
    for (int i = 0; i < seconds * 1000; i++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return 0;
        check_sleep_ns(1000000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* The sanitizers' own allocators (clang 14) are not fork-safe while other
 * threads allocate: a child can hang inside their malloc, which says
 * nothing about the pool. Those builds skip this program (ctest shows it as
 * skipped); the core and valgrind tiers run it. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZER_ALLOCATOR 1
#endif
#endif

int main(void)
{
#ifdef SANITIZER_ALLOCATOR
    printf("skipped: the sanitizer's allocator is not fork-safe with threads allocating\n");
    return 77;
#endif
    if (getenv("MEMPOOL_TEST_EMULATOR")) {
        /* qemu-user aborts in its own translation loop (an assertion on
         * the current CPU) when a process forks while threads start and
         * exit: the emulator fails, not the pool. */
        printf("skipped: fork while threads start and exit crashes qemu-user itself\n");
        return 77;
    }
    mempool_config cfg = { .capacity = 4096, .block_size = 16 };
    for (int i = 0; i < SHARED; i++)
        REQUIRE((shared[i] = mempool_create(&cfg)) != NULL);
    if (check_scale() < 0.5) {
        shared_used = 4;
        pause_ns = 1000000;
    }
    mempool_config one = { .capacity = 1, .block_size = 16, .flags = MEMPOOL_NO_CACHE };
    REQUIRE((pingpong = mempool_create(&one)) != NULL);
    void *held[SLEEPERS];
    pthread_t sleepers[SLEEPERS];
    for (int i = 0; i < SLEEPERS; i++) {
        REQUIRE((empty[i] = mempool_create(&one)) != NULL);
        REQUIRE((held[i] = mempool_get(empty[i])) != NULL);
        sleepers[i] = check_thread(sleeper, empty[i]);
    }
    pthread_t threads[5];
    for (int i = 0; i < 3; i++)
        threads[i] = check_thread(spawner, NULL);
    for (int i = 3; i < 5; i++)
        threads[i] = check_thread(pinger, NULL);
    int forks = (int)(150 * check_scale()) + 20, hung = 0, failed = 0;
    for (int i = 0; i < forks && !hung; i++) {
        mempool *idle = mempool_create(&cfg);
        REQUIRE(idle != NULL);
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0)
            child(idle, fds[1]);
        close(fds[1]);
        mempool_destroy(idle);
        unsigned char result = 255;
        if (reap(pid, 5) < 0)
            hung++;
        else if (read(fds[0], &result, 1) != 1 || result != 0)
            failed++;
        close(fds[0]);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 5; i++)
        pthread_join(threads[i], NULL);
    mempool_destroy(pingpong);
    for (int i = 0; i < SLEEPERS; i++) {
        CHECK_EQ(mempool_put(empty[i], held[i]), 0);
        pthread_join(sleepers[i], NULL);
        mempool_destroy(empty[i]);
    }
    if (hung)
        fprintf(stderr, "a child hung after fork\n");
    CHECK_EQ(hung, 0);
    CHECK_EQ(failed, 0);
    for (int i = 0; i < SHARED; i++)
        mempool_destroy(shared[i]);
    CHECK_DONE();
}
