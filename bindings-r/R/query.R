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
#'   error_detail, metadata`, then `attempt` (integer), `retry_of` (the run
#'   this attempt retries), `command_line`, `git_dirty` (logical: the script's
#'   repository had uncommitted changes; `NA` when unknown), `runtime`
#'   (`"R 4.2.2"`), `tasker_version`, and for active runs the core's estimate
#'   of the seconds left: `eta_seconds` with an 80% interval `eta_low`,
#'   `eta_high` and what it rests on, `eta_basis` (`"rate"`: this run's
#'   progress, `"history"`: past runs, `"blend"`: both); a lost run has none.
#'   Times are POSIXct in UTC; the same columns and types come from SQLite
#'   and PostgreSQL.
#' @export
get_task_status <- function(stage = NULL, task = NULL, status = NULL, limit = NULL, conn = NULL) {
  .tk_conn(conn)
  args <- list(.tk_text(stage, "stage"), .tk_text(task, "task"), .tk_status(status, .tk_all_statuses))
  if (.tasker_env$listening) .tk_drain()
  .tk_df(.tk_call(tk_task_status, args[[1L]], args[[2L]], args[[3L]], limit))
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
  if (.tasker_env$listening) .tk_drain()
  .tk_df(.tk_call(tk_active))
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
  stage <- .tk_text(stage, "stage")
  task <- .tk_text(task, "task")
  status <- .tk_status(status, .tk_all_statuses)
  since <- .tk_since(since)
  if (.tasker_env$listening) .tk_drain()
  .tk_df(.tk_call(tk_history, stage, task, status, since, limit))
}

#' Subtasks of a run
#'
#' @param run_id The run; by default the current run of this session
#'   ([tasker_context()]), else the most recently started active run.
#' @inheritParams get_task_status
#' @return A data frame: `run_id, subtask_number, subtask_name, status,
#'   start_time, end_time, last_update, percent_complete, progress_message,
#'   items_total, items_complete, error_message, error_detail, rate_per_second,
#'   eta_seconds, eta_low, eta_high`: the core's estimate of an active
#'   subtask's seconds left from its item rate and past subtasks of the same
#'   name, with an 80% interval.
#'   `percent_complete` is derived from the items when `items_total` is known.
#' @export
get_subtask_progress <- function(run_id = NULL, conn = NULL) {
  .tk_conn(conn)
  run_id <- .tk_text(run_id, "run_id")
  if (.tasker_env$listening) .tk_drain()
  .tk_ensure()
  if (is.null(run_id)) run_id <- .tk(tk_context(FALSE, NULL))
  if (is.null(run_id)) {
    active <- get_active_tasks()
    if (!nrow(active)) .tk_signal("not_found", "No active tasks found: pass run_id")
    run_id <- active$run_id[order(active$start_time, decreasing = TRUE)][[1L]]
  }
  .tk_df(.tk(tk_subtasks(run_id)))
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
  run_id <- .tk_text(run_id, "run_id")
  .tk_df(.tk_call(tk_events, run_id, after, limit))
}

#' One run
#'
#' @param run_id The run (default: the current run, [tasker_context()]).
#' @return A one-row data frame with the columns of [get_task_status()]. An
#'   unknown run is an error of class `tasker_not_found`.
#' @export
get_run <- function(run_id = NULL) {
  run_id <- .tk_text(run_id, "run_id")
  if (.tasker_env$listening) .tk_drain()
  .tk_df(.tk_call(tk_run, run_id))
}

#' Whether tracking reaches its database
#'
#' Tracking never stops a pipeline because the database is away: transitions
#' and progress are kept (in memory, then in a spool file) and written when it
#' is back. `health()` tells whether that is happening now.
#'
#' @return A list: `backend` (`"sqlite"` or `"postgresql"`), `location` (never
#'   with a password), `reachable` (`TRUE`/`FALSE`), `last_error` (`NULL` while
#'   reachable), `pending_writes` (transitions and progress batches waiting) and
#'   `spooled_writes` (of those, how many are in this process's spool file).
#' @export
health <- function() {
  if (.tasker_env$listening) .tk_drain()
  h <- .tk_call(tk_health)
  if (is.na(h$last_error)) h["last_error"] <- list(NULL)
  h
}

#' Statistics per task from its stored runs
#'
#' How often each task ran and succeeded, how long it takes and how fast it
#' goes, computed by one core query (the figures `tasker stats` shows).
#' Attempts of one
#' logical run (a run and the retries that follow it, see [task_start()] and
#' [with_task()]) count once, with the outcome of their last attempt: a task
#' that failed and then succeeded on retry is one success with two attempts.
#'
#' @param stage,task Only this stage / task (exact names).
#' @param since Only runs started at or after this time (POSIXct, or anything
#'   `as.POSIXct()` reads).
#' @param limit Only the latest `limit` runs of each task.
#' @return A data frame, one row per task with runs, ordered by stage and
#'   task: `stage_name`, `task_name`; counts (integer): `runs` (every
#'   attempt), `logical_runs`, `completed`, `failed`, `lost`, `cancelled`,
#'   `skipped`, `active` (logical runs by their last attempt's outcome);
#'   `success_rate` (completed over those that ended, skipped and active ones
#'   left out), `retried` (integer: logical runs with more than one attempt),
#'   `mean_attempts`; seconds of completed runs: `duration_p50`,
#'   `duration_p90`, `duration_p95` (linear interpolation, R's type 7),
#'   `duration_mean`, `duration_max`; `items_per_second`; and POSIXct
#'   `last_start`, `last_success`, `last_failure`; `wait_p50`, `wait_p95` (seconds
#'   from the end of the last upstream to the start, for tasks with dependencies).
#'   Missing figures are `NA`.
#' @examples
#' tasker_config(path = tempfile(fileext = ".db"), quiet = TRUE)
#' for (i in 1:3) with_task("examples", "load", Sys.sleep(0.01), quiet = TRUE)
#' get_task_stats(stage = "examples")
#' @export
get_task_stats <- function(stage = NULL, task = NULL, since = NULL, limit = NULL) {
  stage <- .tk_text(stage, "stage")
  task <- .tk_text(task, "task")
  since <- .tk_since(since)
  if (.tasker_env$listening) .tk_drain()
  .tk_df(.tk_call(tk_task_stats, stage, task, since, limit))
}

# A time argument as seconds since the epoch, with a clear error for anything else.
.tk_since <- function(since) {
  if (is.null(since)) return(NULL)
  t <- tryCatch(as.numeric(as.POSIXct(since, tz = "UTC")), error = function(e) NA_real_)
  if (length(t) != 1L || is.na(t)) {
    .tk_arg_error(sprintf("invalid since %s: must be a time (POSIXct)",
                          paste(utils::head(format(since), 1L), collapse = "")))
  }
  t
}

#' Resource samples of a run
#'
#' The process that started a run samples its own resource use, and that of
#' its child processes (where `parallel` and callr do their work), every
#' `sample_interval_s` seconds (10 by default; set it with
#' `tasker_config(sample_interval_s = )`, `TASKER_SAMPLE_INTERVAL_S` or
#' `tracking: sample_interval_s:` in `.tasker.yml`; 0 turns sampling off). No
#' daemon is involved: the samples are written with the run's progress. Old
#' samples of long runs are thinned, so a week-long run keeps a few thousand
#' rows. On a system without `/proc` (not Linux) there are none. On the
#' command line: `tasker show RUN --samples`.
#'
#' @param run_id The run (default: the current run). An unknown run is an
#'   error of class `tasker_not_found`.
#' @return A data frame, oldest first: `time` (POSIXct), `pid` (integer),
#'   `cpu_seconds` (user + system CPU of the process so far), `cpu_percent`
#'   (since the previous sample; 100 = one core busy; `NA` for the first),
#'   `rss_bytes`, `peak_rss_bytes`, `read_bytes`, `write_bytes` (bytes read
#'   from and written to storage so far; numeric), `threads`, `open_fds`,
#'   `children` (live descendant processes; integer), `children_cpu_seconds`,
#'   `children_rss_bytes`.
#' @examples
#' tasker_config(path = tempfile(fileext = ".db"), sample_interval_s = 1, quiet = TRUE)
#' run_id <- task_start("examples", "busy", quiet = TRUE)
#' subtask_start("spin", items_total = 15, quiet = TRUE)
#' for (i in 1:15) { Sys.sleep(0.1); subtask_increment(quiet = TRUE) }
#' task_complete(quiet = TRUE)
#' get_run_samples(run_id)[, c("time", "cpu_percent", "rss_bytes")]
#' @export
get_run_samples <- function(run_id = NULL) {
  run_id <- .tk_text(run_id, "run_id")
  if (.tasker_env$listening) .tk_drain()
  .tk_df(.tk_call(tk_samples, run_id))
}
