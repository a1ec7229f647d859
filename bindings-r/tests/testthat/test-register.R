test_that("register_task registers and updates without clearing fields", {
  local_tasker_db()
  id <- register_task("prepare", "download", "R", description = "fetch", script_path = "/x/dl.R",
                      stage_order = 1, task_order = 2)
  expect_true(is.numeric(id))
  tasks <- get_registered_tasks()
  expect_equal(nrow(tasks), 1)
  expect_equal(tasks$script_filename, "dl.R")
  expect_equal(tasks$stage_order, 1L)
  expect_s3_class(tasks$created_at, "POSIXct")
  expect_equal(attr(tasks$created_at, "tzone"), "UTC")
  # stage_order and type are optional; NULL never clears a stored value.
  id2 <- register_task("prepare", "download")
  expect_equal(id2, id)
  tasks <- get_registered_tasks()
  expect_equal(tasks$description, "fetch")
  expect_equal(tasks$task_type, "R")
  # The task's description is not copied onto the stage.
  expect_true(is.na(get_stages()$description))
})

test_that("register_tasks registers a data frame in one transaction", {
  local_tasker_db()
  df <- data.frame(stage = c("a", "a", "b"), name = c("t1", "t2", "t3"), type = "R",
                   stage_order = c(1, 1, 2), task_order = c(1, 2, 1))
  ids <- register_tasks(df)
  expect_length(ids, 3)
  expect_equal(get_registered_tasks()$task_name, c("t1", "t2", "t3"))
  expect_equal(get_registered_tasks(stage = "a")$task_name, c("t1", "t2"))
  expect_equal(get_registered_tasks(name = "t3")$stage_name, "b")
  expect_equal(get_stages()$stage_name, c("a", "b"))
  # One bad row: nothing is registered.
  bad <- data.frame(stage = c("c", "c"), name = c("ok", " "))
  expect_error(register_tasks(bad), class = "tasker_argument")
  expect_equal(nrow(get_registered_tasks(stage = "c")), 0)
  expect_error(register_tasks(data.frame(stage = "x")), class = "tasker_argument")
})

test_that("get_stages orders by stage_order", {
  local_tasker_db()
  register_task("late", "t", stage_order = 2)
  register_task("early", "t", stage_order = 1)
  expect_equal(get_stages()$stage_name, c("early", "late"))
  expect_named(get_stages(), c("stage_id", "stage_name", "stage_order", "description", "created_at", "updated_at"))
})
