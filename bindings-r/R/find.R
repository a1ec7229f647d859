#' The file name of the running script
#'
#' The base name of the script given to `Rscript` / `R CMD BATCH`
#' (`--file=`), else of the file being `source()`d, else of the document knitr
#' is rendering, else `NULL` (e.g. at the console).
#'
#' @return A file name or `NULL`.
#' @export
get_script_filename <- function() {
  args <- commandArgs(trailingOnly = FALSE)
  f <- grep("^--file=", args, value = TRUE)
  if (length(f)) return(basename(sub("^--file=", "", f[[1L]])))
  for (i in rev(seq_len(sys.nframe()))) {
    of <- sys.frame(i)$ofile
    if (is.character(of) && length(of) == 1L && !is.na(of)) return(basename(of))
  }
  if (isNamespaceLoaded("knitr")) {
    input <- tryCatch(get("current_input", envir = asNamespace("knitr"))(), error = function(e) NULL)
    if (is.character(input) && length(input) == 1L) return(basename(input))
  }
  NULL
}

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

.tk_find_task <- function(stage, task, filename) {
  tasks <- get_registered_tasks()
  if (!nrow(tasks)) .tk_signal("not_found", "no tasks are registered")
  describe <- function(t) paste(sprintf("%s.%s", t$stage_name, t$task_name), collapse = ", ")
  if (!missing(filename) && !is.null(filename)) {
    key <- basename(filename)
    rows <- .tk_pick(tasks$script_filename, key)
    what <- sprintf("script \"%s\"", key)
  } else {
    if (missing(stage) || missing(task)) .tk_arg_error("give stage and task, or filename")
    if (is.numeric(stage)) {
      s_rows <- which(!is.na(tasks$stage_order) & tasks$stage_order == stage)
    } else {
      s_rows <- .tk_pick(tasks$stage_name, stage)
      exact <- s_rows[tolower(tasks$stage_name[s_rows]) == tolower(stage)]
      if (length(exact)) s_rows <- exact
    }
    if (!length(s_rows)) {
      .tk_signal("not_found", sprintf("no stage matches %s; stages: %s", format(stage),
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
    what <- sprintf("stage %s, task %s", format(stage), format(task))
  }
  if (!length(rows)) .tk_signal("not_found", sprintf("no task matches %s; tasks: %s", what, describe(tasks)))
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
  .tk_ensure()
  t <- .tk_find_task(stage, task, if (missing(filename)) NULL else filename)
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
  .tk_ensure()
  t <- .tk_find_task(stage, task, if (missing(filename)) NULL else filename)
  run_id <- .tk_latest_run(t, force, quiet)
  subs <- get_subtask_progress(run_id)
  hit <- if (is.numeric(subtask)) which(subs$subtask_number == subtask) else which(subs$subtask_name == subtask)
  if (!length(hit)) {
    if (isTRUE(force) && !is.numeric(subtask)) {
      number <- subtask_start(subtask, items_total = items_total, run_id = run_id, quiet = quiet)
    } else {
      .tk_signal("not_found", sprintf("no subtask %s in run %s; subtasks: %s", format(subtask), run_id,
                                      if (nrow(subs)) paste(sprintf("%d %s", subs$subtask_number, subs$subtask_name), collapse = ", ") else "none"))
    }
  } else {
    number <- subs$subtask_number[[hit[[1L]]]]
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
