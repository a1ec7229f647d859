# Inputs and outputs of a run: values and files (size, modification time, SHA-256).

test_that("a file's path, size, time and hash round trip; values are stored as text", {
  local_tasker_db()
  run_id <- task_start("io", "files", quiet = TRUE)
  dir <- withr::local_tempdir()
  f <- file.path(dir, "hello.txt")
  writeBin(charToRaw("hello\n"), f)
  add_input("greeting", f, hash = TRUE)
  add_input("year", 2026)
  add_input("ratio", 1 / 3)
  add_input("full", TRUE)
  add_input("day", as.Date("2026-03-01"))
  add_input("at", as.POSIXct("2026-03-01 12:30:00", tz = "UTC"))
  add_input("kind", factor("b", levels = c("a", "b")))
  add_input("missing", NA)
  add_output("counts", c(a = 1, b = 2))
  add_output("written", f) # an existing file: recorded as a file, without a hash
  io <- get_run_io(run_id)
  expect_equal(io$direction, c(rep("input", 8), rep("output", 2)))
  expect_equal(io$name, c("at", "day", "full", "greeting", "kind", "missing", "ratio", "year",
                          "counts", "written"))
  val <- setNames(io$value, paste(io$direction, io$name))
  expect_equal(unname(val[c("input year", "input full", "input day", "input at", "input kind",
                            "input missing", "output counts")]),
               c("2026", "TRUE", "2026-03-01", "2026-03-01T12:30:00Z", "b", "NA", '{"a":1,"b":2}'))
  expect_equal(as.numeric(val[["input ratio"]]), 1 / 3)
  g <- io[io$name == "greeting", ]
  expect_true(is.na(g$value))
  expect_equal(g$path, normalizePath(f))
  expect_identical(g$size_bytes, 6)
  # sha256 of "hello\n"
  expect_equal(g$sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
  expect_s3_class(g$modified, "POSIXct")
  expect_lt(abs(as.numeric(g$modified) - as.numeric(file.mtime(f))), 1)
  expect_true(is.na(io$sha256[io$name == "written"]))
  expect_identical(vapply(io, function(x) class(x)[[1L]], ""),
                   c(run_id = "character", direction = "character", name = "character",
                     value = "character", path = "character", size_bytes = "numeric",
                     modified = "POSIXct", sha256 = "character", recorded_at = "POSIXct"))
  expect_equal(attr(io$recorded_at, "tzone"), "UTC")
  task_complete(quiet = TRUE)
})

test_that("recording a name again replaces it; file = TRUE/FALSE overrides the guess", {
  local_tasker_db()
  run_id <- task_start("io", "again", quiet = TRUE)
  dir <- withr::local_tempdir()
  f <- file.path(dir, "out.csv")
  writeLines(c("x", "1", "2"), f)
  add_output("table", f)
  writeLines(c("x", "1", "2", "3"), f)
  add_output("table", f, hash = TRUE)
  add_input("path_as_text", f, file = FALSE)
  add_input("folder", dir, file = TRUE)
  add_input("a_dir_name", dir) # a directory is a file only when asked
  io <- get_run_io()
  expect_equal(sum(io$name == "table"), 1)
  expect_equal(io$size_bytes[io$name == "table"], file.size(f))
  expect_false(is.na(io$sha256[io$name == "table"]))
  expect_equal(io$value[io$name == "path_as_text"], f)
  expect_true(is.na(io$path[io$name == "path_as_text"]))
  expect_equal(io$path[io$name == "folder"], normalizePath(dir))
  expect_true(is.na(io$sha256[io$name == "folder"]))
  expect_equal(io$value[io$name == "a_dir_name"], dir)
  # Another run's records are its own; a run id can be given.
  other <- task_start("io", "other", quiet = TRUE, .active = FALSE)
  add_output("n", 1L, run_id = other)
  expect_equal(nrow(get_run_io(other)), 1)
  expect_false("n" %in% get_run_io(run_id)$name)
})

test_that("bad inputs and outputs are errors naming the bad value", {
  local_tasker_db()
  expect_error(add_input("x", 1), class = "tasker_not_found") # no current run
  run_id <- task_start("io", "bad", quiet = TRUE)
  missing_file <- file.path(tempdir(), "no-such-file.csv")
  e <- expect_error(add_input("data", missing_file, file = TRUE), class = "tasker_argument")
  expect_match(conditionMessage(e), missing_file, fixed = TRUE)
  expect_error(add_input("data", missing_file, hash = TRUE), "no-such-file.csv", class = "tasker_argument")
  expect_error(add_input("", 1), class = "tasker_argument")
  expect_error(add_input("x"), "a value or a file path is required", class = "tasker_argument")
  expect_error(add_input("x", 1, hash = NA), "invalid hash", class = "tasker_argument")
  expect_error(add_input("x", 1, file = "yes"), "invalid file", class = "tasker_argument")
  expect_error(add_input("x", c("a", "b"), file = TRUE), "a file is given by one path")
  expect_error(add_input("x", function() 1), "a function cannot be recorded", class = "tasker_argument")
  expect_error(add_input("x", 1, run_id = "4b0c7c8e-0000-4000-8000-000000000000"), class = "tasker_not_found")
  expect_error(get_run_io("4b0c7c8e-0000-4000-8000-000000000000"), class = "tasker_not_found")
  expect_equal(nrow(get_run_io(run_id)), 0)
})
