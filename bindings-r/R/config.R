#' Configure which database tasker uses
#'
#' Settings are resolved field by field, first match wins: the arguments given
#' here, then the environment (`TASKER_DB_URL` or `TASKER_DB_DRIVER`, `_HOST`,
#' `_PORT`, `_NAME`, `_USER`, `_PASSWORD`, `_SCHEMA`, `_PATH`), then a
#' `.tasker.yml` found by walking up from `start_dir` (or `config_file`), then
#' `$XDG_CONFIG_HOME/tasker/config.yml`, then the default: an SQLite file at
#' `~/.local/share/tasker/tasker.db`. Every other function configures itself
#' this way on first use, so calling `tasker_config()` is optional.
#'
#' Unlike the earlier package, arguments given to a later call always take
#' effect (the earlier package ignored them unless `reload = TRUE`); a call
#' without arguments returns the configuration in use.
#'
#' @param config_file A YAML file to use instead of searching for `.tasker.yml`.
#' @param host,port,dbname,user,password,schema PostgreSQL connection settings.
#'   With `driver = "sqlite"`, `dbname` is the database file.
#' @param driver `"sqlite"` or `"postgresql"`.
#' @param start_dir Where the search for `.tasker.yml` starts.
#' @param reload Resolve the configuration again even without arguments.
#' @param path An SQLite database file.
#' @param url A database URL (`sqlite:///path/file.db`, `postgresql://...`).
#' @param quiet Do not print where the database is.
#' @param ... Tracking settings: `flush_interval_ms`, `heartbeat_interval_s`,
#'   `lost_after_s`, `busy_timeout_ms`, `hostname`, `sample_interval_s` (how
#'   often a process samples its resource use for its runs, see
#'   [get_run_samples()]; 0 turns it off).
#' @return The configuration (a list: driver, location, path, schema, source,
#'   ...), invisibly. Passwords are never part of it.
#' @examples
#' \dontrun{
#' tasker_config(path = "pipeline.db")
#' tasker_config(driver = "postgresql", host = "db", dbname = "pipelines", user = "me")
#' }
#' @export
tasker_config <- function(config_file = NULL, host = NULL, port = NULL, dbname = NULL,
                          user = NULL, password = NULL, schema = NULL, driver = NULL,
                          start_dir = getwd(), reload = FALSE, path = NULL, url = NULL,
                          quiet = FALSE, ...) {
  args <- list(config_file = config_file, host = host, port = port, dbname = dbname,
               user = user, password = password, schema = schema, driver = driver,
               path = path, url = url, ...)
  args <- args[!vapply(args, is.null, logical(1))]
  if (!length(args) && missing(start_dir) && !isTRUE(reload) && isTRUE(.tasker_env$configured)) {
    return(invisible(getOption("tasker.config")))
  }
  args$start_dir <- start_dir
  for (nm in names(args)) {
    v <- args[[nm]]
    if (is.character(v)) args[[nm]] <- enc2utf8(v)
    if (nm %in% c("config_file", "path", "start_dir") && is.character(v) && length(v) == 1L &&
        !is.na(v) && !grepl("^[a-z]+://", v)) {
      args[[nm]] <- path.expand(v)
    }
  }
  cfg <- .tk(tk_open(args))
  .tasker_env$configured <- TRUE
  # When this process began sampling itself, for check_reporter().
  .tasker_env$sampling_since <- if (isTRUE(cfg$sample_interval_s > 0)) Sys.time()
  options(tasker.config = cfg)
  .tk_say(sprintf("tasker: using %s (from %s)", cfg$location, cfg$source), quiet)
  invisible(cfg)
}

#' The configuration in use
#'
#' @return The list [tasker_config()] returned, or `NULL` before any call.
#' @export
get_tasker_config <- function() getOption("tasker.config")

#' Prepare the tasker database
#'
#' Opens the configured database, creating it and applying schema migrations if
#' needed (this also happens on first use of any function). Migrations never drop
#' data, so `force`, `skip_backup`, `keep_backup` and `schema_sql_file` of the
#' earlier package have nothing to do; they are accepted and ignored. Use
#' [purge_tasker_data()] to delete recorded runs.
#'
#' @param conn Ignored (tasker keeps its own connection).
#' @param schema_name PostgreSQL schema; set it with `tasker_config(schema = )`.
#' @param force,skip_backup,keep_backup,schema_sql_file Accepted for compatibility.
#' @param quiet Do not print a message.
#' @return `TRUE`, invisibly.
#' @export
setup_tasker_db <- function(conn = NULL, schema_name = "tasker", force = FALSE,
                            skip_backup = FALSE, keep_backup = FALSE,
                            schema_sql_file = NULL, quiet = FALSE) {
  .tk_conn(conn)
  .tk_ensure()
  .tk(tk_stages())
  cfg <- get_tasker_config()
  .tk_say(sprintf("tasker: database ready at %s", cfg$location), quiet)
  invisible(TRUE)
}

#' Check that the tasker database can be used
#'
#' @inheritParams setup_tasker_db
#' @return `TRUE` if the database opens and answers, else `FALSE`.
#' @export
check_tasker_db <- function(conn = NULL, quiet = FALSE) {
  .tk_conn(conn)
  ok <- tryCatch({
    .tk_ensure()
    .tk(tk_stages())
    TRUE
  }, tasker_error = function(e) {
    .tk_say(paste("tasker database not usable:", conditionMessage(e)), quiet)
    FALSE
  })
  if (ok) .tk_say(sprintf("tasker database OK: %s", get_tasker_config()$location), quiet)
  ok
}

#' Delete recorded runs
#'
#' Deletes every run with its subtasks and events. Registered stages and tasks
#' are kept (registering again is harmless). In an interactive session the
#' user is asked to type `confirmation_string`; otherwise, as in the earlier
#' package, pass `confirmation_string = NULL` to confirm.
#'
#' @inheritParams setup_tasker_db
#' @param confirmation_string What the user must type, or `NULL` to skip asking.
#' @return `TRUE` if runs were deleted, `FALSE` if cancelled (invisibly).
#' @export
purge_tasker_data <- function(conn = NULL, confirmation_string = "DELETE ALL DATA",
                              quiet = FALSE) {
  .tk_conn(conn)
  if (!is.null(confirmation_string)) {
    if (!interactive()) {
      .tk_say("purge_tasker_data: not interactive; pass confirmation_string = NULL to confirm", quiet)
      return(invisible(FALSE))
    }
    answer <- readline(sprintf("Type '%s' to delete every recorded run: ", confirmation_string))
    if (!identical(answer, confirmation_string)) {
      .tk_say("purge_tasker_data: cancelled", quiet)
      return(invisible(FALSE))
    }
  }
  .tk_ensure()
  n <- .tk(tk_delete_runs(NULL, NULL, NULL))
  .tk(tk_context(TRUE, NULL))
  .tk_say(sprintf("tasker: deleted %d run(s)", as.integer(n)), quiet)
  invisible(TRUE)
}
