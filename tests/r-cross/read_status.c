/* Reads a tasker database written by R and prints the task status as JSON
   (the reverse direction of the R test that reads the C example's database). */
#include <stdio.h>

#include "tasker.h"

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    tasker_tracker *t = NULL;
    if (tasker_open(argv[1], &t) != TASKER_STATUS_OK) {
        fprintf(stderr, "open: %s\n", tasker_last_error());
        return 1;
    }
    char *json = NULL;
    if (tasker_query_json(t, "task_status", NULL, &json) != TASKER_STATUS_OK) {
        fprintf(stderr, "query: %s\n", tasker_last_error());
        return 1;
    }
    printf("%s\n", json);
    tasker_string_free(json);
    tasker_close(t);
    return 0;
}
