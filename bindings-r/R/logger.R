#' A logger appender that writes to the run's log
#'
#' For the logger package: each line a `log_info()`, `log_warn()`, ... call
#' produces becomes a log line of the current run (or of `run_id`), as
#' [tasker_log()] writes it, with the call's level (`FATAL` and `ERROR` become
#' error, `WARN` warn, `SUCCESS` and `INFO` info, `DEBUG` and `TRACE` debug).
#' The run's log keeps each line's time, host and process itself, so a layout
#' with only the message suits it:
#'
#' ```r
#' logger::log_appender(appender_tasker())
#' logger::log_layout(logger::layout_glue_generator("{msg}"))
#' ```
#'
#' logger's `index` argument adds it next to the console instead of replacing
#' it (see `?logger::log_appender`).
#'
#' Lines logged while there is no run are dropped, and a line the run refuses
#' (a finished run, say) is dropped too: logging never stops the pipeline.
#'
#' @param run_id The run (default: the current run when the line is logged).
#' @return A logger appender (a function of the formatted lines).
#' @export
appender_tasker <- function(run_id = NULL) {
  run_id <- .tk_text(run_id, "run_id")
  structure(function(lines) {
    # logger calls its appender from the function that holds the call's level;
    # the lines alone do not say it.
    level <- .tk_logger_level(get0("level", envir = parent.frame(), inherits = FALSE))
    for (line in lines) {
      tryCatch(tasker_log(line, level = level, run_id = run_id),
               tasker_error = function(e) NULL)
    }
    invisible(NULL)
  }, generator = deparse(match.call()))
}

# logger's levels are numbers with a name attribute: FATAL 100, ERROR 200, WARN 300,
# SUCCESS 350, INFO 400, DEBUG 500, TRACE 600 (a custom level falls between).
.tk_logger_level <- function(level) {
  if (is.null(level) || !is.numeric(level) || length(level) != 1L || is.na(level)) return("info")
  if (level <= 200) "error" else if (level <= 300) "warn" else if (level <= 400) "info" else "debug"
}
