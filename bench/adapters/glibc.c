/* SPDX-License-Identifier: MIT */
/* glibc's malloc/free: the allocator most programs get by default. Only the
 * main driver links it in; the helper processes replace malloc. */
#include <gnu/libc-version.h>

#include "../adapter.h"
#include "malloc.h"

static const struct bench_impl glibc = BENCH_MALLOC_ADAPTER("glibc", gnu_get_libc_version);
BENCH_ADAPTER(glibc)
