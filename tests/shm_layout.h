/* SPDX-License-Identifier: MIT */
/* What the shared-pool tests read of a segment directly, by src/shm.h's
 * layouts: the header's offsets, and the cache slots (64 bytes each, the
 * owner word first, then the busy word). */
#ifndef MEMPOOL_TEST_SHM_LAYOUT_H
#define MEMPOOL_TEST_SHM_LAYOUT_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "check.h"

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
