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
#'   \item [get_completion_estimate()] is the core's estimate, the one every
#'     part of tasker shows, from stored progress and the task's history (any
#'     process, no dashboard needed); its interval is always 80%, and
#'     [format_completion_with_ci()] says so (the earlier package wrote "95%"
#'     whatever level it used).
#'   \item Runs record their attempt: `task_start(retry = TRUE)` and
#'     `with_task(retries = n)` make a rerun after a failure the next attempt
#'     of one logical run, counted once by [get_task_stats()]. Runs also record
#'     the script's full path, the command line, the R and tasker versions and
#'     the git commit with a dirty flag, by themselves.
#'   \item `tasker_cluster()` attaches only `packages` on the workers, and
#'     `stop_tasker_cluster()` flushes the workers' progress before stopping.
#'   \item `find_and_update_task()` and `find_and_update_subtask()` check their
#'     arguments before looking anything up (the earlier package opened the
#'     database first); arguments are checked before the database is touched
#'     everywhere, with the earlier package's messages where it had one
#'     ("'arg' should be one of", "Either provide 'filename' or both 'stage'
#'     and 'task'", "'stage' must be a non-empty character string").
#'   \item Finishing twice is not an error: completing a completed run or
#'     subtask (failing a failed one, ...) succeeds and changes nothing.
#'   \item The older call form with the run id first, as in
#'     `subtask_start(run_id, 1, "Load data")`, still works, with a
#'     deprecation warning (class `tasker_deprecated`) once per function and
#'     session naming the current form.
#'   \item `tasker_cluster(setup_expr = quote({...}))` runs the quoted code on
#'     every worker (a variable holding it works too); an unquoted `{...}` block
#'     is sent as written.
#'   \item [track()] names its subtask after the function or the variable it is
#'     given (`name =` to choose), never after a deparsed expression.
#'   \item [run_monitor()] serves the dashboard of `tasker serve` (no Shiny) from
#'     background threads and returns at once: the session stays usable, and
#'     [stop_monitor()] stops it. Its default `port` is 8750 (the earlier
#'     package let Shiny choose) and `launch.browser` defaults to
#'     `interactive()`; an address other than loopback needs a `token`.
#'   \item There is no reporter daemon: the process that starts a run samples
#'     its own CPU, memory, I/O, threads, open files and child processes every
#'     `sample_interval_s` seconds (10 by default) on its writer thread, and
#'     stores the samples with the run ([get_run_samples()]). [start_reporter()]
#'     makes sure this process does so (at `collection_interval`), and starts
#'     and supervises nothing; [stop_reporter()] stops sampling in this process
#'     only; [check_reporter()] describes this process's sampling and its latest
#'     sample (`NULL` when it is off), not a daemon per host; a host name other
#'     than this one is an error. [collect_process_metrics()] takes one sample
#'     now as a one-row data frame (the earlier package returned a list) and
#'     writes nothing; `cpu_percent` is `NA` on the first call for a process, as
#'     before. Crashed scripts are detected without a daemon too (the `lost`
#'     column of [get_task_status()]).
#' }
#'
#' @section Functions of the earlier package that are not here:
#' Every other exported function of the earlier package exists here with the
#' same arguments. These do not, for the reason given, with what to use
#' instead:
#' \describe{
#'   \item{`get_reporter_database_status()`, `reporter_main_loop()`,
#'     `write_process_metrics()`, `setup_reporter_schema()`}{The reporter
#'     daemon's own machinery: there is no daemon (the process that starts a run
#'     samples its own CPU, memory, I/O and child processes: [start_reporter()],
#'     [get_run_samples()]), and the schema is created and migrated
#'     automatically. [check_reporter()] shows this process's sampling, [health()]
#'     whether tracking reaches its database.}
#'   \item{`cleanup_old_metrics()`}{Not needed: the core thins the samples of
#'     long runs by itself (a week-long run keeps a few thousand rows), and a
#'     run's samples go with the run. Old runs: `tasker purge` on the command
#'     line, or [task_reset()] / [purge_tasker_data()].}
#'   \item{`migrate_stage_runs()`}{Not provided: runs stay with the task they
#'     ran as. Register the task under its new stage; [get_task_history()]
#'     still shows the old runs under the old stage.}
#'   \item{`get_monitor_connection()`, `get_database_queries()`}{Helpers of the
#'     earlier Shiny monitor's "SQL Queries" tab. Use [get_db_connection()] and
#'     query `pg_stat_activity` yourself.}
#'   \item{`setup_logging()`, `setup_shiny_logging()`,
#'     `setup_database_logging()`, `get_logging_config()`}{Wrappers around the
#'     logger package. tasker's own messages go through `message()` (silenced
#'     by `quiet = TRUE` or `options(tasker.quiet = TRUE)`); use logger
#'     directly for your pipeline's logs.}
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
