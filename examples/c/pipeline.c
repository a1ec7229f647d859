/*
 * A small tracked pipeline in C: registers two stages of tasks, runs one task with
 * three subtasks (a tight loop of a million items, a step that fails and is handled,
 * a summary), then prints the status of every task as JSON.
 *
 *   cc -Iinclude examples/c/pipeline.c -Ltarget/debug -ltasker -o pipeline
 *   ./pipeline [sqlite:///path/to/file.db]     (default: TASKER_DB_URL or the user default)
 */
#include <stdio.h>
#include <stdlib.h>

#include "tasker.h"

/* Print the library's message for a failed call and leave. */
#define CHECK(call)                                                                 \
    do {                                                                            \
        tasker_status st_ = (call);                                                 \
        if (st_ != TASKER_STATUS_OK) {                                              \
            fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__,      \
                    #call, tasker_last_error(), tasker_status_name((int32_t)st_));  \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static const char *TASKS =
    "[{\"stage\": \"prepare\", \"stage_order\": 1, \"name\": \"download\", \"type\": \"c\", \"task_order\": 1,"
    "  \"description\": \"fetch the raw files\", \"script_path\": \"examples/c/pipeline.c\"},"
    " {\"stage\": \"prepare\", \"stage_order\": 1, \"name\": \"validate\", \"type\": \"c\", \"task_order\": 2},"
    " {\"stage\": \"model\", \"stage_order\": 2, \"name\": \"fit\", \"type\": \"c\", \"task_order\": 1},"
    " {\"stage\": \"model\", \"stage_order\": 2, \"name\": \"report\", \"type\": \"c\", \"task_order\": 2}]";

/* A step that fails, as real steps sometimes do. */
static int flaky_step(void) { return -1; }

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : NULL;
    if (tasker_abi_version() != TASKER_ABI_VERSION) {
        fprintf(stderr, "libtasker ABI %u, header ABI %u\n", tasker_abi_version(), TASKER_ABI_VERSION);
        return 1;
    }

    tasker_tracker *t = NULL;
    CHECK(tasker_open(url, &t));
    CHECK(tasker_register_tasks_json(t, TASKS));

    tasker_run_options *opts = NULL;
    CHECK(tasker_run_options_new(&opts));
    CHECK(tasker_run_options_set_total_subtasks(opts, 3));
    CHECK(tasker_run_options_set(opts, "version", tasker_version()));
    CHECK(tasker_run_options_set(opts, "metadata", "{\"language\": \"C\"}"));

    tasker_run *run = NULL;
    CHECK(tasker_task_start(t, "prepare", "download", opts, &run));
    tasker_run_options_free(opts);
    printf("run %s\n", tasker_run_id(run));

    /* 1. A tight loop: each increment is a few nanoseconds, memory only. */
    const int64_t items = 1000000;
    uint32_t count = 0;
    CHECK(tasker_subtask_start(run, "count items", items, &count));
    for (int64_t i = 0; i < items; i++) {
        CHECK(tasker_subtask_increment(run, count, 1));
    }
    CHECK(tasker_subtask_complete(run, count, "all items counted"));

    /* 2. A step that fails: record why, and carry on with the rest. */
    uint32_t flaky = 0;
    CHECK(tasker_subtask_start(run, "flaky step", -1, &flaky));
    if (flaky_step() != 0) {
        CHECK(tasker_subtask_fail(run, flaky, "flaky step returned -1", "the remote end hung up; retried later"));
    }
    /* Terminal states are sticky: failing it again changes nothing (not an error),
       completing it now is refused, and so is progress after the end. */
    CHECK(tasker_subtask_fail(run, flaky, "again", NULL));
    if (tasker_subtask_complete(run, flaky, NULL) != TASKER_STATUS_INVALID_TRANSITION ||
        tasker_subtask_increment(run, flaky, 1) != TASKER_STATUS_INVALID_TRANSITION) {
        fprintf(stderr, "a finished subtask must not change again\n");
        return 1;
    }

    /* 3. A step reported as a percentage with a message. */
    uint32_t summary = 0;
    CHECK(tasker_subtask_start(run, "summarise", -1, &summary));
    CHECK(tasker_subtask_set_percent(run, summary, 50.0));
    CHECK(tasker_subtask_set_message(run, summary, "half way"));
    CHECK(tasker_subtask_complete(run, summary, NULL));

    CHECK(tasker_task_complete(run, "downloaded with one handled failure"));
    tasker_run_free(run);

    char *json = NULL;
    CHECK(tasker_query_json(t, "task_status", NULL, &json));
    printf("%s\n", json);
    tasker_string_free(json);

    CHECK(tasker_close(t));
    return 0;
}
