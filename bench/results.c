/* SPDX-License-Identifier: MIT */
/* The result rows and facts of one run, and their exchange between a helper
 * process and the driver: one tab-separated record per line on the helper's
 * stdout ("R" rows, "L" facts, and "P"/"S" progress as it goes), so the
 * driver merges helpers without knowing what they measured. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct row *results_add(struct results *r)
{
    if (r->count == r->allocated) {
        size_t allocated = r->allocated ? 2 * r->allocated : 64;
        struct row *rows = realloc(r->rows, allocated * sizeof *rows);
        if (!rows) {
            perror("mempool-bench");
            exit(2);
        }
        r->rows = rows;
        r->allocated = allocated;
    }
    struct row *row = &r->rows[r->count++];
    memset(row, 0, sizeof *row);
    return row;
}

void results_line(struct results *r, const char *format, ...)
{
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    char **lines = realloc(r->lines, (r->line_count + 1) * sizeof *lines);
    if (!lines || !(lines[r->line_count] = strdup(text))) {
        perror("mempool-bench");
        exit(2);
    }
    r->lines = lines;
    r->line_count++;
}

void results_free(struct results *r)
{
    for (size_t i = 0; i < r->line_count; i++)
        free(r->lines[i]);
    free(r->lines);
    free(r->rows);
    memset(r, 0, sizeof *r);
}

void results_emit(const struct results *r, FILE *to)
{
    for (size_t i = 0; i < r->count; i++) {
        const struct row *w = &r->rows[i];
        fprintf(to, "R\t%s\t%s\t%d\t%.17g\t%.17g\t%.17g", w->label, w->impl, w->na,
                w->median, w->min, w->max);
        for (int e = 0; e < BENCH_EXTRAS; e++)
            fprintf(to, "\t%.17g", w->extra[e]);
        fputc('\n', to);
    }
    for (size_t i = 0; i < r->line_count; i++)
        fprintf(to, "L\t%s\n", r->lines[i]);
    fflush(to);
}

/* An "R" record into w: 0, or -1 when it is not one. */
static int parse_row(const char *line, struct row *w)
{
    int na = 0, end = 0;
    if (sscanf(line, "R\t%31[^\t]\t%31[^\t]\t%d\t%lg\t%lg\t%lg%n", w->label, w->impl, &na,
               &w->median, &w->min, &w->max, &end) != 6 || !end)
        return -1;
    w->na = na != 0;
    const char *p = line + end;
    for (int e = 0; e < BENCH_EXTRAS; e++) {
        char *next;
        if (*p != '\t')
            return -1;
        w->extra[e] = strtod(p + 1, &next);
        if (next == p + 1)
            return -1;
        p = next;
    }
    return *p ? -1 : 0;
}

/* Reads a helper's records, passing its progress on when `progress` is set;
 * 0, or -1 when a line is not a record. */
int results_absorb(struct results *r, FILE *from, bool progress)
{
    char line[1024];
    int bad = 0;
    while (fgets(line, sizeof line, from)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "L\t", 2) == 0) {
            results_line(r, "%s", line + 2);
            continue;
        }
        if ((line[0] == 'P' || line[0] == 'S') && line[1] == '\t') {
            if (progress)
                progress_record(line);
            continue;
        }
        if (parse_row(line, results_add(r)) != 0) {
            r->count--;
            bad = -1;
        }
    }
    return bad;
}

/* The scenario a case label belongs to ("burst/32" -> burst). */
const struct scenario *bench_scenario_of(const char *label)
{
    size_t length = strcspn(label, "/");
    for (size_t i = 0; i < bench_scenario_count; i++)
        if (strlen(bench_scenarios[i].name) == length &&
            strncmp(bench_scenarios[i].name, label, length) == 0)
            return &bench_scenarios[i];
    return NULL;
}
