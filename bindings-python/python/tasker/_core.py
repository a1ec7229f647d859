"""The idiomatic API: Tracker, Run, Subtask, the iterator wrapper, the decorator,
the default tracker, logging, callbacks, and what makes handles work in other
processes (pickling and flushing at worker exit)."""
from __future__ import annotations

import atexit
import contextvars
import functools
import json
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
import time
import traceback
import weakref
from datetime import datetime, timezone
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    List,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

from . import _tasker
from ._records import (
    EventRecord,
    RunRecord,
    StageRecord,
    Status,
    SubtaskRecord,
    TaskRecord,
    TransitionEvent,
    _records,
)
from ._tasker import InvalidTransitionError, TaskerError

logger = logging.getLogger("tasker")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
StatusLike = Union[Status, str]
Callback = Callable[[TransitionEvent], Any]

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
    ) -> int:
        """Registers (or updates) one task; returns its id. None never clears a stored field."""
        spec = dict(
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

    def task(
        self,
        stage: str,
        name: str,
        total_subtasks: Optional[int] = None,
        *,
        message: Optional[str] = None,
        version: Optional[str] = None,
        git_commit: Optional[str] = None,
        script_path: Optional[str] = None,
        script_filename: Optional[str] = None,
        log_path: Optional[str] = None,
        log_filename: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        **extra_metadata: Any,
    ) -> "Run":
        """Starts a run of ``stage``/``name`` (registering them if new) and returns it.

        Use it as a context manager: the run completes when the block ends, fails with
        the exception's message and traceback if it raises, and is cancelled on
        KeyboardInterrupt. Extra keyword arguments are stored as custom metadata.
        """
        md: Optional[Dict[str, Any]] = None
        if metadata is not None or extra_metadata:
            if metadata is not None and not isinstance(metadata, dict):
                raise _tasker.ArgumentError(
                    f"invalid metadata {metadata!r}: must be a dict of key/value pairs"
                )
            md = {**(metadata or {}), **extra_metadata}
        metadata_json = None if md is None else json.dumps(md, default=str)
        core = self._call(
            self._native.task_start,
            stage,
            name,
            total_subtasks=total_subtasks,
            message=message,
            version=version,
            git_commit=git_commit,
            script_path=script_path,
            script_filename=script_filename,
            log_path=log_path,
            log_filename=log_filename,
            metadata_json=metadata_json,
        )
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
        event = TransitionEvent._from_row(row)
        if logger.isEnabledFor(logging.INFO):
            what = "run" if event.subtask_number is None else f"subtask {event.subtask_number}"
            msg = f": {event.message}" if event.message else ""
            level = logging.INFO if event.subtask_number is None else logging.DEBUG
            logger.log(
                level,
                "%s/%s %s %s -> %s%s [%s]",
                event.stage_name,
                event.task_name,
                what,
                event.old_status.value,
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
        return _records(RunRecord, self._call(self._native.task_status, stage, task, _st(status), limit))

    def active_runs(self) -> List[RunRecord]:
        """Every STARTED, RUNNING or PAUSED run, including concurrent runs of one task."""
        return _records(RunRecord, self._call(self._native.active_runs))

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
        return _records(
            RunRecord, self._call(self._native.history, stage, task, _st(status), since_us, limit)
        )

    def run(self, run_id: str) -> RunRecord:
        """One run by id (NotFoundError if there is none)."""
        return RunRecord._from_row(self._call(self._native.run, run_id))

    def subtasks(self, run_id: str) -> List[SubtaskRecord]:
        """The subtasks of a run, by number."""
        return _records(SubtaskRecord, self._call(self._native.subtasks, run_id))

    def registered_tasks(self, stage: Optional[str] = None, name: Optional[str] = None) -> List[TaskRecord]:
        """Registered tasks, in stage and task order."""
        return _records(TaskRecord, self._call(self._native.registered_tasks, stage, name))

    def stages(self) -> List[StageRecord]:
        """Stages, in order."""
        return _records(StageRecord, self._call(self._native.stages))

    def events(self, after: int = 0, run_id: Optional[str] = None, limit: int = 1000) -> List[EventRecord]:
        """Stored transitions after event id ``after``, oldest first."""
        return _records(EventRecord, self._call(self._native.events, after, run_id, limit))

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            _drain_log()


def _st(status: Optional[StatusLike]) -> Optional[str]:
    if status is None:
        return None
    return status.value if isinstance(status, Status) else status


def _micros(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.astimezone()  # a naive time is local time
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
) -> Tracker:
    """Opens a tracking database and returns a :class:`Tracker`.

    ``url`` is ``sqlite:///path/file.db``, a file path, or ``postgresql://...``. Without
    it the configuration is resolved: explicit keywords, then ``TASKER_DB_URL`` /
    ``TASKER_DB_*``, then ``.tasker.yml`` (searched upwards from ``start_dir`` or the
    working directory), then ``$XDG_CONFIG_HOME/tasker/config.yml``, then SQLite at
    ``~/.local/share/tasker/tasker.db``.
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
    )
    _ensure_exit_flush()
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
_finalizer: Optional[multiprocessing.util.Finalize] = None
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
        # Run by multiprocessing's exit path, which ends with os._exit in forked workers.
        _finalizer = multiprocessing.util.Finalize(None, _flush_at_exit, exitpriority=-10)
        _hooked_pid = pid
        _install_sigterm_flush()


def _install_sigterm_flush() -> None:
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
    if _hooked_pid != -1 and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
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
# Runs in children that multiprocessing forks (after it clears inherited finalizers).
multiprocessing.util.register_after_fork(_FORK_TOKEN, _after_fork_in_child)
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
    """One run of a task: a context manager, picklable, safe to share between threads."""

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def tracker(self) -> Tracker: ...

    def __repr__(self) -> str:
        return f"<tasker.Run {self.stage}/{self.task} run_id={self.run_id}>"

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
        return Tracked(st, iterable, total, display, file)

    def record(self) -> RunRecord:
        """The run as stored now."""
        return self.tracker.run(self.run_id)

    def status(self) -> Status:
        """The stored status."""
        return self.record().status

    def subtasks(self) -> List[SubtaskRecord]:
        """The run's subtasks as stored now."""
        return self.tracker.subtasks(self.run_id)


_TOKENS: Dict[int, List["contextvars.Token[Optional[Run]]"]] = {}
_ORPHANS: Dict[str, List["Subtask"]] = {}
# The last subtask started in this process, by run id (for the functional API).
_LAST_SUBTASK: Dict[str, "Subtask"] = {}


def _run_from_state(state: _State, run_id: str) -> Run:
    return _tracker_from_state(state).attach(run_id)


class Subtask(_tasker.Subtask):
    """One subtask: ``increment()`` and ``update()`` cost about one method call (memory
    only; a background thread writes them). A context manager; picklable."""

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
    ) -> None:
        self.subtask = subtask
        self._it = iter(iterable)
        self._inc = subtask.increment
        self._pending = False
        self._done = False
        self._bar = _Bar(_bar_name(subtask), total, file) if display else None

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
    **options: Any,
) -> Callable[[F], F]: ...


def tracked(
    fn: Optional[F] = None,
    *,
    stage: Optional[str] = None,
    task: Optional[str] = None,
    tracker: Optional[Tracker] = None,
    total_subtasks: Optional[int] = None,
    **options: Any,
) -> Union[F, Callable[[F], F]]:
    """Runs every call of the decorated function as a tracked run.

    ``stage`` defaults to the function's module and ``task`` to its name. Inside the
    call, :func:`current_run` (and the functional API) refers to the run. The run fails
    with the traceback if the function raises.
    """

    def decorate(f: F) -> F:
        st = stage or (f.__module__ or "main").rsplit(".", 1)[-1]
        tk = task or f.__qualname__.rsplit("<locals>.", 1)[-1]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = tracker if tracker is not None else default_tracker()
            with t.task(st, tk, total_subtasks, **options):
                return f(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if fn is not None:
        return decorate(fn)
    return decorate


def task(
    stage: str,
    name: str,
    total_subtasks: Optional[int] = None,
    **options: Any,
) -> Run:
    """``default_tracker().task(...)``: start a run on the default tracker."""
    return default_tracker().task(stage, name, total_subtasks, **options)


__all__ = [
    "Tracker",
    "Run",
    "Subtask",
    "Tracked",
    "connect",
    "configure",
    "default_tracker",
    "set_default_tracker",
    "flush",
    "tracked",
    "task",
    "current_run",
]
