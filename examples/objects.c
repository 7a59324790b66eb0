/* SPDX-License-Identifier: MIT */
/* Generator mode: a pool of objects that own other resources.
 *
 * Each block is a `struct session` with its own heap buffer. `make` builds
 * one (the struct and its buffer), `unmake` releases both. With MEMPOOL_LAZY
 * the pool makes a session only when a get finds no free one, so a pool
 * sized for the worst case costs nothing until the load arrives; destroy
 * unmakes exactly the sessions that were made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mempool.h"

struct session {
    unsigned id;        /* stable for the session's life: mempool_index */
    size_t capacity;
    size_t used;
    char *scratch;      /* owned: made and released with the session */
};

struct factory {
    size_t scratch_size;
    unsigned made, unmade;
};

static void *session_make(void *arg)
{
    struct factory *f = arg;
    struct session *s = malloc(sizeof *s);
    char *scratch = malloc(f->scratch_size);
    if (!s || !scratch) {
        free(s);
        free(scratch);
        return NULL; /* the get (or create) fails with ENOMEM */
    }
    *s = (struct session){ .capacity = f->scratch_size, .scratch = scratch };
    f->made++; /* make runs with no pool lock held: this example is single-threaded */
    return s;
}

static void session_unmake(void *block, void *arg)
{
    struct factory *f = arg;
    struct session *s = block;
    free(s->scratch);
    free(s);
    f->unmade++;
}

/* Sessions keep their contents between put and get, so a user resets what
 * the next owner must not see. */
static void session_release(mempool *pool, struct session *s)
{
    s->used = 0;
    mempool_put(pool, s);
}

int main(void)
{
    struct factory factory = { .scratch_size = 4096 };
    mempool_config config = {
        .capacity = 100,
        .make = session_make,
        .unmake = session_unmake,
        .arg = &factory,
        .flags = MEMPOOL_LAZY,
    };
    mempool *pool = mempool_create(&config);
    if (!pool) {
        perror("mempool_create");
        return 1;
    }
    printf("created: capacity %zu, available %zu, sessions made %u\n",
           mempool_capacity(pool), mempool_available(pool), factory.made);

    /* A burst of 10 sessions: each get finds nothing free and makes one. */
    struct session *burst[10];
    for (int i = 0; i < 10; i++) {
        burst[i] = mempool_get(pool);
        if (!burst[i]) {
            perror("mempool_get");
            return 1;
        }
        burst[i]->id = (unsigned)mempool_index(pool, burst[i]);
        burst[i]->used = (size_t)snprintf(burst[i]->scratch, burst[i]->capacity,
                                          "session %u", burst[i]->id);
    }
    printf("after a burst of 10: sessions made %u, available %zu\n", factory.made,
           mempool_available(pool));

    /* Put them back and take 10 again: the free sessions are reused. */
    for (int i = 0; i < 10; i++)
        session_release(pool, burst[i]);
    for (int i = 0; i < 10; i++)
        burst[i] = mempool_get(pool);
    printf("after a second burst: sessions made %u (reused, not made again)\n", factory.made);
    for (int i = 0; i < 10; i++)
        session_release(pool, burst[i]);

    /* Index and block map both ways, even for slots not made yet. */
    void *first = mempool_block(pool, 0);
    printf("block 0 maps back to index %zu; block 50 is %s\n", mempool_index(pool, first),
           mempool_block(pool, 50) || errno != ENOENT ? "made?!" : "not made yet (ENOENT)");

    /* Destroy unmakes every session that was made: each owned buffer too. */
    unsigned made = factory.made;
    mempool_destroy(pool);
    printf("destroyed: made %u, unmade %u\n", made, factory.unmade);
    return made != 10 || factory.unmade != made;
}
