/* SPDX-License-Identifier: MIT */
/* Which tools watch the process, and how much of a block they should see
 * (see track.h). */
#include "index.h"
#include "track.h"

unsigned mempool__track_tools(void)
{
    unsigned tools = 0;
    if (__asan_poison_memory_region && __asan_unpoison_memory_region)
        tools |= TRACK_ASAN;
#if defined(MEMPOOL_VALGRIND)
    /* Only memcheck answers its own requests (with -1): other tools, such as
     * callgrind counting instructions, must see the plain pool. */
    static char probe;
    if (RUNNING_ON_VALGRIND && VALGRIND_MAKE_MEM_NOACCESS(&probe, 1) == (unsigned long)-1) {
        VALGRIND_MAKE_MEM_DEFINED(&probe, 1);
        tools |= TRACK_VALGRIND;
    }
#endif
    return tools;
}

size_t mempool__track_extent(const mempool *pool, const void *block)
{
    if (pool->base)
        return pool->stride;
    if ((pool->track & TRACK_ASAN) && __sanitizer_get_ownership &&
        __sanitizer_get_allocated_size && __sanitizer_get_ownership(block))
        return __sanitizer_get_allocated_size(block);
    return 0;
}

void mempool__track_free(const mempool *pool, const void *block)
{
    track_poison(pool, block, mempool__track_extent(pool, block));
}

void mempool__track_out(const mempool *pool, const void *block)
{
    size_t bytes = pool->base ? pool->block_size : mempool__track_extent(pool, block);
    track_unpoison(pool, block, bytes);
}

void mempool__track_leaks(const mempool *pool)
{
#if defined(MEMPOOL_VALGRIND)
    /* Arena blocks still out at destroy die with the arena: memcheck prints
     * where each one is, with the stack of the destroy. */
    if (!(pool->track & TRACK_VALGRIND) || !pool->base)
        return;
    for (size_t i = 0; i < pool->capacity; i++)
        if (!stack_is_free(&pool->stack, (uint32_t)i))
            VALGRIND_PRINTF_BACKTRACE("mempool: block %p (index %zu) still out at destroy: "
                                      "leaked\n", block_at(pool, (uint32_t)i), i);
#else
    (void)pool;
#endif
}
