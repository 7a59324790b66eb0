/* SPDX-License-Identifier: MIT */
/* Concurrency Kit's ck_stack as a Treiber-stack pool: the free list lives in
 * the free blocks themselves, and pops use the generation-counted
 * double-width CAS that makes them safe against ABA with many consumers. */
#include <ck_stack.h>
#include <stdlib.h>

#include "../adapter.h"

#ifndef CK_F_STACK_POP_MPMC
#error "ck_stack has no ABA-safe multi-consumer pop on this target"
#endif

struct ck_pool {
    _Alignas(64) ck_stack_t stack; /* alone on its line: it is the contended word */
    _Alignas(64) void *arena;
};

static void *create(size_t block_size, size_t capacity)
{
    struct ck_pool *pool = aligned_alloc(64, sizeof *pool);
    size_t stride = bench_stride(block_size);
    if (!pool || !(pool->arena = aligned_alloc(16, stride * capacity))) {
        free(pool);
        return NULL;
    }
    ck_stack_init(&pool->stack);
    for (size_t i = capacity; i-- > 0;)
        ck_stack_push_mpmc(&pool->stack, (ck_stack_entry_t *)((char *)pool->arena + i * stride));
    return pool;
}

static void destroy(void *opaque)
{
    struct ck_pool *pool = opaque;
    free(pool->arena);
    free(pool);
}

static void *get(void *opaque)
{
    return ck_stack_pop_mpmc(&((struct ck_pool *)opaque)->stack);
}

static void put(void *opaque, void *block)
{
    ck_stack_push_mpmc(&((struct ck_pool *)opaque)->stack, block);
}

static const char *version(void)
{
    return BENCH_CK_VERSION;
}

static const struct bench_impl ck_pool = {
    .name = "ck_stack",
    .version = version,
    .create = create,
    .destroy = destroy,
    .get = get,
    .put = put,
};
BENCH_ADAPTER(ck_pool)
