#' Log a line on a run
#'
#' Keeps `message` as a log line of the current run (or `run_id`), with its
#' time, level, host and process; the tracker writes it with the run's
#' progress, so the call never waits for the database (and lines logged while
#' the database is away are written when it is back). A run keeps the newest
#' `tracking.max_log_lines` lines (default 10,000); older ones are dropped and
#' one marker line counts them. A line over 8 KB is cut and says so.
#' [get_run_logs()] reads them back, from any process or host; `tasker logs
#' RUN -f` follows them on the command line.
#'
#' @param message The text (a character vector is joined with newlines).
#' @param level `"debug"`, `"info"`, `"warn"` (or `"warning"`) or `"error"`,
#'   in any case.
#' @param run_id The run (default: the current run, [tasker_context()]).
#' @param subtask_number The subtask the line is about, if any.
#' @return `TRUE`, invisibly.
#' @examples
#' tasker_config(path = tempfile(fileext = ".db"), quiet = TRUE)
#' run_id <- task_start("examples", "logged", quiet = TRUE)
#' tasker_log("reading the input")
#' tasker_log("3 rows had no date", level = "warn")
#' task_complete(quiet = TRUE)
#' get_run_logs(run_id)[, c("level", "message")]
#' @export
tasker_log <- function(message, level = "info", run_id = NULL, subtask_number = NULL) {
  if (missing(message) || !is.character(message) || anyNA(message)) {
    .tk_arg_error(sprintf("invalid message %s: must be text",
                          if (missing(message)) "(missing)" else paste(utils::head(format(message), 1L), collapse = "")))
  }
  message <- paste(message, collapse = "\n")
  level <- .tk_text(level, "level")
  run_id <- .tk_text(run_id, "run_id")
  .tk_call(tk_log, run_id, level, message, subtask_number)
  invisible(TRUE)
}

#' Read a run's log lines
#'
#' @param run_id The run (default: the current run).
#' @param level Only lines of this level or more important (`"warn"`: warnings
#'   and errors).
#' @param since Only lines logged at or after this time (POSIXct).
#' @param after Only lines stored after the line with this `log_id` (to follow
#'   a run: pass the last `log_id` seen).
#' @param limit At most this many lines: the newest ones, or with `after` the
#'   first ones after it.
#' @return A data frame, oldest line first: `log_id, run_id, time, level,
#'   subtask_number, hostname, process_id, message, dropped_lines`. When older
#'   lines were dropped, the first row is a marker line whose `dropped_lines`
#'   counts them. Messages are stored as logged: escape them before showing
#'   them in a page.
#' @export
get_run_logs <- function(run_id = NULL, level = NULL, since = NULL, after = NULL, limit = NULL) {
  run_id <- .tk_text(run_id, "run_id")
  level <- .tk_text(level, "level")
  since <- .tk_since(since)
  if (.tasker_env$listening) .tk_drain()
  .tk_df(.tk_call(tk_run_logs, run_id, level, since, after, limit))
}

#' Record which items of a subtask failed or were skipped
#'
#' `item_failed()` records that item `key` of the current subtask (or
#' `subtask_number`) failed, and why; `item_skipped()` that it was skipped.
#' Like progress, they only touch memory and are written by the tracker. The
#' first 1,000 per subtask and outcome are kept with their key and reason;
#' every one is counted. [get_item_outcomes()] reads them back, `tasker show
#' RUN --failed-items` lists them, so that just those items can be run again.
#'
#' @param key The item (a county, a file name, an id): its text is kept.
#' @param error,reason Why (`reason` may be `NULL`).
#' @inheritParams tasker_log
#' @return `TRUE`, invisibly.
#' @export
item_failed <- function(key, error, run_id = NULL, subtask_number = NULL) {
  .tk_item_outcome("failed", key, .tk_text(error, "error"), run_id, subtask_number)
}

#' @rdname item_failed
#' @export
item_skipped <- function(key, reason = NULL, run_id = NULL, subtask_number = NULL) {
  .tk_item_outcome("skipped", key, .tk_text(reason, "reason"), run_id, subtask_number)
}

.tk_item_outcome <- function(outcome, key, reason, run_id, subtask_number) {
  if (is.factor(key)) key <- as.character(key)
  if (length(key) != 1L || is.na(key) || !(is.character(key) || is.numeric(key))) {
    .tk_arg_error(sprintf("invalid key %s: must be one string or number",
                          paste(utils::head(format(key), 1L), collapse = "")))
  }
  run_id <- .tk_text(run_id, "run_id")
  .tk_call(tk_item_outcome, run_id, subtask_number, outcome, as.character(key), reason)
  invisible(TRUE)
}

#' Read the items of a run that failed or were skipped
#'
#' @param run_id The run (default: the current run).
#' @param subtask_number Only this subtask's items.
#' @param outcome `"failed"` or `"skipped"` (default: both).
#' @param limit At most this many rows.
#' @return A data frame by subtask: `run_id, subtask_number, outcome, item_key,
#'   reason, time, hostname, process_id, total`, where `total` is the exact
#'   number of items of that subtask with that outcome (also those beyond the
#'   1,000 kept).
#' @export
get_item_outcomes <- function(run_id = NULL, subtask_number = NULL, outcome = NULL, limit = NULL) {
  run_id <- .tk_text(run_id, "run_id")
  outcome <- .tk_text(outcome, "outcome")
  if (.tasker_env$listening) .tk_drain()
  .tk_df(.tk_call(tk_item_outcomes, run_id, subtask_number, outcome, limit))
}
