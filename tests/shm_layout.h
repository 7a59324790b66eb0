/* SPDX-License-Identifier: MIT */
/* What the shared-pool tests share: a cached pool, and what they read of
 * a segment directly, by src/shm.h's layouts (the header's offsets, the
 * table of processes, the cache slots: 64 bytes each, the owner word
 * first, then the busy word). */
#ifndef MEMPOOL_TEST_SHM_LAYOUT_H
#define MEMPOOL_TEST_SHM_LAYOUT_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

/* An anonymous shared pool of 64-byte blocks with thread caches of
 * cache_size blocks. */
static inline mempool *cached_pool(size_t capacity, unsigned cache_size)
{
    mempool_config c;
    memset(&c, 0, sizeof c);
    c.capacity = capacity;
    c.block_size = 64;
    c.cache_size = cache_size;
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    REQUIRE(pool);
    return pool;
}

/* The calling process's participant id in a mapped segment: its slot in
 * the table of processes (offset at 80, 64 bytes each: the word
 * generation << 32 | LIVE, then the pid) and the generation (PROC_ID). */
static inline uint32_t our_process_id(const unsigned char *seg)
{
    uint64_t procs_offset;
    memcpy(&procs_offset, seg + 80, 8);
    uint32_t id = UINT32_MAX;
    for (uint32_t k = 0; k < 128; k++) {
        uint64_t word = *(const volatile uint64_t *)(seg + procs_offset + (size_t)k * 64);
        int64_t pid = *(const volatile int64_t *)(seg + procs_offset + (size_t)k * 64 + 8);
        if ((uint32_t)word == 1 && pid == (int64_t)getpid())
            id = k | ((uint32_t)(word >> 32) & 0x3FFFFFu) << 7;
    }
    REQUIRE(id != UINT32_MAX);
    return id;
}

/* The busy word of the segment's only taken cache slot. */
static inline uint32_t only_slot_busy(int fd)
{
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    unsigned char *seg = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(seg != MAP_FAILED);
    uint64_t caches_offset;
    memcpy(&caches_offset, seg + 128, 8);
    uint32_t busy = UINT32_MAX;
    int taken = 0;
    for (int k = 0; k < 256; k++)
        if (*(volatile uint32_t *)(seg + caches_offset + (size_t)k * 64)) {
            busy = *(volatile uint32_t *)(seg + caches_offset + (size_t)k * 64 + 4);
            taken++;
        }
    munmap(seg, (size_t)st.st_size);
    CHECK_EQ(taken, 1);
    return busy;
}

/* Whether this build runs every cache on the ordered protocol. */
#if defined(MEMPOOL_FORCE_ORDERED) || UNDER_TSAN
#define BUILD_ORDERED 1
#else
#define BUILD_ORDERED 0
#endif

#endif
