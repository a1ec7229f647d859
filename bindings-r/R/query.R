#' Latest run of every registered task
#'
#' One row per registered task: its latest run, or `NOT_STARTED` for a task
#' that never ran (the earlier package left those out). The derived `lost`
#' column is `TRUE` for an active run whose process is gone or whose heartbeat
#' stopped (a crashed script).
#'
#' @param stage,task Only this stage / task (exact names).
#' @param status Only runs in this status.
#' @param limit At most this many rows.
#' @param conn Ignored.
#' @return A data frame with `run_id, stage_name, stage_order, task_name,
#'   task_type, task_order, status, lost, hostname, process_id, parent_pid,
#'   user_name, start_time, end_time, last_update, heartbeat_time,
#'   duration_seconds, total_subtasks, current_subtask, subtasks_completed,
#'   overall_percent_complete, overall_progress_message, version, git_commit,
#'   script_path, script_filename, log_path, log_filename, error_message,
#'   error_detail, metadata`. Times are POSIXct in UTC; the same columns and
#'   types come from SQLite and PostgreSQL.
#' @export
get_task_status <- function(stage = NULL, task = NULL, status = NULL, limit = NULL, conn = NULL) {
  .tk_conn(conn)
  .tk_ensure()
  .tk_df(tk_task_status(.tk_text(stage, "stage"), .tk_text(task, "task"),
                        .tk_status(status, .tk_all_statuses), limit))
}

.tk_all_statuses <- c("NOT_STARTED", "STARTED", "RUNNING", "PAUSED", "COMPLETED", "FAILED",
                      "SKIPPED", "CANCELLED")

#' Active runs
#'
#' Every run in `STARTED`, `RUNNING` or `PAUSED`, including several concurrent
#' runs of one task (the earlier package showed only the latest).
#'
#' @inheritParams get_task_status
#' @return A data frame with the columns of [get_task_status()].
#' @export
get_active_tasks <- function(conn = NULL) {
  .tk_conn(conn)
  .tk_ensure()
  .tk_df(tk_active())
}

#' Run history, newest first
#'
#' @inheritParams get_task_status
#' @param since Only runs started at or after this time (POSIXct).
#' @return A data frame with the columns of [get_task_status()].
#' @export
get_task_history <- function(stage = NULL, task = NULL, limit = 100, conn = NULL,
                             status = NULL, since = NULL) {
  .tk_conn(conn)
  .tk_ensure()
  if (!is.null(since)) since <- as.numeric(as.POSIXct(since, tz = "UTC"))
  .tk_df(tk_history(.tk_text(stage, "stage"), .tk_text(task, "task"),
                    .tk_status(status, .tk_all_statuses), since, limit))
}

#' Subtasks of a run
#'
#' @param run_id The run; by default the current run of this session
#'   ([tasker_context()]), else the most recently started active run.
#' @inheritParams get_task_status
#' @return A data frame: `run_id, subtask_number, subtask_name, status,
#'   start_time, end_time, last_update, percent_complete, progress_message,
#'   items_total, items_complete, error_message, error_detail, rate_per_second,
#'   eta_seconds`.
#'   `percent_complete` is derived from the items when `items_total` is known.
#' @export
get_subtask_progress <- function(run_id = NULL, conn = NULL) {
  .tk_conn(conn)
  .tk_ensure()
  if (is.null(run_id)) run_id <- .tk(tk_context(FALSE, NULL))
  if (is.null(run_id)) {
    active <- get_active_tasks()
    if (!nrow(active)) .tk_signal("not_found", "No active tasks found: pass run_id")
    run_id <- active$run_id[order(active$start_time, decreasing = TRUE)][[1L]]
  }
  .tk_df(tk_subtasks(.tk_text(run_id, "run_id")))
}

#' Transitions recorded for runs
#'
#' Every status change (run and subtask) is appended to an events table.
#'
#' @param run_id Only this run (`NULL`: all runs).
#' @param after Only events with a larger `event_id`.
#' @param limit At most this many events.
#' @return A data frame: `event_id, time, run_id, stage_name, task_name,
#'   subtask_number, kind, old_status, new_status, message`, oldest first.
#' @export
get_run_events <- function(run_id = NULL, after = 0, limit = 10000) {
  .tk_ensure()
  .tk_df(tk_events(.tk_text(run_id, "run_id"), after, limit))
}
