/* SPDX-License-Identifier: MIT */
/* Where the memory lives: the caller's region, fini, mempool_foreach,
 * mempool_arena and mempool_arena_bytes, huge pages and NUMA placement.
 *
 * - region: blocks laid out in a heap, an mmap and a hugetlb region, from
 *   the first aligned address, a region that fits exactly taken and one
 *   byte less refused. Catches blocks placed outside the region, alignment
 *   slack counted wrong, and a region freed or left poisoned at destroy.
 * - fini: init and fini once per block, in index order, free or out.
 *   Catches a fini skipped for blocks out, or run twice.
 * - foreach: every block in index order in every mode, early stop.
 *   Catches a block missed or visited twice, and a lazy pool visiting
 *   slots not made.
 * - errors: every documented EINVAL, in both modes.
 * - hugepages: with and without a reservation, the page size that
 *   mempool_arena reports against the kernel's own in /proc/self/smaps.
 *   Catches a page size taken from the request instead of the mapping.
 * - numa: node 0 bound and reported by the kernel (get_mempolicy). This
 *   machine may have one node only: placement on another node is not
 *   tested where there is none. */
#include <errno.h>
#include <inttypes.h>
#include <linux/mempolicy.h>
#include <stdalign.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Takes every block (each once), checks each against [lo, hi) and the
 * alignment, and puts them back. */
static void check_blocks_within(mempool *pool, const char *lo, const char *hi, size_t alignment,
                                size_t block_size)
{
    size_t cap = mempool_capacity(pool);
    void **held = malloc(cap * sizeof *held);
    REQUIRE(held);
    check_get_all(pool, held);
    for (size_t i = 0; i < cap; i++) {
        const char *b = held[i];
        CHECK(b >= lo && b + block_size <= hi);
        CHECK((uintptr_t)b % alignment == 0);
        memset(held[i], 0xab, block_size); /* the caller may use all of it */
    }
    CHECK_EQ(mempool_put_bulk(pool, held, cap), 0);
    free(held);
}

static void test_region_in(char *region, size_t region_size, size_t capacity, size_t block_size,
                           size_t alignment, unsigned flags)
{
    mempool_config c = { .capacity = capacity, .block_size = block_size, .alignment = alignment,
                         .memory = region, .memory_size = region_size, .flags = flags };
    mempool *pool = mempool_create(&c);
    REQUIRE(pool);
    mempool_arena_info a;
    CHECK_EQ(mempool_arena(pool, &a), 0);
    uintptr_t first = ((uintptr_t)region + alignment - 1) & ~(uintptr_t)(alignment - 1);
    CHECK(a.base == (void *)first);
    CHECK_EQ(a.size, capacity * a.stride);
    CHECK(a.stride >= block_size && a.stride % alignment == 0);
    CHECK((char *)a.base + a.size <= region + region_size);
    CHECK(a.page_size >= (size_t)sysconf(_SC_PAGESIZE));
    check_blocks_within(pool, region, region + region_size, alignment, block_size);
    void *out = mempool_get(pool); /* one out at destroy: the region is still the caller's */
    REQUIRE(out);
    mempool_destroy(pool);
    /* Usable again by its owner, all of it (the tools see no poisoned byte). */
    memset(region, 0x5a, region_size);
}

static void on_misuse(const char *what, const void *block, void *arg)
{
    (void)block;
    *(const char **)arg = what;
}

static void test_region(void)
{
    enum { CAP = 100, SIZE = 48, ALIGN = 64 };
    mempool_config c = { .capacity = CAP, .block_size = SIZE, .alignment = ALIGN };
    size_t need = mempool_arena_bytes(&c);
    REQUIRE(need > 0);
    /* The worst case holds the alignment slack; an aligned region needs
     * exactly capacity strides. */
    size_t exact = need - (ALIGN - 1);
    CHECK_EQ(exact % CAP, 0);

    /* The heap, at every misalignment of the start (the buffer has room for
     * the largest start, and for the checked pool below). */
    mempool_config checked = { .capacity = 8, .block_size = 40, .flags = MEMPOOL_CHECKED };
    size_t checked_need = mempool_arena_bytes(&checked);
    REQUIRE(checked_need > 0);
    char *heap = malloc((need > checked_need ? need : checked_need) + 2 * ALIGN);
    REQUIRE(heap);
    char *aligned = (char *)(((uintptr_t)heap + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    for (size_t skew = 0; skew < ALIGN; skew += 7) {
        test_region_in(aligned + skew, need, CAP, SIZE, ALIGN, 0);
        test_region_in(aligned + skew, need, CAP, SIZE, ALIGN, MEMPOOL_NO_CACHE);
        /* One byte less than the slack this start needs: refused. */
        size_t slack = skew ? ALIGN - skew : 0;
        mempool_config small = c;
        small.memory = aligned + skew;
        small.memory_size = exact + slack - 1;
        errno = 0;
        CHECK(mempool_create(&small) == NULL);
        CHECK_EQ(errno, EINVAL);
        small.memory_size = exact + slack; /* exactly enough: taken */
        mempool *p = mempool_create(&small);
        CHECK(p != NULL);
        mempool_destroy(p);
    }
    /* Checked mode's guard bytes live in the caller's region too: an
     * overflow into them is caught at put. */
    checked.memory = aligned;
    checked.memory_size = checked_need;
    const char *what = NULL;
    checked.on_misuse = on_misuse;
    checked.arg = &what;
    mempool *cp = mempool_create(&checked);
    REQUIRE(cp);
    char *b = mempool_get(cp);
    REQUIRE(b);
    CHECK(b >= aligned && b + 40 <= aligned + checked_need);
    check_sneak_write((unsigned char *)b + 40, 1); /* one byte past the block: its guard */
    CHECK_EQ(mempool_put(cp, b), 0);
    CHECK(what && strcmp(what, "overflow") == 0);
    mempool_destroy(cp);
    free(heap);

    /* An mmap region, and the region's end exactly at the mapping's end. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = (exact + page - 1) / page * page;
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(map != MAP_FAILED);
    test_region_in(map + len - exact, exact, CAP, SIZE, ALIGN, 0);
    munmap(map, len);
}

struct calls {
    size_t init, fini;
    size_t next_fini; /* index of the block fini should see next */
    char *base;
    size_t stride;
    int order_errors;
};

static void count_init(void *block, void *arg)
{
    struct calls *k = arg;
    memset(block, 0x11, 16);
    k->init++;
}

static void count_fini(void *block, void *arg)
{
    struct calls *k = arg;
    if ((char *)block != k->base + k->next_fini * k->stride)
        k->order_errors++;
    k->next_fini++;
    k->fini++;
    memset(block, 0, 16); /* every block, free ones too, may be touched */
}

static void test_fini(void)
{
    static const size_t caps[] = { 1, 2, 63, 64, 1000 };
    for (size_t t = 0; t < sizeof caps / sizeof *caps; t++) {
        for (int borrowed = 0; borrowed < 2; borrowed++) {
            struct calls k = { 0 };
            mempool_config c = { .capacity = caps[t], .block_size = 16, .init = count_init,
                                 .fini = count_fini, .arg = &k };
            size_t need = mempool_arena_bytes(&c);
            char *region = borrowed ? malloc(need) : NULL;
            if (borrowed) {
                REQUIRE(region);
                c.memory = region;
                c.memory_size = need;
            }
            mempool *pool = mempool_create(&c);
            REQUIRE(pool);
            CHECK_EQ(k.init, caps[t]);
            CHECK_EQ(k.fini, 0);
            mempool_arena_info a;
            CHECK_EQ(mempool_arena(pool, &a), 0);
            k.base = a.base;
            k.stride = a.stride;
            /* Half the blocks out at destroy: fini still sees every one. */
            for (size_t i = 0; i < caps[t] / 2; i++)
                CHECK(mempool_get(pool) != NULL);
            mempool_destroy(pool);
            CHECK_EQ(k.fini, caps[t]);
            CHECK_EQ(k.order_errors, 0);
            free(region);
        }
    }
}

struct visits {
    size_t count;
    size_t next;
    int order_errors;
    size_t stop_at; /* return 7 at this index */
    mempool *pool;
};

static int visit(void *block, size_t index, void *arg)
{
    struct visits *v = arg;
    if (index != v->next || mempool_index(v->pool, block) != index)
        v->order_errors++;
    v->next = index + 1;
    v->count++;
    return index == v->stop_at ? 7 : 0;
}

static void *make16(void *arg)
{
    (void)arg;
    return malloc(16);
}

static void unmake16(void *block, void *arg)
{
    (void)arg;
    free(block);
}

static void test_foreach(void)
{
    enum { CAP = 200 };
    const mempool_config configs[] = {
        { .capacity = CAP, .block_size = 32 },
        { .capacity = CAP, .block_size = 24, .flags = MEMPOOL_NO_CACHE },
        { .capacity = CAP, .block_size = 32, .flags = MEMPOOL_CHECKED },
        { .capacity = CAP, .make = make16, .unmake = unmake16 },
        { .capacity = CAP, .make = make16, .unmake = unmake16, .flags = MEMPOOL_LAZY },
    };
    for (size_t t = 0; t < sizeof configs / sizeof *configs; t++) {
        mempool *pool = mempool_create(&configs[t]);
        REQUIRE(pool);
        bool lazy = configs[t].flags & MEMPOOL_LAZY;
        void *held[CAP];
        size_t out = 37;
        for (size_t i = 0; i < out; i++)
            REQUIRE((held[i] = mempool_get(pool)) != NULL);
        struct visits v = { .stop_at = SIZE_MAX, .pool = pool };
        CHECK_EQ(mempool_foreach(pool, visit, &v), 0);
        /* Every block, free or out; a lazy pool only the ones it made. */
        CHECK_EQ(v.count, lazy ? out : (size_t)CAP);
        CHECK_EQ(v.order_errors, 0);
        /* Stops at the first non-zero result and returns it. */
        struct visits s = { .stop_at = 5, .pool = pool };
        CHECK_EQ(mempool_foreach(pool, visit, &s), 7);
        CHECK_EQ(s.count, 6);
        CHECK_EQ(mempool_foreach(NULL, visit, &v), EINVAL);
        CHECK_EQ(mempool_foreach(pool, NULL, &v), EINVAL);
        mempool_arena_info a;
        CHECK_EQ(mempool_arena(pool, &a), configs[t].make ? EINVAL : 0);
        CHECK_EQ(mempool_arena(pool, NULL), EINVAL);
        for (size_t i = 0; i < out; i++)
            CHECK_EQ(mempool_put(pool, held[i]), 0);
        mempool_destroy(pool);
    }
    mempool_arena_info a;
    CHECK_EQ(mempool_arena(NULL, &a), EINVAL);
}

#define EXPECT_EINVAL(cfg)                                                  \
    do {                                                                    \
        errno = 0;                                                          \
        mempool *p_ = mempool_create(&(cfg));                               \
        CHECK(p_ == NULL);                                                  \
        CHECK_EQ(errno, EINVAL);                                            \
        mempool_destroy(p_);                                                \
    } while (0)

static void test_errors(void)
{
    char region[4096];
    mempool_config arena = { .capacity = 8, .block_size = 64 };
    mempool_config generator = { .capacity = 8, .make = make16, .unmake = unmake16 };
    mempool_config c;

    c = arena; /* a region without its size */
    c.memory = region;
    EXPECT_EINVAL(c);
    c = arena; /* a size without a region */
    c.memory_size = sizeof region;
    EXPECT_EINVAL(c);
    c = arena; /* too small for 8 strides */
    c.memory = region;
    c.memory_size = 8 * 64 - 1;
    c.alignment = 1;
    EXPECT_EINVAL(c);
    /* A region smaller than the way to its first aligned address: the
     * room after the padding must not be computed as negative (it would
     * wrap to a huge size and be taken). */
    c = arena;
    c.capacity = 1;
    c.block_size = 16;
    c.alignment = 1024;
    c.memory = (char *)(((uintptr_t)region + 1023) & ~(uintptr_t)1023) + 1;
    c.memory_size = 16;
    EXPECT_EINVAL(c);
    c = generator; /* a region in generator mode */
    c.memory = region;
    c.memory_size = sizeof region;
    EXPECT_EINVAL(c);
    c = generator; /* fini in generator mode */
    c.fini = unmake16;
    EXPECT_EINVAL(c);
    c = generator; /* huge pages in generator mode */
    c.flags = MEMPOOL_HUGEPAGES;
    EXPECT_EINVAL(c);
    c = arena; /* the caller places its own region */
    c.memory = region;
    c.memory_size = sizeof region;
    c.flags = MEMPOOL_HUGEPAGES;
    EXPECT_EINVAL(c);
    c.flags = MEMPOOL_NUMA;
    EXPECT_EINVAL(c);
    c = arena; /* no such node */
    c.flags = MEMPOOL_NUMA;
    c.numa_node = 1 << 20;
    EXPECT_EINVAL(c);
    c.numa_node = 1024; /* one past the node mask the library passes the kernel */
    EXPECT_EINVAL(c);
    c.numa_node = 1023; /* inside it, but no machine here has that node */
    EXPECT_EINVAL(c);
    c.numa_node = -1;
    EXPECT_EINVAL(c);
    c = arena; /* a node without the flag */
    c.numa_node = 2;
    EXPECT_EINVAL(c);

    /* mempool_arena_bytes: arena layouts only. */
    errno = 0;
    CHECK_EQ(mempool_arena_bytes(NULL), 0);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mempool_arena_bytes(&generator), 0);
    CHECK_EQ(errno, EINVAL);
    c = arena;
    c.alignment = 3;
    errno = 0;
    CHECK_EQ(mempool_arena_bytes(&c), 0);
    CHECK_EQ(errno, EINVAL);
    c = arena;
    c.block_size = (size_t)PTRDIFF_MAX;
    errno = 0;
    CHECK_EQ(mempool_arena_bytes(&c), 0);
    CHECK_EQ(errno, EOVERFLOW);
    /* The region's own fields do not change the answer. */
    c = arena;
    size_t plain = mempool_arena_bytes(&c);
    c.memory = region;
    c.memory_size = 1;
    CHECK_EQ(mempool_arena_bytes(&c), plain);
    CHECK(plain >= 8 * 64);
}

/* The kernel's word on the mapping that holds p: its KernelPageSize and
 * AnonHugePages in /proc/self/smaps, in bytes. */
static bool smaps_of(const void *p, size_t *kernel_page, size_t *anon_huge)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return false;
    char line[256];
    bool inside = false, found = false;
    *kernel_page = *anon_huge = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, kb;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') == line + strcspn(line, "-")) {
            if (found)
                break;
            inside = found = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        } else if (inside && sscanf(line, "KernelPageSize: %lu kB", &kb) == 1) {
            *kernel_page = (size_t)kb << 10;
        } else if (inside && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) {
            *anon_huge = (size_t)kb << 10;
        }
    }
    fclose(f);
    return found;
}

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static bool write_long(const char *path, long v)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fprintf(f, "%ld\n", v) > 0;
    return fclose(f) == 0 && ok;
}

/* A 16 MiB arena with MEMPOOL_HUGEPAGES, every block touched: what
 * mempool_arena says against what smaps says. */
static void check_huge_pool(bool expect_hugetlb)
{
    mempool_config c = { .capacity = 8192, .block_size = 2048, .flags = MEMPOOL_HUGEPAGES };
    mempool *pool = mempool_create(&c);
    REQUIRE(pool); /* never a failure, reserved or not */
    void **held = malloc(c.capacity * sizeof *held);
    REQUIRE(held);
    check_get_all(pool, held);
    for (size_t i = 0; i < c.capacity; i++)
        memset(held[i], 1, c.block_size);
    mempool_arena_info a;
    CHECK_EQ(mempool_arena(pool, &a), 0);
    size_t kernel_page, anon_huge;
    REQUIRE(smaps_of(a.base, &kernel_page, &anon_huge));
    if (expect_hugetlb) {
        CHECK_EQ(kernel_page, (size_t)2 << 20);
        CHECK_EQ(a.page_size, (size_t)2 << 20);
    } else {
        CHECK_EQ(kernel_page, (size_t)sysconf(_SC_PAGESIZE));
        /* Transparent huge pages where the kernel gave them, all of the
         * arena; base pages otherwise. */
        size_t expect = anon_huge >= a.size ? (size_t)2 << 20 : kernel_page;
        CHECK_EQ(a.page_size, expect);
    }
    printf("hugepages %s: the kernel gave %zu KiB pages (KernelPageSize %zu KiB, AnonHugePages "
           "%zu KiB)\n", expect_hugetlb ? "reserved" : "not reserved", a.page_size >> 10,
           kernel_page >> 10, anon_huge >> 10);
    CHECK_EQ(mempool_put_bulk(pool, held, c.capacity), 0);
    free(held);
    mempool_destroy(pool);
}

static void test_hugepages(void)
{
    static const char *nr = "/proc/sys/vm/nr_hugepages";
    long before = read_long(nr);
    long free_now = 0;
    FILE *m = fopen("/proc/meminfo", "r");
    if (m) {
        char line[128];
        while (fgets(line, sizeof line, m))
            sscanf(line, "HugePages_Free: %ld", &free_now);
        fclose(m);
    }
    /* Without a reservation first (only where none is free: another
     * program's reservation would be taken otherwise). */
    if (free_now == 0)
        check_huge_pool(false);
    /* With one: 8 pages of 2 MiB more than there are, as root, restored
     * afterwards. */
    if (before < 0 || geteuid() != 0 || !write_long(nr, before + 8)) {
        printf("skipped: hugetlb reservation (needs root and %s)\n", nr);
        return;
    }
    if (getenv("MEMPOOL_TEST_EMULATOR"))
        printf("skipped: hugetlb pages under an emulator (qemu-user maps them as base pages)\n");
    else if (read_long(nr) >= before + 8)
        check_huge_pool(true);
    else
        printf("skipped: the kernel reserved no more huge pages\n");
    CHECK(write_long(nr, before));
}

static void test_numa(void)
{
    mempool_config c = { .capacity = 1024, .block_size = 256, .flags = MEMPOOL_NUMA,
                         .numa_node = 0 };
    mempool *pool = mempool_create(&c);
    REQUIRE(pool);
    char *b = mempool_get(pool);
    REQUIRE(b);
    memset(b, 1, 256);
    int node = -1, mode = -1;
    long rc = syscall(SYS_get_mempolicy, &node, NULL, 0, b, MPOL_F_NODE | MPOL_F_ADDR);
    if (rc == 0) {
        CHECK_EQ(node, 0);
        unsigned long mask[16] = { 0 };
        CHECK_EQ(syscall(SYS_get_mempolicy, &mode, mask, 16 * 8 * sizeof(unsigned long) + 1, b,
                         MPOL_F_ADDR), 0);
        CHECK_EQ(mode, MPOL_BIND);
        CHECK_EQ(mask[0] & 1, 1);
        /* The report names the node and that the pool bound it (node 0
         * is a node like any other). */
        FILE *f = tmpfile();
        REQUIRE(f != NULL);
        CHECK_EQ(mempool_stats_print(pool, f), 0);
        rewind(f);
        char text[1024] = { 0 };
        CHECK(fread(text, 1, sizeof text - 1, f) > 0);
        fclose(f);
        CHECK(strstr(text, ", node 0 (bound)") != NULL);
    } else {
        printf("skipped: the kernel has no NUMA policy calls (%s)\n", strerror(errno));
    }
    CHECK_EQ(mempool_put(pool, b), 0);
    mempool_destroy(pool);
    /* The nodes this machine lacks are refused: all of them past the last. */
    long nodes = sysconf(_SC_NPROCESSORS_CONF); /* more nodes than CPUs cannot exist */
    c.numa_node = (int)(nodes > 0 ? nodes + 1 : 4096);
    errno = 0;
    CHECK(mempool_create(&c) == NULL);
    CHECK_EQ(errno, EINVAL);
}

/* An arena aligned past the page size is mapped with room to align it and
 * the rest unmapped at once: creating and destroying such pools, and pools
 * on huge pages, gives every byte of address space back. Catches a trim
 * that leaves the head or the tail of the mapping behind, and a huge-page
 * mapping that is dropped for a fallback instead of used. */
static void test_aligned_unmapped(void)
{
    static const size_t alignments[] = { 1 << 16, 1 << 20, 1 << 21 };
    long before = 0;
    for (int round = 0; round < 4; round++) {
        if (round == 1)
            before = vm_size_kb(); /* after one round of warm-up */
        for (size_t a = 0; a < sizeof alignments / sizeof *alignments; a++) {
            mempool_config c = { .capacity = 100, .block_size = 1000,
                                 .alignment = alignments[a] };
            mempool *pool = mempool_create(&c);
            REQUIRE(pool != NULL);
            CHECK_EQ((uintptr_t)mempool_block(pool, 0) % alignments[a], 0);
            mempool_destroy(pool);
        }
        /* And arenas asked for huge pages, whichever kind the kernel
         * gives (or base pages). */
        mempool_config huge = { .capacity = 1024, .block_size = 4096,
                                .flags = MEMPOOL_HUGEPAGES };
        mempool *pool = mempool_create(&huge);
        REQUIRE(pool != NULL);
        mempool_destroy(pool);
    }
    if (plain_process())
        CHECK_EQ(vm_size_kb(), before);
}

static void no_numa_calls_child(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_get_mempolicy, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mbind, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    };
    struct sock_fprog prog = { .len = sizeof filter / sizeof *filter, .filter = filter };
    REQUIRE(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    REQUIRE(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
    REQUIRE(syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0) == -1 && errno == ENOSYS);
    mempool_config c = { .capacity = 64, .block_size = 256, .flags = MEMPOOL_NUMA,
                         .numa_node = 0 };
    mempool *pool = mempool_create(&c);
    CHECK(pool != NULL);
    if (pool) {
        void *b = mempool_get(pool);
        CHECK(b != NULL);
        CHECK_EQ(mempool_put(pool, b), 0);
        mempool_destroy(pool);
    }
    c.numa_node = 1;
    errno = 0;
    CHECK(mempool_create(&c) == NULL);
    CHECK_EQ(errno, EINVAL);
}

/* A kernel without the NUMA calls (as a seccomp filter makes them fail with
 * ENOSYS) has node 0 only, where everything is anyway: MEMPOOL_NUMA with
 * node 0 works, any other node is EINVAL. Run in a child (the filter is for
 * good); not under memcheck or an emulator, which filter system calls
 * themselves. */
static void test_no_numa_calls(void)
{
#ifdef HAVE_MEMCHECK
    if (RUNNING_ON_VALGRIND) {
        puts("no NUMA calls: skipped under valgrind");
        return;
    }
#endif
    if (getenv("MEMPOOL_TEST_EMULATOR")) {
        puts("no NUMA calls: skipped under an emulator");
        return;
    }
    in_child(no_numa_calls_child);
}

static void address_limit_child(void)
{
    long kb = vm_size_kb();
    REQUIRE(kb > 0);
    struct rlimit lim = { .rlim_cur = ((rlim_t)kb << 10) + (64u << 20),
                          .rlim_max = RLIM_INFINITY };
    REQUIRE(setrlimit(RLIMIT_AS, &lim) == 0);
    static const unsigned flags[] = { 0, MEMPOOL_HUGEPAGES, MEMPOOL_NUMA,
                                      MEMPOOL_HUGEPAGES | MEMPOOL_NUMA, MEMPOOL_CHECKED };
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        mempool_config c = { .capacity = 1 << 16, .block_size = 4096, .flags = flags[i] };
        errno = 0;
        CHECK(mempool_create(&c) == NULL);
        CHECK_EQ(errno, ENOMEM);
    }
    mempool_config small = { .capacity = 64, .block_size = 64, .flags = MEMPOOL_HUGEPAGES };
    mempool *pool = mempool_create(&small);
    CHECK(pool != NULL);
    mempool_destroy(pool);
    /* Lifted for the exit, which may need memory (coverage builds write
     * their counts then). */
    lim.rlim_cur = RLIM_INFINITY;
    REQUIRE(setrlimit(RLIMIT_AS, &lim) == 0);
}

/* Creation when the kernel refuses the memory: under an address-space
 * limit a little above what the process maps, every way of placing an arena
 * that does not fit (base pages, huge pages with their fallbacks, a NUMA
 * binding) fails with ENOMEM, and a pool that fits is still made. Run in a
 * child (the limit is for good); not under the sanitizers, whose shadow
 * memory needs the address space, nor under an emulator or memcheck. */
static void test_address_limit(void)
{
    if (!plain_process()) {
        puts("address limit: skipped under a sanitizer, memcheck or an emulator");
        return;
    }
    in_child(address_limit_child);
}

int main(void)
{
    test_region();
    test_fini();
    test_foreach();
    test_errors();
    test_hugepages();
    test_numa();
    test_aligned_unmapped();
    test_no_numa_calls();
    test_address_limit();
    CHECK_DONE();
}
