/*
 * Timing helpers shared by the C benchmarks: a monotonic clock in nanoseconds
 * and the median of per-batch figures.
 */
#ifndef TASKER_BENCH_TIMING_H
#define TASKER_BENCH_TIMING_H

#include <stdlib.h>
#include <time.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v (n figures) in place and returns its median. */
static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

#endif
