/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: input bytes become a sequence of API calls on up to
 * three pools (arena, eager and lazy generator; cached, uncached and
 * checked; capacities from 1 to 2^16 and cache sizes over their whole range,
 * past the clamp included; valid and invalid configs), and every result is
 * checked against a reference model kept here: which blocks are out, free or
 * not made yet, what each block's contents must be, how many times `make`,
 * `unmake`, `init` and `on_misuse` ran, and what the statistics must say.
 * Any disagreement aborts.
 *
 * Bulk calls take every size from 1 to the capacity, with extra weight on
 * the edges where the library changes path: the 64-block chunk of the bulk
 * calls, the per-thread cache's size (as the header documents it), the
 * capacity. A bulk put carries up to two flaws (a repeat inside the array,
 * a free block, a bad pointer) anywhere in the array.
 *
 * Only non-blocking calls are made (timeout 0, tiny timeouts, and a
 * blocking get only where the model says it returns at once): the fuzzer is
 * single-threaded, so nothing could ever wake a sleeping call, and a get
 * that hangs where the model says it must not is itself a finding (caught by
 * libFuzzer's -timeout). tests/test_differential.c drives one pool from
 * several threads.
 *
 * Seeds (tests/fuzz/corpus): arena-cached, eager-make-fails, invalid-configs,
 * lazy and lazy-bulk-cached start small pools; bulk-past-chunk creates a
 * 4096-block arena with the automatic cache and takes 65..256 blocks in one
 * bulk get; large-explicit-cache creates a 65536-block arena with a 4096-block
 * cache and moves every block with bulk calls, flushes and drains.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined with the library sources
 * (tests/CMakeLists.txt, MEMPOOL_BUILD_FUZZ=ON); run: `tests/run fuzz`. */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mempool.h"

#define EXPECT(cond, ...)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_api:%d: expected %s:", __LINE__, #cond);  \
            fprintf(stderr, " " __VA_ARGS__);                               \
            fputc('\n', stderr);                                            \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* An errno value no call sets: a call that must leave errno alone is seen to
 * do so when it is still there afterwards. */
#define SENTINEL 4242

#define KNOWN_FLAGS \
    (MEMPOOL_NO_CACHE | MEMPOOL_LAZY | MEMPOOL_CHECKED | MEMPOOL_HUGEPAGES | MEMPOOL_NUMA)

enum { POOLS = 3, GEN_BYTES = 24, CHECK_BYTES = 64, BULK_SLACK = 8 };
/* The largest capacity the harness creates a valid pool with. */
#define MODEL_MAX ((size_t)1 << 16)
/* Blocks an input may move in all (creates, bulk calls): an input full of
 * 2^16-block bulk calls would otherwise outrun libFuzzer's -timeout. */
#define WORK_BUDGET ((size_t)1 << 20)
/* The header's cache rules: automatic is capacity / 16 up to 256, explicit
 * sizes are clamped to capacity / 4 and 4096, under 2 means none. */
#define AUTO_CACHE_MAX 256
#define CACHE_MAX 4096

/* The model's bookkeeping runs once per block moved, so on large pools it
 * would take most of the time if libFuzzer traced it too; its branches say
 * nothing about the library, so they give no coverage feedback. */
#if defined(__clang__)
#define MODEL_CODE __attribute__((no_sanitize("coverage")))
#else
#define MODEL_CODE
#endif

enum mode { ARENA, EAGER, LAZY };
enum state { UNMADE, FREE, OUT };

struct model {
    mempool *pool;
    enum mode mode;
    size_t cap, block_size, stride, alignment;
    size_t cache_hint;            /* the cache size the header promises */
    int has_unmake, has_misuse, closed;
    size_t out;                   /* blocks out: the length of out_list */
    size_t made;                  /* blocks registered (arena: cap) */
    /* Per block, by index (make order), `cap` entries each. */
    void **known;
    uint8_t *state;
    uint8_t *tag;                 /* byte every block byte must hold */
    uint8_t *unmade_flag;
    uint8_t *mark;                /* scratch for one bulk put, cleared after */
    uint32_t *slot;               /* place in out_list or free_list */
    uint32_t *out_list, *free_list; /* indices of out / free made blocks */
    void **bulk;                  /* arrays for bulk calls: cap + BULK_SLACK */
    /* Generator mode: block -> index (open addressing, NULL = empty). */
    void **map_keys;
    uint32_t *map_values;
    size_t map_mask;
    uint8_t next_tag;
    /* make control and counters */
    unsigned make_calls, make_failures, fail_at, dup_at;
    int fail_next, dup_next;
    unsigned unmakes, inits;
    /* on_misuse: what the last report said */
    unsigned misuse_calls;
    const char *misuse_what;
    const void *misuse_block;
    /* What mempool_stats_read must say, since creation or the last reset. */
    uint64_t gets, puts, refused, timeouts, out_high;
};

static struct model pools[POOLS];
static char foreign_buf[64];
static size_t work_left;

struct input {
    const uint8_t *p;
    size_t n;
};

/* Bytes past the end read as 0, so every input is a complete program. */
static uint8_t u8(struct input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static unsigned u16(struct input *in)
{
    unsigned lo = u8(in);
    return lo | (unsigned)u8(in) << 8;
}

static void charge(size_t blocks)
{
    work_left = blocks < work_left ? work_left - blocks : 0;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

/* ---- the model's tables ---- */

static void model_alloc(struct model *m, size_t cap, int generator)
{
    m->known = xcalloc(cap, sizeof *m->known);
    m->state = xcalloc(cap, 1);
    m->tag = xcalloc(cap, 1);
    m->unmade_flag = xcalloc(cap, 1);
    m->mark = xcalloc(cap, 1);
    m->slot = xcalloc(cap, sizeof *m->slot);
    m->out_list = xcalloc(cap, sizeof *m->out_list);
    m->free_list = xcalloc(cap, sizeof *m->free_list);
    m->bulk = xcalloc(cap + BULK_SLACK, sizeof *m->bulk);
    if (generator) {
        size_t slots = 16;
        while (slots < 2 * cap)
            slots <<= 1;
        m->map_keys = xcalloc(slots, sizeof *m->map_keys);
        m->map_values = xcalloc(slots, sizeof *m->map_values);
        m->map_mask = slots - 1;
    }
}

static void model_free(struct model *m)
{
    free(m->known);
    free(m->state);
    free(m->tag);
    free(m->unmade_flag);
    free(m->mark);
    free(m->slot);
    free(m->out_list);
    free(m->free_list);
    free(m->bulk);
    free(m->map_keys);
    free(m->map_values);
    memset(m, 0, sizeof *m);
}

MODEL_CODE static size_t map_home(const struct model *m, const void *b)
{
    return (size_t)(((uint64_t)(uintptr_t)b * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & m->map_mask;
}

MODEL_CODE static void map_add(struct model *m, void *b, size_t i)
{
    size_t h = map_home(m, b);
    while (m->map_keys[h])
        h = (h + 1) & m->map_mask;
    m->map_keys[h] = b;
    m->map_values[h] = (uint32_t)i;
}

/* The model's index of block b, or SIZE_MAX when b is not one of its blocks
 * (computed without the pool, which is what is under test). */
MODEL_CODE static size_t known_index(const struct model *m, const void *b)
{
    if (!m->made || !b)
        return SIZE_MAX;
    if (m->mode == ARENA) {
        uintptr_t off = (uintptr_t)b - (uintptr_t)m->known[0];
        if (off >= m->cap * m->stride || off % m->stride)
            return SIZE_MAX;
        return off / m->stride;
    }
    for (size_t h = map_home(m, b); m->map_keys[h]; h = (h + 1) & m->map_mask)
        if (m->map_keys[h] == b)
            return m->map_values[h];
    return SIZE_MAX;
}

MODEL_CODE static size_t free_made(const struct model *m)
{
    return m->made - m->out;
}

/* Moves block i between the out and free lists, O(1) either way. */
MODEL_CODE static void list_remove(uint32_t *list, size_t length, uint32_t *slot, size_t i)
{
    uint32_t last = list[length - 1];
    list[slot[i]] = last;
    slot[last] = slot[i];
}

MODEL_CODE static void set_out(struct model *m, size_t i)
{
    list_remove(m->free_list, free_made(m), m->slot, i);
    m->state[i] = OUT;
    m->slot[i] = (uint32_t)m->out;
    m->out_list[m->out++] = (uint32_t)i;
    if (m->out > m->out_high)
        m->out_high = m->out;
}

MODEL_CODE static void set_free(struct model *m, size_t i)
{
    list_remove(m->out_list, m->out, m->slot, i);
    m->out--;
    m->state[i] = FREE;
    m->slot[i] = (uint32_t)free_made(m) - 1;
    m->free_list[free_made(m) - 1] = (uint32_t)i;
}

/* A new block at index m->made, free. */
MODEL_CODE static void add_made(struct model *m, void *b)
{
    size_t i = m->made++;
    m->known[i] = b;
    m->tag[i] = 0;
    m->unmade_flag[i] = 0;
    m->state[i] = FREE;
    m->slot[i] = (uint32_t)free_made(m) - 1;
    m->free_list[free_made(m) - 1] = (uint32_t)i;
    if (m->map_keys)
        map_add(m, b, i);
}

MODEL_CODE static size_t content_bytes(const struct model *m)
{
    size_t n = m->mode == ARENA ? m->block_size : GEN_BYTES;
    return n < CHECK_BYTES ? n : CHECK_BYTES;
}

/* The pool never writes into a block it holds: every byte is still the tag
 * written when the block was last out (or zero/init's fill at creation). */
MODEL_CODE static void check_content(const struct model *m, size_t i)
{
    uint8_t want[CHECK_BYTES];
    size_t n = content_bytes(m);
    memset(want, m->tag[i], n);
    if (memcmp(m->known[i], want, n) == 0)
        return;
    const uint8_t *b = m->known[i];
    for (size_t k = 0; k < n; k++)
        EXPECT(b[k] == m->tag[i], "block %zu byte %zu is %u, not %u", i, k, b[k], m->tag[i]);
}

MODEL_CODE static void write_content(struct model *m, size_t i)
{
    m->tag[i] = ++m->next_tag;
    memset(m->known[i], m->tag[i], content_bytes(m));
}

static void *fz_make(void *arg)
{
    struct model *m = arg;
    m->make_calls++;
    errno = ERANGE;   /* the pool must not let this leak into the caller's errno */
    if (m->fail_next || m->make_calls == m->fail_at) {
        m->fail_next = 0;
        m->make_failures++;
        return NULL;
    }
    if ((m->dup_next || m->make_calls == m->dup_at) && m->made) {
        m->dup_next = 0;
        m->make_failures++;
        return m->known[m->make_calls % m->made];
    }
    EXPECT(m->made < m->cap, "make called with all %zu slots made", m->cap);
    void *b = xcalloc(1, GEN_BYTES);
    add_made(m, b);
    return b;
}

static void fz_unmake(void *block, void *arg)
{
    struct model *m = arg;
    size_t i = known_index(m, block);
    EXPECT(i != SIZE_MAX, "unmake of a block make never returned: %p", block);
    EXPECT(m->state[i] != OUT, "unmake of block %zu, which is out", i);
    EXPECT(!m->unmade_flag[i], "block %zu unmade twice", i);
    m->unmade_flag[i] = 1;
    m->unmakes++;
    free(block);
}

static void fz_init(void *block, void *arg)
{
    struct model *m = arg;
    m->inits++;
    memset(block, 0xA5, m->block_size < CHECK_BYTES ? m->block_size : CHECK_BYTES);
}

static void fz_misuse(const char *what, const void *block, void *arg)
{
    struct model *m = arg;
    m->misuse_calls++;
    m->misuse_what = what;
    m->misuse_block = block;
    /* Called with no lock held: these calls would deadlock otherwise. */
    if (m->pool) {
        (void)mempool_available(m->pool);
        (void)mempool_capacity(m->pool);
    }
    errno = EDOM;   /* the pool restores the caller's errno */
}

/* After every call: the pool's counts agree with the model. */
static void check_counts(const struct model *m)
{
    errno = SENTINEL;
    EXPECT(mempool_capacity(m->pool) == m->cap);
    EXPECT(mempool_available(m->pool) == m->cap - m->out, "available %zu, model %zu out of %zu",
           mempool_available(m->pool), m->out, m->cap);
    EXPECT(mempool_block_size(m->pool) == (m->mode == ARENA ? m->block_size : 0));
    EXPECT(errno == SENTINEL, "a query changed errno to %d", errno);
}

/* A get handed out b: it must be a known free block, and becomes out. */
MODEL_CODE static void took(struct model *m, void *b)
{
    size_t i = known_index(m, b);
    EXPECT(i != SIZE_MAX, "get returned %p, not a block of the pool", b);
    EXPECT(m->state[i] == FREE, "get returned block %zu, which is already out", i);
    EXPECT(mempool_index(m->pool, b) == i, "index %zu, model %zu", mempool_index(m->pool, b), i);
    check_content(m, i);
    set_out(m, i);
    m->gets++;
    write_content(m, i);
}

/* A put of b was accepted. */
MODEL_CODE static void returned(struct model *m, void *b)
{
    set_free(m, known_index(m, b));
    m->puts++;
}

/* ---- create and destroy ---- */

static void destroy_slot(struct model *m)
{
    if (!m->pool) {
        model_free(m);
        return;
    }
    /* Cleared first: a checked pool reports blocks still out at destroy, and
     * on_misuse must not call into a pool that is being destroyed. */
    mempool *pool = m->pool;
    m->pool = NULL;
    mempool_destroy(pool);
    if (m->mode != ARENA) {
        unsigned expect_unmakes = 0;
        for (size_t i = 0; i < m->made; i++) {
            if (m->state[i] == OUT) {
                EXPECT(!m->unmade_flag[i], "destroy unmade block %zu, which is out", i);
                free(m->known[i]);  /* blocks out stay the caller's */
            } else if (m->has_unmake) {
                EXPECT(m->unmade_flag[i], "destroy did not unmake free block %zu", i);
                expect_unmakes++;
            } else {
                free(m->known[i]);
            }
        }
        EXPECT(m->unmakes == expect_unmakes, "%u unmakes, expected %u", m->unmakes,
               expect_unmakes);
    }
    model_free(m);
}

/* Capacities: mostly small, then every size up to 300 (the automatic cache
 * starts at 32, the bulk chunk is 64), the powers of two and their
 * neighbours up to 2^16 (the large ones rarer: every input ends by taking
 * each block once), any size up to 2^16, and invalid ones. */
static size_t pick_capacity(struct input *in)
{
    static const size_t edges[] = {
        31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1023, 1024, 1025,
        4095, 4096, 4097,
    };
    static const size_t large[] = { 8191, 8192, 16384, 32767, 32768, 65535, 65536 };
    uint8_t b = u8(in);
    if (b < 184)
        return 1 + b % 24;
    if (b < 212)
        return 1 + u8(in) % 300;
    if (b < 228)
        return edges[u8(in) % (sizeof edges / sizeof edges[0])];
    if (b < 234)
        return large[u8(in) % (sizeof large / sizeof large[0])];
    if (b < 240)
        return 1 + u16(in) % MODEL_MAX;
    switch (b) {
    case 246: case 247: case 248: return 0;
    case 249: case 250: return MEMPOOL_CAPACITY_MAX + 1;
    case 251: return SIZE_MAX;
    default: return 8;
    }
}

static size_t pick_block_size(uint8_t b)
{
    if (b < 232)
        return 1 + (size_t)b * 7 % 300;
    switch (b) {
    case 232: case 233: case 234: case 235: return (size_t)64 << (b - 232);
    case 236: return PTRDIFF_MAX;
    case 237: return SIZE_MAX;
    case 238: return (size_t)PTRDIFF_MAX / 2 + 1;
    case 239: return (size_t)1 << 50;
    case 240: return (size_t)1 << 62;
    case 241: return SIZE_MAX - 64;
    default: return 0;
    }
}

static size_t pick_alignment(uint8_t b)
{
    if (b < 160)
        return 0;
    if (b < 240)
        return (size_t)1 << (b % 13);
    if (b < 248)
        return (size_t)3 << (b - 240);      /* not a power of two */
    if (b == 248)
        return (size_t)1 << 62;
    if (b == 249)
        return (size_t)1 << 63;
    return 0;
}

/* Cache sizes: automatic, none (1), the smallest real one (2), small ones,
 * the edges of the bulk chunk and of the clamps, any 16-bit size, and sizes
 * far past the 4096 clamp. */
static unsigned pick_cache_size(struct input *in)
{
    static const unsigned edges[] = {
        3, 63, 64, 65, 127, 128, 255, 256, 257, 1023, 1024, 4095, 4096, 4097, 8192,
        65536, 1u << 31,
    };
    uint8_t b = u8(in);
    if (b < 128)
        return 0;
    if (b < 170)
        return 2 + b % 15;
    if (b < 185)
        return 1;
    if (b < 195)
        return 2;
    if (b < 225)
        return edges[u8(in) % (sizeof edges / sizeof edges[0])];
    if (b < 240)
        return 1 + u16(in);
    if (b < 250)
        return 5000;
    return UINT32_MAX;
}

/* The per-thread cache size the header documents; used only to aim bulk
 * sizes at its edges, never to judge a result. */
static size_t cache_hint(const mempool_config *c)
{
    if (c->flags & (MEMPOOL_NO_CACHE | MEMPOOL_CHECKED))
        return 0;
    size_t size = c->cache_size ? c->cache_size : c->capacity / 16;
    size_t limit = c->cache_size ? c->capacity / 4 : AUTO_CACHE_MAX;
    size = size < limit ? size : limit;
    size = size < CACHE_MAX ? size : CACHE_MAX;
    return size < 2 ? 0 : size;
}

/* A block count for a bulk call, 1 .. limit (limit >= 1): small ones, any in
 * range, and the edges where the library changes path. */
static size_t pick_count(struct input *in, const struct model *m, size_t limit)
{
    uint8_t sel = u8(in);
    size_t n;
    if (sel < 112) {
        n = 1 + sel % 16;
    } else if (sel < 176) {
        n = 1 + u16(in) % limit;
    } else {
        size_t c = m->cache_hint;
        const size_t edges[] = {
            63, 64, 65, 127, 128, 129, c / 2, c - 1, c, c + 1, 2 * c,
            limit / 2, limit - 1, limit,
        };
        n = edges[(sel - 176) % (sizeof edges / sizeof edges[0])];
    }
    if (n == 0)
        n = 1;
    return n < limit ? n : limit;
}

/* The spec's EINVAL list, written from the header rather than the code. */
static int config_invalid(const mempool_config *c)
{
    if (c->capacity == 0 || c->capacity > MEMPOOL_CAPACITY_MAX)
        return 1;
    if (c->alignment & (c->alignment - 1))
        return 1;
    if ((c->block_size != 0) == (c->make != NULL))
        return 1;
    if (c->make && (c->alignment || c->init))
        return 1;
    if (!c->make && (c->unmake || (c->flags & MEMPOOL_LAZY)))
        return 1;
    if ((c->flags & MEMPOOL_NO_CACHE) && c->cache_size)
        return 1;
    if (c->flags & ~(unsigned)KNOWN_FLAGS)
        return 1;
    /* Placement: a region comes with its size (and is too small here when
     * given), a node only with MEMPOOL_NUMA, and no region, fini or huge
     * pages in generator mode. */
    if ((c->memory != NULL) != (c->memory_size != 0))
        return 1;
    if (!(c->flags & MEMPOOL_NUMA) && c->numa_node != 0)
        return 1;
    if (c->make && (c->fini || c->memory || (c->flags & MEMPOOL_HUGEPAGES)))
        return 1;
    return 0;
}

/* 2: the arena cannot be addressed (EOVERFLOW for sure); 1: so big that
 * only padding and metadata decide between EOVERFLOW and ENOMEM; 0: fits. */
static int arena_too_big(const mempool_config *c)
{
    if (c->make || !c->block_size || !c->capacity)
        return 0;
    __extension__ typedef unsigned __int128 u128;
    u128 align = c->alignment ? c->alignment : alignof(max_align_t);
    u128 padded = (u128)c->block_size + align - 1;
    if (align > PTRDIFF_MAX || padded > PTRDIFF_MAX)
        return 2;
    u128 stride = padded / align * align;
    u128 total = stride * c->capacity;
    if (total > PTRDIFF_MAX)
        return 2;
    return total > ((u128)1 << 46);
}

static void op_create(struct input *in)
{
    struct model *m = &pools[u8(in) % POOLS];
    destroy_slot(m);
    enum mode mode = (enum mode)(u8(in) % 3);
    mempool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = pick_capacity(in);
    uint8_t opts = u8(in);
    if (mode == ARENA) {
        cfg.block_size = pick_block_size(u8(in));
        cfg.alignment = pick_alignment(u8(in));
        if (opts & 1)
            cfg.init = fz_init;
    } else {
        cfg.make = fz_make;
        if (!(opts & 1))
            cfg.unmake = fz_unmake;
        if (mode == LAZY)
            cfg.flags |= MEMPOOL_LAZY;
        uint8_t f = u8(in);
        m->fail_at = f < 128 ? 0 : 1 + f % 32;
        f = u8(in);
        m->dup_at = f < 160 ? 0 : 1 + f % 32;
    }
    if (opts & 2)
        cfg.on_misuse = fz_misuse;
    /* Checked mode only with on_misuse: without it, each refused put prints
     * a line to stderr. */
    if ((opts & 2) && (opts & 8))
        cfg.flags |= MEMPOOL_CHECKED;
    cfg.cache_size = pick_cache_size(in);
    if ((opts & 4) && !cfg.cache_size)
        cfg.flags |= MEMPOOL_NO_CACHE;
    cfg.arg = m;
    /* Break one field at a time, some of the time. */
    uint8_t mutate = u8(in);
    int null_config = 0;
    if (mutate >= 200) {
        switch (mutate % 12) {
        case 0: /* a placement field without what it needs */
            if (mutate % 3 == 0)
                cfg.memory_size = 4096;
            else if (mutate % 3 == 1)
                cfg.numa_node = 1 + mutate % 7;
            else
                cfg.fini = cfg.make ? fz_unmake : NULL, cfg.memory_size = cfg.make ? 0 : 1;
            break;
        case 1: cfg.init = fz_init; break;
        case 2: cfg.alignment = 16; break;
        case 3: cfg.unmake = fz_unmake; break;
        case 4: cfg.flags |= MEMPOOL_LAZY; break;
        case 5: cfg.make = fz_make; cfg.block_size = cfg.block_size ? cfg.block_size : 32; break;
        case 6: cfg.make = NULL; cfg.block_size = 0; break;
        case 7: cfg.flags |= MEMPOOL_NO_CACHE; cfg.cache_size = cfg.cache_size ? cfg.cache_size : 4; break;
        case 8: cfg.flags |= 1u << (5 + mutate % 27); break;   /* above the known flags */
        case 9: null_config = 1; break;
        case 10: cfg.alignment = 24; break;
        default: cfg.capacity = 0; break;
        }
    }

    int invalid = null_config || config_invalid(&cfg);
    int big = null_config ? 0 : arena_too_big(&cfg);
    /* The model needs the mode the pool will actually run in. */
    m->mode = cfg.make ? ((cfg.flags & MEMPOOL_LAZY) ? LAZY : EAGER) : ARENA;
    m->cap = cfg.capacity;
    m->block_size = cfg.block_size;
    m->has_unmake = cfg.unmake != NULL;
    m->has_misuse = cfg.on_misuse != NULL;
    m->cache_hint = cache_hint(&cfg);
    EXPECT(m->cap <= MODEL_MAX || invalid, "harness capacity choice");
    if (!invalid && !big)
        model_alloc(m, m->cap, m->mode != ARENA);
    charge(m->cap <= MODEL_MAX ? m->cap : 0);

    errno = SENTINEL;
    mempool *pool = mempool_create(null_config ? NULL : &cfg);
    int err = errno;
    if (invalid) {
        /* Which of EINVAL and EOVERFLOW wins when both apply is not
         * specified; either is a correct refusal. */
        EXPECT(!pool && (err == EINVAL || (big && err == EOVERFLOW)), "create gave %p, errno %d",
               (void *)pool, err);
    } else if (big == 2) {
        EXPECT(!pool && err == EOVERFLOW, "create gave %p, errno %d", (void *)pool, err);
    } else if (big == 1) {
        EXPECT(!pool && (err == EOVERFLOW || err == ENOMEM), "create gave %p, errno %d",
               (void *)pool, err);
    } else if (m->mode == EAGER && m->make_failures) {
        EXPECT(!pool && err == ENOMEM, "create with a failed make gave %p, errno %d",
               (void *)pool, err);
        EXPECT(m->make_calls <= m->cap);
    } else {
        EXPECT(pool != NULL, "valid create failed: errno %d", err);
        EXPECT(err == SENTINEL, "successful create changed errno to %d", err);
    }
    EXPECT(m->misuse_calls == 0, "create reported misuse");
    if (!pool) {
        /* Everything made so far was released once (through unmake when
         * set), and nothing else was. */
        for (size_t i = 0; i < m->made; i++) {
            EXPECT(m->unmade_flag[i] == m->has_unmake, "failed create: block %zu unmade %d times",
                   i, m->unmade_flag[i]);
            if (!m->has_unmake)
                free(m->known[i]);
        }
        EXPECT(m->inits == 0 || m->inits == m->cap);
        model_free(m);
        return;
    }
    m->pool = pool;
    m->fail_at = m->dup_at = 0;   /* later failures are armed per call */
    if (m->mode == ARENA) {
        size_t align = cfg.alignment ? cfg.alignment : alignof(max_align_t);
        m->alignment = align;
        EXPECT(m->inits == (cfg.init ? m->cap : 0), "init ran %u times", m->inits);
        for (size_t i = 0; i < m->cap; i++) {
            void *b = mempool_block(pool, i);
            EXPECT(b && (uintptr_t)b % align == 0, "block %zu misaligned", i);
            add_made(m, b);
            m->tag[i] = cfg.init ? 0xA5 : 0;
        }
        m->stride = m->cap > 1 ? (size_t)((char *)m->known[1] - (char *)m->known[0]) : 0;
        for (size_t i = 1; i < m->cap; i++)
            EXPECT((size_t)((char *)m->known[i] - (char *)m->known[i - 1]) == m->stride,
                   "blocks not evenly spaced");
        EXPECT(m->cap == 1 || (m->stride >= m->block_size && m->stride % align == 0));
        if (m->cap == 1)
            m->stride = (m->block_size + align - 1) & ~(align - 1);
    } else {
        EXPECT(m->made == (m->mode == EAGER ? m->cap : 0), "%zu blocks made at create", m->made);
        EXPECT(m->make_calls == m->made);
    }
    /* Contents are checked when a block comes out, never while it is free:
     * free blocks are poisoned for AddressSanitizer. */
    check_counts(m);
}

/* ---- gets ---- */

enum wait_kind { NO_WAIT, TINY_WAIT, FOREVER };

/* Checks one get's result against the model, given the counters before. */
static void check_get(struct model *m, void *b, int err, enum wait_kind wait,
                      size_t free_before, size_t avail_before, unsigned calls_before,
                      unsigned failures_before, unsigned misuse_before)
{
    unsigned calls = m->make_calls - calls_before;
    unsigned failures = m->make_failures - failures_before;
    if (m->closed) {
        EXPECT(!b && err == ECANCELED, "get on a closed pool: %p, errno %d", b, err);
        EXPECT(calls == 0, "get on a closed pool called make");
        return;
    }
    if (b) {
        EXPECT(err == SENTINEL, "successful get changed errno to %d", err);
        /* Free blocks are used before a new one is made. */
        EXPECT(free_before == 0 || calls == 0, "make called with %zu blocks free", free_before);
        EXPECT(calls <= 1 && failures == 0, "%u makes, %u failed, for one get", calls, failures);
        took(m, b);
        return;
    }
    if (failures) {
        EXPECT(err == ENOMEM, "get after a failed make: errno %d", err);
        EXPECT(free_before == 0, "make called with %zu blocks free", free_before);
        if (m->has_misuse && m->misuse_calls > misuse_before)
            EXPECT(strcmp(m->misuse_what, "duplicate") == 0, "make failure reported as %s",
                   m->misuse_what);
        return;
    }
    EXPECT(avail_before == 0, "get failed (errno %d) with %zu blocks available", err, avail_before);
    EXPECT(err == (wait == NO_WAIT ? EAGAIN : ETIMEDOUT), "get on an empty pool: errno %d", err);
    m->timeouts += err == ETIMEDOUT;
}

static void op_get(struct model *m, struct input *in, int variant)
{
    size_t free_before = free_made(m), avail_before = m->cap - m->out;
    unsigned calls = m->make_calls, failures = m->make_failures, misuse = m->misuse_calls;
    enum wait_kind wait = NO_WAIT;
    void *b;
    errno = SENTINEL;
    switch (variant) {
    case 0:
        b = mempool_try_get(m->pool);
        break;
    case 1:
        b = mempool_get_timeout(m->pool, 0);
        break;
    case 2:
        wait = TINY_WAIT;
        b = mempool_get_timeout(m->pool, 1 + (int64_t)u8(in) * 8);
        break;
    default:
        /* Blocking get, only where it must return at once. */
        if (m->closed || avail_before > 0) {
            wait = FOREVER;
            b = mempool_get(m->pool);
        } else {
            b = mempool_get_timeout(m->pool, 0);
        }
        break;
    }
    int err = errno;
    check_get(m, b, err, wait, free_before, avail_before, calls, failures, misuse);
    if (!m->has_misuse || m->make_failures == failures)
        EXPECT(m->misuse_calls == misuse, "a get reported misuse");
}

static void op_get_bulk(struct model *m, struct input *in)
{
    void **blocks = m->bulk;
    uint8_t code = u8(in);
    size_t n;
    if (code < 200)
        n = pick_count(in, m, m->cap);
    else if (code < 215)
        n = 0;
    else if (code < 235)
        n = m->cap;
    else
        n = code == 235 ? SIZE_MAX : m->cap + 1 + code % 4;
    int null_array = u8(in) >= 240;
    int64_t timeout = u8(in) < 200 ? 0 : 1 + (int64_t)u8(in) * 8;
    size_t free_before = free_made(m), avail_before = m->cap - m->out;
    unsigned calls = m->make_calls, failures = m->make_failures, misuse = m->misuse_calls;
    size_t room = n <= m->cap + BULK_SLACK ? n : 0;
    charge(room);
    for (size_t i = 0; i < room; i++)
        blocks[i] = foreign_buf;
    errno = SENTINEL;
    int rc = mempool_get_bulk(m->pool, null_array ? NULL : blocks, n, timeout);
    EXPECT(errno == SENTINEL, "get_bulk changed errno to %d", errno);
    unsigned made_calls = m->make_calls - calls;
    if (n == 0) {
        EXPECT(rc == 0, "get_bulk of 0 gave %d", rc);
        EXPECT(made_calls == 0);
        return;
    }
    if (null_array || n > m->cap) {
        EXPECT(rc == EINVAL, "get_bulk(n %zu, null %d) gave %d", n, null_array, rc);
        return;
    }
    if (m->closed) {
        EXPECT(rc == ECANCELED, "get_bulk on a closed pool gave %d", rc);
        EXPECT(made_calls == 0, "get_bulk on a closed pool called make");
        return;
    }
    if (rc == 0) {
        EXPECT(m->make_failures == failures, "get_bulk succeeded after a failed make");
        /* A lazy get_bulk makes no more blocks than it is short of free
         * ones, counting the caller's cache. */
        EXPECT(made_calls <= (n > free_before ? n - free_before : 0),
               "get_bulk of %zu made %u blocks with %zu free", n, made_calls, free_before);
        for (size_t i = 0; i < n; i++)
            took(m, blocks[i]);
    } else if (m->make_failures != failures) {
        EXPECT(rc == ENOMEM, "get_bulk after a failed make gave %d", rc);
    } else {
        EXPECT(avail_before < n, "get_bulk of %zu failed (%d) with %zu available", n, rc,
               avail_before);
        EXPECT(rc == (timeout == 0 ? EAGAIN : ETIMEDOUT), "get_bulk short gave %d", rc);
        m->timeouts += rc == ETIMEDOUT;
    }
    if (!m->has_misuse || m->make_failures == failures)
        EXPECT(m->misuse_calls == misuse, "get_bulk reported misuse");
}

/* ---- puts ---- */

/* For a pointer at the edge of a pool's memory: "foreign" or "interior". */
static const char EITHER_BAD[] = "foreign or interior";

/* A pointer that is not a block of m's pool, and the report it must get. */
static void *bad_pointer(struct model *m, uint8_t code, const char **what)
{
    *what = "foreign";
    switch (code % 7) {
    case 0:
        *what = "null";
        return NULL;
    case 1:
        return foreign_buf + code % 16;
    case 2: {
        /* Another pool's block, out or free. */
        struct model *o = &pools[code % POOLS];
        if (o != m && o->pool && o->made)
            return o->known[code % o->made];
        return foreign_buf;
    }
    case 3:
    case 4:
        if (m->made) {
            size_t i = code % m->made;
            if (m->mode != ARENA)
                return (char *)m->known[i] + 1 + code % 8;
            if (m->stride > 1) {
                *what = "interior";
                return (char *)m->known[i] + 1 + code % (m->stride - 1);
            }
        }
        return foreign_buf;
    case 5:
        /* Just past the last block: past the arena, or inside a checked
         * pool's guard bytes, which count as part of the block. */
        if (m->mode == ARENA) {
            *what = EITHER_BAD;
            return (char *)m->known[m->cap - 1] + m->block_size;
        }
        return foreign_buf;
    default:
        if (m->mode == ARENA)
            return (char *)m->known[0] - 1 - code % 64;
        return foreign_buf + 1;
    }
}

/* Index of the k-th block (mod count) in state `want`, or SIZE_MAX. */
MODEL_CODE static size_t pick_state(const struct model *m, enum state want, unsigned k)
{
    if (want == OUT)
        return m->out ? m->out_list[k % m->out] : SIZE_MAX;
    return free_made(m) ? m->free_list[k % free_made(m)] : SIZE_MAX;
}

static void expect_refused(struct model *m, int rc, unsigned misuse_before, const char *what,
                           const void *block)
{
    EXPECT(rc == EINVAL, "bad put (%s, %p) gave %d", what, block, rc);
    EXPECT(errno == SENTINEL, "refused put changed errno to %d", errno);
    m->refused++;
    if (!m->has_misuse)
        return;
    EXPECT(m->misuse_calls == misuse_before + 1, "%u reports for one refusal",
           m->misuse_calls - misuse_before);
    EXPECT(what == EITHER_BAD ? strcmp(m->misuse_what, "foreign") == 0 ||
                                    strcmp(m->misuse_what, "interior") == 0
                              : strcmp(m->misuse_what, what) == 0,
           "reported %s, expected %s", m->misuse_what, what);
    EXPECT(m->misuse_block == block, "reported %p, expected %p", m->misuse_block, block);
}

static void op_put(struct model *m, struct input *in)
{
    uint8_t kind = u8(in);
    unsigned k = u16(in);
    unsigned misuse = m->misuse_calls;
    size_t i;
    errno = SENTINEL;
    if (kind < 128 && (i = pick_state(m, OUT, k)) != SIZE_MAX) {
        /* A put of any block that is out is accepted. */
        int rc = mempool_put(m->pool, m->known[i]);
        EXPECT(rc == 0, "put of out block %zu gave %d", i, rc);
        EXPECT(errno == SENTINEL && m->misuse_calls == misuse);
        returned(m, m->known[i]);
    } else if (kind < 192 && (i = pick_state(m, FREE, k)) != SIZE_MAX) {
        /* A put of a block that is free is refused. */
        int rc = mempool_put(m->pool, m->known[i]);
        expect_refused(m, rc, misuse, "repeated", m->known[i]);
    } else {
        const char *what;
        void *b = bad_pointer(m, (uint8_t)k, &what);
        int rc = mempool_put(m->pool, b);
        expect_refused(m, rc, misuse, what, b);
    }
}

enum { FLAWS_MAX = 2 };

/* A flaw written into a bulk put's array: at `at`, what the pool must report
 * for it if it is the first bad element (NULL: a block of the pool). */
struct flaw {
    size_t at;
    const char *what;
};

/* Writes one flaw at a position 0 .. n (n: appended) and returns the new n. */
static size_t add_flaw(struct model *m, struct input *in, void **arr, size_t n,
                       struct flaw *flaw)
{
    size_t at = u16(in) % (n + 1);
    uint8_t kind = u8(in), code = u8(in);
    size_t i;
    flaw->at = at;
    flaw->what = NULL;
    if (kind < 96 && at > 0)
        arr[at] = arr[code % at];                   /* repeated inside the array */
    else if (kind < 176 && (i = pick_state(m, FREE, code)) != SIZE_MAX)
        arr[at] = m->known[i];                      /* a free block */
    else
        arr[at] = bad_pointer(m, code, &flaw->what);
    return at == n ? n + 1 : n;
}

/* What the latest flaw written at position j says about it. */
static const char *flaw_what(const struct flaw *flaws, int count, size_t j)
{
    for (int f = count - 1; f >= 0; f--)
        if (flaws[f].at == j)
            return flaws[f].what;
    return NULL;
}

static void op_put_bulk(struct model *m, struct input *in)
{
    void **arr = m->bulk;
    /* Distinct out blocks from a random place in the out list, then up to
     * two flaws anywhere in the array. */
    size_t n = m->out && u8(in) < 232 ? pick_count(in, m, m->out) : 0;
    size_t start = m->out ? u16(in) % m->out : 0;
    for (size_t j = 0; j < n; j++)
        arr[j] = m->known[m->out_list[(start + j) % m->out]];
    uint8_t f = u8(in);
    int count = f < 176 ? 0 : f < 240 ? 1 : FLAWS_MAX;
    struct flaw flaws[FLAWS_MAX];
    for (int k = 0; k < count; k++)
        n = add_flaw(m, in, arr, n, &flaws[k]);
    uint8_t null_array = u8(in);
    charge(n);
    /* The first bad element in array order decides the refusal. */
    const char *expect_what = NULL;
    const void *expect_block = NULL;
    size_t j;
    for (j = 0; j < n && !expect_what; j++) {
        size_t i = known_index(m, arr[j]);
        if (i == SIZE_MAX) {
            expect_what = flaw_what(flaws, count, j);
            EXPECT(expect_what, "harness: a bad pointer at %zu without its flaw", j);
        } else if (m->mark[i])
            expect_what = "repeated-in-array";
        else if (m->state[i] != OUT)
            expect_what = "repeated";
        else
            m->mark[i] = 1;
        expect_block = arr[j];
    }
    for (size_t k = 0; k < j; k++) {
        size_t i = known_index(m, arr[k]);
        if (i != SIZE_MAX)
            m->mark[i] = 0;
    }
    unsigned misuse = m->misuse_calls;
    errno = SENTINEL;
    if (null_array >= 240 && n > 0) {
        int rc = mempool_put_bulk(m->pool, NULL, n);
        expect_refused(m, rc, misuse, "null", NULL);
        return;
    }
    int rc = mempool_put_bulk(m->pool, arr, n);
    if (expect_what) {
        expect_refused(m, rc, misuse, expect_what, expect_block);
        return;   /* nothing was put: the model is unchanged */
    }
    EXPECT(rc == 0, "valid put_bulk of %zu gave %d", n, rc);
    EXPECT(errno == SENTINEL && m->misuse_calls == misuse);
    for (size_t k = 0; k < n; k++)
        returned(m, arr[k]);
}

/* ---- the rest ---- */

static void op_drain(struct model *m, struct input *in)
{
    int64_t timeout = u8(in) < 160 ? 0 : 1 + (int64_t)u8(in) * 8;
    errno = SENTINEL;
    int rc = mempool_drain(m->pool, timeout);
    EXPECT(errno == SENTINEL, "drain changed errno");
    EXPECT(rc == (m->out ? ETIMEDOUT : 0), "drain(%lld) with %zu out gave %d",
           (long long)timeout, m->out, rc);
}

/* The statistics are exact when no call is in flight, which is always the
 * case here; the high-water mark is exact only without a cache. */
static void op_stats(struct model *m, struct input *in)
{
    mempool_stats s;
    errno = SENTINEL;
    if (u8(in) >= 192) {
        EXPECT(mempool_stats_reset(m->pool) == 0);
        m->gets = m->puts = m->refused = m->timeouts = 0;
        m->out_high = m->out;
    }
    EXPECT(mempool_stats_read(m->pool, &s) == 0);
    EXPECT(errno == SENTINEL, "stats changed errno to %d", errno);
    EXPECT(s.out == m->out, "stats: %llu out, model %zu", (unsigned long long)s.out, m->out);
    EXPECT(s.gets == m->gets && s.puts == m->puts, "stats: %llu gets, %llu puts; model %llu, %llu",
           (unsigned long long)s.gets, (unsigned long long)s.puts,
           (unsigned long long)m->gets, (unsigned long long)m->puts);
    EXPECT(s.refused_puts == m->refused, "stats: %llu refused, model %llu",
           (unsigned long long)s.refused_puts, (unsigned long long)m->refused);
    EXPECT(s.timeouts == m->timeouts && s.waits == m->timeouts,
           "stats: %llu waits, %llu timeouts; model %llu timeouts", (unsigned long long)s.waits,
           (unsigned long long)s.timeouts, (unsigned long long)m->timeouts);
    EXPECT(s.cache_hits + s.cache_misses == s.gets);
    EXPECT(s.out_high >= s.out && s.out_high <= m->cap, "stats: out_high %llu",
           (unsigned long long)s.out_high);
    if (m->cache_hint == 0)
        EXPECT(s.out_high == m->out_high, "stats: out_high %llu, model %llu",
               (unsigned long long)s.out_high, (unsigned long long)m->out_high);
}

static void op_queries(struct model *m, struct input *in)
{
    size_t i = u16(in) % (m->cap + 3);
    errno = SENTINEL;
    void *b = mempool_block(m->pool, i);
    if (i >= m->cap) {
        EXPECT(!b && errno == EINVAL, "block(%zu) of %zu: %p, errno %d", i, m->cap, b, errno);
    } else if (i >= m->made) {
        EXPECT(!b && errno == ENOENT, "block(%zu) not made: %p, errno %d", i, b, errno);
    } else {
        EXPECT(b == m->known[i] && errno == SENTINEL, "block(%zu) is %p, model %p", i, b,
               m->known[i]);
        EXPECT(mempool_owns(m->pool, b) == 1);
        EXPECT(mempool_index(m->pool, b) == i);
    }
    const char *what;
    void *bad = bad_pointer(m, u8(in), &what);
    errno = SENTINEL;
    EXPECT(mempool_owns(m->pool, bad) == 0, "owns(%p) of a non-block", bad);
    EXPECT(mempool_index(m->pool, bad) == SIZE_MAX, "index(%p) of a non-block", bad);
    EXPECT(errno == SENTINEL);
}

static void op_null_pool(struct input *in)
{
    void *b = foreign_buf;
    int64_t timeout = u8(in) & 1 ? 0 : -1;   /* -1 too: a NULL pool never waits */
    errno = SENTINEL;
    EXPECT(mempool_get(NULL) == NULL && errno == EINVAL);
    errno = SENTINEL;
    EXPECT(mempool_try_get(NULL) == NULL && errno == EINVAL);
    errno = SENTINEL;
    EXPECT(mempool_get_timeout(NULL, timeout) == NULL && errno == EINVAL);
    errno = SENTINEL;
    EXPECT(mempool_block(NULL, 0) == NULL && errno == EINVAL);
    errno = SENTINEL;
    EXPECT(mempool_put(NULL, b) == EINVAL);
    EXPECT(mempool_get_bulk(NULL, &b, u8(in) % 3, timeout) == EINVAL);
    EXPECT(mempool_put_bulk(NULL, &b, 1) == EINVAL);
    EXPECT(mempool_drain(NULL, timeout) == EINVAL);
    EXPECT(mempool_capacity(NULL) == 0 && mempool_available(NULL) == 0);
    EXPECT(mempool_block_size(NULL) == 0 && mempool_owns(NULL, b) == 0);
    EXPECT(mempool_index(NULL, b) == SIZE_MAX);
    mempool_destroy(NULL);
    mempool_close(NULL);
    mempool_flush(NULL);
    EXPECT(errno == SENTINEL, "a NULL-pool call changed errno to %d", errno);
}

/* End of input: every out block goes back, nothing was lost (every block
 * comes out exactly once), then destroy releases each free block once. */
static void teardown(struct model *m)
{
    if (!m->pool) {
        model_free(m);
        return;
    }
    m->fail_next = m->dup_next = 0;
    while (m->out) {
        void *b = m->known[m->out_list[m->out - 1]];
        EXPECT(mempool_put(m->pool, b) == 0, "final put of block %zu", known_index(m, b));
        returned(m, b);
    }
    check_counts(m);
    EXPECT(mempool_drain(m->pool, 0) == 0, "drain with every block back");
    if (!m->closed) {
        for (size_t k = 0; k < m->cap; k++) {
            errno = SENTINEL;
            void *b = mempool_try_get(m->pool);
            EXPECT(b, "block %zu of %zu lost: errno %d", k, m->cap, errno);
            took(m, b);
        }
        errno = SENTINEL;
        EXPECT(mempool_try_get(m->pool) == NULL && errno == EAGAIN, "more than capacity");
        for (size_t i = 0; i < m->made; i++) {
            EXPECT(mempool_put(m->pool, m->known[i]) == 0);
            returned(m, m->known[i]);
        }
        check_counts(m);
    }
    /* Leave some blocks out at destroy: generator blocks stay ours. */
    if (m->mode != ARENA && m->made && (m->made & 1)) {
        mempool_flush(m->pool);
        void *b = mempool_try_get(m->pool);
        if (b)
            took(m, b);
    }
    destroy_slot(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = { data, size };
    memset(pools, 0, sizeof pools);
    work_left = WORK_BUDGET;
    while (in.n && work_left) {
        uint8_t op = u8(&in);
        struct model *m = &pools[(op >> 5) % POOLS];
        op &= 31;
        if (op == 0 || op == 1) {
            op_create(&in);
            continue;
        }
        if (op == 2) {
            op_null_pool(&in);
            continue;
        }
        if (!m->pool)
            continue;
        switch (op) {
        case 3:
            teardown(m);
            continue;
        case 4: case 5: case 6: case 7: case 8: case 9: case 10:
            op_get(m, &in, op % 4);
            break;
        case 11: case 12:
            op_get_bulk(m, &in);
            break;
        case 13: case 14: case 15: case 16: case 17:
            op_put(m, &in);
            break;
        case 18: case 19:
            op_put_bulk(m, &in);
            break;
        case 20:
            mempool_close(m->pool);
            m->closed = 1;
            break;
        case 21: case 22:
            op_drain(m, &in);
            break;
        case 23: case 24:
            mempool_flush(m->pool);
            break;
        case 25: case 26:
            op_queries(m, &in);
            break;
        case 27:
            if (m->mode == LAZY)
                m->fail_next = 1;
            break;
        case 28:
            if (m->mode == LAZY)
                m->dup_next = 1;
            break;
        case 29:
            op_stats(m, &in);
            break;
        default:
            op_get(m, &in, u8(&in) % 4);
            break;
        }
        check_counts(m);
    }
    for (int p = 0; p < POOLS; p++)
        teardown(&pools[p]);
    return 0;
}
