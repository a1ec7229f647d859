# The examples of the earlier tasker package's README, section by section, as a user
# copies them into a script: run unchanged against this package by
# tests/testthat/test-readme-examples.R (in a directory whose .tasker.yml names an
# SQLite file, as that README's configuration section sets up).
# Written from that package's documented API; nothing is adapted to this package.
# Left out: run_monitor() (the Shiny dashboard; see ?tasker). The process-metrics
# section calls the reporter functions as that package documents them.

library(tasker)

# --- Setup ----------------------------------------------------------------------
tasker_config()
setup_tasker_db()
check_tasker_db()

# --- Register your pipeline's tasks -----------------------------------------------
register_task(stage = "PREREQ", name = "Install R", type = "sh",
              stage_order = 1, description = "Installs R")
register_task(stage = "DAILY", name = "DAILY_FCC_SCRAPE", type = "R",
              stage_order = 2, task_order = 1,
              script_path = "/home/user/pipeline/scripts",
              script_filename = "readme-examples.R",
              log_path = "/home/user/pipeline/logs",
              log_filename = "DAILY_FCC_SCRAPE.Rout")

tasks <- data.frame(
  stage = c("STATIC", "STATIC", "ANNUAL_SEPT"),
  name = c("Static Data Download", "Static Data Process", "Annual Process"),
  type = c("R", "R", "python"),
  stage_order = c(3, 3, 4),
  task_order = c(1, 2, 1),
  description = c("Downloads static files", "Processes them", "Yearly job"),
  stringsAsFactors = FALSE
)
register_tasks(tasks)
get_registered_tasks()
get_stages()

# --- Simplified API: context, auto-numbered subtasks --------------------------------
task_start("STATIC", "Static Data Download", total_subtasks = 3)

subtask_start("Download files", items_total = 3)
for (f in c("a.csv", "b.csv", "c.csv")) {
  subtask_increment()
}
subtask_complete()

subtask_start("Process records", items_total = 400000)
for (i in seq(40000, 400000, by = 40000)) {
  subtask_update(status = "RUNNING", items_complete = i)
}
subtask_complete("Processed all records")

subtask_start("Write output")
subtask_complete()

task_complete("Static data downloaded")

# --- Automatic detection of stage and task from the running script ---------------------
task_start()
subtask_start("Scrape")
subtask_complete()

# --- The original API (explicit run_id), still supported ------------------------------
run_id <- task_start("STATIC", "Static Data Process", total_subtasks = 2)
subtask_start(run_id, 1, "Loading data", items_total = 56)
subtask_update(run_id, 1, "RUNNING", percent = 50, items_complete = 28)
subtask_update(run_id, 1, "COMPLETED", percent = 100, items_complete = 56)
subtask_start(run_id, 2, "Processing")
subtask_update(run_id, 2, "COMPLETED", percent = 100)
task_complete(run_id, "Processing finished")

# --- Parallel processing with a cluster ---------------------------------------------
task_start("ANNUAL_SEPT", "Annual Process", total_subtasks = 1)
subtask_start("Process counties", items_total = 20)
counties <- sprintf("county_%02d", 1:20)
multiplier <- 2
cl <- tasker_cluster(ncores = 2, export = "multiplier",
                     setup_expr = quote({
                       suppressPackageStartupMessages(library(stats))
                       worker_ready <- TRUE
                     }))
results <- parallel::parLapply(cl, counties, function(county) {
  stopifnot(worker_ready)
  subtask_increment()
  nchar(county) * multiplier
})
stop_tasker_cluster(cl)
subtask_complete()
task_complete()

# --- Error handling ---------------------------------------------------------------------
task_start("PREREQ", "Install R")
tryCatch({
  subtask_start("Download installer")
  stop("mirror unreachable")
}, error = function(e) {
  task_fail(error_message = conditionMessage(e))
})

# --- Process metrics (the reporter) ----------------------------------------------------------
reporter <- start_reporter(collection_interval = 10)
reporter_state <- check_reporter()
metrics <- collect_process_metrics(run_id = run_id, process_id = Sys.getpid())
cat(sprintf("memory: %.0f MB, alive: %s\n", metrics$memory_mb, metrics$is_alive))
stop_reporter()

# --- Monitoring and queries -----------------------------------------------------------------
status <- get_task_status()
active <- get_active_tasks()
progress <- get_subtask_progress(run_id)
history <- get_task_history(limit = 10)
print(status[, c("stage_name", "task_name", "status")])

# --- Fixing a task's status by hand (the scrape above never called task_complete) ------------
find_and_update_task(filename = "readme-examples.R", status = "COMPLETED",
                     message = "Marked complete by hand")
find_and_update_subtask(stage = "STATIC", task = "Static Data Process", subtask = 2,
                        message = "checked by hand")

# --- Completion estimates --------------------------------------------------------------------
format_duration_seconds(3725)
format_completion_with_ci(NULL)

cat("README examples: done\n")
