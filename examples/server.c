/* SPDX-License-Identifier: MIT */
/* An epoll TCP echo server on 127.0.0.1 whose connections live in a pool.
 *
 * Each accepted connection takes one block (its state and its buffer), and
 * gives it back when it closes: the pool's capacity is the most connections
 * served at once, and their memory is allocated once, up front. When every
 * block is out, the server stops accepting until a connection closes; new
 * clients wait in the listen backlog meanwhile (back-pressure).
 *
 *   server [port]   serve until SIGINT or SIGTERM (port 7000 by default)
 *   server --test   serve on a free port while concurrent clients check that
 *                   every byte echoes back and no block is lost
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mempool.h"

enum { CONNECTIONS = 8, BUFFER = 16 * 1024 };

/* One pooled block: a connection and the bytes it has yet to echo. */
struct connection {
    int fd;
    size_t length, sent;
    unsigned char data[BUFFER];
};

struct server {
    mempool *pool;
    int epoll, listener, stop;
    int accepting;
    struct connection *open[CONNECTIONS]; /* by mempool_index: what to close at stop */
    unsigned long long accepted;
};

/* Stands for the listener and the stop descriptor in epoll's data. */
static char listener_tag, stop_tag;

static int watch(struct server *s, int op, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev = { .events = events, .data.ptr = ptr };
    return epoll_ctl(s->epoll, op, fd, &ev);
}

static void connection_close(struct server *s, struct connection *c)
{
    epoll_ctl(s->epoll, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    s->open[mempool_index(s->pool, c)] = NULL;
    mempool_put(s->pool, c);
    if (!s->accepting) { /* a block is free again: accept the next client */
        watch(s, EPOLL_CTL_MOD, s->listener, EPOLLIN, &listener_tag);
        s->accepting = 1;
    }
}

/* Accepts while there are blocks; with none left, stops watching the
 * listener until a connection closes. */
static void accept_clients(struct server *s)
{
    for (;;) {
        struct connection *c = mempool_try_get(s->pool);
        if (!c) {
            watch(s, EPOLL_CTL_MOD, s->listener, 0, &listener_tag);
            s->accepting = 0;
            return;
        }
        int fd = accept4(s->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            mempool_put(s->pool, c);
            return;
        }
        *c = (struct connection){ .fd = fd };
        s->open[mempool_index(s->pool, c)] = c;
        s->accepted++;
        watch(s, EPOLL_CTL_ADD, fd, EPOLLIN, c);
    }
}

/* Sends what is pending; reads more only when everything was echoed. */
static void connection_ready(struct server *s, struct connection *c)
{
    if (c->sent == c->length) {
        ssize_t n = read(c->fd, c->data, sizeof c->data);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            connection_close(s, c);
            return;
        }
        if (n < 0)
            return;
        c->length = (size_t)n;
        c->sent = 0;
    }
    ssize_t n = send(c->fd, c->data + c->sent, c->length - c->sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) {
        connection_close(s, c);
        return;
    }
    if (n > 0)
        c->sent += (size_t)n;
    watch(s, EPOLL_CTL_MOD, c->fd, c->sent < c->length ? EPOLLOUT : EPOLLIN, c);
}

/* Runs until the stop descriptor becomes readable; then closes every
 * connection, so all blocks are back. */
static void *serve(void *arg)
{
    struct server *s = arg;
    struct epoll_event events[64];
    for (int running = 1; running;) {
        int n = epoll_wait(s->epoll, events, 64, -1);
        for (int i = 0; i < n; i++) {
            void *ptr = events[i].data.ptr;
            if (ptr == &stop_tag)
                running = 0;
            else if (ptr == &listener_tag)
                accept_clients(s);
            else
                connection_ready(s, ptr);
        }
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            break;
        }
    }
    for (int i = 0; i < CONNECTIONS; i++)
        if (s->open[i])
            connection_close(s, s->open[i]);
    return NULL;
}

static int server_open(struct server *s, uint16_t port, int stop)
{
    mempool_config config = { .capacity = CONNECTIONS, .block_size = sizeof(struct connection) };
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1;
    *s = (struct server){ .pool = mempool_create(&config), .stop = stop, .accepting = 1 };
    s->epoll = epoll_create1(EPOLL_CLOEXEC);
    s->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!s->pool || s->epoll < 0 || s->listener < 0 ||
        setsockopt(s->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(s->listener, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(s->listener, 128) < 0 || watch(s, EPOLL_CTL_ADD, s->listener, EPOLLIN, &listener_tag) < 0 ||
        watch(s, EPOLL_CTL_ADD, stop, EPOLLIN, &stop_tag) < 0) {
        perror("server");
        return -1;
    }
    return 0;
}

/* 0 when every block is back and the pool says so; prints the statistics. */
static int server_close(struct server *s)
{
    int all_back = mempool_drain(s->pool, 0) == 0 &&
                   mempool_available(s->pool) == mempool_capacity(s->pool);
    printf("server: %llu connections served, every block back: %s\n", s->accepted,
           all_back ? "yes" : "NO");
    mempool_stats_print(s->pool, stdout);
    close(s->listener);
    close(s->epoll);
    mempool_destroy(s->pool);
    return all_back ? 0 : -1;
}

/* The self-test's clients: each opens connections one after another and
 * checks that every message of random bytes and length comes back. */
enum { CLIENTS = 16, CONNECTIONS_PER_CLIENT = 6, MESSAGES = 20, MESSAGE_MAX = 8192 };

struct client {
    pthread_t thread;
    uint16_t port;
    unsigned seed;
    unsigned long long bytes;
    int failed;
};

static int transfer(int fd, unsigned char *buffer, size_t length, int sending)
{
    for (size_t done = 0; done < length;) {
        ssize_t n = sending ? send(fd, buffer + done, length - done, MSG_NOSIGNAL)
                            : recv(fd, buffer + done, length - done, 0);
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static int client_session(struct client *c)
{
    static const struct timeval limit = { .tv_sec = 10 };
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(c->port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    unsigned char out[MESSAGE_MAX], in[MESSAGE_MAX];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) < 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("client");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = 0;
    for (int m = 0; m < MESSAGES && rc == 0; m++) {
        size_t length = 1 + (size_t)rand_r(&c->seed) % MESSAGE_MAX;
        for (size_t i = 0; i < length; i++)
            out[i] = (unsigned char)rand_r(&c->seed);
        rc = transfer(fd, out, length, 1) || transfer(fd, in, length, 0) ||
             memcmp(out, in, length) != 0 ? -1 : 0;
        c->bytes += length;
    }
    close(fd);
    return rc;
}

static void *client_run(void *arg)
{
    struct client *c = arg;
    for (int i = 0; i < CONNECTIONS_PER_CLIENT && !c->failed; i++)
        c->failed = client_session(c) != 0;
    return NULL;
}

static int self_test(void)
{
    struct server s;
    pthread_t server_thread;
    struct sockaddr_in addr;
    socklen_t length = sizeof addr;
    int stop = eventfd(0, EFD_CLOEXEC);
    alarm(50); /* a hang fails the test instead of blocking it forever */
    if (stop < 0 || server_open(&s, 0, stop) < 0 ||
        getsockname(s.listener, (struct sockaddr *)&addr, &length) < 0)
        return 1;
    pthread_create(&server_thread, NULL, serve, &s);

    struct client clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (struct client){ .port = ntohs(addr.sin_port), .seed = 1000u + (unsigned)i };
        pthread_create(&clients[i].thread, NULL, client_run, &clients[i]);
    }
    unsigned long long bytes = 0;
    int failed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(clients[i].thread, NULL);
        bytes += clients[i].bytes;
        failed += clients[i].failed;
    }
    uint64_t one = 1;
    if (write(stop, &one, sizeof one) != sizeof one)
        return 1;
    pthread_join(server_thread, NULL);
    close(stop);

    printf("self-test: %d clients x %d connections x %d messages, %llu bytes echoed, "
           "%d clients failed\n", CLIENTS, CONNECTIONS_PER_CLIENT, MESSAGES, bytes, failed);
    int expected = s.accepted == (unsigned long long)CLIENTS * CONNECTIONS_PER_CLIENT;
    return server_close(&s) != 0 || failed || !expected;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--test") == 0)
        return self_test();

    /* SIGINT and SIGTERM arrive through a signalfd: the stop descriptor. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    int stop = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    struct server s;
    uint16_t port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 7000);
    if (stop < 0 || server_open(&s, port, stop) < 0)
        return 1;
    printf("echo server on 127.0.0.1:%u, %d connections at once; Ctrl-C stops it\n", port,
           CONNECTIONS);
    fflush(stdout);
    serve(&s);
    close(stop);
    return server_close(&s) != 0;
}
