/* SPDX-License-Identifier: MIT */
/* mimalloc, linked into its own helper process where it replaces malloc. */
#include <mimalloc.h>
#include <stdio.h>

#include "../adapter.h"
#include "malloc.h"

static const char *version(void)
{
    static char text[32];
    int v = mi_version(); /* major * 100 + minor * 10 + patch */
    snprintf(text, sizeof text, "%d.%d.%d", v / 100, v / 10 % 10, v % 10);
    return text;
}

static const struct bench_impl mimalloc_impl = BENCH_MALLOC_ADAPTER("mimalloc", version);
BENCH_ADAPTER(mimalloc_impl)
