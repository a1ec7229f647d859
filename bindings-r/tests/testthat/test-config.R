test_that("tasker_config opens the given SQLite file and reports where", {
  db <- local_tasker_db()
  cfg <- get_tasker_config()
  expect_equal(cfg$driver, "sqlite")
  expect_equal(normalizePath(cfg$path), normalizePath(db))
  expect_equal(cfg$source, "arguments")
  expect_true(file.exists(db))
  # A call without arguments returns the configuration in use.
  expect_identical(tasker_config(quiet = TRUE), cfg)
})

test_that("later arguments always take effect (no reload needed)", {
  local_tasker_db()
  other <- tempfile(fileext = ".db")
  on.exit(unlink(other))
  cfg <- tasker_config(path = other, quiet = TRUE)
  expect_equal(normalizePath(cfg$path), normalizePath(other))
  cfg2 <- tasker_config(driver = "sqlite", dbname = other, quiet = TRUE)
  expect_equal(cfg2$driver, "sqlite")
})

test_that("TASKER_DB_URL and .tasker.yml are used when no argument is given", {
  local_tasker_db()
  dir <- withr::local_tempdir()
  withr::local_envvar(TASKER_DB_URL = paste0("sqlite://", file.path(dir, "env.db")))
  cfg <- tasker_config(reload = TRUE, quiet = TRUE)
  expect_match(cfg$path, "env.db", fixed = TRUE)
  withr::local_envvar(TASKER_DB_URL = NA)
  writeLines(c("database:", "  driver: sqlite", "  path: from-yaml.db"), file.path(dir, ".tasker.yml"))
  cfg <- tasker_config(start_dir = dir, quiet = TRUE)
  expect_match(cfg$path, "from-yaml.db", fixed = TRUE)
  cfg <- tasker_config(config_file = file.path(dir, ".tasker.yml"), quiet = TRUE)
  expect_match(cfg$source, ".tasker.yml", fixed = TRUE)
})

test_that("tasker_config prints where the database is unless quiet", {
  local_tasker_db()
  withr::local_options(tasker.quiet = NULL)
  expect_message(tasker_config(path = tempfile(fileext = ".db")), "using sqlite:")
  expect_silent(tasker_config(path = tempfile(fileext = ".db"), quiet = TRUE))
  withr::local_options(tasker.quiet = TRUE)
  expect_silent(tasker_config(path = tempfile(fileext = ".db")))
})

test_that("bad configuration raises tasker_config or tasker_argument", {
  local_tasker_db()
  expect_error(tasker_config(driver = "oracle", quiet = TRUE), class = "tasker_config")
  expect_error(tasker_config(config_file = "/nonexistent/.tasker.yml", quiet = TRUE), class = "tasker_config")
  expect_error(tasker_config(port = 70000, host = "x", quiet = TRUE), class = "tasker_argument")
  expect_error(tasker_config(path = tempfile(), bogus_setting = 1, quiet = TRUE), class = "tasker_argument")
  expect_error(tasker_config(url = "mysql://x/y", quiet = TRUE), class = "tasker_config")
})

test_that("setup_tasker_db, check_tasker_db and the conn note", {
  local_tasker_db()
  expect_true(setup_tasker_db(quiet = TRUE))
  expect_true(setup_tasker_db(force = TRUE, quiet = TRUE))
  expect_true(check_tasker_db(quiet = TRUE))
  assign("conn_noted", FALSE, envir = tasker:::.tasker_env)
  expect_message(get_stages(conn = "a connection"), "'conn' argument is ignored")
  expect_silent(get_stages(conn = "a connection"))
})

test_that("a database that cannot be opened is a tasker_error", {
  local_tasker_db()
  f <- tempfile()
  writeLines("not a database", f)
  # Refused when opening or on first use, depending on when SQLite reads the header.
  expect_error({
    tasker_config(path = f, quiet = TRUE)
    get_stages()
  }, class = "tasker_error")
  d <- withr::local_tempdir()
  tasker_config(path = d, quiet = TRUE) # a directory: never a database
  expect_error(get_stages(), class = "tasker_storage")
  expect_false(check_tasker_db(quiet = TRUE))
})

test_that("purge_tasker_data deletes runs only when confirmed", {
  local_tasker_db()
  register_task("s", "t")
  task_start("s", "t", quiet = TRUE)
  expect_false(purge_tasker_data(quiet = TRUE)) # not interactive: needs NULL
  expect_equal(nrow(get_task_history()), 1)
  expect_true(purge_tasker_data(confirmation_string = NULL, quiet = TRUE))
  expect_equal(nrow(get_task_history()), 0)
  expect_null(tasker_context())
  expect_equal(nrow(get_registered_tasks()), 1) # registrations are kept
})
