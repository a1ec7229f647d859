# handler_tasker(): progressr progress lands in the subtask exactly, also from future workers.

# progressr disables progressors outside interactive sessions (progressr.enable), as in
# the scripts tasker users run: the tests turn it on as handler_tasker()'s help says.
local_progressr <- function(env = parent.frame()) {
  need_package("progressr")
  withr::local_options(progressr.enable = TRUE, .local_envir = env)
}

items_of <- function(run_id) {
  tasker_flush()
  st <- get_subtask_progress(run_id)
  setNames(st$items_complete, st$subtask_name)
}

test_that("handler_tasker counts every step into the current subtask, amounts included", {
  local_progressr()
  local_tasker_db()
  run_id <- task_start("progressr", "sequential")
  with_subtask("steps", items_total = 1000, {
    progressr::with_progress({
      p <- progressr::progressor(steps = 1000)
      for (i in 1:400) p()
      p(amount = 100)
      for (i in 1:500) p(message = sprintf("item %d", i))
    }, handlers = handler_tasker())
  })
  st <- get_subtask_progress(run_id)
  expect_equal(st$items_complete, 1000)
  expect_equal(st$status, "COMPLETED")
})

test_that("handler_tasker starts and completes a subtask when the run has none", {
  local_progressr()
  local_tasker_db()
  run_id <- task_start("progressr", "own")
  f <- function(x) {
    p <- progressr::progressor(along = x)
    lapply(x, function(i) p())
  }
  progressr::with_progress(f(1:37), handlers = handler_tasker(name = "counted"))
  st <- get_subtask_progress(run_id)
  expect_equal(st$subtask_name, "counted")
  expect_equal(st$items_total, 37)
  expect_equal(st$items_complete, 37)
  expect_equal(st$status, "COMPLETED")
  # An explicit subtask number wins over the current subtask.
  n <- subtask_start("first", items_total = 5)
  subtask_start("second")
  progressr::with_progress(f(1:5), handlers = handler_tasker(subtask_number = n))
  expect_equal(items_of(run_id)[["first"]], 5)
  expect_equal(items_of(run_id)[["second"]], 0)
})

test_that("handler_tasker without a run warns and records nothing; bad arguments are errors", {
  local_progressr()
  local_tasker_db()
  tasker_context(NULL)
  expect_warning(
    progressr::with_progress({
      p <- progressr::progressor(steps = 3)
      for (i in 1:3) p()
    }, handlers = handler_tasker()),
    "progress is not recorded")
  expect_error(handler_tasker(subtask_number = 0), "invalid subtask_number: 0", class = "tasker_error")
  expect_error(handler_tasker(name = ""), "name", class = "tasker_error")
})

future_map_count <- function(plan_fn, workers, n = 10000) {
  old <- future::plan(plan_fn, workers = workers)
  on.exit(future::plan(old), add = TRUE)
  progressr::with_progress({
    p <- progressr::progressor(steps = n)
    furrr::future_walk(seq_len(n), function(i) p())
  }, handlers = handler_tasker())
}

test_that("furrr::future_map on 4 multisession workers: 10,000 items show exactly 10,000", {
  local_progressr()
  need_package("future")
  need_package("furrr")
  local_tasker_db()
  run_id <- task_start("progressr", "multisession")
  with_subtask("map", items_total = 10000, future_map_count(future::multisession, 4))
  expect_equal(get_subtask_progress(run_id)$items_complete, 10000)
})

test_that("furrr::future_map on multicore workers: 10,000 items show exactly 10,000", {
  skip_on_os("windows")
  local_progressr()
  need_package("future")
  need_package("furrr")
  local_tasker_db()
  run_id <- task_start("progressr", "multicore")
  pids <- new.env()
  with_subtask("map", items_total = 10000, {
    old <- future::plan(future::multicore, workers = 4)
    on.exit(future::plan(old), add = TRUE)
    progressr::with_progress({
      p <- progressr::progressor(steps = 10000)
      res <- furrr::future_map_int(seq_len(10000), function(i) { p(); Sys.getpid() })
    }, handlers = handler_tasker())
    pids$seen <- unique(res)
  })
  # Really forked workers, not a sequential fallback.
  expect_gt(length(pids$seen), 1)
  expect_false(Sys.getpid() %in% pids$seen)
  expect_equal(get_subtask_progress(run_id)$items_complete, 10000)
})

test_that("future.apply on multisession workers, steps of several items", {
  local_progressr()
  need_package("future")
  need_package("future.apply")
  local_tasker_db()
  run_id <- task_start("progressr", "future.apply")
  old <- future::plan(future::multisession, workers = 2)
  on.exit(future::plan(old), add = TRUE)
  with_subtask("chunks", items_total = 1500, {
    progressr::with_progress({
      p <- progressr::progressor(steps = 1500)
      future.apply::future_lapply(1:300, function(i) p(amount = 5))
    }, handlers = handler_tasker())
  })
  expect_equal(get_subtask_progress(run_id)$items_complete, 1500)
})

test_that("handler_tasker follows one progressor after another, and ignores nested ones", {
  local_progressr()
  local_tasker_db()
  run_id <- task_start("progressr", "several")
  # A progressor of a function called inside another one's loop (progressr finishes a
  # progressor when a new one is made in the same environment, so it needs its own).
  helper <- function() {
    inner <- progressr::progressor(steps = 3)
    for (k in 1:3) inner()
  }
  # As a package's function would be: progressr looks for a progressor to replace in
  # the enclosing environments too, and would find this test's.
  environment(helper) <- globalenv()
  with_subtask("two loops", items_total = 30, {
    progressr::with_progress({
      p <- progressr::progressor(steps = 10)
      for (i in 1:10) p()
      q <- progressr::progressor(steps = 20)
      for (i in 1:20) {
        q()
        if (i == 5) helper()
      }
    }, handlers = handler_tasker())
  })
  expect_equal(get_subtask_progress(run_id)$items_complete, 30)
})
