/* A tracked C process for tests/scale: one run of task $TASKER_TEST_TASK in stage
 * "scale" with 3 subtasks of 100 increments, completed. The database comes from
 * TASKER_DB_URL and the host name from TASKER_HOSTNAME. Every call must succeed. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tasker.h"

static void check(tasker_status s, const char *what) {
    if (s != TASKER_STATUS_OK) {
        char msg[1024];
        tasker_last_error_message(msg, sizeof msg);
        fprintf(stderr, "c worker: %s failed: %s (%s)\n", what, tasker_status_name(s), msg);
        exit(1);
    }
}

int main(void) {
    const char *task = getenv("TASKER_TEST_TASK");
    if (!task) {
        fprintf(stderr, "c worker: TASKER_TEST_TASK is required\n");
        return 2;
    }
    /* Work takes a while ($TASKER_TEST_WORK_MS per subtask), so that processes overlap. */
    const char *work = getenv("TASKER_TEST_WORK_MS");
    long ms = work ? atol(work) / 4 : 0;
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    tasker_tracker *t = NULL;
    tasker_run *run = NULL;
    check(tasker_open(NULL, &t), "open");
    check(tasker_task_start(t, "scale", task, NULL, &run), "task_start");
    for (int s = 0; s < 3; s++) {
        char name[32];
        uint32_t n = 0;
        snprintf(name, sizeof name, "part %d", s);
        check(tasker_subtask_start(run, name, 100, &n), "subtask_start");
        for (int k = 0; k < 100; k++) {
            check(tasker_subtask_increment(run, n, 1), "increment");
            if (k % 25 == 0) nanosleep(&pause, NULL);
        }
        check(tasker_subtask_complete(run, n, NULL), "subtask_complete");
    }
    check(tasker_task_complete(run, "done"), "task_complete");
    tasker_run_free(run);
    check(tasker_close(t), "close");
    printf("DONE\n");
    return 0;
}
