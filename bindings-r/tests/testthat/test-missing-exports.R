# Every export of the earlier package is here, or listed in ?tasker with the reason and
# what to use instead.

peer_exports <- c(
  "tasker_config", "get_tasker_config", "find_config_file", "create_tasker_config", "get_db_connection",
  "setup_tasker_db", "check_tasker_db", "check_tasker_tables_exist", "setup_reporter_schema",
  "register_task", "register_tasks", "get_registered_tasks", "get_stages", "clear_registered_tasks",
  "purge_tasker_data", "migrate_stage_runs",
  "task_start", "task_update", "task_complete", "task_fail", "task_mark_complete", "task_reset",
  "subtask_start", "subtask_update", "subtask_complete", "subtask_increment",
  "tasker_context", "export_tasker_context", "tasker_cluster", "stop_tasker_cluster",
  "get_task_status", "get_active_tasks", "get_subtask_progress", "get_task_history",
  "find_and_update_task", "find_and_update_subtask", "get_script_filename", "lookup_task_by_script",
  "start_reporter", "stop_reporter", "check_reporter", "get_reporter_database_status", "reporter_main_loop",
  "collect_process_metrics", "write_process_metrics", "cleanup_old_metrics",
  "get_monitor_connection", "get_database_queries",
  "setup_logging", "setup_shiny_logging", "setup_database_logging", "get_logging_config",
  "format_duration_seconds", "get_completion_estimate", "format_completion_with_ci", "run_monitor"
)

test_that("the earlier package's 56 exports are present or explained in ?tasker", {
  expect_length(unique(peer_exports), 56)
  missing_here <- setdiff(peer_exports, getNamespaceExports("tasker"))
  rd <- tools::Rd_db("tasker")[["tasker-package.Rd"]]
  expect_false(is.null(rd))
  text <- paste(capture.output(tools::Rd2txt(rd, options = list(underline_titles = FALSE))), collapse = " ")
  text <- gsub("\\s+", " ", text)
  section <- sub(".*Functions of the earlier package that are not here", "", text)
  for (f in missing_here) {
    expect_true(grepl(paste0(f, "()"), section, fixed = TRUE), label = paste(f, "is listed"))
  }
  # The planned ones say so.
  expect_match(section, "samples its own CPU, memory, I/O and child processes")
  # No stubs: what is listed as missing is not exported.
  expect_false(any(missing_here %in% getNamespaceExports("tasker")))
  # The reporter functions are here, on the process's own sampling.
  expect_true(all(c("start_reporter", "stop_reporter", "check_reporter", "collect_process_metrics") %in%
                    getNamespaceExports("tasker")))
  differences <- sub("Functions of the earlier package that are not here.*", "", text)
  expect_match(differences, "There is no reporter daemon")
  # run_monitor() is here now (the dashboard server of `tasker serve`), not listed as missing.
  expect_true(all(c("run_monitor", "stop_monitor") %in% getNamespaceExports("tasker")))
  expect_false(grepl("run_monitor()", section, fixed = TRUE))
})
