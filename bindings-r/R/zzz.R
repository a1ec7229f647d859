# Package state and the small helpers every other file uses.

.tasker_env <- new.env(parent = emptyenv())

.onLoad <- function(libname, pkgname) {
  .tasker_env$pid <- Sys.getpid()
  .tasker_env$configured <- FALSE
  .tasker_env$conn_noted <- FALSE
  # Status-change callbacks (events.R).
  .tasker_env$listening <- FALSE
  .tasker_env$callbacks <- list()
  .tasker_env$next_callback <- 1L
  # Progress is written by a background thread every 200 ms; make the rest durable
  # when R exits normally (a forked child that leaves with _exit must call
  # tasker_flush() itself: see ?tasker_flush).
  reg.finalizer(.tasker_env, function(e) {
    if (isTRUE(e$configured)) try(tk_flush_at_exit(), silent = TRUE)
  }, onexit = TRUE)
  invisible(NULL)
}

`%||%` <- function(x, y) if (is.null(x)) y else x

# Condition classes by core error kind.
.tk_class <- function(kind) {
  switch(kind,
    invalid_argument = "tasker_argument",
    paste0("tasker_", kind)
  )
}

.tk_signal <- function(kind, msg, call = NULL) {
  cond <- structure(
    class = c(.tk_class(kind), "tasker_error", "error", "condition"),
    list(message = msg, call = call)
  )
  stop(cond)
}

.tk_arg_error <- function(msg) .tk_signal("invalid_argument", msg)

# Unwraps a native result: signals the condition a failing native call returned.
.tk <- function(x) {
  if (inherits(x, "tasker_native_error")) .tk_signal(x[[1L]], x[[2L]])
  x
}

# Runs a native routine; when it failed only because nothing is configured yet, configures
# from the usual sources (TASKER_DB_*, .tasker.yml, default) and runs it again. The native
# side checks its arguments before it needs the database, so a bad argument is reported
# without opening anything.
.tk_call <- function(f, ...) {
  r <- f(...)
  if (inherits(r, "tasker_native_error")) {
    if (identical(r[[1L]], "config") && !isTRUE(.tasker_env$configured)) {
      .tk_ensure()
      r <- f(...)
      if (!inherits(r, "tasker_native_error")) return(r)
    }
    .tk_signal(r[[1L]], r[[2L]])
  }
  r
}

# The same for a plain .Call routine (the transitions: see src/rust/src/lib.rs).
.tk_native <- function(routine, ...) {
  r <- .Call(routine, ...)
  if (inherits(r, "tasker_native_error")) {
    if (identical(r[[1L]], "config") && !isTRUE(.tasker_env$configured)) {
      .tk_ensure()
      r <- .Call(routine, ...)
      if (!inherits(r, "tasker_native_error")) return(r)
    }
    .tk_signal(r[[1L]], r[[2L]])
  }
  r
}

.tk_quiet <- function(quiet) isTRUE(quiet) || isTRUE(getOption("tasker.quiet"))

.tk_say <- function(text, quiet) {
  if (!.tk_quiet(quiet)) {
    message(sprintf("[%s] %s", format(Sys.time(), "%Y-%m-%d %H:%M:%S"), text))
  }
  invisible(NULL)
}

.tk_conn <- function(conn) {
  if (!is.null(conn) && !isTRUE(.tasker_env$conn_noted)) {
    .tasker_env$conn_noted <- TRUE
    message("tasker: the 'conn' argument is ignored; tasker keeps its own connection ",
            "(see ?tasker_config). This note is shown once per session.")
  }
  invisible(NULL)
}

# Configures from the usual sources (TASKER_DB_*, .tasker.yml, default) if needed.
.tk_ensure <- function() {
  if (!isTRUE(.tasker_env$configured)) {
    tasker_config(reload = TRUE, quiet = TRUE)
  }
  invisible(TRUE)
}

.tk_is_forked_child <- function() !identical(.tasker_env$pid, Sys.getpid())

# Column names holding times (seconds since the epoch from the native side).
.tk_time_cols <- c("start_time", "end_time", "last_update", "heartbeat_time",
                   "created_at", "updated_at", "time", "last_start", "last_success",
                   "last_failure", "modified", "recorded_at")

.tk_df <- function(cols) {
  cols <- .tk(cols)
  for (nm in intersect(names(cols), .tk_time_cols)) {
    cols[[nm]] <- .POSIXct(cols[[nm]], tz = "UTC")
  }
  n <- if (length(cols)) length(cols[[1L]]) else 0L
  structure(cols, class = "data.frame",
            row.names = if (n > 0L) c(NA_integer_, -n) else integer(0))
}

.tk_run_label <- function(r) paste0(r$stage, ".", r$task)

# After a progress routine returned something: an error to signal (configuring first
# if that is all that was missing), or a note that a progress message is due.
.tk_progress_post <- function(r, quiet, run_id, retry, value = NULL) {
  if (inherits(r, "tasker_native_error") && identical(r[[1L]], "config") &&
      !isTRUE(.tasker_env$configured)) {
    .tk_ensure()
    r <- retry()
    if (is.null(r)) return(invisible(value))
  }
  if (inherits(r, "tasker_native_error")) .tk_signal(r[[1L]], r[[2L]])
  if (is.integer(r) && !.tk_quiet(quiet)) {
    info <- .tk(tk_resolve(run_id))
    st <- .tk_df(tk_subtasks(info$run_id))
    row <- st[st$subtask_number == r, , drop = FALSE]
    if (nrow(row)) {
      done <- format(row$items_complete, big.mark = ",", scientific = FALSE)
      total <- if (is.na(row$items_total)) "?" else
        format(row$items_total, big.mark = ",", scientific = FALSE)
      pct <- if (is.na(row$percent_complete)) "" else sprintf(" (%.1f%%)", row$percent_complete)
      .tk_say(sprintf("%s [%d] %s: %s/%s%s", .tk_run_label(info), r, row$subtask_name,
                      done, total, pct), quiet)
    }
  }
  invisible(value)
}
