# The earlier package's process-metrics functions on tasker's own sampling: no daemon,
# the process samples itself.

on_linux <- function() file.exists("/proc/self/stat")

# Waits (up to `within` seconds) until check_reporter() shows a sample.
wait_for_sample <- function(within = 5) {
  deadline <- Sys.time() + within
  repeat {
    row <- check_reporter(quiet = TRUE)
    if (!is.null(row) && !is.na(row$last_heartbeat)) return(row)
    if (Sys.time() > deadline) return(row)
    Sys.sleep(0.1)
  }
}

test_that("start_reporter() turns sampling on in this process, check_reporter() shows it, stop_reporter() off", {
  skip_if_not(on_linux(), "process sampling needs /proc (Linux)")
  db <- local_tasker_db()
  tasker_config(path = db, sample_interval_s = 0, quiet = TRUE)
  expect_null(check_reporter(quiet = TRUE))
  withr::local_options(tasker.quiet = NULL)
  expect_message(check_reporter(), "does not sample .*start_reporter\\(\\) turns it on")
  # A run that is already going is sampled from the moment sampling is turned on.
  run_id <- task_start("reporter", "sampled", quiet = TRUE)
  expect_message(res <- start_reporter(collection_interval = 1), "no reporter daemon is needed")
  expect_equal(res$status, "started")
  expect_equal(res$process_id, Sys.getpid())
  expect_equal(res$collection_interval, 1)
  expect_s3_class(res$started_at, "POSIXct")
  expect_null(res$process)
  expect_false(withVisible(start_reporter(collection_interval = 1, quiet = TRUE))$visible)
  expect_equal(start_reporter(collection_interval = 1, quiet = TRUE)$status, "already_running")
  expect_equal(start_reporter(collection_interval = 1, force = TRUE, quiet = TRUE)$status, "started")

  row <- wait_for_sample()
  expect_s3_class(row, "data.frame")
  expect_equal(nrow(row), 1L)
  expect_equal(names(row)[1:9], c("hostname", "process_id", "started_at", "last_heartbeat", "version",
                                  "shutdown_requested", "heartbeat_age_seconds", "is_alive", "status"))
  expect_equal(row$status, "RUNNING")
  expect_equal(row$process_id, Sys.getpid())
  expect_true(row$is_alive)
  expect_false(row$shutdown_requested)
  expect_equal(row$collection_interval, 1)
  expect_equal(row$run_id, run_id)
  expect_false(is.na(row$last_heartbeat))
  expect_s3_class(row$last_heartbeat, "POSIXct")
  expect_lt(row$heartbeat_age_seconds, 30)
  expect_gt(row$rss_bytes, 0)
  expect_gte(row$threads, 1L)
  expect_equal(row$version, as.character(utils::packageVersion("tasker")))
  expect_message(check_reporter(), "samples itself every 1 s; latest sample")

  # Samples keep coming at the new interval, and they are the run's samples.
  Sys.sleep(2.2)
  task_complete(quiet = TRUE)
  s <- get_run_samples(run_id)
  expect_gte(nrow(s), 2L)
  expect_true(all(s$pid == Sys.getpid()))

  expect_message(expect_true(stop_reporter()), "no longer samples")
  expect_null(check_reporter(quiet = TRUE))
  expect_false(stop_reporter(quiet = TRUE))
  # Off: a new run gets no samples.
  quiet_run <- task_start("reporter", "quiet", quiet = TRUE)
  Sys.sleep(1.5)
  task_complete(quiet = TRUE)
  expect_equal(nrow(get_run_samples(quiet_run)), 0L)
})

test_that("the reporter functions refuse bad arguments and other hosts, before doing anything", {
  local_tasker_db()
  tasker_config(path = get_tasker_config()$path, sample_interval_s = 0, quiet = TRUE)
  for (bad in list(0, 1.5, -3, NA, "10", c(5, 10), Inf)) {
    expect_error(start_reporter(collection_interval = bad, quiet = TRUE), "collection_interval",
                 class = "tasker_argument")
  }
  expect_error(start_reporter(hostname = "some-other-host.example", quiet = TRUE),
               "some-other-host.example", class = "tasker_argument")
  expect_error(stop_reporter(hostname = "some-other-host.example", quiet = TRUE),
               "some-other-host.example", class = "tasker_argument")
  expect_error(start_reporter(force = NA, quiet = TRUE), "force", class = "tasker_argument")
  expect_null(check_reporter(quiet = TRUE)) # nothing was turned on
  # This host by its name, and the arguments kept for compatibility, are fine.
  res <- start_reporter(collection_interval = 30, hostname = Sys.info()[["nodename"]], supervise = TRUE,
                        timeout = 1, config_file = "ignored.yml", quiet = TRUE)
  expect_equal(res$status, "started")
  expect_true(stop_reporter(hostname = Sys.info()[["nodename"]], timeout = 1, quiet = TRUE))
})

test_that("collect_process_metrics() samples a process now, with the earlier package's names", {
  skip_if_not(on_linux(), "process sampling needs /proc (Linux)")
  # No database needed for a sample.
  m <- collect_process_metrics(run_id = "r-1")
  expect_s3_class(m, "data.frame")
  expect_equal(nrow(m), 1L)
  expect_equal(names(m), c("run_id", "hostname", "time", "pid", "cpu_seconds", "cpu_percent", "rss_bytes",
                           "peak_rss_bytes", "read_bytes", "write_bytes", "threads", "open_fds",
                           "children", "children_cpu_seconds", "children_rss_bytes", "process_id",
                           "timestamp", "is_alive", "cpu_cores", "memory_mb", "child_count",
                           "child_total_memory_mb", "collection_error", "error_message", "error_type",
                           "collection_duration_ms"))
  expect_equal(m$run_id, "r-1")
  expect_equal(m$pid, Sys.getpid())
  expect_equal(m$process_id, Sys.getpid())
  expect_true(m$is_alive)
  expect_false(m$collection_error)
  expect_true(is.na(m$error_type))
  expect_gt(m$memory_mb, 10)
  expect_equal(m$memory_mb, m$rss_bytes / 2^20)
  expect_gte(m$peak_rss_bytes, m$rss_bytes)
  expect_gte(m$threads, 1L)
  expect_gte(m$open_fds, 3L)
  expect_s3_class(m$timestamp, "POSIXct")
  expect_lt(abs(as.numeric(difftime(m$timestamp, Sys.time(), units = "secs"))), 30)
  expect_gte(m$collection_duration_ms, 0)

  # CPU since the previous call for the same process: NA the first time (above, or an
  # earlier test), a number from then on; a busy loop shows up.
  t0 <- Sys.time()
  while (difftime(Sys.time(), t0, units = "secs") < 0.3) sum(runif(1e4))
  busy <- collect_process_metrics()
  expect_false(is.na(busy$cpu_percent))
  expect_gt(busy$cpu_percent, 5)
  # Without a run id: the session's current run, NA without one.
  tasker_context(NULL)
  expect_true(is.na(collect_process_metrics()$run_id))

  # A forked child holding ~100 MB is counted with its memory; without children, NA.
  child <- parallel::mcparallel({
    x <- numeric(1.3e7) + 1
    Sys.sleep(3)
    length(x)
  })
  collected <- FALSE
  withr::defer(if (!collected) {
    tools::pskill(child$pid)
    parallel::mccollect(child)
  })
  deadline <- Sys.time() + 5
  repeat {
    m <- collect_process_metrics()
    if ((m$child_count >= 1 && m$child_total_memory_mb > 90) || Sys.time() > deadline) break
    Sys.sleep(0.1)
  }
  expect_gte(m$child_count, 1L)
  expect_gt(m$child_total_memory_mb, 90)
  expect_equal(m$children, m$child_count)
  alone <- collect_process_metrics(include_children = FALSE)
  expect_true(is.na(alone$child_count) && is.na(alone$children_rss_bytes))
  # The child itself, by its pid.
  of_child <- collect_process_metrics(process_id = child$pid)
  expect_true(of_child$is_alive)
  expect_equal(of_child$pid, child$pid)
  expect_gt(of_child$memory_mb, 90)
  expect_equal(parallel::mccollect(child)[[1]], 1.3e7)
  collected <- TRUE

  # An exited process is a row saying so, not an error: a shell that prints its pid,
  # exits and is waited for.
  gone <- as.integer(system2("sh", c("-c", shQuote("echo $$")), stdout = TRUE))
  expect_false(dir.exists(sprintf("/proc/%d", gone)))
  dead <- collect_process_metrics(process_id = gone)
  expect_false(dead$is_alive)
  expect_true(dead$collection_error)
  expect_equal(dead$error_type, "PROCESS_DIED")
  expect_match(dead$error_message, as.character(gone))
  expect_true(is.na(dead$memory_mb))
  expect_equal(dead$process_id, gone)

  # Scaled by the number of cores: at most 100 for the whole machine.
  scaled <- collect_process_metrics(scale_cpu_by_cores = TRUE)
  expect_equal(scaled$cpu_cores, parallel::detectCores())
  expect_lte(scaled$cpu_percent, 100 + 1e-6)

  local_tasker_db()
  run_id <- task_start("reporter", "labelled", quiet = TRUE)
  expect_equal(collect_process_metrics()$run_id, run_id)
  task_complete(quiet = TRUE)
})

test_that("collect_process_metrics() refuses bad arguments and other hosts", {
  for (bad in list(0, -1, 1.5, NA, "1", c(1, 2))) {
    expect_error(collect_process_metrics(process_id = bad), "process_id", class = "tasker_argument")
  }
  expect_error(collect_process_metrics(hostname = "far.away.example"), "far.away.example",
               class = "tasker_argument")
  expect_error(collect_process_metrics(timeout_seconds = 0), "timeout_seconds", class = "tasker_argument")
  expect_error(collect_process_metrics(include_children = "yes"), "include_children", class = "tasker_argument")
  expect_error(collect_process_metrics(run_id = 5), "run_id", class = "tasker_argument")
  # Accepted for compatibility.
  expect_true(collect_process_metrics(prev_start_time = Sys.time(), timeout_seconds = 1)$is_alive)
})

test_that("workers of a cluster take this process's sampling interval", {
  skip_if_not(on_linux(), "process sampling needs /proc (Linux)")
  local_tasker_db()
  tasker_config(path = get_tasker_config()$path, sample_interval_s = 0, quiet = TRUE)
  start_reporter(collection_interval = 7, quiet = TRUE)
  cl <- tasker_cluster(ncores = 1)
  withr::defer(stop_tasker_cluster(cl, quiet = TRUE))
  got <- parallel::clusterEvalQ(cl, tasker::check_reporter(quiet = TRUE)$collection_interval)[[1]]
  expect_equal(got, 7)
})
