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
  # At the console NULL; when the tests themselves run as a script (R CMD check runs
  # them with R CMD BATCH testthat.R), that script.
  running <- tasker:::.tk_script_arg(commandArgs(trailingOnly = FALSE))
  expect_identical(get_script_filename(), running)
  dir <- withr::local_tempdir()
  f <- file.path(dir, "sourced_one.R")
  writeLines("found <- tasker::get_script_filename()", f)
  env <- new.env()
  sys.source(f, envir = env) # sys.source does not set ofile ...
  src <- new.env()
  source(f, local = src) # ... source() does
  expect_equal(src$found, "sourced_one.R")
  # Nothing to detect: an argument error; a script nobody registered: not found.
  expect_error(task_start(quiet = TRUE), class = if (is.null(running)) "tasker_argument" else "tasker_not_found")
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

# Zero-argument task_start() in each way a script can be run (the task is registered
# with the file name each run sees).
script_runs <- function(db, name) {
  c("library(tasker)",
    sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
    "cat('script:', get_script_filename(), '\\n')",
    "task_start(quiet = TRUE)",
    "task_complete(quiet = TRUE)")
}

test_that("R CMD BATCH (-f file) is detected", {
  db <- local_tasker_db()
  register_task("batch", "job", script_filename = "batch_job.R")
  dir <- withr::local_tempdir()
  writeLines(script_runs(db, "batch_job.R"), file.path(dir, "batch_job.R"))
  env <- sprintf("R_LIBS=%s", paste(.libPaths(), collapse = .Platform$path.sep))
  withr::with_dir(dir, suppressWarnings(system2(file.path(R.home("bin"), "R"),
                                                c("CMD", "BATCH", "--no-save", "batch_job.R"),
                                                env = env, stdout = FALSE, stderr = FALSE)))
  out <- readLines(file.path(dir, "batch_job.Rout"))
  expect_true(any(grepl("script: batch_job.R", out, fixed = TRUE)), info = paste(out, collapse = "\n"))
  expect_equal(get_task_status(stage = "batch")$status, "COMPLETED")
  expect_equal(tasker:::.tk_script_arg(c("R", "-f", "x/y.R", "--args", "--file=z.R")), "y.R")
  expect_equal(tasker:::.tk_script_arg(c("R", "--args", "-f", "a.R")), NULL)
})

test_that("a script that source()s another: the innermost file is the one detected", {
  db <- local_tasker_db()
  register_task("src", "step", script_filename = "step_one.R")
  dir <- withr::local_tempdir()
  writeLines(c("task_start(quiet = TRUE)", "inner <- get_script_filename()", "task_complete(quiet = TRUE)"),
             file.path(dir, "step_one.R"))
  res <- run_r_script(c(
    "library(tasker)",
    sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
    sprintf("source('%s')", file.path(dir, "step_one.R")),
    "cat('inner:', inner, 'outer:', get_script_filename(), '\\n')"
  ), dir = dir, name = "driver.R")
  expect_true(any(grepl("inner: step_one.R outer: driver.R", res$output, fixed = TRUE)),
              info = paste(res$output, collapse = "\n"))
  expect_equal(get_task_status(stage = "src")$status, "COMPLETED")
})

test_that("knitr and rmarkdown rendering detect the document", {
  skip_if_not_installed("knitr")
  db <- local_tasker_db()
  register_task("report", "knit", script_filename = "report.Rmd")
  dir <- withr::local_tempdir()
  writeLines(c("# Report", "", "```{r}", "library(tasker)",
               sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
               "run <- task_start(quiet = TRUE)", "task_complete(quiet = TRUE)",
               "get_script_filename()", "```"), file.path(dir, "report.Rmd"))
  res <- run_r_script(c(sprintf("setwd('%s')", dir), "knitr::knit('report.Rmd', quiet = TRUE)"),
                      dir = dir, name = "knit_driver.R")
  expect_equal(res$status, 0L, info = paste(res$output, collapse = "\n"))
  expect_true(any(grepl("report.Rmd", readLines(file.path(dir, "report.md")), fixed = TRUE)))
  expect_equal(nrow(get_task_history(stage = "report")), 1)
  skip_if_not_installed("rmarkdown")
  skip_if_not(rmarkdown::pandoc_available(), "pandoc is not installed")
  res <- run_r_script(c(sprintf("setwd('%s')", dir),
                        "rmarkdown::render('report.Rmd', output_format = 'md_document', quiet = TRUE)"),
                      dir = dir, name = "render_driver.R")
  expect_equal(res$status, 0L, info = paste(res$output, collapse = "\n"))
  h <- get_task_history(stage = "report")
  expect_equal(nrow(h), 2)
  expect_equal(h$status, c("COMPLETED", "COMPLETED"))
})

test_that("a callr subprocess finds the script of the process that started it", {
  skip_if_not_installed("callr")
  db <- local_tasker_db()
  register_task("callr", "child", script_filename = "parent_script.R")
  res <- run_r_script(c(
    "library(tasker)",
    sprintf("db <- '%s'", db),
    "out <- callr::r(function(db) {",
    "  library(tasker)",
    "  tasker_config(path = db, quiet = TRUE)",
    "  run <- task_start(quiet = TRUE)",
    "  task_complete(quiet = TRUE)",
    "  get_script_filename()",
    "}, list(db = db), libpath = .libPaths())",
    "cat('child saw:', out, '\\n')"
  ), name = "parent_script.R")
  expect_true(any(grepl("child saw: parent_script.R", res$output, fixed = TRUE)),
              info = paste(res$output, collapse = "\n"))
  expect_equal(get_task_status(stage = "callr")$status, "COMPLETED")
})
