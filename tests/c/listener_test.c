/*
 * Listeners through the C ABI get exactly the stored events: a run with a
 * subtask whose first progress moves it (and nothing else) to RUNNING; the
 * JSON each callback receives is the JSON the `events` query returns for the
 * same event (ids, times, kind and all), once each and in order. Prints
 * "c listener: N passed, N failed" and exits non-zero on failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tasker.h"

static int passed = 0, failed = 0;

static void check(const char *what, int ok, const char *detail) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s: %s\n", what, detail ? detail : tasker_last_error());
    }
}

/* What the listener saw: "[" + the event objects joined by "," (the query's form). */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen[1 << 16] = "[";
static int seen_count = 0;

static void on_event(const char *event_json, void *user_data) {
    int *calls = user_data;
    pthread_mutex_lock(&seen_lock);
    if (seen_count > 0) strncat(seen, ",", sizeof seen - strlen(seen) - 1);
    strncat(seen, event_json, sizeof seen - strlen(seen) - 1);
    seen_count++;
    (*calls)++;
    pthread_mutex_unlock(&seen_lock);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: listener_test sqlite:///tmp/x.db\n");
        return 2;
    }
    tasker_tracker *t = NULL;
    check("open", tasker_open(argv[1], &t) == TASKER_STATUS_OK, NULL);
    int calls = 0;
    uint64_t id = 0;
    check("add listener", tasker_add_listener(t, on_event, &calls, &id) == TASKER_STATUS_OK, NULL);

    tasker_run *run = NULL;
    uint32_t n = 0;
    check("start", tasker_task_start(t, "c", "listened", NULL, &run) == TASKER_STATUS_OK, NULL);
    check("subtask", tasker_subtask_start(run, "part", 10, &n) == TASKER_STATUS_OK, NULL);
    check("increment", tasker_subtask_increment(run, n, 4) == TASKER_STATUS_OK, NULL);
    check("flush", tasker_flush(t) == TASKER_STATUS_OK, NULL);
    check("subtask complete", tasker_subtask_complete(run, n, NULL) == TASKER_STATUS_OK, NULL);
    check("complete", tasker_task_complete(run, "done") == TASKER_STATUS_OK, NULL);

    char params[128];
    snprintf(params, sizeof params, "{\"run_id\":\"%s\"}", tasker_run_id(run));
    char *stored = NULL;
    check("events query", tasker_query_json(t, "events", params, &stored) == TASKER_STATUS_OK, NULL);
    /* An event goes out on another thread when that one was giving out earlier
     * events at the time: wait until the listener has them all (30 s at most). */
    size_t want = stored ? strlen(stored) : 0;
    for (int i = 0; i < 3000; i++) {
        pthread_mutex_lock(&seen_lock);
        size_t have = strlen(seen) + 1; /* with the closing "]" */
        pthread_mutex_unlock(&seen_lock);
        if (have >= want) break;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    pthread_mutex_lock(&seen_lock);
    strncat(seen, "]", sizeof seen - strlen(seen) - 1);
    check("the listener saw exactly the stored events", stored && strcmp(seen, stored) == 0, seen);
    check("six events", seen_count == 6 && calls == 6, seen);
    check("the subtask's implicit RUNNING, with its id and kind",
          strstr(seen, "\"subtask_number\":1,\"kind\":\"subtask\",\"old_status\":\"STARTED\","
                       "\"new_status\":\"RUNNING\"") != NULL && strstr(seen, "\"event_id\":") != NULL,
          seen);
    check("the existing keys", strstr(seen, "\"stage_name\":\"c\",\"task_name\":\"listened\"") != NULL,
          seen);
    pthread_mutex_unlock(&seen_lock);
    tasker_string_free(stored);

    check("remove listener", tasker_remove_listener(t, id) == TASKER_STATUS_OK, NULL);
    tasker_run_free(run);
    check("close", tasker_close(t) == TASKER_STATUS_OK, NULL);
    printf("c listener: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
