test_that("task_start finds stage and task from the running script", {
  db <- local_tasker_db()
  register_task("etl", "clean", "R", script_path = "/pipelines/clean_data.R")
  dir <- withr::local_tempdir()
  res <- run_r_script(c(
    "library(tasker)",
    sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
    "cat('script:', get_script_filename(), '\\n')",
    "str(lookup_task_by_script('clean_data.R'))",
    "run <- task_start(quiet = TRUE)",
    "task_complete(quiet = TRUE)"
  ), dir = dir, name = "clean_data.R")
  expect_equal(res$status, 0L)
  expect_true(any(grepl("script: clean_data.R", res$output, fixed = TRUE)))
  row <- get_task_status(stage = "etl", task = "clean")
  expect_equal(row$status, "COMPLETED")
  expect_equal(row$script_filename, "clean_data.R")
})

test_that("an unregistered script gives a clear not_found error", {
  db <- local_tasker_db()
  dir <- withr::local_tempdir()
  res <- run_r_script(c(
    "library(tasker)",
    sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
    "e <- tryCatch(task_start(quiet = TRUE), error = identity)",
    "cat(class(e)[1], conditionMessage(e), '\\n')"
  ), dir = dir, name = "unknown_script.R")
  out <- paste(res$output, collapse = "\n")
  expect_match(out, "tasker_not_found")
  expect_match(out, "unknown_script.R", fixed = TRUE)
})

test_that("get_script_filename sees source()d files and is NULL at the console", {
  local_tasker_db()
  expect_null(get_script_filename())
  dir <- withr::local_tempdir()
  f <- file.path(dir, "sourced_one.R")
  writeLines("found <- tasker::get_script_filename()", f)
  env <- new.env()
  sys.source(f, envir = env) # sys.source does not set ofile ...
  src <- new.env()
  source(f, local = src) # ... source() does
  expect_equal(src$found, "sourced_one.R")
  expect_error(task_start(quiet = TRUE), class = "tasker_argument")
})

test_that("lookup_task_by_script: exact match, NULL when absent, warning when ambiguous", {
  local_tasker_db()
  expect_null(lookup_task_by_script(NULL))
  expect_null(lookup_task_by_script(""))
  register_task("a", "one", script_filename = "run.R")
  expect_equal(lookup_task_by_script("run.R")[c("stage", "task")], list(stage = "a", task = "one"))
  expect_null(lookup_task_by_script("run"))
  register_task("b", "two", script_filename = "run.R")
  expect_warning(found <- lookup_task_by_script("run.R"), "2 tasks")
  expect_equal(found$stage, "a")
})
