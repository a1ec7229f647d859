#' The pipeline as a graph with live state
#'
#' Every registered task with its latest run, the dependencies between tasks
#' (declared with `depends_on` in [register_task()] / [register_tasks()]), and
#' whether each task is *blocked* (an upstream failed, was cancelled or lost, or
#' is blocked itself) or *waiting* (an upstream has not finished). One query.
#'
#' @inheritParams register_task
#' @return An object of class `tasker_dag`: a list with `nodes` (a data frame:
#'   `id` ("stage/task"), `stage_name, task_name, status, run_id, percent,
#'   eta_seconds, lost, start_time, end_time, duration_seconds, wait_seconds,
#'   rank, blocked, waiting, blocked_by, waiting_for`) and `edges` (a data frame:
#'   `from`, the upstream, and `to`). `print()` shows the text form;
#'   `format(x, "dot")` gives Graphviz DOT and `format(x, "mermaid")` a Mermaid
#'   flowchart (no DiagrammeR needed).
#' @examples
#' \dontrun{
#' register_tasks(data.frame(stage = c("ingest", "model"), name = c("load", "fit"),
#'                           depends_on = I(list(NULL, "ingest/load"))))
#' dag <- get_dag()
#' dag
#' writeLines(format(dag, "dot"), "pipeline.dot")
#' }
#' @export
get_dag <- function(conn = NULL) {
  .tk_conn(conn)
  raw <- .tk_call(tk_dag)
  structure(list(nodes = .tk_df(raw$nodes), edges = .tk_df(raw$edges), json = raw$json),
            class = "tasker_dag")
}

#' @rdname get_dag
#' @param x A `tasker_dag` from `get_dag()`.
#' @param format One of `"text"`, `"dot"`, `"mermaid"`, `"json"`.
#' @param ... Ignored.
#' @export
format.tasker_dag <- function(x, format = "text", ...) {
  .tk_call(tk_render_dag, x$json, .tk_text(format, "format"))
}

#' @rdname get_dag
#' @export
print.tasker_dag <- function(x, ...) {
  cat(format(x, "text"))
  invisible(x)
}
