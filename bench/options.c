/* SPDX-License-Identifier: MIT */
/* Command-line options. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* How long the quick preset takes with every peer installed, measured on
 * two cores; --duration scales the counts from it. */
#define QUICK_SECONDS 100

void bench_usage(FILE *to)
{
    fprintf(to,
            "usage: mempool-bench [options]\n"
            "  --quick             the default: the whole run takes about %d s on two cores\n"
            "                      with every peer installed\n"
            "  --smoke             a few thousand operations per scenario (seconds)\n"
            "  --scenario LIST     pair,burst,parallel,pipeline,oversubscribed,handoff,\n"
            "                      handoff-cached,bulk or cases such as burst/32, bulk/8\n"
            "  --impl LIST         implementations (--list shows them)\n"
            "  --threads LIST      thread counts for parallel (default 1,2,4.. 2 x CPUs)\n"
            "  --duration S        scale the counts so the whole run takes about S seconds\n"
            "                      (counts stay equal for every implementation)\n"
            "  --iterations N      blocks per repetition, the same for all implementations\n"
            "  --handoffs N        hand-offs per repetition in handoff, handoff-cached\n"
            "  --repetitions N     measured repetitions (median, min, max)\n"
            "  --warmups N         unmeasured repetitions first\n"
            "  --block-size N      bytes per block (default 64)\n"
            "  --pin               pin thread i to CPU i mod CPUs\n"
            "  --csv FILE          also write CSV (- for stdout)\n"
            "  --json FILE         also write JSON (- for stdout)\n"
            "  --plot FILE         SVG with one panel per scenario\n"
            "  --callgrind         instructions per operation of the single-thread\n"
            "                      scenarios, under valgrind --tool=callgrind\n"
            "  --quiet             no progress on stderr\n"
            "  --list              print every implementation, whether it is available\n"
            "                      and the package that brings it, and exit\n"
            "  --help              print this and exit\n"
            "An unknown option, implementation or scenario exits with status 2.\n",
            QUICK_SECONDS);
}

static int number(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || v == 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int thread_list(const char *text, struct options *o)
{
    o->thread_count = 0;
    for (const char *item = text; *item;) {
        size_t t;
        char buf[16];
        size_t length = strcspn(item, ",");
        if (length >= sizeof buf || o->thread_count == 16)
            return -1;
        memcpy(buf, item, length);
        buf[length] = '\0';
        if (number(buf, &t) || t > BENCH_MAX_THREADS)
            return -1;
        o->threads[o->thread_count++] = (unsigned)t;
        item += length + (item[length] == ',');
    }
    return o->thread_count ? 0 : -1;
}

static void preset(struct options *o, bool smoke)
{
    o->iterations = smoke ? 4000 : 1000000;
    o->handoffs = smoke ? 100 : 2000;
    o->repetitions = smoke ? 2 : 5;
    o->warmups = 1;
}

/* 0, or -1 after printing what is wrong. */
int bench_parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.block_size = 64};
    preset(o, false);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t n = 0;
        bool takes_value = true;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            bench_usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--quick") || !strcmp(a, "--smoke"))
            preset(o, a[2] == 's'), takes_value = false;
        else if (!strcmp(a, "--pin"))
            o->pin = true, takes_value = false;
        else if (!strcmp(a, "--child"))
            o->child = true, takes_value = false;
        else if (!strcmp(a, "--list"))
            o->list = true, takes_value = false;
        else if (!strcmp(a, "--quiet"))
            o->quiet = true, takes_value = false;
        else if (!strcmp(a, "--callgrind"))
            o->callgrind = true, takes_value = false;
        else if (!v)
            bad = 1;
        else if (!strcmp(a, "--scenario"))
            o->scenarios = v;
        else if (!strcmp(a, "--impl"))
            o->impls = v;
        else if (!strcmp(a, "--csv"))
            o->csv = v;
        else if (!strcmp(a, "--json"))
            o->json = v;
        else if (!strcmp(a, "--plot"))
            o->plot = v;
        else if (!strcmp(a, "--threads"))
            bad = thread_list(v, o);
        else if ((bad = number(v, &n)) != 0)
            ;
        else if (!strcmp(a, "--duration")) {
            /* Relative to the quick preset: the same counts for everyone,
             * just more or fewer of them. */
            o->iterations = n * 1000000 / QUICK_SECONDS ? n * 1000000 / QUICK_SECONDS : 1;
            o->handoffs = n * 2000 / QUICK_SECONDS ? n * 2000 / QUICK_SECONDS : 1;
        } else if (!strcmp(a, "--iterations"))
            o->iterations = n;
        else if (!strcmp(a, "--handoffs"))
            o->handoffs = n;
        else if (!strcmp(a, "--repetitions"))
            o->repetitions = n > 64 ? 64 : (unsigned)n;
        else if (!strcmp(a, "--warmups"))
            o->warmups = n > 64 ? 64 : (unsigned)n;
        else if (!strcmp(a, "--block-size"))
            o->block_size = n;
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "mempool-bench: bad option or value: %s%s%s\n", a,
                    takes_value && v ? " " : "", takes_value && v ? v : "");
            bench_usage(stderr);
            return -1;
        }
        i += takes_value;
    }
    return 0;
}

/* Each comma-separated item of `list` must be one of `names`: 0, or -1
 * after naming the item and every valid choice. */
static int check_list(const char *list, const char *what, const char *const *names,
                      size_t count)
{
    for (const char *item = list; item;) {
        size_t length = strcspn(item, ",");
        bool known = false;
        for (size_t i = 0; i < count && !known; i++)
            known = strlen(names[i]) == length && strncmp(names[i], item, length) == 0;
        if (!known) {
            fprintf(stderr, "mempool-bench: unknown %s: '%.*s'; choose from:", what,
                    (int)length, item);
            for (size_t i = 0; i < count; i++)
                fprintf(stderr, "%s %s", i ? "," : "", names[i]);
            fputc('\n', stderr);
            return -1;
        }
        item = item[length] ? item + length + 1 : NULL;
    }
    return 0;
}

static bool already(const char *const *names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* --impl against the catalog, --scenario against the scenarios and their
 * cases: 0, or -1 after saying what is wrong. */
int bench_validate(const struct options *o, const struct catalog_entry *catalog, size_t count)
{
    const char *names[96];
    size_t n = 0;
    for (size_t i = 0; i < count && n < 96; i++)
        names[n++] = catalog[i].name;
    if (o->impls && check_list(o->impls, "implementation", names, n))
        return -1;
    struct options all = *o;
    all.scenarios = NULL;
    struct bench_case cases[64];
    size_t case_count = bench_cases(&all, cases, 64);
    n = 0;
    for (size_t i = 0; i < bench_scenario_count; i++)
        names[n++] = bench_scenarios[i].name;
    for (size_t i = 0; i < case_count && n < 96; i++)
        if (!already(names, n, cases[i].label))
            names[n++] = cases[i].label;
    if (o->scenarios && check_list(o->scenarios, "scenario", names, n))
        return -1;
    return 0;
}
