# A small tracked pipeline in R: registers its tasks, then downloads (simulated)
# files, validates them in parallel worker processes, fits a model with a step
# that fails and is handled, and prints the status of every task.
#
#   Rscript examples/r/pipeline.R [sqlite:///path/to/file.db]
#   (default: TASKER_DB_URL, a .tasker.yml, or the user's default database)
#
# Watch it from another terminal with `tasker watch`.
library(tasker)

args <- commandArgs(trailingOnly = TRUE)
if (length(args)) tasker_config(url = args[[1]]) else tasker_config()

register_tasks(data.frame(
  stage = c("prepare", "prepare", "model"),
  name = c("download", "validate", "fit"),
  type = "R",
  stage_order = c(1, 1, 2),
  task_order = c(1, 2, 1),
  script_filename = "pipeline.R",
  description = c("fetch the raw files", "check every record", "fit and summarise")
))

files <- sprintf("part-%02d.csv", 1:12)

# 1. One item per file; the subtask completes when track() returns.
with_task("prepare", "download", total_subtasks = 1, {
  sizes <- track(files, function(f) {
    Sys.sleep(0.02) # the download
    nchar(f) * 1000
  }, name = "download files")
})

# 2. Records checked in four forked workers, all counting into one subtask.
with_task("prepare", "validate", {
  with_subtask("check records", items_total = 4 * 25000, {
    counts <- parallel::mclapply(1:4, function(worker) {
      for (record in 1:25000) subtask_increment()
      tasker_flush() # a forked child exits without exit hooks: write what is pending
      25000
    }, mc.cores = 2)
  })
})

# 3. A step that fails is recorded and handled; the task still completes.
with_task("model", "fit", total_subtasks = 3, {
  with_subtask("load features", items_total = 100, {
    for (i in 1:100) subtask_update(items_complete = i)
  })
  ok <- tryCatch({
    with_subtask("optional tuning", stop("tuning server unavailable"))
    TRUE
  }, error = function(e) FALSE)
  subtask_start("summarise")
  subtask_update(percent = 50, message = "half way")
  subtask_complete("summary written")
  task_update(message = if (ok) "tuned" else "fitted without tuning")
})

status <- get_task_status()
print(status[, c("stage_name", "task_name", "status", "overall_percent_complete", "duration_seconds")])
fit <- status$run_id[status$task_name == "fit"]
print(get_subtask_progress(fit)[, c("subtask_number", "subtask_name", "status", "items_complete", "error_message")])
