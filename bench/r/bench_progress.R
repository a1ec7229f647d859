# Per-call cost of tasker's calls from R, next to baselines measured in the same run.
#
# 1. Progress calls (subtask_increment, subtask_update): next to an empty R closure
#    call, an empty closure with the same formals and a .Call of a native routine that
#    does nothing. A loop of N calls each, REPS times in turn; the fastest of the REPS
#    loops counts (the build machine is shared: slower loops measure the neighbours).
#    The cost of an empty loop iteration is subtracted. Prints ns per call and ratios.
# 2. Transitions (task_start, subtask_start, subtask_complete, task_complete): each
#    timed call by call from R, next to the same four transitions made directly on the
#    core from Rust inside this process (tk_bench_transitions), on the same database,
#    in alternating rounds. Prints medians in microseconds and the R / Rust ratio.
#
#   R CMD INSTALL -l /tmp/tasker-rel bindings-r      # release build (default profile)
#   R_LIBS=/tmp/tasker-rel Rscript bench/r/bench_progress.R [N] [TRANSITION_ROUNDS] [REPS]
suppressPackageStartupMessages(library(tasker))
args <- commandArgs(trailingOnly = TRUE)
N <- if (length(args)) as.integer(args[[1]]) else 1000000L
ROUNDS <- if (length(args) > 1L) as.integer(args[[2]]) else 2000L
REPS <- if (length(args) > 2L) as.integer(args[[3]]) else 5L
options(tasker.quiet = TRUE) # progress notes (once a second) would print otherwise

dir <- tempfile("tasker-bench-")
dir.create(dir)
tasker_config(path = file.path(dir, "bench.db"), quiet = TRUE)
run_id <- task_start("bench", "progress")
n_inc <- subtask_start("increment", items_total = 2 * (REPS + 1) * N)

noop <- getNativeSymbolInfo("tk_noop", PACKAGE = "tasker")
noop4 <- getNativeSymbolInfo("tk_noop4", PACKAGE = "tasker")
empty <- function() NULL
# Empty closures with the same formals as the tasker functions: R's argument
# matching and default-value promises alone cost this much per call.
empty5 <- compiler::cmpfun(function(increment = 1, quiet = TRUE, conn = NULL, run_id = NULL,
                                    subtask_number = NULL) NULL)
# The floor of any increment made through .Call: the same formals, and a body that
# passes the four arguments subtask_increment() passes to a native routine doing nothing.
floor5 <- compiler::cmpfun(function(increment = 1, quiet = TRUE, conn = NULL, run_id = NULL,
                                    subtask_number = NULL) {
  if (is.null(.Call(noop4, run_id, subtask_number, increment, conn))) invisible(TRUE)
})
empty11 <- compiler::cmpfun(function(status = NULL, percent = NULL, items_complete = NULL,
                                     message = NULL, error_message = NULL, quiet = FALSE,
                                     conn = NULL, run_id = NULL, subtask_number = NULL,
                                     items_total = NULL, reset = FALSE) NULL)

# A byte-compiled loop of N calls, run once to warm up; returns a function that times
# one more loop. `current`: the subtask progress calls without a number go to.
set_current <- get("tk_set_current", asNamespace("tasker"))
timer <- function(body, current = NULL) {
  f <- eval(substitute(function() {
    for (i in seq_len(N)) BODY
    invisible(NULL)
  }, list(BODY = substitute(body))))
  f <- compiler::cmpfun(f)
  go <- function() if (!is.null(current)) set_current(run_id, current)
  go()
  f() # warm up (and JIT)
  function() {
    go()
    t <- proc.time()[["elapsed"]]
    f()
    proc.time()[["elapsed"]] - t
  }
}
environment(timer) <- environment()

n_upd <- subtask_start("update", items_total = N)
timers <- list(
  "empty loop" = timer(NULL),
  "empty R closure: f()" = timer(empty()),
  ".Call(<native no-op>, i)" = timer(.Call(noop, i)),
  "empty closure, subtask_increment's 5 formals" = timer(empty5()),
  "same 5 formals, .Call(<no-op>, its 4 arguments)" = timer(floor5()),
  "empty closure, subtask_update's 11 formals" = timer(empty11(items_complete = i)),
  "subtask_increment()" = timer(subtask_increment(), n_inc),
  "subtask_increment(run_id = id)" = timer(subtask_increment(run_id = run_id), n_inc),
  "subtask_update(items_complete = i)" = timer(subtask_update(items_complete = i), n_upd),
  "subtask_update(items_complete = i, run_id = id)" =
    timer(subtask_update(items_complete = i, run_id = run_id), n_upd)
)
# Timed in turn, REPS times: the fastest loop of each.
secs <- matrix(NA_real_, REPS, length(timers), dimnames = list(NULL, names(timers)))
for (r in seq_len(REPS)) {
  for (nm in names(timers)) {
    gc()
    secs[r, nm] <- timers[[nm]]()
  }
}
best <- apply(secs, 2, min)
loop <- best[["empty loop"]]
res <- as.list(best[-1L])

tasker_flush()
st <- get_subtask_progress(run_id)
stopifnot(st$items_complete[st$subtask_number == n_inc] == 2 * (REPS + 1) * N) # 2 loops, REPS + warm-up
stopifnot(st$items_complete[st$subtask_number == n_upd] == N)
task_complete()

ns <- vapply(res, function(t) max(t - loop, 0) / N * 1e9, numeric(1))
base <- ns[[1]]
call <- ns[[2]]
cat(sprintf("R %s, tasker %s, N = %s calls each, fastest of %d loops; empty loop iteration %.0f ns (subtracted)\n\n",
            getRversion(), utils::packageVersion("tasker"), format(N, big.mark = ","), REPS, loop / N * 1e9))
cat(sprintf("%-48s %10s %12s %12s\n", "call", "ns/call", "x closure", "x .Call"))
for (nm in names(ns)) {
  cat(sprintf("%-48s %10.0f %12.2f %12.2f\n", nm, ns[[nm]], ns[[nm]] / base, ns[[nm]] / call))
}
same5 <- ns[["empty closure, subtask_increment's 5 formals"]]
cat(sprintf(paste0("\nsubtask_increment() / empty closure with the same formals: %.2f (target 1.5);",
                   " the .Call floor above: %.2f\n"),
            ns[["subtask_increment()"]] / same5, ns[["same 5 formals, .Call(<no-op>, its 4 arguments)"]] / same5))
info <- get_task_status(stage = "bench")
cat(sprintf("\nstored: %s items over %d subtasks; run %s\n",
            format(sum(st$items_complete), big.mark = ","), nrow(st), info$status))

# --- Transitions: R next to Rust, in alternating blocks of rounds. ---
rust_transitions <- getNativeSymbolInfo("wrap__tk_bench_transitions", PACKAGE = "tasker")
now_us <- function() as.numeric(Sys.time()) * 1e6
r_round <- function() {
  t0 <- now_us()
  task_start("bench", "r transitions")
  t1 <- now_us()
  subtask_start("r")
  t2 <- now_us()
  subtask_complete()
  t3 <- now_us()
  task_complete()
  t4 <- now_us()
  c(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
}
clock <- median(vapply(1:1000, function(i) { a <- now_us(); now_us() - a }, numeric(1)))
ops <- c("task_start", "subtask_start", "subtask_complete", "task_complete")
r_us <- matrix(numeric(0), ncol = 4L)
rust_us <- list()
block <- 100L
for (b in seq_len(max(1L, ROUNDS %/% block))) {
  r_us <- rbind(r_us, t(vapply(seq_len(block), function(i) r_round(), numeric(4))))
  rb <- .Call(rust_transitions, block, "bench", "rust transitions")
  rust_us <- Map(c, if (length(rust_us)) rust_us else lapply(rb, function(x) numeric(0)), rb)
}
cat(sprintf("\nTransitions (SQLite, %d rounds each, alternating blocks of %d; clock read %.1f us subtracted from R)\n\n",
            nrow(r_us), block, clock))
cat(sprintf("%-18s %14s %14s %10s %14s\n", "transition", "R median us", "Rust median us", "R / Rust",
            "R p90 us"))
for (k in seq_along(ops)) {
  r_med <- median(r_us[, k]) - clock
  rs_med <- median(rust_us[[ops[[k]]]])
  cat(sprintf("%-18s %14.1f %14.1f %10.2f %14.1f\n", ops[[k]], r_med, rs_med, r_med / rs_med,
              stats::quantile(r_us[, k], 0.9) - clock))
}
unlink(dir, recursive = TRUE)
