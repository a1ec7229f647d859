# Argument checks. They run before anything opens the database, and their messages
# are those of the earlier package where it had one: scripts match on them in
# tryCatch()/grepl().

# A required name: one non-empty string ("'stage' must be a non-empty character string").
# Called on every transition: no regular expression (trimws() alone costs ~25 us, more
# than the transition's own work in R), and the usual case (a string that does not start
# with white space) is decided by the first test.
.tk_name <- function(x, what) {
  if (is.character(x) && length(x) == 1L && !is.na(x) && nzchar(x)) {
    # Blank: only spaces, tabs and line breaks. NA codes: bytes that are not UTF-8.
    codes <- utf8ToInt(x)
    if (anyNA(codes) || codes[[1L]] > 32L || !all(codes %in% c(9L, 10L, 11L, 12L, 13L, 32L))) {
      return(x) # the native side reads it as UTF-8 whatever its encoding
    }
  } else if (is.factor(x)) {
    return(.tk_name(as.character(x), what))
  }
  .tk_arg_error(sprintf("'%s' must be a non-empty character string", what))
}

# Optional free text (messages, descriptions, paths): NULL or one string, sent as UTF-8.
.tk_text <- function(x, what) {
  if (is.null(x)) return(NULL)
  if (is.factor(x)) x <- as.character(x)
  if (!is.character(x) || length(x) != 1L) {
    .tk_arg_error(sprintf("invalid %s %s: must be a single string", what,
                          paste(utils::head(format(x), 1L), collapse = "")))
  }
  enc2utf8(x)
}

# Statuses as match.arg() takes them (unique prefixes: "COMPLETE" -> "COMPLETED"), also
# in lower case, and with match.arg()'s message when nothing matches. NULL means
# "unchanged" (the earlier package defaulted to "RUNNING", which reopened finished work).
.tk_status <- function(status, choices) {
  if (is.null(status)) return(NULL)
  if (length(status) == 1L && !is.na(hit <- match(status, choices))) return(choices[[hit]]) # the usual case
  if (is.character(status) && length(status) == 1L && !is.na(status)) {
    hit <- pmatch(gsub("[- ]", "_", toupper(trimws(status))), choices)
    if (!is.na(hit)) return(choices[[hit]])
  }
  .tk_arg_error(sprintf("'arg' should be one of %s (got status = %s)",
                        paste(dQuote(choices), collapse = ", "),
                        paste(deparse(status, nlines = 1L), collapse = "")))
}

# A stage or task locator for find_and_update_*: a number (order) or a name.
.tk_locator <- function(x, what) {
  if (is.numeric(x) && length(x) == 1L && !is.na(x)) return(x)
  .tk_name(x, what)
}
