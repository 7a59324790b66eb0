/* SPDX-License-Identifier: MIT */
/* A pool shared by several processes: creating and validating the segment,
 * attaching and detaching processes, and the calls that exist only for
 * shared pools (the layout and the protocol are in shm.h). */
#include <errno.h>
#include <stdalign.h>
#include <string.h>

#include "cache.h"
#include "shm.h"

/* The atomics in the segment must not need a lock of this process's. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "shared pools need address-free 32- and 64-bit atomics");

#define SHM_ALIGNMENT_MAX 4096u /* block alignment a mapping at any page keeps */
#define SHM_FLAGS (MEMPOOL_NO_CACHE | MEMPOOL_HUGEPAGES)

static uint64_t round_up(uint64_t n, uint64_t to)
{
    return (n + to - 1) & ~(to - 1);
}

/* Every sum below is far from overflowing: the block words and links take
 * at most 12 * 2^24 bytes, the tables a fixed few hundred KiB, and the
 * arena at most PTRDIFF_MAX bytes (checked first); only the rounded total
 * is checked against PTRDIFF_MAX again. */
bool mempool__shm_layout(struct shm_header *h)
{
    if (h->capacity == 0 || h->capacity > MEMPOOL_CAPACITY_MAX || h->block_size == 0 ||
        h->block_size > PTRDIFF_MAX || h->alignment == 0 ||
        (h->alignment & (h->alignment - 1)) || h->alignment > SHM_ALIGNMENT_MAX ||
        h->procs != SHM_PROCS || h->waiters != SHM_WAITERS ||
        h->cache_size > CACHE_SIZE_MAX || h->cache_size == 1 ||
        h->caches != (h->cache_size ? SHM_CACHES : 0))
        return false;
    uint64_t stride = round_up(h->block_size, h->alignment);
    if (stride > PTRDIFF_MAX / h->capacity)
        return false;
    h->stride = stride;
    uint64_t off = round_up(sizeof(struct shm_header), CACHE_LINE);
    h->state_offset = off;
    off = round_up(off + sizeof(struct shm_state), CACHE_LINE);
    h->procs_offset = off;
    off += (uint64_t)h->procs * sizeof(struct shm_proc);
    h->waiters_offset = off;
    off += (uint64_t)h->waiters * sizeof(struct shm_waiter);
    h->caches_offset = off;
    off += (uint64_t)h->caches * sizeof(struct shm_cache);
    h->mags_offset = off;
    off = round_up(off + (uint64_t)h->caches * h->cache_size * sizeof(uint32_t), CACHE_LINE);
    h->owners_offset = off;
    off += h->capacity * sizeof(uint64_t);
    h->next_offset = off;
    off += h->capacity * sizeof(uint32_t);
    h->arena_offset = off = round_up(off, SHM_ALIGNMENT_MAX);
    off = round_up(off + stride * h->capacity, SHM_ALIGNMENT_MAX);
    if (off > PTRDIFF_MAX)
        return false;
    h->segment_size = off;
    return true;
}

/* False, with errno ENOSYS, where the OS has no shared segments. */
static bool supported(void)
{
    if (mempool__os_shm_supported())
        return true;
    errno = ENOSYS;
    return false;
}

static int config_check(const mempool_config *c)
{
    if (!c || c->capacity == 0 || c->capacity > MEMPOOL_CAPACITY_MAX || c->block_size == 0)
        return EINVAL;
    if (c->make || c->unmake || c->memory || c->memory_size || c->fini || c->numa_node ||
        (c->flags & ~(unsigned)SHM_FLAGS))
        return EINVAL;
    if ((c->flags & MEMPOOL_NO_CACHE) && c->cache_size)
        return EINVAL;
    if (c->alignment & (c->alignment - 1))
        return EINVAL;
    if (c->alignment > SHM_ALIGNMENT_MAX)
        return EINVAL;
    return 0;
}

/* "/name": one leading slash and no other, 2 to 256 characters in all. */
static bool name_valid(const char *name)
{
    if (!name || name[0] != '/' || !name[1])
        return false;
    size_t n = strlen(name);
    return n <= 256 && !strchr(name + 1, '/');
}

static void shm_bind(struct shm *s)
{
    s->state = (struct shm_state *)(s->map + s->h.state_offset);
    s->procs = (struct shm_proc *)(s->map + s->h.procs_offset);
    s->waiters = (struct shm_waiter *)(s->map + s->h.waiters_offset);
    s->caches = (struct shm_cache *)(s->map + s->h.caches_offset);
    s->mags = (_Atomic uint32_t *)(s->map + s->h.mags_offset);
    s->owners = (_Atomic uint64_t *)(s->map + s->h.owners_offset);
    s->next = (_Atomic uint32_t *)(s->map + s->h.next_offset);
}

/* The private handle: geometry copied from the validated header, so that the
 * pointer <-> index functions of every pool serve this one unchanged. */
static mempool *handle_make(struct shm *s, const mempool_config *c)
{
    mempool *pool = mempool__os_alloc(sizeof *pool, alignof(mempool));
    if (!pool)
        return NULL;
    pool->shm = s;
    s->handle = pool;
    pool->capacity = s->h.capacity;
    pool->block_size = s->h.block_size;
    pool->stride = s->h.stride;
    pool->base = s->map + s->h.arena_offset;
    pool->arena_bytes = s->h.stride * s->h.capacity;
    pool->arena_alignment = s->h.alignment;
    pool->flags = s->h.flags;
    if ((pool->stride & (pool->stride - 1)) == 0) {
        while (((size_t)1 << pool->stride_shift) < pool->stride)
            pool->stride_shift++;
        pool->valid_limit = pool->capacity;
    } else {
        pool->stride_inverse = UINT64_MAX / pool->stride + 1;
    }
    if (c) {
        pool->on_misuse = c->on_misuse;
        pool->arg = c->arg;
    }
    /* The public calls reach the shared path through the branches private
     * pools already have: puts through the mode's operations, gets through
     * the closed test (getput.c). */
    pool->ops = &mempool__shm_ops;
    atomic_init(&pool->closed, true);
    os_lock_init(&pool->lock);
    /* No hit limit: every call leaves the private hit path for the shared
     * one (shm_cache.c), whose thread objects the registry's slot finds. */
    mempool__registry_shm_add(pool);
    return pool;
}

static void shm_release(struct shm *s)
{
    if (s->map)
        mempool__os_shm_unmap(s->map, s->h.segment_size);
    if (s->own >= 0)
        mempool__os_shm_close(s->own);
    if (s->fd >= 0)
        mempool__os_shm_close(s->fd);
    mempool__os_free(s, sizeof *s, alignof(struct shm));
}

/* Takes a participant slot and makes it ours, under the lock, then recovers
 * what dead participants left (a predecessor in our slot included). */
static int attach(mempool *pool)
{
    struct shm *s = pool->shm;
    int err = mempool__os_shm_reopen(s->fd, &s->own);
    if (err)
        return err;
    uint32_t slot = 0;
    while (slot < SHM_PROCS && mempool__os_shm_claim(s->own, slot) != 0)
        slot++;
    if (slot == SHM_PROCS)
        return EUSERS;
    /* Holding the slot's liveness lock makes the slot ours: a repair marks
     * a slot free only by a CAS from the generation it judged dead. */
    SHM_STEP();
    struct shm_proc *p = &s->procs[slot];
    uint64_t word = atomic_load_explicit(&p->word, memory_order_acquire);
    uint32_t gen = (PROC_GEN(word) + 1) & PROC_GEN_MASK;
    atomic_store_explicit(&p->pid, mempool__os_pid(), memory_order_relaxed);
    atomic_store_explicit(&p->word, PROC_WORD(gen, PROC_LIVE), memory_order_release);
    s->slot = slot;
    s->id = PROC_ID(slot, gen);
    /* Registered before any cache of ours runs, whatever protocol its hit
     * path uses: a reclaimer's barrier must reach this process. */
    bool fenced = s->h.caches && mempool__os_shared_barrier_init();
    s->ordered = CACHE_HIT_ORDERED || !fenced;
    SHM_STEP();
    /* Through the lock once, whatever happens: a repair that began before
     * we were LIVE (its census does not know us) ends before we can hold a
     * block it would take for a dead one's. And if our predecessor in this
     * slot died unrecovered, its id is no live one now, and no look at the
     * slots would find it dead: repair now. */
    struct shm_wakes wk = { .n = 0 };
    mempool__shm_lock(pool);
    if (PROC_STATE(word) == PROC_LIVE)
        mempool__shm_repair(s, 0, NULL, &wk);
    mempool__shm_unlock(pool);
    mempool__shm_wake(s, &wk);
    return mempool_recover(pool, 0, NULL);
}

static mempool *fail_with(struct shm *s, mempool *pool, int err)
{
    if (pool) {
        mempool__registry_shm_remove(pool);
        os_lock_destroy(&pool->lock);
        mempool__os_free(pool, sizeof *pool, alignof(mempool));
    }
    shm_release(s);
    errno = err;
    return NULL;
}

static struct shm *shm_alloc(int fd)
{
    struct shm *s = mempool__os_alloc(sizeof *s, alignof(struct shm));
    if (s) {
        s->fd = fd;
        s->own = -1;
    }
    return s;
}

/* Writes the segment's initial state: every block free, block 0 on top. */
static void segment_init(struct shm *s, const mempool_config *c)
{
    struct shm_state *st = s->state;
    for (uint32_t i = 0; i < s->h.waiters; i++)
        atomic_store_explicit(&s->waiters[i].state, WAIT_EMPTY, memory_order_relaxed);
    for (size_t i = 0; i < s->h.capacity; i++) {
        atomic_store_explicit(&s->owners[i], OWN_MAKE(OWN_FREE, 0, 0), memory_order_relaxed);
        atomic_store_explicit(&s->next[i], i + 1 < s->h.capacity ? (uint32_t)(i + 1) : SHM_NONE,
                              memory_order_relaxed);
    }
    atomic_store_explicit(&st->free_head, 0, memory_order_relaxed);
    atomic_store_explicit(&st->free_count, s->h.capacity, memory_order_relaxed);
    atomic_store_explicit(&st->first, SHM_NONE, memory_order_relaxed);
    atomic_store_explicit(&st->last, SHM_NONE, memory_order_relaxed);
    if (c->init) {
        char *base = s->map + s->h.arena_offset;
        int cancel = mempool__os_cancel_off();
        for (size_t i = 0; i < s->h.capacity; i++)
            c->init(base + i * s->h.stride, c->arg);
        mempool__os_cancel_restore(cancel);
    }
    if (c->flags & MEMPOOL_HUGEPAGES)
        mempool__os_shm_advise_huge(s->map + s->h.arena_offset, s->h.stride * s->h.capacity);
    /* Published last: an opener that reads the magic reads the rest. */
    atomic_store_explicit((_Atomic uint64_t *)&((struct shm_header *)s->map)->magic, SHM_MAGIC,
                          memory_order_release);
}

mempool *mempool_shm_create(const char *name, const mempool_config *config, unsigned mode)
{
    if (!supported())
        return NULL;
    int err = config_check(config);
    if (!err && name && !name_valid(name))
        err = EINVAL;
    if (!err && mode > 07777)
        err = EINVAL;
    if (err) {
        errno = err;
        return NULL;
    }
    struct shm_header h = {
        .abi = SHM_ABI,
        .header_size = sizeof h,
        .endian = SHM_ENDIAN,
        .flags = config->flags,
        .capacity = config->capacity,
        .block_size = config->block_size,
        .alignment = config->alignment ? config->alignment : alignof(max_align_t),
        .procs = SHM_PROCS,
        .waiters = SHM_WAITERS,
    };
    /* MEMPOOL_HUGEPAGES changes nothing of the caches: only the flags that
     * the private pools' rule reads (no cache, checked) do. */
    h.cache_size = mempool__cache_size_for(config);
    h.caches = h.cache_size ? SHM_CACHES : 0;
    if (!mempool__shm_layout(&h)) {
        errno = EOVERFLOW;
        return NULL;
    }
    int fd;
    err = mempool__os_shm_create(name, h.segment_size, &fd);
    if (err) {
        errno = err;
        return NULL;
    }
    struct shm *s = shm_alloc(fd);
    if (!s) {
        mempool__os_shm_close(fd);
        if (name)
            mempool__os_shm_unlink(name);
        errno = ENOMEM;
        return NULL;
    }
    s->h = h;
    void *map;
    err = mempool__os_shm_map(fd, h.segment_size, &map);
    s->map = err ? NULL : map;
    mempool *pool = s->map ? handle_make(s, config) : NULL;
    if (!pool) {
        if (name)
            mempool__os_shm_unlink(name);
        return fail_with(s, NULL, err ? err : ENOMEM);
    }
    shm_bind(s);
    memcpy(s->map, &h, sizeof h);
    ((struct shm_header *)s->map)->magic = 0;
    segment_init(s, config);
    err = attach(pool);
    if (!err && name)
        err = mempool__os_shm_publish(fd, mode ? mode : 0600);
    if (err) {
        if (name)
            mempool__os_shm_unlink(name);
        return fail_with(s, pool, err);
    }
    return pool;
}

/* Reads the header into private memory once and checks everything in it
 * against a layout computed here; nothing else of the header is ever read
 * from the segment. A named segment still being made has no magic yet:
 * an open by name waits for it a little (a descriptor comes from a creator
 * that has finished). */
static int validate(int fd, bool named, struct shm_header *out)
{
    for (int tries = 0;; tries++) {
        size_t size;
        int err = mempool__os_shm_size(fd, &size);
        if (err)
            return err;
        struct shm_header h;
        err = size < sizeof h ? EPROTO : mempool__os_shm_read(fd, &h, sizeof h);
        if (err == EACCES)
            return err;
        bool unready = err || h.magic == 0;
        if (unready && named && tries < 100) {
            mempool__os_sleep_ms(10);
            continue;
        }
        if (unready || h.magic != SHM_MAGIC || h.abi != SHM_ABI ||
            h.header_size != sizeof h || h.endian != SHM_ENDIAN ||
            (h.flags & ~(uint32_t)SHM_FLAGS))
            return EPROTO;
        struct shm_header want = {
            .magic = h.magic,
            .abi = h.abi,
            .header_size = h.header_size,
            .endian = h.endian,
            .flags = h.flags,
            .capacity = h.capacity,
            .block_size = h.block_size,
            .alignment = h.alignment,
            .procs = h.procs,
            .waiters = h.waiters,
            .caches = h.caches,
            .cache_size = h.cache_size,
        };
        if (!mempool__shm_layout(&want) || memcmp(&want, &h, sizeof h) != 0 ||
            size < want.segment_size)
            return EPROTO;
        *out = want;
        return 0;
    }
}

static mempool *open_fd_owned(int fd, bool named)
{
    struct shm *s = shm_alloc(fd);
    if (!s) {
        mempool__os_shm_close(fd);
        errno = ENOMEM;
        return NULL;
    }
    int err = validate(fd, named, &s->h);
    if (err)
        return fail_with(s, NULL, err);
    void *map;
    err = mempool__os_shm_map(fd, s->h.segment_size, &map);
    if (err)
        return fail_with(s, NULL, err);
    s->map = map;
    shm_bind(s);
    mempool *pool = handle_make(s, NULL);
    if (!pool)
        return fail_with(s, NULL, ENOMEM);
    err = attach(pool);
    return err ? fail_with(s, pool, err) : pool;
}

mempool *mempool_shm_open(const char *name)
{
    if (!supported())
        return NULL;
    if (!name_valid(name)) {
        errno = EINVAL;
        return NULL;
    }
    int fd;
    int err = mempool__os_shm_open(name, &fd);
    if (err) {
        errno = err;
        return NULL;
    }
    return open_fd_owned(fd, true);
}

mempool *mempool_shm_open_fd(int fd)
{
    if (!supported())
        return NULL;
    int own;
    int err = fd < 0 ? EINVAL : mempool__os_shm_dup(fd, &own);
    if (err) {
        errno = err;
        return NULL;
    }
    return open_fd_owned(own, false);
}

/* The shared pool behind a public call, or NULL with *err saying why. */
struct shm *mempool__shm_of(const mempool *pool, int *err)
{
    if (!pool || !pool->shm) {
        *err = mempool__os_shm_supported() ? EINVAL : ENOSYS;
        return NULL;
    }
    if (pool->shm->forked) {
        *err = EPERM;
        return NULL;
    }
    return pool->shm;
}

int mempool_shm_fd(const mempool *pool)
{
    int err;
    struct shm *s = mempool__shm_of(pool, &err);
    if (!s) {
        errno = err;
        return -1;
    }
    return s->fd;
}

int mempool_shm_unlink(const char *name)
{
    if (!name_valid(name))
        return mempool__os_shm_supported() ? EINVAL : ENOSYS;
    return mempool__os_shm_unlink(name);
}

/* Destroy: our blocks go back as if we had died; the slot is freed. */
void mempool__shm_detach(mempool *pool)
{
    struct shm *s = pool->shm;
    mempool__registry_shm_remove(pool);
    if (!s->forked) {
        struct shm_wakes wk = { .n = 0 };
        mempool__shm_lock(pool);
        uint32_t batch[64];
        size_t k = 0;
        for (size_t i = 0; i < s->h.capacity; i++) {
            uint64_t w = atomic_load_explicit(&s->owners[i], memory_order_relaxed);
            uint32_t cs = own_cache_slot(s, w);
            bool cached_here = cs != SHM_NONE &&
                atomic_load_explicit(&s->caches[cs].owner, memory_order_relaxed) == s->id + 1;
            if (!cached_here && (OWN_KIND(w) != OWN_OUT || OWN_WHO(w) != s->id))
                continue;
            atomic_store_explicit(&s->owners[i], OWN_MAKE(OWN_FREE, 0, OWN_SEQ(w)),
                                  memory_order_relaxed);
            SHM_STEP();
            batch[k++] = (uint32_t)i;
            if (k == 64) {
                mempool__shm_release(s, batch, k, &wk);
                k = 0;
            }
        }
        mempool__shm_release(s, batch, k, &wk);
        mempool__shm_caches_free(s, s->id);
        mempool__shm_unlock(pool);
        mempool__shm_wake(s, &wk);
        /* Only after the unlock: a contender that saw our slot free while we
         * held the lock would take it over from a live holder. */
        struct shm_proc *p = &s->procs[s->slot];
        uint32_t gen = (s->id >> 7) & PROC_GEN_MASK;
        uint64_t live = PROC_WORD(gen, PROC_LIVE);
        atomic_compare_exchange_strong_explicit(&p->word, &live, PROC_WORD(gen, PROC_FREE),
                                                memory_order_release, memory_order_relaxed);
    }
    shm_release(s);
    os_lock_destroy(&pool->lock);
    mempool__os_free(pool, sizeof *pool, alignof(mempool));
}

/* Called in a fork child (registry lock held): the child has its parent's
 * descriptors, its liveness description among them; closing the child's
 * copy keeps the parent's death visible, and the handle refuses use. */
void mempool__shm_fork_child(struct shm *s)
{
    s->forked = true;
    /* The forking thread's objects lead to its parent's cache slot: the
     * hit paths must not find it (the child is the only thread here). */
    for (struct cache *c = s->handle->caches; c; c = c->next)
        c->shared = c->shared_fast = NULL;
    if (s->own >= 0)
        mempool__os_shm_close(s->own);
    s->own = -1;
}
