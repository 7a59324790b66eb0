/* SPDX-License-Identifier: MIT */
/* What the parts of mempool-bench share: options, scenarios, results. */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "adapter.h"

#define BENCH_MAX_THREADS 64
#define BENCH_NAME_SIZE 32
/* Figures a scenario may report beside its value. */
#define BENCH_EXTRAS 5

struct options {
    const char *scenarios;   /* comma-separated names or case labels; NULL: all */
    const char *impls;       /* comma-separated implementation names; NULL: all */
    unsigned threads[16];    /* thread counts for `parallel`; none: 1, 2, 4 .. 2 x CPUs */
    size_t thread_count;
    size_t iterations;       /* blocks per repetition, split over the threads */
    size_t handoffs;         /* hand-offs per repetition in `handoff` */
    unsigned repetitions;
    unsigned warmups;
    size_t block_size;
    bool pin;
    bool child;              /* print records for a parent process, no table */
    bool list;               /* print the implementations and stop */
    bool quiet;              /* no progress on stderr */
    bool callgrind;
    const char *csv, *json, *plot; /* output files; "-" is stdout */
};

/* Everything a scenario needs for one case. */
struct params {
    size_t block_size;
    size_t iterations;
    size_t handoffs;
    unsigned threads;
    size_t arg;              /* burst and bulk size */
    size_t capacity;         /* the pool's */
    bool pin;
};

/* One repetition's figures. An extra the implementation cannot report is
 * NAN, printed as "-". */
struct sample {
    double value;            /* in the scenario's unit */
    double extra[BENCH_EXTRAS];
};

struct scenario {
    const char *name;
    const char *description;
    const char *unit;        /* what the value measures: the column heading */
    const char *extra_label[BENCH_EXTRAS]; /* NULL: no such column */
    size_t capacity;         /* pool capacity for this scenario */
    bool single_thread;      /* measured under callgrind */
    bool arg_is_threads;     /* the case argument is the thread count */
    bool needs_wait, needs_bulk;
    /* Runs one repetition; 0 or an errno value. */
    int (*run)(const struct bench_impl *impl, void *pool, const struct params *p,
               struct sample *out);
    const char *note;        /* printed under the table when it ran; optional */
    size_t block_size;       /* the scenario's own block size; 0: --block-size */
};

struct bench_case {
    const struct scenario *scenario;
    size_t arg;              /* burst/bulk size or thread count, 0: none */
    char label[BENCH_NAME_SIZE]; /* "burst/32", "parallel/4" */
};

/* One line of the result table. */
struct row {
    char label[BENCH_NAME_SIZE];
    char impl[BENCH_NAME_SIZE];
    bool na;                 /* the implementation cannot do this */
    double median, min, max;
    double extra[BENCH_EXTRAS]; /* the median repetition's */
};

/* A growing list of rows and the facts reported with them. */
struct results {
    struct row *rows;
    size_t count, allocated;
    char **lines;            /* "version impl text", "note text", "skip text" */
    size_t line_count;
    const char *unit;        /* replaces every scenario's unit when set */
};

/* Every implementation this build knows of: linked into this program, run
 * in a helper process, or missing because its library was not found. */
struct catalog_entry {
    char name[BENCH_NAME_SIZE];
    char helper[BENCH_NAME_SIZE]; /* "" when linked in */
    char package[64];             /* missing: the Debian package that brings it */
    bool available;
};

/* registry.c */
size_t bench_impl_count(void);
const struct bench_impl *bench_impl_at(size_t i);
bool bench_listed(const char *list, const char *name);
int bench_impl_order(const char *x, const char *y);

/* options.c */
int bench_parse(int argc, char **argv, struct options *o);
int bench_validate(const struct options *o, const struct catalog_entry *catalog, size_t count);
void bench_usage(FILE *to);

/* scenarios.c */
size_t bench_cases(const struct options *o, struct bench_case *out, size_t max);
void bench_run_impl(const struct bench_impl *impl, const struct options *o,
                    const struct bench_case *cases, size_t case_count, struct results *r);
extern const struct scenario bench_scenarios[];
extern const size_t bench_scenario_count;

/* single.c: the single-thread loops, also the bodies of the thread workers */
void loop_pair(const struct bench_impl *impl, void *pool, size_t n);
int single_pair(const struct bench_impl *, void *, const struct params *, struct sample *);
int single_burst(const struct bench_impl *, void *, const struct params *, struct sample *);
int single_bulk(const struct bench_impl *, void *, const struct params *, struct sample *);
int single_large(const struct bench_impl *, void *, const struct params *, struct sample *);
uint64_t bench_now_ns(void);
void bench_touch(void *block, size_t i);
_Noreturn void bench_fail(const struct bench_impl *impl, const char *what);

/* threads.c, handoff.c */
int threads_parallel(const struct bench_impl *, void *, const struct params *, struct sample *);
int threads_pipeline(const struct bench_impl *, void *, const struct params *, struct sample *);
int threads_handoff(const struct bench_impl *, void *, const struct params *, struct sample *);
typedef void (*worker_body)(const struct bench_impl *impl, void *pool, unsigned index,
                            void *shared);
uint64_t bench_threads(const struct bench_impl *impl, void *pool, unsigned n, bool pin,
                       worker_body body, void *shared);
void bench_pin(unsigned index);

/* syscalls.c: the calls made through syscall(3) so far, by every thread of
 * the process */
struct syscall_counts {
    uint64_t barriers;       /* membarrier MEMBARRIER_CMD_PRIVATE_EXPEDITED */
    uint64_t futex_waits;    /* FUTEX_WAIT and FUTEX_WAIT_BITSET */
    uint64_t futex_wakes;    /* FUTEX_WAKE and FUTEX_WAKE_BITSET */
};
struct syscall_counts bench_syscall_counts(void);

/* results.c */
struct row *results_add(struct results *r);
void results_line(struct results *r, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
void results_free(struct results *r);
void results_emit(const struct results *r, FILE *to);   /* records for a parent */
int results_absorb(struct results *r, FILE *from, bool progress); /* records from a child */
const struct scenario *bench_scenario_of(const char *label);

/* report.c */
void report_table(const struct results *r, FILE *to, const char *title);
int report_csv(const struct results *r, const char *path);
int report_json(const struct results *r, const char *path);
int report_plot(const struct results *r, const char *path);
void report_system(struct results *r);

/* helpers.c */
size_t bench_catalog(struct catalog_entry *out, size_t max);
void helpers_run(const struct options *o, struct results *r);
void helpers_callgrind(const struct options *o, const struct catalog_entry *catalog,
                       size_t count, struct results *r);
const char *bench_self_dir(void);

/* progress.c: runs_per_case is warm-ups plus repetitions */
void progress_init(const struct options *o, size_t case_count, size_t impl_count,
                   unsigned runs_per_case);
void progress_step(const char *label, const char *impl, unsigned k, unsigned n, bool warmup);
void progress_skip(const char *label, const char *impl, unsigned runs);
bool progress_record(const char *line);
void progress_end(void);

#endif
