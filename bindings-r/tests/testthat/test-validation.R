# Arguments are checked before the database is touched, with the earlier package's
# messages (scripts match on them in tryCatch()/grepl()).

test_that("a bad status gives match.arg's message, partial names still work", {
  local_tasker_db()
  task_start("s", "t")
  e <- tryCatch(task_update(status = "DONE"), error = identity)
  expect_s3_class(e, "tasker_error")
  expect_true(grepl("'arg' should be one of", conditionMessage(e), fixed = TRUE))
  expect_match(conditionMessage(e), "\u201cCOMPLETED\u201d|\"COMPLETED\"")
  expect_error(subtask_update(status = "FINISHED"), "'arg' should be one of", class = "tasker_argument")
  expect_error(get_task_status(status = "OK"), "'arg' should be one of")
  expect_error(find_and_update_task("s", "t", status = "DONE"), "'arg' should be one of")
  task_update(status = "COMPLETE") # a unique prefix, as match.arg allows
  expect_equal(get_run()$status, "COMPLETED")
})

test_that("names must be non-empty strings: the earlier package's message", {
  local_tasker_db()
  expect_error(register_task(name = "t"), "'stage' must be a non-empty character string",
               class = "tasker_argument")
  expect_error(register_task("", "t"), "'stage' must be a non-empty character string")
  expect_error(register_task("s", "  "), "'name' must be a non-empty character string")
  expect_error(register_task("s", NA_character_), "'name' must be a non-empty character string")
  expect_error(register_task("s", "t", type = ""), "'type' must be a non-empty character string")
  expect_error(register_task(c("a", "b"), "t"), "'stage' must be a non-empty character string")
  expect_error(register_tasks(data.frame(stage = c("a", ""), name = c("x", "y"))),
               "'stage' must be a non-empty character string")
  expect_error(task_start("s", ""), "'task' must be a non-empty character string")
  task_start("s", "t")
  expect_error(subtask_start(""), "'subtask_name' must be a non-empty character string")
  expect_error(subtask_start(), "'subtask_name' must be a non-empty character string")
  expect_error(task_mark_complete("s", ""), "'task' must be a non-empty character string")
  expect_equal(nrow(get_registered_tasks()), 1) # only s.t, from task_start
})

test_that("find_and_update_* need a locator, checked first", {
  local_tasker_db()
  msg <- "Either provide 'filename' or both 'stage' and 'task'"
  expect_error(find_and_update_task(status = "COMPLETED"), msg, fixed = TRUE, class = "tasker_argument")
  expect_error(find_and_update_task("s", status = "COMPLETED"), msg, fixed = TRUE)
  expect_error(find_and_update_task(task = "t", status = "COMPLETED"), msg, fixed = TRUE)
  expect_error(find_and_update_subtask(subtask = 1, status = "COMPLETED"), msg, fixed = TRUE)
  expect_error(find_and_update_subtask("s", "t", status = "COMPLETED"), "'subtask' must be provided")
  expect_error(find_and_update_task(filename = "", status = "RUNNING"),
               "'filename' must be a non-empty character string")
})

test_that("no match says 'not found' and lists what exists", {
  local_tasker_db()
  register_task("prep", "load", script_filename = "01_load.R", stage_order = 1, task_order = 1)
  register_task("prep", "clean", script_filename = "02_clean.R", stage_order = 1, task_order = 2)
  task_start("prep", "load")
  subtask_start("read")
  subtask_start("parse")
  e <- tryCatch(find_and_update_task(filename = "99_missing.R", status = "COMPLETED"), error = identity)
  expect_s3_class(e, "tasker_not_found")
  expect_match(conditionMessage(e), "not found")
  expect_match(conditionMessage(e), "01_load.R, 02_clean.R", fixed = TRUE)
  expect_error(find_and_update_task("nostage", "load", status = "COMPLETED"),
               "not found. Available stages: prep", class = "tasker_not_found")
  expect_error(find_and_update_task("prep", "nothing", status = "COMPLETED"),
               "not found in stage .*Available tasks: prep.load, prep.clean", class = "tasker_not_found")
  e <- tryCatch(find_and_update_subtask(filename = "01_load.R", subtask = "write", status = "COMPLETED"),
                error = identity)
  expect_s3_class(e, "tasker_not_found")
  expect_match(conditionMessage(e), "not found")
  expect_match(conditionMessage(e), "1 read, 2 parse", fixed = TRUE)
})

test_that("bad arguments never open the database", {
  dir <- withr::local_tempdir()
  db <- file.path(dir, "untouched.db")
  res <- run_r_script(c(
    "library(tasker)",
    "try_msg <- function(expr) tryCatch({ expr; 'no error' }, error = function(e) class(e)[[1]])",
    "cat(try_msg(register_task('', 't')), '\\n')",
    "cat(try_msg(task_start('s', '')), '\\n')",
    "cat(try_msg(task_update(status = 'DONE')), '\\n')",
    "cat(try_msg(find_and_update_task(status = 'COMPLETED')), '\\n')",
    "cat(try_msg(find_and_update_subtask('s', 't', status = 'COMPLETED')), '\\n')",
    "cat(try_msg(get_task_status(status = 'nope')), '\\n')",
    "cat(try_msg(subtask_start('')), '\\n')",
    "cat(try_msg(task_start('s', 't', total_subtasks = -1)), '\\n')",
    "cat('configured:', isTRUE(tasker:::.tasker_env$configured), '\\n')",
    sprintf("cat('db exists:', file.exists('%s'), '\\n')", db)
  ), dir = dir, env = c(sprintf("TASKER_DB_PATH=%s", db), sprintf("XDG_DATA_HOME=%s", dir),
                        sprintf("XDG_CONFIG_HOME=%s", dir)))
  out <- trimws(res$output)
  expect_equal(out[1:8], rep("tasker_argument", 8))
  expect_true("configured: FALSE" %in% out)
  expect_true("db exists: FALSE" %in% out)
})
