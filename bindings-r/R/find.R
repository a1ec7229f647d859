#' Find the registered task of a script
#'
#' @param script_filename A script file name (exact match on the registered
#'   `script_filename`).
#' @param conn Ignored.
#' @return `list(stage, task, task_id)`, or `NULL` when no task matches (a
#'   warning is given when several do; the first is used).
#' @export
lookup_task_by_script <- function(script_filename, conn = NULL) {
  .tk_conn(conn)
  if (is.null(script_filename) || !nzchar(script_filename)) return(NULL)
  tasks <- get_registered_tasks()
  hit <- tasks[!is.na(tasks$script_filename) & tasks$script_filename == script_filename, , drop = FALSE]
  if (!nrow(hit)) return(NULL)
  if (nrow(hit) > 1L) {
    warning(sprintf("%d tasks are registered for script '%s'; using %s.%s", nrow(hit),
                    script_filename, hit$stage_name[[1L]], hit$task_name[[1L]]), call. = FALSE)
  }
  list(stage = hit$stage_name[[1L]], task = hit$task_name[[1L]], task_id = hit$task_id[[1L]])
}

# Case-insensitive fixed-string matching; an exact name wins over substrings.
.tk_pick <- function(values, key) {
  lower <- tolower(values)
  k <- tolower(key)
  exact <- which(!is.na(lower) & lower == k)
  if (length(exact)) return(exact)
  which(!is.na(lower) & grepl(k, lower, fixed = TRUE))
}

# The locator of find_and_update_*, checked before anything is looked up.
.tk_locate_args <- function(stage, task, filename) {
  if (!is.null(filename)) return(list(filename = basename(.tk_name(filename, "filename"))))
  if (is.null(stage) || is.null(task)) .tk_arg_error("Either provide 'filename' or both 'stage' and 'task'")
  list(stage = .tk_locator(stage, "stage"), task = .tk_locator(task, "task"))
}

.tk_find_task <- function(loc) {
  tasks <- get_registered_tasks()
  if (!nrow(tasks)) .tk_signal("not_found", "Task not found: no tasks are registered")
  describe <- function(t) paste(sprintf("%s.%s", t$stage_name, t$task_name), collapse = ", ")
  if (!is.null(loc$filename)) {
    rows <- .tk_pick(tasks$script_filename, loc$filename)
    if (!length(rows)) {
      files <- unique(tasks$script_filename[!is.na(tasks$script_filename)])
      .tk_signal("not_found", sprintf("Task with script filename matching '%s' not found. Registered script files: %s",
                                      loc$filename, if (length(files)) paste(files, collapse = ", ") else "none"))
    }
    what <- sprintf("script filename '%s'", loc$filename)
  } else {
    stage <- loc$stage
    task <- loc$task
    if (is.numeric(stage)) {
      s_rows <- which(!is.na(tasks$stage_order) & tasks$stage_order == stage)
    } else {
      s_rows <- .tk_pick(tasks$stage_name, stage)
      exact <- s_rows[tolower(tasks$stage_name[s_rows]) == tolower(stage)]
      if (length(exact)) s_rows <- exact
    }
    if (!length(s_rows)) {
      .tk_signal("not_found", sprintf("Stage %s not found. Available stages: %s", format(stage),
                                      paste(unique(tasks$stage_name), collapse = ", ")))
    }
    in_stage <- tasks[s_rows, , drop = FALSE]
    if (is.numeric(task)) {
      t_rows <- which(!is.na(in_stage$task_order) & in_stage$task_order == task)
    } else {
      t_rows <- .tk_pick(in_stage$task_name, task)
      if (!length(t_rows)) t_rows <- .tk_pick(in_stage$script_filename, task)
    }
    rows <- s_rows[t_rows]
    if (!length(rows)) {
      .tk_signal("not_found", sprintf("Task %s not found in stage %s. Available tasks: %s", format(task),
                                      format(stage), describe(in_stage)))
    }
    what <- sprintf("stage %s, task %s", format(stage), format(task))
  }
  if (length(rows) > 1L) {
    .tk_arg_error(sprintf("ambiguous: %s matches %s", what, describe(tasks[rows, , drop = FALSE])))
  }
  tasks[rows, , drop = FALSE]
}

.tk_latest_run <- function(t, force, quiet) {
  h <- get_task_history(stage = t$stage_name, task = t$task_name, limit = 1)
  if (nrow(h)) return(h$run_id[[1L]])
  if (!isTRUE(force)) {
    .tk_signal("not_found", sprintf("No task runs found for %s.%s (force=FALSE)", t$stage_name, t$task_name))
  }
  warning(sprintf("No runs of %s.%s: starting one (force = TRUE)", t$stage_name, t$task_name), call. = FALSE)
  task_start(t$stage_name, t$task_name, .active = FALSE, quiet = quiet)
}

#' Set the status of a task's latest run (operator helper)
#'
#' Locates a task by `filename` (a substring of the registered script file
#' name, case-insensitive) or by `stage` and `task`: each either a number
#' (`stage_order`, `task_order` within the stage) or a name (an exact name, else
#' a unique case-insensitive substring; for `task` also of the script file
#' name). Then updates the task's most recent run. No match or several matches
#' are errors that list the candidates.
#'
#' @param stage,task How to find the task.
#' @param status New status (`NULL`: unchanged).
#' @param message,error_message Recorded with the change.
#' @param quiet Do not print messages.
#' @param conn Ignored.
#' @param filename Find the task by its script instead.
#' @param force Start a run if the task has none.
#' @param reset Allow leaving a finished status.
#' @return `TRUE`, invisibly.
#' @export
find_and_update_task <- function(stage, task, status = NULL, message = NULL, error_message = NULL,
                                 quiet = FALSE, conn = NULL, filename, force = FALSE, reset = FALSE) {
  .tk_conn(conn)
  loc <- .tk_locate_args(if (missing(stage)) NULL else stage, if (missing(task)) NULL else task,
                         if (missing(filename)) NULL else filename)
  status <- .tk_status(status, .tk_run_statuses)
  message <- .tk_text(message, "message")
  error_message <- .tk_text(error_message, "error_message")
  t <- .tk_find_task(loc)
  run_id <- .tk_latest_run(t, force, quiet)
  if (is.null(status) && is.null(message)) return(invisible(TRUE))
  task_update(status = status, message = message, error_message = error_message, quiet = quiet,
              run_id = run_id, reset = reset)
}

#' Update a subtask of a task's latest run (operator helper)
#'
#' Finds the task as [find_and_update_task()] does, then the subtask by number
#' or exact name, and sets its status and progress.
#'
#' @inheritParams find_and_update_task
#' @param subtask Subtask number or exact name.
#' @param percent,items_total,items_completed Progress to record.
#' @return `TRUE`, invisibly.
#' @export
find_and_update_subtask <- function(stage, task, subtask, status = NULL, percent = NULL,
                                    items_total = NULL, items_completed = NULL, message = NULL,
                                    error_message = NULL, quiet = FALSE, conn = NULL, filename,
                                    force = FALSE, reset = FALSE) {
  .tk_conn(conn)
  loc <- .tk_locate_args(if (missing(stage)) NULL else stage, if (missing(task)) NULL else task,
                         if (missing(filename)) NULL else filename)
  if (missing(subtask) || is.null(subtask)) {
    .tk_arg_error("'subtask' must be provided: a subtask number or a non-empty character string")
  }
  subtask <- .tk_locator(subtask, "subtask")
  status <- .tk_status(status, .tk_subtask_statuses)
  message <- .tk_text(message, "message")
  error_message <- .tk_text(error_message, "error_message")
  t <- .tk_find_task(loc)
  run_id <- .tk_latest_run(t, force, quiet)
  subs <- get_subtask_progress(run_id)
  hit <- if (is.numeric(subtask)) which(subs$subtask_number == subtask) else which(subs$subtask_name == subtask)
  if (!length(hit)) {
    if (isTRUE(force) && !is.numeric(subtask)) {
      number <- subtask_start(subtask, items_total = items_total, run_id = run_id, quiet = quiet)
    } else {
      .tk_signal("not_found", sprintf("Subtask %s not found in the latest run of %s.%s (%s). Available subtasks: %s",
                                      format(subtask), t$stage_name, t$task_name, run_id,
                                      if (nrow(subs)) paste(sprintf("%d %s", subs$subtask_number, subs$subtask_name),
                                                            collapse = ", ") else "none"))
    }
  } else {
    number <- subs$subtask_number[[hit[[1L]]]]
    # A note on finished work (the earlier package reopened it): finished stays
    # finished, so nothing is recorded, and the script goes on with a warning.
    finished <- subs$status[[hit[[1L]]]] %in% c("COMPLETED", "FAILED", "SKIPPED", "CANCELLED")
    if (finished && is.null(status) && !isTRUE(reset)) {
      warning(structure(class = c("tasker_warning", "warning", "condition"), list(
        message = sprintf("Subtask %d of %s.%s has finished (%s): nothing recorded; pass status with reset = TRUE to reopen it",
                          number, t$stage_name, t$task_name, subs$status[[hit[[1L]]]]),
        call = NULL)))
      return(invisible(TRUE))
    }
  }
  if (!is.null(items_completed) || !is.null(percent) || !is.null(items_total)) {
    subtask_update(percent = percent, items_complete = items_completed, items_total = items_total,
                   run_id = run_id, subtask_number = number, quiet = TRUE)
  }
  if (!is.null(status) || !is.null(error_message) || !is.null(message)) {
    subtask_update(status = status, message = message, error_message = error_message, quiet = quiet,
                   run_id = run_id, subtask_number = number, reset = reset)
  }
  invisible(TRUE)
}
