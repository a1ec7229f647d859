# Retries as attempts: a rerun after a failure is the next attempt of one logical run.

test_that("fail, retry, success is one logical run with two attempts", {
  local_tasker_db()
  tries <- 0
  value <- with_task("etl", "flaky", {
    tries <- tries + 1
    if (tries == 1) stop("the first try fails")
    42
  }, retries = 2, quiet = TRUE)
  expect_equal(value, 42)
  expect_equal(tries, 2)
  h <- get_task_history(stage = "etl", task = "flaky")
  expect_equal(h$status, c("COMPLETED", "FAILED"))
  expect_identical(h$attempt, c(2L, 1L))
  expect_equal(h$retry_of, c(h$run_id[[2]], NA))
  expect_equal(h$error_message[[2]], "the first try fails")
  s <- get_task_stats(stage = "etl", task = "flaky")
  expect_equal(nrow(s), 1)
  expect_identical(s$runs, 2L)
  expect_identical(s$logical_runs, 1L)
  expect_identical(s$completed, 1L)
  expect_identical(s$failed, 0L)
  expect_identical(s$retried, 1L)
  expect_equal(s$mean_attempts, 2)
  expect_equal(s$success_rate, 1)
  expect_null(tasker_context()) # the previous (no) current run is back
})

test_that("the last attempt's error is signalled unchanged and every attempt is FAILED", {
  local_tasker_db()
  outer <- task_start("etl", "outer", quiet = TRUE)
  tries <- 0
  err <- structure(class = c("my_error", "error", "condition"), list(message = "still broken", call = NULL))
  expect_error(with_task("etl", "broken", {
    tries <- tries + 1
    stop(err)
  }, retries = 2, quiet = TRUE), class = "my_error")
  expect_equal(tries, 3)
  h <- get_task_history(stage = "etl", task = "broken")
  expect_equal(h$status, rep("FAILED", 3))
  expect_identical(h$attempt, 3:1)
  expect_equal(h$retry_of[1:2], h$run_id[2:3])
  s <- get_task_stats(task = "broken")
  expect_identical(c(s$runs, s$logical_runs, s$failed, s$completed), c(3L, 1L, 1L, 0L))
  expect_equal(s$success_rate, 0)
  expect_equal(tasker_context(), outer)
})

test_that("retries = 0 (the default) runs once and success needs no retry", {
  local_tasker_db()
  n <- 0
  expect_error(with_task("etl", "once", { n <- n + 1; stop("no") }, quiet = TRUE), "no")
  expect_equal(n, 1)
  expect_equal(with_task("etl", "fine", 1 + 1, retries = 3, quiet = TRUE), 2)
  expect_identical(get_task_history(task = "fine")$attempt, 1L)
  expect_error(with_task("etl", "x", 1, retries = -1), class = "tasker_argument")
  expect_error(with_task("etl", "x", 1, retries = 1.5), class = "tasker_argument")
  expect_error(with_task("etl", "x", 1, retries = "2"), "invalid retries")
})

test_that("task_start(retry = TRUE) continues after a failure or a lost run, not after a success", {
  local_tasker_db()
  first <- task_start("load", "db", quiet = TRUE)
  task_fail("connection refused", quiet = TRUE)
  second <- task_start("load", "db", retry = TRUE, quiet = TRUE)
  r <- get_run(second)
  expect_identical(r$attempt, 2L)
  expect_equal(r$retry_of, first)
  task_complete(quiet = TRUE)
  # After a success a retry is a new logical run.
  third <- task_start("load", "db", retry = TRUE, quiet = TRUE)
  expect_identical(get_run(third)$attempt, 1L)
  expect_true(is.na(get_run(third)$retry_of))
  task_complete(quiet = TRUE)
  # An explicit attempt number retries the latest run.
  fourth <- task_start("load", "db", attempt = 5, quiet = TRUE)
  expect_identical(get_run(fourth)$attempt, 5L)
  expect_equal(get_run(fourth)$retry_of, third)
  task_complete(quiet = TRUE)
  expect_error(task_start("load", "db", attempt = 0), class = "tasker_argument")
  expect_error(task_start("load", "db", attempt = 1.5), "invalid attempt 1.5")
  expect_error(task_start("load", "db", retry = NA), "invalid retry NA")
})

test_that("a start after a run whose process died is its retry", {
  db <- local_tasker_db()
  res <- run_r_script(c(
    "library(tasker)",
    sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
    "run <- task_start('crash', 'job', quiet = TRUE)",
    "cat('run:', run, '\\n'); flush(stdout())",
    "tools::pskill(Sys.getpid(), tools::SIGKILL)"
  ))
  dead <- sub("^run: ([^ ]+).*$", "\\1", grep("^run:", res$output, value = TRUE))
  expect_length(dead, 1)
  expect_true(get_run(dead)$lost)
  withr::local_options(tasker.quiet = NULL)
  expect_message(again <- task_start("crash", "job", retry = TRUE), "START (attempt 2)", fixed = TRUE)
  expect_equal(get_run(again)$retry_of, dead)
  task_complete(quiet = TRUE)
  s <- get_task_stats(task = "job")
  expect_identical(c(s$runs, s$logical_runs, s$completed, s$lost), c(2L, 1L, 1L, 0L))
})
