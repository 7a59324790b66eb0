/* SPDX-License-Identifier: MIT */
/* Systems without shared segments yet (see os.h): nothing is supported, and
 * the pool layer fails every shared call with ENOSYS before it reaches the
 * rest of this file. */
#include <errno.h>

#include "os.h"

bool mempool__os_shm_supported(void)
{
    return false;
}

int mempool__os_shm_create(const char *name, size_t size, int *fd)
{
    (void)name, (void)size, (void)fd;
    return ENOSYS;
}

int mempool__os_shm_publish(int fd, unsigned mode)
{
    (void)fd, (void)mode;
    return ENOSYS;
}

int mempool__os_shm_open(const char *name, int *fd)
{
    (void)name, (void)fd;
    return ENOSYS;
}

int mempool__os_shm_unlink(const char *name)
{
    (void)name;
    return ENOSYS;
}

int mempool__os_shm_dup(int fd, int *out)
{
    (void)fd, (void)out;
    return ENOSYS;
}

int mempool__os_shm_size(int fd, size_t *size)
{
    (void)fd, (void)size;
    return ENOSYS;
}

int mempool__os_shm_read(int fd, void *buf, size_t n)
{
    (void)fd, (void)buf, (void)n;
    return ENOSYS;
}

int mempool__os_shm_map(int fd, size_t size, void **out)
{
    (void)fd, (void)size, (void)out;
    return ENOSYS;
}

void mempool__os_shm_unmap(void *p, size_t size)
{
    (void)p, (void)size;
}

void mempool__os_shm_close(int fd)
{
    (void)fd;
}

int mempool__os_shm_reopen(int fd, int *out)
{
    (void)fd, (void)out;
    return ENOSYS;
}

int mempool__os_shm_claim(int own, unsigned slot)
{
    (void)own, (void)slot;
    return ENOSYS;
}

bool mempool__os_shm_held(int own, unsigned slot)
{
    (void)own, (void)slot;
    return true;
}

void mempool__os_shm_advise_huge(void *p, size_t size)
{
    (void)p, (void)size;
}

void mempool__os_sleep_ms(int ms)
{
    (void)ms;
}

void mempool__os_die(void)
{
}

long mempool__os_pid(void)
{
    return 0;
}

int mempool__os_shared_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline)
{
    (void)word, (void)expected, (void)deadline;
    return ENOSYS;
}

void mempool__os_shared_wake(_Atomic uint32_t *word, int count)
{
    (void)word, (void)count;
}

bool mempool__os_shared_barrier_init(void)
{
    return false;
}

bool mempool__os_shared_barrier(void)
{
    return false;
}
