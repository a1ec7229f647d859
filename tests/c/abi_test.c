/*
 * The C ABI under bad input: NULL pointers, invalid UTF-8, empty names, out-of-range
 * numbers, unknown ids and states, huge and hostile strings. Every call must return the
 * documented status with a message naming the bad value, and nothing stored before may
 * change. Prints "c abi: N passed, N failed" and exits non-zero on failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasker.h"

static int passed = 0, failed = 0;

static void expect(const char *what, tasker_status got, tasker_status want, const char *needle) {
    const char *msg = tasker_last_error();
    int ok = got == want && (needle == NULL || strstr(msg, needle) != NULL);
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s: got %s (%s), want %s containing \"%s\"\n", what,
                tasker_status_name((int32_t)got), msg, tasker_status_name((int32_t)want),
                needle ? needle : "");
    }
}

static void expect_true(const char *what, int cond) {
    if (cond) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s\n", what);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: abi_test sqlite:///tmp/x.db\n");
        return 2;
    }
    tasker_tracker *t = NULL;
    expect("open NULL out", tasker_open(argv[1], NULL), TASKER_STATUS_NULL_POINTER, "out");
    expect("open bad url", tasker_open("mysql://x", &t), TASKER_STATUS_CONFIG, "mysql");
    expect_true("open bad url leaves out untouched", t == NULL);
    expect("open", tasker_open(argv[1], &t), TASKER_STATUS_OK, NULL);

    tasker_run *run = NULL;
    expect("start NULL tracker", tasker_task_start(NULL, "s", "t", NULL, &run), TASKER_STATUS_NULL_POINTER, "tracker");
    expect("start NULL stage", tasker_task_start(t, NULL, "t", NULL, &run), TASKER_STATUS_NULL_POINTER, "stage");
    expect("start empty stage", tasker_task_start(t, "", "t", NULL, &run), TASKER_STATUS_INVALID_ARGUMENT, "stage");
    expect("start blank task", tasker_task_start(t, "s", "   ", NULL, &run), TASKER_STATUS_INVALID_ARGUMENT, "task");
    expect("start bad utf8", tasker_task_start(t, "s", "\xff\xfe", NULL, &run), TASKER_STATUS_INVALID_UTF8, "task");
    expect("start NULL out", tasker_task_start(t, "s", "t", NULL, NULL), TASKER_STATUS_NULL_POINTER, "out");
    expect_true("failed starts leave out untouched", run == NULL);

    const char *hostile = "Robert'); DROP TABLE runs;-- \"<script>alert(1)</script>\" % _ \\ \xe2\x9c\x93";
    expect("start hostile", tasker_task_start(t, hostile, hostile, NULL, &run), TASKER_STATUS_OK, NULL);
    uint32_t n = 0;
    expect("subtask", tasker_subtask_start(run, hostile, 10, &n), TASKER_STATUS_OK, NULL);
    expect("increment", tasker_subtask_increment(run, n, 3), TASKER_STATUS_OK, NULL);
    expect("increment 0", tasker_subtask_increment(run, n, 0), TASKER_STATUS_INVALID_ARGUMENT, "increment");
    expect("increment NULL run", tasker_subtask_increment(NULL, n, 1), TASKER_STATUS_NULL_POINTER, "run");
    expect("increment unknown subtask", tasker_subtask_increment(run, 99, 1), TASKER_STATUS_NOT_FOUND, "99");
    uint32_t stored = 0;
    expect("stored number", tasker_subtask_number(run, n, &stored), TASKER_STATUS_OK, NULL);
    expect_true("stored number is the number when the database was up", stored == n);
    expect("stored number NULL out", tasker_subtask_number(run, n, NULL), TASKER_STATUS_NULL_POINTER, "out_number");
    char *uid = NULL;
    expect("subtask uid", tasker_subtask_uid(run, n, &uid), TASKER_STATUS_OK, NULL);
    expect_true("subtask uid is a UUID", uid != NULL && strlen(uid) == 36);
    expect("uid of a subtask not started here", tasker_subtask_uid(run, 99, &uid), TASKER_STATUS_NOT_FOUND, "99");
    expect("adopt by uid", tasker_subtask_adopt(run, 7, uid), TASKER_STATUS_OK, NULL);
    expect("increment through the adopted number", tasker_subtask_increment(run, 7, 2), TASKER_STATUS_OK, NULL);
    expect("adopt a bad uid", tasker_subtask_adopt(run, 7, "not-a-uuid"), TASKER_STATUS_INVALID_ARGUMENT, "not-a-uuid");
    tasker_string_free(uid);
    expect("percent NaN", tasker_subtask_set_percent(run, n, NAN), TASKER_STATUS_INVALID_ARGUMENT, "NaN");
    expect("percent 101", tasker_subtask_set_percent(run, n, 101.0), TASKER_STATUS_INVALID_ARGUMENT, "101");
    expect("percent -1", tasker_task_set_percent(run, -1.0), TASKER_STATUS_INVALID_ARGUMENT, "-1");
    expect("message bad utf8", tasker_subtask_set_message(run, n, "ok\xc3\x28"), TASKER_STATUS_INVALID_UTF8, "message");
    expect("bad state", tasker_task_set_status(run, 42, NULL), TASKER_STATUS_INVALID_ARGUMENT, "42");
    expect("explicit existing number", tasker_subtask_start_at(run, n, "again", -1, false), TASKER_STATUS_ALREADY_EXISTS, "subtask");
    expect("subtask number 0", tasker_subtask_start_at(run, 0, "zero", -1, false), TASKER_STATUS_INVALID_ARGUMENT, "subtask_number");

    /* A 1 MB message is stored whole. */
    size_t big_len = 1 << 20;
    char *big = malloc(big_len + 1);
    memset(big, 'x', big_len);
    big[big_len] = 0;
    expect("1 MB message", tasker_subtask_set_message(run, n, big), TASKER_STATUS_OK, NULL);
    free(big);

    expect("complete subtask", tasker_subtask_complete(run, n, NULL), TASKER_STATUS_OK, NULL);
    expect("complete run", tasker_task_complete(run, "done"), TASKER_STATUS_OK, NULL);
    expect("complete twice (a no-op)", tasker_task_complete(run, "again"), TASKER_STATUS_OK, NULL);
    expect("progress after complete", tasker_subtask_increment(run, n, 1), TASKER_STATUS_INVALID_TRANSITION, "finished");
    expect("set after complete", tasker_subtask_set_items(run, n, 3), TASKER_STATUS_INVALID_TRANSITION, "COMPLETED");
    expect("fail after complete", tasker_task_fail(run, "late", NULL), TASKER_STATUS_INVALID_TRANSITION, "reset");
    expect("fail NULL message", tasker_task_fail(run, NULL, NULL), TASKER_STATUS_NULL_POINTER, "error_message");

    /* Unknown run id. */
    tasker_run *other = NULL;
    expect("attach unknown", tasker_run_attach(t, "00000000-0000-0000-0000-000000000000", &other), TASKER_STATUS_NOT_FOUND, "00000000");
    expect_true("attach unknown leaves out untouched", other == NULL);

    /* Queries. */
    char *json = NULL;
    expect("unknown query", tasker_query_json(t, "everything", NULL, &json), TASKER_STATUS_INVALID_ARGUMENT, "everything");
    expect("bad params", tasker_query_json(t, "history", "{\"limit\": -1}", &json), TASKER_STATUS_INVALID_ARGUMENT, NULL);
    expect("bad status filter", tasker_query_json(t, "history", "{\"status\": \"DONE\"}", &json), TASKER_STATUS_INVALID_ARGUMENT, "DONE");
    expect_true("failed queries leave out untouched", json == NULL);
    char params[256];
    snprintf(params, sizeof params, "{\"run_id\": \"%s\"}", tasker_run_id(run));
    expect("subtasks query", tasker_query_json(t, "subtasks", params, &json), TASKER_STATUS_OK, NULL);
    expect_true("hostile name read back verbatim", json && strstr(json, "Robert'); DROP TABLE runs;--") != NULL);
    expect_true("items stored (3, and 2 through the adopted number)", json && strstr(json, "\"items_complete\":5") != NULL);
    expect_true("status unchanged by refused calls", json && strstr(json, "\"status\":\"COMPLETED\"") != NULL);
    tasker_string_free(json);
    json = NULL;
    expect("run query", tasker_query_json(t, "run", params, &json), TASKER_STATUS_OK, NULL);
    expect_true("run stays COMPLETED", json && strstr(json, "\"status\":\"COMPLETED\"") != NULL);
    expect_true("run message kept", json && strstr(json, "\"overall_progress_message\":\"done\"") != NULL);
    tasker_string_free(json);

    json = NULL;
    expect("health", tasker_health_json(t, &json), TASKER_STATUS_OK, NULL);
    expect_true("health says reachable", json && strstr(json, "\"reachable\":true") != NULL);
    tasker_string_free(json);

    /* Attempts: a failed run, then a retry, is attempt 2 of one logical run. */
    tasker_run *first = NULL, *second = NULL;
    expect("first attempt", tasker_task_start(t, "etl", "load", NULL, &first), TASKER_STATUS_OK, NULL);
    snprintf(params, sizeof params, "{\"run_id\": \"%s\"}", tasker_run_id(first));
    json = NULL;
    expect("first run query", tasker_query_json(t, "run", params, &json), TASKER_STATUS_OK, NULL);
    expect_true("command line captured", json && strstr(json, "\"command_line\":\"") != NULL && strstr(json, "abi_test") != NULL);
    expect_true("a first attempt", json && strstr(json, "\"attempt\":1,\"retry_of\":null") != NULL);
    tasker_string_free(json);
    expect("first attempt fails", tasker_task_fail(first, "disk full", NULL), TASKER_STATUS_OK, NULL);
    tasker_run_options *ro = NULL;
    expect("options", tasker_run_options_new(&ro), TASKER_STATUS_OK, NULL);
    expect("attempt 0 refused", tasker_run_options_set_attempt(ro, 0), TASKER_STATUS_INVALID_ARGUMENT, "attempt");
    expect("retry", tasker_run_options_set_retry(ro, true), TASKER_STATUS_OK, NULL);
    expect("command line option", tasker_run_options_set(ro, "command_line", "load --day 1"), TASKER_STATUS_OK, NULL);
    expect("second attempt", tasker_task_start(t, "etl", "load", ro, &second), TASKER_STATUS_OK, NULL);
    tasker_run_options_free(ro);
    /* Inputs and outputs. */
    expect("input value", tasker_run_add_value(second, false, "date", "2026-03-01"), TASKER_STATUS_OK, NULL);
    expect("output file", tasker_run_add_file(second, true, "program", argv[0], true), TASKER_STATUS_OK, NULL);
    expect("missing file", tasker_run_add_file(second, false, "x", "/no/such/input.csv", false), TASKER_STATUS_INVALID_ARGUMENT, "/no/such/input.csv");
    expect("blank name", tasker_run_add_value(second, false, " ", "v"), TASKER_STATUS_INVALID_ARGUMENT, "name");
    expect("NULL value", tasker_run_add_value(second, false, "v", NULL), TASKER_STATUS_NULL_POINTER, "value");
    expect("second attempt completes", tasker_task_complete(second, NULL), TASKER_STATUS_OK, NULL);
    snprintf(params, sizeof params, "{\"run_id\": \"%s\"}", tasker_run_id(second));
    json = NULL;
    expect("retry run query", tasker_query_json(t, "run", params, &json), TASKER_STATUS_OK, NULL);
    char retry_of[128];
    snprintf(retry_of, sizeof retry_of, "\"retry_of\":\"%s\"", tasker_run_id(first));
    expect_true("attempt 2", json && strstr(json, "\"attempt\":2") != NULL);
    expect_true("retries the failed run", json && strstr(json, retry_of) != NULL);
    expect_true("command line as given", json && strstr(json, "\"command_line\":\"load --day 1\"") != NULL);
    expect_true("program is the executable", json && strstr(json, "\"script_filename\":\"abi_test_") != NULL);
    char version[64];
    snprintf(version, sizeof version, "\"tasker_version\":\"%s\"", tasker_version());
    expect_true("tasker version", json && strstr(json, version) != NULL);
    tasker_string_free(json);
    json = NULL;
    expect("run_io query", tasker_query_json(t, "run_io", params, &json), TASKER_STATUS_OK, NULL);
    expect_true("input value stored", json && strstr(json, "\"value\":\"2026-03-01\"") != NULL);
    expect_true("output file hashed", json && strstr(json, "\"sha256\":\"") != NULL && strstr(json, "\"direction\":\"output\"") != NULL);
    tasker_string_free(json);
    tasker_run_free(first);
    tasker_run_free(second);

    /* Buffers and frees. */
    char small[4];
    tasker_subtask_increment(NULL, 1, 1);
    size_t len = tasker_last_error_message(small, sizeof small);
    expect_true("truncated copy is NUL-terminated", small[3] == 0 && len > 3);
    tasker_string_free(NULL);
    tasker_run_free(NULL);
    tasker_run_options_free(NULL);
    expect("close NULL", tasker_close(NULL), TASKER_STATUS_OK, NULL);

    tasker_run_free(run);
    expect("close", tasker_close(t), TASKER_STATUS_OK, NULL);
    printf("c abi: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
