/* One tracked process of bench/postgres/scale.sh: starts a run, then for
 * $BENCH_SECONDS starts a subtask, increments it $BENCH_ITEMS times over
 * $BENCH_WORK_MS, completes it (busy phase); then holds its run open with nothing
 * to write for $BENCH_IDLE_SECONDS (idle phase); completes the run. Prints every
 * transition: when it ended and its latency ("T <epoch s> <us>"). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tasker.h"

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Prints one transition: when it ended (seconds since the epoch) and how long it took. */
static void report(double started_us) {
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    printf("T %.3f %.1f\n", wall.tv_sec + wall.tv_nsec / 1e9, now_us() - started_us);
}

static void check(tasker_status s, const char *what) {
    if (s != TASKER_STATUS_OK) {
        char msg[1024];
        tasker_last_error_message(msg, sizeof msg);
        fprintf(stderr, "scale worker: %s failed: %s\n", what, msg);
        exit(1);
    }
}

static long env(const char *name, long fallback) {
    const char *v = getenv(name);
    return v ? atol(v) : fallback;
}

int main(void) {
    long seconds = env("BENCH_SECONDS", 10), idle = env("BENCH_IDLE_SECONDS", 5);
    long items = env("BENCH_ITEMS", 100), work_ms = env("BENCH_WORK_MS", 500);
    const char *task = getenv("BENCH_TASK");
    tasker_tracker *t = NULL;
    tasker_run *run = NULL;
    check(tasker_open(NULL, &t), "open");
    double t0 = now_us();
    check(tasker_task_start(t, "bench", task ? task : "scale", NULL, &run), "task_start");
    report(t0);
    struct timespec step = {0, (work_ms * 1000000L) / (items > 0 ? items : 1)};
    double end = now_us() + seconds * 1e6;
    for (int i = 0; now_us() < end; i++) {
        char name[32];
        uint32_t n = 0;
        snprintf(name, sizeof name, "part %d", i);
        double a = now_us();
        check(tasker_subtask_start(run, name, items, &n), "subtask_start");
        report(a);
        for (long k = 0; k < items; k++) {
            check(tasker_subtask_increment(run, n, 1), "increment");
            nanosleep(&step, NULL);
        }
        a = now_us();
        check(tasker_subtask_complete(run, n, NULL), "subtask_complete");
        report(a);
    }
    printf("IDLE\n");
    fflush(stdout);
    struct timespec rest = {idle, 0};
    nanosleep(&rest, NULL);
    double a = now_us();
    check(tasker_task_complete(run, "done"), "task_complete");
    report(a);
    tasker_run_free(run);
    check(tasker_close(t), "close");
    printf("DONE\n");
    return 0;
}
