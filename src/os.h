/* SPDX-License-Identifier: MIT */
/* The OS seam: everything the pool needs from the operating system, and
 * nothing else. The rest of src/ has no #ifdef for platforms.
 *
 * Waiting is futex-shaped: a thread sleeps on a 32-bit word while it holds an
 * expected value, and a waker changes the word before waking. Two backends
 * implement it: linux.c (Linux futex, private) and condvar.c
 * (pthread mutex + condition variable on CLOCK_MONOTONIC, any POSIX system),
 * chosen at build time. Memory, the clock and cancellation come from posix.c. */
#ifndef MEMPOOL_OS_H
#define MEMPOOL_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the binary format offers: ELF systems have hidden symbols, the
 * initial-exec thread-local model for a library's own variables, and weak
 * references that resolve to NULL when absent (how the ASan runtime is
 * found); Windows' PE/COFF has none of them. */
#if defined(__GNUC__) && !defined(_WIN32)
#define MEMPOOL_INTERNAL __attribute__((visibility("hidden")))
#define OS_TLS_ATTRIBUTES __attribute__((tls_model("initial-exec"), visibility("hidden")))
#define OS_WEAK_REFS 1
#else
#define MEMPOOL_INTERNAL
#define OS_TLS_ATTRIBUTES
#define OS_WEAK_REFS 0
#endif

/* Locks and one-time initialisation. The pool's lock and the registry's
 * are plain mutexes, never held across a sleep (waiters sleep on words). */
#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
typedef SRWLOCK os_lock_t;
#define OS_LOCK_INIT SRWLOCK_INIT
typedef INIT_ONCE os_once_t;
#define OS_ONCE_INIT INIT_ONCE_STATIC_INIT
static inline void os_lock_init(os_lock_t *l)
{
    InitializeSRWLock(l);
}
static inline void os_lock_destroy(os_lock_t *l)
{
    (void)l; /* an SRW lock holds no resource */
}
static inline void os_lock(os_lock_t *l)
{
    AcquireSRWLockExclusive(l);
}
static inline void os_unlock(os_lock_t *l)
{
    ReleaseSRWLockExclusive(l);
}
static BOOL CALLBACK os_once_call(PINIT_ONCE once, PVOID fn, PVOID *ignored)
{
    (void)once;
    (void)ignored;
    ((void (*)(void))(uintptr_t)fn)();
    return TRUE;
}
static inline void os_once(os_once_t *once, void (*fn)(void))
{
    InitOnceExecuteOnce(once, os_once_call, (PVOID)(uintptr_t)fn, NULL);
}
#else
#include <pthread.h>
typedef pthread_mutex_t os_lock_t;
#define OS_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
typedef pthread_once_t os_once_t;
#define OS_ONCE_INIT PTHREAD_ONCE_INIT
#if defined(MEMPOOL_DEBUG)
/* Debug builds check the lock discipline: an error-checking mutex refuses a
 * relock by its holder and an unlock by a thread that does not hold it, and
 * the refusal aborts. */
#include <stdlib.h>
static inline void os_lock_init(os_lock_t *l)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(l, &attr);
    pthread_mutexattr_destroy(&attr);
}
#define OS_LOCK_CHECKED(call) ((call) == 0 ? (void)0 : abort())
#else
static inline void os_lock_init(os_lock_t *l)
{
    pthread_mutex_init(l, NULL);
}
#define OS_LOCK_CHECKED(call) ((void)(call))
#endif
static inline void os_lock_destroy(os_lock_t *l)
{
    pthread_mutex_destroy(l);
}
static inline void os_lock(os_lock_t *l)
{
    OS_LOCK_CHECKED(pthread_mutex_lock(l));
}
static inline void os_unlock(os_lock_t *l)
{
    OS_LOCK_CHECKED(pthread_mutex_unlock(l));
}
static inline void os_once(os_once_t *once, void (*fn)(void))
{
    pthread_once(once, fn);
}
#endif

/* Deadlines are absolute CLOCK_MONOTONIC nanoseconds; this one means never. */
#define OS_FOREVER INT64_MAX

/* Now on CLOCK_MONOTONIC, in nanoseconds. */
MEMPOOL_INTERNAL int64_t mempool__os_now(void);

/* Sleeps while *word == expected, until woken or until `deadline`. Returns 0
 * after a wake-up, a spurious return or a changed word (the caller re-checks
 * its condition), ETIMEDOUT once the deadline has passed. Never returns EINTR,
 * never changes errno and is not a cancellation point. */
MEMPOOL_INTERNAL int mempool__os_wait(_Atomic uint32_t *word, uint32_t expected,
                                      int64_t deadline);

/* Wakes at most `count` threads sleeping on `word`. The waker changes the word
 * first. The word's memory may already be gone when this runs (a woken waiter
 * that saw the change may have returned): backends must not touch it. */
MEMPOOL_INTERNAL void mempool__os_wake(_Atomic uint32_t *word, int count);

/* The heavy barrier of the asymmetric fence (see cache.h): when it returns,
 * every other thread of the process has executed a full memory barrier, so
 * plain stores that threads made before that point are visible and their
 * later loads see the caller's earlier stores. mempool__os_heavy_barrier_init
 * registers for it once and tells whether the OS grants it; when it does
 * not (old kernel, seccomp, or a backend without one), callers fall back to
 * ordered atomics. */
MEMPOOL_INTERNAL bool mempool__os_heavy_barrier_init(void);
/* False when the barrier failed (nothing was ordered); from then on
 * mempool__os_heavy_barrier_init says no, so new pools start ordered. */
MEMPOOL_INTERNAL bool mempool__os_heavy_barrier(void);

#ifdef MEMPOOL_FAULT_INJECTION
/* Test builds only (defined by the platform's file): when the countdown is
 * k > 0, the k-th allocation from now fails (and the countdown stops at 0),
 * so tests can fail every allocation point in turn; while
 * mempool__fault_barrier is set, every heavy barrier fails, as one refused
 * by a seccomp filter installed after registration would, and is counted. */
extern _Atomic long mempool__fault_countdown;
extern _Atomic int mempool__fault_barrier;
extern _Atomic long mempool__fault_barrier_failures;

static inline bool os_fault_now(void)
{
    long left = atomic_load(&mempool__fault_countdown);
    while (left > 0)
        if (atomic_compare_exchange_weak(&mempool__fault_countdown, &left, left - 1))
            return left == 1;
    return false;
}

static inline bool os_barrier_fault(void)
{
    if (!atomic_load(&mempool__fault_barrier))
        return false;
    atomic_fetch_add(&mempool__fault_barrier_failures, 1);
    return true;
}
#define OS_FAULT_VARIABLES                                                     \
    _Atomic long mempool__fault_countdown;                                     \
    _Atomic int mempool__fault_barrier;                                        \
    _Atomic long mempool__fault_barrier_failures;
#else
static inline bool os_fault_now(void)
{
    return false;
}

static inline bool os_barrier_fault(void)
{
    return false;
}
#define OS_FAULT_VARIABLES
#endif

/* Called in the child of fork() (by the registry's atfork handler, which
 * runs alone there): resets the seam's process-wide state that threads of
 * the parent, which do not exist in the child, may have left held. */
MEMPOOL_INTERNAL void mempool__os_fork_child(void);

/* Thread exit: mempool__os_exit_hook registers, once per process, the
 * function that runs when a thread that armed the hook exits (false when
 * the OS gives none: threads then keep their caches until destroy);
 * mempool__os_exit_arm(context) makes it run for the calling thread, with
 * the context of its latest call (not NULL). The thread's thread-local
 * variables may be gone by then (Windows, where the C runtime's emulated
 * thread-local storage is released first): the function reaches the
 * thread's state through the context, and touches its thread-locals only
 * where OS_TLS_AT_EXIT says they live (POSIX: key destructors run before
 * the thread's storage goes). */
MEMPOOL_INTERNAL bool mempool__os_exit_hook(void (*at_exit)(void *context));
MEMPOOL_INTERNAL void mempool__os_exit_arm(void *context);
#if defined(_WIN32)
#define OS_TLS_AT_EXIT 0
#else
#define OS_TLS_AT_EXIT 1
#endif

/* Runs the three functions around fork(), as pthread_atfork does. */
MEMPOOL_INTERNAL void mempool__os_atfork(void (*prepare)(void), void (*parent)(void),
                                         void (*child)(void));

/* Zero-filled memory aligned to `alignment` (a power of two), NULL on failure.
 * Large regions are reserved from the OS and committed by first touch. */
MEMPOOL_INTERNAL void *mempool__os_alloc(size_t size, size_t alignment);

/* Releases what mempool__os_alloc returned, with the same size and alignment. */
MEMPOOL_INTERNAL void mempool__os_free(void *p, size_t size, size_t alignment);

/* Placed regions (the arena, the side arrays): where they must live, and
 * what was mapped, so that the release unmaps exactly that. */
struct os_place {
    bool huge; /* huge pages: hugetlb where reserved, else transparent huge
                * pages where the kernel allows, else normal pages */
    int node;  /* a NUMA node to bind the pages to, or -1 */
};
struct os_region {
    void *map;     /* the mapping (NULL: mempool__os_alloc's own memory) */
    size_t length; /* its length */
};
/* Zero-filled memory of `size` bytes aligned to `alignment`, placed as
 * `how` asks, NULL on failure; *r records what to release. A refused huge
 * page is no failure (the next kind is tried); a refused binding is. */
MEMPOOL_INTERNAL void *mempool__os_alloc_placed(size_t size, size_t alignment,
                                                const struct os_place *how, struct os_region *r);
MEMPOOL_INTERNAL void mempool__os_free_placed(void *p, size_t size, size_t alignment,
                                              const struct os_region *r);
/* True when the process may place memory on NUMA node `node` (node 0 on a
 * kernel or a system without NUMA). */
MEMPOOL_INTERNAL bool mempool__os_node_usable(int node);
/* The size of the pages that back [p, p + size) as the kernel maps them now:
 * hugetlb pages, transparent huge pages covering it, or the base page. */
MEMPOOL_INTERNAL size_t mempool__os_page_size_at(const void *p, size_t size);
/* The NUMA node of the page at p, or -1 when the kernel does not say. */
MEMPOOL_INTERNAL int mempool__os_node_of(const void *p);

/* Disables thread cancellation around a callback or a wait and restores the
 * caller's state afterwards. */
MEMPOOL_INTERNAL int mempool__os_cancel_off(void);
MEMPOOL_INTERNAL void mempool__os_cancel_restore(int old_state);

/* Segments shared between processes (src/os/shm_linux.c on Linux,
 * src/os/shm_none.c elsewhere, where every call fails with ENOSYS). Int
 * returns are 0 or a positive errno value; errno is kept. A segment is a
 * file: a named POSIX shared-memory object or a sealed memfd. Liveness is a
 * lock the kernel drops when its holder exits: an open-file-description
 * lock on one byte per participant, taken through the participant's own
 * description of the file, so that neither a zombie nor a process that
 * reuses a dead one's pid holds it. */
MEMPOOL_INTERNAL bool mempool__os_shm_supported(void);
/* Errors only shared pools return: where the C library lacks them (Windows),
 * no call returns them, but the code that would must still compile (the
 * same values as include/mempool.h gives them). */
#include <errno.h>
#ifndef EUSERS
#define EUSERS 0x7001
#endif
#ifndef ESTALE
#define ESTALE 0x7002
#endif
/* A new segment of `size` bytes, zero-filled, with no permission bits yet
 * (named) or sealed against shrinking and growing (name NULL): *fd. */
MEMPOOL_INTERNAL int mempool__os_shm_create(const char *name, size_t size, int *fd);
/* Gives a named segment its final permission bits, once it is ready. */
MEMPOOL_INTERNAL int mempool__os_shm_publish(int fd, unsigned mode);
MEMPOOL_INTERNAL int mempool__os_shm_open(const char *name, int *fd);
MEMPOOL_INTERNAL int mempool__os_shm_unlink(const char *name);
/* A descriptor of the same segment (close-on-exec): *out. */
MEMPOOL_INTERNAL int mempool__os_shm_dup(int fd, int *out);
/* The segment's size, after checking it is a regular file that nobody can
 * shrink under the mapping: a sealed memfd, or a named object. */
MEMPOOL_INTERNAL int mempool__os_shm_size(int fd, size_t *size);
/* Reads n bytes at offset 0 into private memory (EPROTO when short). */
MEMPOOL_INTERNAL int mempool__os_shm_read(int fd, void *buf, size_t n);
/* Maps the segment read-write: 0 and *out, or EACCES (a descriptor
 * without write access) or ENOMEM. */
MEMPOOL_INTERNAL int mempool__os_shm_map(int fd, size_t size, void **out);
MEMPOOL_INTERNAL void mempool__os_shm_unmap(void *p, size_t size);
MEMPOOL_INTERNAL void mempool__os_shm_close(int fd);
/* A private open file description of the segment, for liveness locks. */
MEMPOOL_INTERNAL int mempool__os_shm_reopen(int fd, int *out);
/* Takes participant `slot`'s lock without waiting: 0, or EAGAIN when a live
 * holder has it (or it cannot be taken at all). */
MEMPOOL_INTERNAL int mempool__os_shm_claim(int own, unsigned slot);
/* True when some other description (a live process) holds `slot`'s lock. */
MEMPOOL_INTERNAL bool mempool__os_shm_held(int own, unsigned slot);
/* Asks for huge pages behind part of a mapping; never a failure. */
MEMPOOL_INTERNAL void mempool__os_shm_advise_huge(void *p, size_t size);
/* Sleeps about ms milliseconds (waiting for a segment being made). */
MEMPOOL_INTERNAL void mempool__os_sleep_ms(int ms);
/* Test builds: dies at once, as SIGKILL kills. */
MEMPOOL_INTERNAL void mempool__os_die(void);
/* The calling process's id, for reports. */
MEMPOOL_INTERNAL long mempool__os_pid(void);
/* mempool__os_wait and mempool__os_wake for words in a shared segment:
 * keyed by the file and offset, so any process's mapping reaches them. The
 * deadline is always a real one (callers sleep in slices). */
MEMPOOL_INTERNAL int mempool__os_shared_wait(_Atomic uint32_t *word, uint32_t expected,
                                             int64_t deadline);
MEMPOOL_INTERNAL void mempool__os_shared_wake(_Atomic uint32_t *word, int count);
/* The heavy barrier of the asymmetric fence across processes: when it
 * returns, every thread of every process that registered (the init call,
 * once per process: false when the OS refuses) has executed a full memory
 * barrier. False when it failed: nothing was ordered. */
MEMPOOL_INTERNAL bool mempool__os_shared_barrier_init(void);
MEMPOOL_INTERNAL bool mempool__os_shared_barrier(void);

#endif
