# clear_registered_tasks(): the earlier package's confirmation arguments; tasks
# with history are kept.

test_that("clearing needs a confirmation and keeps tasks that have runs", {
  local_tasker_db()
  register_task(stage = "PREP", name = "download", type = "R", stage_order = 1)
  register_task(stage = "PREP", name = "unused", type = "R", stage_order = 1)
  register_task(stage = "LATER", name = "report", type = "R", stage_order = 2)
  task_start("PREP", "download")
  task_complete()
  # Not interactive and not told otherwise: cancelled, nothing deleted.
  expect_message(expect_false(clear_registered_tasks()), "Cancelled")
  expect_equal(nrow(get_registered_tasks()), 3)
  expect_message(res <- clear_registered_tasks(confirmation_string = NULL, interactive = FALSE),
                 "Kept 1 with runs: PREP/download")
  expect_true(res)
  tasks <- get_registered_tasks()
  expect_equal(tasks$task_name, "download")
  expect_equal(get_stages()$stage_name, "PREP")
  expect_equal(nrow(get_task_history()), 1)
  expect_error(clear_registered_tasks(confirmation_string = 1, interactive = FALSE),
               "confirmation_string", class = "tasker_error")
})
