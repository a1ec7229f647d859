# One database, several languages: R reads what C and Python wrote, and they read
# what R wrote.

c_toolchain <- function() {
  root <- repo_root()
  lib <- file.path(Sys.getenv("CARGO_TARGET_DIR", file.path(root, "target")), "debug")
  ok <- nzchar(root) && nzchar(Sys.which("gcc")) &&
    file.exists(file.path(lib, "libtasker.so")) && file.exists(file.path(root, "include", "tasker.h"))
  list(ok = ok, root = root, lib = lib)
}

build_c <- function(tc, src, out) {
  res <- suppressWarnings(system2("gcc", c("-std=c11", paste0("-I", file.path(tc$root, "include")), shQuote(src),
                                           paste0("-L", tc$lib), "-ltasker", "-lm",
                                           paste0("-Wl,-rpath,", tc$lib), "-o", shQuote(out)),
                                  stdout = TRUE, stderr = TRUE))
  if (!is.null(attr(res, "status"))) stop("gcc failed: ", paste(res, collapse = "\n"))
  out
}

test_that("R reads a database written by the C example pipeline", {
  tc <- c_toolchain()
  example <- file.path(tc$root, "examples", "c", "pipeline.c")
  db <- local_tasker_db()
  dir <- withr::local_tempdir()
  cdb <- file.path(dir, "from-c.db")
  if (tc$ok && file.exists(example)) {
    exe <- build_c(tc, example, file.path(dir, "pipeline"))
    out <- system2(exe, paste0("sqlite://", cdb), stdout = TRUE, stderr = TRUE)
    expect_null(attr(out, "status"))
  } else {
    # Without the C toolchain, the same data written through the core from R.
    tasker_config(path = cdb, quiet = TRUE)
    register_tasks(data.frame(stage = c("prepare", "prepare", "model", "model"),
                              name = c("download", "validate", "fit", "report"),
                              stage_order = c(1, 1, 2, 2), task_order = c(1, 2, 1, 2)))
    task_start("prepare", "download", total_subtasks = 3)
    subtask_start("count items", items_total = 1e6)
    subtask_update(items_complete = 1e6)
    subtask_complete("all items counted")
    subtask_start("flaky step")
    subtask_update(status = "FAILED", error_message = "flaky step returned -1")
    subtask_start("summarise")
    subtask_complete()
    task_complete("downloaded with one handled failure")
  }
  tasker_config(path = cdb, quiet = TRUE)
  status <- get_task_status()
  expect_equal(status$task_name, c("download", "validate", "fit", "report"))
  expect_equal(status$status, c("COMPLETED", "NOT_STARTED", "NOT_STARTED", "NOT_STARTED"))
  st <- get_subtask_progress(status$run_id[[1]])
  expect_equal(st$subtask_name, c("count items", "flaky step", "summarise"))
  expect_equal(st$items_complete[[1]], 1e6)
  expect_equal(st$status, c("COMPLETED", "FAILED", "COMPLETED"))
  expect_s3_class(status$start_time, "POSIXct")
})

test_that("C reads a database written by R", {
  tc <- c_toolchain()
  src <- file.path(tc$root, "tests", "r-cross", "read_status.c")
  skip_if_not(tc$ok && file.exists(src), "no gcc or target/debug/libtasker.so (run cargo build)")
  db <- local_tasker_db()
  with_task("from_r", "writer", with_subtask("rows", items_total = 10, for (i in 1:10) subtask_increment()))
  dir <- withr::local_tempdir()
  exe <- build_c(tc, src, file.path(dir, "read_status"))
  out <- system2(exe, paste0("sqlite://", db), stdout = TRUE, stderr = TRUE)
  expect_null(attr(out, "status"))
  rows <- jsonlite::fromJSON(paste(out, collapse = "\n"))
  expect_equal(rows$task_name, "writer")
  expect_equal(rows$status, "COMPLETED")
})

python_with_tasker <- function() {
  root <- repo_root()
  candidates <- c(Sys.getenv("TASKER_PYTHON"), file.path(root, ".venv", "bin", "python"), Sys.which("python3"))
  for (py in candidates[nzchar(candidates) & file.exists(candidates)]) {
    ok <- suppressWarnings(system2(py, c("-c", shQuote("import tasker, tasker._tasker")), stdout = FALSE, stderr = FALSE))
    if (identical(ok, 0L)) return(py)
  }
  ""
}

test_that("R reads a database written by Python, and Python reads R's", {
  py <- python_with_tasker()
  skip_if(!nzchar(py), "the Python package tasker is not importable (build it with maturin develop)")
  root <- repo_root()
  db <- local_tasker_db()
  out <- system2(py, c(shQuote(file.path(root, "tests", "r-cross", "py_write.py")), shQuote(paste0("sqlite://", db))),
                 stdout = TRUE, stderr = TRUE)
  expect_null(attr(out, "status"))
  row <- get_task_status(stage = "python")
  expect_equal(row$status, "COMPLETED")
  expect_equal(row$overall_progress_message, "written by Python")
  expect_equal(get_subtask_progress(row$run_id)$items_complete, 1000)
  with_task("from_r", "writer", track(1:25, identity, name = "r items"))
  out <- system2(py, c(shQuote(file.path(root, "tests", "r-cross", "py_read.py")), shQuote(paste0("sqlite://", db))),
                 stdout = TRUE, stderr = TRUE)
  expect_null(attr(out, "status"))
  expect_true(any(grepl("^run from_r writer COMPLETED", out)))
  expect_true(any(grepl("^subtask r items 25 COMPLETED", out)))
})
