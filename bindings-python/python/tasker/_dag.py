"""The pipeline graph with live state (``get_dag()``): tasks with their latest
run, the dependencies between them, and whether each task is blocked or waiting.
The renderings (text, Graphviz DOT, Mermaid) are the core's, as in ``tasker dag``."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from . import _tasker
from ._records import Status, _Record

__all__ = ["Dag", "DagNode"]


def _time(v: Optional[str]) -> Optional[datetime]:
    # The core writes RFC 3339 with a "Z"; fromisoformat reads "Z" only from 3.11.
    return None if v is None else datetime.fromisoformat(v.replace("Z", "+00:00"))


@dataclass(frozen=True)
class DagNode(_Record):
    """A task on the graph with its latest run (NOT_STARTED if it never ran)."""

    #: ``stage/task``: the name edges use.
    id: str
    stage_name: str
    task_name: str
    stage_order: Optional[int]
    task_order: Optional[int]
    status: Status
    run_id: Optional[str]
    percent: Optional[float]
    eta_seconds: Optional[float]
    lost: bool
    start_time: Optional[datetime]
    end_time: Optional[datetime]
    duration_seconds: Optional[float]
    #: Seconds from the moment its last upstream finished to the latest run's start.
    wait_seconds: Optional[float]
    #: Longest path from a task without dependencies (the column it is drawn in).
    rank: int
    #: An upstream failed, was cancelled or lost, or is blocked itself.
    blocked: bool
    #: Not blocked, and an upstream has not finished.
    waiting: bool
    blocked_by: List[str]
    waiting_for: List[str]

    def __repr__(self) -> str:
        state = " blocked" if self.blocked else " waiting" if self.waiting else ""
        lost = " LOST" if self.lost else ""
        return f"<DagNode {self.id} {self.status.value}{lost}{state} rank={self.rank}>"


class Dag:
    """The graph: ``nodes`` (:class:`DagNode`, in stage and task order) and ``edges``
    (``(upstream, downstream)`` pairs of ``stage/task`` names)."""

    def __init__(self, raw: str) -> None:
        self._raw = raw
        data = json.loads(raw)
        nodes = []
        for n in data["nodes"]:
            n = dict(n)
            n["status"] = Status(n["status"])
            n["start_time"] = _time(n.get("start_time"))
            n["end_time"] = _time(n.get("end_time"))
            nodes.append(DagNode(**n))
        self.nodes: List[DagNode] = nodes
        self.edges: List[Tuple[str, str]] = [(e["from"], e["to"]) for e in data["edges"]]

    def node(self, id: str) -> DagNode:
        """The node named ``stage/task`` (KeyError if there is none)."""
        for n in self.nodes:
            if n.id == id:
                return n
        raise KeyError(id)

    def render(self, format: str = "text") -> str:
        """The graph as ``text``, ``dot`` (Graphviz), ``mermaid`` or ``json``."""
        return _tasker._render_dag(self._raw, format)

    def to_text(self) -> str:
        return self.render("text")

    def to_dot(self) -> str:
        return self.render("dot")

    def to_mermaid(self) -> str:
        return self.render("mermaid")

    def to_dict(self) -> Dict[str, Any]:
        """Plain data: ``{"nodes": [...], "edges": [{"from": ..., "to": ...}]}``."""
        return {
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [{"from": f, "to": t} for f, t in self.edges],
        }

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        blocked = sum(n.blocked for n in self.nodes)
        waiting = sum(n.waiting for n in self.nodes)
        return (
            f"<Dag {len(self.nodes)} tasks, {len(self.edges)} dependencies,"
            f" {blocked} blocked, {waiting} waiting>"
        )
