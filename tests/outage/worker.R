# An R worker on a shared run (tests/outage): like worker.c, through the API of
# the existing R package (run_id and subtask_number arguments).
library(tasker)
run_id <- Sys.getenv("TASKER_TEST_RUN")
signals <- Sys.getenv("TASKER_TEST_SIGNALS")
tag <- Sys.getenv("TASKER_TEST_TAG")
items <- 40L
i <- 0L
while (!file.exists(file.path(signals, "stop"))) {
  name <- sprintf("%s-%d", tag, i)
  n <- subtask_start(name, items_total = items, run_id = run_id, quiet = TRUE)
  for (k in seq_len(items)) {
    subtask_increment(run_id = run_id, subtask_number = n)
    if (k %% 10L == 1L) Sys.sleep(0.002)
  }
  subtask_complete(message = "done", quiet = TRUE, run_id = run_id, subtask_number = n)
  cat(sprintf("SUBTASK %s %d\n", name, n))
  i <- i + 1L
}
cat("DONE\n")
