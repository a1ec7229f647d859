#' Start a run of a task
#'
#' Records a new run (status `STARTED`) with this process's host, pid, parent
#' pid and user, and makes it the current run of the session (see
#' [tasker_context()]) unless `.active = FALSE`. The stage and task are
#' registered on the fly if they are new.
#'
#' With `stage` or `task` missing, both come from the registration whose
#' `script_filename` matches the running script ([get_script_filename()]).
#'
#' Each run records how it was started: the running script's full path (under
#' `Rscript`, `R CMD BATCH` / `R -f`, `source()`, knitr/rmarkdown, or the script
#' of the process that started a callr subprocess), the command line
#' (`commandArgs()`), the R version, the tasker version, and the commit and
#' dirty flag (uncommitted changes to tracked files) of the git repository
#' holding the script (or the working directory). `git_commit` given here wins;
#' nothing found is left empty and never fails the start. They are columns of
#' [get_task_status()], [get_run()] and [get_task_history()].
#'
#' @section Retries:
#' A run that repeats a failed one is its next attempt: with `retry = TRUE`,
#' when the task's latest run `FAILED` (or was lost: its process died), the new
#' run records `attempt` = that run's attempt + 1 and `retry_of` = that run's
#' id; otherwise it is a first attempt. `attempt = n` sets the number
#' explicitly (above 1, the task's latest run is the one retried). Attempts of
#' one logical run count once in [get_task_stats()]. [with_task()] with
#' `retries` does this for you.
#'
#' @param stage,task Stage and task name.
#' @param total_subtasks How many subtasks the run will have (for percentages).
#' @param message A progress message.
#' @param version,git_commit Recorded with the run.
#' @param quiet Do not print a message (also `options(tasker.quiet = TRUE)`).
#' @param conn Ignored.
#' @param .active Make the run the current run of the session.
#' @param metadata Custom metadata: a JSON object as a string, or a named list
#'   (converted with jsonlite).
#' @param attempt The attempt number (1 for a first try); see "Retries".
#' @param retry `TRUE` to make this run the next attempt of the task's latest
#'   run when that one failed or was lost; see "Retries".
#' @return The run id (a UUID string).
#' @examples
#' tasker_config(path = tempfile(fileext = ".db"), quiet = TRUE)
#' run_id <- task_start("examples", "fetch", quiet = TRUE)
#' task_fail("the server did not answer", quiet = TRUE)
#' retry <- task_start("examples", "fetch", retry = TRUE, quiet = TRUE)
#' task_complete(quiet = TRUE)
#' get_run(retry)[, c("status", "attempt", "retry_of", "runtime")]
#' @export
task_start <- function(stage = NULL, task = NULL, total_subtasks = NULL, message = NULL,
                       version = NULL, git_commit = NULL, quiet = FALSE, conn = NULL,
                       .active = TRUE, metadata = NULL, attempt = NULL, retry = FALSE) {
  if (!is.null(conn)) .tk_conn(conn)
  # Checks first: nothing below opens the database before the arguments are known good.
  if (!is.null(stage)) stage <- .tk_name(stage, "stage")
  if (!is.null(task)) task <- .tk_name(task, "task")
  if (!is.null(total_subtasks) &&
      (!is.numeric(total_subtasks) || length(total_subtasks) != 1L || is.na(total_subtasks) ||
       total_subtasks < 0 || total_subtasks != floor(total_subtasks))) {
    .tk_arg_error(sprintf("invalid total_subtasks %s: must be a whole number, zero or more",
                          paste(format(total_subtasks), collapse = ",")))
  }
  if (!is.null(message)) message <- .tk_text(message, "message")
  if (!is.null(version)) version <- .tk_text(version, "version")
  if (!is.null(git_commit)) git_commit <- .tk_text(git_commit, "git_commit")
  if (!is.null(metadata)) metadata <- .tk_metadata(metadata)
  if (!is.null(attempt) &&
      (!is.numeric(attempt) || length(attempt) != 1L || is.na(attempt) || attempt < 1 ||
       attempt != floor(attempt))) {
    .tk_arg_error(sprintf("invalid attempt %s: attempts are whole numbers counted from 1",
                          paste(format(attempt), collapse = ",")))
  }
  if (!is.logical(retry) || length(retry) != 1L || is.na(retry)) {
    .tk_arg_error(sprintf("invalid retry %s: must be TRUE or FALSE", paste(format(retry), collapse = ",")))
  }
  script_path <- .tk_script_path()
  if (!is.null(script_path)) script_path <- enc2utf8(script_path)
  script_filename <- NULL
  if (is.null(stage) || is.null(task)) {
    script <- if (is.null(script_path)) NULL else basename(script_path)
    if (is.null(script)) {
      .tk_arg_error(paste("Could not auto-detect script filename and stage/task not provided:",
                          "pass stage and task"))
    }
    found <- lookup_task_by_script(script)
    if (is.null(found)) {
      .tk_signal("not_found", sprintf(paste(
        "Could not auto-detect stage/task from script '%s'. Either register it with",
        "register_task(..., script_filename = '%s') or provide stage and task."), script, script))
    }
    stage <- stage %||% found$stage
    task <- task %||% found$task
    script_filename <- enc2utf8(script)
  }
  run_id <- .tk_native(tk_task_start, stage, task, total_subtasks, message, version, git_commit,
                       metadata, attempt, if (retry) TRUE, script_path, script_filename,
                       .tk_command_line(), isTRUE(.active))
  if (!.tk_quiet(quiet)) {
    # Which attempt it became is the database's answer: asked only to say it.
    again <- if (retry || !is.null(attempt)) .tk(tk_run(run_id))$attempt else NA
    .tk_say(sprintf("%s.%s START%s%s", stage, task,
                    if (!is.na(again) && again > 1) sprintf(" (attempt %d)", again) else "",
                    if (is.null(message)) "" else paste(":", message)), quiet)
  }
  if (.tasker_env$listening) .tk_drain()
  run_id
}

.tk_metadata <- function(metadata) {
  if (is.list(metadata)) {
    if (!requireNamespace("jsonlite", quietly = TRUE)) {
      .tk_arg_error("invalid metadata: a list needs the jsonlite package; pass a JSON string")
    }
    metadata <- as.character(jsonlite::toJSON(metadata, auto_unbox = TRUE, null = "null"))
  }
  .tk_text(metadata, "metadata")
}

.tk_run_statuses <- c("RUNNING", "COMPLETED", "FAILED", "SKIPPED", "CANCELLED", "PAUSED")

# The line printed after a transition; a transition to the status a run or subtask
# already has changes nothing and says so.
.tk_transition_note <- function(r, number, message, quiet) {
  if (.tk_quiet(quiet)) return(invisible(NULL))
  what <- if (is.null(number)) .tk_run_label(r) else sprintf("%s [%d]", .tk_run_label(r), number)
  .tk_say(sprintf("%s %s%s%s", what, r$new, if (identical(r$old, r$new)) " (already)" else "",
                  if (is.null(message)) "" else paste(":", message)), quiet)
}

#' Update a run
#'
#' Without `status`, only progress is recorded (`current_subtask`,
#' `overall_percent`, `message`) and the status is left unchanged: unlike the
#' earlier package, a finished run is never reopened by a progress update. With
#' `status`, the run moves to that status if the state machine allows it
#' (finished runs are final unless `reset = TRUE`).
#'
#' @param status `NULL` (unchanged) or one of `RUNNING`, `COMPLETED`, `FAILED`,
#'   `SKIPPED`, `CANCELLED`, `PAUSED` (case-insensitive, unique prefixes work).
#' @param current_subtask The subtask being worked on.
#' @param overall_percent Percent complete, 0 to 100.
#' @param message A progress message.
#' @param error_message,error_detail Recorded with a `FAILED` status.
#' @param quiet Do not print a message.
#' @param conn Ignored.
#' @param run_id The run (default: the current run).
#' @param reset Allow leaving a finished status.
#' @return `TRUE`, invisibly.
#' @export
task_update <- function(status = NULL, current_subtask = NULL, overall_percent = NULL,
                        message = NULL, error_message = NULL, error_detail = NULL,
                        quiet = FALSE, conn = NULL, run_id = NULL, reset = FALSE) {
  if (.tk_looks_like_run(status)) {
    r <- .tk_legacy_call("task_update", sys.call(), environment(),
                         c("run_id", "status", "current_subtask", "overall_percent", "message"),
                         "task_update(status, ..., run_id = run_id)")
    if (!is.null(r)) return(invisible(r))
  }
  if (!is.null(conn)) .tk_conn(conn)
  status <- .tk_status(status, .tk_run_statuses)
  message <- .tk_text(message, "message")
  run_id <- .tk_text(run_id, "run_id")
  error_message <- .tk_text(error_message, "error_message")
  error_detail <- .tk_text(error_detail, "error_detail")
  if (is.null(status) && (!is.null(error_message) || !is.null(error_detail))) {
    .tk_arg_error("invalid error_message: an error is recorded with a status (status = \"FAILED\")")
  }
  if (!is.null(current_subtask) || !is.null(overall_percent) || (is.null(status) && !is.null(message))) {
    .tk_call(tk_run_progress, run_id, current_subtask, overall_percent, if (is.null(status)) message)
    if (is.null(status) && !.tk_quiet(quiet)) {
      r <- .tk(tk_resolve(run_id))
      .tk_say(sprintf("%s progress%s%s", .tk_run_label(r),
                      if (is.null(overall_percent)) "" else sprintf(" %.1f%%", overall_percent),
                      if (is.null(message)) "" else paste(":", message)), quiet)
    }
  }
  if (!is.null(status)) {
    r <- .tk_native(tk_run_status, run_id, status, message, error_message, error_detail, isTRUE(reset))
    .tk_transition_note(r, NULL, error_message %||% message, quiet)
  }
  if (.tasker_env$listening) .tk_drain()
  invisible(TRUE)
}

#' Complete a run
#'
#' Sets the run `COMPLETED`; its open subtasks are completed with it.
#'
#' @inheritParams task_update
#' @return `TRUE`, invisibly.
#' @export
task_complete <- function(message = NULL, quiet = FALSE, conn = NULL, run_id = NULL) {
  # task_complete(run_id, "msg"), as the earlier package's README wrote it.
  if (is.null(run_id) && .tk_looks_like_run(message)) {
    r <- .tk_legacy_call("task_complete", sys.call(), environment(), c("run_id", "message"),
                         "task_complete(message, run_id = run_id)")
    if (!is.null(r)) return(invisible(r))
  }
  if (!is.null(conn)) .tk_conn(conn)
  # Straight to the transition: the native side checks run_id and message before it
  # needs the database.
  r <- .tk_native(tk_run_status, run_id, "COMPLETED", message, NULL, NULL, FALSE)
  if (!.tk_quiet(quiet)) .tk_transition_note(r, NULL, message, quiet)
  if (.tasker_env$listening) .tk_drain()
  invisible(TRUE)
}

#' Fail a run
#'
#' Sets the run `FAILED` with an error; its open subtasks fail with it. A
#' finished run cannot fail any more (the earlier package overwrote
#' `COMPLETED`).
#'
#' @param error_message What went wrong.
#' @param error_detail Details (e.g. a call stack).
#' @inheritParams task_update
#' @return `TRUE`, invisibly.
#' @export
task_fail <- function(error_message, error_detail = NULL, quiet = FALSE, conn = NULL, run_id = NULL) {
  if (missing(error_message) || is.null(error_message)) {
    .tk_arg_error("invalid error_message NULL: task_fail() needs an error message")
  }
  # task_fail(run_id, "what went wrong"): the run id first, as in the earlier README.
  if (is.null(run_id) && .tk_looks_like_run(error_message) && !is.null(error_detail) &&
      is.character(error_detail)) {
    r <- .tk_legacy_call("task_fail", sys.call(), environment(),
                         c("run_id", "error_message", "error_detail"),
                         "task_fail(error_message, run_id = run_id)")
    if (!is.null(r)) return(invisible(r))
  }
  task_update(status = "FAILED", error_message = error_message, error_detail = error_detail,
              quiet = quiet, conn = conn, run_id = run_id)
}

#' Record a task as completed without running it
#'
#' Creates a run that is already `COMPLETED`, with `total_subtasks` completed
#' subtasks ("Subtask 1", ...). Does not change the current run.
#'
#' @inheritParams task_start
#' @param timestamp When the work was done (kept in the run's metadata as
#'   `marked_complete_at`; the run's own times are the time of this call).
#' @return The run id, invisibly.
#' @export
task_mark_complete <- function(stage, task, message = NULL, total_subtasks = NULL, version = NULL,
                               git_commit = NULL, timestamp = NULL, quiet = FALSE, conn = NULL) {
  .tk_conn(conn)
  stage <- .tk_name(if (missing(stage)) NULL else stage, "stage")
  task <- .tk_name(if (missing(task)) NULL else task, "task")
  meta <- '{"marked_complete": true}'
  if (!is.null(timestamp)) {
    meta <- sprintf('{"marked_complete": true, "marked_complete_at": "%s"}',
                    format(as.POSIXct(timestamp, tz = "UTC"), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"))
  }
  run_id <- task_start(stage, task, total_subtasks = total_subtasks, message = message,
                       version = version, git_commit = git_commit, quiet = TRUE,
                       .active = FALSE, metadata = meta)
  for (i in seq_len(total_subtasks %||% 0)) {
    subtask_start(sprintf("Subtask %d", i), items_total = 1, quiet = TRUE, run_id = run_id)
    subtask_complete(items_completed = 1, message = "Manually marked complete", quiet = TRUE,
                     run_id = run_id, subtask_number = i)
  }
  task_complete(message = message, quiet = TRUE, run_id = run_id)
  .tk_say(sprintf("%s.%s marked COMPLETED", stage, task), quiet)
  invisible(run_id)
}

#' Delete the runs of a task
#'
#' Deletes every run of the task (or only `run_id`) with its subtasks and
#' events. An unknown task is an error.
#'
#' @inheritParams task_start
#' @param run_id Only this run.
#' @return `TRUE`, invisibly.
#' @export
task_reset <- function(stage, task, run_id = NULL, quiet = FALSE, conn = NULL) {
  .tk_conn(conn)
  stage <- .tk_name(if (missing(stage)) NULL else stage, "stage")
  task <- .tk_name(if (missing(task)) NULL else task, "task")
  run_id <- .tk_text(run_id, "run_id")
  .tk_ensure()
  known <- get_registered_tasks(stage = stage, name = task)
  if (!nrow(known)) {
    .tk_signal("not_found", sprintf("task not found: \"%s\" in stage \"%s\"", task, stage))
  }
  n <- .tk(tk_delete_runs(stage, task, run_id))
  if (n == 0) {
    .tk_say(sprintf("No task runs found for %s.%s", stage, task), quiet)
  } else {
    .tk_say(sprintf("%s.%s: deleted %d run(s)", stage, task, as.integer(n)), quiet)
  }
  ctx <- .tk(tk_context(FALSE, NULL))
  if (!is.null(ctx) && is.null(tryCatch(.tk(tk_run(ctx)), tasker_not_found = function(e) NULL))) {
    .tk(tk_context(TRUE, NULL))
  }
  invisible(TRUE)
}
