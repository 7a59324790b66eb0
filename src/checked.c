/* SPDX-License-Identifier: MIT */
/* Checked mode (MEMPOOL_CHECKED): a pool that helps its users find their
 * bugs, at the price of a lock on every get and put.
 *
 * - Repeated puts are refused exactly: a put claims the block's entry with a
 *   CAS from "out", so of two racing puts of one block exactly one wins.
 * - Free blocks wait in a FIFO (the ring) instead of the LIFO stack and the
 *   caches: a block put back is handed out again only after every block
 *   that was free before it, which gives a late second put by its former
 *   owner the best chance to find it still free, and so refused.
 * - Arena mode: a checksum of the contents taken at put and verified when
 *   the block is handed out again catches a write after put; guard bytes in
 *   the padding after each block, checked at put, catch an overflow.
 * - Destroy reports every block still out as a leak.
 * Detections go to on_misuse; without it, one line goes to stderr, and
 * corruption (a write after put, an overflow) aborts, as glibc does on a
 * double free. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "index.h"
#include "locked.h"
#include "ring.h"
#include "track.h"

/* Bulk puts seal and give back blocks in chunks of this many. */
#define CHUNK 64

#define GUARD_BYTE 0xfd
/* The entry of a free block of a checked pool: FREE, in the ring. */

size_t mempool__checked_bytes(const mempool *pool)
{
    if (!pool->checked)
        return 0;
    return pool->capacity * (sizeof(uint32_t) + (pool->make ? 0 : sizeof(uint64_t)));
}

/* A 64-bit hash of the block's bytes: enough to notice any write. */
static uint64_t checksum(const mempool *pool, const void *block)
{
    const unsigned char *p = block;
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ pool->block_size;
    size_t i = 0;
    for (; i + 8 <= pool->block_size; i += 8) {
        uint64_t word;
        memcpy(&word, p + i, sizeof word);
        h = (h ^ word) * UINT64_C(0x100000001B3);
        h ^= h >> 29;
    }
    for (; i < pool->block_size; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001B3);
    return h;
}

static unsigned char *guard_of(const mempool *pool, const void *block)
{
    return (unsigned char *)block + pool->block_size;
}

void mempool__checked_init(mempool *pool, void *memory)
{
    if (!pool->make) {
        pool->checksums = memory;
        memory = pool->checksums + pool->capacity;
    }
    pool->ring = memory;
    size_t made = atomic_load_explicit(&pool->made, memory_order_relaxed);
    size_t blocks = pool->make ? made : pool->capacity;
    for (size_t i = 0; i < blocks; i++) {
        void *block = block_at(pool, (uint32_t)i);
        if (pool->base) {
            memset(guard_of(pool, block), GUARD_BYTE, CHECKED_GUARD);
            pool->checksums[i] = checksum(pool, block);
        }
        ring_add(pool, (uint32_t)i);
    }
    /* The stack stays empty: every free block of a checked pool is in the
     * ring. */
    atomic_store_explicit(&pool->stack.head, STACK_NIL, memory_order_relaxed);
}

void mempool__checked_report(mempool *pool, const char *what, const void *block)
{
    if (pool->on_misuse) {
        mempool__report(pool, what, block);
        return;
    }
    if (!strcmp(what, "write-after-put") || !strcmp(what, "overflow")) {
        fprintf(stderr, "mempool %p: %s: block %p\n", (void *)pool, what, block);
        abort();
    }
    int saved = errno; /* the call carries on and may succeed */
    fprintf(stderr, "mempool %p: %s: block %p\n", (void *)pool, what, block);
    errno = saved;
}

uint32_t mempool__checked_claim(mempool *pool, const void *block, const char **what)
{
    uint32_t index = block_lookup(pool, block, what);
    uint64_t out = 0;
    if (index != STACK_NIL &&
        !atomic_compare_exchange_strong_explicit(stack_entry(&pool->stack, index), &out,
                                                 ENTRY_RINGED, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        *what = "repeated";
        return STACK_NIL;
    }
    return index;
}

void mempool__checked_unclaim(mempool *pool, uint32_t index)
{
    stack_mark_out(&pool->stack, index);
}

void mempool__checked_seal(mempool *pool, uint32_t index, const void *block)
{
    if (!pool->base)
        return;
    unsigned char *guard = guard_of(pool, block);
    /* The guard is poisoned for the tools while the block is out. */
    track_unpoison(pool, guard, CHECKED_GUARD);
    bool intact = true;
    for (size_t i = 0; i < CHECKED_GUARD; i++)
        intact &= guard[i] == GUARD_BYTE;
    if (!intact) {
        memset(guard, GUARD_BYTE, CHECKED_GUARD);
        mempool__checked_report(pool, "overflow", block);
    }
    pool->checksums[index] = checksum(pool, block);
}

void mempool__checked_got(mempool *pool, const void *block)
{
    if (!pool->base)
        return;
    const char *what;
    uint32_t index = block_lookup(pool, block, &what);
    if (pool->checksums[index] != checksum(pool, block))
        mempool__checked_report(pool, "write-after-put", block);
}

void mempool__checked_leaks(mempool *pool)
{
    size_t made = pool->make ? atomic_load_explicit(&pool->made, memory_order_acquire)
                             : pool->capacity;
    for (size_t i = 0; i < made; i++)
        if (!stack_is_free(&pool->stack, (uint32_t)i))
            mempool__checked_report(pool, "leak", block_at(pool, (uint32_t)i));
}

/* Checked mode: the exact claim, the guard and checksum, then the locked
 * path that hands the block to a waiter or queues it in the FIFO. Claims
 * are made under the pool lock, so that a put_bulk that claims and then
 * rolls back is one step to every other put: of two racing puts of one
 * block exactly one wins. */
static int checked_put(mempool *pool, void *block)
{
    const char *what;
    os_lock(&pool->lock);
    uint32_t index = mempool__checked_claim(pool, block, &what);
    os_unlock(&pool->lock);
    if (index == STACK_NIL) {
        mempool__put_refused(pool, what, block);
        return EINVAL;
    }
    mempool__checked_seal(pool, index, block);
    track_free(pool, block);
    mempool__put_slow(pool, &index, 1);
    stats_add(pool, mempool__cache_of(pool), STAT_PUTS, 1);
    return 0;
}

/* Checked mode: claim every block exactly (undoing the claims if one is
 * refused, all under the pool lock: see checked_put), then seal each and
 * give them back under the lock. */
static int checked_put_bulk(mempool *pool, void *const *blocks, size_t n)
{
    const char *what = NULL;
    os_lock(&pool->lock);
    for (size_t i = 0; i < n; i++) {
        if (mempool__checked_claim(pool, blocks[i], &what) != STACK_NIL)
            continue;
        const char *ignored;
        for (size_t j = 0; j < i; j++) {
            if (blocks[j] == blocks[i])
                what = "repeated-in-array";
            mempool__checked_unclaim(pool, block_lookup(pool, blocks[j], &ignored));
        }
        os_unlock(&pool->lock);
        mempool__put_refused(pool, what, blocks[i]);
        return EINVAL;
    }
    os_unlock(&pool->lock);
    for (size_t done = 0; done < n;) {
        uint32_t indices[CHUNK];
        size_t k = n - done < CHUNK ? n - done : CHUNK;
        for (size_t i = 0; i < k; i++) {
            indices[i] = block_lookup(pool, blocks[done + i], &what);
            mempool__checked_seal(pool, indices[i], blocks[done + i]);
            track_free(pool, blocks[done + i]);
        }
        mempool__put_slow(pool, indices, k);
        done += k;
    }
    stats_add(pool, mempool__cache_of(pool), STAT_PUTS, n);
    return 0;
}

/* The operations a checked pool runs instead of the plain ones, chosen at
 * create (getput.c calls them from its miss paths: a checked pool has no
 * cache, so its calls never take the hit path). */
const struct pool_ops mempool__checked_ops = {
    .put = checked_put,
    .put_bulk = checked_put_bulk,
    .got = mempool__checked_got,
    .report = mempool__checked_report,
};
