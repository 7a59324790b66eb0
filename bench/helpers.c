/* SPDX-License-Identifier: MIT */
/* The helper processes: allocators that replace malloc, and DPDK whose EAL
 * pins threads, each run in a process of their own (mempool-bench-NAME next
 * to the driver) with the driver's options; their records are merged into
 * the driver's results. The catalog lists every implementation the build
 * knows of, helpers' and missing ones included. --callgrind runs every
 * process the same way under valgrind.
 *
 * BENCH_HELPERS is "NAME NAME ..."; BENCH_MISSING is "IMPL,IMPL=PACKAGE ...",
 * the implementations whose library was not found and the package that
 * brings it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#ifndef BENCH_HELPERS
#define BENCH_HELPERS ""
#endif
#ifndef BENCH_MISSING
#define BENCH_MISSING ""
#endif

/* Blocks per callgrind run: a multiple of every burst size. */
#define CALLGRIND_ITERATIONS 25600

const char *bench_self_dir(void)
{
    static char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0)
        return ".";
    dir[n] = '\0';
    *strrchr(dir, '/') = '\0';
    return dir;
}

/* Runs argv, absorbing its records into r; its exit status, or -1. */
static int run_process(char *const argv[], struct results *r, bool progress)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *from = fdopen(fds[0], "r");
    int bad = from ? results_absorb(r, from, progress) : -1;
    if (from)
        fclose(from);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    if (bad)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The child command line for options o, at argv[first..]; NULL-terminated.
 * `numbers` keeps the formatted values alive. */
static void child_args(const struct options *o, char **argv, size_t first, char numbers[5][24],
                       char *threads, size_t threads_size)
{
    size_t n = first;
    snprintf(numbers[0], 24, "%zu", o->iterations);
    snprintf(numbers[1], 24, "%zu", o->handoffs);
    snprintf(numbers[2], 24, "%u", o->repetitions);
    snprintf(numbers[3], 24, "%u", o->warmups);
    snprintf(numbers[4], 24, "%zu", o->block_size);
    static char *const names[] = {"--iterations", "--handoffs", "--repetitions", "--warmups",
                                  "--block-size"};
    argv[n++] = "--child";
    for (int i = 0; i < 5; i++) {
        argv[n++] = names[i];
        argv[n++] = numbers[i];
    }
    threads[0] = '\0';
    for (size_t i = 0; i < o->thread_count; i++)
        snprintf(threads + strlen(threads), threads_size - strlen(threads), "%s%u",
                 i ? "," : "", o->threads[i]);
    if (o->thread_count)
        argv[n++] = "--threads", argv[n++] = threads;
    if (o->scenarios)
        argv[n++] = "--scenario", argv[n++] = (char *)o->scenarios;
    if (o->impls)
        argv[n++] = "--impl", argv[n++] = (char *)o->impls;
    if (o->pin)
        argv[n++] = "--pin";
    if (o->quiet)
        argv[n++] = "--quiet";
    argv[n] = NULL;
}

/* Calls `each` for every helper named in the space-separated `list`. */
static void for_each_word(const char *list, void (*each)(const char *word, void *arg), void *arg)
{
    char word[64];
    for (const char *p = list; *p;) {
        size_t length = strcspn(p, " ");
        if (length && length < sizeof word) {
            memcpy(word, p, length);
            word[length] = '\0';
            each(word, arg);
        }
        p += length + (p[length] == ' ');
    }
}

struct helper_run {
    const struct options *o;
    struct results *r;
};

static void run_helper(const char *name, void *arg)
{
    struct helper_run *run = arg;
    char exe[4200], numbers[5][24], threads[128];
    char *argv[32] = {exe};
    snprintf(exe, sizeof exe, "%s/mempool-bench-%s", bench_self_dir(), name);
    child_args(run->o, argv, 1, numbers, threads, sizeof threads);
    int status = run_process(argv, run->r, true);
    if (status != 0)
        results_line(run->r, "skip %s: its helper process failed (status %d)", name, status);
}

void helpers_run(const struct options *o, struct results *r)
{
    struct helper_run run = {o, r};
    for_each_word(BENCH_HELPERS, run_helper, &run);
}

/* The "totals:" (or "summary:") count of a callgrind output file, 0: none. */
static double callgrind_total(const char *path)
{
    FILE *in = fopen(path, "r");
    char line[512];
    double total = 0;
    while (in && fgets(line, sizeof line, in))
        if (!strncmp(line, "totals:", 7) || (!total && !strncmp(line, "summary:", 8)))
            total = atof(strchr(line, ':') + 1);
    if (in)
        fclose(in);
    return total;
}

/* One implementation and case under callgrind: adds an Ir/get+put row. */
static void callgrind_case(const char *exe, const char *impl, const char *label,
                           const struct options *o, struct results *r)
{
    char out[512], numbers[5][24], threads[128], file_arg[560];
    const char *tmp = getenv("TMPDIR");
    snprintf(out, sizeof out, "%s/mempool-bench-callgrind.%d", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    snprintf(file_arg, sizeof file_arg, "--callgrind-out-file=%s", out);
    struct options one = *o;
    one.scenarios = label;
    one.impls = impl;
    one.iterations = CALLGRIND_ITERATIONS;
    one.repetitions = 1;
    one.warmups = 1;
    one.pin = false;
    one.quiet = true;
    char *argv[40] = {"valgrind", "-q", "--tool=callgrind", "--toggle-collect=loop_*", file_arg,
                      (char *)exe};
    child_args(&one, argv, 6, numbers, threads, sizeof threads);
    struct results timed = {0};
    int status = run_process(argv, &timed, false);
    progress_step(label, impl, 1, 1, false);
    double total = callgrind_total(out);
    remove(out);
    if (status != 0 || timed.count != 1 || (!timed.rows[0].na && total <= 0)) {
        results_line(r, "skip callgrind %s %s: valgrind run failed (status %d)", impl, label,
                     status);
    } else {
        struct row *w = results_add(r);
        *w = timed.rows[0];
        w->median = w->min = w->max = total / (2.0 * CALLGRIND_ITERATIONS);
    }
    results_free(&timed);
}

struct catalog_build {
    struct catalog_entry *out;
    size_t count, max;
};

static void catalog_add(struct catalog_build *b, const char *name, const char *helper,
                        const char *package, bool available)
{
    if (b->count == b->max)
        return;
    struct catalog_entry *e = &b->out[b->count++];
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->helper, sizeof e->helper, "%s", helper);
    snprintf(e->package, sizeof e->package, "%s", package);
    e->available = available;
}

/* A helper's implementations, from its --child --list; the helper's own
 * name, unavailable, when it does not answer. */
static void catalog_helper(const char *name, void *arg)
{
    struct catalog_build *b = arg;
    char command[4400], line[BENCH_NAME_SIZE];
    snprintf(command, sizeof command, "'%s/mempool-bench-%s' --child --list 2>/dev/null",
             bench_self_dir(), name);
    size_t before = b->count;
    FILE *from = popen(command, "r");
    while (from && fgets(line, sizeof line, from)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            catalog_add(b, line, name, "", true);
    }
    if (from && pclose(from) != 0)
        b->count = before;
    if (b->count == before)
        catalog_add(b, name, name, "", false);
}

static void catalog_missing(const char *entry, void *arg)
{
    struct catalog_build *b = arg;
    const char *equals = strchr(entry, '=');
    char name[BENCH_NAME_SIZE];
    for (const char *p = entry; equals && p < equals;) {
        size_t length = strcspn(p, ",=");
        if (length && length < sizeof name) {
            memcpy(name, p, length);
            name[length] = '\0';
            catalog_add(b, name, "", equals + 1, false);
        }
        p += length + (p[length] == ',');
    }
}

static int catalog_order(const void *a, const void *b)
{
    return bench_impl_order(((const struct catalog_entry *)a)->name,
                            ((const struct catalog_entry *)b)->name);
}

size_t bench_catalog(struct catalog_entry *out, size_t max)
{
    struct catalog_build b = {out, 0, max};
    for (size_t i = 0; i < bench_impl_count(); i++)
        catalog_add(&b, bench_impl_at(i)->name, "", "", true);
    for_each_word(BENCH_HELPERS, catalog_helper, &b);
    for_each_word(BENCH_MISSING, catalog_missing, &b);
    qsort(out, b.count, sizeof *out, catalog_order);
    return b.count;
}

void helpers_callgrind(const struct options *o, const struct catalog_entry *catalog,
                       size_t count, struct results *r)
{
    if (system("valgrind --version >/dev/null 2>&1") != 0) {
        results_line(r, "skip callgrind: valgrind not found (apt-get install valgrind)");
        return;
    }
    struct bench_case cases[64];
    size_t case_count = bench_cases(o, cases, 64);
    for (size_t k = 0; k < count; k++) {
        const struct catalog_entry *e = &catalog[k];
        if (!e->available || !bench_listed(o->impls, e->name))
            continue;
        char exe[4200];
        snprintf(exe, sizeof exe, "%s/mempool-bench%s%s", bench_self_dir(),
                 e->helper[0] ? "-" : "", e->helper);
        for (size_t i = 0; i < case_count; i++)
            if (cases[i].scenario->single_thread)
                callgrind_case(exe, e->name, cases[i].label, o, r);
    }
}
