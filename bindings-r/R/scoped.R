# Formats the calls leading to an error (from inside a calling handler).
.tk_stack <- function(calls) {
  # Drop the handler's own frames (.handleSimpleError / h) at the end.
  keep <- calls[seq_len(max(0L, length(calls) - 2L))]
  lines <- vapply(keep, function(cl) {
    txt <- paste(deparse(cl, nlines = 1L, width.cutoff = 200L), collapse = " ")
    if (nchar(txt) > 200L) paste0(substr(txt, 1L, 200L), "...") else txt
  }, character(1))
  if (!length(lines)) return("(top level)")
  paste(sprintf("%d: %s", seq_along(lines), lines), collapse = "\n")
}

.tk_is_finished <- function(run_id, number = NULL) {
  if (is.null(number)) {
    st <- .tk(tk_run(run_id))$status
  } else {
    st <- get_subtask_progress(run_id)
    st <- st$status[st$subtask_number == number]
  }
  length(st) == 1L && st %in% c("COMPLETED", "FAILED", "SKIPPED", "CANCELLED")
}

#' Run an expression as a tracked task
#'
#' Starts a run, makes it the current run while `expr` is evaluated, and
#' completes it when `expr` returns. If `expr` signals an error, the run is set
#' `FAILED` with `conditionMessage()` as error message and the call stack as
#' error detail, and the error is signalled again unchanged. An interrupt
#' cancels the run. The previous current run is restored afterwards.
#'
#' @param stage,task Stage and task name.
#' @param expr The work.
#' @param ... Passed to [task_start()] (`total_subtasks`, `message`, `version`,
#'   `git_commit`, `metadata`).
#' @param quiet Do not print messages.
#' @return The value of `expr`.
#' @examples
#' \dontrun{
#' with_task("prepare", "download", {
#'   with_subtask("files", items_total = 3, for (f in 1:3) subtask_increment())
#' })
#' }
#' @export
with_task <- function(stage, task, expr, ..., quiet = FALSE) {
  previous <- tasker_context()
  run_id <- task_start(stage, task, ..., quiet = quiet)
  state <- new.env(parent = emptyenv())
  state$closed <- FALSE
  on.exit({
    if (!state$closed) {
      try(task_update(status = "CANCELLED", message = "left without completing (interrupt or non-local exit)",
                      run_id = run_id, quiet = quiet), silent = TRUE)
    }
    if (.tk_is_forked_child()) try(tasker_flush(), silent = TRUE)
    try(.tk(tk_context(TRUE, previous)), silent = TRUE)
  })
  value <- withCallingHandlers(expr, error = function(e) {
    if (!state$closed) {
      state$closed <- TRUE
      tryCatch({
        if (!.tk_is_finished(run_id)) {
          task_fail(conditionMessage(e), error_detail = .tk_stack(sys.calls()),
                    run_id = run_id, quiet = quiet)
        }
      }, error = function(e2) warning("tasker could not record the failure: ", conditionMessage(e2),
                                      call. = FALSE))
    }
  })
  state$closed <- TRUE
  if (!.tk_is_finished(run_id)) task_complete(run_id = run_id, quiet = quiet)
  value
}

#' Run an expression as a tracked subtask
#'
#' Starts a subtask of the current run (or `run_id`), makes it the current
#' subtask while `expr` is evaluated (so `subtask_increment()` needs no
#' arguments), and completes it when `expr` returns. On error the subtask is set
#' `FAILED` with `conditionMessage()` as error message and the call stack as
#' error detail, and the error is signalled again. In a forked child the pending
#' progress is flushed on the way out.
#'
#' @param name Subtask name.
#' @param expr The work.
#' @param items_total How many items `expr` will process.
#' @param ... Passed to [subtask_start()] (`message`, `subtask_number`, `restart`).
#' @param run_id The run (default: the current run).
#' @param quiet Do not print messages.
#' @return The value of `expr`.
#' @export
with_subtask <- function(name, expr, items_total = NULL, ..., run_id = NULL, quiet = FALSE) {
  .tk_ensure()
  info <- .tk(tk_resolve(.tk_text(run_id, "run_id")))
  rid <- info$run_id
  previous <- info$current
  number <- subtask_start(name, items_total = items_total, ..., run_id = rid, quiet = quiet)
  state <- new.env(parent = emptyenv())
  state$closed <- FALSE
  on.exit({
    if (!state$closed) {
      try(subtask_update(status = "CANCELLED", message = "left without completing",
                         run_id = rid, subtask_number = number, quiet = quiet), silent = TRUE)
    }
    if (.tk_is_forked_child()) try(tasker_flush(), silent = TRUE)
    if (!is.null(previous)) try(.tk(tk_set_current(rid, previous)), silent = TRUE)
  })
  value <- withCallingHandlers(expr, error = function(e) {
    if (!state$closed) {
      state$closed <- TRUE
      tryCatch({
        if (!.tk_is_finished(rid, number)) {
          subtask_update(status = "FAILED", error_message = conditionMessage(e),
                         error_detail = .tk_stack(sys.calls()),
                         run_id = rid, subtask_number = number, quiet = quiet)
        }
      }, error = function(e2) warning("tasker could not record the failure: ", conditionMessage(e2),
                                      call. = FALSE))
    }
  })
  state$closed <- TRUE
  if (!.tk_is_finished(rid, number)) {
    subtask_complete(run_id = rid, subtask_number = number, quiet = quiet)
  }
  value
}

#' Apply a function to each element, one tracked item per element
#'
#' Like `lapply(x, f, ...)`, inside a subtask with `items_total = length(x)`
#' that counts one item per element and completes at the end (see
#' [with_subtask()] for errors).
#'
#' @param x A vector or list.
#' @param f A function (or its name).
#' @param name Subtask name. By default the name of the function when `f` is
#'   given by name (`track(files, download_one)` is "download_one"), else the
#'   name of the variable given as `x`, else `"items"`; never a deparsed
#'   expression such as `"1:30"`.
#' @param ... More arguments to `f`.
#' @param run_id The run (default: the current run).
#' @param quiet Do not print messages.
#' @return A list like `lapply()`'s.
#' @export
track <- function(x, f, name = NULL, ..., run_id = NULL, quiet = FALSE) {
  if (is.null(name)) name <- .tk_track_name(substitute(f), substitute(x))
  name <- .tk_name(name, "name")
  f <- match.fun(f)
  with_subtask(name, {
    out <- vector("list", length(x))
    for (i in seq_along(x)) {
      out[i] <- list(f(x[[i]], ...))
      subtask_increment(run_id = run_id)
    }
    names(out) <- names(x)
    out
  }, items_total = length(x), run_id = run_id, quiet = quiet)
}

# track()'s default subtask name: what a person would call the loop.
.tk_track_name <- function(f, x) {
  if (is.character(f) && length(f) == 1L) return(f)
  if (is.symbol(f)) return(as.character(f))
  if (is.call(f) && identical(f[[1L]], as.name("::")) && is.symbol(f[[3L]])) return(as.character(f[[3L]]))
  if (is.symbol(x)) return(as.character(x))
  "items"
}
