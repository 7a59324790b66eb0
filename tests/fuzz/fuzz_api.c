/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: input bytes become a sequence of API calls on up to
 * three pools (arena, eager and lazy generator; cached and uncached; small
 * capacities; valid and invalid configs), and every result is checked
 * against a reference model kept here: which blocks are out, free or not
 * made yet, what each block's contents must be, how many times `make`,
 * `unmake`, `init` and `on_misuse` ran. Any disagreement aborts.
 *
 * Only non-blocking calls are made (timeout 0, tiny timeouts, and a
 * blocking get only where the model says it returns at once): the fuzzer is
 * single-threaded, so nothing could ever wake a sleeping call, and a get
 * that hangs where the model says it must not is itself a finding (caught by
 * libFuzzer's -timeout).
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

#define FAIL(...)                                                           \
    do {                                                                    \
        fprintf(stderr, "fuzz_api:%d: ", __LINE__);                         \
        fprintf(stderr, __VA_ARGS__);                                       \
        fputc('\n', stderr);                                                \
        abort();                                                            \
    } while (0)

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

#define KNOWN_FLAGS (MEMPOOL_NO_CACHE | MEMPOOL_LAZY | MEMPOOL_CHECKED)

enum { POOLS = 3, KNOWN_MAX = 128, GEN_BYTES = 24, CHECK_BYTES = 64 };
enum mode { ARENA, EAGER, LAZY };
enum state { UNMADE, FREE, OUT };

struct model {
    mempool *pool;
    enum mode mode;
    size_t cap, block_size, stride, alignment;
    int has_unmake, has_misuse, closed;
    size_t out;
    size_t made;                  /* blocks registered (arena: cap) */
    void *known[KNOWN_MAX];       /* index -> block, in make order */
    uint8_t state[KNOWN_MAX];
    uint8_t tag[KNOWN_MAX];       /* byte every block byte must hold */
    uint8_t unmade_flag[KNOWN_MAX];
    uint8_t next_tag;
    /* make control and counters */
    unsigned make_calls, make_failures, fail_at, dup_at;
    int fail_next, dup_next;
    unsigned unmakes, inits;
    /* on_misuse: what the last report said */
    unsigned misuse_calls;
    const char *misuse_what;
    const void *misuse_block;
};

static struct model pools[POOLS];
static char foreign_buf[64];

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

static size_t content_bytes(const struct model *m)
{
    size_t n = m->mode == ARENA ? m->block_size : GEN_BYTES;
    return n < CHECK_BYTES ? n : CHECK_BYTES;
}

/* The pool never writes into a block it holds: every byte is still the tag
 * written when the block was last out (or zero/init's fill at creation). */
static void check_content(const struct model *m, size_t i)
{
    const uint8_t *b = m->known[i];
    for (size_t k = 0; k < content_bytes(m); k++)
        EXPECT(b[k] == m->tag[i], "block %zu byte %zu is %u, not %u", i, k, b[k], m->tag[i]);
}

static void write_content(struct model *m, size_t i)
{
    m->tag[i] = ++m->next_tag;
    memset(m->known[i], m->tag[i], content_bytes(m));
}

static size_t known_index(const struct model *m, const void *b)
{
    for (size_t i = 0; i < m->made; i++)
        if (m->known[i] == b)
            return i;
    return SIZE_MAX;
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
    void *b = calloc(1, GEN_BYTES);
    if (!b)
        abort();
    m->known[m->made] = b;
    m->state[m->made] = FREE;
    m->tag[m->made] = 0;
    m->unmade_flag[m->made] = 0;
    m->made++;
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
static void took(struct model *m, void *b)
{
    size_t i = known_index(m, b);
    EXPECT(i != SIZE_MAX, "get returned %p, not a block of the pool", b);
    EXPECT(m->state[i] == FREE, "get returned block %zu, which is already out", i);
    EXPECT(mempool_index(m->pool, b) == i, "index %zu, model %zu", mempool_index(m->pool, b), i);
    check_content(m, i);
    m->state[i] = OUT;
    m->out++;
    write_content(m, i);
}

static void returned(struct model *m, void *b)
{
    size_t i = known_index(m, b);
    m->state[i] = FREE;
    m->out--;
}

static size_t free_made(const struct model *m)
{
    return m->made - m->out;
}

/* ---- create and destroy ---- */

static void destroy_slot(struct model *m)
{
    if (!m->pool)
        return;
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
    memset(m, 0, sizeof *m);
}

static size_t pick_capacity(uint8_t b)
{
    if (b < 236)
        return 1 + b % 24;
    if (b < 246)
        return 64 + (size_t)(b - 236) * 4;  /* automatic caches, bulk beyond 64 */
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

static unsigned pick_cache_size(uint8_t b)
{
    if (b < 128)
        return 0;
    if (b < 200)
        return 2 + b % 15;
    if (b < 230)
        return 1;
    if (b < 250)
        return 5000;
    return UINT32_MAX;
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
    for (int i = 0; i < 4; i++)
        if (c->reserved[i])
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
    cfg.capacity = pick_capacity(u8(in));
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
    cfg.cache_size = pick_cache_size(u8(in));
    if ((opts & 4) && !cfg.cache_size)
        cfg.flags |= MEMPOOL_NO_CACHE;
    cfg.arg = m;
    /* Break one field at a time, some of the time. */
    uint8_t mutate = u8(in);
    int null_config = 0;
    if (mutate >= 200) {
        switch (mutate % 12) {
        case 0: cfg.reserved[mutate % 4] = (uint64_t)1 << (mutate % 64); break;
        case 1: cfg.init = fz_init; break;
        case 2: cfg.alignment = 16; break;
        case 3: cfg.unmake = fz_unmake; break;
        case 4: cfg.flags |= MEMPOOL_LAZY; break;
        case 5: cfg.make = fz_make; cfg.block_size = cfg.block_size ? cfg.block_size : 32; break;
        case 6: cfg.make = NULL; cfg.block_size = 0; break;
        case 7: cfg.flags |= MEMPOOL_NO_CACHE; cfg.cache_size = cfg.cache_size ? cfg.cache_size : 4; break;
        case 8: cfg.flags |= 1u << (3 + mutate % 29); break;   /* above the known flags */
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
    EXPECT(m->cap <= KNOWN_MAX || invalid, "harness capacity choice");

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
        memset(m, 0, sizeof *m);
        return;
    }
    m->pool = pool;
    m->fail_at = m->dup_at = 0;   /* later failures are armed per call */
    if (m->mode == ARENA) {
        size_t align = cfg.alignment ? cfg.alignment : alignof(max_align_t);
        m->alignment = align;
        m->made = m->cap;
        EXPECT(m->inits == (cfg.init ? m->cap : 0), "init ran %u times", m->inits);
        for (size_t i = 0; i < m->cap; i++) {
            m->known[i] = mempool_block(pool, i);
            EXPECT(m->known[i] && (uintptr_t)m->known[i] % align == 0, "block %zu misaligned", i);
            m->state[i] = FREE;
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
    void *blocks[KNOWN_MAX + 4];
    uint8_t code = u8(in);
    size_t n;
    if (code < 200)
        n = 1 + code % (m->cap + 2);
    else if (code < 220)
        n = 0;
    else if (code < 240)
        n = m->cap;
    else
        n = code == 240 ? SIZE_MAX : m->cap + 1 + code % 4;
    int null_array = u8(in) >= 240;
    int64_t timeout = u8(in) < 200 ? 0 : 1 + (int64_t)u8(in) * 8;
    size_t free_before = free_made(m), avail_before = m->cap - m->out;
    unsigned calls = m->make_calls, failures = m->make_failures, misuse = m->misuse_calls;
    size_t room = n <= KNOWN_MAX ? n : 0;
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

/* Index in known[] of the k-th block (mod count) in state `want`, or SIZE_MAX. */
static size_t pick_state(const struct model *m, enum state want, uint8_t k)
{
    size_t count = 0;
    for (size_t i = 0; i < m->made; i++)
        count += m->state[i] == want;
    if (!count)
        return SIZE_MAX;
    k = (uint8_t)(k % count);
    for (size_t i = 0; i < m->made; i++)
        if (m->state[i] == want && k-- == 0)
            return i;
    return SIZE_MAX;
}

static void expect_refused(struct model *m, int rc, unsigned misuse_before, const char *what,
                           const void *block)
{
    EXPECT(rc == EINVAL, "bad put (%s, %p) gave %d", what, block, rc);
    EXPECT(errno == SENTINEL, "refused put changed errno to %d", errno);
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
    uint8_t kind = u8(in), k = u8(in);
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
        void *b = bad_pointer(m, k, &what);
        int rc = mempool_put(m->pool, b);
        expect_refused(m, rc, misuse, what, b);
    }
}

static void op_put_bulk(struct model *m, struct input *in)
{
    void *arr[KNOWN_MAX + 8];
    size_t n = u8(in) % (m->cap + 3);
    if (n > KNOWN_MAX + 8)
        n = KNOWN_MAX + 8;
    uint8_t null_array = u8(in);
    /* Mostly out blocks (distinct), sometimes a repeat, a free block or a
     * bad pointer. */
    uint8_t used[KNOWN_MAX] = { 0 };
    const char *expect_what = NULL;
    const void *expect_block = NULL;
    for (size_t j = 0; j < n; j++) {
        uint8_t c = u8(in), k = u8(in);
        size_t i = SIZE_MAX;
        const char *what = NULL;
        void *b;
        if (c < 200) {
            for (size_t t = 0; t < m->made && i == SIZE_MAX; t++) {
                size_t cand = (k + t) % m->made;
                if (m->state[cand] == OUT && !used[cand])
                    i = cand;
            }
            if (i == SIZE_MAX) {
                n = j;
                break;
            }
            b = m->known[i];
        } else if (c < 215 && j > 0) {
            b = arr[k % j];                     /* repeated inside the array */
            i = known_index(m, b);
            what = "repeated-in-array";
        } else if (c < 230 && (i = pick_state(m, FREE, k)) != SIZE_MAX) {
            b = m->known[i];
        } else {
            b = bad_pointer(m, k, &what);
            i = SIZE_MAX;
        }
        arr[j] = b;
        if (expect_what)
            continue;
        if (i == SIZE_MAX) {
            expect_what = what;
        } else if (used[i]) {
            expect_what = "repeated-in-array";
        } else if (m->state[i] != OUT) {
            expect_what = "repeated";
        } else {
            used[i] = 1;
            continue;
        }
        expect_block = b;
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
    for (size_t j = 0; j < n; j++)
        returned(m, arr[j]);
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

static void op_queries(struct model *m, struct input *in)
{
    uint8_t k = u8(in);
    size_t i = k % (m->cap + 3);
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
    if (!m->pool)
        return;
    m->fail_next = m->dup_next = 0;
    for (size_t i = 0; i < m->made; i++)
        if (m->state[i] == OUT) {
            EXPECT(mempool_put(m->pool, m->known[i]) == 0, "final put of block %zu", i);
            returned(m, m->known[i]);
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
    /* A pool to work on from the start, so that short inputs reach calls. */
    while (in.n) {
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
