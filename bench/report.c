/* SPDX-License-Identifier: MIT */
/* The outputs: the aligned table, CSV and JSON, each with the system facts
 * (CPU, cores, compiler, library versions) that make a figure mean anything. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#if defined(__clang__)
#define COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "unknown"
#endif

static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *info = fopen("/proc/cpuinfo", "r");
    if (!info)
        return;
    char line[256];
    while (fgets(line, sizeof line, info)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(out, size, "%s", colon + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    fclose(info);
}

/* Adds "system KEY: VALUE" facts for this machine and build. */
void report_system(struct results *r)
{
    char cpu[128], date[32];
    struct utsname host;
    time_t now = time(NULL);
    cpu_model(cpu, sizeof cpu);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    uname(&host);
    results_line(r, "system date: %s", date);
    results_line(r, "system cpu: %s", cpu);
    results_line(r, "system cores: %ld", sysconf(_SC_NPROCESSORS_ONLN));
    results_line(r, "system kernel: %s %s", host.sysname, host.release);
    results_line(r, "system compiler: %s", COMPILER);
}

static bool is_ours(const char *impl)
{
    return strncmp(impl, "mempool", 7) == 0;
}

/* The best median among the other implementations for this case, 0: none. */
static double best_peer(const struct results *r, const char *label)
{
    double best = 0;
    for (size_t i = 0; i < r->count; i++) {
        const struct row *w = &r->rows[i];
        if (!w->na && !is_ours(w->impl) && strcmp(w->label, label) == 0 &&
            (best == 0 || w->median < best))
            best = w->median;
    }
    return best;
}

static const char *unit_of(const struct results *r, const struct scenario *s)
{
    return r->unit ? r->unit : s ? s->unit : "";
}

static const char *number(char *out, size_t size, double v)
{
    if (isnan(v))
        snprintf(out, size, "-");
    else
        snprintf(out, size, v < 10 ? "%.2f" : v < 10000 ? "%.1f" : "%.0f", v);
    return out;
}

/* An extra column is as wide as its heading, and at least 14. */
static int extra_width(const char *label)
{
    int width = (int)strlen(label);
    return width < 14 ? 14 : width;
}

/* True when no earlier row has this label: the labels in first-seen order
 * are the cases in table order. */
static bool first_of_label(const struct results *r, size_t index)
{
    for (size_t i = 0; i < index; i++)
        if (strcmp(r->rows[i].label, r->rows[index].label) == 0)
            return false;
    return true;
}

static void table_case(const struct results *r, const char *label, FILE *to)
{
    const struct scenario *s = bench_scenario_of(label);
    double best = best_peer(r, label);
    fprintf(to, "\n%s: %s\n", label, s ? s->description : "");
    fprintf(to, "  %-18s %13s %21s %9s", "implementation", unit_of(r, s), "min-max",
            "vs peer");
    for (int e = 0; e < BENCH_EXTRAS; e++)
        if (s && s->extra_label[e])
            fprintf(to, " %*s", extra_width(s->extra_label[e]), s->extra_label[e]);
    fputc('\n', to);
    for (size_t i = 0; i < r->count; i++) {
        const struct row *w = &r->rows[i];
        if (strcmp(w->label, label) != 0)
            continue;
        if (w->na) {
            fprintf(to, "  %-18s %13s\n", w->impl, "n/a");
            continue;
        }
        char a[32], b[32], c[32], range[64], ratio[32] = "-";
        snprintf(range, sizeof range, "%s-%s", number(a, sizeof a, w->min),
                 number(b, sizeof b, w->max));
        if (best > 0)
            snprintf(ratio, sizeof ratio, "%.2f", w->median / best);
        fprintf(to, "  %-18s %13s %21s %9s", w->impl, number(c, sizeof c, w->median), range,
                ratio);
        for (int e = 0; e < BENCH_EXTRAS; e++)
            if (s && s->extra_label[e])
                fprintf(to, " %*s", extra_width(s->extra_label[e]),
                        number(a, sizeof a, w->extra[e]));
        fputc('\n', to);
    }
}

void report_table(const struct results *r, FILE *to, const char *title)
{
    fprintf(to, "%s\n", title);
    for (size_t i = 0; i < r->line_count; i++)
        if (strncmp(r->lines[i], "system ", 7) == 0)
            fprintf(to, "  %s\n", r->lines[i] + 7);
    for (size_t i = 0; i < r->line_count; i++)
        if (strncmp(r->lines[i], "version ", 8) == 0)
            fprintf(to, "  version %s\n", r->lines[i] + 8);
    fprintf(to, "vs peer: median divided by the best median among the non-mempool "
                "implementations (below 1: mempool is ahead)\n");
    for (size_t i = 0; i < r->count; i++)
        if (first_of_label(r, i))
            table_case(r, r->rows[i].label, to);
    fputc('\n', to);
    for (size_t i = 0; i < r->line_count; i++)
        if (strncmp(r->lines[i], "note ", 5) == 0)
            fprintf(to, "note: %s\n", r->lines[i] + 5);
    for (size_t i = 0; i < r->line_count; i++)
        if (strncmp(r->lines[i], "skip ", 5) == 0)
            fprintf(to, "skipped: %s\n", r->lines[i] + 5);
}

static FILE *open_output(const char *path)
{
    FILE *to = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!to)
        perror(path);
    return to;
}

static int close_output(FILE *to)
{
    int failed = ferror(to);
    if (to == stdout)
        return fflush(to) || failed ? -1 : 0;
    return fclose(to) || failed ? -1 : 0;
}

int report_csv(const struct results *r, const char *path)
{
    FILE *to = open_output(path);
    if (!to)
        return -1;
    for (size_t i = 0; i < r->line_count; i++)
        fprintf(to, "# %s\n", r->lines[i]);
    fprintf(to, "case,scenario,implementation,unit,median,min,max,vs_peer");
    for (int e = 1; e <= BENCH_EXTRAS; e++)
        fprintf(to, ",extra%d_name,extra%d", e, e);
    fputc('\n', to);
    for (size_t i = 0; i < r->count; i++) {
        const struct row *w = &r->rows[i];
        const struct scenario *s = bench_scenario_of(w->label);
        double best = best_peer(r, w->label);
        fprintf(to, "%s,%s,%s,%s,", w->label, s ? s->name : "", w->impl, unit_of(r, s));
        if (w->na)
            fprintf(to, ",,,");
        else
            fprintf(to, "%.4g,%.4g,%.4g,%.4g", w->median, w->min, w->max,
                    best > 0 ? w->median / best : 0.0);
        /* Each extra: its name where the scenario has it, its value where
         * it was measured; empty fields otherwise. */
        for (int e = 0; e < BENCH_EXTRAS; e++) {
            const char *name = s && s->extra_label[e] ? s->extra_label[e] : "";
            fprintf(to, ",%s,", w->na ? "" : name);
            if (!w->na && name[0] && !isnan(w->extra[e]))
                fprintf(to, "%.4g", w->extra[e]);
        }
        fputc('\n', to);
    }
    return close_output(to);
}

/* Writes `text` as a JSON string. */
static void json_string(FILE *to, const char *text)
{
    fputc('"', to);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(to, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(to, "\\u%04x", *c);
        else
            fputc(*c, to);
    }
    fputc('"', to);
}

/* The facts whose line starts with `prefix`, as a JSON array of strings. */
static void json_lines(FILE *to, const struct results *r, const char *key, const char *prefix)
{
    size_t length = strlen(prefix);
    const char *separator = "";
    fprintf(to, "  \"%s\": [", key);
    for (size_t i = 0; i < r->line_count; i++)
        if (strncmp(r->lines[i], prefix, length) == 0) {
            fputs(separator, to);
            json_string(to, r->lines[i] + length);
            separator = ", ";
        }
    fprintf(to, "],\n");
}

int report_json(const struct results *r, const char *path)
{
    FILE *to = open_output(path);
    if (!to)
        return -1;
    fprintf(to, "{\n");
    json_lines(to, r, "system", "system ");
    json_lines(to, r, "versions", "version ");
    json_lines(to, r, "notes", "note ");
    json_lines(to, r, "skipped", "skip ");
    fprintf(to, "  \"results\": [");
    for (size_t i = 0; i < r->count; i++) {
        const struct row *w = &r->rows[i];
        const struct scenario *s = bench_scenario_of(w->label);
        double best = best_peer(r, w->label);
        fprintf(to, "%s\n    {\"case\": ", i ? "," : "");
        json_string(to, w->label);
        fprintf(to, ", \"implementation\": ");
        json_string(to, w->impl);
        fprintf(to, ", \"unit\": ");
        json_string(to, unit_of(r, s));
        if (w->na) {
            fprintf(to, ", \"available\": false}");
            continue;
        }
        fprintf(to, ", \"available\": true, \"median\": %.6g, \"min\": %.6g, \"max\": %.6g",
                w->median, w->min, w->max);
        if (best > 0)
            fprintf(to, ", \"vs_peer\": %.4g", w->median / best);
        for (int e = 0; e < BENCH_EXTRAS; e++)
            if (s && s->extra_label[e]) {
                fprintf(to, ", ");
                json_string(to, s->extra_label[e]);
                if (isnan(w->extra[e]))
                    fprintf(to, ": null"); /* not counted for this implementation */
                else
                    fprintf(to, ": %.6g", w->extra[e]);
            }
        fputc('}', to);
    }
    fprintf(to, "\n  ]\n}\n");
    return close_output(to);
}
