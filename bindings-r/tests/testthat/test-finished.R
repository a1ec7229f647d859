# Finished is finished, the same rule as in C, Python and Rust: finishing twice
# is not an error and records nothing; progress after the end is refused.

test_that("completing or failing twice succeeds and changes nothing", {
  local_tasker_db()
  run_id <- task_start("s", "twice")
  subtask_start("a", items_total = 2)
  subtask_increment(increment = 2)
  subtask_complete(message = "done")
  n_events <- nrow(get_run_events(run_id))
  expect_silent(subtask_complete())
  expect_silent(subtask_update(status = "COMPLETED"))
  task_complete(message = "all done")
  n_events <- nrow(get_run_events(run_id))
  expect_silent(task_complete(message = "again"))
  expect_silent(task_update(status = "COMPLETED"))
  expect_equal(nrow(get_run_events(run_id)), n_events)
  st <- get_task_status()
  expect_equal(st$status, "COMPLETED")
  expect_equal(st$overall_progress_message, "all done")
  # A different finished status still needs a reset.
  expect_error(task_fail("late"), "COMPLETED", class = "tasker_invalid_transition")

  run2 <- task_start("s", "fail twice")
  task_fail("first")
  expect_silent(task_fail("second"))
  expect_equal(get_task_status(stage = "s", task = "fail twice")$error_message, "first")
})

test_that("progress after a subtask finished is refused, not stored", {
  local_tasker_db()
  task_start("s", "late")
  subtask_start("a", items_total = 10)
  subtask_update(items_complete = 3)
  subtask_complete()
  expect_error(subtask_update(items_complete = 10), class = "tasker_invalid_transition")
  expect_error(subtask_increment(), class = "tasker_invalid_transition")
  p <- get_subtask_progress()
  expect_equal(p$status, "COMPLETED")
  expect_equal(p$items_complete, 3)
})
