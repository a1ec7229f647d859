# A tracked R process for tests/scale: like worker.c, with the earlier package's API.
library(tasker)
pause <- as.numeric(Sys.getenv("TASKER_TEST_WORK_MS", "0")) / 4000
task_start("scale", Sys.getenv("TASKER_TEST_TASK"), quiet = TRUE)
for (s in 0:2) {
  subtask_start(sprintf("part %d", s), items_total = 100, quiet = TRUE)
  for (k in 1:100) {
    subtask_increment()
    if (k %% 25L == 1L) Sys.sleep(pause)
  }
  subtask_complete(quiet = TRUE)
}
task_complete(message = "done", quiet = TRUE)
cat("DONE\n")
