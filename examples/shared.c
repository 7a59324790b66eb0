/* SPDX-License-Identifier: MIT */
/* Two processes, one pool: a producer fills blocks and hands them to a
 * consumer process without copying. The pool is an anonymous segment whose
 * descriptor travels over a unix socket (SCM_RIGHTS); each block travels as
 * a handle (mempool_shm_give / mempool_shm_take) over the same socket.
 *
 * Half way through, the producer kills the consumer with SIGKILL while it
 * holds blocks, recovers what it held, starts a new consumer and goes on:
 * no block is lost. Linux only (elsewhere the create fails with ENOSYS). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mempool.h"

enum { BLOCKS = 64, MESSAGES = 2000, KEEP = 8 };

struct message {
    uint64_t seq;
    char text[56];
};

/* Sends a descriptor over a unix socket. */
static int send_fd(int sock, int fd)
{
    char byte = 0;
    struct iovec iov = { &byte, 1 };
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = u.space, .msg_controllen = sizeof u.space };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
    char byte;
    struct iovec iov = { &byte, 1 };
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = u.space, .msg_controllen = sizeof u.space };
    if (recvmsg(sock, &msg, 0) != 1)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

/* The consumer: attaches through the descriptor it is sent, takes each
 * handle, checks the message and puts the block back, but keeps the last
 * KEEP blocks a while, so that a kill finds it holding some. */
static int consumer(int sock)
{
    int fd = recv_fd(sock);
    mempool *pool = fd >= 0 ? mempool_shm_open_fd(fd) : NULL;
    if (!pool) {
        perror("consumer: mempool_shm_open_fd");
        return 1;
    }
    close(fd);
    struct message *kept[KEEP];
    size_t n = 0;
    uint64_t handle;
    while (read(sock, &handle, sizeof handle) == sizeof handle) {
        if (handle == 0)
            break;
        struct message *m = mempool_shm_take(pool, handle);
        if (!m) {
            perror("consumer: mempool_shm_take");
            return 1;
        }
        if (n == KEEP) {
            mempool_put(pool, kept[0]);
            memmove(kept, kept + 1, (KEEP - 1) * sizeof kept[0]);
            n--;
        }
        kept[n++] = m;
        uint64_t ack = m->seq;
        if (write(sock, &ack, sizeof ack) != sizeof ack)
            return 1;
    }
    for (size_t i = 0; i < n; i++)
        mempool_put(pool, kept[i]);
    mempool_destroy(pool);
    return 0;
}

static pid_t start_consumer(mempool *pool, int *sock)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        exit(consumer(sv[1]));
    }
    close(sv[1]);
    *sock = sv[0];
    if (pid < 0 || send_fd(*sock, mempool_shm_fd(pool)) != 0)
        return -1;
    return pid;
}

int main(void)
{
    mempool_config config = { .capacity = BLOCKS, .block_size = sizeof(struct message) };
    mempool *pool = mempool_shm_create(NULL, &config, 0);
    if (!pool) {
        if (errno == ENOSYS) {
            printf("shared pools are not supported on this system\n");
            return 77;
        }
        perror("mempool_shm_create");
        return 1;
    }
    int sock;
    pid_t pid = start_consumer(pool, &sock);
    if (pid < 0) {
        perror("consumer");
        return 1;
    }
    for (uint64_t seq = 1; seq <= MESSAGES; seq++) {
        if (seq == MESSAGES / 2) {
            /* The consumer dies holding blocks; recovery returns them. */
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(sock);
            size_t before = mempool_available(pool);
            mempool_recovery r;
            mempool_recover(pool, 0, &r);
            printf("consumer killed: recovered %zu blocks from %zu dead process(es), "
                   "%zu in transit; %zu of %zu free (before: %zu)\n",
                   r.blocks, r.processes, r.in_transit, mempool_available(pool),
                   mempool_capacity(pool), before);
            pid = start_consumer(pool, &sock);
            if (pid < 0)
                return 1;
        }
        /* Waits while the consumer holds every block: back-pressure. */
        struct message *m = mempool_get_timeout(pool, 5000000000);
        if (!m) {
            perror("producer: mempool_get");
            return 1;
        }
        m->seq = seq;
        snprintf(m->text, sizeof m->text, "message %llu", (unsigned long long)seq);
        uint64_t handle = mempool_shm_give(pool, m), ack;
        if (write(sock, &handle, sizeof handle) != sizeof handle ||
            read(sock, &ack, sizeof ack) != sizeof ack || ack != seq) {
            fprintf(stderr, "producer: the consumer did not answer\n");
            return 1;
        }
    }
    uint64_t done = 0;
    int status = 1;
    if (write(sock, &done, sizeof done) == sizeof done)
        waitpid(pid, &status, 0);
    size_t free_blocks = mempool_available(pool);
    printf("%d messages passed; %zu of %zu blocks free at the end\n", MESSAGES, free_blocks,
           mempool_capacity(pool));
    mempool_destroy(pool);
    return status == 0 && free_blocks == BLOCKS ? 0 : 1;
}
