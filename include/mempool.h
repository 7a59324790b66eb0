/* SPDX-License-Identifier: MIT */
/*
 * mempool: a fixed-capacity pool of same-size memory blocks.
 *
 * OVERVIEW
 *   A pool owns exactly `capacity` blocks for its whole life. mempool_get()
 *   hands one out, mempool_put() takes it back. Nothing is allocated after
 *   creation, so memory is bounded and a pool gives back-pressure: when every
 *   block is out, a get sleeps until one is put back (or a timeout expires, or
 *   the pool is closed).
 *
 *   Two modes; exactly one of `block_size` and `make` is set in the config:
 *   - Arena mode: the pool makes all blocks itself in one contiguous region.
 *     Block i starts at base + i * stride, at a multiple of `alignment`.
 *     Blocks are zero-filled at creation unless `init` prepares them.
 *   - Generator mode: `make` produces each block (any pointer, any size), up
 *     front or, with MEMPOOL_LAZY, on first need. `unmake` releases them at
 *     destroy. Indices follow the order in which blocks were made.
 *
 * GUARANTEES
 *   - Exact capacity: at most `capacity` blocks are ever out at once; a block
 *     is never handed to two owners (unless the caller puts one block twice
 *     from two threads without ordering between the puts: see mempool_put).
 *   - The pool never writes into a block it holds: bookkeeping lives in side
 *     arrays, so a block keeps its contents between put and get, and a buffer
 *     overflow in the caller cannot corrupt the free list.
 *   - Per-thread caches: each thread keeps two magazines of free blocks per
 *     pool (cache_size / 2 each), so most gets and puts do no atomic
 *     read-modify-write, take no lock and make no system call; a thread whose
 *     magazines run empty or full trades a whole one with the pool's depot.
 *     Cached blocks are never stranded: a get that would wait or fail first
 *     takes blocks parked in other threads' caches (including idle ones) and
 *     in the depot, and while a get waits, puts go to the waiter.
 *     Automatic size (cache_size 0): capacity / 16, at most 256, none below
 *     64 blocks; an explicit size is clamped to capacity / 4 and 4096.
 *     A thread's caches return to their pools when it exits (thread-exit
 *     destructors do not run for the main thread or at exit(): its cached
 *     blocks stay available to other threads and are released by destroy).
 *   - Lock-free shared path: behind the caches, the free list is a Treiber
 *     stack of block indices with an ABA tag in the same 64-bit word; when
 *     nobody waits, it takes no lock and makes no system call.
 *   - Put validation is always on and O(1): NULL, foreign, interior and
 *     repeated puts are refused with EINVAL and leave the pool unchanged.
 *
 * WAITING
 *   A get that finds no free block sleeps (a futex on Linux, a condition
 *   variable elsewhere); a sleeping thread uses no CPU. Waiters queue in FIFO
 *   order and a put hands its block straight to the oldest waiter, so no
 *   waiter starves and nobody can barge in front of it. A put makes a system
 *   call only when somebody waits. Timeouts are relative, in nanoseconds, on
 *   CLOCK_MONOTONIC: < 0 waits forever, 0 does not wait, and a value too large
 *   to add to the clock saturates to forever (mempool_get_until takes an
 *   absolute deadline on the same clock instead). A timed wait never returns
 *   early and is honoured across signals and spurious wake-ups. Waiting calls are
 *   not cancellation points; mempool_close() or a timeout aborts a wait.
 *   A bulk get waits in the same FIFO and collects its blocks when it reaches
 *   the head: a thread that waits while it holds blocks of the pool can wait
 *   behind a bulk request that needs those blocks.
 *
 * ERRORS
 *   Functions returning a pointer return NULL and set errno. Functions
 *   returning int (except mempool_owns) return 0 or a positive errno value and
 *   leave errno alone. A successful call never changes errno, and EINTR is
 *   never returned. A NULL pool gives EINVAL where an error can be returned,
 *   0 from the size queries and mempool_owns, SIZE_MAX from mempool_index, and
 *   is a no-op for destroy, close and flush.
 *
 * THREADS, SIGNALS, FORK
 *   Every function except mempool_destroy may be called from any thread at any
 *   time. Async-signal-safe: mempool_capacity, mempool_block_size,
 *   mempool_owns, mempool_index, mempool_block; nothing else. After fork() the
 *   child may use a pool only if no other thread was inside a call on that
 *   pool at the moment of the fork. The library's global state cannot hang
 *   the child: pthread_atfork handlers take the lock of pool ids and thread
 *   exit around fork(), and the portable wait backend's buckets start
 *   afresh in the child, so creating, using and destroying pools there is
 *   safe while other threads of the parent were busy elsewhere.
 *
 * CHECKED MODE (MEMPOOL_CHECKED)
 *   A per-pool switch that helps find the caller's bugs, at the cost of a
 *   lock on every get and put (no per-thread cache). Repeated puts are
 *   refused exactly, even two racing puts of one block (one wins). Free
 *   blocks are reused oldest first (FIFO): a block put back is handed out
 *   again only after every block that was free before it, so a late second
 *   put by its former owner usually finds it still free and is refused; a
 *   get still takes the oldest free block rather than wait. Arena mode also
 *   checksums each block at put and verifies it when the block is handed out
 *   ("write-after-put"), and checks guard bytes placed after each block (the
 *   stride grows by 16) at put ("overflow": the put is still accepted and the
 *   guard restored). Destroy reports each block still out ("leak").
 *   Detections go to on_misuse ("what" is one of "null", "foreign",
 *   "interior", "repeated", "repeated-in-array", "duplicate",
 *   "write-after-put", "overflow", "leak") and the call carries on. Without
 *   on_misuse, a checked pool prints one line to stderr per refused put and
 *   per leak, and aborts on corruption (a write after put, an overflow).
 *
 * TOOLS
 *   Free blocks are poisoned for AddressSanitizer (found at run time, so a
 *   program built with ASan reports a use after put even when the library
 *   is not) and, in builds with valgrind/memcheck.h, made inaccessible to
 *   memcheck, so both report a use after put in the caller's program;
 *   memcheck also hears of every arena block still out at destroy.
 *
 * SHUTDOWN
 *   Stop users with mempool_close() (waiters wake with ECANCELED), wait for
 *   the blocks with mempool_drain(), join the threads, then mempool_destroy().
 *   Calling destroy while another thread is inside a call on the pool is a
 *   caller error, and so is any use of the pool after destroy.
 */
#ifndef MEMPOOL_H
#define MEMPOOL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Windows: the DLL exports the functions (MEMPOOL_BUILDING_DLL while it is
 * built) and its users import them; a program linked with the static
 * library defines MEMPOOL_STATIC (CMake's mempool::mempool and mempool.pc
 * do that for it). */
#if defined(_WIN32)
#if defined(MEMPOOL_BUILDING_DLL)
#define MEMPOOL_API __declspec(dllexport)
#elif defined(MEMPOOL_STATIC)
#define MEMPOOL_API
#else
#define MEMPOOL_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define MEMPOOL_API __attribute__((visibility("default")))
#else
#define MEMPOOL_API
#endif

/* The version of this header; mempool_version() gives the library's. */
#define MEMPOOL_VERSION_MAJOR 0
#define MEMPOOL_VERSION_MINOR 2
#define MEMPOOL_VERSION_PATCH 0
#define MEMPOOL_VERSION "0.2.0"

/* The library's version as "MAJOR.MINOR.PATCH", a static string. */
MEMPOOL_API const char *mempool_version(void);

/* The largest capacity: the free list's 64-bit head holds a 25-bit block
 * index next to its ABA tag (see src/stack.h). */
#define MEMPOOL_CAPACITY_MAX ((size_t)1 << 24)

enum {
    MEMPOOL_NO_CACHE   = 1u << 0, /* no per-thread cache */
    MEMPOOL_LAZY       = 1u << 1, /* generator mode: make blocks on first need */
    MEMPOOL_CHECKED    = 1u << 2, /* checked mode: catch the caller's bugs (see above) */
    MEMPOOL_HUGEPAGES  = 1u << 3, /* arena mode: back the arena with huge pages: hugetlb
                                   * pages where reserved, else transparent huge pages
                                   * where the kernel allows, else normal pages; never a
                                   * failure (mempool_arena says what the kernel gave) */
    MEMPOOL_NUMA       = 1u << 4, /* place the arena and the side arrays on numa_node */
};

typedef struct mempool mempool;

typedef struct mempool_config {
    size_t   capacity;    /* number of blocks, 1 .. MEMPOOL_CAPACITY_MAX */
    size_t   block_size;  /* arena mode: usable bytes per block */
    size_t   alignment;   /* arena mode: power of two; 0 = alignof(max_align_t) */
    void  *(*make)(void *arg);                /* generator mode: makes one block */
    void   (*unmake)(void *block, void *arg); /* generator mode: releases one block (optional) */
    void   (*init)(void *block, void *arg);   /* arena mode: prepares each block once (optional) */
    void    *arg;         /* passed to make, unmake, init and on_misuse */
    unsigned cache_size;  /* per-thread cache, in blocks; 0 = automatic */
    unsigned flags;       /* MEMPOOL_* flags */
    void   (*on_misuse)(const char *what, const void *block, void *arg); /* optional */
    /* Since 0.2, in the words that 0.1 reserved (and required to be zero), so
     * the layout and size are 0.1's and a caller built against 0.1 gets 0.1's
     * behaviour. */
    void    *memory;      /* arena mode: the caller's region to lay the blocks in, from
                           * its first address aligned as `alignment` asks; the pool
                           * never frees it (NULL: the pool maps its own arena) */
    size_t   memory_size; /* bytes of `memory`; required with it, and nonzero only with it */
    void   (*fini)(void *block, void *arg); /* arena mode: undoes `init`, once for every
                           * block, free or out, in index order, at destroy (optional) */
    int      numa_node;   /* with MEMPOOL_NUMA: the node (0 without the flag) */
} mempool_config;

/* Creates a pool. NULL with errno EINVAL (invalid config), EOVERFLOW (the
 * arena or its metadata would exceed PTRDIFF_MAX bytes) or ENOMEM (an
 * allocation or `make` failed; every block made so far is unmade once).
 * Invalid configs include: `memory` without `memory_size`, or one too small
 * for `capacity` strides after aligning its start (mempool_arena_bytes);
 * `memory_size` without `memory`; `memory`, `fini` or MEMPOOL_HUGEPAGES in
 * generator mode; `memory` with MEMPOOL_HUGEPAGES or MEMPOOL_NUMA (the caller
 * places its own region); MEMPOOL_NUMA with a node that does not exist or
 * that the process may not use; a nonzero numa_node without MEMPOOL_NUMA. */
MEMPOOL_API mempool *mempool_create(const mempool_config *config);

/* Releases the pool and every block it holds, calling `unmake` for them in
 * generator mode. Blocks still out become invalid in arena mode and stay the
 * caller's in generator mode. NULL is a no-op. */
MEMPOOL_API void mempool_destroy(mempool *pool);

/* Takes a block, sleeping as long as needed. NULL with errno ECANCELED (the
 * pool is closed), ENOMEM (a lazy `make` failed) or EINVAL (NULL pool). */
MEMPOOL_API void *mempool_get(mempool *pool);

/* Takes a block, sleeping at most timeout_ns (< 0 forever, 0 not at all).
 * NULL with errno EAGAIN (none free, no wait allowed), ETIMEDOUT, ECANCELED,
 * ENOMEM or EINVAL. */
MEMPOOL_API void *mempool_get_timeout(mempool *pool, int64_t timeout_ns);

/* Takes a block, sleeping until at most *deadline on CLOCK_MONOTONIC (NULL:
 * forever). A deadline already past does not wait: EAGAIN when none is free,
 * as with a zero timeout. Errors as mempool_get_timeout, and EINVAL when
 * deadline->tv_nsec is outside 0 .. 999999999. */
MEMPOOL_API void *mempool_get_until(mempool *pool, const struct timespec *deadline);

/* mempool_get_timeout(pool, 0): never sleeps, but may run a lazy `make`. */
MEMPOOL_API void *mempool_try_get(mempool *pool);

/* Gives a block back: 0, or EINVAL when `block` is NULL, not the start of one
 * of this pool's blocks, or already free when the put began. Two puts of one
 * block that are not ordered with each other are undefined behaviour. */
MEMPOOL_API int mempool_put(mempool *pool, void *block);

/* Takes n blocks, all or nothing: 0, or EINVAL (NULL pool, NULL blocks with
 * n > 0, n > capacity), ECANCELED, EAGAIN, ETIMEDOUT or ENOMEM with none
 * taken. n == 0 returns 0 at once. */
MEMPOOL_API int mempool_get_bulk(mempool *pool, void **blocks, size_t n, int64_t timeout_ns);

/* Gives n blocks back: 0, or EINVAL and nothing put when any element would be
 * refused by mempool_put or appears twice in the array. */
MEMPOOL_API int mempool_put_bulk(mempool *pool, void *const *blocks, size_t n);

/* Closes the pool for good (idempotent): every waiting and later get returns
 * ECANCELED. Puts are still accepted. */
MEMPOOL_API void mempool_close(mempool *pool);

/* Sleeps until every block is back (available == capacity) at one instant:
 * 0 or ETIMEDOUT (same timeout convention; 0 only checks, and also says
 * ETIMEDOUT while another thread is inside a call on the pool), EINVAL for
 * a NULL pool. See mempool_drain(3) for the cost of polling it. */
MEMPOOL_API int mempool_drain(mempool *pool, int64_t timeout_ns);

/* Returns the calling thread's cached blocks to the shared pool (a no-op
 * without a cache). Never needed for correctness: other threads' gets take
 * cached blocks when they need them. */
MEMPOOL_API void mempool_flush(mempool *pool);

/* The configured capacity. */
MEMPOOL_API size_t mempool_capacity(const mempool *pool);

/* Blocks not out: free ones wherever they are held, plus (lazy mode) blocks
 * not made yet. Exact when no call is in flight; ignores close. */
MEMPOOL_API size_t mempool_available(const mempool *pool);

/* The configured block_size (0 in generator mode). */
MEMPOOL_API size_t mempool_block_size(const mempool *pool);

/* 1 when `block` is the start of one of this pool's blocks (out or free). */
MEMPOOL_API int mempool_owns(const mempool *pool, const void *block);

/* The block's index, 0 .. capacity-1, or SIZE_MAX when it is not one. */
MEMPOOL_API size_t mempool_index(const mempool *pool, const void *block);

/* The block at `index`; NULL with errno EINVAL (index >= capacity or NULL
 * pool) or ENOENT (lazy slot not made yet). */
MEMPOOL_API void *mempool_block(const mempool *pool, size_t index);

/* Statistics since creation or the last mempool_stats_reset. Counters are
 * kept per thread and summed on read, so reading is exact when no call is in
 * flight and costs the hot path no shared write. */
typedef struct mempool_stats {
    uint64_t gets;          /* blocks handed out (a bulk get of n counts n) */
    uint64_t puts;          /* blocks accepted back */
    uint64_t cache_hits;    /* gets served by the calling thread's cache */
    uint64_t cache_misses;  /* gets that went to the shared pool */
    uint64_t waits;         /* gets that slept */
    uint64_t timeouts;      /* gets that gave up with ETIMEDOUT */
    uint64_t refused_puts;  /* puts refused with EINVAL */
    uint64_t out;           /* blocks out now (capacity - available) */
    uint64_t out_high;      /* highest `out` seen: exact without a cache or in
                             * checked mode, else an upper bound (blocks held in
                             * caches count as out when it is sampled) */
    uint64_t reserved[7];   /* zero: room to grow */
} mempool_stats;

/* Where an arena pool's blocks live, for registering them with the kernel or
 * a device (io_uring fixed buffers, ibv_reg_mr, mlock). */
typedef struct mempool_arena_info {
    void    *base;        /* block 0 */
    size_t   size;        /* bytes from base to the end of the last block's stride */
    size_t   stride;      /* distance between consecutive blocks */
    size_t   page_size;   /* size of the pages backing the arena as the kernel maps
                           * them now (read from the mapping, not from the request) */
    uint64_t reserved[4]; /* zero: room to grow */
} mempool_arena_info;

/* Fills *out: 0, or EINVAL (NULL pool or out, or a generator-mode pool). */
MEMPOOL_API int mempool_arena(const mempool *pool, mempool_arena_info *out);

/* Calls visit(block, index, arg) for every block, free or out (in lazy
 * generator mode the blocks made so far), in index order; stops at the first
 * non-zero result and returns it, else 0; EINVAL for a NULL pool or visit.
 * It changes nothing and takes no lock: blocks may be got and put meanwhile.
 * Free blocks stay marked inaccessible for the tools (ASan, memcheck), so a
 * visit that touches a free block's bytes is reported as a use after put. */
MEMPOOL_API int mempool_foreach(mempool *pool, int (*visit)(void *block, size_t index, void *arg),
                                void *arg);

/* The bytes a caller's region (mempool_config.memory) needs for this config,
 * including the worst-case alignment slack (a region already aligned as
 * `alignment` needs that much less: exactly `capacity` strides). 0 with
 * errno EINVAL for a config that cannot be laid out in arena mode (memory and
 * memory_size are ignored), EOVERFLOW past PTRDIFF_MAX. */
MEMPOOL_API size_t mempool_arena_bytes(const mempool_config *config);

/* Fills *out: 0, or EINVAL (NULL pool or out). */
MEMPOOL_API int mempool_stats_read(const mempool *pool, mempool_stats *out);

/* Starts the counters again from zero (out_high from `out`): 0 or EINVAL. */
MEMPOOL_API int mempool_stats_reset(mempool *pool);

/* Prints the statistics as one readable block: 0, or EINVAL, or EIO when
 * writing failed. */
MEMPOOL_API int mempool_stats_print(const mempool *pool, FILE *out);

/* Sharing a pool between processes (Linux; elsewhere every call below fails
 * with ENOSYS). A shared pool lives in a segment that several processes map,
 * each at its own address: blocks cross between processes as indices or as
 * handles (mempool_shm_give), never as pointers. The same errno conventions
 * as above: pointer and handle returns set errno on failure (NULL / 0), int
 * returns give 0 or a positive errno value and leave errno alone. Every call
 * made in a fork child with its parent's handle fails with EPERM (the child
 * is not attached: it calls mempool_shm_open_fd or mempool_shm_open).
 *
 * Creates a shared pool and attaches the calling process to it.
 * name: "/name" (one leading slash, no other, at most 255 characters) for a
 *       named segment, created exclusively (EEXIST when the name exists);
 *       NULL for an anonymous segment (a memfd sealed against shrinking and
 *       growing), shared by handing its descriptor (mempool_shm_fd) to a fork
 *       child or over a unix socket.
 * config: arena mode only: capacity, block_size, alignment, cache_size, init
 *       (run once per block, by the creator), on_misuse and arg (this
 *       process's), flags MEMPOOL_NO_CACHE and MEMPOOL_HUGEPAGES. Generator
 *       mode, memory/memory_size, fini, MEMPOOL_LAZY, MEMPOOL_CHECKED and
 *       MEMPOOL_NUMA: EINVAL.
 * mode: permission bits of a named segment (0 = 0600), exactly as given
 *       (not masked by the umask); ignored for NULL.
 * NULL with errno EINVAL, EEXIST, EACCES, ENOMEM, EOVERFLOW, ENOSYS. */
MEMPOOL_API mempool *mempool_shm_create(const char *name, const mempool_config *config,
                                        unsigned mode);

/* Attaches the calling process to an existing shared pool, by name or by a
 * descriptor of its segment (not taken over: the caller may close it
 * afterwards). NULL with errno ENOENT (no such name), EACCES, EPROTO (not a
 * pool's segment, a corrupt or truncated one, or one of another ABI
 * version), EUSERS (the segment's table of processes is full; it holds
 * 128), EINVAL, ENOSYS. Attaching also runs mempool_recover. */
MEMPOOL_API mempool *mempool_shm_open(const char *name);
MEMPOOL_API mempool *mempool_shm_open_fd(int fd);

/* The segment's descriptor, owned by the pool (dup it to keep it past
 * destroy); -1 with errno EINVAL for a pool that is not shared. */
MEMPOOL_API int mempool_shm_fd(const mempool *pool);

/* Removes a named segment's name; attached processes go on using it. 0,
 * ENOENT, EACCES, EINVAL. */
MEMPOOL_API int mempool_shm_unlink(const char *name);

/* Handing a block to another process. give: the calling process's block
 * (one it got or took) becomes "in transit": no process's death returns it
 * any more; the result is a handle (never 0) to send. 0 with errno EINVAL
 * when block is not out in this process. take: in the receiver, makes the
 * block its own and returns the pointer in its mapping; NULL with errno
 * ESTALE when the handle's block was taken already, put, or reclaimed since,
 * EINVAL when it is not a handle of this pool. Any attached process may also
 * put a block in transit directly; a put and a take of one block that are
 * not ordered with each other are undefined, as two such puts are. */
MEMPOOL_API uint64_t mempool_shm_give(mempool *pool, void *block);
MEMPOOL_API void *mempool_shm_take(mempool *pool, uint64_t handle);

/* The errors only shared pools return, where the C library lacks them
 * (Windows, where every shared call fails with ENOSYS): defined so that
 * portable code naming them compiles. */
#ifndef ESTALE
#define ESTALE 0x7002
#endif
#ifndef EUSERS
#define EUSERS 0x7001
#endif

enum { MEMPOOL_RECOVER_TRANSIT = 1u << 0 }; /* also return every block in transit */

typedef struct mempool_recovery {
    size_t processes;   /* dead processes found and detached by this call */
    size_t blocks;      /* blocks this call returned to the pool */
    size_t in_transit;  /* blocks this call found in transit (with
                         * MEMPOOL_RECOVER_TRANSIT it also returned them, and
                         * counts them in blocks as well) */
    uint64_t reserved[5];
} mempool_recovery;

/* Returns to the pool every block that a dead process held, was granted or
 * was in the middle of getting or putting, and removes its waits. Dead means
 * exited: a zombie is dead, and a new process that reuses a dead one's pid
 * is not it (liveness is a lock the kernel drops at exit, not a pid, so pid
 * namespaces do not matter). Idempotent; safe to run from several processes
 * at once and to be killed in. report may be NULL. 0, EINVAL (NULL, not
 * shared, or unknown flags), EPERM (a fork child with its parent's handle),
 * EPROTO (reserved for a segment corrupt beyond repair: today every
 * inconsistency is repaired), ENOSYS. It also runs on attach, and a get
 * that waits looks for dead processes every 0.1 s, so a block granted to a
 * dead waiter reaches the next live one without anyone calling it. */
MEMPOOL_API int mempool_recover(mempool *pool, unsigned flags, mempool_recovery *report);

#ifdef __cplusplus
}
#endif

#endif /* MEMPOOL_H */
