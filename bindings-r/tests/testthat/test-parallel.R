

test_that("a 4-worker PSOCK cluster counts 10,000 increments each exactly", {
  local_tasker_db()
  run_id <- task_start("parallel", "psock")
  n <- subtask_start("items", items_total = 40000)
  cl <- tasker_cluster(4)
  on.exit(stop_tasker_cluster(cl, quiet = TRUE), add = TRUE)
  expect_true(attr(cl, "tasker_managed"))
  res <- parallel::parLapply(cl, 1:4, function(i) {
    for (k in 1:10000) subtask_increment()
    Sys.getpid()
  })
  expect_length(unique(unlist(res)), 4)
  tasker_flush(cl)
  expect_equal(get_subtask_progress(run_id)$items_complete, 40000)
  # After a new subtask_start(), exporting again moves the workers' current subtask;
  # an explicit number always works.
  n2 <- subtask_start("second", items_total = 800)
  export_tasker_context(cl)
  parallel::parLapply(cl, 1:4, function(i) for (k in 1:100) subtask_increment(run_id = run_id))
  parallel::parLapply(cl, 1:4, function(i, n) for (k in 1:100) subtask_increment(subtask_number = n), n = n2)
  stop_tasker_cluster(cl, quiet = TRUE)
  on.exit()
  st <- get_subtask_progress(run_id)
  expect_equal(st$items_complete, c(40000, 800))
})

test_that("parallel::makeCluster + export_tasker_context works too", {
  local_tasker_db()
  run_id <- task_start("parallel", "export")
  subtask_start("items")
  cl <- parallel::makeCluster(2)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  expect_equal(export_tasker_context(cl), run_id)
  parallel::clusterEvalQ(cl, {
    for (k in 1:500) subtask_increment()
    tasker_flush()
  })
  expect_equal(get_subtask_progress(run_id)$items_complete, 1000)
  expect_equal(unlist(parallel::clusterEvalQ(cl, tasker_context())), rep(run_id, 2))
})

test_that("a 4-way mclapply counts 10,000 increments each exactly", {
  skip_on_os("windows")
  local_tasker_db()
  run_id <- task_start("parallel", "fork")
  subtask_start("items", items_total = 40000)
  subtask_increment(5) # pending in the parent at fork time: written once, by the parent
  res <- parallel::mclapply(1:4, function(i) {
    for (k in 1:10000) subtask_increment()
    tasker_flush()
    Sys.getpid()
  }, mc.cores = 4)
  expect_length(unique(unlist(res)), 4)
  tasker_flush()
  expect_equal(get_subtask_progress(run_id)$items_complete, 40005)
  # track() flushes by itself in a forked child.
  parallel::mclapply(1:4, function(i) track(1:250, identity, name = paste("chunk", i)), mc.cores = 4)
  st <- get_subtask_progress(run_id)
  expect_equal(sort(st$items_complete[-1]), rep(250, 4))
  expect_true(all(st$status[-1] == "COMPLETED"))
})

test_that("tasker_cluster runs setup_expr given as quote({...}), a variable or a block", {
  local_tasker_db()
  e <- quote({
    from_variable <- 2
  })
  cl <- tasker_cluster(2, setup_expr = quote({
    from_quote <- 1
    library(stats)
  }))
  on.exit(stop_tasker_cluster(cl, quiet = TRUE), add = TRUE)
  expect_equal(unlist(parallel::clusterEvalQ(cl, from_quote)), c(1, 1))
  stop_tasker_cluster(cl, quiet = TRUE)
  cl <- tasker_cluster(1, setup_expr = e)
  expect_equal(unlist(parallel::clusterEvalQ(cl, from_variable)), 2)
  stop_tasker_cluster(cl, quiet = TRUE)
  cl <- tasker_cluster(1, setup_expr = {
    from_block <- 3
  })
  expect_equal(unlist(parallel::clusterEvalQ(cl, from_block)), 3)
  expect_false(exists("from_block", inherits = FALSE)) # sent, never run here
  stop_tasker_cluster(cl, quiet = TRUE)
  cl <- tasker_cluster(1, setup_expr = expression(a <- 4, b <- a + 1))
  expect_equal(unlist(parallel::clusterEvalQ(cl, b)), 5)
  stop_tasker_cluster(cl, quiet = TRUE)
  on.exit()
  expect_warning(cl <- tasker_cluster(1, setup_expr = quote(stop("no such setup"))), "no such setup")
  stop_tasker_cluster(cl, quiet = TRUE)
  expect_error(tasker_cluster(1, setup_expr = 42), "invalid setup_expr", class = "tasker_argument")
})
