# The earlier package's README still shows an older call form with the run id first:
#   subtask_start(run_id, 1, "Load data", items_total = 56)
#   subtask_update(run_id, 1, "RUNNING", percent = 50)
#   task_complete(run_id, "All done")
# Bound to today's formals these put a run id into subtask_name, status or message.
# A run id in such a place is recognised (it must name a run that exists), the call is
# redone with named arguments, and a deprecation warning naming the current form is
# given once per function and session.

.tk_uuid_re <- "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

# Cheap enough for every call: a 36-character string shaped like a UUID.
.tk_looks_like_run <- function(x) {
  is.character(x) && length(x) == 1L && !is.na(x) && nchar(x) == 36L && grepl(.tk_uuid_re, x)
}

.tk_is_known_run <- function(x) {
  r <- tryCatch(.tk_call(tk_resolve, x), tasker_error = function(e) NULL)
  !is.null(r)
}

# The values a call gave by position, in order, read from the frame `env` of the called
# function (where R already bound them). R matches exact names first, then unique
# prefixes, then positions; the formals left after the named ones took the positional
# values in order.
.tk_positional <- function(call, fun, env) {
  args <- as.list(call)[-1L]
  nms <- names(args) %||% rep("", length(args))
  fmls <- names(formals(fun))
  named <- nms[nzchar(nms)]
  used <- intersect(named, fmls)
  for (n in setdiff(named, fmls)) {
    hit <- fmls[startsWith(fmls, n) & !(fmls %in% used)]
    if (length(hit) == 1L) used <- c(used, hit)
  }
  free <- setdiff(fmls, used)[seq_len(sum(!nzchar(nms)))]
  list(values = lapply(free, function(f) get(f, envir = env)), named = used)
}

# Redoes a call of `what` given in the old form: the positional values take the names in
# `old_order`, the named arguments keep theirs.
.tk_legacy_call <- function(what, call, env, old_order, current) {
  fun <- get(what, envir = asNamespace("tasker"))
  pos <- .tk_positional(call, fun, env)
  if (length(pos$values) > length(old_order) || !.tk_is_known_run(pos$values[[1L]])) {
    return(NULL) # not the old form after all: the caller goes on as usual
  }
  args <- stats::setNames(pos$values, old_order[seq_along(pos$values)])
  for (n in pos$named) args[[n]] <- get(n, envir = env)
  .tk_deprecated_form(what, current)
  do.call(fun, args)
}

.tk_deprecated_form <- function(what, current) {
  key <- paste0("legacy_warned_", what)
  if (isTRUE(.tasker_env[[key]])) return(invisible(NULL))
  .tasker_env[[key]] <- TRUE
  warning(structure(
    class = c("tasker_deprecated", "deprecatedWarning", "warning", "condition"),
    list(message = sprintf(paste(
      "%s() with the run id first is the earlier package's old call form;",
      "use %s. (This warning is shown once per session.)"), what, current), call = NULL)))
}
