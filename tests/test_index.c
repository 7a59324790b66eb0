/* SPDX-License-Identifier: MIT */
/* mempool_owns, mempool_index and mempool_block: round trips in every mode,
 * a constant stride in arena mode, strides that are not powers of two (so
 * the division-free index computation is exercised up to the last block),
 * and every kind of pointer that is not a block. */
#include <stdalign.h>
#include <stdbool.h>

#include "check.h"

/* A pointer `off` bytes from p, formed without pointer arithmetic outside
 * any object. */
static const void *at(const void *p, intptr_t off)
{
    return (const void *)((uintptr_t)p + (uintptr_t)off);
}

static void expect_not_block(const mempool *pool, const void *p, int line)
{
    int owns = mempool_owns(pool, p);
    size_t idx = mempool_index(pool, p);
    if (owns != 0 || idx != SIZE_MAX) {
        fprintf(stderr, "%s:%d: %p: expected owns 0 / index SIZE_MAX, got %d / %zu\n",
                __FILE__, line, p, owns, idx);
        check_failures++;
    }
}
#define EXPECT_NOT_BLOCK(pool, p) expect_not_block((pool), (p), __LINE__)

static void expect_block_einval(const mempool *pool, size_t index, int line)
{
    errno = 0;
    void *b = mempool_block(pool, index);
    if (b != NULL || errno != EINVAL) {
        fprintf(stderr, "%s:%d: block(%zu): expected NULL/EINVAL, got %p/errno %d\n",
                __FILE__, line, index, b, errno);
        check_failures++;
    }
}
#define EXPECT_BLOCK_EINVAL(pool, i) expect_block_einval((pool), (i), __LINE__)

static mempool *arena(size_t cap, size_t size, size_t alignment)
{
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = cap;
    cfg.block_size = size;
    cfg.alignment = alignment;
    return mempool_create(&cfg);
}

/* Pointers that are never blocks of any pool. */
static void check_foreign(const mempool *pool)
{
    int on_stack;
    void *heap = malloc(64);
    REQUIRE(heap != NULL);
    EXPECT_NOT_BLOCK(pool, NULL);
    EXPECT_NOT_BLOCK(pool, &on_stack);
    EXPECT_NOT_BLOCK(pool, heap);
    EXPECT_NOT_BLOCK(pool, (const void *)UINTPTR_MAX);
    EXPECT_NOT_BLOCK(pool, (const void *)(uintptr_t)1);
    free(heap);
}

/* Every block maps to its index and back; block i is base + i * stride;
 * every byte after a block start up to the next is not a block (checked
 * for the first, a middle and the last block, and sampled elsewhere); just
 * outside the arena is not a block. */
static void check_arena(size_t cap, size_t size, size_t alignment)
{
    mempool *pool = arena(cap, size, alignment);
    REQUIRE(pool != NULL);
    const unsigned char *base = mempool_block(pool, 0);
    REQUIRE(base != NULL);
    size_t align = alignment ? alignment : alignof(max_align_t);
    size_t stride = (size + align - 1) / align * align; /* the least it can be */
    if (cap > 1) {
        const unsigned char *second = mempool_block(pool, 1);
        REQUIRE(second != NULL);
        stride = (size_t)(second - base);
    }
    CHECK(stride >= size);
    CHECK_EQ(stride % align, 0);

    errno = 4242;
    for (size_t i = 0; i < cap; i++) {
        const unsigned char *b = mempool_block(pool, i);
        if (b != at(base, (intptr_t)(i * stride))) {
            fprintf(stderr, "cap %zu size %zu align %zu: block %zu not at base + i * stride\n",
                    cap, size, alignment, i);
            check_failures++;
            break;
        }
        CHECK_EQ(mempool_index(pool, b), i);
        CHECK_EQ(mempool_owns(pool, b), 1);
        bool every_byte = i == 0 || i == cap / 2 || i == cap - 1 || i % 97 == 0;
        for (size_t off = 1; off < stride; off += every_byte ? 1 : (stride / 3 + 1))
            EXPECT_NOT_BLOCK(pool, at(b, (intptr_t)off));
    }
    CHECK_EQ(errno, 4242); /* successful lookups leave errno alone */

    EXPECT_BLOCK_EINVAL(pool, cap);
    EXPECT_BLOCK_EINVAL(pool, cap + 1);
    EXPECT_BLOCK_EINVAL(pool, SIZE_MAX);
    EXPECT_NOT_BLOCK(pool, at(base, (intptr_t)(cap * stride)));
    EXPECT_NOT_BLOCK(pool, at(base, (intptr_t)(cap * stride + 1)));
    EXPECT_NOT_BLOCK(pool, at(base, (intptr_t)((cap + 1) * stride)));
    EXPECT_NOT_BLOCK(pool, at(base, (intptr_t)(2 * cap * stride)));
    EXPECT_NOT_BLOCK(pool, at(base, -1));
    EXPECT_NOT_BLOCK(pool, at(base, -(intptr_t)stride));
    EXPECT_NOT_BLOCK(pool, at(base, -(intptr_t)align));
    check_foreign(pool);

    /* Blocks out and blocks free are owned alike. */
    void **out = calloc(cap, sizeof *out);
    REQUIRE(out != NULL);
    size_t n_out = (cap + 1) / 2;
    for (size_t i = 0; i < n_out; i++) {
        out[i] = mempool_get(pool);
        REQUIRE(out[i] != NULL);
        CHECK_EQ(mempool_owns(pool, out[i]), 1);
        size_t idx = mempool_index(pool, out[i]);
        REQUIRE(idx < cap);
        CHECK(mempool_block(pool, idx) == out[i]);
    }
    for (size_t i = 0; i < cap; i++) {
        const void *b = mempool_block(pool, i);
        CHECK_EQ(mempool_owns(pool, b), 1);
        CHECK_EQ(mempool_index(pool, b), i);
    }
    for (size_t i = 0; i < n_out; i++)
        CHECK_EQ(mempool_put(pool, out[i]), 0);
    free(out);
    mempool_destroy(pool);
}

/* The largest capacity with strides that are not powers of two: a
 * reciprocal must stay exact up to the last block. Memory is committed
 * lazily and only addresses are computed, so this is quick; where the
 * address space is too small for the arena this part is skipped. */
static void check_large(size_t cap, size_t size, size_t alignment)
{
    errno = 0;
    mempool *pool = arena(cap, size, alignment);
    if (pool == NULL && errno == ENOMEM) {
        fprintf(stderr, "note: %zu x %zu bytes: ENOMEM, skipped\n", cap, size);
        return;
    }
    REQUIRE(pool != NULL);
    const unsigned char *base = mempool_block(pool, 0);
    const unsigned char *second = mempool_block(pool, 1);
    REQUIRE(base != NULL && second != NULL);
    size_t stride = (size_t)(second - base);
    size_t bad = 0;
    for (size_t i = 0; i < cap; i += (i < 4096 || i + 4096 > cap) ? 1 : 251) {
        const void *b = at(base, (intptr_t)(i * stride));
        bad += mempool_block(pool, i) != b;
        bad += mempool_index(pool, b) != i;
        /* Offsets inside the block: the next aligned one, the last byte. */
        if (stride > 1) {
            bad += mempool_index(pool, at(b, 1)) != SIZE_MAX;
            bad += mempool_index(pool, at(b, (intptr_t)stride - 1)) != SIZE_MAX;
        }
        if (alignment < stride)
            bad += mempool_index(pool, at(b, (intptr_t)alignment)) != SIZE_MAX;
        /* The byte before a block ends the previous one (or is outside). */
        size_t before = i > 0 && stride == 1 ? i - 1 : SIZE_MAX;
        bad += mempool_index(pool, at(b, -1)) != before;
    }
    if (bad)
        fprintf(stderr, "%zu x %zu (align %zu): %zu wrong lookups\n", cap, size,
                alignment, bad);
    CHECK_EQ(bad, 0);
    EXPECT_NOT_BLOCK(pool, at(base, (intptr_t)(cap * stride)));
    EXPECT_NOT_BLOCK(pool, at(base, (intptr_t)(cap * stride + 1)));
    EXPECT_NOT_BLOCK(pool, at(base, -1));
    EXPECT_BLOCK_EINVAL(pool, cap);
    mempool_destroy(pool);
}

/* Generator mode: make hands out addresses from `buf`, `step` bytes apart,
 * in descending order, so make order and address order differ. step 1 makes
 * every byte after a block the start of another. */
struct gen {
    unsigned char *buf;
    size_t cap;
    size_t step;
    size_t makes;
};

static void *gen_make(void *arg)
{
    struct gen *g = arg;
    REQUIRE(g->makes < g->cap);
    return g->buf + (g->cap - 1 - g->makes++) * g->step;
}

static const void *gen_nth(const struct gen *g, size_t k)
{
    return g->buf + (g->cap - 1 - k) * g->step;
}

static void check_generator(size_t cap, size_t step, unsigned flags)
{
    struct gen g = { malloc(cap * step + 1), cap, step, 0 };
    REQUIRE(g.buf != NULL);
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = cap;
    cfg.make = gen_make;
    cfg.arg = &g;
    cfg.flags = flags;
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    bool lazy = flags & MEMPOOL_LAZY;

    if (lazy) {
        /* Nothing made: no pointer is a block, no index has one. */
        EXPECT_NOT_BLOCK(pool, gen_nth(&g, 0));
        errno = 0;
        CHECK(mempool_block(pool, 0) == NULL);
        CHECK_EQ(errno, ENOENT);
        /* Make half of them. */
        void **out = calloc(cap, sizeof *out);
        REQUIRE(out != NULL);
        for (size_t i = 0; i < cap / 2 + 1; i++) {
            out[i] = mempool_get(pool);
            REQUIRE(out[i] == gen_nth(&g, i));
        }
        for (size_t i = 0; i < cap / 2 + 1; i++)
            CHECK_EQ(mempool_put(pool, out[i]), 0);
        size_t made = g.makes;
        CHECK_EQ(made, cap / 2 + 1);
        for (size_t k = made; k < cap; k++) {
            EXPECT_NOT_BLOCK(pool, gen_nth(&g, k));
            errno = 0;
            CHECK(mempool_block(pool, k) == NULL);
            CHECK_EQ(errno, ENOENT);
        }
        /* Make the rest. */
        for (size_t i = 0; i < cap; i++) {
            out[i] = mempool_get(pool);
            REQUIRE(out[i] != NULL);
        }
        CHECK_EQ(g.makes, cap);
        for (size_t i = 0; i < cap; i++)
            CHECK_EQ(mempool_put(pool, out[i]), 0);
        free(out);
    }

    CHECK_EQ(g.makes, cap);
    errno = 4242;
    for (size_t k = 0; k < cap; k++) {
        const void *b = gen_nth(&g, k);
        CHECK(mempool_block(pool, k) == b);
        CHECK_EQ(mempool_index(pool, b), k);
        CHECK_EQ(mempool_owns(pool, b), 1);
        /* Bytes between block starts are not blocks (sampled for wide steps). */
        for (size_t off = 1; off < step; off += step <= 64 ? 1 : 61)
            EXPECT_NOT_BLOCK(pool, at(b, (intptr_t)off));
    }
    CHECK_EQ(errno, 4242);
    EXPECT_BLOCK_EINVAL(pool, cap);
    EXPECT_BLOCK_EINVAL(pool, SIZE_MAX);
    EXPECT_NOT_BLOCK(pool, g.buf + cap * step); /* just past the last address */
    EXPECT_NOT_BLOCK(pool, at(g.buf, -1));
    check_foreign(pool);

    /* Out or free, a block is owned. */
    void *b1 = mempool_try_get(pool);
    REQUIRE(b1 != NULL);
    CHECK_EQ(mempool_owns(pool, b1), 1);
    CHECK(mempool_block(pool, mempool_index(pool, b1)) == b1);
    if (cap > 1) {
        void *b2 = mempool_try_get(pool);
        REQUIRE(b2 != NULL);
        CHECK(mempool_block(pool, mempool_index(pool, b2)) == b2);
        CHECK_EQ(mempool_put(pool, b1), 0);
        CHECK_EQ(mempool_owns(pool, b1), 1);
        CHECK_EQ(mempool_owns(pool, b2), 1);
        CHECK_EQ(mempool_put(pool, b2), 0);
    } else {
        CHECK_EQ(mempool_put(pool, b1), 0);
        CHECK_EQ(mempool_owns(pool, b1), 1);
    }

    mempool_destroy(pool);
    free(g.buf);
}

int main(void)
{
    /* Power-of-two and other strides, alignments from 1 to a page. */
    check_arena(1, 5, 0);
    check_arena(10, 1, 0);
    check_arena(7, 3, 1);
    check_arena(33, 24, 8);
    check_arena(33, 48, 8);
    check_arena(50, 100, 4);
    check_arena(50, 100, 8);
    check_arena(17, 24, 0);
    check_arena(64, 64, 0);
    check_arena(29, 1000, 8);
    check_arena(5, 4096, 4096);
    check_arena(3, 5000, 4096);
    check_arena(1000, 12, 4);
    check_arena(100003, 24, 8);

    check_large(MEMPOOL_CAPACITY_MAX, 7, 1);
    check_large(MEMPOOL_CAPACITY_MAX, 100, 4);

    check_generator(1, 1, 0);
    check_generator(16, 1, 0);
    check_generator(16, 1, MEMPOOL_LAZY);
    check_generator(300, 3, 0);
    check_generator(300, 1, MEMPOOL_LAZY);
    check_generator(1000, 64, 0);
    check_generator(257, 4096, MEMPOOL_LAZY | MEMPOOL_NO_CACHE);
    CHECK_DONE();
}
