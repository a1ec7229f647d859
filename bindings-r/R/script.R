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
  path <- .tk_script_path()
  if (is.null(path)) NULL else basename(path)
}

# The running script as a full path (what task_start() records with a run), by the
# rules of get_script_filename(); NULL when there is none.
.tk_script_path <- function() {
  # task_start() asks on every call: look only at the frames that hold source()'s
  # `ofile` (exists() does not force anything), then check that the frame is source()'s.
  frames <- sys.frames()
  for (i in rev(seq_along(frames))) {
    if (exists("ofile", envir = frames[[i]], inherits = FALSE) && identical(sys.function(i), source)) {
      of <- frames[[i]]$ofile
      if (is.character(of) && length(of) == 1L && !is.na(of)) return(.tk_full_path(of))
    }
  }
  if (isNamespaceLoaded("knitr")) {
    input <- tryCatch(get("current_input", envir = asNamespace("knitr"))(dir = TRUE),
                      error = function(e) NULL)
    if (is.character(input) && length(input) == 1L && !is.na(input) && nzchar(input)) {
      return(.tk_full_path(input))
    }
  }
  .tk_launch_script()
}

# The script R was started with (or, in a callr subprocess, its parent's), as a full
# path. R's arguments do not change, so it is worked out once per process (task_start()
# asks on every call) and resolved against the directory current at that time.
.tk_launch_script <- function() {
  known <- .tasker_env$launch_script
  if (!is.null(known)) return(known[[1L]])
  script <- .tk_script_arg(commandArgs(trailingOnly = FALSE), full = TRUE)
  if (!is.null(script) && .tk_is_launcher(basename(script))) script <- .tk_parent_script()
  if (!is.null(script)) script <- .tk_full_path(script)
  .tasker_env$launch_script <- list(script)
  script
}

# An absolute path for a file named relative to the working directory, or to the
# directory the process was started in ($PWD: a script may setwd() before it calls
# task_start()). A file found nowhere keeps its name, made absolute.
.tk_full_path <- function(path, dirs = c(getwd(), Sys.getenv("PWD"))) {
  if (grepl("^(/|~|[A-Za-z]:)", path)) return(normalizePath(path, winslash = "/", mustWork = FALSE))
  dirs <- dirs[nzchar(dirs)]
  for (d in dirs) {
    f <- file.path(d, path)
    if (file.exists(f)) return(normalizePath(f, winslash = "/", mustWork = FALSE))
  }
  if (length(dirs)) path <- file.path(normalizePath(dirs[[1L]], winslash = "/", mustWork = FALSE), path)
  normalizePath(path, winslash = "/", mustWork = FALSE)
}

# This process's command line as one string, the way the core writes it (arguments
# holding spaces or quotes are quoted).
.tk_command_line <- function(args = NULL) {
  if (is.null(args)) {
    # Once per process, as for the script.
    if (is.null(.tasker_env$command_line)) {
      .tasker_env$command_line <- list(.tk_command_line(commandArgs(trailingOnly = FALSE)))
    }
    return(.tasker_env$command_line[[1L]])
  }
  if (!length(args)) return(NULL)
  odd <- grepl("[ \t\"']", args)
  args[odd] <- encodeString(args[odd], quote = "\"")
  enc2utf8(paste(args, collapse = " "))
}

# The script among R's own arguments: --file=x (Rscript) or -f x (R CMD BATCH, R -f);
# its file name, or with `full` the path as given.
.tk_script_arg <- function(args, full = FALSE) {
  stop_at <- match("--args", args)
  if (!is.na(stop_at)) args <- args[seq_len(stop_at - 1L)]
  for (i in seq_along(args)) {
    a <- args[[i]]
    f <- if (startsWith(a, "--file=")) substring(a, 8L) else if (a == "-f" && i < length(args)) args[[i + 1L]]
    if (!is.null(f)) return(if (full) f else basename(f))
  }
  NULL
}

# Scripts that only launch a function in a new R process (callr writes one per call).
.tk_is_launcher <- function(script) grepl("^callr-scr-", script)

# The script of the nearest ancestor process that runs one (callr's child is started by
# the R process that called callr::r()), as a path: relative ones are taken from that
# process's working directory where /proc shows it.
.tk_parent_script <- function(max_depth = 5L) {
  pid <- Sys.getpid()
  for (depth in seq_len(max_depth)) {
    pid <- .tk_ppid(pid)
    if (is.null(pid) || pid <= 1L) return(NULL)
    script <- .tk_script_arg(.tk_cmdline(pid), full = TRUE)
    if (!is.null(script) && !.tk_is_launcher(basename(script))) {
      cwd <- suppressWarnings(Sys.readlink(sprintf("/proc/%d/cwd", pid)))
      if (length(cwd) == 1L && !is.na(cwd) && nzchar(cwd)) {
        return(.tk_full_path(script, dirs = c(cwd, getwd())))
      }
      return(script)
    }
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
