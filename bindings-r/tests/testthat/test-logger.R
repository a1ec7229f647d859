# appender_tasker(): logger's lines in the run's log, with their levels.

test_that("logger lines reach the current run's log with their levels", {
  need_package("logger")
  local_tasker_db()
  ns <- "tasker_test_logger"
  logger::log_threshold(logger::TRACE, namespace = ns)
  logger::log_layout(logger::layout_glue_generator("{msg}"), namespace = ns)
  logger::log_appender(appender_tasker(), namespace = ns)
  withr::defer({
    logger::log_appender(logger::appender_console, namespace = ns)
    logger::log_layout(logger::layout_simple, namespace = ns)
  })
  logger::log_info("before any run: dropped", namespace = ns)
  run_id <- task_start("logger", "levels", quiet = TRUE)
  logger::log_trace("trace {1 + 1}", namespace = ns)
  logger::log_debug("debug", namespace = ns)
  logger::log_info("info <b>&</b>", namespace = ns)
  logger::log_success("success", namespace = ns)
  logger::log_warn("warn", namespace = ns)
  logger::log_error("error", namespace = ns)
  logger::log_fatal("fatal", namespace = ns)
  task_complete(quiet = TRUE)
  tasker_context(NULL)
  logger::log_info("no current run: dropped without an error", namespace = ns)
  lines <- get_run_logs(run_id)
  expect_equal(lines$message, c("trace 2", "debug", "info <b>&</b>", "success", "warn", "error", "fatal"))
  expect_equal(lines$level, c("debug", "debug", "info", "info", "warn", "error", "error"))
})

test_that("appender_tasker(run_id) writes to that run", {
  need_package("logger")
  local_tasker_db()
  ns <- "tasker_test_logger2"
  target <- task_start("logger", "target", quiet = TRUE)
  logger::log_layout(logger::layout_glue_generator("{level} {msg}"), namespace = ns)
  logger::log_appender(appender_tasker(run_id = target), namespace = ns)
  withr::defer(logger::log_appender(logger::appender_console, namespace = ns))
  other <- task_start("logger", "other", quiet = TRUE)
  logger::log_warn("to the target", namespace = ns)
  expect_equal(get_run_logs(target)$message, "WARN to the target")
  expect_equal(nrow(get_run_logs(other)), 0L)
  expect_error(appender_tasker(run_id = 3), "run_id", class = "tasker_error")
})
