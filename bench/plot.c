/* SPDX-License-Identifier: MIT */
/* --plot: throughput of the `parallel` scenario against threads, one line
 * per implementation, as SVG. gnuplot draws it when installed; otherwise the
 * same picture is written as plain SVG here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bench.h"

#define MAX_LINES 16
#define MAX_POINTS 16

struct series {
    const char *impl;
    size_t count;
    double threads[MAX_POINTS], mpairs[MAX_POINTS];
};

/* Collects the parallel rows into one series per implementation. */
static size_t collect(const struct results *r, struct series *out)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++) {
        const struct row *w = &r->rows[i];
        if (w->na || strncmp(w->label, "parallel/", 9) != 0)
            continue;
        size_t k = 0;
        while (k < n && strcmp(out[k].impl, w->impl) != 0)
            k++;
        if (k == n) {
            if (n == MAX_LINES)
                continue;
            out[n++] = (struct series){.impl = w->impl};
        }
        if (out[k].count < MAX_POINTS) {
            out[k].threads[out[k].count] = atof(w->label + 9);
            out[k].mpairs[out[k].count++] = w->extra[0];
        }
    }
    return n;
}

static const char *const TITLE = "parallel: get+put pairs per second against threads";

static int with_gnuplot(const struct series *s, size_t n, const char *path)
{
    FILE *gp = popen("gnuplot 2>/dev/null", "w");
    if (!gp)
        return -1;
    fprintf(gp, "set terminal svg size 800,500 dynamic noenhanced font 'sans,12'\n");
    fprintf(gp, "set output '%s'\nset title '%s'\n", path, TITLE);
    fprintf(gp, "set xlabel 'threads'\nset ylabel 'million pairs per second'\n");
    fprintf(gp, "set key outside right\nset grid\nset yrange [0:*]\n");
    for (size_t k = 0; k < n; k++) {
        fprintf(gp, "$d%zu << EOD\n", k);
        for (size_t i = 0; i < s[k].count; i++)
            fprintf(gp, "%g %g\n", s[k].threads[i], s[k].mpairs[i]);
        fprintf(gp, "EOD\n");
    }
    fprintf(gp, "plot ");
    for (size_t k = 0; k < n; k++)
        fprintf(gp, "%s$d%zu with linespoints lw 2 title '%s'", k ? ", " : "", k, s[k].impl);
    fprintf(gp, "\n");
    int status = pclose(gp);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void max_of(const struct series *s, size_t n, double *x, double *y)
{
    *x = 1;
    *y = 1e-9;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < s[k].count; i++) {
            if (s[k].threads[i] > *x)
                *x = s[k].threads[i];
            if (s[k].mpairs[i] > *y)
                *y = s[k].mpairs[i];
        }
}

static int plain_svg(const struct series *s, size_t n, const char *path)
{
    static const char *const colours[] = {"#d62728", "#ff7f0e", "#1f77b4", "#2ca02c",
                                          "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                          "#bcbd22", "#17becf"};
    const double left = 70, top = 40, width = 560, height = 380;
    double xmax, ymax;
    max_of(s, n, &xmax, &ymax);
    FILE *to = fopen(path, "w");
    if (!to)
        return -1;
    fprintf(to, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"500\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n"
                "<rect width=\"800\" height=\"500\" fill=\"white\"/>\n"
                "<text x=\"400\" y=\"20\" text-anchor=\"middle\">%s</text>\n", TITLE);
    fprintf(to, "<path d=\"M%g %g V%g H%g\" stroke=\"black\" fill=\"none\"/>\n", left, top,
            top + height, left + width);
    for (int t = 0; t <= 4; t++) {
        double y = top + height - height * t / 4;
        fprintf(to, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.3g</text>\n", left - 5,
                y + 4, ymax * t / 4);
    }
    fprintf(to, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">threads (1 to %g)</text>\n",
            left + width / 2, top + height + 30, xmax);
    fprintf(to, "<text x=\"15\" y=\"%g\" transform=\"rotate(-90 15 %g)\" "
                "text-anchor=\"middle\">million pairs per second</text>\n",
            top + height / 2, top + height / 2);
    for (size_t k = 0; k < n; k++) {
        const char *colour = colours[k % (sizeof colours / sizeof *colours)];
        fprintf(to, "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"%s\" points=\"", colour);
        for (size_t i = 0; i < s[k].count; i++)
            fprintf(to, "%.1f,%.1f ", left + width * s[k].threads[i] / xmax,
                    top + height - height * s[k].mpairs[i] / ymax);
        fprintf(to, "\"/>\n<text x=\"%g\" y=\"%g\" fill=\"%s\">%s</text>\n",
                left + width + 15, top + 15 + 18.0 * (double)k, colour, s[k].impl);
    }
    fprintf(to, "</svg>\n");
    return fclose(to) ? -1 : 0;
}

int report_plot(const struct results *r, const char *path)
{
    struct series s[MAX_LINES];
    size_t n = collect(r, s);
    if (n == 0) {
        fprintf(stderr, "mempool-bench: --plot: no parallel results to plot\n");
        return -1;
    }
    if (with_gnuplot(s, n, path) == 0)
        return 0;
    return plain_svg(s, n, path);
}
