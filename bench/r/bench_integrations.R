# Cost of tasker's integrations with R's own progress and logging tools, each next to
# the same tool with a handler/appender that does nothing, measured in the same run.
#
# 1. progressr: N steps of a progressor inside with_progress(), with handler_tasker()
#    (each step an item of the current subtask) next to progressr's handler_void().
# 2. logging: tasker_log() per call next to logger::log_info() with an appender that
#    drops the line (only when tasker_log() exists, i.e. with run logs in the core).
#
# Each variant runs REPS times in turn; the fastest counts (the build machine is shared:
# slower rounds measure the neighbours). Prints microseconds per call and the ratio.
#
#   R CMD INSTALL -l /tmp/tasker-rel bindings-r      # release build (default profile)
#   R_LIBS=/tmp/tasker-rel Rscript bench/r/bench_integrations.R [N] [REPS]
suppressPackageStartupMessages(library(tasker))
args <- commandArgs(trailingOnly = TRUE)
N <- if (length(args)) as.integer(args[[1]]) else 20000L
REPS <- if (length(args) > 1L) as.integer(args[[2]]) else 5L
options(tasker.quiet = TRUE)
# progressr turns progressors off outside interactive sessions unless told otherwise.
options(progressr.enable = TRUE)

dir <- tempfile("tasker-bench-")
dir.create(dir)
tasker_config(path = file.path(dir, "bench.db"), quiet = TRUE)
run_id <- task_start("bench", "integrations")
subtask_start("progressr", items_total = N * REPS)

fastest <- function(fns) {
  best <- rep(Inf, length(fns))
  for (r in seq_len(REPS)) {
    for (k in seq_along(fns)) {
      t <- proc.time()[["elapsed"]]
      fns[[k]]()
      best[k] <- min(best[k], proc.time()[["elapsed"]] - t)
    }
  }
  setNames(best / N * 1e6, names(fns))
}

report <- function(title, us) {
  cat(sprintf("%s (N = %d, fastest of %d)\n", title, N, REPS))
  for (k in seq_along(us)) {
    cat(sprintf("  %-32s %8.2f us/call  %5.2fx\n", names(us)[k], us[k], us[k] / us[1]))
  }
}

steps <- function(handler) {
  force(handler)
  function() {
    progressr::with_progress({
      p <- progressr::progressor(steps = N)
      for (i in seq_len(N)) p()
    }, handlers = handler)
  }
}
us <- fastest(list(`progressr + handler_void()` = steps(progressr::handler_void()),
                   `progressr + handler_tasker()` = steps(handler_tasker())))
report("progressr step", us)
tasker_flush()
counted <- get_subtask_progress(run_id)$items_complete
cat(sprintf("  subtask items: %.0f (expected %d)\n", counted, N * REPS))

if (exists("tasker_log", asNamespace("tasker")) && requireNamespace("logger", quietly = TRUE)) {
  logger::log_threshold(logger::INFO, namespace = "bench")
  logger::log_appender(function(lines) invisible(NULL), namespace = "bench")
  lg <- function() for (i in seq_len(N)) logger::log_info("item {i} done", namespace = "bench")
  tk <- function() for (i in seq_len(N)) tasker_log(sprintf("item %d done", i))
  lgt <- function() for (i in seq_len(N)) logger::log_info("item {i} done", namespace = "bench_tasker")
  fns <- list(`logger, null appender` = lg, `tasker_log()` = tk)
  if (exists("appender_tasker", asNamespace("tasker"))) {
    logger::log_threshold(logger::INFO, namespace = "bench_tasker")
    logger::log_appender(appender_tasker(), namespace = "bench_tasker")
    fns[["logger, appender_tasker()"]] <- lgt
  }
  report("log line", fastest(fns))
} else {
  cat("log line: skipped (tasker_log() or logger missing)\n")
}
task_complete(quiet = TRUE)
unlink(dir, recursive = TRUE)
