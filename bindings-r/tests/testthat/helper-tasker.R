# Every test uses its own SQLite file in a temporary directory: never the user's
# default database.
local_tasker_db <- function(env = parent.frame()) {
  dir <- tempfile("tasker-test-")
  dir.create(dir)
  db <- file.path(dir, "tasker.db")
  withr::local_options(tasker.quiet = TRUE, .local_envir = env)
  tasker_config(path = db, quiet = TRUE)
  withr::defer({
    tasker_context(NULL)
    unlink(dir, recursive = TRUE)
  }, envir = env)
  db
}

# The repository root (tests run from bindings-r/tests/testthat or an R CMD check copy).
repo_root <- function() {
  root <- Sys.getenv("TASKER_REPO_ROOT")
  if (nzchar(root)) return(root)
  d <- normalizePath(getwd())
  while (!file.exists(file.path(d, "core", "Cargo.toml")) && dirname(d) != d) d <- dirname(d)
  if (file.exists(file.path(d, "core", "Cargo.toml"))) d else ""
}

rscript <- function() file.path(R.home("bin"), "Rscript")

# Runs an R script in a fresh process with this session's library paths (plus `env`,
# "NAME=value" strings).
run_r_script <- function(code, dir = tempdir(), name = "script.R", args = character(), env = character()) {
  path <- file.path(dir, name)
  writeLines(code, path)
  env <- c(sprintf("R_LIBS=%s", paste(.libPaths(), collapse = .Platform$path.sep)), env)
  out <- suppressWarnings(system2(rscript(), c(shQuote(path), args), stdout = TRUE, stderr = TRUE, env = env))
  list(output = out, status = attr(out, "status") %||% 0L)
}

# The library tasker is installed in (for subprocesses that must not see other packages).
tasker_lib <- function() dirname(system.file(package = "tasker"))

`%||%` <- function(x, y) if (is.null(x)) y else x

# An optional package a test needs. scripts/test-r.sh sets TASKER_TEST_REQUIRE_PACKAGES to
# the packages scripts/setup.sh installs: those fail the test when missing (CI promised
# them), any other missing package skips it.
need_package <- function(pkg) {
  if (requireNamespace(pkg, quietly = TRUE)) return(invisible(TRUE))
  promised <- strsplit(Sys.getenv("TASKER_TEST_REQUIRE_PACKAGES"), "[ ,]+")[[1L]]
  if (pkg %in% promised) {
    testthat::fail(sprintf("package '%s' is not installed, but the test layer requires it (run scripts/setup.sh)", pkg))
  }
  testthat::skip(sprintf("package '%s' is not installed", pkg))
}
