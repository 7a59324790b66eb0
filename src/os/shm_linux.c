/* SPDX-License-Identifier: MIT */
/* Linux: segments shared between processes (see os.h).
 *
 * Named segments are POSIX shared-memory objects created with O_EXCL and no
 * permission bits, so that nobody but root opens one before its creator
 * gives it its mode; anonymous ones are memfds sealed against shrinking and
 * growing, and against further seals (F_SEAL_FUTURE_WRITE would stop every
 * participant's writes).
 *
 * Liveness: open-file-description locks (F_OFD_SETLK) belong to the
 * description, not to a pid, so pid reuse cannot fool them and they go when
 * the last descriptor of the description closes, which exit does before the
 * process becomes a zombie. Each participant reopens the segment through
 * /proc/self/fd for a description of its own; a description shared with a
 * fork child keeps the lock while either lives, which is why the pool layer
 * closes a child's copy at fork.
 *
 * The shared futex: the same calls as linux.c without FUTEX_PRIVATE_FLAG,
 * so the key is the file page and offset, not the address.
 *
 * The barrier across processes: membarrier's global expedited command,
 * which runs a full barrier on every CPU running a thread of a process that
 * registered for it (every process attached to a pool with caches does).
 * It also reaches unrelated registered processes; it is issued only by a
 * get about to wait or fail, a close and a drain, never on the hit path. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

bool mempool__os_shm_supported(void)
{
    return true;
}

static int fail(int saved)
{
    int err = errno;
    errno = saved;
    return err;
}

int mempool__os_shm_create(const char *name, size_t size, int *fd)
{
    int saved = errno;
    int f = name ? shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0)
                 : memfd_create("mempool", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (f < 0)
        return fail(saved);
    if (ftruncate(f, (off_t)size) != 0 ||
        (!name && fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)) {
        /* No room for it (a size limit, a full tmpfs): ENOMEM, as for
         * any other allocation. */
        close(f);
        if (name)
            shm_unlink(name);
        errno = saved;
        return ENOMEM;
    }
    *fd = f;
    errno = saved;
    return 0;
}

int mempool__os_shm_publish(int fd, unsigned mode)
{
    int saved = errno;
    return fchmod(fd, (mode_t)mode) == 0 ? 0 : fail(saved);
}

int mempool__os_shm_open(const char *name, int *fd)
{
    int saved = errno;
    int f = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (f < 0)
        return fail(saved);
    *fd = f;
    return 0;
}

int mempool__os_shm_unlink(const char *name)
{
    int saved = errno;
    return shm_unlink(name) == 0 ? 0 : fail(saved);
}

int mempool__os_shm_dup(int fd, int *out)
{
    int saved = errno;
    int f = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (f < 0)
        return fail(saved) == EBADF ? EINVAL : EMFILE;
    *out = f;
    return 0;
}

/* A memfd names itself "memfd:..." in /proc/self/fd. */
static bool is_memfd(int fd)
{
    char path[64], link[16];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link);
    return n >= 7 && memcmp(link, "/memfd:", 7) == 0;
}

int mempool__os_shm_size(int fd, size_t *size)
{
    int saved = errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        errno = saved;
        return EPROTO;
    }
    if (is_memfd(fd)) {
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
            errno = saved;
            return EPROTO;
        }
    }
    *size = (size_t)st.st_size;
    errno = saved;
    return 0;
}

int mempool__os_shm_read(int fd, void *buf, size_t n)
{
    int saved = errno;
    /* The caller checked the size: a short read (a file of another kind)
     * or none at all, on a descriptor without read access, is refused. */
    ssize_t got = pread(fd, buf, n, 0);
    int err = got == (ssize_t)n ? 0 : got < 0 && errno == EBADF ? EACCES : EPROTO;
    errno = saved;
    return err;
}

int mempool__os_shm_map(int fd, size_t size, void **out)
{
    int saved = errno;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int err = p == MAP_FAILED ? (errno == EACCES ? EACCES : ENOMEM) : 0;
    errno = saved;
    *out = p;
    return err;
}

void mempool__os_shm_unmap(void *p, size_t size)
{
    int saved = errno;
    munmap(p, size);
    errno = saved;
}

void mempool__os_shm_close(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
}

int mempool__os_shm_reopen(int fd, int *out)
{
    int saved = errno;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int f = open(path, O_RDWR | O_CLOEXEC);
    if (f < 0)
        return fail(saved);
    *out = f;
    return 0;
}

static struct flock slot_lock(short type, unsigned slot)
{
    struct flock l;
    memset(&l, 0, sizeof l);
    l.l_type = type;
    l.l_whence = SEEK_SET;
    l.l_start = (off_t)slot;
    l.l_len = 1;
    return l;
}

int mempool__os_shm_claim(int own, unsigned slot)
{
    int saved = errno;
    struct flock l = slot_lock(F_WRLCK, slot);
    /* Never blocks, so never interrupted; a slot it cannot lock for any
     * reason counts as taken. */
    int rc = fcntl(own, F_OFD_SETLK, &l);
    errno = saved;
    return rc == 0 ? 0 : EAGAIN;
}

bool mempool__os_shm_held(int own, unsigned slot)
{
    int saved = errno;
    struct flock l = slot_lock(F_WRLCK, slot);
    int rc = fcntl(own, F_OFD_GETLK, &l);
    errno = saved;
    /* A failed query says nothing: count the holder alive rather than
     * take its blocks. */
    return rc != 0 || l.l_type != F_UNLCK;
}

void mempool__os_shm_advise_huge(void *p, size_t size)
{
    int saved = errno;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)p + size) & ~(page - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
    errno = saved;
}

void mempool__os_sleep_ms(int ms)
{
    int saved = errno;
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    errno = saved;
}

void mempool__os_die(void)
{
    kill(getpid(), SIGKILL);
}

long mempool__os_pid(void)
{
    return (long)getpid();
}

/* Every caller sleeps a slice at a time, so the deadline is never
 * OS_FOREVER. */
int mempool__os_shared_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline)
{
    if (mempool__os_now() >= deadline)
        return ETIMEDOUT;
    struct timespec ts = { (time_t)(deadline / 1000000000), (long)(deadline % 1000000000) };
    struct timespec *tsp = &ts;
    int saved = errno;
    long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected, tsp, NULL,
                      FUTEX_BITSET_MATCH_ANY);
    int err = rc == 0 ? 0 : errno;
    errno = saved;
    return err == ETIMEDOUT ? ETIMEDOUT : 0;
}

void mempool__os_shared_wake(_Atomic uint32_t *word, int count)
{
    int saved = errno;
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, count, NULL, NULL, 0);
    errno = saved;
}

static bool global_barrier_granted;
static pthread_once_t global_barrier_once = PTHREAD_ONCE_INIT;

static void global_barrier_register(void)
{
    int saved = errno;
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    global_barrier_granted =
        cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
    errno = saved;
}

bool mempool__os_shared_barrier_init(void)
{
    pthread_once(&global_barrier_once, global_barrier_register);
    /* The fault hook stands for a kernel that refuses it: the process's
     * caches then run the ordered protocol. */
    return global_barrier_granted && !os_barrier_fault();
}

bool mempool__os_shared_barrier(void)
{
    int saved = errno;
    bool done = !os_barrier_fault() &&
                syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0;
    errno = saved;
    return done;
}
