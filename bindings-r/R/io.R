#' Record an input or output of a run
#'
#' Logs what a run read (`add_input()`) or made (`add_output()`): a named value
#' (a parameter, a date, a row count) or a file with its size, modification
#' time and, with `hash = TRUE`, the SHA-256 of its content, read when it is
#' recorded. Recording a name again replaces the earlier record of that name
#' (a retried step does not leave two). [get_run_io()] reads them back;
#' `tasker show RUN` lists them and `tasker diff RUN1 RUN2` compares two runs'
#' (files by size and hash) on the command line.
#'
#' Whether `value` is a file: with `file = NA` (the default), a single string
#' naming an existing regular file is recorded as that file, and so is an
#' `fs::path()`; anything else is a value. `file = TRUE` insists on a file or
#' directory (a missing one is an error naming it) and `file = FALSE` records
#' even an existing file's name as a plain value. `hash = TRUE` implies
#' `file = TRUE` unless `file = FALSE` is given.
#'
#' Values are stored as text: strings as they are, numbers as
#' `as.character()` writes them (15 significant digits), `TRUE`/`FALSE`, dates
#' as `"2026-03-01"`, times (`POSIXct`) in UTC as `"2026-03-01T12:00:00Z"`,
#' factors by their level, `NA` as `"NA"`. Vectors of more than one element
#' and lists are stored as JSON, named ones as objects (this needs the
#' jsonlite package).
#'
#' @param name The record's name (a non-empty string).
#' @param value A file path, or a value (see Details).
#' @param run_id The run (default: the current run, [tasker_context()]).
#' @param hash Store the SHA-256 of a file's content (reads the whole file).
#' @param file `NA` to decide from `value`, `TRUE` for a file, `FALSE` for a
#'   value.
#' @return `TRUE`, invisibly.
#' @examples
#' tasker_config(path = tempfile(fileext = ".db"), quiet = TRUE)
#' run_id <- task_start("examples", "summarise", quiet = TRUE)
#' csv <- tempfile(fileext = ".csv")
#' write.csv(data.frame(x = 1:3), csv, row.names = FALSE)
#' add_input("source", csv, hash = TRUE)
#' add_input("year", 2026)
#' add_output("rows", nrow(read.csv(csv)))
#' task_complete(quiet = TRUE)
#' get_run_io(run_id)[, c("direction", "name", "value", "size_bytes", "sha256")]
#' @export
add_input <- function(name, value, run_id = NULL, hash = FALSE, file = NA) {
  .tk_add_io("input", name, value, run_id, hash, file, missing(value))
}

#' @rdname add_input
#' @export
add_output <- function(name, value, run_id = NULL, hash = FALSE, file = NA) {
  .tk_add_io("output", name, value, run_id, hash, file, missing(value))
}

.tk_add_io <- function(direction, name, value, run_id, hash, file, no_value) {
  name <- .tk_name(if (missing(name)) NULL else name, "name")
  if (no_value) .tk_arg_error(sprintf("invalid value for \"%s\": a value or a file path is required", name))
  if (!is.logical(hash) || length(hash) != 1L || is.na(hash)) {
    .tk_arg_error(sprintf("invalid hash %s: must be TRUE or FALSE", paste(format(hash), collapse = ",")))
  }
  if (!is.logical(file) || length(file) != 1L) {
    .tk_arg_error(sprintf("invalid file %s: must be NA, TRUE or FALSE", paste(format(file), collapse = ",")))
  }
  run_id <- .tk_text(run_id, "run_id")
  if (is.na(file)) {
    file <- inherits(value, "fs_path") || hash ||
      (is.character(value) && length(value) == 1L && !is.na(value) && nzchar(value) &&
         isTRUE(file.exists(value)) && !isTRUE(dir.exists(value)))
  }
  if (file) {
    if (!(is.character(value) && length(value) == 1L && !is.na(value) && nzchar(value))) {
      .tk_arg_error(sprintf("invalid path for \"%s\" %s: a file is given by one path", name,
                            paste(utils::head(format(value), 1L), collapse = "")))
    }
    path <- enc2utf8(path.expand(as.character(value)))
    .tk_call(tk_record_io, run_id, direction, name, NULL, path, hash)
  } else {
    .tk_call(tk_record_io, run_id, direction, name, .tk_io_value(value, name), NULL, FALSE)
  }
  if (.tasker_env$listening) .tk_drain()
  invisible(TRUE)
}

# A value as the text stored for it.
.tk_io_value <- function(value, name) {
  one <- is.atomic(value) && length(value) == 1L && is.null(dim(value))
  if (one && is.na(value)) return("NA")
  if (one && inherits(value, "POSIXt")) {
    return(format(as.POSIXct(value), "%Y-%m-%dT%H:%M:%OSZ", tz = "UTC"))
  }
  if (one && inherits(value, "Date")) return(format(value, "%Y-%m-%d"))
  if (one && is.factor(value)) return(enc2utf8(as.character(value)))
  if (one && (is.character(value) || is.numeric(value) || is.logical(value))) {
    return(enc2utf8(as.character(value)))
  }
  if (is.atomic(value) || is.list(value)) {
    if (!requireNamespace("jsonlite", quietly = TRUE)) {
      .tk_arg_error(sprintf(paste("invalid value for \"%s\": a vector or list is stored as JSON,",
                                  "which needs the jsonlite package; pass a single value"), name))
    }
    # Named vectors keep their names (jsonlite drops them from atomic vectors).
    if (is.atomic(value) && !is.null(names(value))) value <- as.list(value)
    return(as.character(jsonlite::toJSON(value, auto_unbox = TRUE, null = "null", digits = NA)))
  }
  .tk_arg_error(sprintf("invalid value for \"%s\": a %s cannot be recorded; pass a file path or a value",
                        name, class(value)[[1L]]))
}

#' Inputs and outputs recorded for a run
#'
#' @param run_id The run (default: the current run). An unknown run is an
#'   error of class `tasker_not_found`.
#' @return A data frame, inputs first, each by name: `run_id`, `direction`
#'   (`"input"` or `"output"`), `name`, `value` (a value; `NA` for a file),
#'   `path` (a file's absolute path), `size_bytes` (numeric), `modified`
#'   (POSIXct, the file's modification time), `sha256` (`NA` unless hashed),
#'   `recorded_at` (POSIXct).
#' @examples
#' tasker_config(path = tempfile(fileext = ".db"), quiet = TRUE)
#' run_id <- task_start("examples", "io", quiet = TRUE)
#' add_input("threshold", 0.5)
#' get_run_io()
#' task_complete(quiet = TRUE)
#' @export
get_run_io <- function(run_id = NULL) {
  run_id <- .tk_text(run_id, "run_id")
  if (.tasker_env$listening) .tk_drain()
  .tk_df(.tk_call(tk_run_io, run_id))
}
