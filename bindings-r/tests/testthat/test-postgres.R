# Same pipeline on SQLite and on PostgreSQL: same columns, same types, same values.
# scripts/test-r.sh starts a throwaway server (tests/pg.sh) when PostgreSQL is installed.

pg_uri <- function() Sys.getenv("TASKER_PG_URI")

small_pipeline <- function() {
  register_task("s", "t", "R", stage_order = 1, task_order = 1, script_filename = "t.R")
  register_task("s", "never", stage_order = 1, task_order = 2)
  with_task("s", "t", metadata = '{"a": 1}', {
    with_subtask("rows", items_total = 10, for (i in 1:10) subtask_increment())
    with_subtask("pct", subtask_update(percent = 50))
  })
  tries <- 0
  with_task("s", "retried", { tries <- tries + 1; if (tries < 2) stop("once") }, retries = 1)
  open <- task_start("s", "t2")
  f <- tempfile()
  writeLines("x", f)
  add_input("file", f, hash = TRUE)
  add_output("n", 1)
  subtask_start("open", items_total = 4)
  subtask_update(items_complete = 1)
  tasker_flush()
  list(status = get_task_status(), history = get_task_history(), active = get_active_tasks(),
       subtasks = get_subtask_progress(get_task_history(task = "t")$run_id),
       tasks = get_registered_tasks(), stages = get_stages(), events = get_run_events(),
       stats = get_task_stats(), io = get_run_io(open), samples = get_run_samples(open))
}

test_that("PostgreSQL and SQLite return the same columns, types and values", {
  skip_if(!nzchar(pg_uri()), "no PostgreSQL server (TASKER_PG_URI unset; scripts/test-r.sh starts one)")
  local_tasker_db()
  lite <- small_pipeline()
  tasker_config(url = pg_uri(), schema = sprintf("r_test_%d", Sys.getpid()), quiet = TRUE)
  expect_equal(get_tasker_config()$driver, "postgresql")
  pg <- small_pipeline()
  for (k in names(lite)) {
    expect_identical(names(pg[[k]]), names(lite[[k]]), label = paste(k, "columns"))
    expect_identical(lapply(pg[[k]], class), lapply(lite[[k]], class), label = paste(k, "types"))
    expect_equal(nrow(pg[[k]]), nrow(lite[[k]]), label = paste(k, "rows"))
  }
  expect_equal(pg$status$status, lite$status$status)
  expect_equal(pg$subtasks$items_complete, lite$subtasks$items_complete)
  expect_equal(pg$subtasks$percent_complete, lite$subtasks$percent_complete)
  expect_equal(pg$events$new_status, lite$events$new_status)
  expect_equal(pg$stats[, c("task_name", "runs", "logical_runs", "completed")],
               lite$stats[, c("task_name", "runs", "logical_runs", "completed")])
  expect_equal(pg$history$attempt, lite$history$attempt)
  expect_equal(pg$io[, c("name", "value", "size_bytes", "sha256")], lite$io[, c("name", "value", "size_bytes", "sha256")])
  expect_equal(attr(pg$status$start_time, "tzone"), "UTC")
})

test_that("PSOCK workers count exactly into PostgreSQL", {
  skip_if(!nzchar(pg_uri()), "no PostgreSQL server (TASKER_PG_URI unset; scripts/test-r.sh starts one)")
  local_tasker_db()
  tasker_config(url = pg_uri(), schema = sprintf("r_psock_%d", Sys.getpid()), quiet = TRUE)
  run_id <- task_start("pg", "psock")
  subtask_start("items", items_total = 8000)
  cl <- tasker_cluster(2)
  parallel::parLapply(cl, 1:4, function(i) for (k in 1:2000) subtask_increment())
  stop_tasker_cluster(cl, quiet = TRUE)
  expect_equal(get_subtask_progress(run_id)$items_complete, 8000)
})
