#' Start a subtask
#'
#' The number is allocated by the database (the next free number of the run)
#' unless `subtask_number` is given; the earlier package counted in memory, so
#' restarted scripts and workers overwrote existing rows. An existing number is
#' an error unless `restart = TRUE`, which starts it again from zero (no stale
#' progress is kept). The subtask becomes the run's current subtask, which
#' [subtask_update()], [subtask_increment()] and [subtask_complete()] use by
#' default.
#'
#' @param subtask_name A label.
#' @param items_total How many items the subtask will process.
#' @param message A progress message.
#' @param quiet Do not print a message.
#' @param conn Ignored.
#' @param run_id The run (default: the current run).
#' @param subtask_number An explicit number (1, 2, ...).
#' @param restart Start an existing number again from zero.
#' @return The subtask number, invisibly (the earlier package returned a row id).
#' @export
subtask_start <- function(subtask_name, items_total = NULL, message = NULL, quiet = FALSE,
                          conn = NULL, run_id = NULL, subtask_number = NULL, restart = FALSE) {
  # subtask_start(run_id, 1, "Load data"): the earlier README's form, run id first.
  if (missing(subtask_name)) .tk_arg_error("'subtask_name' must be a non-empty character string")
  if (is.null(run_id) && .tk_looks_like_run(subtask_name)) {
    r <- .tk_legacy_call("subtask_start", sys.call(), environment(),
                         c("run_id", "subtask_number", "subtask_name", "items_total", "message"),
                         "subtask_start(subtask_name, items_total, run_id = run_id, subtask_number = n)")
    if (!is.null(r)) return(invisible(r))
  }
  if (!is.null(conn)) .tk_conn(conn)
  subtask_name <- .tk_name(subtask_name, "subtask_name")
  r <- .tk_native(tk_subtask_start, .tk_text(run_id, "run_id"), subtask_name, items_total,
                  .tk_text(message, "message"), subtask_number, isTRUE(restart))
  if (!.tk_quiet(quiet)) {
    .tk_say(sprintf("%s [%d] START: %s%s", .tk_run_label(r), r$number, subtask_name,
                    if (is.null(items_total)) "" else sprintf(" (%s items)", .tk_count_text(items_total))),
            quiet)
  }
  if (.tasker_env$listening) .tk_drain()
  invisible(r$number)
}

# 400000 -> "400,000" (never "4e+05").
.tk_count_text <- function(x) formatC(x, format = "f", digits = 0L, big.mark = ",")

.tk_subtask_statuses <- c("RUNNING", "COMPLETED", "FAILED", "SKIPPED", "PAUSED", "CANCELLED")

#' Update a subtask
#'
#' Without `status` this records progress only and never changes the status
#' (except `STARTED` to `RUNNING` on first progress); the earlier package set
#' `RUNNING` by default and so reopened finished subtasks. Progress calls only
#' touch memory; a background thread writes them every 200 ms. `percent` is
#' derived from the items whenever `items_total` is known. Progress messages
#' are printed at most once per second per run.
#'
#' @param status `NULL` (unchanged) or `RUNNING`, `COMPLETED`, `FAILED`,
#'   `SKIPPED`, `PAUSED`, `CANCELLED`.
#' @param percent Percent complete (0 to 100), for subtasks without items.
#' @param items_complete Items done so far (an absolute count).
#' @param message A progress message.
#' @param error_message Recorded with a `FAILED` status.
#' @param error_detail Longer detail of the error (a traceback, say), with a
#'   `FAILED` status; shown by [get_subtask_progress()].
#' @param quiet Do not print messages.
#' @param conn Ignored.
#' @param run_id The run (default: the current run).
#' @param subtask_number The subtask (default: the run's current subtask).
#' @param items_total Change the number of items.
#' @param reset Allow leaving a finished status.
#' @return `TRUE`, invisibly.
#' @export
subtask_update <- function(status = NULL, percent = NULL, items_complete = NULL, message = NULL,
                           error_message = NULL, quiet = FALSE, conn = NULL, run_id = NULL,
                           subtask_number = NULL, items_total = NULL, reset = FALSE,
                           error_detail = NULL) {
  if (is.null(status) && is.null(error_message) && is.null(error_detail)) {
    # Progress only: memory, no I/O (the background writer stores it).
    if (!is.null(conn)) .tk_conn(conn)
    if (is.null(.Call(tk_prog, run_id, subtask_number, items_complete, percent, message, items_total))) {
      return(invisible(TRUE))
    }
    return(.tk_progress_post(.Call(tk_progress_left), quiet, run_id, function() {
      .tk_left(.Call(tk_prog, run_id, subtask_number, items_complete, percent, message, items_total))
    }, TRUE))
  }
  # subtask_update(run_id, 1, "RUNNING", ...): the earlier README's form, run id first.
  if (is.null(run_id) && .tk_looks_like_run(status)) {
    r <- .tk_legacy_call("subtask_update", sys.call(), environment(),
                         c("run_id", "subtask_number", "status", "percent", "items_complete", "message"),
                         "subtask_update(status, ..., run_id = run_id, subtask_number = n)")
    if (!is.null(r)) return(invisible(r))
  }
  if (!is.null(conn)) .tk_conn(conn)
  status <- .tk_status(status, .tk_subtask_statuses)
  if (is.null(status)) {
    .tk_arg_error(sprintf("invalid %s: an error is recorded with a status (status = \"FAILED\")",
                          if (is.null(error_message)) "error_detail" else "error_message"))
  }
  run_id <- .tk_text(run_id, "run_id")
  message <- .tk_text(message, "message")
  error_message <- .tk_text(error_message, "error_message")
  error_detail <- .tk_text(error_detail, "error_detail")
  if (!is.null(items_complete) || !is.null(percent) || !is.null(items_total)) {
    .tk_progress_post(.tk_left(.Call(tk_prog, run_id, subtask_number, items_complete, percent, NULL,
                                     items_total)),
                      TRUE, run_id, function() {
                        .tk_left(.Call(tk_prog, run_id, subtask_number, items_complete, percent, NULL,
                                       items_total))
                      })
  }
  r <- .tk_native(tk_subtask_status, run_id, subtask_number, status, message, error_message,
                  error_detail, isTRUE(reset))
  .tk_transition_note(r, r$number, error_message %||% message, quiet)
  if (.tasker_env$listening) .tk_drain()
  invisible(TRUE)
}

#' Complete a subtask
#'
#' @param items_completed Final item count. A string given here (as in
#'   `subtask_complete("done")`) is taken as the message.
#' @inheritParams subtask_update
#' @return `TRUE`, invisibly.
#' @export
subtask_complete <- function(items_completed = NULL, message = NULL, quiet = FALSE, conn = NULL,
                             run_id = NULL, subtask_number = NULL) {
  # subtask_complete(run_id, 1): the earlier README's form, run id first.
  if (is.null(run_id) && .tk_looks_like_run(items_completed)) {
    r <- .tk_legacy_call("subtask_complete", sys.call(), environment(),
                         c("run_id", "subtask_number", "message"),
                         "subtask_complete(message = , run_id = run_id, subtask_number = n)")
    if (!is.null(r)) return(invisible(r))
  }
  if (is.character(items_completed) && is.null(message)) {
    # subtask_complete("done"): a string is the message (the earlier package refused it).
    message <- items_completed
    items_completed <- NULL
  }
  if (!is.null(items_completed) || !is.null(conn)) {
    return(subtask_update(status = "COMPLETED", items_complete = items_completed, message = message,
                          quiet = quiet, conn = conn, run_id = run_id, subtask_number = subtask_number))
  }
  # The usual call, straight to the transition: the native side checks run_id, message
  # and subtask_number before it needs the database.
  r <- .tk_native(tk_subtask_status, run_id, subtask_number, "COMPLETED", message, NULL, NULL, FALSE)
  if (!.tk_quiet(quiet)) .tk_transition_note(r, r$number, message, quiet)
  if (.tasker_env$listening) .tk_drain()
  invisible(TRUE)
}

#' Add items to a subtask's count
#'
#' Costs about as much as an empty R function call: the count is kept in memory
#' and written by a background thread (every 200 ms, at every transition, at
#' [tasker_flush()] and at exit). Many processes can increment one subtask and
#' the stored total is exact. In a forked child (`parallel::mclapply`), call
#' [tasker_flush()] before the function returns, or use [track()] /
#' [with_subtask()], which do it for you: forked children exit without running
#' exit hooks.
#'
#' @param increment Items to add (a whole number, at least 1).
#' @inheritParams subtask_update
#' @return `TRUE`, invisibly.
#' @export
subtask_increment <- function(increment = 1, quiet = TRUE, conn = NULL, run_id = NULL,
                              subtask_number = NULL) {
  # NULL run_id / subtask_number mean the current ones (resolved natively). NULL back:
  # done with nothing to say; anything else: see .tk_after_increment(). The result is
  # not kept in a variable: that alone cost about a quarter of the native call.
  if (is.null(.Call(tk_inc, run_id, subtask_number, increment, conn))) invisible(TRUE) else
    .tk_after_increment(increment, quiet, conn, run_id, subtask_number)
}

# What an increment left for R: a note about `conn`, a progress note that is due, or an
# error to signal (configuring first if that is all that was missing).
.tk_after_increment <- function(increment, quiet, conn, run_id, subtask_number) {
  .tk_conn(conn)
  r <- .Call(tk_progress_left)
  if (!is.null(r)) {
    .tk_progress_post(r, quiet, run_id, function() {
      .tk_left(.Call(tk_inc, run_id, subtask_number, increment, NULL))
    })
  }
  invisible(TRUE)
}

# A progress routine's answer as .tk_progress_post() takes it: NULL when done, else what
# the routine left (a note's subtask number or an error).
.tk_left <- function(x) if (is.null(x)) NULL else .Call(tk_progress_left)
