/* SPDX-License-Identifier: MIT */
/* mempool-bench: mempool side by side with other allocators and pools.
 *
 * The driver runs the implementations linked into it, then each helper
 * process (same program, other adapters), and prints one merged table. With
 * --child it is a helper: it prints records for its parent instead. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"

static bool progress_shown;

/* One status line on stderr, rewritten in place on a terminal. */
void bench_progress(const char *format, ...)
{
    if (!isatty(STDERR_FILENO))
        return;
    va_list args;
    va_start(args, format);
    fprintf(stderr, "\r\033[K[mempool-bench] ");
    vfprintf(stderr, format, args);
    va_end(args);
    progress_shown = true;
}

void bench_progress_done(void)
{
    if (progress_shown)
        fprintf(stderr, "\r\033[K");
    progress_shown = false;
}

static void run_linked(const struct options *o, struct results *r)
{
    struct bench_case cases[64];
    size_t case_count = bench_cases(o, cases, 64);
    for (size_t i = 0; i < bench_impl_count(); i++) {
        const struct bench_impl *impl = bench_impl_at(i);
        if (bench_listed(o->impls, impl->name)) {
            if (!o->child && !isatty(STDERR_FILENO))
                fprintf(stderr, "[mempool-bench] %s\n", impl->name);
            bench_run_impl(impl, o, cases, case_count, r);
        }
    }
}

static int write_outputs(const struct options *o, const struct results *r)
{
    int failed = 0;
    if (o->csv)
        failed |= report_csv(r, o->csv);
    if (o->json)
        failed |= report_json(r, o->json);
    if (o->plot)
        failed |= report_plot(r, o->plot);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (bench_parse(argc, argv, &o) != 0)
        return 2;
    if (o.list) {
        for (size_t i = 0; i < bench_impl_count(); i++)
            printf("%s\n", bench_impl_at(i)->name);
        return 0;
    }
    if (o.pin)
        bench_pin(0);
    struct results r = {0};
    if (o.child) {
        run_linked(&o, &r);
        results_emit(&r, stdout);
        results_free(&r);
        return 0;
    }
    report_system(&r);
    if (!o.callgrind)
        results_line(&r, "system block size: %zu bytes; %zu blocks per repetition, %u "
                         "repetitions after %u warm-up%s", o.block_size, o.iterations,
                     o.repetitions, o.warmups, o.pin ? "; threads pinned" : "; threads not pinned");
    const char *title = "mempool-bench: time per block (get+put), lower is better";
    if (o.callgrind) {
        helpers_callgrind(&o, &r);
        title = "mempool-bench --callgrind: instructions per block (get+put), lower is better";
        r.unit = "Ir/block";
    } else {
        run_linked(&o, &r);
        helpers_run(&o, &r);
    }
    bench_progress_done();
    report_table(&r, stdout, title);
    int status = write_outputs(&o, &r);
    results_free(&r);
    return status;
}
