/* A C worker on a shared run (tests/outage): starts auto-numbered subtasks of
 * the run, increments and completes them, until the file `stop` appears in
 * TASKER_TEST_SIGNALS. Prints "SUBTASK <name> <number>" for each, then "DONE".
 * The database comes from TASKER_DB_URL. Every call must succeed, outage or not. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tasker.h"

#define ITEMS 40

static int exists(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void check(tasker_status s, const char *what) {
    if (s != TASKER_STATUS_OK) {
        char msg[1024];
        tasker_last_error_message(msg, sizeof msg);
        fprintf(stderr, "c worker: %s failed: %s (%s)\n", what, tasker_status_name(s), msg);
        exit(1);
    }
}

int main(void) {
    const char *run_id = getenv("TASKER_TEST_RUN");
    const char *signals = getenv("TASKER_TEST_SIGNALS");
    const char *tag = getenv("TASKER_TEST_TAG");
    if (!run_id || !signals || !tag) {
        fprintf(stderr, "c worker: TASKER_TEST_RUN, TASKER_TEST_SIGNALS and TASKER_TEST_TAG are required\n");
        return 2;
    }
    tasker_tracker *t = NULL;
    tasker_run *run = NULL;
    check(tasker_open(NULL, &t), "open");
    check(tasker_run_attach(t, run_id, &run), "attach");
    struct timespec pause = {0, 2 * 1000 * 1000};
    for (int i = 0; !exists(signals, "stop"); i++) {
        char name[64];
        uint32_t n = 0;
        snprintf(name, sizeof name, "%s-%d", tag, i);
        check(tasker_subtask_start(run, name, ITEMS, &n), "subtask_start");
        for (int k = 0; k < ITEMS; k++) {
            check(tasker_subtask_increment(run, n, 1), "increment");
            if (k % 10 == 0) nanosleep(&pause, NULL);
        }
        check(tasker_subtask_complete(run, n, "done"), "subtask_complete");
        printf("SUBTASK %s %u\n", name, n);
        fflush(stdout);
    }
    tasker_run_free(run);
    check(tasker_close(t), "close");
    printf("DONE\n");
    return 0;
}
