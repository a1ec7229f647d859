#' tasker: track the progress of data pipelines
#'
#' Scripts report stages, tasks (runs) and subtasks with their progress; anyone
#' can ask what is running, how far along it is, when it will finish and what
#' failed, from R, Python, C, the `tasker` command line or its web dashboard,
#' all reading one SQLite or PostgreSQL database. The work is done by a Rust
#' core: progress calls ([subtask_increment()], [subtask_update()]) only touch
#' memory and a background thread writes them every 200 ms, so they cost about
#' as much as an empty R function call; transitions (starts, completions,
#' failures) are durable when they return.
#'
#' The functions and argument names are those of the earlier R package named
#' tasker, so its scripts keep working. Configuration: [tasker_config()].
#' Scoped helpers: [with_task()], [with_subtask()], [track()]. Parallel
#' workers: [tasker_cluster()], [export_tasker_context()], [tasker_flush()].
#'
#' @section Differences from the earlier tasker package:
#' Where the earlier package was silent or wrong, this one is strict:
#' \itemize{
#'   \item An unknown run or subtask is an error (class `tasker_not_found`),
#'     not a silent `TRUE`; so is `tasker_context()` with an unknown run.
#'   \item `task_update()` and `subtask_update()` without `status` record
#'     progress only and leave the status unchanged; they never reopen
#'     finished work (the earlier default status was `"RUNNING"`).
#'   \item Terminal states (`COMPLETED`, `FAILED`, `SKIPPED`, `CANCELLED`) are
#'     sticky: changing them is an error of class `tasker_invalid_transition`
#'     unless `reset = TRUE`. `task_fail()` no longer overwrites a completed run.
#'   \item Subtask numbers are allocated by the database, not by an in-memory
#'     counter, so restarted scripts and parallel workers never overwrite each
#'     other. Starting an existing number again is an error unless
#'     `restart = TRUE`, which clears its progress: no stale progress is kept.
#'     `subtask_start()` returns the subtask number.
#'   \item Percentages are derived from the items whenever `items_total` is
#'     known; a run's percentage is derived from its subtasks unless set.
#'   \item A crashed script shows up as lost: runs record their host, pid and
#'     process start time and a heartbeat, and the `lost` column of
#'     [get_task_status()] / [get_active_tasks()] is `TRUE` for an active run
#'     whose process is gone or whose heartbeat stopped. No reporter daemon is
#'     needed.
#'   \item Results are data frames with `POSIXct` (UTC, sub-second) time columns
#'     and the same columns and types from SQLite and PostgreSQL.
#'     [get_task_status()] also lists registered tasks that never ran (as
#'     `NOT_STARTED`); [get_active_tasks()] shows concurrent runs of one task.
#'   \item Errors are conditions of class `c("tasker_<kind>", "tasker_error",
#'     "error", "condition")` with kind `argument`, `not_found`,
#'     `invalid_transition`, `already_exists`, `config` or `storage`, and the
#'     bad value in the message.
#'   \item Arguments given to `tasker_config()` always take effect (no need for
#'     `reload = TRUE`). Without configuration, an SQLite database at
#'     `~/.local/share/tasker/tasker.db` is used instead of failing.
#'   \item `task_start()` registers an unknown stage/task on the fly.
#'     `register_task()` does not need `type` or `stage_order` and does not copy
#'     the task description onto the stage. `register_tasks()` is one
#'     transaction.
#'   \item The `conn` argument is accepted and ignored (with a one-time
#'     message): tasker keeps one connection per process.
#'   \item Progress messages are printed at most once per second per run;
#'     `options(tasker.quiet = TRUE)` silences all messages.
#'   \item `subtask_start()` does not complete the previous subtask; completing
#'     a run completes its open subtasks, failing it fails them.
#'   \item `subtask_complete("done")` takes a string as the message.
#'   \item `purge_tasker_data()` deletes runs but keeps registered tasks;
#'     `setup_tasker_db()` never drops data (migrations are automatic).
#'   \item [get_completion_estimate()] reads stored progress (any process, no
#'     dashboard needed); [format_completion_with_ci()] shows the confidence
#'     level actually used.
#'   \item `tasker_cluster()` attaches only `packages` on the workers, and
#'     `stop_tasker_cluster()` flushes the workers' progress before stopping.
#'   \item The process reporter, Shiny monitor and logging helpers are not
#'     part of this package: the `tasker` command line (`tasker serve`,
#'     `tasker status`, `tasker watch`) replaces them.
#' }
#'
#' @section Forked workers:
#' A child of `parallel::mclapply()` exits without running exit hooks, so
#' progress it has not written yet (at most 200 ms) would be lost. Call
#' [tasker_flush()] at the end of the function it runs, or use [track()] /
#' [with_subtask()], which flush in forked children on their way out.
#'
#' @keywords internal
"_PACKAGE"
