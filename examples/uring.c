/* SPDX-License-Identifier: MIT */
/* Zero-copy reads into pooled blocks with io_uring.
 *
 * The pool's arena is registered once with the kernel, one fixed buffer per
 * block, and every read is a READ_FIXED straight into a block taken from
 * the pool: buffer index = mempool_index(pool, block), so the kernel skips
 * the page pinning and lookup it does for ordinary reads. The program writes
 * a file of CHUNKS chunks, each filled with its own number, reads it back
 * through QUEUE reads in flight, checks every byte, and prints what it did.
 *
 *   uring [FILE]    (default: a temporary file, removed at the end)
 *
 * Exit status 0, 1 on a wrong byte or a failed call, 77 when the kernel
 * refuses io_uring (too old, disabled by sysctl or seccomp). */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <mempool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

enum { BLOCK = 4096, BLOCKS = 64, QUEUE = 16, CHUNKS = 1024 };

/* One iovec per block, at the block's index: the fixed buffer's index. */
static int describe(void *block, size_t index, void *arg)
{
    struct iovec *iov = arg;
    iov[index] = (struct iovec){ .iov_base = block, .iov_len = BLOCK };
    return 0;
}

static int write_file(int fd)
{
    static unsigned char chunk[BLOCK];
    for (uint32_t i = 0; i < CHUNKS; i++) {
        memset(chunk, (int)(i & 0xff), sizeof chunk);
        memcpy(chunk, &i, sizeof i); /* the chunk's number, then its low byte */
        if (pwrite(fd, chunk, sizeof chunk, (off_t)i * BLOCK) != (ssize_t)sizeof chunk)
            return -1;
    }
    return fsync(fd);
}

static int check_chunk(const unsigned char *block, uint32_t i)
{
    uint32_t n;
    memcpy(&n, block, sizeof n);
    if (n != i)
        return -1;
    for (size_t k = sizeof n; k < BLOCK; k++)
        if (block[k] != (unsigned char)(i & 0xff))
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    char path[] = "/tmp/mempool-uring-XXXXXX";
    int fd = argc > 1 ? open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600) : mkstemp(path);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    if (argc <= 1)
        unlink(path);
    if (write_file(fd)) {
        perror("write");
        return 1;
    }

    mempool *pool = mempool_create(&(mempool_config){
        .capacity = BLOCKS, .block_size = BLOCK, .alignment = BLOCK });
    if (!pool) {
        perror("mempool_create");
        return 1;
    }
    mempool_arena_info arena;
    mempool_arena(pool, &arena);
    static struct iovec iov[BLOCKS];
    mempool_foreach(pool, describe, iov);

    struct io_uring ring;
    int rc = io_uring_queue_init(QUEUE, &ring, 0);
    if (rc == 0)
        rc = io_uring_register_buffers(&ring, iov, BLOCKS);
    if (rc == -ENOSYS || rc == -EPERM || rc == -EACCES || rc == -ENOMEM) {
        printf("SKIPPED: io_uring unavailable here (%s)\n", strerror(-rc));
        mempool_destroy(pool);
        return 77;
    }
    if (rc < 0) {
        fprintf(stderr, "io_uring: %s\n", strerror(-rc));
        return 1;
    }

    /* Which chunk each block is reading, by block index. */
    static uint32_t chunk_of[BLOCKS];
    uint32_t next = 0, done = 0, in_flight = 0, bad = 0;
    while (done < CHUNKS) {
        /* Keep QUEUE reads in flight, each into a block of its own. */
        while (next < CHUNKS && in_flight < QUEUE) {
            void *block = mempool_try_get(pool);
            if (!block)
                break;
            size_t index = mempool_index(pool, block);
            chunk_of[index] = next;
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_read_fixed(sqe, fd, block, BLOCK, (uint64_t)next * BLOCK, (int)index);
            io_uring_sqe_set_data(sqe, block);
            next++;
            in_flight++;
        }
        io_uring_submit(&ring);
        struct io_uring_cqe *cqe;
        if ((rc = io_uring_wait_cqe(&ring, &cqe)) < 0) {
            fprintf(stderr, "io_uring_wait_cqe: %s\n", strerror(-rc));
            return 1;
        }
        unsigned char *block = io_uring_cqe_get_data(cqe);
        uint32_t chunk = chunk_of[mempool_index(pool, block)];
        if (cqe->res != BLOCK || check_chunk(block, chunk) != 0) {
            fprintf(stderr, "chunk %u: read returned %d, contents %s\n", chunk, cqe->res,
                    cqe->res == BLOCK ? "wrong" : "missing");
            bad++;
        }
        io_uring_cqe_seen(&ring, cqe);
        memset(block, 0, BLOCK); /* a block reused by a failed read cannot pass */
        mempool_put(pool, block);
        in_flight--;
        done++;
    }
    io_uring_unregister_buffers(&ring);
    io_uring_queue_exit(&ring);
    printf("read %u chunks of %d bytes with READ_FIXED into %d registered blocks "
           "(arena %zu bytes at %p, %zu KiB pages), %u reads in flight at most: %s\n",
           (unsigned)CHUNKS, BLOCK, BLOCKS, arena.size, arena.base, arena.page_size >> 10,
           (unsigned)QUEUE, bad ? "WRONG BYTES" : "every byte right");
    mempool_destroy(pool);
    close(fd);
    return bad ? 1 : 0;
}
