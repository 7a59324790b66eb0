/* SPDX-License-Identifier: MIT */
/* The shared free list: a lock-free LIFO (Treiber stack) of block indices.
 *
 * HEAD WORD (64 bits, one CAS covers all of it)
 *   bits  0..24  index of the top block, or STACK_NIL when empty
 *   bit   25     WAIT: a get is queued or a drain waits, so puts must take the
 *                locked slow path (see wait.c); pops ignore it and keep it
 *   bits 26..63  ABA tag, 38 bits, bumped by every pop
 *
 * ABA: a pop reads head H, then H's next, then CASes. Between the two, other
 * threads could pop H, pop its successor and push H again, so that the head
 * index matches but the next it read is stale. Any such sequence contains a
 * pop, and every pop bumps the tag, so the stale CAS fails. A push need not
 * bump it: a push alone cannot bring an old index back to the top. The tag
 * could only fool a CAS if exactly 2^38 (2.7e11) pops happened while one
 * thread sat between its read and its CAS: more than 45 minutes even at 10^8
 * pops per second. After a failed CAS the tag comes from the value the CAS
 * returned, never from a stale copy.
 *
 * ENTRIES (out of band: the pool never writes into a block)
 *   One 64-bit word per block in a side array: bits 0..24 next index, bits
 *   25..49 depth (blocks in the stack from this one down, so the free count is
 *   one load of the top entry), bit 63 FREE. Only the block's owner writes
 *   its entry: the pusher before its release-CAS, the popper (now owner)
 *   after its CAS. Readers of a stale entry are always caught by the tag.
 *
 * THE BLOCK'S STATE, ALL OF IT
 *   The entry is the block's whole state; every put reads FREE to refuse a
 *   repeated put, and nothing else decides it.
 *     OUT       0. The caller owns the block.
 *     STACKED   FREE | depth | next (entry_make): in the shared stack.
 *     CACHED    ENTRY_IN_CACHE (all ones): in a magazine, loaded or
 *               previous, or in a full magazine in the depot.
 *     RINGED    ENTRY_RINGED (ring.h): in a checked pool's FIFO ring.
 *   Transitions, each by the one thread that owns the block at that moment:
 *     OUT -> CACHED     a put that the hit path or the cache serves (cache.h,
 *                       cache.c), before the magazine count covers it; a bulk
 *                       put marks its blocks first and undoes the marks if it
 *                       refuses the call (getput.c)
 *     OUT -> STACKED    a put that goes to the shared stack (stack_push_many)
 *     OUT -> RINGED     a checked put (checked.c: a CAS, so that two racing
 *                       puts of one block are told apart)
 *     CACHED -> OUT     a get from a magazine (cache_hit_get, or the full path)
 *     CACHED -> STACKED a spill or a reclaim that pushes a magazine's rounds
 *     STACKED -> OUT    a pop by a get, or by the locked path handing the
 *                       block to a waiter (mempool__give_locked)
 *     RINGED -> OUT     a checked get
 *   A block handed to a waiter goes OUT in the hand-over, whatever it was.
 *   A lazy pool's slots that were never made have no block and no state:
 *   they are counted in `unmade`, not in the side array. Destroy reads no
 *   entry. Only two unordered puts of one block (undefined, mempool.h) can
 *   both read OUT and both move it.
 *   Entry i sits at slot (i * STACK_SPREAD) mod 2^k, a bijection since the
 *   multiplier is odd: neighbouring blocks land far apart, on different
 *   cache lines, so threads working on nearby blocks do not share a line,
 *   and no fixed pattern of indices (a cache's batch, say) piles up on one.
 *
 * ORDERING
 *   Every change to the head is a read-modify-write, so every value of it is
 *   in the release sequence of every earlier push: a pop that acquires the
 *   head sees the entries (and the block contents) written before the push
 *   that published that block.
 */
#ifndef MEMPOOL_STACK_H
#define MEMPOOL_STACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STACK_INDEX_BITS 25
#define STACK_NIL ((uint32_t)((1u << STACK_INDEX_BITS) - 1))
#define STACK_WAIT ((uint64_t)1 << STACK_INDEX_BITS)
#define STACK_TAG_SHIFT (STACK_INDEX_BITS + 1)
#define STACK_TAG_ONE ((uint64_t)1 << STACK_TAG_SHIFT)

#define ENTRY_DEPTH_SHIFT STACK_INDEX_BITS
#define ENTRY_FREE ((uint64_t)1 << 63)
/* The entry of a block in a magazine or on its way into one: FREE, and
 * every other bit set too (next STACK_NIL, the largest depth), since only
 * the stack reads next and depth, and only of its own blocks. All ones is
 * what one sign-extended 32-bit immediate stores on x86-64, where FREE
 * alone would take a 64-bit constant load first. */
#define ENTRY_IN_CACHE UINT64_MAX
/* Odd, from the golden ratio: consecutive indices land 2^k / 1.618 apart. */
#define STACK_SPREAD 0x9E3779B1u

struct stack {
    _Atomic uint64_t head;
    _Atomic uint64_t *entries; /* read-only pointer, set at creation */
    uint32_t mask;             /* entries - 1; entries a power of two >= 64 */
};

static inline uint32_t stack_top(uint64_t head)
{
    return (uint32_t)(head & STACK_NIL);
}

static inline uint64_t stack_head(uint32_t top, uint64_t old_head, uint64_t tag_step)
{
    return ((old_head & ~(uint64_t)STACK_NIL) + tag_step) | top;
}

static inline _Atomic uint64_t *entry_at(_Atomic uint64_t *entries, uint32_t mask,
                                         uint32_t index)
{
    return &entries[(index * STACK_SPREAD) & mask];
}

static inline _Atomic uint64_t *stack_entry(const struct stack *s, uint32_t index)
{
    return entry_at(s->entries, s->mask, index);
}

static inline uint32_t entry_next(uint64_t entry)
{
    return (uint32_t)(entry & STACK_NIL);
}

static inline uint32_t entry_depth(uint64_t entry)
{
    return (uint32_t)(entry >> ENTRY_DEPTH_SHIFT) & STACK_NIL;
}

static inline uint64_t entry_make(uint32_t next, uint32_t depth)
{
    return ENTRY_FREE | (uint64_t)depth << ENTRY_DEPTH_SHIFT | next;
}

/* True when the block is free: in the stack, in a cache, or on its way in. */
static inline bool stack_is_free(const struct stack *s, uint32_t index)
{
    return atomic_load_explicit(stack_entry(s, index), memory_order_relaxed) & ENTRY_FREE;
}

/* Marks a block as out; called by its new owner (pops leave the entry as it
 * was: a block moving into a cache stays free). */
static inline void stack_mark_out(struct stack *s, uint32_t index)
{
    atomic_store_explicit(stack_entry(s, index), 0, memory_order_relaxed);
}

/* Free blocks in the stack at one instant: the top's entry cannot change
 * while the head word stays the same (a pop would bump the tag), so a head
 * read again unchanged after the entry proves the pair consistent. */
static inline uint32_t stack_depth(const struct stack *s)
{
    uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
    for (;;) {
        uint32_t top = stack_top(head);
        if (top == STACK_NIL)
            return 0;
        uint32_t depth =
            entry_depth(atomic_load_explicit(stack_entry(s, top), memory_order_acquire));
        uint64_t again = atomic_load_explicit(&s->head, memory_order_acquire);
        if (again == head)
            return depth;
        head = again;
    }
}

/* Pops one block: its index, or STACK_NIL when the stack is empty. With
 * `left`, also the number of blocks the pop left in the stack. */
static inline uint32_t stack_pop(struct stack *s, uint32_t *left)
{
    uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
    for (;;) {
        uint32_t top = stack_top(head);
        if (top == STACK_NIL)
            return STACK_NIL;
        uint64_t entry = atomic_load_explicit(stack_entry(s, top), memory_order_relaxed);
        uint64_t next = stack_head(entry_next(entry), head, STACK_TAG_ONE);
        if (atomic_compare_exchange_weak_explicit(&s->head, &head, next,
                                                  memory_order_acquire,
                                                  memory_order_acquire)) {
            if (left)
                *left = entry_depth(entry) - 1;
            return top;
        }
    }
}

/* Pops n blocks into out[] with one CAS: n, or (when `exact`) 0 if fewer
 * are there, else as many as there are. The walk may read entries that
 * change under it; the tag check of the final CAS rejects any walk that
 * overlapped a pop (see ABA above). */
static inline size_t stack_pop_many(struct stack *s, uint32_t *out, size_t n, bool exact)
{
    uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
    for (;;) {
        uint32_t index = stack_top(head);
        if (index == STACK_NIL)
            return 0;
        uint64_t entry = atomic_load_explicit(stack_entry(s, index), memory_order_relaxed);
        size_t want = n;
        if (entry_depth(entry) < n) {
            /* Too few, unless the entry was stale: confirm with the head. */
            uint64_t again = atomic_load_explicit(&s->head, memory_order_acquire);
            if (again != head) {
                head = again;
                continue;
            }
            if (exact)
                return 0;
            want = entry_depth(entry);
        }
        size_t i = 0;
        for (; i < want && index != STACK_NIL; i++) {
            out[i] = index;
            index = entry_next(atomic_load_explicit(stack_entry(s, index),
                                                    memory_order_relaxed));
        }
        if (i < want) {
            /* The chain ended before the depth said it would. With the head
             * changed, the walk read stale entries: start again. With it
             * unchanged, the entries themselves disagree with the depth
             * (only a caller's unordered double put can do that): take the
             * chain as it is rather than retry for ever. */
            uint64_t again = atomic_load_explicit(&s->head, memory_order_acquire);
            if (again != head) {
                head = again;
                continue;
            }
            if (exact || i == 0)
                return 0;
            want = i;
        }
        if (atomic_compare_exchange_weak_explicit(&s->head, &head,
                                                  stack_head(index, head, STACK_TAG_ONE),
                                                  memory_order_acquire, memory_order_acquire))
            return want;
    }
}

/* Pushes blocks[0..n-1] with one CAS, blocks[0] ending on top. Refuses (false,
 * nothing pushed) while the WAIT bit is set, unless `locked`: the slow path
 * pushes under the pool lock with WAIT set. */
static inline bool stack_push_many(struct stack *s, const uint32_t *blocks, size_t n,
                                   bool locked)
{
    /* Acquire, also on a failed CAS: the depth of the block below is read
     * from its entry, which its pusher wrote before publishing it; only an
     * acquire of the head orders that read after the publication (the
     * address dependency that hardware honours is no promise of C11). */
    uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
    for (;;) {
        if ((head & STACK_WAIT) && !locked)
            return false;
        uint32_t below = stack_top(head);
        uint32_t depth = below == STACK_NIL ? 0
            : entry_depth(atomic_load_explicit(stack_entry(s, below), memory_order_relaxed));
        for (size_t i = n; i-- > 0;) {
            atomic_store_explicit(stack_entry(s, blocks[i]),
                                  entry_make(below, ++depth), memory_order_relaxed);
            below = blocks[i];
        }
        if (atomic_compare_exchange_weak_explicit(&s->head, &head,
                                                  stack_head(blocks[0], head, 0),
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return true;
    }
}

/* Sets or clears the WAIT bit, keeping index and tag. */
static inline void stack_set_wait(struct stack *s, bool on)
{
    if (on)
        atomic_fetch_or_explicit(&s->head, STACK_WAIT, memory_order_seq_cst);
    else
        atomic_fetch_and_explicit(&s->head, ~STACK_WAIT, memory_order_seq_cst);
}

#endif
