/* SPDX-License-Identifier: MIT */
/* Counts the heavy barriers and futex calls that go through syscall(3), for
 * the handoff scenario's figures per wait.
 *
 * This definition of syscall stands in for the C library's in the whole
 * program: a definition in the executable takes precedence over the C
 * library's for every shared library too, mempool's included, and mempool
 * makes its futex and membarrier calls through syscall(3). Each call costs
 * one relaxed atomic increment more than it would; mempool makes none on a
 * path that does not sleep, wake or fence. The C library's own futex calls
 * (its mutexes and condition variables) are direct system calls that never
 * come here, so they are not counted. */
#include <dlfcn.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "bench.h"

static atomic_uint_fast64_t barriers, futex_waits, futex_wakes;

typedef long (*syscall_fn)(long, ...);

/* The C library's syscall(3), looked up on first use; every thread that
 * looks finds the same function, so a race only repeats the lookup. */
static syscall_fn next_syscall(void)
{
    static _Atomic(syscall_fn) next;
    syscall_fn fn = atomic_load_explicit(&next, memory_order_relaxed);
    if (!fn) {
        fn = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
        atomic_store_explicit(&next, fn, memory_order_relaxed);
    }
    return fn;
}

static void count(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

long syscall(long number, ...)
{
    /* membarrier takes three arguments; everything else gets the six the
     * C library's syscall(3) passes on, futex among them. */
    int argc = number == SYS_membarrier ? 3 : 6;
    long arg[6] = {0};
    va_list ap;
    va_start(ap, number);
    for (int i = 0; i < argc; i++)
        arg[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_membarrier && arg[0] == MEMBARRIER_CMD_PRIVATE_EXPEDITED)
        count(&barriers);
    if (number == SYS_futex) {
        int op = (int)arg[1] & FUTEX_CMD_MASK;
        if (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET)
            count(&futex_waits);
        else if (op == FUTEX_WAKE || op == FUTEX_WAKE_BITSET)
            count(&futex_wakes);
    }
    return next_syscall()(number, arg[0], arg[1], arg[2], arg[3], arg[4], arg[5]);
}

struct syscall_counts bench_syscall_counts(void)
{
    return (struct syscall_counts){atomic_load(&barriers), atomic_load(&futex_waits),
                                   atomic_load(&futex_wakes)};
}
