# The earlier package's README examples (inst/compat/readme-examples.R) run unchanged.

test_that("the earlier package's README examples run unchanged and record their pipeline", {
  script <- system.file("compat", "readme-examples.R", package = "tasker")
  expect_true(nzchar(script))
  dir <- withr::local_tempdir()
  file.copy(script, file.path(dir, "readme-examples.R"))
  writeLines(c("database:", "  driver: sqlite", "  dbname: pipeline.db"), file.path(dir, ".tasker.yml"))
  env <- c(sprintf("R_LIBS=%s", paste(.libPaths(), collapse = .Platform$path.sep)),
           sprintf("XDG_DATA_HOME=%s", dir), sprintf("XDG_CONFIG_HOME=%s", dir), "TASKER_DB_URL=",
           "TASKER_DB_PATH=")
  out <- withr::with_dir(dir, suppressWarnings(system2(rscript(), "readme-examples.R", stdout = TRUE,
                                                       stderr = TRUE, env = env)))
  text <- paste(out, collapse = "\n")
  expect_null(attr(out, "status"), label = text)
  expect_match(text, "README examples: done")
  # The old call form warned once per function, naming the current form.
  expect_equal(lengths(regmatches(text, gregexpr("subtask_start() with the run id first", text, fixed = TRUE))), 1L)
  local_tasker_db()
  tasker_config(path = file.path(dir, "pipeline.db"), quiet = TRUE)
  status <- get_task_status()
  got <- stats::setNames(status$status, status$task_name)
  expect_equal(got[["Static Data Download"]], "COMPLETED")
  expect_equal(got[["Static Data Process"]], "COMPLETED")
  expect_equal(got[["Annual Process"]], "COMPLETED")
  expect_equal(got[["Install R"]], "FAILED")
  expect_equal(got[["DAILY_FCC_SCRAPE"]], "COMPLETED")
  expect_equal(status$error_message[status$task_name == "Install R"], "mirror unreachable")
  download <- get_subtask_progress(status$run_id[status$task_name == "Static Data Download"])
  expect_equal(download$items_complete, c(3, 400000, 0))
  expect_equal(download$progress_message[2], "Processed all records")
  process <- get_subtask_progress(status$run_id[status$task_name == "Static Data Process"])
  expect_equal(process$subtask_name, c("Loading data", "Processing"))
  expect_equal(process$items_complete[1], 56)
  expect_equal(process$status, c("COMPLETED", "COMPLETED"))
  annual <- get_subtask_progress(status$run_id[status$task_name == "Annual Process"])
  expect_equal(annual$items_complete, 20)
  expect_equal(nrow(get_stages()), 4)
})
