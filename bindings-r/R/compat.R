# Functions the earlier package exported for its configuration and database checks,
# with the same names and arguments.

#' Find the nearest .tasker.yml
#'
#' Looks in `start_dir`, then in its parent, and so on, at most `max_depth`
#' directories up (stopping at the file system root), as the earlier package
#' did. [tasker_config()] searches the same way.
#'
#' @param start_dir Where to start.
#' @param filename The file to look for.
#' @param max_depth How many parent directories to try.
#' @return The normalized path of the file, or `NULL` if there is none.
#' @export
find_config_file <- function(start_dir = getwd(), filename = ".tasker.yml", max_depth = 10) {
  start_dir <- .tk_name(start_dir, "start_dir")
  filename <- .tk_name(filename, "filename")
  if (!is.numeric(max_depth) || length(max_depth) != 1L || is.na(max_depth) || max_depth < 0) {
    .tk_arg_error(sprintf("invalid max_depth %s: must be a number, zero or more", format(max_depth)))
  }
  dir <- normalizePath(path.expand(start_dir), mustWork = FALSE)
  for (i in 0:max_depth) {
    candidate <- file.path(dir, filename)
    if (file.exists(candidate) && !dir.exists(candidate)) return(normalizePath(candidate))
    parent <- dirname(dir)
    if (identical(parent, dir)) break
    dir <- parent
  }
  NULL
}

#' Write a .tasker.yml
#'
#' Writes the file the earlier package's `create_tasker_config()` wrote, with
#' the sections `database:`, `logging:` and `pipeline:`. In an interactive
#' session, settings that are not given are asked for (`readline()`); otherwise
#' the defaults are used: an SQLite database `tasker.db` next to the file.
#' For SQLite the file is written as `dbname:` (the earlier package wrote
#' `path:`, which its own reader then refused); both packages read it. A
#' password given here is written in clear text: prefer `${VAR}` (expanded when
#' the file is read) or `TASKER_DB_PASSWORD`.
#'
#' @param path The directory to write `.tasker.yml` into, or a file name ending
#'   in `.yml` / `.yaml`.
#' @param force Overwrite an existing file.
#' @param db_driver `"sqlite"` or `"postgresql"`.
#' @param db_host,db_port,db_name,db_schema,db_user,db_password PostgreSQL
#'   connection settings.
#' @param db_path The SQLite database file (relative paths are relative to the
#'   configuration file).
#' @param log_path,script_path Where the pipeline's logs and scripts are
#'   (kept in the file for other tools).
#' @param pipeline_name,pipeline_version Kept in the file for other tools.
#' @return The path of the file written, invisibly.
#' @export
create_tasker_config <- function(path = ".", force = FALSE, db_driver = NULL, db_host = NULL,
                                 db_port = NULL, db_name = NULL, db_schema = NULL, db_user = NULL,
                                 db_password = NULL, db_path = NULL, log_path = NULL,
                                 script_path = NULL, pipeline_name = NULL, pipeline_version = NULL) {
  path <- .tk_name(path, "path")
  file <- if (grepl("\\.ya?ml$", path)) path else file.path(path, ".tasker.yml")
  if (file.exists(file) && !isTRUE(force)) {
    .tk_signal("already_exists", sprintf("Configuration file already exists: %s. Use force = TRUE to overwrite.", file))
  }
  ask <- function(value, prompt, default = NULL) {
    if (!is.null(value) || !interactive()) return(value %||% default)
    answer <- readline(sprintf("%s%s: ", prompt, if (is.null(default)) "" else sprintf(" [%s]", default)))
    if (nzchar(answer)) answer else default
  }
  driver <- tolower(.tk_name(ask(db_driver, "Database driver (sqlite or postgresql)", "sqlite"), "db_driver"))
  if (!driver %in% c("sqlite", "postgresql", "postgres")) {
    .tk_arg_error(sprintf("'db_driver' should be one of \"sqlite\", \"postgresql\" (got \"%s\")", driver))
  }
  database <- if (driver == "sqlite") {
    list(driver = "sqlite", dbname = .tk_name(ask(db_path %||% db_name, "SQLite database file", "tasker.db"),
                                               "db_path"))
  } else {
    port <- ask(db_port, "Port", "5432")
    port <- suppressWarnings(as.integer(port))
    if (length(port) != 1L || is.na(port) || port < 1L || port > 65535L) {
      .tk_arg_error(sprintf("invalid db_port %s: must be between 1 and 65535", format(db_port)))
    }
    list(driver = "postgresql",
         host = .tk_name(ask(db_host, "Host", "localhost"), "db_host"),
         port = port,
         dbname = .tk_name(ask(db_name, "Database name"), "db_name"),
         user = .tk_name(ask(db_user, "User", Sys.getenv("USER", unset = "")), "db_user"),
         password = .tk_text(ask(db_password, "Password (empty: none; prefer ${VAR})"), "db_password"),
         schema = .tk_name(ask(db_schema, "Schema", "tasker"), "db_schema"))
  }
  sections <- list(database = database,
                   logging = list(log_path = .tk_text(log_path, "log_path"),
                                  script_path = .tk_text(script_path, "script_path")),
                   pipeline = list(name = .tk_text(pipeline_name, "pipeline_name"),
                                   version = .tk_text(pipeline_version, "pipeline_version")))
  lines <- c("# tasker configuration (see ?tasker_config). Values may use ${VAR} and ${VAR:-default}.")
  for (section in names(sections)) {
    fields <- Filter(Negate(is.null), sections[[section]])
    if (!length(fields)) next
    lines <- c(lines, paste0(section, ":"),
               sprintf("  %s: %s", names(fields), vapply(fields, .tk_yaml_scalar, character(1))))
  }
  dir.create(dirname(file), recursive = TRUE, showWarnings = FALSE)
  writeLines(enc2utf8(lines), file, useBytes = TRUE)
  message("tasker: wrote ", file)
  invisible(file)
}

# A YAML scalar: numbers as they are, text single-quoted ('' inside), so that no value
# is read back as another type or breaks the file.
.tk_yaml_scalar <- function(x) {
  if (is.numeric(x)) return(format(x, scientific = FALSE))
  sprintf("'%s'", gsub("'", "''", x, fixed = TRUE))
}

#' Check that tasker's tables exist
#'
#' tasker creates and migrates its tables when it opens the database, so this
#' is `TRUE` whenever the configured database can be opened and read (the
#' earlier package's version failed when `conn` was not given).
#'
#' @param conn Ignored (tasker keeps its own connection).
#' @param driver Ignored (the configured database is checked).
#' @return `TRUE` or `FALSE`.
#' @export
check_tasker_tables_exist <- function(conn = NULL, driver = NULL) {
  .tk_conn(conn)
  tryCatch({
    get_stages()
    TRUE
  }, tasker_error = function(e) FALSE)
}

#' A DBI connection to tasker's database
#'
#' Opens a new DBI connection to the database tasker is configured for, for
#' your own queries: `RSQLite` for SQLite (with a busy timeout, so that it waits
#' for tasker's writer instead of failing), `RPostgres` for PostgreSQL (with
#' `search_path` set to tasker's schema). Those packages and `DBI` are only
#' suggested by tasker: without them this is an error of class
#' `tasker_missing_package` naming what to install. Close the connection with
#' `DBI::dbDisconnect()`. tasker itself never uses it: write through tasker's
#' functions, read with it as you like. The tables are `stages`, `tasks`,
#' `runs`, `subtasks` and `events` (the earlier package's `task_runs` and
#' `subtask_progress` are `runs` and `subtasks`); the query functions
#' ([get_task_status()] and friends) return the same data with stable columns.
#'
#' @return A `DBIConnection`.
#' @export
get_db_connection <- function() {
  cfg <- tasker_config(quiet = TRUE)
  sqlite <- identical(cfg$driver, "sqlite")
  driver_pkg <- if (sqlite) "RSQLite" else "RPostgres"
  missing_pkgs <- c("DBI", driver_pkg)[!vapply(c("DBI", driver_pkg), requireNamespace, logical(1),
                                               quietly = TRUE)]
  if (length(missing_pkgs)) {
    .tk_signal("missing_package", sprintf(paste(
      "get_db_connection() needs the R package%s %s for this %s database: install.packages(c(%s))",
      "(Debian/Ubuntu: apt-get install %s)"),
      if (length(missing_pkgs) > 1L) "s" else "", paste(missing_pkgs, collapse = " and "), cfg$driver,
      paste(sprintf("\"%s\"", missing_pkgs), collapse = ", "),
      paste(sprintf("r-cran-%s", tolower(missing_pkgs)), collapse = " ")))
  }
  if (sqlite) {
    con <- DBI::dbConnect(getExportedValue("RSQLite", "SQLite")(), cfg$path)
    DBI::dbExecute(con, "PRAGMA busy_timeout = 10000")
    DBI::dbExecute(con, "PRAGMA foreign_keys = ON")
    return(con)
  }
  params <- .tk_conninfo(.tk(tk_export_config())$target)
  args <- c(list(getExportedValue("RPostgres", "Postgres")()),
            params[intersect(names(params), c("host", "port", "dbname", "user", "password", "sslmode"))],
            list(options = sprintf("-c search_path=%s", cfg$schema)))
  do.call(DBI::dbConnect, args)
}

# libpq connection settings from a conninfo string ("host=x port=5432 ...", values
# possibly single-quoted) or a URL (postgresql://user:pw@host:port/db?sslmode=...).
.tk_conninfo <- function(x) {
  if (grepl("^postgres(ql)?://", x)) {
    rest <- sub("^postgres(ql)?://", "", x)
    query <- if (grepl("?", rest, fixed = TRUE)) sub("^[^?]*\\?", "", rest) else ""
    rest <- sub("\\?.*$", "", rest)
    out <- list()
    if (grepl("@", rest, fixed = TRUE)) {
      auth <- sub("@[^@]*$", "", rest)
      rest <- sub("^.*@", "", rest)
      out$user <- utils::URLdecode(sub(":.*$", "", auth))
      if (grepl(":", auth, fixed = TRUE)) out$password <- utils::URLdecode(sub("^[^:]*:", "", auth))
    }
    hostport <- sub("/.*$", "", rest)
    if (grepl("/", rest, fixed = TRUE)) out$dbname <- utils::URLdecode(sub("^[^/]*/", "", rest))
    if (nzchar(hostport)) {
      out$host <- utils::URLdecode(sub(":[0-9]*$", "", hostport))
      if (grepl(":[0-9]+$", hostport)) out$port <- sub("^.*:", "", hostport)
    }
    for (kv in strsplit(query, "&", fixed = TRUE)[[1L]]) {
      if (grepl("=", kv, fixed = TRUE)) out[[sub("=.*$", "", kv)]] <- utils::URLdecode(sub("^[^=]*=", "", kv))
    }
    return(out)
  }
  out <- list()
  m <- gregexpr("[A-Za-z_]+\\s*=\\s*('([^'\\\\]|\\\\.)*'|[^ ]*)", x)[[1L]]
  for (kv in regmatches(x, list(m))[[1L]]) {
    key <- trimws(sub("=.*$", "", kv))
    value <- trimws(sub("^[^=]*=", "", kv))
    if (grepl("^'.*'$", value)) value <- gsub("\\\\(.)", "\\1", substr(value, 2L, nchar(value) - 1L))
    out[[key]] <- value
  }
  out
}
