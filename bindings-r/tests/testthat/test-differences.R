# The documented differences from the earlier tasker package (?tasker).

test_that("an unknown run or subtask is an error, not a silent TRUE", {
  local_tasker_db()
  ghost <- "00000000-0000-0000-0000-000000000000"
  expect_error(task_update(status = "COMPLETED", run_id = ghost), class = "tasker_not_found")
  expect_error(task_complete(run_id = ghost), class = "tasker_not_found")
  expect_error(task_fail("x", run_id = ghost), class = "tasker_not_found")
  expect_error(subtask_update(items_complete = 1, run_id = ghost), class = "tasker_not_found")
  expect_error(subtask_increment(run_id = ghost), class = "tasker_not_found")
  expect_error(subtask_start("a", run_id = ghost), class = "tasker_not_found")
  run_id <- task_start("s", "t")
  expect_error(subtask_increment(subtask_number = 7), class = "tasker_not_found")
  expect_error(subtask_update(items_complete = 1, subtask_number = 7), class = "tasker_not_found")
  expect_error(subtask_complete(subtask_number = 7), class = "tasker_not_found")
  # Nothing started yet and no number: an error naming the fix.
  expect_error(subtask_increment(), "subtask_start", class = "tasker_not_found")
})

test_that("updates without a status leave it unchanged and never reopen finished work", {
  local_tasker_db()
  task_start("s", "t")
  subtask_start("a", items_total = 10)
  subtask_update(items_complete = 3)
  expect_equal(get_subtask_progress()$status, "RUNNING") # STARTED -> RUNNING on progress
  subtask_complete()
  # Progress for finished work is refused (it would read COMPLETED at 3/10).
  expect_error(subtask_update(message = "late note"), "finished",
               class = "tasker_invalid_transition")
  expect_error(subtask_increment(), class = "tasker_invalid_transition")
  expect_equal(get_subtask_progress()$status, "COMPLETED")
  expect_equal(get_subtask_progress()$items_complete, 3)
  task_complete()
  task_update(message = "after the end")
  expect_equal(get_task_status()$status, "COMPLETED")
})

test_that("terminal states are sticky unless reset", {
  local_tasker_db()
  run_id <- task_start("s", "t")
  subtask_start("a")
  subtask_update(status = "FAILED", error_message = "bad")
  expect_error(subtask_update(status = "RUNNING"), class = "tasker_invalid_transition")
  expect_error(subtask_complete(), class = "tasker_invalid_transition")
  subtask_update(status = "RUNNING", reset = TRUE)
  expect_equal(get_subtask_progress()$status, "RUNNING")
  task_complete()
  expect_error(task_fail("late"), "COMPLETED", class = "tasker_invalid_transition")
  expect_error(task_update(status = "RUNNING"), class = "tasker_invalid_transition")
  expect_equal(get_task_status()$status, "COMPLETED")
})

test_that("restarting a subtask number never keeps stale progress", {
  local_tasker_db()
  task_start("s", "t")
  subtask_start("a", items_total = 10)
  subtask_increment(7)
  subtask_complete()
  expect_error(subtask_start("a again", subtask_number = 1), class = "tasker_already_exists")
  subtask_start("a again", subtask_number = 1, items_total = 10, restart = TRUE)
  st <- get_subtask_progress()
  expect_equal(st$items_complete, 0)
  expect_equal(st$status, "STARTED")
  expect_true(is.na(st$end_time))
  expect_equal(st$subtask_name, "a again")
})

test_that("subtask numbers come from the database, not an in-process counter", {
  local_tasker_db()
  run_id <- task_start("s", "t")
  subtask_start("one")
  subtask_start("two")
  tasker_context(NULL)
  tasker_context(run_id) # the earlier package restarted at 1 here
  expect_equal(subtask_start("three"), 3L)
  expect_equal(get_subtask_progress(run_id)$subtask_name, c("one", "two", "three"))
})

test_that("percent is derived from items when items are known", {
  local_tasker_db()
  task_start("s", "t", total_subtasks = 2)
  subtask_start("a", items_total = 200)
  subtask_update(items_complete = 50, percent = 99)
  expect_equal(get_subtask_progress()$percent_complete, 25)
  row <- get_task_status()
  expect_equal(row$overall_percent_complete, 12.5) # one of two subtasks a quarter done
})

test_that("a crashed script shows up as lost", {
  db <- local_tasker_db()
  res <- run_r_script(c(
    "library(tasker)",
    sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
    "task_start('s', 'crashy', quiet = TRUE)",
    "subtask_start('work', quiet = TRUE)",
    "tools::pskill(Sys.getpid(), tools::SIGKILL)"
  ))
  row <- get_task_status(task = "crashy")
  expect_true(row$status %in% c("STARTED", "RUNNING"))
  expect_true(row$lost)
  expect_true(get_active_tasks()$lost)
  # A live run is not lost.
  task_start("s", "alive")
  expect_false(get_task_status(task = "alive")$lost)
})

test_that("registered tasks that never ran are listed as NOT_STARTED", {
  local_tasker_db()
  register_task("s", "never")
  row <- get_task_status()
  expect_equal(row$status, "NOT_STARTED")
  expect_true(is.na(row$run_id))
})

test_that("several active runs of one task are all listed", {
  local_tasker_db()
  task_start("s", "t")
  task_start("s", "t")
  expect_equal(nrow(get_active_tasks()), 2)
  expect_equal(nrow(get_task_status()), 1)
})

test_that("a failed subtask keeps the detail of its error, cleared by a restart", {
  local_tasker_db()
  task_start("s", "t")
  n <- subtask_start("parse")
  trace <- "Error in read.csv(f): cannot open file 'x.csv'\nCalls: main -> read.csv"
  subtask_update(status = "FAILED", error_message = "cannot open x.csv", error_detail = trace)
  row <- get_subtask_progress()
  expect_identical(row$error_message, "cannot open x.csv")
  expect_identical(row$error_detail, trace)
  expect_error(subtask_update(error_detail = "no status"), "error_detail", class = "tasker_argument")
  subtask_start("parse", subtask_number = n, restart = TRUE)
  expect_true(is.na(get_subtask_progress()$error_detail))
})

test_that("progress with a peer-style conn argument is recorded, not refused", {
  local_tasker_db()
  task_start("s", "t")
  subtask_start("rows", items_total = 10)
  assign("conn_noted", FALSE, envir = tasker:::.tasker_env)
  expect_message(subtask_update(items_complete = 4, conn = "legacy connection"), "ignored")
  subtask_update(items_complete = 6, conn = "legacy connection")
  tasker_flush()
  expect_equal(get_subtask_progress()$items_complete, 6)
})
