/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for attaching to a segment that a hostile or broken
 * peer wrote: each input patches the image of a real shared pool's segment
 * (a small pool with blocks out, one in transit, blocks parked in a thread
 * cache slot and a dead participant),
 * which is then written to a sealed memfd and opened. Opening must refuse
 * it (EPROTO) or attach; an attached pool then serves a few gets, puts and
 * a recovery, and every call must return, with no access outside the
 * mapping (AddressSanitizer) and no undefined behaviour (UBSan).
 *
 * Input: the first byte picks how the rest patches the image: even, laid
 * over the image from offset 0 (the header and the state); odd, a list of
 * 5-byte patches, a 32-bit offset (taken modulo the image's size) and a
 * byte to XOR there (anywhere: participants, waiters, block words, links).
 *
 * Build: MEMPOOL_BUILD_FUZZ=ON with clang; run: `tests/run fuzz`. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mempool.h"

static unsigned char *image;
static size_t image_size;

/* A segment with history: blocks out, one in transit, a peer with blocks
 * parked in its thread's cache slot (so that slots, magazines and cached
 * block words are in the image too). */
static void make_image(void)
{
    mempool_config c = { .capacity = 64, .block_size = 48, .cache_size = 8 };
    mempool *pool = mempool_shm_create(NULL, &c, 0);
    if (!pool)
        abort();
    mempool *peer = mempool_shm_open_fd(mempool_shm_fd(pool));
    void *b[5], *p[3];
    if (!peer || mempool_get_bulk(pool, b, 5, 0) != 0)
        abort();
    mempool_shm_give(pool, b[0]);
    mempool_put(pool, b[1]);
    for (int i = 0; i < 3; i++)
        if ((p[i] = mempool_get(peer)) == NULL)
            abort();
    mempool_put(peer, p[0]);
    mempool_put(peer, p[1]);
    struct stat st;
    if (fstat(mempool_shm_fd(pool), &st) != 0)
        abort();
    image_size = (size_t)st.st_size;
    image = malloc(image_size);
    if (!image || pread(mempool_shm_fd(pool), image, image_size, 0) != (ssize_t)image_size)
        abort();
    mempool_destroy(peer);
    mempool_destroy(pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!image)
        make_image();
    if (size == 0)
        return 0;
    unsigned char *copy = malloc(image_size);
    if (!copy)
        return 0;
    memcpy(copy, image, image_size);
    if (data[0] % 2 == 0) {
        size_t n = size - 1 < image_size ? size - 1 : image_size;
        memcpy(copy, data + 1, n);
    } else {
        for (size_t i = 1; i + 5 <= size; i += 5) {
            uint32_t at;
            memcpy(&at, data + i, 4);
            copy[at % image_size] ^= data[i + 4];
        }
    }
    int fd = memfd_create("fuzz", MFD_ALLOW_SEALING | MFD_CLOEXEC);
    if (fd < 0 || pwrite(fd, copy, image_size, 0) != (ssize_t)image_size) {
        free(copy);
        if (fd >= 0)
            close(fd);
        return 0;
    }
    free(copy);
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    mempool *pool = mempool_shm_open_fd(fd);
    if (!pool) {
        if (errno != EPROTO && errno != ENOMEM && errno != EUSERS)
            abort();
    } else {
        void *b[3] = { NULL, NULL, NULL };
        for (int i = 0; i < 3; i++)
            b[i] = mempool_try_get(pool);
        for (int i = 0; i < 3; i++)
            if (b[i])
                mempool_put(pool, b[i]);
        void *bulk[4];
        if (mempool_get_bulk(pool, bulk, 4, 0) == 0)
            mempool_put_bulk(pool, bulk, 4);
        mempool_recovery r;
        mempool_recover(pool, MEMPOOL_RECOVER_TRANSIT, &r);
        mempool_stats st;
        mempool_stats_read(pool, &st);
        (void)mempool_available(pool);
        mempool_destroy(pool);
    }
    close(fd);
    return 0;
}
