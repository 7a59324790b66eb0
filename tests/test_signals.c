/* SPDX-License-Identifier: MIT */
/* Signals and cancellation against waiting gets.
 *
 * A waiting get is a loop around a futex (or condvar) wait, and both return
 * early on a signal: the pool must turn that into "keep waiting" against the
 * same deadline, never into an early return or EINTR. Waiting calls are not
 * cancellation points: a deferred cancel must take effect only at the
 * caller's next cancellation point, after the call has returned whatever it
 * got, so that no block is lost with the cancelled thread. */
#include <signal.h>
#include <stdatomic.h>

#include "check.h"
#include "waiter.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* Handler runs, counted so that the test knows each signal was taken while
 * the waiter was inside the call. */
static atomic_int handled;

/* ThreadSanitizer runs a handler only when the thread next enters one of its
 * interceptors; a raw futex system call is not one, so a handler for a
 * signal that hit the futex backend's wait runs only after the get returns.
 * The signal still interrupts the system call, which is what is under test,
 * so under TSan the test does not wait for each handler, and checks only
 * afterwards that the handlers ran. */
#define SIGNALS_DEFERRED UNDER_TSAN /* check.h */

/* How long to wait for a handler before giving up on it. */
static int64_t handler_wait_ns(void)
{
    return SIGNALS_DEFERRED ? 2 * (int64_t)1000000 : 5 * (int64_t)1000000000;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

/* SIGUSR1 restarts interrupted system calls, SIGUSR2 does not: the pool's
 * wait must behave the same under both. */
static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    sa.sa_flags = 0;
    REQUIRE(sigaction(SIGUSR2, &sa, NULL) == 0);
}

/* Sends one signal and waits until its handler has run. 1 when it ran (or
 * handlers are deferred), 0 when it did not within 5 s. */
static int signal_and_wait(pthread_t t, int sig)
{
    int before = atomic_load(&handled);
    REQUIRE(pthread_kill(t, sig) == 0);
    int64_t deadline = check_now_ns() + handler_wait_ns();
    while (atomic_load(&handled) == before) {
        if (check_now_ns() > deadline)
            return SIGNALS_DEFERRED;
        check_sleep_ns(100000);
    }
    return 1;
}

/* An untimed get hit by many signals keeps sleeping, then takes the block
 * that is put. */
static void get_survives_signals(int sig, enum waiter_call call)
{
    mempool *pool = check_arena_pool(1, 64, 0);
    void *held = mempool_try_get(pool);
    REQUIRE(held != NULL);

    int handled_at_start = atomic_load(&handled);
    struct waiter w = { .pool = pool, .call = call, .timeout_ns = 600 * SEC };
    waiter_start(&w);
    REQUIRE(waiter_wait_asleep(&w));
    for (int i = 0; i < 50; i++) {
        int taken = signal_and_wait(w.thread, sig);
        CHECK(taken);
        CHECK(!waiter_done(&w));
        if (!taken || waiter_done(&w))
            break; /* the call ended early: later signals prove nothing */
        check_sleep_ns(MS);
    }
    /* Still asleep, not spinning in a retry loop after the signals. */
    CHECK(waiter_wait_asleep(&w));
    CHECK(!waiter_done(&w));

    CHECK_EQ(mempool_put(pool, held), 0);
    CHECK(waiter_wait_done(&w, 10 * SEC));
    waiter_join(&w);
    CHECK(atomic_load(&handled) > handled_at_start);
    CHECK_EQ(w.err, 0);
    CHECK(w.block == held);
    CHECK(w.errno_kept);
    CHECK_EQ(mempool_put(pool, w.block), 0);
    CHECK_EQ(mempool_available(pool), 1);
    mempool_destroy(pool);
}

/* A timed get hit by signals all along still times out: never early, and
 * not stretched by the interruptions (generous bound for slow tools). */
static void timeout_survives_signals(int sig)
{
    const int64_t timeout = 300 * MS;
    mempool *pool = check_arena_pool(1, 64, 0);
    void *held = mempool_try_get(pool);
    REQUIRE(held != NULL);

    int handled_at_start = atomic_load(&handled);
    struct waiter w = { .pool = pool, .call = WAITER_GET_TIMEOUT, .timeout_ns = timeout };
    waiter_start(&w);
    while (atomic_load(&w.start_ns) == 0)
        check_sleep_ns(100000);
    /* Signal it over and over until it returns; count the signals taken
     * while it was still inside the call. */
    int taken = 0;
    int64_t give_up = check_now_ns() + 30 * SEC;
    while (!waiter_done(&w) && check_now_ns() < give_up) {
        int before = atomic_load(&handled);
        REQUIRE(pthread_kill(w.thread, sig) == 0);
        int64_t until = check_now_ns() + handler_wait_ns();
        while (atomic_load(&handled) == before && !waiter_done(&w)
               && check_now_ns() < until)
            check_sleep_ns(100000);
        if (!waiter_done(&w) && (SIGNALS_DEFERRED || atomic_load(&handled) != before))
            taken++;
        check_sleep_ns(MS);
    }
    CHECK(taken >= 5);
    CHECK(waiter_wait_done(&w, 30 * SEC));
    waiter_join(&w);
    CHECK(atomic_load(&handled) > handled_at_start);
    CHECK_EQ(w.err, ETIMEDOUT);
    CHECK(w.block == NULL);
    CHECK(w.elapsed_ns >= timeout);
    CHECK(w.elapsed_ns < timeout + 5 * SEC);
    CHECK_EQ(mempool_available(pool), 0);

    CHECK_EQ(mempool_put(pool, held), 0);
    CHECK_EQ(mempool_available(pool), 1);
    mempool_destroy(pool);
}

/* A thread that waits in mempool_get with a deferred cancel coming, then
 * reaches pthread_testcancel. */
struct victim {
    mempool *pool;
    atomic_int tid;
    atomic_int returned;      /* mempool_get has returned */
    void *block;              /* what it returned, and errno on NULL */
    int err;
    atomic_int cleanup_ran;
    int returned_at_cleanup;  /* `returned` as the cleanup handler saw it */
    int cleanup_put;          /* result of giving the block back there */
    atomic_int passed_testcancel; /* must stay 0: the cancel acts there */
    pthread_t thread;
};

static void victim_cleanup(void *arg)
{
    struct victim *v = arg;
    v->returned_at_cleanup = atomic_load(&v->returned);
    /* Give the block back, as a real cleanup handler would: the pool only
     * stays whole if the block reached this thread before it was cancelled. */
    v->cleanup_put = v->block ? mempool_put(v->pool, v->block) : 0;
    atomic_store(&v->cleanup_ran, 1);
}

static void *victim_main(void *arg)
{
    struct victim *v = arg;
    pthread_cleanup_push(victim_cleanup, v);
    atomic_store(&v->tid, (int)syscall(SYS_gettid));
    v->block = mempool_get(v->pool);
    v->err = v->block ? 0 : errno;
    atomic_store(&v->returned, 1);
    pthread_testcancel();
    atomic_store(&v->passed_testcancel, 1);
    pthread_cleanup_pop(0);
    return NULL;
}

static void victim_start(struct victim *v, mempool *pool)
{
    memset(v, 0, sizeof *v);
    v->pool = pool;
    v->cleanup_put = -1;
    v->thread = check_thread(victim_main, v);
}

/* Waits until the victim sleeps inside mempool_get (several 'S' polls in a
 * row, as waiter_wait_asleep does). 0 if it returned instead. */
static int victim_wait_asleep(struct victim *v)
{
    int64_t deadline = check_now_ns() + 60 * SEC;
    int polls = 0;
    while (polls < 4) {
        if (atomic_load(&v->returned))
            return 0;
        REQUIRE(check_now_ns() < deadline);
        int tid = atomic_load(&v->tid);
        char state = tid ? waiter_task_state(tid) : 'R';
        if (state == '?') {
            check_sleep_ns(300 * MS);
            return !atomic_load(&v->returned);
        }
        polls = state == 'S' ? polls + 1 : 0;
        check_sleep_ns(5 * MS);
    }
    return !atomic_load(&v->returned);
}

/* Checks that a cancel sent to a sleeping victim has not ended its wait. */
static void check_cancel_pending(struct victim *v)
{
    REQUIRE(pthread_cancel(v->thread) == 0);
    check_sleep_ns(200 * MS);
    CHECK(!atomic_load(&v->returned));
    CHECK(!atomic_load(&v->cleanup_ran));
}

static void check_cancelled_after_return(struct victim *v)
{
    void *result = NULL;
    REQUIRE(pthread_join(v->thread, &result) == 0);
    CHECK(result == PTHREAD_CANCELED);
    CHECK(atomic_load(&v->cleanup_ran));
    CHECK_EQ(v->returned_at_cleanup, 1);
    CHECK_EQ(atomic_load(&v->passed_testcancel), 0);
}

/* Cancel pending, then a put: the victim (first in FIFO) gets the block,
 * returns, is cancelled at pthread_testcancel, and its cleanup puts the block
 * back, which must reach the second waiter. */
static void cancel_then_put(void)
{
    mempool *pool = check_arena_pool(2, 64, 0);
    void *b1 = mempool_try_get(pool), *b2 = mempool_try_get(pool);
    REQUIRE(b1 && b2);

    struct victim v;
    victim_start(&v, pool);
    REQUIRE(victim_wait_asleep(&v));
    struct waiter other = { .pool = pool, .call = WAITER_GET };
    waiter_start(&other);
    REQUIRE(waiter_wait_asleep(&other));

    check_cancel_pending(&v);
    CHECK(!waiter_done(&other));

    CHECK_EQ(mempool_put(pool, b1), 0);
    check_cancelled_after_return(&v);
    CHECK_EQ(v.err, 0);
    CHECK(v.block == b1);
    CHECK_EQ(v.cleanup_put, 0);

    CHECK(waiter_wait_done(&other, 10 * SEC));
    waiter_join(&other);
    CHECK_EQ(other.err, 0);
    CHECK(other.block == b1);
    CHECK_EQ(mempool_put(pool, other.block), 0);
    CHECK_EQ(mempool_put(pool, b2), 0);
    CHECK_EQ(mempool_available(pool), 2);
    mempool_destroy(pool);
}

/* Cancel pending, then close: the victim returns ECANCELED before it is
 * cancelled, and the other waiter is woken too. */
static void cancel_then_close(void)
{
    mempool *pool = check_arena_pool(1, 64, 0);
    void *held = mempool_try_get(pool);
    REQUIRE(held != NULL);

    struct victim v;
    victim_start(&v, pool);
    REQUIRE(victim_wait_asleep(&v));
    struct waiter other = { .pool = pool, .call = WAITER_GET };
    waiter_start(&other);
    REQUIRE(waiter_wait_asleep(&other));

    check_cancel_pending(&v);
    mempool_close(pool);
    check_cancelled_after_return(&v);
    CHECK(v.block == NULL);
    CHECK_EQ(v.err, ECANCELED);

    CHECK(waiter_wait_done(&other, 10 * SEC));
    waiter_join(&other);
    CHECK(other.block == NULL);
    CHECK_EQ(other.err, ECANCELED);
    CHECK_EQ(mempool_put(pool, held), 0);
    CHECK_EQ(mempool_available(pool), 1);
    mempool_destroy(pool);
}

int main(void)
{
    install_handlers();
    get_survives_signals(SIGUSR1, WAITER_GET);
    get_survives_signals(SIGUSR2, WAITER_GET);
    get_survives_signals(SIGUSR1, WAITER_GET_TIMEOUT);
    get_survives_signals(SIGUSR2, WAITER_GET_TIMEOUT);
    timeout_survives_signals(SIGUSR1);
    timeout_survives_signals(SIGUSR2);
    cancel_then_put();
    cancel_then_close();
    CHECK_DONE();
}
