/* SPDX-License-Identifier: MIT */
/* Telling AddressSanitizer and Valgrind which blocks are free, so that a use
 * after put is reported in the caller's program even though the memory is
 * never really freed. One flag per pool (pool->track) decides at creation;
 * when it is off, the hot paths pay one predictable branch.
 *
 * ASan: the library calls the runtime through weak references, so it works
 * when only the user's program is built with -fsanitize=address and links
 * an uninstrumented library: the references resolve to the runtime at load
 * time, or stay NULL. Arena blocks are poisoned whole (stride) while free
 * and unpoisoned (block_size) when handed out; the stride is a multiple of
 * ASan's 8-byte granule whenever ASan is present, so neighbours never share
 * a granule. Generator blocks are tracked when ASan's allocator owns them
 * (it knows their size); they are unpoisoned again before unmake.
 *
 * Valgrind (built with MEMPOOL_VALGRIND and <valgrind/memcheck.h>): free
 * arena blocks are NOACCESS; a block handed out is DEFINED again, which is
 * exact for an arena that starts zero-filled, so the contents a block keeps
 * between put and get never raise false "uninitialised" reports. */
#ifndef MEMPOOL_TRACK_H
#define MEMPOOL_TRACK_H

#include "internal.h"

#if defined(MEMPOOL_VALGRIND)
#include <valgrind/memcheck.h>
#endif

/* The ASan runtime's interface, if the process has one (MEMPOOL_TRACK_ASAN
 * builds link it for certain). */
#if defined(MEMPOOL_TRACK_ASAN) || OS_WEAK_REFS
#if defined(MEMPOOL_TRACK_ASAN)
#define ASAN_WEAK
#else
#define ASAN_WEAK __attribute__((weak))
#endif
extern void __asan_poison_memory_region(void const volatile *addr, size_t size) ASAN_WEAK;
extern void __asan_unpoison_memory_region(void const volatile *addr, size_t size) ASAN_WEAK;
extern int __sanitizer_get_ownership(const volatile void *p) ASAN_WEAK;
extern size_t __sanitizer_get_allocated_size(const volatile void *p) ASAN_WEAK;
#else
/* No weak references (Windows): no run-time ASan detection; these are the
 * absent runtime's NULLs. */
#define __asan_poison_memory_region ((void (*)(void const volatile *, size_t))0)
#define __asan_unpoison_memory_region ((void (*)(void const volatile *, size_t))0)
#define __sanitizer_get_ownership ((int (*)(const volatile void *))0)
#define __sanitizer_get_allocated_size ((size_t (*)(const volatile void *))0)
#endif

enum { TRACK_ASAN = 1, TRACK_VALGRIND = 2 };

/* Which tools are watching this process (at pool creation). */
MEMPOOL_INTERNAL unsigned mempool__track_tools(void);
/* Bytes the tools must treat as the block: the stride in arena mode, the
 * allocation size in generator mode (0: not tracked). */
MEMPOOL_INTERNAL size_t mempool__track_extent(const mempool *pool, const void *block);

static inline void track_poison(const mempool *pool, const void *block, size_t bytes)
{
    if ((pool->track & TRACK_ASAN) && bytes)
        __asan_poison_memory_region(block, bytes);
#if defined(MEMPOOL_VALGRIND)
    if ((pool->track & TRACK_VALGRIND) && bytes)
        VALGRIND_MAKE_MEM_NOACCESS(block, bytes);
#endif
}

static inline void track_unpoison(const mempool *pool, const void *block, size_t bytes)
{
    if ((pool->track & TRACK_ASAN) && bytes)
        __asan_unpoison_memory_region(block, bytes);
#if defined(MEMPOOL_VALGRIND)
    if ((pool->track & TRACK_VALGRIND) && bytes)
        VALGRIND_MAKE_MEM_DEFINED(block, bytes);
#endif
}

MEMPOOL_INTERNAL void mempool__track_free(const mempool *pool, const void *block);
/* Under memcheck: one report per arena block still out at destroy. */
MEMPOOL_INTERNAL void mempool__track_leaks(const mempool *pool);
MEMPOOL_INTERNAL void mempool__track_out(const mempool *pool, const void *block);

/* A block becomes free: called before it is published to any other thread.
 * The work is out of line, so that a pool without tools pays one branch and
 * its hit path keeps its registers. */
static inline void track_free(const mempool *pool, const void *block)
{
    if (unlikely(pool->track))
        mempool__track_free(pool, block);
}

/* A block is handed out: called once the caller owns it. */
static inline void track_out(const mempool *pool, const void *block)
{
    if (unlikely(pool->track))
        mempool__track_out(pool, block);
}

#endif
