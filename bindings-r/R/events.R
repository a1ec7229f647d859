#' Call a function when a run (or subtask) changes status
#'
#' Registers `fun`, called as `fun(event)` with every event the writes of this
#' R session store, once each and in the order stored (the same event as
#' `get_run_events()` returns): `event` is a list with `event_id`, `time` (POSIXct,
#' UTC), `run_id`, `stage_name`, `task_name`, `subtask_number` (`NA` for the run
#' itself), `kind` (`"run"`, `"subtask"` or `"reset"`), `old_status`,
#' `new_status` and `message`. That includes the implicit STARTED -> RUNNING
#' stored with the first progress of a run or subtask, and the subtasks a
#' finishing run closes; while the database is away, events come once the
#' queued writes are stored. Callbacks always run on R's main thread: the core
#' only queues the event (whatever thread stored it), and tasker runs the
#' callbacks at the end of the call that made it, or at the next tasker call.
#' An error in a callback becomes a warning; tracking goes on.
#'
#' @param fun A function of one argument.
#' @param subtasks Also call `fun` for subtask changes (by default only runs'
#'   changes, as `on_status_change` in the Python package).
#' @return A function of no arguments that removes the callback, invisibly.
#' @examples
#' \dontrun{
#' stop_watching <- on_status_change(function(e) {
#'   if (e$new_status == "FAILED") message("run ", e$run_id, " failed: ", e$message)
#' })
#' stop_watching()
#' }
#' @export
on_status_change <- function(fun, subtasks = FALSE) {
  if (!is.function(fun)) .tk_arg_error("invalid fun: on_status_change() needs a function")
  if (!is.logical(subtasks) || length(subtasks) != 1L || is.na(subtasks)) {
    .tk_arg_error("invalid subtasks: must be TRUE or FALSE")
  }
  id <- .tasker_env$next_callback
  .tasker_env$next_callback <- id + 1L
  .tasker_env$callbacks[[as.character(id)]] <- list(fun = fun, subtasks = subtasks)
  if (!.tasker_env$listening) {
    tk_listen(TRUE)
    .tasker_env$listening <- TRUE
  }
  invisible(function() {
    .tasker_env$callbacks[[as.character(id)]] <- NULL
    if (!length(.tasker_env$callbacks) && .tasker_env$listening) {
      tk_listen(FALSE)
      .tasker_env$listening <- FALSE
    }
    invisible(TRUE)
  })
}

# Runs the callbacks for the events queued since the last call. Called (only while
# callbacks exist) at the end of transitions and at the start of other tasker calls.
# A callback that itself makes a transition queues more events: they are run by the
# same loop, never by a nested one.
.tk_drain <- function() {
  if (isTRUE(.tasker_env$draining)) return(invisible(NULL))
  .tasker_env$draining <- TRUE
  on.exit(.tasker_env$draining <- FALSE)
  repeat {
    ev <- tk_take_events()
    dropped <- attr(ev, "dropped")
    if (isTRUE(dropped > 0)) {
      warning(sprintf("tasker: %d status-change event(s) were dropped (none was handled for a long time)",
                      as.integer(dropped)), call. = FALSE)
    }
    n <- length(ev$run_id)
    if (!n) break
    for (i in seq_len(n)) {
      event <- list(event_id = ev$event_id[[i]], time = .POSIXct(ev$time[[i]], tz = "UTC"),
                    run_id = ev$run_id[[i]], stage_name = ev$stage_name[[i]], task_name = ev$task_name[[i]],
                    subtask_number = ev$subtask_number[[i]], kind = ev$kind[[i]],
                    old_status = ev$old_status[[i]], new_status = ev$new_status[[i]],
                    message = ev$message[[i]])
      for (cb in .tasker_env$callbacks) {
        if (!is.na(event$subtask_number) && !cb$subtasks) next
        tryCatch(cb$fun(event), error = function(e) {
          warning("tasker: a status-change callback failed: ", conditionMessage(e), call. = FALSE)
        })
      }
    }
  }
  invisible(NULL)
}
