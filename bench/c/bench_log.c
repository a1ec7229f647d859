/*
 * Per-call cost of tasker_log through the C ABI, next to baselines measured in
 * the same run: tasker_subtask_increment (the cheapest tracking call) and
 * fprintf of the same line to /dev/null (what a logging callback that writes a
 * file costs without tasker). Reports medians over batches, and the ratios.
 * With the default bound (tracking.max_log_lines, 10,000) the loop logs past it
 * between flushes, as a tight logging loop does: older lines are dropped.
 * TASKER_MAX_LOG_LINES=1000000 measures keeping every line instead. A third
 * figure logs KEPT_BATCH lines (under the bound) and then waits for the writer to
 * take them, as a pipeline that logs steadily does: every line kept and written.
 *   scripts/bench-c.sh   (builds libtasker in release and runs this)
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tasker.h"
#include "timing.h"

#define BATCH 20000
#define ROUNDS 21
/* Lines logged between two flushes of the writer (every 200 ms) in the steady regime. */
#define KEPT_BATCH 2000

static double median(double *v) { return median_of(v, ROUNDS); }

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "sqlite:///tmp/tasker-bench-log-c.db";
    tasker_tracker *t;
    tasker_run *run;
    uint32_t n;
    FILE *null = fopen("/dev/null", "w");
    if (null == NULL || tasker_open(url, &t) || tasker_task_start(t, "bench", "c log", NULL, &run) ||
        tasker_subtask_start(run, "items", -1, &n)) {
        fprintf(stderr, "setup failed: %s\n", tasker_last_error());
        return 1;
    }
    const char *line = "processing item 12345 of 1000000: 3 rows, checksum ok";
    double inc_ns[ROUNDS], file_ns[ROUNDS], log_ns[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (int i = 0; i < BATCH; i++) tasker_subtask_increment(run, n, 1);
        double t1 = now_ns();
        for (int i = 0; i < BATCH; i++) fprintf(null, "%s\n", line);
        fflush(null);
        double t2 = now_ns();
        for (int i = 0; i < BATCH; i++) tasker_log(run, "info", line);
        double t3 = now_ns();
        inc_ns[r] = (t1 - t0) / BATCH;
        file_ns[r] = (t2 - t1) / BATCH;
        log_ns[r] = (t3 - t2) / BATCH;
    }
    /* Steady: a batch under the bound, then a pause for the writer to write it. */
    double kept_ns[ROUNDS], kept_file_ns[ROUNDS];
    const struct timespec pause = {0, 300 * 1000 * 1000};
    for (int r = 0; r < ROUNDS; r++) {
        nanosleep(&pause, NULL);
        double t0 = now_ns();
        for (int i = 0; i < KEPT_BATCH; i++) fprintf(null, "%s\n", line);
        fflush(null);
        double t1 = now_ns();
        for (int i = 0; i < KEPT_BATCH; i++) tasker_log(run, "info", line);
        double t2 = now_ns();
        kept_file_ns[r] = (t1 - t0) / KEPT_BATCH;
        kept_ns[r] = (t2 - t1) / KEPT_BATCH;
    }
    double inc = median(inc_ns), file = median(file_ns), lg = median(log_ns);
    double kept = median(kept_ns), kept_file = median(kept_file_ns);
    printf("%-44s %8.1f ns  1.00x\n", "baseline: tasker_subtask_increment", inc);
    printf("%-44s %8.1f ns  %5.2fx\n", "fprintf of the line to /dev/null", file, file / inc);
    printf("%-44s %8.1f ns  %5.2fx  (%.2fx the fprintf)\n", "tasker_log", lg, lg / inc, lg / file);
    printf("%-44s %8.1f ns  %5.2fx\n", "steady: fprintf, 2,000 lines per flush", kept_file,
           kept_file / inc);
    printf("%-44s %8.1f ns  %5.2fx  (%.2fx the fprintf)\n", "steady: tasker_log, every line kept",
           kept, kept / inc, kept / kept_file);
    tasker_task_complete(run, NULL);
    tasker_run_free(run);
    fclose(null);
    return tasker_close(t) == TASKER_STATUS_OK ? 0 : 1;
}
