/*
 * Per-call cost of progress calls through the C ABI, next to a C atomic add measured in
 * the same run. Reports medians over batches, and the ratio.
 *   scripts/bench-c.sh   (builds libtasker in release and runs this)
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tasker.h"
#include "timing.h"

#define BATCH 100000
#define ROUNDS 51

static double median(double *v) { return median_of(v, ROUNDS); }

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "sqlite:///tmp/tasker-bench-c.db";
    tasker_tracker *t;
    tasker_run *run;
    uint32_t n;
    if (tasker_open(url, &t) || tasker_task_start(t, "bench", "c", NULL, &run) ||
        tasker_subtask_start(run, "items", -1, &n)) {
        fprintf(stderr, "setup failed: %s\n", tasker_last_error());
        return 1;
    }
    static volatile uint64_t counter;
    double atomic_ns[ROUNDS], inc_ns[ROUNDS], set_ns[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (int i = 0; i < BATCH; i++) __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        double t1 = now_ns();
        for (int i = 0; i < BATCH; i++) tasker_subtask_increment(run, n, 1);
        double t2 = now_ns();
        for (int i = 0; i < BATCH; i++) tasker_subtask_set_items(run, n, (uint64_t)i);
        double t3 = now_ns();
        atomic_ns[r] = (t1 - t0) / BATCH;
        inc_ns[r] = (t2 - t1) / BATCH;
        set_ns[r] = (t3 - t2) / BATCH;
    }
    double a = median(atomic_ns), inc = median(inc_ns), set = median(set_ns);
    printf("%-42s %8.1f ns  1.00x\n", "baseline: __atomic_fetch_add", a);
    printf("%-42s %8.1f ns  %5.2fx\n", "tasker_subtask_increment", inc, inc / a);
    printf("%-42s %8.1f ns  %5.2fx\n", "tasker_subtask_set_items", set, set / a);
    tasker_task_complete(run, NULL);
    tasker_run_free(run);
    return tasker_close(t) == TASKER_STATUS_OK ? 0 : 1;
}
