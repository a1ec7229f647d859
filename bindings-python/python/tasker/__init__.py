"""tasker: see what a data pipeline is doing.

Quick start::

    import tasker

    with tasker.task("ingest", "download", total_subtasks=2) as run:
        for url in run.track(urls, "files"):
            fetch(url)
        with run.subtask("parse", items_total=len(files)) as st:
            for f in files:
                parse(f)
                st.increment()

The database comes from ``TASKER_DB_URL`` (or ``.tasker.yml``, or the default
SQLite file); ``tasker.connect(url)`` opens one explicitly. Progress calls cost
about as much as a method call: a background thread writes them every 200 ms.

Retries (each attempt a run; the last failure is raised)::

    for attempt in tasker.task("ingest", "download", retries=3):
        with attempt as run:
            run.add_input("source", pathlib.Path("urls.txt"), hash=True)
            ...

Queries return typed records (``tasker.to_pandas`` makes a DataFrame):
``get_task_status``, ``get_active_tasks``, ``get_task_history``,
``get_subtask_progress``, ``get_task_stats``, ``get_run_samples``, ``get_run_io``;
``health()`` says whether the database is reachable. See ``help(tasker.Run)``,
``help(tasker.Tracker)`` and bindings-python/README.md.
"""
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

from ._tasker import (
    AlreadyExistsError,
    ArgumentError,
    ConfigError,
    InvalidTransitionError,
    NotFoundError,
    StorageError,
    TaskerError,
    __version__,
)
from ._core import (
    Attempt,
    Attempts,
    Run,
    Script,
    Subtask,
    Tracked,
    Tracker,
    configure,
    connect,
    current_run,
    default_tracker,
    flush,
    main_script,
    set_default_tracker,
    task,
    tracked,
)
from ._functional import (
    get_active_tasks,
    get_dag,
    get_registered_tasks,
    get_item_outcomes,
    get_run_io,
    get_run_logs,
    get_run_samples,
    get_stages,
    get_subtask_progress,
    get_task_history,
    get_task_stats,
    get_task_status,
    health,
    purge_tasker_data,
    register_task,
    register_tasks,
    subtask_complete,
    subtask_fail,
    subtask_increment,
    subtask_start,
    subtask_update,
    task_complete,
    task_fail,
    task_start,
    task_update,
    tasker_context,
)

if TYPE_CHECKING:  # pragma: no cover - what the lazy names below resolve to
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
        to_pandas,
    )
    from ._dag import Dag, DagNode
    from ._serve import Dashboard, serve
    from ._logging import LogHandler, capture_logging
    from ._tqdm import tqdm

# Loaded on first use, so that `import tasker` stays cheap: the records are
# dataclasses (whose module loads `inspect` and `re`), and the dashboard is rarely
# wanted by a pipeline.
_LAZY_BY_MODULE = {
    "_records": (
        "EventRecord", "Health", "IoRecord", "ItemOutcomeCount", "ItemOutcomeRecord",
        "LogRecord", "PurgeReport", "RunRecord", "SampleRecord", "StageRecord", "Status",
        "SubtaskRecord", "TaskRecord", "TaskStatsRecord", "TransitionEvent", "to_pandas",
    ),
    "_dag": ("Dag", "DagNode"),
    "_serve": ("Dashboard", "serve"),
    # Integrations: they load tqdm, logging or html, which a pipeline may not use.
    "_tqdm": ("tqdm",),
    "_logging": ("LogHandler", "capture_logging"),
}
_LAZY = {name: module for module, names in _LAZY_BY_MODULE.items() for name in names}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tasker' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    # errors
    "TaskerError",
    "ArgumentError",
    "NotFoundError",
    "InvalidTransitionError",
    "AlreadyExistsError",
    "ConfigError",
    "StorageError",
    # records
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
    # handles
    "Tracker",
    "Run",
    "Subtask",
    "Tracked",
    "Attempt",
    "Attempts",
    "Script",
    "main_script",
    "connect",
    "configure",
    "default_tracker",
    "set_default_tracker",
    "flush",
    "task",
    "tracked",
    # the dashboard
    "serve",
    "Dashboard",
    "current_run",
    # integrations
    "tqdm",
    "LogHandler",
    "capture_logging",
    # functional API (the R package's names)
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
    "get_dag",
    "Dag",
    "DagNode",
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
