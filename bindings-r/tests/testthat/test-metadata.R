# What a run records about how it was started: script path, command line, R and
# tasker versions, and the git commit and dirty flag of the script's repository.

git_available <- function() nzchar(Sys.which("git"))

git <- function(repo, ...) {
  env <- c("GIT_AUTHOR_NAME=tasker-tests", "GIT_AUTHOR_EMAIL=tests@example.invalid",
           "GIT_COMMITTER_NAME=tasker-tests", "GIT_COMMITTER_EMAIL=tests@example.invalid",
           "GIT_CONFIG_NOSYSTEM=1")
  out <- suppressWarnings(system2("git", c("-C", shQuote(repo), ...), stdout = TRUE, stderr = TRUE, env = env))
  status <- attr(out, "status") %||% 0L
  if (status != 0L) stop("git ", paste(c(...), collapse = " "), " failed: ", paste(out, collapse = "\n"))
  out
}

# Runs repo/job.R (which starts and completes one run of meta/<task>) with Rscript or
# R CMD BATCH from the repository's directory; returns the run's row.
run_job <- function(repo, db, task, how) {
  writeLines(c("library(tasker)",
               sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
               "task <- commandArgs(trailingOnly = TRUE)[[1]]",
               "run <- task_start('meta', task, quiet = TRUE)",
               "task_complete(quiet = TRUE)"),
             file.path(repo, "job.R"))
  env <- sprintf("R_LIBS=%s", paste(.libPaths(), collapse = .Platform$path.sep))
  withr::with_dir(repo, {
    if (how == "Rscript") {
      out <- suppressWarnings(system2(rscript(), c("job.R", task), stdout = TRUE, stderr = TRUE, env = env))
    } else {
      out <- suppressWarnings(system2(file.path(R.home("bin"), "R"),
                                      c("CMD", "BATCH", "--no-save", shQuote(paste0("--args ", task)),
                                        "job.R", file.path(tempdir(), "job.Rout")),
                                      stdout = TRUE, stderr = TRUE, env = env))
      out <- c(out, readLines(file.path(tempdir(), "job.Rout")))
    }
  })
  h <- get_task_history(stage = "meta", task = task)
  expect_equal(nrow(h), 1, info = paste(out, collapse = "\n"))
  h
}

test_that("Rscript and R CMD BATCH runs record the script, commit and dirty flag", {
  skip_if_not(git_available(), "git is not installed")
  db <- local_tasker_db()
  repo <- withr::local_tempdir("repo-")
  git(repo, "init", "-q")
  writeLines("a tracked file", file.path(repo, "notes.txt"))
  run_job(repo, db, "setup", "Rscript") # writes job.R (and runs it outside any commit)
  git(repo, "add", "job.R", "notes.txt")
  git(repo, "commit", "-q", "-m", "first")
  head <- git(repo, "rev-parse", "HEAD")
  script <- normalizePath(file.path(repo, "job.R"))
  runtime <- paste("R", getRversion())

  for (how in c("Rscript", "BATCH")) {
    clean <- run_job(repo, db, paste0(how, "-clean"), how)
    expect_equal(clean$script_path, script, label = how)
    expect_equal(clean$script_filename, "job.R")
    expect_equal(clean$git_commit, head, label = how)
    expect_identical(clean$git_dirty, FALSE, label = how)
    expect_equal(clean$runtime, runtime)
    expect_match(clean$tasker_version, "^[0-9]+\\.[0-9]+\\.[0-9]+")
    expect_match(clean$command_line, "job.R", fixed = TRUE)
    expect_match(clean$command_line, paste0(how, "-clean"), fixed = TRUE)
  }
  # A local change to a tracked file: dirty. (Untracked files, like the .Rout
  # R CMD BATCH writes, do not count.)
  cat("a local change\n", file = file.path(repo, "notes.txt"), append = TRUE)
  for (how in c("Rscript", "BATCH")) {
    dirty <- run_job(repo, db, paste0(how, "-dirty"), how)
    expect_equal(dirty$script_path, script, label = how)
    expect_equal(dirty$git_commit, head, label = how)
    expect_identical(dirty$git_dirty, TRUE, label = how)
  }
  # An explicit git_commit wins over the repository's.
  withr::with_dir(repo, {
    run <- task_start("meta", "explicit", git_commit = "abc123", quiet = TRUE)
  })
  expect_equal(get_run(run)$git_commit, "abc123")
  task_complete(quiet = TRUE)
})

test_that("outside a repository nothing about git is stored and nothing fails", {
  db <- local_tasker_db()
  dir <- withr::local_tempdir("plain-")
  res <- run_r_script(c("library(tasker)",
                        sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
                        "run <- task_start('meta', 'plain', quiet = TRUE)",
                        "task_complete(quiet = TRUE)"), dir = dir, name = "plain.R")
  expect_equal(res$status, 0L, info = paste(res$output, collapse = "\n"))
  h <- get_task_history(task = "plain")
  expect_equal(h$script_path, normalizePath(file.path(dir, "plain.R")))
  expect_true(is.na(h$git_commit))
  expect_true(is.na(h$git_dirty))
  expect_identical(h$attempt, 1L)
})

test_that("a source()d script is recorded by its full path; the console records none", {
  local_tasker_db()
  dir <- withr::local_tempdir()
  f <- file.path(dir, "step.R")
  writeLines("run <- tasker::task_start('meta', 'sourced', quiet = TRUE)", f)
  env <- new.env()
  withr::with_dir(dir, source("step.R", local = env))
  expect_equal(get_run(env$run)$script_path, normalizePath(f))
  task_complete(quiet = TRUE)
  # Where no script runs (the tests run from Rscript -e or R CMD BATCH testthat.R)
  # the run records what R was given.
  running <- tasker:::.tk_script_arg(commandArgs(trailingOnly = FALSE))
  run <- task_start("meta", "console", quiet = TRUE)
  row <- get_run(run)
  if (is.null(running)) expect_true(is.na(row$script_path)) else expect_equal(basename(row$script_path), running)
  expect_equal(row$command_line, tasker:::.tk_command_line())
  task_complete(quiet = TRUE)
  expect_equal(tasker:::.tk_command_line(c("R", "--file=a b.R", "x")), "R \"--file=a b.R\" x")
  expect_equal(tasker:::.tk_full_path("job.R", dirs = dir), file.path(normalizePath(dir), "job.R"))
})
