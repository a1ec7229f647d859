#' The file name of the running script
#'
#' What [task_start()] without `stage` and `task` looks up in the registered
#' tasks' `script_filename`. In order:
#' \itemize{
#'   \item the file being `source()`d (the innermost, when sources are nested);
#'   \item the document `knitr` is rendering (also through `rmarkdown::render()`);
#'   \item the script given to R: `Rscript file.R` (`--file=`) and
#'     `R CMD BATCH file.R` / `R -f file.R`;
#'   \item in a `callr` subprocess (whose script is a temporary `callr-scr-*`
#'     file), the script of the R process that started it;
#'   \item `NULL` otherwise (e.g. at the console).
#' }
#'
#' @return A file name (without directories) or `NULL`.
#' @export
get_script_filename <- function() {
  for (i in rev(seq_len(sys.nframe()))) {
    if (identical(sys.function(i), base::source)) {
      of <- sys.frame(i)$ofile
      if (is.character(of) && length(of) == 1L && !is.na(of)) return(basename(of))
    }
  }
  if (isNamespaceLoaded("knitr")) {
    input <- tryCatch(get("current_input", envir = asNamespace("knitr"))(), error = function(e) NULL)
    if (is.character(input) && length(input) == 1L && nzchar(input)) return(basename(input))
  }
  script <- .tk_script_arg(commandArgs(trailingOnly = FALSE))
  if (!is.null(script) && .tk_is_launcher(script)) script <- .tk_parent_script()
  script
}

# The script among R's own arguments: --file=x (Rscript) or -f x (R CMD BATCH, R -f).
.tk_script_arg <- function(args) {
  stop_at <- match("--args", args)
  if (!is.na(stop_at)) args <- args[seq_len(stop_at - 1L)]
  for (i in seq_along(args)) {
    a <- args[[i]]
    if (startsWith(a, "--file=")) return(basename(substring(a, 8L)))
    if (a == "-f" && i < length(args)) return(basename(args[[i + 1L]]))
  }
  NULL
}

# Scripts that only launch a function in a new R process (callr writes one per call).
.tk_is_launcher <- function(script) grepl("^callr-scr-", script)

# The script of the nearest ancestor process that runs one (callr's child is started by
# the R process that called callr::r()).
.tk_parent_script <- function(max_depth = 5L) {
  pid <- Sys.getpid()
  for (depth in seq_len(max_depth)) {
    pid <- .tk_ppid(pid)
    if (is.null(pid) || pid <= 1L) return(NULL)
    script <- .tk_script_arg(.tk_cmdline(pid))
    if (!is.null(script) && !.tk_is_launcher(script)) return(script)
  }
  NULL
}

.tk_ppid <- function(pid) {
  stat <- sprintf("/proc/%d/stat", pid)
  if (file.exists(stat)) {
    line <- tryCatch(readLines(stat, n = 1L, warn = FALSE), error = function(e) "")
    # The command name in (...) may hold spaces: the fields that follow come after the last ')'.
    fields <- strsplit(trimws(sub("^.*\\)", "", line)), " ", fixed = TRUE)[[1L]]
    return(suppressWarnings(as.integer(fields[2L])))
  }
  out <- suppressWarnings(tryCatch(system2("ps", c("-o", "ppid=", "-p", pid), stdout = TRUE, stderr = FALSE),
                                   error = function(e) character()))
  if (length(out)) suppressWarnings(as.integer(trimws(out[[1L]]))) else NULL
}

.tk_cmdline <- function(pid) {
  f <- sprintf("/proc/%d/cmdline", pid)
  if (file.exists(f)) {
    raw <- tryCatch(readBin(f, "raw", 1e6), error = function(e) raw())
    if (!length(raw)) return(character())
    ends <- which(raw == as.raw(0L))
    starts <- c(1L, utils::head(ends, -1L) + 1L)
    return(vapply(seq_along(ends), function(k) {
      if (ends[[k]] > starts[[k]]) rawToChar(raw[starts[[k]]:(ends[[k]] - 1L)]) else ""
    }, character(1)))
  }
  out <- suppressWarnings(tryCatch(system2("ps", c("-o", "command=", "-p", pid), stdout = TRUE, stderr = FALSE),
                                   error = function(e) character()))
  if (length(out)) strsplit(trimws(out[[1L]]), " +")[[1L]] else character()
}
