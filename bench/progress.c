/* SPDX-License-Identifier: MIT */
/* Progress on stderr: the case, the implementation, the repetition, the
 * time so far and an estimate of what is left. On a terminal one line is
 * redrawn in place; otherwise each repetition prints a line of its own.
 *
 * Only the driver prints. A helper process sends a "P" record for each
 * repetition it finishes up its stdout, and the driver feeds it in here,
 * so one clock and one estimate cover every process.
 *
 * The estimate: the time so far, scaled by the repetitions still to run
 * over those done (skipped ones count as done). It counts what a repetition
 * does not (helper start-up, pool and thread creation) and corrects itself as
 * the run goes; per-case figures do worse, as the library's checked and
 * uncached variants run first and are the slowest. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bench.h"

static struct {
    bool on, child, terminal, drawn;
    uint64_t start_ns;
    double total, done; /* repetitions in all, and run or skipped so far */
} progress;

void progress_init(const struct options *o, size_t case_count, size_t impl_count,
                   unsigned runs_per_case)
{
    progress.on = !o->quiet;
    progress.child = o->child;
    progress.terminal = isatty(STDERR_FILENO);
    progress.start_ns = bench_now_ns();
    progress.total = (double)case_count * (double)impl_count * runs_per_case;
    progress.done = 0;
}

static double elapsed_seconds(void)
{
    return (double)(bench_now_ns() - progress.start_ns) / 1e9;
}

/* Seconds still to go, or a negative value before anything was done. */
static double seconds_left(void)
{
    if (progress.done <= 0)
        return -1;
    double to_go = progress.total - progress.done;
    return to_go > 0 ? elapsed_seconds() * to_go / progress.done : 0;
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
    duration(elapsed, sizeof elapsed, elapsed_seconds());
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

void progress_step(const char *label, const char *impl, unsigned k, unsigned n, bool warmup)
{
    if (!progress.on)
        return;
    if (progress.child) {
        printf("P\t%s\t%s\t%u\t%u\t%d\n", label, impl, k, n, warmup);
        fflush(stdout);
        return;
    }
    progress.done++;
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
    progress.done += runs;
}

/* A "P" or "S" record from a helper; false when the line is neither. */
bool progress_record(const char *line)
{
    char label[BENCH_NAME_SIZE], impl[BENCH_NAME_SIZE];
    unsigned k, n;
    int warmup;
    if (sscanf(line, "P\t%31[^\t]\t%31[^\t]\t%u\t%u\t%d", label, impl, &k, &n, &warmup) == 5) {
        progress_step(label, impl, k, n, warmup != 0);
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
