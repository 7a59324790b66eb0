/* SPDX-License-Identifier: MIT */
/* The helper processes: allocators that replace malloc, and DPDK whose EAL
 * pins threads, each run in a process of their own (mempool-bench-NAME next
 * to the driver) with the driver's options; their records are merged into
 * the driver's results. --callgrind runs every process the same way under
 * valgrind. */
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
static int run_process(char *const argv[], struct results *r)
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
    int bad = from ? results_absorb(r, from) : -1;
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
    int status = run_process(argv, run->r);
    if (status != 0)
        results_line(run->r, "skip %s: its helper process failed (status %d)", name, status);
}

static void report_missing(const char *entry, void *arg)
{
    struct helper_run *run = arg;
    const char *equals = strchr(entry, '=');
    if (equals)
        results_line(run->r, "skip %.*s: not found when built (apt-get install %s)",
                     (int)(equals - entry), entry, equals + 1);
}

void helpers_run(const struct options *o, struct results *r)
{
    struct helper_run run = {o, r};
    for_each_word(BENCH_HELPERS, run_helper, &run);
    for_each_word(BENCH_MISSING, report_missing, &run);
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

/* One implementation and case under callgrind: adds an Ir/block row. */
static void callgrind_case(const char *exe, const char *impl, const char *label,
                           const struct options *o, struct results *r)
{
    char out[64], numbers[5][24], threads[128], file_arg[96];
    snprintf(out, sizeof out, "/tmp/mempool-bench-callgrind.%d", (int)getpid());
    snprintf(file_arg, sizeof file_arg, "--callgrind-out-file=%s", out);
    struct options one = *o;
    one.scenarios = label;
    one.impls = impl;
    one.iterations = CALLGRIND_ITERATIONS;
    one.repetitions = 1;
    one.warmups = 1;
    one.pin = false;
    char *argv[40] = {"valgrind", "-q", "--tool=callgrind", "--toggle-collect=loop_*", file_arg,
                      (char *)exe};
    child_args(&one, argv, 6, numbers, threads, sizeof threads);
    struct results timed = {0};
    bench_progress("callgrind: %s %s", impl, label);
    int status = run_process(argv, &timed);
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

struct callgrind_run {
    const struct options *o;
    struct results *r;
    const char *exe;
    const struct bench_case *cases;
    size_t case_count;
};

static void callgrind_impl(const char *impl, void *arg)
{
    struct callgrind_run *run = arg;
    if (!bench_listed(run->o->impls, impl))
        return;
    for (size_t i = 0; i < run->case_count; i++)
        if (run->cases[i].scenario->single_thread)
            callgrind_case(run->exe, impl, run->cases[i].label, run->o, run->r);
}

/* The implementation names of one executable, space-separated, from --list. */
static void list_impls(const char *exe, char *out, size_t size)
{
    char command[4400];
    snprintf(command, sizeof command, "'%s' --list", exe);
    out[0] = '\0';
    FILE *from = popen(command, "r");
    char line[64];
    while (from && fgets(line, sizeof line, from)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(out + strlen(out), size - strlen(out), "%s ", line);
    }
    if (from)
        pclose(from);
}

static void callgrind_exe(const char *name, void *arg)
{
    struct callgrind_run *run = arg;
    char exe[4200], impls[512];
    if (strcmp(name, "self") == 0)
        snprintf(exe, sizeof exe, "%s/mempool-bench", bench_self_dir());
    else
        snprintf(exe, sizeof exe, "%s/mempool-bench-%s", bench_self_dir(), name);
    run->exe = exe;
    list_impls(exe, impls, sizeof impls);
    for_each_word(impls, callgrind_impl, run);
}

void helpers_callgrind(const struct options *o, struct results *r)
{
    struct bench_case cases[64];
    size_t case_count = bench_cases(o, cases, 64);
    struct callgrind_run run = {o, r, NULL, cases, case_count};
    if (system("valgrind --version >/dev/null 2>&1") != 0) {
        results_line(r, "skip callgrind: valgrind not found (apt-get install valgrind)");
        return;
    }
    callgrind_exe("self", &run);
    for_each_word(BENCH_HELPERS, callgrind_exe, &run);
    for_each_word(BENCH_MISSING, report_missing, &(struct helper_run){o, r});
}
