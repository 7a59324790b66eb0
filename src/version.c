/* SPDX-License-Identifier: MIT */
/* The library's version, compiled in from the header it was built with. */
#include "mempool.h"

const char *mempool_version(void)
{
    return MEMPOOL_VERSION;
}
