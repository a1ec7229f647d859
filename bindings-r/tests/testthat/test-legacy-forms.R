# The older call form with the run id first, as the earlier package's README shows it.

test_that("subtask_start(run_id, 1, name) works, with one deprecation warning per session", {
  local_tasker_db()
  assign("legacy_warned_subtask_start", NULL, envir = tasker:::.tasker_env)
  run_id <- task_start("s", "t", .active = FALSE)
  w <- tryCatch(subtask_start(run_id, 1, "Load data", items_total = 56), warning = identity)
  expect_s3_class(w, "tasker_deprecated")
  expect_match(conditionMessage(w), "subtask_start(subtask_name, items_total, run_id = run_id", fixed = TRUE)
  # The call above stopped at the warning: the subtask is started by the next one.
  expect_equal(nrow(get_subtask_progress(run_id)), 0)
  expect_silent(n <- subtask_start(run_id, 2, "Clean data", 10)) # no second warning
  expect_equal(n, 2L)
  st <- get_subtask_progress(run_id)
  expect_equal(st$subtask_name, "Clean data")
  expect_equal(st$items_total, 10)
  expect_null(tasker_context()) # the run was given, the context is untouched
})

test_that("the warning is given once and the call still does its work", {
  local_tasker_db()
  assign("legacy_warned_subtask_start", NULL, envir = tasker:::.tasker_env)
  run_id <- task_start("s", "t")
  expect_warning(n <- subtask_start(run_id, 1, "Load data", items_total = 56), class = "tasker_deprecated")
  expect_equal(n, 1L)
  expect_equal(get_subtask_progress(run_id)$items_total, 56)
})

test_that("subtask_update(run_id, 1, status), subtask_complete(run_id, 1) and task_complete(run_id, msg)", {
  local_tasker_db()
  for (f in c("subtask_update", "subtask_complete", "task_complete", "task_update", "task_fail")) {
    assign(paste0("legacy_warned_", f), TRUE, envir = tasker:::.tasker_env) # warnings seen once already
  }
  a <- task_start("s", "a")
  b <- task_start("s", "b") # the context is b: the old form must still reach a
  subtask_start("one", items_total = 10, run_id = a)
  subtask_update(a, 1, "RUNNING", items_complete = 4, message = "four")
  tasker_flush()
  st <- get_subtask_progress(a)
  expect_equal(st$status, "RUNNING")
  expect_equal(st$items_complete, 4)
  expect_equal(st$progress_message, "four")
  subtask_complete(a, 1)
  expect_equal(get_subtask_progress(a)$status, "COMPLETED")
  task_complete(a, "all done")
  row <- get_run(a)
  expect_equal(row$status, "COMPLETED")
  expect_equal(row$overall_progress_message, "all done")
  expect_equal(get_run(b)$status, "STARTED")
  task_fail(b, "broken")
  expect_equal(get_run(b)$error_message, "broken")
})

test_that("a run-id-shaped string that names no run is not taken for the old form", {
  local_tasker_db()
  task_start("s", "t")
  ghost <- "00000000-0000-7000-8000-000000000000"
  expect_silent(subtask_start(ghost))
  expect_equal(get_subtask_progress()$subtask_name, ghost)
  expect_error(subtask_update(ghost, 1, "RUNNING"), "'arg' should be one of")
  task_complete(ghost) # the message, as before
  expect_equal(get_run()$overall_progress_message, ghost)
})
