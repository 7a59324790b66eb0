/* SPDX-License-Identifier: MIT */
/* The OS seam's wait and wake contract (src/os.h), called directly: the
 * pool's waits rely on each clause, and a backend that breaks one makes
 * gets time out early, sleep past their deadline or lose a wake-up.
 * Linked against a static copy of the library (the seam is internal). */
#include <stdatomic.h>

#include "check.h"

int64_t mempool__os_now(void);
int mempool__os_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline);
void mempool__os_wake(_Atomic uint32_t *word, int count);
#define OS_FOREVER INT64_MAX

#define MS 1000000LL

struct sleeper {
    _Atomic uint32_t word;
    atomic_int asleep;
    int preset_errno; /* errno when the wait starts */
    int result, errno_after;
};

static void *sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    atomic_store(&s->asleep, 1);
    int rc = 0;
    errno = s->preset_errno;
    /* A wait may return 0 spuriously: loop as the pool does. */
    while (atomic_load(&s->word) == 0 && rc == 0) {
        errno = s->preset_errno;
        rc = mempool__os_wait(&s->word, 0, mempool__os_now() + 20000 * MS);
    }
    s->result = rc;
    s->errno_after = errno;
    return NULL;
}

/* A wake-up after the word changed returns 0, whatever errno held before
 * (a backend that reads a stale errno after a successful wait would report
 * ETIMEDOUT), and errno is left as it was. */
static void test_woken(int preset)
{
    struct sleeper s = { .preset_errno = preset };
    pthread_t t = check_thread(sleeper_main, &s);
    check_await(&s.asleep, 1);
    check_sleep_ns(20 * MS); /* let it reach the kernel */
    atomic_store(&s.word, 1);
    mempool__os_wake(&s.word, 1);
    pthread_join(t, NULL);
    CHECK_EQ(s.result, 0);
    CHECK_EQ(s.errno_after, preset);
}

/* Direct wait calls: no sleep when the word already differs, ETIMEDOUT for
 * a deadline passed or reached (never early), errno untouched. */
static void test_direct(void)
{
    _Atomic uint32_t word = 5;
    errno = 1234;
    CHECK_EQ(mempool__os_wait(&word, 4, OS_FOREVER), 0); /* differs: at once */
    CHECK_EQ(errno, 1234);
    CHECK_EQ(mempool__os_wait(&word, 5, mempool__os_now() - MS), ETIMEDOUT);
    CHECK_EQ(mempool__os_wait(&word, 5, mempool__os_now()), ETIMEDOUT);
    CHECK_EQ(errno, 1234);
    for (int i = 0; i < 3; i++) {
        int64_t start = mempool__os_now(), deadline = start + 15 * MS;
        int rc;
        while ((rc = mempool__os_wait(&word, 5, deadline)) == 0)
            ; /* spurious returns are allowed; early timeouts are not */
        CHECK_EQ(rc, ETIMEDOUT);
        CHECK(mempool__os_now() >= deadline);
        CHECK_EQ(errno, 1234);
    }
    int64_t a = mempool__os_now(), b = mempool__os_now();
    CHECK(a > 0 && b >= a);
    /* A wake with nobody asleep is harmless. */
    mempool__os_wake(&word, 1);
    mempool__os_wake(&word, 1 << 20);
}

int main(void)
{
    test_direct();
    test_woken(0);
    test_woken(ETIMEDOUT);
    test_woken(EINTR);
    CHECK_DONE();
}
