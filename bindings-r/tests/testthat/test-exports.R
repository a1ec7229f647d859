test_that("every exported function is called by some test", {
  exports <- getNamespaceExports("tasker")
  here <- if (file.exists("test-exports.R")) "." else testthat::test_path()
  code <- unlist(lapply(list.files(here, pattern = "^test-.*\\.R$", full.names = TRUE), readLines))
  code <- code[!grepl("getNamespaceExports", code)]
  called <- vapply(exports, function(f) any(grepl(paste0("\\b", f, "\\("), code)), logical(1))
  expect_equal(names(called)[!called], character(0))
  # The existing package's names are all here.
  peer <- c("tasker_config", "setup_tasker_db", "register_task", "register_tasks", "get_registered_tasks",
            "get_stages", "task_start", "task_update", "task_complete", "task_fail", "task_mark_complete",
            "task_reset", "subtask_start", "subtask_update", "subtask_complete", "subtask_increment",
            "get_task_status", "get_active_tasks", "get_task_history", "get_subtask_progress",
            "tasker_context", "export_tasker_context", "tasker_cluster", "stop_tasker_cluster",
            "format_duration_seconds", "purge_tasker_data", "find_and_update_task",
            "find_and_update_subtask", "get_script_filename", "lookup_task_by_script",
            "get_completion_estimate", "format_completion_with_ci", "get_tasker_config", "check_tasker_db")
  expect_equal(setdiff(peer, exports), character(0))
})

test_that("argument names of the existing package are kept", {
  expect_named(formals(tasker_config)[1:10], c("config_file", "host", "port", "dbname", "user", "password",
                                               "schema", "driver", "start_dir", "reload"))
  expect_named(formals(task_start)[1:9], c("stage", "task", "total_subtasks", "message", "version",
                                           "git_commit", "quiet", "conn", ".active"))
  expect_named(formals(task_update)[1:9], c("status", "current_subtask", "overall_percent", "message",
                                            "error_message", "error_detail", "quiet", "conn", "run_id"))
  expect_named(formals(subtask_start)[1:7], c("subtask_name", "items_total", "message", "quiet", "conn",
                                              "run_id", "subtask_number"))
  expect_named(formals(subtask_update)[1:9], c("status", "percent", "items_complete", "message",
                                               "error_message", "quiet", "conn", "run_id", "subtask_number"))
  expect_named(formals(subtask_complete), c("items_completed", "message", "quiet", "conn", "run_id",
                                            "subtask_number"))
  expect_named(formals(subtask_increment), c("increment", "quiet", "conn", "run_id", "subtask_number"))
  expect_named(formals(register_task)[1:11], c("stage", "name", "type", "description", "script_path",
                                               "script_filename", "log_path", "log_filename",
                                               "stage_order", "task_order", "conn"))
  expect_named(formals(tasker_cluster), c("ncores", "packages", "export", "setup_expr", "envir", "load_all"))
  expect_named(formals(get_completion_estimate), c("progress_history_env", "run_id", "subtask_number",
                                                   "confidence_level", "quiet"))
  expect_named(formals(start_reporter), c("collection_interval", "hostname", "force", "quiet", "conn",
                                          "supervise", "timeout", "config_file"))
  expect_named(formals(stop_reporter)[1:3], c("hostname", "timeout", "con"))
  expect_named(formals(check_reporter), c("con", "quiet"))
  expect_named(formals(collect_process_metrics), c("run_id", "process_id", "hostname", "include_children",
                                                   "timeout_seconds", "prev_start_time",
                                                   "scale_cpu_by_cores"))
})
