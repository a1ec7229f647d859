# Smaller things: number formatting, estimates without subtasks, track() names.

test_that("subtask_start prints item counts with a thousands separator, never 4e+05", {
  local_tasker_db()
  withr::local_options(tasker.quiet = NULL)
  task_start("s", "t", quiet = TRUE)
  expect_message(subtask_start("big", items_total = 4e5), "(400,000 items)", fixed = TRUE)
  expect_message(subtask_start("bigger", items_total = 12345678), "(12,345,678 items)", fixed = TRUE)
})

test_that("get_completion_estimate(run_id =) of a run without subtasks is NULL", {
  local_tasker_db()
  run_id <- task_start("s", "t", .active = FALSE)
  expect_null(get_completion_estimate(run_id = run_id, quiet = TRUE))
  expect_null(get_completion_estimate(run_id, quiet = TRUE))
  task_start("s", "t2")
  expect_null(get_completion_estimate(quiet = TRUE))
})

test_that("track() names its subtask after the function or the variable, not a deparsed call", {
  local_tasker_db()
  run_id <- task_start("s", "t")
  download_one <- function(i) i
  track(1:30, download_one)
  files <- letters[1:5]
  track(files, function(f) toupper(f))
  track(letters[1:5], function(f) f)
  track(1:3, base::identity)
  track(1:2, "identity")
  track(1:2, identity, name = "chosen")
  expect_equal(get_subtask_progress(run_id)$subtask_name,
               c("download_one", "files", "items", "identity", "identity", "chosen"))
  expect_error(track(1:2, identity, name = ""), class = "tasker_argument")
})
