/*
 * A C process that logs on a shared run (tests/outage/test_logs_many_languages.py):
 * attaches the run TASKER_TEST_RUN in the database TASKER_DB_URL and logs
 * TASKER_TEST_LINES lines "TAG i", a few milliseconds apart, then closes (which
 * replays what an outage left queued, or spills it for the next process).
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tasker.h"

int main(void) {
    const char *run_id = getenv("TASKER_TEST_RUN");
    const char *tag = getenv("TASKER_TEST_TAG");
    int lines = atoi(getenv("TASKER_TEST_LINES") ? getenv("TASKER_TEST_LINES") : "100");
    tasker_tracker *t = NULL;
    tasker_run *run = NULL;
    if (run_id == NULL || tag == NULL || tasker_open(NULL, &t) || tasker_run_attach(t, run_id, &run)) {
        fprintf(stderr, "setup failed: %s\n", tasker_last_error());
        return 1;
    }
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (int i = 0; i < lines; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s %d", tag, i);
        if (tasker_log(run, i % 7 == 0 ? "warn" : "info", msg) != TASKER_STATUS_OK) {
            fprintf(stderr, "tasker_log failed: %s\n", tasker_last_error());
            return 1;
        }
        if (i == 0) {
            printf("READY\n");
            fflush(stdout);
        }
        nanosleep(&pause, NULL);
    }
    tasker_run_free(run);
    if (tasker_close(t) != TASKER_STATUS_OK) {
        fprintf(stderr, "close failed: %s\n", tasker_last_error());
        return 1;
    }
    printf("DONE\n");
    return 0;
}
