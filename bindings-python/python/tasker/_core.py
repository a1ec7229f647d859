"""The idiomatic API: Tracker, Run, Subtask, the iterator wrapper, the decorator,
the default tracker, logging, callbacks, and what makes handles work in other
processes (pickling and flushing at worker exit)."""
from __future__ import annotations

import atexit
import contextvars
import functools
import os
import sys
import threading
import time
import weakref
from types import TracebackType

# `typing` (with the `re` it loads) and `datetime` are not imported at run time:
# annotations are strings (PEP 563) and the few runtime needs are met below.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from datetime import datetime, timedelta
    from typing import (
        Any,
        Callable,
        Dict,
        Generic,
        Iterable,
        Iterator,
        List,
        NamedTuple,
        Optional,
        Sequence,
        Tuple,
        Type,
        TypeVar,
        Union,
        overload,
    )

    T = TypeVar("T")
    F = TypeVar("F", bound=Callable[..., Any])
else:
    import collections

    Any = object
    T = None

    class Generic:
        """Stands in for typing.Generic: ``Tracked[int]`` works at run time too."""

        __slots__ = ()

        def __class_getitem__(cls, item: object) -> type:
            return cls

    def overload(fn: object) -> object:
        # The implementation that follows each group of overloads replaces them.
        return fn

from . import _tasker
from ._tasker import InvalidTransitionError, TaskerError

if TYPE_CHECKING:  # pragma: no cover
    import multiprocessing.util

    from ._dag import Dag
    from ._records import (
        EventRecord,
        Health,
        IoRecord,
        ItemOutcomeCount,
        ItemOutcomeRecord,
        LogRecord,
        PurgeReport,
        RunRecord,
        SampleRecord,
        StageRecord,
        Status,
        SubtaskRecord,
        TaskRecord,
        TaskStatsRecord,
        TransitionEvent,
    )


# `import tasker` stays cheap (issue: ≤ 20 ms): the records (dataclasses, which
# load `inspect` and `re`), `logging`, `multiprocessing`, `json` and `traceback`
# are imported when first used, not at import. A pipeline that only tracks never
# loads the records at all.


class _LazyRecords:
    """The ``_records`` module, imported on first attribute access."""

    def __getattr__(self, name: str) -> Any:
        from . import _records

        value = getattr(_records, name)
        setattr(self, name, value)
        return value


if TYPE_CHECKING:  # pragma: no cover
    from . import _records as _r
else:
    _r = _LazyRecords()


class _LazyLogger:
    """The "tasker" logger, created on first use; it then replaces this stand-in."""

    def __getattr__(self, name: str) -> Any:
        import logging

        global logger
        logger = logging.getLogger("tasker")
        return getattr(logger, name)


logger: Any = _LazyLogger()
# logging's level numbers, fixed by the standard library.
_DEBUG, _INFO = 10, 20

if TYPE_CHECKING:  # pragma: no cover - aliases for annotations only
    StatusLike = Union[Status, str]
    Callback = Callable[[TransitionEvent], Any]
    RetryOn = Union[Type[BaseException], Tuple[Type[BaseException], ...]]

    _State = Tuple[str, str, Optional[str], int, int, int, int, Optional[str], str]


def _drain_log() -> None:
    """Hands the core's queued warnings (database trouble) to the "tasker" logger."""
    for level, message in _tasker._drain_log():
        logger.log(level, "%s", message)


# ---------------------------------------------------------------------------
# Trackers


class Tracker:
    """An open tracking database. Safe to share between threads; picklable (the copy
    reopens the same database in the process that unpickles it).

    Create one with :func:`tasker.connect`; module-level functions use a default one.
    Writing: :meth:`task` (a :class:`Run`, or with ``retries=`` the
    :class:`Attempts` of a block), :meth:`attach`, :meth:`register_task`.
    Reading (typed records; :func:`tasker.to_pandas` makes DataFrames):
    :meth:`task_status`, :meth:`active_runs`, :meth:`history`, :meth:`run`,
    :meth:`subtasks`, :meth:`task_stats`, :meth:`samples`, :meth:`run_io`,
    :meth:`events`. Operating: :meth:`health`, :meth:`purge`, :meth:`flush`,
    :meth:`close`, callbacks with :meth:`on_status_change`.
    """

    __slots__ = ("_native", "_callbacks", "_lock", "_listener_id", "_runs", "_cores", "__weakref__")

    def __init__(self, native: _tasker.NativeTracker) -> None:
        self._native = native
        self._callbacks: List[Tuple[str, Callback]] = []
        self._lock = threading.Lock()
        # The native handles of runs started or attached here are kept alive:
        # progress pending in a handle that is garbage collected would be lost (a
        # worker drops its unpickled handles after each task). A run leaves when its
        # `with` block ends. (The Run objects themselves are cached weakly: they
        # refer back to this tracker.)
        self._cores: Dict[str, _tasker.RunCore] = {}
        self._runs: "weakref.WeakValueDictionary[str, Run]" = weakref.WeakValueDictionary()
        ref = weakref.ref(self)

        def dispatch(event: Dict[str, Any]) -> None:
            me = ref()
            if me is not None:
                me._dispatch(event)

        self._listener_id = native.add_listener(dispatch)
        _TRACKERS.setdefault(native.state(), self)

    # -- what it is -------------------------------------------------------------

    @property
    def location(self) -> str:
        """Where the database is (never shows a password)."""
        return self._native.location

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._native.backend

    @property
    def source(self) -> str:
        """Which configuration level chose the database (arguments, environment, a file...)."""
        return self._native.source

    def __repr__(self) -> str:
        return f"<tasker.Tracker {self.location}>"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_tracker_from_state, (self._native.state(),))

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------

    def register_task(
        self,
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
        depends_on: Optional[Sequence[str]] = None,
    ) -> int:
        """Registers (or updates) one task; returns its id. None never clears a stored field.

        ``depends_on`` lists the tasks it depends on as ``"stage/task"`` names (a bare
        name is a task of the same stage); it replaces the stored list (``[]`` clears
        it). An unknown task or a cycle raises ArgumentError naming it; nothing is stored."""
        spec = dict(
            depends_on=depends_on,
            stage=stage,
            name=name,
            type=type,
            description=description,
            script_path=script_path,
            script_filename=script_filename,
            log_path=log_path,
            log_filename=log_filename,
            stage_order=stage_order,
            task_order=task_order,
        )
        return self._call(self._native.register_tasks, [spec])[0]

    def register_tasks(self, tasks: Any) -> List[int]:
        """Registers many tasks in one transaction (all or none). ``tasks`` is a pandas
        DataFrame or an iterable of mappings with the keys of :meth:`register_task`."""
        return self._call(self._native.register_tasks, _task_dicts(tasks))

    @overload
    def task(
        self,
        stage: str,
        name: str,
        total_subtasks: Optional[int] = None,
        *,
        retries: None = None,
        **options: Any,
    ) -> "Run": ...

    @overload
    def task(
        self,
        stage: str,
        name: str,
        total_subtasks: Optional[int] = None,
        *,
        retries: int,
        **options: Any,
    ) -> "Attempts": ...

    def task(
        self,
        stage: str,
        name: str,
        total_subtasks: Optional[int] = None,
        *,
        message: Optional[str] = None,
        version: Optional[str] = None,
        git_commit: Optional[str] = None,
        script_path: Optional[Union[str, "os.PathLike[str]"]] = None,
        script_filename: Optional[str] = None,
        log_path: Optional[str] = None,
        log_filename: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        attempt: Optional[int] = None,
        retry: bool = False,
        retries: Optional[int] = None,
        retry_on: Optional[RetryOn] = None,
        retry_delay: Optional[float] = None,
        **extra_metadata: Any,
    ) -> Union["Run", "Attempts"]:
        """Starts a run of ``stage``/``name`` (registering them if new) and returns it.

        Use it as a context manager: the run completes when the block ends, fails with
        the exception's message and traceback if it raises, and is cancelled on
        KeyboardInterrupt. Extra keyword arguments are stored as custom metadata.

        The run records by itself the script (``__main__``'s file, also under
        ``python -m``), the command line, the git commit of the script's repository
        and whether it had local changes, the user and the Python version; give
        ``script_path`` or ``git_commit`` to record others.

        ``retry=True`` marks the run as the next attempt of the task's latest run
        when that one FAILED or was lost (it records ``attempt`` and ``retry_of``);
        ``attempt=n`` gives the number explicitly.

        With ``retries=N`` nothing starts yet: an :class:`Attempts` is returned that
        runs a block up to N + 1 times, each attempt a run of its own::

            for attempt in tracker.task("ingest", "download", retries=3):
                with attempt as run:
                    fetch(run)

        Exceptions that are instances of ``retry_on`` (default ``Exception``) fail the
        attempt and start the next after ``retry_delay`` seconds; the last failure is
        raised.
        """
        options: Dict[str, Any] = dict(
            message=message,
            version=version,
            git_commit=git_commit,
            script_path=script_path,
            script_filename=script_filename,
            log_path=log_path,
            log_filename=log_filename,
            metadata=metadata,
            **extra_metadata,
        )
        if retries is not None:
            return Attempts(
                self,
                stage,
                name,
                total_subtasks,
                retries=retries,
                retry_on=Exception if retry_on is None else retry_on,
                retry_delay=0.0 if retry_delay is None else retry_delay,
                attempt=attempt,
                retry=retry,
                options=options,
            )
        if retry_on is not None or retry_delay is not None:
            what, value = ("retry_on", retry_on) if retry_on is not None else ("retry_delay", retry_delay)
            raise _tasker.ArgumentError(f"invalid {what} {value!r}: it needs retries= (how many times to retry)")
        return self._start(stage, name, total_subtasks, attempt=attempt, retry=retry, **options)

    def _start(
        self,
        stage: str,
        name: str,
        total_subtasks: Optional[int],
        *,
        message: Optional[str] = None,
        version: Optional[str] = None,
        git_commit: Optional[str] = None,
        script_path: Optional[Union[str, "os.PathLike[str]"]] = None,
        script_filename: Optional[str] = None,
        log_path: Optional[str] = None,
        log_filename: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        attempt: Optional[int] = None,
        retry: bool = False,
        **extra_metadata: Any,
    ) -> "Run":
        md: Optional[Dict[str, Any]] = None
        if metadata is not None or extra_metadata:
            if metadata is not None and not isinstance(metadata, dict):
                raise _tasker.ArgumentError(
                    f"invalid metadata {metadata!r}: must be a dict of key/value pairs"
                )
            md = {**(metadata or {}), **extra_metadata}
        metadata_json = None if md is None else _json_dumps(md, default=str)
        if isinstance(attempt, bool):
            raise _tasker.ArgumentError(f"invalid attempt {attempt!r}: must be a number (1 for a first try)")
        if script_path is None:
            script_path = main_script().path
        core = self._call(
            self._native.task_start,
            stage,
            name,
            total_subtasks=total_subtasks,
            message=message,
            version=version,
            git_commit=git_commit,
            script_path=None if script_path is None else os.fspath(script_path),
            script_filename=script_filename,
            log_path=log_path,
            log_filename=log_filename,
            metadata_json=metadata_json,
            attempt=attempt,
            retry=bool(retry),
        )
        # Runs hold pending progress, which must be flushed when the process ends
        # (hooked here, not at connect(): the hook loads multiprocessing).
        _ensure_exit_flush()
        run = Run(self, core)
        self._cores[run.run_id] = core
        self._runs[run.run_id] = run
        return run

    def attach(self, run_id: str) -> "Run":
        """A handle on an existing run (for example one another process started)."""
        run = self._runs.get(run_id)
        if run is None:
            core = self._cores.get(run_id)
            if core is None:
                core = self._call(self._native.attach_run, run_id)
                self._cores[run_id] = core
            _ensure_exit_flush()
            run = Run(self, core)
            self._runs[run_id] = run
        return run

    def flush(self) -> None:
        """Makes this process's pending progress durable now."""
        self._call(self._native.flush)

    def close(self) -> None:
        """Flushes and stops the background writer (it restarts if the tracker is used again)."""
        self._call(self._native.close)

    # -- callbacks --------------------------------------------------------------

    def on_status_change(self, fn: Callback) -> Callback:
        """Calls ``fn(event)`` after every run transition made through this tracker.
        Returns ``fn``, so it also works as a decorator. Exceptions are logged, not raised."""
        with self._lock:
            self._callbacks.append(("run", fn))
        return fn

    def on_subtask_change(self, fn: Callback) -> Callback:
        """Calls ``fn(event)`` after every subtask transition made through this tracker."""
        with self._lock:
            self._callbacks.append(("subtask", fn))
        return fn

    def remove_callback(self, fn: Callback) -> None:
        """Stops calling ``fn``."""
        with self._lock:
            self._callbacks = [(k, f) for (k, f) in self._callbacks if f is not fn]

    def _dispatch(self, row: Dict[str, Any]) -> None:
        # Run transitions are logged at INFO, subtask ones at DEBUG. With nothing
        # to log and no callback, no record is built (nor its module loaded).
        level = _INFO if row.get("subtask_number") is None else _DEBUG
        log = logger.isEnabledFor(level)
        if not log and not self._callbacks:
            return
        event = _r.EventRecord._from_row(row)
        if log:
            what = "run" if event.subtask_number is None else f"subtask {event.subtask_number}"
            msg = f": {event.message}" if event.message else ""
            logger.log(
                level,
                "%s/%s %s %s -> %s%s [%s]",
                event.stage_name,
                event.task_name,
                what,
                event.old_status.value if event.old_status else "-",
                event.new_status.value,
                msg,
                event.run_id,
            )
        kind = "run" if event.subtask_number is None else "subtask"
        for k, fn in list(self._callbacks):
            if k != kind:
                continue
            try:
                fn(event)
            except Exception:
                logger.exception("tasker: callback %r failed on %r; tracking goes on", fn, event)

    # -- queries ----------------------------------------------------------------

    def task_status(
        self,
        stage: Optional[str] = None,
        task: Optional[str] = None,
        status: Optional[StatusLike] = None,
        limit: Optional[int] = None,
    ) -> List[RunRecord]:
        """The latest run of every registered task (NOT_STARTED for tasks never run)."""
        return _r._records(_r.RunRecord, self._call(self._native.task_status, stage, task, _st(status), limit))

    def active_runs(self) -> List[RunRecord]:
        """Every STARTED, RUNNING or PAUSED run, including concurrent runs of one task."""
        return _r._records(_r.RunRecord, self._call(self._native.active_runs))

    def history(
        self,
        stage: Optional[str] = None,
        task: Optional[str] = None,
        limit: Optional[int] = 100,
        *,
        status: Optional[StatusLike] = None,
        since: Optional[datetime] = None,
    ) -> List[RunRecord]:
        """Runs, newest first."""
        since_us = None if since is None else _micros(since)
        return _r._records(
            _r.RunRecord, self._call(self._native.history, stage, task, _st(status), since_us, limit)
        )

    def run(self, run_id: str) -> RunRecord:
        """One run by id (NotFoundError if there is none)."""
        return _r.RunRecord._from_row(self._call(self._native.run, run_id))

    def subtasks(self, run_id: str) -> List[SubtaskRecord]:
        """The subtasks of a run, by number."""
        return _r._records(_r.SubtaskRecord, self._call(self._native.subtasks, run_id))

    def registered_tasks(self, stage: Optional[str] = None, name: Optional[str] = None) -> List[TaskRecord]:
        """Registered tasks, in stage and task order."""
        return _r._records(_r.TaskRecord, self._call(self._native.registered_tasks, stage, name))

    def dag(self) -> "Dag":
        """The pipeline as a graph with live state: every registered task with its latest
        run, the dependencies between them, and whether each is blocked or waiting."""
        from ._dag import Dag

        return Dag(self._call(self._native.dag_json))

    def stages(self) -> List[StageRecord]:
        """Stages, in order."""
        return _r._records(_r.StageRecord, self._call(self._native.stages))

    def events(self, after: int = 0, run_id: Optional[str] = None, limit: int = 1000) -> List[EventRecord]:
        """Stored transitions after event id ``after``, oldest first."""
        return _r._records(_r.EventRecord, self._call(self._native.events, after, run_id, limit))

    def task_stats(
        self,
        stage: Optional[str] = None,
        task: Optional[str] = None,
        since: Optional[datetime] = None,
        limit: Optional[int] = None,
    ) -> List[TaskStatsRecord]:
        """Statistics per task from its stored runs: runs, success rate, duration
        percentiles, throughput, last success and failure. ``since`` keeps runs that
        started then or later; ``limit`` the latest N runs of each task. A run and its
        retries count as one logical run (one success with N attempts)."""
        since_us = None if since is None else _micros(since)
        return _r._records(
            _r.TaskStatsRecord, self._call(self._native.task_stats, stage, task, since_us, limit)
        )

    def samples(self, run_id: str) -> List[SampleRecord]:
        """A run's resource samples (CPU, memory, I/O, children), oldest first. The
        process that started a run samples itself every ``sample_interval_s``."""
        return _r._records(_r.SampleRecord, self._call(self._native.samples, run_id))

    def run_io(self, run_id: str) -> List[IoRecord]:
        """A run's recorded inputs, then its outputs, each by name."""
        return _r._records(_r.IoRecord, self._call(self._native.run_io, run_id))

    def run_logs(
        self,
        run_id: str,
        level: Optional[Union[str, int]] = None,
        since: Optional[datetime] = None,
        after: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[LogRecord]:
        """A run's log lines, oldest first: those of ``level`` or more important,
        logged ``since`` then, stored after line ``after`` (a ``log_id``); ``limit``
        keeps the newest (with ``after``: the first) N. When older lines were dropped
        (``max_log_lines``), a marker line with ``dropped_lines`` comes first."""
        since_us = None if since is None else _micros(since)
        return _r._records(_r.LogRecord, self._call(self._native.run_logs, run_id, level, since_us, after, limit))

    def item_outcomes(
        self,
        run_id: str,
        subtask: Optional[int] = None,
        outcome: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> List[ItemOutcomeRecord]:
        """Items of a run's subtasks that failed or were skipped (``outcome``
        "failed" or "skipped"), by subtask; the first 1,000 per subtask and outcome
        are kept, :meth:`item_outcome_counts` counts them all."""
        return _r._records(_r.ItemOutcomeRecord, self._call(self._native.item_outcomes, run_id, subtask, outcome, limit))

    def item_outcome_counts(self, run_id: str) -> List[ItemOutcomeCount]:
        """How many items of each subtask of a run failed or were skipped (exact)."""
        return _r._records(_r.ItemOutcomeCount, self._call(self._native.item_outcome_counts, run_id))

    def health(self) -> Health:
        """Whether the database is reachable and how many writes wait for it (memory
        and spool files). Never waits for the database."""
        return _r.Health._from_row(self._call(self._native.health))

    def purge(
        self,
        older_than: Union[timedelta, str],
        *,
        stage: Optional[str] = None,
        task: Optional[str] = None,
        keep_failed: bool = False,
        dry_run: bool = False,
    ) -> PurgeReport:
        """Deletes runs that ended longer ago than ``older_than`` (a ``timedelta``, or
        text as ``tasker purge --older-than`` takes it: ``"30d"``, ``"12h"``, ``"2w"``,
        ``"1d12h"``), with their subtasks, events, samples and inputs/outputs. Active
        runs are never deleted (see ``kept_active_runs``); ``keep_failed`` keeps FAILED
        runs; ``stage``/``task`` narrow it; ``dry_run`` only counts."""
        age = _age(older_than)
        from datetime import datetime, timezone

        cutoff = datetime.now(timezone.utc) - age
        matching, deleted, kept = self._call(
            self._native.purge,
            _micros(cutoff),
            stage=stage,
            task=task,
            keep_failed=bool(keep_failed),
            dry_run=bool(dry_run),
        )
        return _r.PurgeReport(
            cutoff=cutoff,
            dry_run=bool(dry_run),
            matching_runs=matching,
            deleted_runs=deleted,
            kept_active_runs=kept,
        )

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            _drain_log()


def _st(status: Optional[StatusLike]) -> Optional[str]:
    if status is None:
        return None
    # A Status is a str whose value is its name.
    return str(status)


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# As the command line: longer ages are typing mistakes (and would overflow).
_MAX_AGE_SECONDS = 365_250 * 86_400


def _age(value: Union[timedelta, str]) -> timedelta:
    """A timedelta, or "30d" / "12h" / "1d12h" (units s, m, h, d, w), as the CLI reads it."""
    from datetime import timedelta

    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise _tasker.ArgumentError(f"invalid older_than {value!r}: must not be negative")
        if value.total_seconds() > _MAX_AGE_SECONDS:
            raise _tasker.ArgumentError(f"invalid older_than {value!r}: too long ago (at most 365250 days)")
        return value
    if not isinstance(value, str):
        raise _tasker.ArgumentError(
            f"invalid older_than {value!r}: must be a timedelta or text such as '30d', '12h', '2w'"
        )
    text = value.strip()
    seconds = 0
    number = ""
    for c in text:
        if c.isdigit():
            number += c
            continue
        if not number or c not in _AGE_UNITS:
            raise _tasker.ArgumentError(
                f"invalid older_than {value!r}: expected numbers with units s, m, h, d or w, e.g. '30d'"
            )
        seconds += int(number) * _AGE_UNITS[c]
        number = ""
    if number or not text:
        raise _tasker.ArgumentError(
            f"invalid older_than {value!r}: a number needs a unit (s, m, h, d or w), e.g. '30d'"
        )
    if seconds > _MAX_AGE_SECONDS:
        raise _tasker.ArgumentError(f"invalid older_than {value!r}: too long ago (at most 365250 days)")
    return timedelta(seconds=seconds)


def _micros(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.astimezone()  # a naive time is local time
    from datetime import datetime, timezone

    delta = t - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _task_dicts(tasks: Any) -> List[Dict[str, Any]]:
    to_dict = getattr(tasks, "to_dict", None)
    if callable(to_dict) and hasattr(tasks, "columns"):  # a pandas DataFrame
        missing = [c for c in ("stage", "name") if c not in tasks.columns]
        if missing:
            raise _tasker.ArgumentError(
                f"invalid tasks_df with columns {list(tasks.columns)!r}: missing required columns: "
                + ", ".join(missing)
            )
        rows = tasks.to_dict(orient="records")
    else:
        rows = list(tasks)
    out = []
    for row in rows:
        if not hasattr(row, "items"):
            raise _tasker.ArgumentError(f"invalid task {row!r}: must be a mapping (a dict)")
        d = {}
        for k, v in row.items():
            if v is not None and isinstance(v, float) and v != v:  # NaN from pandas: missing
                v = None
            if k in ("stage_order", "task_order") and isinstance(v, float) and v.is_integer():
                v = int(v)
            d[str(k)] = v
        out.append(d)
    return out


# Trackers by what they open, so unpickled handles reuse the tracker of this process.
_TRACKERS: "weakref.WeakValueDictionary[_State, Tracker]" = weakref.WeakValueDictionary()
# Trackers opened by unpickling stay open for the life of the process (workers
# unpickle a handle per task; reopening the database each time would be slow).
_KEEP: List[Tracker] = []
_TRACKERS_LOCK = threading.Lock()


def _tracker_from_state(state: _State) -> Tracker:
    _ensure_exit_flush()
    with _TRACKERS_LOCK:
        t = _TRACKERS.get(state)
        if t is None:
            t = Tracker(_tasker.NativeTracker.from_state(state))
            _TRACKERS[state] = t
            _KEEP.append(t)
        return t


def connect(
    url: Optional[str] = None,
    *,
    config_file: Optional[Union[str, "os.PathLike[str]"]] = None,
    start_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
    driver: Optional[str] = None,
    path: Optional[str] = None,
    host: Optional[str] = None,
    port: Optional[int] = None,
    dbname: Optional[str] = None,
    user: Optional[str] = None,
    password: Optional[str] = None,
    schema: Optional[str] = None,
    sslmode: Optional[str] = None,
    sslrootcert: Optional[str] = None,
    flush_interval_ms: Optional[int] = None,
    heartbeat_interval_s: Optional[int] = None,
    lost_after_s: Optional[int] = None,
    busy_timeout_ms: Optional[int] = None,
    hostname: Optional[str] = None,
    idle_disconnect_s: Optional[int] = None,
    sample_interval_s: Optional[int] = None,
    max_log_lines: Optional[int] = None,
) -> Tracker:
    """Opens a tracking database and returns a :class:`Tracker`.

    ``url`` is ``sqlite:///path/file.db``, a file path, or ``postgresql://...``. Without
    it the configuration is resolved: explicit keywords, then ``TASKER_DB_URL`` /
    ``TASKER_DB_*``, then ``.tasker.yml`` (searched upwards from ``start_dir`` or the
    working directory), then ``$XDG_CONFIG_HOME/tasker/config.yml``, then SQLite at
    ``~/.local/share/tasker/tasker.db``.

    Tracking settings (each also a ``TASKER_*`` variable and a ``tracking:`` key of
    ``.tasker.yml``): ``flush_interval_ms`` (progress is written every 200 ms),
    ``heartbeat_interval_s``, ``lost_after_s`` (a run whose heartbeat is older is
    lost), ``busy_timeout_ms`` (SQLite locks), ``hostname``, ``idle_disconnect_s``
    (an unused connection is closed) and ``sample_interval_s`` (how often a process
    samples its own CPU and memory for its runs; default 10, 0 turns it off) and
    ``max_log_lines`` (log lines kept per run; default 10,000).
    """
    native = _tasker.NativeTracker.connect(
        url,
        config_file=None if config_file is None else os.fspath(config_file),
        start_dir=None if start_dir is None else os.fspath(start_dir),
        driver=driver,
        path=path,
        host=host,
        port=port,
        dbname=dbname,
        user=user,
        password=password,
        schema=schema,
        sslmode=sslmode,
        sslrootcert=sslrootcert,
        flush_interval_ms=flush_interval_ms,
        heartbeat_interval_s=heartbeat_interval_s,
        lost_after_s=lost_after_s,
        busy_timeout_ms=busy_timeout_ms,
        hostname=hostname,
        idle_disconnect_s=idle_disconnect_s,
        sample_interval_s=sample_interval_s,
        max_log_lines=max_log_lines,
    )
    return Tracker(native)


_default: Optional[Tracker] = None
_default_lock = threading.Lock()


def default_tracker() -> Tracker:
    """The tracker module-level functions use: set by :func:`configure`, or opened from
    the configuration (``TASKER_DB_URL``, ``.tasker.yml``, ...) on first use."""
    global _default
    t = _default
    if t is None:
        with _default_lock:
            if _default is None:
                _default = connect()
            t = _default
    return t


def configure(url: Optional[str] = None, **options: Any) -> Tracker:
    """Opens a database (as :func:`connect`) and makes it the default tracker."""
    global _default
    t = connect(url, **options)
    with _default_lock:
        _default = t
    return t


def set_default_tracker(tracker: Optional[Tracker]) -> None:
    """Makes ``tracker`` the default (None: resolve from the configuration again on next use)."""
    global _default
    with _default_lock:
        _default = tracker


def flush() -> None:
    """Makes the pending progress of every tracker of this process durable now."""
    _tasker.flush_all()
    _drain_log()


# ---------------------------------------------------------------------------
# Other processes: progress is written by a background thread every 200 ms, so a
# process must flush before it ends. Normal exits run atexit; multiprocessing
# workers end with os._exit (fork) and are stopped by SIGTERM when a Pool is
# terminated (as `with Pool() as p:` does), so their exit is hooked too: in a
# multiprocessing child that uses tasker, SIGTERM (if it had no handler) first
# flushes (at most 10 s), then ends the process as before. The handler is native
# and the flush runs on a thread of its own, so it works whatever the main thread
# is doing. TASKER_SIGTERM_FLUSH=0 keeps the plain SIGTERM.

_hooked_pid = -1
_finalizer: Optional["multiprocessing.util.Finalize"] = None
_hook_lock = threading.Lock()


def _flush_at_exit(*_: Any) -> None:
    try:
        _tasker.flush_all()
        _drain_log()
    except Exception:  # pragma: no cover - never break an exiting process
        pass


def _ensure_exit_flush() -> None:
    """Hooks this process's exit (once per process) so pending progress is written."""
    global _hooked_pid, _finalizer
    pid = os.getpid()
    if _hooked_pid == pid and _finalizer is not None and _finalizer.still_active():
        return
    with _hook_lock:
        if _hooked_pid == pid and _finalizer is not None and _finalizer.still_active():
            return
        import multiprocessing.util

        # Run by multiprocessing's exit path, which ends with os._exit in forked workers.
        _finalizer = multiprocessing.util.Finalize(None, _flush_at_exit, exitpriority=-10)
        _register_after_fork()
        _hooked_pid = pid
        _install_sigterm_flush()


def _install_sigterm_flush() -> None:
    import multiprocessing
    import signal

    # A spawned child unpickles its Process object (with the handles in its
    # arguments) before parent_process() is set; `_inheriting` marks that moment.
    in_worker = multiprocessing.parent_process() is not None or bool(
        getattr(multiprocessing.current_process(), "_inheriting", False)
    )
    if (
        in_worker
        and os.environ.get("TASKER_SIGTERM_FLUSH", "1") != "0"
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        _tasker._install_sigterm_flush()


def _after_fork_in_child(_: object) -> None:
    _ensure_exit_flush()


class _ForkToken:
    pass


def _at_fork_in_child() -> None:
    """Right after a fork: let each tracker with runs start its writer thread now, from
    here, with signals blocked (a thread started later from a progress call would
    inherit the caller's signal mask and could swallow SIGTERM/SIGINT); the SIGTERM
    flush (inherited from the parent, whose thread does not exist here) is redone."""
    if _hooked_pid != -1:
        import signal  # loaded already: the exit hook was installed through it

        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            try:
                _install_sigterm_flush()
            except Exception:  # pragma: no cover - never break a fork
                pass
    for t in list(_TRACKERS.values()):
        for core in list(t._cores.values()):
            try:
                core._after_fork()
            except Exception:  # pragma: no cover - never break a fork
                pass
            break


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_at_fork_in_child)

_FORK_TOKEN = _ForkToken()
_after_fork_registered = False


def _register_after_fork() -> None:
    """Re-hooks the exit flush in children that multiprocessing forks (it clears their
    inherited finalizers). Registered with the first hook rather than at import:
    a process that never tracked has nothing its children must re-hook (they hook
    themselves when they track)."""
    global _after_fork_registered
    if not _after_fork_registered:
        import multiprocessing.util

        multiprocessing.util.register_after_fork(_FORK_TOKEN, _after_fork_in_child)
        _after_fork_registered = True


atexit.register(_flush_at_exit)


# ---------------------------------------------------------------------------
# Active run (for the functional API and current_run())

_current: "contextvars.ContextVar[Optional[Run]]" = contextvars.ContextVar("tasker_current_run", default=None)
_active: Optional["Run"] = None


def current_run() -> Optional["Run"]:
    """The run of the innermost ``with tracker.task(...)`` / ``@tracked`` call, else the
    run made active by ``task_start()``, else None."""
    r = _current.get()
    return r if r is not None else _active


def _set_active(run: Optional["Run"]) -> None:
    global _active
    _active = run


def _error_info(exc: BaseException, tb: Optional[TracebackType]) -> Tuple[str, str]:
    name = type(exc).__name__
    text = str(exc)
    message = f"{name}: {text}" if text else name
    import traceback

    detail = "".join(traceback.format_exception(type(exc), exc, tb))
    return message, detail


def _finish_with(
    handle: Union["Run", "Subtask"],
    exc: Optional[BaseException],
    tb: Optional[TracebackType],
) -> None:
    """What leaving a ``with`` block does to a run or subtask."""
    try:
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            handle.complete()
        elif isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
            handle.cancel(type(exc).__name__)
        else:
            message, detail = _error_info(exc, tb)
            handle.fail(message, detail)
    except InvalidTransitionError:
        pass  # finished inside the block already (completed, skipped, failed by hand)
    except TaskerError as e:
        if exc is None:
            raise
        logger.warning("tasker: could not record the end of %r: %s", handle, e)
    finally:
        _drain_log()


class Run(_tasker.Run):
    """One run of a task: a context manager, picklable, safe to share between threads.

    Start one with :meth:`Tracker.task` or :func:`tasker.task`::

        with tasker.task("ingest", "download", total_subtasks=2) as run:
            for url in run.track(urls, "fetch"):        # a subtask counting items
                fetch(url)
            with run.subtask("parse", items_total=n) as st:
                st.increment()                          # memory only
            run.add_output("rows", n)

    Leaving the block completes the run; an exception fails it (message and
    traceback) and is raised; KeyboardInterrupt cancels it. Without ``with``,
    finish it yourself: :meth:`complete`, :meth:`fail`, :meth:`skip`,
    :meth:`cancel` (:meth:`pause`/:meth:`resume` in between). Transitions are
    durable when they return; progress (``update``, ``subtask_increment``,
    ``subtask_update``) only touches memory and is written every 200 ms.
    Subtasks can also be driven by number (``subtask_start`` returns it).
    ``record()``, ``subtasks()``, ``io()`` and ``samples()`` read back what is
    stored.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def tracker(self) -> Tracker: ...

    def __repr__(self) -> str:
        return f"<tasker.Run {self.stage}/{self.task} run_id={self.run_id}>"

    def _repr_html_(self) -> str:
        """The run as stored now, with its subtasks, as tables in notebooks."""
        from ._html import run_html

        return run_html(self)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_run_from_state, (self.tracker._native.state(), self.run_id))

    def __enter__(self) -> "Run":
        token = _current.set(self)
        _TOKENS.setdefault(id(self), []).append(token)
        if _active is None:
            _set_active(self)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        tokens = _TOKENS.get(id(self))
        if tokens:
            try:
                _current.reset(tokens.pop())
            except ValueError:  # pragma: no cover - left in another context
                pass
            if not tokens:
                _TOKENS.pop(id(self), None)
        if _active is self:
            _set_active(None)
        if exc is not None:
            self._fail_orphans(exc, tb)
        _finish_with(self, exc, tb)
        _ORPHANS.pop(self.run_id, None)
        self.tracker._cores.pop(self.run_id, None)

    def _fail_orphans(self, exc: BaseException, tb: Optional[TracebackType]) -> None:
        """Subtasks of `track()` loops left early by this exception fail with it."""
        orphans = _ORPHANS.pop(self.run_id, [])
        for st in orphans:
            _finish_with(st, exc, tb)

    def subtask(
        self,
        name: str,
        items_total: Optional[int] = None,
        *,
        message: Optional[str] = None,
        number: Optional[int] = None,
        restart: bool = False,
    ) -> "Subtask":
        """Starts a subtask now and returns it. As a context manager it completes at the
        end of the block and fails (with the traceback) if the block raises."""
        n = self.subtask_start(name, items_total, message=message, number=number, restart=restart)
        st = Subtask(self, n)
        _LAST_SUBTASK[self.run_id] = st
        return st

    def track(
        self,
        iterable: Iterable[T],
        name: str,
        total: Optional[int] = None,
        *,
        display: bool = False,
        message: Optional[str] = None,
        file: Any = None,
    ) -> "Tracked[T]":
        """Iterates over ``iterable`` as a subtask named ``name``, counting each item.

        The subtask completes when the loop ends and fails if the iterable raises. If
        the loop body raises, the subtask fails with that error when the enclosing
        ``with tracker.task(...)`` ends (or use ``with run.track(...) as items:``).
        ``total`` defaults to ``len(iterable)`` when it has one. ``display=True`` draws
        a progress bar on stderr (or ``file``).
        """
        if total is None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        st = self.subtask(name, total, message=message)
        return Tracked(st, iterable, total, display, file, name)

    def record(self) -> RunRecord:
        """The run as stored now."""
        return self.tracker.run(self.run_id)

    def status(self) -> Status:
        """The stored status."""
        return self.record().status

    def subtasks(self) -> List[SubtaskRecord]:
        """The run's subtasks as stored now."""
        return self.tracker.subtasks(self.run_id)

    def add_input(self, name: str, value: Any, *, hash: bool = False) -> None:
        """Records an input of the run under ``name`` (recording a name again replaces it).

        An ``os.PathLike`` (``pathlib.Path``) records a file: its absolute path, size
        and modification time, and with ``hash=True`` the SHA-256 of its content. A
        ``str`` is recorded as it is, numbers as their text, ``True``/``False`` as
        ``true``/``false`` and other values (lists, dicts, None) as JSON. To record a
        path given as text as a file, wrap it: ``Path(text)``. Durable on return.
        """
        self._record_io("input", name, value, hash)

    def add_output(self, name: str, value: Any, *, hash: bool = False) -> None:
        """Records an output of the run, as :meth:`add_input` does an input."""
        self._record_io("output", name, value, hash)

    def _record_io(self, direction: str, name: str, value: Any, hash: bool) -> None:
        if isinstance(value, os.PathLike):
            path = os.fspath(value)
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            self.record_io(direction, name, path=path, hash=bool(hash))
        else:
            self.record_io(direction, name, value=_io_text(name, value), hash=bool(hash))
        _drain_log()

    def io(self) -> List[IoRecord]:
        """The run's recorded inputs, then its outputs, as stored now."""
        return self.tracker.run_io(self.run_id)

    def samples(self) -> List[SampleRecord]:
        """The run's resource samples (CPU, memory, children), oldest first."""
        return self.tracker.samples(self.run_id)


def _json_dumps(value: Any, **options: Any) -> str:
    import json

    return json.dumps(value, **options)


def _is_number(value: Any) -> bool:
    """numbers.Number beyond the built-in types (Decimal, Fraction, numpy scalars)."""
    import numbers

    return isinstance(value, numbers.Number)


def _io_text(name: str, value: Any) -> str:
    """The text an input/output value is stored as."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, complex)) or _is_number(value):
        return str(value)
    try:
        return _json_dumps(value, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise _tasker.ArgumentError(
            f"invalid value {value!r} for {name!r}: must be text, a number, a bool, a"
            f" JSON-serialisable value or a path (os.PathLike) ({e})"
        ) from None


_TOKENS: Dict[int, List["contextvars.Token[Optional[Run]]"]] = {}
_ORPHANS: Dict[str, List["Subtask"]] = {}
# The last subtask started in this process, by run id (for the functional API).
_LAST_SUBTASK: Dict[str, "Subtask"] = {}


def _run_from_state(state: _State, run_id: str) -> Run:
    return _tracker_from_state(state).attach(run_id)


class Subtask(_tasker.Subtask):
    """One subtask of a run (``run.subtask(name, items_total)``): ``increment()`` and
    ``update()`` cost about one method call (memory only; a background thread writes
    them). A context manager: it completes at the end of the block and fails with the
    exception. Picklable: a worker process that receives it counts into the same
    subtask. ``complete()``, ``fail()``, ``skip()``, ``cancel()`` finish it by hand."""

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def run(self) -> Run: ...

    def __repr__(self) -> str:
        return f"<tasker.Subtask #{self.number} of run {self.run_id}>"

    def __reduce__(self) -> Tuple[Any, ...]:
        run = self.run
        # With its identity: a worker's progress then reaches this subtask even if it
        # was started during an outage and stored under another number.
        state = (run.tracker._native.state(), self.run_id, self._local_number(), self.uid)
        return (_subtask_from_state, state)

    def __enter__(self) -> "Subtask":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        _finish_with(self, exc, tb)

    def record(self) -> SubtaskRecord:
        """The subtask as stored now (after flushing this process's progress)."""
        for r in self.run.tracker.subtasks(self.run_id):
            if r.subtask_number == self.number:
                return r
        raise _tasker.NotFoundError(f"subtask not found: {self.number} of run {self.run_id}")


def _subtask_from_state(
    state: _State, run_id: str, number: int, uid: Optional[str] = None
) -> Subtask:
    run = _run_from_state(state, run_id)
    if uid is not None:
        run._adopt(number, uid)
    st = Subtask(run, number)
    return st


# ---------------------------------------------------------------------------
# The iterator wrapper


class _Bar:
    """A small progress bar on a terminal stream, redrawn at most 10 times a second."""

    def __init__(self, name: str, total: Optional[int], file: Any) -> None:
        self.name = name
        self.total = total
        self.file = file if file is not None else sys.stderr
        self.start = time.monotonic()
        self.next_draw = 0.0
        self.n = 0

    def update(self, n: int, force: bool = False) -> None:
        self.n = n
        now = time.monotonic()
        if not force and now < self.next_draw:
            return
        self.next_draw = now + 0.1
        elapsed = now - self.start
        rate = n / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, n / self.total)
            width = 20
            filled = int(frac * width)
            bar = "#" * filled + "-" * (width - filled)
            eta = (self.total - n) / rate if rate > 0 else 0.0
            line = (
                f"\r{self.name}: {frac * 100:5.1f}% |{bar}| {n}/{self.total}"
                f" [{_hms(elapsed)}<{_hms(eta)}, {rate:.1f} it/s]"
            )
        else:
            line = f"\r{self.name}: {n} it [{_hms(elapsed)}, {rate:.1f} it/s]"
        try:
            self.file.write(line)
            self.file.flush()
        except (OSError, ValueError):  # pragma: no cover - closed stream
            pass

    def close(self) -> None:
        self.update(self.n, force=True)
        try:
            self.file.write("\n")
            self.file.flush()
        except (OSError, ValueError):  # pragma: no cover
            pass


def _hms(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Tracked(Generic[T]):
    """What :meth:`Run.track` returns: an iterator that counts items into a subtask.
    An item counts as done when the next one is asked for (its loop body ended)."""

    __slots__ = ("subtask", "_it", "_inc", "_pending", "_done", "_bar", "__weakref__")

    def __init__(
        self,
        subtask: Subtask,
        iterable: Iterable[T],
        total: Optional[int],
        display: bool,
        file: Any,
        name: Optional[str] = None,
    ) -> None:
        self.subtask = subtask
        self._it = iter(iterable)
        self._inc = subtask.increment
        self._pending = False
        self._done = False
        self._bar = _Bar(name or _bar_name(subtask), total, file) if display else None

    def __iter__(self) -> "Tracked[T]":
        return self

    def __next__(self) -> T:
        if self._pending:
            self._inc()
            if self._bar is not None:
                self._bar.update(self._bar.n + 1)
        try:
            item = next(self._it)
        except StopIteration:
            self._pending = False
            self._finish(None, None)
            raise
        except BaseException as e:
            self._pending = False
            self._finish(e, e.__traceback__)
            raise
        self._pending = True
        return item

    def __enter__(self) -> "Tracked[T]":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if not self._done:
            if exc is None and self._pending:
                self._inc()  # the last item's body ended normally
            self._pending = False
            self._finish(exc, tb)

    def close(self) -> None:
        """Ends the subtask now (COMPLETED) if the loop was left early."""
        self.__exit__(None, None, None)

    def _finish(self, exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        if self._done:
            return
        self._done = True
        if self._bar is not None:
            self._bar.close()
        _finish_with(self.subtask, exc, tb)

    def __del__(self) -> None:
        # Left early without `with`: a `break`, or the loop body raised. Which one is
        # known only to whoever catches the exception, so the run decides: its `with`
        # fails the subtask with the exception, and a normal end completes it.
        if getattr(self, "_done", True):
            return
        try:
            if self._pending:
                self._pending = False
            _ORPHANS.setdefault(self.subtask.run_id, []).append(self.subtask)
            self.subtask.run.tracker._native.flush()
        except Exception:  # pragma: no cover - never raise from __del__
            pass


def _bar_name(st: Subtask) -> str:
    return f"{st.run.task}#{st.number}"


# ---------------------------------------------------------------------------
# Retries: each attempt of a block is a run of its own


class Attempt:
    """One attempt of a block that :class:`Attempts` may re-run. ``with attempt as run:``
    starts the attempt's run; leaving the block completes it, or fails it with the
    exception, which is then either swallowed (another attempt follows) or raised
    (the last attempt, or an exception not in ``retry_on``)."""

    __slots__ = ("number", "run", "error", "_attempts", "_state", "__weakref__")

    def __init__(self, attempts: "Attempts", number: int) -> None:
        #: 1 for the first attempt of this loop, 2 for its first retry, ...
        self.number = number
        #: The attempt's run, once the ``with`` block started it.
        self.run: Optional[Run] = None
        #: The exception that ended this attempt, if one did.
        self.error: Optional[BaseException] = None
        self._attempts = attempts
        self._state = "new"  # new -> entered -> succeeded / retrying / raised

    @property
    def retries_left(self) -> int:
        """How many more attempts may follow this one."""
        return self._attempts.retries + 1 - self.number

    def __repr__(self) -> str:
        a = self._attempts
        return f"<tasker.Attempt {self.number} of {a.retries + 1} for {a.stage}/{a.name} ({self._state})>"

    def __enter__(self) -> Run:
        if self._state != "new":
            raise _tasker.ArgumentError(f"invalid attempt {self.number}: it was entered already")
        self._state = "entered"
        a = self._attempts
        if self.number == 1:
            attempt, retry = a.attempt, a.retry
        else:
            # The previous attempt FAILED: the core numbers this one after it.
            attempt, retry = None, True
        self.run = a.tracker._start(a.stage, a.name, a.total_subtasks, attempt=attempt, retry=retry, **a.options)
        return self.run.__enter__()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        assert self.run is not None
        self.run.__exit__(exc_type, exc, tb)
        if exc is None:
            self._state = "succeeded"
            return False
        self.error = exc
        a = self._attempts
        # Ctrl-C and sys.exit() stop the program, whatever retry_on says.
        stop = isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))
        if self.retries_left > 0 and isinstance(exc, a.retry_on) and not stop:
            self._state = "retrying"
            logger.warning(
                "tasker: %s/%s attempt %d failed (%s); retrying (%d left)",
                a.stage,
                a.name,
                self.number,
                _error_info(exc, None)[0],
                self.retries_left,
            )
            return True  # the loop goes on to the next attempt
        self._state = "raised"
        return False


class Attempts:
    """What ``task(..., retries=N)`` returns: iterate over it to run a block up to
    N + 1 times, each attempt a run of its own (its ``attempt`` number counts up and
    ``retry_of`` names the attempt before)::

        for attempt in tasker.task("ingest", "download", retries=3):
            with attempt as run:
                download(run)

    The loop ends after the first attempt that succeeds. An exception that is an
    instance of ``retry_on`` fails the attempt's run and, while retries are left,
    the next attempt starts (after ``retry_delay`` seconds); the last one is
    raised. KeyboardInterrupt and SystemExit are never retried (the run is
    cancelled, or completed for a zero exit). Statistics count the attempts as one
    logical run; ``attempts`` lists the :class:`Attempt` objects made.
    """

    __slots__ = (
        "tracker",
        "stage",
        "name",
        "total_subtasks",
        "retries",
        "retry_on",
        "retry_delay",
        "attempt",
        "retry",
        "options",
        "attempts",
    )

    def __init__(
        self,
        tracker: Tracker,
        stage: str,
        name: str,
        total_subtasks: Optional[int],
        *,
        retries: int,
        retry_on: RetryOn,
        retry_delay: float,
        attempt: Optional[int],
        retry: bool,
        options: Dict[str, Any],
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise _tasker.ArgumentError(f"invalid retries {retries!r}: must be a whole number, 0 or more")
        classes = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        if not classes or not all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
            raise _tasker.ArgumentError(
                f"invalid retry_on {retry_on!r}: must be an exception class or a tuple of them"
            )
        if isinstance(retry_delay, bool) or not isinstance(retry_delay, (int, float)) or not retry_delay >= 0:
            raise _tasker.ArgumentError(f"invalid retry_delay {retry_delay!r}: must be seconds, 0 or more")
        self.tracker = tracker
        self.stage = stage
        self.name = name
        self.total_subtasks = total_subtasks
        self.retries = retries
        self.retry_on: Tuple[Type[BaseException], ...] = classes
        self.retry_delay = float(retry_delay)
        self.attempt = attempt
        self.retry = retry
        self.options = options
        #: The attempts made so far, in order.
        self.attempts: List[Attempt] = []

    def __repr__(self) -> str:
        return f"<tasker.Attempts {self.stage}/{self.name} retries={self.retries} made={len(self.attempts)}>"

    def __iter__(self) -> Iterator[Attempt]:
        for number in range(1, self.retries + 2):
            a = Attempt(self, number)
            self.attempts.append(a)
            yield a
            if a._state == "new":
                raise _tasker.ArgumentError(
                    f"invalid attempt {number} of {self.stage}/{self.name}: it was never entered;"
                    " write `with attempt as run:` in the loop"
                )
            if a._state != "retrying":
                return
            if self.retry_delay:
                time.sleep(self.retry_delay)

    def __enter__(self) -> Run:
        raise _tasker.ArgumentError(
            f"invalid use of task({self.stage!r}, {self.name!r}, retries={self.retries}): a `with` block"
            " cannot run twice; write `for attempt in tasker.task(..., retries=N):` and"
            " `with attempt as run:` inside the loop"
        )

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ always raises
        return None


# ---------------------------------------------------------------------------
# The program being run: what runs record as their script, and the stage of
# functions decorated in it.


if TYPE_CHECKING:  # pragma: no cover

    class Script(NamedTuple):
        """The program Python runs: ``python script.py`` or ``python -m package.module``."""

        path: Optional[str]
        module: Optional[str]
        stem: Optional[str]

else:
    Script = collections.namedtuple("Script", ["path", "module", "stem"])
    Script.__doc__ = """The program Python runs: ``python script.py`` or ``python -m package.module``.

    ``path``: absolute path of ``__main__``'s file (for ``-m pkg``, ``pkg/__main__.py``);
    ``module``: the module given to ``-m`` (``pkg``, ``pkg.tool``), else None;
    ``stem``: a short name: the script's file name without extension, or the last
    part of the module (``pkg`` for ``-m pkg``, ``tool`` for ``-m pkg.tool``)."""


def main_script() -> Script:
    """The script this process runs: ``__main__.__file__``, or for ``python -m pkg``
    the module and its file. All None in an interactive session or ``python -c``."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if not isinstance(file, str) or not file:
        return Script(None, None, None)
    # Absolute since Python 3.9 for scripts and -m; abspath covers embedders.
    path = os.path.abspath(file)
    spec = getattr(main, "__spec__", None)
    module = getattr(spec, "name", None) if spec is not None else None
    if isinstance(module, str) and module.endswith(".__main__"):
        module = module[: -len(".__main__")]
    if isinstance(module, str) and module and module not in ("__main__", "__mp_main__"):
        return Script(path, module, module.rsplit(".", 1)[-1])
    return Script(path, None, os.path.splitext(os.path.basename(path))[0])


# ---------------------------------------------------------------------------
# The decorator


@overload
def tracked(fn: F) -> F: ...


@overload
def tracked(
    fn: None = None,
    *,
    stage: Optional[str] = None,
    task: Optional[str] = None,
    tracker: Optional[Tracker] = None,
    total_subtasks: Optional[int] = None,
    retries: Optional[int] = None,
    **options: Any,
) -> Callable[[F], F]: ...


def tracked(
    fn: Optional[F] = None,
    *,
    stage: Optional[str] = None,
    task: Optional[str] = None,
    tracker: Optional[Tracker] = None,
    total_subtasks: Optional[int] = None,
    retries: Optional[int] = None,
    **options: Any,
) -> Union[F, Callable[[F], F]]:
    """Runs every call of the decorated function as a tracked run.

    ``stage`` defaults to the function's module (for a function of the script
    itself: the script's file name without ``.py``, or the module given to
    ``python -m``) and ``task`` to the function's name. Inside the call,
    :func:`current_run` (and the functional API) refers to the run. The run fails
    with the traceback if the function raises; with ``retries=N`` the function is
    called again (as a new attempt) up to N times, see :class:`Attempts`. Other
    keywords go to :meth:`Tracker.task`.
    """

    def decorate(f: F) -> F:
        tk = task or f.__qualname__.rsplit("<locals>.", 1)[-1]

        def stage_name() -> str:
            if stage:
                return stage
            module = f.__module__ or "__main__"
            if module in ("__main__", "__mp_main__"):
                return main_script().stem or "main"
            return module.rsplit(".", 1)[-1]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = tracker if tracker is not None else default_tracker()
            if retries is None:
                with t.task(stage_name(), tk, total_subtasks, retries=None, **options):
                    return f(*args, **kwargs)
            for attempt in t.task(stage_name(), tk, total_subtasks, retries=retries, **options):
                with attempt:
                    return f(*args, **kwargs)
            raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

        return wrapper  # type: ignore[return-value]

    if fn is not None:
        return decorate(fn)
    return decorate


@overload
def task(
    stage: str,
    name: str,
    total_subtasks: Optional[int] = None,
    *,
    retries: None = None,
    **options: Any,
) -> Run: ...


@overload
def task(
    stage: str,
    name: str,
    total_subtasks: Optional[int] = None,
    *,
    retries: int,
    **options: Any,
) -> Attempts: ...


def task(
    stage: str,
    name: str,
    total_subtasks: Optional[int] = None,
    *,
    retries: Optional[int] = None,
    **options: Any,
) -> Union[Run, Attempts]:
    """``default_tracker().task(...)``: start a run on the default tracker (with
    ``retries=N``: the attempts of a block, see :class:`Attempts`)."""
    t = default_tracker()
    if retries is None:
        return t.task(stage, name, total_subtasks, retries=None, **options)
    return t.task(stage, name, total_subtasks, retries=retries, **options)


__all__ = [
    "Tracker",
    "Run",
    "Subtask",
    "Tracked",
    "Attempt",
    "Attempts",
    "Script",
    "connect",
    "configure",
    "default_tracker",
    "set_default_tracker",
    "flush",
    "tracked",
    "task",
    "current_run",
    "main_script",
]
