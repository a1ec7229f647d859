"""Typed, immutable records returned by queries and given to callbacks."""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Type, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = [
    "Status",
    "RunRecord",
    "SubtaskRecord",
    "TaskRecord",
    "StageRecord",
    "EventRecord",
    "TransitionEvent",
    "TaskStatsRecord",
    "SampleRecord",
    "IoRecord",
    "LogRecord",
    "ItemOutcomeRecord",
    "ItemOutcomeCount",
    "Health",
    "PurgeReport",
    "to_pandas",
]


class Status(str, enum.Enum):
    """Status of a run or a subtask. Compares equal to its name: ``Status.RUNNING == "RUNNING"``."""

    NOT_STARTED = "NOT_STARTED"
    STARTED = "STARTED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """COMPLETED, FAILED, SKIPPED and CANCELLED: finished for good."""
        return self in _TERMINAL

    @property
    def is_active(self) -> bool:
        """STARTED, RUNNING and PAUSED."""
        return self in _ACTIVE

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.SKIPPED, Status.CANCELLED})
_ACTIVE = frozenset({Status.STARTED, Status.RUNNING, Status.PAUSED})

R = TypeVar("R", bound="_Record")


class _Record:
    """Shared behaviour of the records: ``to_dict()`` and construction from native rows."""

    __slots__ = ()

    def to_dict(self) -> Dict[str, Any]:
        """The fields as a plain dict (statuses as strings, times as aware datetimes)."""
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, Status):
                v = v.value
            elif isinstance(v, dict):
                v = dict(v)
            out[f.name] = v
        return out

    @classmethod
    def _from_row(cls: Type[R], row: Mapping[str, Any]) -> R:
        values = dict(row)
        for key in ("status", "old_status", "new_status"):
            if key in values and values[key] is not None:
                values[key] = Status(values[key])
        return cls(**values)

    def _repr_html_(self) -> str:
        """The record as a table in notebooks (tasker._html)."""
        from ._html import record_html

        return record_html(self)


def _short(run_id: Optional[str]) -> str:
    return "-" if run_id is None else run_id[:13] + "…" if len(run_id) > 14 else run_id


@dataclass(frozen=True)
class RunRecord(_Record):
    """One run of a task (or, from ``task_status``, a registered task that never ran:
    then ``run_id`` is None and ``status`` is NOT_STARTED). Column names follow the R package."""

    run_id: Optional[str]
    stage_name: str
    stage_order: Optional[int]
    task_name: str
    task_type: Optional[str]
    task_order: Optional[int]
    status: Status
    hostname: Optional[str]
    process_id: Optional[int]
    parent_pid: Optional[int]
    process_start_time: Optional[datetime]
    user_name: Optional[str]
    start_time: Optional[datetime]
    end_time: Optional[datetime]
    last_update: Optional[datetime]
    heartbeat_time: Optional[datetime]
    total_subtasks: Optional[int]
    current_subtask: Optional[int]
    overall_percent_complete: Optional[float]
    overall_progress_message: Optional[str]
    version: Optional[str]
    git_commit: Optional[str]
    script_path: Optional[str]
    script_filename: Optional[str]
    log_path: Optional[str]
    log_filename: Optional[str]
    error_message: Optional[str]
    error_detail: Optional[str]
    metadata: Optional[Dict[str, Any]]
    #: 1 for a first try; n for the n-th attempt of one logical run.
    attempt: Optional[int]
    #: The run this one retries (its previous attempt).
    retry_of: Optional[str]
    #: The command line that started the process.
    command_line: Optional[str]
    #: Whether the script's git repository had uncommitted changes (None: unknown).
    git_dirty: Optional[bool]
    #: The language runtime ("Python 3.11.7"); None for native programs.
    runtime: Optional[str]
    #: The tasker version that tracked the run.
    tasker_version: Optional[str]
    #: Seconds from the moment the last of its task's dependencies finished to its
    #: start (None without dependencies, or when one had not finished).
    wait_seconds: Optional[float]
    subtasks_completed: int
    lost: bool
    duration_seconds: Optional[float]
    #: Seconds left while active and not lost, with an 80% interval
    #: [eta_low, eta_high] and what it rests on ("rate", "history" or "blend").
    eta_seconds: Optional[float]
    eta_low: Optional[float]
    eta_high: Optional[float]
    eta_basis: Optional[str]

    def __repr__(self) -> str:
        pct = "" if self.overall_percent_complete is None else f" {self.overall_percent_complete:.1f}%"
        lost = " LOST" if self.lost else ""
        attempt = f" attempt={self.attempt}" if self.attempt is not None and self.attempt > 1 else ""
        err = f" error={self.error_message!r}" if self.error_message else ""
        return (
            f"<RunRecord {self.stage_name}/{self.task_name} {self.status.value}{pct}{lost}{attempt}"
            f" run_id={_short(self.run_id)}{err}>"
        )


@dataclass(frozen=True)
class SubtaskRecord(_Record):
    """One subtask of a run, with its derived percent, rate and ETA."""

    run_id: str
    subtask_number: int
    subtask_name: str
    status: Status
    start_time: Optional[datetime]
    end_time: Optional[datetime]
    last_update: Optional[datetime]
    items_total: Optional[int]
    items_complete: int
    percent_complete: Optional[float]
    progress_message: Optional[str]
    error_message: Optional[str]
    error_detail: Optional[str]
    rate_per_second: Optional[float]
    #: Seconds left while active, with an 80% interval [eta_low, eta_high].
    eta_seconds: Optional[float]
    eta_low: Optional[float]
    eta_high: Optional[float]

    def __repr__(self) -> str:
        total = "?" if self.items_total is None else str(self.items_total)
        pct = "" if self.percent_complete is None else f" {self.percent_complete:.1f}%"
        err = f" error={self.error_message!r}" if self.error_message else ""
        return (
            f"<SubtaskRecord #{self.subtask_number} {self.subtask_name!r} {self.status.value}"
            f" {self.items_complete}/{total}{pct}{err}>"
        )


@dataclass(frozen=True)
class TaskRecord(_Record):
    """A registered task with its stage."""

    stage_id: int
    stage_name: str
    stage_order: Optional[int]
    task_id: int
    task_name: str
    task_type: Optional[str]
    task_order: Optional[int]
    description: Optional[str]
    script_path: Optional[str]
    script_filename: Optional[str]
    log_path: Optional[str]
    log_filename: Optional[str]
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        return f"<TaskRecord {self.stage_name}/{self.task_name} type={self.task_type!r} id={self.task_id}>"


@dataclass(frozen=True)
class StageRecord(_Record):
    """A stage (a group of tasks, in order)."""

    stage_id: int
    stage_name: str
    stage_order: Optional[int]
    description: Optional[str]
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        return f"<StageRecord {self.stage_name} order={self.stage_order} id={self.stage_id}>"


@dataclass(frozen=True)
class EventRecord(_Record):
    """One stored transition (the events table)."""

    event_id: int
    time: datetime
    run_id: str
    stage_name: str
    task_name: str
    subtask_number: Optional[int]
    kind: str
    old_status: Optional[Status]
    new_status: Status
    message: Optional[str]

    def __repr__(self) -> str:
        what = "run" if self.subtask_number is None else f"subtask #{self.subtask_number}"
        old = self.old_status.value if self.old_status else "-"
        return (
            f"<EventRecord {self.event_id} {self.stage_name}/{self.task_name} {what}"
            f" {old}->{self.new_status.value}>"
        )


#: What callbacks receive: the stored event (the name of earlier versions, whose
#: events had no id and were made before they were stored).
TransitionEvent = EventRecord


@dataclass(frozen=True)
class TaskStatsRecord(_Record):
    """What the stored history of one task says (``get_task_stats``). A run and its
    retries are one logical run, whose outcome is that of its last attempt."""

    stage_name: str
    task_name: str
    #: Runs in the window, every attempt counted.
    runs: int
    #: Logical runs: a run and its retries count once.
    logical_runs: int
    #: Logical runs by the outcome of their last attempt.
    completed: int
    failed: int
    lost: int
    cancelled: int
    skipped: int
    active: int
    #: Completed logical runs over those that ended (skipped and active left out).
    success_rate: Optional[float]
    #: Logical runs that took more than one attempt.
    retried: int
    #: Mean attempts per ended logical run.
    mean_attempts: Optional[float]
    #: Seconds taken by completed runs.
    duration_p50: Optional[float]
    duration_p90: Optional[float]
    duration_p95: Optional[float]
    duration_mean: Optional[float]
    duration_max: Optional[float]
    #: Items per second of completed runs that counted items.
    items_per_second: Optional[float]
    last_start: Optional[datetime]
    last_success: Optional[datetime]
    last_failure: Optional[datetime]
    #: Wait of its runs (end of the last upstream to start; tasks with dependencies
    #: only): median and 95th percentile.
    wait_p50: Optional[float]
    wait_p95: Optional[float]

    def __repr__(self) -> str:
        rate = "-" if self.success_rate is None else f"{self.success_rate * 100:.0f}%"
        p50 = "-" if self.duration_p50 is None else f"{self.duration_p50:.1f}s"
        return (
            f"<TaskStatsRecord {self.stage_name}/{self.task_name} runs={self.logical_runs}"
            f" success={rate} p50={p50}>"
        )


@dataclass(frozen=True)
class SampleRecord(_Record):
    """One resource sample of a run's process and its children (``get_run_samples``)."""

    run_id: str
    time: datetime
    pid: int
    #: User + system CPU seconds of the process so far.
    cpu_seconds: float
    #: CPU since the previous sample (100 = one core busy); None on the first.
    cpu_percent: Optional[float]
    rss_bytes: int
    peak_rss_bytes: Optional[int]
    #: Bytes read from / written to storage (page-cache hits do not count).
    read_bytes: Optional[int]
    write_bytes: Optional[int]
    threads: Optional[int]
    open_fds: Optional[int]
    #: Live descendant processes, their CPU seconds (with those reaped) and RSS.
    children: int
    children_cpu_seconds: float
    children_rss_bytes: int

    def __repr__(self) -> str:
        cpu = "-" if self.cpu_percent is None else f"{self.cpu_percent:.0f}%"
        return f"<SampleRecord {self.time.isoformat()} cpu={cpu} rss={self.rss_bytes >> 20}MiB>"


@dataclass(frozen=True)
class IoRecord(_Record):
    """An input or output a run recorded (``get_run_io``): a value, or a file with its
    size, modification time and (when asked) SHA-256."""

    run_id: str
    #: "input" or "output".
    direction: str
    name: str
    value: Optional[str]
    path: Optional[str]
    size_bytes: Optional[int]
    modified: Optional[datetime]
    sha256: Optional[str]
    recorded_at: datetime

    def __repr__(self) -> str:
        what = repr(self.value) if self.path is None else f"file {self.path} ({self.size_bytes} bytes)"
        return f"<IoRecord {self.direction} {self.name}={what}>"


@dataclass(frozen=True)
class LogRecord(_Record):
    """One log line of a run (``get_run_logs``). The text is stored as logged:
    escape it before showing it in a terminal or a page."""

    #: Increases in store order; a follower asks for lines after the last it saw.
    log_id: int
    run_id: str
    time: datetime
    #: "debug", "info", "warn" or "error".
    level: str
    subtask_number: Optional[int]
    hostname: Optional[str]
    process_id: Optional[int]
    message: str
    #: Set on the marker line only: how many older lines were dropped.
    dropped_lines: Optional[int]

    def __repr__(self) -> str:
        return f"<LogRecord {self.log_id} {self.level} {self.message[:40]!r}>"


@dataclass(frozen=True)
class ItemOutcomeRecord(_Record):
    """An item of a subtask that failed or was skipped (``get_item_outcomes``)."""

    outcome_id: int
    run_id: str
    subtask_number: int
    #: "failed" or "skipped".
    outcome: str
    item_key: str
    reason: Optional[str]
    time: datetime
    hostname: Optional[str]
    process_id: Optional[int]

    def __repr__(self) -> str:
        return f"<ItemOutcomeRecord #{self.subtask_number} {self.outcome} {self.item_key!r}>"


@dataclass(frozen=True)
class ItemOutcomeCount(_Record):
    """How many items of a subtask failed or were skipped: ``total`` exactly, of
    which the first ``kept`` are stored as records."""

    run_id: str
    subtask_number: int
    outcome: str
    total: int
    kept: int


@dataclass(frozen=True)
class Health(_Record):
    """Whether tracking reaches its database, and what waits to be written (``health()``).

    While the database is away nothing fails: writes wait in memory, then in spool
    files, and are replayed when it is back."""

    #: "sqlite" or "postgresql".
    backend: str
    #: Where the database is (never with a password).
    location: str
    reachable: bool
    #: The last error, while the database is unreachable.
    last_error: Optional[str]
    #: Writes waiting for the database (memory and spool).
    pending_writes: int
    #: Of those, how many are in spool files.
    spooled_writes: int
    #: The database is back and the waiting writes are being replayed.
    replaying: bool

    def __repr__(self) -> str:
        state = "reachable" if self.reachable else f"UNREACHABLE ({self.last_error})"
        return f"<Health {self.backend} {state} pending_writes={self.pending_writes}>"


@dataclass(frozen=True)
class PurgeReport(_Record):
    """What :meth:`Tracker.purge` deleted (or, with ``dry_run``, would delete)."""

    #: Runs that ended before this time were candidates.
    cutoff: datetime
    dry_run: bool
    #: Finished runs older than the cutoff (after ``keep_failed``).
    matching_runs: int
    deleted_runs: int
    #: Runs older than the cutoff that are still active: never deleted.
    kept_active_runs: int

    def __repr__(self) -> str:
        did = "would delete" if self.dry_run else "deleted"
        return f"<PurgeReport {did} {self.matching_runs if self.dry_run else self.deleted_runs} run(s)>"


def _records(cls: Type[R], rows: Iterable[Mapping[str, Any]]) -> List[R]:
    # A list that notebooks show as a table (_repr_html_).
    from ._html import RecordList

    return RecordList([cls._from_row(r) for r in rows])


# The pandas dtype of each field type (annotations are strings here): nullable
# dtypes, so a missing count stays an integer column (Int64 with <NA>) instead of
# becoming float or object.
_PANDAS_DTYPES = {
    "int": "Int64",
    "bool": "boolean",
    "str": "string",
    "Status": "string",
    "float": "float64",
}


def _pandas_dtype(annotation: Any) -> Optional[str]:
    name = str(annotation)
    if name.startswith("Optional[") and name.endswith("]"):
        name = name[len("Optional[") : -1]
    if name == "datetime":
        return "datetime64[ns, UTC]"
    return _PANDAS_DTYPES.get(name)


def to_pandas(records: Sequence[_Record]) -> "pandas.DataFrame":
    """A pandas DataFrame with one row per record (pandas must be installed).

    Columns get pandas' nullable dtypes: counts ``Int64``, flags ``boolean``, text
    and statuses ``string`` (missing values are ``<NA>``), times
    ``datetime64[ns, UTC]`` and other numbers ``float64``; ``metadata`` stays a
    column of dicts. An empty list gives an empty DataFrame.
    """
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("tasker.to_pandas needs pandas: pip install pandas") from e
    records = list(records)
    if not records:
        return pd.DataFrame()
    rows = [r.to_dict() for r in records]
    columns: Dict[str, Any] = {}
    # Column by column from the Python values: through a float column, integers
    # above 2**53 would lose digits.
    for f in dataclasses.fields(records[0]):  # type: ignore[arg-type]
        values = [row[f.name] for row in rows]
        dtype = _pandas_dtype(f.type)
        if dtype is None:
            columns[f.name] = pd.Series(values, dtype=object)
        elif dtype.startswith("datetime64"):
            columns[f.name] = pd.Series(pd.to_datetime(values, utc=True)).astype(dtype)
        else:
            columns[f.name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(columns)
