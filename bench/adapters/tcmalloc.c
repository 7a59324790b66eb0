/* SPDX-License-Identifier: MIT */
/* tcmalloc (gperftools), linked into its own helper process where it
 * replaces malloc. */
#include <gperftools/tcmalloc.h>

#include "../adapter.h"
#include "malloc.h"

static const char *version(void)
{
    return tc_version(NULL, NULL, NULL);
}

static const struct bench_impl tcmalloc_impl = BENCH_MALLOC_ADAPTER("tcmalloc", version);
BENCH_ADAPTER(tcmalloc_impl)
