"""How notebooks show runs, records and query results (``_repr_html_``).

Jupyter (and VS Code, Colab, ...) call ``_repr_html_`` on the value of a cell: a run,
a record, or the list a query returns (:class:`RecordList`) is then shown as a table
with progress bars instead of its ``repr``. Every value is escaped: names, messages
and errors come from pipelines and may hold markup. Loaded on first use, so that
``import tasker`` does not load it.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Sequence, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from ._core import Run
    from ._records import _Record

__all__ = ["RecordList", "record_html", "records_html", "run_html"]


class RecordList(list):  # type: ignore[type-arg]  # a list of records of one type
    """The list a query returns: a plain ``list`` that notebooks show as a table."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        return records_html(self)


def _esc(value: Any) -> str:
    import html

    return html.escape("" if value is None else str(value), quote=True)


def _time(value: Optional[datetime]) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: Optional[float]) -> str:
    if value is None:
        return ""
    s = int(round(value))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _bar(percent: Optional[float]) -> str:
    """A progress bar cell: an HTML ``<progress>`` and the percent as text."""
    if percent is None:
        return ""
    p = max(0.0, min(100.0, float(percent)))
    return f'<progress value="{p:.1f}" max="100"></progress> {p:.1f}%'


_STATUS_COLOURS = {
    "COMPLETED": "#2e7d32",
    "FAILED": "#c62828",
    "RUNNING": "#1565c0",
    "STARTED": "#1565c0",
    "PAUSED": "#ef6c00",
    "CANCELLED": "#6d4c41",
    "SKIPPED": "#757575",
    "NOT_STARTED": "#757575",
}


def _status(rec: Any) -> str:
    status = getattr(rec, "status", None)
    text = getattr(status, "value", status)
    lost = " (lost)" if getattr(rec, "lost", False) else ""
    colour = _STATUS_COLOURS.get(str(text), "inherit")
    return f'<span style="color:{colour};font-weight:bold">{_esc(text)}{_esc(lost)}</span>'


def _count(done: Optional[int], total: Optional[int]) -> str:
    return f"{_esc(done if done is not None else 0)}/{_esc('?' if total is None else total)}"


# A column: its header and how a record's cell is made (already escaped HTML).
Column = Tuple[str, Callable[[Any], str]]

_RUN_COLUMNS: List[Column] = [
    ("stage", lambda r: _esc(r.stage_name)),
    ("task", lambda r: _esc(r.task_name)),
    ("status", _status),
    ("progress", lambda r: _bar(r.overall_percent_complete)),
    ("subtasks", lambda r: _count(r.subtasks_completed, r.total_subtasks)),
    ("started", lambda r: _esc(_time(r.start_time))),
    ("duration", lambda r: _esc(_seconds(r.duration_seconds))),
    ("ETA", lambda r: _esc(_seconds(r.eta_seconds))),
    ("host", lambda r: _esc(r.hostname)),
    ("run", lambda r: _esc(r.run_id)),
    ("message", lambda r: _esc(r.error_message or r.overall_progress_message)),
]

_SUBTASK_COLUMNS: List[Column] = [
    ("#", lambda s: _esc(s.subtask_number)),
    ("subtask", lambda s: _esc(s.subtask_name)),
    ("status", _status),
    ("progress", lambda s: _bar(s.percent_complete)),
    ("items", lambda s: _count(s.items_complete, s.items_total)),
    ("rate", lambda s: "" if s.rate_per_second is None else _esc(f"{s.rate_per_second:.1f}/s")),
    ("ETA", lambda s: _esc(_seconds(s.eta_seconds))),
    ("message", lambda s: _esc(s.error_message or s.progress_message)),
]


def _generic_columns(rec: "_Record") -> List[Column]:
    """Every field of a record type without a chosen layout, in field order."""

    def cell(name: str) -> Callable[[Any], str]:
        def get(r: Any) -> str:
            v = getattr(r, name)
            if name == "status" or name.endswith("_status"):
                v = getattr(v, "value", v)
            if isinstance(v, datetime):
                v = _time(v)
            return _esc(v)

        return get

    return [(name, cell(name)) for name in rec.to_dict()]


def _columns(rec: "_Record") -> List[Column]:
    name = type(rec).__name__
    if name == "RunRecord":
        return _RUN_COLUMNS
    if name == "SubtaskRecord":
        return _SUBTASK_COLUMNS
    return _generic_columns(rec)


_TABLE = '<table class="tasker" style="border-collapse:collapse">'


def _table(records: Sequence["_Record"], columns: List[Column]) -> str:
    head = "".join(f'<th style="text-align:left;padding:2px 8px">{_esc(h)}</th>' for h, _ in columns)
    rows = []
    for rec in records:
        cells = "".join(f'<td style="padding:2px 8px">{cell(rec)}</td>' for _, cell in columns)
        rows.append(f"<tr>{cells}</tr>")
    return f"{_TABLE}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def records_html(records: Iterable["_Record"]) -> str:
    """A table of records (of one type; the first record's type picks the columns)."""
    records = list(records)
    if not records:
        return "<p><em>no records</em></p>"
    return _table(records, _columns(records[0]))


def record_html(rec: "_Record") -> str:
    """One record as a one-row table."""
    return _table([rec], _columns(rec))


def run_html(run: "Run") -> str:
    """A run as stored now: its row and a table of its subtasks."""
    title = f"<p><strong>{_esc(run.stage)} / {_esc(run.task)}</strong> <code>{_esc(run.run_id)}</code></p>"
    try:
        record = run.record()
        subtasks = run.subtasks()
    except Exception as e:  # the database is unreachable: say so rather than fail the cell
        return f"{title}<p><em>not readable now: {_esc(e)}</em></p>"
    parts = [title, record_html(record)]
    if subtasks:
        parts.append(_table(subtasks, _SUBTASK_COLUMNS))
    return "".join(parts)
