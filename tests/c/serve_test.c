/* The dashboard server from C: tasker_serve_start / tasker_serve_url / tasker_serve_stop.
 * Starts and stops it twice in one process, reads /healthz over a plain socket, and
 * checks that a non-loopback address is refused without a token, as `tasker serve`
 * refuses it, and served with one (TASKER_SERVE_TOKEN).
 *
 *   serve_test sqlite:///tmp/x.db        exit status 0 when every check passes */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tasker.h"

static int failures = 0;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            failures++;                                    \
            fprintf(stderr, "FAIL line %d: ", __LINE__);   \
            fprintf(stderr, __VA_ARGS__);                  \
            fprintf(stderr, " (%s)\n", tasker_last_error()); \
        }                                                  \
    } while (0)

/* GET `path` from http://127.0.0.1:port/ (HTTP/1.0); the whole reply in `buf`. */
static int http_get(int port, const char *path, const char *auth, char *buf, size_t size) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s%s%s\r\n", path,
                     auth ? "Authorization: Bearer " : "", auth ? auth : "", auth ? "\r\n" : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < size && (r = read(fd, buf + got, size - 1 - got)) > 0) got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    return (int)got;
}

static int port_of(const char *url) {
    const char *colon = strrchr(url, ':');
    return colon ? atoi(colon + 1) : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DB_URL\n", argv[0]);
        return 2;
    }
    unsetenv("TASKER_SERVE_TOKEN");
    tasker_tracker *t = NULL;
    if (tasker_open(argv[1], &t) != TASKER_STATUS_OK) {
        fprintf(stderr, "open: %s\n", tasker_last_error());
        return 1;
    }
    tasker_run *run = NULL;
    CHECK(tasker_task_start(t, "serve", "from C", NULL, &run) == TASKER_STATUS_OK, "task_start");
    char reply[8192];

    /* Twice in one process: each start binds, serves, and stops cleanly. */
    for (int round = 0; round < 2; round++) {
        tasker_server *s = NULL;
        CHECK(tasker_serve_start(t, "127.0.0.1:0", &s) == TASKER_STATUS_OK, "start, round %d", round);
        if (!s) continue;
        char *url = NULL;
        CHECK(tasker_serve_url(s, &url) == TASKER_STATUS_OK && url, "url");
        CHECK(url && strncmp(url, "http://127.0.0.1:", 17) == 0, "url is %s", url ? url : "NULL");
        int port = url ? port_of(url) : -1;
        CHECK(port > 0, "port of %s", url ? url : "NULL");
        int n = http_get(port, "/healthz", NULL, reply, sizeof reply);
        CHECK(n > 0 && strstr(reply, " 200 ") && strstr(reply, "\"status\":\"ok\""), "/healthz: %s", reply);
        n = http_get(port, "/api/v1/status", NULL, reply, sizeof reply);
        CHECK(n > 0 && strstr(reply, "from C"), "the running task in /api/v1/status");
        tasker_string_free(url);
        CHECK(tasker_serve_stop(s) == TASKER_STATUS_OK, "stop, round %d", round);
        CHECK(http_get(port, "/healthz", NULL, reply, sizeof reply) < 0, "nothing listens after stop");
    }

    /* Not loopback and no token: refused as `tasker serve` refuses it. */
    tasker_server *s = NULL;
    tasker_status st = tasker_serve_start(t, "0.0.0.0:0", &s);
    CHECK(st == TASKER_STATUS_INVALID_ARGUMENT, "a public address without a token: status %d", st);
    CHECK(s == NULL, "nothing written to out on failure");
    CHECK(strstr(tasker_last_error(), "refusing") && strstr(tasker_last_error(), "--token"), "message");

    /* With a token from the environment it serves, and asks for it. */
    setenv("TASKER_SERVE_TOKEN", "s3cret-token-0123456789", 1);
    CHECK(tasker_serve_start(t, "0.0.0.0:0", &s) == TASKER_STATUS_OK, "a public address with a token");
    if (s) {
        char *url = NULL;
        tasker_serve_url(s, &url);
        int port = url ? port_of(url) : -1;
        http_get(port, "/api/v1/status", NULL, reply, sizeof reply);
        CHECK(strstr(reply, " 401 ") != NULL, "no token: 401");
        http_get(port, "/api/v1/status", "s3cret-token-0123456789", reply, sizeof reply);
        CHECK(strstr(reply, " 200 ") != NULL, "with the token: 200");
        tasker_string_free(url);
        CHECK(tasker_serve_stop(s) == TASKER_STATUS_OK, "stop");
    }
    unsetenv("TASKER_SERVE_TOKEN");

    CHECK(tasker_serve_start(t, "not an address", &s) == TASKER_STATUS_INVALID_ARGUMENT, "bad bind");
    CHECK(tasker_serve_start(NULL, NULL, &s) == TASKER_STATUS_NULL_POINTER, "NULL tracker");
    CHECK(tasker_serve_stop(NULL) == TASKER_STATUS_OK, "stop(NULL) is a no-op");
    CHECK(strcmp(tasker_status_name(TASKER_STATUS_UNSUPPORTED), "UNSUPPORTED") == 0, "status name");

    CHECK(tasker_task_complete(run, "done") == TASKER_STATUS_OK, "complete");
    tasker_run_free(run);
    tasker_close(t);
    printf("c serve: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
