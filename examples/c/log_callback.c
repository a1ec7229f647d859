/*
 * Routing an existing logging callback into a run's log.
 *
 * Many C libraries report through a callback with a printf-style format and a
 * va_list (`void (*)(void *ctx, int level, const char *fmt, va_list ap)`).
 * `tasker_vlog` below is such a callback: it formats the message (any length)
 * and hands it to `tasker_log`, which only keeps it in memory; the tracker's
 * writer thread stores it with the run's progress. Register it with the
 * library, passing the run as `ctx`, and every line the library logs shows up
 * in `tasker logs RUN`, the dashboard's run page and `get_run_logs()`.
 *
 *   cc -Iinclude examples/c/log_callback.c -Ltarget/debug -ltasker -o log_callback
 *   ./log_callback [sqlite:///path/to/file.db]
 *
 * It also records which items failed (`tasker_item_failed`) and checks what
 * was stored (`tasker_query_json(..., "run_logs", ...)`): it exits 1 if a line
 * is missing, so the C test layer runs it as a test.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasker.h"

#define CHECK(call)                                                                 \
    do {                                                                            \
        tasker_status st_ = (call);                                                 \
        if (st_ != TASKER_STATUS_OK) {                                              \
            fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__,      \
                    #call, tasker_last_error(), tasker_status_name((int32_t)st_));  \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

/* The levels of a typical library (syslog-like numbers). */
enum { LIB_DEBUG = 7, LIB_INFO = 6, LIB_WARNING = 4, LIB_ERROR = 3 };

typedef void (*lib_log_fn)(void *ctx, int level, const char *fmt, va_list ap);

/* The callback: format, map the level, log on the run given as ctx. */
static void tasker_vlog(void *ctx, int level, const char *fmt, va_list ap) {
    const tasker_run *run = ctx;
    const char *name = level <= LIB_ERROR ? "error" : level <= LIB_WARNING ? "warn"
                     : level <= LIB_INFO ? "info" : "debug";
    char small[512];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(again);
        return;
    }
    if ((size_t)n < sizeof small) {
        tasker_log(run, name, small);
    } else {
        /* Longer than the stack buffer: format again into one that fits. */
        char *big = malloc((size_t)n + 1);
        if (big != NULL) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            tasker_log(run, name, big);
            free(big);
        }
    }
    va_end(again);
}

/* A stand-in for the library: it logs through whatever callback it was given. */
static lib_log_fn lib_logger;
static void *lib_logger_ctx;

static void lib_set_logger(lib_log_fn fn, void *ctx) {
    lib_logger = fn;
    lib_logger_ctx = ctx;
}

static void lib_log(int level, const char *fmt, ...) {
    if (lib_logger == NULL) return;
    va_list ap;
    va_start(ap, fmt);
    lib_logger(lib_logger_ctx, level, fmt, ap);
    va_end(ap);
}

static int lib_process(int item) {
    lib_log(LIB_DEBUG, "processing item %d", item);
    if (item % 4 == 3) {
        lib_log(LIB_WARNING, "item %d: checksum mismatch, skipping", item);
        return -1;
    }
    return 0;
}

static int count(const char *haystack, const char *needle) {
    int n = 0;
    for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle)) n++;
    return n;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : NULL;
    tasker_tracker *t = NULL;
    CHECK(tasker_open(url, &t));
    tasker_run *run = NULL;
    CHECK(tasker_task_start(t, "examples", "log callback", NULL, &run));

    lib_set_logger(tasker_vlog, run);
    lib_log(LIB_INFO, "library version %d.%d ready", 2, 7);

    uint32_t sub = 0;
    CHECK(tasker_subtask_start(run, "items", 8, &sub));
    for (int item = 0; item < 8; item++) {
        if (lib_process(item) != 0) {
            char key[32];
            snprintf(key, sizeof key, "item-%d", item);
            CHECK(tasker_item_failed(run, sub, key, "checksum mismatch"));
        }
        CHECK(tasker_subtask_increment(run, sub, 1));
    }
    CHECK(tasker_log_subtask(run, sub, "INFO", "all items seen"));

    /* A long line: formatted in full, then cut to 8 KB by the library. */
    char *long_arg = malloc(10001);
    memset(long_arg, 'x', 10000);
    long_arg[10000] = '\0';
    lib_log(LIB_ERROR, "long: %s", long_arg);
    free(long_arg);

    /* A level that is not one is refused, naming it. */
    if (tasker_log(run, "loud", "x") != TASKER_STATUS_INVALID_ARGUMENT ||
        strstr(tasker_last_error(), "loud") == NULL) {
        fprintf(stderr, "a bad level was not refused by name: %s\n", tasker_last_error());
        return 1;
    }
    CHECK(tasker_subtask_complete(run, sub, NULL));
    CHECK(tasker_task_complete(run, "done"));

    char params[200];
    snprintf(params, sizeof params, "{\"run_id\": \"%s\"}", tasker_run_id(run));
    char *logs = NULL;
    CHECK(tasker_query_json(t, "run_logs", params, &logs));
    char *failed = NULL;
    CHECK(tasker_query_json(t, "item_outcomes", params, &failed));
    int ok = count(logs, "\"log_id\"") == 1 + 8 + 2 + 1 + 1 &&
             count(logs, "checksum mismatch, skipping") == 2 &&
             count(logs, "[cut: 10006 bytes, 8192 kept]") == 1 &&
             count(failed, "\"item_key\":\"item-3\"") == 1 &&
             count(failed, "\"item_key\":\"item-7\"") == 1;
    if (!ok) fprintf(stderr, "unexpected logs:\n%s\n%s\n", logs, failed);
    printf("%d log lines, %d failed items\n", count(logs, "\"log_id\""), count(failed, "\"item_key\""));
    tasker_string_free(logs);
    tasker_string_free(failed);
    tasker_run_free(run);
    CHECK(tasker_close(t));
    return ok ? 0 : 1;
}
