#' A progressr handler that reports into tasker
#'
#' Code that already reports progress with the progressr package
#' (`progressr::with_progress()`, `progressr::progressor()`) then also reports
#' into tasker, without changing its loops:
#'
#' ```r
#' options(progressr.enable = TRUE)          # scripts: progressr is off by default
#' progressr::handlers(handler_tasker())     # or add it next to a visual handler
#' with_subtask("fit models", {
#'   progressr::with_progress({
#'     p <- progressr::progressor(along = counties)
#'     furrr::future_map(counties, function(x) { fit(x); p() })
#'   })
#' })
#' ```
#'
#' Each step the progressor signals becomes one item of the subtask (a step of
#' `p(amount = 5)` becomes 5 items). progressr relays the progress conditions
#' of `future` workers (`plan(multisession)`, `plan(multicore)`, `future.apply`,
#' `furrr`) to the main R session, and this handler runs there, so the totals
#' of all workers add up exactly and the workers need no tasker set-up at all.
#'
#' Which subtask: `subtask_number` if given, else the run's current subtask
#' (the one [with_subtask()] or [subtask_start()] made current). When the run
#' has no current subtask, the handler starts one named `name` (else the
#' progressor's first message, else `"progress"`) with as many items as the
#' progressor has steps, and completes it when the progressor finishes. When
#' there is no current run, the handler warns once per progressor and records
#' nothing.
#'
#' In scripts (`Rscript`, batch jobs) progressr turns progress off unless told
#' otherwise: `progressor()` returns a progressor that signals nothing when the
#' option `progressr.enable` is `FALSE`, its default outside interactive
#' sessions. Set `options(progressr.enable = TRUE)` at the top of the script
#' (or call `with_progress(..., enable = TRUE)`). The handler itself is enabled
#' whatever that option says (`enable = TRUE`): recording progress is not a
#' display, and it never prints.
#'
#' @param name Name of the subtask the handler starts when the run has no
#'   current subtask.
#' @param subtask_number Report into this subtask of the run.
#' @param run_id The run (default: the current run).
#' @param enable Whether the handler records progress.
#' @return A progressr handler (a function of class `progression_handler`).
#' @export
handler_tasker <- function(name = NULL, subtask_number = NULL, run_id = NULL, enable = TRUE) {
  if (!requireNamespace("progressr", quietly = TRUE)) {
    .tk_signal("invalid_argument",
               "handler_tasker() needs the progressr package: install.packages(\"progressr\")")
  }
  if (!is.null(name)) name <- .tk_name(name, "name")
  run_id <- .tk_text(run_id, "run_id")
  if (!is.null(subtask_number) &&
      !(is.numeric(subtask_number) && length(subtask_number) == 1L && !is.na(subtask_number) &&
        subtask_number >= 1 && subtask_number == round(subtask_number))) {
    .tk_arg_error(sprintf("invalid subtask_number: %s (a whole number, at least 1)",
                          paste(format(subtask_number), collapse = ", ")))
  }
  # The calling handler is written here rather than built from a `reporter` list: the
  # generic one progressr builds keeps every progression's id in a vector and its time in
  # another, which made 10,000 steps cost 5 times what handler_void() costs; this one
  # keeps what the count needs (see bench/r/bench_integrations.R).
  pid <- Sys.getpid()
  owner <- NULL     # the progressor this handler follows (nested ones are ignored)
  active <- FALSE
  finished <- FALSE
  max_steps <- 0
  step <- 0         # the progressor's position, kept within [0, steps] as progressr does
  auto_finish <- TRUE
  done <- new.env(hash = TRUE, parent = emptyenv())
  target <- NULL    # list(run_id, number, started) while active and recording
  reported <- 0     # how much of `step` is already in the subtask

  report <- function() {
    # Only growth becomes items: a step back cannot be taken out of a count that other
    # processes may share.
    if (!is.null(target) && step > reported) {
      subtask_increment(step - reported, run_id = target$run_id, subtask_number = target$number)
      reported <<- step
    }
  }
  initiate <- function(p) {
    max_steps <<- p[["steps"]]
    auto_finish <<- !isFALSE(p[["auto_finish"]])
    step <<- 0
    reported <<- 0
    active <<- TRUE
    finished <<- FALSE
    target <<- NULL
    info <- tryCatch({
      .tk_ensure()
      .tk(tk_resolve(run_id))
    }, tasker_error = function(e) e)
    if (inherits(info, "error")) {
      warning("handler_tasker(): progress is not recorded: ", conditionMessage(info), call. = FALSE)
      return()
    }
    number <- subtask_number
    # The run's current subtask (NA when it has none).
    if (is.null(number) && length(info$current) == 1L && !is.na(info$current)) number <- info$current
    started <- FALSE
    if (is.null(number)) {
      msg <- p[["message"]]
      label <- name %||% (if (length(msg) && nzchar(msg[[1L]])) msg[[1L]] else "progress")
      number <- subtask_start(label, items_total = max_steps, run_id = info$run_id, quiet = TRUE)
      started <- TRUE
    }
    target <<- list(run_id = info$run_id, number = number, started = started)
  }
  finish <- function() {
    if (active) {
      report()
      if (!is.null(target) && target$started) {
        subtask_complete(run_id = target$run_id, subtask_number = target$number, quiet = TRUE)
      }
    }
    # As progressr's own handlers: the next progressor of the same with_progress() is
    # followed from its start.
    active <<- FALSE
    finished <<- TRUE
    owner <<- NULL
    target <<- NULL
    done <<- new.env(hash = TRUE, parent = emptyenv())
  }
  handler <- function(p) {
    # In a forked worker (plan(multicore)) the condition also passes the handlers the
    # child inherited; progressr relays it to the main session, which counts it.
    if (Sys.getpid() != pid) return(invisible(FALSE))
    if (inherits(p, "control_progression")) {
      type <- p[["type"]]
      if (identical(type, "reset")) {
        active <<- FALSE
        finished <<- FALSE
        owner <<- NULL
        target <<- NULL
        done <<- new.env(hash = TRUE, parent = emptyenv())
      } else if (identical(type, "shutdown")) {
        finish()
      }
      return(invisible(finished))
    }
    uuid <- p[["progressor_uuid"]]
    if (is.null(owner)) owner <<- uuid
    if (!identical(owner, uuid)) return(invisible(finished))
    # A condition relayed twice (by a future and again with its value) counts once.
    id <- paste(p[["session_uuid"]], p[["progression_index"]], p[["progression_time"]])
    if (!is.null(done[[id]])) return(invisible(finished))
    done[[id]] <- TRUE
    type <- p[["type"]]
    if (identical(type, "update")) {
      if (!active || finished) return(invisible(finished))
      amount <- if (is.null(p[["step"]])) p[["amount"]] else p[["step"]] - step
      step <<- min(max(step + amount, 0), max_steps)
      report()
      if (auto_finish && amount > 0 && step >= max_steps) finish()
    } else if (identical(type, "initiate")) {
      if (!active) initiate(p)
    } else if (identical(type, "finish")) {
      finish()
    }
    invisible(finished)
  }
  progressr::make_progression_handler("tasker", handler = handler, enable = enable, target = "void")
}
