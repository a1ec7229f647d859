test_that("every condition has the tasker classes and names the bad value", {
  local_tasker_db()
  task_start("s", "t")
  subtask_start("a", items_total = 10)
  e <- tryCatch(subtask_update(percent = 150), error = identity)
  expect_s3_class(e, c("tasker_argument", "tasker_error", "error", "condition"), exact = TRUE)
  expect_match(conditionMessage(e), "150")
  e <- tryCatch(task_update(status = "DONE"), error = identity)
  expect_identical(class(e), c("tasker_argument", "tasker_error", "error", "condition"))
  expect_match(conditionMessage(e), "DONE")
})

bad_calls <- list(
  "percent > 100" = quote(subtask_update(percent = 101)),
  "percent NA" = quote(subtask_update(percent = NA_real_)),
  "percent NaN" = quote(subtask_update(percent = NaN)),
  "percent text" = quote(subtask_update(percent = "half")),
  "negative items" = quote(subtask_update(items_complete = -1)),
  "fractional items" = quote(subtask_update(items_complete = 1.5)),
  "items vector" = quote(subtask_update(items_complete = 1:2)),
  "increment 0" = quote(subtask_increment(0)),
  "increment negative" = quote(subtask_increment(-3)),
  "increment fractional" = quote(subtask_increment(0.5)),
  "increment NA" = quote(subtask_increment(NA)),
  "increment Inf" = quote(subtask_increment(Inf)),
  "subtask number 0" = quote(subtask_increment(subtask_number = 0)),
  "overall_percent" = quote(task_update(overall_percent = -5)),
  "current_subtask 0" = quote(task_update(current_subtask = 0)),
  "status typo" = quote(task_update(status = "DONE")),
  "status vector" = quote(task_update(status = c("RUNNING", "FAILED"))),
  "subtask status typo" = quote(subtask_update(status = "FINISHED")),
  "empty subtask name" = quote(subtask_start("  ")),
  "subtask name NUL-free but not text" = quote(subtask_start(42)),
  "negative items_total" = quote(subtask_start("x", items_total = -1)),
  "negative total_subtasks" = quote(task_start("s", "t2", total_subtasks = -1)),
  "empty stage" = quote(task_start("", "t")),
  "metadata not an object" = quote(task_start("s", "t3", metadata = "[1, 2]")),
  "metadata not JSON" = quote(task_start("s", "t3", metadata = "{nope")),
  "error without status" = quote(task_update(error_message = "x")),
  "limit 0" = quote(get_task_status(limit = 0)),
  "history status typo" = quote(get_task_history(status = "OK")),
  "confidence level" = quote(get_completion_estimate(confidence_level = 1.5)),
  "ncores" = quote(tasker_cluster(ncores = 0)),
  "register without name" = quote(register_tasks(data.frame(stage = "s"))),
  "register stage_order text" = quote(register_task("s", "t", stage_order = "first"))
)

for (what in names(bad_calls)) {
  test_that(paste("bad argument raises tasker_argument:", what), {
    local_tasker_db()
    task_start("s", "t")
    subtask_start("a", items_total = 10)
    expect_error(eval(bad_calls[[what]]), class = "tasker_argument")
  })
}

test_that("other kinds: not_found, invalid_transition, already_exists, config", {
  local_tasker_db()
  expect_error(get_subtask_progress("no-such-run"), class = "tasker_not_found")
  run_id <- task_start("s", "t")
  task_complete()
  expect_error(subtask_start("late"), class = "tasker_invalid_transition")
  task_start("s", "t")
  subtask_start("a")
  expect_error(subtask_start("b", subtask_number = 1), class = "tasker_already_exists")
  expect_error(tasker_config(driver = "nosuchdb", quiet = TRUE), class = "tasker_config")
})

test_that("hostile strings are stored verbatim", {
  local_tasker_db()
  hostile <- c(
    "Robert'); DROP TABLE runs;--",
    "<script>alert('x')</script> & \"quotes\"",
    "percent % and underscore _ wildcards",
    "emoji \U0001F680 and accents \u00e9\u00e8 and CJK \u6f22\u5b57",
    "new\nlines\tand\ttabs",
    "back\\slash"
  )
  long <- strrep("long ", 200000) # 1 MB of text (names are limited to 4 KiB)
  latin1 <- iconv("caf\u00e9", "UTF-8", "latin1")
  for (i in seq_along(hostile)) {
    h <- hostile[[i]]
    register_task(paste("stage", h), paste("task", i, h), description = h)
    run_id <- task_start(paste("stage", h), paste("task", i, h), message = h)
    subtask_start(h, message = h)
    subtask_update(message = h)
    task_fail(h, error_detail = h)
    row <- get_task_history(limit = 1)
    expect_identical(row$stage_name, paste("stage", h))
    expect_identical(row$task_name, paste("task", i, h))
    expect_identical(row$error_message, h)
    expect_identical(row$error_detail, h)
    st <- get_subtask_progress(run_id)
    expect_identical(st$subtask_name, h)
    expect_identical(st$progress_message, h)
    expect_identical(get_registered_tasks(name = paste("task", i, h))$description, h)
  }
  run_id <- task_start("s", "long", message = long)
  subtask_start("long one", message = long)
  subtask_update(message = long)
  task_fail(long, error_detail = long)
  row <- get_task_history(limit = 1)
  expect_identical(row$error_message, long)
  expect_identical(row$error_detail, long)
  expect_identical(get_subtask_progress(run_id)$progress_message, long)
  # A latin1 string arrives as UTF-8.
  run_id <- task_start("s", "latin1", message = latin1)
  expect_identical(get_task_status(task = "latin1")$overall_progress_message, "caf\u00e9")
  # Invalid UTF-8 bytes cannot be stored as text: R converts them to "<ff>", never a crash.
  bad_utf8 <- rawToChar(as.raw(c(0x66, 0xff, 0x6f)))
  task_start("s", "bytes", message = bad_utf8)
  subtask_start("bytes")
  subtask_update(message = bad_utf8)
  tasker_flush()
  stored <- get_task_status(task = "bytes")$overall_progress_message
  expect_true(validUTF8(stored))
  expect_equal(stored, "f<ff>o") # R escapes the byte when converting to UTF-8
  expect_equal(get_subtask_progress()$progress_message, "f<ff>o")
  # NUL cannot be in an R string; an over-long name is refused, not truncated.
  expect_error(task_start(strrep("x", 5000), "t"), class = "tasker_argument")
})
