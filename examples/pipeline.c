/* SPDX-License-Identifier: MIT */
/* A three-stage pipeline whose memory is bounded by one pool.
 *
 * Readers fill buffers taken from the pool, workers checksum them, one
 * writer "writes" them out and puts them back. The pool's capacity is the
 * whole memory budget of the pipeline: when every buffer is in flight, the
 * readers' timed gets sleep, which slows them to the pace of the slowest
 * stage (back-pressure) instead of letting queues grow. It runs for about a
 * second, then prints throughput and the pool's statistics.
 *
 *   pipeline [seconds]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mempool.h"

enum { READERS = 2, WORKERS = 2, BUFFERS = 64, PAYLOAD = 16 * 1024 };

/* One pooled buffer: a queue link, the payload and its checksum. */
struct buffer {
    struct buffer *next;
    uint32_t sequence;
    uint32_t checksum;
    size_t length;
    unsigned char data[PAYLOAD];
};

/* A blocking FIFO of buffers between two stages. It needs no capacity of its
 * own: it can never hold more than the pool's BUFFERS. */
struct queue {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct buffer *head, *tail;
    int producers; /* stages still feeding it; 0 and empty means done */
};

struct pipeline {
    mempool *pool;
    struct queue to_workers, to_writer;
    double deadline;
    uint64_t stalls[READERS];    /* timed gets that expired: back-pressure */
    uint64_t bytes_written;
    atomic_uint bad_checksums;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void queue_init(struct queue *q, int producers)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->ready, NULL);
    q->head = q->tail = NULL;
    q->producers = producers;
}

static void queue_push(struct queue *q, struct buffer *b)
{
    b->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = b;
    else
        q->head = b;
    q->tail = b;
    pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

/* A producer is done; the last one wakes every consumer. */
static void queue_finish(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    if (--q->producers == 0)
        pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

/* The next buffer, or NULL once every producer is done and q is empty. */
static struct buffer *queue_pop(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    while (!q->head && q->producers > 0)
        pthread_cond_wait(&q->ready, &q->lock);
    struct buffer *b = q->head;
    if (b) {
        q->head = b->next;
        if (!q->head)
            q->tail = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    return b;
}

static uint32_t checksum(const unsigned char *data, size_t length)
{
    uint32_t sum = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < length; i++)
        sum = (sum ^ data[i]) * 16777619u;
    return sum;
}

struct reader_arg {
    struct pipeline *p;
    int id;
};

/* Fills buffers with generated "input" until the deadline. */
static void *reader(void *arg)
{
    struct reader_arg *r = arg;
    struct pipeline *p = r->p;
    uint32_t sequence = 0;
    while (now() < p->deadline) {
        /* Wait at most 5 ms: a full pipeline slows the reader down, and the
         * reader still notices the deadline. */
        struct buffer *b = mempool_get_timeout(p->pool, 5 * 1000 * 1000);
        if (!b) {
            if (errno != ETIMEDOUT) {
                perror("mempool_get_timeout");
                break;
            }
            p->stalls[r->id]++;
            continue;
        }
        b->sequence = sequence++;
        b->length = PAYLOAD - (b->sequence % 1024);
        for (size_t i = 0; i < b->length; i++)
            b->data[i] = (unsigned char)(i * 31 + b->sequence + (unsigned)r->id);
        b->checksum = checksum(b->data, b->length);
        queue_push(&p->to_workers, b);
    }
    queue_finish(&p->to_workers);
    return NULL;
}

/* Verifies each buffer and transforms it in place. */
static void *worker(void *arg)
{
    struct pipeline *p = arg;
    struct buffer *b;
    while ((b = queue_pop(&p->to_workers))) {
        if (checksum(b->data, b->length) != b->checksum)
            atomic_fetch_add(&p->bad_checksums, 1);
        for (size_t i = 0; i < b->length; i++)
            b->data[i] ^= 0x5a;
        queue_push(&p->to_writer, b);
    }
    queue_finish(&p->to_writer);
    return NULL;
}

/* The sink: accounts for each buffer and gives it back to the pool. */
static void *writer(void *arg)
{
    struct pipeline *p = arg;
    struct buffer *b;
    while ((b = queue_pop(&p->to_writer))) {
        p->bytes_written += b->length;
        if (mempool_put(p->pool, b) != 0) {
            fprintf(stderr, "writer: put refused\n");
            exit(1);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    mempool_config config = { .capacity = BUFFERS, .block_size = sizeof(struct buffer) };
    struct pipeline p = { .pool = mempool_create(&config) };
    if (!p.pool) {
        perror("mempool_create");
        return 1;
    }
    queue_init(&p.to_workers, READERS);
    queue_init(&p.to_writer, WORKERS);

    pthread_t readers[READERS], workers[WORKERS], sink;
    struct reader_arg args[READERS];
    double start = now();
    p.deadline = start + seconds;
    pthread_create(&sink, NULL, writer, &p);
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&workers[i], NULL, worker, &p);
    for (int i = 0; i < READERS; i++) {
        args[i] = (struct reader_arg){ &p, i };
        pthread_create(&readers[i], NULL, reader, &args[i]);
    }
    for (int i = 0; i < READERS; i++)
        pthread_join(readers[i], NULL);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(workers[i], NULL);
    pthread_join(sink, NULL);
    double elapsed = now() - start;

    uint64_t stalls = 0;
    for (int i = 0; i < READERS; i++)
        stalls += p.stalls[i];
    printf("pipeline: %d readers, %d workers, 1 writer; %d buffers of %zu bytes (%zu KiB in all)\n",
           READERS, WORKERS, BUFFERS, sizeof(struct buffer),
           BUFFERS * sizeof(struct buffer) / 1024);
    printf("moved %.1f MiB in %.2f s: %.1f MiB/s; %llu timed gets expired (back-pressure)\n",
           (double)p.bytes_written / (1024 * 1024), elapsed,
           (double)p.bytes_written / (1024 * 1024) / elapsed, (unsigned long long)stalls);
    mempool_stats_print(p.pool, stdout);

    /* Every buffer must be back: the pool would say so if one were lost. */
    mempool_close(p.pool);
    int lost = mempool_drain(p.pool, 0) != 0;
    if (lost || p.bad_checksums)
        fprintf(stderr, "pipeline: %s\n", lost ? "buffers lost" : "corrupted buffers");
    mempool_destroy(p.pool);
    return lost || p.bad_checksums || p.bytes_written == 0;
}
