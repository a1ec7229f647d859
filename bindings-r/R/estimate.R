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

# ETA with a confidence interval for n items done in dt seconds, `remaining` to go.
# The count is modelled as Poisson: SE(rate) = sqrt(n) / dt.
.tk_estimate <- function(n, dt, remaining, level) {
  if (is.na(n) || is.na(dt) || is.na(remaining) || remaining < 0) return(NULL)
  if (remaining == 0) {
    return(list(eta = 0, confidence_interval = c(0, 0), confidence = "high", rate = if (dt > 0) n / dt else NA_real_,
                items_remaining = 0, items_complete = n, elapsed_seconds = dt, confidence_level = level))
  }
  if (n <= 0 || dt <= 0) return(NULL)
  rate <- n / dt
  z <- stats::qnorm(1 - (1 - level) / 2)
  se <- sqrt(n) / dt
  lo_rate <- max(rate - z * se, 1e-10)
  hi_rate <- rate + z * se
  list(eta = remaining / rate,
       confidence_interval = c(remaining / hi_rate, remaining / lo_rate),
       confidence = if (n >= 30) "high" else if (n >= 10) "medium" else "low",
       rate = rate, items_remaining = remaining, items_complete = n, elapsed_seconds = dt,
       confidence_level = level)
}

#' Estimated time to completion, with a confidence interval
#'
#' Computed from stored progress: the subtask's items done, its total and the
#' time since it started (so it works in any process, immediately, for work
#' spread over many processes; the earlier package needed a dashboard's
#' in-memory snapshots). The rate is modelled as a Poisson count, giving an
#' asymmetric interval for the remaining time.
#'
#' For compatibility, an environment of snapshots as kept by the earlier
#' package's monitor (`run_<id>_subtask_<n>`: lists with `timestamp` and
#' `items_complete`, `items_total`) is also accepted as first argument; the
#' first and last snapshots are used.
#'
#' @param progress_history_env `NULL`, or an environment of snapshots. A run id
#'   given here (positionally) is taken as `run_id`.
#' @param run_id The run (default: the current run).
#' @param subtask_number The subtask (default: the run's current subtask).
#' @param confidence_level Between 0 and 1.
#' @param quiet Do not print what was used.
#' @return `NULL` when there is not enough progress yet, else a list: `eta`
#'   (seconds), `confidence_interval` (seconds, lower and upper),
#'   `confidence` ("high" from 30 items, "medium" from 10, else "low"), `rate`
#'   (items per second), `items_remaining`, `items_complete`,
#'   `elapsed_seconds`, `confidence_level`.
#' @export
get_completion_estimate <- function(progress_history_env = NULL, run_id = NULL, subtask_number = NULL,
                                    confidence_level = 0.95, quiet = FALSE) {
  if (!is.numeric(confidence_level) || length(confidence_level) != 1L || is.na(confidence_level) ||
      confidence_level <= 0 || confidence_level >= 1) {
    .tk_arg_error(sprintf("invalid confidence_level %s: must be between 0 and 1",
                          paste(format(confidence_level), collapse = ",")))
  }
  if (is.environment(progress_history_env)) {
    key <- sprintf("run_%s_subtask_%s", run_id, subtask_number)
    snaps <- get0(key, envir = progress_history_env, inherits = FALSE)
    if (length(snaps) < 2L) return(NULL)
    first <- snaps[[1L]]
    last <- snaps[[length(snaps)]]
    dt <- as.numeric(difftime(last$timestamp, first$timestamp, units = "secs"))
    n <- last$items_complete - first$items_complete
    if (n <= 0 && last$items_total - last$items_complete > 0) return(NULL)
    return(.tk_estimate(n, dt, last$items_total - last$items_complete, confidence_level))
  }
  if (is.character(progress_history_env) && is.null(run_id)) run_id <- progress_history_env
  info <- .tk_call(tk_resolve, .tk_text(run_id, "run_id"))
  subs <- .tk_df(tk_subtasks(info$run_id))
  if (is.null(subtask_number)) {
    # A run without subtasks has no current one (NA from the native side): no estimate.
    subtask_number <- info$current
    if (is.null(subtask_number) || is.na(subtask_number)) {
      active <- subs[subs$status %in% c("STARTED", "RUNNING", "PAUSED"), , drop = FALSE]
      if (!nrow(active)) return(NULL)
      subtask_number <- max(active$subtask_number)
    }
  }
  row <- subs[subs$subtask_number == subtask_number, , drop = FALSE]
  if (!nrow(row)) {
    .tk_signal("not_found", sprintf("subtask not found: %s of run %s", format(subtask_number), info$run_id))
  }
  if (is.na(row$items_total) || is.na(row$start_time)) return(NULL)
  end <- if (is.na(row$end_time)) Sys.time() else row$end_time
  dt <- as.numeric(difftime(end, row$start_time, units = "secs"))
  est <- .tk_estimate(row$items_complete, dt, row$items_total - row$items_complete, confidence_level)
  if (!.tk_quiet(quiet) && !is.null(est)) {
    .tk_say(sprintf("estimate for [%d] %s: %s items in %.1f s", subtask_number, row$subtask_name,
                    format(row$items_complete, big.mark = ","), dt), quiet)
  }
  est
}

#' Format an estimate with its confidence interval
#'
#' @param estimate From [get_completion_estimate()].
#' @param quiet Unused (accepted for compatibility).
#' @return `"Computing..."` for `NULL`, else e.g. `"2m <symbol> (95% CI: 1m - 3m)"`
#'   where the symbol shows the confidence (filled, half, empty circle) and
#'   the percentage is the level actually used.
#' @export
format_completion_with_ci <- function(estimate, quiet = TRUE) {
  if (is.null(estimate)) return("Computing...")
  symbol <- switch(estimate$confidence, high = "\u25cf", medium = "\u25d0", "\u25cb")
  level <- estimate$confidence_level %||% 0.95
  sprintf("%s %s (%s%% CI: %s - %s)", format_duration_seconds(estimate$eta), symbol,
          format(round(level * 100, 1)), format_duration_seconds(estimate$confidence_interval[[1L]]),
          format_duration_seconds(estimate$confidence_interval[[2L]]))
}
