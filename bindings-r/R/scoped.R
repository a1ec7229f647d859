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
#' With `retries = n`, a failed evaluation is retried up to `n` times: each
#' attempt is a run of its own, the next attempt of the one before (its
#' `attempt` number and `retry_of`, see [task_start()]), so the task's history
#' and [get_task_stats()] count them as one logical run. `expr` is evaluated
#' again from its code in the caller's environment, so it must be written
#' inside the call (an expression passed on from another function's argument
#' is evaluated only once by R). The error of the last attempt is signalled
#' again unchanged; an interrupt is never retried.
#'
#' @param stage,task Stage and task name.
#' @param expr The work.
#' @param ... Passed to [task_start()] (`total_subtasks`, `message`, `version`,
#'   `git_commit`, `metadata`, and `attempt` / `retry` for the first attempt).
#' @param quiet Do not print messages.
#' @param retries How many times to evaluate `expr` again after an error (a
#'   whole number, 0 by default).
#' @return The value of `expr`.
#' @examples
#' tasker_config(path = tempfile(fileext = ".db"), quiet = TRUE)
#' tries <- 0
#' with_task("examples", "flaky", {
#'   tries <- tries + 1
#'   if (tries < 2) stop("temporary failure")
#'   "done"
#' }, retries = 2, quiet = TRUE)
#' get_task_stats(stage = "examples", task = "flaky")[, c("runs", "logical_runs", "completed")]
#' @export
with_task <- function(stage, task, expr, ..., quiet = FALSE, retries = 0) {
  if (!is.numeric(retries) || length(retries) != 1L || is.na(retries) || retries < 0 ||
      retries != floor(retries)) {
    .tk_arg_error(sprintf("invalid retries %s: must be a whole number, zero or more",
                          paste(format(retries), collapse = ",")))
  }
  if (retries == 0) return(.tk_task_attempt(stage, task, expr, list(...), quiet, last = TRUE)$value)
  # Evaluated again from its code: the promise `expr` can be forced only once.
  code <- substitute(expr)
  env <- parent.frame()
  opts <- list(...)
  for (k in seq_len(retries + 1L)) {
    if (k > 1L) opts <- c(opts[setdiff(names(opts), c("attempt", "retry"))], list(retry = TRUE))
    last <- k == retries + 1L
    r <- .tk_task_attempt(stage, task, eval(code, env), opts, quiet, last = last)
    if (!inherits(r, "tasker_attempt_failed")) return(r$value)
    .tk_say(sprintf("%s.%s attempt %d of %d failed: %s; retrying", stage, task, k, retries + 1L,
                    conditionMessage(r$error)), quiet)
  }
}

# One run of with_task(): the value of `expr` as list(value = ), or, unless this is
# the last attempt, the error as a "tasker_attempt_failed" (the run is FAILED either
# way). The last attempt lets the error go on unchanged.
.tk_task_attempt <- function(stage, task, expr, opts, quiet, last) {
  previous <- tasker_context()
  run_id <- do.call(task_start, c(list(stage, task), opts, list(quiet = quiet)))
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
  record_failure <- function(e) {
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
  }
  if (last) {
    value <- withCallingHandlers(expr, error = record_failure)
  } else {
    failed <- NULL
    value <- tryCatch(withCallingHandlers(expr, error = record_failure),
                      error = function(e) failed <<- e)
    if (!is.null(failed)) {
      state$closed <- TRUE
      return(structure(list(error = failed), class = "tasker_attempt_failed"))
    }
  }
  state$closed <- TRUE
  if (!.tk_is_finished(run_id)) task_complete(run_id = run_id, quiet = quiet)
  list(value = value)
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
#' @param display Also show a progress bar labelled with the subtask's name:
#'   the cli package's bar when cli is installed (shown as cli decides: in
#'   interactive sessions, after two seconds; see `cli.progress_show_after`),
#'   else [utils::txtProgressBar()] in interactive sessions only.
#' @return A list like `lapply()`'s.
#' @export
track <- function(x, f, name = NULL, ..., run_id = NULL, quiet = FALSE, display = FALSE) {
  if (is.null(name)) name <- .tk_track_name(substitute(f), substitute(x))
  name <- .tk_name(name, "name")
  f <- match.fun(f)
  if (!is.logical(display) || length(display) != 1L || is.na(display)) {
    .tk_arg_error(sprintf("invalid display: %s (TRUE or FALSE)", paste(format(display), collapse = ", ")))
  }
  bar <- if (display) .tk_bar_start(name, length(x), environment()) else NULL
  with_subtask(name, {
    out <- vector("list", length(x))
    for (i in seq_along(x)) {
      out[i] <- list(f(x[[i]], ...))
      subtask_increment(run_id = run_id)
      if (!is.null(bar)) .tk_bar_tick(bar)
    }
    if (!is.null(bar)) .tk_bar_done(bar)
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

# track(display = TRUE)'s bar: cli's when installed (it decides when to show itself, and
# removes the bar when `envir`, track()'s frame, exits early), else a txtProgressBar in
# interactive sessions; NULL when there is nothing to show.
.tk_bar_start <- function(name, total, envir) {
  if (requireNamespace("cli", quietly = TRUE) && !isTRUE(getOption("tasker.no_cli"))) {
    id <- cli::cli_progress_bar(name = name, total = total, .envir = envir)
    return(list(kind = "cli", id = id, envir = envir))
  }
  if (!interactive()) return(NULL)
  message(name)
  pb <- utils::txtProgressBar(min = 0, max = max(total, 1), style = 3, file = stderr())
  state <- new.env(parent = emptyenv())
  state$done <- 0
  # An error in the loop leaves no half-drawn bar behind.
  do.call(on.exit, list(quote(close(pb)), add = TRUE), envir = envir)
  list(kind = "txt", pb = pb, state = state)
}

.tk_bar_tick <- function(bar) {
  if (identical(bar$kind, "cli")) {
    cli::cli_progress_update(id = bar$id, .envir = bar$envir)
  } else {
    bar$state$done <- bar$state$done + 1
    utils::setTxtProgressBar(bar$pb, bar$state$done)
  }
}

.tk_bar_done <- function(bar) {
  if (identical(bar$kind, "cli")) cli::cli_progress_done(id = bar$id, .envir = bar$envir)
}
