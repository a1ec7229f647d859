# Task statistics from stored history, and the process's resource samples.

test_that("get_task_stats counts runs by outcome with typed columns and filters", {
  local_tasker_db()
  for (i in 1:3) with_task("stats", "ok", Sys.sleep(0.02), quiet = TRUE)
  try(with_task("stats", "ok", stop("bad input"), quiet = TRUE), silent = TRUE)
  with_subtask_run <- task_start("stats", "items", quiet = TRUE)
  subtask_start("rows", items_total = 50, quiet = TRUE)
  Sys.sleep(0.05) # durations are kept in milliseconds: a run of 0 ms has no rate
  subtask_update(items_complete = 50, quiet = TRUE)
  task_complete(quiet = TRUE)
  open <- task_start("stats", "open", quiet = TRUE)
  s <- get_task_stats(stage = "stats")
  expect_equal(s$task_name, c("items", "ok", "open"))
  ok <- s[s$task_name == "ok", ]
  expect_identical(c(ok$runs, ok$logical_runs, ok$completed, ok$failed, ok$active), c(4L, 4L, 3L, 1L, 0L))
  expect_equal(ok$success_rate, 0.75)
  expect_gte(ok$duration_p50, 0.02)
  expect_lte(ok$duration_p50, ok$duration_p90)
  expect_lte(ok$duration_p90, ok$duration_p95)
  expect_lte(ok$duration_p95, ok$duration_max)
  expect_true(ok$last_failure >= ok$last_start - 1)
  expect_true(s$items_per_second[s$task_name == "items"] > 0)
  expect_true(is.na(ok$items_per_second))
  op <- s[s$task_name == "open", ]
  expect_identical(c(op$active, op$completed), c(1L, 0L))
  expect_true(is.na(op$success_rate))
  types <- vapply(s, function(x) class(x)[[1L]], "")
  expect_equal(unname(types[c("runs", "logical_runs", "completed", "failed", "lost", "cancelled", "skipped",
                              "active", "retried")]), rep("integer", 9))
  expect_equal(unname(types[c("success_rate", "mean_attempts", "duration_p50", "duration_p90",
                              "duration_p95", "duration_mean", "duration_max", "items_per_second")]),
               rep("numeric", 8))
  expect_equal(unname(types[c("last_start", "last_success", "last_failure")]), rep("POSIXct", 3))
  # Filters: one task, the latest run only, a window that starts later.
  expect_equal(nrow(get_task_stats(task = "ok")), 1)
  expect_identical(get_task_stats(task = "ok", limit = 1)$runs, 1L)
  expect_identical(get_task_stats(task = "ok", limit = 1)$failed, 1L)
  expect_equal(nrow(get_task_stats(since = Sys.time() + 3600)), 0)
  expect_identical(get_task_stats(task = "ok", since = Sys.time() - 3600)$runs, 4L)
  expect_equal(nrow(get_task_stats(stage = "nothing here")), 0)
  expect_error(get_task_stats(limit = 0), class = "tasker_argument")
  expect_error(get_task_stats(since = "not a time"), "invalid since", class = "tasker_argument")
  expect_error(get_task_stats(stage = 1), class = "tasker_argument")
  task_complete(run_id = open, quiet = TRUE)
})

sampling_available <- function() file.exists("/proc/self/stat")

test_that("a process samples itself and its children for its run", {
  skip_if_not(sampling_available(), "process sampling needs /proc (Linux)")
  withr::local_envvar(TASKER_SAMPLE_INTERVAL_S = "1")
  local_tasker_db()
  expect_equal(get_tasker_config()$sample_interval_s, 1)
  run_id <- task_start("samples", "busy", quiet = TRUE)
  subtask_start("wait", items_total = 14, quiet = TRUE)
  # A forked child that holds about 200 MB for a few seconds: the run's samples
  # count it among the children.
  child <- parallel::mcparallel({
    x <- rnorm(2.5e7)
    Sys.sleep(3)
    length(x)
  })
  for (i in 1:14) {
    Sys.sleep(0.25)
    subtask_increment(quiet = TRUE)
  }
  expect_equal(parallel::mccollect(child)[[1]], 2.5e7)
  tasker_flush()
  s <- get_run_samples(run_id)
  expect_gte(nrow(s), 2)
  expect_true(all(s$pid == Sys.getpid()))
  expect_true(all(s$rss_bytes > 0))
  expect_true(all(diff(as.numeric(s$time)) > 0))
  expect_true(is.na(s$cpu_percent[[1]]))
  expect_gte(max(s$children), 1)
  expect_gte(max(s$children_rss_bytes), 180e6)
  expect_identical(vapply(s, function(x) class(x)[[1L]], ""),
                   c(time = "POSIXct", pid = "integer", cpu_seconds = "numeric", cpu_percent = "numeric",
                     rss_bytes = "numeric", peak_rss_bytes = "numeric", read_bytes = "numeric",
                     write_bytes = "numeric", threads = "integer", open_fds = "integer",
                     children = "integer", children_cpu_seconds = "numeric",
                     children_rss_bytes = "numeric"))
  # The current run is the default.
  expect_equal(nrow(get_run_samples()), nrow(s))
  task_complete(quiet = TRUE)
  expect_error(get_run_samples("4b0c7c8e-0000-4000-8000-000000000000"), class = "tasker_not_found")
})

test_that("sampling off (interval 0) records no samples", {
  skip_if_not(sampling_available(), "process sampling needs /proc (Linux)")
  local_tasker_db()
  tasker_config(path = get_tasker_config()$path, sample_interval_s = 0, quiet = TRUE)
  expect_equal(get_tasker_config()$sample_interval_s, 0)
  run_id <- task_start("samples", "off", quiet = TRUE)
  subtask_start("wait", items_total = 6, quiet = TRUE)
  for (i in 1:6) {
    Sys.sleep(0.25)
    subtask_increment(quiet = TRUE)
  }
  task_complete(quiet = TRUE)
  expect_equal(nrow(get_run_samples(run_id)), 0)
  expect_error(tasker_config(path = get_tasker_config()$path, sample_interval_s = -1, quiet = TRUE),
               class = "tasker_argument")
})
