"""The functional API, with the function and keyword names of the R package
``tasker`` (``task_start``, ``subtask_increment``, ``get_task_status``, ...).

Differences from the R package, on purpose: an unknown run or subtask raises
(``NotFoundError``) instead of silently doing nothing; ``status`` arguments are
optional and mean "unchanged"; finished runs cannot change status without
``reset``; subtask numbers come from the database, so several processes can
start subtasks of one run. ``tracker=`` replaces R's ``conn=``; ``quiet`` is
accepted and ignored (messages go to the ``tasker`` logger).
"""
from __future__ import annotations

import os
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only (typing loads `re`)
    from datetime import datetime
    from typing import Any, Dict, List, Optional, Union

from . import _tasker
from ._core import (
    Run,
    Tracker,
    _LAST_SUBTASK,
    _current,
    _set_active,
    _st,
    current_run,
    default_tracker,
    main_script,
)
from . import _core
if TYPE_CHECKING:  # pragma: no cover
    from ._core import StatusLike
    from ._records import (
        Health,
        IoRecord,
        ItemOutcomeRecord,
        LogRecord,
        RunRecord,
        SampleRecord,
        StageRecord,
        SubtaskRecord,
        TaskRecord,
        TaskStatsRecord,
    )

__all__ = [
    "register_task",
    "register_tasks",
    "task_start",
    "task_update",
    "task_complete",
    "task_fail",
    "subtask_start",
    "subtask_update",
    "subtask_increment",
    "subtask_complete",
    "subtask_fail",
    "get_task_status",
    "get_active_tasks",
    "get_task_history",
    "get_subtask_progress",
    "get_registered_tasks",
    "get_stages",
    "get_task_stats",
    "get_run_samples",
    "get_run_io",
    "get_run_logs",
    "get_item_outcomes",
    "health",
    "purge_tasker_data",
    "tasker_context",
]

_UNSET: Any = object()

# Runs this process started or attached to, by id (the R package's connections).
_RUNS: Dict[str, Run] = {}


def _tracker(tracker: Optional[Tracker]) -> Tracker:
    return tracker if tracker is not None else default_tracker()


def _run(run_id: Optional[str], tracker: Optional[Tracker]) -> Run:
    if run_id is None:
        r = current_run()
        if r is None:
            raise _tasker.NotFoundError(
                "run not found: no active run in this process "
                "(call task_start() first, use `with tasker.task(...)`, or pass run_id=)"
            )
        if tracker is None or r.tracker is tracker:
            return r
        run_id = r.run_id
    r = _RUNS.get(run_id)
    if r is not None and (tracker is None or r.tracker is tracker):
        return r
    r = _tracker(tracker).attach(run_id)
    _RUNS[run_id] = r
    return r


def _number(run: Run, subtask_number: Optional[int]) -> int:
    if subtask_number is not None:
        return subtask_number
    st = _LAST_SUBTASK.get(run.run_id)
    if st is None:
        raise _tasker.NotFoundError(
            f"subtask not found: no subtask of run {run.run_id} was started in this process "
            "(call subtask_start() first or pass subtask_number=)"
        )
    return st.number


# -- registration ---------------------------------------------------------------


def register_task(
    stage: str,
    name: str,
    type: Optional[str] = None,
    description: Optional[str] = None,
    script_path: Optional[str] = None,
    script_filename: Optional[str] = None,
    log_path: Optional[str] = None,
    log_filename: Optional[str] = None,
    stage_order: Optional[int] = None,
    task_order: Optional[int] = None,
    *,
    tracker: Optional[Tracker] = None,
) -> int:
    """Registers (or updates) a task; returns its id."""
    return _tracker(tracker).register_task(
        stage,
        name,
        type,
        description,
        script_path,
        script_filename,
        log_path,
        log_filename,
        stage_order,
        task_order,
    )


def register_tasks(tasks_df: Any, *, tracker: Optional[Tracker] = None) -> List[int]:
    """Registers every row of a DataFrame (or an iterable of dicts) in one transaction.
    Columns: stage, name, type, stage_order, and optionally description, script_path,
    script_filename, log_path, log_filename, task_order."""
    return _tracker(tracker).register_tasks(tasks_df)


# -- runs -----------------------------------------------------------------------


def _script_name() -> Optional[str]:
    path = main_script().path
    return os.path.basename(path) if path else None


def task_start(
    stage: Optional[str] = None,
    task: Optional[str] = None,
    total_subtasks: Optional[int] = None,
    message: Optional[str] = None,
    version: Optional[str] = None,
    git_commit: Optional[str] = None,
    quiet: bool = False,
    *,
    active: bool = True,
    metadata: Optional[Dict[str, Any]] = None,
    script_path: Optional[str] = None,
    log_path: Optional[str] = None,
    attempt: Optional[int] = None,
    retry: bool = False,
    tracker: Optional[Tracker] = None,
) -> str:
    """Starts a run and returns its run_id; it becomes the active run of this process
    (unless ``active=False``). Without ``stage``/``task``, they are looked up from the
    registered task whose script_filename is this script's file name.

    ``retry=True`` makes the run the next attempt of the task's latest run when that
    one FAILED or was lost (``attempt`` and ``retry_of`` are recorded); ``attempt=n``
    gives the number explicitly. The script, command line, git commit and dirty flag
    are recorded by themselves."""
    t = _tracker(tracker)
    script_filename = None
    if stage is None or task is None:
        script = _script_name()
        if not script:
            raise _tasker.ArgumentError(
                "invalid stage/task None: could not detect the script file name; pass stage= and task="
            )
        matches = [r for r in t.registered_tasks() if r.script_filename == script]
        if not matches:
            raise _tasker.ArgumentError(
                f"invalid stage/task None: no registered task has script_filename {script!r}; "
                "register it or pass stage= and task="
            )
        stage = stage if stage is not None else matches[0].stage_name
        task = task if task is not None else matches[0].task_name
        script_filename = script
    run = t.task(
        stage,
        task,
        total_subtasks,
        message=message,
        version=version,
        git_commit=git_commit,
        script_path=script_path,
        script_filename=script_filename,
        log_path=log_path,
        metadata=metadata,
        attempt=attempt,
        retry=retry,
    )
    _RUNS[run.run_id] = run
    if active:
        _set_active(run)
    return run.run_id


def task_update(
    status: Optional[StatusLike] = None,
    current_subtask: Optional[int] = None,
    overall_percent: Optional[float] = None,
    message: Optional[str] = None,
    error_message: Optional[str] = None,
    error_detail: Optional[str] = None,
    quiet: bool = False,
    *,
    run_id: Optional[str] = None,
    tracker: Optional[Tracker] = None,
) -> None:
    """Updates run progress (memory only) and, when ``status`` is given, moves the run to it."""
    run = _run(run_id, tracker)
    if current_subtask is not None or overall_percent is not None or (message is not None and status is None):
        run.update(current_subtask, overall_percent, message if status is None else None)
    if status is not None:
        run.set_status(
            _st(status) or "",
            message=message,
            error_message=error_message,
            error_detail=error_detail,
        )
    elif error_message is not None or error_detail is not None:
        raise _tasker.ArgumentError(
            f"invalid error_message {error_message!r}: give it with status='FAILED' (or use task_fail)"
        )


def _forget(run: Run) -> None:
    from . import _core

    if _core._active is run:
        _set_active(None)


def task_complete(
    message: Optional[str] = None,
    quiet: bool = False,
    *,
    run_id: Optional[str] = None,
    tracker: Optional[Tracker] = None,
) -> None:
    """Completes the run (and its open subtasks)."""
    run = _run(run_id, tracker)
    run.complete(message)
    _forget(run)


def task_fail(
    error_message: str,
    error_detail: Optional[str] = None,
    quiet: bool = False,
    *,
    run_id: Optional[str] = None,
    tracker: Optional[Tracker] = None,
) -> None:
    """Marks the run FAILED (its open subtasks too) with an error message and detail."""
    run = _run(run_id, tracker)
    run.fail(error_message, error_detail)
    _forget(run)


# -- subtasks -------------------------------------------------------------------


def subtask_start(
    subtask_name: str,
    items_total: Optional[int] = None,
    message: Optional[str] = None,
    quiet: bool = False,
    *,
    run_id: Optional[str] = None,
    subtask_number: Optional[int] = None,
    restart: bool = False,
    tracker: Optional[Tracker] = None,
) -> int:
    """Starts a subtask of the run and returns its number; later subtask_* calls
    without ``subtask_number`` refer to it."""
    run = _run(run_id, tracker)
    return run.subtask(subtask_name, items_total, message=message, number=subtask_number, restart=restart).number


def subtask_update(
    status: Optional[StatusLike] = None,
    percent: Optional[float] = None,
    items_complete: Optional[int] = None,
    message: Optional[str] = None,
    error_message: Optional[str] = None,
    quiet: bool = False,
    *,
    error_detail: Optional[str] = None,
    items_total: Optional[int] = None,
    run_id: Optional[str] = None,
    subtask_number: Optional[int] = None,
    tracker: Optional[Tracker] = None,
) -> None:
    """Sets subtask progress (memory only) and, when ``status`` is given, moves it there."""
    run = _run(run_id, tracker)
    n = _number(run, subtask_number)
    if percent is not None or items_complete is not None or items_total is not None or (
        message is not None and status is None
    ):
        run.subtask_update(n, items_complete, percent, message if status is None else None, items_total)
    if status is not None:
        run.subtask_set_status(
            n, _st(status) or "", message=message, error_message=error_message, error_detail=error_detail
        )
    elif error_message is not None or error_detail is not None:
        name, value = ("error_message", error_message) if error_message is not None else ("error_detail", error_detail)
        raise _tasker.ArgumentError(
            f"invalid {name} {value!r}: give it with status='FAILED' (or use subtask_fail)"
        )


def _subtask_increment_slow(
    increment: Any = 1,
    *,
    run_id: Optional[str] = None,
    subtask_number: Optional[int] = None,
    tracker: Optional[Tracker] = None,
) -> None:
    """``subtask_increment`` with explicit arguments, or when its fast path (the
    native function) finds no current run or no subtask started for it here."""
    run = _run(run_id, tracker)
    n = subtask_number if subtask_number is not None else _number(run, None)
    run.subtask_increment(n, increment)


# Native: its common form (no arguments) reads _core's state directly, at about
# the cost of the handle's own `st.increment()`.
subtask_increment = _tasker.subtask_increment
_tasker._register_functional(_current.get, vars(_core), _LAST_SUBTASK, _RUNS, _subtask_increment_slow)


def subtask_complete(
    items_completed: Union[int, str, None] = None,
    message: Optional[str] = None,
    quiet: bool = False,
    *,
    run_id: Optional[str] = None,
    subtask_number: Optional[int] = None,
    tracker: Optional[Tracker] = None,
) -> None:
    """Completes the subtask, optionally setting its final item count.
    ``subtask_complete("done")`` is read as a message."""
    items: Optional[int]
    if isinstance(items_completed, str):
        if message is not None:
            raise _tasker.ArgumentError(
                f"invalid items_completed {items_completed!r}: must be a count (the message is given too)"
            )
        items, message = None, items_completed
    else:
        items = items_completed
    run = _run(run_id, tracker)
    n = _number(run, subtask_number)
    if items is not None:
        run.subtask_update(n, items)
    run.subtask_set_status(n, "COMPLETED", message=message)


def subtask_fail(
    error_message: str,
    error_detail: Optional[str] = None,
    quiet: bool = False,
    *,
    run_id: Optional[str] = None,
    subtask_number: Optional[int] = None,
    tracker: Optional[Tracker] = None,
) -> None:
    """Marks the subtask FAILED with an error message (the run goes on)."""
    run = _run(run_id, tracker)
    n = _number(run, subtask_number)
    run.subtask_set_status(n, "FAILED", error_message=error_message, error_detail=error_detail)


# -- queries --------------------------------------------------------------------


def get_task_status(
    stage: Optional[str] = None,
    task: Optional[str] = None,
    status: Optional[StatusLike] = None,
    limit: Optional[int] = None,
    *,
    tracker: Optional[Tracker] = None,
) -> List[RunRecord]:
    """The latest run of every registered task (NOT_STARTED for tasks never run)."""
    return _tracker(tracker).task_status(stage, task, status, limit)


def get_active_tasks(*, tracker: Optional[Tracker] = None) -> List[RunRecord]:
    """Every STARTED, RUNNING or PAUSED run."""
    return _tracker(tracker).active_runs()


def get_task_history(
    stage: Optional[str] = None,
    task: Optional[str] = None,
    limit: Optional[int] = 100,
    *,
    status: Optional[StatusLike] = None,
    since: Any = None,
    tracker: Optional[Tracker] = None,
) -> List[RunRecord]:
    """Runs, newest first."""
    return _tracker(tracker).history(stage, task, limit, status=status, since=since)


def get_subtask_progress(
    run_id: Optional[str] = None, *, tracker: Optional[Tracker] = None
) -> List[SubtaskRecord]:
    """The subtasks of a run: by default the active run of this process, else the most
    recently started active run in the database."""
    t = _tracker(tracker)
    if run_id is None:
        r = current_run()
        if r is not None:
            run_id = r.run_id
        else:
            active = [a for a in t.active_runs() if a.run_id is not None and a.start_time is not None]
            if not active:
                raise _tasker.NotFoundError("run not found: no active runs (pass run_id=)")
            run_id = max(active, key=lambda a: a.start_time).run_id  # type: ignore[arg-type,return-value]
    assert run_id is not None
    return t.subtasks(run_id)


def get_registered_tasks(
    stage: Optional[str] = None,
    name: Optional[str] = None,
    *,
    tracker: Optional[Tracker] = None,
) -> List[TaskRecord]:
    """Registered tasks with their stage, in order."""
    return _tracker(tracker).registered_tasks(stage, name)


def get_stages(*, tracker: Optional[Tracker] = None) -> List[StageRecord]:
    """Stages in order."""
    return _tracker(tracker).stages()


def get_task_stats(
    stage: Optional[str] = None,
    task: Optional[str] = None,
    since: Optional[datetime] = None,
    limit: Optional[int] = None,
    *,
    tracker: Optional[Tracker] = None,
) -> List[TaskStatsRecord]:
    """Statistics per task from stored history: runs, success rate, duration
    percentiles (p50/p90/p95/max of completed runs), items per second, last success and
    failure, over runs started ``since`` (at most the latest ``limit`` per task). A run
    and its retries count once: one success with N attempts."""
    return _tracker(tracker).task_stats(stage, task, since, limit)


def _run_id(run_id: Optional[str]) -> str:
    if run_id is not None:
        return run_id
    r = current_run()
    if r is None:
        raise _tasker.NotFoundError("run not found: no active run in this process (pass run_id=)")
    return r.run_id


def get_run_samples(run_id: Optional[str] = None, *, tracker: Optional[Tracker] = None) -> List[SampleRecord]:
    """Resource samples of a run (default: the current run), oldest first: CPU,
    memory, I/O, threads, open files and child processes, taken every
    ``sample_interval_s`` by the process that started the run."""
    return _tracker(tracker).samples(_run_id(run_id))


def get_run_io(run_id: Optional[str] = None, *, tracker: Optional[Tracker] = None) -> List[IoRecord]:
    """Inputs and outputs a run recorded (default: the current run), inputs first."""
    return _tracker(tracker).run_io(_run_id(run_id))


def get_run_logs(
    run_id: Optional[str] = None,
    *,
    level: Optional[Union[str, int]] = None,
    since: Optional[datetime] = None,
    after: Optional[int] = None,
    limit: Optional[int] = None,
    tracker: Optional[Tracker] = None,
) -> List[LogRecord]:
    """Log lines of a run (default: the current run), oldest first; see
    :meth:`Tracker.run_logs` for the filters. Lines from every process and host
    that logged on the run are there."""
    return _tracker(tracker).run_logs(_run_id(run_id), level, since, after, limit)


def get_item_outcomes(
    run_id: Optional[str] = None,
    *,
    subtask: Optional[int] = None,
    outcome: Optional[str] = None,
    limit: Optional[int] = None,
    tracker: Optional[Tracker] = None,
) -> List[ItemOutcomeRecord]:
    """Items of a run's subtasks (default: the current run) that failed or were
    skipped, with why; see :meth:`Tracker.item_outcomes`."""
    return _tracker(tracker).item_outcomes(_run_id(run_id), subtask, outcome, limit)


def health(*, tracker: Optional[Tracker] = None) -> Health:
    """Whether tracking reaches its database, and how many writes wait for it. Never
    waits for the database (see :meth:`Tracker.health`)."""
    return _tracker(tracker).health()


def purge_tasker_data(
    confirmation_string: Optional[str] = "DELETE ALL DATA",
    quiet: bool = False,
    *,
    tracker: Optional[Tracker] = None,
) -> bool:
    """Deletes every recorded run with its subtasks, events, samples and inputs and
    outputs; registered stages and tasks are kept. Returns whether runs were deleted.

    As in the R package: at a terminal the user is asked to type
    ``confirmation_string``; without one (a script, a notebook kernel) nothing is
    deleted unless ``confirmation_string=None`` is passed. To delete old runs only,
    use :meth:`Tracker.purge`.
    """
    if confirmation_string is not None:
        if not (sys.stdin is not None and sys.stdin.isatty()):
            _say("purge_tasker_data: not interactive; pass confirmation_string=None to confirm", quiet, 30)
            return False
        answer = input(f"Type '{confirmation_string}' to delete every recorded run: ")
        if answer != confirmation_string:
            _say("purge_tasker_data: cancelled", quiet, 30)
            return False
    t = _tracker(tracker)
    n = t._call(t._native.delete_runs)
    _set_active(None)
    _say(f"tasker: deleted {n} run(s)", quiet, 20)
    return True


def _say(message: str, quiet: bool, level: int) -> None:
    """A message for the "tasker" logger (``quiet`` silences it, as in R)."""
    if not quiet:
        _core.logger.log(level, "%s", message)


def tasker_context(run_id: Optional[str] = _UNSET, *, tracker: Optional[Tracker] = None) -> Optional[str]:
    """Without arguments: the active run_id (or None). With one: makes that run active
    (``None`` clears it) and returns it."""
    if run_id is _UNSET:
        r = current_run()
        return None if r is None else r.run_id
    if run_id is None:
        _set_active(None)
        return None
    _set_active(_run(run_id, tracker))
    return run_id

