#' Register a task (and its stage)
#'
#' Creates or updates a task. Fields given as `NULL` never clear stored values.
#' Unlike the earlier package, `stage_order` and `type` are optional and the
#' task's description is not copied onto the stage.
#'
#' @param stage Stage name.
#' @param name Task name.
#' @param type Task type (free text, e.g. `"R"`).
#' @param description Task description.
#' @param script_path,script_filename The script that runs the task;
#'   `script_filename` defaults to `basename(script_path)` and lets
#'   [task_start()] find the task from the running script.
#' @param log_path,log_filename Where the task logs.
#' @param stage_order,task_order Display order of the stage and of the task in it.
#' @param depends_on The tasks this one depends on: a character vector of
#'   `"stage/task"` names (a bare name is a task of the same stage). It replaces
#'   the stored list (`character(0)` clears it; `NULL` keeps it). An unknown task
#'   or a cycle is an error naming it, and nothing is stored.
#' @param conn Ignored.
#' @return The task id, invisibly.
#' @export
register_task <- function(stage, name, type = NULL, description = NULL, script_path = NULL,
                          script_filename = NULL, log_path = NULL, log_filename = NULL,
                          stage_order = NULL, task_order = NULL, conn = NULL,
                          depends_on = NULL) {
  .tk_conn(conn)
  df <- list(stage = .tk_name(if (missing(stage)) NULL else stage, "stage"),
             name = .tk_name(if (missing(name)) NULL else name, "name"))
  if (!is.null(type)) df$type <- .tk_name(type, "type")
  for (nm in c("description", "script_path", "script_filename", "log_path", "log_filename")) {
    v <- get(nm)
    if (!is.null(v)) df[[nm]] <- .tk_text(v, nm)
  }
  for (nm in c("stage_order", "task_order")) {
    v <- get(nm)
    if (!is.null(v)) {
      if (!is.numeric(v) || length(v) != 1L || is.na(v)) {
        .tk_arg_error(sprintf("invalid %s %s: must be a single number", nm, paste(format(v), collapse = ",")))
      }
      df[[nm]] <- as.double(v)
    }
  }
  if (!is.null(depends_on)) df$depends_on <- list(depends_on)
  invisible(register_tasks(df)[[1L]])
}

#' Register many tasks in one transaction
#'
#' @param tasks_df A data frame with columns `stage` and `name` and optionally
#'   `type`, `description`, `stage_order`, `task_order`, `script_path`,
#'   `script_filename`, `log_path`, `log_filename`, `depends_on` (a list column
#'   of character vectors of `"stage/task"` names, `NULL` for none given; or a
#'   character column of one name per row, `NA` for none). Dependencies may name
#'   tasks of the same data frame. All rows are registered, or none.
#' @inheritParams register_task
#' @return Task ids, invisibly.
#' @export
register_tasks <- function(tasks_df, conn = NULL) {
  .tk_conn(conn)
  if (!is.list(tasks_df)) .tk_arg_error("invalid tasks_df: must be a data frame")
  missing_cols <- setdiff(c("stage", "name"), names(tasks_df))
  if (length(missing_cols)) {
    .tk_arg_error(paste("invalid tasks_df: missing required columns:", paste(missing_cols, collapse = ", ")))
  }
  n <- length(tasks_df$stage)
  for (nm in c("stage", "name")) {
    v <- tasks_df[[nm]]
    if (is.factor(v)) v <- as.character(v)
    if (!is.character(v) || anyNA(v) || !all(nzchar(trimws(v)))) {
      .tk_arg_error(sprintf("'%s' must be a non-empty character string (column %s of tasks_df)", nm, nm))
    }
  }
  cols <- list()
  for (nm in c("stage", "name", "type", "description", "script_path", "script_filename",
               "log_path", "log_filename")) {
    if (!is.null(tasks_df[[nm]])) cols[[nm]] <- enc2utf8(as.character(tasks_df[[nm]]))
  }
  for (nm in c("stage_order", "task_order")) {
    v <- tasks_df[[nm]]
    if (!is.null(v)) {
      if (!is.numeric(v) && !all(is.na(v))) {
        .tk_arg_error(sprintf("invalid %s column: must be numeric", nm))
      }
      cols[[nm]] <- as.double(v)
    }
  }
  if (any(lengths(cols) != n)) .tk_arg_error("invalid tasks_df: columns differ in length")
  if (!is.null(tasks_df[["depends_on"]])) cols$depends_on <- .tk_depends_on(tasks_df[["depends_on"]], n)
  invisible(.tk_call(tk_register, cols, as.integer(n)))
}

#' Registered tasks
#'
#' @param stage,name Only this stage / task name (exact match).
#' @inheritParams register_task
#' @return A data frame: `stage_id, stage_name, stage_order, task_id, task_name,
#'   task_type, task_order, description, script_path, script_filename, log_path,
#'   log_filename, created_at, updated_at` (times are POSIXct in UTC).
#' @export
get_registered_tasks <- function(stage = NULL, name = NULL, conn = NULL) {
  .tk_conn(conn)
  stage <- .tk_text(stage, "stage")
  name <- .tk_text(name, "name")
  .tk_df(.tk_call(tk_tasks, stage, name))
}

#' Stages
#'
#' @inheritParams register_task
#' @return A data frame: `stage_id, stage_name, stage_order, description,
#'   created_at, updated_at`.
#' @export
get_stages <- function(conn = NULL) {
  .tk_conn(conn)
  .tk_df(.tk_call(tk_stages))
}

#' Clear the registered tasks
#'
#' Deletes every registered task and stage, after a typed confirmation. Tasks
#' that have runs are kept (their history refers to them): the earlier package
#' deleted them and left their runs behind. To delete runs too, use
#' [purge_tasker_data()] or [task_reset()] first.
#'
#' @param conn Ignored.
#' @param confirmation_string What to type to confirm; with `NULL` and
#'   `interactive = FALSE` nothing is asked.
#' @param interactive Ask for the confirmation.
#' @return `TRUE` when cleared, `FALSE` when cancelled or on an error (which is
#'   shown as a message).
#' @export
clear_registered_tasks <- function(conn = NULL, confirmation_string = "CLEAR TASKS", interactive = TRUE) {
  .tk_conn(conn)
  if (!is.null(confirmation_string) && !(is.character(confirmation_string) && length(confirmation_string) == 1L)) {
    .tk_arg_error("'confirmation_string' must be a single character string or NULL")
  }
  message("WARNING: this deletes every registered task and stage (tasks with runs are kept).")
  if (isTRUE(interactive) || !is.null(confirmation_string)) {
    expected <- confirmation_string %||% "CLEAR TASKS"
    answer <- if (interactive()) readline(sprintf("Type '%s' to confirm: ", expected)) else ""
    if (!identical(answer, expected)) {
      message("Cancelled: nothing was deleted.",
              if (!interactive()) " (Not interactive: pass confirmation_string = NULL, interactive = FALSE.)")
      return(FALSE)
    }
  }
  r <- tryCatch(.tk(tk_delete_tasks(NULL, NULL, "keep")), tasker_error = function(e) {
    message("Could not clear the registered tasks: ", conditionMessage(e))
    NULL
  })
  if (is.null(r)) return(FALSE)
  message(sprintf("Deleted %d task(s) and %d stage(s).%s", as.integer(r$tasks), as.integer(r$stages),
                  if (length(r$kept)) sprintf(" Kept %d with runs: %s.", length(r$kept),
                                              paste(r$kept, collapse = ", ")) else ""))
  TRUE
}

# The depends_on column as the native call takes it: a list of n entries, each
# NULL (keep the stored dependencies) or a character vector of names in UTF-8.
.tk_depends_on <- function(v, n) {
  if (is.factor(v)) v <- as.character(v)
  if (is.character(v)) v <- lapply(v, function(x) if (is.na(x)) NULL else x)
  if (!is.list(v) || length(v) != n) {
    .tk_arg_error("invalid depends_on: must be a list of character vectors, one per task")
  }
  lapply(seq_len(n), function(i) {
    x <- v[[i]]
    if (is.null(x)) return(NULL)
    if (is.factor(x)) x <- as.character(x)
    if (!is.character(x) || anyNA(x)) {
      .tk_arg_error(sprintf("invalid depends_on %s (task %d): must be \"stage/task\" names",
                            paste(format(x), collapse = ", "), i))
    }
    enc2utf8(x)
  })
}
