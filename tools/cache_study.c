/* SPDX-License-Identifier: MIT */
/* cache_study: three designs for the cache in front of a pool, side by side
 * (docs/cache-study.md holds one run's figures and the argument drawn from
 * them). It is a measurement program, not part of the library: the pool
 * here is a prototype with only what the hit paths need.
 *
 *   mempool-cache-study [--design a,b,c] [--iterations N]
 *       ns per get+put pair (1 and 2 threads), ns per block in bursts of
 *       256, and the cost of a reclaim (every cache emptied), each the
 *       median of 5 repetitions after a warm-up
 *   mempool-cache-study --callgrind [--design ...]
 *       instructions per get+put pair and per block of a burst of 256, each
 *       design run under valgrind --tool=callgrind --toggle-collect=loop_*
 *   mempool-cache-study --count DESIGN [--burst] [--iterations N]
 *       what --callgrind runs under valgrind: warm up, then one loop_*
 *   mempool-cache-study --check [--seconds S]
 *       stress: 4 threads get and put at random while a fifth reclaims;
 *       no index may be handed out twice, and at the end every index is
 *       free exactly once
 *
 * THE POOL
 *   N blocks of 64 bytes in one arena. A free block is an index; the shared
 *   bottom layer is an array stack of indices under a mutex (the designs
 *   differ in front of it, not in it). Validation of a put is the library's:
 *   the offset must fall in the arena on a block boundary (a shift: the
 *   stride is a power of two), and the block's state byte in a side array
 *   must say "out"; a put marks it free, a get marks it out.
 *
 * THE DESIGNS
 *   a  Per-thread magazine, the library's busy/steal protocol: the owner
 *      stores busy = 1, a compiler barrier, checks steal, works, stores
 *      busy = 0, a compiler barrier, checks steal again. A reclaimer (under
 *      the pool lock) raises steal on every cache, calls
 *      membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), and empties the caches
 *      it sees idle; a busy owner sees steal at its closing check and hands
 *      its blocks over itself.
 *   b  Per-thread loaded and previous magazines with a depot of full and
 *      empty magazines (Bonwick and Adams' magazine layer). The same
 *      busy/fence protocol, but the owner checks one "unusual" word that
 *      folds every reason to leave the hit path (a steal request, no cache
 *      yet). A miss swaps loaded and previous without a lock, else
 *      exchanges a whole magazine with the depot in O(1) under the lock.
 *   c  Per-CPU slabs with restartable sequences: the get and the put are
 *      each one critical section (x86-64 assembly) that reads the current
 *      CPU from the rseq area glibc registers, and commits with one store
 *      of the slab's count. No busy flag. Preemption, migration or a signal
 *      inside the section makes the kernel restart it at its abort handler.
 *      A reclaim closes every slab (its bounds made empty and full at once),
 *      calls membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ), which
 *      restarts any section running on another CPU, and then owns every
 *      slab until it reopens them.
 *
 * The measured loops are the benchmark's (bench/single.c): each is its own
 * non-inlined function named loop_*, calling get and put through function
 * pointers and writing into each block, so that the instruction counts
 * compare with mempool-bench --callgrind. "floor" is that harness around a
 * get and put that do nothing. */
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sched.h>
#endif

/* Design c needs x86-64 assembly and glibc's registered rseq area
 * (__rseq_offset and __rseq_size, glibc 2.35 and later). */
#if defined(__linux__) && defined(__x86_64__) && defined(__GLIBC__) &&                     \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#include <sys/rseq.h>
#define STUDY_RSEQ 1
#else
#define STUDY_RSEQ 0
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))

#define NIL UINT32_MAX
#define BLOCK_SHIFT 6 /* 64-byte blocks, as in mempool-bench */
#define STATE_OUT 0
#define STATE_FREE 1

/* ------------------------------------------------------------------ */
/* The pool: arena, state bytes, the shared stack, and each design's part. */

#define A_SIZE 128 /* design a: slots per thread's magazine */
#define B_MAG 64   /* design b: rounds per magazine (two per thread) */
#define C_SLAB 112 /* design c: slots per CPU's slab (512-byte slab) */

/* What the busy/fence protocol of designs a and b sees of a thread's cache
 * (each design's cache starts with it). */
struct owner {
    _Atomic uint32_t busy;
    _Atomic uint32_t unusual; /* a: the steal request; b: see below */
    struct owner *next;       /* the pool's list of caches (lock) */
};

/* Bits of the unusual word. Design a uses only OWNER_STEAL; design b folds
 * every reason to leave the hit path into it. */
enum { OWNER_STEAL = 1, OWNER_DETACHED = 2 };

struct acache {
    struct owner o;
    _Atomic uint32_t count;
    uint32_t size;
    _Atomic uint32_t blocks[A_SIZE];
};

struct mag {
    _Atomic uint32_t count;
    struct mag *next; /* depot lists (pool lock) */
    _Atomic uint32_t rounds[B_MAG];
};

struct bcache {
    struct owner o;
    struct mag *_Atomic loaded;
    struct mag *_Atomic prev;
};

/* Design c's slab: a get may pop while count > lo, a put push while
 * count < hi; a reclaim closes the slab with lo = UINT32_MAX, hi = 0. The
 * critical sections below know these offsets: count 0, lo 4, hi 8, slots
 * from 64. */
struct slab {
    uint32_t count;
    uint32_t lo;
    uint32_t hi;
    uint32_t pad[13];
    uint32_t blocks[C_SLAB];
};
#define SLAB_SHIFT 9
_Static_assert(sizeof(struct slab) == (1u << SLAB_SHIFT), "slab is 512 bytes");
_Static_assert(offsetof(struct slab, blocks) == 64, "slots start at 64");

struct pool {
    unsigned char *base;
    size_t bytes;
    unsigned shift;
    uintptr_t mask; /* stride - 1 */
    uint32_t capacity;
    _Atomic uint8_t *state;
    pthread_mutex_t lock;
    uint32_t *shared; /* free indices (lock) */
    uint32_t shared_n;
    _Atomic uint64_t refused;
    struct owner *owners; /* design a's or b's caches (lock) */
    struct mag *depot_full, *depot_empty; /* lock */
    uint32_t depot_full_n, depot_empty_n;
    struct mag *depot_all; /* every depot magazine, to free them */
    struct slab *slabs;    /* ncpu of them */
    unsigned ncpu;
};

static bool membarrier_ok, membarrier_rseq_ok;

static long membarrier_call(int cmd, unsigned flags)
{
#if defined(__linux__)
    return syscall(__NR_membarrier, cmd, flags, 0);
#else
    (void)cmd, (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

static void heavy_barrier(void)
{
#if defined(__linux__)
    if (membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) != 0) {
        perror("membarrier");
        abort();
    }
#endif
}

static void die(const char *what)
{
    fflush(stdout);
    fprintf(stderr, "mempool-cache-study: %s\n", what);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        die("out of memory");
    return p;
}

static inline void lock(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
}

static inline void unlock(struct pool *p)
{
    pthread_mutex_unlock(&p->lock);
}

static inline void *block_of(const struct pool *p, uint32_t i)
{
    return p->base + ((size_t)i << p->shift);
}

/* True, with the block's index, when a put of it is valid: inside the
 * arena, on a block boundary, and out. */
static inline bool put_valid(const struct pool *p, const void *block, uint32_t *index)
{
    uintptr_t off = (uintptr_t)block - (uintptr_t)p->base;
    if (unlikely(off >= p->bytes || (off & p->mask)))
        return false;
    uint32_t i = (uint32_t)(off >> p->shift);
    if (unlikely(atomic_load_explicit(&p->state[i], memory_order_relaxed) != STATE_OUT))
        return false;
    *index = i;
    return true;
}

static NOINLINE void put_refused(struct pool *p)
{
    atomic_fetch_add_explicit(&p->refused, 1, memory_order_relaxed);
}

static inline void mark(struct pool *p, uint32_t i, uint8_t s)
{
    atomic_store_explicit(&p->state[i], s, memory_order_relaxed);
}

/* What a miss path's get returns for index i: the block, marked out. */
static inline void *hand_out(struct pool *p, uint32_t i)
{
    mark(p, i, STATE_OUT);
    return block_of(p, i);
}

/* Shared stack, pool lock held. */
static inline void shared_push(struct pool *p, uint32_t i)
{
    if (unlikely(p->shared_n == p->capacity))
        die("FAIL: more free blocks than the pool has (a block freed twice)");
    p->shared[p->shared_n++] = i;
}

static inline uint32_t shared_pop(struct pool *p)
{
    return p->shared_n ? p->shared[--p->shared_n] : NIL;
}

#if STUDY_RSEQ /* only design c pushes a whole slab */
static void shared_push_n(struct pool *p, const uint32_t *v, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++)
        shared_push(p, v[k]);
}
#endif

/* ------------------------------------------------------------------ */
/* The busy/fence protocol of designs a and b. What differs between them is
 * how a cache's blocks go back to the shared stack: each design's flush. */

typedef uint32_t owner_flush_fn(struct pool *p, struct owner *o);

static inline void owner_idle(struct owner *o)
{
    atomic_store_explicit(&o->busy, 0, memory_order_release);
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void owner_enter(struct owner *o)
{
    atomic_store_explicit(&o->busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
}

static inline uint32_t owner_unusual(struct owner *o)
{
    return atomic_load_explicit(&o->unusual, memory_order_seq_cst);
}

/* Pool lock held, the owner idle: honours a pending steal request (true
 * when there was one; the cache is then empty). */
static inline bool owner_honour_locked(struct pool *p, struct owner *o, owner_flush_fn *flush)
{
    if (!(owner_unusual(o) & OWNER_STEAL))
        return false;
    flush(p, o);
    atomic_store_explicit(&o->unusual, 0, memory_order_release);
    return true;
}

/* The owner, idle, saw a steal request at its closing check. */
static inline void owner_honour(struct pool *p, struct owner *o, owner_flush_fn *flush)
{
    lock(p);
    owner_honour_locked(p, o, flush);
    unlock(p);
}

/* Pool lock held: a new cache joins the pool's list. */
static inline void owner_attach_locked(struct pool *p, struct owner *o)
{
    o->next = p->owners;
    p->owners = o;
}

/* The calling thread's cache leaves the pool; its blocks go to the stack. */
static inline void owner_detach(struct pool *p, struct owner *o, owner_flush_fn *flush)
{
    lock(p);
    flush(p, o);
    for (struct owner **link = &p->owners; *link; link = &(*link)->next)
        if (*link == o) {
            *link = o->next;
            break;
        }
    unlock(p);
}

/* Every idle cache emptied; a busy one hands its blocks over when its
 * owner's operation ends. Returns the blocks taken. */
static inline uint32_t owner_reclaim(struct pool *p, owner_flush_fn *flush)
{
    uint32_t taken = 0;
    lock(p);
    for (struct owner *o = p->owners; o; o = o->next)
        atomic_store_explicit(&o->unusual, OWNER_STEAL, memory_order_seq_cst);
    heavy_barrier();
    for (struct owner *o = p->owners; o; o = o->next) {
        if (atomic_load_explicit(&o->busy, memory_order_seq_cst))
            continue;
        taken += flush(p, o);
        atomic_store_explicit(&o->unusual, 0, memory_order_release);
    }
    unlock(p);
    return taken;
}

/* ------------------------------------------------------------------ */
/* Design a: one magazine per thread, busy/steal. */

static struct acache a_sentinel = {.o.unusual = OWNER_STEAL}; /* always misses: attach */
static _Thread_local struct acache *a_tls = &a_sentinel;

static inline void a_idle(struct acache *c)
{
    owner_idle(&c->o);
}

static inline void a_enter(struct acache *c)
{
    owner_enter(&c->o);
}

static inline bool a_steal(struct acache *c)
{
    return owner_unusual(&c->o);
}

/* Pool lock held: the cache's blocks go to the shared stack. */
static uint32_t a_flush_locked(struct pool *p, struct owner *o)
{
    struct acache *c = (struct acache *)o;
    uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    for (uint32_t k = 0; k < n; k++)
        shared_push(p, atomic_load_explicit(&c->blocks[k], memory_order_relaxed));
    atomic_store_explicit(&c->count, 0, memory_order_relaxed);
    return n;
}

/* Pool lock held, the owner idle: returns its cache, attaching one, and
 * honours a pending steal request (true when there was one: the miss is
 * then served by the shared stack). */
static struct acache *a_own_locked(struct pool *p, bool *stolen)
{
    struct acache *c = a_tls;
    *stolen = false;
    if (c == &a_sentinel) {
        c = xcalloc(1, sizeof *c);
        c->size = A_SIZE;
        owner_attach_locked(p, &c->o);
        a_tls = c;
    } else {
        *stolen = owner_honour_locked(p, &c->o, a_flush_locked);
    }
    return c;
}

static NOINLINE void a_honour(struct pool *p, struct acache *c)
{
    owner_honour(p, &c->o, a_flush_locked);
}

/* A get that was served but saw a steal request: honour it, in tail
 * position so that the hit path saves no registers. */
static NOINLINE void *a_get_honour(struct pool *p, struct acache *c, void *block)
{
    a_honour(p, c);
    return block;
}

static NOINLINE void *a_get_slow(struct pool *p)
{
    a_idle(a_tls);
    lock(p);
    bool stolen;
    struct acache *c = a_own_locked(p, &stolen);
    uint32_t i;
    if (stolen) {
        i = shared_pop(p);
    } else {
        /* Refill half a magazine, then take the hottest. */
        uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
        while (n < c->size / 2 && p->shared_n)
            atomic_store_explicit(&c->blocks[n++], shared_pop(p), memory_order_relaxed);
        i = n ? atomic_load_explicit(&c->blocks[--n], memory_order_relaxed) : NIL;
        atomic_store_explicit(&c->count, n, memory_order_relaxed);
    }
    unlock(p);
    return i == NIL ? NULL : hand_out(p, i);
}

static NOINLINE void a_put_slow(struct pool *p, uint32_t i)
{
    a_idle(a_tls);
    lock(p);
    bool stolen;
    struct acache *c = a_own_locked(p, &stolen);
    mark(p, i, STATE_FREE);
    if (stolen) {
        shared_push(p, i);
    } else {
        uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
        if (n == c->size) {
            /* Spill the cold half (the bottom), keep the hot one. */
            uint32_t half = n / 2;
            for (uint32_t k = 0; k < half; k++)
                shared_push(p, atomic_load_explicit(&c->blocks[k], memory_order_relaxed));
            for (uint32_t k = half; k < n; k++)
                atomic_store_explicit(&c->blocks[k - half],
                                      atomic_load_explicit(&c->blocks[k], memory_order_relaxed),
                                      memory_order_relaxed);
            n -= half;
        }
        atomic_store_explicit(&c->blocks[n], i, memory_order_relaxed);
        atomic_store_explicit(&c->count, n + 1, memory_order_relaxed);
    }
    unlock(p);
}

static void *a_get(void *pv)
{
    struct pool *p = pv;
    struct acache *c = a_tls;
    a_enter(c);
    if (unlikely(a_steal(c)))
        return a_get_slow(p);
    uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (unlikely(n == 0))
        return a_get_slow(p);
    uint32_t i = atomic_load_explicit(&c->blocks[n - 1], memory_order_relaxed);
    atomic_store_explicit(&c->count, n - 1, memory_order_relaxed);
    a_idle(c);
    mark(p, i, STATE_OUT);
    if (unlikely(a_steal(c)))
        return a_get_honour(p, c, block_of(p, i));
    return block_of(p, i);
}

static void a_put(void *pv, void *block)
{
    struct pool *p = pv;
    uint32_t i;
    if (unlikely(!put_valid(p, block, &i)))
        return put_refused(p);
    struct acache *c = a_tls;
    a_enter(c);
    if (unlikely(a_steal(c)))
        return a_put_slow(p, i);
    uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (unlikely(n == c->size))
        return a_put_slow(p, i);
    mark(p, i, STATE_FREE);
    atomic_store_explicit(&c->blocks[n], i, memory_order_relaxed);
    atomic_store_explicit(&c->count, n + 1, memory_order_relaxed);
    a_idle(c);
    if (unlikely(a_steal(c)))
        a_honour(p, c);
}

static uint32_t a_reclaim(void *pv)
{
    return owner_reclaim(pv, a_flush_locked);
}

static void a_thread_exit(void *pv)
{
    if (a_tls == &a_sentinel)
        return;
    owner_detach(pv, &a_tls->o, a_flush_locked);
    free(a_tls);
    a_tls = &a_sentinel;
}

/* ------------------------------------------------------------------ */
/* Design b: loaded + previous magazines and a depot. */

static struct bcache b_sentinel = {.o.unusual = OWNER_DETACHED};
static _Thread_local struct bcache *b_tls = &b_sentinel;

static inline void b_idle(struct bcache *c)
{
    owner_idle(&c->o);
}

static inline void b_enter(struct bcache *c)
{
    owner_enter(&c->o);
}

static inline uint32_t b_unusual(struct bcache *c)
{
    return owner_unusual(&c->o);
}

static inline struct mag *b_loaded(struct bcache *c)
{
    return atomic_load_explicit(&c->loaded, memory_order_relaxed);
}

static inline struct mag *b_prev(struct bcache *c)
{
    return atomic_load_explicit(&c->prev, memory_order_relaxed);
}

static void b_swap(struct bcache *c)
{
    struct mag *m = b_loaded(c);
    atomic_store_explicit(&c->loaded, b_prev(c), memory_order_relaxed);
    atomic_store_explicit(&c->prev, m, memory_order_relaxed);
}

static inline uint32_t mag_count(const struct mag *m)
{
    return atomic_load_explicit(&m->count, memory_order_relaxed);
}

static inline uint32_t mag_pop(struct mag *m)
{
    uint32_t n = mag_count(m) - 1;
    uint32_t i = atomic_load_explicit(&m->rounds[n], memory_order_relaxed);
    atomic_store_explicit(&m->count, n, memory_order_relaxed);
    return i;
}

static inline void mag_push(struct mag *m, uint32_t i)
{
    uint32_t n = mag_count(m);
    atomic_store_explicit(&m->rounds[n], i, memory_order_relaxed);
    atomic_store_explicit(&m->count, n + 1, memory_order_relaxed);
}

/* Pool lock held: a magazine's rounds go to the shared stack. */
static uint32_t mag_flush_locked(struct pool *p, struct mag *m)
{
    uint32_t n = mag_count(m);
    for (uint32_t k = 0; k < n; k++)
        shared_push(p, atomic_load_explicit(&m->rounds[k], memory_order_relaxed));
    atomic_store_explicit(&m->count, 0, memory_order_relaxed);
    return n;
}

static uint32_t b_flush_locked(struct pool *p, struct owner *o)
{
    struct bcache *c = (struct bcache *)o;
    return mag_flush_locked(p, b_loaded(c)) + mag_flush_locked(p, b_prev(c));
}

static struct mag *depot_take(struct mag **list, uint32_t *n)
{
    struct mag *m = *list;
    if (m) {
        *list = m->next;
        --*n;
    }
    return m;
}

static void depot_give(struct mag **list, uint32_t *n, struct mag *m)
{
    m->next = *list;
    *list = m;
    ++*n;
}

/* Pool lock held: m from the depot is loaded in O(1); the previous
 * magazine goes to the depot's list, and loaded becomes previous. */
static void b_load_locked(struct bcache *c, struct mag *m, struct mag **list, uint32_t *n)
{
    depot_give(list, n, b_prev(c));
    atomic_store_explicit(&c->prev, b_loaded(c), memory_order_relaxed);
    atomic_store_explicit(&c->loaded, m, memory_order_relaxed);
}

/* Pool lock held, the owner idle: as a_own_locked (out of line, as the
 * miss paths were measured). */
static NOINLINE struct bcache *b_own_locked(struct pool *p, bool *stolen)
{
    struct bcache *c = b_tls;
    *stolen = false;
    if (c == &b_sentinel) {
        c = xcalloc(1, sizeof *c);
        atomic_store_explicit(&c->loaded, xcalloc(1, sizeof(struct mag)), memory_order_relaxed);
        atomic_store_explicit(&c->prev, xcalloc(1, sizeof(struct mag)), memory_order_relaxed);
        owner_attach_locked(p, &c->o);
        b_tls = c;
    } else {
        *stolen = owner_honour_locked(p, &c->o, b_flush_locked);
    }
    return c;
}

static NOINLINE void b_honour(struct pool *p, struct bcache *c)
{
    owner_honour(p, &c->o, b_flush_locked);
}

static NOINLINE void *b_get_honour(struct pool *p, struct bcache *c, void *block)
{
    b_honour(p, c);
    return block;
}

/* A miss that the previous magazine can serve (rounds for a get, room for
 * a put) swaps it in without the lock: true with the owner busy, to do its
 * one operation and then b_leave. */
static inline bool b_enter_swapped(struct bcache *c, bool get)
{
    if (c == &b_sentinel)
        return false;
    b_enter(c);
    if (!b_unusual(c) && (get ? mag_count(b_prev(c)) > 0 : mag_count(b_prev(c)) < B_MAG)) {
        b_swap(c);
        return true;
    }
    b_idle(c);
    return false;
}

static inline void b_leave(struct pool *p, struct bcache *c)
{
    b_idle(c);
    if (unlikely(b_unusual(c)))
        b_honour(p, c);
}

static NOINLINE void *b_get_slow(struct pool *p)
{
    struct bcache *c = b_tls;
    b_idle(c);
    if (b_enter_swapped(c, true)) {
        uint32_t i = mag_pop(b_loaded(c));
        b_leave(p, c);
        return hand_out(p, i);
    }
    lock(p);
    bool stolen;
    c = b_own_locked(p, &stolen);
    uint32_t i = NIL;
    if (stolen) {
        i = shared_pop(p);
    } else {
        struct mag *full = depot_take(&p->depot_full, &p->depot_full_n);
        if (full) {
            b_load_locked(c, full, &p->depot_empty, &p->depot_empty_n);
        } else {
            /* No full magazine: fill half of loaded from the stack. */
            struct mag *m = b_loaded(c);
            while (mag_count(m) < B_MAG / 2 && p->shared_n)
                mag_push(m, shared_pop(p));
        }
        if (mag_count(b_loaded(c)))
            i = mag_pop(b_loaded(c));
    }
    unlock(p);
    return i == NIL ? NULL : hand_out(p, i);
}

static NOINLINE void b_put_slow(struct pool *p, uint32_t i)
{
    struct bcache *c = b_tls;
    b_idle(c);
    if (b_enter_swapped(c, false)) {
        mark(p, i, STATE_FREE);
        mag_push(b_loaded(c), i);
        b_leave(p, c);
        return;
    }
    lock(p);
    bool stolen;
    c = b_own_locked(p, &stolen);
    mark(p, i, STATE_FREE);
    if (stolen) {
        shared_push(p, i);
    } else {
        if (mag_count(b_loaded(c)) == B_MAG) {
            struct mag *empty = depot_take(&p->depot_empty, &p->depot_empty_n);
            if (empty) {
                b_load_locked(c, empty, &p->depot_full, &p->depot_full_n);
            } else {
                /* No empty magazine: previous goes to the stack. */
                mag_flush_locked(p, b_prev(c));
                b_swap(c);
            }
        }
        mag_push(b_loaded(c), i);
    }
    unlock(p);
}

static void *b_get(void *pv)
{
    struct pool *p = pv;
    struct bcache *c = b_tls;
    b_enter(c);
    if (unlikely(b_unusual(c)))
        return b_get_slow(p);
    struct mag *m = b_loaded(c);
    uint32_t n = mag_count(m);
    if (unlikely(n == 0))
        return b_get_slow(p);
    uint32_t i = atomic_load_explicit(&m->rounds[n - 1], memory_order_relaxed);
    atomic_store_explicit(&m->count, n - 1, memory_order_relaxed);
    b_idle(c);
    mark(p, i, STATE_OUT);
    if (unlikely(b_unusual(c)))
        return b_get_honour(p, c, block_of(p, i));
    return block_of(p, i);
}

static void b_put(void *pv, void *block)
{
    struct pool *p = pv;
    uint32_t i;
    if (unlikely(!put_valid(p, block, &i)))
        return put_refused(p);
    struct bcache *c = b_tls;
    b_enter(c);
    if (unlikely(b_unusual(c)))
        return b_put_slow(p, i);
    struct mag *m = b_loaded(c);
    uint32_t n = mag_count(m);
    if (unlikely(n == B_MAG))
        return b_put_slow(p, i);
    mark(p, i, STATE_FREE);
    atomic_store_explicit(&m->rounds[n], i, memory_order_relaxed);
    atomic_store_explicit(&m->count, n + 1, memory_order_relaxed);
    b_idle(c);
    if (unlikely(b_unusual(c)))
        b_honour(p, c);
}

static uint32_t b_reclaim(void *pv)
{
    /* Full magazines in the depot are the reclaimer's already (lock). */
    return owner_reclaim(pv, b_flush_locked);
}

static void b_thread_exit(void *pv)
{
    struct bcache *c = b_tls;
    if (c == &b_sentinel)
        return;
    owner_detach(pv, &c->o, b_flush_locked);
    free(b_loaded(c));
    free(b_prev(c));
    free(c);
    b_tls = &b_sentinel;
}

/* ------------------------------------------------------------------ */
/* Design c: per-CPU slabs, restartable sequences (x86-64). */

#if STUDY_RSEQ
/* Offset of the rseq area from the thread pointer: glibc's __rseq_offset,
 * or, for --count under a tool that refuses rseq (valgrind), a stand-in
 * area of this program's own that says CPU 0 and restarts nothing. */
static ptrdiff_t c_rseq_offset;
static _Thread_local struct rseq c_standin __attribute__((aligned(32)));
static bool c_using_standin;
static struct slab *c_slabs;
static _Atomic uint64_t c_aborts; /* restarts seen by the abort handlers */

static inline struct rseq *c_area(void)
{
    return (struct rseq *)((char *)__builtin_thread_pointer() + c_rseq_offset);
}

/* Both critical sections follow the kernel's rseq ABI: the descriptor
 * (struct rseq_cs: version, flags, start_ip, post_commit_offset, abort_ip)
 * in a data section; label 0 stores its address in rseq->rseq_cs (offset
 * 8), [1, 2) is the section, whose last instruction is the commit (the
 * store of the count); the abort handler, preceded by RSEQ_SIG (encoded in
 * a ud1 instruction as glibc does), counts the restart and starts again at
 * label 0, since the kernel clears rseq_cs when it restarts a section.
 * Every value is recomputed after a restart, the result included.
 * C_SECTION_START and C_SECTION_END are what both sections share: the
 * descriptor, the abort handler, and labels 0 and 1 before the section's
 * body, 2 after its commit. Both name their scratch register [slab]. */
#define C_SECTION_START                                                                    \
    "0:\n\t"                                                                               \
    "leaq 3f(%%rip), %[slab]\n\t"                                                          \
    "movq %[slab], 8(%[rs])\n"                                                             \
    "1:\n\t"
#define C_SECTION_END                                                                      \
    "2:\n\t"                                                                               \
    ".pushsection __rseq_cs, \"aw\"\n\t"                                                   \
    ".balign 32\n"                                                                         \
    "3:\n\t"                                                                               \
    ".long 0, 0\n\t"                                                                       \
    ".quad 1b, 2b - 1b, 4f\n\t"                                                            \
    ".popsection\n\t"                                                                      \
    ".pushsection __rseq_failure, \"ax\"\n\t"                                              \
    ".byte 0x0f, 0xb9, 0x3d\n\t"                                                           \
    ".long %c[sig]\n"                                                                      \
    "4:\n\t"                                                                               \
    "lock incq %[aborts]\n\t"                                                              \
    "jmp 0b\n\t"                                                                           \
    ".popsection\n"

/* The hottest index of the current CPU's slab, or NIL (empty or closed). */
static inline uint32_t c_pop(struct rseq *rs, struct slab *slabs)
{
    uint64_t slab;
    uint32_t count, index;
    __asm__ volatile(
        C_SECTION_START
        "movl $0xffffffff, %[index]\n\t"
        "movl 4(%[rs]), %k[slab]\n\t"
        "shlq %[shift], %[slab]\n\t"
        "addq %[slabs], %[slab]\n\t"
        "movl (%[slab]), %[count]\n\t"
        "cmpl 4(%[slab]), %[count]\n\t"
        "jbe 2f\n\t"
        "subl $1, %[count]\n\t"
        "movl 64(%[slab],%q[count],4), %[index]\n\t"
        "movl %[count], (%[slab])\n"
        C_SECTION_END
        : [slab] "=&r"(slab), [count] "=&r"(count), [index] "=&r"(index),
          [aborts] "+m"(c_aborts)
        : [rs] "r"(rs), [slabs] "r"(slabs), [shift] "i"(SLAB_SHIFT), [sig] "i"(RSEQ_SIG)
        : "memory", "cc");
    return index;
}

/* Pushes index onto the current CPU's slab; false when full or closed. */
static inline bool c_push(struct rseq *rs, struct slab *slabs, uint32_t index)
{
    uint64_t slab;
    uint32_t count, done;
    __asm__ volatile(
        C_SECTION_START
        "xorl %[done], %[done]\n\t"
        "movl 4(%[rs]), %k[slab]\n\t"
        "shlq %[shift], %[slab]\n\t"
        "addq %[slabs], %[slab]\n\t"
        "movl (%[slab]), %[count]\n\t"
        "cmpl 8(%[slab]), %[count]\n\t"
        "jae 2f\n\t"
        "movl %[index], 64(%[slab],%q[count],4)\n\t"
        "addl $1, %[count]\n\t"
        "movl $1, %[done]\n\t"
        "movl %[count], (%[slab])\n"
        C_SECTION_END
        : [slab] "=&r"(slab), [count] "=&r"(count), [done] "=&r"(done),
          [aborts] "+m"(c_aborts)
        : [rs] "r"(rs), [slabs] "r"(slabs), [index] "r"(index), [shift] "i"(SLAB_SHIFT),
          [sig] "i"(RSEQ_SIG)
        : "memory", "cc");
    return done;
}

/* Miss: half a slab from the stack, one returned, the rest pushed onto
 * whatever CPU the thread runs on; what does not fit goes back. */
static NOINLINE void *c_get_slow(struct pool *p)
{
    uint32_t batch[C_SLAB / 2], n = 0;
    lock(p);
    while (n < C_SLAB / 2 && p->shared_n)
        batch[n++] = shared_pop(p);
    unlock(p);
    if (n == 0)
        return NULL;
    uint32_t i = batch[--n];
    struct rseq *rs = c_area();
    uint32_t k = 0;
    while (k < n && c_push(rs, c_slabs, batch[k]))
        k++;
    if (k < n) {
        lock(p);
        while (k < n)
            shared_push(p, batch[k++]);
        unlock(p);
    }
    return hand_out(p, i);
}

/* Full (or closed): the cold half of the slab and the block go to the
 * stack. */
static NOINLINE void c_put_slow(struct pool *p, uint32_t i)
{
    uint32_t batch[C_SLAB / 2], n = 0;
    struct rseq *rs = c_area();
    while (n < C_SLAB / 2 && (batch[n] = c_pop(rs, c_slabs)) != NIL)
        n++;
    lock(p);
    shared_push_n(p, batch, n);
    shared_push(p, i);
    unlock(p);
}

static void *c_get(void *pv)
{
    struct pool *p = pv;
    uint32_t i = c_pop(c_area(), c_slabs);
    if (unlikely(i == NIL))
        return c_get_slow(p);
    mark(p, i, STATE_OUT);
    return block_of(p, i);
}

static void c_put(void *pv, void *block)
{
    struct pool *p = pv;
    uint32_t i;
    if (unlikely(!put_valid(p, block, &i)))
        return put_refused(p);
    mark(p, i, STATE_FREE);
    if (unlikely(!c_push(c_area(), c_slabs, i)))
        c_put_slow(p, i);
}

/* Close every slab, restart every section in flight, empty, reopen. */
static uint32_t c_reclaim(void *pv)
{
    struct pool *p = pv;
    uint32_t taken = 0;
    lock(p);
    for (unsigned k = 0; k < p->ncpu; k++) {
        __atomic_store_n(&p->slabs[k].lo, UINT32_MAX, __ATOMIC_RELAXED);
        __atomic_store_n(&p->slabs[k].hi, 0, __ATOMIC_RELAXED);
    }
    if (!c_using_standin &&
        membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0) != 0) {
        perror("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ)");
        abort();
    }
    for (unsigned k = 0; k < p->ncpu; k++) {
        struct slab *s = &p->slabs[k];
        uint32_t n = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
        shared_push_n(p, s->blocks, n);
        taken += n;
        __atomic_store_n(&s->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->lo, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&s->hi, C_SLAB, __ATOMIC_RELEASE);
    }
    unlock(p);
    return taken;
}
#endif

/* ------------------------------------------------------------------ */
/* The harness floor: a get and a put that do nothing. */

static void *floor_get(void *pv)
{
    return ((struct pool *)pv)->base;
}

static void floor_put(void *pv, void *block)
{
    (void)pv, (void)block;
}

static uint32_t no_reclaim(void *pv)
{
    (void)pv;
    return 0;
}

static void no_thread_exit(void *pv)
{
    (void)pv;
}

/* ------------------------------------------------------------------ */

struct design {
    char key;
    const char *name;
    void *(*get)(void *pool);
    void (*put)(void *pool, void *block);
    uint32_t (*reclaim)(void *pool);
    void (*thread_exit)(void *pool);
    const char *unavailable; /* NULL: it runs here */
};

static struct design designs[] = {
    {'f', "floor (harness only)", floor_get, floor_put, no_reclaim, no_thread_exit, NULL},
    {'a', "a per-thread magazine, busy/steal", a_get, a_put, a_reclaim, a_thread_exit, NULL},
    {'b', "b loaded+previous, depot", b_get, b_put, b_reclaim, b_thread_exit, NULL},
#if STUDY_RSEQ
    {'c', "c per-CPU, rseq", c_get, c_put, c_reclaim, no_thread_exit, NULL},
#else
    {'c', "c per-CPU, rseq", NULL, NULL, NULL, NULL, "not built (needs x86-64 Linux, glibc 2.35)"},
#endif
};
#define DESIGNS (sizeof designs / sizeof designs[0])

static struct pool *pool_create(uint32_t capacity)
{
    struct pool *p = xcalloc(1, sizeof *p);
    p->capacity = capacity;
    p->shift = BLOCK_SHIFT;
    p->mask = ((uintptr_t)1 << BLOCK_SHIFT) - 1;
    p->bytes = (size_t)capacity << BLOCK_SHIFT;
    p->base = aligned_alloc(64, p->bytes);
    if (!p->base)
        die("out of memory");
    memset(p->base, 0, p->bytes);
    p->state = xcalloc(capacity, 1);
    p->shared = xcalloc(capacity, sizeof *p->shared);
    pthread_mutex_init(&p->lock, NULL);
    /* Index 0 on top. */
    for (uint32_t i = capacity; i-- > 0;) {
        mark(p, i, STATE_FREE);
        shared_push(p, i);
    }
    /* The depot's magazines: enough to hold every block, all empty. */
    uint32_t mags = capacity / B_MAG + 2;
    for (uint32_t k = 0; k < mags; k++) {
        struct mag *m = xcalloc(1, sizeof *m);
        depot_give(&p->depot_empty, &p->depot_empty_n, m);
    }
#if defined(__linux__)
    p->ncpu = (unsigned)get_nprocs_conf();
#else
    p->ncpu = 1;
#endif
    p->slabs = aligned_alloc(64, (size_t)p->ncpu * sizeof(struct slab));
    if (!p->slabs)
        die("out of memory");
    memset(p->slabs, 0, (size_t)p->ncpu * sizeof(struct slab));
    for (unsigned k = 0; k < p->ncpu; k++)
        p->slabs[k].hi = C_SLAB;
#if STUDY_RSEQ
    c_slabs = p->slabs;
#endif
    return p;
}

/* Every block free exactly once, in the stack, a cache or the depot; the
 * calling thread is the only one left. Returns the number of faults. */
static unsigned pool_census(struct pool *p, const struct design *d)
{
    d->thread_exit(p);
    lock(p);
    unsigned char *seen = xcalloc(p->capacity, 1);
    unsigned faults = 0;
    uint32_t total = 0;
#define SEE(idx)                                                                          \
    do {                                                                                  \
        uint32_t see_ = (idx);                                                            \
        if (see_ >= p->capacity || seen[see_]++)                                          \
            faults++;                                                                     \
        total++;                                                                          \
    } while (0)
    for (uint32_t k = 0; k < p->shared_n; k++)
        SEE(p->shared[k]);
    for (struct owner *o = p->owners; o; o = o->next)
        faults++; /* every thread has exited: no cache may remain */
    for (struct mag *m = p->depot_full; m; m = m->next)
        for (uint32_t k = 0; k < mag_count(m); k++)
            SEE(m->rounds[k]);
    for (unsigned c = 0; c < p->ncpu; c++)
        for (uint32_t k = 0; k < p->slabs[c].count; k++)
            SEE(p->slabs[c].blocks[k]);
#undef SEE
    for (uint32_t i = 0; i < p->capacity; i++)
        if (atomic_load(&p->state[i]) != STATE_FREE)
            faults++;
    if (total != p->capacity)
        faults++;
    unlock(p);
    free(seen);
    return faults;
}

static void pool_destroy(struct pool *p)
{
    for (struct mag *m = p->depot_full, *next; m; m = next)
        next = m->next, free(m);
    for (struct mag *m = p->depot_empty, *next; m; m = next)
        next = m->next, free(m);
    free(p->slabs);
    free(p->shared);
    free((void *)p->state);
    free(p->base);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ------------------------------------------------------------------ */
/* The measured loops (bench/single.c's). */

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static NOINLINE void fail_empty(void)
{
    die("a get found the pool empty");
}

void touch(void *block, size_t i);
void touch(void *block, size_t i)
{
    *(volatile unsigned char *)block = (unsigned char)i;
    __asm__ volatile("" : : "r"(block) : "memory");
}

/* The work of the measured loops, each written once: loop_* runs it where
 * callgrind collects, warm_* (the warm-ups) where it does not. */
static inline void pairs(const struct design *d, void *pool, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *block = d->get(pool);
        if (!block)
            fail_empty();
        touch(block, i);
        d->put(pool, block);
    }
}

#define BURST 256
static inline void bursts(const struct design *d, void *pool, void **blocks, size_t rounds)
{
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < BURST; i++) {
            if (!(blocks[i] = d->get(pool)))
                fail_empty();
            touch(blocks[i], i);
        }
        for (size_t i = 0; i < BURST; i++)
            d->put(pool, blocks[i]);
    }
}

void loop_pair(const struct design *d, void *pool, size_t n);
NOINLINE void loop_pair(const struct design *d, void *pool, size_t n)
{
    pairs(d, pool, n);
}

void loop_burst(const struct design *d, void *pool, void **blocks, size_t rounds);
NOINLINE void loop_burst(const struct design *d, void *pool, void **blocks, size_t rounds)
{
    bursts(d, pool, blocks, rounds);
}

static NOINLINE void warm_pair(const struct design *d, void *pool, size_t n)
{
    pairs(d, pool, n);
}

static NOINLINE void warm_burst(const struct design *d, void *pool, void **blocks, size_t rounds)
{
    bursts(d, pool, blocks, rounds);
}

static int compare_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

#define REPS 5

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define CAPACITY 4096

struct worker {
    const struct design *d;
    struct pool *pool;
    size_t n;
    pthread_barrier_t *start;
};

static void *pair_worker(void *arg)
{
    struct worker *w = arg;
    warm_pair(w->d, w->pool, w->n / 10 + 1000);
    pthread_barrier_wait(w->start);
    loop_pair(w->d, w->pool, w->n);
    w->d->thread_exit(w->pool);
    return NULL;
}

/* ns per pair over `threads` threads, each doing n pairs: wall time divided
 * by all pairs (mempool-bench's parallel scenario). */
static double pairs_threads(const struct design *d, unsigned threads, size_t n)
{
    struct pool *p = pool_create(CAPACITY);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, threads + 1);
    pthread_t tid[8];
    struct worker w = {d, p, n, &start};
    for (unsigned t = 0; t < threads; t++)
        pthread_create(&tid[t], NULL, pair_worker, &w);
    pthread_barrier_wait(&start);
    uint64_t t0 = now_ns();
    for (unsigned t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    uint64_t t1 = now_ns();
    pthread_barrier_destroy(&start);
    pool_census(p, d);
    pool_destroy(p);
    return (double)(t1 - t0) / (double)(n * threads);
}

static double pairs_one(const struct design *d, struct pool *p, size_t n)
{
    warm_pair(d, p, n / 10 + 1000);
    uint64_t t0 = now_ns();
    loop_pair(d, p, n);
    return (double)(now_ns() - t0) / (double)n;
}

static double burst_one(const struct design *d, struct pool *p, size_t n)
{
    void *blocks[BURST];
    size_t rounds = n / BURST + 1;
    warm_burst(d, p, blocks, rounds / 10 + 4);
    uint64_t t0 = now_ns();
    loop_burst(d, p, blocks, rounds);
    return (double)(now_ns() - t0) / (double)(rounds * BURST);
}

/* Reclaim cost. Idle owners: two threads each fill their caches with a
 * burst and wait; the main thread reclaims; repeat. Busy owner: one thread
 * runs pairs while the main thread reclaims again and again. */
struct reclaim_run {
    const struct design *d;
    struct pool *pool;
    pthread_barrier_t filled, reclaimed;
    size_t rounds;
    _Atomic bool stop;
};

static void *reclaim_filler(void *arg)
{
    struct reclaim_run *r = arg;
    void *blocks[32];
    for (size_t k = 0; k < r->rounds; k++) {
        for (int i = 0; i < 32; i++)
            if (!(blocks[i] = r->d->get(r->pool)))
                fail_empty();
        for (int i = 0; i < 32; i++)
            r->d->put(r->pool, blocks[i]);
        pthread_barrier_wait(&r->filled);
        pthread_barrier_wait(&r->reclaimed);
    }
    r->d->thread_exit(r->pool);
    return NULL;
}

static void *reclaim_runner(void *arg)
{
    struct reclaim_run *r = arg;
    warm_pair(r->d, r->pool, 1000);
    pthread_barrier_wait(&r->filled);
    size_t i = 0;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        void *block = r->d->get(r->pool);
        if (!block)
            fail_empty();
        touch(block, i++);
        r->d->put(r->pool, block);
    }
    r->d->thread_exit(r->pool);
    return NULL;
}

#define RECLAIMS 2000

static void reclaim_cost(const struct design *d, double *idle_us, double *busy_us, double *taken)
{
    static double t[RECLAIMS];
    struct reclaim_run r = {.d = d, .rounds = RECLAIMS};
    r.pool = pool_create(CAPACITY);
    pthread_barrier_init(&r.filled, NULL, 3);
    pthread_barrier_init(&r.reclaimed, NULL, 3);
    pthread_t tid[2];
    for (int k = 0; k < 2; k++)
        pthread_create(&tid[k], NULL, reclaim_filler, &r);
    double sum_taken = 0;
    for (size_t k = 0; k < RECLAIMS; k++) {
        pthread_barrier_wait(&r.filled);
        uint64_t t0 = now_ns();
        sum_taken += d->reclaim(r.pool);
        t[k] = (double)(now_ns() - t0) / 1000.0;
        pthread_barrier_wait(&r.reclaimed);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(tid[k], NULL);
    *idle_us = median(t, RECLAIMS);
    *taken = sum_taken / RECLAIMS;
    pthread_barrier_destroy(&r.filled);
    pthread_barrier_destroy(&r.reclaimed);

    pthread_barrier_init(&r.filled, NULL, 2);
    pthread_create(&tid[0], NULL, reclaim_runner, &r);
    pthread_barrier_wait(&r.filled);
    for (size_t k = 0; k < RECLAIMS; k++) {
        uint64_t t0 = now_ns();
        d->reclaim(r.pool);
        t[k] = (double)(now_ns() - t0) / 1000.0;
    }
    atomic_store(&r.stop, true);
    pthread_join(tid[0], NULL);
    pthread_barrier_destroy(&r.filled);
    *busy_us = median(t, RECLAIMS);
    if (pool_census(r.pool, d))
        die("reclaim run: the census failed");
    pool_destroy(r.pool);
}

/* ------------------------------------------------------------------ */
/* --check */

#define CHECK_THREADS 4
#define CHECK_HOLD 32
#define CHECK_CAPACITY 192

struct check_run {
    const struct design *d;
    struct pool *pool;
    _Atomic uint32_t *owner; /* 0: free, else the holding thread's number */
    _Atomic bool stop;
    _Atomic uint64_t twice, ops, empty, reclaims;
};

struct check_thread {
    struct check_run *run;
    uint32_t id;
};

static uint32_t index_of(const struct pool *p, const void *block)
{
    return (uint32_t)(((const unsigned char *)block - p->base) >> p->shift);
}

static void *check_worker(void *arg)
{
    struct check_thread *t = arg;
    struct check_run *r = t->run;
    struct pool *p = r->pool;
    void *held[CHECK_HOLD];
    unsigned n = 0;
    uint64_t x = 0x9E3779B97F4A7C15u * (t->id + 1), ops = 0, empty = 0, twice = 0;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (n == 0 || (n < CHECK_HOLD && (x & 1))) {
            void *b = r->d->get(p);
            if (!b) {
                empty++;
                continue;
            }
            uint32_t i = index_of(p, b);
            if (atomic_exchange(&r->owner[i], t->id) != 0)
                twice++;
            touch(b, i);
            held[n++] = b;
        } else {
            unsigned k = (unsigned)(x >> 8) % n;
            void *b = held[k];
            held[k] = held[--n];
            uint32_t i = index_of(p, b);
            if (atomic_exchange(&r->owner[i], 0) != t->id)
                twice++;
            r->d->put(p, b);
        }
        ops++;
        if ((x & 0xfff) == 0)
            sched_yield(); /* more preemption and migration */
    }
    while (n) {
        void *b = held[--n];
        uint32_t i = index_of(p, b);
        atomic_store(&r->owner[i], 0);
        r->d->put(p, b);
    }
    r->d->thread_exit(p);
    atomic_fetch_add(&r->ops, ops);
    atomic_fetch_add(&r->empty, empty);
    atomic_fetch_add(&r->twice, twice);
    return NULL;
}

static void *check_reclaimer(void *arg)
{
    struct check_run *r = arg;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        r->d->reclaim(r->pool);
        atomic_fetch_add(&r->reclaims, 1);
        struct timespec ts = {0, 50 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int check_design(const struct design *d, double seconds)
{
    struct check_run r = {.d = d};
    r.pool = pool_create(CHECK_CAPACITY);
    r.owner = xcalloc(CHECK_CAPACITY, sizeof *r.owner);
    struct pool *p = r.pool;
    int bad = 0;

    /* Refused puts: a repeated put, an interior pointer, a foreign one. */
    void *b = d->get(p);
    d->put(p, b);
    d->put(p, b);
    d->put(p, (char *)b + 8);
    d->put(p, &r);
    if (atomic_load(&p->refused) != 3) {
        printf("  %-34s FAIL: %llu of 3 bad puts refused\n", d->name,
               (unsigned long long)atomic_load(&p->refused));
        bad = 1;
    }
#if STUDY_RSEQ
    uint64_t aborts0 = atomic_load(&c_aborts);
#endif
    pthread_t tid[CHECK_THREADS + 1];
    struct check_thread t[CHECK_THREADS];
    for (uint32_t k = 0; k < CHECK_THREADS; k++) {
        t[k] = (struct check_thread){&r, k + 1};
        pthread_create(&tid[k], NULL, check_worker, &t[k]);
    }
    pthread_create(&tid[CHECK_THREADS], NULL, check_reclaimer, &r);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&r.stop, true);
    for (int k = 0; k <= CHECK_THREADS; k++)
        pthread_join(tid[k], NULL);
    unsigned faults = pool_census(p, d);
    char extra[64] = "";
#if STUDY_RSEQ
    if (d->key == 'c')
        snprintf(extra, sizeof extra, ", %llu restarts",
                 (unsigned long long)(atomic_load(&c_aborts) - aborts0));
#endif
    printf("  %-34s %s: %llu ops, %llu empty gets, %llu reclaims%s, %llu handed out twice, "
           "%u census faults\n",
           d->name, r.twice || faults || bad ? "FAIL" : "ok", (unsigned long long)r.ops,
           (unsigned long long)r.empty, (unsigned long long)r.reclaims, extra,
           (unsigned long long)r.twice, faults);
    free(r.owner);
    pool_destroy(p);
    return r.twice || faults || bad;
}

/* ------------------------------------------------------------------ */
/* Environment: what the kernel and glibc grant. */

static void environment(bool print)
{
#if defined(__linux__)
    long cmds = membarrier_call(MEMBARRIER_CMD_QUERY, 0);
    membarrier_ok = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                    membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0;
    membarrier_rseq_ok = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) &&
                         membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0) == 0;
    if (!membarrier_ok) {
        designs[1].unavailable = "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) refused";
        designs[2].unavailable = designs[1].unavailable;
    }
#else
    designs[1].unavailable = "Linux only (membarrier)";
    designs[2].unavailable = designs[1].unavailable;
#endif
#if STUDY_RSEQ
    struct rseq *area = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
    bool registered = __rseq_size > 0 && (int32_t)area->cpu_id >= 0;
    c_rseq_offset = __rseq_offset;
    if (!registered)
        designs[3].unavailable = "rseq not registered by glibc";
    else if (!membarrier_rseq_ok)
        designs[3].unavailable = "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) refused";
#endif
    if (!print)
        return;
#if defined(__linux__)
    struct utsname u;
    uname(&u);
    printf("kernel %s %s, %ld CPUs online, %d configured\n", u.release, u.machine,
           sysconf(_SC_NPROCESSORS_ONLN), get_nprocs_conf());
#if defined(__GLIBC__)
    printf("glibc %d.%d\n", __GLIBC__, __GLIBC_MINOR__);
#endif
    printf("membarrier query %#lx: PRIVATE_EXPEDITED %s, PRIVATE_EXPEDITED_RSEQ %s\n", cmds,
           membarrier_ok ? "granted" : "refused", membarrier_rseq_ok ? "granted" : "refused");
#endif
#if STUDY_RSEQ
    printf("rseq: __rseq_size %u, __rseq_offset %td, cpu_id %d: %s\n", __rseq_size,
           __rseq_offset, (int)(int32_t)area->cpu_id, registered ? "registered" : "not registered");
#else
    printf("rseq: design c not built on this platform\n");
#endif
}

/* ------------------------------------------------------------------ */

static bool selected(const char *list, char key)
{
    return !list || strchr(list, key);
}

static int run_tables(const char *list, size_t n)
{
    printf("\nns per operation, median of %d repetitions (%zu pairs each; 2 threads: wall time "
           "/ all pairs);\nreclaim: median of %d, two idle owners / one owner running pairs\n\n",
           REPS, n, RECLAIMS);
    printf("%-34s %9s %9s %11s %10s %10s %8s\n", "design", "pair 1t", "pair 2t", "burst/256",
           "reclaim", "reclaim", "blocks");
    printf("%-34s %9s %9s %11s %10s %10s %8s\n", "", "ns", "ns", "ns/block", "idle us",
           "busy us", "taken");
    for (size_t k = 0; k < DESIGNS; k++) {
        const struct design *d = &designs[k];
        if (!selected(list, d->key))
            continue;
        if (d->unavailable) {
            printf("%-34s %s\n", d->name, d->unavailable);
            continue;
        }
        double one[REPS], two[REPS], burst[REPS];
        for (int r = 0; r < REPS; r++) {
            struct pool *p = pool_create(CAPACITY);
            one[r] = pairs_one(d, p, n);
            burst[r] = burst_one(d, p, n);
            pool_census(p, d);
            pool_destroy(p);
            two[r] = pairs_threads(d, 2, n);
        }
        printf("%-34s %9.2f %9.2f %11.2f", d->name, median(one, REPS), median(two, REPS),
               median(burst, REPS));
        if (d->key == 'f') {
            printf("\n");
            continue;
        }
        double idle, busy, taken;
        reclaim_cost(d, &idle, &busy, &taken);
        printf(" %10.2f %10.2f %8.0f\n", idle, busy, taken);
        fflush(stdout);
    }
    return 0;
}

/* --count: what valgrind runs. */
static int run_count(char key, bool burst, size_t n)
{
    for (size_t k = 0; k < DESIGNS; k++) {
        struct design *d = &designs[k];
        if (d->key != key)
            continue;
#if STUDY_RSEQ
        if (key == 'c' && d->unavailable && !strcmp(d->unavailable, "rseq not registered by glibc")) {
            /* One thread, instructions only: a stand-in area that nothing
             * restarts runs the same instructions. */
            c_standin.cpu_id = c_standin.cpu_id_start = 0;
            c_rseq_offset = (char *)&c_standin - (char *)__builtin_thread_pointer();
            c_using_standin = true;
            d->unavailable = NULL;
            fprintf(stderr, "design c: rseq not registered, counting with a stand-in area\n");
        }
#endif
        if (d->unavailable) {
            fprintf(stderr, "%s: %s\n", d->name, d->unavailable);
            return 3;
        }
        struct pool *p = pool_create(CAPACITY);
        void *blocks[BURST];
        if (burst) {
            warm_burst(d, p, blocks, 8);
            loop_burst(d, p, blocks, n / BURST);
        } else {
            warm_pair(d, p, 1000);
            loop_pair(d, p, n);
        }
        if (pool_census(p, d))
            die("census failed");
        pool_destroy(p);
        return 0;
    }
    fprintf(stderr, "unknown design %c\n", key);
    return 2;
}

#if defined(__linux__)
/* callgrind's count in an output file: its "totals:" line, else its
 * "summary:" line; 0 when it has neither (or cannot be read). */
static double callgrind_read(const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return 0;
    char line[512];
    double totals = 0, summary = 0;
    while (fgets(line, sizeof line, in)) {
        if (!strncmp(line, "totals:", 7))
            totals = atof(line + 7);
        else if (!strncmp(line, "summary:", 8))
            summary = atof(line + 8);
    }
    fclose(in);
    return totals ? totals : summary;
}
#endif

/* --callgrind: each design's --count under valgrind, the totals read back. */
static double callgrind_one(char key, bool burst, size_t n, const char *self)
{
#if defined(__linux__)
    /* The output file goes to $TMPDIR, or /tmp when it is not set. */
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char file_arg[4200], design[2] = {key, 0}, count[24];
    int len = snprintf(file_arg, sizeof file_arg,
                       "--callgrind-out-file=%s/mempool-cache-study.%d.out", dir, (int)getpid());
    if (len < 0 || (size_t)len >= sizeof file_arg)
        return -1;
    const char *out = strchr(file_arg, '=') + 1;
    snprintf(count, sizeof count, "%zu", n);
    char *argv[] = {"valgrind", "-q", "--tool=callgrind", "--toggle-collect=loop_*", file_arg,
                    (char *)self, "--count", design, "--iterations", count,
                    burst ? "--burst" : NULL, NULL};
    extern char **environ;
    pid_t pid;
    int status;
    if (posix_spawnp(&pid, "valgrind", NULL, NULL, argv, environ) != 0)
        return -1;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    double total = callgrind_read(out);
    remove(out);
    return total > 0 ? total / (double)n : -1;
#else
    (void)key, (void)burst, (void)n, (void)self;
    return -1;
#endif
}

static int run_callgrind(const char *list, size_t n)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        die("cannot find this program's path");
    self[len] = 0;
    n = n / BURST * BURST;
    printf("\ninstructions (callgrind Ir) per get+put, %zu pairs / blocks\n\n", n);
    printf("%-34s %9s %11s\n", "design", "pair", "burst/256");
    for (size_t k = 0; k < DESIGNS; k++) {
        const struct design *d = &designs[k];
        if (!selected(list, d->key))
            continue;
        double pair = callgrind_one(d->key, false, n, self);
        double burst = callgrind_one(d->key, true, n, self);
        if (pair < 0 || burst < 0)
            printf("%-34s valgrind run failed or design unavailable\n", d->name);
        else
            printf("%-34s %9.1f %11.1f\n", d->name, pair, burst);
        fflush(stdout);
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: mempool-cache-study [--design a,b,c,f] [--iterations N]\n"
                    "       mempool-cache-study --callgrind [--design ...] [--iterations N]\n"
                    "       mempool-cache-study --check [--seconds S]\n"
                    "       mempool-cache-study --count DESIGN [--burst] [--iterations N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *list = NULL;
    size_t n = 0;
    double seconds = 2;
    bool check = false, callgrind = false, burst = false;
    char count = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--design") && more)
            list = argv[++i];
        else if (!strcmp(a, "--iterations") && more)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--seconds") && more)
            seconds = atof(argv[++i]);
        else if (!strcmp(a, "--count") && more)
            count = argv[++i][0];
        else if (!strcmp(a, "--burst"))
            burst = true;
        else if (!strcmp(a, "--check"))
            check = true;
        else if (!strcmp(a, "--callgrind"))
            callgrind = true;
        else
            return usage();
    }
    environment(!count);
    if (count)
        return run_count(count, burst, n ? n : 1u << 20);
    if (callgrind)
        return run_callgrind(list, n ? n : 1u << 20);
    if (check) {
        int bad = 0;
        printf("\n--check: %d threads, %d blocks, %.1f s per design, a reclaim every 50 us\n",
               CHECK_THREADS, CHECK_CAPACITY, seconds);
        for (size_t k = 1; k < DESIGNS; k++) {
            if (!selected(list, designs[k].key))
                continue;
            if (designs[k].unavailable)
                printf("  %-34s %s\n", designs[k].name, designs[k].unavailable);
            else
                bad |= check_design(&designs[k], seconds);
        }
        return bad;
    }
    return run_tables(list, n ? n : 20u * 1000 * 1000);
}
