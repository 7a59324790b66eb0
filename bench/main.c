/* SPDX-License-Identifier: MIT */
/* mempool-bench: mempool side by side with other allocators and pools.
 *
 * The driver runs the implementations linked into it, then each helper
 * process (same program, other adapters), and prints one merged table. With
 * --child it is a helper: it prints records for its parent instead. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define MAX_CATALOG 64

static void run_linked(const struct options *o, struct results *r)
{
    struct bench_case cases[64];
    size_t case_count = bench_cases(o, cases, 64);
    for (size_t i = 0; i < bench_impl_count(); i++) {
        const struct bench_impl *impl = bench_impl_at(i);
        if (bench_listed(o->impls, impl->name))
            bench_run_impl(impl, o, cases, case_count, r);
    }
}

/* --list: every implementation, whether it can run, and where. */
static void print_catalog(const struct catalog_entry *catalog, size_t count)
{
    printf("%-18s %-9s %s\n", "implementation", "available", "runs in / how to get it");
    for (size_t i = 0; i < count; i++) {
        const struct catalog_entry *e = &catalog[i];
        char where[160];
        if (e->available && e->helper[0])
            snprintf(where, sizeof where, "helper process mempool-bench-%s", e->helper);
        else if (e->available)
            snprintf(where, sizeof where, "mempool-bench itself");
        else if (e->package[0])
            snprintf(where, sizeof where, "not found when built: apt-get install %s, then rebuild",
                     e->package);
        else
            snprintf(where, sizeof where, "helper mempool-bench-%s did not run", e->helper);
        printf("%-18s %-9s %s\n", e->name, e->available ? "yes" : "no", where);
    }
}

/* A skipped line for each selected implementation whose library was not
 * found when the benchmark was built. */
static void report_missing(const struct options *o, const struct catalog_entry *catalog,
                           size_t count, struct results *r)
{
    for (size_t i = 0; i < count; i++)
        if (!catalog[i].available && catalog[i].package[0] &&
            bench_listed(o->impls, catalog[i].name))
            results_line(r, "skip %s: not found when built (apt-get install %s, then rebuild)",
                         catalog[i].name, catalog[i].package);
}

/* The note of each selected scenario that has one, once. */
static void scenario_notes(const struct options *o, struct results *r)
{
    struct bench_case cases[64];
    size_t case_count = bench_cases(o, cases, 64);
    for (size_t i = 0; i < case_count; i++) {
        const struct scenario *s = cases[i].scenario;
        bool first = true;
        for (size_t k = 0; k < i && first; k++)
            first = cases[k].scenario != s;
        if (first && s->note && (!o->callgrind || s->single_thread))
            results_line(r, "note %s", s->note);
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

/* Progress counts the selected implementations that can run, over the
 * cases they will run (callgrind: the single-thread ones, once each). */
static void start_progress(const struct options *o, const struct catalog_entry *catalog,
                           size_t count)
{
    struct bench_case cases[64];
    size_t case_count = bench_cases(o, cases, 64), kept = 0, impls = 0;
    for (size_t i = 0; i < case_count; i++)
        kept += !o->callgrind || cases[i].scenario->single_thread;
    for (size_t i = 0; i < count; i++)
        impls += catalog[i].available && bench_listed(o->impls, catalog[i].name);
    progress_init(o, kept, impls, o->callgrind ? 1 : o->warmups + o->repetitions);
}

int main(int argc, char **argv)
{
    struct options o;
    if (bench_parse(argc, argv, &o) != 0)
        return 2;
    if (o.child) {
        if (o.list) {
            for (size_t i = 0; i < bench_impl_count(); i++)
                printf("%s\n", bench_impl_at(i)->name);
            return 0;
        }
        progress_init(&o, 0, 0, 0);
        if (o.pin)
            bench_pin(0);
        struct results r = {0};
        run_linked(&o, &r);
        results_emit(&r, stdout);
        results_free(&r);
        return 0;
    }
    struct catalog_entry catalog[MAX_CATALOG];
    size_t count = bench_catalog(catalog, MAX_CATALOG);
    if (o.list) {
        print_catalog(catalog, count);
        return 0;
    }
    if (bench_validate(&o, catalog, count) != 0)
        return 2;
    if (o.pin)
        bench_pin(0);
    start_progress(&o, catalog, count);
    struct results r = {0};
    report_system(&r);
    if (!o.callgrind)
        results_line(&r, "system block size: %zu bytes; %zu blocks per repetition, %u "
                         "repetitions after %u warm-up%s", o.block_size, o.iterations,
                     o.repetitions, o.warmups, o.pin ? "; threads pinned" : "; threads not pinned");
    const char *title = "mempool-bench: time per operation, lower is better (Mpairs/s: higher)";
    if (o.callgrind) {
        helpers_callgrind(&o, catalog, count, &r);
        title = "mempool-bench --callgrind: instructions per get+put, lower is better";
        r.unit = "Ir/get+put";
    } else {
        run_linked(&o, &r);
        helpers_run(&o, &r);
    }
    scenario_notes(&o, &r);
    report_missing(&o, catalog, count, &r);
    progress_end();
    report_table(&r, stdout, title);
    int status = write_outputs(&o, &r);
    results_free(&r);
    return status;
}
