/* SPDX-License-Identifier: MIT */
/* jemalloc, linked into its own helper process where it replaces malloc. */
#include <jemalloc/jemalloc.h>

#include "../adapter.h"
#include "malloc.h"

static const char *version(void)
{
    const char *text = "unknown";
    size_t size = sizeof text;
    mallctl("version", &text, &size, NULL, 0);
    return text;
}

static const struct bench_impl jemalloc_impl = BENCH_MALLOC_ADAPTER("jemalloc", version);
BENCH_ADAPTER(jemalloc_impl)
