/* SPDX-License-Identifier: MIT */
/* Progress on stderr: the case, the implementation, the repetition, the
 * time so far and an estimate of what is left. On a terminal one line is
 * redrawn in place; otherwise each repetition prints a line of its own.
 *
 * Only the driver prints. A helper process sends a "P" record for each
 * repetition it finishes up its stdout, and the driver feeds it in here,
 * so one clock and one estimate cover every process.
 *
 * The estimate: every implementation runs the same cases, so a repetition
 * still to run costs the median of that case's repetitions so far, whichever
 * implementation ran them (the median, so that one slow implementation such
 * as checked mode does not inflate it); in a case nobody has run yet, the
 * median of all repetitions so far. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bench.h"

#define MAX_CASES 64
#define MAX_SAMPLES 256 /* repetition times kept per case */

struct case_progress {
    char label[BENCH_NAME_SIZE];
    double total, done;          /* repetitions in all, and run or skipped */
    double seconds[MAX_SAMPLES]; /* the times of the first repetitions run */
    size_t timed;
};

static struct {
    bool on, child, terminal, drawn;
    uint64_t start_ns;
    size_t case_count;
    struct case_progress *cases;
} progress;

void progress_init(const struct options *o, const struct bench_case *cases, size_t case_count,
                   size_t impl_count, unsigned runs_per_case)
{
    progress.on = !o->quiet;
    progress.child = o->child;
    progress.terminal = isatty(STDERR_FILENO);
    progress.start_ns = bench_now_ns();
    progress.case_count = case_count < MAX_CASES ? case_count : MAX_CASES;
    progress.cases = progress.case_count ? calloc(progress.case_count, sizeof *progress.cases)
                                         : NULL;
    if (!progress.cases)
        progress.case_count = 0;
    for (size_t i = 0; i < progress.case_count; i++) {
        snprintf(progress.cases[i].label, BENCH_NAME_SIZE, "%s", cases[i].label);
        progress.cases[i].total = (double)impl_count * runs_per_case;
    }
}

static int case_index(const char *label)
{
    for (size_t i = 0; i < progress.case_count; i++)
        if (strcmp(progress.cases[i].label, label) == 0)
            return (int)i;
    return -1;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n values, reordering them. */
static double median(double *values, size_t n)
{
    qsort(values, n, sizeof *values, compare_double);
    return values[n / 2];
}

/* Seconds still to go, or a negative value before anything was timed. */
static double seconds_left(void)
{
    static double all[MAX_CASES * MAX_SAMPLES];
    size_t n = 0;
    for (size_t i = 0; i < progress.case_count; i++) {
        memcpy(all + n, progress.cases[i].seconds, progress.cases[i].timed * sizeof *all);
        n += progress.cases[i].timed;
    }
    if (n == 0)
        return -1;
    double any = median(all, n), left = 0;
    for (size_t i = 0; i < progress.case_count; i++) {
        struct case_progress *c = &progress.cases[i];
        double to_go = c->total - c->done, kept[MAX_SAMPLES];
        memcpy(kept, c->seconds, c->timed * sizeof *kept);
        if (to_go > 0)
            left += to_go * (c->timed ? median(kept, c->timed) : any);
    }
    return left;
}

static void duration(char *out, size_t size, double seconds)
{
    if (seconds < 10)
        snprintf(out, size, "%.1f s", seconds);
    else if (seconds < 60)
        snprintf(out, size, "%.0f s", seconds);
    else
        snprintf(out, size, "%ld min %02ld s", (long)seconds / 60, (long)seconds % 60);
}

static void show(const char *label, const char *impl, const char *what, unsigned k, unsigned n)
{
    char elapsed[32], left[48] = "estimating what is left";
    duration(elapsed, sizeof elapsed, (double)(bench_now_ns() - progress.start_ns) / 1e9);
    double to_go = seconds_left();
    if (to_go >= 0) {
        char text[32];
        duration(text, sizeof text, to_go);
        snprintf(left, sizeof left, "about %s left", text);
    }
    char line[256];
    snprintf(line, sizeof line, "mempool-bench: %s, %s, %s %u of %u; %s elapsed, %s", label,
             impl, what, k, n, elapsed, left);
    if (!progress.terminal) {
        fprintf(stderr, "%s\n", line);
        return;
    }
    /* A line longer than the terminal would wrap, and \r would then redraw
     * only its last part. */
    struct winsize size;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 1 &&
        size.ws_col <= sizeof line)
        line[size.ws_col - 1] = '\0';
    fprintf(stderr, "\r\033[K%s", line);
    progress.drawn = true;
}

void progress_step(const char *label, const char *impl, unsigned k, unsigned n, bool warmup,
                   double seconds)
{
    if (!progress.on)
        return;
    if (progress.child) {
        printf("P\t%s\t%s\t%u\t%u\t%d\t%.9g\n", label, impl, k, n, warmup, seconds);
        fflush(stdout);
        return;
    }
    int i = case_index(label);
    if (i >= 0) {
        struct case_progress *c = &progress.cases[i];
        c->done++;
        if (c->timed < MAX_SAMPLES)
            c->seconds[c->timed++] = seconds;
    }
    show(label, impl, warmup ? "warm-up" : "repetition", k, n);
}

void progress_skip(const char *label, const char *impl, unsigned runs)
{
    if (!progress.on)
        return;
    if (progress.child) {
        printf("S\t%s\t%s\t%u\n", label, impl, runs);
        fflush(stdout);
        return;
    }
    int i = case_index(label);
    if (i >= 0)
        progress.cases[i].done += runs;
}

/* A "P" or "S" record from a helper; false when the line is neither. */
bool progress_record(const char *line)
{
    char label[BENCH_NAME_SIZE], impl[BENCH_NAME_SIZE];
    unsigned k, n;
    int warmup;
    double seconds;
    if (sscanf(line, "P\t%31[^\t]\t%31[^\t]\t%u\t%u\t%d\t%lg", label, impl, &k, &n, &warmup,
               &seconds) == 6) {
        progress_step(label, impl, k, n, warmup != 0, seconds);
        return true;
    }
    if (sscanf(line, "S\t%31[^\t]\t%31[^\t]\t%u", label, impl, &n) == 3) {
        progress_skip(label, impl, n);
        return true;
    }
    return false;
}

/* Clears the redrawn line before the table is printed. */
void progress_end(void)
{
    if (progress.drawn)
        fprintf(stderr, "\r\033[K");
    progress.drawn = false;
}
