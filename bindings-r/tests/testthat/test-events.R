# get_run(), health() and on_status_change(): what the Python and C bindings also have.

test_that("get_run returns one run as a one-row data frame", {
  local_tasker_db()
  a <- task_start("s", "a", total_subtasks = 2)
  b <- task_start("s", "b", .active = FALSE)
  row <- get_run()
  expect_s3_class(row, "data.frame")
  expect_equal(nrow(row), 1)
  expect_equal(row$run_id, a)
  expect_equal(row$total_subtasks, 2L)
  expect_named(row, names(get_task_status()))
  expect_equal(get_run(b)$task_name, "b")
  expect_error(get_run("00000000-0000-0000-0000-000000000000"), class = "tasker_not_found")
  expect_error(get_run(42), class = "tasker_argument")
})

test_that("health says the database is reachable and nothing waits", {
  local_tasker_db()
  task_start("s", "t")
  h <- health()
  expect_equal(h$backend, "sqlite")
  expect_true(h$reachable)
  expect_null(h$last_error)
  expect_equal(h$pending_writes, 0)
  expect_equal(h$spooled_writes, 0)
  expect_match(h$location, "sqlite")
})

test_that("on_status_change calls back on R's thread, in order, and can be removed", {
  local_tasker_db()
  seen <- list()
  stop_runs <- on_status_change(function(e) seen[[length(seen) + 1L]] <<- e)
  subs <- character()
  stop_subs <- on_status_change(function(e) subs <<- c(subs, sprintf("%s %s", e$subtask_number, e$new_status)),
                                subtasks = TRUE)
  run_id <- task_start("s", "t")
  # Called at the end of the call that made the change, before it returns.
  expect_length(seen, 1)
  expect_equal(seen[[1]]$new_status, "STARTED")
  subtask_start("a")
  subtask_complete()
  task_complete("done")
  # The first subtask_start made the run RUNNING: an event of its own.
  expect_equal(vapply(seen, `[[`, "", "new_status"), c("STARTED", "RUNNING", "COMPLETED"))
  last <- seen[[3]]
  expect_equal(last$run_id, run_id)
  expect_equal(last$old_status, "RUNNING")
  expect_equal(last$message, "done")
  expect_true(is.na(last$subtask_number))
  expect_s3_class(last$time, "POSIXct")
  expect_equal(subs[!startsWith(subs, "NA ")], c("1 STARTED", "1 COMPLETED"))
  stop_runs()
  task_start("s", "t2")
  expect_length(seen, 3)
  stop_subs()
  expect_false(tasker:::.tasker_env$listening)
})

test_that("callbacks get the stored events, progress's implicit RUNNING included", {
  local_tasker_db()
  seen <- list()
  stop_cb <- on_status_change(function(e) seen[[length(seen) + 1L]] <<- e, subtasks = TRUE)
  run_id <- task_start("s", "progress")
  subtask_start("a")
  subtask_increment(3)
  tasker_flush() # the subtask's STARTED -> RUNNING is stored here
  subtask_complete()
  task_complete()
  tasker_flush() # callbacks of events stored by the writer thread run at the next call
  stored <- get_run_events(run_id)
  expect_equal(vapply(seen, `[[`, 0, "event_id"), stored$event_id)
  expect_equal(vapply(seen, `[[`, "", "kind"), stored$kind)
  expect_equal(vapply(seen, function(e) sprintf("%s %s", e$subtask_number, e$new_status), ""),
               c("NA STARTED", "1 STARTED", "NA RUNNING", "1 RUNNING", "1 COMPLETED", "NA COMPLETED"))
  expect_true(all(diff(stored$event_id) > 0))
  stop_cb()
})

test_that("a failing callback warns, and a callback may itself make transitions", {
  local_tasker_db()
  stop1 <- on_status_change(function(e) stop("callback broke"))
  expect_warning(task_start("s", "t"), "callback broke")
  stop1()
  log <- character()
  stop2 <- on_status_change(function(e) {
    log <<- c(log, paste(e$task_name, e$new_status))
    if (e$task_name == "first" && e$new_status == "COMPLETED") {
      task_complete(run_id = task_start("s", "second", .active = FALSE))
    }
  })
  task_complete(run_id = task_start("s", "first", .active = FALSE))
  expect_equal(log, c("first STARTED", "first COMPLETED", "second STARTED", "second COMPLETED"))
  stop2()
  expect_error(on_status_change("not a function"), class = "tasker_argument")
})

test_that("callbacks follow a newly configured database", {
  local_tasker_db()
  n <- 0
  stop_cb <- on_status_change(function(e) n <<- n + 1)
  tasker_config(path = file.path(withr::local_tempdir(), "other.db"), quiet = TRUE)
  task_start("s", "t")
  expect_equal(n, 1)
  stop_cb()
})
