/* SPDX-License-Identifier: MIT */
/* Stands in for the C library's syscall(2) in the test program, so that a
 * test can count the heavy barriers (membarrier PRIVATE_EXPEDITED) the pool
 * issues and make them fail, as a seccomp filter installed after start-up
 * or a kernel out of memory would. Every other call goes to the real
 * syscall(2). The definition in the executable takes precedence over the C
 * library's for the pool library too, static or shared. */
#ifndef MEMPOOL_TEST_SYSCALL_SPY_H
#define MEMPOOL_TEST_SYSCALL_SPY_H

#include <dlfcn.h>
#include <errno.h>
#include <linux/membarrier.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static atomic_long spy_barriers;      /* PRIVATE_EXPEDITED calls seen */
static atomic_int spy_fail_barriers;  /* when set, they fail with EPERM */

long syscall(long number, ...)
{
    /* Looked up on first use by whichever thread gets there; every lookup
     * finds the same function. */
    static _Atomic(void *) next;
    void *found = atomic_load(&next);
    if (!found) {
        found = dlsym(RTLD_NEXT, "syscall");
        atomic_store(&next, found);
    }
    long (*real)(long, ...) = (long (*)(long, ...))found;
    va_list ap;
    va_start(ap, number);
    /* Read only as many arguments as the pool passes to each call. */
    int count = number == SYS_membarrier ? 3 : 6;
    long a[6] = { 0 };
    for (int i = 0; i < count; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_membarrier && a[0] == MEMBARRIER_CMD_PRIVATE_EXPEDITED) {
        atomic_fetch_add(&spy_barriers, 1);
        if (atomic_load(&spy_fail_barriers)) {
            errno = EPERM;
            return -1;
        }
    }
    if (count == 3)
        return real(number, a[0], a[1], a[2]);
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

#endif
