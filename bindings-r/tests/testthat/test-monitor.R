# run_monitor()/stop_monitor(): the dashboard server of `tasker serve`, started from the
# R session without blocking it.

read_url <- function(u, headers = NULL) {
  con <- if (is.null(headers)) url(u) else url(u, headers = headers)
  on.exit(close(con))
  paste(readLines(con, warn = FALSE), collapse = "\n")
}

test_that("run_monitor() serves the dashboard and stop_monitor() stops it, twice", {
  local_tasker_db()
  run_id <- task_start("monitor", "watched", quiet = TRUE)
  opened <- NULL
  for (round in 1:2) {
    info <- run_monitor(port = 0, launch.browser = function(u) opened <<- u)
    expect_identical(opened, info$url)
    expect_match(info$url, "^http://127\\.0\\.0\\.1:[0-9]+/$")
    expect_true(info$running)
    health <- jsonlite::fromJSON(read_url(paste0(info$url, "healthz")))
    expect_identical(health$status, "ok")
    expect_identical(health$version, as.character(utils::packageVersion("tasker")))
    status <- jsonlite::fromJSON(read_url(paste0(info$url, "api/v1/status")))
    expect_true(run_id %in% status$tasks$run_id)
    # The session is free meanwhile: tracking calls go on.
    subtask_start("step", items_total = 2, quiet = TRUE)
    subtask_increment(quiet = TRUE)
    expect_true(stop_monitor())
    expect_error(suppressWarnings(read_url(paste0(info$url, "healthz"))))
  }
  expect_false(stop_monitor())
  task_complete(quiet = TRUE)
})

test_that("a second run_monitor() replaces the first", {
  local_tasker_db()
  first <- run_monitor(port = 0, launch.browser = FALSE)
  second <- run_monitor(port = 0, launch.browser = FALSE)
  expect_error(suppressWarnings(read_url(paste0(first$url, "healthz"))))
  expect_match(read_url(paste0(second$url, "healthz")), "\"ok\"")
  expect_true(stop_monitor())
})

test_that("a non-loopback address without a token is refused as tasker serve refuses it", {
  db <- local_tasker_db()
  withr::local_envvar(TASKER_SERVE_TOKEN = NA)
  e <- expect_error(run_monitor(port = 0, host = "0.0.0.0", launch.browser = FALSE),
                    class = "tasker_argument")
  expect_match(conditionMessage(e), "refusing", fixed = TRUE)
  expect_match(conditionMessage(e), "--token", fixed = TRUE)
  # The command's own words, when the command is built here.
  cli <- file.path(repo_root(), "target", "debug", "tasker")
  if (nzchar(repo_root()) && file.exists(cli)) {
    out <- suppressWarnings(system2(cli, c("--db", db, "serve", "--bind", "0.0.0.0:0"),
                                    stdout = TRUE, stderr = TRUE))
    expect_identical(attr(out, "status"), 2L)
    expect_identical(as.character(out), paste0("tasker: ", conditionMessage(e)))
  }

  info <- run_monitor(port = 0, host = "0.0.0.0", token = "s3cret-token-0123456789", launch.browser = FALSE)
  local <- sub("^http://[^/]*:", "http://127.0.0.1:", info$url)
  refused <- tryCatch(read_url(paste0(local, "api/v1/status")),
                      warning = conditionMessage, error = conditionMessage)
  expect_match(refused, "401")
  ok <- read_url(paste0(local, "api/v1/status"), headers = c(Authorization = "Bearer s3cret-token-0123456789"))
  expect_match(ok, "\"tasks\"", fixed = TRUE)
  expect_true(stop_monitor())
  expect_error(run_monitor(port = 70000, launch.browser = FALSE), class = "tasker_error")
})
