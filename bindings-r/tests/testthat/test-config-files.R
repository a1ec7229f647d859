# find_config_file(), create_tasker_config(), check_tasker_tables_exist() and
# get_db_connection(): the earlier package's configuration helpers.

test_that("find_config_file walks up at most max_depth directories", {
  root <- withr::local_tempdir()
  deep <- file.path(root, "a", "b", "c")
  dir.create(deep, recursive = TRUE)
  expect_null(find_config_file(deep))
  writeLines("database:\n  driver: sqlite\n  dbname: x.db", file.path(root, ".tasker.yml"))
  expect_equal(find_config_file(deep), normalizePath(file.path(root, ".tasker.yml")))
  expect_null(find_config_file(deep, max_depth = 2))
  expect_equal(find_config_file(deep, max_depth = 3), normalizePath(file.path(root, ".tasker.yml")))
  expect_null(find_config_file(deep, filename = "other.yml"))
  expect_error(find_config_file(deep, max_depth = -1), class = "tasker_argument")
})

test_that("create_tasker_config writes a file tasker_config reads, and refuses to overwrite", {
  local_tasker_db()
  dir <- withr::local_tempdir()
  expect_message(f <- create_tasker_config(dir, db_driver = "sqlite", db_path = "pipe.db",
                                           pipeline_name = "it's mine", pipeline_version = "1.0",
                                           log_path = "/var/log/x"), "wrote")
  expect_equal(f, file.path(dir, ".tasker.yml"))
  text <- readLines(f)
  expect_true("  dbname: 'pipe.db'" %in% text)
  expect_true("  name: 'it''s mine'" %in% text)
  expect_error(create_tasker_config(dir), "already exists", class = "tasker_already_exists")
  cfg <- tasker_config(config_file = f, quiet = TRUE)
  expect_equal(normalizePath(cfg$path, mustWork = FALSE), normalizePath(file.path(dir, "pipe.db"), mustWork = FALSE))
  expect_equal(find_config_file(dir), normalizePath(f))
  run_id <- task_start("s", "t")
  expect_true(file.exists(file.path(dir, "pipe.db")))
  # Overwritten with force; PostgreSQL settings, non-interactive, port as a number.
  create_tasker_config(dir, force = TRUE, db_driver = "postgresql", db_host = "db.example", db_port = 5433,
                       db_name = "pipes", db_user = "me", db_password = "${PGPASS}", db_schema = "work")
  text <- readLines(f)
  expect_true(all(c("  driver: 'postgresql'", "  port: 5433", "  password: '${PGPASS}'") %in% text))
  expect_error(create_tasker_config(dir, force = TRUE, db_driver = "postgresql", db_host = "h"),
               "'db_name' must be a non-empty character string")
  expect_error(create_tasker_config(dir, force = TRUE, db_driver = "oracle"), "'db_driver' should be one of")
  # Written next to a given .yml name too.
  g <- create_tasker_config(file.path(dir, "sub", "pipeline.yml"))
  expect_true(file.exists(g))
})

test_that("check_tasker_tables_exist is TRUE for a usable database, FALSE otherwise", {
  local_tasker_db()
  expect_true(check_tasker_tables_exist())
  tasker_config(path = withr::local_tempdir(), quiet = TRUE) # a directory: never a database
  expect_false(check_tasker_tables_exist())
})

test_that("get_db_connection gives a DBI connection to the same SQLite database", {
  skip_if_not_installed("DBI")
  skip_if_not_installed("RSQLite")
  local_tasker_db()
  run_id <- task_start("s", "t")
  subtask_start("rows", items_total = 5)
  subtask_increment(5)
  tasker_flush()
  con <- get_db_connection()
  on.exit(DBI::dbDisconnect(con), add = TRUE)
  expect_true(DBI::dbIsValid(con))
  tables <- DBI::dbListTables(con)
  expect_true(all(c("stages", "tasks", "runs", "subtasks", "events") %in% tables))
  runs <- DBI::dbGetQuery(con, "SELECT run_id, status FROM runs")
  expect_equal(runs$run_id, run_id)
  items <- DBI::dbGetQuery(con, "SELECT items_complete FROM subtasks")$items_complete
  expect_equal(items, 5)
  # tasker keeps writing while the connection is open.
  task_complete()
  expect_equal(DBI::dbGetQuery(con, "SELECT status FROM runs")$status, "COMPLETED")
})

test_that("get_db_connection names the packages to install when they are missing", {
  db <- local_tasker_db()
  # A process that sees only tasker's library (no DBI, no RSQLite).
  res <- run_r_script(c(
    sprintf(".libPaths(c('%s', .Library))", tasker_lib()),
    "library(tasker)",
    sprintf("tasker_config(path = '%s', quiet = TRUE)", db),
    "e <- tryCatch(get_db_connection(), error = identity)",
    "cat(class(e)[1:2], '\\n')",
    "cat(conditionMessage(e), '\\n')"
  ), env = c("R_LIBS_SITE=/nonexistent", "R_LIBS_USER=/nonexistent"))
  out <- paste(res$output, collapse = "\n")
  expect_match(out, "tasker_missing_package tasker_error")
  expect_match(out, "DBI and RSQLite")
  expect_match(out, "install.packages(c(\"DBI\", \"RSQLite\"))", fixed = TRUE)
})

test_that("get_db_connection on PostgreSQL: RPostgres, or an error naming it", {
  skip_if(!nzchar(Sys.getenv("TASKER_PG_URI")), "no PostgreSQL server (scripts/test-r.sh starts one)")
  local_tasker_db()
  tasker_config(url = Sys.getenv("TASKER_PG_URI"), schema = sprintf("r_dbi_%d", Sys.getpid()), quiet = TRUE)
  run_id <- task_start("pg", "dbi")
  if (!requireNamespace("RPostgres", quietly = TRUE)) {
    expect_error(get_db_connection(), "RPostgres", class = "tasker_missing_package")
  } else {
    con <- get_db_connection()
    on.exit(DBI::dbDisconnect(con), add = TRUE)
    expect_equal(DBI::dbGetQuery(con, "SELECT run_id::text AS id FROM runs")$id, run_id)
  }
})

test_that("conninfo strings and URLs are read into connection settings", {
  expect_equal(tasker:::.tk_conninfo("host=db port=5433 dbname=x user=me password='p w\\'q'"),
               list(host = "db", port = "5433", dbname = "x", user = "me", password = "p w'q"))
  expect_equal(tasker:::.tk_conninfo("postgresql://bob:s%40cret@db.example:5433/pipes?sslmode=require"),
               list(user = "bob", password = "s@cret", dbname = "pipes", host = "db.example", port = "5433",
                    sslmode = "require"))
  expect_equal(tasker:::.tk_conninfo("postgres://db/x"), list(dbname = "x", host = "db"))
})
