# The earlier package's process-metrics functions, on tasker's own sampling: the
# process that starts a run samples itself (CPU, memory, I/O, threads, descriptors and
# its child processes) on its writer thread. There is no reporter daemon to start,
# supervise or stop, and nothing here spawns a process.

#' Sample this process's resource use (the earlier package's reporter)
#'
#' The earlier package started a reporter daemon per host that sampled the
#' processes of running tasks into the database. tasker needs no daemon: the R
#' process that starts a run samples its own CPU, memory, I/O, threads, open
#' files and child processes every `sample_interval_s` seconds (10 by default,
#' [tasker_config()]) on the background thread that writes its progress, and
#' stores the samples with the run ([get_run_samples()]). Samples are taken
#' only while this process has runs it started and that are not finished.
#'
#' `start_reporter()` makes sure this process samples itself, every
#' `collection_interval` seconds from now on (also for runs already going on);
#' a new interval starts with a sample at once. `stop_reporter()` stops
#' sampling in this process; crashed scripts are still detected (runs keep
#' their heartbeat: the `lost` column of [get_task_status()]).
#' `check_reporter()` says whether this process samples itself and shows its
#' latest sample.
#'
#' Each call is about this R process only: a process started later (another
#' script, a worker of [tasker_cluster()], which takes this process's interval
#' when it is created) samples itself by its own configuration.
#'
#' @param collection_interval Seconds between samples (a whole number, at least
#'   1).
#' @param hostname This host (by name); another host is an error, since only a
#'   process itself (on its own host) samples itself.
#' @param force Set the interval again even if it is the one in use.
#' @param quiet Do not print.
#' @param conn,con Ignored (tasker keeps its own connection).
#' @param supervise,timeout,config_file Accepted for compatibility and ignored:
#'   there is no daemon to supervise, wait for, or configure. Samples go to the
#'   database this session uses.
#' @return `start_reporter()`: invisibly, a list with `status`
#'   (`"started"`, or `"already_running"` when sampling was on at that interval),
#'   `process_id` (this process), `started_at`, `collection_interval`, and
#'   `process`, `stdout_log`, `stderr_log` (`NULL`: no daemon, no logs).
#'
#'   `stop_reporter()`: invisibly, `TRUE` if sampling was on and is now off,
#'   `FALSE` if it was off.
#'
#'   `check_reporter()`: `NULL` when this process does not sample itself (off,
#'   or a platform without Linux's /proc); otherwise a one-row data frame with
#'   the earlier package's columns `hostname`, `process_id`, `started_at`,
#'   `last_heartbeat` (the time of the latest sample, `NA` before the first),
#'   `version` (tasker's), `shutdown_requested` (`FALSE`),
#'   `heartbeat_age_seconds`, `is_alive` (`TRUE`) and `status` (`"RUNNING"`),
#'   then `collection_interval`, `run_id` (this session's current run) and the
#'   latest sample's values, named as in [get_run_samples()] (`cpu_percent`,
#'   `rss_bytes`, `children`, ...; `NA` before the first sample).
#' @examples
#' tasker_config(path = tempfile(fileext = ".db"), quiet = TRUE)
#' start_reporter(collection_interval = 5, quiet = TRUE)
#' run_id <- task_start("examples", "sampled", quiet = TRUE)
#' Sys.sleep(0.5)
#' state <- check_reporter(quiet = TRUE) # NULL where sampling is not available
#' if (!is.null(state)) state[, c("status", "last_heartbeat", "rss_bytes")]
#' task_complete(quiet = TRUE)
#' stop_reporter(quiet = TRUE)
#' @export
start_reporter <- function(collection_interval = 10, hostname = Sys.info()[["nodename"]], force = FALSE,
                           quiet = FALSE, conn = NULL, supervise = FALSE, timeout = 30, config_file = NULL) {
  if (!is.numeric(collection_interval) || length(collection_interval) != 1L || is.na(collection_interval) ||
      collection_interval < 1 || collection_interval != floor(collection_interval) ||
      !is.finite(collection_interval)) {
    .tk_arg_error(sprintf("invalid collection_interval %s: must be a whole number of seconds, at least 1",
                          paste(format(collection_interval), collapse = ",")))
  }
  .tk_local_host(hostname, "start_reporter")
  .tk_flag(force, "force")
  .tk_conn(conn)
  .tk_ensure()
  before <- .tk(tk_sampling(NULL))
  same <- isTRUE(before$interval_s == collection_interval)
  if (same && !isTRUE(force)) {
    status <- "already_running"
  } else {
    .tk(tk_sampling(collection_interval))
    .tasker_env$sampling_since <- Sys.time()
    status <- "started"
  }
  if (!isTRUE(before$available)) {
    warning("tasker: process sampling needs Linux's /proc; no samples will be recorded on this platform",
            call. = FALSE)
  }
  .tk_say(sprintf(paste("tasker: this process samples its CPU, memory, I/O and child processes every %s s",
                        "for the runs it starts%s (get_run_samples()); no reporter daemon is needed"),
                  format(collection_interval), if (status == "already_running") " (already on)" else ""),
          quiet)
  invisible(list(status = status, process_id = Sys.getpid(),
                 started_at = .tasker_env$sampling_since %||% .POSIXct(NA_real_, tz = "UTC"),
                 collection_interval = collection_interval, process = NULL, stdout_log = NULL,
                 stderr_log = NULL))
}

#' @rdname start_reporter
#' @export
stop_reporter <- function(hostname = Sys.info()[["nodename"]], timeout = 30, con = NULL, quiet = FALSE) {
  .tk_local_host(hostname, "stop_reporter")
  .tk_conn(con)
  .tk_ensure()
  was_on <- .tk(tk_sampling(NULL))$interval_s > 0
  if (was_on) .tk(tk_sampling(0))
  .tasker_env$sampling_since <- NULL
  .tk_say(if (was_on) {
    paste("tasker: this process no longer samples its resource use; its runs keep their heartbeat,",
          "so a crash is still detected")
  } else {
    "tasker: this process was not sampling its resource use"
  }, quiet)
  invisible(was_on)
}

#' @rdname start_reporter
#' @export
check_reporter <- function(con = NULL, quiet = FALSE) {
  .tk_conn(con)
  .tk_ensure()
  info <- .tk(tk_sampling(NULL))
  if (!isTRUE(info$available) || info$interval_s <= 0) {
    .tk_say(if (isTRUE(info$available)) {
      "tasker: this process does not sample its resource use (start_reporter() turns it on)"
    } else {
      "tasker: process sampling needs Linux's /proc; none on this platform"
    }, quiet)
    return(NULL)
  }
  last <- if (is.null(info$last)) NULL else .tk_df(info$last)
  na_time <- .POSIXct(NA_real_, tz = "UTC")
  at <- if (is.null(last)) na_time else last$time
  run_id <- .tk(tk_context(FALSE, NULL))
  row <- data.frame(
    hostname = info$hostname, process_id = Sys.getpid(),
    started_at = .tasker_env$sampling_since %||% na_time, last_heartbeat = at,
    version = as.character(utils::packageVersion("tasker")), shutdown_requested = FALSE,
    heartbeat_age_seconds = as.numeric(difftime(Sys.time(), at, units = "secs")),
    is_alive = TRUE, status = "RUNNING", collection_interval = info$interval_s,
    run_id = run_id %||% NA_character_, stringsAsFactors = FALSE)
  values <- .tk_sample_values(last)
  row <- cbind(row, values[setdiff(names(values), c("time", "pid"))])
  if (!.tk_quiet(quiet)) {
    .tk_say(sprintf("tasker: this process (pid %d on %s) samples itself every %s s; %s", Sys.getpid(),
                    info$hostname, format(info$interval_s),
                    if (is.null(last)) {
                      "no sample yet (samples are taken while it has a run it started)"
                    } else {
                      sprintf("latest sample %.0f s ago: CPU %s, memory %.0f MB, %d child process(es)",
                              row$heartbeat_age_seconds,
                              if (is.na(row$cpu_percent)) "?" else sprintf("%.0f%%", row$cpu_percent),
                              row$rss_bytes / 2^20, row$children)
                    }), quiet)
  }
  row
}

#' Sample a process now
#'
#' Takes one sample of a process on this host and everything it started: CPU,
#' memory, I/O, threads, open files and child processes, as the earlier
#' package's reporter collected them. Nothing is written to the database (runs
#' are sampled by the process that started them: [start_reporter()],
#' [get_run_samples()]), and no database is needed.
#'
#' `cpu_percent` is the CPU used since the previous call for the same process
#' (100 = one core busy), so it is `NA` on the first call for a process, as in
#' the earlier package. A process that has exited, or whose process id now
#' belongs to another process, gives a row with `is_alive = FALSE`,
#' `collection_error = TRUE` and `error_type` `"PROCESS_DIED"`,
#' `"ZOMBIE_PROCESS"`, `"PID_REUSED"` or `"PS_ERROR"` (`"UNAVAILABLE"` without
#' Linux's /proc), not an error.
#'
#' @param run_id The run the sample is about, for the `run_id` column (default:
#'   the session's current run, or `NA`).
#' @param process_id The process (default: this R process).
#' @param hostname This host; another host is an error (a process on another
#'   host cannot be read from here).
#' @param include_children Include the process's descendants (`FALSE`: those
#'   columns are `NA`).
#' @param timeout_seconds Accepted for compatibility (a sample takes about a
#'   millisecond and is not interrupted); must be a positive number.
#' @param prev_start_time Accepted for compatibility and ignored: a reused
#'   process id is noticed without it (tasker keeps one sampler per process id
#'   sampled).
#' @param scale_cpu_by_cores Divide `cpu_percent` by the number of cores (100 =
#'   all cores busy).
#' @return A one-row data frame: `run_id`, `hostname`, then the columns of
#'   [get_run_samples()] (`time`, `pid`, `cpu_seconds`, `cpu_percent`,
#'   `rss_bytes`, `peak_rss_bytes`, `read_bytes`, `write_bytes`, `threads`,
#'   `open_fds`, `children`, `children_cpu_seconds`, `children_rss_bytes`), then
#'   the earlier package's names for the same facts: `process_id`, `timestamp`,
#'   `is_alive`, `cpu_cores`, `memory_mb`, `child_count`,
#'   `child_total_memory_mb`, `collection_error`, `error_message`, `error_type`,
#'   `collection_duration_ms`.
#' @examples
#' m <- collect_process_metrics()
#' m[, c("memory_mb", "threads", "child_count")]
#' collect_process_metrics()$cpu_percent # since the previous call
#' @export
collect_process_metrics <- function(run_id = NULL, process_id = Sys.getpid(), hostname = Sys.info()[["nodename"]],
                                    include_children = TRUE, timeout_seconds = 5, prev_start_time = NULL,
                                    scale_cpu_by_cores = FALSE) {
  run_id <- .tk_text(run_id, "run_id")
  if (!is.numeric(process_id) || length(process_id) != 1L || is.na(process_id) || process_id < 1 ||
      process_id != floor(process_id) || process_id > .Machine$integer.max) {
    .tk_arg_error(sprintf("invalid process_id %s: must be a process id (a whole number, at least 1)",
                          paste(format(process_id), collapse = ",")))
  }
  .tk_local_host(hostname, "collect_process_metrics")
  .tk_flag(include_children, "include_children")
  .tk_flag(scale_cpu_by_cores, "scale_cpu_by_cores")
  if (!is.numeric(timeout_seconds) || length(timeout_seconds) != 1L || is.na(timeout_seconds) ||
      timeout_seconds <= 0) {
    .tk_arg_error(sprintf("invalid timeout_seconds %s: must be a positive number of seconds",
                          paste(format(timeout_seconds), collapse = ",")))
  }
  if (is.null(run_id)) run_id <- .tk(tk_context(FALSE, NULL))
  got <- .tk(tk_collect_sample(process_id))
  sample <- if (is.null(got$sample)) NULL else .tk_df(got$sample)
  values <- .tk_sample_values(sample)
  values$pid <- as.integer(process_id)
  if (is.na(values$time)) values$time <- .POSIXct(as.numeric(Sys.time()), tz = "UTC")
  cores <- parallel::detectCores()
  if (isTRUE(scale_cpu_by_cores) && !is.na(cores) && cores > 0) values$cpu_percent <- values$cpu_percent / cores
  if (!isTRUE(include_children)) values[c("children", "children_cpu_seconds", "children_rss_bytes")] <- NA
  row <- data.frame(run_id = run_id %||% NA_character_, hostname = hostname, stringsAsFactors = FALSE)
  row <- cbind(row, values)
  row$process_id <- as.integer(process_id)
  row$timestamp <- values$time
  row$is_alive <- !is.null(sample)
  row$cpu_cores <- as.integer(cores)
  row$memory_mb <- values$rss_bytes / 2^20
  row$child_count <- values$children
  row$child_total_memory_mb <- values$children_rss_bytes / 2^20
  row$collection_error <- is.null(sample)
  row$error_message <- got$error %||% NA_character_
  row$error_type <- got$error_type %||% NA_character_
  row$collection_duration_ms <- got$duration_ms
  row
}

# The values of one sample (a one-row data frame from .tk_df), or NA of each column's
# type when there is none.
.tk_sample_values <- function(sample) {
  if (!is.null(sample) && nrow(sample) == 1L) return(sample)
  na <- .POSIXct(NA_real_, tz = "UTC")
  data.frame(time = na, pid = NA_integer_, cpu_seconds = NA_real_, cpu_percent = NA_real_,
             rss_bytes = NA_real_, peak_rss_bytes = NA_real_, read_bytes = NA_real_,
             write_bytes = NA_real_, threads = NA_integer_, open_fds = NA_integer_,
             children = NA_integer_, children_cpu_seconds = NA_real_, children_rss_bytes = NA_real_)
}

# A process can only be sampled on its own host: a host name that is neither this one's
# nor the one tasker records for its runs is an error naming it.
.tk_local_host <- function(hostname, what) {
  if (is.null(hostname)) return(invisible(TRUE))
  if (!is.character(hostname) || length(hostname) != 1L || is.na(hostname)) {
    .tk_arg_error(sprintf("invalid hostname %s: must be a single string",
                          paste(format(hostname), collapse = ",")))
  }
  here <- c(Sys.info()[["nodename"]], get_tasker_config()$hostname)
  short <- function(h) sub("\\..*$", "", tolower(h))
  if (!short(hostname) %in% short(here)) {
    .tk_arg_error(sprintf(paste("invalid hostname \"%s\": %s() can only act on this host (%s); a process",
                                "samples itself on its own host, with no reporter"),
                          hostname, what, here[[1L]]))
  }
  invisible(TRUE)
}

.tk_flag <- function(x, what) {
  if (!is.logical(x) || length(x) != 1L || is.na(x)) {
    .tk_arg_error(sprintf("invalid %s %s: must be TRUE or FALSE", what, paste(format(x), collapse = ",")))
  }
  invisible(x)
}
