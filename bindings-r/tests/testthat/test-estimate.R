test_that("format_duration_seconds formats like the earlier package", {
  expect_equal(format_duration_seconds(0), "0s")
  expect_equal(format_duration_seconds(NA), "0s")
  expect_equal(format_duration_seconds(NULL), "0s")
  expect_equal(format_duration_seconds(-5), "0s")
  expect_equal(format_duration_seconds(45.9), "45s")
  expect_equal(format_duration_seconds(125), "2m")
  expect_equal(format_duration_seconds(3600), "1h")
  expect_equal(format_duration_seconds(7260), "2h 1m")
  expect_equal(format_duration_seconds(86400), "1d")
  expect_equal(format_duration_seconds(90000), "1d 1h")
  expect_equal(format_duration_seconds(c(5, 60)), c("5s", "1m"))
})

test_that("get_completion_estimate gives the core's figures and their 80% interval", {
  local_tasker_db()
  run_id <- task_start("s", "t")
  subtask_start("rows", items_total = 1000)
  expect_null(get_completion_estimate(quiet = TRUE)) # no progress and no history yet
  Sys.sleep(0.2)
  subtask_update(items_complete = 400)
  est <- get_completion_estimate(quiet = TRUE)
  row <- get_subtask_progress()
  expect_equal(est$items_remaining, 600)
  expect_equal(est$items_complete, 400)
  expect_true(est$eta > 0)
  expect_true(est$confidence_interval[1] < est$eta && est$eta < est$confidence_interval[2])
  # The same estimate the subtask rows carry (read a moment later, so it can only
  # have moved a little within its interval).
  expect_true(row$eta_low <= est$eta && est$eta <= row$eta_high)
  expect_equal(est$rate, row$rate_per_second, tolerance = 0.2)
  expect_equal(est$confidence_level, 0.8)
  expect_true(is.na(est$basis))
  # Seen for 0.2 s only: the core's interval is wide, so the label is low.
  expect_equal(est$confidence, "low")
  expect_match(format_completion_with_ci(est), "(80% CI:", fixed = TRUE)
  expect_equal(format_completion_with_ci(NULL), "Computing...")
  # A run id given positionally (the first argument used to be an environment).
  expect_equal(get_completion_estimate(run_id, quiet = TRUE)$items_remaining, 600)
  # Another level is not computed: a warning, once per session.
  assign("level_noted", FALSE, envir = tasker:::.tasker_env)
  expect_warning(e95 <- get_completion_estimate(run_id = run_id, subtask_number = 1, confidence_level = 0.95,
                                                quiet = TRUE), "80% interval")
  expect_equal(e95$confidence_level, 0.8)
  expect_silent(get_completion_estimate(run_id = run_id, subtask_number = 1, confidence_level = 0.95,
                                        quiet = TRUE))
  # Done: zero.
  subtask_complete(items_completed = 1000)
  done <- get_completion_estimate(subtask_number = 1, quiet = TRUE)
  expect_equal(done$eta, 0)
  expect_equal(done$confidence_interval, c(0, 0))
  expect_equal(done$confidence, "high")
  task_complete()
})

test_that("a run without item counts gets its ETA from the task's history", {
  local_tasker_db()
  # Three past runs of about 0.3 s (task_start/task_complete only: nothing reads the
  # task's history before the estimate below, which the core then keeps a minute).
  for (i in 1:3) {
    task_start("s", "usual", quiet = TRUE)
    Sys.sleep(0.3)
    task_complete(quiet = TRUE)
  }
  run_id <- task_start("s", "usual", quiet = TRUE)
  est <- get_completion_estimate(quiet = TRUE)
  expect_equal(est$basis, "history")
  expect_true(est$eta > 0.1 && est$eta < 0.35)
  expect_true(est$confidence_interval[1] <= est$eta && est$eta <= est$confidence_interval[2])
  run <- get_run(run_id)
  expect_equal(run$eta_basis, "history")
  expect_true(run$eta_low <= est$eta && est$eta <= run$eta_high)
  task_complete(quiet = TRUE)
  expect_equal(get_completion_estimate(run_id = run_id, quiet = TRUE)$eta, 0)
  expect_true(is.na(get_run(run_id)$eta_seconds)) # finished: no estimate on the row
})

test_that("the earlier package's snapshot environment goes through the core's rate model", {
  env <- new.env()
  t0 <- as.POSIXct("2024-01-01 00:00:00", tz = "UTC")
  assign("run_r1_subtask_1", list(
    list(timestamp = t0, items_complete = 0, items_total = 100),
    list(timestamp = t0 + 5, items_complete = 20, items_total = 100),
    list(timestamp = t0 + 10, items_complete = 50, items_total = 100)
  ), envir = env)
  est <- get_completion_estimate(env, "r1", 1, quiet = TRUE)
  # 50 items in 10 s, 50 to go: 10 s, whatever the model's interval.
  expect_equal(est$eta, 10)
  expect_equal(est$rate, 5)
  expect_true(est$confidence_interval[1] < 10 && 10 < est$confidence_interval[2])
  expect_equal(est$basis, "rate")
  expect_null(get_completion_estimate(env, "r1", 2, quiet = TRUE))
  assign("run_r1_subtask_3", list(
    list(timestamp = t0, items_complete = 10, items_total = 100),
    list(timestamp = t0 + 10, items_complete = 100, items_total = 100)
  ), envir = env)
  expect_equal(get_completion_estimate(env, "r1", 3, quiet = TRUE)$eta, 0)
  # No progress between the snapshots: nothing to go on.
  assign("run_r1_subtask_4", list(
    list(timestamp = t0, items_complete = 10, items_total = 100),
    list(timestamp = t0 + 10, items_complete = 10, items_total = 100)
  ), envir = env)
  expect_null(get_completion_estimate(env, "r1", 4, quiet = TRUE))
})
