/* SPDX-License-Identifier: MIT */
/* The implementations linked into this executable, in table order. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const struct bench_impl *impls[32];
static size_t impl_count;

/* The library's own rows come first, then the others by name, whatever the
 * link order. */
int bench_impl_order(const char *x, const char *y)
{
    int x_ours = strncmp(x, "mempool", 7) == 0;
    int y_ours = strncmp(y, "mempool", 7) == 0;
    if (x_ours != y_ours)
        return y_ours - x_ours;
    return strcmp(x, y);
}

static int impl_order(const void *a, const void *b)
{
    return bench_impl_order((*(const struct bench_impl *const *)a)->name,
                            (*(const struct bench_impl *const *)b)->name);
}

void bench_register(const struct bench_impl *impl)
{
    if (impl_count < sizeof impls / sizeof *impls) {
        impls[impl_count++] = impl;
        qsort(impls, impl_count, sizeof *impls, impl_order);
    }
}

size_t bench_impl_count(void)
{
    return impl_count;
}

const struct bench_impl *bench_impl_at(size_t i)
{
    return impls[i];
}

/* True when `name` is one of the comma-separated items of `list`, or the
 * list is NULL (everything). */
bool bench_listed(const char *list, const char *name)
{
    if (!list)
        return true;
    size_t length = strlen(name);
    for (const char *item = list; *item;) {
        size_t item_length = strcspn(item, ",");
        if (item_length == length && strncmp(item, name, length) == 0)
            return true;
        item += item_length + (item[item_length] == ',');
    }
    return false;
}

size_t bench_stride(size_t block_size)
{
    size_t stride = block_size < sizeof(void *) ? sizeof(void *) : block_size;
    return (stride + 15) & ~(size_t)15;
}
