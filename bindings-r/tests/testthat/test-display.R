# track(display = TRUE): a progress bar named after the subtask, next to the tracking.

test_that("track(display = TRUE) draws cli's bar with the subtask's name and still counts", {
  need_package("cli")
  db <- local_tasker_db()
  # cli shows bars in interactive sessions after 2 s; these options make it draw at once
  # in a script, so the output can be checked.
  res <- run_r_script(c(
    "library(tasker)",
    "options(cli.progress_show_after = 0, cli.dynamic = FALSE, cli.progress_clear = FALSE)",
    sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
    "run <- task_start('display', 'cli', quiet = TRUE)",
    "out <- track(1:20, function(i) { Sys.sleep(0.01); i * 2 }, name = 'squares <&> of things', display = TRUE, quiet = TRUE)",
    "stopifnot(identical(unlist(out), (1:20) * 2))",
    "task_complete(quiet = TRUE)",
    "cat('run:', run, '\\n')"
  ))
  expect_equal(res$status, 0L, info = paste(res$output, collapse = "\n"))
  expect_true(any(grepl("squares <&> of things", res$output, fixed = TRUE)),
              info = paste(res$output, collapse = "\n"))
  expect_true(any(grepl("100%", res$output, fixed = TRUE)), info = paste(res$output, collapse = "\n"))
  run <- sub("^run: ([^ ]+).*$", "\\1", grep("^run:", res$output, value = TRUE))
  st <- get_subtask_progress(run)
  expect_equal(st$subtask_name, "squares <&> of things")
  expect_equal(st$items_complete, 20)
  expect_equal(st$status, "COMPLETED")
})

test_that("track(display = TRUE) without cli and outside an interactive session shows nothing", {
  local_tasker_db()
  task_start("display", "plain")
  withr::local_options(tasker.no_cli = TRUE)
  expect_silent(out <- track(1:3, identity, name = "quiet", display = TRUE, quiet = TRUE))
  expect_equal(get_subtask_progress()$items_complete, 3)
  expect_error(track(1:3, identity, display = NA), "invalid display: NA", class = "tasker_error")
})

test_that("track(display = TRUE) stops the bar when an item fails", {
  need_package("cli")
  local_tasker_db()
  task_start("display", "error")
  expect_error(track(1:5, function(i) if (i == 3) stop("three") else i, name = "boom", display = TRUE,
                     quiet = TRUE), "three")
  st <- get_subtask_progress()
  expect_equal(st$status, "FAILED")
  expect_equal(st$items_complete, 2)
})
