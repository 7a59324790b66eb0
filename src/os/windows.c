/* SPDX-License-Identifier: MIT */
/* Windows: the whole OS seam on the system's own libraries (kernel32 and
 * the synchronization API set), no pthreads.
 *
 * - Waiting: WaitOnAddress / WakeByAddressSingle / WakeByAddressAll, the
 *   futex counterpart: a thread sleeps while a 32-bit word holds an expected
 *   value; a waker changes the word first. Wakes hash the address and never
 *   touch the word's memory, so a waiter may return and free it meanwhile.
 *   WaitOnAddress takes a relative timeout in milliseconds: each wait asks
 *   for the time left on the monotonic clock, rounded up, and the caller's
 *   deadline stays the judge, so a timeout is never early.
 * - The clock: QueryPerformanceCounter, monotonic.
 * - The heavy barrier: FlushProcessWriteBuffers, which makes every processor
 *   running a thread of the process execute a full barrier (the same
 *   asymmetric fence as Linux's membarrier PRIVATE_EXPEDITED).
 * - Memory: VirtualAlloc for large regions (committed, zero-filled), the C
 *   heap below; huge pages need SeLockMemoryPrivilege, which processes
 *   rarely hold, so MEMPOOL_HUGEPAGES takes them only when the system grants
 *   them and uses normal pages otherwise; NUMA placement through
 *   VirtualAllocExNuma.
 * - Thread exit: a fiber-local storage slot whose callback runs when a
 *   thread that set it exits (also for fibers, and for threads that the C
 *   runtime did not create).
 * - No fork and no cancellation: those calls do nothing. */
#define WIN32_LEAN_AND_MEAN
#define PSAPI_VERSION 2
#include <windows.h>
#include <psapi.h>

#include <errno.h>
#include <malloc.h>
#include <string.h>

#include "../os.h"

/* Below this, memory comes from the C heap; above, from VirtualAlloc. */
#define OS_MAP_THRESHOLD ((size_t)64 << 10)

int64_t mempool__os_now(void)
{
    static LARGE_INTEGER frequency;
    LARGE_INTEGER now;
    if (!frequency.QuadPart)
        QueryPerformanceFrequency(&frequency);
    QueryPerformanceCounter(&now);
    int64_t f = frequency.QuadPart;
    return (now.QuadPart / f) * 1000000000 + (now.QuadPart % f) * 1000000000 / f;
}

int mempool__os_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline)
{
    DWORD ms = INFINITE;
    if (deadline != OS_FOREVER) {
        int64_t left = deadline - mempool__os_now();
        if (left <= 0)
            return ETIMEDOUT;
        int64_t up = (left + 999999) / 1000000;
        ms = up >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)up;
    }
    int saved = errno;
    DWORD last = GetLastError();
    uint32_t compare = expected;
    BOOL woken = WaitOnAddress((volatile VOID *)word, &compare, sizeof compare, ms);
    SetLastError(last);
    errno = saved;
    /* Never early: a timeout counts only once the deadline has passed. */
    if (!woken && deadline != OS_FOREVER && mempool__os_now() >= deadline)
        return ETIMEDOUT;
    return 0;
}

void mempool__os_wake(_Atomic uint32_t *word, int count)
{
    if (count == 1)
        WakeByAddressSingle((PVOID)word);
    else
        WakeByAddressAll((PVOID)word);
}

/* Cleared for good by a barrier that failed (only fault injection makes
 * one fail here), so that later pools start ordered, as the seam says. */
static _Atomic bool barrier_granted = true;

bool mempool__os_heavy_barrier_init(void)
{
    return atomic_load(&barrier_granted);
}

/* The fault-injection counters of test builds (os.h). */
OS_FAULT_VARIABLES

bool mempool__os_heavy_barrier(void)
{
    if (os_barrier_fault()) {
        atomic_store(&barrier_granted, false);
        return false;
    }
    FlushProcessWriteBuffers();
    return true;
}

void mempool__os_fork_child(void)
{
}

void mempool__os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    (void)prepare;
    (void)parent;
    (void)child;
}

int mempool__os_cancel_off(void)
{
    return 0;
}

void mempool__os_cancel_restore(int old_state)
{
    (void)old_state;
}

static DWORD exit_slot = FLS_OUT_OF_INDEXES;
static void (*exit_fn)(void *context);

static VOID WINAPI exit_callback(PVOID context)
{
    if (context)
        exit_fn(context);
}

bool mempool__os_exit_hook(void (*at_exit)(void *context))
{
    exit_fn = at_exit;
    exit_slot = FlsAlloc(exit_callback);
    return exit_slot != FLS_OUT_OF_INDEXES;
}

void mempool__os_exit_arm(void *context)
{
    /* The callback runs at thread exit with the last value set. */
    FlsSetValue(exit_slot, context);
}

static size_t os_round_up(size_t n, size_t to)
{
    return (n + to - 1) & ~(to - 1);
}

/* VirtualAlloc returns 64 KiB-aligned regions; a larger alignment is
 * reserved with slack and the aligned part committed. */
static void *os_map(size_t size, size_t alignment, int node, bool huge, void **region)
{
    SIZE_T large = huge ? GetLargePageMinimum() : 0;
    DWORD type = MEM_RESERVE | MEM_COMMIT;
    size_t length = os_round_up(size, 4096);
    if (large && alignment <= large) {
        size_t big = os_round_up(size, large);
        void *p = node >= 0
            ? VirtualAllocExNuma(GetCurrentProcess(), NULL, big, type | MEM_LARGE_PAGES,
                                 PAGE_READWRITE, (DWORD)node)
            : VirtualAlloc(NULL, big, type | MEM_LARGE_PAGES, PAGE_READWRITE);
        if (p) {
            *region = p;
            return p;
        }
    }
    size_t extra = alignment > 65536 ? alignment : 0;
    char *raw = VirtualAlloc(NULL, length + extra, MEM_RESERVE, PAGE_READWRITE);
    if (!raw)
        return NULL;
    char *aligned = extra ? (char *)os_round_up((uintptr_t)raw, alignment) : raw;
    void *p = node >= 0
        ? VirtualAllocExNuma(GetCurrentProcess(), aligned, length, MEM_COMMIT, PAGE_READWRITE,
                             (DWORD)node)
        : VirtualAlloc(aligned, length, MEM_COMMIT, PAGE_READWRITE);
    if (!p) {
        VirtualFree(raw, 0, MEM_RELEASE);
        return NULL;
    }
    *region = raw;
    return aligned;
}

void *mempool__os_alloc(size_t size, size_t alignment)
{
    if (os_fault_now())
        return NULL;
    if (size == 0)
        size = 1;
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    void *p = _aligned_malloc(size, alignment);
    if (p)
        memset(p, 0, size);
    return p;
}

void mempool__os_free(void *p, size_t size, size_t alignment)
{
    (void)size;
    (void)alignment;
    _aligned_free(p);
}

void *mempool__os_alloc_placed(size_t size, size_t alignment, const struct os_place *how,
                               struct os_region *r)
{
    r->map = NULL;
    r->length = 0;
    if (size < OS_MAP_THRESHOLD && !how->huge && how->node < 0)
        return mempool__os_alloc(size, alignment);
    if (os_fault_now())
        return NULL;
    void *region = NULL;
    void *p = os_map(size ? size : 1, alignment, how->node, how->huge, &region);
    if (!p)
        return NULL;
    r->map = region;
    r->length = size;
    return p;
}

void mempool__os_free_placed(void *p, size_t size, size_t alignment, const struct os_region *r)
{
    if (r->map)
        VirtualFree(r->map, 0, MEM_RELEASE);
    else
        mempool__os_free(p, size, alignment);
}

bool mempool__os_node_usable(int node)
{
    ULONG highest = 0;
    if (node < 0 || !GetNumaHighestNodeNumber(&highest))
        return node == 0;
    return (ULONG)node <= highest;
}

/* What the working set says of the page at p: resident, its node, and
 * whether it is a large page. False when the page is not resident. */
static bool page_attributes(const void *p, PSAPI_WORKING_SET_EX_BLOCK *out)
{
    PSAPI_WORKING_SET_EX_INFORMATION info;
    memset(&info, 0, sizeof info);
    info.VirtualAddress = (PVOID)p;
    if (!K32QueryWorkingSetEx(GetCurrentProcess(), &info, sizeof info) ||
        !info.VirtualAttributes.Valid)
        return false;
    *out = info.VirtualAttributes;
    return true;
}

int mempool__os_node_of(const void *p)
{
    PSAPI_WORKING_SET_EX_BLOCK a;
    return page_attributes(p, &a) ? (int)a.Node : -1;
}

size_t mempool__os_page_size_at(const void *p, size_t size)
{
    (void)size;
    PSAPI_WORKING_SET_EX_BLOCK a;
    if (page_attributes(p, &a) && a.LargePage && GetLargePageMinimum())
        return GetLargePageMinimum();
    SYSTEM_INFO system;
    GetSystemInfo(&system);
    return system.dwPageSize;
}
