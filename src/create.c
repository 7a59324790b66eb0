/* SPDX-License-Identifier: MIT */
/* Pool lifecycle: checking the config, laying out the arena and the side
 * arrays, making blocks, and releasing everything at destroy. */
#include <errno.h>
#include <stdalign.h>
#include <string.h>

#include "cache.h"
#include "depot.h"
#include "index.h"
#include "locked.h"
#include "shm.h"
#include "track.h"

#define KNOWN_FLAGS \
    (MEMPOOL_NO_CACHE | MEMPOOL_LAZY | MEMPOOL_CHECKED | MEMPOOL_HUGEPAGES | MEMPOOL_NUMA)

static int config_check(const mempool_config *c)
{
    if (!c || c->capacity == 0 || c->capacity > MEMPOOL_CAPACITY_MAX)
        return EINVAL;
    if (c->flags & ~(unsigned)KNOWN_FLAGS)
        return EINVAL;
    if ((c->flags & MEMPOOL_NO_CACHE) && c->cache_size)
        return EINVAL;
    if ((c->block_size != 0) == (c->make != NULL))
        return EINVAL;
    /* Placement: the caller's region comes with its size and is the
     * caller's to place; a node is named only with MEMPOOL_NUMA. */
    if ((c->memory != NULL) != (c->memory_size != 0))
        return EINVAL;
    if (c->memory && (c->flags & (MEMPOOL_HUGEPAGES | MEMPOOL_NUMA)))
        return EINVAL;
    if (!(c->flags & MEMPOOL_NUMA) ? c->numa_node != 0 : !mempool__os_node_usable(c->numa_node))
        return EINVAL;
    if (c->make)
        return c->alignment || c->init || c->fini || c->memory ||
               (c->flags & MEMPOOL_HUGEPAGES) ? EINVAL : 0;
    if (c->unmake || (c->flags & MEMPOOL_LAZY))
        return EINVAL;
    if (c->alignment & (c->alignment - 1))
        return EINVAL;
    return 0;
}

static uintptr_t align_up(uintptr_t p, size_t alignment)
{
    return (p + alignment - 1) & ~(uintptr_t)(alignment - 1);
}

/* The caller's region holds capacity strides from its first aligned
 * address: EINVAL when it does not. */
static int region_check(const mempool *pool, const mempool_config *c)
{
    if (!c->memory)
        return 0;
    uintptr_t start = (uintptr_t)c->memory;
    uintptr_t first = align_up(start, pool->arena_alignment);
    if (first < start || first - start > c->memory_size ||
        c->memory_size - (first - start) < pool->arena_bytes)
        return EINVAL;
    return 0;
}

/* Sizes the arena: 0, or EOVERFLOW when it cannot be addressed. */
static int arena_layout(mempool *pool, const mempool_config *c)
{
    size_t alignment = c->alignment ? c->alignment : alignof(max_align_t);
    /* Block starts stay multiples of `alignment`; under ASan the stride is
     * also a whole number of its 8-byte granules, so that poisoning one
     * block never touches a neighbour. */
    size_t step = (pool->track & TRACK_ASAN) && alignment < 8 ? 8 : alignment;
    size_t guard = pool->checked ? CHECKED_GUARD : 0;
    if (alignment > PTRDIFF_MAX || c->block_size > PTRDIFF_MAX - (step - 1) - guard)
        return EOVERFLOW;
    size_t stride = (c->block_size + guard + step - 1) & ~(step - 1);
    if (stride > PTRDIFF_MAX / c->capacity)
        return EOVERFLOW;
    pool->block_size = c->block_size;
    pool->stride = stride;
    pool->arena_bytes = stride * c->capacity;
    pool->arena_alignment = alignment;
    if ((stride & (stride - 1)) == 0) {
        while (((size_t)1 << pool->stride_shift) < stride)
            pool->stride_shift++;
    } else {
        pool->stride_inverse = UINT64_MAX / stride + 1;
    }
    return 0;
}

/* Entries: a power of two, at least one per block and at least 64, so that
 * the multiplicative spread (stack.h) is a bijection over whole lines. */
static size_t entry_count(size_t capacity)
{
    size_t n = 64;
    while (n < capacity)
        n <<= 1;
    return n;
}

/* The per-thread cache size. Automatic (0): capacity / 16, at most 256, and
 * no cache below 64 blocks, so a cache never holds a large share of a small
 * pool. Explicit sizes are clamped to a quarter of the capacity and to
 * CACHE_SIZE_MAX. A size under 2 means no cache. */
uint32_t mempool__cache_size_for(const mempool_config *c)
{
    /* Checked pools hand blocks out in FIFO order: no LIFO caches. */
    if (c->flags & (MEMPOOL_NO_CACHE | MEMPOOL_CHECKED))
        return 0;
    if (!c->cache_size && c->capacity < 64)
        return 0;
    size_t size = c->cache_size ? c->cache_size : c->capacity / 16;
    size_t limit = c->cache_size ? c->capacity / 4 : 256;
    if (size > limit)
        size = limit;
    if (size > CACHE_SIZE_MAX)
        size = CACHE_SIZE_MAX;
    return size < 2 ? 0 : (uint32_t)size;
}

/* One allocation holds the stack entries and, in generator mode, the
 * index -> block array and the pointer map. */
static int meta_alloc(mempool *pool)
{
    size_t count = entry_count(pool->capacity);
    size_t entries = count * sizeof(uint64_t);
    size_t blocks = pool->make ? pool->capacity * sizeof(void *) : 0;
    size_t map = pool->make ? mempool__map_bytes(pool->capacity) : 0;
    size_t checked = mempool__checked_bytes(pool);
    if (pool->arena_bytes > PTRDIFF_MAX - entries - blocks - map - checked)
        return EOVERFLOW;
    /* On the arena's node, where the pool has one. */
    struct os_place how = { .huge = false, .node = pool->numa_node };
    char *meta = mempool__os_alloc_placed(entries + blocks + map + checked, CACHE_LINE, &how,
                                          &pool->meta_region);
    if (!meta)
        return ENOMEM;
    pool->meta_bytes = entries + blocks + map + checked;
    pool->stack.entries = (_Atomic uint64_t *)meta;
    pool->stack.mask = (uint32_t)(count - 1);
    if (pool->make) {
        pool->blocks = (_Atomic(void *) *)(meta + entries);
        mempool__map_init(&pool->map, meta + entries + blocks, pool->capacity);
    }
    return 0;
}

/* Puts blocks 0 .. n-1 on the stack, block 0 on top. */
static void stack_fill(mempool *pool, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t next = i + 1 < n ? (uint32_t)(i + 1) : STACK_NIL;
        atomic_store_explicit(stack_entry(&pool->stack, (uint32_t)i),
                              entry_make(next, (uint32_t)(n - i)), memory_order_relaxed);
    }
    atomic_store_explicit(&pool->stack.head, n ? 0 : STACK_NIL, memory_order_relaxed);
}

static void unmake_free_blocks(mempool *pool)
{
    size_t made = atomic_load_explicit(&pool->made, memory_order_acquire);
    for (size_t i = 0; i < made; i++) {
        if (!stack_is_free(&pool->stack, (uint32_t)i))
            continue;
        void *block = block_at(pool, (uint32_t)i);
        track_out(pool, block);
        mempool__call_unmake(pool, block);
    }
}

/* At creation every block made is free: tell the tools. */
static void track_all_free(mempool *pool)
{
    if (!pool->track)
        return;
    if (pool->base) {
        track_poison(pool, pool->base, pool->arena_bytes);
        return;
    }
    size_t made = atomic_load_explicit(&pool->made, memory_order_relaxed);
    for (size_t i = 0; i < made; i++)
        track_free(pool, block_at(pool, (uint32_t)i));
}

static void pool_free(mempool *pool)
{
    if (pool->base) {
        /* A borrowed region goes back to its owner usable by the tools. */
        track_unpoison(pool, pool->base, pool->arena_bytes);
        if (!pool->arena_borrowed)
            mempool__os_free_placed(pool->base, pool->arena_bytes, pool->arena_alignment,
                                    &pool->arena_region);
    }
    if (pool->stack.entries)
        mempool__os_free_placed((void *)pool->stack.entries, pool->meta_bytes, CACHE_LINE,
                                &pool->meta_region);
    mempool__depot_free(&pool->depot);
    os_lock_destroy(&pool->lock);
    mempool__os_free(pool, sizeof *pool, alignof(mempool));
}

/* Generator mode without MEMPOOL_LAZY: `capacity` makes, in index order. */
static int make_all(mempool *pool)
{
    for (size_t i = 0; i < pool->capacity; i++) {
        void *block = mempool__call_make(pool);
        if (!block || mempool__register(pool, block) == STACK_NIL) {
            /* Every registered block is free (none was handed out yet), so
             * this releases each block made so far exactly once; a repeated
             * pointer was registered once and is released once. */
            unmake_free_blocks(pool);
            return ENOMEM;
        }
        /* The stack is filled after the loop; mark the block free now so
         * that a failure above knows it is the pool's to release. */
        atomic_store_explicit(stack_entry(&pool->stack, (uint32_t)i), ENTRY_FREE,
                              memory_order_relaxed);
    }
    stack_fill(pool, pool->capacity);
    return 0;
}

/* Calls fn on every arena block in index order, as init and fini run: not
 * a cancellation point, errno kept. */
static void arena_each(mempool *pool, void (*fn)(void *block, void *arg), void *arg)
{
    int saved = errno;
    int cancel = mempool__os_cancel_off();
    for (size_t i = 0; i < pool->capacity; i++)
        fn(pool->base + i * pool->stride, arg);
    mempool__os_cancel_restore(cancel);
    errno = saved;
}

static int arena_make(mempool *pool, const mempool_config *c)
{
    if (c->memory) {
        pool->base = (char *)align_up((uintptr_t)c->memory, pool->arena_alignment);
        pool->arena_borrowed = true;
    } else {
        struct os_place how = { .huge = c->flags & MEMPOOL_HUGEPAGES, .node = pool->numa_node };
        pool->base = mempool__os_alloc_placed(pool->arena_bytes, pool->arena_alignment, &how,
                                              &pool->arena_region);
        if (!pool->base)
            return ENOMEM;
    }
    if (c->init)
        arena_each(pool, c->init, c->arg);
    pool->fini = c->fini;
    stack_fill(pool, pool->capacity);
    return 0;
}

mempool *mempool_create(const mempool_config *config)
{
    int err = config_check(config);
    if (err) {
        errno = err;
        return NULL;
    }
    mempool *pool = mempool__os_alloc(sizeof *pool, alignof(mempool));
    if (!pool) {
        errno = ENOMEM;
        return NULL;
    }
    pool->capacity = config->capacity;
    pool->make = config->make;
    pool->unmake = config->unmake;
    pool->on_misuse = config->on_misuse;
    pool->arg = config->arg;
    pool->flags = config->flags;
    pool->checked = config->flags & MEMPOOL_CHECKED;
    pool->ops = pool->checked ? &mempool__checked_ops : NULL;
    pool->track = mempool__track_tools();
    pool->numa_node = config->flags & MEMPOOL_NUMA ? config->numa_node : -1;
    os_lock_init(&pool->lock);
    atomic_store_explicit(&pool->stack.head, STACK_NIL, memory_order_relaxed);

    err = config->make ? 0 : arena_layout(pool, config);
    if (!err)
        err = region_check(pool, config);
    if (!err)
        err = meta_alloc(pool);
    if (!err) {
        if (!config->make)
            err = arena_make(pool, config);
        else if (config->flags & MEMPOOL_LAZY)
            atomic_store_explicit(&pool->unmade, pool->capacity, memory_order_relaxed);
        else
            err = make_all(pool);
    }
    if (err) {
        pool_free(pool);
        errno = err;
        return NULL;
    }
    if (pool->checked)
        mempool__checked_init(pool, (char *)pool->stack.entries + pool->meta_bytes -
                                        mempool__checked_bytes(pool));
    track_all_free(pool);
#if defined(MEMPOOL_TSAN) || defined(MEMPOOL_FORCE_ORDERED)
    atomic_init(&pool->cache_ordered, true);
#else
    atomic_init(&pool->cache_ordered, !mempool__os_heavy_barrier_init());
#endif
    pool->cache_size = mempool__cache_size_for(config);
    pool->depot.size = pool->cache_size / 2;
    pool->cache_marks = pool->track ? CACHE_TRACK : 0;
    /* A pool that starts ordered where the hit path is fence-free runs every
     * cache operation on the full path, with exchanges (cache.h). */
    if (!CACHE_HIT_ORDERED && atomic_load_explicit(&pool->cache_ordered, memory_order_relaxed))
        pool->cache_marks |= CACHE_ORDERED;
    /* The put hit path validates power-of-two strides itself (cache.h),
     * for pools whose puts it can serve. */
    if (pool->base && !pool->stride_inverse)
        pool->valid_limit = pool->capacity;
    if (pool->cache_size && !pool->track)
        pool->hit_limit = pool->valid_limit;
    mempool__registry_add(pool);
    return pool;
}

void mempool_destroy(mempool *pool)
{
    if (!pool)
        return;
    if (pool->shm) {
        mempool__shm_detach(pool);
        return;
    }
    mempool__registry_remove(pool);
    if (pool->checked)
        mempool__checked_leaks(pool);
    if (pool->track)
        mempool__track_leaks(pool);
    if (pool->make)
        unmake_free_blocks(pool);
    if (pool->fini) {
        /* fini may touch every block, free ones too. */
        track_unpoison(pool, pool->base, pool->arena_bytes);
        arena_each(pool, pool->fini, pool->arg);
    }
    pool_free(pool);
}

size_t mempool_arena_bytes(const mempool_config *config)
{
    if (!config) {
        errno = EINVAL;
        return 0;
    }
    /* The layout alone: the region's own fields do not matter here. */
    mempool_config c = *config;
    c.memory = NULL;
    c.memory_size = 0;
    int err = config_check(&c);
    if (!err && c.make)
        err = EINVAL;
    mempool probe;
    memset(&probe, 0, sizeof probe);
    probe.track = mempool__track_tools();
    probe.checked = c.flags & MEMPOOL_CHECKED;
    if (!err)
        err = arena_layout(&probe, &c);
    /* No overflow below: the arena is a whole number of strides, each a
     * multiple of the alignment, and at most PTRDIFF_MAX bytes, so at most
     * PTRDIFF_MAX - (alignment - 1). */
    if (err) {
        errno = err;
        return 0;
    }
    return probe.arena_bytes + (probe.arena_alignment - 1);
}

int mempool_arena(const mempool *pool, mempool_arena_info *out)
{
    if (!pool || !out || !pool->base)
        return EINVAL;
    memset(out, 0, sizeof *out);
    out->base = pool->base;
    out->size = pool->arena_bytes;
    out->stride = pool->stride;
    out->page_size = mempool__os_page_size_at(pool->base, pool->arena_bytes);
    return 0;
}

int mempool_foreach(mempool *pool, int (*visit)(void *block, size_t index, void *arg), void *arg)
{
    if (!pool || !visit)
        return EINVAL;
    /* Lazy pools: a make in progress has its index and not yet its block. */
    size_t n = pool->base ? pool->capacity : atomic_load_explicit(&pool->made, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        void *block = block_at(pool, (uint32_t)i);
        if (!block)
            continue;
        int rc = visit(block, i, arg);
        if (rc)
            return rc;
    }
    return 0;
}

size_t mempool_available(const mempool *pool)
{
    if (!pool)
        return 0;
    if (pool->shm)
        return mempool__shm_available(pool);
    os_lock((os_lock_t *)&pool->lock);
    size_t n = mempool__available_locked(pool);
    os_unlock((os_lock_t *)&pool->lock);
    return n;
}

size_t mempool_capacity(const mempool *pool)
{
    return pool ? pool->capacity : 0;
}

size_t mempool_block_size(const mempool *pool)
{
    return pool ? pool->block_size : 0;
}
