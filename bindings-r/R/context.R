#' The current run of this R session
#'
#' Called without an argument, returns the current run id (or `NULL`). Called
#' with a run id, makes that run current (an unknown run is an error; the
#' earlier package only warned about a malformed id); `tasker_context(NULL)`
#' clears it. The run's current subtask is taken from the database, so
#' subtask numbers never restart at 1.
#'
#' @param run_id A run id, or `NULL` to clear.
#' @return The current run id (invisibly when setting).
#' @export
tasker_context <- function(run_id) {
  if (missing(run_id)) return(.tk(tk_context(FALSE, NULL)))
  .tk_ensure()
  .tk(tk_context(TRUE, .tk_text(run_id, "run_id")))
  invisible(run_id)
}

#' Make progress durable now
#'
#' Progress calls only touch memory and a background thread writes them every
#' 200 ms; transitions are written at once. `tasker_flush()` writes what is
#' pending in this process (and, given a cluster, in its workers). Call it at
#' the end of a function run by `parallel::mclapply()`: forked children leave
#' without running exit hooks, so progress still pending there would be lost.
#'
#' @param cl A cluster (from [tasker_cluster()] or `parallel::makeCluster()`)
#'   whose workers should flush too.
#' @return `TRUE`, invisibly.
#' @export
tasker_flush <- function(cl = NULL) {
  if (isTRUE(.tasker_env$configured)) .tk(tk_flush())
  if (!is.null(cl)) parallel::clusterCall(cl, .tk_worker_flush)
  invisible(TRUE)
}

# Functions sent to workers live in the global environment, so that sending them
# does not require the worker to load tasker first.
.tk_worker_flush <- function() {
  if (isNamespaceLoaded("tasker")) get("tasker_flush", envir = asNamespace("tasker"))()
  TRUE
}
environment(.tk_worker_flush) <- globalenv()

.tk_worker_libpaths <- function(paths) {
  .libPaths(unique(c(paths, .libPaths())))
  Sys.setenv(RENV_WATCHDOG_ENABLED = "FALSE")
  TRUE
}
environment(.tk_worker_libpaths) <- globalenv()

.tk_worker_attach <- function(pkgs) {
  for (p in c("tasker", pkgs)) suppressPackageStartupMessages(library(p, character.only = TRUE))
  TRUE
}
environment(.tk_worker_attach) <- globalenv()

.tk_worker_eval <- function(e) {
  tryCatch({
    eval(e, globalenv())
    NULL
  }, error = function(err) conditionMessage(err))
}
environment(.tk_worker_eval) <- globalenv()

.tk_worker_setup <- function(cfg, run_id, current, opts) {
  suppressPackageStartupMessages(library("tasker", character.only = TRUE))
  ns <- asNamespace("tasker")
  get(".tk_import_context", envir = ns)(cfg, run_id, current, opts)
}
environment(.tk_worker_setup) <- globalenv()

.tk_import_context <- function(cfg, run_id, current, opts) {
  if (length(opts)) options(opts)
  same <- identical(tk_info()$location, cfg$location_described)
  if (!isTRUE(.tasker_env$configured) || !same) {
    .tk(tk_import_config(cfg$transport))
    .tasker_env$configured <- TRUE
    options(tasker.config = .tk(tk_info()))
  }
  .tk(tk_context(TRUE, run_id))
  if (!is.null(run_id) && !is.null(current)) .tk(tk_set_current(run_id, current))
  TRUE
}

.tk_context_payload <- function(run_id) {
  .tk_ensure()
  run_id <- run_id %||% .tk(tk_context(FALSE, NULL))
  current <- NULL
  if (!is.null(run_id)) {
    current <- tryCatch(.tk(tk_get_current(run_id)), tasker_not_found = function(e) NULL)
  }
  opts <- options()
  opts <- opts[grepl("^tasker\\.", names(opts)) & names(opts) != "tasker.config"]
  list(cfg = list(transport = .tk(tk_export_config()), location_described = .tk(tk_info())$location),
       run_id = run_id, current = current, opts = opts)
}

#' Send the current run to the workers of a cluster
#'
#' Each worker opens the same database and gets the run (and its current
#' subtask) as its current run, so `subtask_increment()` and friends work there
#' without arguments. The workers need tasker installed; their library paths
#' are set to this session's. Subtask numbers come from the database, so
#' calling this again after a new `subtask_start()` is only needed to change the
#' workers' current subtask.
#'
#' @param cl A cluster from `parallel::makeCluster()` (PSOCK or FORK).
#' @param run_id The run (default: the current run; `NULL` sends only the
#'   configuration).
#' @return The run id, invisibly.
#' @export
export_tasker_context <- function(cl, run_id = NULL) {
  p <- .tk_context_payload(run_id)
  parallel::clusterCall(cl, .tk_worker_libpaths, .libPaths())
  parallel::clusterCall(cl, .tk_worker_setup, p$cfg, p$run_id, p$current, p$opts)
  invisible(p$run_id)
}

#' Start a cluster of workers that report to the same run
#'
#' `parallel::makeCluster()` (PSOCK), then on every worker: this session's
#' library paths, `library(tasker)`, `packages`, the configuration and the
#' current run ([export_tasker_context()]), the variables named in `export`,
#' and `setup_expr`. Unlike the earlier package, only `packages` are attached
#' (not every namespace loaded here).
#'
#' @param ncores Number of workers (default: cores - 2, between 1 and 32).
#' @param packages Packages to attach on the workers.
#' @param export Names of variables in `envir` to copy to the workers.
#' @param setup_expr Code evaluated on every worker, in its global environment
#'   (errors become warnings): a quoted expression, as the earlier package documented
#'   (`setup_expr = quote({ library(data.table); x <- 1 })`), a variable holding
#'   one (`setup_expr = e`), an `expression()`, or an unquoted `{ ... }` block or
#'   call, which is sent as written (it is never evaluated here).
#' @param envir Where `export` variables are looked up.
#' @param load_all Ignored (accepted for compatibility).
#' @return The cluster, with attributes `tasker_managed` and `tasker_created_at`.
#' @export
tasker_cluster <- function(ncores = NULL, packages = NULL, export = NULL, setup_expr = NULL,
                           envir = parent.frame(), load_all = FALSE) {
  if (is.null(ncores)) {
    ncores <- max(1L, min(32L, (parallel::detectCores() %||% 3L) - 2L))
  }
  if (!is.numeric(ncores) || length(ncores) != 1L || is.na(ncores) || ncores < 1) {
    .tk_arg_error(sprintf("invalid ncores %s: must be a number of at least 1", paste(format(ncores), collapse = ",")))
  }
  setup <- .tk_setup_code(substitute(setup_expr), parent.frame())
  cl <- parallel::makeCluster(as.integer(ncores))
  ok <- FALSE
  on.exit(if (!ok) parallel::stopCluster(cl))
  p <- .tk_context_payload(NULL)
  parallel::clusterCall(cl, .tk_worker_libpaths, .libPaths())
  parallel::clusterCall(cl, .tk_worker_attach, packages)
  parallel::clusterCall(cl, .tk_worker_setup, p$cfg, p$run_id, p$current, p$opts)
  if (length(export)) parallel::clusterExport(cl, export, envir = envir)
  for (code in setup) {
    res <- parallel::clusterCall(cl, .tk_worker_eval, code)
    errs <- unique(unlist(res))
    if (length(errs)) warning("setup_expr failed on a worker: ", paste(errs, collapse = "; "), call. = FALSE)
  }
  attr(cl, "tasker_managed") <- TRUE
  attr(cl, "tasker_created_at") <- Sys.time()
  ok <- TRUE
  cl
}

# What tasker_cluster() runs on the workers, from the unevaluated `setup_expr`: a list
# of expressions. quote(...), bquote(...), expression(...) and a variable are evaluated
# here to get the code they hold; anything else ({ ... } or a call) is the code itself.
.tk_setup_code <- function(expr, env) {
  if (is.null(expr)) return(list())
  holder <- is.symbol(expr) ||
    (is.call(expr) && is.symbol(expr[[1L]]) &&
       as.character(expr[[1L]]) %in% c("quote", "bquote", "expression", "substitute", "str2lang",
                                       "parse", "str2expression"))
  code <- if (holder) eval(expr, env) else expr
  if (is.null(code)) return(list())
  if (is.expression(code)) return(as.list(code))
  if (is.language(code)) return(list(code))
  .tk_arg_error(sprintf(paste("invalid setup_expr: a %s, not code; give quote({ ... }) or a { ... } block"),
                        class(code)[[1L]]))
}

#' Stop a cluster from tasker_cluster()
#'
#' Flushes the workers' pending progress, then stops them. Errors become
#' warnings.
#'
#' @param cl The cluster (`NULL` is accepted).
#' @param quiet Do not print a message.
#' @return `NULL`, invisibly.
#' @export
stop_tasker_cluster <- function(cl, quiet = FALSE) {
  if (is.null(cl)) return(invisible(NULL))
  tryCatch({
    try(parallel::clusterCall(cl, .tk_worker_flush), silent = TRUE)
    created <- attr(cl, "tasker_created_at")
    parallel::stopCluster(cl)
    if (!is.null(created)) {
      .tk_say(sprintf("Cluster stopped (active for %s)",
                      format_duration_seconds(as.numeric(difftime(Sys.time(), created, units = "secs")))),
              quiet)
    }
  }, error = function(e) warning("stop_tasker_cluster: ", conditionMessage(e), call. = FALSE))
  invisible(NULL)
}
