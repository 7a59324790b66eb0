/* Which tools watch the process, and how much of a block they should see
 * (see track.h). */
#include "track.h"

unsigned mempool__track_tools(void)
{
    unsigned tools = 0;
    if (__asan_poison_memory_region && __asan_unpoison_memory_region)
        tools |= TRACK_ASAN;
#if defined(MEMPOOL_VALGRIND)
    if (RUNNING_ON_VALGRIND)
        tools |= TRACK_VALGRIND;
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
