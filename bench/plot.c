/* SPDX-License-Identifier: MIT */
/* --plot: every scenario as a small multiple, in one SVG file.
 *
 * One panel per scenario, all on the same grid, with the legend in a cell
 * of its own. Each implementation keeps one colour and one marker in every
 * panel (by its place in the table order); mempool is drawn last, larger
 * and with a heavier line, so it stands out. A point is the median, its
 * bar runs from min to max. A panel whose values span more than 10x has a
 * log axis. Scenarios with several cases (burst sizes, thread counts) put
 * the case on the x axis and join each implementation's points; the others
 * put the implementations side by side. Under each panel, a note names the
 * implementations that could not run some or all of its cases, and why.
 * The caption gives the machine, the compiler and the date. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MAX_IMPLS 24
#define MAX_PANEL_CASES 16
#define COLUMNS 4
#define CELL_W 300.0
#define CELL_H 340.0
#define TOP 56.0          /* below the title */
#define PLOT_LEFT 58.0    /* plot area inside a cell */
#define PLOT_TOP 42.0
#define PLOT_W 226.0
#define PLOT_H 160.0

struct style {
    const char *colour;
    int shape;            /* 0 circle, 1 square, 2 diamond, 3 up, 4 down, 5 hexagon */
    bool hollow, ours;
};

/* Names in catalog order (ours first, then by name), whatever the order of
 * the rows: the index is the style, the same in every plot of a build. */
struct impls {
    const char *name[MAX_IMPLS];
    size_t count;
};

static const char *const COLOURS[] = {
    "#d62728", "#ff7f0e", "#e377c2", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b",
    "#17becf", "#7f7f7f", "#bcbd22", "#000000", "#0b3d91",
};

static struct style style_of(const struct impls *all, const char *impl)
{
    size_t i = 0;
    while (i < all->count && strcmp(all->name[i], impl) != 0)
        i++;
    struct style s = {COLOURS[i % (sizeof COLOURS / sizeof *COLOURS)], (int)(i % 6),
                      i / 6 % 2 == 1, strcmp(impl, "mempool") == 0};
    return s;
}

static int name_order(const void *a, const void *b)
{
    return bench_impl_order(*(const char *const *)a, *(const char *const *)b);
}

static void collect_impls(const struct results *r, struct impls *out)
{
    out->count = 0;
    for (size_t i = 0; i < r->count; i++) {
        size_t k = 0;
        while (k < out->count && strcmp(out->name[k], r->rows[i].impl) != 0)
            k++;
        if (k == out->count && out->count < MAX_IMPLS)
            out->name[out->count++] = r->rows[i].impl;
    }
    qsort(out->name, out->count, sizeof *out->name, name_order);
}

/* Text with &, < and > escaped. */
static void text(FILE *to, const char *s)
{
    for (; *s; s++) {
        if (*s == '&')
            fputs("&amp;", to);
        else if (*s == '<')
            fputs("&lt;", to);
        else if (*s == '>')
            fputs("&gt;", to);
        else
            fputc(*s, to);
    }
}

static void marker(FILE *to, const struct style *s, double x, double y)
{
    double r = s->ours ? 5.5 : 3.8;
    const char *fill = s->hollow ? "white" : s->colour;
    fprintf(to, "<g fill=\"%s\" stroke=\"%s\" stroke-width=\"%s\">", fill, s->colour,
            s->ours ? "2" : "1.4");
    switch (s->shape) {
    case 0:
        fprintf(to, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>", x, y, r);
        break;
    case 1:
        fprintf(to, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>", x - r * 0.9,
                y - r * 0.9, r * 1.8, r * 1.8);
        break;
    case 2:
        fprintf(to, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"/>", x, y - r * 1.2,
                x + r * 1.2, y, x, y + r * 1.2, x - r * 1.2, y);
        break;
    case 3:
    case 4: {
        double d = s->shape == 3 ? 1 : -1;
        fprintf(to, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"/>", x, y - d * r * 1.2,
                x + r * 1.1, y + d * r * 0.7, x - r * 1.1, y + d * r * 0.7);
        break;
    }
    default:
        fprintf(to, "<path d=\"M%.1f %.1f", x + r, y);
        for (int k = 1; k < 6; k++)
            fprintf(to, "L%.1f %.1f", x + r * cos(k * M_PI / 3), y + r * sin(k * M_PI / 3));
        fprintf(to, "Z\"/>");
    }
    fprintf(to, "</g>\n");
}

/* One scenario's rows, as a grid of cases by implementations. */
struct panel {
    const struct scenario *scenario;
    const char *cases[MAX_PANEL_CASES];
    size_t case_count;
    const struct row *cell[MAX_PANEL_CASES][MAX_IMPLS]; /* NULL: no row */
    double lo, hi;        /* over min and max of the rows that ran */
    bool log;
};

static bool collect_panel(const struct results *r, const struct impls *all,
                          const struct scenario *s, struct panel *p)
{
    memset(p, 0, sizeof *p);
    p->scenario = s;
    p->lo = INFINITY;
    p->hi = 0;
    for (size_t i = 0; i < r->count; i++) {
        const struct row *w = &r->rows[i];
        if (bench_scenario_of(w->label) != s)
            continue;
        size_t c = 0, k = 0;
        while (c < p->case_count && strcmp(p->cases[c], w->label) != 0)
            c++;
        if (c == p->case_count) {
            if (c == MAX_PANEL_CASES)
                continue;
            p->cases[p->case_count++] = w->label;
        }
        while (k < all->count && strcmp(all->name[k], w->impl) != 0)
            k++;
        if (k == all->count)
            continue;
        p->cell[c][k] = w;
        if (!w->na && w->min > 0) {
            p->lo = w->min < p->lo ? w->min : p->lo;
            p->hi = w->max > p->hi ? w->max : p->hi;
        }
    }
    if (p->hi <= 0)
        return false;
    p->log = p->hi / p->lo > 10;
    if (p->log) {
        p->lo = pow(10, floor(log10(p->lo)));
        p->hi = pow(10, ceil(log10(p->hi)));
    } else {
        double raw = p->hi / 4, step = pow(10, floor(log10(raw)));
        step *= raw / step > 5 ? 10 : raw / step > 2.5 ? 5 : raw / step > 2 ? 2.5 : raw / step > 1 ? 2 : 1;
        p->lo = 0;
        p->hi = ceil(p->hi / step) * step;
    }
    return true;
}

static bool ran(const struct row *w)
{
    return w && !w->na && w->min > 0;
}

static double y_of(const struct panel *p, double top, double v)
{
    double f = p->log ? (log10(v) - log10(p->lo)) / (log10(p->hi) - log10(p->lo))
                      : (v - p->lo) / (p->hi - p->lo);
    return top + PLOT_H - PLOT_H * f;
}

static void y_axis(FILE *to, const struct panel *p, double left, double top)
{
    fprintf(to, "<g font-size=\"10\" text-anchor=\"end\">\n");
    if (p->log) {
        for (double decade = p->lo; decade <= p->hi * 1.0001; decade *= 10) {
            for (int m = 1; m <= 9 && decade * m <= p->hi * 1.0001; m++) {
                double y = y_of(p, top, decade * m);
                fprintf(to, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                        left, left + PLOT_W, y, y, m == 1 ? "#c8c8c8" : "#ececec");
                if (m == 1 || ((m == 2 || m == 5) && p->hi / p->lo <= 100))
                    fprintf(to, "<text x=\"%.1f\" y=\"%.1f\">%g</text>\n", left - 4, y + 3.5,
                            decade * m);
            }
        }
    } else {
        for (int t = 0; t <= 4; t++) {
            double v = p->lo + (p->hi - p->lo) * t / 4, y = y_of(p, top, v);
            fprintf(to, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#dcdcdc\"/>\n",
                    left, left + PLOT_W, y, y);
            fprintf(to, "<text x=\"%.1f\" y=\"%.1f\">%g</text>\n", left - 4, y + 3.5, v);
        }
    }
    fprintf(to, "</g>\n");
}

static void error_bar(FILE *to, const struct panel *p, double top, double x,
                      const struct row *w, const struct style *s)
{
    double y1 = y_of(p, top, w->min), y2 = y_of(p, top, w->max);
    fprintf(to, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"%s\" "
                "stroke-width=\"%s\" fill=\"none\"/>\n",
            x, y1, y2, x - 3, y1, x + 3, x - 3, y2, x + 3, s->colour, s->ours ? "1.8" : "1");
}

/* Draws implementation k of a panel with several cases: a line through its
 * points, a bar and a marker at each. */
static void draw_series(FILE *to, const struct panel *p, const struct impls *all, size_t k,
                        double left, double top)
{
    struct style s = style_of(all, all->name[k]);
    double slot = PLOT_W / (double)p->case_count;
    double dodge = (double)k - ((double)all->count - 1) / 2;
    double spread = slot * 0.5 / (double)all->count;
    const char *join = "M";
    fprintf(to, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" stroke-opacity=\"%s\" d=\"",
            s.colour, s.ours ? "3" : "1.3", s.ours ? "1" : "0.8");
    for (size_t c = 0; c < p->case_count; c++)
        if (ran(p->cell[c][k])) {
            fprintf(to, "%s%.1f %.1f", join, left + slot * ((double)c + 0.5) + dodge * spread,
                    y_of(p, top, p->cell[c][k]->median));
            join = "L";
        }
    fprintf(to, "\"/>\n");
    for (size_t c = 0; c < p->case_count; c++)
        if (ran(p->cell[c][k])) {
            double x = left + slot * ((double)c + 0.5) + dodge * spread;
            error_bar(to, p, top, x, p->cell[c][k], &s);
            marker(to, &s, x, y_of(p, top, p->cell[c][k]->median));
        }
}

/* The x axis of a panel with several cases: their arguments. */
static void case_axis(FILE *to, const struct panel *p, double left, double top)
{
    double slot = PLOT_W / (double)p->case_count;
    fprintf(to, "<g font-size=\"10\" text-anchor=\"middle\">\n");
    for (size_t c = 0; c < p->case_count; c++) {
        const char *slash = strchr(p->cases[c], '/');
        fprintf(to, "<text x=\"%.1f\" y=\"%.1f\">", left + slot * ((double)c + 0.5),
                top + PLOT_H + 14);
        text(to, slash ? slash + 1 : p->cases[c]);
        fprintf(to, "</text>\n");
    }
    fprintf(to, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n</g>\n", left + PLOT_W / 2,
            top + PLOT_H + 30, p->scenario->arg_is_threads ? "threads" : "blocks per call");
}

/* A panel with one case: the implementations that ran, side by side. */
static void draw_single(FILE *to, const struct panel *p, const struct impls *all, double left,
                        double top)
{
    size_t shown = 0, index = 0;
    for (size_t k = 0; k < all->count; k++)
        shown += ran(p->cell[0][k]);
    double slot = PLOT_W / (double)(shown ? shown : 1);
    /* mempool last, so that it is drawn on top. */
    for (int pass = 0; pass < 2; pass++) {
        index = 0;
        for (size_t k = 0; k < all->count; k++) {
            if (!ran(p->cell[0][k]))
                continue;
            struct style s = style_of(all, all->name[k]);
            double x = left + slot * ((double)index++ + 0.5);
            if (s.ours != (pass == 1))
                continue;
            error_bar(to, p, top, x, p->cell[0][k], &s);
            marker(to, &s, x, y_of(p, top, p->cell[0][k]->median));
            fprintf(to, "<text font-size=\"10\" text-anchor=\"end\"%s "
                        "transform=\"translate(%.1f %.1f) rotate(-40)\">",
                    s.ours ? " font-weight=\"bold\"" : "", x + 3, top + PLOT_H + 10);
            text(to, all->name[k]);
            fprintf(to, "</text>\n");
        }
    }
}

static const char *why_not(const struct scenario *s)
{
    return s->needs_wait ? "cannot block"
           : s->needs_bulk ? "no bulk call"
           : s->arg_is_threads ? "not run with more threads than CPUs"
                               : "not available";
}

/* Appends one word to a note, starting a new line of text when it is full. */
static void note_word(FILE *to, char *line, size_t size, const char *word, double x, double *y)
{
    if (strlen(line) + strlen(word) + 1 > 52 && line[0]) {
        fprintf(to, "<text x=\"%.1f\" y=\"%.1f\">", x, *y);
        text(to, line);
        fprintf(to, "</text>\n");
        *y += 12;
        line[0] = '\0';
    }
    snprintf(line + strlen(line), size - strlen(line), "%s%s", line[0] ? " " : "", word);
}

/* Under the panel: who could not run which of its cases, and why. */
static void panel_notes(FILE *to, const struct panel *p, const struct impls *all, double x,
                        double y)
{
    char line[128] = "", word[160];
    fprintf(to, "<g font-size=\"10\" fill=\"#555\">\n");
    bool any = false;
    for (size_t k = 0; k < all->count; k++) {
        size_t missing = 0, present = 0;
        char where[96] = "";
        for (size_t c = 0; c < p->case_count; c++) {
            const struct row *w = p->cell[c][k];
            if (w && w->na) {
                missing++;
                const char *slash = strchr(p->cases[c], '/');
                snprintf(where + strlen(where), sizeof where - strlen(where), "%s%s",
                         missing > 1 ? "," : "", slash ? slash + 1 : p->cases[c]);
            } else if (ran(w)) {
                present++;
            }
        }
        if (!missing)
            continue;
        if (!any)
            note_word(to, line, sizeof line, "not run:", x, &y), any = true;
        /* Where it ran some cases, say which it did not. */
        if (present)
            snprintf(word, sizeof word, "%s (%s%s),", all->name[k], where,
                     p->scenario->arg_is_threads ? " threads" : "");
        else
            snprintf(word, sizeof word, "%s,", all->name[k]);
        note_word(to, line, sizeof line, word, x, &y);
    }
    if (any) {
        line[strlen(line) - 1] = '\0'; /* the last comma */
        snprintf(word, sizeof word, "(%s)", why_not(p->scenario));
        note_word(to, line, sizeof line, word, x, &y);
        fprintf(to, "<text x=\"%.1f\" y=\"%.1f\">", x, y);
        text(to, line);
        fprintf(to, "</text>\n");
    }
    fprintf(to, "</g>\n");
}

static void draw_panel(FILE *to, const struct results *r, const struct panel *p,
                       const struct impls *all, double cell_x, double cell_y)
{
    double left = cell_x + PLOT_LEFT, top = cell_y + PLOT_TOP;
    const char *unit = r->unit ? r->unit : p->scenario->unit;
    fprintf(to, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" font-weight=\"bold\">%s</text>\n",
            cell_x + 12, cell_y + 18, p->scenario->name);
    fprintf(to, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#333\">", cell_x + 12,
            cell_y + 32);
    text(to, unit);
    fprintf(to, "%s</text>\n", p->log ? " (log scale)" : "");
    y_axis(to, p, left, top);
    fprintf(to, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                "stroke=\"#888\"/>\n", left, top, PLOT_W, PLOT_H);
    if (p->case_count > 1) {
        for (size_t k = 0; k < all->count; k++)
            if (strcmp(all->name[k], "mempool") != 0)
                draw_series(to, p, all, k, left, top);
        for (size_t k = 0; k < all->count; k++)
            if (strcmp(all->name[k], "mempool") == 0)
                draw_series(to, p, all, k, left, top);
        case_axis(to, p, left, top);
    } else {
        draw_single(to, p, all, left, top);
    }
    panel_notes(to, p, all, cell_x + 12, top + PLOT_H + (p->case_count > 1 ? 48 : 80));
}

static void legend(FILE *to, const struct impls *all, double x, double y)
{
    fprintf(to, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" font-weight=\"bold\">"
                "implementations</text>\n", x, y + 18);
    for (size_t k = 0; k < all->count; k++) {
        struct style s = style_of(all, all->name[k]);
        double row = y + 40 + 20.0 * (double)k;
        fprintf(to, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"%s\"/>\n", x, x + 30, row, row, s.colour, s.ours ? "3" : "1.3");
        marker(to, &s, x + 15, row);
        fprintf(to, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\"%s>", x + 40, row + 4,
                s.ours ? " font-weight=\"bold\"" : "");
        text(to, all->name[k]);
        fprintf(to, "</text>\n");
    }
    double below = y + 40 + 20.0 * (double)all->count;
    fprintf(to, "<g font-size=\"10\" fill=\"#333\"><text x=\"%.1f\" y=\"%.1f\">point: median of "
                "the repetitions</text><text x=\"%.1f\" y=\"%.1f\">bar: min to max; lower is "
                "better</text></g>\n", x, below + 4, x, below + 17);
}

/* The value of the fact "system KEY: VALUE", or "?" . */
static const char *fact(const struct results *r, const char *key)
{
    size_t length = strlen(key);
    for (size_t i = 0; i < r->line_count; i++)
        if (strncmp(r->lines[i], "system ", 7) == 0 && strncmp(r->lines[i] + 7, key, length) == 0 &&
            r->lines[i][7 + length] == ':')
            return r->lines[i] + 7 + length + 2;
    return "?";
}

int report_plot(const struct results *r, const char *path)
{
    struct impls all;
    collect_impls(r, &all);
    struct panel *panels = calloc(bench_scenario_count, sizeof *panels);
    if (!panels)
        return -1;
    size_t count = 0;
    for (size_t i = 0; i < bench_scenario_count; i++)
        count += collect_panel(r, &all, &bench_scenarios[i], &panels[count]);
    if (count == 0) {
        fprintf(stderr, "mempool-bench: --plot: no results to plot\n");
        free(panels);
        return -1;
    }
    size_t cells = count + 1, columns = cells < COLUMNS ? cells : COLUMNS;
    size_t rows = (cells + columns - 1) / columns;
    double width = CELL_W * (double)columns + 20, height = TOP + CELL_H * (double)rows + 58;
    FILE *to = fopen(path, "w");
    if (!to) {
        perror(path);
        free(panels);
        return -1;
    }
    fprintf(to, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            width, height, width, height);
    fprintf(to, "<text x=\"20\" y=\"30\" font-size=\"17\" font-weight=\"bold\">%s</text>\n",
            r->unit ? "mempool-bench --callgrind: instructions per get+put, every scenario"
                    : "mempool-bench: every scenario, mempool against the other pools and "
                      "allocators");
    for (size_t i = 0; i < cells; i++) {
        double x = 10 + CELL_W * (double)(i % columns), y = TOP + CELL_H * (double)(i / columns);
        if (i < count)
            draw_panel(to, r, &panels[i], &all, x, y);
        else
            legend(to, &all, x + 24, y);
    }
    fprintf(to, "<g font-size=\"11\" fill=\"#333\"><text x=\"20\" y=\"%.0f\">", height - 34);
    text(to, fact(r, "cpu"));
    fprintf(to, ", %s cores; ", fact(r, "cores"));
    text(to, fact(r, "compiler"));
    fprintf(to, "; ");
    text(to, fact(r, "kernel"));
    fprintf(to, "; %s</text>\n<text x=\"20\" y=\"%.0f\">block size ", fact(r, "date"),
            height - 18);
    text(to, fact(r, "block size"));
    fprintf(to, "</text></g>\n</svg>\n");
    free(panels);
    return fclose(to) ? -1 : 0;
}
