test_that("with_task completes the run and returns the value", {
  local_tasker_db()
  before <- task_start("s", "outer")
  value <- with_task("s", "inner", {
    inner <- tasker_context()
    with_subtask("rows", items_total = 3, for (i in 1:3) subtask_increment())
    42
  }, total_subtasks = 1)
  expect_equal(value, 42)
  expect_equal(tasker_context(), before) # the previous run is current again
  row <- get_task_status(task = "inner")
  expect_equal(row$status, "COMPLETED")
  expect_equal(row$total_subtasks, 1L)
  st <- get_subtask_progress(row$run_id)
  expect_equal(st$items_complete, 3)
  expect_equal(st$status, "COMPLETED")
})

test_that("with_task records the error with its call stack and re-signals it", {
  local_tasker_db()
  f <- function() g()
  g <- function() stop(structure(class = c("my_error", "error", "condition"),
                                 list(message = "disk on fire", call = NULL)))
  expect_error(with_task("s", "t", {
    with_subtask("step", f())
  }), class = "my_error")
  row <- get_task_status(task = "t")
  expect_equal(row$status, "FAILED")
  expect_equal(row$error_message, "disk on fire")
  expect_match(row$error_detail, "f()", fixed = TRUE)
  expect_match(row$error_detail, "g()", fixed = TRUE)
  st <- get_subtask_progress(row$run_id)
  expect_equal(st$status, "FAILED")
  expect_equal(st$error_message, "disk on fire")
  expect_null(tasker_context())
})

test_that("with_subtask restores the previous current subtask", {
  local_tasker_db()
  task_start("s", "t")
  subtask_start("outer")
  with_subtask("inner", subtask_increment(5))
  subtask_increment()
  st <- get_subtask_progress()
  expect_equal(st$items_complete, c(1, 5))
  expect_equal(st$status, c("RUNNING", "COMPLETED"))
})

test_that("with_subtask fails the subtask on error and re-signals", {
  local_tasker_db()
  task_start("s", "t")
  expect_error(with_subtask("boom", stop("nope")), "nope")
  expect_equal(get_subtask_progress()$status, "FAILED")
  expect_equal(get_task_status()$status, "RUNNING")
})

test_that("track is lapply with one item per element", {
  local_tasker_db()
  task_start("s", "t")
  x <- list(a = 1, b = 2, c = 3)
  out <- track(x, function(v, k) v * k, k = 10)
  expect_identical(out, lapply(x, function(v) v * 10))
  st <- get_subtask_progress()
  expect_equal(st$subtask_name, "x")
  expect_equal(st$items_total, 3)
  expect_equal(st$items_complete, 3)
  expect_equal(st$status, "COMPLETED")
  expect_error(track(1:5, function(i) if (i == 4) stop("four") else i, name = "loop"), "four")
  st <- get_subtask_progress()
  expect_equal(st$items_complete[2], 3)
  expect_equal(st$status[2], "FAILED")
})
