/*
 * Task dependencies and the DAG through the C ABI: single and bulk registration,
 * a refused cycle and unknown name (nothing stored), cross-stage edges, and the
 * `dag` JSON query on a pipeline where one upstream failed. Prints
 * "c dag: N passed, N failed" and exits non-zero on failure.
 */
#include <stdio.h>
#include <string.h>

#include "tasker.h"

static int passed = 0, failed = 0;

static void expect(const char *what, tasker_status got, tasker_status want, const char *needle) {
    const char *msg = tasker_last_error();
    if (got == want && (needle == NULL || strstr(msg, needle) != NULL)) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s: got %s (%s), want %s containing \"%s\"\n", what,
                tasker_status_name((int32_t)got), msg, tasker_status_name((int32_t)want),
                needle ? needle : "");
    }
}

static void expect_in(const char *what, const char *json, const char *needle) {
    if (json != NULL && strstr(json, needle) != NULL) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s: \"%s\" not in %s\n", what, needle, json ? json : "(null)");
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: dag_test sqlite:///tmp/x.db\n");
        return 2;
    }
    tasker_tracker *t = NULL;
    expect("open", tasker_open(argv[1], &t), TASKER_STATUS_OK, NULL);
    expect("bulk with dependencies",
           tasker_register_tasks_json(t,
               "[{\"stage\":\"ingest\",\"name\":\"a\"},"
               " {\"stage\":\"prep\",\"name\":\"b\",\"depends_on\":[\"ingest/a\"]},"
               " {\"stage\":\"prep\",\"name\":\"c\",\"depends_on\":[\"ingest/a\"]}]"),
           TASKER_STATUS_OK, NULL);
    const char *deps[] = {"prep/b", "prep/c"};
    expect("single with dependencies", tasker_register_task_depends(t, "model", "d", deps, 2),
           TASKER_STATUS_OK, NULL);
    const char *cycle[] = {"model/d"};
    expect("cycle refused", tasker_register_task_depends(t, "ingest", "a", cycle, 1),
           TASKER_STATUS_INVALID_ARGUMENT, "ingest/a -> prep/b -> model/d -> ingest/a");
    const char *unknown[] = {"prep/nope"};
    expect("unknown refused", tasker_register_task_depends(t, "model", "e", unknown, 1),
           TASKER_STATUS_INVALID_ARGUMENT, "prep/nope");
    expect("NULL names with a count", tasker_register_task_depends(t, "model", "e", NULL, 1),
           TASKER_STATUS_NULL_POINTER, "depends_on");
    expect("bulk cycle refused",
           tasker_register_tasks_json(t, "[{\"stage\":\"x\",\"name\":\"y\",\"depends_on\":[\"x/y\"]}]"),
           TASKER_STATUS_INVALID_ARGUMENT, "x/y -> x/y");

    tasker_run *run = NULL;
    expect("start a", tasker_task_start(t, "ingest", "a", NULL, &run), TASKER_STATUS_OK, NULL);
    expect("complete a", tasker_task_complete(run, NULL), TASKER_STATUS_OK, NULL);
    tasker_run_free(run);
    expect("start b", tasker_task_start(t, "prep", "b", NULL, &run), TASKER_STATUS_OK, NULL);
    expect("fail b", tasker_task_fail(run, "boom", NULL), TASKER_STATUS_OK, NULL);
    tasker_run_free(run);

    char *json = NULL;
    expect("dag query", tasker_query_json(t, "dag", NULL, &json), TASKER_STATUS_OK, NULL);
    expect_in("edge across stages", json, "{\"from\":\"prep/b\",\"to\":\"model/d\"}");
    expect_in("d blocked by b", json, "\"blocked_by\":[\"prep/b\"]");
    expect_in("nothing of the refused calls", json, "\"nodes\"");
    if (json != NULL && (strstr(json, "model/e") != NULL || strstr(json, "\"x/y\"") != NULL)) {
        failed++;
        fprintf(stderr, "FAIL a refused registration left a task: %s\n", json);
    } else {
        passed++;
    }
    tasker_string_free(json);
    tasker_close(t);
    printf("c dag: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
