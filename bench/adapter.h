/* SPDX-License-Identifier: MIT */
/* The adapter interface: one implementation of a block pool, seen by the
 * scenarios only through these calls.
 *
 * Adding an implementation is one file under adapters/ that fills a
 * struct bench_impl and names it with BENCH_ADAPTER, plus one line in
 * CMakeLists.txt to build it. Everything about the implementation (its
 * library, its process, its start-up) stays in that file.
 *
 * Calls go through function pointers for every implementation alike, so the
 * cost of the indirection is the same in every row of the table. */
#ifndef BENCH_ADAPTER_H
#define BENCH_ADAPTER_H

#include <stddef.h>

struct bench_impl {
    const char *name;
    /* Library version for the report; optional. */
    const char *(*version)(void);
    /* Process-wide start-up, run once before the first pool; optional.
     * Returns 0, or an errno value and a one-line reason in `why`. */
    int (*start)(char *why, size_t why_size);
    /* A pool of `capacity` blocks of `block_size` bytes; NULL on failure.
     * Allocators ignore the capacity. */
    void *(*create)(size_t block_size, size_t capacity);
    void (*destroy)(void *pool);
    /* A block, or NULL when none is free right now. */
    void *(*get)(void *pool);
    void (*put)(void *pool, void *block);
    /* Sleeps until a block is free; optional (NULL: cannot block). */
    void *(*get_wait)(void *pool);
    /* All n blocks or none (non-zero); optional, both or neither. */
    int (*get_bulk)(void *pool, void **blocks, size_t n);
    void (*put_bulk)(void *pool, void *const *blocks, size_t n);
    /* Run by each worker thread before its first and after its last call;
     * optional. */
    void (*thread_enter)(void *pool);
    void (*thread_exit)(void *pool);
    /* Threads must not be preempted inside a call (they may spin on each
     * other): cases with more threads than CPUs are not run. */
    int one_thread_per_cpu;
    /* Its futex and membarrier calls go through syscall(3), where the
     * handoff scenario counts them (the C library's mutexes and condition
     * variables make theirs directly). */
    int counts_syscalls;
    /* One line printed under the table when this implementation ran;
     * optional. */
    const char *note;
    /* The one scenario this implementation runs in (a variant that only
     * it can tell apart); NULL: every scenario. */
    const char *only_in;
};

void bench_register(const struct bench_impl *impl);

/* Registers an implementation before main() runs, so that the list of
 * implementations is exactly the set of adapter files linked in. */
#define BENCH_ADAPTER(impl)                                                    \
    __attribute__((constructor)) static void register_##impl(void)             \
    {                                                                          \
        bench_register(&impl);                                                 \
    }

/* Stride of a block in a bench-owned arena: room for a free-list link and
 * the same 16-byte alignment the library gives by default. */
size_t bench_stride(size_t block_size);

#endif
