/* SPDX-License-Identifier: MIT */
/* The depot's memory: its two arrays and the magazines it frees (the
 * exchanges are inline in depot.h; all of it runs under the pool lock). */
#include <string.h>

#include "depot.h"

_Atomic uint32_t *mempool__magazine_alloc(uint32_t size)
{
    return mempool__os_alloc(magazine_bytes(size), CACHE_LINE);
}

void mempool__magazine_free(_Atomic uint32_t *m, uint32_t size)
{
    mempool__os_free(m, magazine_bytes(size), CACHE_LINE);
}

void mempool__depot_give_empty(struct depot *d, _Atomic uint32_t *m)
{
    if (d->excess) {
        d->excess--;
        d->magazines--;
        mempool__magazine_free(m, d->size);
        return;
    }
    DEBUG_ASSERT(d->full_count + d->empty_count < d->slots);
    d->empty[d->empty_count++] = m;
}

/* A copy of `count` entries of an array of `slots` in one of `grown`. */
static _Atomic uint32_t **array_copy(_Atomic uint32_t **old, uint32_t count, uint32_t grown)
{
    _Atomic uint32_t **a = mempool__os_alloc(grown * sizeof *a, sizeof *a);
    if (a && count)
        memcpy(a, old, count * sizeof *a);
    return a;
}

bool mempool__depot_reserve(struct depot *d, uint32_t more)
{
    uint32_t need = d->magazines + more;
    if (need > d->slots) {
        uint32_t grown = d->slots ? 2 * d->slots : 16;
        while (grown < need)
            grown *= 2;
        _Atomic uint32_t **full = array_copy(d->full, d->full_count, grown);
        _Atomic uint32_t **empty = array_copy(d->empty, d->empty_count, grown);
        if (!full || !empty) {
            mempool__os_free(full, grown * sizeof *full, sizeof *full);
            mempool__os_free(empty, grown * sizeof *empty, sizeof *empty);
            return false;
        }
        mempool__os_free(d->full, d->slots * sizeof *d->full, sizeof *d->full);
        mempool__os_free(d->empty, d->slots * sizeof *d->empty, sizeof *d->empty);
        d->full = full;
        d->empty = empty;
        d->slots = grown;
    }
    d->magazines += more;
    return true;
}

void mempool__depot_shrink(struct depot *d)
{
    _Atomic uint32_t *m = depot_take_empty(d);
    if (!m) {
        d->excess++;
        return;
    }
    d->magazines--;
    mempool__magazine_free(m, d->size);
}

void mempool__depot_free(struct depot *d)
{
    for (uint32_t i = 0; i < d->full_count; i++)
        mempool__magazine_free(d->full[i], d->size);
    for (uint32_t i = 0; i < d->empty_count; i++)
        mempool__magazine_free(d->empty[i], d->size);
    mempool__os_free(d->full, d->slots * sizeof *d->full, sizeof *d->full);
    mempool__os_free(d->empty, d->slots * sizeof *d->empty, sizeof *d->empty);
    memset(d, 0, sizeof *d);
}
