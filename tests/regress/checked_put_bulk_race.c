/* SPDX-License-Identifier: MIT */
/* Guards: in checked mode a refused put_bulk claimed its elements one by one
 * and rolled the claims back when a later element was refused; a put of one
 * of those blocks racing with it was refused as "repeated" meanwhile, so
 * both calls failed although the docs promise that of racing puts exactly
 * one wins. Here the owner of a block puts it back over and over while
 * another thread keeps calling put_bulk with that block and a foreign
 * pointer: the bulk call must always be refused, the owner's put never. */
#include <stdatomic.h>

#include "check.h"

static atomic_int stop;
static atomic_long misuse_reports;

static void on_misuse(const char *what, const void *block, void *arg)
{
    (void)what;
    (void)block;
    (void)arg;
    atomic_fetch_add(&misuse_reports, 1);
}

struct target {
    mempool *pool;
    void *_Atomic block; /* the block the owner cycles through */
    long bulk_accepted;
};

static void *bulk_main(void *arg)
{
    struct target *t = arg;
    static char foreign[64];
    while (!atomic_load(&stop)) {
        void *pair[2] = { atomic_load(&t->block), foreign };
        if (mempool_put_bulk(t->pool, pair, 2) == 0)
            t->bulk_accepted++;
    }
    return NULL;
}

int main(void)
{
    mempool_config cfg = { .capacity = 4, .block_size = 64, .flags = MEMPOOL_CHECKED,
                           .on_misuse = on_misuse };
    mempool *pool = mempool_create(&cfg);
    REQUIRE(pool != NULL);
    struct target t = { .pool = pool };
    void *b = mempool_get(pool);
    REQUIRE(b != NULL);
    atomic_store(&t.block, b);
    pthread_t th = check_thread(bulk_main, &t);
    long rounds = (long)(200000 * check_scale()) + 1000, refused = 0;
    for (long i = 0; i < rounds; i++) {
        if (mempool_put(pool, b) != 0) {
            refused++;
            continue; /* still ours: the put was refused */
        }
        b = mempool_get(pool);
        REQUIRE(b != NULL);
        atomic_store(&t.block, b);
    }
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    printf("%ld puts, %ld refused; bulk calls accepted: %ld; misuse reports: %ld\n", rounds,
           refused, t.bulk_accepted, atomic_load(&misuse_reports));
    CHECK_EQ(refused, 0);
    CHECK_EQ(t.bulk_accepted, 0);
    CHECK_EQ(mempool_put(pool, b), 0);
    CHECK_EQ(mempool_available(pool), 4);
    mempool_destroy(pool);
    CHECK_DONE();
}
