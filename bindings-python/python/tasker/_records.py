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
    subtasks_completed: int
    lost: bool
    duration_seconds: Optional[float]

    def __repr__(self) -> str:
        pct = "" if self.overall_percent_complete is None else f" {self.overall_percent_complete:.1f}%"
        lost = " LOST" if self.lost else ""
        err = f" error={self.error_message!r}" if self.error_message else ""
        return (
            f"<RunRecord {self.stage_name}/{self.task_name} {self.status.value}{pct}{lost}"
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
    eta_seconds: Optional[float]

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


@dataclass(frozen=True)
class TransitionEvent(_Record):
    """A transition made through a tracker in this process, as given to callbacks."""

    time: datetime
    run_id: str
    stage_name: str
    task_name: str
    subtask_number: Optional[int]
    old_status: Status
    new_status: Status
    message: Optional[str]

    def __repr__(self) -> str:
        what = "run" if self.subtask_number is None else f"subtask #{self.subtask_number}"
        return (
            f"<TransitionEvent {self.stage_name}/{self.task_name} {what}"
            f" {self.old_status.value}->{self.new_status.value} run_id={_short(self.run_id)}>"
        )


def _records(cls: Type[R], rows: Iterable[Mapping[str, Any]]) -> List[R]:
    return [cls._from_row(r) for r in rows]


def to_pandas(records: Sequence[_Record]) -> "pandas.DataFrame":
    """A pandas DataFrame with one row per record (pandas must be installed).

    Times become timezone-aware (UTC) datetime columns and statuses strings.
    """
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("tasker.to_pandas needs pandas: pip install pandas") from e
    records = list(records)
    if not records:
        return pd.DataFrame()
    columns = [f.name for f in dataclasses.fields(records[0])]  # type: ignore[arg-type]
    df = pd.DataFrame([r.to_dict() for r in records], columns=columns)
    for f in dataclasses.fields(records[0]):  # type: ignore[arg-type]
        if "datetime" in str(f.type):
            df[f.name] = pd.to_datetime(df[f.name], utc=True)
    return df
