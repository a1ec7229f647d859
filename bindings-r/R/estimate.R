#' Format a duration
#'
#' @param seconds A number of seconds.
#' @return `"Ss"`, `"Mm"`, `"Hh Mm"`, `"Nd Hh"` (parts floored; `"0s"` for
#'   `NULL`, `NA` or values <= 0). Vectorised.
#' @examples
#' format_duration_seconds(c(5, 125, 7260, 90000))
#' @export
format_duration_seconds <- function(seconds) {
  if (is.null(seconds) || !length(seconds)) return("0s")
  vapply(as.numeric(seconds), function(s) {
    if (is.na(s) || s <= 0) return("0s")
    s <- floor(s)
    d <- s %/% 86400
    h <- (s %% 86400) %/% 3600
    m <- (s %% 3600) %/% 60
    if (d >= 1) return(if (h > 0) sprintf("%dd %dh", d, h) else sprintf("%dd", d))
    if (h >= 1) return(if (m > 0) sprintf("%dh %dm", h, m) else sprintf("%dh", h))
    if (m >= 1) return(sprintf("%dm", m))
    sprintf("%ds", s)
  }, character(1))
}

# The core's estimates carry an 80% interval (10th to 90th percentile).
.tk_eta_level <- 0.8

# An estimate as get_completion_estimate() returns it, from the core's figures.
# `confidence` labels how wide the interval is next to the estimate.
.tk_estimate <- function(eta, low, high, basis, rate = NA_real_, remaining = NA_real_,
                         complete = NA_real_, elapsed = NA_real_) {
  width <- if (eta > 0) (high - low) / eta else 0
  list(eta = eta, confidence_interval = c(low, high),
       confidence = if (width <= 0.5) "high" else if (width <= 1.5) "medium" else "low",
       rate = rate, items_remaining = remaining, items_complete = complete,
       elapsed_seconds = elapsed, confidence_level = .tk_eta_level, basis = basis)
}

#' Estimated time to completion, with an interval
#'
#' The core's estimate, the one every part of tasker shows (the dashboard, the
#' `tasker` command line, Python, [get_subtask_progress()] and
#' [get_task_status()]): for a subtask, from its item rate and the durations
#' of past subtasks of the same name; for a run without a subtask to
#' estimate, from its subtasks and the task's past runs. It is computed from
#' stored progress, so it works in any process, at once (the earlier package
#' needed a dashboard's in-memory snapshots).
#'
#' For compatibility, an environment of snapshots as kept by the earlier
#' package's monitor (`run_<id>_subtask_<n>`: lists with `timestamp` and
#' `items_complete`, `items_total`) is also accepted as first argument; the
#' core's rate model is applied to the items done between the first and the
#' last snapshot.
#'
#' @param progress_history_env `NULL`, or an environment of snapshots. A run id
#'   given here (positionally) is taken as `run_id`.
#' @param run_id The run (default: the current run).
#' @param subtask_number The subtask (default: the run's current subtask, else
#'   its latest active one; with neither, the run's own estimate).
#' @param confidence_level The interval is always the core's 80% interval
#'   (10th to 90th percentile), the one every part of tasker shows; another
#'   value is accepted, with a warning once per session, for scripts written
#'   for the earlier package (whose default was 0.95).
#' @param quiet Do not print what was used.
#' @return `NULL` when there is nothing to go on yet (no progress and no
#'   history, a lost run, or a subtask that ended without finishing), else a
#'   list: `eta` (seconds, the median), `confidence_interval` (seconds, lower
#'   and upper), `confidence` (`"high"` when the interval is at most half the
#'   estimate wide, `"medium"` up to 1.5 times, else `"low"`), `rate` (items
#'   per second), `items_remaining`, `items_complete`, `elapsed_seconds`,
#'   `confidence_level` (0.8) and `basis` (for a run's estimate: `"rate"`,
#'   `"history"` or `"blend"`; `NA` for a subtask's). A finished subtask or
#'   run gives 0.
#' @examples
#' tasker_config(path = tempfile(fileext = ".db"), quiet = TRUE)
#' run_id <- task_start("examples", "estimate", quiet = TRUE)
#' subtask_start("rows", items_total = 100, quiet = TRUE)
#' Sys.sleep(0.2)
#' subtask_update(items_complete = 40, quiet = TRUE)
#' est <- get_completion_estimate(quiet = TRUE)
#' format_completion_with_ci(est)
#' task_complete(quiet = TRUE)
#' @export
get_completion_estimate <- function(progress_history_env = NULL, run_id = NULL, subtask_number = NULL,
                                    confidence_level = 0.8, quiet = FALSE) {
  if (!is.numeric(confidence_level) || length(confidence_level) != 1L || is.na(confidence_level) ||
      confidence_level <= 0 || confidence_level >= 1) {
    .tk_arg_error(sprintf("invalid confidence_level %s: must be between 0 and 1",
                          paste(format(confidence_level), collapse = ",")))
  }
  if (confidence_level != .tk_eta_level && !isTRUE(.tasker_env$level_noted)) {
    .tasker_env$level_noted <- TRUE
    warning(sprintf(paste("get_completion_estimate(): confidence_level = %s is not used; the interval is",
                          "the core's 80%% interval, the one every part of tasker shows.",
                          "This warning is shown once per session."), format(confidence_level)),
            call. = FALSE)
  }
  if (is.environment(progress_history_env)) {
    key <- sprintf("run_%s_subtask_%s", run_id, subtask_number)
    snaps <- get0(key, envir = progress_history_env, inherits = FALSE)
    if (length(snaps) < 2L) return(NULL)
    first <- snaps[[1L]]
    last <- snaps[[length(snaps)]]
    dt <- as.numeric(difftime(last$timestamp, first$timestamp, units = "secs"))
    n <- last$items_complete - first$items_complete
    remaining <- last$items_total - last$items_complete
    if (is.na(n) || is.na(dt) || is.na(remaining) || remaining < 0 || n < 0 || dt < 0) return(NULL)
    e <- .tk(tk_rate_eta(n, n + remaining, dt))
    if (is.null(e)) return(NULL)
    return(.tk_estimate(e$eta, e$low, e$high, e$basis, rate = if (dt > 0) n / dt else NA_real_,
                        remaining = remaining, complete = last$items_complete, elapsed = dt))
  }
  if (is.character(progress_history_env) && is.null(run_id)) run_id <- progress_history_env
  info <- .tk_call(tk_resolve, .tk_text(run_id, "run_id"))
  subs <- .tk_df(tk_subtasks(info$run_id))
  if (is.null(subtask_number)) {
    # A run without subtasks has no current one (NA from the native side).
    subtask_number <- info$current
    if (is.null(subtask_number) || is.na(subtask_number)) {
      active <- subs[subs$status %in% c("STARTED", "RUNNING", "PAUSED"), , drop = FALSE]
      if (!nrow(active)) return(.tk_run_estimate(info, quiet))
      subtask_number <- max(active$subtask_number)
    }
  }
  row <- subs[subs$subtask_number == subtask_number, , drop = FALSE]
  if (!nrow(row)) {
    .tk_signal("not_found", sprintf("subtask not found: %s of run %s", format(subtask_number), info$run_id))
  }
  end <- if (is.na(row$end_time)) Sys.time() else row$end_time
  elapsed <- if (is.na(row$start_time)) NA_real_ else as.numeric(difftime(end, row$start_time, units = "secs"))
  remaining <- if (is.na(row$items_total)) NA_real_ else max(0, row$items_total - row$items_complete)
  if (row$status %in% c("COMPLETED", "SKIPPED")) {
    est <- .tk_estimate(0, 0, 0, NA_character_, row$rate_per_second, remaining, row$items_complete, elapsed)
  } else if (is.na(row$eta_seconds)) {
    return(NULL)
  } else {
    # The core reports what an estimate rests on for runs only: NA here.
    est <- .tk_estimate(row$eta_seconds, row$eta_low, row$eta_high, NA_character_,
                        row$rate_per_second, remaining, row$items_complete, elapsed)
  }
  if (!.tk_quiet(quiet)) {
    .tk_say(sprintf("estimate for [%d] %s: %s items in %.1f s, %s", subtask_number, row$subtask_name,
                    format(row$items_complete, big.mark = ","), elapsed, format_completion_with_ci(est)),
            quiet)
  }
  est
}

# The run's own estimate (from its subtasks and the task's history).
.tk_run_estimate <- function(info, quiet) {
  run <- .tk_df(tk_run(info$run_id))
  if (run$status %in% c("COMPLETED", "SKIPPED")) {
    return(.tk_estimate(0, 0, 0, NA_character_, elapsed = run$duration_seconds))
  }
  if (is.na(run$eta_seconds)) return(NULL)
  est <- .tk_estimate(run$eta_seconds, run$eta_low, run$eta_high, run$eta_basis,
                      elapsed = run$duration_seconds)
  .tk_say(sprintf("estimate for %s: %s (%s)", .tk_run_label(info), format_completion_with_ci(est),
                  run$eta_basis), quiet)
  est
}

#' Format an estimate with its confidence interval
#'
#' @param estimate From [get_completion_estimate()].
#' @param quiet Unused (accepted for compatibility).
#' @return `"Computing..."` for `NULL`, else e.g. `"2m <symbol> (80% CI: 1m - 3m)"`
#'   where the symbol shows the confidence (filled, half, empty circle) and
#'   the percentage is the level of the interval (the earlier package always
#'   wrote 95%).
#' @export
format_completion_with_ci <- function(estimate, quiet = TRUE) {
  if (is.null(estimate)) return("Computing...")
  symbol <- switch(estimate$confidence, high = "\u25cf", medium = "\u25d0", "\u25cb")
  level <- estimate$confidence_level %||% .tk_eta_level
  sprintf("%s %s (%s%% CI: %s - %s)", format_duration_seconds(estimate$eta), symbol,
          format(round(level * 100, 1)), format_duration_seconds(estimate$confidence_interval[[1L]]),
          format_duration_seconds(estimate$confidence_interval[[2L]]))
}
