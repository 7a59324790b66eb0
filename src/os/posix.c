/* SPDX-License-Identifier: MIT */
/* The parts of the OS seam that every POSIX system shares: the monotonic
 * clock, memory and its placement, and cancellation state. What only Linux
 * has for placement (hugetlb pages, transparent huge pages, NUMA binding,
 * the page sizes in /proc/self/smaps) is marked as such; elsewhere placed
 * memory is plain mmap memory on base pages, and only node 0 exists. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/mempolicy.h>
#include <sys/syscall.h>
#endif

#include "os.h"

/* Below this, memory comes from the C heap; above, straight from mmap so that
 * a big arena is committed page by page as blocks are first touched. */
#define OS_MAP_THRESHOLD ((size_t)64 << 10)

/* The clock of every deadline. A system without CLOCK_MONOTONIC has only
 * the wall clock, whose steps then move timeouts (README, platforms). */
#if defined(MEMPOOL_NO_CLOCK_MONOTONIC)
#define OS_CLOCK CLOCK_REALTIME
#else
#define OS_CLOCK CLOCK_MONOTONIC
#endif

int64_t mempool__os_now(void)
{
    struct timespec ts;
    clock_gettime(OS_CLOCK, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t os_page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}

static size_t os_round_up(size_t n, size_t to)
{
    return (n + to - 1) & ~(to - 1);
}

static void *os_map(size_t size, size_t alignment)
{
    size_t page = os_page_size();
    size_t length = os_round_up(size, page);
    size_t extra = alignment > page ? alignment : 0;
    if (length + extra < length)
        return NULL;
    char *raw = mmap(NULL, length + extra, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    if (!extra)
        return raw;
    /* Over-reserved by `alignment`: trim both ends so that the mapping is
     * exactly [aligned, aligned + length) and free needs no bookkeeping. */
    char *aligned = (char *)os_round_up((uintptr_t)raw, alignment);
    if (aligned > raw)
        munmap(raw, (size_t)(aligned - raw));
    size_t tail = (size_t)(raw + length + extra - (aligned + length));
    if (tail)
        munmap(aligned + length, tail);
    return aligned;
}

/* The fault-injection counters of test builds (os.h). */
OS_FAULT_VARIABLES

void *mempool__os_alloc(size_t size, size_t alignment)
{
    if (os_fault_now())
        return NULL;
    if (size == 0)
        size = 1;
    if (size >= OS_MAP_THRESHOLD)
        return os_map(size, alignment);
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    void *p = NULL;
    int saved = errno;
    int rc = posix_memalign(&p, alignment, size);
    errno = saved;
    if (rc != 0)
        return NULL;
    memset(p, 0, size);
    return p;
}

void mempool__os_free(void *p, size_t size, size_t alignment)
{
    (void)alignment;
    if (!p)
        return;
    if (size == 0)
        size = 1;
    if (size >= OS_MAP_THRESHOLD)
        munmap(p, os_round_up(size, os_page_size()));
    else
        free(p);
}

/* ---- placement ---------------------------------------------------- */

#define OS_HUGE_PAGE ((size_t)2 << 20)

#if defined(__linux__)
/* Node masks for mbind and get_mempolicy: 1024 nodes, and the kernel's
 * maxnode counts one bit more than it reads. */
#define OS_NODE_WORDS 16
#define OS_NODE_BITS (OS_NODE_WORDS * 8 * sizeof(unsigned long))

static bool os_bind(void *p, size_t length, int node)
{
    if (node < 0)
        return true;
    unsigned long mask[OS_NODE_WORDS] = { 0 };
    mask[(size_t)node / (8 * sizeof(unsigned long))] |= 1ul << ((size_t)node % (8 * sizeof(unsigned long)));
    int saved = errno;
    long rc = syscall(SYS_mbind, p, length, MPOL_BIND, mask, OS_NODE_BITS + 1, 0);
    /* A kernel without NUMA has node 0 only, where everything is anyway. */
    bool ok = rc == 0 || (errno == ENOSYS && node == 0);
    errno = saved;
    return ok;
}

bool mempool__os_node_usable(int node)
{
    if (node < 0 || (size_t)node >= OS_NODE_BITS)
        return false;
    unsigned long mask[OS_NODE_WORDS] = { 0 };
    int saved = errno;
    long rc = syscall(SYS_get_mempolicy, NULL, mask, OS_NODE_BITS + 1, NULL, MPOL_F_MEMS_ALLOWED);
    bool nosys = rc != 0 && errno == ENOSYS;
    errno = saved;
    if (rc != 0)
        return nosys && node == 0;
    return mask[(size_t)node / (8 * sizeof(unsigned long))] >> ((size_t)node % (8 * sizeof(unsigned long))) & 1;
}

int mempool__os_node_of(const void *p)
{
    int node = -1;
    int saved = errno;
    long rc = syscall(SYS_get_mempolicy, &node, NULL, 0, p, MPOL_F_NODE | MPOL_F_ADDR);
    errno = saved;
    return rc == 0 ? node : -1;
}

/* hugetlb pages, when the administrator reserved enough of them: the
 * reservation is taken at mmap time, so a shortage fails here, never as a
 * fault later. */
static void *os_map_hugetlb(size_t size, size_t alignment, struct os_region *r)
{
    if (alignment > OS_HUGE_PAGE)
        return NULL;
    size_t length = os_round_up(size, OS_HUGE_PAGE);
    if (length < size)
        return NULL;
    void *p = mmap(NULL, length, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    r->map = p;
    r->length = length;
    return p;
}

/* Transparent huge pages: a mapping aligned to and rounded up to 2 MiB, so
 * that every 2 MiB of it can be one page, with the kernel asked to use them
 * (it may not: THP disabled, or no contiguous memory at fault time). */
static void *os_map_thp(size_t size, size_t alignment, struct os_region *r)
{
    size_t length = os_round_up(size, OS_HUGE_PAGE);
    if (length < size)
        return NULL;
    void *p = os_map(length, alignment > OS_HUGE_PAGE ? alignment : OS_HUGE_PAGE);
    if (!p)
        return NULL;
    int saved = errno;
    (void)madvise(p, length, MADV_HUGEPAGE);
    errno = saved;
    r->map = p;
    r->length = length;
    return p;
}

/* One field of the smaps entry of the mapping that holds p, in bytes; 0
 * when it is not there. */
static bool smaps_fields(const void *p, size_t *kernel_page, size_t *anon_huge)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    if (!f)
        return false;
    char line[256];
    bool inside = false, found = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &start, &dash, &end) == 3 && dash == '-') {
            if (found)
                break;
            inside = (uintptr_t)p >= start && (uintptr_t)p < end;
            found = inside;
            continue;
        }
        unsigned long kb;
        if (inside && sscanf(line, "KernelPageSize: %lu kB", &kb) == 1)
            *kernel_page = (size_t)kb << 10;
        else if (inside && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
            *anon_huge = (size_t)kb << 10;
    }
    fclose(f);
    return found;
}

size_t mempool__os_page_size_at(const void *p, size_t size)
{
    size_t base = os_page_size(), kernel_page = 0, anon_huge = 0;
    int saved = errno;
    bool found = smaps_fields(p, &kernel_page, &anon_huge);
    errno = saved;
    if (!found)
        return base;
    if (kernel_page > base)
        return kernel_page;
    /* Transparent huge pages: only when they cover every whole 2 MiB of the
     * region (the mapping may hold more than the region). */
    uintptr_t first = os_round_up((uintptr_t)p, OS_HUGE_PAGE);
    uintptr_t last = ((uintptr_t)p + size) & ~(uintptr_t)(OS_HUGE_PAGE - 1);
    if (last > first && anon_huge >= last - first)
        return OS_HUGE_PAGE;
    return kernel_page ? kernel_page : base;
}
#else
static bool os_bind(void *p, size_t length, int node)
{
    (void)p;
    (void)length;
    return node <= 0;
}

bool mempool__os_node_usable(int node)
{
    return node == 0;
}

int mempool__os_node_of(const void *p)
{
    (void)p;
    return -1;
}

static void *os_map_hugetlb(size_t size, size_t alignment, struct os_region *r)
{
    (void)size;
    (void)alignment;
    (void)r;
    return NULL;
}

static void *os_map_thp(size_t size, size_t alignment, struct os_region *r)
{
    (void)size;
    (void)alignment;
    (void)r;
    return NULL;
}

size_t mempool__os_page_size_at(const void *p, size_t size)
{
    (void)p;
    (void)size;
    return os_page_size();
}
#endif

void *mempool__os_alloc_placed(size_t size, size_t alignment, const struct os_place *how,
                               struct os_region *r)
{
    r->map = NULL;
    r->length = 0;
    if (!how->huge && how->node < 0)
        return mempool__os_alloc(size, alignment);
    if (os_fault_now())
        return NULL;
    if (size == 0)
        size = 1;
    void *p = how->huge ? os_map_hugetlb(size, alignment, r) : NULL;
    if (!p && how->huge)
        p = os_map_thp(size, alignment, r);
    if (!p) {
        /* Base pages, mapped (not from the heap) so that a binding covers
         * this region alone. */
        size_t length = os_round_up(size, os_page_size());
        p = length >= size ? os_map(length, alignment) : NULL;
        if (!p)
            return NULL;
        r->map = p;
        r->length = length;
    }
    if (!os_bind(r->map, r->length, how->node)) {
        munmap(r->map, r->length);
        r->map = NULL;
        return NULL;
    }
    return p;
}

void mempool__os_free_placed(void *p, size_t size, size_t alignment, const struct os_region *r)
{
    if (r->map)
        munmap(r->map, r->length);
    else
        mempool__os_free(p, size, alignment);
}

static pthread_key_t exit_key;

bool mempool__os_exit_hook(void (*at_exit)(void *context))
{
    /* The key's destructor runs at thread exit with the last value set. */
    return pthread_key_create(&exit_key, at_exit) == 0;
}

void mempool__os_exit_arm(void *context)
{
    pthread_setspecific(exit_key, context);
}

void mempool__os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    pthread_atfork(prepare, parent, child);
}

int mempool__os_cancel_off(void)
{
    int old = PTHREAD_CANCEL_ENABLE;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

void mempool__os_cancel_restore(int old_state)
{
    int ignored;
    pthread_setcancelstate(old_state, &ignored);
}
