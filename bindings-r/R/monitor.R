#' Live dashboard in the browser
#'
#' Serves the tasker dashboard from this R session: the page, its JSON API, `/metrics`
#' (Prometheus) and `/healthz`, the same server as the `tasker serve` command. It runs
#' in background threads, so the console stays free; [stop_monitor()] stops it (a
#' second `run_monitor()` replaces the first). The earlier package's `run_monitor()`
#' started a Shiny app and blocked the session; this one needs no Shiny.
#'
#' @param port Port to listen on; `0` takes any free port (the returned `url` says which).
#' @param host Address to listen on. Anything but a loopback address needs a `token`
#'   (or the `TASKER_SERVE_TOKEN` environment variable) or `no_auth = TRUE`, exactly as
#'   `tasker serve` refuses it otherwise.
#' @param launch.browser Open the dashboard with [utils::browseURL()] (`TRUE`), or a
#'   function to call with its URL.
#' @param config_file A configuration file to load first, as [tasker_config()] does.
#' @param token A bearer token every request must carry (in a browser, open
#'   `URL?token=TOKEN` once).
#' @param no_auth Serve a non-loopback address without authentication (a trusted
#'   network, or a proxy that authenticates).
#' @param title Title shown on the page.
#' @return Invisibly, a list: `url`, `database` (never with a password), `auth`,
#'   `running`.
#' @examples
#' \dontrun{
#' info <- run_monitor(port = 0, launch.browser = FALSE)
#' readLines(paste0(info$url, "healthz"))
#' stop_monitor()
#' }
#' @export
run_monitor <- function(port = 8750, host = "127.0.0.1", launch.browser = interactive(),
                        config_file = NULL, token = NULL, no_auth = FALSE, title = "tasker") {
  if (!is.numeric(port) || length(port) != 1L || is.na(port) || port != round(port) ||
      port < 0 || port > 65535) {
    .tk_arg_error(sprintf("invalid port %s: a whole number from 0 to 65535",
                          paste(deparse(port), collapse = " ")))
  }
  host <- .tk_text(host, "host")
  if (!is.null(token)) token <- .tk_text(token, "token")
  if (!is.null(config_file)) tasker_config(config_file = config_file, quiet = TRUE)
  bind <- if (grepl(":", host, fixed = TRUE) && !startsWith(host, "[")) {
    sprintf("[%s]:%d", host, as.integer(port))
  } else {
    sprintf("%s:%d", host, as.integer(port))
  }
  info <- .tk_call(tk_monitor_start, bind, token, isTRUE(no_auth), .tk_text(title, "title"))
  if (!.tk_quiet(FALSE)) {
    message(sprintf("tasker dashboard on %s (%s; %s); stop_monitor() stops it",
                    info$url, info$database, info$auth))
  }
  if (is.function(launch.browser)) {
    launch.browser(info$url)
  } else if (isTRUE(launch.browser)) {
    utils::browseURL(info$url)
  }
  invisible(info)
}

#' Stop the dashboard
#'
#' Stops the dashboard [run_monitor()] started: requests in progress finish, its
#' database connections close and its threads end.
#'
#' @return Invisibly, `TRUE` if a dashboard was running, `FALSE` if none was.
#' @export
stop_monitor <- function() {
  invisible(.tk_call(tk_monitor_stop))
}
